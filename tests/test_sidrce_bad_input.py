"""Hostile or broken input to the CLI: one line and a clear exit code, never a traceback.

Lone surrogates and deep nesting on every read path, damaged gzip, pipes and directories, control
characters in names, the gate's tolerance and its line, and the small CLI contract points.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest

from sidrce import collector as C
from sidrce.cli import main
from sidrce.collector import Aggregator, collect
from sidrce.fti import Baseline
from sidrce.validate import check_line


def rec(i: int, d: str = "d", **kw: Any) -> dict[str, Any]:
    return {
        "domain": d,
        "hypothesis": "H",
        "step": i,
        "intervention": "-",
        "infra_cost_usd": 1.0 + i % 3,
        "qps": 2.0,
        "latency_p95_ms": 3.0,
    } | kw


def line(r: dict[str, Any]) -> bytes:
    return json.dumps(r).encode() + b"\n"


GOOD = b"".join(line(rec(i)) for i in range(5000))
TAIL = b'"hypothesis":"H","step":1,"intervention":"-","infra_cost_usd":1,"qps":2,"latency_p95_ms":3}'
BAD = [
    b'{"domain":"\\ud800",' + TAIL,  # a lone high surrogate escape
    b'{"domain":"x\\uDC00y",' + TAIL,  # a lone low one, upper case
    b'{"domain":"\xed\xa0\x80",' + TAIL,  # a surrogate encoded as UTF-8 bytes (not UTF-8)
    b'{"domain":"a","x":{"\\udfff":1},' + TAIL,  # in an extra field's key
    b"[" * 200000 + b"]" * 200000,  # nesting deeper than any parser's stack
    b'{"domain":"a","x":' + b"[" * 200000 + b"]" * 200000 + b"," + TAIL,  # deep inside a record
]
PAIR = b'{"domain":"\\ud83d\\ude00",' + TAIL  # a valid surrogate pair: U+1F600


@pytest.mark.parametrize("path_", ["scanner", "msgspec", "exact"])
def test_lone_surrogates_and_deep_nesting_are_not_json_on_every_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path_: str
) -> None:
    if path_ != "scanner":
        monkeypatch.setattr(C, "SCANNER", None)
    if path_ == "exact":
        monkeypatch.setattr(C, "FAST", None)
    path = tmp_path / "t.jsonl"
    path.write_bytes(GOOD + b"\n".join(BAD) + b"\n" + PAIR + b"\n" + GOOD)
    report = collect([path])
    assert report["rejected"] == {"not_json": len(BAD)}
    assert report["count"] == 10001
    assert {g["domain"] for g in report["groups"]} == {"d", "\U0001f600"}
    lines = [e["line"] for e in report["rejected_examples"]]
    assert lines == list(range(5001, 5001 + len(BAD)))
    for bad in BAD:
        assert check_line(bad) is not None and check_line(bad)[0] == "not_json"  # type: ignore[index]
    assert check_line(PAIR) is None


def test_validate_collect_and_gate_agree_on_a_lone_surrogate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "surr.jsonl"
    path.write_bytes(BAD[0] + b"\n" + line(rec(1, d="ok")))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr()
    assert out.out == f"{path}:1: not_json (lone surrogate)\n"
    assert main(["collect", str(path)]) == 0
    assert "records 1  rejected 1 not_json=1" in capsys.readouterr().out
    assert main(["gate", str(path), "--fail-on", "FAIL"]) == 0
    assert capsys.readouterr().out == (
        "sidrce gate: PASS: fti_avg 1.0000, worst grade OK (1 records) (rejected: not_json=1)\n"
    )


def test_a_decrypted_record_with_a_lone_surrogate_is_not_json(tmp_path: Path, use_plugin: Any) -> None:
    from test_sidrce_collector import FakePlugin, envelope

    use_plugin(FakePlugin())
    path = tmp_path / "e.jsonl"
    path.write_bytes(envelope(0, [rec(1, d="\ud800"), rec(2)]))  # json.dumps writes "\ud800"
    report = collect([path], environ={"SIDRCE_AES_KEY": "k1"})
    assert report["count"] == 1 and report["rejected"] == {"not_json": 1}


def test_a_directory_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", str(tmp_path), "--max-fti", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"sidrce: error: {tmp_path}: cannot read telemetry")


def test_an_unexpected_crash_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ops.jsonl"
    path.write_bytes(line(rec(1)))

    def boom(self: Any, **kw: Any) -> Any:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(Aggregator, "report", boom)
    monkeypatch.delenv("SIDRCE_TRACEBACK", raising=False)
    assert main(["gate", str(path), "--max-fti", "1"]) == 2  # not 1: that is the gate's FAIL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "RuntimeError: boom" in err


def test_a_fifo_and_a_pipe_are_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = b"".join(line(rec(i)) for i in range(300)) + b"junk\n"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as f:
            f.write(body)

    t = threading.Thread(target=write)
    t.start()
    assert main(["collect", "--json", str(fifo)]) == 0
    t.join(timeout=10)
    report = json.loads(capsys.readouterr().out)
    assert report["count"] == 300 and report["rejected"] == {"not_json": 1}
    # `cat ops.jsonl | sidrce collect /dev/stdin`
    run = subprocess.run(
        [sys.executable, "-m", "sidrce.cli", "collect", "--json", "/dev/stdin"],
        input=body,
        capture_output=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["count"] == 300


def test_control_characters_in_names_are_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ctl.jsonl"
    path.write_bytes(line(rec(1, d="esc\x1b[31mRED")) + line(rec(2, d="nul\x00x")))
    assert main(["collect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x00" not in out
    assert "esc\\x1b[31mRED" in out and "nul\\x00x" in out
    assert main(["gate", str(path), "--fail-on", "WARN", "--baseline", "1,100,1"]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "esc\\x1b[31mRED/H" in out


def gzip_lost(tmp_path: Path) -> tuple[Path, bytes, str]:
    """The reviewer's file: a member cut at 90 % by a crash, then the next flush's member (which
    ends mid-line, a crash again)."""
    r = "".join(json.dumps(rec(i)) + "\n" for i in range(100))
    m = gzip.compress(r.encode(), mtime=0)
    cut = m[: int(len(m) * 0.9)]
    second = r[: r.index("\n", 900) + 20]
    path = tmp_path / "gzlost.jsonl"
    path.write_bytes(cut + gzip.compress(second.encode(), mtime=0))
    return path, cut, second


def test_a_cut_gzip_member_keeps_its_complete_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, cut, second = gzip_lost(tmp_path)
    # what the cut member holds, decoded on its own by zlib: its complete lines all count
    before = zlib.decompressobj(31).decompress(cut).count(b"\n")
    after = second.count("\n")  # the second member ends mid-line: that line is `truncated`
    assert 50 < before < 100
    report = collect([path])
    assert report["count"] == before + after
    assert report["rejected"] == {"truncated": 2}
    assert [e["line"] for e in report["rejected_examples"]] == [before + 1, before + after + 2]


@pytest.mark.parametrize("kind", ["garbage", "cut"])
def test_no_valid_gzip_is_a_rejected_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / "bad.jsonl.gz"
    if kind == "garbage":
        path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    else:  # a real gzip file cut to 60 bytes: its header and a little of its data
        body = b"".join(line(rec(i, d=f"d{i}")) for i in range(200))
        path.write_bytes(gzip.compress(body)[:60])
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{path}:1: truncated (") and "gzip" in out
    assert main(["collect", str(path)]) == 1  # nothing valid, something rejected


ULP = {"infra_cost_usd": 80.85000000000001, "qps": 1, "latency_p95_ms": 0.012987012987012988}


def test_max_fti_uses_the_grades_tolerance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ulp.jsonl"
    path.write_bytes(line(rec(1) | ULP))
    report = collect([path], baseline=Baseline(1.0, 1.0, 1.0))
    assert report["fti_avg"] == 1.0500000000000003 and report["fti_grade_worst"] == "WARN"
    assert main(["gate", str(path), "--baseline", "1,1,1", "--max-fti", "1.05"]) == 0
    assert "PASS" in capsys.readouterr().out
    # above the bound by more than the tolerance, but not at 4 decimals: enough digits to show it
    for bound in (1.0499999999, 1.04):
        assert main(["gate", str(path), "--baseline", "1,1,1", "--max-fti", repr(bound)]) == 1
        out = capsys.readouterr().out
        shown, given = re.search(r"fti_avg (\S+) > --max-fti (\S+) ", out).groups()  # type: ignore[union-attr]
        assert float(shown) > float(given) == bound, out


def test_the_gate_line_names_the_rejections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], use_plugin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_sidrce_collector import FakePlugin, envelope

    use_plugin(FakePlugin())
    path = tmp_path / "enc.jsonl"
    path.write_bytes(envelope(0, [rec(1)], tag="forged") + envelope(1, [rec(2)], tag="forged"))
    monkeypatch.setenv("SIDRCE_AES_KEY", "k1")
    assert main(["gate", str(path), "--max-fti", "2"]) == 1
    out = capsys.readouterr().out
    assert out == "sidrce gate: FAIL: no valid telemetry records: nothing to certify (rejected: tampered=2)\n"
    plain = tmp_path / "p.jsonl"
    plain.write_bytes(line(rec(1)) + b"{tampered\n")
    assert main(["gate", str(plain), "--max-fti", "2"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("(1 records) (rejected: not_json=1)")


def test_small_cli_points(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ops.jsonl"
    path.write_bytes(line(rec(1)))
    assert main(["gate", str(path)]) == 2
    assert capsys.readouterr().err == "sidrce: error: gate: give --max-fti and/or --fail-on\n"
    assert main(["collect", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "records 1  rejected 0"  # no trailing space
    with pytest.raises(SystemExit) as exit_:
        main(["collect", str(path), "--baseline", "1,2"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sidrce: error: argument --baseline: baseline '1,2'")
    # lines read, none of them a record (a CSV given by mistake): exit 1; an empty file: 0
    csv = tmp_path / "lab.csv"
    csv.write_bytes(b"a,b\n1,2\n3,4\n")
    assert main(["collect", str(csv)]) == 1
    assert capsys.readouterr().out.startswith("records 0  rejected 3 not_json=3")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert main(["collect", str(empty)]) == 0


def test_any_cut_point_and_read_size_keeps_every_complete_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    from sidrce import source

    members = [
        gzip.compress(b"".join(line(rec(i)) for i in range(k * 50, k * 50 + 50)), mtime=0) for k in range(8)
    ]
    path = tmp_path / "g.jsonl"
    for chunk in (3, 7, 64, 1000):  # reads that end anywhere, inside a member's header too
        monkeypatch.setattr(source, "CHUNK", chunk)
        path.write_bytes(b"".join(members))
        assert collect([path])["count"] == 400 and collect([path])["rejected"] == {}
    monkeypatch.setattr(source, "CHUNK", 8 << 20)
    rng = random.Random(7)
    for _ in range(40):
        k = rng.randrange(len(members))
        at = rng.randrange(11, len(members[k]) - 1)
        cut = list(members)
        cut[k] = cut[k][:at]
        path.write_bytes(b"".join(cut))
        kept = zlib.decompressobj(31).decompress(cut[k]).count(b"\n")  # zlib's own reading of the cut
        report = collect([path])
        assert (report["count"], report["rejected"]) == (350 + kept, {"truncated": 1}), (k, at)
