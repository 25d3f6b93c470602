"""Named settings for the silicon calculation: every input that changes the answer.

A preset's ``inputs()`` dict is the cache key (together with the code version), so adding a field
here automatically separates old cache entries from new ones.
"""

from __future__ import annotations

from typing import Any

import attrs

from dmca_core.errors import UsageError

# Bump when the computation changes in a way that alters the numbers (cache entries and the
# shipped table carry it, so a stale file is never mistaken for a current one).
CODE_VERSION = "1"


@attrs.frozen
class Preset:
    """Inputs of one silicon run. q in units of alpha*m_e (= inverse bohr), energies in eV."""

    name: str
    basis: str
    kmesh: tuple[int, int, int] = attrs.field(converter=lambda v: tuple(int(x) for x in v))
    xc: str = "lda,vwn"
    pseudo: str = "gth-pade"
    lattice_angstrom: float = 5.431
    # valence f_crys above 6 alpha*m_e holds < 3e-4 of the integral at E < 50 eV (measured, 2x2x2)
    q_max: float = 6.0
    dq: float = 0.05
    e_max_ev: float = 50.0
    de_ev: float = 0.1
    # scissor: conduction bands are shifted so that the smallest transition energy on the k-mesh
    # equals this gap (the experimental indirect gap, as QEdark does)
    scissor_gap_ev: float = 1.11
    conv_tol: float = 1e-8  # Hartree; band energies are stable to ~1e-6 eV at this level

    @property
    def nk(self) -> int:
        return self.kmesh[0] * self.kmesh[1] * self.kmesh[2]

    def inputs(self) -> dict[str, Any]:
        """Everything that determines the form factor (the preset's name does not)."""
        d = attrs.asdict(self)
        d.pop("name")
        d["kmesh"] = list(self.kmesh)
        d["material"] = "silicon"
        d["structure"] = "diamond"
        d["code_version"] = CODE_VERSION
        return d


PRESETS: dict[str, Preset] = {
    # gth-dzvp rather than gth-szv: the single-zeta basis has no d shell, its conduction bands are
    # far too high (LDA gap ~2 eV instead of ~0.5 eV) and the run saves only ~10 s.
    "minimal": Preset("minimal", basis="gth-dzvp", kmesh=(2, 2, 2)),
    "converged": Preset("converged", basis="gth-dzvp", kmesh=(3, 3, 3)),
}

# What each preset is good for, shown in plot titles and the command's summary so that a reader of
# a minimal-preset figure knows it is not the reference result. Kept out of Preset: a field there
# would change inputs(), the cache key and the shipped table's match.
PRESET_NOTES: dict[str, str] = {
    "minimal": "fast, unconverged 2x2x2 k-mesh; single Q bins can be 2x off --converged",
    "converged": "3x3x3 k-mesh, the densest preset (the shipped table)",
}


def preset_note(name: str | None) -> str:
    """One line saying what the preset ``name`` is for (empty for an unknown or missing name)."""
    return PRESET_NOTES.get(name or "", "")


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown materials preset {name!r}; valid: {', '.join(PRESETS)}") from None
