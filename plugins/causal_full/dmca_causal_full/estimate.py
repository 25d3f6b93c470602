"""Backdoor estimation through DoWhy's ``backdoor.linear_regression``.

DoWhy fits ``Y ~ 1 + T + W`` with statsmodels; the HC3 standard error comes from that same fitted
model (``get_robustcov_results``), so every figure here is DoWhy's own fit. The 95% interval uses
Student's t with the fit's residual degrees of freedom, as the fallback does (docs/metrics.md).

Facts this module works around: ``import dowhy`` takes seconds (imported lazily, once);
``identify_effect`` picks its adjustment set in hash order, so the set is always passed and then
pinned on the estimand; ``CausalModel`` logs freely (its loggers are quietened). Column names are
mapped to plain identifiers before they reach DoWhy, whose graph parser chokes on some names.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
from scipy.special import stdtrit

from dmca_core.design import design_columns, leverage_error
from dmca_core.errors import DataError
from dmca_core.types import EffectEstimate, Table

COLLINEAR_TOL = 1e-9


@cache
def _dowhy() -> Any:
    for name in ("dowhy", "dowhy.causal_model", "dowhy.causal_identifier", "dowhy.causal_estimator"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import dowhy

    return dowhy


def _check_design(
    table: Table, treatment: str, outcome: str, adjustment: Sequence[str], *, leverage: bool = True
) -> None:
    """Refuse a singular design with a message naming the column (statsmodels' pseudo-inverse
    would otherwise return an arbitrary coefficient); with ``leverage``, also a row of leverage 1
    (no HC3 error there, though the coefficient is defined)."""
    X, _, names = design_columns(table, treatment, outcome, adjustment)
    n, q = X.shape
    if n - q - 1 < 1:
        raise DataError(f"{n} rows cannot fit {q + 1} coefficients (intercept, {', '.join(names)})")
    Xc = X - X.mean(axis=0)
    norms = np.linalg.norm(Xc, axis=0)
    for j, name in enumerate(names):
        if norms[j] == 0.0:
            raise DataError(f"column {name!r} is constant ({X[0, j]:g}): it cannot enter the regression")
    # each column's distance from the span of the ones before it, columns at unit norm
    q, rr = np.linalg.qr(Xc / norms)
    r = np.abs(np.diag(rr))
    for j, name in enumerate(names):
        if r[j] < COLLINEAR_TOL:
            role = "treatment" if name == treatment else "adjustment column"
            others = [v for v in names if v != name]
            raise DataError(
                f"{role} {name!r} is collinear with the other regressors ({', '.join(others)} and the "
                "intercept): the effect is not identified from these data"
            )
    # statsmodels' HC3 would divide by 1 - h = 0 there; the fallback refuses the same rows
    if leverage and (error := leverage_error(1.0 / n + np.einsum("rq,rq->r", q, q), X, names)) is not None:
        raise error


def estimate(
    table: Table, treatment: str, outcome: str, adjustment: Sequence[str], t0: float, t1: float
) -> EffectEstimate:
    """DoWhy ``CausalModel`` + ``identify_effect`` + ``estimate_effect(backdoor.linear_regression)``."""
    _check_design(table, treatment, outcome, adjustment)
    result, fitted = _fit(table, treatment, outcome, adjustment, t0, t1)
    scale = float(t1) - float(t0)
    se = abs(scale) * float(fitted.get_robustcov_results(cov_type="HC3").bse[1])
    effect = float(result.value)
    dof = int(round(fitted.df_resid))
    half = float(stdtrit(dof, 0.975)) * se
    return EffectEstimate(
        effect=effect,
        se=se,
        ci_low=effect - half,
        ci_high=effect + half,
        t_classical=float(np.asarray(fitted.tvalues)[1]),
        dof=dof,
        adjustment_set=tuple(adjustment),
    )


def estimate_many(
    table: Table,
    treatment: str,
    outcome: str,
    adjustment: Sequence[str],
    t0: float,
    t1: float,
    row_sets: Sequence[np.ndarray] | np.ndarray,
) -> np.ndarray:
    """The effect on each row set by the same DoWhy fit; NaN where a set's design is singular.

    A refit (data subsets, bootstrap) needs only the point estimate, which a set with a row of
    leverage 1 has (a binary treatment with one treated row in the set): refusing it, as
    ``estimate`` must for its HC3 error, made those refutations fail where the fallback's passed.
    """
    out = np.full(len(row_sets), np.nan)
    for i, rows in enumerate(row_sets):
        sub = table.take(np.asarray(rows))
        try:
            _check_design(sub, treatment, outcome, adjustment, leverage=False)
        except DataError:
            continue
        out[i] = float(_fit(sub, treatment, outcome, adjustment, t0, t1)[0].value)
    return out


def _fit(
    table: Table, treatment: str, outcome: str, adjustment: Sequence[str], t0: float, t1: float
) -> tuple[Any, Any]:
    """DoWhy's estimate and the statsmodels fit behind it, on a design already checked."""
    dowhy = _dowhy()
    import pandas as pd

    alias = {v: f"v{i}" for i, v in enumerate((treatment, outcome, *adjustment))}
    df = pd.DataFrame({alias[v]: table.column(v) for v in alias})
    common = [alias[v] for v in adjustment]
    with warnings.catch_warnings():
        # DoWhy warns about graphs built from common causes alone; that is exactly the intent here
        warnings.simplefilter("ignore")
        model = dowhy.CausalModel(
            data=df, treatment=alias[treatment], outcome=alias[outcome], common_causes=common
        )
        estimand = model.identify_effect(proceed_when_unidentifiable=True)
        estimand.set_backdoor_variables(common, key="backdoor")
        estimand.set_backdoor_variables(common)
        result = model.estimate_effect(
            estimand,
            method_name="backdoor.linear_regression",
            control_value=float(t0),
            treatment_value=float(t1),
        )
    fitted = result.estimator.model
    used = list(result.estimator._observed_common_causes_names)
    if sorted(used) != sorted(common):  # the pinning above must hold, or the answer is not ours
        raise RuntimeError(f"DoWhy adjusted for {used}, not the requested {common}")
    return result, fitted
