"""WIMP recoil rates against the independent `wimprates` package, and their units."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dmca_core.physics import wimp
from dmca_core.physics.halo import StandardHalo

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    wr = pytest.importorskip("wimprates")
nu = pytest.importorskip("numericalunits")

V0, VESC, RHO = 230.0, 600.0, 0.4


@pytest.fixture(scope="module")
def halos():
    # wimprates fixes the Earth's speed from v0 and the date; use the same speed on our side
    ve = wr.v_earth(None, v_0=V0 * nu.km / nu.s) / (nu.km / nu.s)
    ours = StandardHalo(rho_gev_cm3=RHO, v0_km_s=V0, v_earth_km_s=ve, v_esc_km_s=VESC)
    theirs = wr.StandardHaloModel(
        v_0=V0 * nu.km / nu.s, v_esc=VESC * nu.km / nu.s, rho_dm=RHO * nu.GeV / nu.c0**2 / nu.cm**3
    )
    return ours, theirs


def _wr_rate_above(thr: float, m: float, target: str, halo, sigma: float) -> float:
    """wimprates' dR/dE (per tonne-year-keV) integrated above thr, per kg-day."""
    emax = wimp.e_max_kev(m, wimp.ATOMIC_WEIGHT[target], StandardHalo(v_earth_km_s=260, v_esc_km_s=VESC))
    es = np.geomspace(thr, max(emax, thr * 1.001), 160)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dr = wr.rate_wimp_std(es, m, sigma, material=target, halo_model=halo)
    return float(np.trapezoid(dr, es)) / 1000.0 / (nu.year / nu.day)


@pytest.mark.parametrize("target", ["Xe", "Ar", "Ge"])
@pytest.mark.parametrize("mass", [10.0, 50.0, 1000.0])
def test_rate_above_threshold_matches_wimprates(halos, target: str, mass: float) -> None:
    ours, theirs = halos
    for thr in (1.0, 5.0, 20.0):
        want = _wr_rate_above(thr, mass, target, theirs, 1e-45)
        got = float(wimp.rate_above(thr, mass, 1e-45, target, ours))
        if want < 1e-12:  # kinematically closed: both must vanish
            assert got < 1e-12
            continue
        assert got == pytest.approx(want, rel=0.02), (target, mass, thr)


def test_differential_rate_matches_wimprates_pointwise(halos) -> None:
    ours, theirs = halos
    es = np.array([0.5, 2.0, 8.0, 30.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = (
            wr.rate_wimp_std(es, 100.0, 1e-45, material="Xe", halo_model=theirs) / 1000 / (nu.year / nu.day)
        )
    got = wimp.diff_rate(es, 100.0, 1e-45, "Xe", ours)
    np.testing.assert_allclose(got, want, rtol=0.02)


def test_helm_form_factor_limits() -> None:
    assert float(wimp.helm_form_factor_sq(0.0, 131.293)) == pytest.approx(1.0)
    f = wimp.helm_form_factor_sq(np.linspace(0.0, 50.0, 200), 131.293)
    assert np.all(f <= 1.0 + 1e-12) and f[-1] < 0.2  # suppression at large q for heavy nuclei


def test_rate_units_scale_consistently() -> None:
    h = StandardHalo()
    base = wimp.rate_above(5.0, 100.0, 1e-45, "Xe", h)
    # linear in density and cross-section
    assert float(wimp.rate_above(5.0, 100.0, 2e-45, "Xe", h)) == pytest.approx(2 * float(base), rel=1e-12)
    h2 = StandardHalo(rho_gev_cm3=0.8)
    assert float(wimp.rate_above(5.0, 100.0, 1e-45, "Xe", h2)) == pytest.approx(2 * float(base), rel=1e-12)
    # GeV, cm² -> MeV, m²: the same physics written in other units gives the same number
    dr_gev = wimp.diff_rate(np.array([3.0, 10.0]), 100.0, 1e-45, "Xe", h)
    mass_mev, sigma_m2 = 100.0e3, 1e-49
    dr_other = wimp.diff_rate(np.array([3.0, 10.0]), mass_mev / 1e3, sigma_m2 * 1e4, "Xe", h)
    np.testing.assert_allclose(dr_other, dr_gev, rtol=1e-12)
    # the rate above threshold is the integral of the differential rate
    es = np.linspace(5.0, wimp.e_max_kev(100.0, wimp.ATOMIC_WEIGHT["Xe"], h), 20001)
    assert float(base) == pytest.approx(np.trapezoid(wimp.diff_rate(es, 100.0, 1e-45, "Xe", h), es), rel=1e-3)


def test_unknown_target() -> None:
    with pytest.raises(ValueError, match="valid: Xe"):
        wimp.diff_rate(1.0, 10.0, 1e-45, "Pb")
