"""`sidrce serve` keeps reading through bad lines and read errors, and /readyz and /metrics say
how the reading is going; bad settings stop it before it starts, in one line."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from live_server import answering_sidrce, free_port, wait_for
from prometheus_client.parser import text_string_to_metric_families

from sidrce.cli import main
from sidrce.collector import collect
from sidrce.server import Live

ENV = {"SIDRCE_POLL_SECONDS": "0.02", "SIDRCE_REFRESH_SECONDS": "0"}


def rec(i: int, d: str = "d") -> bytes:
    r = {"domain": d, "hypothesis": "H", "step": i, "intervention": "-"}
    r |= {"infra_cost_usd": 1.0 + i % 5, "qps": 2.0, "latency_p95_ms": 3.0}
    return json.dumps(r).encode() + b"\n"


def client(path: Path, env: dict[str, str] | None = None) -> contextlib.AbstractContextManager[httpx.Client]:
    """The app under uvicorn on a loopback port, once it answers (ready or not)."""
    return answering_sidrce(path, {**ENV, **(env or {})})


def metrics(c: httpx.Client) -> dict[str, float]:
    fams = text_string_to_metric_families(c.get("/metrics").text)
    return {s.name: s.value for f in fams for s in f.samples if not s.labels}


@pytest.mark.parametrize(
    "bad",
    [b'{"domain":"\\ud800","hypothesis":"H","step":1,"intervention":"-"}', b"[" * 200000 + b"]" * 200000],
    ids=["lone-surrogate", "deep"],
)
def test_a_bad_line_is_rejected_and_the_server_keeps_up(tmp_path: Path, bad: bytes) -> None:
    path = tmp_path / "ops.jsonl"
    path.write_bytes(bad + b"\n" + rec(1))  # first in the file: readiness too must get past it
    with client(path) as c:
        wait_for(lambda: c.get("/readyz").status_code == 200, "ready")
        assert c.get("/report").json() == collect([path])
        assert collect([path])["rejected"] == {"not_json": 1}
        with path.open("ab") as f:
            f.write(bad + b"\n" + rec(2) + rec(3))
        wait_for(lambda: c.get("/report").json()["count"] == 3, "lines after the bad ones")
        assert "sidrce_telemetry_records_total" in c.get("/metrics").text
        assert c.get("/readyz").status_code == 200


def test_a_report_that_cannot_be_built_is_a_fault_not_a_failed_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the file reads fine; building the report fails at every poll: shown once, unready, and
    # sidrce_telemetry_read_errors_total does not climb at the poll rate
    path = tmp_path / "ops.jsonl"
    path.write_bytes(rec(1))
    live = Live(path, baseline=None, lambda_asdpi=0.1, poll_seconds=0.01, refresh_seconds=0)

    def publish(**kw: Any) -> Any:
        raise RuntimeError("no report")

    monkeypatch.setattr(live, "_publish", publish)
    live.start()
    try:
        wait_for(lambda: live.fault is not None, "the fault")
        with path.open("ab") as f:
            f.write(rec(2))
        time.sleep(0.3)  # thirty polls or so
        assert live.health()["up"] is False and live.read_errors == 0
        assert "while publishing telemetry: RuntimeError: no report" in (live.problem() or "")
    finally:
        live.stop()
    assert capsys.readouterr().err.count("no report") == 1


def test_an_unexpected_error_is_shown_and_the_thread_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ops.jsonl"
    path.write_bytes(rec(1))
    live = Live(path, baseline=None, lambda_asdpi=0.1, poll_seconds=0.01, refresh_seconds=0)
    real = live.follower.poll
    calls = [0]

    def poll(*a: Any) -> int:
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("boom\nmore")
        return real(*a)

    monkeypatch.setattr(live.follower, "poll", poll)
    live.start()
    try:
        wait_for(lambda: live.fault is not None, "the fault")
        why = live.problem()
        assert why is not None and "RuntimeError: boom" in why and "\n" not in why
        with path.open("ab") as f:
            f.write(rec(2))
        wait_for(lambda: live.current.report["count"] == 2, "reading after the fault")
        assert live._thread is not None and live._thread.is_alive()
        assert live.health()["up"] is False and live.read_errors == 1
    finally:
        live.stop()
    assert capsys.readouterr().err.count("RuntimeError: boom") == 1
    # a reader thread that has died makes the server unready, whatever else it says
    dead = Live(path, baseline=None, lambda_asdpi=0.1)
    dead._thread = threading.Thread(target=lambda: None)
    dead._thread.start()
    dead._thread.join()
    dead.ready.set()
    dead.seen = True
    assert dead.problem() is not None and "thread" in dead.problem()  # type: ignore[operator]


def test_a_missing_file_is_not_ready_until_read(tmp_path: Path) -> None:
    path = tmp_path / "missing.jsonl"
    with client(path) as c:
        time.sleep(0.1)  # several polls
        r = c.get("/readyz")
        assert r.status_code == 503 and str(path) in r.json()["error"]
        assert metrics(c)["sidrce_telemetry_up"] == 0
        path.write_bytes(rec(1))
        r = wait_for(lambda: (x := c.get("/readyz")).status_code == 200 and x, "ready once the file exists")
        assert r.json()["records"] == 1


def test_read_errors_recover_and_show_in_metrics(tmp_path: Path) -> None:
    path = tmp_path / "ops.jsonl"
    path.write_bytes(rec(1))
    with client(path) as c:
        wait_for(lambda: c.get("/readyz").status_code == 200, "ready")
        m = metrics(c)
        assert m["sidrce_telemetry_up"] == 1 and m["sidrce_telemetry_read_errors_total"] == 0
        assert abs(m["sidrce_telemetry_last_read_timestamp_seconds"] - time.time()) < 60
        path.rename(tmp_path / "ops.jsonl.1")
        path.mkdir()  # replaced by a directory
        r = wait_for(lambda: (x := c.get("/readyz")).status_code == 503 and x, "the read error")
        assert str(path) in r.json()["error"]
        m = metrics(c)
        assert m["sidrce_telemetry_up"] == 0 and m["sidrce_telemetry_read_errors_total"] >= 1
        shutil.rmtree(path)
        path.write_bytes(rec(2) + rec(3))  # put back
        wait_for(lambda: c.get("/readyz").status_code == 200, "recovery")
        wait_for(lambda: c.get("/report").json()["count"] == 3, "the new file's records")
        assert metrics(c)["sidrce_telemetry_up"] == 1
        om = c.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}).text
        assert om.count("# EOF") == 1 and om.endswith("# EOF\n") and "sidrce_telemetry_up 1" in om


def test_copytruncate_regrown_past_the_offset_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "ops.jsonl"
    path.write_bytes(b"".join(rec(i) for i in range(10)))
    live = Live(path, baseline=None, lambda_asdpi=0.1)
    try:
        live.follower.poll()
        assert live._publish().report["count"] == 10
        # logrotate copytruncate, then the writer appends more than was there, between two polls
        with path.open("r+b") as f:
            f.truncate(0)
        with path.open("ab") as f:
            f.write(b"".join(rec(i, d="new") for i in range(12)))
        live.follower.poll()
        assert live._publish().report == collect([path])
        # plain growth is not taken for a truncation
        with path.open("ab") as f:
            f.write(rec(99, d="new"))
        live.follower.poll()
        assert live._publish().report == collect([path])
    finally:
        live.follower.close()


@pytest.mark.parametrize(
    ("env", "argv", "named"),
    [
        ({"SIDRCE_BASELINE": "1,2"}, [], "SIDRCE_BASELINE"),
        ({"SIDRCE_LAMBDA_ASDPI": "x"}, [], "SIDRCE_LAMBDA_ASDPI"),
        ({"SIDRCE_POLL_SECONDS": "abc"}, [], "SIDRCE_POLL_SECONDS"),
        ({"SIDRCE_POLL_SECONDS": "0"}, [], "SIDRCE_POLL_SECONDS"),
        ({"SIDRCE_POLL_SECONDS": "-1"}, [], "SIDRCE_POLL_SECONDS"),
        ({"SIDRCE_REFRESH_SECONDS": "-1"}, [], "SIDRCE_REFRESH_SECONDS"),
        ({}, ["--port", "99999"], "--port"),
    ],
)
def test_bad_settings_stop_serve_before_it_starts(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    argv: list[str],
    named: str,
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **k: pytest.fail("uvicorn started"))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    try:
        code = main(["serve", *argv])
    except SystemExit as exc:  # argparse
        code = exc.code  # type: ignore[assignment]
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err


def test_serve_prints_where_it_listens_and_never_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    import uvicorn

    ran: list[tuple[str, int]] = []

    def run(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        # uvicorn is handed the socket already listening, after the line was printed
        assert (
            capsys.readouterr().err
            == f"sidrce: serving http://127.0.0.1:{port}/dashboard (telemetry {path})\n"
        )
        ran.extend(s.getsockname()[:2] for s in sockets)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setenv("SIDRCE_TOKEN", "tok-s3cret-value")
    path = tmp_path / "ops.jsonl"
    port = free_port()
    assert main(["serve", "--telemetry", str(path), "--port", str(port)]) == 0
    assert ran == [("127.0.0.1", port)]
    assert "s3cret" not in capsys.readouterr().err


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for k in list(os.environ):
        if k.startswith("SIDRCE_"):
            monkeypatch.delenv(k)
    yield
