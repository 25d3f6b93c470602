"""The results folder's summary.md and forest plot: what they show of ambiguous estimates and of
studies of the user's own data (the csv domain)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from dmca_core.cli import main

TRUE_EFFECT = 0.8


def _confounded_csv(path: Path, n: int = 3000) -> None:
    """w confounds t -> y; v -> y orients t -> y and w -> y, but leaves w - t unoriented: PC finds
    two admissible parent sets of t, {} (biased: cov(t, y) / var(t) = (0.8 * 2 - 2) / 2 = -0.2)
    and {w} (the truth, 0.8)."""
    rng = np.random.default_rng(11)
    w, u, v, e = rng.standard_normal((4, n))
    t = w + u
    y = TRUE_EFFECT * t - 2.0 * w + v + 0.5 * e
    np.savetxt(path, np.column_stack([w, t, v, y]), delimiter=",", header="w,t,v,y", comments="", fmt="%.6f")


def _run(tmp_path: Path, studies: str) -> tuple[dict, str]:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        f"experiment: own\nseed: 1\nestimator: fallback\ntelemetry: {{path: {tmp_path / 't.jsonl'}}}\n"
        f"studies:\n{studies}"
    )
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    return json.loads((out / "results.json").read_text()), (out / "summary.md").read_text()


@pytest.fixture
def discovered(fallback, tmp_path: Path) -> tuple[dict, str, Path]:
    data = tmp_path / "halos.csv"
    _confounded_csv(data)
    payload, summary = _run(
        tmp_path,
        f"  - {{domain: csv, params: {{path: {data}}}, treatment: t, outcome: y, graph: discover}}\n",
    )
    return payload, summary, data


def test_an_ambiguous_effect_shows_every_admissible_effect_in_the_summary(discovered) -> None:
    payload, summary, _ = discovered
    (row,) = payload["results"]
    # the set holds the biased effect and the truth; the headline is the smaller, biased one
    assert row["ambiguous"] and len(row["effect_set"]) == 2
    low, high = sorted(row["effect_set"])
    assert low == pytest.approx(-0.2, abs=0.05) and high == pytest.approx(TRUE_EFFECT, abs=0.05)
    assert row["causal_effect"] == low
    assert f"| {row['causal_effect']:.4g} (ambiguous: 2 admissible, {low:.4g} … {high:.4g}) |" in summary
    assert "An effect marked ambiguous" in summary


def test_the_forest_plot_marks_an_ambiguous_effect_and_spans_its_set(discovered, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from dmca_core.report import forest_figure

    payload, _, _ = discovered
    (row,) = payload["results"]
    given = {**row, "study": "given", "ambiguous": False, "effect_set": [row["effect_set"][1]]}
    # the other parent set's effect as a given graph's (unambiguous) estimate, its CI as wide
    given["causal_effect"] = row["effect_set"][1]
    given["ci_low"], given["ci_high"] = given["causal_effect"] - 0.04, given["causal_effect"] + 0.04
    fig = forest_figure({"results": [row, given]})
    try:
        ax = fig.axes[0]
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert legend == [
            "estimate, 95% CI",
            "ambiguous: IDA headline, 95% CI",
            "range of admissible effects",
        ]
        lines = {line.get_label(): line for line in ax.get_lines()}
        span = lines["range of admissible effects"]
        low, high = sorted(row["effect_set"])
        assert list(span.get_xdata()[:2]) == [low, high] and list(span.get_ydata()[:2]) == [1, 1]  # top row
        # the ambiguous headline is hollow, the unambiguous estimate filled
        markers = {c.get_label(): c.lines[0] for c in ax.containers}
        assert markers["ambiguous: IDA headline, 95% CI"].get_markerfacecolor() == "white"
        assert markers["estimate, 95% CI"].get_markerfacecolor() != "white"
        assert list(markers["ambiguous: IDA headline, 95% CI"].get_xdata()) == [row["causal_effect"]]
    finally:
        plt.close(fig)


def test_an_unnamed_csv_study_is_named_by_its_data_file(discovered) -> None:
    import matplotlib.pyplot as plt

    from dmca_core.report import forest_figure

    payload, summary, data = discovered
    (row,) = payload["results"]
    assert row["study"] == f"csv: {data}" and row["data"] == str(data)
    assert "| csv: halos.csv | 1 |" in summary and "csv/-" not in summary
    fig = forest_figure(payload)
    try:
        ax = fig.axes[0]
        assert ax.get_title(loc="left").startswith("csv: halos.csv: effect of t 0 → 1 on y")
        assert [t.get_text() for t in ax.get_yticklabels()] == ["csv: halos.csv · step 1"]
    finally:
        plt.close(fig)


def test_csv_rows_record_their_file_and_a_named_study_keeps_its_name(fallback, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from dmca_core.report import forest_figure

    files = [tmp_path / f"{x}.csv" for x in "abc"]
    for k, f in enumerate(files):
        _confounded_csv(f, 400 + 100 * k)
    given = "graph: 'w->t,w->y,t->y,v->y'"
    studies = [
        f"  - {{name: site A, domain: csv, params: {{path: {files[0]}}}, treatment: t, outcome: y, {given}}}\n"
    ]
    studies += [
        f"  - {{domain: csv, params: {{path: {f}}}, treatment: t, outcome: y, {given}}}\n" for f in files[1:]
    ]
    payload, summary = _run(tmp_path, "".join(studies))
    rows = payload["results"]
    # unnamed studies of other files are labelled by them (so SIDRCE tells them apart across runs)
    assert [(r["study"], r["data"]) for r in rows] == [
        ("site A", str(files[0])),
        (f"csv: {files[1]}", str(files[1])),
        (f"csv: {files[2]}", str(files[2])),
    ]
    assert list(rows[0])[:4] == ["study", "domain", "hypothesis", "data"]
    for label in ("site A", "csv: b.csv", "csv: c.csv"):
        assert f"| {label} | 1 |" in summary
    # given graph, one adjustment set: not ambiguous, and the summary shows no range
    assert all(not r["ambiguous"] for r in rows) and "ambiguous" not in summary
    for r in rows:  # the given graph's adjustment set {w} is the right one (coverage: test_coverage.py)
        assert abs(r["causal_effect"] - TRUE_EFFECT) < 4 * r["se"]
    fig = forest_figure(payload)
    try:
        (ax,) = fig.axes  # one effect, three files: one panel, titled by its files
        assert ax.get_title(loc="left") == "csv: a.csv, b.csv, c.csv: effect of t 0 → 1 on y"
    finally:
        plt.close(fig)


def test_rows_of_other_domains_carry_no_data_field(hello, tmp_path: Path) -> None:
    payload, summary = _run(tmp_path, "  - {domain: hello_linear, treatment: X, outcome: Y}\n")
    (row,) = payload["results"]
    assert "data" not in row and row["study"] == "hello_linear/toy"
    assert "| hello_linear/toy | 1 |" in summary


def test_files_of_one_name_in_other_folders_keep_their_paths(fallback, tmp_path: Path) -> None:
    files = [tmp_path / d / "halos.csv" for d in ("a", "b")]
    for k, f in enumerate(files):
        f.parent.mkdir()
        _confounded_csv(f, 400 + 100 * k)
    given = "graph: 'w->t,w->y,t->y,v->y'"
    studies = "".join(
        f"  - {{domain: csv, params: {{path: {f}}}, treatment: t, outcome: y, {given}}}\n" for f in files
    )
    payload, summary = _run(tmp_path, studies)
    for f in files:  # "csv: halos.csv" twice would not tell them apart
        assert f"| csv: {f} | 1 |" in summary
    assert "csv: halos.csv" not in summary


def test_an_output_that_is_not_a_regular_file_is_written_to_not_replaced(tmp_path: Path) -> None:
    # `dmca simulate … --out /dev/null` run as root replaced the device with a regular file; a FIFO
    # stands in for the device here (a test must not risk the machine's /dev/null)
    import stat
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    try:
        assert (
            main(["simulate", "cosmology", "--hypothesis", "WIMP", "--rows", "50", "--out", str(fifo)]) == 0
        )
    finally:
        reader.join(timeout=30)
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and got[0].count(b"\n") == 51
    # a symlink: its target is replaced, the link stays
    real = tmp_path / "data" / "sim.csv"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    assert main(["simulate", "cosmology", "--hypothesis", "WIMP", "--rows", "50", "--out", str(link)]) == 0
    assert link.is_symlink() and real.read_text().count("\n") == 51


def test_intervals_on_a_discovered_graph_are_marked_as_given_that_graph(discovered, fallback, capsys) -> None:
    payload, summary, data = discovered
    (row,) = payload["results"]
    assert row["graph_source"] == "discovered"
    assert f"[{row['ci_low']:.4g}, {row['ci_high']:.4g}] † |" in summary
    assert "† On a discovered graph" in summary
    argv = ["estimate", "--data", str(data), "--treatment", "t", "--outcome", "y", "--estimator", "fallback"]
    assert main([*argv, "--discover"]) == 0
    assert "(given the discovered graph)" in capsys.readouterr().out
    assert main([*argv, "--graph", "w->t,w->y,t->y,v->y"]) == 0
    out = capsys.readouterr().out
    assert "95% CI" in out and "discovered" not in out
