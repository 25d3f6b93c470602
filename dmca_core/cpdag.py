"""What a CPDAG says about one node's parents.

A CPDAG stands for every DAG with its skeleton and v-structures (its Markov equivalence class).
The parents of a node ``T`` are then known only up to its undirected edges. The local rule of IDA
(Maathuis, Kalisch & Buehlmann 2009, Ann. Statist. 37(6A), Lemma 3.1) lists the parent sets that
some DAG of the class gives ``T``: the definite parents ``pa(T)`` plus any subset ``S`` of the
undirected neighbours ``sib(T)`` such that pointing ``S -> T`` (and ``T -> `` the rest of
``sib(T)``) creates no new v-structure at ``T``, i.e. every pair of nodes in ``pa(T) | S`` that
contains a member of ``S`` is adjacent.
"""

from __future__ import annotations

from itertools import combinations

from .errors import UsageError
from .types import Graph


def _check_node(cpdag: Graph, node: str) -> None:
    if node not in cpdag.nodes:
        raise UsageError(f"unknown variable {node!r}; valid: {', '.join(cpdag.nodes)}")


def is_fully_oriented_parents(cpdag: Graph, node: str) -> bool:
    """Whether the CPDAG fixes ``node``'s parents: no undirected edge touches it."""
    _check_node(cpdag, node)
    return not cpdag.neighbors(node)


def possible_parent_sets(cpdag: Graph, treatment: str) -> list[tuple[str, ...]]:
    """The IDA (local) parent sets of ``treatment``, each in the graph's node order.

    The first set is always the definite parents alone; the others follow by number of undirected
    neighbours added, then in node order. For a DAG the list has exactly one set.
    """
    _check_node(cpdag, treatment)
    order = {v: i for i, v in enumerate(cpdag.nodes)}
    parents = sorted(cpdag.parents(treatment), key=order.__getitem__)
    siblings = sorted(cpdag.neighbors(treatment), key=order.__getitem__)
    skeleton = cpdag.skeleton()

    def adjacent(a: str, b: str) -> bool:
        return frozenset((a, b)) in skeleton

    out: list[tuple[str, ...]] = []
    for size in range(len(siblings) + 1):
        for chosen in combinations(siblings, size):
            # a new collider at T would join a chosen node with a non-adjacent parent or chosen node
            if all(adjacent(s, q) for i, s in enumerate(chosen) for q in (*parents, *chosen[i + 1 :])):
                out.append(tuple(sorted((*parents, *chosen), key=order.__getitem__)))
    return out
