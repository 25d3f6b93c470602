"""A group's causal-effect figures are one study's or none: records of several studies (other
study label, intervention or outcome) in one (domain, hypothesis) group give no median or latest
effect, say why, keep their scores, and leave FTI, grades and λ alone; every reading path agrees."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path
from typing import Any

import pytest
from live_server import answering_sidrce
from prometheus_client.parser import text_string_to_metric_families
from test_sidrce_collector import FakePlugin, envelope, line
from test_sidrce_fastpaths import split_and_whole

from sidrce import collector as C
from sidrce.cli import main
from sidrce.collector import collect


def step(
    i: int,
    effect: float | None,
    *,
    study: str | None = "a.csv",
    iv: str = "do(x=1 vs 0)",
    outcome: str | None = "y",
    d: str = "csv",
    h: str = "-",
) -> dict[str, Any]:
    """One step's record as DMCA writes it (``study``/``outcome`` None: an older record)."""
    r: dict[str, Any] = {
        "domain": d,
        "hypothesis": h,
        "step": i,
        "intervention": iv,
        "infra_cost_usd": 0.001 * (1 + i % 7),
        "qps": 40.0 + i % 5,
        "latency_p95_ms": 20.0 + i % 3,
        "ts": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
        "run_id": "r1",
        "schema_version": 1,
    }
    if study is not None:
        r["study"] = study
    if outcome is not None:
        r["outcome"] = outcome
    if effect is not None:
        r.update(causal_effect=effect, ci_low=effect - 0.1, ci_high=effect + 0.1)
        r.update(reliability_score=(i % 4) / 4, SR9=(i % 9) / 9, DI2=0.5 + i % 3 / 10)
    return r


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(line(r) for r in records))
    return path


def group(report: dict[str, Any], d: str = "csv", h: str = "-") -> dict[str, Any]:
    (g,) = [g for g in report["groups"] if (g["domain"], g["hypothesis"]) == (d, h)]
    return g


def without_effects(report: dict[str, Any]) -> dict[str, Any]:
    """The report but for what the study fields may change: north_star and the series' effect."""
    out = json.loads(json.dumps(report))
    for g in out["groups"]:
        del g["north_star"]
        for p in g["series"]:
            p.pop("causal_effect", None)
    return out


def test_two_studies_with_other_interventions_get_no_effect_figures(tmp_path: Path) -> None:
    a = [step(i, 1.0 + 0.1 * (i % 3)) for i in range(6)]  # effects near 1
    b = [step(i, 50.0 + i, study="b.csv", iv="do(z=1 vs 0)") for i in range(6, 10)]  # near 50
    other = [step(i, -0.3, d="hello_linear", h="toy", study="hello_linear/toy") for i in range(5)]
    records = a + b + other
    report = collect([write(tmp_path / "t.jsonl", records)])
    ns = group(report)["north_star"]
    assert ns["effect_studies"] == 2
    assert ns["effects_withheld"] == "mixed: 2 studies (differing study, intervention)"
    assert ns["median_causal_effect"] is None
    assert {k: ns["latest"][k] for k in ("causal_effect", "ci_low", "ci_high")} == dict.fromkeys(
        ("causal_effect", "ci_low", "ci_high")
    )
    assert not [p for p in group(report)["series"] if "causal_effect" in p]
    # the scores stay: medians over all ten records, and the latest record's own
    assert ns["records"] == 10
    assert ns["median_reliability_score"] == statistics.median(r["reliability_score"] for r in a + b)
    assert ns["median_SR9"] == statistics.median(r["SR9"] for r in a + b)
    assert ns["latest"]["SR9"] == b[-1]["SR9"] and ns["latest"]["ts"] == "2026-01-01T00:00:09.000000Z"
    # the other group is one study: its figures are there
    one = group(report, "hello_linear", "toy")["north_star"]
    assert (one["effect_studies"], one["effects_withheld"]) == (1, None)
    assert one["median_causal_effect"] == -0.3 and one["latest"]["causal_effect"] == -0.3
    # FTI, grades, λ, medians, counts and the series' other figures: as if it were one study
    same = [
        dict(r, study="a.csv", intervention="do(x=1 vs 0)") if r["domain"] == "csv" else r for r in records
    ]
    single = collect([write(tmp_path / "one.jsonl", same)])
    assert group(single)["north_star"]["median_causal_effect"] == statistics.median(
        r["causal_effect"] for r in a + b
    )
    assert without_effects(report) == without_effects(single)
    assert group(report)["fti"] is not None and report["lambda"]["days_since_change"] == 0.0


