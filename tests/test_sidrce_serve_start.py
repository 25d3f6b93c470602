"""`sidrce serve` as a person starts it: a port it cannot have is one line and exit 2, the line it
prints names a page that answers, ``/`` leads there, and a setting that stops the reading is said
on stderr once."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import FAST, ONE_RECORD, answering_sidrce, serve_env, sidrce_cmd, wait_for

TOKEN = "serve-start-t0ken-8d2e"


@pytest.fixture
def telemetry(tmp_path: Path) -> Path:
    path = tmp_path / "ops.jsonl"
    path.write_bytes(ONE_RECORD)
    return path


def test_a_port_in_use_is_one_line_and_exit_2(telemetry: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        r = subprocess.run(
            sidrce_cmd("serve", "--telemetry", str(telemetry), "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=60,
            env=serve_env(),
        )
    assert r.returncode == 2, r.stderr
    # no "serving" line first, no uvicorn log, no traceback
    assert r.stderr.lower() == f"sidrce: error: cannot listen on 127.0.0.1:{port}: address already in use\n"


@pytest.mark.parametrize("host", ["999.1.1.1", "192.0.2.1"], ids=["not-an-address", "not-this-machine"])
def test_an_address_that_cannot_be_bound_is_one_line_and_exit_2(telemetry: Path, host: str) -> None:
    r = subprocess.run(
        sidrce_cmd("serve", "--telemetry", str(telemetry), "--host", host, "--port", "8080"),
        capture_output=True,
        text=True,
        timeout=60,
        env=serve_env(SIDRCE_TOKEN=TOKEN),
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"sidrce: error: cannot listen on {host}:8080: ")
    assert "serving" not in r.stderr and TOKEN not in r.stderr


@contextlib.contextmanager
def serving(*args: str, **extra: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`sidrce serve ARGS` in a process; yields its "serving" line as soon as it is printed."""
    proc = subprocess.Popen(
        sidrce_cmd("serve", *args), stderr=subprocess.PIPE, text=True, env=serve_env(**extra)
    )
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        assert ready, "sidrce serve printed nothing in 60 s"
        yield proc.stderr.readline(), proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_serving_line_names_the_dashboard_and_slash_leads_there(telemetry: Path) -> None:
    with serving("--telemetry", str(telemetry), "--port", "0", SIDRCE_TOKEN=TOKEN) as (line, proc):
        m = re.fullmatch(r"sidrce: serving (http://127\.0\.0\.1:(\d+))/dashboard \(telemetry (.+)\)\n", line)
        assert m, line
        base = m[1]
        assert m[3] == str(telemetry) and int(m[2]) > 0  # --port 0: the port it got, not 0
        with httpx.Client(base_url=base, timeout=20) as c:
            # printed once the port is bound: the first request, without retries, is answered
            page = c.get("/dashboard")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            for headers, query in (({}, ""), ({"Authorization": f"Bearer {TOKEN}"}, "?refresh=2&x=<b>")):
                r = c.get(f"/{query}", headers=headers)
                assert r.status_code == 307 and r.headers["location"] == "/dashboard"
                assert r.content == b"" and TOKEN not in str(r.headers)
            followed = c.get("/", follow_redirects=True)
            assert followed.status_code == 200 and followed.url.path == "/dashboard"
            assert c.get("/report").status_code == 401  # the public redirect opens no data
        proc.terminate()
        assert proc.stderr is not None
        rest = proc.stderr.read()
    assert TOKEN not in line + rest and "serving" not in rest


def no_key_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("SIDRCE_AES_KEY", "SIDRCE_AES_KEYS")} | FAST


def app_server(path: Path, environ: dict[str, str]) -> contextlib.AbstractContextManager[httpx.Client]:
    """The app under uvicorn on a loopback port in this process (its stderr is capsys's)."""
    return answering_sidrce(path, environ)


def unready_reason(c: httpx.Client) -> str:
    def why() -> str | None:
        r = c.get("/readyz")
        return r.json()["error"] if r.status_code == 503 and "reading telemetry" not in r.text else None

    reason = wait_for(why, "the reason /readyz gives")
    time.sleep(0.3)  # many polls (every 0.02 s) and requests after it
    for _ in range(5):
        assert c.get("/readyz").json()["error"] == reason
    return reason


def test_encrypted_telemetry_without_key_is_said_once_on_stderr(
    tmp_path: Path, use_plugin: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_sidrce_collector import FakePlugin, envelope
    from test_sidrce_collector import rec as crec

    use_plugin(FakePlugin())
    path = tmp_path / "enc.jsonl"
    path.write_bytes(envelope(0, [crec(1)]))
    with app_server(path, no_key_env()) as c:
        reason = unready_reason(c)
    assert "SIDRCE_AES_KEY" in reason
    assert capsys.readouterr().err == f"sidrce: error: {reason}\n"


@pytest.mark.aes
def test_a_bad_key_is_said_once_and_never_shown(
    tmp_path: Path, use_plugin: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_sidrce_collect_fast_enc import rows, sealed

    import dmca_aes_gcm.plugin as plugin

    use_plugin(plugin)
    path = tmp_path / "enc.jsonl"
    path.write_bytes(b"".join(sealed(rows(3), per=1)))
    short = base64.b64encode(b"s3cret-but-short").decode()  # base64, but not 32 bytes
    with app_server(path, no_key_env() | {"SIDRCE_AES_KEY": short}) as c:
        reason = unready_reason(c)
    assert "SIDRCE_AES_KEY" in reason
    err = capsys.readouterr().err
    assert err == f"sidrce: error: {reason}\n"
    assert short not in err and "s3cret" not in err
