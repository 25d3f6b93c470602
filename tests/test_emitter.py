"""The plain telemetry emitter: batching, flush triggers, gzip members, crash recovery, validation."""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dmca_core.errors import DataError, PluginError, UsageError
from dmca_core.telemetry import TelemetryEmitter, make_record, record_problem


def rec(step: int = 0, **extra: object) -> dict:
    return make_record(
        domain="direct_lab",
        hypothesis="WIMP",
        step=step,
        infra_cost_usd=0.01,
        qps=100.0,
        latency_p95_ms=4.5,
        run_id="run-1",
        **extra,
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_batches_flush_on_max_records_and_close(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    em = TelemetryEmitter(path, max_records=3, max_seconds=60)
    for i in range(7):
        em.emit(rec(i))
    # two full batches are on disk, the seventh record waits
    assert [r["step"] for r in lines(path)] == list(range(6))
    em.close()
    assert [r["step"] for r in lines(path)] == list(range(7))
    em.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        em.emit(rec(8))


def test_explicit_flush_and_context_manager(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TelemetryEmitter(path, max_seconds=60) as em:
        em.emit(rec(1))
        assert not path.read_bytes()
        em.flush()
        assert [r["step"] for r in lines(path)] == [1]
        em.emit(rec(2))
    assert [r["step"] for r in lines(path)] == [1, 2]
    assert path.read_bytes().endswith(b"\n") and b"\r" not in path.read_bytes()


def test_timer_flushes_without_new_records(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TelemetryEmitter(path, max_records=1000, max_seconds=0.1) as em:
        em.emit(rec(1))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not path.read_bytes():
            time.sleep(0.02)
        assert [r["step"] for r in lines(path)] == [1]


def test_gzip_appends_one_member_per_flush(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    with TelemetryEmitter(path, max_records=2, gzip=True) as em:
        for i in range(5):
            em.emit(rec(i))
    data = path.read_bytes()
    assert data.count(b"\x1f\x8b\x08") >= 3  # three flushes, three members
    text = gzip.decompress(data).decode("utf-8")
    assert [json.loads(x)["step"] for x in text.splitlines()] == list(range(5))


def test_gzip_file_readable_by_gzip_tool_after_kill(tmp_path: Path) -> None:
    # a writer killed between flushes leaves complete members: `gzip -dc` reads them all
    path = tmp_path / "t.jsonl.gz"
    code = f"""
        import os, signal
        from dmca_core.telemetry import TelemetryEmitter, make_record
        em = TelemetryEmitter({str(path)!r}, max_records=2, gzip=True)
        for i in range(5):
            em.emit(make_record(domain="d", hypothesis="h", step=i, infra_cost_usd=0, qps=0,
                                latency_p95_ms=0, run_id="r"))
        os.kill(os.getpid(), signal.SIGKILL)
    """
    if not hasattr(__import__("signal"), "SIGKILL") or shutil.which("gzip") is None:
        pytest.skip("needs SIGKILL and the gzip tool")
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=False)
    out = subprocess.run(["gzip", "-dc", str(path)], capture_output=True, check=True).stdout
    assert [json.loads(x)["step"] for x in out.splitlines()] == [0, 1, 2, 3]  # the 5th was unflushed


def test_writer_starts_a_new_line_after_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"domain":"direct_lab","hypo')  # a writer died mid-write
    with TelemetryEmitter(path) as em:
        em.emit(rec(1))
    raw = path.read_bytes().split(b"\n")
    assert raw[0] == b'{"domain":"direct_lab","hypo'
    assert json.loads(raw[1])["step"] == 1


def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    code = f"""
        import sys
        from dmca_core.telemetry import TelemetryEmitter, make_record
        w = int(sys.argv[1])
        with TelemetryEmitter({str(path)!r}, max_records=7) as em:
            for i in range(300):
                em.emit(make_record(domain="d", hypothesis="h" * 50, step=i, intervention=f"w{{w}}",
                                    infra_cost_usd=0, qps=0, latency_p95_ms=0, run_id="r"))
    """
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(w)]) for w in range(3)]
    # and two threads of this process on one emitter
    em = TelemetryEmitter(path, max_records=5)

    def work(t: int) -> None:
        for i in range(200):
            em.emit(rec(i, intervention=f"t{t}"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    em.close()
    assert all(p.wait(timeout=60) == 0 for p in procs)
    got = lines(path)  # every line parses
    by_writer: dict[str, list[int]] = {}
    for r in got:
        by_writer.setdefault(r["intervention"], []).append(r["step"])
    for w in range(3):
        assert by_writer[f"w{w}"] == list(range(300))
    for t in range(2):
        assert sorted(by_writer[f"t{t}"]) == list(range(200))


def _run_child(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_atexit_flushes_an_unclosed_emitter(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    res = _run_child(
        f"""
        from dmca_core.telemetry import TelemetryEmitter, make_record
        em = TelemetryEmitter({str(path)!r}, max_seconds=60)
        em.emit(make_record(domain="d", hypothesis="h", step=3, infra_cost_usd=0, qps=0,
                            latency_p95_ms=0, run_id="r"))
        """,
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert [r["step"] for r in lines(path)] == [3]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signal delivery")
def test_sigterm_flushes_and_chains_the_previous_handler(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    res = _run_child(
        f"""
        import os, signal, sys
        signal.signal(signal.SIGTERM, lambda s, f: (print("previous handler ran"), sys.exit(7)))
        from dmca_core.telemetry import TelemetryEmitter, make_record
        em = TelemetryEmitter({str(path)!r}, max_seconds=60)
        em.emit(make_record(domain="d", hypothesis="h", step=5, infra_cost_usd=0, qps=0,
                            latency_p95_ms=0, run_id="r"))
        os.kill(os.getpid(), signal.SIGTERM)
        """,
        tmp_path,
    )
    assert res.returncode == 7 and "previous handler ran" in res.stdout, res.stderr
    assert [r["step"] for r in lines(path)] == [5]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signal delivery")
def test_sigterm_with_default_handler_still_terminates(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    res = _run_child(
        f"""
        import os, signal
        from dmca_core.telemetry import TelemetryEmitter, make_record
        em = TelemetryEmitter({str(path)!r}, max_seconds=60)
        em.emit(make_record(domain="d", hypothesis="h", step=6, infra_cost_usd=0, qps=0,
                            latency_p95_ms=0, run_id="r"))
        os.kill(os.getpid(), signal.SIGTERM)
        print("not reached")
        """,
        tmp_path,
    )
    assert res.returncode == -15 and "not reached" not in res.stdout
    assert [r["step"] for r in lines(path)] == [6]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"qps": -1.0}, "qps"),
        ({"step": "1"}, "step"),
        ({"step": True}, "step"),
        ({"domain": ""}, "domain"),
        ({"ts": "2024-05-01 12:00:00"}, "ts"),
        ({"schema_version": 2}, "schema_version"),
        ({"causal_effect": math.nan}, "causal_effect"),
        ({"infra_cost_usd": math.inf}, "infra_cost_usd"),
        ({"fits": 1.5}, "fits"),
        ({"estimator": None}, "estimator"),
    ],
)
def test_emit_rejects_a_bad_record_naming_the_field(tmp_path: Path, change: dict, field: str) -> None:
    path = tmp_path / "t.jsonl"
    with TelemetryEmitter(path) as em:
        with pytest.raises(DataError, match=f"'{field}'"):
            em.emit({**rec(1), **change})
        em.emit(rec(2))  # the emitter goes on
    assert [r["step"] for r in lines(path)] == [2]


def test_emit_rejects_missing_fields_reserved_names_and_non_json(tmp_path: Path) -> None:
    with TelemetryEmitter(tmp_path / "t.jsonl") as em:
        bad = rec(1)
        del bad["latency_p95_ms"]
        with pytest.raises(DataError, match="'latency_p95_ms': required"):
            em.emit(bad)
        with pytest.raises(DataError, match="reserved"):
            em.emit({**rec(1), "ct": "x"})
        with pytest.raises(DataError, match="not JSON serializable"):
            em.emit({**rec(1), "extra": object()})


def test_bad_arguments_and_missing_encryptor_fail_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "t.jsonl"
    with pytest.raises(UsageError, match="encryption"):
        TelemetryEmitter(path, encryption="rot13")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="max_records"):
        TelemetryEmitter(path, max_records=0)
    with pytest.raises(PluginError, match="no encryptor plugin is installed"):
        TelemetryEmitter(path, encryption="line")
    assert not path.exists() and not path.parent.exists()


def test_make_record_normalises_numbers_and_drops_missing_metrics() -> None:
    r = make_record(
        domain="cosmology",
        hypothesis="DarkPhoton",
        step=np.int64(2),
        infra_cost_usd=np.float32(0.5),
        qps=np.float64(10),
        latency_p95_ms=3,
        run_id="r",
        causal_effect=float("nan"),  # a failed estimate: left out, not written as NaN
        ci_low=None,
        reliability_score=0.9,
        fits=np.int64(4),
        estimator="fallback",
    )
    assert type(r["step"]) is int and type(r["infra_cost_usd"]) is float and type(r["fits"]) is int
    assert "causal_effect" not in r and "ci_low" not in r and r["reliability_score"] == 0.9
    assert r["intervention"] == "-" and r["schema_version"] == 1 and r["ts"].endswith("Z")
    assert record_problem(r) is None
    json.dumps(r, allow_nan=False)


def test_emitter_holds_records_when_the_sink_write_fails(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "t.jsonl"
    em = TelemetryEmitter(path, max_seconds=60)
    em.emit(rec(1))
    real = em._handle.write
    calls = {"n": 0}

    def flaky(data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            real(data[:10])  # a partial write, then the disk fills
            raise OSError(28, "No space left on device")
        real(data)

    monkeypatch.setattr(em._handle, "write", flaky)
    with pytest.raises(OSError):
        em.flush()
    em.emit(rec(2))
    em.close()
    raw = path.read_bytes().split(b"\n")
    # the torn prefix stays on its own line (a collector skips it); no record is lost
    assert [json.loads(x)["step"] for x in raw[1:] if x] == [1, 2]


def test_unicode_is_written_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TelemetryEmitter(path) as em:
        em.emit({**rec(1), "hypothesis": "Axion-ℏ"})
    assert "Axion-ℏ".encode() in path.read_bytes()
    assert lines(path)[0]["hypothesis"] == "Axion-ℏ"
    assert os.path.getsize(path) == len(path.read_bytes())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX")
def test_a_forked_child_never_writes_the_parents_records(tmp_path: Path) -> None:
    import warnings

    from dmca_core.telemetry import shutdown

    path = tmp_path / "t.jsonl"
    em = TelemetryEmitter(path, max_records=100)
    em.emit(rec(0))
    em.emit(rec(1))  # waiting in the buffer when the process forks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: nothing runs here
        pid = os.fork()
    if pid == 0:  # the child: refused writes, then its exit hook and a `with` exit do nothing
        code = 0
        try:
            em.emit(rec(9))
            code = 3
        except UsageError as exc:
            code = 0 if "forked child" in str(exc) else 4
        try:
            em.flush()
            code = 5
        except UsageError:
            pass
        shutdown._close_all()
        em.close()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    em.emit(rec(2))
    em.close()
    assert [r["step"] for r in lines(path)] == [0, 1, 2]
