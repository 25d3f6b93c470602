"""The crystal form factor |f_crys(q, E)|^2 of Essig et al. 2016 (arXiv:1509.01598, eq. 3.16).

    |f_crys(q,E)|^2 = 2 pi^2 / (alpha m_e^2 V_cell) * 1/N_k^2
                      * sum_{k,k',v,c,G} q / (dq dE) |<c k'| e^{i(k'-k+G).r} |v k>|^2

binned in q and E. Matrix elements come from PySCF's analytic Fourier transform of Gaussian AO pair
products (``pyscf.pbc.df.ft_ao.ft_aopair_kpts``), not from real-space grids:

    <mu, k+dk| e^{i(dk+G).r} |nu, k>  =  ft_aopair_kpts(cell, -G, q=-dk, kptjs=[k])[0, g, mu, nu]

PySCF's Bloch AOs are periodic in k, so grouping the pairs (k, k') by the folded difference
dk = k' - k (mod G) gives N_k groups; one call per group and G chunk serves every k at once.
Time reversal (e(-k) = e(k), |M(k,q)| = |M(-k,-q)|) lets us evaluate only q in a half-space and
count each twice.

Units: q in alpha*m_e (which is the inverse bohr), energies in eV.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
from pyscf.pbc.df import ft_ao

from .presets import Preset
from .scf import HARTREE_EV, ScfResult

ALPHA = 1 / 137.035999084
M_E_EV = 510998.95
ALPHA_ME_EV = ALPHA * M_E_EV  # 1 inverse bohr in eV
BOHR_IN_INV_EV = 0.529177210903e-10 / 1.973269804e-7  # a0 / (hbar c), eV^-1
# A generic direction: no lattice vector q != 0 is orthogonal to it.
_HALF_SPACE = np.array([1.0, 0.6180339887498949, 0.41421356237309503])
_CHUNK_BYTES = 200e6


def prefactor_ev(cell_volume_bohr3: float) -> float:
    """2 pi^2 / (alpha m_e^2 V_cell) in eV (about 2.0 eV for silicon)."""
    vol = cell_volume_bohr3 * BOHR_IN_INV_EV**3
    return 2 * math.pi**2 / (ALPHA * M_E_EV**2 * vol)


@attrs.frozen(eq=False)
class CrystalFormFactor:
    q: np.ndarray  # bin centres, alpha*m_e
    e_ev: np.ndarray  # bin centres, eV
    f2: np.ndarray  # (nq, nE), dimensionless
    beyond_e_max: np.ndarray  # (nq,) the same sum over transitions above e_max (sum-rule bookkeeping)
    # (nq,) sum over v, c of |M|^2 (every conduction band, any E), averaged over the (k, q) pairs in
    # each q bin: completeness bounds it by the 4 valence bands exactly, bin by bin
    mean_m2: np.ndarray
    info: dict


def _mesh_index(cell, kpts: np.ndarray, kmesh: tuple[int, int, int]) -> np.ndarray:
    """Integer mesh coordinates (nk, 3) of Gamma-centred k-points."""
    frac = cell.get_scaled_kpts(kpts)
    ints = np.rint(frac * np.asarray(kmesh)).astype(int) % np.asarray(kmesh)
    if not np.allclose((frac * np.asarray(kmesh) - np.rint(frac * np.asarray(kmesh))), 0, atol=1e-6):
        raise ValueError("k-points are not on a Gamma-centred mesh")
    return ints


def _gvectors(cell, dk: np.ndarray, q_max: float, half_space: bool) -> np.ndarray:
    """Reciprocal lattice vectors G with |dk + G| < q_max (and (dk+G).n > 0 if half_space)."""
    a = cell.lattice_vectors()
    b = cell.reciprocal_vectors()
    # (dk+G).a_i = dk.a_i + 2 pi n_i, and |(dk+G).a_i| <= q_max |a_i|
    nmax = [
        int(math.ceil((q_max + np.linalg.norm(dk)) * np.linalg.norm(a[i]) / (2 * math.pi))) + 1
        for i in range(3)
    ]
    axes = [np.arange(-n, n + 1) for n in nmax]
    n = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    g = n @ b
    qv = g + dk
    qn = np.linalg.norm(qv, axis=1)
    keep = qn < q_max
    if half_space:
        keep &= qv @ _HALF_SPACE > 0
    return g[keep]


def group_matrix_elements(
    scf: ScfResult, dk: np.ndarray, g: np.ndarray, targets: list[int]
) -> list[np.ndarray]:
    """<c k_j| e^{i(dk+G).r} |v k_i> for every k_i, with k_j = targets[i] = k_i + dk (mod G).

    Returns one (ng, n_conduction, n_valence) array per k_i.
    """
    nocc = scf.nocc
    pair = ft_ao.ft_aopair_kpts(scf.cell, -g, q=-dk, kptjs=scf.kpts)  # (nk, ng, nao, nao)
    out = []
    for i, j in enumerate(targets):
        cv = scf.mo_coeff[i][:, :nocc]
        cc = scf.mo_coeff[j][:, nocc:]
        out.append(cc.conj().T @ (pair[i] @ cv))
    return out


#: ``map_groups(fn, items) -> list`` runs ``fn`` on every item, anywhere (an executor's map)
MapGroups = Callable[[Callable[[int], "GroupSums"], list[int]], list["GroupSums"]]


@attrs.frozen(eq=False)
class GroupWork:
    """What every Δk group's sum needs, and nothing else: picklable, so a group can run in a
    worker process (the PySCF mean-field object stays behind). ``group_matrix_elements`` reads
    ``cell``, ``kpts``, ``mo_coeff`` and ``nocc`` from it as from a :class:`ScfResult`."""

    cell: Any
    kpts: np.ndarray
    mo_coeff: list[np.ndarray]
    energies: list[np.ndarray]  # eV, per k-point
    nocc: int
    ints: np.ndarray  # integer mesh coordinates of the k-points
    shift: float  # scissor shift of the conduction bands, eV
    preset: Preset
    symmetric: bool  # time reversal: only a half-space of q, counted twice
    chunk: int  # G vectors per ft_aopair_kpts call

    @property
    def bins(self) -> tuple[int, int]:
        return int(round(self.preset.q_max / self.preset.dq)), int(
            round(self.preset.e_max_ev / self.preset.de_ev)
        )


@attrs.frozen(eq=False)
class GroupSums:
    """One Δk group's share of the sums (added up in group order, whoever computed them)."""

    acc: np.ndarray  # (nq * nE,)
    beyond: np.ndarray  # (nq,)
    m2_sum: np.ndarray  # (nq,)
    pairs: np.ndarray  # (nq,)
    q_vectors: int


