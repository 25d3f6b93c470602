# SIDRCE's HTTP server (/report, /metrics, /dashboard) for the DMCA FinOps stack (docker-compose.yml).
# Installs the root distribution (dmca_core + sidrce) and the aes_gcm plugin, so encrypted
# telemetry can be read with SIDRCE_AES_KEY; the numpy-only causal fallback comes along so the
# image's `dmca` command works too.
# Build stage: wheels, with a C compiler for the two scanners (sidrce/_linescan.c and
# plugins/aes_gcm/dmca_aes_gcm/_envscan.c); the final image carries the wheels, not the compiler.
FROM python:3.11.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY dmca_core ./dmca_core
COPY sidrce ./sidrce
COPY plugins/aes_gcm ./plugins/aes_gcm
COPY plugins/causal_fallback ./plugins/causal_fallback
RUN pip wheel --no-cache-dir --no-deps -w /wheels . ./plugins/aes_gcm ./plugins/causal_fallback

FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg \
    SIDRCE_TELEMETRY=/telemetry/ops_telemetry.jsonl

COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -r /wheels \
    && python -c "import sidrce._linescan, dmca_aes_gcm._envscan" \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin sidrce

# the telemetry directory is mounted read-only; SIDRCE only reads it, as uid 10001: the files must
# be readable by others (dmca creates them 0666 less the umask; with umask 077, chmod o+r them)
USER sidrce
WORKDIR /telemetry
EXPOSE 8080
# liveness (/healthz): the server answers. Whether it has data is /readyz's question (a file not
# written yet, or without its key, is not a reason to restart the container)
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
CMD ["sidrce", "serve", "--host", "0.0.0.0", "--port", "8080"]
