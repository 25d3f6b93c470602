"""AES-GCM telemetry under attack: bit flips, swapped, deleted, spliced and replayed lines."""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.aes

ENV = {"SIDRCE_AES_KEY": base64.b64encode(bytes(range(32))).decode()}


@pytest.fixture
def enc(use_plugin):
    import dmca_aes_gcm.plugin as plugin

    use_plugin(plugin)
    return plugin.ENCRYPTOR


def write(
    path: Path, mode: str, n: int, max_records: int, *, gz: bool = False, close: bool = True
) -> list[bytes]:
    from dmca_core.telemetry import TelemetryEmitter, make_record

    em = TelemetryEmitter(path, encryption=mode, environ=ENV, max_records=max_records, gzip=gz)
    for i in range(n):
        em.emit(
            make_record(
                domain="cosmology",
                hypothesis="DarkPhoton",
                step=i,
                infra_cost_usd=1.5,
                qps=9.0,
                latency_p95_ms=2.0,
                run_id="r",
                causal_effect=-0.125,
            )
        )
    if close:
        em.close()
    else:
        em.flush()
    return path.read_bytes().splitlines(keepends=True)


def scan(lines: list[bytes], enc, closed: bool = False):
    from dmca_aes_gcm.scan import scan as _scan

    return _scan(b"".join(lines), enc, ENV, closed=closed)


def steps(result) -> list[int]:
    return [r["step"] for r in result.records]


@pytest.mark.parametrize(("mode", "picks"), [("line", (0, 3, 6)), ("batch", (0, 3))])
def test_every_single_bit_flip_is_rejected(tmp_path: Path, enc, mode: str, picks: tuple[int, ...]) -> None:
    from dmca_core.errors import TelemetryRejected

    lines = write(tmp_path / "t.jsonl", mode, 6 if mode == "line" else 10, 3)
    assert len(lines) == (7 if mode == "line" else 4)
    reasons: Counter[str] = Counter()
    flips = 0
    for idx in picks:
        body = lines[idx].rstrip(b"\n")
        buf = bytearray(body)
        # one fresh reader per sampled line: a flip that authenticated would show up as records
        reader = enc.reader(environ=ENV)
        for pos in range(len(buf)):
            for bit in range(8):
                buf[pos] ^= 1 << bit
                flips += 1
                try:
                    obj = json.loads(bytes(buf))
                except (ValueError, UnicodeDecodeError):
                    reasons["not_json"] += 1
                else:
                    if not enc.is_envelope(obj):
                        reasons["unexpected_plaintext"] += 1
                    else:
                        with pytest.raises(TelemetryRejected) as info:
                            reader.feed(obj, idx + 1)
                        reasons[info.value.reason] += 1
                buf[pos] ^= 1 << bit
        # the line's own newline: flips merge it with the next line or split nothing; the file as a
        # whole must then report a problem and never yield a record that was not written
        clean = steps(scan(lines, enc))
        nl = len(body)
        for bit in range(8):
            mutated = list(lines)
            raw = bytearray(lines[idx])
            raw[nl] ^= 1 << bit
            mutated[idx] = bytes(raw)
            got = scan(mutated, enc)
            assert got.rejections, (idx, bit)
            assert set(steps(got)) <= set(clean)
    assert sum(reasons.values()) == flips
    assert reasons["tampered"] > flips // 2  # most flips reach authentication and fail it
    assert set(reasons) <= {"not_json", "tampered", "unknown_kid", "unexpected_plaintext"}


def test_line_mode_swap_delete_replay_truncate(tmp_path: Path, enc) -> None:
    lines = write(tmp_path / "t.jsonl", "line", 6, 2)  # seq 0..5 records, 6 the end marker
    assert [r.reason for r in scan(lines, enc).rejections] == []

    swapped = lines[:2] + [lines[3], lines[2]] + lines[4:]
    got = scan(swapped, enc)
    assert got.reasons() == ["tampered"] and "out of order" in got.rejections[0].detail
    assert got.rejections[0].line == 4

    deleted = lines[:2] + lines[3:]
    got = scan(deleted, enc)
    assert got.reasons() == ["missing_seq"] and "seq 2 missing" in got.rejections[0].detail
    assert steps(got) == [0, 1, 3, 4, 5]

    replayed = lines[:4] + [lines[1]] + lines[4:]
    got = scan(replayed, enc)
    assert got.reasons() == ["tampered"] and "replayed" in got.rejections[0].detail
    assert steps(got) == list(range(6))

    tail_cut = lines[:5] + lines[6:]  # the last record removed, the end marker kept
    got = scan(tail_cut, enc)
    assert got.reasons() == ["truncated"]

    after_final = lines + [lines[2]]
    assert scan(after_final, enc).reasons() == ["tampered"]

    no_end = lines[:6]  # the end marker removed: indistinguishable from a live writer ...
    got = scan(no_end, enc)
    assert got.rejections == [] and [s.records for s in got.open_streams] == [6]
    # ... unless the reader is told every writer has finished
    assert scan(no_end, enc, closed=True).reasons() == ["truncated"]


