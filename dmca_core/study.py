"""One causal study: graph, adjustment set, effect, refutations, SR9 and DI2 (docs/metrics.md).

The study owns every random draw (``draws.py``) and hands the backend only rows and columns, so
the ``full`` and ``fallback`` backends compute the same figures from the same seed.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .draws import N_BOOTSTRAP, N_SUBSETS, SUBSET_FRACTION, StudyDraws
from .errors import DataError, UsageError
from .opsmeter import FitMeter
from .types import EffectEstimate, Graph, Refutation, StudyResult, Table

RCC_SHIFT_FRACTION = 0.10  # random_common_cause passes when the estimate moves < 10% of the CI width
RV_THRESHOLD = 0.05  # robustness_value passes at RV >= 0.05
# Refits of an exact fit (residuals at rounding level) differ from it by rounding alone, and its
# interval is about as wide: the interval checks allow this share of |causal_effect| besides,
# nothing next to the width of any interval fitted to noisy data.
ROUNDING = 1e-12


# ---- input checks ---------------------------------------------------------------------------


def _check_inputs(table: Table, treatment: str, outcome: str, t0: float, t1: float, alpha: float) -> None:
    valid = ", ".join(table.names)
    for role, var in (("treatment", treatment), ("outcome", outcome)):
        if var not in table.names:
            raise UsageError(f"unknown {role} variable {var!r}; valid: {valid}")
    if treatment == outcome:
        raise UsageError(f"treatment and outcome are both {treatment!r}; pick two different variables")
    if not (math.isfinite(t0) and math.isfinite(t1)) or t0 == t1:
        raise UsageError(f"t0 and t1 must be finite and differ (got t0={t0!r}, t1={t1!r})")
    if not 0.0 < alpha < 1.0:
        raise UsageError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    bad = table.first_non_finite()
    if bad is not None:
        row, col = bad
        raise DataError(
            f"column {table.names[col]!r}, data row {row + 1}: value {float(table.values[row, col])!r} "
            "is not a finite number"
        )
    y = table.column(outcome)
    if y.size and float(np.ptp(y)) == 0.0:  # every effect is 0 and its interval [0, 0], or rounding
        raise DataError(
            f"the outcome {outcome!r} is constant ({float(y[0]):g}): there is no effect to estimate"
        )
    need = min_rows(table.n_cols)
    if table.n_rows < need:
        raise DataError(
            f"the data have {table.n_rows} rows; a study over {table.n_cols} columns needs {need}"
        )


SMALL_GROUP = 10  # a binary treatment's smaller group below this many rows is warned about


def _small_binary_group(t: np.ndarray) -> tuple[int, float] | None:
    """(rows, value) of a two-valued treatment's smaller group when it has < SMALL_GROUP rows."""
    values, counts = np.unique(t, return_counts=True)
    if len(values) != 2 or counts.min() >= SMALL_GROUP:
        return None
    k = int(np.argmin(counts))
    return int(counts[k]), float(values[k])


def min_rows(n_cols: int) -> int:
    """The fewest rows a study over ``n_cols`` columns runs on: each half of the rows (DI2) must
    still carry PC's partial correlations."""
    return max(20, 2 * (n_cols + 3))


def find_cycle(graph: Graph) -> list[str] | None:
    """A directed cycle of ``graph`` as a closed path of nodes (first = last), or None."""
    children: dict[str, list[str]] = {v: [] for v in graph.nodes}
    for a, b in sorted(graph.directed):
        children[a].append(b)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for c in children[v]:
            if state.get(c) == 1:
                return [*path[path.index(c) :], c]
            if c not in state and (found := visit(c)):
                return found
        path.pop()
        state[v] = 2
        return None

    for v in graph.nodes:
        if v not in state and (found := visit(v)):
            return found
    return None


def _check_graph(graph: Graph, table: Table, treatment: str, outcome: str) -> None:
    for v in graph.nodes:
        if v not in table.names:
            raise UsageError(
                f"the graph names variable {v!r}, which is not a column of the data; "
                f"columns: {', '.join(table.names)}"
            )
    for role, var in (("treatment", treatment), ("outcome", outcome)):
        if var not in graph.nodes:
            raise UsageError(
                f"the {role} {var!r} is not a node of the given graph ({', '.join(graph.nodes)})"
            )
    cycle = find_cycle(graph)
    if cycle:
        raise UsageError(f"the given graph has a cycle: {' -> '.join(cycle)}; a causal graph must be acyclic")


