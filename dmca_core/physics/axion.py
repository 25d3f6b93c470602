"""Absorption of axion-like dark matter through the axio-electric effect.

Units: axion mass m_a in keV/c², coupling g_ae dimensionless, density in GeV/cm³, cross-sections in
barn, rates per kg of target per day.

A non-relativistic axion of mass m_a is absorbed like a photon of energy m_a, with (Pospelov, Ritz &
Voloshin 2008, PRD 78, 115012, eq. 6 in the v → 0 limit)

    σ_ae v / (σ_pe(m_a) c) = 3 m_a² g_ae² / (16 π α m_e²),

so the rate per unit target mass is

    R = (ρ / m_a) · (N_A / A) · σ_ae v = ρ N_A c · 3 m_a g_ae² σ_pe(m_a) / (16 π α m_e² A)

= 1.466e19 / A · g_ae² · (m_a/keV) · (σ_pe/barn) per kg per day for ρ = 0.3 GeV/cm³ (XENON quotes the
same form rounded to 1.5e19, e.g. Aprile et al. 2020, PRD 102, 072004). σ_pe comes from the table
``dmca_core/data/photoelectric_xs.csv`` (Elam, Ravel & Sieber 2002, via XrayDB).
"""

from __future__ import annotations

import csv
import functools
import math
from importlib import resources

import numpy as np

from .wimp import DAY_S, target_weight

ALPHA = 1 / 137.035999084
ELECTRON_MASS_KEV = 510.99895
AVOGADRO = 6.02214076e23
C_CM_S = 2.99792458e10
BARN_CM2 = 1e-24


@functools.cache
def photoelectric_table() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(energies in keV, {target: σ_pe in barn/atom}) from the shipped table."""
    text = resources.files("dmca_core").joinpath("data/photoelectric_xs.csv").read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    reader = csv.reader(lines)
    header = next(reader)
    data = np.array([[float(x) for x in row] for row in reader])
    return data[:, 0], {name: data[:, j] for j, name in enumerate(header) if j > 0}


def sigma_pe_barn(energy_kev: float | np.ndarray, target: str) -> np.ndarray:
    """Photoelectric cross-section per atom (barn), log-log interpolated in the table."""
    e_tab, xs = photoelectric_table()
    if target not in xs:
        raise ValueError(f"no photoelectric table for {target!r}; valid: {', '.join(xs)}")
    e = np.asarray(energy_kev, dtype=np.float64)
    if np.any((e < e_tab[0]) | (e > e_tab[-1])):
        raise ValueError(f"photon energy outside the table's {e_tab[0]:g}-{e_tab[-1]:g} keV")
    return np.exp(np.interp(np.log(e), np.log(e_tab), np.log(xs[target])))


def absorption_rate(
    m_a_kev: float | np.ndarray,
    g_ae: float,
    target: str = "Xe",
    rho_gev_cm3: float = 0.4,
) -> np.ndarray:
    """Axio-electric absorption rate in events / (kg · day)."""
    m = np.asarray(m_a_kev, dtype=np.float64)
    a_w = target_weight(target)
    rho_kev_cm3 = rho_gev_cm3 * 1e6
    n_atoms_per_kg = AVOGADRO * 1000.0 / a_w
    sigma_ratio = 3.0 * m * m * g_ae * g_ae / (16.0 * math.pi * ALPHA * ELECTRON_MASS_KEV**2)
    per_s = (rho_kev_cm3 / m) * n_atoms_per_kg * sigma_pe_barn(m, target) * BARN_CM2 * C_CM_S * sigma_ratio
    return per_s * DAY_S
