"""The results folder: ``results.json``, ``summary.md`` and ``forest.png``.

Each file is written to a temporary name and renamed into place, so an interrupted run never
leaves a half-written result beside a good one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ExperimentConfig
    from .runner import RunSummary


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def summary_markdown(payload: dict[str, Any]) -> str:
    rows = payload["results"]
    lines = [
        f"# {payload['experiment']} — DMCA results",
        "",
        f"- run `{payload['run_id']}`, config `{payload['config']}`, estimator `{payload['estimator']}`",
        f"- {payload['steps_ok']} of {payload['steps']} steps succeeded; started {payload['started']}, "
        f"finished {payload['finished']}",
        f"- telemetry: `{payload['telemetry']}`",
        "",
        "| study | step | effect | 95% CI | truth | in CI | reliability | SR9 | DI2 | adjustment set |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['study']} | {r['step']} | failed: {r.get('error', '')} | | | | | | | |")
            continue
        truth = r.get("truth", {}).get("effect") if r.get("truth") else None
        flag = " (ambiguous)" if r.get("ambiguous") else ""
        lines.append(
            f"| {r['study']} | {r['step']} | {_fmt(r['causal_effect'])}{flag} | "
            f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] | {_fmt(truth)} | {_fmt(r.get('truth_in_ci'))} | "
            f"{_fmt(r['reliability_score'], 3)} | {_fmt(r['SR9'], 3)} | {_fmt(r['DI2'], 3)} | "
            f"{', '.join(r['adjustment_set']) or '∅'} |"
        )
    lines += ["", "Definitions: docs/metrics.md. Plot: `forest.png`.", ""]
    return "\n".join(lines)


# the forest plot's layout, in inches: fixed margins instead of matplotlib's tight_layout, which
# measures every label of every panel and took 2 of the 3 s a 64-study plot cost
_WIDTH, _LEFT, _RIGHT, _TOP, _BOTTOM = 7.5, 1.0, 0.25, 0.15, 0.35
_ROW, _PANEL_EXTRA, _GAP = 0.24, 0.35, 0.45  # per step; per panel (its own x axis); title room


def forest_plot(payload: dict[str, Any], path: Path) -> None:
    """One panel per study: each step's effect with its 95% CI, the true effect as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    by_study: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in payload["results"]:
        if r["status"] == "ok":
            by_study[r["study"]].append(r)
    heights = [_PANEL_EXTRA + _ROW * len(rows) for rows in by_study.values()] or [1.0]
    total = _TOP + sum(h + _GAP for h in heights) + _BOTTOM
    fig = plt.figure(figsize=(_WIDTH, total))
    left, width = _LEFT / _WIDTH, 1 - (_LEFT + _RIGHT) / _WIDTH
    top = total - _TOP  # inches from the bottom: panels are stacked downwards
    axes = []
    for h in heights:
        top -= _GAP
        axes.append(fig.add_axes((left, (top - h) / total, width, h / total)))
        top -= h
    for ax, (study, rows) in zip(axes, by_study.items(), strict=False):
        ys = list(range(len(rows)))
        eff = [r["causal_effect"] for r in rows]
        lo = [r["causal_effect"] - r["ci_low"] for r in rows]
        hi = [r["ci_high"] - r["causal_effect"] for r in rows]
        ax.errorbar(eff, ys, xerr=[lo, hi], fmt="o", color="#1f5fa8", capsize=3, label="estimate, 95% CI")
        truths = [r["truth"]["effect"] for r in rows if r.get("truth")]
        if truths:
            ax.axvline(sum(truths) / len(truths), color="#c0392b", ls="--", lw=1, label="truth")
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_yticks(ys, [f"step {r['step']}" for r in rows])
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_title(f"{study}: do({rows[0]['treatment']}) → {rows[0]['outcome']}", fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
    if by_study:
        axes[0].legend(fontsize=7, loc="best")
    else:
        axes[0].text(0.5, 0.5, "no successful study", ha="center", va="center")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def write_outputs(
    summary: RunSummary, cfg: ExperimentConfig, *, config_path: str, started: str, finished: str
) -> dict:
    results = [o.result for o in sorted(summary.outcomes, key=lambda o: o.index)]
    payload = {
        "experiment": cfg.experiment,
        "run_id": summary.run_id,
        "config": config_path,
        "estimator": summary.estimator,
        "seed": cfg.seed,
        "started": started,
        "finished": finished,
        "telemetry": str(summary.telemetry_path),
        "steps": len(results),
        "steps_ok": sum(r["status"] == "ok" for r in results),
        "results": results,
    }
    out = summary.out_dir
    atomic_write(out / "results.json", (json.dumps(payload, indent=2, allow_nan=False) + "\n").encode())
    atomic_write(out / "summary.md", summary_markdown(payload).encode())
    forest_plot(payload, out / "forest.png")
    return payload
