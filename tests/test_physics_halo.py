"""The SHM's closed-form eta(v_min) against direct numerical integration of the Maxwellian."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from dmca_core.physics.halo import StandardHalo, eta_shm


def _eta_numeric(h: StandardHalo, vmin: float) -> float:
    """∫ d³v f_gal(v + v_E)/|v| over |v| > vmin, in polar coordinates about v_E (no closed form used)."""
    v0, ve, vesc = h.v0_km_s, h.v_earth_km_s, h.v_esc_km_s
    # normalisation of the truncated Maxwellian, integrated numerically too
    norm = 4 * math.pi * integrate.quad(lambda u: u * u * math.exp(-u * u / v0**2), 0, vesc)[0]

    def inner(v: float) -> float:
        def g(c: float) -> float:
            u2 = v * v + ve * ve + 2 * v * ve * c
            return math.exp(-u2 / v0**2) if u2 < vesc**2 else 0.0

        edge = (vesc**2 - v * v - ve * ve) / (2 * v * ve)  # where |v + v_E| crosses v_esc
        pts = [edge] if abs(edge) < 1 else None
        return 2 * math.pi * integrate.quad(g, -1, 1, points=pts, epsabs=0, epsrel=1e-10)[0]

    vmax = vesc + ve
    if vmin >= vmax:
        return 0.0
    brk = [p for p in (vesc - ve,) if vmin < p < vmax]
    val = integrate.quad(
        lambda v: v * inner(v), vmin, vmax, points=brk or None, epsabs=0, epsrel=1e-9, limit=200
    )[0]
    return val / norm


@pytest.mark.parametrize(
    "halo",
    [
        StandardHalo(),
        StandardHalo(v0_km_s=220, v_earth_km_s=232, v_esc_km_s=544),
        StandardHalo(v0_km_s=238, v_earth_km_s=250.2, v_esc_km_s=544),
    ],
)
def test_eta_matches_numerical_integration(halo: StandardHalo) -> None:
    vmins = np.array([0.0, 50, 200, 400, 500, halo.v_esc_km_s - halo.v_earth_km_s + 20, 700, 820])
    closed = halo.eta(vmins)
    for vmin, got in zip(vmins, closed, strict=True):
        want = _eta_numeric(halo, float(vmin))
        assert got == pytest.approx(want, rel=1e-6, abs=1e-14), vmin


def test_eta_vanishes_beyond_vmax_and_is_decreasing() -> None:
    h = StandardHalo()
    v = np.linspace(0, h.v_max_km_s + 100, 400)
    e = h.eta(v)
    assert np.all(np.diff(e) <= 1e-15)
    assert np.all(e[v >= h.v_max_km_s] == 0)
    assert e[0] > 0


def test_speed_pdf_normalised_and_consistent_with_eta() -> None:
    h = StandardHalo()
    total = integrate.quad(h.speed_pdf, 0, h.v_max_km_s, points=[h.v_esc_km_s - h.v_earth_km_s])[0]
    assert total == pytest.approx(1.0, rel=1e-8)
    for vmin in (0.0, 300.0, 600.0):
        num = integrate.quad(
            lambda v: h.speed_pdf(v) / v,
            max(vmin, 1e-9),
            h.v_max_km_s,
            points=[h.v_esc_km_s - h.v_earth_km_s],
            limit=200,
        )[0]
        assert float(h.eta(vmin)) == pytest.approx(num, rel=1e-7)


def test_eta_units_scale_consistently() -> None:
    # scaling every speed by k scales eta(k v) by 1/k: the formula has no hidden unit
    h = StandardHalo()
    k = 1.0 / 299_792.458  # km/s -> units of c
    hk = StandardHalo(v0_km_s=h.v0_km_s * k, v_earth_km_s=h.v_earth_km_s * k, v_esc_km_s=h.v_esc_km_s * k)
    v = np.array([10.0, 250.0, 640.0])
    np.testing.assert_allclose(hk.eta(v * k), h.eta(v) / k, rtol=1e-12)
    np.testing.assert_allclose(h.eta_natural(v * k), h.eta(v) / k, rtol=1e-12)
    np.testing.assert_allclose(eta_shm(v), h.eta(v))


def test_bad_halo_rejected() -> None:
    with pytest.raises(ValueError, match="v_earth_km_s"):
        StandardHalo(v_earth_km_s=700)
    with pytest.raises(ValueError, match="v0_km_s"):
        StandardHalo(v0_km_s=-1)
    with pytest.raises(ValueError, match="v_min"):
        StandardHalo().eta(-1.0)