def test_one_study_over_several_steps_keeps_its_effect_figures(tmp_path: Path) -> None:
    effects = [0.8, 0.9, 0.7, 1.1, 0.85]
    records = [step(i, e) for i, e in enumerate(effects)]
    records += [step(9, None, iv="do(w=1 vs 0)", study="c.csv")]  # a failed step of another study
    ns = group(collect([write(tmp_path / "t.jsonl", records)]))["north_star"]
    assert (ns["effect_studies"], ns["effects_withheld"]) == (1, None)
    assert ns["median_causal_effect"] == 0.85
    assert ns["latest"]["causal_effect"] == 0.85 and ns["latest"]["ci_low"] == 0.85 - 0.1


@pytest.mark.parametrize(
    ("keys", "withheld"),
    [
        # records from before study/outcome existed: compared on intervention alone
        ([(None, "do(x=1 vs 0)", None)] * 2, None),
        (
            [(None, "do(x=1 vs 0)", None), (None, "do(x=2 vs 0)", None)],
            "mixed: 2 studies (differing intervention)",
        ),
        # old and new records of one study: the new ones' fields do not clash with absent ones
        ([(None, "do(x=1 vs 0)", None), ("a.csv", "do(x=1 vs 0)", "y")], None),
        (
            [("a.csv", "do(x=1 vs 0)", None), (None, "do(x=1 vs 0)", "y"), ("a.csv", "do(x=1 vs 0)", "y")],
            None,
        ),
        # one label across runs, other outcomes or interventions
        (
            [("csv/-", "do(x=1 vs 0)", "y"), ("csv/-", "do(x=1 vs 0)", "z")],
            "mixed: 2 studies (differing outcome)",
        ),
        (
            [("csv/-", "do(x=1 vs 0)", "y"), (None, "do(x=1 vs 0)", "z")],
            "mixed: 2 studies (differing outcome)",
        ),
        (
            [(None, "do(x=1 vs 0)", "y"), ("a", "do(x=1 vs 0)", None), ("b", "do(t=1 vs 0)", "z")],
            "mixed: 3 studies (differing study, intervention, outcome)",
        ),
    ],
)
def test_records_compare_on_the_fields_they_carry(
    tmp_path: Path, keys: list[tuple[str | None, str, str | None]], withheld: str | None
) -> None:
    records = [step(i, float(i), study=st, iv=iv, outcome=oc) for i, (st, iv, oc) in enumerate(keys)]
    ns = group(collect([write(tmp_path / "t.jsonl", records)]))["north_star"]
    assert ns["effects_withheld"] == withheld
    if withheld is None:
        assert ns["effect_studies"] == 1
        assert ns["median_causal_effect"] == statistics.median(range(len(keys)))
        assert ns["latest"]["causal_effect"] == len(keys) - 1
    else:
        assert ns["effect_studies"] == len(keys)
        assert ns["median_causal_effect"] is None and ns["latest"]["causal_effect"] is None


