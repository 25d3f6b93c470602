"""Causal discovery through causal-learn's PC (Fisher z, order-independent "stable" skeleton)."""

from __future__ import annotations

import numpy as np

from dmca_core.errors import DataError, UsageError
from dmca_core.types import Graph, Table


def discover(table: Table, alpha: float) -> Graph:
    """The CPDAG causal-learn's ``pc`` finds over every column of ``table`` at level ``alpha``.

    Runs ``pc(data, alpha, indep_test="fisherz", stable=True, uc_rule=0, uc_priority=2)``: the
    same settings the fallback backend reproduces.
    """
    from causallearn.search.ConstraintBased.PC import pc

    if not 0.0 < alpha < 1.0:
        raise UsageError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    x = table.values
    p = table.n_cols
    if p < 2:
        return Graph(table.names)
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"column {table.names[col]!r}, row {row + 1}: value {x[row, col]!r} is not finite")
    if table.n_rows < p + 2:
        raise DataError(f"causal discovery needs at least {p + 2} rows for {p} columns, got {table.n_rows}")
    for j in np.flatnonzero(x.std(axis=0) <= 1e-12 * np.maximum(1.0, np.abs(x).max(axis=0))):
        raise DataError(f"column {table.names[j]!r} is constant: no independence test is defined on it")
    _check_collinear(np.corrcoef(x, rowvar=False), table.names)
    try:
        cg = pc(
            np.array(x, dtype=np.float64),
            alpha,
            indep_test="fisherz",
            stable=True,
            uc_rule=0,
            uc_priority=2,
            show_progress=False,
        )
    except ValueError as exc:  # causal-learn reports a singular correlation block this way
        raise DataError(f"causal discovery failed: {exc}") from None
    return graph_from_endpoints(table.names, np.asarray(cg.G.graph))


def _check_collinear(corr: np.ndarray, names: tuple[str, ...]) -> None:
    """Raise, as the fallback backend does, when a column is a linear combination of earlier ones
    (causal-learn would otherwise test on a numerically singular correlation matrix)."""
    if np.linalg.eigvalsh(corr)[0] > 1e-9:
        return
    for j in range(1, corr.shape[0]):
        beta = np.linalg.lstsq(corr[:j, :j], corr[:j, j], rcond=None)[0]
        if 1.0 - float(corr[:j, j] @ beta) < 1e-10:
            others = [names[i] for i in np.argsort(-np.abs(beta)) if abs(beta[i]) > 1e-8]
            raise DataError(
                f"column {names[j]!r} is an exact linear combination of {', '.join(map(repr, others))}: "
                "drop one of them before causal discovery"
            )


def graph_from_endpoints(names: tuple[str, ...], g: np.ndarray) -> Graph:
    """Read causal-learn's endpoint matrix: ``g[j, i] == 1`` and ``g[i, j] == -1`` is ``i -> j``;
    ``g[i, j] == g[j, i] == -1`` is ``i -- j``. A bidirected edge (``1, 1``, not produced by these
    settings) becomes undirected, as the graph type has no such edge."""
    directed, undirected = [], []
    p = len(names)
    for i in range(p):
        for j in range(i + 1, p):
            a, b = int(g[i, j]), int(g[j, i])  # marks at i and at j
            if a == 0 and b == 0:
                continue
            if a == -1 and b == 1:
                directed.append((names[i], names[j]))
            elif a == 1 and b == -1:
                directed.append((names[j], names[i]))
            else:
                undirected.append(frozenset((names[i], names[j])))
    return Graph(names, directed, undirected)
