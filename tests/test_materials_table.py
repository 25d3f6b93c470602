"""The silicon form factor shipped with the core and the built-in ``table`` material model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dmca_core.default_plugins.tabulated_materials import (
    TabulatedSilicon,
    read_form_factor,
    shipped_path,
    write_form_factor,
)
from dmca_core.errors import DataError
from dmca_core.physics.electron_rates import ALPHA, M_E_MEV
from dmca_core.types import FormFactor

HARTREE_EV = 27.211386245988


@pytest.fixture(scope="module")
def silicon() -> FormFactor:
    return read_form_factor(shipped_path())


def test_builtin_model_serves_the_shipped_table() -> None:
    from dmca_core.plugins import material_models

    model = material_models()["silicon"]
    assert (model.name, model.source, model.priority) == ("silicon", "table", 0)
    ff = model.form_factor()
    assert ff.material == "silicon" and ff.f2.shape == (ff.q_ev.size, ff.e_ev.size)


def test_table_is_small_and_documents_how_it_was_made(silicon: FormFactor) -> None:
    assert shipped_path().stat().st_size < 400_000
    meta = silicon.metadata
    assert meta["generated_by"].startswith("dmca materials silicon")
    for key in ("basis", "xc", "kmesh", "pseudo", "q_max", "dq", "de_ev", "scissor_gap_ev", "code_version"):
        assert key in meta["inputs"], key
    assert meta["scf"]["converged"] is True


def test_form_factor_is_non_negative_and_starts_at_the_gap(silicon: FormFactor) -> None:
    assert np.all(silicon.f2 >= 0)
    below = silicon.e_ev < silicon.band_gap_ev - 0.05  # bins wholly below the (scissored) gap
    assert silicon.f2[:, below].sum() == 0
    assert silicon.f2.sum() > 0


def test_sum_rule_over_q_windows(silicon: FormFactor) -> None:
    """N_eff(q) = ∫dE |f_crys|² / (x³ 27.2 eV) is at most 4 (four valence bands per cell).

    Averaged over the windows of docs/materials.md (0.2-0.6 up to 2-3 alpha*m_e): a single 0.05-wide
    bin of a 3x3x3 mesh can hold more q-vectors than the continuum shell it stands for, so per-bin
    values scatter around the mean.
    The lower bounds are half of QEdark's values (arXiv:1509.01598 form factor): the Gaussian basis
    misses part of the high-energy conduction states.
    """
    x = silicon.q_ev / (ALPHA * M_E_MEV * 1e6)
    de = silicon.e_ev[1] - silicon.e_ev[0]
    neff = silicon.f2.sum(axis=1) * de / (x**3 * HARTREE_EV)
    qedark = json.loads(shipped_path("si_form_factor.reference.json").read_text())["qedark_sum_rule"]
    windows = [tuple(w) for w in qedark["windows_alpha_me"]]
    assert windows[0] == (0.2, 0.6) and len(windows) == 5  # every window docs/materials.md shows
    for (lo, hi), ref in zip(windows, qedark["n_eff"], strict=True):
        window = neff[(x > lo) & (x < hi)].mean()
        assert 0.5 * ref < window <= 4.0, (lo, hi, window)
    assert neff[x > 3.5].mean() < 0.05  # E <= 50 eV leaves little at large q


def test_write_read_roundtrip(tmp_path, silicon: FormFactor) -> None:
    path = tmp_path / "t.npz"
    write_form_factor(silicon, path)
    back = read_form_factor(path)
    assert np.array_equal(back.f2, silicon.f2) and back.metadata == silicon.metadata
    assert TabulatedSilicon(path).form_factor().band_gap_ev == silicon.band_gap_ev


def test_damaged_table_names_the_file(tmp_path) -> None:
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="broken.npz"):
        read_form_factor(bad)
    np.savez(
        tmp_path / "wrong.npz", q_ev=np.ones(3), e_ev=np.ones(2), f2=np.ones((2, 2)), meta=np.array("{}")
    )
    with pytest.raises(DataError, match=r"wrong.npz: f2 has shape"):
        read_form_factor(tmp_path / "wrong.npz")
