"""`sidrce serve` as operators run it: Ctrl-C, SIGHUP (logrotate) and SIGTERM, also under `uvicorn
sidrce.server:app`; settings that cannot work (a bad key, a blank token) stop it before the port is
bound, also under uvicorn, while a tool that only probes the module for `app` goes on; read errors
and all-rejected telemetry are said once on stderr."""

from __future__ import annotations

import base64
import contextlib
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import (
    FAST,
    ONE_RECORD,
    answering_sidrce,
    free_port,
    running_sidrce,
    serve_env,
    sidrce_cmd,
    wait_for,
)
from prometheus_client.parser import text_string_to_metric_families

from sidrce.server import Live, render_metrics


@pytest.fixture
def telemetry(tmp_path: Path) -> Path:
    path = tmp_path / "ops.jsonl"
    path.write_bytes(ONE_RECORD)
    return path


@contextlib.contextmanager
def foreground() -> Iterator[None]:
    """Start children as a terminal starts a command, with SIGINT at its default. Run in the
    background by a shell without job control (`.ci/run &`), these tests inherit SIGINT ignored,
    and so would the server: uvicorn, which handles SIGINT whatever the inherited setting, then
    shuts down cleanly and exits 0 instead of 130."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # exec resets it to default
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def serving(telemetry: Path, **extra: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`sidrce serve` in a process on a free port; yields its base URL once /readyz is 200."""
    with foreground():
        proc = subprocess.Popen(
            sidrce_cmd("serve", "--telemetry", str(telemetry), "--port", "0"),
            stderr=subprocess.PIPE,
            text=True,
            env=serve_env(**extra),
        )
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        assert ready, "sidrce serve printed nothing in 60 s"
        m = re.match(r"sidrce: serving (http://[^/]+)/", proc.stderr.readline())
        assert m
        wait_for(lambda: httpx.get(f"{m[1]}/readyz", timeout=5).status_code == 200, "ready", timeout=30)
        yield m[1], proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=20)


def test_ctrl_c_is_quiet_and_exit_130(telemetry: Path) -> None:
    with serving(telemetry) as (_, proc):
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        assert proc.stderr is not None
        assert proc.stderr.read() == ""  # no traceback, no uvicorn log


def test_sighup_is_harmless_and_sigterm_stops(telemetry: Path) -> None:
    with serving(telemetry) as (base, proc):
        proc.send_signal(signal.SIGHUP)
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 20)
        assert ready
        assert proc.stderr.readline() == f"sidrce: SIGHUP: checking {telemetry} for rotation now\n"
        # still serving, and still following the file
        with telemetry.open("ab") as f:
            f.write(ONE_RECORD)
        wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).json().get("records") == 2, "the new record")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == -signal.SIGTERM  # 143 in a shell, as documented
        assert proc.stderr.read() == ""


@pytest.mark.aes
@pytest.mark.parametrize(
    ("var", "value", "said"),
    [
        ("SIDRCE_AES_KEY", "s3cret!notbase64", "SIDRCE_AES_KEY: the key is not valid base64"),
        (
            "SIDRCE_AES_KEY",
            base64.b64encode(b"s3cret-but-short").decode(),
            "SIDRCE_AES_KEY: the key decodes to 16 bytes",
        ),
        ("SIDRCE_AES_KEYS", "a:s3cret!!", "SIDRCE_AES_KEYS: entry 1 (kid 'a') is not valid base64"),
        ("SIDRCE_TOKEN", " \n", "SIDRCE_TOKEN: only whitespace"),
        # no client can send it: every request would look unauthorised (and it is not echoed)
        ("SIDRCE_TOKEN", "s3cret-tök€n", "SIDRCE_TOKEN: holds a character a client cannot send"),
        ("SIDRCE_TOKEN", "s3cret two", "SIDRCE_TOKEN: holds a character a client cannot send"),
    ],
)
def test_settings_that_cannot_work_stop_serve_before_it_binds(
    telemetry: Path, var: str, value: str, said: str
) -> None:
    # the plaintext file would never have shown a bad key; the real CLI loads the aes-gcm plugin
    # by its entry point (tests turn that off)
    r = subprocess.run(
        sidrce_cmd("serve", "--telemetry", str(telemetry), "--port", str(free_port())),
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in serve_env(**{var: value}).items() if k != "DMCA_NO_ENTRYPOINTS"},
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"sidrce: error: {said}") and r.stderr.count("\n") == 1, r.stderr
    assert "s3cret" not in r.stderr and "serving" not in r.stderr


