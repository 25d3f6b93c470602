"""Turning a PC skeleton into a CPDAG the way causal-learn's ``pc`` does by default.

Defaults reproduced: ``uc_rule=0`` (a non-adjacent pair ``x, z`` with common neighbour ``y`` is a
collider ``x -> y <- z`` when ``y`` is in none of their separating sets) with ``uc_priority=2``
(a collider is skipped when ``y -> x`` or ``y -> z`` is already oriented, so conflicts go to the
triple visited first), then Meek's rules R1-R3 repeated until nothing changes, each orientation
skipped when the ancestor table says it would close a cycle.

Where data give conflicting colliders the result depends on the order in which triples are visited
and on the ancestor table's exact (incomplete) bookkeeping, so both follow causal-learn's: triples
in the order its adjacency lists produce, the ancestor table updated edge by edge.

Graphs here are endpoint matrices: ``E[i, j]`` is the mark at ``i`` on the edge ``i - j``
(``-1`` tail, ``1`` arrow, ``0`` no edge); ``i -> j`` is ``E[i, j] = -1, E[j, i] = 1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dmca_core.types import Graph

TAIL, ARROW = -1, 1


class _Ancestry:
    """``d[b, a]`` set means ``a`` is recorded as an ancestor of ``b``.

    Adding ``i -> j`` gives ``j`` the ancestors of ``i`` and gives ``i`` to every recorded
    descendant of ``j``; it does not give ``i``'s ancestors to ``j``'s descendants. causal-learn's
    graph keeps exactly this table, and Meek's cycle check reads it, so it is kept the same way.
    """

    def __init__(self, p: int) -> None:
        self.d = np.eye(p, dtype=bool)

    def add(self, i: int, j: int) -> None:
        d = self.d
        d[j, i] = True
        d[j, :] |= d[i, :]
        d[:, i] |= d[:, j]

    def rebuild(self, e: np.ndarray) -> None:
        """From scratch, edges taken in decreasing (row, column) order."""
        self.d = np.eye(e.shape[0], dtype=bool)
        pointed = ((e == TAIL) & (e.T == ARROW)) | ((e == ARROW) & (e.T == TAIL))
        rows, cols = np.nonzero(np.triu(pointed, 1))
        for i, j in zip(rows[::-1].tolist(), cols[::-1].tolist(), strict=True):
            if e[i, j] == TAIL:
                self.add(i, j)
            else:
                self.add(j, i)

    def is_ancestor(self, a: int, b: int) -> bool:
        return bool(self.d[b, a])


def _directed(e: np.ndarray, a: int, b: int) -> bool:
    return e[a, b] == TAIL and e[b, a] == ARROW


def _undirected(e: np.ndarray, a: int, b: int) -> bool:
    return e[a, b] == TAIL and e[b, a] == TAIL


def _point(e: np.ndarray, anc: _Ancestry, a: int, b: int) -> None:
    """Make the edge ``a - b`` into ``a -> b``, keeping the ancestor table as causal-learn does."""
    if _directed(e, a, b) or _directed(e, b, a):
        # removing a directed edge rebuilds the table before the new edge is added
        e[a, b] = e[b, a] = 0
        anc.rebuild(e)
    e[a, b], e[b, a] = TAIL, ARROW
    anc.add(a, b)


def orient(adj: np.ndarray, sepsets: Mapping[tuple[int, int], set[int]]) -> np.ndarray:
    """The CPDAG's endpoint matrix from a skeleton and its separating sets (keys ``(i, j)``, i < j)."""
    p = adj.shape[0]
    e = np.where(adj, TAIL, 0).astype(np.int8)
    anc = _Ancestry(p)
    _colliders(e, adj, sepsets, anc)
    _meek(e, anc)
    return e


