"""``cosmology``: an emulated simulation suite, one row per halo (docs/domains.md).

Structural equations (n_* standard normal, scaled by the ``scatter`` param; logs are base 10):

    log10_mass      = U(10, 15)                                     M200c in Msun
    redshift        = U(0, 1)
    log10_conc      = Duffy+08(log10_mass, redshift) + 0.1 n_c
    feedback        = 0.3 (log10_mass - 12.5) + 0.3 n_f             stronger feedback in massive halos
    log10_sigma_v   = log10[1082.9 km/s (h E(z) M/1e15)^{1/3}] + 0.02 n_v
    log10_tx_kev    = log10(mu m_p / c²) + 2 log10_sigma_v + 0.1 feedback + 0.03 n_t
    log10_mwl       = log10_mass + 0.1 n_w                          weak-lensing mass
    DarkPhoton (SIDM):  log10_sigma_m = U(-2, 0);  log10_r_core = log10 r1(σ(v)/m, v = 4 σ_v/√π) + 0.05 n_r
    Axion (FDM):        log10_m22 = U(-0.5, 1);     log10_r_core = log10 r_c,Schive(m22, M, z) + 0.05 n_r
    log10_rho_inner = log10 rho_DM(1 kpc) - 0.2 feedback + 0.05 n_i   (NFW / cored NFW / soliton)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import UsageError
from ..physics import cosmo
from ..types import DomainData, Graph, Table
from . import scm

NAME = "cosmology"
HYPOTHESES = ("WIMP", "DarkPhoton", "Axion")
R_INNER_KPC = 1.0
FEEDBACK_RHO_DEX = -0.2  # dex of inner density per unit feedback (feedback-driven cores)
FEEDBACK_TX_DEX = 0.1  # dex of temperature per unit feedback (non-gravitational heating)
SIDM_W_KM_S = 300.0
DM_PARAM = {"DarkPhoton": "log10_sigma_m", "Axion": "log10_m22"}

_BASE = ("log10_mass", "redshift", "log10_conc", "feedback")
_OBS = ("log10_sigma_v", "log10_tx_kev", "log10_mwl")
_COMMON_EDGES = (
    "log10_mass->log10_conc,redshift->log10_conc,log10_mass->feedback,"
    "log10_mass->log10_sigma_v,redshift->log10_sigma_v,log10_sigma_v->log10_tx_kev,feedback->log10_tx_kev,"
    "log10_mass->log10_mwl,"
    "log10_mass->log10_rho_inner,redshift->log10_rho_inner,log10_conc->log10_rho_inner,"
    "feedback->log10_rho_inner"
)
_EXTRA_EDGES = {
    "WIMP": "",
    "DarkPhoton": ",log10_sigma_m->log10_r_core,log10_mass->log10_r_core,redshift->log10_r_core,"
    "log10_conc->log10_r_core,log10_sigma_v->log10_r_core,log10_r_core->log10_rho_inner",
    "Axion": ",log10_m22->log10_r_core,log10_mass->log10_r_core,redshift->log10_r_core,"
    "log10_r_core->log10_rho_inner,log10_m22->log10_rho_inner",
}
DEFAULTS: dict[str, Any] = {"scatter": 1.0}

#: recommended study per hypothesis: each is exact for the linear backdoor estimator
DEFAULT_STUDIES = {
    "WIMP": {"treatment": "feedback", "outcome": "log10_rho_inner", "t0": 0.0, "t1": 1.0},
    "DarkPhoton": {"treatment": "log10_sigma_m", "outcome": "log10_r_core", "t0": -1.5, "t1": -0.5},
    "Axion": {"treatment": "log10_m22", "outcome": "log10_r_core", "t0": 0.0, "t1": 0.5},
}


def variables_for(hypothesis: str) -> tuple[str, ...]:
    if hypothesis == "WIMP":
        return (*_BASE, *_OBS, "log10_rho_inner")
    return (*_BASE, DM_PARAM[hypothesis], *_OBS, "log10_r_core", "log10_rho_inner")


class CosmologySimulator:
    def __init__(self, hypothesis: str, scatter: float) -> None:
        self.hypothesis = hypothesis
        self.scatter = scatter
        self.variables = variables_for(hypothesis)

    def graph(self) -> Graph:
        return Graph.parse(_COMMON_EDGES + _EXTRA_EDGES[self.hypothesis], nodes=self.variables)

    def noise(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        u = {
            "mass": rng.uniform(10.0, 15.0, n),
            "z": rng.uniform(0.0, 1.0, n),
            "dm": rng.uniform(0.0, 1.0, n),
        }
        for k in ("c", "f", "v", "t", "w", "r", "i"):
            u[k] = rng.standard_normal(n) * self.scatter
        return u

    def run(self, u: Mapping[str, np.ndarray], do: Mapping[str, float]) -> dict[str, np.ndarray]:
        n = u["mass"].size
        f = scm.forced
        v: dict[str, np.ndarray] = {}
        v["log10_mass"] = f(do, "log10_mass", u["mass"], n)
        v["redshift"] = f(do, "redshift", u["z"], n)
        lm, z = v["log10_mass"], v["redshift"]
        m = 10.0**lm
        v["log10_conc"] = f(do, "log10_conc", cosmo.log10_c_duffy08(lm, z) + 0.1 * u["c"], n)
        v["feedback"] = f(do, "feedback", 0.3 * (lm - 12.5) + 0.3 * u["f"], n)
        v["log10_sigma_v"] = f(do, "log10_sigma_v", np.log10(cosmo.sigma_v_km_s(m, z)) + 0.02 * u["v"], n)
        tx0 = math.log10(cosmo.MU_GAS * cosmo.PROTON_MASS_KEV / cosmo.C_KM_S**2)
        v["log10_tx_kev"] = f(
            do,
            "log10_tx_kev",
            tx0 + 2 * v["log10_sigma_v"] + FEEDBACK_TX_DEX * v["feedback"] + 0.03 * u["t"],
            n,
        )
        v["log10_mwl"] = f(do, "log10_mwl", lm + 0.1 * u["w"], n)
        rho_s, rs = cosmo.nfw_params(m, 10.0 ** v["log10_conc"], z)
        rho_dm = cosmo.nfw_density(R_INNER_KPC, rho_s, rs)
        if self.hypothesis == "DarkPhoton":
            v["log10_sigma_m"] = f(do, "log10_sigma_m", -2.0 + 2.0 * u["dm"], n)
            v_rel = 4 / math.sqrt(math.pi) * 10.0 ** v["log10_sigma_v"]
            sig = cosmo.sidm_sigma_m(10.0 ** v["log10_sigma_m"], v_rel, SIDM_W_KM_S)
            t_gyr = 10.0 * (1 + z) ** -1.5  # time the halo has had to thermalise (matter-era scaling)
            r1 = cosmo.sidm_core_kpc(rho_s, rs, sig, v_rel, t_gyr)
            v["log10_r_core"] = f(do, "log10_r_core", np.log10(r1) + 0.05 * u["r"], n)
            rc = 10.0 ** v["log10_r_core"]
            rho_dm = rho_s * rs**3 / ((R_INNER_KPC + rc) * (R_INNER_KPC + rs) ** 2)  # cored NFW
        elif self.hypothesis == "Axion":
            v["log10_m22"] = f(do, "log10_m22", -0.5 + 1.5 * u["dm"], n)
            m22 = 10.0 ** v["log10_m22"]
            rc0 = cosmo.soliton_core_kpc(m22, m, z)
            v["log10_r_core"] = f(do, "log10_r_core", np.log10(rc0) + 0.05 * u["r"], n)
            rc = 10.0 ** v["log10_r_core"]
            rho_dm = np.maximum(cosmo.soliton_density(R_INNER_KPC, m22, rc), rho_dm)
        v["log10_rho_inner"] = f(
            do, "log10_rho_inner", np.log10(rho_dm) + FEEDBACK_RHO_DEX * v["feedback"] + 0.05 * u["i"], n
        )
        return v


class Cosmology:
    """The ``cosmology`` domain plugin."""

    name = NAME

    def hypotheses(self) -> tuple[str, ...]:
        return HYPOTHESES

    def variables(self, hypothesis: str) -> tuple[str, ...]:
        scm.check_hypothesis(NAME, hypothesis, HYPOTHESES)
        return variables_for(hypothesis)

    def simulator(self, hypothesis: str, params: Mapping[str, Any]) -> CosmologySimulator:
        scm.check_hypothesis(NAME, hypothesis, HYPOTHESES)
        p = scm.check_params(NAME, hypothesis, params, DEFAULTS)
        scatter = scm.number_param(NAME, p, "scatter", positive=False)
        if scatter < 0:
            raise UsageError(f"domain {NAME!r}: param 'scatter' must be >= 0, got {scatter!r}")
        return CosmologySimulator(hypothesis, scatter)

    def check(self, hypothesis: str, params: Mapping[str, Any]) -> None:
        """Refuse bad ``params`` before a run starts (building the simulator checks them all)."""
        self.simulator(hypothesis, params)

    def load(self, hypothesis: str, rows: int, seed: int, params: Mapping[str, Any]) -> DomainData:
        rows = scm.check_rows(NAME, rows)
        sim = self.simulator(hypothesis, params)
        values = sim.run(sim.noise(np.random.default_rng(int(seed)), rows), {})
        table = Table(sim.variables, np.column_stack([values[k] for k in sim.variables]))
        return DomainData(
            table=table,
            true_graph=sim.graph(),
            truth_fn=scm.TruthFn(sim, seed),
            metadata={"domain": NAME, "hypothesis": hypothesis, "default_study": DEFAULT_STUDIES[hypothesis]},
        )
