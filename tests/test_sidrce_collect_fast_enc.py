"""Encrypted telemetry through the collector's fast paths gives the exact verdicts.

Each file is read three ways: slices opened at once by the AES reader (``feed_block``), every line
through ``Reader.feed`` (the block method switched off), and in two processes split at chosen
lines. Reports, rejection lines and reasons, open streams and ``sidrce validate`` output must match.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pytest

from sidrce import cli
from sidrce import collector as C
from sidrce.collector import Aggregator, collect

pytestmark = [pytest.mark.aes, pytest.mark.usefixtures("envelope_reader")]

KEY = bytes(range(32))
ENV = {"SIDRCE_AES_KEY": base64.b64encode(KEY).decode()}
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@pytest.fixture(autouse=True)
def aes(use_plugin: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    import dmca_aes_gcm.plugin as plugin

    use_plugin(plugin)
    monkeypatch.setattr(C, "FAST_LINES", 64)  # many slices in a small file
    monkeypatch.setattr(C, "PARALLEL_MIN_BYTES", 1 << 62)
    return plugin


def rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r: dict[str, Any] = {
            "domain": "ab"[rng.randrange(2)],
            "hypothesis": "xyz"[i % 3],
            "step": i,
            "intervention": "-" if i % 9 else f"do(x={i % 4})",
            "infra_cost_usd": round(rng.uniform(0, 5), 4),
            "qps": round(rng.uniform(1, 50), 3),
            "latency_p95_ms": rng.randrange(1, 90),
            "ts": f"2024-03-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00.{i % 1000:03d}Z",
        }
        if i % 4:
            r["causal_effect"] = round(rng.gauss(0, 1), 5)
            r["reliability_score"], r["SR9"], r["DI2"] = 0.5, 0.9, 0.1
        out.append(r)
    return out


def text(r: Any) -> bytes:
    return json.dumps(r, separators=(",", ":")).encode()


def sealed(
    recs: list[Any],
    *,
    mode: str = "line",
    per: int = 40,
    final: bool = True,
    key: bytes = KEY,
    z: bool = False,
) -> list[bytes]:
    """The lines a writer appends for ``recs`` (flushed ``per`` at a time)."""
    from dmca_aes_gcm.budget import NonceBudget
    from dmca_aes_gcm.keys import Key, fingerprint
    from dmca_aes_gcm.writer import BatchWriter, LineWriter

    k = Key(fingerprint(key), key)
    w = LineWriter(k, NonceBudget()) if mode == "line" else BatchWriter(k, NonceBudget(), compress=z)
    out = b""
    for i in range(0, len(recs), per):
        out += w.seal([r if isinstance(r, bytes) else text(r) for r in recs[i : i + per]], False)
    if final:
        out += w.seal([], True)
    return out.splitlines(keepends=True)


def exact_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from dmca_aes_gcm.reader import Reader

    monkeypatch.setattr(Reader, "feed_block", lambda self, *a, **k: None)


def three_ways(path: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple[dict, int]:
    """The fast report (checked equal to the line-by-line one) and how many slices it took fast."""
    from dmca_aes_gcm import block

    taken = []
    real = block.BlockResult.commit
    with monkeypatch.context() as m:
        m.setattr(block.BlockResult, "commit", lambda self: taken.append(self.count) or real(self))
        fast = collect([path], environ=ENV, **kw)
    with monkeypatch.context() as m:
        exact_only(m)
        exact = collect([path], environ=ENV, **kw)
    assert fast == exact
    return fast, len(taken)


def validate_output(path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, *args: str) -> tuple[int, str]:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    code = cli.main(["validate", *args, str(path)])
    out = capsys.readouterr()
    return code, out.out + out.err


def flip_padding(line: bytes) -> bytes:
    """Set the unused bits of ct's last base64 character: same bytes, non-canonical spelling."""
    head, ct, tail = line.rpartition(b'"ct":"')[0], line.rpartition(b'"ct":"')[2][:-3], line[-3:]
    pad = len(ct) - len(ct.rstrip(b"="))
    assert pad, "pick a ciphertext with padding"
    i = len(ct) - pad - 1
    c = B64[B64.index(chr(ct[i])) + 1].encode()
    return head + b'"ct":"' + ct[:i] + c + ct[i + 1 :] + tail


def padded(lines: list[bytes], start: int) -> int:
    return next(i for i in range(start, len(lines)) if lines[i].endswith(b'="}\n'))