def _colliders(
    e: np.ndarray, adj: np.ndarray, sepsets: Mapping[tuple[int, int], set[int]], anc: _Ancestry
) -> None:
    # unshielded triples x - y - z (x < z) visited in (y, x, z) order, the skeleton's list order
    for y in range(adj.shape[0]):
        nbrs = np.flatnonzero(adj[y])
        for x in nbrs:
            for z in nbrs:
                if x >= z or adj[x, z]:
                    continue
                if y in sepsets.get((int(x), int(z)), ()):
                    continue
                if _directed(e, y, x) or _directed(e, y, z):
                    continue
                _point(e, anc, int(x), int(y))
                _point(e, anc, int(z), int(y))


def _adjacency_order(e: np.ndarray) -> list[tuple[int, int]]:
    """Ordered pairs ``(a, b)`` of adjacent nodes in causal-learn's list order: pairs whose mark at
    ``b`` is a tail, then those whose mark at ``b`` is an arrow, each in row-major order of ``b, a``."""
    tails = [(int(j), int(i)) for i, j in np.argwhere(e == TAIL)]
    arrows = [(int(j), int(i)) for i, j in np.argwhere(e == ARROW)]
    return tails + arrows


def _paths(e: np.ndarray) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """Unshielded triples and triangles ``(a, b, c)`` (both directions), ordered by the positions of
    ``(a, b)`` then ``(b, c)`` in the adjacency list."""
    order = _adjacency_order(e)
    after: dict[int, list[int]] = {}
    for a, b in order:
        after.setdefault(a, []).append(b)  # for each a, its partners in list order
    unshielded: list[tuple[int, int, int]] = []
    triangles: list[tuple[int, int, int]] = []
    for a, b in order:
        for c in after.get(b, ()):
            if c == a:
                continue
            (triangles if e[a, c] else unshielded).append((a, b, c))
    return unshielded, triangles


def _kites(e: np.ndarray, triangles: list[tuple[int, int, int]]) -> list[tuple[int, int, int, int]]:
    """``(i, j, k, l)``: triangles ``i, j, l`` and ``i, k, l`` with ``j < k`` not adjacent."""
    by_ends: dict[tuple[int, int], list[int]] = {}
    for t in triangles:
        by_ends.setdefault((t[0], t[2]), []).append(t[1])
    kites = []
    for i, j, l in triangles:
        for k in by_ends[(i, l)]:
            if j < k and not e[j, k]:
                kites.append((i, j, k, l))
    return kites


def _meek(e: np.ndarray, anc: _Ancestry) -> None:
    unshielded, triangles = _paths(e)
    kites = _kites(e, triangles)
    changed = True
    while changed:
        changed = False
        for i, j, k in unshielded:  # R1: i -> j - k, i and k apart  =>  j -> k
            if _directed(e, i, j) and _undirected(e, j, k) and not anc.is_ancestor(k, j):
                _point(e, anc, j, k)
                changed = True
        for i, j, k in triangles:  # R2: i -> j -> k and i - k  =>  i -> k
            if (
                _directed(e, i, j)
                and _directed(e, j, k)
                and _undirected(e, i, k)
                and not anc.is_ancestor(k, i)
            ):
                _point(e, anc, i, k)
                changed = True
        for i, j, k, l in kites:  # R3: i - j -> l, i - k -> l, j and k apart, i - l  =>  i -> l
            if (
                _undirected(e, i, j)
                and _undirected(e, i, k)
                and _directed(e, j, l)
                and _directed(e, k, l)
                and _undirected(e, i, l)
                and not anc.is_ancestor(l, i)
            ):
                _point(e, anc, i, l)
                changed = True


def to_graph(names: Sequence[str], e: np.ndarray) -> Graph:
    """A :class:`Graph` from an endpoint matrix; a bidirected edge (never produced here) would be
    reported as undirected, since the graph type has no such edge."""
    directed, undirected = [], []
    for i, j in zip(*np.nonzero(np.triu(e != 0, 1)), strict=True):
        if _directed(e, i, j):
            directed.append((names[i], names[j]))
        elif _directed(e, j, i):
            directed.append((names[j], names[i]))
        else:
            undirected.append(frozenset((names[i], names[j])))
    return Graph(tuple(names), directed, undirected)
