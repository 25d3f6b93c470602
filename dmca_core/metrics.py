"""Legacy FTI/λ names, kept only to point their callers at SIDRCE.

DMCA never computes FTI or λ: those are FinOps figures over many runs' telemetry, and SIDRCE
alone owns their definition (docs/finops-spec.md). Old code that imported these names gets an
error that says where the figures live now; ``dmca migrate-check`` finds such code.
"""

from __future__ import annotations

from typing import Any, NoReturn

from .errors import LegacyMetricError

#: legacy name -> what to use instead
LEGACY_NAMES: dict[str, str] = {
    "compute_fti": "`sidrce collect ops_telemetry.jsonl --json` (field fti_avg, groups[].fti)",
    "compute_fti_avg": "`sidrce collect --json` (field fti_avg)",
    "fti_grade": "`sidrce collect --json` (groups[].grade, fti_grade_worst)",
    "compute_lambda": "`sidrce collect --json` (field lambda_effective)",
    "compute_lambda_effective": "`sidrce collect --json` (field lambda_effective)",
    "lambda_effective": "`sidrce collect --json` (field lambda_effective)",
    "fti_gate": "`sidrce gate FILE --max-fti 1.05`",
}


def _guard(name: str) -> Any:
    def legacy(*args: Any, **kwargs: Any) -> NoReturn:
        raise LegacyMetricError(
            f"dmca_core.metrics.{name} was removed: DMCA never computes FTI or λ. Use {LEGACY_NAMES[name]}."
        )

    legacy.__name__ = name
    legacy.__doc__ = f"Removed: use {LEGACY_NAMES[name]}."
    return legacy


compute_fti = _guard("compute_fti")
compute_fti_avg = _guard("compute_fti_avg")
fti_grade = _guard("fti_grade")
compute_lambda = _guard("compute_lambda")
compute_lambda_effective = _guard("compute_lambda_effective")
lambda_effective = _guard("lambda_effective")
fti_gate = _guard("fti_gate")
