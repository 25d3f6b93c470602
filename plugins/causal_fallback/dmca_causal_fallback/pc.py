"""Order-independent ("stable") PC with Fisher-z tests, in numpy only.

The skeleton phase reproduces causal-learn's ``pc(..., indep_test="fisherz", stable=True)``:

- at depth ``d`` every ordered adjacent pair ``(x, y)`` is tested given every ``S`` of size ``d``
  drawn from the neighbours of ``x`` (other than ``y``) as they stood when the depth began; no test
  stops the others of its depth, and removals take effect only when the depth ends;
- ``x`` and ``y`` are independent given ``S`` when ``p > alpha`` (strict), with
  ``p = 2 (1 - Phi(sqrt(n - |S| - 3) |atanh r|))`` and ``r`` the partial correlation, clipped
  away from +-1;
- the separating set of a removed pair is the union of every ``S`` that worked, from both sides;
- depths run while the largest degree minus one exceeds the depth just done.

Instead of one Python call per test, all tests of a depth are built as index arrays and their
partial correlations computed together: closed forms for ``|S| <= 1``, batched small linear solves
for larger ``S``. ``alpha`` is turned once into a threshold on ``sqrt(dof) |atanh r|``; tests that
land within rounding of it are decided by the exact p-value, so the strict ``p > alpha`` rule holds.
"""

from __future__ import annotations

import math
from functools import lru_cache
from itertools import combinations

import numpy as np

from dmca_core.errors import DataError, UsageError
from dmca_core.types import Graph, Table

from .orient import orient, to_graph

# Tests handled per batch: bounds memory to a few tens of MB whatever the graph's density.
_CHUNK = 100_000
# |r| is clipped to this, as a |r| of 1 (collinear or tiny samples) has no finite Fisher z.
_R_MAX = 1.0 - np.finfo(float).eps

Sepsets = dict[tuple[int, int], set[int]]


def discover(table: Table, alpha: float) -> Graph:
    """The CPDAG that stable PC (Fisher z, level ``alpha``) finds over every column of ``table``."""
    corr = correlation(table)
    adj, sepsets = skeleton(corr, table.n_rows, alpha)
    return to_graph(table.names, orient(adj, sepsets))


def correlation(table: Table) -> np.ndarray:
    """The columns' correlation matrix, after checking that Fisher-z tests are defined on them.

    Raises :class:`DataError` naming the column for a non-finite value, a constant column or a
    column that is an exact linear combination of others, and for too few rows.
    """
    x = table.values
    n, p = x.shape
    mean = x.mean(axis=0)
    if not np.isfinite(mean).all():  # a NaN or an infinity anywhere reaches its column's mean
        row, col = np.argwhere(~np.isfinite(x))[0]
        raise DataError(f"column {table.names[col]!r}, row {row + 1}: value {x[row, col]!r} is not finite")
    if p and n < p + 2:
        # the largest conditioning set has p - 2 members and the test needs n - |S| - 3 > 0
        raise DataError(f"causal discovery needs at least {p + 2} rows for {p} columns, got {n}")
    if p == 0:
        return np.empty((0, 0))
    # one centring pass and one product: the same arithmetic as np.corrcoef, without its extra copies
    xc = x - mean
    cov = xc.T @ xc
    sd = np.sqrt(np.diag(cov) / n)
    for j in np.flatnonzero(sd <= 1e-12 * np.maximum(1.0, np.abs(mean))):
        raise DataError(f"column {table.names[j]!r} is constant: no independence test is defined on it")
    scale = np.sqrt(np.diag(cov))
    corr = cov / scale[:, None] / scale[None, :]
    np.clip(corr, -1.0, 1.0, out=corr)
    np.fill_diagonal(corr, 1.0)
    _check_collinear(corr, table.names)
    return corr


def _check_collinear(corr: np.ndarray, names: tuple[str, ...]) -> None:
    """Raise if a column is (numerically) a linear combination of earlier ones."""
    if np.linalg.eigvalsh(corr)[0] > 1e-9:
        return  # well conditioned: no column can fail the check below
    kept: list[int] = []
    for j in range(corr.shape[0]):
        if kept:
            c_kk = corr[np.ix_(kept, kept)]
            c_kj = corr[kept, j]
            beta = np.linalg.solve(c_kk, c_kj)
            resid = 1.0 - float(c_kj @ beta)
        else:
            beta, resid = np.empty(0), 1.0
        if resid < 1e-10:
            others = [names[kept[i]] for i in np.argsort(-np.abs(beta)) if abs(beta[i]) > 1e-8]
            raise DataError(
                f"column {names[j]!r} is an exact linear combination of {', '.join(map(repr, others))}: "
                "drop one of them before causal discovery"
            )
        kept.append(j)


