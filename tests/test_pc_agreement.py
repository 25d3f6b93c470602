"""The numpy PC (fallback) against causal-learn's PC (full backend) on the same data."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from dmca_causal_fallback import pc as fallback_pc
from dmca_core.errors import DataError
from dmca_core.types import Graph, Table

pytestmark = pytest.mark.full


def _random_table(p: int, n: int, seed: int) -> Table:
    """Linear-Gaussian data from a random DAG: about three neighbours a node, weights +-[0.3, 1.0],
    topological order shuffled against column order. Nothing here is chosen per case."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(p)
    w = np.zeros((p, p))
    for a, b in combinations(range(p), 2):
        if rng.random() < 3.0 / (p - 1):
            w[order[a], order[b]] = rng.uniform(0.3, 1.0) * rng.choice((-1.0, 1.0))
    x = rng.standard_normal((n, p)) @ np.linalg.inv(np.eye(p) - w)
    return Table(tuple(f"V{i}" for i in range(p)), x)


CASES = [
    (p, n, seed, alpha)
    for p in (5, 8, 12, 20)
    for seed, (n, alpha) in enumerate([(300, 0.05), (700, 0.01), (1500, 0.05), (3000, 0.01), (5000, 0.01)])
]


def test_fallback_reproduces_causal_learn() -> None:
    from dmca_causal_full.discovery import discover as full_discover

    same_cpdag = 0
    for p, n, seed, alpha in CASES:
        table = _random_table(p, n, 1000 * p + seed)
        ours = fallback_pc.discover(table, alpha)
        theirs = full_discover(table, alpha)
        assert ours.skeleton() == theirs.skeleton(), (p, n, seed, alpha)
        same_cpdag += ours == theirs
    assert same_cpdag >= 0.95 * len(CASES), f"CPDAGs equal in {same_cpdag} of {len(CASES)} cases"


def test_full_backend_reads_causal_learn_endpoints_right() -> None:
    from dmca_causal_full.discovery import discover as full_discover

    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 3000))
    c = 0.8 * a - 0.7 * b + rng.standard_normal(3000)
    d = 0.9 * c + rng.standard_normal(3000)
    table = Table.from_columns({"D": d, "C": c, "A": a, "B": b})
    expected = Graph(("D", "C", "A", "B"), [("A", "C"), ("B", "C"), ("C", "D")])
    assert full_discover(table, 0.01) == expected
    assert fallback_pc.discover(table, 0.01) == expected


def test_full_backend_rejects_degenerate_data_like_the_fallback() -> None:
    from dmca_causal_full.discovery import discover as full_discover

    table = _random_table(4, 200, 0)
    constant = table.with_column("K", np.ones(200))
    collinear = table.with_column("S", table.column("V0") - table.column("V2"))
    for bad, word in ((constant, "'K' is constant"), (collinear, "'S' is an exact linear combination")):
        for discover in (full_discover, fallback_pc.discover):
            with pytest.raises(DataError, match=word):
                discover(bad, 0.05)
