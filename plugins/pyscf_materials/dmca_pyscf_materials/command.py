"""``dmca materials silicon``: run (or fetch from cache) a preset, print a summary, write plots."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from dmca_core.errors import UsageError
from dmca_core.interfaces import Command
from dmca_core.physics.electron_rates import ALPHA, M_E_MEV
from dmca_core.types import FormFactor

from .presets import PRESETS, get_preset

HARTREE_EV = 27.211386245988


def summary(ff: FormFactor, origin: str) -> dict[str, Any]:
    """The run's headline numbers; ``q_scan`` is f_crys summed over E per q bin, with N_eff."""
    meta = ff.metadata
    inputs = meta["inputs"]
    x = np.asarray(ff.q_ev) / (ALPHA * M_E_MEV * 1e6)
    de = float(ff.e_ev[1] - ff.e_ev[0])
    summed = np.asarray(ff.f2).sum(axis=1) * de
    return {
        "material": "silicon",
        "preset": meta.get("preset"),
        "source": origin,
        "e_tot": meta["scf"]["e_tot_ha"],
        "e_tot_unit": "Hartree per 2-atom cell",
        "band_gap_ev": meta["scf"]["ks_gap_on_mesh_ev"],
        "band_gap_note": "Kohn-Sham gap on the k-mesh; f_crys uses a scissor to scissor_gap_ev",
        "scissor_gap_ev": ff.band_gap_ev,
        "kpts": meta["scf"]["kpts"],
        "kmesh": inputs["kmesh"],
        "basis": inputs["basis"],
        "pseudo": inputs["pseudo"],
        "xc": inputs["xc"],
        "converged": meta["scf"]["converged"],
        "seconds_when_computed": meta.get("seconds_total"),
        "q_scan": {
            "q_alpha_me": np.round(x, 6).tolist(),
            "f2_summed_over_e_ev": summed.tolist(),
            "n_eff": (summed / (x**3 * HARTREE_EV)).tolist(),
        },
    }


def silicon_minimal(*, use_cache: bool = True) -> dict[str, Any]:
    """Si, gth-dzvp, 2x2x2 k-mesh, LDA: e_tot, gap, q_scan, ... (1.5-2 min when not cached)."""
    from .model import load_or_compute

    ff, origin = load_or_compute("minimal", use_cache=use_cache)
    return summary(ff, origin)


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("material", choices=["silicon"], help="target material")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--preset", choices=sorted(PRESETS), default=None, help="settings (default: minimal)")
    group.add_argument(
        "--minimal",
        action="store_const",
        const="minimal",
        dest="preset_flag",
        help="gth-dzvp, 2x2x2 k-mesh, LDA (1.5-2 min, then cached)",
    )
    group.add_argument(
        "--converged",
        action="store_const",
        const="converged",
        dest="preset_flag",
        help="gth-dzvp, 3x3x3 k-mesh, LDA (a few minutes; the shipped table)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--plot", metavar="DIR", help="write f_crys heat map, dR/dQ and reach PNGs here")
    p.add_argument("--no-cache", action="store_true", help="recompute even if the cache has the answer")
    p.add_argument(
        "--write-table",
        metavar="PATH",
        help="also write the form factor as a compact .npz table (how the shipped table is made)",
    )


def _run(args: argparse.Namespace) -> int:
    from .model import load_or_compute

    name = args.preset or args.preset_flag or "minimal"
    preset = get_preset(name)
    if args.write_table and not str(args.write_table).endswith(".npz"):
        raise UsageError(f"--write-table {args.write_table}: the table must be a .npz file")
    quiet = args.json
    ff, origin = load_or_compute(
        preset, use_cache=not args.no_cache, progress=None if quiet else lambda m: print(m, file=sys.stderr)
    )
    out = summary(ff, origin)
    if args.write_table:
        from dmca_core.default_plugins.tabulated_materials import write_form_factor

        write_form_factor(ff, Path(args.write_table), dtype=np.float32)  # float32 keeps the table small
        out["table"] = str(args.write_table)
    if args.plot:
        from .plots import write_plots

        out["plots"] = [str(p) for p in write_plots(ff, Path(args.plot))]
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"silicon [{name}, from {origin}]: {out['basis']} {out['xc']} k-mesh "
            f"{'x'.join(map(str, out['kmesh']))} ({out['kpts']} k-points)"
        )
        print(
            f"  e_tot {out['e_tot']:.6f} Ha/cell, KS gap on mesh {out['band_gap_ev']:.3f} eV, "
            f"SCF converged: {out['converged']}"
        )
        for p in out.get("plots", []):
            print(f"  wrote {p}")
        if "table" in out:
            print(f"  wrote {out['table']}")
    return 0


MATERIALS_COMMAND = Command(
    name="materials",
    help="crystal form factors for dark-matter-electron scattering (PySCF)",
    configure=_configure,
    run=_run,
)
