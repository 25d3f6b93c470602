"""A domain ``hello_linear``: Z -> X -> Y and Z -> Y, linear and Gaussian.

The truth is computed the way DMCA's own simulators do it: re-simulate with X forced to each
value, same exogenous noise, and difference the means.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dmca_core import hookimpl
from dmca_core.errors import UsageError
from dmca_core.types import DomainData, Graph, Table, Truth

VARIABLES = ("Z", "X", "Y")


def _simulate(noise: np.ndarray, effect: float, x_forced: float | None = None) -> dict[str, np.ndarray]:
    z = noise[0]
    x = 0.8 * z + noise[1] if x_forced is None else np.full_like(z, x_forced)
    y = effect * x + 1.5 * z + noise[2]
    return {"Z": z, "X": x, "Y": y}


class _Truth:
    """Picklable truth function (studies may run in worker processes)."""

    def __init__(self, seed: int, effect: float, draws: int = 20000) -> None:
        self.seed, self.effect, self.draws = seed, effect, draws

    def __call__(self, treatment: str, outcome: str, t0: float, t1: float) -> Truth:
        if treatment != "X" or outcome not in VARIABLES:
            raise UsageError(f"hello_linear can intervene on X only; outcomes: {', '.join(VARIABLES)}")
        noise = np.random.default_rng([self.seed, 1]).standard_normal((3, self.draws))
        diff = _simulate(noise, self.effect, t1)[outcome] - _simulate(noise, self.effect, t0)[outcome]
        return Truth(float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(self.draws)), self.draws)


class HelloLinear:
    name = "hello_linear"

    def hypotheses(self) -> tuple[str, ...]:
        return ("toy",)

    def variables(self, hypothesis: str) -> tuple[str, ...]:
        return VARIABLES

    def load(self, hypothesis: str, rows: int, seed: int, params: Mapping[str, Any]) -> DomainData:
        unknown = set(params) - {"effect"}
        if unknown:
            raise UsageError(f"hello_linear: unknown parameter {sorted(unknown)[0]!r}; valid: effect")
        effect = float(params.get("effect", 2.0))
        noise = np.random.default_rng([seed, 0]).standard_normal((3, rows))
        table = Table.from_columns(_simulate(noise, effect))
        graph = Graph(VARIABLES, {("Z", "X"), ("X", "Y"), ("Z", "Y")})
        return DomainData(table, graph, _Truth(seed, effect), {"effect": effect})


@hookimpl
def register_domains(register: Callable[[HelloLinear], None]) -> None:
    register(HelloLinear())
