"""direct_lab's DarkPhoton signal counts every event with Q >= k, however many electrons it makes.

The reference is dR/dE summed over the recoil energies that make at least k electrons,
E >= E_gap + (k - 1) eps, without going through Q bins or the signal's code. It uses the same
energy bins and dR/dE as the signal, so it is a check of the signal's Q bookkeeping (a regression
test), not of the rate: a Q sum stopped at a fixed q_max (the old 6) lost the tail, 2.6-3.0 % at
k = 4 for a heavy mediator at 100 MeV-1 GeV. The rate itself is checked in test_electron_rates.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from dmca_core.default_plugins.tabulated_materials import read_form_factor, shipped_path
from dmca_core.domains.signals import YEAR_DAYS, DarkPhotonSignal
from dmca_core.physics import electron_rates as er
from dmca_core.physics.halo import StandardHalo


@pytest.fixture(scope="module")
def silicon():
    return read_form_factor(shipped_path())


def _energy_integral_above(ff, k: int, mass: float, sigma: float, mediator: str) -> float:
    """Events / kg / day with E >= E_gap + (k-1) eps: dR/dE summed over the table's energy bins."""
    e = ff.e_ev
    de = e[1] - e[0]
    dr_de = er.dr_de(ff, mass, sigma, mediator=mediator, halo=StandardHalo())
    seen = e >= ff.band_gap_ev + (k - 1) * ff.pair_energy_ev
    return float(dr_de[seen].sum() * de) / YEAR_DAYS


@pytest.mark.parametrize(
    ("mass", "mediator"), [(100.0, "heavy"), (1000.0, "heavy"), (100.0, "light"), (1000.0, "light")]
)
def test_q_at_least_k_is_the_whole_energy_tail(silicon, mass: float, mediator: str) -> None:
    sig = DarkPhotonSignal({**DarkPhotonSignal.defaults, "mass_mev": mass, "mediator": mediator})
    for k in (1, 2, 3, 4, 6, 8):
        want = _energy_integral_above(silicon, k, mass, 1e-37, mediator)
        assert want > 0
        got = float(sig.rate(np.array([float(k)]))[0])
        assert got == pytest.approx(want, rel=1e-3), (mass, mediator, k)


def test_above_the_highest_q_nothing_is_seen(silicon) -> None:
    sig = DarkPhotonSignal({**DarkPhotonSignal.defaults, "mediator": "heavy"})
    top = int(er.ionization_q(silicon.e_ev.max(), silicon.band_gap_ev, silicon.pair_energy_ev))
    assert len(sig.describe()["rate_per_q"]) == top
    assert float(sig.rate(np.array([float(top)]))[0]) > 0
    assert float(sig.rate(np.array([top + 1.0, 100.0])).max()) == 0.0
