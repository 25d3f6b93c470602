"""The numpy OLS backend against closed forms: normal equations and the HC3 sandwich, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from dmca_causal_fallback.estimate import estimate, estimate_many
from dmca_core.errors import DataError, UsageError
from dmca_core.types import Table


def _data(n: int, seed: int, offset: float = 0.0) -> Table:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n, 3)) * [1.0, 3.0, 0.2]
    t = w @ [0.8, -0.3, 2.0] + rng.normal(size=n)
    # heteroskedastic noise, so HC3 and the classical SE really differ
    y = 1.5 * t + w @ [1.0, 0.5, -2.0] + rng.normal(size=n) * (0.5 + np.abs(t))
    cols = {"T": t, "Y": y, "W0": w[:, 0], "W1": w[:, 1], "W2": w[:, 2]}
    return Table.from_columns({k: v + offset for k, v in cols.items()})


def _by_hand(table: Table, adj: list[str], t0: float, t1: float) -> dict[str, float]:
    """Textbook formulas: beta = (X'X)^-1 X'y; HC3 = (X'X)^-1 X' diag(e^2 / (1 - h)^2) X (X'X)^-1,
    h the diagonal of the hat matrix X (X'X)^-1 X'."""
    n = table.n_rows
    X = np.column_stack([np.ones(n), table.column("T"), *[table.column(a) for a in adj]])
    y = table.column("Y")
    k = X.shape[1]
    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ X.T @ y
    e = y - X @ beta
    h = np.einsum("ij,jk,ik->i", X, xtx_inv, X)
    meat = X.T @ (X * (e / (1 - h))[:, None] ** 2)
    hc3 = xtx_inv @ meat @ xtx_inv
    s2 = e @ e / (n - k)
    effect = (t1 - t0) * beta[1]
    se = abs(t1 - t0) * np.sqrt(hc3[1, 1])
    return {"effect": effect, "se": se, "t": beta[1] / np.sqrt(s2 * xtx_inv[1, 1]), "dof": n - k}


@pytest.mark.parametrize("adj", [["W0", "W1", "W2"], ["W1"], []])
@pytest.mark.parametrize(("t0", "t1"), [(0.0, 1.0), (2.0, -0.5)])
def test_matches_normal_equations_and_hc3_sandwich(adj: list[str], t0: float, t1: float) -> None:
    table = _data(40, seed=3)
    got = estimate(table, "T", "Y", adj, t0, t1)
    ref = _by_hand(table, adj, t0, t1)
    assert got.effect == pytest.approx(ref["effect"], rel=1e-10)
    assert got.se == pytest.approx(ref["se"], rel=1e-10)
    assert got.t_classical == pytest.approx(ref["t"], rel=1e-10)
    assert got.dof == ref["dof"]
    # the interval's half-width is Student's t quantile: printed tables give t(0.975; 35) = 2.030,
    # t(0.975; 37) = 2.026 and t(0.975; 38) = 2.024 for the three adjustment sets here
    table_t = {35: 2.030, 37: 2.026, 38: 2.024}[ref["dof"]]
    half = (got.ci_high - got.ci_low) / 2
    assert half / ref["se"] == pytest.approx(table_t, abs=6e-4)
    assert got.ci_low + half == pytest.approx(ref["effect"], rel=1e-10)
    assert got.adjustment_set == tuple(adj)


def test_the_interval_covers_95_percent_with_few_rows() -> None:
    # 20 rows, 3 coefficients: with HC1 and the normal quantile this covered ~90% (docs/metrics.md)
    rng = np.random.default_rng(21)
    n, reps, covered = 20, 2000, 0
    for _ in range(reps):
        w = rng.normal(size=n)
        t = 0.7 * w + rng.normal(size=n)
        y = 1.5 * t - 1.0 * w + rng.normal(size=n)
        got = estimate(Table.from_columns({"T": t, "Y": y, "W": w}), "T", "Y", ["W"], 0.0, 1.0)
        covered += got.ci_low <= 1.5 <= got.ci_high
    assert 0.93 <= covered / reps <= 0.97  # Monte-Carlo sd at 95%: 0.005


def test_a_row_of_leverage_one_is_refused() -> None:
    # one treated row: the fit passes through it, and HC3 would divide by 1 - h = 0
    table = _data(30, seed=13)
    binary = np.zeros(30)
    binary[7] = 1.0
    table = table.with_column("T", binary)
    with pytest.raises(DataError, match="data row 8 has leverage 1") as info:
        estimate(table, "T", "Y", ["W0"], 0.0, 1.0)
    assert "\n" not in str(info.value)
    assert "the only row with its value of 'T')" in str(info.value)
    # the same row alone in an adjustment column: that column is named, not the treatment
    table = _data(30, seed=13).with_column("B", binary)
    with pytest.raises(DataError, match="data row 8 has leverage 1") as info:
        estimate(table, "W0", "Y", ["B"], 0.0, 1.0)
    assert "the only row with its value of 'B')" in str(info.value)
    # a column in which the row's value merely happens to be unique is not blamed
    age = np.repeat(np.arange(20.0, 35.0), 2)  # ages repeat: a value alone is notable
    age[7] = 99.0
    table = table.with_column("age", age)
    with pytest.raises(DataError, match="data row 8 has leverage 1") as info:
        estimate(table, "W0", "Y", ["B", "age"], 0.0, 1.0)
    assert "the only row with its value of 'B')" in str(info.value)


def test_hc3_differs_from_classical_under_heteroskedasticity() -> None:
    # guards against an "HC3" that is really the classical SE
    table = _data(2000, seed=4)
    got = estimate(table, "T", "Y", ["W0", "W1", "W2"], 0.0, 1.0)
    classical_se = got.effect / got.t_classical
    assert got.se > 1.1 * classical_se


def test_large_column_means_do_not_cost_precision() -> None:
    # shifting every column by a constant leaves the slope unchanged; naive normal equations on the
    # raw design lose most digits at this offset
    base = _data(500, seed=5)
    shifted = _data(500, seed=5, offset=1e6)
    adj = ["W0", "W1", "W2"]
    a = estimate(base, "T", "Y", adj, 0.0, 1.0)
    b = estimate(shifted, "T", "Y", adj, 0.0, 1.0)
    assert b.effect == pytest.approx(a.effect, rel=1e-7)
    assert b.se == pytest.approx(a.se, rel=1e-6)


def test_estimate_many_equals_one_fit_per_row_set() -> None:
    table = _data(300, seed=6)
    rng = np.random.default_rng(0)
    sets = [rng.permutation(300)[:240] for _ in range(5)] + [rng.integers(0, 300, 300) for _ in range(4)]
    adj = ["W0", "W2"]
    many = estimate_many(table, "T", "Y", adj, 1.0, 3.0, sets)
    one = [estimate(table.take(s), "T", "Y", adj, 1.0, 3.0).effect for s in sets]
    np.testing.assert_allclose(many, one, rtol=1e-10)


def test_estimate_many_marks_a_singular_row_set_nan() -> None:
    table = _data(100, seed=7)
    rare = np.zeros(100)
    rare[:3] = 1.0  # a rare binary covariate: constant on rows that miss its three ones
    table = table.with_column("R", rare)
    sets = [np.arange(100), np.arange(10, 90)]
    got = estimate_many(table, "T", "Y", ["W0", "R"], 0.0, 1.0, sets)
    assert np.isfinite(got[0])
    assert np.isnan(got[1])
    with pytest.raises(DataError, match="'R' is constant"):
        estimate(table.take(sets[1]), "T", "Y", ["W0", "R"], 0.0, 1.0)
    # a covariate that copies an affine function of T on the first 60 rows only
    rng = np.random.default_rng(0)
    copy = np.where(np.arange(100) < 60, 3.0 * table.column("T") - 250.0, rng.normal(size=100))
    table = table.with_column("C", copy)
    got = estimate_many(
        table, "T", "Y", ["W0", "C"], 0.0, 1.0, [np.arange(100), np.arange(60), np.arange(61), np.arange(62)]
    )
    assert np.isfinite(got[0]) and np.isnan(got[1]) and np.isfinite(got[2]) and np.isfinite(got[3])
    # on 61 rows the fit passes through row 60 exactly (leverage 1): estimate() refuses its HC3
    # error, the effect alone (all estimate_many gives) is still defined
    assert got[3] == pytest.approx(estimate(table.take(np.arange(62)), "T", "Y", ["W0", "C"], 0, 1).effect)


def test_constant_treatment_is_named() -> None:
    table = _data(50, seed=8).with_column("T", np.full(50, 2.0))
    with pytest.raises(DataError, match="column 'T' is constant"):
        estimate(table, "T", "Y", ["W0"], 0.0, 1.0)


def test_constant_adjustment_column_is_named() -> None:
    table = _data(50, seed=8).with_column("W1", np.full(50, -1.0))
    with pytest.raises(DataError, match="column 'W1' is constant"):
        estimate(table, "T", "Y", ["W0", "W1"], 0.0, 1.0)


def test_collinear_column_is_named() -> None:
    table = _data(50, seed=9)
    table = table.with_column("W2", 2.0 * table.column("W0") - table.column("W1") + 4.0)
    with pytest.raises(DataError, match="'W2' is collinear") as info:
        estimate(table, "T", "Y", ["W0", "W1", "W2"], 0.0, 1.0)
    assert "\n" not in str(info.value)


def test_treatment_collinear_with_adjustment_is_refused() -> None:
    table = _data(50, seed=10)
    table = table.with_column("W0", 3.0 * table.column("T") + 1.0)
    with pytest.raises(DataError, match="'W0' is collinear"):
        estimate(table, "T", "Y", ["W0"], 0.0, 1.0)


def test_too_few_rows_and_bad_names() -> None:
    table = _data(4, seed=11)
    with pytest.raises(DataError, match="4 rows cannot fit 5 coefficients"):
        estimate(table, "T", "Y", ["W0", "W1", "W2"], 0.0, 1.0)
    with pytest.raises(UsageError, match="unknown variable 'Z'"):
        estimate(_data(20, seed=1), "T", "Y", ["Z"], 0.0, 1.0)
    with pytest.raises(UsageError, match="outcome 'Y'"):
        estimate(_data(20, seed=1), "T", "Y", ["Y"], 0.0, 1.0)


def test_plugin_registers_the_fallback_estimator(fallback) -> None:
    assert fallback.name == "fallback"
    assert fallback.priority == 10
    table = _data(60, seed=12)
    got = fallback.estimate(table, "T", "Y", ["W0"], 0.0, 1.0)
    assert got.effect == pytest.approx(_by_hand(table, ["W0"], 0.0, 1.0)["effect"], rel=1e-10)
