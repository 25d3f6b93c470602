"""sidrce/telemetry_contract.json: the seed samples, the emitter's output, and broken records.

Also checks that the emitter's hand-written check (``record_problem``, which SIDRCE's collector
reuses) and the JSON Schema agree on every case here, including generated mutations.
"""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import math
import random
from pathlib import Path

import jsonschema
import pytest
from seed_records import SEED_RECORDS

from dmca_core.telemetry import TelemetryEmitter, make_record, record_problem
from dmca_core.telemetry.record import OPTIONAL, REQUIRED, is_valid_fast

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "sidrce" / "telemetry_contract.json").read_text(encoding="utf-8")
)
LINE = jsonschema.Draft202012Validator(SCHEMA)
RECORD = jsonschema.Draft202012Validator({"$defs": SCHEMA["$defs"], "$ref": "#/$defs/record"})

SAMPLES = SEED_RECORDS


def full_record() -> dict:
    return make_record(
        domain="direct_lab",
        hypothesis="WIMP",
        step=4,
        intervention="do(mass=10)",
        study="lab mass",
        outcome="rate",
        infra_cost_usd=0.02,
        qps=51.5,
        latency_p95_ms=12.25,
        run_id="run-1",
        ts="2024-05-01T12:00:00.123Z",
        causal_effect=-0.4,
        ci_low=-0.5,
        ci_high=-0.3,
        reliability_score=0.97,
        SR9=0.91,
        DI2=0.12,
        estimator="fallback",
        cpu_seconds=1.5,
        wall_seconds=1.7,
        peak_mem_mb=210.0,
        fits=12,
    )


def test_schema_is_valid_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(SCHEMA["$defs"]) >= {"record", "line_envelope", "batch_envelope"}


@pytest.mark.parametrize("sample", SAMPLES)
def test_seed_samples_are_valid(sample: dict) -> None:
    LINE.validate(sample)
    assert record_problem(sample) is None


def test_every_field_is_documented_in_schema_and_docs() -> None:
    props = SCHEMA["$defs"]["record"]["properties"]
    names = [n for n, _ in REQUIRED + OPTIONAL]
    assert sorted(props) == sorted(names)
    assert SCHEMA["$defs"]["record"]["required"] == [n for n, _ in REQUIRED]
    doc = (Path(__file__).parents[1] / "docs" / "telemetry.md").read_text(encoding="utf-8")
    for name in names:
        assert f"`{name}`" in doc, name


def test_emitter_output_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TelemetryEmitter(path) as em:
        em.emit(full_record())
        em.emit(
            make_record(
                domain="csv", hypothesis="any", step=0, infra_cost_usd=0, qps=0, latency_p95_ms=0, run_id="r"
            )
        )
        for s in SAMPLES:
            em.emit(s)
    objs = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert len(objs) == 4
    for obj in objs:
        LINE.validate(obj)


@pytest.mark.aes
@pytest.mark.parametrize("mode", ["line", "batch"])
def test_envelopes_are_valid_and_exclusive(tmp_path: Path, use_plugin, mode: str) -> None:
    import dmca_aes_gcm.plugin as plugin

    use_plugin(plugin)
    env = {"SIDRCE_AES_KEY": base64.b64encode(bytes(32)).decode()}
    path = tmp_path / "t.jsonl"
    with TelemetryEmitter(path, encryption=mode, environ=env, gzip=True, max_records=2) as em:
        for _ in range(3):
            em.emit(full_record())
    data = path.read_bytes()
    data = gzip.decompress(data) if mode == "line" else data  # line mode gzips the file itself
    objs = [json.loads(x) for x in data.splitlines()]
    for obj in objs:
        LINE.validate(obj)  # oneOf: exactly one kind matches
        assert not RECORD.is_valid(obj)
    broken = dict(objs[0], v=2)
    errors = list(
        jsonschema.Draft202012Validator(
            {"$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{mode}_envelope"}
        ).iter_errors(broken)
    )
    assert [list(e.absolute_path) for e in errors] == [["v"]]


