"""The dark-matter signal of one direct_lab run, hypothesis by hypothesis.

Each signal maps a run's threshold to an expected signal rate (events / kg / day). The physics is
evaluated once on a grid of thresholds at construction; runs interpolate (the objects pickle as
plain arrays).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import UsageError
from ..physics import axion, wimp
from ..physics.halo import StandardHalo
from . import scm

YEAR_DAYS = 365.25  # electron_rates' year
HALO_DEFAULTS: dict[str, Any] = {
    "rho_gev_cm3": 0.4,
    "v0_km_s": 230.0,
    "v_earth_km_s": 240.0,
    "v_esc_km_s": 600.0,
}

# nuclear-recoil threshold ranges (keV) per target: liquid argon needs a higher one (pulse shape)
WIMP_THRESHOLDS_KEV = {"Xe": (2.0, 10.0), "Ar": (10.0, 40.0), "Ge": (1.0, 10.0)}


def _halo(domain_params: Mapping[str, Any]) -> StandardHalo:
    vals = {k: scm.number_param("direct_lab", domain_params, k) for k in HALO_DEFAULTS}
    try:
        return StandardHalo(**vals)
    except ValueError as exc:
        raise UsageError(f"domain 'direct_lab': {exc}") from None


class Signal:
    threshold_unit = "keV"
    lo: float
    hi: float
    grid: np.ndarray
    rates: np.ndarray
    summary: dict[str, Any]

    def threshold_from_uniform(self, u: np.ndarray) -> np.ndarray:
        return self.lo + (self.hi - self.lo) * u

    def rate(self, threshold: np.ndarray) -> np.ndarray:
        return np.interp(threshold, self.grid, self.rates)

    def describe(self) -> dict[str, Any]:
        return dict(self.summary)


class WimpSignal(Signal):
    """Spin-independent nuclear recoils above a threshold (Lewin & Smith 1996, Helm form factor)."""

    defaults: dict[str, Any] = {"target": "Xe", "mass_gev": 50.0, "sigma_cm2": 1e-42, **HALO_DEFAULTS}

    def __init__(self, p: Mapping[str, Any]) -> None:
        target = scm.choice_param("direct_lab", p, "target", tuple(WIMP_THRESHOLDS_KEV))
        mass = scm.number_param("direct_lab", p, "mass_gev")
        sigma = scm.number_param("direct_lab", p, "sigma_cm2")
        halo = _halo(p)
        self.lo, self.hi = WIMP_THRESHOLDS_KEV[target]
        # the grid reaches past the sampled range so that do(threshold = t) a little outside still works
        self.grid = np.linspace(0.0, 2 * self.hi, 401)
        self.rates = wimp.rate_above(self.grid, mass, sigma, target, halo)
        self.summary = {"target": target, "mass_gev": mass, "sigma_cm2": sigma, "halo": halo_dict(halo)}


class AxionSignal(Signal):
    """Axio-electric absorption: a line at E = m_a, smeared by the energy resolution."""

    defaults: dict[str, Any] = {
        "target": "Xe",
        "mass_kev": 2.5,
        "g_ae": 2e-12,
        "resolution": 0.3,  # σ_E = resolution × sqrt(E / keV) keV
        "rho_gev_cm3": 0.4,
    }

    def __init__(self, p: Mapping[str, Any]) -> None:
        target = scm.choice_param("direct_lab", p, "target", ("Xe", "Ar", "Ge", "Si"))
        mass = scm.number_param("direct_lab", p, "mass_kev")
        g = scm.number_param("direct_lab", p, "g_ae")
        res = scm.number_param("direct_lab", p, "resolution")
        rho = scm.number_param("direct_lab", p, "rho_gev_cm3")
        try:
            total = float(axion.absorption_rate(mass, g, target, rho))
        except ValueError as exc:
            raise UsageError(f"domain 'direct_lab': param 'mass_kev': {exc}") from None
        self.lo, self.hi = 0.5, 4.0
        self.grid = np.linspace(0.0, 2 * max(self.hi, mass), 801)
        sigma_e = res * math.sqrt(mass)
        self.rates = total * scm.normal_cdf((mass - self.grid) / sigma_e)
        self.summary = {
            "target": target,
            "mass_kev": mass,
            "g_ae": g,
            "rho_gev_cm3": rho,
            "total_rate": total,
            "resolution_kev": sigma_e,
        }


class DarkPhotonSignal(Signal):
    """Dark matter scattering on silicon's electrons through a dark photon (Essig et al. 2016).

    The threshold counts ionisation electrons: the run sees every event with Q >= threshold.
    """

    threshold_unit = "electrons"
    defaults: dict[str, Any] = {
        "mass_mev": 100.0,
        "sigma_e_cm2": 1e-37,
        "mediator": "light",
        "material": "silicon",
        **HALO_DEFAULTS,
    }

    def __init__(self, p: Mapping[str, Any]) -> None:
        mass = scm.number_param("direct_lab", p, "mass_mev")
        sigma = scm.number_param("direct_lab", p, "sigma_e_cm2")
        mediator = scm.choice_param("direct_lab", p, "mediator", ("light", "heavy"))
        material = str(p["material"])
        halo = _halo(p)
        per_q = electron_rate_per_q(material, mass, sigma, mediator, halo)
        self.lo, self.hi = 1.0, 5.0
        # rate with Q >= k for integer k, held constant between integers (threshold is a count);
        # per_q runs to the form factor's highest Q, so Q >= k is the whole tail, and past it is 0
        above = np.cumsum(per_q[::-1])[::-1]  # above[k-1] = sum_{Q>=k}
        self.rates = np.array([above[0], *above, 0.0])
        self.grid = np.arange(self.rates.size, dtype=np.float64)
        self.summary = {
            "material": material,
            "mass_mev": mass,
            "sigma_e_cm2": sigma,
            "mediator": mediator,
            "halo": halo_dict(halo),
            "rate_per_q": per_q.tolist(),
        }

    def threshold_from_uniform(self, u: np.ndarray) -> np.ndarray:
        return np.floor(self.lo + (self.hi - self.lo) * u)  # 1, 2, 3 or 4 electrons

    def rate(self, threshold: np.ndarray) -> np.ndarray:
        k = np.clip(np.ceil(np.asarray(threshold, dtype=np.float64)), 0, self.grid[-1]).astype(int)
        return self.rates[k]


def electron_rate_per_q(
    material: str,
    mass_mev: float,
    sigma_e_cm2: float,
    mediator: str,
    halo: StandardHalo,
    q_max: int | None = None,
) -> np.ndarray:
    """Events / kg / day in each ionisation bin Q = 1..q_max, from the material model's crystal form
    factor and :mod:`dmca_core.physics.electron_rates` (which counts per kg-year).

    ``q_max=None`` runs to the Q of the form factor's highest energy bin, so the bins hold every
    event the table can produce (nothing is cut off above q_max).
    """
    from .. import plugins
    from ..physics import electron_rates

    ff = plugins.get_material_model(material).form_factor()
    if q_max is None:
        top = electron_rates.ionization_q(np.max(ff.e_ev), ff.band_gap_ev, ff.pair_energy_ev)
        q_max = max(int(top), 1)
    rates = electron_rates.rate_per_q(
        ff, m_chi_mev=mass_mev, sigma_e_cm2=sigma_e_cm2, mediator=mediator, halo=halo, q_max=q_max
    )
    return np.asarray(rates, dtype=np.float64)[:q_max] / YEAR_DAYS  # per kg-year -> per kg-day


def halo_dict(h: StandardHalo) -> dict[str, float]:
    return {
        "rho_gev_cm3": h.rho_gev_cm3,
        "v0_km_s": h.v0_km_s,
        "v_earth_km_s": h.v_earth_km_s,
        "v_esc_km_s": h.v_esc_km_s,
    }


SIGNALS: dict[str, type[Signal]] = {"WIMP": WimpSignal, "DarkPhoton": DarkPhotonSignal, "Axion": AxionSignal}


def make_signal(hypothesis: str, params: Mapping[str, Any]) -> Signal:
    return SIGNALS[hypothesis](params)
