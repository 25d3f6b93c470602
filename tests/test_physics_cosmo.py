"""Halo scaling laws recovered from noiseless cosmology data; the soliton's core-radius scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dmca_core.domains.cosmology import Cosmology
from dmca_core.physics import cosmo


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.polyfit(x, y, 1)[0])


@pytest.fixture(scope="module")
def noiseless():
    sim = Cosmology().simulator("WIMP", {"scatter": 0.0})
    u = sim.noise(np.random.default_rng(3), 2000)
    return sim.run(u, {"redshift": 0.3, "feedback": 0.0})  # fixed z, no feedback: pure scaling laws


def test_self_similar_slopes(noiseless) -> None:
    lm = noiseless["log10_mass"]
    assert _slope(lm, noiseless["log10_sigma_v"]) == pytest.approx(1 / 3, abs=1e-9)
    assert _slope(lm, noiseless["log10_tx_kev"]) == pytest.approx(2 / 3, abs=1e-9)
    assert _slope(lm, noiseless["log10_mwl"]) == pytest.approx(1.0, abs=1e-9)
    assert _slope(lm, noiseless["log10_conc"]) == pytest.approx(-0.084, abs=1e-9)  # Duffy+08


def test_normalisations_against_published_values() -> None:
    # Duffy+08: c200 = 5.71 at M = 2e12/h Msun, z = 0; Evrard+08: 1082.9 km/s at h E(z) M = 1e15 Msun
    assert 10 ** float(cosmo.log10_c_duffy08(math.log10(2e12 / cosmo.H_LITTLE), 0.0)) == pytest.approx(5.71)
    assert float(cosmo.sigma_v_km_s(1e15 / cosmo.H_LITTLE, 0.0)) == pytest.approx(1082.9)
    # k T = mu m_p sigma²: a 1000 km/s cluster is about 6 keV
    assert float(cosmo.t_virial_kev(1000.0)) == pytest.approx(6.16, rel=0.01)
    # NFW: the mass inside r200 is M200
    m, c, z = 1e12, 8.0, 0.0
    rho_s, rs = cosmo.nfw_params(m, c, z)
    inside = 4 * math.pi * rho_s * rs**3 * (math.log1p(c) - c / (1 + c))
    assert inside == pytest.approx(m, rel=1e-12)


def test_soliton_core_radius_scaling() -> None:
    # Schive et al. 2014: 1.6 kpc at m22 = 1, M = 1e9 Msun, z = 0; r_c ∝ m22^-1 M^-1/3
    assert float(cosmo.soliton_core_kpc(1.0, 1e9, 0.0)) == pytest.approx(1.6)
    m22 = np.geomspace(0.1, 10, 7)
    mh = np.geomspace(1e9, 1e13, 7)
    assert _slope(np.log10(m22), np.log10(cosmo.soliton_core_kpc(m22, 1e10, 0.0))) == pytest.approx(-1.0)
    assert _slope(np.log10(mh), np.log10(cosmo.soliton_core_kpc(1.0, mh, 0.0))) == pytest.approx(-1 / 3)
    # the domain's noiseless core radii follow the same law
    sim = Cosmology().simulator("Axion", {"scatter": 0.0})
    v = sim.run(sim.noise(np.random.default_rng(0), 500), {"redshift": 0.0})
    X = np.column_stack([np.ones(500), v["log10_m22"], v["log10_mass"]])
    coef = np.linalg.lstsq(X, v["log10_r_core"], rcond=None)[0]
    np.testing.assert_allclose(coef, [math.log10(1.6) + 3, -1.0, -1 / 3], atol=1e-9)


def test_soliton_density_matches_schive_normalisation() -> None:
    # rho_c = 1.9 a^-1 (m_psi/1e-23 eV)^-2 (r_c/kpc)^-4 Msun/pc³ = 1.9e7 Msun/kpc³ at m22 = 1, r_c = 1 kpc
    assert float(cosmo.soliton_density(0.0, 1.0, 1.0, 0.0)) == pytest.approx(1.9e7)
    # half density near r = 0.3 r_c... by construction of the profile (1 + 0.091 x²)^-8 = 1/2 at x ≈ 0.30
    x = math.sqrt((2 ** (1 / 8) - 1) / 0.091)
    assert float(cosmo.soliton_density(x, 1.0, 1.0, 0.0)) == pytest.approx(0.95e7)


def test_sidm_core_is_linear_in_cross_section() -> None:
    rho_s, rs = cosmo.nfw_params(1e11, 10.0, 0.0)
    r_a = cosmo.sidm_core_kpc(rho_s, rs, 0.1, 100.0, 10.0)
    r_b = cosmo.sidm_core_kpc(rho_s, rs, 1.0, 100.0, 10.0)
    assert float(r_b / r_a) == pytest.approx(10.0)
    # rho(r1) sigma/m v t = 1 on the NFW inner asymptote, in cgs
    rho_r1_g_cm3 = rho_s * rs / r_b * cosmo.MSUN_G / cosmo.KPC_CM**3
    t_s = 10.0 * 3.15576e16
    assert float(rho_r1_g_cm3 * 1.0 * 100e5 * t_s) == pytest.approx(1.0, rel=1e-3)