def scenarios() -> dict[str, list[bytes]]:
    good = rows(900)
    s = sealed(good)  # 900 records, final at line 901
    out: dict[str, list[bytes]] = {"clean": s}
    out["bit flip"] = s[:300] + [s[300].replace(b'"ct":"', b'"ct":"A', 1)[:-8] + b'"}\n'] + s[301:]
    i = padded(s, 400)
    out["non-canonical padding"] = s[:i] + [flip_padding(s[i])] + s[i + 1 :]
    # an escape spells the same value: valid, but only the exact path may judge it
    out["escaped character"] = s[:200] + [s[200].replace(b'"alg":"A', b'"alg":"\\u0041', 1)] + s[201:]
    out["replayed"] = s[:500] + [s[100]] + s[500:]
    out["swapped"] = s[:250] + [s[251], s[250]] + s[252:]
    out["deleted"] = s[:600] + s[611:]
    out["truncated"] = s[:-30]
    out["final in the middle"] = s[:300] + [s[-1]] + s[300:-1]
    other = sealed(good[:50], key=bytes(32))
    out["unknown key"] = s[:100] + other[:20] + s[100:]
    out["plaintext line"] = s[:450] + [text(good[0]) + b"\n"] + s[450:]
    out["blank and odd lines"] = s[:100] + [b"\n", b"   \n", s[100][:-1] + b"\r\n", b" " + s[101]] + s[102:]
    out["cut last line"] = s[:-1] + [s[-1][:-5]]
    # a counter past int64 and a byte that is not UTF-8: the exact verdicts, never a crash
    out["huge counter"] = s[:700] + [s[700].replace(b'"seq":700', b'"seq":9223372036854775808', 1)] + s[701:]
    out["not UTF-8"] = s[:800] + [s[800].replace(b'"kid":"', b'"kid":"\xff', 1)] + s[801:]
    t = sealed(rows(300, seed=5))
    mixed = []
    for k in range(300):
        mixed += [s[k], t[k]]
    out["two streams interleaved"] = mixed + s[300:] + t[300:]
    out["one stream after another"] = s + t
    out["stream starting late"] = s[40:]
    bad = dict(good[7])
    bad["qps"] = -1.0
    cal = dict(good[8])
    cal["ts"] = "2024-02-30T00:00:00Z"
    odd = [bad, cal, b'{"qps": NaN}', b"not json", b"", b"[1, 2]", b'{"domain":"a"}\n{"domain":"b"}']
    out["bad plaintext"] = sealed(good[:300] + odd + good[300:])
    # valid records spelled otherwise: over several lines, with spaces around
    spread = [json.dumps(r, indent=1).encode() for r in good[:300]] + [text(r) for r in good[300:]]
    spread[500] = b" " + spread[500] + b"\r\n"
    out["records over several lines"] = sealed(spread)
    return out


SCENARIOS = scenarios()


def batch_scenario() -> list[bytes]:
    good = rows(900, seed=11)
    bad = dict(good[3])
    bad["qps"] = "fast"
    return sealed(good[:450] + [bad] + good[450:], mode="batch", per=3)  # a bad record mid-file


SPLIT = {**SCENARIOS, "batches with a bad record": batch_scenario()}
VALID = (
    "escaped character",
    "one stream after another",
    "blank and odd lines",
    "two streams interleaved",
    "records over several lines",
)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fast_and_line_by_line_reading_agree(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(SCENARIOS[name]))
    report, taken = three_ways(path, monkeypatch)
    assert taken >= 4  # most slices are ordinary: the fast path must have opened them
    if name == "clean":
        assert report["count"] == 900 and report["rejected"] == {} and report["open_streams"] == 0
    else:
        assert report["rejected"] or report["open_streams"] or name in VALID
    three_ways(path, monkeypatch, allow_plaintext=True)
    fast_out = validate_output(path, monkeypatch, capsys, "--closed")
    exact_only(monkeypatch)
    assert validate_output(path, monkeypatch, capsys, "--closed") == fast_out


