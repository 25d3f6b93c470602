"""SIDRCE over HTTP: ``GET /report``, ``/metrics``, ``/healthz``, ``/readyz`` (Starlette app ``app``).

A background thread follows the telemetry file (growth, rotation, truncation), feeds only new
bytes to one :class:`~sidrce.collector.Aggregator`, and publishes a new report at most once per
``SIDRCE_REFRESH_SECONDS`` (default 2) when something changed. Publishing serialises the report
and renders ``/metrics`` in both exposition formats in that thread, so requests never parse
telemetry or compute anything: ``/report`` and ``/metrics`` return published bytes. Filtered
reports are computed from the published snapshot off the event loop and cached.

What the figures cover: every line read since the server started, across rotations (a renamed
file is read on while its writer appends, until idle for 20 polls, then the new file is added, as
``sidrce collect ops.jsonl.1 ops.jsonl`` would; a copy renamed into place, even one shorter than
what was read, is read on, not counted again, see :class:`~sidrce.source.Follower`). A file
truncated in place has lost its old lines, so the server starts over from the new contents, as
``sidrce collect ops.jsonl`` would (also when it grew past the old size between two polls: see
:meth:`~sidrce.source.Stream.same_bytes`).

Failures: a read error is retried at every poll and clears itself (said once on stderr); a setting that cannot work
(encrypted lines, no key) stops the reading; an unexpected exception is caught, shown by /readyz
and the thread goes on. /readyz and ``sidrce_telemetry_up`` say which (see docs/finops-spec.md).

SIGHUP (logrotate's ``postrotate kill -HUP``) makes the thread poll at once instead of ending the
process: ``sidrce serve`` installs its handler before uvicorn starts; under ``uvicorn
sidrce.server:app`` the app's startup installs it (see :func:`_handle_hup`).

Environment: ``SIDRCE_TELEMETRY`` (file, default ``ops_telemetry.jsonl``), ``SIDRCE_TOKEN``
(Bearer token for /report and /metrics), ``SIDRCE_BASELINE``, ``SIDRCE_LAMBDA_ASDPI``,
``SIDRCE_AES_KEY``/``SIDRCE_AES_KEYS`` (encrypted telemetry), ``SIDRCE_POLL_SECONDS`` (0.25),
``SIDRCE_REFRESH_SECONDS`` (2).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import json
import math
import os
import signal
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dmca_core.errors import ConfigError, DmcaError, UsageError
from sidrce import dashboard
from sidrce import fti as F
from sidrce.collector import Aggregator, Snapshot, settings_from_env, summarize
from sidrce.gate import KEY_HINT, PLAINTEXT_HINT, first_line, printable, rejection_hint
from sidrce.metrics import health_registry, registry_for
from sidrce.source import DRAIN_MIN_SECONDS, DRAIN_POLLS, Follower

DEFAULT_TELEMETRY = "ops_telemetry.jsonl"
FILTER_KEYS = ("domain", "hypothesis")
# a filter value longer than this is refused (it bounds the cache of filtered reports' keys);
# the empty value matches no group: Grafana sends `domain=` while its variable has no value yet
MAX_PARAM = 4096


# Accept headers of the two exposition formats, rendered once per published report
PRERENDER = ("", "application/openmetrics-text; version=1.0.0")


@attrs.frozen
class Published:
    version: tuple[int, int]  # (restarts, aggregator version)
    snap: Snapshot
    report: dict[str, Any]
    body: bytes
    # False for the report published before the first complete read: /metrics then shows no
    # counters, which would otherwise jump from 0 to the whole file (a rate() spike)
    complete: bool = True
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
        # a renamed file still being written is read on until idle this long (docs/finops-spec.md)
        self.drain_seconds = max(DRAIN_MIN_SECONDS, DRAIN_POLLS * poll_seconds)
        self.follower = Follower(self.path, self._sink, drain_seconds=self.drain_seconds)
        self.poll_seconds = poll_seconds
        self.refresh_seconds = refresh_seconds
        self.error: str | None = None  # the last poll's read error; a good poll clears it
        self.fatal: str | None = None  # a setting that cannot work (e.g. no key): reading stops
        self.fault: str | None = None  # an unexpected exception in the thread: lines may be lost
        self.rejecting: str | None = None  # lines were read and every one was rejected
        self._said_error: str | None = None  # the read error last printed (None after a good poll)
        self.read_errors = 0  # polls that failed, for any of the three reasons
        self.last_read: float | None = None  # wall time of the last poll that read the file
        self.seen = False  # the file has existed and been read once
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by SIGHUP (and stop): poll at once
        self._hup = False
        self._thread: threading.Thread | None = None
        self._filtered: OrderedDict[tuple[int, str | None, str | None], bytes] = OrderedDict()
        self._filter_lock = threading.Lock()
        self.current = self._publish(complete=False)

    def _sink(self, generation: int) -> Any:
        if self.follower.truncated:
            # the old lines are gone: start over, as `sidrce collect FILE` would now
            self.agg = Aggregator(**self._agg_args)
            self.restarts += 1
        # each rotation/truncation starts a new stream; its line numbers restart at 1
        return self.agg.file(str(self.path) if generation == 0 else f"{self.path}#{generation}")

    def _version(self) -> tuple[int, int]:
        return (self.restarts, self.agg.version)

    def _publish(self, *, complete: bool = True) -> Published:
        version = self._version()
        snap = self.agg.snapshot()
        report = summarize(snap, **self.settings)
        body = json.dumps(report, allow_nan=False, separators=(",", ":")).encode()
        pub = Published(version, snap, report, body, complete)
        for accept in PRERENDER:
            render_metrics(pub, accept)
        return pub

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sidrce-follower", daemon=True)
        self._thread.start()

    def hup(self) -> None:
        """SIGHUP (e.g. logrotate's ``postrotate kill -HUP``): look at the file at once. Rotation
        and truncation are found at every poll anyway; nothing is reopened or reset."""
        self._hup = True
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():  # still inside a read: closing its descriptor under it is worse
                return
        with contextlib.suppress(OSError):
            self.follower.close()

    def _run(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            busy = False
            try:
                busy = self._poll()
            except Exception as exc:  # noqa: BLE001 - one bad poll must not end the thread
                self.read_errors += 1
                self._fault("reading", exc)
            try:
                now = time.monotonic()
                # complete: the file has been read to its end once (not only polled while missing)
                complete = self.seen and not busy
                changed = self._version() != self.current.version or (complete and not self.current.complete)
                if changed and (not busy and (now - last >= self.refresh_seconds or not self.ready.is_set())):
                    self.current = self._publish(complete=complete)
                    last = now
                    self._check_rejecting()
            except Exception as exc:  # noqa: BLE001 - nor one report that cannot be built (not a failed read)
                self._fault("publishing", exc)
            if not busy:
                self.ready.set()
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                if self._hup:
                    self._hup = False
                    print(f"sidrce: SIGHUP: checking {self.path} for rotation now", file=sys.stderr)

    def _check_rejecting(self) -> None:
        """Lines were read and none was a record (a wrong key, not telemetry): not ready, said once."""
        report = self.current.report
        why = None
        rejected = report["rejected"]
        if report["count"] == 0 and sum(rejected.values()):
            reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(rejected.items()))
            why = f"{self.path}: every line read was rejected ({reasons})"
            hint = rejection_hint(rejected)
            if hint == "wrong key":
                why += f": {KEY_HINT}"
            elif hint == "plaintext":
                why += f": {PLAINTEXT_HINT}"
            elif hint == "not telemetry":
                why += ": is it a DMCA telemetry file?"
            if why != self.rejecting:
                print(f"sidrce: error: {printable(why)}", file=sys.stderr)
        self.rejecting = why

    def _fault(self, doing: str, exc: Exception) -> None:
        first = first_line(exc)
        fault = f"{self.path}: internal error while {doing} telemetry: {type(exc).__name__}: {first}"
        if fault != self.fault:  # once on stderr, not at every poll
            print(f"sidrce: error: {fault}", file=sys.stderr)
        self.fault = fault

    def _poll(self) -> bool:
        """Read what is new; True when there is more to read at once."""
        if self.fatal is not None:
            return False
        try:
            got = self.follower.poll()
        except DmcaError as exc:  # e.g. encrypted lines and no key: report it, stop reading
            self.fatal = str(exc)
            self.read_errors += 1
            # reading stops here, so this is said once; the message names variables, never a key
            print(f"sidrce: error: {printable(first_line(exc))}", file=sys.stderr)
            return False
        except OSError as exc:  # e.g. the file replaced by a directory: polled again, may recover
            self.error = f"{self.path}: {exc.strerror or exc}"
            self.read_errors += 1
            if self.error != self._said_error:  # once, again only when it changes or comes back
                print(f"sidrce: error: {printable(self.error)}", file=sys.stderr)
                self._said_error = self.error
            return False
        self.error = None
        self._said_error = None
        if self.follower.stream is not None:
            self.seen = True
            self.last_read = time.time()
        return got >= (64 << 20)

    def problem(self) -> str | None:
        """Why the server is not ready (one line), or None."""
        thread = self._thread
        if thread is not None and not thread.is_alive() and not self._stop.is_set():
            return "the telemetry reader thread has stopped; restart the server"
        for why in (self.fatal, self.fault, self.error):
            if why:
                return why
        if not self.ready.is_set():
            return "reading telemetry"
        if not self.seen:
            return f"{self.path}: no such file yet (waiting for it)"
        return self.rejecting

    def health(self) -> dict[str, Any]:
        """State of the reading, for /metrics."""
        return {"up": self.problem() is None, "read_errors": self.read_errors, "last_read": self.last_read}

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
        report = pub.report if pub.complete else None
        body = pub.rendered[content_type] = encoder(registry_for(lambda: report))
    return body, content_type


def render_health(health: dict[str, Any], accept: str) -> bytes:
    """The reading's health metrics (:func:`sidrce.metrics.health_registry`), rendered per request:
    they change without a new report. Small: three samples."""
    encoder, _ = choose_encoder(accept)
    return encoder(health_registry(health))


def telemetry_path(telemetry: str | Path | None, env: Mapping[str, str]) -> Path:
    return Path(telemetry or env.get("SIDRCE_TELEMETRY") or DEFAULT_TELEMETRY)


def timing_from_env(env: Mapping[str, str]) -> dict[str, float]:
    """``SIDRCE_POLL_SECONDS`` (> 0) and ``SIDRCE_REFRESH_SECONDS`` (>= 0); ConfigError naming the
    variable otherwise."""
    out = {}
    for var, key, default, least in (
        ("SIDRCE_POLL_SECONDS", "poll_seconds", 0.25, 0.001),
        ("SIDRCE_REFRESH_SECONDS", "refresh_seconds", 2.0, 0.0),
    ):
        text = env.get(var) or str(default)
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{var}: expected a number of seconds, got {text!r}") from None
        if not (math.isfinite(value) and value >= least):
            raise ConfigError(f"{var}: expected a finite number of seconds >= {least:g}, got {text!r}")
        out[key] = value
    return out


def token_from_env(env: Mapping[str, str]) -> str:
    """``SIDRCE_TOKEN`` without surrounding whitespace (a secret file's trailing newline); "" when
    unset or empty; ConfigError when it is only whitespace (surely not the token meant)."""
    raw = env.get("SIDRCE_TOKEN", "")
    token = raw.strip()
    if raw and not token:
        raise ConfigError(
            "SIDRCE_TOKEN: only whitespace; set the token, or unset the variable to serve without one"
        )
    if not all(" " < c < "\x7f" for c in token):
        # an HTTP header carries latin-1 bytes (browsers refuse anything else in fetch): a token
        # with other characters could never be sent, and every request would look unauthorised
        raise ConfigError(
            "SIDRCE_TOKEN: holds a character a client cannot send in an Authorization header; "
            "use printable ASCII without spaces (e.g. openssl rand -hex 32)"
        )
    return token


def check_keys(env: Mapping[str, str]) -> None:
    """With ``SIDRCE_AES_KEY``/``SIDRCE_AES_KEYS`` set, every installed encryptor parses them now:
    a bad key is a ConfigError at startup (naming the variable, never the key), not a 503 once an
    envelope arrives, nor unnoticed on plaintext telemetry."""
    if not (env.get("SIDRCE_AES_KEY", "").strip() or env.get("SIDRCE_AES_KEYS", "").strip()):
        return
    from dmca_core import plugins

    for name, enc in plugins.encryptors().items():
        try:
            enc.reader(environ=env)
        except DmcaError as exc:
            raise ConfigError(first_line(exc)) from None
        except Exception as exc:  # noqa: BLE001 - its text might quote the key: name the type only
            raise ConfigError(
                f"SIDRCE_AES_KEY/SIDRCE_AES_KEYS: encryptor {name} cannot use the key ({type(exc).__name__})"
            ) from None


def check_settings(env: Mapping[str, str]) -> None:
    """Every setting from the environment, checked before the port is bound: a bad one is a
    ConfigError (one line, exit 2)."""
    settings_from_env(env)
    timing_from_env(env)
    token_from_env(env)
    check_keys(env)


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
            if values and len(values[0]) > MAX_PARAM:
                return _error(400, f"query parameter {key!r} must be at most {MAX_PARAM} characters")
            chosen[key] = values[0] if values else None
        lv = live()
        if lv.fatal or lv.error:
            return _error(503, lv.fatal or lv.error or "")
        if chosen["domain"] is None and chosen["hypothesis"] is None:
            body = lv.current.body
        else:
            body = await run_in_threadpool(lv.filtered, chosen["domain"], chosen["hypothesis"])
        return Response(body, media_type="application/json")

    async def metrics(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        lv = live()
        accept = request.headers.get("accept", "")
        body, content_type = render_metrics(lv.current, accept)
        # OpenMetrics ends with one "# EOF": the health families go before it
        body = body.removesuffix(b"# EOF\n") + render_health(lv.health(), accept)
        return Response(body, headers={"Content-Type": content_type})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        lv = live()
        why = lv.problem()
        if why is not None:
            return _error(503, why)
        return JSONResponse({"status": "ready", "records": lv.current.report["count"]})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        env = os.environ if environ is None else environ
        base_env, asdpi_env = settings_from_env(env)
        state["token"] = token_from_env(env)
        lv = state["live"] = app.state.live = Live(
            telemetry_path(telemetry, env),
            baseline=baseline if baseline is not None else base_env,
            lambda_asdpi=lambda_asdpi if lambda_asdpi is not None else asdpi_env,
            allow_plaintext=allow_plaintext,
            environ=env,
            **timing_from_env(env),
        )
        lv.start()
        undo_hup = _handle_hup(lv)
        try:
            yield
        finally:
            if undo_hup is not None:
                undo_hup()
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


def _handle_hup(lv: Live) -> Callable[[], None] | None:
    """SIGHUP makes ``lv`` look at its file at once, as under ``sidrce serve``, for a server whose
    lifespan runs in the main thread's event loop (``uvicorn sidrce.server:app``): SIGHUP's default
    action would end it. Left alone when someone installed a handler already (``sidrce serve`` does,
    before uvicorn starts), and elsewhere (a thread, a test client). Returns how to undo it."""
    hup = getattr(signal, "SIGHUP", None)
    if hup is None or threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(hup)
    if previous not in (signal.SIG_DFL, signal.SIG_IGN):  # a handler of its own (None: not Python's)
        return None
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(hup, lv.hup)
    except (NotImplementedError, RuntimeError, ValueError):  # a loop without signal support
        return None

    def undo() -> None:
        loop.remove_signal_handler(hup)  # back to SIG_DFL
        if previous == signal.SIG_IGN:  # e.g. started under nohup
            signal.signal(hup, previous)

    return undo


def __getattr__(name: str) -> Any:
    """``app`` for ``uvicorn sidrce.server:app``, made on first use: its settings are checked then,
    and a bad one is one line and exit 2 (uvicorn lets SystemExit through; an AttributeError would
    become its own "Attribute not found" line, without the reason). So ``hasattr`` on this module
    with a bad setting also exits: a launcher of its own should call :func:`check_settings` and
    :func:`create_app`."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    global app
    try:
        check_settings(os.environ)
    except DmcaError as exc:
        print(f"sidrce: error: {printable(first_line(exc))}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    app = create_app()
    return app


def listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on ``host`` (every address it resolves to, as uvicorn would bind) and
    ``port`` (0: a free one, the same on each address); a UsageError naming ``host:port`` and the
    reason when none can be had, before anything is printed or started."""
    where = f"{_url_host(host)}:{port}"
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise UsageError(f"cannot listen on {where}: {getattr(exc, 'strerror', None) or exc}") from None
    addrs = list(dict.fromkeys((family, kind, proto, addr) for family, kind, proto, _, addr in infos))
    socks: list[socket.socket] = []
    error: OSError | None = None
    for family, kind, proto, addr in addrs:
        sock = socket.socket(family, kind, proto)
        try:
            if os.name == "posix":  # restart at once after a stop (TIME_WAIT); not over a listener
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # "::" must not also claim the IPv4 port
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if socks and port == 0:
                addr = (addr[0], socks[0].getsockname()[1], *addr[2:])
            sock.bind(addr)
            sock.listen(2048)  # uvicorn's backlog; connections wait here until it accepts
        except OSError as exc:
            sock.close()
            # like asyncio: an address family the machine has not enabled (::1 of "localhost" in
            # a container without IPv6) is skipped when another address works
            if exc.errno != errno.EADDRNOTAVAIL or len(addrs) == 1:
                for s in socks:
                    s.close()
                raise UsageError(f"cannot listen on {where}: {exc.strerror or exc}") from None
            error = exc
            continue
        socks.append(sock)
    if not socks:
        why = (error.strerror if error else None) or "no address to bind"
        raise UsageError(f"cannot listen on {where}: {why}")
    return socks


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve(args: Any) -> int:
    """``sidrce serve``: run the app under uvicorn."""
    import uvicorn

    # every setting checked before uvicorn starts: a bad one is one line and exit 2, not a traceback
    check_settings(os.environ)
    path = telemetry_path(args.telemetry, os.environ)
    # bound here, so that an address in use is one line and exit 2, and the line below is printed
    # only once the port is ours (with the real port when --port 0)
    socks = listen(args.host, args.port)
    port = socks[0].getsockname()[1]
    print(
        f"sidrce: serving http://{_url_host(args.host)}:{port}/dashboard (telemetry {path})", file=sys.stderr
    )
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token_from_env(os.environ):
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

    def on_hup(signum: int, frame: Any) -> None:
        live = getattr(application.state, "live", None)
        if live is not None:
            live.hup()  # its thread says so on stderr

    # logrotate's habitual `postrotate kill -HUP` must not stop the server (SIGHUP's default)
    hup = getattr(signal, "SIGHUP", None)
    previous = signal.signal(hup, on_hup) if hup is not None else None
    try:
        uvicorn.Server(uvicorn.Config(application, log_level="warning")).run(sockets=socks)
    except KeyboardInterrupt:
        # Ctrl-C: uvicorn shut down cleanly, then raised SIGINT again; the shell's code, no traceback
        return 130
    finally:
        if hup is not None:
            signal.signal(hup, previous)
        for sock in socks:
            sock.close()
    return 0
