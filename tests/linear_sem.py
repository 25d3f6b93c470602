"""A small linear structural-equation simulator: the ground truth the estimation tests check against.

``X_j = sum_i B[i, j] X_i + noise_j`` over a DAG in topological (column) order. The true effect of
``do(T = t1)`` versus ``do(T = t0)`` is found by re-simulating under each intervention with the same
noise and averaging the difference; it does not use any regression.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from dmca_core.types import Graph, Table


@attrs.frozen(eq=False)
class Sem:
    names: tuple[str, ...]
    B: np.ndarray  # B[i, j] != 0: edge names[i] -> names[j]; strictly upper triangular
    noise_sd: np.ndarray

    @property
    def graph(self) -> Graph:
        p = len(self.names)
        edges = [(self.names[i], self.names[j]) for i in range(p) for j in range(p) if self.B[i, j] != 0]
        return Graph(self.names, edges)

    def simulate(
        self,
        n: int,
        rng: np.random.Generator,
        do: dict[str, float] | None = None,
        noise: np.ndarray | None = None,
    ) -> tuple[Table, np.ndarray]:
        """Data (and the noise used, to replay it under an intervention)."""
        p = len(self.names)
        if noise is None:
            noise = rng.standard_normal((n, p)) * self.noise_sd
        X = np.zeros((n, p))
        fixed = {self.names.index(k): v for k, v in (do or {}).items()}
        for j in range(p):
            X[:, j] = fixed[j] if j in fixed else X @ self.B[:, j] + noise[:, j]
        return Table(self.names, X), noise

    def true_effect(self, treatment: str, outcome: str, t0: float, t1: float, n: int, seed: int) -> float:
        """Mean of Y under do(T=t1) minus under do(T=t0), same noise for both."""
        rng = np.random.default_rng(seed)
        j = self.names.index(outcome)
        y1, noise = self.simulate(n, rng, {treatment: t1})
        y0, _ = self.simulate(n, rng, {treatment: t0}, noise=noise)
        return float(np.mean(y1.values[:, j] - y0.values[:, j]))


def sem(
    names: Sequence[str], edges: dict[tuple[str, str], float], noise_sd: Sequence[float] | None = None
) -> Sem:
    names = tuple(names)
    B = np.zeros((len(names), len(names)))
    for (a, b), w in edges.items():
        i, j = names.index(a), names.index(b)
        assert i < j, "list the names in a topological order"
        B[i, j] = w
    sd = np.ones(len(names)) if noise_sd is None else np.asarray(noise_sd, dtype=float)
    return Sem(names, B, sd)


def random_sem(
    rng: np.random.Generator, p: int, density: float = 0.4, low: float = 0.3, high: float = 1.0
) -> Sem:
    """A random DAG over X0..X{p-1} with weights of magnitude in [low, high] and random noise scales."""
    B = np.zeros((p, p))
    mask = np.triu(rng.random((p, p)) < density, 1)
    B[mask] = rng.uniform(low, high, mask.sum()) * rng.choice([-1.0, 1.0], mask.sum())
    return Sem(tuple(f"X{j}" for j in range(p)), B, rng.uniform(0.5, 2.0, p))