def group_sums(work: GroupWork, gi: int) -> GroupSums:
    """The transitions of the pairs (k, k + Δk) for the ``gi``-th Δk, binned in q and E."""
    preset, kmesh = work.preset, np.asarray(work.preset.kmesh)
    nk, nocc = len(work.kpts), work.nocc
    nq, ne = work.bins
    acc, beyond, m2_sum, pairs = np.zeros(nq * ne), np.zeros(nq), np.zeros(nq), np.zeros(nq)
    lookup = {tuple(v): i for i, v in enumerate(work.ints)}
    dm = work.ints[gi]
    dk = (dm / kmesh) @ work.cell.reciprocal_vectors()
    targets = [lookup[tuple((v + dm) % kmesh)] for v in work.ints]
    e_cv = [
        (work.energies[j][nocc:] + work.shift)[:, None] - work.energies[i][:nocc][None, :]
        for i, j in enumerate(targets)
    ]
    gv = _gvectors(work.cell, dk, preset.q_max, half_space=work.symmetric)
    qn = np.linalg.norm(gv + dk, axis=1)
    for s in range(0, len(gv), work.chunk):
        g = gv[s : s + work.chunk]
        q = qn[s : s + work.chunk]
        iq = np.minimum((q / preset.dq).astype(int), nq - 1)
        pairs += np.bincount(iq, minlength=nq) * nk
        for i, m in enumerate(group_matrix_elements(work, dk, g, targets)):  # type: ignore[arg-type]
            m2 = m.real**2 + m.imag**2
            m2_sum += np.bincount(iq, weights=m2.sum(axis=(1, 2)), minlength=nq)
            w = m2 * q[:, None, None]
            ie = (e_cv[i] / preset.de_ev).astype(int)  # (nc, nv)
            inside = ie < ne
            idx = iq[:, None, None] * ne + np.where(inside, ie, 0)[None]
            acc += np.bincount(idx[:, inside].ravel(), weights=w[:, inside].ravel(), minlength=nq * ne)
            beyond += np.bincount(iq, weights=w[:, ~inside].sum(axis=1), minlength=nq)
    return GroupSums(acc, beyond, m2_sum, pairs, len(gv) * nk)


