"""Hook implementations of the causal_fallback plugin: the estimator without causal-learn or DoWhy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dmca_core import hookimpl
from dmca_core.interfaces import Estimator
from dmca_core.types import EffectEstimate, Graph, Table

# the estimation modules import scipy (~0.15 s): loaded at the first fit, not with the plugins,
# which every `sidrce` read and `dmca plugins` loads (the forkserver preloads scipy.special)


class FallbackEstimator:
    """PC discovery and OLS backdoor estimation in numpy (scipy for one quantile); same answers as ``full``."""

    name = "fallback"
    priority = 10

    def discover(self, table: Table, alpha: float) -> Graph:
        from .pc import discover

        return discover(table, alpha)

    def estimate(
        self, table: Table, treatment: str, outcome: str, adjustment: Sequence[str], t0: float, t1: float
    ) -> EffectEstimate:
        from .estimate import estimate

        return estimate(table, treatment, outcome, adjustment, t0, t1)

    def estimate_many(
        self,
        table: Table,
        treatment: str,
        outcome: str,
        adjustment: Sequence[str],
        t0: float,
        t1: float,
        row_sets: Sequence[np.ndarray] | np.ndarray,
    ) -> np.ndarray:
        """Effects on many row sets at once (NaN where a set's design is singular)."""
        from .estimate import estimate_many

        return estimate_many(table, treatment, outcome, adjustment, t0, t1, row_sets)

    def __repr__(self) -> str:
        return "FallbackEstimator()"


@hookimpl
def register_estimators(register: Callable[[Estimator], None]) -> None:
    register(FallbackEstimator())