def test_batch_mode_swap_delete_truncate(tmp_path: Path, enc) -> None:
    lines = write(tmp_path / "t.jsonl", "batch", 10, 3, gz=True)  # batches 3,3,3 then final with 1
    assert len(lines) == 4 and scan(lines, enc).rejections == []

    got = scan([lines[0], lines[2], lines[1], lines[3]], enc)
    assert got.reasons() == ["tampered"] and "out of order" in got.rejections[0].detail

    got = scan([lines[0], lines[2], lines[3]], enc)
    assert got.reasons() == ["missing_seq"] and "batch 1 missing" in got.rejections[0].detail

    got = scan([lines[0], lines[1], lines[3]], enc)  # the last full batch before final
    assert got.reasons() == ["truncated"]

    last_deleted = lines[:3]  # the final batch of a closed stream
    assert scan(last_deleted, enc, closed=True).reasons() == ["truncated"]
    got = scan(last_deleted, enc)
    assert got.rejections == [] and [s.records for s in got.open_streams] == [9]

    got = scan(lines + [lines[1]], enc)
    assert got.reasons() == ["tampered"]


@pytest.mark.parametrize("mode", ["line", "batch"])
def test_splicing_from_another_stream(tmp_path: Path, enc, mode: str) -> None:
    host = write(tmp_path / "a.jsonl", mode, 6, 2)
    other = write(tmp_path / "b.jsonl", mode, 6, 2)
    # as is: it stays a line of its own stream, which shows up with a gap and without its end
    got = scan(host[:2] + [other[1]] + host[2:], enc)
    assert got.reasons() == ["missing_seq"]
    assert len(got.open_streams) == 1
    # re-labelled to pass for the host stream's line: authentication fails
    obj, target = json.loads(other[1]), json.loads(host[1])
    counter = "seq" if mode == "line" else "b"
    obj["sid"], obj[counter] = target["sid"], target[counter]
    got = scan(host[:1] + [json.dumps(obj, separators=(",", ":")).encode() + b"\n"] + host[2:], enc)
    assert got.reasons() == ["tampered", "missing_seq"]
    assert "authentication failed" in got.rejections[0].detail


def test_plaintext_records_are_refused_where_a_key_is_set(tmp_path: Path, enc) -> None:
    from sidrce.collector import collect

    # anyone can write a plaintext record; with a key set, SIDRCE expects every record sealed
    sealed = write(tmp_path / "s.jsonl", "line", 3, 1)
    plain = write(tmp_path / "p.jsonl", "none", 5000, 1000)  # long enough for the fast paths
    forged = tmp_path / "forged.jsonl"
    forged.write_bytes(b"".join(plain[:1] + sealed))
    got = collect([forged], environ=ENV)
    assert got["count"] == 3 and got["rejected"] == {"unexpected_plaintext": 1}
    got = collect([tmp_path / "p.jsonl"], environ=ENV)
    assert got["count"] == 0 and got["rejected"] == {"unexpected_plaintext": 5000}
    assert "where a key is set" in got["rejected_examples"][0]["detail"]
    # told to, or without a key, plaintext counts
    assert collect([forged], environ=ENV, allow_plaintext=True)["count"] == 4
    assert collect([tmp_path / "p.jsonl"], environ={})["count"] == 5000


