"""The compiled line scanner (sidrce/_linescan.c) against the exact reading (json.loads and the
contract's rules): whatever it takes is a valid record and gets the values json.loads gives, bit
for bit; what it gives up on is left to the exact path, and the reports agree.

``DMCA_REQUIRE_COMPILED=1`` (set by tox) turns a missing build into a failure, not a skip.
"""

from __future__ import annotations

import json
import math
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import mutated, require_compiled
from test_sidrce_collector import line
from test_sidrce_fastpaths import rows

from dmca_core.telemetry.record import OPTIONAL, REQUIRED
from sidrce import collector as C
from sidrce import validate as V


@pytest.fixture
def scanner() -> Any:
    require_compiled(V.SCANNER, "sidrce._linescan")
    return V.SCANNER


def scan_one(scanner: Any, text: bytes) -> dict[str, Any] | None:
    """The scanner's reading of one line: its columns by name and its triple, or None."""
    cap = 1
    table = np.empty(len(V.SCAN_COLUMNS) * cap)
    kinds = np.empty(cap, np.int32)
    data = text + b"\n"
    res = scanner.scan(data, 0, table, kinds)
    if res is None:
        return None
    n, end, triples = res
    assert (n, end) == (1, len(data)) and kinds[0] == 0 and len(triples) == 1
    out = {name: float(table[c * cap]) for c, (name, _) in enumerate(V.SCAN_COLUMNS)}
    out["triple"] = triples[0]
    return out


def same(a: float, b: float) -> bool:
    """Equal bit for bit (so 0.0 and -0.0 differ; NaN equals NaN)."""
    return struct.pack("<d", a) == struct.pack("<d", b)


def check(scanner: Any, text: bytes) -> bool:
    """Asserts the scanner's verdict implies the exact one, with the same values; True if taken."""
    got = scan_one(scanner, text)
    if got is None:
        return False
    assert V.check_line(text) is None, text  # taken: the contract accepts it
    obj = V.loads(text)
    for name, _ in V.SCAN_COLUMNS:
        if name == "ts":
            want = V.ts_epoch(obj["ts"])
            assert want is not None
        else:
            want = float(obj[name]) if name in obj else math.nan
        assert same(got[name], want), (text, name, got[name], want)
    assert got["triple"] == key_of(obj)
    return True


def key_of(obj: dict[str, Any]) -> tuple[Any, ...]:
    """A record's key as the scanner gives it: study and outcome None where absent."""
    return (obj["domain"], obj["hypothesis"], obj["intervention"], obj.get("study"), obj.get("outcome"))


def canonical(rng: random.Random) -> dict[str, Any]:
    r: dict[str, Any] = {
        "domain": rng.choice(["direct_lab", "cosmology", "my_csv"]),
        "hypothesis": rng.choice(["WIMP", "Axion", "DarkPhoton"]),
        "step": rng.randrange(10**6),
        "intervention": rng.choice(["-", "do(exposure_kg_day=200 vs 100)", "estimator=full"]),
        "infra_cost_usd": rng.random() * 10 ** rng.randrange(-9, 4),
        "qps": rng.uniform(0, 1e4),
        "latency_p95_ms": round(rng.uniform(0, 100), rng.randrange(0, 8)),
        "ts": f"20{rng.randrange(10, 40)}-0{rng.randrange(1, 10)}-1{rng.randrange(10)}T0{rng.randrange(10)}"
        f":1{rng.randrange(10)}:2{rng.randrange(10)}" + rng.choice(["", ".5", ".123", ".123456789"]) + "Z",
    }
    for name, kind in OPTIONAL:
        if name == "ts" or rng.random() < 0.3:
            continue
        r[name] = {
            "str": "x" * rng.randrange(1, 9),
            "int0": rng.randrange(1000),
            "num0": rng.expovariate(1) * 10 ** rng.randrange(-300, 300),
            "num": rng.gauss(0, 1) * 10 ** rng.randrange(-20, 20),
            "version": 1,
        }[kind]
    return r


def test_canonical_records_are_all_taken_with_exact_values(scanner: Any) -> None:
    """Records as the emitter writes them (and with shuffled keys and spaces): every one taken."""
    rng = random.Random(0)
    for i in range(5000):
        r = canonical(rng)
        if i % 3 == 1:
            keys = list(r)
            rng.shuffle(keys)
            r = {k: r[k] for k in keys}
        text = json.dumps(r, separators=(",", ":") if i % 2 else (", ", ": ")).encode()
        assert check(scanner, text), text