# ---- adjustment sets ------------------------------------------------------------------------


def _ordered(names: Sequence[str], table: Table) -> tuple[str, ...]:
    return tuple(sorted(set(names), key=table.index))


def adjustment_sets(graph: Graph, treatment: str, table: Table) -> list[tuple[str, ...]]:
    """The candidate adjustment sets: T's parents when all of T's edges are oriented, otherwise
    every parent set of T that some DAG in the CPDAG's class allows (IDA)."""
    if not graph.neighbors(treatment):
        return [_ordered(graph.parents(treatment), table)]
    from .cpdag import possible_parent_sets

    sets = {_ordered(s, table) for s in possible_parent_sets(graph, treatment)}
    return sorted(sets, key=lambda s: (len(s), [table.index(v) for v in s]))


# ---- fitting through the meter --------------------------------------------------------------


def _estimate(
    meter: FitMeter,
    estimator: Any,
    table: Table,
    treatment: str,
    outcome: str,
    adj: Sequence[str],
    t0: float,
    t1: float,
) -> EffectEstimate:
    with meter.fit():
        return estimator.estimate(table, treatment, outcome, tuple(adj), t0, t1)


def _discover(meter: FitMeter, estimator: Any, table: Table, alpha: float) -> Graph:
    with meter.fit():
        return estimator.discover(table, alpha)


def _estimate_rows(
    meter: FitMeter,
    estimator: Any,
    table: Table,
    treatment: str,
    outcome: str,
    adj: Sequence[str],
    t0: float,
    t1: float,
    row_sets: np.ndarray,
) -> np.ndarray:
    """The effect on each row set; NaN where that set's design is singular."""
    many: Callable[..., np.ndarray] | None = getattr(estimator, "estimate_many", None)
    if many is not None:
        # one batched call stands for len(row_sets) fits: record each at the batch's mean latency
        start = time.perf_counter()
        out = np.asarray(many(table, treatment, outcome, tuple(adj), t0, t1, row_sets), dtype=np.float64)
        each = (time.perf_counter() - start) / max(len(row_sets), 1)
        meter.latencies.extend([each] * len(row_sets))
        return out
    out = np.full(len(row_sets), np.nan)
    for i, rows in enumerate(row_sets):
        # a resample can make a column constant: that set stays NaN and counts as a failure
        with contextlib.suppress(DataError):
            out[i] = _estimate(meter, estimator, table.take(rows), treatment, outcome, adj, t0, t1).effect
    return out


# ---- the metrics ----------------------------------------------------------------------------


def robustness_value(t: float, dof: int) -> float:
    """Cinelli & Hazlett (2020) RV for q = 1: f = |t| / sqrt(dof), RV = (sqrt(f^4 + 4 f^2) - f^2) / 2.

    Computed as ``2 / (1 + sqrt(1 + 4 / f^2))``, the same value: the textbook form subtracts two
    nearly equal numbers for large f and returned 0 instead of ~1 from f ~ 1e8 on (an exact fit).
    """
    f = abs(t) / math.sqrt(dof)
    if math.isnan(f):
        return math.nan
    if math.isinf(f):
        return 1.0  # a perfect fit: no confounder short of explaining everything can remove it
    f2 = f * f
    if f2 == 0.0:
        return f  # RV ~ f for small f (f^2 underflowed)
    return 2.0 / (1.0 + math.sqrt(1.0 + 4.0 / f2))


def jaccard(a: frozenset[frozenset[str]], b: frozenset[frozenset[str]]) -> float:
    """|a & b| / |a | b|, and 1 when both are empty."""
    union = a | b
    return 1.0 if not union else len(a & b) / len(union)


def _unique_name(base: str, taken: Sequence[str]) -> str:
    name, i = base, 1
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name


