"""Hook implementations of the causal_full plugin: causal-learn discovery, DoWhy estimation."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dmca_core import hookimpl
from dmca_core.interfaces import Estimator
from dmca_core.types import EffectEstimate, Graph, Table


class FullEstimator:
    """PC from causal-learn and backdoor linear regression from DoWhy (both imported lazily)."""

    name = "full"
    priority = 100

    def prepare(self) -> None:
        """Import causal-learn's PC and DoWhy now (seconds, once per process): DMCA calls this
        before it starts measuring a step, so the first step of each worker is not charged for it."""
        from causallearn.search.ConstraintBased.PC import pc  # noqa: F401

        from .estimate import _dowhy

        _dowhy()

    def discover(self, table: Table, alpha: float) -> Graph:
        from .discovery import discover

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
        from .estimate import estimate_many

        return estimate_many(table, treatment, outcome, adjustment, t0, t1, row_sets)

    def __repr__(self) -> str:
        return "FullEstimator()"


@hookimpl
def register_estimators(register: Callable[[Estimator], None]) -> None:
    register(FullEstimator())