def test_verdicts_of_the_scenarios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spot checks that the scenarios are what they claim (the fast path must match these)."""
    got = {}
    for name in (
        "bit flip",
        "non-canonical padding",
        "replayed",
        "swapped",
        "deleted",
        "truncated",
        "bad plaintext",
        "huge counter",
        "not UTF-8",
    ):
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(b"".join(SCENARIOS[name]))
        got[name] = collect([path], environ=ENV)
    assert got["bit flip"]["rejected"] == {"tampered": 1, "missing_seq": 1}
    assert got["non-canonical padding"]["rejected"] == {"tampered": 1, "missing_seq": 1}
    assert "not canonical base64" in got["non-canonical padding"]["rejected_examples"][0]["detail"]
    assert got["replayed"]["rejected"] == {"tampered": 1}
    assert got["huge counter"]["rejected"] == {"tampered": 1, "missing_seq": 1}
    assert got["not UTF-8"]["rejected"] == {"not_json": 1, "missing_seq": 1}
    assert got["swapped"]["rejected"] == {"tampered": 1}
    assert got["deleted"]["rejected"] == {"missing_seq": 1}
    assert got["truncated"]["open_streams"] == 1
    # an empty plaintext is no record and no error; NaN parses, then fails the contract
    assert got["bad plaintext"]["rejected"] == {"schema": 4, "not_json": 2}
    assert got["bad plaintext"]["count"] == 900


@pytest.mark.parametrize("z", [False, True])
def test_batch_envelopes_take_the_block_path_too(
    z: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = rows(1200, seed=3)
    s = sealed(good, mode="batch", per=10, z=z)
    path = tmp_path / "b.jsonl"
    path.write_bytes(b"".join(s))
    report, taken = three_ways(path, monkeypatch)
    assert taken and report["count"] == 1200 and report["rejected"] == {}
    bad = dict(good[5])
    bad["step"] = -1
    t = sealed(good[:500] + [bad, b"", b"nope"] + good[500:], mode="batch", per=10, z=z)
    path.write_bytes(b"".join(t[:30] + [t[10]] + t[30:]))  # a replayed batch
    report, taken = three_ways(path, monkeypatch)
    assert taken and report["rejected"] == {"tampered": 1, "schema": 1, "not_json": 2}


def test_block_result_leaves_the_reader_untouched_until_commit(aes: Any) -> None:
    r = aes.ENCRYPTOR.reader(environ=ENV)
    data = b"".join(sealed(rows(100)))
    res = r.feed_block(data, 1)
    assert res is not None and res.count == 100 and r.open_streams == [] and r.finish() == []
    assert [json.loads(x)["step"] for x in res.records.splitlines()] == list(range(100))
    assert res.lines.tolist() == list(range(1, 101))
    res.commit()
    (stream,) = r._streams.values()
    assert stream.final == 100 and stream.records == 100 and stream.last_line == 101
    assert r.feed_block(data, 102) is None  # the same envelopes again: replays, for the exact path
    assert r.finish() == [] and stream.envelopes == 101


def split_offsets(lines: list[bytes], at: list[int]) -> list[int]:
    offs, pos = [], 0
    for i, ln in enumerate(lines):
        if i in at:
            offs.append(pos)
        pos += len(ln)
    return offs


@pytest.mark.parametrize(
    "name",
    [
        "clean",
        "bit flip",
        "replayed",
        "swapped",
        "deleted",
        "truncated",
        "final in the middle",
        "plaintext line",
        "two streams interleaved",
        "one stream after another",
        "stream starting late",
        "bad plaintext",
        "batches with a bad record",
    ],
)
def test_two_processes_give_the_one_process_verdicts(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = SPLIT[name]
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(lines))
    one = collect([path], environ=ENV)
    if name == "batches with a bad record":
        assert one["rejected"] == {"schema": 1} and one["rejected_examples"][0]["line"] == 151
    joined = []
    real = Aggregator._merge
    monkeypatch.setattr(Aggregator, "_merge", lambda self, *a: joined.append(1) or real(self, *a))
    # inside the stream, next to damage, at the end of one stream and start of the next
    offs = split_offsets(lines, [1, 101, 251, 300, 301, 502, 605, 901, len(lines) - 1])
    for off in offs:
        monkeypatch.setattr(Aggregator, "_split_point", lambda self, p, off=off: off)
        assert collect([path], environ=ENV) == one, off
    clean = ("clean", "deleted", "two streams interleaved", "one stream after another", "bad plaintext")
    if name in (*clean, "batches with a bad record"):
        assert len(joined) == len(offs)  # the halves met cleanly every time: the child's half was used
    if name == "replayed":  # an envelope of the first half seen again in the second: read in order
        assert 0 < len(joined) < len(offs)


def test_two_processes_with_plaintext_mode_conflicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = rows(400, seed=9)
    plain = [text(r) + b"\n" for r in good[:200]]
    env = sealed(good[200:])
    for lines in (plain + env + plain, env + plain + env[:5], plain + env):
        path = tmp_path / "m.jsonl"
        path.write_bytes(b"".join(lines))
        for kw in ({}, {"allow_plaintext": True}):
            one = collect([path], environ=ENV, **kw)
            for off in split_offsets(lines, [150, 200, 300, 450]):
                with monkeypatch.context() as m:
                    m.setattr(Aggregator, "_split_point", lambda self, p, off=off: off)
                    assert collect([path], environ=ENV, **kw) == one


def test_zlib_bomb_in_a_batch_is_left_to_the_exact_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a batch that inflates past the reader's limit: not_json either way
    from dmca_aes_gcm import block

    monkeypatch.setattr(block, "_MAX_PLAINTEXT", 1000)
    from dmca_aes_gcm import reader

    monkeypatch.setattr(reader, "_MAX_PLAINTEXT", 1000)
    s = sealed(rows(300), mode="batch", per=50, z=True)
    path = tmp_path / "z.jsonl"
    path.write_bytes(b"".join(s))
    report, _ = three_ways(path, monkeypatch)
    assert report["rejected"] == {"not_json": 6}


def test_no_key_or_another_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dmca_core.errors import ConfigError

    path = tmp_path / "k.jsonl"
    path.write_bytes(b"".join(sealed(rows(200))))
    with pytest.raises(ConfigError, match=r"k\.jsonl:1: telemetry is encrypted but no key is set"):
        collect([path], environ={})
    other = {"SIDRCE_AES_KEY": base64.b64encode(bytes(32)).decode()}
    report = collect([path], environ=other)
    assert report["rejected"] == {"unknown_kid": 201} and report["count"] == 0
    with monkeypatch.context() as m:
        exact_only(m)
        assert collect([path], environ=other) == report