def _refute(
    meter: FitMeter,
    estimator: Any,
    table: Table,
    treatment: str,
    outcome: str,
    adj: tuple[str, ...],
    t0: float,
    t1: float,
    est: EffectEstimate,
    draws: StudyDraws,
) -> list[Refutation]:
    sub = table.select((treatment, outcome, *adj))
    width = est.ci_high - est.ci_low
    slack = ROUNDING * abs(est.effect)
    out: list[Refutation] = []

    rule = "the placebo effect's 95% CI covers 0"
    try:
        placebo = sub.with_column(treatment, sub.column(treatment)[draws.placebo])
        p = _estimate(meter, estimator, placebo, treatment, outcome, adj, t0, t1)
        detail: dict[str, Any] = {"ci_low": p.ci_low, "ci_high": p.ci_high, "se": p.se}
        out.append(
            Refutation("placebo_treatment", p.effect, bool(p.ci_low <= 0.0 <= p.ci_high), rule, detail)
        )
    except DataError as exc:
        out.append(Refutation("placebo_treatment", math.nan, False, rule, {"error": str(exc)}))

    rule = f"an added N(0,1) common cause moves the estimate by < {RCC_SHIFT_FRACTION:g} x the CI width"
    name = _unique_name("random_common_cause", table.names)
    try:
        r = _estimate(
            meter,
            estimator,
            sub.with_column(name, draws.common_cause),
            treatment,
            outcome,
            (*adj, name),
            t0,
            t1,
        )
        shift = abs(r.effect - est.effect)
        limit = RCC_SHIFT_FRACTION * width + slack
        detail = {"shift": shift, "limit": limit}
        out.append(Refutation("random_common_cause", r.effect, bool(shift < limit), rule, detail))
    except DataError as exc:
        out.append(Refutation("random_common_cause", math.nan, False, rule, {"error": str(exc)}))

    rule = f"the mean estimate over {N_SUBSETS} random {SUBSET_FRACTION:.0%} subsets lies inside the 95% CI"
    effects = _estimate_rows(meter, estimator, sub, treatment, outcome, adj, t0, t1, draws.subsets)
    mean = float(np.mean(effects))  # NaN (and a failure) if any subset was singular
    detail = {
        "n_subsets": len(effects),
        "min": float(np.min(effects)),
        "max": float(np.max(effects)),
        "singular": int(np.isnan(effects).sum()),
    }
    inside = est.ci_low - slack <= mean <= est.ci_high + slack
    out.append(Refutation("data_subsets", mean, bool(inside), rule, detail))

    rv = robustness_value(est.t_classical, est.dof)
    rule = f"robustness value RV(q=1) >= {RV_THRESHOLD:g}"
    detail = {"t_classical": est.t_classical, "dof": est.dof, "f": abs(est.t_classical) / math.sqrt(est.dof)}
    out.append(Refutation("robustness_value", rv, bool(rv >= RV_THRESHOLD), rule, detail))
    return out


#: |r| from which two columns count as near copies of each other, e.g. observables that track a
#: cause almost without noise (a halo's velocity dispersion, X-ray temperature and lensing mass all
#: follow its mass to r > 0.99 in the cosmology domain)
NEAR_COPY = 0.99


def near_copies(table: Table, limit: float = NEAR_COPY) -> list[tuple[list[str], float]]:
    """Groups of columns that are near copies of each other (|r| >= ``limit``, linked pairwise),
    each with the smallest |r| of the pairs that link it, in column order."""
    p = len(table.names)
    if p < 2:  # corrcoef of one column is a scalar, not a matrix (`dmca discover` on one column)
        return []
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant column: r is NaN, never a copy
        r = np.abs(np.corrcoef(table.values, rowvar=False))
    owner = list(range(p))  # union-find over linked pairs

    def root(i: int) -> int:
        while owner[i] != i:
            i = owner[i]
        return i

    weakest: dict[int, float] = {}
    for i, j in zip(*np.nonzero(np.triu(r >= limit, k=1)), strict=True):
        a, b = root(int(i)), root(int(j))
        low = min(float(r[i, j]), weakest.pop(a, 1.0), weakest.pop(b, 1.0) if a != b else 1.0)
        owner[max(a, b)] = min(a, b)
        weakest[min(a, b)] = low
    groups: dict[int, list[str]] = {}
    for k in range(p):
        groups.setdefault(root(k), []).append(table.names[k])
    return [(names, weakest[g]) for g, names in groups.items() if len(names) > 1]


def near_copy_warning(names: Sequence[str], r: float) -> str:
    return (
        f"columns {', '.join(names)} are near copies of each other (|r| >= {math.floor(r * 1000) / 1000:.3f}): "
        "PC can drop true edges next to them (given one copy, the others look independent of what they "
        "track), and reliability cannot show it; give the graph, or keep one column of the group"
    )