NUMBERS = [
    "0", "-0", "-0.0", "0.0", "-0e0", "0e5", "1", "1.5", "-1.5", "1e3", "1E3", "1e+3", "1e-3", "2.5e-310",
    "1e-400", "1e308", "1.7976931348623157e308", "1.7976931348623159e308", "1e309", "-1e309",
    "123456789012345678901234567890", "0.1000000000000000055511151231257827",
    "9007199254740993", "9007199254740993.0", "4.630215508675113e-05", "38.547847200788894",
    "0.000000000000000000000000001", "1" + "0" * 400, "1.e3", ".5", "01", "+1", "1e", "1e+", "-",
    "--1", "0x10", "NaN", "Infinity", "-Infinity", "1_000", "1.5.5", "true", "null", '"1"', "[1]", "{}",
]  # fmt: skip
STRINGS = [
    '"x"', '""', '"a b"', '"\\"q\\""', '"\\\\"', '"\\u00e9"', '"é"', '"\\n"', '"a\x01b"', '"a\x7fb"',
    '"\t"', "1", "null", "true", '["x"]', '"x', "x",
]  # fmt: skip
TIMES = [
    "2024-01-01T00:00:00Z", "2024-02-29T12:00:00.5Z", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
    "2024-00-10T00:00:00Z", "2024-01-32T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z",
    "2024-01-01T00:00:60Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
    "2255-01-01T00:00:00Z", "2300-01-01T00:00:00Z", "1700-03-01T00:00:00.999999999Z",
    "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00.1234567890Z", "2024-01-01T00:00:00", "2024-01-01 00:00:00Z",
    "2024-01-01T00:00:00z", "2024-01-01T00:00:00+00:00", "2024-1-01T00:00:00Z", "２024-01-01T00:00:00Z",
    "2000-02-29T00:00:00.000001Z", "1900-02-29T00:00:00Z",
]  # fmt: skip


def test_every_value_kind_gets_the_exact_verdict(scanner: Any) -> None:
    rng = random.Random(1)
    base = canonical(rng)
    taken = 0
    for name, kind in REQUIRED + OPTIONAL:
        values = {"str": STRINGS, "ts": [json.dumps(t) for t in TIMES]}.get(kind, NUMBERS)
        for v in values:
            fields = [f"{json.dumps(k)}:{json.dumps(x)}" for k, x in base.items() if k != name]
            fields.insert(rng.randrange(len(fields) + 1), f'"{name}":{v}')
            taken += check(scanner, ("{" + ",".join(fields) + "}").encode())
    assert taken > 300  # the test is not vacuous: the scanner takes most valid values


def test_structure_outside_the_common_shape_is_left_to_the_exact_path(scanner: Any) -> None:
    r = canonical(random.Random(2))
    text = json.dumps(r)
    variants = [
        text, " " + text + " \r", text.replace(", ", " ,\t"), text[:-1] + ', "extra": 1}',
        text[:-1] + ', "domain": "again"}', text[:-1] + ",}", text + "x", "[" + text + "]",
        text.replace('"domain"', '"dom\\u0061in"'), "{}", text.replace("{", "{{", 1), text[:-1],
        text.replace(":", "", 1), text.replace(", ", " ", 1), text.replace('"qps"', "qps"),
    ]  # fmt: skip
    for name, _ in (*REQUIRED, ("ts", "ts")):
        variants.append(json.dumps({k: v for k, v in r.items() if k != name}))
    verdicts = [check(scanner, v.encode()) for v in variants]
    assert verdicts[:3] == [True, True, True]  # whitespace is whitespace
    assert not any(verdicts[3:])


def test_labels_in_utf8_are_taken_and_malformed_utf8_is_left_to_the_exact_path(scanner: Any) -> None:
    # generated study labels hold arrows ("hello_linear/toy X→Y #2"); sweeps are full of them
    record = {k: v for k, v in canonical(random.Random(4)).items() if k != "study"}
    base = json.dumps(record, separators=(",", ":")).encode()[:-1]
    for label in ("hello_linear/toy X→Y #2", "é", "😀 halo", "日本"):
        text = base + b',"study":' + json.dumps(label, ensure_ascii=False).encode() + b"}"
        assert check(scanner, text), text
    bad = [
        b"\xc0\x80",
        b"\xed\xa0\x80",
        b"\xf5\x80\x80\x80",
        b"\xf4\x90\x80\x80",
        b"\xe2\x86",
        b"\x80",
        b"\xc3",
    ]
    for raw in bad:
        text = base + b',"study":"a' + raw + b'"}'
        assert scan_one(scanner, text) is None, raw


def test_random_mutations_never_pass_an_invalid_line(scanner: Any) -> None:
    rng = random.Random(3)
    alphabet = b'{}[]",:.-+eE0123456789 \t\rxnulZT\\\x00\x7f\xc3\xa9\xe2\x86\x92\xed\xa0\xf0\x9f\x80'
    taken = 0
    for i in range(40000):
        text = mutated(json.dumps(canonical(rng), separators=(",", ":")).encode(), rng, alphabet, 1 + i % 3)
        taken += check(scanner, text.replace(b"\n", b" "))
    assert taken > 1000  # mutations that keep the record valid (in a number, say) are still taken


