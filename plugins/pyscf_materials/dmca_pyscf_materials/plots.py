"""PNG figures of a silicon form factor: f_crys heat map, dR/dQ bars, reach beside published points."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dmca_core.default_plugins.tabulated_materials import shipped_path
from dmca_core.physics import electron_rates as er
from dmca_core.physics.halo import StandardHalo
from dmca_core.types import FormFactor

from .presets import preset_note

REFERENCE_FILE = "si_form_factor.reference.json"


def published() -> dict[str, Any]:
    """The published figures (with citations) that docs/materials.md compares against."""
    return json.loads(shipped_path(REFERENCE_FILE).read_text())


def _halo(d: dict[str, float]) -> StandardHalo:
    return StandardHalo(d["rho_gev_cm3"], d["v0_km_s"], d["v_earth_km_s"], d["v_esc_km_s"])


def reach_comparison(ff: FormFactor) -> list[dict[str, float]]:
    """Q >= 1 reach (3 events, 1 kg-year) against the published QEdark per-Q rates, per mass.

    Published reach = 3 sigma_ref / (sum of the published Q bins); ours uses the same halo, gap and
    pair energy as the publication.
    """
    ref = published()["qedark_heavy_per_q"]
    halo = _halo(ref["halo"])
    out = []
    for row in ref["rows"]:
        pub_sigma = 3 * ref["sigma_e_cm2"] / sum(row["rate_per_q"])
        ours = er.reach_sigma(
            ff,
            row["m_chi_mev"],
            halo=halo,
            band_gap_ev=ref["band_gap_ev"],
            pair_energy_ev=ref["pair_energy_ev"],
        )
        out.append(
            {
                "m_chi_mev": row["m_chi_mev"],
                "published_cm2": pub_sigma,
                "ours_cm2": ours,
                "ratio": ours / pub_sigma,
            }
        )
    return out


def preset_caption(ff: FormFactor) -> str:
    """``preset NAME`` and, when the preset has one, what it is good for: every figure carries it,
    so a figure from the fast preset is not read as the reference result."""
    name = ff.metadata.get("preset")
    if name is None:
        return "tabulated form factor"
    note = preset_note(name)
    return f"preset {name}: {note}" if note else f"preset {name}"


def _save(fig: Any, path: Path, paths: list[Path]) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    paths.append(path)


def write_plots(ff: FormFactor, out_dir: Path) -> list[Path]:
    """Write the three PNGs into ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    x = np.asarray(ff.q_ev) / (er.ALPHA * er.M_E_MEV * 1e6)
    caption = preset_caption(ff)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    with np.errstate(divide="ignore"):
        img = np.log10(np.where(ff.f2 > 0, ff.f2, np.nan)).T
    top = float(np.nanmax(img)) if np.isfinite(img).any() else 0.0
    # five decades: below that the coarse-mesh numerics, not the physics, set the colour
    mesh = ax.pcolormesh(x, ff.e_ev, img, shading="nearest", cmap="viridis", vmin=top - 5, vmax=top)
    fig.colorbar(mesh, label=r"$\log_{10}|f_{\rm crys}(q,E)|^2$")
    ax.set(xlabel=r"$q\ /\ \alpha m_e$", ylabel="E (eV)", title=f"silicon crystal form factor\n{caption}")
    _save(fig, out_dir / "f_crys_heatmap.png", paths)

    ref = published()["qedark_heavy_per_q"]
    halo = _halo(ref["halo"])
    fig, axes = plt.subplots(1, len(ref["rows"]), figsize=(12, 3.8))
    for ax, row in zip(axes, ref["rows"], strict=True):
        ours = er.rate_per_q(
            ff,
            row["m_chi_mev"],
            ref["sigma_e_cm2"],
            q_max=5,
            halo=halo,
            band_gap_ev=ref["band_gap_ev"],
            pair_energy_ev=ref["pair_energy_ev"],
        )
        qs = np.arange(1, 6)
        pub = np.zeros(5)
        pub[: len(row["rate_per_q"])] = row["rate_per_q"]
        ax.bar(qs - 0.2, ours, width=0.4, label="this work")
        ax.bar(qs + 0.2, pub, width=0.4, label="QEdark (Essig 2016)")
        ax.set(yscale="log", xlabel="Q (electrons)", title=f"m = {row['m_chi_mev']:g} MeV")
    axes[0].set_ylabel(r"events / kg-year ($\bar\sigma_e=10^{-37}$ cm$^2$)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"silicon dR/dQ, heavy mediator ({caption})", y=1.03)  # clear of the panel titles
    _save(fig, out_dir / "rate_per_q.png", paths)

    masses = np.logspace(np.log10(3), 3, 40)
    kw = {"halo": halo, "band_gap_ev": ref["band_gap_ev"], "pair_energy_ev": ref["pair_energy_ev"]}
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for thr in (1, 2):
        ax.plot(masses, er.reach_curve(ff, masses, q_threshold=thr, **kw), label=f"this work, Q >= {thr}")
    cmp = reach_comparison(ff)
    ax.plot(
        [c["m_chi_mev"] for c in cmp],
        [c["published_cm2"] for c in cmp],
        "ko",
        label="QEdark (Essig 2016), Q >= 1",
    )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel=r"$m_\chi$ (MeV)",
        ylabel=r"$\bar\sigma_e$ (cm$^2$), 3 events / kg-year",
        title=f"silicon reach, heavy mediator\n{caption}",
    )
    ax.legend(fontsize=8)
    _save(fig, out_dir / "reach.png", paths)
    return paths
