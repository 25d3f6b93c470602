"""Built-in material model: silicon's crystal form factor from the table shipped with the core.

The table (``dmca_core/data/si_form_factor.npz``) was produced by the pyscf_materials plugin; its
generating command and every input are in its metadata (also in ``si_form_factor.json`` beside
it, and in docs/materials.md). With it the core computes dark-matter-electron rates without PySCF.

File format (also used by the plugin's disk cache): an ``.npz`` with arrays ``q_ev`` (nq,),
``e_ev`` (nE,), ``f2`` (nq, nE) and ``meta``, a JSON string holding ``material``,
``cell_mass_gev``, ``band_gap_ev``, ``pair_energy_ev`` and free-form metadata.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from dmca_core import hookimpl
from dmca_core.errors import DataError
from dmca_core.interfaces import MaterialModel
from dmca_core.types import FormFactor

SHIPPED_SILICON = "si_form_factor.npz"
_FIELDS = ("material", "cell_mass_gev", "band_gap_ev", "pair_energy_ev")


def shipped_path(name: str = SHIPPED_SILICON) -> Path:
    return Path(str(resources.files("dmca_core") / "data" / name))


def write_form_factor(ff: FormFactor, path: Path, *, dtype: Any = np.float64) -> None:
    """Write atomically (temp file + rename): a reader never sees half a file."""
    meta = {k: getattr(ff, k) for k in _FIELDS}
    meta["metadata"] = dict(ff.metadata)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp.npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(
            tmp,
            q_ev=np.asarray(ff.q_ev, dtype=np.float64),
            e_ev=np.asarray(ff.e_ev, dtype=np.float64),
            f2=np.asarray(ff.f2, dtype=dtype),
            meta=np.array(json.dumps(meta, sort_keys=True)),
        )
        # mkstemp makes the file private; a table is data, readable like any other file
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_form_factor(path: Path) -> FormFactor:
    """Read a form-factor table; a damaged or foreign file raises DataError naming it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            q, e, f2 = (np.asarray(z[k], dtype=np.float64) for k in ("q_ev", "e_ev", "f2"))
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a form-factor table ({exc})") from exc
    if f2.shape != (q.size, e.size):
        raise DataError(f"{path}: f2 has shape {f2.shape}, expected ({q.size}, {e.size})")
    missing = [k for k in _FIELDS if k not in meta]
    if missing:
        raise DataError(f"{path}: meta lacks field {missing[0]!r}")
    return FormFactor(
        material=str(meta["material"]),
        q_ev=q,
        e_ev=e,
        f2=f2,
        cell_mass_gev=float(meta["cell_mass_gev"]),
        band_gap_ev=float(meta["band_gap_ev"]),
        pair_energy_ev=float(meta["pair_energy_ev"]),
        metadata=meta.get("metadata", {}),
    )


class TabulatedSilicon:
    """Silicon from the shipped table (low priority: a computing plugin replaces it)."""

    name = "silicon"
    source = "table"
    priority = 0

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or shipped_path()
        self._ff: FormFactor | None = None

    def form_factor(self) -> FormFactor:
        if self._ff is None:
            self._ff = read_form_factor(self.path)
        return self._ff


_SILICON = TabulatedSilicon()


@hookimpl(trylast=True)
def register_material_models(register: Callable[[MaterialModel], None]) -> None:
    register(_SILICON)
