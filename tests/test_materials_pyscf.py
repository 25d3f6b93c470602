"""The PySCF materials plugin: one minimal silicon SCF per session (about 1.5 min on 2 cores),
checked against real-space integration, the dipole limit, the sum rule and published rates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.pyscf

HARTREE_EV = 27.211386245988


@pytest.fixture(scope="session")
def minimal(tmp_path_factory):
    from dmca_pyscf_materials.model import compute
    from dmca_pyscf_materials.presets import get_preset
    from dmca_pyscf_materials.scf import run_scf

    preset = get_preset("minimal")
    scf = run_scf(preset)
    ff = compute(preset, scf=scf)
    return {"preset": preset, "scf": scf, "ff": ff, "cache": tmp_path_factory.mktemp("dmca-cache")}


@pytest.fixture
def cached(minimal, monkeypatch):
    """The minimal form factor in a fresh cache dir; any new SCF would fail the test."""
    from dmca_pyscf_materials import model, scf

    monkeypatch.setenv("DMCA_CACHE_DIR", str(minimal["cache"]))
    model.store(minimal["ff"], minimal["preset"])

    def no_scf(*_a, **_k):
        raise AssertionError("an SCF ran although the answer was cached")

    monkeypatch.setattr(scf, "run_scf", no_scf)
    return minimal


def test_scf_band_gap_and_energy(minimal) -> None:
    scf = minimal["scf"]
    assert scf.converged
    assert len(scf.kpts) == 8
    # LDA underestimates silicon's 1.12 eV gap by about half; on a 2x2x2 mesh ~0.5 eV
    assert 0.3 < scf.band_gap_ev < 0.8
    assert -8.0 < scf.e_tot < -7.7  # Hartree per cell, GTH valence-only


def test_matrix_elements_match_real_space_integration(minimal) -> None:
    """The ft_aopair_kpts sign convention, checked against a direct sum over a real-space grid."""
    from dmca_pyscf_materials.crystal_ff import _gvectors, _mesh_index, group_matrix_elements

    scf = minimal["scf"]
    cell, kpts, kmesh = scf.cell, scf.kpts, minimal["preset"].kmesh
    ints = _mesh_index(cell, kpts, kmesh)
    lookup = {tuple(v): i for i, v in enumerate(ints)}
    dm = ints[3]
    dk = (dm / np.asarray(kmesh)) @ cell.reciprocal_vectors()
    targets = [lookup[tuple((v + dm) % np.asarray(kmesh))] for v in ints]
    g = _gvectors(cell, dk, 2.5, half_space=False)[:6]
    i = 5
    j = targets[i]
    m_ft = group_matrix_elements(scf, dk, g, targets)[i]

    coords = cell.get_uniform_grids([40, 40, 40])
    ao_i, ao_j = cell.pbc_eval_gto("GTOval", coords, kpts=kpts[[i, j]])
    psi_v = ao_i @ scf.mo_coeff[i][:, : scf.nocc]
    psi_c = ao_j @ scf.mo_coeff[j][:, scf.nocc :]
    w = cell.vol / len(coords)
    for n, gvec in enumerate(g):
        phase = np.exp(1j * coords @ (dk + gvec))
        m_rs = psi_c.conj().T @ (phase[:, None] * psi_v) * w
        np.testing.assert_allclose(m_ft[n], m_rs, atol=2e-6)
    assert np.abs(m_ft).max() > 1e-2  # not trivially zero


def test_dipole_limit_matrix_elements_scale_as_q_squared(minimal) -> None:
    """sum_{v,c} |<c,k+q| e^{iq.r} |v,k>|^2 -> q^2 |<c|r.q^|v>|^2 as q -> 0 (bands at k+q from
    the converged density, non-self-consistently)."""
    from pyscf.pbc.df import ft_ao

    scf = minimal["scf"]
    k = scf.kpts[1]
    direction = np.array([0.3, 0.5, 0.81]) / np.linalg.norm([0.3, 0.5, 0.81])
    qs = np.array([0.002, 0.004, 0.008])  # at 0.02 the next order already shows (ratio 3.86)
    _, coeffs = scf.mf.get_bands(k + qs[:, None] * direction)
    s = []
    for q, cq in zip(qs, coeffs, strict=True):
        pair = ft_ao.ft_aopair_kpts(scf.cell, np.zeros((1, 3)), q=-q * direction, kptjs=k[None])[0, 0]
        m = cq[:, scf.nocc :].conj().T @ pair @ scf.mo_coeff[1][:, : scf.nocc]
        s.append(np.sum(np.abs(m) ** 2))
    s = np.array(s)
    assert s[1] / s[0] == pytest.approx(4.0, rel=0.02)
    assert s[2] / s[1] == pytest.approx(4.0, rel=0.02)


def test_form_factor_non_negative_and_sum_rule(minimal) -> None:
    from dmca_core.physics.electron_rates import ALPHA, M_E_MEV

    ff = minimal["ff"]
    assert np.all(ff.f2 >= 0)
    # completeness: per (k, q) pair, sum over v, c of |M|^2 <= 4 (valence bands), bin by bin
    m2 = np.array([v for v in ff.metadata["mean_m2_per_pair"] if v is not None])
    assert m2.max() <= 4 + 1e-6
    assert m2.max() > 2  # and it is a real bound, approached at q ~ 1-2 alpha m_e
    # the binned N_eff (all conduction bands), averaged over a window, stays below 4 as well
    x = ff.q_ev / (ALPHA * M_E_MEV * 1e6)
    de = ff.e_ev[1] - ff.e_ev[0]
    beyond = np.asarray(ff.metadata["n_eff_beyond_e_max"])
    neff = ff.f2.sum(axis=1) * de / (x**3 * HARTREE_EV) + beyond
    np.testing.assert_allclose(neff - beyond, ff.metadata["n_eff"], rtol=1e-9)
    assert 1.0 < neff[(x > 1.0) & (x < 1.5)].mean() <= 4.0


def test_minimal_rates_against_exceed_dm(minimal) -> None:
    """EXCEED-DM example 1 (arXiv:2210.14917; VASP, 2x2x2 mesh): 1 GeV, 1e-37 cm^2, halo
    230/240/600: heavy 5572, light 2184 events per kg-year. Same mesh here: within 20%."""
    from dmca_core.physics import electron_rates as er

    ff = minimal["ff"]
    for mediator, pub in (("heavy", 5572.0), ("light", 2184.0)):
        total = er.rate_per_q(ff, 1000.0, 1e-37, mediator=mediator, q_max=200).sum()
        assert total / pub == pytest.approx(1.0, abs=0.2), mediator


def test_cache_hit_skips_the_scf(cached) -> None:
    from dmca_pyscf_materials.model import load_or_compute

    ff, origin = load_or_compute("minimal")
    assert origin == "cache"
    np.testing.assert_array_equal(ff.f2, cached["ff"].f2)


def test_cache_key_covers_every_input(cached) -> None:
    import attrs

    from dmca_pyscf_materials.model import cache_key

    preset = cached["preset"]
    keys = {cache_key(preset)}
    for field, value in (
        ("basis", "gth-szv"),
        ("kmesh", (3, 3, 3)),
        ("xc", "pbe"),
        ("dq", 0.1),
        ("de_ev", 0.2),
        ("q_max", 8.0),
        ("scissor_gap_ev", 1.2),
    ):
        keys.add(cache_key(attrs.evolve(preset, **{field: value})))
    assert len(keys) == 8


def test_damaged_cache_entry_is_recomputed(cached, monkeypatch) -> None:
    from dmca_pyscf_materials import model

    path = model.cache_path(cached["preset"])
    path.write_bytes(b"garbage")
    monkeypatch.setattr(model, "compute", lambda preset, progress=None, map_groups=None: cached["ff"])
    ff, origin = model.load_or_compute("minimal")
    assert origin == "computed"
    assert model.load_or_compute("minimal")[1] == "cache"


def test_plugin_model_uses_the_shipped_table_without_pyscf_work(use_plugin, tmp_path, monkeypatch) -> None:
    """The shipped table was generated with the converged preset's exact inputs (and code version),
    so the default run never recomputes."""
    from dmca_core.default_plugins.tabulated_materials import read_form_factor, shipped_path
    from dmca_core.plugins import get_material_model
    from dmca_pyscf_materials import plugin, scf
    from dmca_pyscf_materials.presets import get_preset

    monkeypatch.setenv("DMCA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(scf, "run_scf", lambda *_a, **_k: pytest.fail("SCF ran"))
    assert read_form_factor(shipped_path()).metadata["inputs"] == get_preset("converged").inputs()
    use_plugin(plugin)
    model = get_material_model("silicon")
    assert (model.source, model.priority) == ("pyscf", 50)
    ff = model.form_factor()
    assert model.origin == "shipped" and ff.f2.shape[0] > 0


def test_cli_minimal_json_and_plots(cached, use_plugin, tmp_path, capsys) -> None:
    from dmca_core.cli import main
    from dmca_pyscf_materials import plugin

    use_plugin(plugin)
    plots = tmp_path / "plots"
    assert main(["materials", "silicon", "--minimal", "--json", "--plot", str(plots)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kpts"] == 8 and out["basis"] == "gth-dzvp" and out["xc"] == "lda,vwn"
    assert out["converged"] is True and out["source"] == "cache"
    assert out["e_tot"] == pytest.approx(cached["scf"].e_tot)
    assert out["band_gap_ev"] == pytest.approx(cached["scf"].band_gap_ev)
    assert len(out["q_scan"]["q_alpha_me"]) == len(out["q_scan"]["n_eff"]) == cached["ff"].q_ev.size
    for name in ("f_crys_heatmap.png", "rate_per_q.png", "reach.png"):
        assert (plots / name).read_bytes()[:4] == b"\x89PNG"


def test_cli_rejects_a_table_that_is_not_npz(cached, use_plugin, tmp_path, capsys) -> None:
    from dmca_core.cli import main
    from dmca_pyscf_materials import plugin

    use_plugin(plugin)
    assert main(["materials", "silicon", "--minimal", "--write-table", str(tmp_path / "t.csv")]) == 2
    assert "--write-table" in capsys.readouterr().err
    assert not (tmp_path / "t.csv").exists()


def test_silicon_minimal_summary(cached) -> None:
    from dmca_pyscf_materials.command import silicon_minimal

    out = silicon_minimal()
    assert {"e_tot", "band_gap_ev", "kpts", "q_scan", "basis", "xc", "converged"} <= set(out)
    assert out["kpts"] == 8


# --- the command's user experience: no PySCF work (compute is replaced), seconds each -----------


@pytest.fixture
def fake_compute(use_plugin, tmp_path, monkeypatch):
    """``dmca materials`` with an empty cache and ``model.compute`` replaced by the shipped table
    relabelled as the requested preset; returns the names of the presets it was asked for."""
    import attrs

    from dmca_core.default_plugins.tabulated_materials import read_form_factor, shipped_path
    from dmca_pyscf_materials import model, plugin

    monkeypatch.setenv("DMCA_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[str] = []

    def compute(preset, progress=None, **_k):
        calls.append(preset.name)
        if progress is not None:
            progress("SCF: stand-in")
        ff = read_form_factor(shipped_path())
        meta = {
            **ff.metadata,
            "preset": preset.name,
            "inputs": preset.inputs(),
            "cache_key": model.cache_key(preset),
        }
        return attrs.evolve(ff, metadata=meta)

    monkeypatch.setattr(model, "compute", compute)
    use_plugin(plugin)
    return calls


def _one_error_line(err: str, prefix: str) -> None:
    assert err.count("\n") == 1 and err.startswith(f"dmca: error: {prefix}"), err
    assert "Traceback" not in err


_NO_PROC = not Path("/proc/self").is_dir()


@pytest.mark.parametrize("where", ["existing_file", "under_a_file", "proc"])
def test_cli_bad_plot_dir_fails_before_any_compute(fake_compute, tmp_path, capsys, where) -> None:
    from dmca_core.cli import main

    if where == "proc" and _NO_PROC:
        pytest.skip("needs Linux /proc")
    (tmp_path / "lab.csv").write_text("x\n")
    bad = {
        "existing_file": tmp_path / "lab.csv",
        "under_a_file": tmp_path / "lab.csv" / "figs",
        "proc": Path("/proc/nope"),
    }[where]
    assert main(["materials", "silicon", "--minimal", "--plot", str(bad)]) == 2
    _one_error_line(capsys.readouterr().err, f"--plot {bad}: cannot write there: ")
    assert fake_compute == []  # refused before the (minutes-long) compute
    assert not (tmp_path / "cache").exists()
    assert (tmp_path / "lab.csv").read_text() == "x\n"


@pytest.mark.parametrize("where", ["under_a_file", "proc", "folder"])
def test_cli_bad_table_path_fails_before_any_compute(fake_compute, tmp_path, capsys, where) -> None:
    from dmca_core.cli import main

    if where == "proc" and _NO_PROC:
        pytest.skip("needs Linux /proc")
    (tmp_path / "lab.csv").write_text("x\n")
    (tmp_path / "t.npz").mkdir()
    bad = {
        "under_a_file": tmp_path / "lab.csv" / "t.npz",
        "proc": Path("/proc/x/t.npz"),
        "folder": tmp_path / "t.npz",
    }[where]
    assert main(["materials", "silicon", "--minimal", "--write-table", str(bad)]) == 2
    _one_error_line(capsys.readouterr().err, f"--write-table {bad}: ")
    assert fake_compute == []
    assert not (tmp_path / "cache").exists()


def test_cli_write_failure_after_compute_is_one_line_and_keeps_the_result(
    fake_compute, tmp_path, capsys
) -> None:
    """The folder passes the early check but a plot file cannot be written (a folder holds its
    name): one line, and the fresh result is in the cache although --no-cache was given."""
    from dmca_core.cli import main
    from dmca_pyscf_materials.model import cache_path
    from dmca_pyscf_materials.presets import get_preset

    figs = tmp_path / "figs"
    (figs / "reach.png").mkdir(parents=True)
    assert main(["materials", "silicon", "--minimal", "--no-cache", "--plot", str(figs)]) == 2
    err = capsys.readouterr().err
    _one_error_line(err, f"--plot {figs}: cannot write there: ")
    cached = cache_path(get_preset("minimal"))
    assert str(cached) in err and cached.exists()
    assert fake_compute == ["minimal"]
    # the rerun is served from that cache entry
    assert main(["materials", "silicon", "--minimal", "--json", "--plot", str(tmp_path / "ok")]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "cache"
    assert fake_compute == ["minimal"]


def test_cli_table_write_failure_after_compute_is_one_line(
    fake_compute, tmp_path, capsys, monkeypatch
) -> None:
    import errno

    from dmca_core.cli import main
    from dmca_core.default_plugins import tabulated_materials

    def full_disk(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tabulated_materials, "write_form_factor", full_disk)
    table = tmp_path / "t.npz"
    assert main(["materials", "silicon", "--minimal", "--write-table", str(table)]) == 2
    _one_error_line(capsys.readouterr().err, f"--write-table {table}: cannot write there: no space left")
    assert fake_compute == ["minimal"] and not table.exists()


@pytest.mark.parametrize(
    ("flags", "tty", "shown"),
    [
        (["--json"], True, True),  # --json is about stdout; progress stays on a terminal's stderr
        ([], True, True),
        (["--json", "--quiet"], True, False),
        (["-q"], True, False),
        (["--json"], False, False),  # piped stderr: quiet, as with `dmca run`
        ([], False, False),
    ],
)
def test_cli_progress_on_a_terminal_unless_quiet(
    fake_compute, capsys, monkeypatch, flags, tty, shown
) -> None:
    import sys

    from dmca_core.cli import main

    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    assert main(["materials", "silicon", "--minimal", *flags]) == 0
    captured = capsys.readouterr()
    assert ("SCF: stand-in" in captured.err) is shown
    assert "SCF: stand-in" not in captured.out
    if "--json" in flags:
        assert json.loads(captured.out)["source"] == "computed"


def test_cli_converged_is_served_from_the_shipped_table_as_its_help_says(fake_compute, capsys) -> None:
    import re

    from dmca_core.cli import main

    with pytest.raises(SystemExit):
        main(["materials", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    converged = re.search(r"--converged (.*?) --json", text).group(1)
    assert "shipped table" in converged and "seconds" in converged and "--no-cache" in converged
    assert main(["materials", "silicon", "--converged", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "shipped"
    assert fake_compute == []
    assert main(["materials", "silicon", "--converged", "--json", "--no-cache", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "computed"
    assert fake_compute == ["converged"]


def test_minimal_preset_is_named_as_unconverged_on_every_plot_and_summary(
    fake_compute, tmp_path, capsys, monkeypatch
) -> None:
    import matplotlib.text

    from dmca_core.cli import main
    from dmca_pyscf_materials import plots

    texts: dict[str, str] = {}
    save = plots._save

    def record(fig, path, paths):
        texts[path.name] = " ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))
        save(fig, path, paths)

    monkeypatch.setattr(plots, "_save", record)
    assert main(["materials", "silicon", "--minimal", "--json", "--plot", str(tmp_path / "figs")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["preset"] == "minimal" and "unconverged" in out["preset_note"]
    assert set(texts) == {"f_crys_heatmap.png", "rate_per_q.png", "reach.png"}
    for name, text in texts.items():
        assert "preset minimal" in text and "unconverged" in text, name
    assert main(["materials", "silicon", "--minimal", "-q"]) == 0
    assert "unconverged" in capsys.readouterr().out


def test_cache_that_cannot_be_written_costs_a_warning_not_the_result(
    fake_compute, tmp_path, capsys, monkeypatch
):
    from dmca_core.cli import main

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("DMCA_CACHE_DIR", str(blocker))
    with pytest.warns(RuntimeWarning, match="could not save the result in the cache"):
        assert main(["materials", "silicon", "--minimal", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "computed"
    assert fake_compute == ["minimal"]


def test_the_form_factor_groups_through_two_pool_workers_give_the_same_bits(minimal) -> None:
    # issue #9: PySCF's work through the run's executor; the groups' sums are added in group
    # order wherever they ran, so the table is the serial one to the last bit
    from dmca_core.default_plugins.local_executor import LocalExecutor
    from dmca_pyscf_materials.crystal_ff import crystal_form_factor

    calls: list[int] = []

    def on_pool(fn, items):
        calls.append(len(items))
        return LocalExecutor().map(fn, items, workers=2, options={}, on_result=lambda i, r: None)

    cff = crystal_form_factor(minimal["scf"], minimal["preset"], map_groups=on_pool)
    assert calls == [8]  # the 2x2x2 mesh's eight Δk groups
    assert np.array_equal(cff.f2, minimal["ff"].f2)
    assert cff.info["q_vectors"] == minimal["ff"].metadata["f_crys"]["q_vectors"]


class _CountingExecutor:
    """The local executor, recording how many items each map call got."""

    name = "counting"

    def __init__(self) -> None:
        from dmca_core.default_plugins.local_executor import LocalExecutor

        self.inner, self.calls = LocalExecutor(), []

    def check(self, workers, options) -> None:
        self.inner.check(workers, options)

    def map(self, fn, items, **kw):
        self.calls.append(len(items))
        return self.inner.map(fn, items, **kw)


def test_a_sweep_computes_a_missing_form_factor_through_its_executor_first(
    minimal, use_plugin, fallback, tmp_path, monkeypatch
) -> None:
    from dmca_core import hookimpl
    from dmca_core.cli import main
    from dmca_pyscf_materials import model as model_mod
    from dmca_pyscf_materials import scf as scf_mod

    counting = _CountingExecutor()

    class Plugins:  # the pyscf model on the minimal preset (not shipped: computed), the executor
        @hookimpl
        def register_material_models(self, register) -> None:
            register(model_mod.PyscfSilicon("minimal"))

        @hookimpl
        def register_executors(self, register) -> None:
            register(counting)

    monkeypatch.setenv("DMCA_CACHE_DIR", str(tmp_path / "cache"))  # cold
    monkeypatch.setattr(scf_mod, "run_scf", lambda *_a, **_k: minimal["scf"])  # the session's SCF
    use_plugin(Plugins())
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        f"seed: 1\nestimator: fallback\nexecutor: {{name: counting, workers: 1}}\n"
        f"telemetry: {{path: {tmp_path / 't.jsonl'}}}\n"
        "studies:\n  - {domain: direct_lab, hypothesis: DarkPhoton, treatment: exposure_kg_day, "
        "outcome: counts, rows: 400, steps: 2}\n"
    )
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert counting.calls == [8, 2]  # the eight Δk groups, then the two steps
    cached = model_mod.read_form_factor(model_mod.cache_path(minimal["preset"]))
    assert np.array_equal(cached.f2, minimal["ff"].f2)
