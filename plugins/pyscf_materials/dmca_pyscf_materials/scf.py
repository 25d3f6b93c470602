"""Periodic Kohn-Sham DFT of diamond-structure silicon with PySCF (pbc)."""

from __future__ import annotations

import time

import attrs
import numpy as np
from pyscf.pbc import dft, gto

from .presets import Preset

HARTREE_EV = 27.211386245988
N_VALENCE_BANDS = 4  # 8 valence electrons per 2-atom cell (GTH pseudopotential), doubly occupied


@attrs.frozen(eq=False)
class ScfResult:
    """A converged (or not) KRKS run: band energies in Hartree, MO coefficients per k-point."""

    cell: gto.Cell
    kpts: np.ndarray  # (nk, 3), absolute, inverse bohr
    mo_energy: list[np.ndarray]
    mo_coeff: list[np.ndarray]
    e_tot: float  # Hartree per cell
    converged: bool
    seconds: float
    mf: object  # the PySCF mean-field object (for non-self-consistent bands in tests)

    @property
    def nocc(self) -> int:
        return N_VALENCE_BANDS

    def band_edges_ev(self) -> tuple[float, float]:
        """(valence-band maximum, conduction-band minimum) over the k-mesh, in eV."""
        vbm = max(float(e[self.nocc - 1]) for e in self.mo_energy)
        cbm = min(float(e[self.nocc]) for e in self.mo_energy)
        return vbm * HARTREE_EV, cbm * HARTREE_EV

    @property
    def band_gap_ev(self) -> float:
        """Kohn-Sham gap on the k-mesh (indirect: CBM anywhere minus VBM anywhere)."""
        vbm, cbm = self.band_edges_ev()
        return cbm - vbm


def silicon_cell(preset: Preset) -> gto.Cell:
    """The primitive diamond cell (2 atoms, fcc lattice), in Angstrom."""
    a = preset.lattice_angstrom
    cell = gto.Cell()
    cell.atom = [["Si", (0.0, 0.0, 0.0)], ["Si", (a / 4, a / 4, a / 4)]]
    cell.a = np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]]) * a
    cell.unit = "A"
    cell.basis = preset.basis
    cell.pseudo = preset.pseudo
    cell.verbose = 0
    cell.build()
    return cell


def run_scf(preset: Preset) -> ScfResult:
    """Run KRKS on the preset's Gamma-centred k-mesh."""
    t0 = time.perf_counter()
    cell = silicon_cell(preset)
    kpts = cell.make_kpts(list(preset.kmesh))
    mf = dft.KRKS(cell, kpts)
    mf.xc = preset.xc
    mf.conv_tol = preset.conv_tol
    e_tot = float(mf.kernel())
    return ScfResult(
        cell=cell,
        kpts=np.asarray(kpts),
        mo_energy=[np.asarray(e) for e in mf.mo_energy],
        mo_coeff=[np.asarray(c) for c in mf.mo_coeff],
        e_tot=e_tot,
        converged=bool(mf.converged),
        seconds=time.perf_counter() - t0,
        mf=mf,
    )
