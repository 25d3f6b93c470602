"""The results folder: ``results.json``, ``summary.md`` and ``forest.png``.

Each file is written to a temporary name and renamed into place, so an interrupted run never
leaves a half-written result beside a good one.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from functools import cache
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from .errors import DmcaError, os_reason

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .config import ExperimentConfig
    from .runner import RunSummary


@cache
def _umask() -> int:
    # os.umask can only be read by setting it: do that once, before worker threads write files
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_file_mode(path: Path) -> int:
    """The mode ``open(path, "w")`` would leave: the file's own if it exists, else 0666 - umask.
    (mkstemp creates 0600, which would make results unreadable to the rest of a team.)"""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def atomic_write(path: Path, data: bytes) -> None:
    """Replace the file at ``path`` whole with ``data`` (a reader sees the old file or the new).

    A symlink's target is replaced, not the link. What is not a regular file is written to, never
    replaced: ``--out /dev/null`` run as root used to swap the device for a regular file."""
    path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        with path.open("wb") as fh:  # a device or a FIFO (a folder raises IsADirectoryError)
            fh.write(data)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, _new_file_mode(path))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output_dir(path: Path) -> None:
    """Prove, before any step runs, that the results folder will take files: one that cannot be
    written would otherwise fail only after the whole run. Creates nothing (a run refused later
    by its pre-flight check leaves no empty folder): probes the folder, or the nearest existing
    folder above it that the run will create it in, with a temporary file. Raises OSError."""
    probe = Path(os.path.abspath(path))
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        if probe == Path(os.path.abspath(path)):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(probe))
    fd, tmp = tempfile.mkstemp(prefix=".dmca-write-check.", dir=probe)
    os.close(fd)
    os.unlink(tmp)


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
    study_label = study_labels(rows)
    lines = [
        f"# {payload['experiment']} — DMCA results",
        "",
        f"- run `{payload['run_id']}`, config `{payload['config']}`, estimator `{payload['estimator']}`",
        f"- {payload['steps_ok']} of {payload['steps']} steps succeeded; started {payload['started']}, "
        f"finished {payload['finished']}",
        f"- telemetry: `{payload['telemetry']}`",
        "",
        "| study | step | effect of | effect | 95% CI | truth | in CI | reliability | SR9 | DI2 | adjustment set |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["status"] != "ok":
            lines.append(
                f"| {study_label(r)} | {r['step']} | {_effect_of(r)} | failed: {r.get('error', '')} | | | | | | | |"
            )
            continue
        truth = r.get("truth", {}).get("effect") if r.get("truth") else None
        lines.append(
            f"| {study_label(r)} | {r['step']} | {_effect_of(r)} | {_effect_cell(r)} | "
            f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]{_given_discovered(r)} | {_fmt(truth)} | "
            f"{_fmt(r.get('truth_in_ci'))} | "
            f"{_fmt(r['reliability_score'], 3)} | {_fmt(r['SR9'], 3)} | {_fmt(r['DI2'], 3)} | "
            f"{', '.join(r['adjustment_set']) or '∅'} |"
        )
    if any(r["status"] == "ok" and r.get("graph_source") == "discovered" for r in rows):
        lines += [
            "",
            "† On a discovered graph: the interval is conditional on the graph PC found and on the "
            "adjustment set read from it; it leaves out the uncertainty of discovery, and a graph "
            "PC got wrong gives a narrow interval around a wrong effect (docs/metrics.md). Give the "
            "graph where it is known.",
        ]
    if any(r["status"] == "ok" and r.get("ambiguous") for r in rows):
        lines += [
            "",
            "An effect marked ambiguous comes from a discovered graph that leaves some of the "
            "treatment's parents unoriented: each admissible parent set gives an effect (IDA), the "
            "range shown spans them all (`effect_set` in results.json). The headline is the smallest "
            "in magnitude among the sets that can be fitted; a 0 in the range is a DAG in which the "
            "outcome causes the treatment (no effect). Its reliability and interval are those of "
            "the headline alone; give the graph to get one answer.",
        ]
    warned = warnings_by_study(rows)
    if warned:
        lines += ["", "## Warnings", ""]
        for (study, warning), steps in warned.items():
            lines.append(
                f"- {study}, step{'s' if len(steps) > 1 else ''} {', '.join(map(str, steps))}: {warning}"
            )
    lines += ["", "Definitions: docs/metrics.md. Plot: `forest.png`.", ""]
    return "\n".join(lines)


def warnings_by_study(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[int]]:
    """Each (study, warning) of results rows with the steps that gave it, in first-seen order:
    a warning about a study's data is said once, not once per step."""
    warned: dict[tuple[str, str], list[int]] = {}
    study_label = study_labels(rows)
    for r in rows:
        for warning in r.get("warnings", ()):
            warned.setdefault((study_label(r), warning), []).append(r["step"])
    return warned