def many(n: int, seed: int) -> list[dict[str, Any]]:
    """Groups of every kind at random, interleaved: one study (ASCII, taken by the compiled
    scanner), one study with a label the scanner leaves to msgspec, two interventions, old
    records, many distinct labels (past the cap), and a group without effects. The label the
    scanner cannot take comes only in the last third: the scanner reads the rest."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = rng.randrange(6)
        if kind == 1 and i < 2 * n // 3:
            kind = 0
        effect = rng.gauss(0, 1) if rng.random() < 0.9 else None
        if kind == 0:
            r = step(i, effect, d="one", study="lab A")
        elif kind == 1:
            r = step(i, effect, d="label", study="lab/x X→Y")
        elif kind == 2:
            r = step(i, effect, d="two", iv=rng.choice(["do(x=1 vs 0)", "do(x=2 vs 0)"]))
        elif kind == 3:
            r = step(i, effect, d="old", study=None, outcome=None, iv=rng.choice(["-", "-", "do(q=1 vs 0)"]))
        elif kind == 4:
            r = step(i, effect, d="sweep", study=f"run {rng.randrange(40)}")
        else:
            r = step(i, None, d="none", iv=f"do(x={rng.randrange(5)} vs 0)")
        out.append(r)
    return out


def test_every_reading_path_gives_the_same_verdicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plain_reader: str
) -> None:
    monkeypatch.setattr(C, "EFFECT_IDS_MAX", 8)  # the sweep group goes past it
    monkeypatch.setattr(C, "KINDS_MAX", 64)  # the fast paths' lookup table is cleared now and then
    records = many(3 * 4096 + 111, seed=5)
    path = write(tmp_path / "t.jsonl", records)
    scanned = []
    real = C.Aggregator.add_scanned
    monkeypatch.setattr(
        C.Aggregator, "add_scanned", lambda self, *a, **k: scanned.append(real(self, *a, **k)) or scanned[-1]
    )
    two, one = split_and_whole(path, monkeypatch, merged=True)
    # the compiled scanner read most lines, where it is on (the fixture's "C")
    taken = sum(r[0] for r in scanned if r is not None)
    assert taken > 4096 if plain_reader == "C" else taken == 0
    assert two == one
    # the exact path: leading spaces send every line through json.loads and the exact check
    slow = tmp_path / "slow.jsonl"
    slow.write_bytes(b"".join(b" " + line(r) for r in records))
    assert collect([slow]) == one
    verdicts = {
        g["domain"]: (g["north_star"]["effect_studies"], g["north_star"]["effects_withheld"])
        for g in one["groups"]
    }
    assert verdicts == {
        "one": (1, None),
        "label": (1, None),
        "two": (2, "mixed: 2 studies (differing intervention)"),
        "old": (2, "mixed: 2 studies (differing intervention)"),
        "sweep": (9, "mixed: more than 8 studies"),
        "none": (0, None),
    }
    for g in one["groups"]:
        ns = g["north_star"]
        assert (ns["median_causal_effect"] is None) == (
            ns["effects_withheld"] is not None or not ns["records"]
        )


def test_envelopes_give_the_plain_verdicts(tmp_path: Path, use_plugin: Any) -> None:
    use_plugin(FakePlugin())
    records = many(600, seed=6)
    enc = tmp_path / "enc.jsonl"
    enc.write_bytes(b"".join(envelope(k, records[i : i + 50]) for k, i in enumerate(range(0, 600, 50))))
    # the stand-in reader has no feed_block: each record goes through the exact check
    got = collect([enc], environ={"SIDRCE_AES_KEY": "k1"})
    assert got["count"] == 600 and got["groups"] == collect([write(tmp_path / "t.jsonl", records)])["groups"]


def test_metrics_have_no_effect_sample_for_a_mixed_group(tmp_path: Path) -> None:
    records = [step(i, 1.0 + i) for i in range(3)] + [step(3, 9.0, iv="do(z=1 vs 0)")]
    records += [step(i, 2.0, d="solo", study="solo") for i in range(3)]
    path = write(tmp_path / "t.jsonl", records)
    with answering_sidrce(path, {"SIDRCE_POLL_SECONDS": "0.05", "SIDRCE_REFRESH_SECONDS": "0.05"}) as c:
        for _ in range(200):
            report = c.get("/report").json()
            if report.get("count") == len(records):
                break
        assert report["count"] == len(records)
        assert group(report)["north_star"]["effects_withheld"] == "mixed: 2 studies (differing intervention)"
        fams = {f.name: f for f in text_string_to_metric_families(c.get("/metrics").text)}

    def samples(name: str) -> dict[str, float]:
        return {s.labels["domain"]: s.value for s in fams[name].samples}

    assert samples("sidrce_study_causal_effect") == {"solo": 2.0}
    assert samples("sidrce_study_effect_studies") == {"csv": 2.0, "solo": 1.0}
    assert samples("sidrce_study_reliability_score").keys() == {"csv", "solo"}
    assert samples("sidrce_fti").keys() == {"csv", "solo"}


def test_the_text_report_says_mixed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [step(0, 1.5), step(1, -2.0, outcome="z"), step(2, 0.25, d="solo")]
    assert main(["collect", str(write(tmp_path / "t.jsonl", records))]) == 0
    out = capsys.readouterr().out
    rows = [ln.split() for ln in out.splitlines() if "[" in ln]
    assert rows[0][:4] == ["csv", "-", "mixed:", "2"] and rows[0][4] == "[-,"
    assert rows[1][:3] == ["solo", "-", "0.25"]
    # what a shown effect is of; a mixed group shows no effect, so names none
    assert out.endswith("effects of:\n  solo/-: do(x=1 vs 0) on y  (study a.csv)\n")


RUN = """
experiment: tiny
seed: 3
estimator: fallback
telemetry: {{path: {telemetry}}}
studies:
{studies}
"""


def run_dmca(tmp_path: Path, studies: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``dmca run`` of ``studies``: its results.json rows and its telemetry records."""
    from dmca_core.cli import main as dmca

    cfg = tmp_path / "exp.yaml"
    cfg.write_text(RUN.format(telemetry=tmp_path / "tel.jsonl", studies=studies))
    assert dmca(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    return rows, [json.loads(x) for x in (tmp_path / "tel.jsonl").read_text().splitlines()]


def test_dmca_records_name_their_study_and_outcome_and_sidrce_tells_them_apart(
    hello: None, tmp_path: Path
) -> None:
    rows, records = run_dmca(
        tmp_path,
        "  - {domain: hello_linear, hypothesis: toy, treatment: X, outcome: Y, rows: 2000, steps: 2}\n"
        "  - {domain: hello_linear, hypothesis: toy, treatment: X, outcome: Z, rows: 2000, steps: 1, graph: discover}",
    )
    # each record names its study as results.json does, and the outcome it estimates
    key = ("study", "step", "outcome", "causal_effect")
    assert sorted(tuple(r[k] for k in key) for r in records) == sorted(
        tuple(row[k] for k in key) for row in rows
    )
    assert {r["intervention"] for r in records} == {"do(X=1 vs 0)"}
    assert {r["study"] for r in records} == {"hello_linear/toy X→Y", "hello_linear/toy X→Z"}
    ns = group(collect([tmp_path / "tel.jsonl"]), "hello_linear", "toy")["north_star"]
    assert ns["effects_withheld"] == "mixed: 2 studies (differing study, outcome)"
    assert ns["median_causal_effect"] is None and ns["latest"]["causal_effect"] is None
    assert ns["median_reliability_score"] == statistics.median(r["reliability_score"] for r in rows)


def test_one_dmca_study_keeps_its_effect_figures(hello: None, tmp_path: Path) -> None:
    rows, records = run_dmca(
        tmp_path,
        "  - {domain: hello_linear, hypothesis: toy, treatment: X, outcome: Y, rows: 2000, steps: 3}",
    )
    assert {(r["study"], r["outcome"]) for r in records} == {("hello_linear/toy", "Y")}
    ns = group(collect([tmp_path / "tel.jsonl"]), "hello_linear", "toy")["north_star"]
    assert (ns["effect_studies"], ns["effects_withheld"]) == (1, None)
    # what the figures are the effect of, as the records say
    assert ns["effect_of"] == {"study": "hello_linear/toy", "intervention": "do(X=1 vs 0)", "outcome": "Y"}
    assert ns["median_causal_effect"] == statistics.median(r["causal_effect"] for r in rows)
    assert ns["latest"]["causal_effect"] in {r["causal_effect"] for r in rows}


def test_csv_studies_of_other_files_in_other_runs_are_not_pooled(fallback: Any, tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    files = {}
    for name, slope in (("a", 1.0), ("b", 10.0)):  # one treatment and outcome, unlike effects
        x = rng.normal(size=300)
        files[name] = tmp_path / f"{name}.csv"
        np.savetxt(files[name], np.column_stack([x, slope * x + rng.normal(size=300)]),
                   delimiter=",", header="x,y", comments="")  # fmt: skip
    study = "  - {{domain: csv, params: {{path: {}}}, treatment: x, outcome: y, graph: x->y}}"
    run_dmca(tmp_path, study.format(files["a"]))
    ns = group(collect([tmp_path / "tel.jsonl"]))["north_star"]
    assert (ns["effect_studies"], ns["effects_withheld"]) == (1, None)  # a's again: one study
    run_dmca(tmp_path, study.format(files["a"]))
    assert group(collect([tmp_path / "tel.jsonl"]))["north_star"]["effect_studies"] == 1
    _, records = run_dmca(tmp_path, study.format(files["b"]))  # another file, another run
    assert {r["study"] for r in records} == {f"csv: {files['a']}", f"csv: {files['b']}"}
    ns = group(collect([tmp_path / "tel.jsonl"]))["north_star"]
    assert ns["effects_withheld"] == "mixed: 2 studies (differing study)"
    assert ns["median_causal_effect"] is None


def test_unnamed_studies_with_other_params_in_other_runs_are_not_pooled(hello: None, tmp_path: Path) -> None:
    study = "  - {{domain: hello_linear, treatment: X, outcome: Y, rows: 500, params: {{effect: {}}}}}"
    run_dmca(tmp_path, study.format(1.0))
    run_dmca(tmp_path, study.format(1.0))  # the same study again: one study
    ns = group(collect([tmp_path / "tel.jsonl"]), "hello_linear", "toy")["north_star"]
    assert (ns["effect_studies"], ns["effects_withheld"]) == (1, None)
    _, records = run_dmca(tmp_path, study.format(3.0))  # another effect size, same label before
    assert {r["study"] for r in records} == {"hello_linear/toy (effect=1.0)", "hello_linear/toy (effect=3.0)"}
    ns = group(collect([tmp_path / "tel.jsonl"]), "hello_linear", "toy")["north_star"]
    assert ns["effects_withheld"] == "mixed: 2 studies (differing study)"


def test_the_text_report_cuts_long_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [step(i, 1.0, study="s" * 5000, iv="do(" + "x" * 5000 + "=1 vs 0)", d="long") for i in range(2)]
    assert main(["collect", str(write(tmp_path / "t.jsonl", records))]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("  long/-: do(xxx") and line.count("…") == 2 and len(line) < 300