def run_study(
    table: Table,
    *,
    treatment: str,
    outcome: str,
    t0: float,
    t1: float,
    graph: Graph | None,
    alpha: float = 0.01,
    estimator: Any,
    seed: int,
    meter: FitMeter | None = None,
    stage: Callable[[str], None] | None = None,
) -> StudyResult:
    """Estimate the effect of ``treatment`` on ``outcome`` (moving it from ``t0`` to ``t1``) and
    score how far to trust it. ``graph=None`` discovers a CPDAG with PC at level ``alpha``.

    ``estimator`` is an Estimator or its name (``"auto"``, ``"full"``, ``"fallback"``). Every
    ``estimate``/``discover`` call is timed by ``meter``. ``stage`` is told what starts next (a
    progress display: PC can take minutes on a wide table).
    """
    stage = stage or (lambda what: None)
    if isinstance(estimator, str):
        from .plugins import get_estimator

        estimator = get_estimator(estimator)
    meter = FitMeter() if meter is None else meter
    t0, t1 = float(t0), float(t1)
    _check_inputs(table, treatment, outcome, t0, t1, alpha)
    draws = StudyDraws.make(seed, table.n_rows)

    warnings: list[str] = []
    if graph is None:
        stage(f"discovering the graph (PC over {table.n_cols} columns)")
        graph = _discover(meter, estimator, table, alpha)
        source = "discovered"
        warnings.extend(near_copy_warning(group, r) for group, r in near_copies(table))
    else:
        _check_graph(graph, table, treatment, outcome)
        source = "given"
    sets = adjustment_sets(graph, treatment, table)

    # IDA: a parent set holding the outcome means Y -> T in that DAG, where T's effect on Y is 0
    fitted = [s for s in sets if outcome not in s]
    if not fitted:
        why = f"the {source} graph has {outcome} -> {treatment}: {treatment} cannot cause {outcome} under it"
        if source == "given":
            raise UsageError(why)
        raise DataError(f"{why} (give a graph to study that effect){''.join(f'; {w}' for w in warnings)}")
    # after the Y -> T check: its error carries the warnings, and no interval is made there
    if (few := _small_binary_group(table.column(treatment))) is not None:
        warnings.append(
            f"treatment {treatment!r} takes two values and {few[1]:g} only in {few[0]} rows: with so few, "
            "its 95% interval covers less often (0.84-0.93 at 20-40 rows with unequal or skewed "
            "noise; docs/metrics.md)"
        )
    stage("estimating the effect")
    estimates = {s: _estimate(meter, estimator, table, treatment, outcome, s, t0, t1) for s in fitted}
    effect_set = [estimates[s].effect if s in estimates else 0.0 for s in sets]
    adj = min(fitted, key=lambda s: abs(estimates[s].effect))  # IDA: report the smallest magnitude
    est = estimates[adj]

    stage("refutations (reliability)")
    refutations = _refute(meter, estimator, table, treatment, outcome, adj, t0, t1, est, draws)
    reliability = sum(r.passed for r in refutations) / len(refutations)

    stage("bootstrap (SR9)")
    sub = table.select((treatment, outcome, *adj))
    boot = _estimate_rows(meter, estimator, sub, treatment, outcome, adj, t0, t1, draws.bootstrap)
    slack = ROUNDING * abs(est.effect)
    inside = (boot >= est.ci_low - slack) & (boot <= est.ci_high + slack)
    stable = (np.sign(boot) == np.sign(est.effect)) & inside
    sr9 = float(stable.sum()) / N_BOOTSTRAP

    stage(f"discovery on each half of the rows (DI2, PC over {table.n_cols} columns)")
    try:
        g1, g2 = (_discover(meter, estimator, table.take(h), alpha) for h in draws.halves)
        di2 = jaccard(g1.skeleton(), g2.skeleton())
    except DataError:
        di2 = math.nan  # a half in which some column is constant: PC cannot run on it

    return StudyResult(
        treatment=treatment,
        outcome=outcome,
        t0=t0,
        t1=t1,
        estimator=estimator.name,
        causal_effect=est.effect,
        ci_low=est.ci_low,
        ci_high=est.ci_high,
        se=est.se,
        adjustment_set=list(adj),
        reliability_score=reliability,
        refutations=refutations,
        SR9=sr9,
        DI2=di2,
        ambiguous=len(sets) > 1,
        effect_set=effect_set,
        graph=graph,
        graph_source=source,
        n_rows=table.n_rows,
        warnings=warnings,
    )
