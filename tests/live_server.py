"""The real SIDRCE app under uvicorn on a free loopback port, for tests that talk HTTP to it."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from sidrce.server import create_app

#: polls and refreshes fast, for tests that run `sidrce serve` in a process
FAST = {"SIDRCE_POLL_SECONDS": "0.02", "SIDRCE_REFRESH_SECONDS": "0"}
ONE_RECORD = b'{"domain":"d","hypothesis":"H","step":1,"intervention":"-","infra_cost_usd":1,"qps":2,"latency_p95_ms":3}\n'


def serve_env(**extra: str) -> dict[str, str]:
    """This process's environment without its SIDRCE_ settings, plus FAST and ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIDRCE_")}
    return base | FAST | extra


def sidrce_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sidrce.cli", *args]


def wait_for(fn: Callable[[], Any], what: str, timeout: float = 10.0, every: float = 0.02) -> Any:
    """``fn()``'s first truthy value, polled every ``every`` seconds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_sidrce(telemetry: Path, environ: Mapping[str, str]) -> Iterator[str]:
    """``sidrce.server.create_app`` served by uvicorn in a thread; yields its base URL once ready."""
    app = create_app(telemetry, environ=dict(environ))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError("SIDRCE did not become ready in 20 s")
            time.sleep(0.05)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def answering_sidrce(telemetry: Path, environ: Mapping[str, str]) -> Iterator[httpx.Client]:
    """Like :func:`running_sidrce`, but handed over once it answers, ready or not (for tests of
    a server that cannot read its telemetry); yields a client with the base URL set."""
    app = create_app(telemetry, environ=dict(environ))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:

            def up() -> bool:
                with contextlib.suppress(httpx.TransportError):
                    return c.get("/healthz").status_code == 200
                return False

            wait_for(up, "the server", timeout=20)
            yield c
    finally:
        server.should_exit = True
        thread.join(timeout=10)
