"""Per-line validation of plain telemetry records, in agreement with ``telemetry_contract.json``.

Checks with one meaning:

- :func:`problem` is the exact rule (the contract's, enforced by hand in
  :func:`dmca_core.telemetry.record.record_problem`) plus two rules of SIDRCE's own: a ``ts`` that
  matches the contract's pattern must also be a real calendar time (``2024-13-45T99:99:99Z``
  matches the pattern but cannot be ordered), and a number must fit a double (an integer written
  out with 400 digits is a JSON number, but has no median).
- :data:`FAST` (when msgspec is installed) decodes JSON straight into a typed struct whose
  constraints are at least as strict as the contract's. Whatever it accepts the contract accepts;
  whatever it refuses is re-checked by :func:`problem`, so the verdict is always the exact one.
  ``tests/test_sidrce_validate.py`` checks both against ``jsonschema`` with the contract.
- :data:`SCANNER` (when ``sidrce/_linescan.c`` was compiled at install) reads whole blocks of
  lines in the common shape straight into numeric columns, and gives up on a block at anything
  else; the same one-sided rule holds (``tests/test_sidrce_linescan.py``).
"""

from __future__ import annotations

import functools
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np

from dmca_core.telemetry.record import (
    OPTIONAL,
    REQUIRED,
    SCHEMA_VERSION,
    TS_PATTERN,
    has_lone_surrogate,
    record_problem,
)

CONTRACT = Path(__file__).with_name("telemetry_contract.json")

_MAX = sys.float_info.max


#: the record's number fields (the contract's ``number`` type)
NUMBER_FIELDS = tuple(name for name, kind in REQUIRED + OPTIONAL if kind in ("num", "num0"))


