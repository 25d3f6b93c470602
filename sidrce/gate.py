"""The CI gate: pass or fail a report against an FTI bound and/or a worst grade."""

from __future__ import annotations

from typing import Any

from sidrce.fti import GRADES


def verdict(report: dict[str, Any], *, max_fti: float | None, fail_on: str | None) -> tuple[bool, str]:
    """``(passed, one-line reason)``.

    ``max_fti``: fail when ``fti_avg`` exceeds it, or is undefined (no records, or a group whose
    FTI is undefined). ``fail_on``: ``FAIL`` fails on a FAIL group, ``WARN`` on WARN or FAIL.
    """
    fti_avg = report["fti_avg"]
    worst = report["fti_grade_worst"]
    n = report["count"]
    if n == 0:
        return False, "no valid telemetry records: nothing to certify"
    if max_fti is not None:
        if fti_avg is None:
            bad = [f"{g['domain']}/{g['hypothesis']}" for g in report["groups"] if g["fti"] is None]
            return False, f"fti_avg is undefined (FTI undefined for {', '.join(bad)})"
        if fti_avg > max_fti:
            return False, f"fti_avg {fti_avg:.4f} > --max-fti {max_fti:g} ({n} records)"
    if fail_on is not None and worst is not None and GRADES.index(worst) >= GRADES.index(fail_on):
        bad = [f"{g['domain']}/{g['hypothesis']}" for g in report["groups"] if g["grade"] == worst]
        return False, f"worst grade {worst} (--fail-on {fail_on}): {', '.join(bad)}"
    avg = "undefined" if fti_avg is None else f"{fti_avg:.4f}"
    return True, f"fti_avg {avg}, worst grade {worst} ({n} records)"