def crystal_form_factor(
    scf: ScfResult,
    preset: Preset,
    progress: Callable[[int, int], None] | None = None,
    *,
    map_groups: MapGroups | None = None,
) -> CrystalFormFactor:
    """Bin valence->conduction transitions of a KRKS run into |f_crys(q, E)|^2.

    ``map_groups``: how to run the N_k Δk groups (an executor's map: a run's worker processes or
    Dask cluster); one after another here without it. The groups' sums are added in group order
    either way, so the result is the same to the last bit.
    """
    t0 = time.perf_counter()
    cell, kpts = scf.cell, scf.kpts
    nk = len(kpts)
    kmesh = preset.kmesh
    ints = _mesh_index(cell, kpts, kmesh)
    lookup = {tuple(v): i for i, v in enumerate(ints)}
    minus = [lookup.get(tuple((-v) % np.asarray(kmesh))) for v in ints]
    # time reversal halves the work when the mesh holds -k for every k and e(-k) = e(k)
    symmetric = all(m is not None for m in minus) and all(
        np.allclose(scf.mo_energy[i], scf.mo_energy[m], atol=1e-6) for i, m in enumerate(minus)
    )
    vbm, cbm = scf.band_edges_ev()
    nao = cell.nao_nr()
    work = GroupWork(
        cell=cell,
        kpts=np.asarray(kpts),
        mo_coeff=list(scf.mo_coeff),
        energies=[np.asarray(e) * HARTREE_EV for e in scf.mo_energy],
        nocc=scf.nocc,
        ints=ints,
        shift=preset.scissor_gap_ev - (cbm - vbm),
        preset=preset,
        symmetric=symmetric,
        chunk=max(16, int(_CHUNK_BYTES / (nk * nao * nao * 16))),
    )
    task = functools.partial(group_sums, work)
    if map_groups is None:
        parts = []
        for gi in range(nk):
            parts.append(task(gi))
            if progress is not None:
                progress(gi + 1, nk)
    else:
        parts = map_groups(task, list(range(nk)))
    nq, ne = work.bins
    acc, beyond, m2_sum, pairs = np.zeros(nq * ne), np.zeros(nq), np.zeros(nq), np.zeros(nq)
    for part in parts:  # in group order, whatever order they were computed in
        acc += part.acc
        beyond += part.beyond
        m2_sum += part.m2_sum
        pairs += part.pairs
    norm = prefactor_ev(cell.vol) / (nk**2 * preset.dq * preset.de_ev) * (2.0 if symmetric else 1.0)
    f2 = acc.reshape(nq, ne) * norm
    return CrystalFormFactor(
        q=(np.arange(nq) + 0.5) * preset.dq,
        e_ev=(np.arange(ne) + 0.5) * preset.de_ev,
        f2=f2,
        beyond_e_max=beyond * norm * preset.de_ev,
        mean_m2=np.divide(m2_sum, pairs, out=np.full(nq, np.nan), where=pairs > 0),
        info={
            "seconds": time.perf_counter() - t0,
            "q_vectors": int(sum(p.q_vectors for p in parts)),
            "time_reversal_halving": bool(symmetric),
            "scissor_shift_ev": float(work.shift),
            "prefactor_ev": prefactor_ev(cell.vol),
        },
    )


def n_eff(q: np.ndarray, e_ev: np.ndarray, f2: np.ndarray) -> np.ndarray:
    """Sum rule N_eff(q) = integral dE |f_crys|^2 / (x^3 * 27.211 eV), x = q/(alpha m_e): at most 4."""
    de = float(e_ev[1] - e_ev[0])
    return f2.sum(axis=1) * de / (q**3 * HARTREE_EV)