def study_labels(rows: list[dict[str, Any]]) -> Callable[[dict[str, Any]], str]:
    """How the summary and the forest plot name a row's study: its label, with an unnamed
    ``csv`` study's file (``csv: /long/path/halos.csv``) shortened to its name when no other
    file of the run has that name (``a/halos.csv`` and ``b/halos.csv`` keep their paths)."""
    paths = {r["data"] for r in rows if r.get("data")}
    names = Counter(PurePath(p).name for p in paths)

    def label(r: dict[str, Any]) -> str:
        data = r.get("data")
        head = f"{r['domain']}: {data}"
        if data is None or not r["study"].startswith(head) or names[PurePath(data).name] > 1:
            return r["study"]
        return f"{r['domain']}: {PurePath(data).name}{r['study'][len(head) :]}"

    return label


def effect_range(r: dict[str, Any]) -> tuple[float, float] | None:
    """The smallest and largest admissible effect of an ambiguous row, else ``None``."""
    effects = [e for e in r.get("effect_set") or () if e is not None]
    if not r.get("ambiguous") or not effects:
        return None
    return min(effects), max(effects)


def _given_discovered(r: dict[str, Any]) -> str:
    """The mark of an interval that holds only given the discovered graph (see the table's note)."""
    return " †" if r.get("graph_source") == "discovered" else ""


def _effect_cell(r: dict[str, Any]) -> str:
    """The headline effect; for an ambiguous one, the range every admissible parent set spans:
    the headline alone (the smallest magnitude) can be far from, even opposite to, the truth."""
    span = effect_range(r)
    if span is None:
        return _fmt(r["causal_effect"])
    n = len(r["effect_set"])
    return f"{_fmt(r['causal_effect'])} (ambiguous: {n} admissible, {_fmt(span[0])} … {_fmt(span[1])})"


def _effect_of(r: dict[str, Any]) -> str:
    """``T → Y, t0 → t1``: what the effect column measures (a failed step's row has no outcome)."""
    iv = r.get("intervention") or {}
    if "treatment" not in iv:
        return ""
    target = f" → {r['outcome']}" if "outcome" in r else ""
    return f"{iv['treatment']}{target}, {_fmt(iv['t0'])} → {_fmt(iv['t1'])}"


# the forest plot's layout, in inches: fixed margins instead of matplotlib's tight_layout (which
# measures every label of every panel: seconds for a large sweep)
_WIDTH, _RIGHT, _TOP, _BOTTOM = 8.0, 0.25, 0.15, 0.35
_ROW, _PANEL_EXTRA, _GAP = 0.22, 0.35, 0.55  # per row; per panel (its own x axis); title room
_LEGEND = 0.15  # the legend's row above the first panel: inside a panel of a few rows it hid them
_CHAR = 0.075  # width of a label character at 8 pt
MAX_ROWS = 120  # per panel: a taller plot is slow to draw and open; results.json has every row
MAX_PANELS = 40  # ~25 ms each to draw; a sweep over more distinct effects is in results.json


