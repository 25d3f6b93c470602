"""CPDAG utilities against brute force: every DAG of a small Markov equivalence class, enumerated."""

from __future__ import annotations

from itertools import combinations, product

import numpy as np
import pytest

from dmca_core.cpdag import is_fully_oriented_parents, possible_parent_sets
from dmca_core.errors import UsageError
from dmca_core.types import Graph


def _random_dag(p: int, prob: float, rng: np.random.Generator) -> Graph:
    names = [f"V{i}" for i in range(p)]
    order = rng.permutation(p)  # topological order differs from the node order
    edges = [(names[order[a]], names[order[b]]) for a, b in combinations(range(p), 2) if rng.random() < prob]
    return Graph(names, edges)


def _acyclic(nodes: tuple[str, ...], edges: set[tuple[str, str]]) -> bool:
    return Graph(nodes, edges).is_dag


def _v_structures(edges: set[tuple[str, str]], skeleton: frozenset[frozenset[str]]) -> set[tuple]:
    out = set()
    for a, c in edges:
        for b, c2 in edges:
            if c == c2 and a < b and frozenset((a, b)) not in skeleton:
                out.add((a, b, c))
    return out


def _equivalence_class(dag: Graph) -> list[set[tuple[str, str]]]:
    """All DAGs with ``dag``'s skeleton and v-structures (Verma & Pearl), by trying every orientation."""
    skel = dag.skeleton()
    pairs = [tuple(sorted(e)) for e in skel]
    target = _v_structures(set(dag.directed), skel)
    members = []
    for flips in product((False, True), repeat=len(pairs)):
        edges = {(b, a) if f else (a, b) for (a, b), f in zip(pairs, flips, strict=True)}
        if _acyclic(dag.nodes, edges) and _v_structures(edges, skel) == target:
            members.append(edges)
    return members


def _cpdag_by_consensus(dag: Graph, members: list[set[tuple[str, str]]]) -> Graph:
    """Directed where every member agrees, undirected elsewhere."""
    directed = set.intersection(*members)
    undirected = [e for e in dag.skeleton() if all((a, b) not in directed for a in e for b in e if a != b)]
    return Graph(dag.nodes, directed, undirected)


def _cases():
    rng = np.random.default_rng(20240611)
    out = []
    for p in (3, 4, 5, 6, 7):
        for _ in range(8):
            dag = _random_dag(p, 0.5, rng)
            if len(dag.directed) <= 11:  # keeps the brute force at most 2^11 orientations
                out.append(dag)
    return out


def test_parent_sets_equal_those_of_every_dag_in_the_class() -> None:
    checked = 0
    for dag in _cases():
        members = _equivalence_class(dag)
        assert any(m == set(dag.directed) for m in members)
        cpdag = _cpdag_by_consensus(dag, members)
        for t in dag.nodes:
            truth = {frozenset(a for a, b in m if b == t) for m in members}
            got = possible_parent_sets(cpdag, t)
            assert len(got) == len(set(got)), "no set listed twice"
            assert {frozenset(s) for s in got} == truth, (str(cpdag), t)
            assert is_fully_oriented_parents(cpdag, t) == (len(truth) == 1 and not cpdag.neighbors(t))
            checked += 1
    assert checked > 100


def test_fallback_orientation_matches_brute_force_cpdag() -> None:
    """Given the true skeleton and oracle separating sets, the fallback's collider step and Meek
    rules give the class's CPDAG."""
    from dmca_causal_fallback.orient import orient, to_graph

    for dag in _cases():
        idx = {v: i for i, v in enumerate(dag.nodes)}
        p = len(dag.nodes)
        adj = np.zeros((p, p), dtype=bool)
        for a, b in dag.directed:
            adj[idx[a], idx[b]] = adj[idx[b], idx[a]] = True
        sepsets: dict[tuple[int, int], set[int]] = {}
        for i, k in combinations(range(p), 2):
            if adj[i, k]:
                continue
            # an oracle's separating sets hold every common neighbour that is not a collider
            sepsets[(i, k)] = {
                j
                for j in range(p)
                if adj[i, j]
                and adj[k, j]
                and not (
                    (dag.nodes[i], dag.nodes[j]) in dag.directed
                    and (dag.nodes[k], dag.nodes[j]) in dag.directed
                )
            }
        got = to_graph(dag.nodes, orient(adj, sepsets))
        assert got == _cpdag_by_consensus(dag, _equivalence_class(dag)), str(dag)


def test_known_cases() -> None:
    chain = Graph.parse("A--B,B--C")
    assert {frozenset(s) for s in possible_parent_sets(chain, "B")} == {
        frozenset(),
        frozenset({"A"}),
        frozenset({"C"}),
    }
    assert possible_parent_sets(chain, "B")[0] == ()
    collider = Graph.parse("A->C,B->C,C->D")
    assert possible_parent_sets(collider, "C") == [("A", "B")]
    assert is_fully_oriented_parents(collider, "C")
    assert not is_fully_oriented_parents(chain, "A")
    # not a valid CPDAG (Meek's R1 would orient T -> S), but PC can return such a graph when tests
    # conflict: S -> T would make a new collider with the non-adjacent parent P
    shielded = Graph.parse("P->T,T--S")
    assert possible_parent_sets(shielded, "T") == [("P",)]


def test_unknown_node_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="'Z'"):
        possible_parent_sets(Graph.parse("A->B"), "Z")
    with pytest.raises(UsageError, match="valid: A, B"):
        is_fully_oriented_parents(Graph.parse("A->B"), "Z")
