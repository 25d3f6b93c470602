"""Spin-independent WIMP-nucleus recoil rates (Lewin & Smith 1996, Astropart. Phys. 6, 87).

Units: recoil energy E in keV (nuclear recoil), masses in GeV/c², cross-sections in cm², rates per
kg of target per day (``dR/dE`` per keV). The halo is :class:`~dmca_core.physics.halo.StandardHalo`.

    dR/dE = ρ σ_p A² F²(q) η(v_min) / (2 m_χ μ_p²),      v_min = sqrt(m_N E / (2 μ_N²)),

with equal couplings to protons and neutrons (σ_N = σ_p A² μ_N²/μ_p²) and the Helm form factor
(Lewin & Smith eq. 4.7, with s = 0.9 fm, a = 0.52 fm, c = 1.23 A^{1/3} - 0.60 fm).
"""

from __future__ import annotations

import math

import numpy as np

from .halo import C_KM_S, StandardHalo

AMU_GEV = 0.93149410242  # atomic mass unit, GeV/c² (CODATA 2018)
PROTON_MASS_GEV = 0.93827208816
HBARC_GEV_FM = 0.1973269804
GEV_KG = 1.78266192e-27  # 1 GeV/c² in kg
KEV_J = 1.602176634e-16
DAY_S = 86_400.0

#: mean atomic weights (natural isotopic mix); the nucleus mass is A × 1 amu
ATOMIC_WEIGHT: dict[str, float] = {"Xe": 131.293, "Ar": 39.948, "Ge": 72.630, "Si": 28.0855}


def target_weight(target: str) -> float:
    try:
        return ATOMIC_WEIGHT[target]
    except KeyError:
        raise ValueError(f"unknown target {target!r}; valid: {', '.join(ATOMIC_WEIGHT)}") from None


def helm_form_factor_sq(e_kev: float | np.ndarray, a_weight: float) -> np.ndarray:
    """|F(q)|² of the Helm form factor at recoil energy ``e_kev`` (keV) for mass number ``a_weight``."""
    e = np.asarray(e_kev, dtype=np.float64)
    m_n = a_weight * AMU_GEV
    q_fm = np.sqrt(2.0 * m_n * e * 1e-6) / HBARC_GEV_FM  # momentum transfer in 1/fm
    s, a = 0.9, 0.52
    c = 1.23 * a_weight ** (1 / 3) - 0.60
    rn = math.sqrt(c * c + 7 / 3 * math.pi**2 * a * a - 5 * s * s)
    x = q_fm * rn
    with np.errstate(divide="ignore", invalid="ignore"):
        j1_over_x = np.where(x > 1e-4, (np.sin(x) / x**2 - np.cos(x) / x) / x, 1 / 3 - x * x / 30)
    return (3.0 * j1_over_x) ** 2 * np.exp(-((q_fm * s) ** 2))


def reduced_mass(a: float, b: float | np.ndarray) -> float | np.ndarray:
    return a * b / (a + b)


def v_min_km_s(e_kev: float | np.ndarray, m_chi_gev: float, a_weight: float) -> np.ndarray:
    """Smallest WIMP speed (km/s) that can give a nuclear recoil of ``e_kev``."""
    m_n = a_weight * AMU_GEV
    mu = reduced_mass(m_chi_gev, m_n)
    return C_KM_S * np.sqrt(m_n * np.asarray(e_kev, dtype=np.float64) * 1e-6 / (2.0 * mu * mu))


def e_max_kev(m_chi_gev: float, a_weight: float, halo: StandardHalo) -> float:
    """Largest recoil energy (keV) the halo's fastest particle can give."""
    m_n = a_weight * AMU_GEV
    mu = reduced_mass(m_chi_gev, m_n)
    return 2.0 * mu * mu * (halo.v_max_km_s / C_KM_S) ** 2 / m_n * 1e6


def diff_rate(
    e_kev: float | np.ndarray,
    m_chi_gev: float,
    sigma_p_cm2: float,
    target: str = "Xe",
    halo: StandardHalo | None = None,
    nucleon_mass_gev: float = PROTON_MASS_GEV,
) -> np.ndarray:
    """dR/dE in events / (kg · day · keV) for spin-independent scattering."""
    halo = StandardHalo() if halo is None else halo
    a_w = target_weight(target)
    mu_p = reduced_mass(m_chi_gev, nucleon_mass_gev)
    eta = halo.eta(v_min_km_s(e_kev, m_chi_gev, a_w)) / 1e5  # s/km -> s/cm
    n_chi = halo.rho_gev_cm3 / m_chi_gev  # 1/cm³
    # (1/cm³)(cm²)(s/cm)/kg² = s/(cm² kg²) = 1/(kg s J) after cm -> m; do it in SI
    per_kg_s_j = (n_chi * 1e6) * (sigma_p_cm2 * 1e-4) * a_w**2 * (eta * 1e2) / (2.0 * (mu_p * GEV_KG) ** 2)
    return per_kg_s_j * helm_form_factor_sq(e_kev, a_w) * KEV_J * DAY_S


def rate_above(
    threshold_kev: float | np.ndarray,
    m_chi_gev: float,
    sigma_p_cm2: float,
    target: str = "Xe",
    halo: StandardHalo | None = None,
    e_window_kev: float | None = None,
    nucleon_mass_gev: float = PROTON_MASS_GEV,
    n_grid: int = 4000,
) -> np.ndarray:
    """Events / (kg · day) with recoil energy between ``threshold_kev`` and ``threshold + window``
    (no upper edge when ``e_window_kev`` is None), by trapezoidal integration of :func:`diff_rate`."""
    halo = StandardHalo() if halo is None else halo
    thr = np.asarray(threshold_kev, dtype=np.float64)
    emax = e_max_kev(m_chi_gev, target_weight(target), halo)
    lo = max(float(np.min(thr)) if thr.size else 0.0, 1e-6)
    if lo >= emax:
        return np.zeros_like(thr)
    grid = np.concatenate([[0.0], np.geomspace(lo * 1e-3 if lo > 0 else 1e-6, emax, n_grid)])
    dr = diff_rate(grid, m_chi_gev, sigma_p_cm2, target, halo, nucleon_mass_gev)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (dr[1:] + dr[:-1]) * np.diff(grid))])  # ∫_0^E
    total = cum[-1]

    def upto(e: np.ndarray) -> np.ndarray:
        return np.interp(np.minimum(e, emax), grid, cum)

    top = total if e_window_kev is None else upto(thr + e_window_kev)
    return np.maximum(top - upto(thr), 0.0)