def forest_panels(results: list[dict[str, Any]]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """The successful steps by (domain, hypothesis, treatment, outcome, t0, t1), in first-seen order."""
    panels: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if r["status"] == "ok":
            panels[(r["domain"], r["hypothesis"], r["treatment"], r["outcome"], r["t0"], r["t1"])].append(r)
    return panels


_BLUE, _ORANGE, _RED = "#1f5fa8", "#d35400", "#c0392b"
_ESTIMATE, _HEADLINE = "estimate, 95% CI", "ambiguous: IDA headline, 95% CI"
_RANGE, _TRUTH = "range of admissible effects", "truth"
_LEGEND_ORDER = (_ESTIMATE, _HEADLINE, _RANGE, _TRUTH)


def _panel_name(domain: str, hypothesis: str, rows: list[dict[str, Any]]) -> str:
    """``domain/hypothesis``; for ``csv`` (no hypothesis) the data files the panel's rows read."""
    files = list(dict.fromkeys(PurePath(r["data"]).name for r in rows if r.get("data")))
    if not files:
        return f"{domain}/{hypothesis}"
    more = f" +{len(files) - 3} more" if len(files) > 3 else ""
    return f"{domain}: {', '.join(files[:3])}{more}"


def forest_figure(payload: dict[str, Any]) -> Figure:
    """The forest plot's figure: one panel per (domain, hypothesis, treatment, outcome, t0, t1) —
    the same effect, on one x axis — with a row per study step: the effect and its 95% CI, and the
    true effect as a red tick where the domain knows it. An ambiguous estimate (IDA) is a hollow
    marker on a dashed line spanning its admissible effects, each a small bar: its headline is
    only the smallest of them. Hypotheses get panels of their own because their effects differ by
    orders of magnitude (direct_lab: DarkPhoton's ~950 counts made WIMP's ~110 a speck). A sweep
    of one effect over seeds or params still gives one tall panel, not a panel per study
    (matplotlib pays ~25 ms for every panel)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = forest_panels(payload["results"])
    hidden = len(panels) - MAX_PANELS
    if hidden > 0:
        panels = dict(list(panels.items())[:MAX_PANELS])
    left_out = {k: len(rows) - MAX_ROWS for k, rows in panels.items() if len(rows) > MAX_ROWS}
    for k in left_out:
        panels[k] = panels[k][:MAX_ROWS]
    study_label = study_labels(payload["results"])
    labels = {k: [f"{study_label(r)} · step {r['step']}" for r in rows] for k, rows in panels.items()}
    left = 0.3 + _CHAR * max((len(t) for ts in labels.values() for t in ts), default=10)
    heights = [_PANEL_EXTRA + _ROW * len(rows) for rows in panels.values()] or [1.0]
    band = _LEGEND if panels else 0.0
    total = _TOP + band + sum(h + _GAP for h in heights) + _BOTTOM
    fig = plt.figure(figsize=(_WIDTH + left, total))
    x0, width = left / (_WIDTH + left), 1 - (left + _RIGHT) / (_WIDTH + left)
    top = total - _TOP - band  # inches from the bottom: panels are stacked downwards
    axes = []
    for h in heights:
        top -= _GAP
        axes.append(fig.add_axes((x0, (top - h) / total, width, h / total)))
        top -= h
    for ax, (key, rows) in zip(axes, panels.items(), strict=False):
        domain, hypothesis, treatment, outcome, t0, t1 = key
        ys = list(range(len(rows)))[::-1]  # the first row on top
        spans = [effect_range(r) for r in rows]
        for hollow in (False, True):
            pick = [i for i, span in enumerate(spans) if (span is not None) == hollow]
            if not pick:
                continue
            eff = [rows[i]["causal_effect"] for i in pick]
            err = [
                [rows[i]["causal_effect"] - rows[i]["ci_low"] for i in pick],
                [rows[i]["ci_high"] - rows[i]["causal_effect"] for i in pick],
            ]
            ax.errorbar(
                eff,
                [ys[i] for i in pick],
                xerr=err,
                fmt="o",
                ms=4 if not hollow else 5,
                mfc="white" if hollow else _BLUE,
                color=_BLUE,
                capsize=2,
                label=_HEADLINE if hollow else _ESTIMATE,
            )
        # all of a panel's ranges as one line broken by NaNs (two artists, not two per row: a sweep)
        ambiguous = [(span, ys[i], rows[i]["effect_set"]) for i, span in enumerate(spans) if span]
        if ambiguous:
            nan = float("nan")
            sx = [x for span, _, _ in ambiguous for x in (*span, nan)]
            sy = [v for _, y, _ in ambiguous for v in (y, y, nan)]
            ax.plot(sx, sy, ls="--", lw=1, color=_ORANGE, zorder=1, label=_RANGE)
            each = [(e, y) for _, y, effects in ambiguous for e in effects if e is not None]
            ex, ey = zip(*each, strict=True)
            ax.plot(ex, ey, ls="none", marker="|", ms=7, mew=1.2, color=_ORANGE, zorder=1)
        truth = [(r["truth"]["effect"], y) for r, y in zip(rows, ys, strict=True) if r.get("truth")]
        if truth:
            tx, ty = zip(*truth, strict=True)
            ax.plot(tx, ty, ls="none", marker="|", ms=12, mew=2, color=_RED, label=_TRUTH)
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_yticks(ys, labels[key])
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.xaxis.set_major_locator(MaxNLocator(6))
        more = left_out.get(key)
        note = f" (first {MAX_ROWS} steps; {more} more in results.json)" if more else ""
        what = f"effect of {treatment} {_fmt(t0)} → {_fmt(t1)} on {outcome}"
        ax.set_title(f"{_panel_name(domain, hypothesis, rows)}: {what}{note}", fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
    if hidden > 0:
        # in the top margin, right-aligned, above the legend's row
        fig.text(
            0.99,
            1 - 0.05 / total,
            f"{hidden} more effects (panels) are in results.json",
            fontsize=8,
            ha="right",
            va="top",
        )
    if panels:
        # each kind of mark once, from whichever panel has it (an ambiguous row may be in any)
        found: dict[str, Any] = {}
        for ax in axes:
            for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
                found.setdefault(text, handle)
        handles = {text: found[text] for text in _LEGEND_ORDER if text in found}
        fig.legend(
            handles.values(),
            handles.keys(),
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(x0, 1 - _TOP / total),
            ncols=len(handles),
            frameon=False,
            borderaxespad=0,
            handletextpad=0.4,
            columnspacing=1.5,
        )
    else:
        axes[0].text(0.5, 0.5, "no successful study", ha="center", va="center")
    return fig


def forest_plot(payload: dict[str, Any], path: Path) -> None:
    """Draw :func:`forest_figure` into ``path`` (PNG), replacing it whole."""
    import matplotlib.pyplot as plt

    fig = forest_figure(payload)
    png = io.BytesIO()
    try:
        fig.savefig(png, format="png", dpi=110)
        atomic_write(path, png.getvalue())
    finally:
        plt.close(fig)


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
    target = out / "results.json"
    try:
        atomic_write(target, (json.dumps(payload, indent=2, allow_nan=False) + "\n").encode())
        target = out / "summary.md"
        atomic_write(target, summary_markdown(payload).encode())
        target = out / "forest.png"
        forest_plot(payload, target)
    except OSError as exc:  # a full disk, a folder removed mid-run: one line, not a traceback
        raise DmcaError(
            f"cannot write {target}: {os_reason(exc, target)} (the steps ran; their telemetry is in "
            f"{summary.telemetry_path})"
        ) from None
    return payload