def test_uvicorn_module_app_with_a_bad_setting_is_one_line(telemetry: Path) -> None:
    cmd = [sys.executable, "-m", "uvicorn", "sidrce.server:app", "--port", str(free_port())]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=serve_env(SIDRCE_BASELINE="bad"))
    assert r.returncode == 2
    assert r.stderr.startswith("sidrce: error: SIDRCE_BASELINE: ") and r.stderr.count("\n") == 1, r.stderr


def test_uvicorn_module_app_with_good_settings_serves(telemetry: Path) -> None:
    with uvicorn_app(telemetry) as (base, proc):
        assert httpx.get(f"{base}/report", timeout=10).json()["count"] == 1


def test_a_token_from_a_secret_file_keeps_its_users_in(telemetry: Path) -> None:
    with running_sidrce(telemetry, FAST | {"SIDRCE_TOKEN": "t0ken-from-file\n"}) as base:
        ok = httpx.get(f"{base}/report", headers={"Authorization": "Bearer t0ken-from-file"}, timeout=10)
        assert ok.status_code == 200 and ok.json()["count"] == 1
        assert httpx.get(f"{base}/report", timeout=10).status_code == 401


def test_read_errors_are_said_once_and_again_after_recovery(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ops.jsonl"
    path.write_bytes(ONE_RECORD)
    with answering_sidrce(path, FAST) as c:
        wait_for(lambda: c.get("/readyz").status_code == 200, "ready")
        path.rename(tmp_path / "ops.jsonl.1")
        path.mkdir()
        wait_for(lambda: c.get("/readyz").status_code == 503, "the read error")
        time.sleep(0.3)  # many polls, each failing the same way
        path.rmdir()
        path.write_bytes(ONE_RECORD)
        wait_for(lambda: c.get("/readyz").status_code == 200, "recovery")
        path.unlink()
        path.mkdir()
        wait_for(lambda: c.get("/readyz").status_code == 503, "the read error again")
        time.sleep(0.2)
    err = capsys.readouterr().err
    assert err == f"sidrce: error: {path}: not a regular file\n" * 2, err


@pytest.mark.aes
def test_a_wrong_key_is_not_ready(
    tmp_path: Path, use_plugin: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_sidrce_collect_fast_enc import rows, sealed

    import dmca_aes_gcm.plugin as plugin

    use_plugin(plugin)
    path = tmp_path / "enc.jsonl"
    path.write_bytes(b"".join(sealed(rows(5), per=1)))
    other = base64.b64encode(bytes(32)).decode()  # valid, but not the writer's
    with answering_sidrce(path, FAST | {"SIDRCE_AES_KEY": other}) as c:
        r = wait_for(lambda: (x := c.get("/readyz")).status_code == 503 and "rejected" in x.text and x, "503")
        reason = r.json()["error"]
        assert "unknown_kid" in reason and "SIDRCE_AES_KEY" in reason
        fams = {f.name: f for f in text_string_to_metric_families(c.get("/metrics").text)}
        assert fams["sidrce_telemetry_up"].samples[0].value == 0
        time.sleep(0.2)
    err = capsys.readouterr().err
    assert err == f"sidrce: error: {reason}\n" and other not in err


def test_no_counters_until_the_first_complete_read(telemetry: Path) -> None:
    live = Live(telemetry, baseline=None, lambda_asdpi=0.1, poll_seconds=0.02, refresh_seconds=0)
    # what /metrics serves while the startup read is under way
    body, _ = render_metrics(live.current, "")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert "sidrce_telemetry_records" not in names and "sidrce_telemetry_rejected" not in names
    assert "sidrce_build_info" in names
    live.start()
    try:
        assert live.ready.wait(20)
        body, _ = render_metrics(live.current, "")
        fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
        assert fams["sidrce_telemetry_records"].samples[0].value == 1
    finally:
        live.stop()


def test_an_empty_file_still_publishes_its_zero_counters(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    live = Live(path, baseline=None, lambda_asdpi=0.1, poll_seconds=0.02, refresh_seconds=0)
    live.start()
    try:
        assert live.ready.wait(20)
        body, _ = render_metrics(live.current, "")
        fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
        assert fams["sidrce_telemetry_records"].samples[0].value == 0
        assert live.problem() is None
    finally:
        live.stop()


@pytest.mark.parametrize(
    ("command", "codes"), [("gate", ("0 PASS", "1 FAIL", "2 ")), ("serve", ("130", "143"))]
)
def test_help_lists_the_exit_codes(
    command: str, codes: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    from sidrce.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "exit codes:" in out and all(c in out for c in codes), out


def test_no_counters_while_the_file_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "later.jsonl"
    with answering_sidrce(path, FAST) as c:

        def families() -> dict[str, Any]:
            return {f.name: f for f in text_string_to_metric_families(c.get("/metrics").text)}

        wait_for(lambda: "no such file" in c.get("/readyz").text, "the missing file")
        time.sleep(0.1)  # several polls
        fams = families()
        assert fams["sidrce_telemetry_up"].samples[0].value == 0 and "sidrce_telemetry_records" not in fams
        path.write_bytes(ONE_RECORD * 3)  # its first read: counted from 3, not a jump from 0
        wait_for(lambda: "sidrce_telemetry_records" in families(), "the counters")
        assert families()["sidrce_telemetry_records"].samples[0].value == 3


@contextlib.contextmanager
def uvicorn_app(telemetry: Path, **extra: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`uvicorn sidrce.server:app` (not `sidrce serve`) in a process; yields its URL once ready."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "sidrce.server:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    env = serve_env(SIDRCE_TELEMETRY=str(telemetry), **extra)
    with foreground():
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, "uvicorn ended"
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
            return False

        wait_for(ready, "uvicorn sidrce.server:app", timeout=30)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=20)


def test_sighup_under_uvicorn_module_app_checks_the_file_at_once(telemetry: Path, tmp_path: Path) -> None:
    # one poll a minute: whatever is seen within the test was looked at because of SIGHUP
    with uvicorn_app(telemetry, SIDRCE_POLL_SECONDS="60") as (base, proc):
        assert proc.stderr is not None

        def records() -> int:
            return httpx.get(f"{base}/readyz", timeout=5).json()["records"]

        def hup() -> None:
            proc.send_signal(signal.SIGHUP)
            ready, _, _ = select.select([proc.stderr], [], [], 20)
            assert ready and proc.stderr is not None
            assert proc.stderr.readline() == f"sidrce: SIGHUP: checking {telemetry} for rotation now\n"

        # another file at the path (a copy with one record more, renamed into place)
        tmp = tmp_path / "ops.jsonl.tmp"
        shutil.copyfile(telemetry, tmp)
        with tmp.open("ab") as f:
            f.write(ONE_RECORD)
        tmp.rename(telemetry)
        time.sleep(0.3)
        assert records() == 1  # no poll yet
        hup()
        wait_for(lambda: records() == 2, "the replaced file")
        with telemetry.open("ab") as f:
            f.write(ONE_RECORD)
        hup()  # the handler stays for the next one
        wait_for(lambda: records() == 3, "the new record")
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200 and proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == -signal.SIGTERM
        assert proc.stderr.read() == ""
