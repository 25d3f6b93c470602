"""Axio-electric absorption rate: the published constant and the shipped cross-section table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dmca_core.physics import axion, wimp


def test_rate_constant_matches_published_form() -> None:
    # XENON (Aprile et al. 2020, PRD 102, 072004, eq. 5): R ≈ 1.5e19/A g² (m_a/keV) (σ_pe/b) /kg/day, ρ=0.3.
    # Exactly: ρ N_A c 3/(16π α m_e²) with ρ = 0.3e6 keV/cm³, N_A per kg (×1e3), σ 1 b = 1e-24 cm², per day
    exact = (
        0.3e6
        * 6.02214076e26
        * 2.99792458e10
        * 3
        * 1e-24
        * 86400
        / (16 * math.pi / 137.035999084 * 510.99895**2)
    )
    assert f"{exact:.1e}" == "1.5e+19"  # XENON's two figures
    for target in ("Xe", "Ge", "Ar", "Si"):
        a = wimp.ATOMIC_WEIGHT[target]
        r = float(axion.absorption_rate(10.0, 1.0, target, rho_gev_cm3=0.3))
        const = r * a / (10.0 * float(axion.sigma_pe_barn(10.0, target)))
        assert const == pytest.approx(exact, rel=1e-6)


def test_rate_scaling_and_units() -> None:
    base = float(axion.absorption_rate(5.0, 1e-12, "Xe"))
    assert float(axion.absorption_rate(5.0, 2e-12, "Xe")) == pytest.approx(4 * base)
    assert float(axion.absorption_rate(5.0, 1e-12, "Xe", rho_gev_cm3=0.8)) == pytest.approx(2 * base)


def test_table_edges_and_interpolation() -> None:
    e, xs = axion.photoelectric_table()
    assert set(xs) == {"Si", "Ar", "Ge", "Xe"}
    # the K edges jump up (Si 1.839, Ar 3.206, Ge 11.10, Xe 34.56 keV)
    for target, edge in (("Si", 1.839), ("Ar", 3.2059), ("Ge", 11.103), ("Xe", 34.561)):
        below, above = axion.sigma_pe_barn(np.array([edge * 0.999, edge * 1.001]), target)
        assert above > 3 * below
    # Xe at 30 keV: (mu/rho)_pe ≈ 8.0 cm²/g in NIST XCOM -> about 1.75e3 b
    assert float(axion.sigma_pe_barn(30.0, "Xe")) == pytest.approx(1.75e3, rel=0.05)
    with pytest.raises(ValueError, match="outside"):
        axion.sigma_pe_barn(0.1, "Xe")
