"""Value types that cross the boundary between the core and its plugins.

Everything here is plain data (attrs classes over numpy arrays) so that it pickles to
worker processes and compares by value in tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from .errors import DataError


def _as_matrix(values: Any) -> np.ndarray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"a table needs a 2-D array, got shape {arr.shape}")
    return arr


@attrs.frozen(eq=False)
class Table:
    """A numeric data table: ``values[:, j]`` is the column ``names[j]``."""

    names: tuple[str, ...] = attrs.field(converter=tuple)
    values: np.ndarray = attrs.field(converter=_as_matrix)

    def __attrs_post_init__(self) -> None:
        if self.values.shape[1] != len(self.names):
            raise ValueError(f"{len(self.names)} names for {self.values.shape[1]} columns")
        if len(set(self.names)) != len(self.names):
            raise ValueError("column names must be unique")

    @classmethod
    def from_columns(cls, columns: Mapping[str, Sequence[float] | np.ndarray]) -> Table:
        """A table from ``{name: values}``, columns in the mapping's order; every column must be
        numeric and one-dimensional, all of one length (else :class:`DataError` naming them)."""
        names = tuple(columns)
        if not names:
            return cls((), np.empty((0, 0)))
        arrays = []
        for name in names:
            try:
                arr = np.asarray(columns[name], dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise DataError(f"column {name!r}: not numeric ({exc})") from None
            if arr.ndim != 1:
                raise DataError(f"column {name!r}: needs one value per row, got shape {arr.shape}")
            arrays.append(arr)
        lengths = {name: len(arr) for name, arr in zip(names, arrays, strict=True)}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{name} {n}" for name, n in lengths.items())
            raise DataError(f"columns of unequal length (rows per column: {listed})")
        return cls(names, np.column_stack(arrays))

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_cols(self) -> int:
        return int(self.values.shape[1])

    def first_non_finite(self) -> tuple[int, int] | None:
        """(row, column), from 0, of the first NaN or infinity, or None: study inputs and
        simulated data both refuse such a table."""
        bad = ~np.isfinite(self.values)
        if not bad.any():
            return None
        row, col = (int(i) for i in np.argwhere(bad)[0])
        return row, col

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown variable {name!r}; valid: {', '.join(self.names)}") from None

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.index(name)]

    def take(self, rows: np.ndarray) -> Table:
        """The rows at ``rows`` (indices, repeats allowed: bootstrap resamples)."""
        return Table(self.names, self.values[np.asarray(rows)])

    def select(self, names: Iterable[str]) -> Table:
        names = tuple(names)
        return Table(names, self.values[:, [self.index(n) for n in names]])

    def with_column(self, name: str, values: np.ndarray) -> Table:
        """A copy with ``name`` replaced (if present) or appended."""
        col = np.asarray(values, dtype=np.float64).reshape(-1)
        if name in self.names:
            out = self.values.copy()
            out[:, self.index(name)] = col
            return Table(self.names, out)
        return Table((*self.names, name), np.column_stack([self.values, col]))

    def as_dict(self) -> dict[str, np.ndarray]:
        return {n: self.values[:, j] for j, n in enumerate(self.names)}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Table)
            and self.names == other.names
            and np.array_equal(self.values, other.values, equal_nan=True)
        )

    __hash__ = None  # type: ignore[assignment]


def _pair(edge: Iterable[str]) -> frozenset[str]:
    e = frozenset(edge)
    if len(e) != 2:
        raise ValueError(f"an undirected edge joins two distinct nodes, got {sorted(e)}")
    return e


def _undirected(edges: Iterable[Iterable[str]]) -> frozenset[frozenset[str]]:
    return frozenset(_pair(e) for e in edges)


def _directed(edges: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    return frozenset((str(a), str(b)) for a, b in edges)


@attrs.frozen
class Graph:
    """A DAG or a CPDAG over named nodes.

    ``directed`` holds ``(a, b)`` for ``a -> b``; ``undirected`` holds ``{a, b}`` for ``a - b``
    (a CPDAG edge whose orientation the data cannot decide).
    """

    nodes: tuple[str, ...] = attrs.field(converter=tuple)
    directed: frozenset[tuple[str, str]] = attrs.field(factory=frozenset, converter=_directed)
    undirected: frozenset[frozenset[str]] = attrs.field(factory=frozenset, converter=_undirected)

    def __attrs_post_init__(self) -> None:
        known = set(self.nodes)
        for a, b in self.directed:
            if a == b:
                raise ValueError(f"self-loop on {a!r}")
            for v in (a, b):
                if v not in known:
                    raise ValueError(f"edge names unknown node {v!r}; nodes: {', '.join(self.nodes)}")
        for e in self.undirected:
            for v in e:
                if v not in known:
                    raise ValueError(f"edge names unknown node {v!r}; nodes: {', '.join(self.nodes)}")

    @classmethod
    def parse(cls, spec: str | Sequence[str], nodes: Sequence[str] | None = None) -> Graph:
        """Parse ``"A->B,B->C,C--D"`` (or a list of such strings) into a graph.

        ``--`` (or ``-``) is an undirected edge. Nodes default to those the edges name, in order of
        first appearance, followed by any of ``nodes`` not yet named.
        """
        items = [s for part in ([spec] if isinstance(spec, str) else spec) for s in str(part).split(",")]
        directed: list[tuple[str, str]] = []
        undirected: list[frozenset[str]] = []
        seen: list[str] = []
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            if "->" in item:
                a, b = (x.strip() for x in item.split("->", 1))
                directed.append((a, b))
            elif "<-" in item:
                b, a = (x.strip() for x in item.split("<-", 1))
                directed.append((a, b))
            elif "--" in item or "-" in item:
                a, b = (x.strip() for x in item.split("--" if "--" in item else "-", 1))
                undirected.append(frozenset((a, b)))
            else:
                raise ValueError(f"cannot read edge {item!r}: write A->B (directed) or A--B (undirected)")
            for v in (a, b):
                if not v:
                    raise ValueError(f"cannot read edge {item!r}: a node name is empty")
                if v not in seen:
                    seen.append(v)
        if nodes is not None:
            unknown = [v for v in seen if v not in nodes]
            if unknown:
                raise ValueError(f"edge names unknown variable {unknown[0]!r}; valid: {', '.join(nodes)}")
            seen = list(nodes)
        return cls(tuple(seen), directed, undirected)

    def parents(self, node: str) -> set[str]:
        return {a for a, b in self.directed if b == node}

    def children(self, node: str) -> set[str]:
        return {b for a, b in self.directed if a == node}

    def neighbors(self, node: str) -> set[str]:
        """Nodes joined to ``node`` by an undirected edge."""
        return {v for e in self.undirected if node in e for v in e if v != node}

    def adjacent(self, node: str) -> set[str]:
        return self.parents(node) | self.children(node) | self.neighbors(node)

    def skeleton(self) -> frozenset[frozenset[str]]:
        return frozenset(frozenset(e) for e in self.directed) | self.undirected

    @property
    def is_dag(self) -> bool:
        if self.undirected:
            return False
        indeg = {v: 0 for v in self.nodes}
        for _, b in self.directed:
            indeg[b] += 1
        queue = [v for v, d in indeg.items() if d == 0]
        seen = 0
        while queue:
            v = queue.pop()
            seen += 1
            for c in self.children(v):
                indeg[c] -= 1
                if indeg[c] == 0:
                    queue.append(c)
        return seen == len(self.nodes)

    def to_json(self) -> dict[str, Any]:
        """``{"nodes": [...], "edges": [{"source", "target", "directed"}]}``; undirected edges once,
        in node order."""
        order = {v: i for i, v in enumerate(self.nodes)}
        edges = [{"source": a, "target": b, "directed": True} for a, b in self.directed]
        for e in self.undirected:
            a, b = sorted(e, key=order.__getitem__)
            edges.append({"source": a, "target": b, "directed": False})
        edges.sort(key=lambda d: (order[d["source"]], order[d["target"]]))
        return {"nodes": list(self.nodes), "edges": edges}

    def __str__(self) -> str:
        parts = [
            f"{e['source']}{'->' if e['directed'] else '--'}{e['target']}" for e in self.to_json()["edges"]
        ]
        return ",".join(parts)


@attrs.frozen
class EffectEstimate:
    """One backdoor-adjusted linear-regression estimate of E[Y|do(T=t1)] - E[Y|do(T=t0)].

    The regression is ``Y ~ 1 + T + adjustment`` on ``n`` rows with ``k`` coefficients (the
    intercept counted); ``effect = (t1 - t0) * beta_T``. ``se`` is the HC3 (heteroskedasticity-
    robust, leverage-corrected) standard error of ``effect`` and the interval is
    ``effect -/+ t_{0.975, n-k} * se``, Student's t quantile (docs/metrics.md). ``t_classical`` is
    the classical (homoskedastic) OLS t-statistic of ``beta_T`` and ``dof = n - k``; the robustness
    value of Cinelli & Hazlett (2020) is computed from the two.
    """

    effect: float
    se: float
    ci_low: float
    ci_high: float
    t_classical: float
    dof: int
    adjustment_set: tuple[str, ...] = attrs.field(converter=tuple)


@attrs.frozen
class Truth:
    """A ground-truth effect computed by re-simulating under do(); ``mc_se`` is its Monte-Carlo error."""

    effect: float
    mc_se: float
    draws: int


@attrs.frozen(eq=False)
class DomainData:
    """What a domain plugin hands the core for one study step.

    ``truth_fn(treatment, outcome, t0, t1) -> Truth`` re-simulates under do(T=t); it is ``None``
    for user data, where no truth is known.
    """

    table: Table
    true_graph: Graph | None = None
    truth_fn: Any = None
    metadata: Mapping[str, Any] = attrs.field(factory=dict)

    def truth(self, treatment: str, outcome: str, t0: float, t1: float) -> Truth | None:
        return None if self.truth_fn is None else self.truth_fn(treatment, outcome, t0, t1)


@attrs.frozen(eq=False)
class FormFactor:
    """A crystal form factor |f_crys(q, E)|^2 on a (q, E) grid, normalised as in Essig et al. 2016
    (arXiv:1509.01598, eq. 3.16): dimensionless, binned, ``f2[i, j]`` at ``q_ev[i]``, ``e_ev[j]``.
    """

    material: str
    q_ev: np.ndarray
    e_ev: np.ndarray
    f2: np.ndarray
    cell_mass_gev: float
    band_gap_ev: float
    pair_energy_ev: float
    metadata: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.define
class Refutation:
    """One refutation test: its figure, its pass rule (as text) and whether the study passed it."""

    name: str
    figure: float
    passed: bool
    rule: str
    detail: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class StudyResult:
    """Everything one study computes (see docs/metrics.md)."""

    treatment: str
    outcome: str
    t0: float
    t1: float
    estimator: str
    causal_effect: float
    ci_low: float
    ci_high: float
    se: float
    adjustment_set: list[str]
    reliability_score: float
    refutations: list[Refutation]
    SR9: float
    DI2: float
    ambiguous: bool
    effect_set: list[float]
    graph: Graph
    graph_source: str  # "given" | "discovered"
    n_rows: int
    warnings: list[str] = attrs.field(factory=list)  # what the figures above cannot show

    def to_json(self) -> dict[str, Any]:
        return {
            "treatment": self.treatment,
            "outcome": self.outcome,
            "t0": self.t0,
            "t1": self.t1,
            "estimator": self.estimator,
            "causal_effect": self.causal_effect,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "se": self.se,
            "adjustment_set": list(self.adjustment_set),
            "reliability_score": self.reliability_score,
            "refutations": {r.name: attrs.asdict(r) for r in self.refutations},
            "SR9": self.SR9,
            "DI2": self.DI2,
            "ambiguous": self.ambiguous,
            "effect_set": list(self.effect_set),
            "graph": self.graph.to_json(),
            "graph_source": self.graph_source,
            "n_rows": self.n_rows,
            "warnings": list(self.warnings),
        }
