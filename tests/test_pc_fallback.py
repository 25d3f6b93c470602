"""The numpy PC (fallback backend) against ground truth; needs no causal-learn."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest

from dmca_causal_fallback import pc
from dmca_core.errors import DataError, UsageError
from dmca_core.types import Graph, Table


def _weights(p: int, seed: int) -> np.ndarray:
    """A random DAG's weights: about two neighbours a node, +-[0.5, 1.0], topological order shuffled
    against column order."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(p)
    w = np.zeros((p, p))
    for a, b in combinations(range(p), 2):
        if rng.random() < 2.0 / (p - 1):
            w[order[a], order[b]] = rng.uniform(0.5, 1.0) * rng.choice((-1.0, 1.0))
    return w


def _weakest_edge(w: np.ndarray) -> float:
    """The smallest population |partial correlation| of a true edge over every conditioning set.

    PC may drop an edge whose partial correlation given some set nearly cancels (a near-violation of
    faithfulness, common with random weights), so only graphs where it stays large are used."""
    p = w.shape[0]
    a = np.linalg.inv(np.eye(p) - w)
    cov = a.T @ a
    weakest = 1.0
    for i, j in zip(*np.nonzero(w), strict=True):
        others = [k for k in range(p) if k not in (i, j)]
        for size in range(len(others) + 1):
            for s in combinations(others, size):
                idx = [i, j, *s]
                prec = np.linalg.inv(cov[np.ix_(idx, idx)])
                weakest = min(weakest, abs(prec[0, 1]) / math.sqrt(prec[0, 0] * prec[1, 1]))
    return weakest


def _linear_gaussian(w: np.ndarray, n: int, seed: int) -> tuple[Graph, Table]:
    p = w.shape[0]
    x = np.random.default_rng(seed).standard_normal((n, p)) @ np.linalg.inv(np.eye(p) - w)
    names = tuple(f"X{i}" for i in range(p))
    dag = Graph(names, [(names[i], names[j]) for i, j in zip(*np.nonzero(w), strict=True)])
    return dag, Table(names, x)


@pytest.mark.parametrize("p", [5, 8, 10])
def test_recovers_true_skeleton_with_large_samples(p: int) -> None:
    """On the first four strongly faithful random DAGs (every edge's partial correlation >= 0.05,
    far above what n = 50 000 resolves at alpha = 0.001), PC finds exactly the true skeleton."""
    used = 0
    for seed in range(100):
        w = _weights(p, seed)
        if not w.any() or _weakest_edge(w) < 0.05:
            continue
        dag, table = _linear_gaussian(w, 50_000, seed)
        got = pc.discover(table, alpha=0.001)
        # orientations are not checked here: a non-edge's near-cancelling test can flip a collider
        # decision (tests/test_cpdag.py checks orientation with oracle separating sets)
        assert got.skeleton() == dag.skeleton(), (seed, str(dag), str(got))
        used += 1
        if used == 4:
            break
    assert used == 4


def _simulate(spec: str, n: int, seed: int) -> tuple[Graph, Table]:
    dag = Graph.parse(spec)
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    remaining = list(dag.nodes)
    while remaining:
        for v in list(remaining):
            if dag.parents(v) <= set(cols):
                cols[v] = sum((0.8 * cols[u] for u in sorted(dag.parents(v))), rng.standard_normal(n))
                remaining.remove(v)
    return dag, Table.from_columns({v: cols[v] for v in dag.nodes})


def test_collider_is_oriented_and_chain_is_not() -> None:
    _, table = _simulate("A->C,B->C", 5_000, 1)
    assert pc.discover(table, 0.01) == Graph(("A", "C", "B"), [("A", "C"), ("B", "C")])
    _, table = _simulate("A->B,B->C", 5_000, 2)
    chain = pc.discover(table, 0.01)
    assert not chain.directed
    assert chain.undirected == {frozenset("AB"), frozenset("BC")}


