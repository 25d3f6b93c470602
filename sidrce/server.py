"""SIDRCE over HTTP: ``GET /report``, ``/metrics``, ``/healthz``, ``/readyz`` (Starlette app ``app``).

A background thread follows the telemetry file (growth, rotation, truncation), feeds only new
bytes to one :class:`~sidrce.collector.Aggregator`, and publishes a new report at most once per
``SIDRCE_REFRESH_SECONDS`` (default 2) when something changed. Publishing serialises the report
and renders ``/metrics`` in both exposition formats in that thread, so requests never parse
telemetry or compute anything: ``/report`` and ``/metrics`` return published bytes. Filtered
reports are computed from the published snapshot off the event loop and cached.

What the figures cover: every line read since the server started, across rotations (a renamed
file is read to its end, then the new file is added, as ``sidrce collect ops.jsonl.1 ops.jsonl``
would). A file truncated in place has lost its old lines, so the server starts over from the new
contents, as ``sidrce collect ops.jsonl`` would.

Environment: ``SIDRCE_TELEMETRY`` (file, default ``ops_telemetry.jsonl``), ``SIDRCE_TOKEN``
(Bearer token for /report and /metrics), ``SIDRCE_BASELINE``, ``SIDRCE_LAMBDA_ASDPI``,
``SIDRCE_AES_KEY``/``SIDRCE_AES_KEYS`` (encrypted telemetry), ``SIDRCE_POLL_SECONDS`` (0.25).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import attrs
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dmca_core.errors import DmcaError
from sidrce import dashboard
from sidrce import fti as F
from sidrce.collector import Aggregator, Snapshot, settings_from_env, summarize
from sidrce.metrics import registry_for
from sidrce.source import Follower

DEFAULT_TELEMETRY = "ops_telemetry.jsonl"
FILTER_KEYS = ("domain", "hypothesis")
MAX_PARAM = 256


# Accept headers of the two exposition formats, rendered once per published report
PRERENDER = ("", "application/openmetrics-text; version=1.0.0")


@attrs.frozen
class Published:
    version: tuple[int, int]  # (restarts, aggregator version)
    snap: Snapshot
    report: dict[str, Any]
    body: bytes
    rendered: dict[str, bytes] = attrs.field(factory=dict)  # /metrics bytes per content type


class Live:
    """Follows one telemetry file and publishes reports from a background thread."""

    def __init__(
        self,
        path: Path,
        *,
        baseline: F.Baseline | None,
        lambda_asdpi: float,
        allow_plaintext: bool = False,
        environ: Mapping[str, str] | None = None,
        poll_seconds: float = 0.25,
        refresh_seconds: float = 2.0,
    ) -> None:
        self.path = Path(path)
        self.settings = {"baseline": baseline, "lambda_asdpi": lambda_asdpi}
        self._agg_args = {"allow_plaintext": allow_plaintext, "environ": environ}
        self.agg = Aggregator(**self._agg_args)
        self.restarts = 0
        self.follower = Follower(self.path, self._sink)
        self.poll_seconds = poll_seconds
        self.refresh_seconds = refresh_seconds
        self.error: str | None = None
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._filtered: OrderedDict[tuple[int, str | None, str | None], bytes] = OrderedDict()
        self._filter_lock = threading.Lock()
        self.current = self._publish()

    def _sink(self, generation: int) -> Any:
        if self.follower.truncated:
            # the old lines are gone: start over, as `sidrce collect FILE` would now
            self.agg = Aggregator(**self._agg_args)
            self.restarts += 1
        # each rotation/truncation starts a new stream; its line numbers restart at 1
        return self.agg.file(str(self.path) if generation == 0 else f"{self.path}#{generation}")

    def _version(self) -> tuple[int, int]:
        return (self.restarts, self.agg.version)

    def _publish(self) -> Published:
        version = self._version()
        snap = self.agg.snapshot()
        report = summarize(snap, **self.settings)
        body = json.dumps(report, allow_nan=False, separators=(",", ":")).encode()
        pub = Published(version, snap, report, body)
        for accept in PRERENDER:
            render_metrics(pub, accept)
        return pub

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sidrce-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with contextlib.suppress(OSError):
            self.follower.close()

    def _run(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            busy = False
            if self.error is None:
                try:
                    busy = self.follower.poll() >= (64 << 20)
                except DmcaError as exc:  # e.g. encrypted lines and no key: report it, stop reading
                    self.error = str(exc)
                except OSError as exc:
                    self.error = f"{self.path}: {exc.strerror or exc}"
            now = time.monotonic()
            changed = self._version() != self.current.version
            if changed and (not busy and (now - last >= self.refresh_seconds or not self.ready.is_set())):
                self.current = self._publish()
                last = now
            if not busy:
                self.ready.set()
                self._stop.wait(self.poll_seconds)

    def filtered(self, domain: str | None, hypothesis: str | None) -> bytes:
        cur = self.current
        key = (cur.version, domain, hypothesis)
        with self._filter_lock:
            body = self._filtered.get(key)
        if body is None:
            report = summarize(cur.snap, domain=domain, hypothesis=hypothesis, **self.settings)
            body = json.dumps(report, allow_nan=False, separators=(",", ":")).encode()
            with self._filter_lock:
                self._filtered[key] = body
                while len(self._filtered) > 64:
                    self._filtered.popitem(last=False)
        return body


def render_metrics(pub: Published, accept: str) -> tuple[bytes, str]:
    """``/metrics`` bytes of a published report for an Accept header, rendered once per format."""
    encoder, content_type = choose_encoder(accept)
    body = pub.rendered.get(content_type)
    if body is None:
        body = pub.rendered[content_type] = encoder(registry_for(lambda: pub.report))
    return body, content_type


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))


def create_app(
    telemetry: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    baseline: F.Baseline | None = None,
    lambda_asdpi: float | None = None,
    allow_plaintext: bool = False,
) -> Starlette:
    """The app; settings not given come from ``environ`` (default ``os.environ``) at startup."""
    state: dict[str, Any] = {}

    def live() -> Live:
        return state["live"]

    def authorized(request: Request) -> bool:
        token = state["token"]
        if not token:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())

    def unauthorized() -> JSONResponse:
        return _error(401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="sidrce"'})

    async def report(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        params = request.query_params
        for key in params:
            if key not in FILTER_KEYS:
                return _error(400, f"unknown query parameter {key!r}; allowed: domain, hypothesis")
        chosen: dict[str, str | None] = {}
        for key in FILTER_KEYS:
            values = params.getlist(key)
            if len(values) > 1:
                return _error(400, f"query parameter {key!r} given more than once")
            if values and not (0 < len(values[0]) <= MAX_PARAM):
                return _error(400, f"query parameter {key!r} must be 1 to {MAX_PARAM} characters")
            chosen[key] = values[0] if values else None
        lv = live()
        if lv.error:
            return _error(503, lv.error)
        if chosen["domain"] is None and chosen["hypothesis"] is None:
            body = lv.current.body
        else:
            body = await run_in_threadpool(lv.filtered, chosen["domain"], chosen["hypothesis"])
        return Response(body, media_type="application/json")

    async def metrics(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        body, content_type = render_metrics(live().current, request.headers.get("accept", ""))
        return Response(body, headers={"Content-Type": content_type})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        lv = live()
        if lv.error:
            return _error(503, lv.error)
        if not lv.ready.is_set():
            return _error(503, "reading telemetry")
        return JSONResponse({"status": "ready", "records": lv.current.report["count"]})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        env = os.environ if environ is None else environ
        base_env, asdpi_env = settings_from_env(env)
        path = Path(telemetry or env.get("SIDRCE_TELEMETRY") or DEFAULT_TELEMETRY)
        state["token"] = env.get("SIDRCE_TOKEN", "")
        lv = state["live"] = Live(
            path,
            baseline=baseline if baseline is not None else base_env,
            lambda_asdpi=lambda_asdpi if lambda_asdpi is not None else asdpi_env,
            allow_plaintext=allow_plaintext,
            environ=env,
            poll_seconds=float(env.get("SIDRCE_POLL_SECONDS", "0.25")),
            refresh_seconds=float(env.get("SIDRCE_REFRESH_SECONDS", "2.0")),
        )
        lv.start()
        try:
            yield
        finally:
            lv.stop()

    return Starlette(
        routes=[
            Route("/report", report),
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *dashboard.routes(),  # the built-in page (public; its fetches carry the token)
        ],
        lifespan=lifespan,
    )


app = create_app()


def serve(args: Any) -> int:
    """``sidrce serve``: run the app under uvicorn."""
    import uvicorn

    if args.host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get("SIDRCE_TOKEN"):
        print(
            f"sidrce: warning: serving on {args.host} without SIDRCE_TOKEN: anyone who can reach "
            "this port can read the report",
            file=sys.stderr,
        )
    application = create_app(
        args.telemetry,
        baseline=args.baseline,
        lambda_asdpi=args.lambda_asdpi,
        allow_plaintext=args.allow_plaintext,
    )
    uvicorn.run(application, host=args.host, port=args.port, log_level="warning")
    return 0
