"""The FinOps formulas: FTI, grades, λ. docs/finops-spec.md states them with a worked example.

Pure functions over medians; no I/O and no clock, so the same records always give the same figures.
"""

from __future__ import annotations

import math
from typing import NamedTuple

GRADES = ("OK", "WARN", "FAIL")
OK_MAX = 1.00
WARN_MAX = 1.05
# products of three ratios pick up a few ulps; a group exactly at a bound keeps the better grade
TOL = 1e-12
DEFAULT_LAMBDA_ASDPI = 0.1  # per day


class Baseline(NamedTuple):
    cost: float
    qps: float
    latency: float


def parse_baseline(text: str) -> Baseline:
    """``"cost,qps,latency"`` (the ``--baseline`` / ``SIDRCE_BASELINE`` format)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise ValueError(f"baseline {text!r}: expected 'cost,qps,latency' (three numbers)")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"baseline {text!r}: expected 'cost,qps,latency' (three numbers)") from None
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise ValueError(f"baseline {text!r}: each figure must be a finite number >= 0")
    return Baseline(*values)


def fti(cost: float, qps: float, latency: float, base: Baseline) -> float | None:
    """FTI = (cost/B.cost) / ((qps/B.qps) × (B.latency/latency)) = cost·B.qps·latency / (B.cost·qps·B.latency).

    ``None`` (undefined) when the denominator B.cost·qps·B.latency is 0: a group with no throughput,
    or a baseline figure of 0, cannot be compared. A numerator of 0 over a positive denominator is
    an FTI of 0.
    """
    den = base.cost * qps * base.latency
    if not den > 0:
        return None
    value = (cost * base.qps * latency) / den
    return value if math.isfinite(value) else None


def grade(value: float | None) -> str:
    """OK when FTI ≤ 1.00, WARN when ≤ 1.05, FAIL above or undefined."""
    if value is None:
        return "FAIL"
    if value <= OK_MAX + TOL:
        return "OK"
    if value <= WARN_MAX + TOL:
        return "WARN"
    return "FAIL"


def worst(grades: list[str]) -> str | None:
    return max(grades, key=GRADES.index) if grades else None


def weighted_mean(values: list[float | None], weights: list[int]) -> float | None:
    """Record-count-weighted mean; undefined if any value is undefined or there is no weight."""
    total = sum(weights)
    if total == 0 or any(v is None for v in values):
        return None
    return sum(v * w for v, w in zip(values, weights, strict=True)) / total  # type: ignore[operator]


def lambda_sibg(fti_early: float | None, fti_late: float | None, n: int) -> float:
    """clamp(0.5 + (early − late)/early, 0, 1); 0.5 (no evidence) with < 2 records, an undefined
    half, or an early FTI of 0."""
    if n < 2 or fti_early is None or fti_late is None or fti_early == 0:
        return 0.5
    return min(1.0, max(0.0, 0.5 + (fti_early - fti_late) / fti_early))


def lambda_effective(sibg: float, asdpi: float, days_since_change: float) -> float:
    return sibg * math.exp(-asdpi * days_since_change)
