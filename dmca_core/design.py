"""The regression design every estimator shares: ``outcome ~ 1 + treatment + adjustment``.

Both backends check the variables the same way here, so a bad study gets the same message
whichever estimator runs it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import UsageError
from .types import Table


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
