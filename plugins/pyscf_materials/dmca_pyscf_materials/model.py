"""Silicon's form factor from PySCF, behind a disk cache keyed by every input.

Lookup order for a preset: the cache (``$DMCA_CACHE_DIR`` or ``~/.cache/dmca``, sub-folder
``materials``), then the table shipped with the core if it was generated with identical inputs,
then a fresh computation (written to the cache).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dmca_core.default_plugins.tabulated_materials import (
    read_form_factor,
    shipped_path,
    write_form_factor,
)
from dmca_core.errors import DataError, os_reason
from dmca_core.physics.electron_rates import SI_CELL_MASS_GEV
from dmca_core.types import FormFactor

from .presets import Preset, get_preset

SI_PAIR_ENERGY_EV = 3.6  # Essig et al. 2016


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("DMCA_CACHE_DIR") or str(Path.home() / ".cache" / "dmca")
    return Path(base) / "materials"


def cache_key(preset: Preset) -> str:
    blob = json.dumps(preset.inputs(), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cache_path(preset: Preset) -> Path:
    return cache_dir() / f"silicon-{cache_key(preset)}.npz"


def compute(
    preset: Preset,
    progress: Callable[[str], None] | None = None,
    *,
    scf: Any = None,
    map_groups: Any = None,
) -> FormFactor:
    """Run the SCF (unless ``scf``, a :class:`~.scf.ScfResult` of this preset, is given) and bin
    the form factor (slow: see docs/materials.md for timings). ``map_groups``: an executor's map
    for the form factor's Δk groups (see :func:`~.crystal_ff.crystal_form_factor`)."""
    # PySCF is imported here so that merely loading the plugin stays cheap
    from .crystal_ff import ALPHA_ME_EV, crystal_form_factor, n_eff
    from .scf import run_scf

    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    say(f"SCF: KRKS {preset.xc} {preset.basis} k-mesh {'x'.join(map(str, preset.kmesh))}")
    if scf is None:
        scf = run_scf(preset)
    say(f"SCF done in {scf.seconds:.0f} s: e_tot {scf.e_tot:.6f} Ha, gap {scf.band_gap_ev:.3f} eV")
    cff = crystal_form_factor(
        scf, preset, progress=lambda i, n: say(f"form factor: group {i}/{n}"), map_groups=map_groups
    )
    neff = n_eff(cff.q, cff.e_ev, cff.f2)
    meta: dict[str, Any] = {
        "cache_key": cache_key(preset),
        "inputs": preset.inputs(),
        "preset": preset.name,
        "generated_by": f"dmca materials silicon --preset {preset.name} --write-table PATH",
        "scf": {
            "e_tot_ha": scf.e_tot,
            "ks_gap_on_mesh_ev": scf.band_gap_ev,
            "converged": scf.converged,
            "kpts": int(len(scf.kpts)),
            "seconds": round(scf.seconds, 1),
        },
        "f_crys": {k: (float(v) if isinstance(v, np.floating) else v) for k, v in cff.info.items()},
        "seconds_total": round(time.perf_counter() - t0, 1),
        "n_eff": neff.tolist(),
        "n_eff_beyond_e_max": (cff.beyond_e_max / (cff.q**3 * 27.211386245988)).tolist(),
        "mean_m2_per_pair": [None if np.isnan(v) else float(v) for v in cff.mean_m2],
        "q_unit": "q_ev = x * alpha * m_e, x in inverse bohr",
        "units": {"q_ev": "eV", "e_ev": "eV", "f2": "dimensionless, Essig 2016 eq. 3.16"},
        "pyscf_version": _pyscf_version(),
    }
    return FormFactor(
        material="silicon",
        q_ev=cff.q * ALPHA_ME_EV,
        e_ev=cff.e_ev,
        f2=cff.f2,
        cell_mass_gev=SI_CELL_MASS_GEV,
        band_gap_ev=preset.scissor_gap_ev,
        pair_energy_ev=SI_PAIR_ENERGY_EV,
        metadata=meta,
    )


def _pyscf_version() -> str:
    import pyscf

    return str(pyscf.__version__)


def _matches(ff: FormFactor, preset: Preset) -> bool:
    return ff.metadata.get("cache_key") == cache_key(preset) and ff.metadata.get("inputs") == preset.inputs()


def load_or_compute(
    preset: Preset | str,
    *,
    use_cache: bool = True,
    progress: Callable[[str], None] | None = None,
    map_groups: Any = None,
) -> tuple[FormFactor, str]:
    """The preset's form factor and where it came from: ``cache``, ``shipped`` or ``computed``.

    ``use_cache=False`` skips the cache and the shipped table when looking; a computed result is
    written to the cache either way.
    """
    if isinstance(preset, str):
        preset = get_preset(preset)
    path = cache_path(preset)
    if use_cache and path.exists():
        try:
            ff = read_form_factor(path)
            if _matches(ff, preset):
                return ff, "cache"
        except DataError:
            pass  # a damaged cache entry is recomputed and overwritten
    if use_cache:
        shipped = shipped_path()
        if shipped.exists():
            ff = read_form_factor(shipped)
            if _matches(ff, preset):
                return ff, "shipped"
    ff = compute(preset, progress, map_groups=map_groups)
    # saved even when use_cache is off (then a refresh): a later step that fails, such as writing
    # the command's plots, must not throw away minutes of work. A cache that cannot take the file
    # costs only the next run's time, so that is a warning, not an error.
    try:
        store(ff, preset)
    except OSError as exc:
        warnings.warn(
            f"dmca: could not save the result in the cache {path}: {os_reason(exc, path)}",
            RuntimeWarning,
            stacklevel=2,
        )
    return ff, "computed"


def store(ff: FormFactor, preset: Preset) -> Path:
    """Write ``ff`` to the cache entry of ``preset``."""
    path = cache_path(preset)
    write_form_factor(ff, path)
    return path


class PyscfSilicon:
    """Silicon from PySCF (priority above the built-in table); served from cache when possible."""

    name = "silicon"
    source = "pyscf"
    priority = 50

    def __init__(self, preset: str = "converged") -> None:
        self.preset = get_preset(preset)
        self._ff: FormFactor | None = None
        self.origin: str | None = None

    def form_factor(self) -> FormFactor:
        if self._ff is None:
            self._ff, self.origin = load_or_compute(self.preset)
        return self._ff

    def prepare(self, map_groups: Any) -> str:
        """Before a run's steps: have the form factor ready, computing its Δk groups through
        ``map_groups`` (the run's executor) when neither the cache nor the shipped table has it.
        The steps then read it from the cache. Returns where it came from."""
        if self._ff is None:
            self._ff, self.origin = load_or_compute(self.preset, map_groups=map_groups)
        return self.origin or ""
