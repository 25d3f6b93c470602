"""Shared machinery of the simulated domains: structural causal models and their ground truth.

A simulator draws every exogenous noise term first (``noise``), then evaluates the structural
equations in causal order (``run``), with ``do`` forcing chosen variables to constants. The
ground truth of an intervention re-runs the same equations on one fresh set of noise draws with
the treatment forced to ``t0`` and to ``t1`` (common random numbers), so the Monte-Carlo error of
the difference is small.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from ..errors import UsageError
from ..types import Graph, Truth

# above this mean the Poisson draw uses its normal approximation (relative skew < 5%)
POISSON_EXACT_MAX = 400.0


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """Φ(z), accurate in both tails. scipy's C routine: ``np.vectorize(math.erf)`` was ~35% of a
    small direct_lab step (its 100,000-draw ground truth calls this three times)."""
    from scipy.special import ndtr  # imported here: `dmca` commands that simulate nothing skip it

    return ndtr(np.asarray(z, dtype=np.float64))


def poisson_from_normal(z: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """A Poisson(mu) count driven by a standard-normal noise term ``z``, monotone in ``z``.

    Inversion of the Poisson CDF at u = Φ(z) for mu <= 400; above that the normal approximation
    with continuity correction. Being monotone in the same ``z``, two means get coupled counts,
    which keeps the Monte-Carlo error of a do() contrast small.
    """
    z = np.asarray(z, dtype=np.float64)
    mu = np.broadcast_to(np.asarray(mu, dtype=np.float64), z.shape)
    out = np.empty(z.shape)
    big = mu > POISSON_EXACT_MAX
    out[big] = np.maximum(np.floor(mu[big] + np.sqrt(mu[big]) * z[big] + 0.5), 0.0)
    small = ~big
    if np.any(small):
        m = mu[small]
        u = normal_cdf(z[small])
        k = np.zeros(m.shape)
        pmf = np.exp(-m)
        cdf = pmf.copy()
        todo = cdf < u
        kmax = int(POISSON_EXACT_MAX + 12 * math.sqrt(POISSON_EXACT_MAX) + 20)
        for j in range(1, kmax):
            if not todo.any():
                break
            pmf = pmf * m / j
            cdf = cdf + pmf
            k = np.where(todo, j, k)
            todo = todo & (cdf < u)
        out[small] = k
    return out


class Simulator(Protocol):
    """One (domain, hypothesis, params) structural causal model."""

    variables: tuple[str, ...]

    def graph(self) -> Graph: ...

    def noise(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]: ...

    def run(self, noise: Mapping[str, np.ndarray], do: Mapping[str, float]) -> dict[str, np.ndarray]: ...


def forced(do: Mapping[str, float], name: str, value: np.ndarray | float, n: int) -> np.ndarray:
    """``value`` (broadcast to n rows), or the constant ``do[name]`` when ``name`` is intervened on."""
    if name in do:
        return np.full(n, float(do[name]))
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()


class TruthFn:
    """E[Y | do(T=t1)] - E[Y | do(T=t0)] by re-simulation; a plain object so DomainData pickles."""

    def __init__(self, simulator: Simulator, seed: int, draws: int = 100_000) -> None:
        self.simulator = simulator
        self.seed = int(seed)
        self.draws = int(draws)

    def __call__(self, treatment: str, outcome: str, t0: float, t1: float) -> Truth:
        names = self.simulator.variables
        for role, v in (("treatment", treatment), ("outcome", outcome)):
            if v not in names:
                raise UsageError(f"unknown {role} {v!r}; valid: {', '.join(names)}")
        if treatment == outcome:
            raise UsageError(f"treatment and outcome are both {treatment!r}")
        # a stream of its own, so the truth does not reuse the data's noise draws
        rng = np.random.default_rng([self.seed, 0x7472757468])
        noise = self.simulator.noise(rng, self.draws)
        y1 = self.simulator.run(noise, {treatment: float(t1)})[outcome]
        y0 = self.simulator.run(noise, {treatment: float(t0)})[outcome]
        diff = y1 - y0
        return Truth(
            effect=float(diff.mean()),
            mc_se=float(diff.std(ddof=1) / math.sqrt(diff.size)),
            draws=int(diff.size),
        )


def check_hypothesis(domain: str, hypothesis: str, valid: tuple[str, ...]) -> None:
    if hypothesis not in valid:
        raise UsageError(f"domain {domain!r}: unknown hypothesis {hypothesis!r}; valid: {', '.join(valid)}")


def check_params(domain: str, hypothesis: str, params: Mapping[str, Any], valid: Mapping[str, Any]) -> dict:
    """``valid`` (name -> default) overridden by ``params``; unknown names are a UsageError."""
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise UsageError(
            f"domain {domain!r}, hypothesis {hypothesis!r}: unknown param {unknown[0]!r}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    return {**valid, **params}


def number_param(domain: str, params: Mapping[str, Any], name: str, *, positive: bool = True) -> float:
    v = params[name]
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise UsageError(f"domain {domain!r}: param {name!r} must be a number, got {v!r}") from None
    if not math.isfinite(x) or (positive and x <= 0):
        raise UsageError(f"domain {domain!r}: param {name!r} must be a positive number, got {v!r}")
    return x


def choice_param(domain: str, params: Mapping[str, Any], name: str, valid: tuple[str, ...]) -> str:
    v = params[name]
    if v not in valid:
        raise UsageError(f"domain {domain!r}: param {name!r} is {v!r}; valid: {', '.join(valid)}")
    return str(v)


def check_rows(domain: str, rows: int) -> int:
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 2:
        raise UsageError(f"domain {domain!r}: rows must be an integer >= 2, got {rows!r}")
    return int(rows)
