"""Dark-matter-electron scattering rates in a crystal (numpy only; no PySCF needed).

Rate formula of Essig et al. 2016 (arXiv:1509.01598, eq. 3.13):

    dR/dlnE = N_cell (rho/m_chi) sigma_e alpha (m_e^2/mu_chie^2)
              * ∫ dln q (E/q) eta(v_min) |F_DM(q)|^2 |f_crys(q,E)|^2,    v_min = q/(2 m_chi) + E/q

with speeds in units of c (eta in 1/c; the overall c turns n sigma into a rate). F_DM = 1 (heavy
mediator) or (alpha m_e / q)^2 (light mediator); sigma_e is the reference cross-section at
q = alpha m_e. The form factor comes binned (:class:`dmca_core.types.FormFactor`); the q and E
integrals are sums over its bins (midpoint rule).

Ionisation: an energy deposit E makes Q = 1 + floor((E - E_gap)/eps) electron-hole pairs
(Essig 2016: silicon E_gap = 1.11 eV, eps = 3.6 eV; later SENSEI tables 1.2 and 3.8). By default
the form factor's own ``band_gap_ev`` and ``pair_energy_ev`` are used.

Units: masses in MeV, energies in eV, cross-sections in cm^2, rates in events per kg-year.
Halo: :class:`dmca_core.physics.halo.StandardHalo` (default rho = 0.4 GeV/cm^3, v0 = 230,
v_E = 240, v_esc = 600 km/s, as in Essig 2016 and QEdark).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from dmca_core.errors import UsageError
from dmca_core.physics.halo import C_KM_S, StandardHalo
from dmca_core.types import FormFactor

ALPHA = 1 / 137.035999084
M_E_MEV = 0.51099895
ATOMIC_MASS_GEV = 0.93149410242
SI_ATOMIC_MASS_U = 28.0855
SI_CELL_MASS_GEV = 2 * SI_ATOMIC_MASS_U * ATOMIC_MASS_GEV  # 2-atom primitive cell, 52.32 GeV
KG_IN_GEV = 1 / 1.78266192e-27  # 1 kg in GeV/c^2
SECONDS_PER_YEAR = 365.25 * 86400
C_CM_S = C_KM_S * 1e5

Mediator = Literal["heavy", "light"]
EtaFn = Callable[[np.ndarray], np.ndarray]  # v_min / c -> eta in units of 1/c


def cells_per_kg(cell_mass_gev: float) -> float:
    """Unit cells in one kilogram (silicon: 1.07e25)."""
    return KG_IN_GEV / cell_mass_gev


def reduced_mass_mev(m_chi_mev: float) -> float:
    return m_chi_mev * M_E_MEV / (m_chi_mev + M_E_MEV)


def f_dm2(q_ev: np.ndarray, mediator: Mediator) -> np.ndarray:
    """|F_DM(q)|^2: 1 for a heavy mediator, (alpha m_e / q)^4 for a light one."""
    if mediator == "heavy":
        return np.ones_like(q_ev)
    if mediator == "light":
        return (ALPHA * M_E_MEV * 1e6 / q_ev) ** 4
    raise UsageError(f"unknown mediator {mediator!r}; valid: heavy, light")


def _uniform_step(x: np.ndarray, what: str) -> float:
    step = np.diff(x)
    if x.size < 2 or not np.allclose(step, step[0], rtol=1e-6):
        raise UsageError(f"form factor {what} grid must be uniform bin centres")
    return float(step[0])


def _check(m_chi_mev: float, sigma_e_cm2: float) -> None:
    if not (m_chi_mev > 0 and math.isfinite(m_chi_mev)):
        raise UsageError(f"m_chi_mev must be positive, got {m_chi_mev!r}")
    if not (sigma_e_cm2 > 0 and math.isfinite(sigma_e_cm2)):
        raise UsageError(f"sigma_e_cm2 must be positive, got {sigma_e_cm2!r}")


def rate_prefactor(ff: FormFactor, m_chi_mev: float, sigma_e_cm2: float, halo: StandardHalo) -> float:
    """N_cell (rho/m_chi) sigma_e c alpha m_e^2/mu^2, in events per kg-year (eta in 1/c)."""
    n_chi_cm3 = halo.rho_gev_cm3 * 1e3 / m_chi_mev
    mu = reduced_mass_mev(m_chi_mev)
    per_s = cells_per_kg(ff.cell_mass_gev) * n_chi_cm3 * sigma_e_cm2 * C_CM_S
    return per_s * SECONDS_PER_YEAR * ALPHA * (M_E_MEV / mu) ** 2


def dr_dlne(
    ff: FormFactor,
    m_chi_mev: float,
    sigma_e_cm2: float,
    *,
    mediator: Mediator = "heavy",
    halo: StandardHalo | None = None,
    eta: EtaFn | None = None,
) -> np.ndarray:
    """dR/dlnE at the form factor's energy bin centres ``ff.e_ev``, events per kg-year.

    ``eta`` overrides the halo's eta(v_min) (argument v_min/c, result in 1/c), e.g. for tests;
    ``halo`` still supplies the local density.
    """
    _check(m_chi_mev, sigma_e_cm2)
    halo = halo or StandardHalo()
    eta_fn = eta or halo.eta_natural
    q = np.asarray(ff.q_ev, dtype=np.float64)
    e = np.asarray(ff.e_ev, dtype=np.float64)
    dq = _uniform_step(q, "q")
    m_ev = m_chi_mev * 1e6
    vmin = q[:, None] / (2 * m_ev) + e[None, :] / q[:, None]  # (nq, nE), units of c
    weight = (dq / q)[:, None] * (e[None, :] / q[:, None]) * eta_fn(vmin) * f_dm2(q, mediator)[:, None]
    return rate_prefactor(ff, m_chi_mev, sigma_e_cm2, halo) * np.sum(weight * ff.f2, axis=0)


def dr_de(ff: FormFactor, m_chi_mev: float, sigma_e_cm2: float, **kw) -> np.ndarray:
    """dR/dE in events per kg-year per eV at ``ff.e_ev``."""
    return dr_dlne(ff, m_chi_mev, sigma_e_cm2, **kw) / np.asarray(ff.e_ev, dtype=np.float64)


def ionization_q(e_ev: np.ndarray, band_gap_ev: float, pair_energy_ev: float) -> np.ndarray:
    """Q = 1 + floor((E - E_gap)/eps) electrons for E >= E_gap, else 0."""
    e = np.asarray(e_ev, dtype=np.float64)
    q = 1 + np.floor((e - band_gap_ev) / pair_energy_ev)
    return np.where(e >= band_gap_ev, q, 0).astype(int)


def rate_per_q(
    ff: FormFactor,
    m_chi_mev: float,
    sigma_e_cm2: float,
    *,
    q_max: int = 10,
    band_gap_ev: float | None = None,
    pair_energy_ev: float | None = None,
    mediator: Mediator = "heavy",
    halo: StandardHalo | None = None,
    eta: EtaFn | None = None,
) -> np.ndarray:
    """Events per kg-year with Q = 1, 2, ..., q_max electrons (array index 0 is Q = 1)."""
    gap = ff.band_gap_ev if band_gap_ev is None else band_gap_ev
    eps = ff.pair_energy_ev if pair_energy_ev is None else pair_energy_ev
    if not (eps > 0 and gap >= 0):
        raise UsageError(f"need pair_energy_ev > 0 and band_gap_ev >= 0, got {eps!r}, {gap!r}")
    e = np.asarray(ff.e_ev, dtype=np.float64)
    de = _uniform_step(e, "E")
    per_bin = dr_dlne(ff, m_chi_mev, sigma_e_cm2, mediator=mediator, halo=halo, eta=eta) * de / e
    qs = ionization_q(e, gap, eps)
    keep = (qs >= 1) & (qs <= q_max)
    return np.bincount(qs[keep] - 1, weights=per_bin[keep], minlength=q_max)[:q_max]


def reach_sigma(
    ff: FormFactor,
    m_chi_mev: float,
    *,
    q_threshold: int = 1,
    events: float = 3.0,
    exposure_kg_year: float = 1.0,
    mediator: Mediator = "heavy",
    halo: StandardHalo | None = None,
    **kw,
) -> float:
    """sigma_e (cm^2) giving ``events`` with Q >= q_threshold in the exposure (inf if none)."""
    ref = 1e-37
    per_q = rate_per_q(ff, m_chi_mev, ref, q_max=200, mediator=mediator, halo=halo, **kw)
    total = float(per_q[q_threshold - 1 :].sum()) * exposure_kg_year
    return events * ref / total if total > 0 else math.inf


def reach_curve(ff: FormFactor, masses_mev: Sequence[float], **kw) -> np.ndarray:
    """:func:`reach_sigma` at each mass."""
    return np.array([reach_sigma(ff, float(m), **kw) for m in masses_mev])
