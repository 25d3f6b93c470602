"""The collector's input handling: bad lines, gzip members, crashes, envelopes, `sidrce validate`."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dmca_core import hookimpl
from dmca_core.errors import TelemetryRejected
from dmca_core.interfaces import Rejection
from sidrce.cli import main
from sidrce.collector import Aggregator, collect

ROOT = Path(__file__).resolve().parents[1]


def rec(i: int, d: str = "d", h: str = "h") -> dict[str, Any]:
    return {
        "domain": d,
        "hypothesis": h,
        "step": i,
        "intervention": "-",
        "infra_cost_usd": 1.0 + i,
        "qps": 10.0 + i,
        "latency_p95_ms": 5.0 + i,
        "ts": f"2024-01-01T00:00:{i % 60:02d}.000Z",
    }


def line(r: Any) -> bytes:
    return json.dumps(r).encode() + b"\n"


def test_bad_lines_are_counted_by_reason_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_schema = rec(3)
    bad_schema["qps"] = -1
    body = (
        line(rec(1))
        + b"not json\n"
        + line(rec(2))
        + line(bad_schema)
        + b"\n"
        + b"[1, 2]\n"
        + b'{"qps": NaN}\n'
        + line(rec(4))
        + b'{"domain": "d", "hyp'
    )  # crash mid-line
    path = tmp_path / "t.jsonl"
    path.write_bytes(body)
    report = collect([path])
    assert report["count"] == 3
    assert report["rejected"] == {"not_json": 2, "schema": 2, "truncated": 1}
    where = [(e["line"], e["reason"]) for e in report["rejected_examples"]]
    assert where == [(2, "not_json"), (4, "schema"), (6, "schema"), (7, "not_json"), (9, "truncated")]
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [o.split(" ")[0] for o in out] == [f"{path}:{n}:" for n in (2, 4, 6, 7, 9)]
    assert out[1].startswith(f"{path}:4: schema") and "qps" in out[1]


def test_validate_script_and_clean_file(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_bytes(line(rec(1)) + line(rec(2)))
    script = ROOT / "scripts" / "validate_telemetry.py"
    ok = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    path.write_bytes(line(rec(1)) + b"{oops\n")
    bad = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stdout.startswith(f"{path}:2: not_json")


def test_a_complete_last_line_without_newline_counts(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(line(rec(1)) + line(rec(2))[:-1])
    assert collect([path])["count"] == 2


def test_fast_and_slow_paths_agree(tmp_path: Path) -> None:
    rows = [rec(i, d="abc"[i % 3], h="xy"[i % 2]) for i in range(5000)]
    fast = tmp_path / "fast.jsonl"
    fast.write_bytes(b"".join(line(r) for r in rows))
    # leading spaces refuse the block fast path: every line goes through json.loads + the exact check
    slow = tmp_path / "slow.jsonl"
    slow.write_bytes(b"".join(b" " + line(r) for r in rows))
    a, b = collect([fast]), collect([slow])
    assert a == b and a["count"] == 5000


def test_records_spanning_lines_are_not_merged(tmp_path: Path) -> None:
    # decode_lines alone would read these 3 lines as 2 records; per-line reading rejects 2 lines
    r1, r2 = json.dumps(rec(1)), json.dumps(rec(2))
    split = r1.index(", ")
    body = (r1[: split + 1] + "\n" + r1[split + 2 :] + "\n" + r2 + r2 + "\n").encode()
    path = tmp_path / "t.jsonl"
    path.write_bytes(line(rec(0)) + body)
    report = collect([path])
    assert report["count"] == 1 and report["rejected"] == {"not_json": 3}


def test_gzip_members_and_a_crash(tmp_path: Path) -> None:
    rows = [rec(i) for i in range(30)]
    members = [gzip.compress(b"".join(line(r) for r in rows[i : i + 10])) for i in (0, 10, 20)]
    path = tmp_path / "t.jsonl.gz"
    # member 2 cut short by a crash, then the next flush appended member 3
    path.write_bytes(members[0] + members[1][: len(members[1]) // 2] + members[2])
    report = collect([path])
    assert report["rejected"].get("truncated") == 1
    assert 20 <= report["count"] < 30
    # a partial member at the very end: its complete lines count, the cut line is truncated
    path.write_bytes(members[0] + members[1][:-12])
    report = collect([path])
    assert report["count"] >= 10 and report["count"] + report["rejected"].get("truncated", 0) <= 20
    path.write_bytes(members[0] + members[1] + members[2])
    assert collect([path])["count"] == 30


# --- envelopes, with a stand-in encryptor (the AES plugin has its own tests) -------------------
class FakeReader:
    def __init__(self, environ: Any) -> None:
        self.key = environ.get("SIDRCE_AES_KEY")
        self.seen: list[int] = []

    def feed(self, obj: Any, line: int) -> list[dict[str, Any]]:
        if not self.key:
            raise TelemetryRejected("no_key", "no key")
        if obj["tag"] != self.key:
            raise TelemetryRejected("tampered", "tag mismatch")
        self.seen.append(obj["seq"])
        return [json.loads(r) for r in obj["records"]]

    def finish(self) -> list[Rejection]:
        missing = sorted(set(range(max(self.seen, default=-1) + 1)) - set(self.seen))
        return [Rejection("missing_seq", 0, f"seq {s}") for s in missing]


class FakeEncryptor:
    name = "fake"

    def writer(self, mode: str, *, gzip: bool, environ: Any) -> Any:
        raise NotImplementedError

    def reader(self, *, environ: Any) -> FakeReader:
        return FakeReader(environ)

    def is_envelope(self, obj: Any) -> bool:
        return "fake_env" in obj


class FakePlugin:
    @hookimpl
    def register_encryptors(self, register: Any) -> None:
        register(FakeEncryptor())


def envelope(seq: int, rows: list[dict[str, Any]], tag: str = "k1") -> bytes:
    return line({"fake_env": 1, "seq": seq, "tag": tag, "records": [json.dumps(r) for r in rows]})


def test_envelopes_plaintext_and_reader_rejections(tmp_path: Path, use_plugin: Any) -> None:
    use_plugin(FakePlugin())
    path = tmp_path / "enc.jsonl"
    path.write_bytes(
        envelope(0, [rec(1), rec(2)])
        + line(rec(3))
        + envelope(1, [rec(4)], tag="forged")
        + envelope(3, [rec(5)])
    )
    env = {"SIDRCE_AES_KEY": "k1"}
    report = collect([path], environ=env)
    assert report["count"] == 3
    assert report["rejected"] == {"missing_seq": 2, "tampered": 1, "unexpected_plaintext": 1}
    allowed = collect([path], environ=env, allow_plaintext=True)
    assert allowed["count"] == 4 and "unexpected_plaintext" not in allowed["rejected"]
    # a bad record inside a good envelope is a schema rejection
    bad = rec(6)
    del bad["qps"]
    path.write_bytes(envelope(0, [bad, rec(7)]))
    assert collect([path], environ=env)["rejected"] == {"schema": 1}


def test_encrypted_without_key_is_one_clear_error(
    tmp_path: Path, use_plugin: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_plugin(FakePlugin())
    monkeypatch.delenv("SIDRCE_AES_KEY", raising=False)
    monkeypatch.delenv("SIDRCE_AES_KEYS", raising=False)
    path = tmp_path / "enc.jsonl"
    path.write_bytes(envelope(0, [rec(1)]))
    assert main(["collect", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "SIDRCE_AES_KEY" in err and "SIDRCE_AES_KEYS" in err and f"{path}:1" in err


def test_aggregator_is_independent_of_how_bytes_arrive(tmp_path: Path) -> None:
    from sidrce.source import Follower

    rows = [rec(i, d="ab"[i % 2]) for i in range(200)]
    data = b"".join(line(r) for r in rows)
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"")
    agg = Aggregator()
    fol = Follower(path, lambda gen: agg.file(str(path)))
    with path.open("ab") as f:
        for i in range(0, len(data), 997):  # cuts lines anywhere
            f.write(data[i : i + 997])
            f.flush()
            fol.poll()
    fol.close()
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(data)
    assert agg.report() == collect([whole]) | {"rejected_examples": []}


@pytest.mark.aes
@pytest.mark.parametrize("mode", ["line", "batch"])
def test_real_aes_envelopes_give_the_plain_report(tmp_path: Path, use_plugin: Any, mode: str) -> None:
    import base64
    import os

    import dmca_aes_gcm.plugin as aes

    use_plugin(aes)
    from dmca_core.plugins import get_encryptor

    env = {"SIDRCE_AES_KEY": base64.b64encode(os.urandom(32)).decode()}
    rows = [rec(i, d="ab"[i % 2]) for i in range(50)]
    writer = get_encryptor().writer(mode, gzip=False, environ=env)
    enc = tmp_path / "enc.jsonl"
    enc.write_bytes(
        writer.seal([line(r)[:-1] for r in rows[:25]], False)
        + writer.seal([line(r)[:-1] for r in rows[25:]], True)
    )
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(b"".join(line(r) for r in rows))
    assert collect([enc], environ=env) == collect([plain])
    with enc.open("ab") as f:
        f.write(line(rec(99)))
    assert collect([enc], environ=env)["rejected"] == {"unexpected_plaintext": 1}


def test_a_byte_that_is_not_utf8_and_a_number_past_a_double_are_rejected_not_fatal(tmp_path: Path) -> None:
    good = [line(rec(i)) for i in range(6000)]  # more than one fast slice
    huge = line(rec(1)).replace(b'"qps": 11.0', b'"qps": 1' + b"0" * 400)
    body = good[:10] + [b'{"domain": "d\xff", "hypothesis": "h"}\n', huge] + good[10:]
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(body))
    report = collect([path])
    assert report["count"] == 6000
    assert report["rejected"] == {"not_json": 1, "schema": 1}
    assert [(e["line"], e["reason"]) for e in report["rejected_examples"]] == [
        (11, "not_json"),
        (12, "schema"),
    ]
    assert "beyond the range of a double" in report["rejected_examples"][1]["detail"]
