"""The regression design every estimator shares: ``outcome ~ 1 + treatment + adjustment``.

Both backends check the variables the same way here, so a bad study gets the same message
whichever estimator runs it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import DataError, UsageError
from .types import Table

# 1 - h_ii below this: the fit passes through row i exactly (its leverage h_ii is 1)
LEVERAGE_TOL = 1e-10


def design_columns(
    table: Table, treatment: str, outcome: str, adjustment: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(X, y, names)`` with ``X = [T, W...]`` (no intercept column) and ``y`` the outcome."""
    names = (treatment, *adjustment)
    if len(set(names)) != len(names):
        raise UsageError(f"treatment and adjustment set overlap or repeat: {', '.join(names)}")
    if outcome in names:
        raise UsageError(f"outcome {outcome!r} cannot also be the treatment or in the adjustment set")
    try:
        cols = [table.index(v) for v in names]
        y = table.column(outcome)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    return table.values[:, cols], y, names


def leverage_error(leverage: np.ndarray, X: np.ndarray, names: Sequence[str]) -> DataError | None:
    """The error for a design ``X`` (columns ``names``) with a row of leverage 1, or None.

    HC3 divides each squared residual by ``(1 - h_ii)^2``; a row the fit must pass through exactly
    (for a binary column, the only row with one of its values) has a residual of zero that says
    nothing about its variance, and the robust standard error is not defined. The message names
    the columns in which that row's value is the only one of its kind, when there are such.
    """
    i = int(np.argmax(leverage))
    if 1.0 - leverage[i] >= LEVERAGE_TOL:
        return None
    # a column to blame: the row's value there is the only one of its kind (in a column whose
    # values repeat: a continuous column's every value is), and without it the row is an ordinary one
    alone = [
        name
        for j, name in enumerate(names)
        if np.count_nonzero(X[:, j] == X[i, j]) == 1
        and np.unique(X[:, j]).size < len(X)
        and 1.0 - _leverage_without(X, i, j) >= LEVERAGE_TOL
    ]
    why = f", the only row with its value of {' and '.join(map(repr, alone))}" if alone else ""
    return DataError(
        f"data row {i + 1} has leverage 1 (the fit passes through it exactly{why}): the robust (HC3) "
        "standard error is not defined"
    )


def _leverage_without(X: np.ndarray, i: int, j: int) -> float:
    """Row ``i``'s leverage in ``1 + X`` without column ``j`` (only on the leverage error's path)."""
    rest = np.column_stack([np.ones(len(X)), np.delete(X, j, axis=1)])
    q, r = np.linalg.qr(rest)
    keep = np.abs(np.diag(r)) > 1e-12 * max(1.0, float(np.abs(r).max()))  # columns left collinear
    return float(np.sum(q[i, keep] ** 2))