def skeleton(corr: np.ndarray, n: int, alpha: float) -> tuple[np.ndarray, Sepsets]:
    """Stable-PC skeleton: the adjacency matrix and the separating sets of removed pairs.

    ``sepsets[(i, j)]`` (``i < j``) is the union of every conditioning set that separated them.
    """
    if not 0.0 < alpha < 1.0:
        raise UsageError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    p = corr.shape[0]
    adj = ~np.eye(p, dtype=bool)
    sepsets: Sepsets = {}
    z_crit = _z_threshold(alpha)
    depth = -1
    while p > 1 and int(adj.sum(axis=1).max()) - 1 > depth:
        depth += 1
        dof = n - depth - 3
        if dof <= 0:
            raise DataError(f"too few rows ({n}) for conditioning sets of size {depth}")
        removed: list[np.ndarray] = []
        for xs, ys, cond in _tests_at_depth(adj, depth):
            stat = math.sqrt(dof) * _abs_fisher_z(corr, xs, ys, cond)
            indep = _independent(stat, z_crit, alpha)
            if not indep.any():
                continue
            xi, yi, si = xs[indep], ys[indep], cond[indep]
            removed.append(np.stack([xi, yi]))
            _collect_sepsets(sepsets, xi, yi, si, p)
        for pairs in removed:
            adj[pairs[0], pairs[1]] = False
            adj[pairs[1], pairs[0]] = False
    return adj, sepsets


def _tests_at_depth(adj: np.ndarray, depth: int):
    """Yield ``(x, y, S)`` index arrays covering every test of one depth, in chunks."""
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    ss: list[np.ndarray] = []
    size = 0
    for x in range(adj.shape[0]):
        nbrs = np.flatnonzero(adj[x])
        k = nbrs.size
        if k - 1 < depth:
            continue
        combos = _combinations(k - 1, depth)  # (c, depth) positions among the k - 1 others
        # for the neighbour at position i, positions >= i of the others shift up by one
        i = np.arange(k)[:, None, None]
        pos = combos[None, :, :] + (combos[None, :, :] >= i)
        c = combos.shape[0]
        xs.append(np.full(k * c, x, dtype=np.intp))
        ys.append(np.repeat(nbrs, c))
        ss.append(nbrs[pos].reshape(k * c, depth))
        size += k * c
        if size >= _CHUNK:
            yield np.concatenate(xs), np.concatenate(ys), np.concatenate(ss)
            xs, ys, ss, size = [], [], [], 0
    if size:
        yield np.concatenate(xs), np.concatenate(ys), np.concatenate(ss)


@lru_cache(maxsize=256)
def _combinations(k: int, r: int) -> np.ndarray:
    rows = list(combinations(range(k), r))
    return np.array(rows, dtype=np.intp).reshape(len(rows), r)


def _abs_fisher_z(corr: np.ndarray, xs: np.ndarray, ys: np.ndarray, cond: np.ndarray) -> np.ndarray:
    """``|atanh r|`` for the partial correlation ``r`` of each ``(x, y | S)``."""
    d = cond.shape[1]
    if d == 0:
        r = corr[xs, ys]
    elif d == 1:
        z = cond[:, 0]
        rxy, rxz, ryz = corr[xs, ys], corr[xs, z], corr[ys, z]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (rxy - rxz * ryz) / np.sqrt((1.0 - rxz * rxz) * (1.0 - ryz * ryz))
    else:
        # The 2x2 Schur complement of C_SS in the (x, y, S) block is the partial covariance of x, y.
        ab = np.stack([xs, ys], axis=1)
        c_ss = corr[cond[:, :, None], cond[:, None, :]]
        c_sab = corr[cond[:, :, None], ab[:, None, :]]
        c_abab = corr[ab[:, :, None], ab[:, None, :]]
        try:
            sol = np.linalg.solve(c_ss, c_sab)
        except np.linalg.LinAlgError:
            raise DataError(
                "a conditioning set's correlation matrix is singular (collinear columns)"
            ) from None
        part = c_abab - np.einsum("mki,mkj->mij", c_sab, sol)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = part[:, 0, 1] / np.sqrt(np.abs(part[:, 0, 0] * part[:, 1, 1]))
    r = np.clip(r, -_R_MAX, _R_MAX)  # NaN stays NaN: such a test counts as dependent, as in causal-learn
    return np.abs(np.arctanh(r))


def _pvalue(x: float) -> float:
    """Two-sided normal p-value computed as ``2 (1 - Phi(x))``, Phi as cephes' ``ndtr`` forms it."""
    t = x / math.sqrt(2.0)
    cdf = 0.5 + 0.5 * math.erf(t) if abs(t) < math.sqrt(0.5) else 1.0 - 0.5 * math.erfc(t)
    return 2.0 * (1.0 - cdf)


@lru_cache(maxsize=64)
def _z_threshold(alpha: float) -> float:
    """The boundary between ``p > alpha`` (below it) and ``p <= alpha`` (above), by bisection."""
    lo, hi = 0.0, 64.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if _pvalue(mid) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


def _independent(stat: np.ndarray, z_crit: float, alpha: float) -> np.ndarray:
    indep = stat < z_crit  # NaN compares False: dependent
    near = np.flatnonzero(np.abs(stat - z_crit) <= 1e-9 * max(1.0, z_crit))
    for k in near:
        indep[k] = _pvalue(float(stat[k])) > alpha
    return indep


def _collect_sepsets(sepsets: Sepsets, xs: np.ndarray, ys: np.ndarray, cond: np.ndarray, p: int) -> None:
    lo, hi = np.minimum(xs, ys), np.maximum(xs, ys)
    pair = lo * p + hi
    for key in np.unique(pair):
        sepsets.setdefault(divmod(int(key), p), set())
    if cond.shape[1]:
        members = np.unique(np.repeat(pair, cond.shape[1]) * p + cond.reshape(-1))
        for code in members:
            key, s = divmod(int(code), p)
            sepsets[divmod(key, p)].add(s)
