"""The collector's speed paths give the exact answer: two-process reading, learned decoders, record
checks of decrypted records, and the server's start-over after truncation."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest
from test_sidrce_collector import FakePlugin, envelope, line, rec

from sidrce import collector as C
from sidrce.collector import Aggregator, collect

pytestmark = pytest.mark.usefixtures("plain_reader")  # each fast path in turn


def rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r = rec(i, d="abcd"[rng.randrange(4)], h="xy"[i % 2])
        r["infra_cost_usd"] = rng.uniform(0, 5)
        r["intervention"] = "-" if i % 7 else f"do(x={i % 3})"
        if r["domain"] in "ab" and i % 5:  # North Star fields on some groups, some left out
            r["causal_effect"] = rng.gauss(0, 1)
            r["ci_low"], r["ci_high"] = r["causal_effect"] - 1, r["causal_effect"] + 1
            r["reliability_score"] = rng.randrange(5) / 4
            if i % 3:
                r["SR9"], r["DI2"] = rng.randrange(10) / 9, rng.random()
        out.append(r)
    return out


def split_and_whole(
    path: Path, monkeypatch: pytest.MonkeyPatch, *, merged: bool, **kw: Any
) -> tuple[dict, dict]:
    """The report read in two processes, and read in one. ``merged``: whether the child's half is
    expected to be used (False: it met an envelope, or the first half was encrypted)."""
    monkeypatch.setattr(C, "PARALLEL_MIN_BYTES", 1)
    # threads left idle by other tests would turn the two-process path off; they hold no lock
    # the child needs
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    assert Aggregator()._split_point(path) is not None
    merges = []
    real_merge = Aggregator._merge
    monkeypatch.setattr(Aggregator, "_merge", lambda self, *a: merges.append(1) or real_merge(self, *a))
    shared = []  # the child's columns come back through shared memory
    real_columns = C._Shared.columns
    monkeypatch.setattr(C._Shared, "columns", lambda self, n: shared.append(n) or real_columns(self, n))
    two = collect([path], **kw)
    assert len(merges) == int(merged)
    assert len(shared) == int(merged)
    monkeypatch.setattr(C, "PARALLEL_MIN_BYTES", 1 << 62)
    one = collect([path], **kw)
    return two, one


def test_two_processes_give_the_one_process_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = rows(3000)
    bad = dict(good[2500])
    bad["SR9"] = "high"
    body = b"".join(line(r) for r in good[:100]) + b"not json\n" + b"".join(line(r) for r in good[100:2500])
    # second half: bad records (more than the examples kept), a blank line, a cut last line
    body += b"".join(line(bad) for _ in range(30)) + b"\n" + b"".join(line(r) for r in good[2500:])
    body += line(good[0])[:-20]
    path = tmp_path / "t.jsonl"
    path.write_bytes(body)
    two, one = split_and_whole(path, monkeypatch, merged=True)
    assert two == one
    assert one["rejected"] == {"not_json": 1, "schema": 30, "truncated": 1}
    assert one["rejected_examples"][1]["line"] == 2502  # a line of the second half, counted from 1
    assert one["count"] == 3000


@pytest.mark.parametrize("how", ["no shared memory", "more records than it can hold"])
def test_columns_come_through_the_pipe_when_shared_memory_cannot_hold_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setattr(C, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    if how == "no shared memory":
        monkeypatch.setattr(C._Shared, "for_bytes", classmethod(lambda cls, nbytes: None))
    else:  # as when the file grew after it was measured
        monkeypatch.setattr(C, "_MIN_RECORD", 1 << 40)
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(line(r) for r in rows(2000, seed=6)))
    merged, shared = [], []
    real_merge = Aggregator._merge
    monkeypatch.setattr(Aggregator, "_merge", lambda self, *a: merged.append(1) or real_merge(self, *a))
    monkeypatch.setattr(C._Shared, "columns", lambda self, n: shared.append(n))
    two = collect([path])
    assert merged == [1] and shared == []  # the child's half is used, its columns came by pipe
    monkeypatch.setattr(C, "PARALLEL_MIN_BYTES", 1 << 62)
    assert two == collect([path])


def test_envelopes_in_the_second_half_are_read_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_plugin: Any
) -> None:
    use_plugin(FakePlugin())
    env = {"SIDRCE_AES_KEY": "k1"}
    good = rows(2000, seed=1)
    plain_then_env = b"".join(line(r) for r in good) + envelope(0, good[:3]) + envelope(2, good[3:5])
    path = tmp_path / "a.jsonl"
    path.write_bytes(plain_then_env)
    two, one = split_and_whole(path, monkeypatch, merged=False, environ=env)
    assert two == one and one["rejected"] == {"missing_seq": 1} and one["count"] == 2005
    # an encrypted file with plaintext after the middle: still one verdict per line, in order
    enc_then_plain = b"".join(envelope(i, good[i : i + 1]) for i in range(1000))
    enc_then_plain += b"".join(line(r) for r in good[:1000])
    path.write_bytes(enc_then_plain)
    two, one = split_and_whole(path, monkeypatch, merged=False, environ=env)
    assert two == one and one["rejected"] == {"unexpected_plaintext": 1000}


def test_learned_decoder_takes_new_values_and_stays_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the msgspec path (what reads a block the compiled scanner gives up, or all where it is not
    # built): many slices, a new domain late in the file, then so many run ids that the field is
    # unlisted
    monkeypatch.setattr(C, "SCANNER", None)
    good = rows(3 * C.FAST_LINES, seed=2)
    for i, r in enumerate(good):
        if i > 2 * C.FAST_LINES:
            r["domain"] = "late"
            r["run_id"] = f"r{i % (C.LITERALS_MAX + 5)}"
    bad = dict(good[-5])
    bad["run_id"] = ""
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(line(r) for r in good) + line(bad))
    agg = Aggregator().read([path])
    report = agg.report()
    assert report["count"] == len(good) and report["rejected"] == {"schema": 1}
    assert "run_id" in agg._lit_off and "late" in agg._lit["domain"]
    slow = tmp_path / "slow.jsonl"  # leading spaces: every line through json.loads + the exact check
    slow.write_bytes(b"".join(b" " + line(r) for r in good) + b" " + line(bad))
    exact = collect([slow])
    for ex in exact["rejected_examples"]:
        ex["file"] = str(path)
    assert exact == report


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"qps": float("nan")},
        {"SR9": float("inf")},
        {"latency_p95_ms": float("-inf")},
        {"fits": 3.0},
        {"ts": "2024-02-30T00:00:00Z"},
        {"ts": "2024-02-29T00:00:00Z"},
        {"step": True},
        {"estimator": ""},
    ],
)
def test_decrypted_records_get_the_exact_verdict(tmp_path: Path, use_plugin: Any, change: dict) -> None:
    from sidrce.validate import problem

    use_plugin(FakePlugin())
    r = rows(1)[0] | change
    path = tmp_path / "e.jsonl"
    # Python's json writes NaN/Infinity, and the fake reader's json.loads reads them back
    path.write_bytes(line({"fake_env": 1, "seq": 0, "tag": "k1", "records": [json.dumps(r)]}))
    report = collect([path], environ={"SIDRCE_AES_KEY": "k1"})
    expected_ok = problem(r) is None
    assert report["count"] == int(expected_ok)
    assert report["rejected"] == ({} if expected_ok else {"schema": 1})


def test_server_starts_over_after_truncation_but_keeps_rotated_lines(tmp_path: Path) -> None:
    from sidrce.server import Live

    path = tmp_path / "ops.jsonl"
    path.write_bytes(b"".join(line(r) for r in rows(50)))
    live = Live(path, baseline=None, lambda_asdpi=0.1)
    live.follower.drain_seconds = 0  # go to the new file at once (draining: test_sidrce_rotation.py)
    try:
        live.follower.poll()
        assert live._publish().report["count"] == 50
        path.rename(tmp_path / "ops.jsonl.1")
        path.write_bytes(b"".join(line(r) for r in rows(5, seed=3)))
        live.follower.poll()
        live.follower.poll()
        assert live._publish().report["count"] == 55  # rotation: the old file's lines still count
        with path.open("wb") as f:
            f.write(line(rows(1, seed=4)[0]))
        live.follower.poll()
        pub = live._publish()
        assert pub.report == collect([path])  # truncation: what `sidrce collect FILE` says now
        assert pub.version != (0, 0)
    finally:
        live.follower.close()


def test_a_child_that_dies_leaves_its_half_to_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(line(r) for r in rows(2000, seed=5)) + b"oops\n")
    monkeypatch.setattr(C, "_second_half", lambda *args: os._exit(3))
    two, one = split_and_whole(path, monkeypatch, merged=False)
    assert two == one and one["count"] == 2000 and one["rejected"] == {"not_json": 1}


@pytest.mark.parametrize("digits", [0, 1, 3, 6, 9])
def test_vectorised_times_match_the_exact_reading(digits: int) -> None:
    from sidrce import validate as V

    rng = random.Random(digits)
    values = []
    for _ in range(3000):
        y, mo = rng.randrange(1700, 2250), rng.randrange(1, 13)
        d = rng.randrange(1, 29 + (mo == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)))
        frac = "." + "".join(rng.choice("0123456789") for _ in range(digits)) if digits else ""
        h, mi, s = rng.randrange(24), rng.randrange(60), rng.randrange(60)
        values.append(f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}Z")
    got = V.ts_epochs(values)
    assert got is not None
    assert list(got) == [V.ts_epoch(v) for v in values]
    assert V.ts_epochs([*values[:5], values[5].replace("T", " ")]) is None  # one bad separator
    assert V.ts_epochs([*values[:5], values[5][:5] + "02-30" + values[5][10:]]) is None  # no Feb 30
    # beyond 2^53 microseconds from 1970 one float division is no longer exact: the exact path
    assert V.ts_epochs([*values[:5], "2300" + values[5][4:]]) is None
