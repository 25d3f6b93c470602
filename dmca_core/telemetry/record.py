"""The operations telemetry record: its fields, how the runner builds one, and the cheap check.

``sidrce/telemetry_contract.json`` is the normative schema; :func:`record_problem` enforces the same
rules by hand (fast enough to run on every ``emit``), and ``tests/test_contract.py`` keeps the two in
agreement.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1

#: ``ts`` must be UTC ISO 8601 with a ``Z`` suffix (fractional seconds optional).
TS_REGEX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$"
TS_PATTERN = re.compile(TS_REGEX.replace("$", r"\Z"))  # "$" would also accept a trailing newline

# kind codes: "str" non-empty string, "int0" integer >= 0, "num0" number >= 0, "num" any number
REQUIRED: tuple[tuple[str, str], ...] = (
    ("domain", "str"),
    ("hypothesis", "str"),
    ("step", "int0"),
    ("intervention", "str"),
    ("infra_cost_usd", "num0"),
    ("qps", "num0"),
    ("latency_p95_ms", "num0"),
)

OPTIONAL: tuple[tuple[str, str], ...] = (
    ("ts", "ts"),
    ("run_id", "str"),
    ("schema_version", "version"),
    # which study the step belongs to (its label) and the outcome it estimates: with intervention,
    # what SIDRCE compares before it reports one effect for a group's records
    ("study", "str"),
    ("outcome", "str"),
    ("causal_effect", "num"),
    ("ci_low", "num"),
    ("ci_high", "num"),
    ("reliability_score", "num"),
    ("SR9", "num"),
    ("DI2", "num"),
    ("estimator", "str"),
    ("cpu_seconds", "num0"),
    ("wall_seconds", "num0"),
    ("peak_mem_mb", "num0"),
    ("fits", "int0"),
)

_MESSAGES = {
    "str": "must be a non-empty string",
    "int0": "must be an integer >= 0",
    "num0": "must be a finite number >= 0",
    "num": "must be a finite number",
    "ts": "must be a UTC ISO 8601 time ending in Z, e.g. 2024-05-01T12:00:00.000Z",
    "version": f"must be the integer {SCHEMA_VERSION}",
}


def _ok(kind: str, value: Any) -> bool:
    t = type(value)
    if kind == "str":
        return t is str and value != ""
    if kind == "ts":
        return t is str and TS_PATTERN.match(value) is not None
    if t is bool:  # bool is an int subclass in Python but not a number in JSON
        return False
    if kind == "num0":
        return (t is int or t is float) and value >= 0 and value != math.inf
    if kind == "num":
        return (t is int or t is float) and -math.inf < value < math.inf
    if kind == "int0":
        # JSON Schema counts 3.0 as an integer; so do we
        return (t is int or (t is float and value.is_integer())) and value >= 0
    if kind == "version":
        return (t is int or t is float) and value == SCHEMA_VERSION
    raise AssertionError(kind)


# The fast check behind every ``emit``: straight-line code generated from the tables above, one
# dict lookup and one or two type tests per field (about a microsecond for a full record). It
# answers True only for records that are valid apart from NaN/Infinity, which the emitter's encoder
# refuses (allow_nan=False); False means "ask record_problem()" for the verdict and the message.
_TESTS = {
    "str": "t is S and v",
    "ts": "t is S and TS(v) is not None",
    "num0": "(t is F or t is I) and v >= 0",
    "num": "t is F or t is I",
    "int0": "t is I and v >= 0",  # an integral float is valid too, but rare: left to the slow path
    "version": f"t is I and v == {SCHEMA_VERSION}",
}


def _generate_fast_check() -> Any:
    # helpers are default arguments so that the generated code reads them as fast locals
    body = [
        "def is_valid_fast(r, M=M, TS=TS, T=type, S=str, I=int, F=float, D=dict):",
        "    if T(r) is not D: return False",
        "    g = r.get",
    ]
    for name, kind in REQUIRED + OPTIONAL:
        body.append(f"    v = g({name!r}, M)")
        body.append("    t = T(v)")
        if (name, kind) in REQUIRED:
            body.append(f"    if not ({_TESTS[kind]}): return False")
        else:
            body.append(f"    if v is not M and not ({_TESTS[kind]}): return False")
    body.append("    return True")
    scope: dict[str, Any] = {"M": object(), "TS": TS_PATTERN.match}
    exec("\n".join(body), scope)  # noqa: S102 - our own constant tables, no user input
    return scope["is_valid_fast"]


is_valid_fast = _generate_fast_check()


# a \u escape of a UTF-16 surrogate (json.loads pairs valid ones), or a surrogate encoded as
# UTF-8 bytes (json.loads decodes bytes with "surrogatepass"): only then can a lone one be left
_SURROGATE = re.compile(rb"\\u[dD][89abcdefABCDEF]|\xed[\xa0-\xbf]")


def has_lone_surrogate(raw: bytes, parsed: Any) -> bool:
    """Whether JSON text ``raw``, as ``json.loads`` parsed it into ``parsed``, holds a string (key or
    value) that is not valid Unicode (``"\\ud800"``): not text, which msgspec refuses and which
    cannot be printed or encoded as UTF-8. The usual line has no escape and no such byte at all,
    and two byte searches clear it."""
    if b"\\u" not in raw and b"\xed" not in raw:
        return False
    return _SURROGATE.search(raw) is not None and not_unicode(parsed)


def not_unicode(parsed: Any) -> bool:
    """Whether a parsed JSON value holds a string (key or value) that is not valid Unicode."""
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (ValueError, RecursionError):  # NaN or nesting: not this check's business
        return False
    return False


def record_problem(record: Any) -> str | None:
    """The first way ``record`` breaks the contract, as ``field 'x': why``; ``None`` if it is valid.

    Unknown extra fields are allowed (the contract's ``additionalProperties`` is true).
    """
    if type(record) is not dict:
        return f"a record must be a JSON object, got {type(record).__name__}"
    for name, kind in REQUIRED:
        if name not in record:
            return f"field {name!r}: required"
        if not _ok(kind, record[name]):
            return f"field {name!r}: {_MESSAGES[kind]}"
    for name, kind in OPTIONAL:
        if name in record and not _ok(kind, record[name]):
            return f"field {name!r}: {_MESSAGES[kind]}"
    return None


def utc_now_iso() -> str:
    """Now as UTC ISO 8601 with millisecond precision and a ``Z`` suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def make_record(
    *,
    domain: str,
    hypothesis: str,
    step: int,
    infra_cost_usd: float,
    qps: float,
    latency_p95_ms: float,
    run_id: str,
    intervention: str | None = None,
    study: str | None = None,
    outcome: str | None = None,
    ts: str | None = None,
    causal_effect: float | None = None,
    ci_low: float | None = None,
    ci_high: float | None = None,
    reliability_score: float | None = None,
    SR9: float | None = None,  # noqa: N803 - the metric's published name
    DI2: float | None = None,  # noqa: N803
    estimator: str | None = None,
    cpu_seconds: float | None = None,
    wall_seconds: float | None = None,
    peak_mem_mb: float | None = None,
    fits: int | None = None,
) -> dict[str, Any]:
    """Build one step's telemetry record in the contract's field order.

    Numbers are converted to Python ``float``/``int`` (numpy scalars are welcome). An optional
    metric that is ``None`` or not finite (a failed estimate) is left out rather than written as
    NaN, which is not JSON. ``intervention`` defaults to ``"-"`` (none); ``ts`` to now. ``study``
    (the study's label) and ``outcome`` are left out when not given.
    """
    rec: dict[str, Any] = {
        "domain": domain,
        "hypothesis": hypothesis,
        "step": int(step),
        "intervention": intervention if intervention else "-",
        "infra_cost_usd": float(infra_cost_usd),
        "qps": float(qps),
        "latency_p95_ms": float(latency_p95_ms),
        "ts": ts if ts is not None else utc_now_iso(),
        "run_id": run_id,
        "schema_version": SCHEMA_VERSION,
    }
    if study:
        rec["study"] = study
    if outcome:
        rec["outcome"] = outcome
    optional: Mapping[str, float | None] = {
        "causal_effect": causal_effect,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "reliability_score": reliability_score,
        "SR9": SR9,
        "DI2": DI2,
        "cpu_seconds": cpu_seconds,
        "wall_seconds": wall_seconds,
        "peak_mem_mb": peak_mem_mb,
    }
    for name, value in optional.items():
        x = _finite(value)
        if x is not None:
            rec[name] = x
    if estimator:
        rec["estimator"] = estimator
    if fits is not None:
        rec["fits"] = int(fits)
    return rec