def test_meek_rule_one_propagates_below_a_collider() -> None:
    dag, table = _simulate("A->C,B->C,C->D", 5_000, 3)
    assert pc.discover(table, 0.01) == dag  # C -> D follows: D - C would otherwise be a collider


def test_sepsets_are_the_union_from_both_sides() -> None:
    # A -> B -> C and A -> D -> C: A, C are separated only by {B, D}; no S of size one works
    _, table = _simulate("A->B,B->C,A->D,D->C", 20_000, 4)
    corr = pc.correlation(table)
    adj, sepsets = pc.skeleton(corr, table.n_rows, 0.01)
    a, c = table.index("A"), table.index("C")
    assert not adj[a, c]
    assert sepsets[(min(a, c), max(a, c))] == {table.index("B"), table.index("D")}


def test_partial_correlation_matches_regression_residuals() -> None:
    """The batched closed forms equal the correlation of OLS residuals (an independent route)."""
    _, table = _linear_gaussian(_weights(7, 11), 400, 11)
    x = table.values
    corr = pc.correlation(table)
    rng = np.random.default_rng(0)
    for d in (0, 1, 2, 3, 4):
        tests = []
        for _ in range(12):
            idx = rng.choice(7, size=d + 2, replace=False)
            tests.append(idx)
        t = np.array(tests)
        got = pc._abs_fisher_z(corr, t[:, 0], t[:, 1], t[:, 2:])
        for k, idx in enumerate(tests):
            z = np.column_stack([np.ones(len(x)), x[:, idx[2:]]])
            res = [x[:, v] - z @ np.linalg.lstsq(z, x[:, v], rcond=None)[0] for v in idx[:2]]
            r = np.corrcoef(res[0], res[1])[0, 1]
            assert got[k] == pytest.approx(abs(math.atanh(r)), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("alpha", [0.2, 0.05, 0.01, 1e-4, 1e-8])
def test_alpha_threshold_keeps_strict_p_above_alpha(alpha: float) -> None:
    z = pc._z_threshold(alpha)
    assert 2 * (1 - 0.5 * (1 + math.erf(z / math.sqrt(2)))) == pytest.approx(alpha, rel=1e-9)
    below = np.nextafter(z, 0.0)
    assert pc._pvalue(below) > alpha >= pc._pvalue(z)
    decided = pc._independent(np.array([below, z, z * 1.5, z / 2, np.nan]), z, alpha)
    assert decided.tolist() == [True, False, False, True, False]


def test_constant_column_is_a_data_error() -> None:
    _, table = _simulate("A->B", 100, 0)
    table = table.with_column("K", np.full(100, 3.0))
    with pytest.raises(DataError, match="'K' is constant"):
        pc.discover(table, 0.05)


def test_collinear_column_is_a_data_error() -> None:
    _, table = _simulate("A->B,A->C", 200, 0)
    table = table.with_column("S", table.column("A") + 2 * table.column("C"))
    with pytest.raises(DataError, match="'S' is an exact linear combination of 'C', 'A'"):
        pc.discover(table, 0.05)


def test_non_finite_and_too_short_data_are_data_errors() -> None:
    _, table = _simulate("A->B,B->C", 50, 0)
    values = table.values.copy()
    values[7, 1] = np.nan
    with pytest.raises(DataError, match="column 'B', row 8"):
        pc.discover(Table(table.names, values), 0.05)
    with pytest.raises(DataError, match="at least 5 rows for 3 columns"):
        pc.discover(table.take(np.arange(4)), 0.05)


def test_bad_alpha_is_a_usage_error() -> None:
    _, table = _simulate("A->B", 100, 0)
    for alpha in (0.0, 1.0, -0.1):
        with pytest.raises(UsageError, match="alpha"):
            pc.discover(table, alpha)


def test_tiny_tables_have_defined_results() -> None:
    _, table = _simulate("A->B", 100, 0)
    assert pc.discover(table.select(["A"]), 0.05) == Graph(("A",))
    assert pc.discover(Table((), np.empty((10, 0))), 0.05) == Graph(())
    assert pc.discover(table, 0.05).undirected == {frozenset("AB")}
