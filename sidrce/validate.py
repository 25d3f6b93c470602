"""Per-line validation of plain telemetry records, in agreement with ``telemetry_contract.json``.

Two checks with one meaning:

- :func:`problem` is the exact rule (the contract's, enforced by hand in
  :func:`dmca_core.telemetry.record.record_problem`) plus one rule of SIDRCE's own: a ``ts`` that
  matches the contract's pattern must also be a real calendar time (``2024-13-45T99:99:99Z``
  matches the pattern but cannot be ordered).
- :data:`FAST` (when msgspec is installed) decodes JSON straight into a typed struct whose
  constraints are at least as strict as the contract's. Whatever it accepts the contract accepts;
  whatever it refuses is re-checked by :func:`problem`, so the verdict is always the exact one.
  ``tests/test_sidrce_validate.py`` checks both against ``jsonschema`` with the contract.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from dmca_core.telemetry.record import OPTIONAL, REQUIRED, SCHEMA_VERSION, TS_PATTERN, record_problem

CONTRACT = Path(__file__).with_name("telemetry_contract.json")

_MAX = sys.float_info.max


def problem(obj: Any) -> str | None:
    """Why ``obj`` (a parsed JSON line) is not a valid plain record; ``None`` if it is."""
    why = record_problem(obj)
    if why is None and "ts" in obj and ts_epoch(obj["ts"]) is None:
        return "field 'ts': not a real calendar time"
    return why


def ts_epoch(ts: str) -> float | None:
    """Seconds since 1970-01-01T00:00:00Z of a contract ``ts``; ``None`` if it is no real time."""
    if not ts.isascii():  # the pattern's \\d also matches non-ASCII digits
        return None
    try:
        dt = datetime.fromisoformat(ts)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def ts_epochs(values: list[str | None]) -> np.ndarray | None:
    """Vectorised :func:`ts_epoch` for the common case: every ``ts`` present, ASCII, one length.

    Returns ``None`` when that case does not hold or any value is not a real time (the caller then
    goes record by record). Missing values would be NaN, but this function refuses them instead.
    """
    n = len(values)
    if n == 0:
        return np.empty(0)
    first = values[0]
    if type(first) is not str:
        return None
    width = len(first)
    try:
        blob = "".join(values).encode("ascii")  # type: ignore[arg-type]
    except (TypeError, UnicodeEncodeError):
        return None
    if len(blob) != width * n or width < 20 or width == 21 or width > 30:
        return None
    m = np.frombuffer(blob, dtype=np.uint8).reshape(n, width).astype(np.int64) - 48

    def num(a: int, b: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.int64)
        for k in range(a, b):
            out = out * 10 + m[:, k]
        return out

    digit_cols = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, *range(20, width - 1)]
    d = m[:, digit_cols]
    if d.min() < 0 or d.max() > 9:  # equal lengths but another layout: let the slow path judge
        return None
    # the separators of the contract's pattern, then "Z" (offsets from "0", as m holds)
    seps = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":", width - 1: "Z"}
    if width > 20:
        seps[19] = "."
    for col, ch in seps.items():
        if not bool((m[:, col] == ord(ch) - 48).all()):
            return None
    year, month, day = num(0, 4), num(5, 7), num(8, 10)
    hour, minute, sec = num(11, 13), num(14, 16), num(17, 19)
    frac = num(20, width - 1) / 10.0 ** (width - 21) if width > 20 else np.zeros(n)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    mdays = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)]
    mdays = mdays + ((month == 2) & leap)
    ok = (month >= 1) & (month <= 12) & (day >= 1) & (day <= mdays) & (hour < 24) & (minute < 60) & (sec < 60)
    if year.min() < 1 or not bool(ok.all()):
        return None
    # days from the civil date (proleptic Gregorian), H. Hinnant's algorithm
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return (days * 86400 + hour * 3600 + minute * 60 + sec).astype(np.float64) + frac


# --- the fast path ---------------------------------------------------------------------------
try:
    import msgspec
except ImportError:  # optional speed-up; the exact path below works without it
    msgspec = None  # type: ignore[assignment]


def _fast_type(kind: str) -> Any:
    Meta = msgspec.Meta
    return {
        "str": Annotated[str, Meta(min_length=1)],
        "int0": Annotated[int, Meta(ge=0)],
        "num0": Annotated[float, Meta(ge=0, le=_MAX)],
        "num": Annotated[float, Meta(ge=-_MAX, le=_MAX)],
        # the pattern is checked per block by ts_epochs (vectorised) or per record: a regex here
        # would cost more than the rest of the record
        "ts": str,
        "version": Annotated[int, Meta(ge=SCHEMA_VERSION, le=SCHEMA_VERSION)],
    }[kind]


def _build_fast() -> Any:
    if msgspec is None:
        return None
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [(n, _fast_type(k)) for n, k in REQUIRED]
    # optional fields: absent is fine, explicit null is not (the contract has no null)
    fields += [(n, _fast_type(k), msgspec.UNSET) for n, k in OPTIONAL]
    types: dict[str, Any] = {}
    rec = msgspec.defstruct("FastRecord", fields, gc=False, namespace=types)  # type: ignore[arg-type]
    return rec


FastRecord = _build_fast()
#: Decoder of one JSON text into a :data:`FastRecord` (``None`` without msgspec).
FAST = msgspec.json.Decoder(FastRecord) if FastRecord is not None else None


def fast_accepts(line: bytes) -> bool:
    """Whether the fast path accepts ``line`` (for tests: it must never accept a bad record)."""
    if FAST is None:
        return False
    try:
        rec = FAST.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False
    ts = rec.ts
    # the collector checks ts per block, as here: vectorised, or pattern + calendar per record
    return (
        ts is msgspec.UNSET
        or ts_epochs([ts]) is not None
        or (TS_PATTERN.match(ts) is not None and ts_epoch(ts) is not None)
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: bytes | str) -> Any:
    """Strict JSON: ``NaN``/``Infinity`` (which Python's json accepts) are refused."""
    return json.loads(text, parse_constant=_reject_constant)


def check_line(line: bytes) -> tuple[str, str] | None:
    """``(reason, detail)`` for a plain line that is not a valid record, ``None`` if it is."""
    try:
        obj = loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        return "not_json", str(exc).split(":")[0]
    why = problem(obj)
    return ("schema", why) if why else None
