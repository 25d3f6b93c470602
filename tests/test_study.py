"""run_study with the fallback backend, on data whose causal structure is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from linear_sem import sem

from dmca_core import draws
from dmca_core.errors import DataError, UsageError
from dmca_core.opsmeter import FitMeter
from dmca_core.study import jaccard, near_copies, robustness_value, run_study
from dmca_core.types import Graph, Table

CONFOUNDED = sem(["W", "T", "Y"], {("W", "T"): 1.0, ("W", "Y"): 1.5, ("T", "Y"): 2.0})
REFUTATIONS = ["placebo_treatment", "random_common_cause", "data_subsets", "robustness_value"]


def _study(table: Table, est, graph: Graph | None, seed: int = 1, **kw):
    return run_study(
        table, treatment="T", outcome="Y", t0=0.0, t1=1.0, graph=graph, estimator=est, seed=seed, **kw
    )


def test_given_dag_recovers_the_true_effect(fallback) -> None:
    table, _ = CONFOUNDED.simulate(4000, np.random.default_rng(0))
    truth = CONFOUNDED.true_effect("T", "Y", 0.0, 1.0, 1000, seed=1)
    meter = FitMeter()
    r = _study(table, fallback, CONFOUNDED.graph, meter=meter)
    assert truth == pytest.approx(2.0)
    assert r.ci_low < truth < r.ci_high
    assert r.adjustment_set == ["W"]
    assert r.graph_source == "given" and r.graph == CONFOUNDED.graph
    assert not r.ambiguous and r.effect_set == [r.causal_effect]
    assert [x.name for x in r.refutations] == REFUTATIONS
    assert r.reliability_score == 1.0
    assert r.SR9 >= 6 / 9
    assert r.DI2 == 1.0  # strong edges: both halves find the same skeleton
    # 1 estimate + placebo + random common cause + 20 subsets + 9 bootstraps + PC on 2 halves
    assert meter.count == 34
    # without adjusting for W the estimate is biased far outside the truth's reach
    naive = _study(table, fallback, Graph(("W", "T", "Y"), [("T", "Y")]))
    assert naive.causal_effect > r.ci_high + 0.3


def test_a_study_says_what_starts_next_in_order(fallback) -> None:
    table, _ = CONFOUNDED.simulate(1000, np.random.default_rng(0))
    for graph, first in ((None, ["discovering the graph (PC over 3 columns)"]), (CONFOUNDED.graph, [])):
        seen: list[str] = []
        _study(table, fallback, graph, stage=seen.append)
        assert seen == [
            *first,
            "estimating the effect",
            "refutations (reliability)",
            "bootstrap (SR9)",
            "discovery on each half of the rows (DI2, PC over 3 columns)",
        ]


def test_discovered_graph_with_oriented_parents(fallback) -> None:
    # W1 -> T <- W2 is a v-structure, so PC orients T's parents; Meek's rules then orient T -> Y
    model = sem(
        ["W1", "W2", "T", "Y"], {("W1", "T"): 1.0, ("W2", "T"): 1.0, ("W1", "Y"): 1.0, ("T", "Y"): -0.7}
    )
    table, _ = model.simulate(5000, np.random.default_rng(2))
    r = _study(table, fallback, None)
    assert r.graph_source == "discovered"
    assert r.graph.skeleton() == model.graph.skeleton()
    assert r.adjustment_set == ["W1", "W2"]
    assert not r.ambiguous
    assert r.ci_low < model.true_effect("T", "Y", 0.0, 1.0, 100, seed=0) < r.ci_high


def test_unoriented_parents_give_every_ida_effect(fallback) -> None:
    # A -> T -> Y: a chain has no v-structure, so every edge stays undirected
    model = sem(["A", "T", "Y"], {("A", "T"): 1.0, ("T", "Y"): 0.8})
    table, _ = model.simulate(3000, np.random.default_rng(3))
    r = _study(table, fallback, None)
    assert r.graph.undirected and not r.graph.directed
    assert r.ambiguous
    # IDA parent sets of T: {}, {A}, {Y}; with Y as T's parent the effect on Y is 0
    assert len(r.effect_set) == 3
    assert r.effect_set[2] == 0.0
    fitted = r.effect_set[:2]
    assert r.causal_effect == min(fitted, key=abs)
    assert r.adjustment_set == ([] if r.causal_effect == fitted[0] else ["A"])
    assert all(abs(e - 0.8) < 0.1 for e in fitted)
    # the same CPDAG given by the user takes the same IDA path
    given = _study(table, fallback, r.graph)
    assert given.graph_source == "given"
    assert (given.effect_set, given.ambiguous) == (r.effect_set, True)


def test_same_seed_same_result_and_different_seed_different_draws(fallback) -> None:
    table, _ = CONFOUNDED.simulate(1000, np.random.default_rng(4))
    a = _study(table, fallback, None, seed=7).to_json()
    b = _study(table, fallback, None, seed=7).to_json()
    c = _study(table, fallback, None, seed=8).to_json()
    assert a == b
    assert a["causal_effect"] == c["causal_effect"]  # the full-sample estimate uses no draw
    for name in ("placebo_treatment", "random_common_cause", "data_subsets"):
        assert a["refutations"][name]["figure"] != c["refutations"][name]["figure"]
    d7, d8 = draws.StudyDraws.make(7, 1000), draws.StudyDraws.make(8, 1000)
    assert not np.array_equal(d7.bootstrap, d8.bootstrap)
    assert not np.array_equal(d7.halves[0], d8.halves[0])


def test_draws_have_the_documented_shapes() -> None:
    d = draws.StudyDraws.make(3, 1001)
    assert sorted(d.placebo) == list(range(1001))
    assert d.subsets.shape == (20, 800)
    assert all(len(set(s)) == 800 for s in d.subsets)
    assert d.bootstrap.shape == (9, 1001) and d.bootstrap.max() < 1001
    a, b = d.halves
    assert len(a) == 500 and len(b) == 501 and not set(a) & set(b)
    with pytest.raises(UsageError, match="seed"):
        draws.StudyDraws.make(-1, 10)


def test_subsets_are_uniform_sets_of_distinct_rows() -> None:
    # every row is kept with probability 0.8 and every pair of rows together with 0.8 * 799/999:
    # what a uniform choice of 800 of 1000 rows gives (the rows left out are what is drawn)
    n, size, count = 1000, 800, 4000
    s = draws.subsets(11, n, count=count)
    assert s.shape == (count, size)
    assert (np.diff(s, axis=1) > 0).all()  # distinct, in increasing order
    assert s.min() >= 0 and s.max() < n
    kept = np.zeros((count, n), dtype=bool)
    kept[np.arange(count)[:, None], s] = True
    rate = kept.mean(axis=0)
    se = math.sqrt(0.8 * 0.2 / count)
    assert abs(rate.mean() - 0.8) < 1e-12  # exactly 800 of 1000 in every subset
    assert np.abs(rate - 0.8).max() < 5 * se  # no row favoured (1000 rows: 5 sigma)
    pair = (kept[:, 0] & kept[:, 1]).mean()
    assert abs(pair - 0.8 * 799 / 999) < 5 * math.sqrt(0.64 * 0.36 / count)
    assert np.array_equal(s[:20], draws.subsets(11, n))  # the same seed, the same first draws
    assert not np.array_equal(draws.subsets(12, n), draws.subsets(11, n))


def test_no_effect_covers_zero_and_a_real_effect_is_detected(fallback) -> None:
    null = sem(["W", "T", "Y"], {("W", "T"): 1.0, ("W", "Y"): 1.0})
    real = sem(["W", "T", "Y"], {("W", "T"): 1.0, ("W", "Y"): 1.0, ("T", "Y"): 0.3})
    for model, has_effect in ((null, False), (real, True)):
        table, _ = model.simulate(3000, np.random.default_rng(5))
        r = _study(table, fallback, model.graph)
        placebo = r.refutations[0]
        assert placebo.name == "placebo_treatment" and placebo.passed
        assert abs(placebo.figure) < 3 * r.se
        assert (r.ci_low <= 0.0 <= r.ci_high) is not has_effect


def test_unmeasured_confounder_gets_a_low_robustness_value(fallback) -> None:
    # U drives both T and Y weakly; T has no effect at all. Without U the regression still finds
    # a small "effect" at n = 10000, but a confounder this weak could explain it away.
    model = sem(["U", "T", "Y"], {("U", "T"): 0.2, ("U", "Y"): 0.2})
    full, _ = model.simulate(10000, np.random.default_rng(6))
    table = full.select(["T", "Y"])
    r = _study(table, fallback, Graph(("T", "Y"), [("T", "Y")]))
    assert r.ci_low > 0.0  # the spurious effect is "significant"
    rv = r.refutations[3]
    assert rv.name == "robustness_value"
    assert rv.figure < 0.05 and not rv.passed
    strong = sem(["W", "T", "Y"], {("W", "T"): 1.0, ("W", "Y"): 1.0, ("T", "Y"): 1.0})
    table, _ = strong.simulate(10000, np.random.default_rng(6))
    assert _study(table, fallback, strong.graph).refutations[3].figure > 0.3


def test_robustness_value_solves_its_defining_equation() -> None:
    # Cinelli & Hazlett: RV_{q=1} is the partial R^2 with RV^2 / (1 - RV) = f^2, f = |t| / sqrt(dof)
    for t, dof in ((2.0, 100), (30.0, 9990), (-5.0, 50)):
        rv = robustness_value(t, dof)
        f2 = t * t / dof
        assert 0.0 < rv < 1.0
        assert rv * rv / (1.0 - rv) == pytest.approx(f2, rel=1e-12)
    # large f: 1 - RV = RV^2 / f^2 ~ 1 / f^2, which the textbook form cancelled to 0 from f ~ 1e8
    assert 1.0 - robustness_value(1e6, 1) == pytest.approx(1e-12, rel=1e-3)
    assert robustness_value(1e9, 1) == pytest.approx(1.0, abs=1e-15)
    assert robustness_value(3e10, 400) > 0.999
    assert robustness_value(0.0, 10) == 0.0


def test_an_exact_fit_passes_its_own_checks(fallback) -> None:
    # simulated without noise: the refits differ from the estimate by rounding only, and the
    # interval is about as narrow; the checks must not fail (or pass) by rounding
    rng = np.random.default_rng(3)
    w = rng.normal(size=300)
    t = w + rng.normal(size=300)
    table = Table.from_columns({"W": w, "T": t, "Y": 2.0 * t + w})
    graph = Graph(("W", "T", "Y"), [("W", "T"), ("W", "Y"), ("T", "Y")])
    res = _study(table, fallback, graph)
    assert res.causal_effect == pytest.approx(2.0, rel=1e-12)
    passed = {r.name: r.passed for r in res.refutations}
    assert passed["random_common_cause"] and passed["data_subsets"] and passed["robustness_value"]
    assert res.SR9 == 1.0


def test_sr9_is_high_for_a_strong_effect_and_lower_for_none(fallback) -> None:
    # a resample lands inside the 95% CI about 95% of the time; with no effect its sign also
    # matches the full sample's only about 3 times in 4 (E[Phi(|Z|)] for a standard normal Z)
    null = sem(["W", "T", "Y"], {("W", "T"): 1.0, ("W", "Y"): 1.0})
    strong, none = [], []
    for seed in range(20):
        for model, out in ((CONFOUNDED, strong), (null, none)):
            table, _ = model.simulate(500, np.random.default_rng(100 + seed))
            r = _study(table, fallback, model.graph, seed=seed)
            assert r.SR9 in {i / 9 for i in range(10)}
            out.append(r.SR9)
    # population means (150 studies each): 0.95 and 0.72; the margins are about 3 standard errors
    assert np.mean(strong) > 0.9
    assert np.mean(none) < 0.85


def test_di2_on_stable_and_on_borderline_structure(fallback) -> None:
    rng = np.random.default_rng(8)
    independent = Table.from_columns(
        {"T": rng.normal(size=2000), "Y": rng.normal(size=2000), "Z": rng.normal(size=2000)}
    )
    assert _study(independent, fallback, None, seed=1).DI2 in (1.0, 0.5)  # usually no edge in either half
    # edges near PC's detection limit: halves disagree at least sometimes
    weak = sem(["A", "T", "Y", "B"], {("A", "T"): 0.06, ("T", "Y"): 0.06, ("Y", "B"): 0.06})
    table, _ = weak.simulate(2000, np.random.default_rng(9))
    di2 = [_study(table, fallback, weak.graph, seed=s).DI2 for s in range(5)]
    assert min(di2) < 1.0
    assert jaccard(frozenset(), frozenset()) == 1.0
    ab, bc = frozenset({"A", "B"}), frozenset({"B", "C"})
    assert jaccard(frozenset({ab, bc}), frozenset({ab})) == 0.5


def test_batched_and_looped_backends_agree(fallback) -> None:
    class LoopOnly:
        """The fallback without estimate_many: the study must loop, with the same answers."""

        name = "loop"
        priority = 0

        def discover(self, table, alpha):
            return fallback.discover(table, alpha)

        def estimate(self, *args):
            return fallback.estimate(*args)

    table, _ = CONFOUNDED.simulate(1500, np.random.default_rng(10))
    a = _study(table, fallback, CONFOUNDED.graph)
    meter = FitMeter()
    b = _study(table, LoopOnly(), CONFOUNDED.graph, meter=meter)
    assert meter.count == 34
    assert (a.SR9, a.DI2) == (b.SR9, b.DI2)
    for x, y in zip(a.refutations, b.refutations, strict=True):
        assert x.passed == y.passed
        assert x.figure == pytest.approx(y.figure, rel=1e-9)


def test_estimator_by_name(fallback) -> None:
    table, _ = CONFOUNDED.simulate(500, np.random.default_rng(11))
    r = run_study(table, treatment="T", outcome="Y", t0=0, t1=2, graph=None, estimator="fallback", seed=0)
    assert r.estimator == "fallback"
    assert r.t1 == 2.0


def test_bad_inputs_are_one_clear_line(fallback) -> None:
    table, _ = CONFOUNDED.simulate(200, np.random.default_rng(12))
    with pytest.raises(UsageError, match="unknown treatment variable 'Q'; valid: W, T, Y"):
        run_study(table, treatment="Q", outcome="Y", t0=0, t1=1, graph=None, estimator=fallback, seed=0)
    with pytest.raises(UsageError, match="unknown outcome variable 'Q'"):
        run_study(table, treatment="T", outcome="Q", t0=0, t1=1, graph=None, estimator=fallback, seed=0)
    with pytest.raises(UsageError, match="cycle: (W -> T -> Y -> W|T -> Y -> W -> T|Y -> W -> T -> Y)"):
        _study(table, fallback, Graph.parse("W->T,T->Y,Y->W"))
    with pytest.raises(UsageError, match="names variable 'Z', which is not a column"):
        _study(table, fallback, Graph.parse("Z->T,T->Y"))
    with pytest.raises(UsageError, match="Y -> T: T cannot cause Y"):
        _study(table, fallback, Graph.parse("W->T,Y->T"))
    with pytest.raises(UsageError, match="t0 and t1"):
        run_study(table, treatment="T", outcome="Y", t0=1, t1=1, graph=None, estimator=fallback, seed=0)
    bad = table.values.copy()
    bad[17, 2] = math.nan
    with pytest.raises(DataError, match="column 'Y', data row 18"):
        _study(Table(table.names, bad), fallback, None)
    with pytest.raises(DataError, match="needs 20"):
        _study(table.take(np.arange(10)), fallback, None)


def test_near_copies_are_grouped_with_their_weakest_link() -> None:
    rng = np.random.default_rng(3)
    a, c, d = rng.standard_normal((3, 5000))
    cols = {
        "a": a,
        "a2": a + 0.05 * rng.standard_normal(5000),  # r ~ 0.9988 with a
        "c": c,
        "a3": a + 0.1 * rng.standard_normal(5000),  # r ~ 0.995 with a
        "d": d,
        "d2": -d + 0.01 * rng.standard_normal(5000),  # a copy with the sign flipped
        "k": np.ones(5000),  # constant: r is undefined, never a copy
        "half": a + 0.5 * rng.standard_normal(5000),  # r ~ 0.89: correlated, not a copy
    }
    got = near_copies(Table.from_columns(cols))
    assert [g for g, _ in got] == [["a", "a2", "a3"], ["d", "d2"]]
    r = np.corrcoef(np.vstack([cols["a"], cols["a2"], cols["a3"]]))
    assert got[0][1] == pytest.approx(min(r[0, 1], r[0, 2], r[1, 2]))
    assert near_copies(Table.from_columns({"x": a, "y": c})) == []
    assert near_copies(Table.from_columns({"x": a})) == []  # `dmca discover` of a one-column file


def test_a_discovered_graph_warns_about_near_copies_and_a_given_one_does_not(fallback) -> None:
    # the cosmology domain's velocity dispersion, X-ray temperature and lensing mass track the
    # halo mass to r > 0.99: PC, given one of them, finds mass independent of what it causes
    from dmca_core.plugins import get_domain

    group = "log10_mass, log10_sigma_v, log10_tx_kev, log10_mwl are near copies"
    data = get_domain("cosmology").load("DarkPhoton", 2000, 1, {})
    kw = dict(treatment="feedback", outcome="log10_rho_inner", t0=0.0, t1=1.0, estimator="fallback", seed=1)
    found = run_study(data.table, graph=None, **kw)
    assert len(found.warnings) == 1 and found.to_json()["warnings"] == found.warnings
    assert group in found.warnings[0]
    # the example of docs/discovery.md: the mass -> feedback edge dropped, the wrong sign
    truth = data.truth_fn("feedback", "log10_rho_inner", 0.0, 1.0).effect
    given = run_study(data.table, graph=data.true_graph, **kw)
    assert given.warnings == [] and given.ci_low <= truth <= given.ci_high
    assert found.ci_low > 0 > truth
    # where the discovered graph turns the edge around, the refusal carries the warning
    turned = get_domain("cosmology").load("Axion", 2000, 1, {})
    with pytest.raises(DataError, match="log10_rho_inner -> feedback") as err:
        run_study(turned.table, graph=None, **kw)
    assert group in str(err.value)


def test_a_constant_outcome_is_refused_naming_it(fallback) -> None:
    # it gave effect 0 with interval [0, 0] (fallback) or a rounding-sized one excluding 0 (full)
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.standard_normal(50), rng.standard_normal(50), np.full(50, 4.0)])
    with pytest.raises(DataError, match=r"the outcome 'Y' is constant \(4\)"):
        run_study(
            Table(("T", "W", "Y"), x), treatment="T", outcome="Y", t0=0, t1=1,
            graph=Graph(("T", "W", "Y"), [("T", "Y"), ("W", "Y")]), estimator=fallback, seed=1,
        )  # fmt: skip


def test_a_binary_treatment_with_a_small_group_is_warned_about(fallback) -> None:
    rng = np.random.default_rng(4)
    t = (np.arange(60) < 6).astype(float)
    w = rng.standard_normal(60)
    table = Table(("T", "W", "Y"), np.column_stack([t, w, 1.5 * t + w + rng.standard_normal(60)]))
    graph = Graph(("T", "W", "Y"), [("T", "Y"), ("W", "Y")])
    kw = dict(treatment="T", outcome="Y", t0=0, t1=1, graph=graph, estimator=fallback, seed=1)
    (warning,) = run_study(table, **kw).warnings
    assert warning.startswith("treatment 'T' takes two values and 1 only in 6 rows")
    balanced = table.with_column("T", (np.arange(60) < 10).astype(float))
    assert run_study(balanced, **kw).warnings == []
