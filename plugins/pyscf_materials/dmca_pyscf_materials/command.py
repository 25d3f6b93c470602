"""``dmca materials silicon``: run (or fetch from cache) a preset, print a summary, write plots."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from dmca_core.errors import UsageError, os_reason
from dmca_core.interfaces import Command
from dmca_core.physics.electron_rates import ALPHA, M_E_MEV
from dmca_core.types import FormFactor

from .presets import PRESETS, Preset, get_preset, preset_note

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
        "preset_note": preset_note(meta.get("preset")),
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
    group.add_argument(
        "--preset", choices=sorted(PRESETS), default=None, help="settings by name (default: minimal)"
    )
    group.add_argument(
        "--minimal",
        action="store_const",
        const="minimal",
        dest="preset_flag",
        help="gth-dzvp, 2x2x2 k-mesh, LDA; fast but not converged (the default; "
        "about 1-2 min the first time, then seconds from the cache)",
    )
    group.add_argument(
        "--converged",
        action="store_const",
        const="converged",
        dest="preset_flag",
        help="gth-dzvp, 3x3x3 k-mesh, LDA (served in seconds from the shipped table; "
        "with --no-cache computed afresh, about 4 min)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the summary on stdout as JSON instead of text (progress on stderr is unaffected)",
    )
    p.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress messages (they go to stderr, and only when it is a terminal)",
    )
    p.add_argument(
        "--plot",
        metavar="DIR",
        help="write f_crys_heatmap.png, rate_per_q.png and reach.png into DIR (created if missing)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="compute afresh even if the cache or the shipped table has the answer "
        "(the result replaces the cache entry)",
    )
    p.add_argument(
        "--write-table",
        metavar="PATH",
        help="also write the form factor to PATH as a compact float32 .npz table "
        "(how the shipped table is made)",
    )


def _want_progress(args: argparse.Namespace) -> bool:
    # the rule of `dmca run`: progress on a terminal unless --quiet; --json is about stdout only
    return not args.quiet and sys.stderr.isatty()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cannot_write(option: str, path: Path, exc: OSError) -> UsageError:
    return UsageError(f"{option} {path}: cannot write there: {os_reason(exc, path)}")


def _check_paths(args: argparse.Namespace) -> None:
    """Refuse output paths that cannot be written now, before a compute of up to minutes."""
    from dmca_core.report import check_output_dir

    if args.write_table:
        table = Path(args.write_table)
        if table.suffix != ".npz":
            raise UsageError(f"--write-table {table}: the table must be a .npz file")
        if table.is_dir():
            raise UsageError(f"--write-table {table}: is a folder; give the .npz file's name")
        try:
            check_output_dir(table.parent)
        except OSError as exc:
            raise _cannot_write("--write-table", table, exc) from None
    if args.plot:
        try:
            check_output_dir(Path(args.plot))
        except OSError as exc:
            raise _cannot_write("--plot", Path(args.plot), exc) from None


def _write_failed(option: str, path: Path, exc: OSError, preset: Preset, origin: str) -> UsageError:
    """The one-line error for a write that fails after the form factor is in hand."""
    from .model import cache_path

    err = _cannot_write(option, path, exc)
    cached = cache_path(preset)
    if origin == "computed" and cached.exists():
        err = UsageError(
            f"{err}; the computed form factor is saved in {cached}, a rerun without --no-cache uses it"
        )
    return err


def _run(args: argparse.Namespace) -> int:
    from .model import load_or_compute

    name = args.preset or args.preset_flag or "minimal"
    preset = get_preset(name)
    _check_paths(args)
    ff, origin = load_or_compute(
        preset, use_cache=not args.no_cache, progress=_say if _want_progress(args) else None
    )
    out = summary(ff, origin)
    if args.write_table:
        from dmca_core.default_plugins.tabulated_materials import write_form_factor

        table = Path(args.write_table)
        try:
            write_form_factor(ff, table, dtype=np.float32)  # float32 keeps the table small
        except OSError as exc:
            raise _write_failed("--write-table", table, exc, preset, origin) from None
        out["table"] = str(table)
    if args.plot:
        from .plots import write_plots

        try:
            out["plots"] = [str(p) for p in write_plots(ff, Path(args.plot))]
        except OSError as exc:
            raise _write_failed("--plot", Path(args.plot), exc, preset, origin) from None
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"silicon [{name}, from {origin}]: {out['basis']} {out['xc']} k-mesh "
            f"{'x'.join(map(str, out['kmesh']))} ({out['kpts']} k-points)"
        )
        if out["preset_note"]:
            print(f"  preset {name}: {out['preset_note']}")
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
