"""SIDRCE's per-line checks agree with jsonschema run on the contract, on many generated records;
`sidrce validate`'s exit status is its verdict on the whole file, also into a pipe closed early."""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sidrce import validate as V


@pytest.fixture(scope="module")
def schema_validator() -> Any:
    if not V.CONTRACT.exists():
        pytest.skip(f"{V.CONTRACT.name} not written yet (the telemetry contract is another issue's)")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(V.CONTRACT.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def good(rng: random.Random) -> dict[str, Any]:
    t = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.uniform(0, 2e8))
    r: dict[str, Any] = {
        "domain": rng.choice(["direct_lab", "cosmology", "ü"]),
        "hypothesis": rng.choice(["WIMP", "ALP"]),
        "step": rng.randrange(0, 100),
        "intervention": rng.choice(["-", "estimator=full"]),
        "infra_cost_usd": rng.choice([0, 0.0, 1, rng.uniform(0, 10)]),
        "qps": rng.uniform(0, 500),
        "latency_p95_ms": rng.uniform(0, 900),
    }
    optional = {
        "ts": rng.choice(
            [
                t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            ]
        ),
        "run_id": "r1",
        "schema_version": 1,
        "causal_effect": rng.gauss(0, 1),
        "ci_low": -1.5,
        "ci_high": 2,
        "reliability_score": 0.9,
        "SR9": 0.95,
        "DI2": -0.1,
        "estimator": "fallback",
        "cpu_seconds": 1.5,
        "wall_seconds": 2,
        "peak_mem_mb": 100.5,
        "fits": 12,
    }
    for k, v in optional.items():
        if rng.random() < 0.7:
            r[k] = v
    if rng.random() < 0.2:
        r["extra_field"] = [1, {"x": None}]
    return r


BAD_VALUES = [
    None,
    True,
    False,
    "",
    "x",
    -1,
    -0.5,
    1.5,
    3.0,
    1e308,
    [],
    {},
    "2024-01-01T00:00:00Z",
    "2024-01-01 00:00:00Z",
    "2024-01-01T00:00:00+00:00",
    "2024-01-01T00:00:00.1234567890Z",
    "2024-1-01T00:00:00Z",
    2,
    0,
]


def mutate(r: Any, rng: random.Random) -> Any:
    if not isinstance(r, dict):
        return r
    r = copy.deepcopy(r)
    k = rng.random()
    if k < 0.05:
        return rng.choice([[r], "text", 3, None])
    if k < 0.25:
        del r[rng.choice(list(r))]
        return r
    field = rng.choice(list(r) + ["ts", "schema_version", "fits", "run_id", "SR9"])
    r[field] = rng.choice(BAD_VALUES)
    return r


def test_exact_and_fast_checks_agree_with_jsonschema(schema_validator: Any) -> None:
    rng = random.Random(2024)
    cases = []
    for _ in range(1500):
        g = good(rng)
        cases.append(g)
        cases.append(mutate(g, rng))
        cases.append(mutate(mutate(g, rng), rng))
    n_valid = n_fast = 0
    for obj in cases:
        expected = schema_validator.is_valid(obj)
        mine = V.problem(obj) is None
        assert mine == expected, (obj, V.problem(obj), expected)
        text = json.dumps(obj).encode()
        if V.fast_accepts(text):
            n_fast += 1
            assert expected, f"fast path accepted a record the contract rejects: {obj}"
        n_valid += expected
        assert (V.check_line(text) is None) == expected
    assert 1000 < n_valid < len(cases) - 1000  # both kinds well represented
    if V.FAST is not None:
        assert n_fast > 0.8 * n_valid  # the fast path takes the common case


def test_calendar_rule_beyond_the_pattern() -> None:
    assert V.problem(
        {
            "domain": "d",
            "hypothesis": "h",
            "step": 0,
            "intervention": "-",
            "infra_cost_usd": 1,
            "qps": 1,
            "latency_p95_ms": 1,
            "ts": "2024-13-45T99:99:99Z",
        }
    )
    assert V.ts_epoch("2024-02-29T00:00:00Z") == datetime(2024, 2, 29, tzinfo=UTC).timestamp()
    values = ["2024-02-29T23:59:59.250Z", "1999-12-31T00:00:00.000Z", "2023-02-29T00:00:00.000Z"]
    assert V.ts_epochs(values) is None  # 2023-02-29 does not exist
    got = V.ts_epochs(values[:2])
    assert got is not None and list(got) == [V.ts_epoch(v) for v in values[:2]]
    rng = random.Random(3)
    many = [
        (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(0, 2**62 // 1000))).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
        for _ in range(2000)
    ]
    vec = V.ts_epochs(many)
    assert vec is not None
    assert all(abs(a - V.ts_epoch(s)) < 1e-6 for a, s in zip(vec, many, strict=True))


def _pipe_file(tmp_path: Path) -> tuple[Path, int]:
    """Far more bad lines than a pipe holds, then (once the reader has gone) one of another kind."""
    path = tmp_path / "bad.jsonl"
    ok = json.dumps(good(random.Random(1))).encode() + b"\n"
    n = 20_000
    body = b"".join(b"junk\n" if i % 2 else ok for i in range(n))
    path.write_bytes(body + b'{"domain": "d"}\n')  # line n + 1: a schema error
    return path, n


def test_validate_into_head_exits_with_the_verdict_on_the_whole_file(tmp_path: Path) -> None:
    path, n = _pipe_file(tmp_path)
    script = 'set -o pipefail; "$1" -m sidrce.cli validate "$2" | head -n 1'
    r = subprocess.run(
        ["bash", "-c", script, "bash", sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.stdout == f"{path}:2: not_json (Expecting value)\n"
    # validate's own status (head's is 0): the summary counts the lines after the pipe closed too
    assert r.returncode == 1, r.stderr
    assert r.stderr == f"{n // 2} valid records, {n // 2 + 1} bad lines\n"


def test_validate_into_a_pipe_closed_after_one_line_is_still_quiet(tmp_path: Path) -> None:
    # the reader closes after one line: exit 1, nothing on stderr but the summary
    path, _ = _pipe_file(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sidrce.cli", "validate", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1, err
    assert first.endswith(b":2: not_json (Expecting value)\n") and "Traceback" not in err
    assert err.endswith(" bad lines\n") and err.count("\n") == 1, err
