"""The simulated domains honour the Domain protocol: registration, errors, seeds, pickling, truth."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from dmca_core import plugins
from dmca_core.errors import UsageError
from dmca_core.interfaces import Domain


@pytest.mark.parametrize("name", ["direct_lab", "cosmology", "csv"])
def test_registered_and_protocol(name: str) -> None:
    dom = plugins.get_domain(name)
    assert isinstance(dom, Domain) and dom.name == name


@pytest.mark.parametrize(
    ("name", "hyp"),
    [("direct_lab", "WIMP"), ("direct_lab", "Axion"), ("cosmology", "WIMP"), ("cosmology", "Axion")],
)
def test_load_is_seeded_and_pickles(name: str, hyp: str) -> None:
    dom = plugins.get_domain(name)
    a = dom.load(hyp, 300, 7, {})
    b = pickle.loads(pickle.dumps(dom.load(hyp, 300, 7, {})))
    c = dom.load(hyp, 300, 8, {})
    assert a.table == b.table and a.table != c.table
    assert a.table.names == dom.variables(hyp)
    assert a.true_graph.is_dag and set(a.true_graph.nodes) == set(a.table.names)
    assert np.all(np.isfinite(a.table.values))
    t, y = a.table.names[0], a.table.names[-1]
    assert b.truth(t, y, 0.0, 1.0) == a.truth(t, y, 0.0, 1.0)


def test_errors_name_the_valid_choices() -> None:
    lab = plugins.get_domain("direct_lab")
    with pytest.raises(UsageError, match="valid: WIMP, DarkPhoton, Axion"):
        lab.load("SUSY", 10, 0, {})
    with pytest.raises(UsageError, match="unknown param 'mass'.*valid:.*mass_gev"):
        lab.load("WIMP", 10, 0, {"mass": 3})
    with pytest.raises(UsageError, match="'target' is 'Pb'; valid: Xe, Ar, Ge"):
        lab.load("WIMP", 10, 0, {"target": "Pb"})
    with pytest.raises(UsageError, match="'mass_gev' must be a positive number"):
        lab.load("WIMP", 10, 0, {"mass_gev": -1})
    with pytest.raises(UsageError, match="rows"):
        lab.load("WIMP", 1, 0, {})
    data = lab.load("WIMP", 10, 0, {})
    with pytest.raises(UsageError, match="unknown treatment 'depth'; valid: depth_kmwe"):
        data.truth("depth", "counts", 0, 1)
    with pytest.raises(UsageError, match="valid: scatter"):
        plugins.get_domain("cosmology").load("WIMP", 10, 0, {"feedback": 1})


def test_truth_is_a_do_contrast_not_a_coefficient() -> None:
    # cosmology/WIMP: d log10_rho_inner / d feedback is -0.2 exactly; the exposure effect on counts is
    # exposure-difference times the mean total rate, which the truth recovers by simulation
    data = plugins.get_domain("cosmology").load("WIMP", 10, 0, {})
    tr = data.truth("feedback", "log10_rho_inner", 0.0, 1.0)
    assert tr.effect == pytest.approx(-0.2) and tr.draws >= 10_000
    lab = plugins.get_domain("direct_lab")
    sim = lab.simulator("WIMP", {})
    v = sim.run(sim.noise(np.random.default_rng(0), 200_000), {})
    mean_rate = np.mean(v["signal_rate"] + v["muon_bkg"] + v["gamma_bkg"] + v["dark_bkg"])
    tr = lab.load("WIMP", 10, 0, {}).truth("exposure_kg_day", "counts", 100.0, 200.0)
    assert tr.effect == pytest.approx(100 * mean_rate, abs=5 * tr.mc_se + 0.01 * 100 * mean_rate)
    # a variable with no path to the outcome has no effect
    assert lab.load("WIMP", 10, 0, {}).truth("temperature_k", "muon_bkg", 150, 170).effect == 0.0


def test_poisson_counts_have_poisson_moments() -> None:
    from dmca_core.domains.scm import poisson_from_normal

    z = np.random.default_rng(1).standard_normal(400_000)
    for mu in (0.3, 5.0, 80.0, 1000.0):
        k = poisson_from_normal(z, mu)
        assert k.mean() == pytest.approx(mu, rel=0.01, abs=0.005)
        assert k.var() == pytest.approx(mu, rel=0.02, abs=0.01)
    # coupled: a larger mean never gives fewer counts for the same noise
    assert np.all(poisson_from_normal(z, 12.0) >= poisson_from_normal(z, 10.0))


def test_darkphoton_signal_uses_material_form_factor(monkeypatch) -> None:
    """direct_lab/DarkPhoton sums electron_rates.rate_per_q over Q >= threshold, per kg-day."""
    pytest.importorskip("dmca_core.physics.electron_rates")
    from dmca_core.domains import signals
    from dmca_core.physics import electron_rates
    from dmca_core.physics.halo import StandardHalo
    from dmca_core.types import FormFactor

    q = np.arange(1, 201) * 1e3  # eV
    e = np.arange(1, 301) * 0.1  # eV
    f2 = np.exp(-((q[:, None] - 8e3) ** 2) / 4e7) * np.ones((1, e.size))  # smooth toy form factor
    ff = FormFactor("toy", q, e, f2, cell_mass_gev=52.33, band_gap_ev=1.11, pair_energy_ev=3.6)

    class Toy:
        name, source, priority = "toy", "test", 0

        def form_factor(self) -> FormFactor:
            return ff

    monkeypatch.setattr("dmca_core.plugins.get_material_model", lambda name: Toy())
    sig = signals.DarkPhotonSignal({**signals.DarkPhotonSignal.defaults, "material": "toy"})
    per_q = electron_rates.rate_per_q(ff, 100.0, 1e-37, q_max=200, mediator="light", halo=StandardHalo())
    want = per_q[1:].sum() / 365.25  # threshold 2 electrons: Q >= 2, per day
    assert float(sig.rate(np.array([2.0]))[0]) == pytest.approx(want, rel=1e-12)
    assert want > 0
    assert float(sig.rate(np.array([1.0]))[0]) == pytest.approx(per_q.sum() / 365.25, rel=1e-12)
