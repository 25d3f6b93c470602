"""Halo structure: NFW halos, concentration-mass, self-similar scalings, SIDM cores, FDM solitons.

Units: masses in Msun (M200c, 200 × critical density), radii in kpc, densities in Msun/kpc³,
velocities in km/s, temperatures in keV, cross-sections per mass in cm²/g, axion mass as
m22 = m_a / 1e-22 eV. Flat ΛCDM with Ω_m = 0.3, h = 0.7.
"""

from __future__ import annotations

import math

import numpy as np

OMEGA_M = 0.3
H_LITTLE = 0.7
RHO_CRIT0 = 277.536627 * H_LITTLE**2  # Msun/kpc³ (2.775e11 h² Msun/Mpc³)
PROTON_MASS_KEV = 938_272.088
MU_GAS = 0.59  # mean molecular weight of ionised primordial gas
C_KM_S = 299_792.458
MSUN_G = 1.98841e33
KPC_CM = 3.0856776e21
KM_S_GYR_IN_KPC = 1.0227122  # 1 km/s × 1 Gyr in kpc


def e_of_z(z: np.ndarray) -> np.ndarray:
    """H(z)/H0 for flat ΛCDM."""
    z = np.asarray(z, dtype=np.float64)
    return np.sqrt(OMEGA_M * (1 + z) ** 3 + 1 - OMEGA_M)


def r200_kpc(m200: np.ndarray, z: np.ndarray) -> np.ndarray:
    rho_c = RHO_CRIT0 * e_of_z(z) ** 2
    return (3 * np.asarray(m200) / (4 * math.pi * 200 * rho_c)) ** (1 / 3)


def log10_c_duffy08(log10_m200: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Duffy et al. 2008 (MNRAS 390, L64), table 1, full sample, NFW, 200c:
    c200 = 5.71 (M / 2e12 h⁻¹ Msun)^-0.084 (1+z)^-0.47."""
    pivot = math.log10(2e12 / H_LITTLE)
    return math.log10(5.71) - 0.084 * (np.asarray(log10_m200) - pivot) - 0.47 * np.log10(1 + np.asarray(z))


def nfw_params(m200: np.ndarray, c: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rho_s in Msun/kpc³, r_s in kpc) of the NFW profile rho = rho_s / (x (1+x)²), x = r/r_s."""
    rs = r200_kpc(m200, z) / c
    rho_c = RHO_CRIT0 * e_of_z(z) ** 2
    rho_s = 200 / 3 * rho_c * c**3 / (np.log1p(c) - c / (1 + c))
    return rho_s, rs


def nfw_density(r: np.ndarray | float, rho_s: np.ndarray, rs: np.ndarray) -> np.ndarray:
    x = np.asarray(r) / rs
    return rho_s / (x * (1 + x) ** 2)


def sigma_v_km_s(m200: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Self-similar dark-matter velocity dispersion: σ = 1082.9 km/s (h E(z) M / 1e15 Msun)^{1/3}
    (normalisation from Evrard et al. 2008, ApJ 672, 122; exponent fixed at the self-similar 1/3)."""
    return 1082.9 * (H_LITTLE * e_of_z(z) * np.asarray(m200) / 1e15) ** (1 / 3)


def t_virial_kev(sigma_v: np.ndarray) -> np.ndarray:
    """k T = μ m_p σ² (so T ∝ (E(z) M)^{2/3})."""
    return MU_GAS * PROTON_MASS_KEV * (np.asarray(sigma_v) / C_KM_S) ** 2


def sidm_sigma_m(sigma0_cm2_g: np.ndarray, v_km_s: np.ndarray, w_km_s: float) -> np.ndarray:
    """Velocity-dependent cross-section per mass σ(v)/m = σ0/m / (1 + v²/w²)² (a light mediator's
    Rutherford-like fall-off; the form used by e.g. Yang & Yu 2022, JCAP 09, 077)."""
    return np.asarray(sigma0_cm2_g) / (1 + (np.asarray(v_km_s) / w_km_s) ** 2) ** 2


def sidm_core_kpc(
    rho_s: np.ndarray, rs: np.ndarray, sigma_m: np.ndarray, v_rel_km_s: np.ndarray, t_gyr: np.ndarray
) -> np.ndarray:
    """r1, where each particle has scattered once in t (Kaplinghat, Tulin & Yu 2016, PRL 116, 041302):
    rho(r1) σ/m v t = 1, with rho taken as the NFW inner asymptote rho_s r_s / r, so
    r1 = rho_s r_s σ/m v t (exact power law in σ/m; valid while r1 < r_s)."""
    surface_g_cm2 = np.asarray(rho_s) * rs * MSUN_G / KPC_CM**2
    return surface_g_cm2 * sigma_m * v_rel_km_s * t_gyr * KM_S_GYR_IN_KPC


def zeta(z: np.ndarray) -> np.ndarray:
    """Bryan & Norman 1998 overdensity ζ(z) = (18π² + 82x - 39x²)/Ω_m(z), x = Ω_m(z) - 1."""
    z = np.asarray(z, dtype=np.float64)
    om = OMEGA_M * (1 + z) ** 3 / e_of_z(z) ** 2
    x = om - 1
    return (18 * math.pi**2 + 82 * x - 39 * x * x) / om


def soliton_core_kpc(m22: np.ndarray, m_halo: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Schive et al. 2014 (PRL 113, 261302, eq. 7): r_c = 1.6 kpc m22⁻¹ a^{1/2} (ζ(z)/ζ(0))^{-1/6}
    (M_h / 1e9 Msun)^{-1/3}."""
    z = np.asarray(z, dtype=np.float64)
    a = 1 / (1 + z)
    return (
        1.6
        / np.asarray(m22)
        * np.sqrt(a)
        * (zeta(z) / zeta(0.0)) ** (-1 / 6)
        * (np.asarray(m_halo) / 1e9) ** (-1 / 3)
    )


def soliton_density(r: np.ndarray | float, m22: np.ndarray, rc: np.ndarray) -> np.ndarray:
    """Physical density (Msun/kpc³) at physical radius r (kpc) of a soliton with physical core radius
    rc (kpc): rho = 1.9e7 m22⁻² (r_c/kpc)⁻⁴ / (1 + 0.091 (r/r_c)²)⁸.

    Schive et al. 2014 (Nature Phys. 10, 496, eq. 3) write it in comoving units, 1.9 a⁻¹ m_23⁻²
    (x_c/kpc)⁻⁴ 1e9 Msun/kpc³ with m_23 = m/1e-23 eV = 10 m22; converting the comoving density
    (a³ rho) and radius (x_c = r_c/a) to physical ones cancels every power of a. A soliton is a
    Schrödinger-Poisson ground state, so its M r is fixed by m alone, at any redshift.
    """
    rc = np.asarray(rc, dtype=np.float64)
    rho_c = 1.9e9 * (10 * np.asarray(m22)) ** -2 * rc**-4  # 1.9e9 Msun/kpc³ at m_23 = 1, r_c = 1 kpc
    return rho_c / (1 + 0.091 * (np.asarray(r) / rc) ** 2) ** 8