BROKEN = [
    ({"qps": -1}, ["qps"]),
    ({"step": -1}, ["step"]),
    ({"step": 1.5}, ["step"]),
    ({"step": "1"}, ["step"]),
    ({"step": True}, ["step"]),
    ({"domain": ""}, ["domain"]),
    ({"domain": 7}, ["domain"]),
    ({"intervention": None}, ["intervention"]),
    ({"latency_p95_ms": "180"}, ["latency_p95_ms"]),
    ({"infra_cost_usd": -0.01}, ["infra_cost_usd"]),
    ({"ts": "2024-05-01T12:00:00+00:00"}, ["ts"]),
    ({"ts": "2024-05-01T12:00:00"}, ["ts"]),
    ({"schema_version": 2}, ["schema_version"]),
    ({"causal_effect": "0.5"}, ["causal_effect"]),
    ({"fits": -2}, ["fits"]),
    ({"estimator": ""}, ["estimator"]),
    ({"peak_mem_mb": -1.0}, ["peak_mem_mb"]),
    ({"SR9": None}, ["SR9"]),
    ({"study": ""}, ["study"]),
    ({"study": 3}, ["study"]),
    ({"outcome": None}, ["outcome"]),
]


@pytest.mark.parametrize(("change", "path"), BROKEN)
def test_broken_records_fail_at_the_right_path(change: dict, path: list) -> None:
    bad = {**full_record(), **change}
    errors = list(RECORD.iter_errors(bad))
    assert [list(e.absolute_path) for e in errors] == [path]
    assert not LINE.is_valid(bad)
    problem = record_problem(bad)
    assert problem is not None and problem.startswith(f"field {path[0]!r}")


@pytest.mark.parametrize("field", [n for n, _ in REQUIRED])
def test_missing_required_field(field: str) -> None:
    bad = full_record()
    del bad[field]
    errors = list(RECORD.iter_errors(bad))
    assert len(errors) == 1 and errors[0].validator == "required" and field in errors[0].message
    assert record_problem(bad) == f"field {field!r}: required"


def _mutations(seed: int, n: int) -> list[object]:
    rng = random.Random(seed)
    values = [
        None,
        True,
        False,
        0,
        1,
        -1,
        0.0,
        2.5,
        -2.5,
        1.0,
        3.0,
        1e308,
        "",
        "x",
        "1",
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.5Z",
        "2024-05-01T12:00:00.1234567890Z",
        "2024-05-01T12:00:00Z\n",
        "２０２４-05-01T12:00:00Z",
        [],
        {},
        [1],
    ]
    names = [nm for nm, _ in REQUIRED + OPTIONAL] + ["extra"]
    out: list[object] = [[], "x", 3, None]
    for _ in range(n):
        rec = full_record() if rng.random() < 0.7 else dict(SAMPLES[rng.randrange(2)])
        for _ in range(rng.randint(1, 3)):
            name = rng.choice(names)
            if rng.random() < 0.25:
                rec.pop(name, None)
            else:
                rec[name] = rng.choice(values)
        out.append(rec)
    return out


def _schema_says(obj: object) -> bool:
    # jsonschema runs "pattern" with Python's re.search, where "$" also matches before a final
    # newline; JSON Schema patterns are ECMA-262, where it does not. We follow ECMA.
    if isinstance(obj, dict) and isinstance(obj.get("ts"), str) and obj["ts"].endswith("\n"):
        return False
    return RECORD.is_valid(obj)


def test_hand_check_agrees_with_the_schema_on_mutations() -> None:
    cases = _mutations(seed=7, n=1500)
    disagreements = []
    for obj in cases:
        schema_ok = _schema_says(obj)
        hand_ok = record_problem(obj) is None
        if schema_ok != hand_ok:
            disagreements.append((obj, schema_ok))
        # the emit-time fast check may defer to record_problem, never overrule it
        if is_valid_fast(obj):
            assert hand_ok, obj
    assert disagreements == []
    assert sum(_schema_says(o) for o in cases) > 100  # the cases include plenty of valid records


def test_nan_and_infinity_are_not_json() -> None:
    # json.dumps would write NaN; the emitter refuses, and so does a strict JSON reader
    rec = {**full_record(), "causal_effect": math.nan}
    assert record_problem(rec) is not None


@pytest.mark.skipif(importlib.util.find_spec("sidrce.validate") is None, reason="no sidrce.validate")
def test_sidrce_validator_agrees_on_the_same_mutations() -> None:
    from sidrce import validate

    for obj in _mutations(seed=11, n=500):
        want = _schema_says(obj)
        got = validate.problem(obj) is None if isinstance(obj, dict) else record_problem(obj) is None
        # SIDRCE adds one rule (a real calendar time), so it may refuse more, never accept more
        assert not (got and not want), obj