def test_plaintext_under_a_key_is_explained_by_gate_and_warned_about_by_dmca_run(
    tmp_path: Path, enc, fallback, monkeypatch, capsys
) -> None:
    from dmca_core.cli import main as dmca
    from sidrce.cli import main as sidrce

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        f"seed: 1\nestimator: fallback\ntelemetry: {{path: {tmp_path / 't.jsonl'}}}\n"
        "studies:\n  - {domain: direct_lab, hypothesis: WIMP, treatment: exposure_kg_day, outcome: counts, rows: 300}\n"
    )
    with pytest.warns(
        RuntimeWarning, match=r"telemetry written in plaintext \(telemetry.encryption: none\) while"
    ):
        assert dmca(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert sidrce(["gate", "--max-fti", "5", str(tmp_path / "t.jsonl")]) == 1
    out = capsys.readouterr()
    assert "no valid telemetry records: plaintext telemetry while a key is set" in out.out + out.err


def test_line_cut_by_a_crash_then_a_new_writer(tmp_path: Path, enc) -> None:
    path = tmp_path / "t.jsonl"
    lines = write(path, "batch", 5, 2, close=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # the last flush was cut mid-write
    write(path, "batch", 3, 10)  # the next run appends
    got = scan(path.read_bytes().splitlines(keepends=True), enc)
    assert got.reasons() == ["not_json"]
    assert steps(got) == [0, 1, 2, 3, 0, 1, 2]  # only the cut flush (record 4) is lost
    assert len(lines) == 3 and len(got.open_streams) == 1  # the crashed stream never closed


def test_ciphertext_that_is_not_json_or_not_a_record(tmp_path: Path, enc) -> None:
    from dmca_aes_gcm.budget import budget
    from dmca_aes_gcm.keys import load_keyring
    from dmca_aes_gcm.writer import BatchWriter, LineWriter

    key = load_keyring(ENV).primary
    lw = LineWriter(key, budget)
    deep = b"[" * 200_000 + b"]" * 200_000  # deeper than Python's parser recurses
    lone = b'{"domain":"\\ud800"}'  # a string that is not Unicode: not JSON text, as SIDRCE reads it
    bad = lw.seal([b"not json", b'{"domain":"x"}', b"[1,2]", deep, lone], final=True).splitlines(
        keepends=True
    )
    got = scan(bad, enc)
    assert got.reasons() == ["not_json", "schema", "schema", "not_json", "not_json"]
    assert "'hypothesis': required" in got.rejections[1].detail
    bw = BatchWriter(key, budget, compress=False)
    good = json.dumps(
        {
            "domain": "d",
            "hypothesis": "h",
            "step": 0,
            "intervention": "-",
            "infra_cost_usd": 0,
            "qps": 0,
            "latency_p95_ms": 0,
        }
    ).encode()
    got = scan(bw.seal([good, b"{oops", good], final=True).splitlines(keepends=True), enc)
    assert len(got.records) == 2 and got.reasons() == ["not_json"]


def test_random_garbage_lines_never_yield_records(enc) -> None:
    from dmca_core.errors import TelemetryRejected

    reader = enc.reader(environ=ENV)
    rng = os.urandom
    for i in range(200):
        obj = {
            "v": 1,
            "alg": "A256GCM",
            "kid": "0b9ff4a8",
            "sid": rng(16).hex(),
            "seq": i,
            "n": base64.b64encode(rng(12)).decode(),
            "ct": base64.b64encode(rng(40)).decode(),
        }
        with pytest.raises(TelemetryRejected) as info:
            reader.feed(obj, i + 1)
        assert info.value.reason in ("tampered", "unknown_kid")


def test_the_scan_tool_reports_a_damaged_gzip_member(tmp_path: Path, enc, capsys, monkeypatch) -> None:
    import zlib

    from dmca_aes_gcm.scan import main as scan_main

    path = tmp_path / "g.jsonl.gz"
    write(path, "line", 6, 2, gz=True)
    data, members = path.read_bytes(), []
    rest = data
    while rest:
        d = zlib.decompressobj(wbits=31)
        d.decompress(rest)
        members.append(rest[: len(rest) - len(d.unused_data)])
        rest = d.unused_data
    bad = bytearray(members[1])
    bad[len(bad) // 2] ^= 0xFF
    path.write_bytes(b"".join([members[0], bytes(bad), *members[2:]]))
    got = scan(path.read_bytes().splitlines(keepends=True), enc)
    assert len(got.records) == 2 and "truncated" in got.reasons()  # it printed 2 records, exit 0
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    assert scan_main([str(path)]) == 1
    err = capsys.readouterr().err
    assert "gzip member is cut or damaged" in err and "open, no final envelope" in err
