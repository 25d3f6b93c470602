"""The Standard Halo Model (SHM): a Maxwellian truncated at the escape speed, seen from Earth.

Units: speeds in km/s, the local density in GeV/cm^3, the mean inverse speed eta in s/km.

The galactic-frame speed distribution is ``f(u) ∝ exp(-u²/v0²) Θ(v_esc - |u|)``; the Earth moves
through it at ``v_earth``. The mean inverse speed of the particles faster than ``v_min`` in the
Earth frame,

    eta(v_min) = ∫_{|v| > v_min} f(v + v_E) / |v| d³v,

has a closed form (Lewin & Smith 1996, Astropart. Phys. 6, 87, appendix; written out by
Savage, Freese & Gondolo 2006, PRD 74, 043531, eq. B3, and McCabe 2010, PRD 82, 023530, eq. B3).
Direct-detection rates need nothing else from the halo.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

#: speed of light in km/s (exact)
C_KM_S = 299_792.458


def _positive(_inst: object, attr: attrs.Attribute, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{attr.name} must be a positive finite number, got {value!r}")


@attrs.frozen
class StandardHalo:
    """The SHM's four constants (defaults: Essig et al. 2016 / QEdark's 0.4 GeV/cm³, 230, 240, 600 km/s;
    Lewin & Smith 1996 used 0.3 GeV/cm³)."""

    rho_gev_cm3: float = attrs.field(default=0.4, validator=_positive)  # local DM density
    v0_km_s: float = attrs.field(default=230.0, validator=_positive)  # most probable speed
    v_earth_km_s: float = attrs.field(default=240.0, validator=_positive)  # Earth's speed in the halo
    v_esc_km_s: float = attrs.field(default=600.0, validator=_positive)  # galactic escape speed

    def __attrs_post_init__(self) -> None:
        if self.v_earth_km_s >= self.v_esc_km_s:
            # the closed form below assumes the Earth is slower than the escape speed
            raise ValueError(
                f"v_earth_km_s ({self.v_earth_km_s}) must be below v_esc_km_s ({self.v_esc_km_s})"
            )

    @property
    def v_max_km_s(self) -> float:
        """The fastest Earth-frame speed in the distribution."""
        return self.v_esc_km_s + self.v_earth_km_s

    @property
    def n_esc(self) -> float:
        """Fraction of the untruncated Maxwellian below v_esc: erf(z) - 2 z exp(-z²)/√π."""
        z = self.v_esc_km_s / self.v0_km_s
        return math.erf(z) - 2.0 * z * math.exp(-z * z) / math.sqrt(math.pi)

    def eta(self, v_min_km_s: float | np.ndarray) -> np.ndarray:
        """Mean inverse speed eta(v_min) in s/km, vectorised over ``v_min_km_s`` (km/s, >= 0)."""
        vmin = np.asarray(v_min_km_s, dtype=np.float64)
        if np.any(vmin < 0):
            raise ValueError("v_min must be >= 0")
        from scipy.special import erf  # numpy has none; imported here, as in domains/scm.py

        v0 = self.v0_km_s
        x = vmin / v0
        y = self.v_earth_km_s / v0
        z = self.v_esc_km_s / v0
        ez2 = math.exp(-z * z)
        pref = 1.0 / (2.0 * self.n_esc * y * v0)
        low = erf(x + y) - erf(x - y) - 4.0 * y * ez2 / math.sqrt(math.pi)
        mid = math.erf(z) - erf(x - y) - 2.0 * (z + y - x) * ez2 / math.sqrt(math.pi)
        out = np.where(x < z - y, low, np.where(x < z + y, mid, 0.0)) * pref
        return np.maximum(out, 0.0)  # rounding just below z + y

    def speed_pdf(self, v_km_s: float | np.ndarray) -> np.ndarray:
        """Earth-frame speed distribution f(v) in s/km (integrates to 1 over v in km/s).

        eta(v_min) = ∫_{v_min} f(v)/v dv, so this is also what a numerical check integrates.
        """
        v = np.asarray(v_km_s, dtype=np.float64)
        v0, ve, vesc = self.v0_km_s, self.v_earth_km_s, self.v_esc_km_s
        norm = self.n_esc * math.pi**1.5 * v0**3
        # angle integral of exp(-|v + v_E|²/v0²) over directions allowed by |v + v_E| < v_esc
        cmax = np.clip((vesc**2 - v**2 - ve**2) / (2.0 * np.maximum(v, 1e-300) * ve), -1.0, 1.0)
        with np.errstate(over="ignore", invalid="ignore"):
            ang = (
                math.pi
                * v0**2
                / (v * ve)
                * (np.exp(-((v - ve) ** 2) / v0**2) - np.exp(-(v**2 + ve**2 + 2 * v * ve * cmax) / v0**2))
            )
        f = np.where((v > 0) & (v < vesc + ve), v**2 * ang / norm, 0.0)
        return np.maximum(f, 0.0)

    def eta_natural(self, v_min_over_c: float | np.ndarray) -> np.ndarray:
        """eta with speeds in units of c: argument v_min/c, result in units of 1/c."""
        return self.eta(np.asarray(v_min_over_c, dtype=np.float64) * C_KM_S) * C_KM_S


def eta_shm(
    v_min_km_s: float | np.ndarray,
    v0_km_s: float = 230.0,
    v_earth_km_s: float = 240.0,
    v_esc_km_s: float = 600.0,
) -> np.ndarray:
    """eta(v_min) in s/km for the SHM with the given speeds (km/s); see :class:`StandardHalo`."""
    return StandardHalo(v0_km_s=v0_km_s, v_earth_km_s=v_earth_km_s, v_esc_km_s=v_esc_km_s).eta(v_min_km_s)
