"""``direct_lab``: a direct-detection campaign, one row per detector run (docs/domains.md).

Structural equations (u_* are independent exogenous noise terms; bounded
uniform noise keeps shields and exposures positive):

    depth_kmwe      = U(1, 6)                                     site depth, km water-equivalent
    shield_cm       = 28 - 2.5 depth + U(-3, 3)                  deeper sites run thinner shields
    temperature_k   = U(150, 170)
    exposure_kg_day = 60 + 20 depth + U(-35, 35)                 ... and longer exposures
    threshold       = hypothesis-specific range (keV, or electrons for DarkPhoton)
    muon_bkg        = B_mu I_mu(depth)/I_mu(1 km w.e.) e^{0.1 u_m}      Mei & Hime 2006 depth-intensity
    gamma_bkg       = B_g exp(-shield/lambda) e^{0.1 u_g}               lead, lambda = 2.0 cm
    dark_bkg        = B_d exp(-(E_a/k)(1/T - 1/160 K)) e^{0.1 u_d}      thermally activated
    signal_rate     = R_DM(threshold)                                   hypothesis physics
    counts          = Poisson(exposure (signal + muon + gamma + dark))
    log_rate        = ln((counts + 0.5) / exposure)

Rates are events per kg per day. ``counts`` is linear in ``exposure_kg_day`` given everything else,
so the linear backdoor estimate of exposure -> counts is exact (see docs/domains.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..types import DomainData, Graph, Table
from . import scm
from .signals import SIGNALS, Signal, make_signal

NAME = "direct_lab"
HYPOTHESES = ("WIMP", "DarkPhoton", "Axion")
VARIABLES = (
    "depth_kmwe",
    "shield_cm",
    "temperature_k",
    "exposure_kg_day",
    "threshold",
    "muon_bkg",
    "gamma_bkg",
    "dark_bkg",
    "signal_rate",
    "counts",
    "log_rate",
)
EDGES = (
    "depth_kmwe->shield_cm,depth_kmwe->exposure_kg_day,depth_kmwe->muon_bkg,"
    "shield_cm->gamma_bkg,temperature_k->dark_bkg,threshold->signal_rate,"
    "signal_rate->counts,muon_bkg->counts,gamma_bkg->counts,dark_bkg->counts,exposure_kg_day->counts,"
    "counts->log_rate,exposure_kg_day->log_rate"
)

# Background constants (events / kg / day) and laws; docs/domains.md gives their sources.
LAB_DEFAULTS: dict[str, Any] = {
    "muon_bkg_1kmwe": 3.0,  # B_mu at 1 km w.e.
    "gamma_bkg_noshield": 20.0,  # B_g with no shield
    "attenuation_cm": 2.0,  # lead, 2.6 MeV 208Tl line: 1/(0.044 cm²/g × 11.35 g/cm³)
    "dark_bkg_160k": 0.1,  # B_d at 160 K
    "activation_ev": 0.3,  # E_a
}
BOLTZMANN_EV_K = 8.617333262e-5


def muon_intensity(depth_kmwe: np.ndarray) -> np.ndarray:
    """Total muon intensity (cm⁻² s⁻¹) at depth h (km w.e., flat overburden), Mei & Hime 2006 eq. 4."""
    h = np.asarray(depth_kmwe, dtype=np.float64)
    return 67.97e-6 * np.exp(-h / 0.285) + 2.071e-6 * np.exp(-h / 0.698)


class DirectLabSimulator:
    """The direct_lab SCM for one hypothesis and signal."""

    variables = VARIABLES

    def __init__(self, signal: Signal, lab: Mapping[str, float]) -> None:
        self.signal = signal
        self.lab = dict(lab)

    def graph(self) -> Graph:
        return Graph.parse(EDGES, nodes=VARIABLES)

    def noise(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        return {
            "depth": rng.uniform(1.0, 6.0, n),
            "shield": rng.uniform(-3.0, 3.0, n),
            "temperature": rng.uniform(150.0, 170.0, n),
            "exposure": rng.uniform(-35.0, 35.0, n),
            "threshold": rng.uniform(0.0, 1.0, n),
            "muon": rng.standard_normal(n),
            "gamma": rng.standard_normal(n),
            "dark": rng.standard_normal(n),
            "counts": rng.standard_normal(n),
        }

    def run(self, u: Mapping[str, np.ndarray], do: Mapping[str, float]) -> dict[str, np.ndarray]:
        n = u["depth"].size
        lab = self.lab
        v: dict[str, np.ndarray] = {}
        v["depth_kmwe"] = scm.forced(do, "depth_kmwe", u["depth"], n)
        v["shield_cm"] = scm.forced(do, "shield_cm", 28.0 - 2.5 * v["depth_kmwe"] + u["shield"], n)
        v["temperature_k"] = scm.forced(do, "temperature_k", u["temperature"], n)
        v["exposure_kg_day"] = scm.forced(
            do, "exposure_kg_day", 60.0 + 20.0 * v["depth_kmwe"] + u["exposure"], n
        )
        v["threshold"] = scm.forced(do, "threshold", self.signal.threshold_from_uniform(u["threshold"]), n)
        v["muon_bkg"] = scm.forced(
            do,
            "muon_bkg",
            lab["muon_bkg_1kmwe"]
            * muon_intensity(v["depth_kmwe"])
            / muon_intensity(1.0)
            * np.exp(0.1 * u["muon"]),
            n,
        )
        v["gamma_bkg"] = scm.forced(
            do,
            "gamma_bkg",
            lab["gamma_bkg_noshield"]
            * np.exp(-v["shield_cm"] / lab["attenuation_cm"])
            * np.exp(0.1 * u["gamma"]),
            n,
        )
        ea_over_k = lab["activation_ev"] / BOLTZMANN_EV_K
        with np.errstate(divide="ignore", over="ignore"):
            arrhenius = np.exp(-ea_over_k * (1.0 / v["temperature_k"] - 1.0 / 160.0))
        v["dark_bkg"] = scm.forced(
            do, "dark_bkg", lab["dark_bkg_160k"] * arrhenius * np.exp(0.1 * u["dark"]), n
        )
        v["signal_rate"] = scm.forced(do, "signal_rate", self.signal.rate(v["threshold"]), n)
        total = v["signal_rate"] + v["muon_bkg"] + v["gamma_bkg"] + v["dark_bkg"]
        mean = np.maximum(v["exposure_kg_day"] * total, 0.0)
        v["counts"] = scm.forced(do, "counts", scm.poisson_from_normal(u["counts"], mean), n)
        with np.errstate(divide="ignore", invalid="ignore"):
            v["log_rate"] = scm.forced(do, "log_rate", np.log((v["counts"] + 0.5) / v["exposure_kg_day"]), n)
        return v


class DirectLab:
    """The ``direct_lab`` domain plugin."""

    name = NAME

    def hypotheses(self) -> tuple[str, ...]:
        return HYPOTHESES

    def variables(self, hypothesis: str) -> tuple[str, ...]:
        scm.check_hypothesis(NAME, hypothesis, HYPOTHESES)
        return VARIABLES

    def simulator(self, hypothesis: str, params: Mapping[str, Any]) -> DirectLabSimulator:
        scm.check_hypothesis(NAME, hypothesis, HYPOTHESES)
        valid = {**SIGNALS[hypothesis].defaults, **LAB_DEFAULTS}
        p = scm.check_params(NAME, hypothesis, params, valid)
        lab = {k: scm.number_param(NAME, p, k) for k in LAB_DEFAULTS}
        return DirectLabSimulator(make_signal(hypothesis, p), lab)

    def check(self, hypothesis: str, params: Mapping[str, Any]) -> None:
        """Refuse bad ``params`` before a run starts (building the simulator checks them all)."""
        self.simulator(hypothesis, params)

    def materials(self, hypothesis: str, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The target materials whose form factor a study of ``hypothesis`` reads (DarkPhoton's
        electron scattering): the run has them ready before its steps, through its executor."""
        if hypothesis != "DarkPhoton":
            return ()
        return (str({**SIGNALS[hypothesis].defaults, **params}["material"]),)

    def load(self, hypothesis: str, rows: int, seed: int, params: Mapping[str, Any]) -> DomainData:
        rows = scm.check_rows(NAME, rows)
        sim = self.simulator(hypothesis, params)
        rng = np.random.default_rng(int(seed))
        values = sim.run(sim.noise(rng, rows), {})
        table = Table(VARIABLES, np.column_stack([values[k] for k in VARIABLES]))
        return DomainData(
            table=table,
            true_graph=sim.graph(),
            truth_fn=scm.TruthFn(sim, seed),
            metadata={
                "domain": NAME,
                "hypothesis": hypothesis,
                "signal": sim.signal.describe(),
                "threshold_unit": sim.signal.threshold_unit,
                "rate_unit": "events / (kg day)",
                "default_study": DEFAULT_STUDY,
            },
        )


#: the study recommended for every hypothesis: consistent for the linear backdoor estimator
DEFAULT_STUDY = {"treatment": "exposure_kg_day", "outcome": "counts", "t0": 100.0, "t1": 200.0}
