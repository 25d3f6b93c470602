"""The CI gate: pass or fail a report against an FTI bound and/or a worst grade."""

from __future__ import annotations

from typing import Any

from dmca_core.errors import first_line
from sidrce.fti import GRADES, TOL

__all__ = ["first_line", "printable", "rejection_hint", "verdict"]  # first_line: for cli and server


def printable(text: str) -> str:
    """``text`` with non-printable characters (ESC, NUL, ...) escaped, for terminal output: a
    domain name from telemetry must not move the cursor or recolour the screen."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


KEY_HINT = "sealed with a key that is not configured; set SIDRCE_AES_KEY (or SIDRCE_AES_KEYS) to the key the emitter used"
PLAINTEXT_HINT = (
    "plaintext telemetry while a key is set: encrypt it (telemetry.encryption: line or batch in "
    "dmca's config), or unset SIDRCE_AES_KEY/SIDRCE_AES_KEYS, or pass --allow-plaintext"
)


def rejection_hint(rejected: dict[str, int]) -> str | None:
    """What most of the rejected lines point to, when they point to one: ``"not telemetry"``
    (not_json, schema: another file), ``"wrong key"`` (unknown_kid) or ``"plaintext"``
    (unexpected_plaintext: a key is set and the telemetry is not encrypted); else None."""
    total = sum(rejected.values())
    if rejected.get("not_json", 0) + rejected.get("schema", 0) > total / 2:
        return "not telemetry"
    if rejected.get("unknown_kid", 0) > total / 2:
        return "wrong key"
    if rejected.get("unexpected_plaintext", 0) > total / 2:
        return "plaintext"
    return None


def _above(value: float, bound: float) -> str:
    """``value`` shown with enough digits to be seen above ``bound``."""
    short = f"{value:.4f}"
    return short if float(short) > bound + TOL else repr(value)


def verdict(
    report: dict[str, Any], *, max_fti: float | None, fail_on: str | None, min_records: int = 1
) -> tuple[bool, str]:
    """``(passed, one-line reason)``; the reason ends with the rejected lines by reason, if any.

    ``min_records``: fail with fewer valid records (a run cut short, a file truncated).

    ``max_fti``: fail when ``fti_avg`` exceeds it by more than the grades' tolerance (1e-12), or is
    undefined (no records, or a group whose FTI is undefined). ``fail_on``: ``FAIL`` fails on a
    FAIL group, ``WARN`` on WARN or FAIL.
    """
    n = report["count"]
    if 0 < n < min_records:
        passed, why = False, f"{n} valid records, fewer than --min-records {min_records}"
    else:
        passed, why = _verdict(report, max_fti=max_fti, fail_on=fail_on)
    rejected = report["rejected"]
    if rejected:
        why += " (rejected: " + " ".join(f"{k}={v}" for k, v in rejected.items()) + ")"
    return passed, why


def _verdict(report: dict[str, Any], *, max_fti: float | None, fail_on: str | None) -> tuple[bool, str]:
    fti_avg = report["fti_avg"]
    worst = report["fti_grade_worst"]
    n = report["count"]
    if n == 0:
        if rejection_hint(report["rejected"]) == "plaintext":
            return False, f"no valid telemetry records: {PLAINTEXT_HINT}"
        return False, "no valid telemetry records: nothing to certify"
    if max_fti is not None:
        if fti_avg is None:
            bad = [
                printable(f"{g['domain']}/{g['hypothesis']}") for g in report["groups"] if g["fti"] is None
            ]
            return False, f"fti_avg is undefined (FTI undefined for {', '.join(bad)})"
        if fti_avg > max_fti + TOL:
            return False, f"fti_avg {_above(fti_avg, max_fti)} > --max-fti {max_fti!r} ({n} records)"
    if fail_on is not None and worst is not None and GRADES.index(worst) >= GRADES.index(fail_on):
        bad = [printable(f"{g['domain']}/{g['hypothesis']}") for g in report["groups"] if g["grade"] == worst]
        return False, f"worst grade {worst} (--fail-on {fail_on}): {', '.join(bad)}"
    avg = "undefined" if fti_avg is None else f"{fti_avg:.4f}"
    return True, f"fti_avg {avg}, worst grade {worst} ({n} records)"