def problem(obj: Any) -> str | None:
    """Why ``obj`` (a parsed JSON line) is not a valid plain record; ``None`` if it is."""
    why = record_problem(obj)
    if why is None and "ts" in obj and ts_epoch(obj["ts"]) is None:
        return "field 'ts': not a real calendar time"
    if why is None:
        for name in NUMBER_FIELDS:  # an integer literal like 1e400 spelled out has no float value
            value = obj.get(name)
            if type(value) is int and not -_MAX <= value <= _MAX:
                return f"field {name!r}: a number beyond the range of a double"
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

    Returns ``None`` when that case does not hold, any value is not a real time, or a time lies
    outside about 1685-2255 (beyond 2^53 microseconds from 1970, where the float result could
    differ from :func:`ts_epoch`'s in the last bit); the caller then goes record by record.
    Missing values would be NaN, but this function refuses them instead.
    """
    n = len(values)
    if n == 0:
        return np.empty(0)
    first = values[0]
    if type(first) is not str:
        return None
    try:
        blob = "".join(values).encode("ascii")  # type: ignore[arg-type]
    except (TypeError, UnicodeEncodeError):
        return None
    return ts_epochs_blob(blob, n, len(first))


_SEP_COLS = (4, 7, 10, 13, 16)
_SEPS = np.frombuffer(b"--T::", np.uint8)
_DIGIT_COLS = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18)
_MDAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int32)


def ts_epochs_blob(blob: bytes, n: int, width: int) -> np.ndarray | None:
    """:func:`ts_epochs` of ``n`` ASCII times of ``width`` characters each, concatenated.

    Checks the separators on the (n, width) byte matrix, then converts only its digit columns,
    transposed so that each digit position is one contiguous row of 32-bit integers: a few array
    passes per digit, no per-record Python.
    """
    if len(blob) != width * n or width < 20 or width == 21 or width > 30:
        return None
    m = np.frombuffer(blob, dtype=np.uint8).reshape(n, width)
    # the separators of the contract's pattern, then "Z"
    if not bool((m[:, _SEP_COLS] == _SEPS).all()) or not bool((m[:, width - 1] == 90).all()):
        return None
    if width > 20 and not bool((m[:, 19] == 46).all()):
        return None
    digit_cols = _DIGIT_COLS + tuple(range(20, width - 1))
    d = m[:, digit_cols] - np.uint8(48)  # uint8 wraps: below "0" is > 9 too
    if bool((d > 9).any()):
        return None  # equal lengths but another layout: let the slow path judge
    # one row per digit position, contiguous: the arithmetic below runs on whole rows
    dt = np.ascontiguousarray(d.T).astype(np.int32)

    def num(a: int, b: int) -> np.ndarray:
        out = dt[a].copy()
        for k in range(a + 1, b):
            out *= 10
            out += dt[k]
        return out

    # rows of dt: 0-3 year, 4-5 month, 6-7 day, 8-9 hour, 10-11 minute, 12-13 second, 14- fraction
    year, month, day = num(0, 4), num(4, 6), num(6, 8)
    hour, minute, sec = num(8, 10), num(10, 12), num(12, 14)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    mdays = _MDAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
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
    days = (era * 146097 + doe - 719468).astype(np.int64)
    # as datetime.timestamp(): whole microseconds since the epoch (a longer fraction is cut, as
    # fromisoformat cuts it), then one division, which is exact while they fit in 53 bits
    us = days * 86400 + (hour * 3600 + minute * 60 + sec)
    us *= 1_000_000
    for k in range(14, 14 + min(width - 21, 6)):
        us += dt[k].astype(np.int64) * 10 ** (6 - (k - 13))
    if int(np.abs(us).max()) >= 1 << 53:  # after the year 2255: the slow path is exact
        return None
    return us / 1e6


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


def _build_fast(literals: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> Any:
    if msgspec is None:
        return None
    known = dict(literals)

    def typ(name: str, kind: str) -> Any:
        return Literal[known[name]] if name in known else _fast_type(kind)

    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [(n, typ(n, k)) for n, k in REQUIRED]
    # optional fields: absent is fine, explicit null is not (the contract has no null)
    fields += [(n, typ(n, k), msgspec.UNSET) for n, k in OPTIONAL]
    types: dict[str, Any] = {}
    rec = msgspec.defstruct("FastRecord", fields, gc=False, namespace=types)  # type: ignore[arg-type]
    return rec


FastRecord = _build_fast()
#: Decoder of one JSON text into a :data:`FastRecord` (``None`` without msgspec).
FAST = msgspec.json.Decoder(FastRecord) if FastRecord is not None else None

#: String fields whose few values repeat from record to record (see :func:`fast_decoder`).
REPEATED = tuple(n for n, k in REQUIRED + OPTIONAL if k == "str")


@functools.lru_cache(maxsize=64)
def fast_decoder(literals: tuple[tuple[str, tuple[str, ...]], ...]) -> Any:
    """:data:`FAST` with some string fields narrowed to the values already seen (``Literal``).

    Decoding such a field then returns the one stored string instead of a new one per record,
    which saves an allocation, a free and a hash per field and record. It accepts a subset of what
    :data:`FAST` accepts (those values are non-empty strings), so its verdicts stay exact; a record
    with another value fails it and is decoded again by :data:`FAST`.
    """
    return msgspec.json.Decoder(_build_fast(literals))


def fast_accepts(line: bytes) -> bool:
    """Whether the fast path accepts ``line`` (for tests: it must never accept a bad record)."""
    if FAST is None:
        return False
    try:
        rec = FAST.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
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
    """Strict JSON: ``NaN``/``Infinity`` (which Python's json accepts) are refused, and so are a
    string holding a lone surrogate (``"\\ud800"``: no Unicode text, which msgspec refuses too and
    which cannot be printed or encoded as UTF-8) and nesting too deep to parse (ValueError)."""
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nesting too deep") from None
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if has_lone_surrogate(raw, obj):
        raise ValueError("lone surrogate: a string that is not valid Unicode")
    return obj


def check_line(line: bytes) -> tuple[str, str] | None:
    """``(reason, detail)`` for a plain line that is not a valid record, ``None`` if it is."""
    try:
        obj = loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        return "not_json", str(exc).split(":")[0]
    why = problem(obj)
    return ("schema", why) if why else None


# --- the fastest path: a compiled scanner into columns ------------------------------------------
#: the numeric columns the scanner fills, in this order: ts and the collector's number columns, then the CI
SCAN_COLUMNS = (
    ("ts", "ts"),
    ("infra_cost_usd", "cost"),
    ("qps", "qps"),
    ("latency_p95_ms", "lat"),
    ("causal_effect", "eff"),
    ("reliability_score", "rel"),
    ("SR9", "sr9"),
    ("DI2", "di2"),
    ("ci_low", "ci_low"),
    ("ci_high", "ci_high"),
)
_KIND_CODES = {"str": 0, "int0": 1, "num0": 2, "num": 3, "ts": 4, "version": 5}
#: the fields of a line's key (see ``_linescan.c``): the group, then what tells studies apart
_ROLES = {"domain": 1, "hypothesis": 2, "intervention": 3, "study": 4, "outcome": 5}


def _build_scanner() -> Any:
    """The compiled scanner (``sidrce/_linescan.c``) for the record's fields, or ``None`` where it
    was not built (no C compiler at install time): the collector then reads with msgspec."""
    try:
        from sidrce._linescan import Scanner
    except ImportError:
        return None
    col = {name: i for i, (name, _) in enumerate(SCAN_COLUMNS)}
    required = {name for name, _ in REQUIRED}
    fields = [
        (name, _KIND_CODES[kind], col.get(name, -1), _ROLES.get(name, 0), name in required)
        for name, kind in REQUIRED + OPTIONAL
    ]
    try:
        return Scanner(fields, len(SCAN_COLUMNS), SCHEMA_VERSION)
    except ValueError:  # a build older than this table (an in-place build not redone): msgspec reads
        return None


SCANNER = _build_scanner()