def test_blocks_stop_at_capacity_and_give_the_end_offset(scanner: Any) -> None:
    lines = [json.dumps(canonical(random.Random(i))).encode() + b"\n" for i in range(10)]
    data = b"".join(lines)
    cap = 4
    table, kinds = np.empty(len(V.SCAN_COLUMNS) * cap), np.empty(cap, np.int32)
    pos, seen = 0, []
    while pos < len(data):
        n, end, triples = scanner.scan(data, pos, table, kinds)
        assert n == min(cap, 10 - len(seen)) and end == pos + sum(map(len, lines[len(seen) : len(seen) + n]))
        seen += [triples[k] for k in kinds[:n]]
        pos = end
    objs = [json.loads(x) for x in lines]
    assert seen == [key_of(o) for o in objs]
    assert any(o.get("study") for o in objs) and any("study" not in o for o in objs)
    assert scanner.scan(data[:-1], 0, table, kinds) is not None  # the first 4 lines are whole
    assert scanner.scan(data[:-1], sum(map(len, lines[:8])), table, kinds) is None  # no final newline
    with pytest.raises(ValueError):
        scanner.scan(data, len(data) + 1, table, kinds)
    with pytest.raises(ValueError):
        scanner.scan(data, 0, table[:-1], kinds)


def test_too_many_distinct_triples_in_one_call_are_left_to_msgspec(
    scanner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1024 distinct (domain, hypothesis, intervention) a call at most; the report is the same."""
    good = rows(3000, seed=6)
    for i, r in enumerate(good):
        r["intervention"] = f"do(x={i})"
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(line(r) for r in good))
    table, kinds = np.empty(len(V.SCAN_COLUMNS) * 4096), np.empty(4096, np.int32)
    assert scanner.scan(path.read_bytes(), 0, table, kinds) is None
    fast = C.collect([path])
    monkeypatch.setattr(C, "SCANNER", None)
    assert C.collect([path]) == fast and fast["count"] == 3000


def test_a_bad_line_mid_block_keeps_every_verdict_and_line_number(
    scanner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scanner takes a block up to the call holding a bad line; from there the slices path
    reads on, so every rejection keeps its line number and the report is the exact one."""
    good = rows(3 * C.SCAN_LINES, seed=7)
    bad = dict(good[0], qps=-1)
    body = [line(r) for r in good]
    body.insert(C.SCAN_LINES + 17, line(bad))
    body.insert(2 * C.SCAN_LINES + 5, b'{"domain": "a"\n')
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(body))
    report = C.collect([path])
    assert report["rejected"] == {"schema": 1, "not_json": 1} and report["count"] == len(good)
    assert [e["line"] for e in report["rejected_examples"]] == [C.SCAN_LINES + 18, 2 * C.SCAN_LINES + 6]
    monkeypatch.setattr(C, "SCANNER", None)
    assert C.collect([path]) == report
    slow = tmp_path / "slow.jsonl"  # leading spaces: every line through json.loads + the exact check
    slow.write_bytes(b"".join(b" " + ln for ln in body))
    exact = C.collect([slow])
    for ex in exact["rejected_examples"]:
        ex["file"] = str(path)
    assert exact == report


@pytest.mark.parametrize("digits", [0, 1, 3, 6, 9])
def test_times_match_the_exact_reading(scanner: Any, digits: int) -> None:
    rng = random.Random(digits)
    base = canonical(rng)
    for _ in range(3000):
        y, mo = rng.randrange(1700, 2250), rng.randrange(1, 13)
        d = rng.randrange(1, 29 + (mo == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)))
        frac = "." + "".join(rng.choice("0123456789") for _ in range(digits)) if digits else ""
        h, mi, s = rng.randrange(24), rng.randrange(60), rng.randrange(60)
        ts = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}Z"
        assert check(scanner, json.dumps(base | {"ts": ts}).encode()), ts


def test_a_bad_field_table_or_overlapping_buffers_are_refused(scanner: Any) -> None:
    from sidrce._linescan import Scanner

    good = [("domain", 0, -1, 1, True), ("hypothesis", 0, -1, 2, True), ("intervention", 0, -1, 3, True)]
    ts = [("ts", 4, 0, 0, False)]
    Scanner(good + ts, 1, 1)  # the smallest table it takes
    for fields in (good, good[:2] + ts, [(*good[0][:4], False), *good[1:], *ts], good + ts + ts):
        with pytest.raises(ValueError):
            Scanner(fields, 1, 1)  # a role missing or not required, no ts, or two
    buf = bytearray(json.dumps(canonical(random.Random(9))).encode() + b"\n") + bytearray(4096)
    with pytest.raises(ValueError, match="overlap"):
        scanner.scan(buf, 0, memoryview(buf)[-8 * len(V.SCAN_COLUMNS) :].cast("d"), np.empty(1, np.int32))
