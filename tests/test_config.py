"""Config errors are one line naming the file, line and key path; exit code 2."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from dmca_core.cli import main
from dmca_core.config import load_config, located, parse_config
from dmca_core.errors import ConfigError, PluginError, UsageError

ROOT = Path(__file__).resolve().parents[1]

GOOD_STUDY = "  - {domain: direct_lab, hypothesis: WIMP, treatment: a, outcome: b}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("telemetry:\n  batch:\n    max_records: ten\nstudies:\n" + GOOD_STUDY,
         "x.yaml:3: telemetry.batch.max_records: expected int, got 'ten'"),
        ("studies:\n" + GOOD_STUDY + "  - domain: cosmology\n    outcome: c\n",
         "x.yaml:3: studies[1].treatment: required"),
        ("telemtry: {}\nstudies:\n" + GOOD_STUDY, "x.yaml:1: telemtry: unknown key; did you mean 'telemetry'?"),
        ("seed: 1.5\nstudies:\n" + GOOD_STUDY, "x.yaml:1: seed: expected int, got float 1.5"),
        ("telemetry: {encryption: aes}\nstudies:\n" + GOOD_STUDY,
         "x.yaml:1: telemetry.encryption: expected one of none, line, batch, got 'aes'"),
        ("studies: [\n", "x.yaml:1: YAML syntax error"),
        ("studies: []\n", "x.yaml:1: studies: at least one study is required"),
        ("studies:\n  - {domain: d, treatment: a, outcome: b, intervention: {t0: 1, t1: 1}}\n",
         "x.yaml:2: studies[0].intervention: t0 and t1 must differ"),
        ("- 1\n- 2\n", "x.yaml: expected a mapping at the top level, got list"),
    ],
)  # fmt: skip
def test_bad_configs_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "x.yaml")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_defaults_fill_what_is_omitted() -> None:
    cfg = parse_config("studies:\n" + GOOD_STUDY, "x.yaml")
    assert cfg.estimator == "auto" and cfg.telemetry.batch.max_records == 100
    assert cfg.studies[0].graph == "truth" and cfg.studies[0].steps == 1


def test_the_shipped_config_parses() -> None:
    cfg = load_config(ROOT / "config" / "experiment.yaml")
    assert {s.domain for s in cfg.studies} == {"direct_lab", "cosmology"}
    assert {s.hypothesis for s in cfg.studies} == {"WIMP", "DarkPhoton", "Axion"}


def test_cli_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("studies:\n  - {domain: direct_lab, treatment: a}\n"))
    assert main(["run", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"dmca: error: {bad}:2: studies[0].outcome: required"


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: no such config file" in capsys.readouterr().err


def test_unnamed_studies_of_one_domain_and_hypothesis_get_labels_of_their_own() -> None:
    from dmca_core.config import parse_config

    def study(t: str, y: str, **kw: object) -> dict[str, object]:
        return {"domain": "direct_lab", "hypothesis": "WIMP", "treatment": t, "outcome": y, **kw}

    raw = {
        "experiment": "x",
        "studies": [study("a", "b"), study("a", "c"), study("a", "c"), study("a", "d", name="mine")],
    }
    cfg = parse_config(yaml.safe_dump(raw, allow_unicode=True), source="x.yaml")
    assert [s.label for s in cfg.studies] == [
        "direct_lab/WIMP a→b",
        "direct_lab/WIMP a→c #1",
        "direct_lab/WIMP a→c #2",
        "mine",
    ]
    alone = parse_config(yaml.safe_dump({"experiment": "x", "studies": [study("a", "b")]}), source="x.yaml")
    assert alone.studies[0].label == "direct_lab/WIMP"  # a label that is already unique stays as it was


def test_an_unnamed_label_carries_the_params_or_their_fingerprint() -> None:
    from dmca_core.config import parse_config

    def label(params: str, domain: str = "direct_lab", hypothesis: str = "WIMP") -> str:
        text = f"studies:\n  - {{domain: {domain}, hypothesis: {hypothesis}, treatment: a, outcome: b, params: {params}}}\n"
        return parse_config(text, "x.yaml").studies[0].label

    assert label("{target: Xe, mass_gev: 50}") == "direct_lab/WIMP (target=Xe, mass_gev=50)"
    assert label("{}") == "direct_lab/WIMP"
    assert (
        label("{mass_gev: 50, shape: [1, {k: null}]}")
        == 'direct_lab/WIMP (mass_gev=50, shape=[1,{"k":null}])'
    )
    assert label("{path: d.csv, columns: [x, y]}", "csv", "-") == 'csv: d.csv (columns=["x","y"])'
    # too long for a label: a fingerprint, the same for the same params and another for others
    long = "{grid: [" + ", ".join(str(i) for i in range(40)) + "]}"
    assert label(long).startswith("direct_lab/WIMP (params ") and label(long) == label(long)
    assert label(long) != label(long.replace("39", "38"))
    # nine levels of nine aliases: bounded (9**9 numbers written out would take minutes)
    levels = ["a0: &a0 [1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    assert label("{" + ", ".join(levels) + "}").startswith("direct_lab/WIMP (params ")


def test_two_studies_with_one_name_are_refused_naming_the_second() -> None:
    from dmca_core.config import parse_config

    s = {"domain": "direct_lab", "treatment": "a", "outcome": "b", "name": "same"}
    with pytest.raises(
        ConfigError, match=r"x.yaml:5: studies\[1\].name: 'same' is already the name of studies\[0\]"
    ):
        parse_config(yaml.safe_dump({"experiment": "x", "studies": [s, s]}), source="x.yaml")


def test_generated_labels_never_take_or_change_an_explicit_name() -> None:
    from dmca_core.config import parse_config

    def study(t: str, y: str, **kw: object) -> dict[str, object]:
        return {"domain": "direct_lab", "hypothesis": "WIMP", "treatment": t, "outcome": y, **kw}

    def labels(*studies: dict[str, object]) -> list[str]:
        raw = {"experiment": "x", "studies": list(studies)}
        return [
            s.label for s in parse_config(yaml.safe_dump(raw, allow_unicode=True), source="x.yaml").studies
        ]

    assert labels(study("a", "b", name="direct_lab/WIMP a→b"), study("a", "b"), study("a", "c")) == [
        "direct_lab/WIMP a→b",
        "direct_lab/WIMP a→b #1",
        "direct_lab/WIMP a→c",
    ]
    assert labels(study("a", "c", name="direct_lab/WIMP a→c #1"), study("a", "c"), study("a", "c")) == [
        "direct_lab/WIMP a→c #1",
        "direct_lab/WIMP a→c #2",
        "direct_lab/WIMP a→c #3",
    ]
    assert labels(study("a", "b", name="direct_lab/WIMP"), study("a", "b")) == [
        "direct_lab/WIMP",
        "direct_lab/WIMP a→b",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("studies:\n  - {domain: d, treatment: a, outcome: b,\n     intervention: {t0: .nan, t1: 1}}\n",
         "x.yaml:3: studies[0].intervention.t0: must be a finite number"),
        ("cost_model:\n  usd_per_cpu_hour: .inf\nstudies:\n" + GOOD_STUDY,
         "x.yaml:2: cost_model.usd_per_cpu_hour: must be a finite number"),
        ("cost_model: {usd_per_gb_hour: -.inf}\nstudies:\n" + GOOD_STUDY,
         "x.yaml:1: cost_model.usd_per_gb_hour: must be a finite number"),
        ("telemetry: {batch: {max_seconds: .inf}}\nstudies:\n" + GOOD_STUDY,
         "x.yaml:1: telemetry.batch.max_seconds: must be a finite number"),
        ("studies:\n  - {domain: d, treatment: a, outcome: b, alpha: .NaN}\n",
         "x.yaml:2: studies[0].alpha: must be a finite number"),
        ("studies:\n  - {domain: d, treatment: a, outcome: b, intervention: {t1: 1" + "0" * 400 + "}}\n",
         "x.yaml:2: studies[0].intervention.t1: must be a finite number"),
    ],
)  # fmt: skip
def test_non_finite_numbers_are_refused_before_anything_runs(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "x.yaml")
    assert str(info.value) == message


def test_every_float_field_of_the_config_refuses_nan() -> None:
    # walk the config classes: a float field added later is covered without editing this test
    import attrs

    from dmca_core import config as c

    def float_paths(cls: type, prefix: str) -> list[str]:
        out = []
        for f in attrs.fields(attrs.resolve_types(cls)):
            if f.type is float:
                out.append(prefix + f.name)
            elif isinstance(f.type, type) and attrs.has(f.type):
                out.extend(float_paths(f.type, prefix + f.name + "."))
        return out

    top = float_paths(c.ExperimentConfig, "")
    study = float_paths(c.StudyConfig, "")
    assert {"cost_model.usd_per_cpu_hour", "telemetry.batch.max_seconds"} <= set(top)
    assert {"alpha", "intervention.t0", "intervention.t1"} <= set(study)
    for path in top + ["studies[0]." + p for p in study]:
        raw: dict = {"studies": [{"domain": "d", "treatment": "a", "outcome": "b"}]}
        node = raw
        keys = path.replace("studies[0].", "studies.").split(".")
        for k in keys[:-1]:
            node = node["studies"][0] if k == "studies" else node.setdefault(k, {})
        node[keys[-1]] = float("nan")
        with pytest.raises(ConfigError, match=r": must be a finite number$") as info:
            parse_config(yaml.safe_dump(raw), "x.yaml")
        assert f": {path}: " in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed: 1\nseed: 2\nstudies:\n" + GOOD_STUDY, "x.yaml:2: duplicate key 'seed'"),
        ("studies:\n  - domain: d\n    treatment: a\n    rows: 300\n    outcome: b\n    rows: 5\n",
         "x.yaml:6: duplicate key 'rows'"),
        ("telemetry: {path: a, path: b}\nstudies:\n" + GOOD_STUDY, "x.yaml:1: duplicate key 'path'"),
    ],
)  # fmt: skip
def test_duplicate_keys_are_refused_with_their_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "x.yaml")
    assert str(info.value) == message


def test_a_merge_key_may_be_overridden() -> None:
    # `<<: *base` then a key of one's own is YAML's way to override, not a duplicate
    text = "studies:\n  - <<: {domain: d, treatment: a, outcome: b, rows: 50}\n    rows: 60\n"
    assert parse_config(text, "x.yaml").studies[0].rows == 60


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("studies:\n  - cosmology\n",
         "x.yaml:2: studies[0]: expected a study (a mapping with domain, treatment, outcome), got 'cosmology'"),
        ("studies:\n  a: 1\n", "x.yaml:1: studies: must be a list (one '- ' item each), got a mapping"),
        ("studies: cosmology\n", "x.yaml:1: studies: must be a list (one '- ' item each), got 'cosmology'"),
        ("telemetry: 5\nstudies:\n" + GOOD_STUDY, "x.yaml:1: telemetry: expected a mapping, got int 5"),
        ("studies:\n  - {domain: d, treatment: a, outcome: b, intervention: [0, 1]}\n",
         "x.yaml:2: studies[0].intervention: expected a mapping, got list [0, 1]"),
    ],
)  # fmt: skip
def test_wrong_shapes_get_one_plain_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "x.yaml")
    assert str(info.value) == message


def test_negative_seed_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "neg.yaml"
    cfg.write_text("seed: -1\nstudies:\n" + GOOD_STUDY)
    assert main(["run", str(cfg), "--quiet", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"dmca: error: {cfg}:1: seed: must not be negative, got -1\n"
    assert not (tmp_path / "out").exists()


def test_non_finite_numbers_in_params_are_refused_too() -> None:
    text = "studies:\n  - domain: d\n    treatment: a\n    outcome: b\n    params:\n      w: [1.0, .inf]\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "x.yaml")
    assert str(info.value) == "x.yaml:6: studies[0].params.w[1]: must be a finite number"


def test_a_later_error_about_a_config_key_gets_the_keys_line(tmp_path: Path) -> None:
    # errors found once the plugins are known (after parsing) start with the key path they are about
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("experiment: e\nstudies:\n  - domain: nope\n    hypothesis: h\n  - {domain: x}\n")
    got = located(PluginError("studies[0].hypothesis: unknown"), str(cfg))
    assert type(got) is PluginError and str(got) == f"{cfg}:4: studies[0].hypothesis: unknown"
    assert (
        str(located(UsageError("studies[1].params.k: bad"), str(cfg))) == f"{cfg}:5: studies[1].params.k: bad"
    )
    # a key the file leaves to its default has no line; options and other messages are left alone
    assert str(located(UsageError("estimator: unknown"), str(cfg))) == f"{cfg}: estimator: unknown"
    for message in ("--estimator: unknown", "no key here", "rows: not a config key"):
        assert str(located(UsageError(message), str(cfg))) == message
    # a config that did not come from a readable file: the name it was given, no line
    assert str(located(UsageError("seed: bad"), "<notebook>")) == "<notebook>: seed: bad"


# --- a study that names no hypothesis -------------------------------------------------------------


HELLO_CONFIG = """\
experiment: nohyp
seed: 2
estimator: fallback
executor: {{workers: 1}}
telemetry: {{path: {telemetry}}}
studies:
{studies}"""


def _run_config(tmp_path: Path, studies: str) -> tuple[Path, int]:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(HELLO_CONFIG.format(telemetry=tmp_path / "tel.jsonl", studies=studies))
    return cfg, main(["run", str(cfg), "--quiet", "--out", str(tmp_path / "out")])


def test_a_domain_with_one_hypothesis_needs_none_named(hello, tmp_path: Path) -> None:
    _, code = _run_config(tmp_path, "  - {domain: hello_linear, treatment: X, outcome: Y, rows: 300}\n")
    assert code == 0
    (row,) = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert (row["study"], row["hypothesis"], row["status"]) == ("hello_linear/toy", "toy", "ok")
    assert "| hello_linear/toy |" in (tmp_path / "out" / "summary.md").read_text()
    assert json.loads((tmp_path / "tel.jsonl").read_text())["hypothesis"] == "toy"


def test_a_filled_in_hypothesis_gets_labels_of_its_own(hello, tmp_path: Path) -> None:
    # labels are made at parse time: the study without a hypothesis was `hello_linear/-`, apart
    # from the named one; once filled in, both are hello_linear/toy X→Y and must not be merged
    studies = (
        "  - {domain: hello_linear, hypothesis: toy, treatment: X, outcome: Y, rows: 300}\n"
        "  - {domain: hello_linear, treatment: X, outcome: Y, rows: 300}\n"
        "  - {domain: hello_linear, treatment: X, outcome: Y, rows: 300, name: mine}\n"
    )
    _, code = _run_config(tmp_path, studies)
    assert code == 0
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert [r["study"] for r in rows] == ["hello_linear/toy X→Y #1", "hello_linear/toy X→Y #2", "mine"]
    assert {r["hypothesis"] for r in rows} == {"toy"}


def test_fill_hypotheses_relabels_only_generated_names() -> None:
    import types

    from dmca_core.config import fill_hypotheses

    one = types.SimpleNamespace(hypotheses=lambda: ("toy",))
    three = types.SimpleNamespace(hypotheses=lambda: ("WIMP", "DarkPhoton", "Axion"))
    text = (
        "studies:\n"
        "  - {domain: one, treatment: a, outcome: b}\n"
        "  - {domain: one, treatment: a, outcome: b}\n"
        "  - {domain: one, treatment: a, outcome: c, name: 'one/- a→c'}\n"
        "  - {domain: three, treatment: a, outcome: b}\n"
        "  - {domain: csv, treatment: a, outcome: b}\n"
    )
    cfg = parse_config(text, "x.yaml")
    assert [s.label for s in cfg.studies][:2] == ["one/- a→b #1", "one/- a→b #2"]
    fill_hypotheses(cfg, {"one": one, "three": three, "csv": types.SimpleNamespace(hypotheses=tuple)})
    assert [s.hypothesis for s in cfg.studies] == ["toy", "toy", "toy", "-", "-"]
    # an explicit name stays as written, even one that looks generated
    assert [s.label for s in cfg.studies] == [
        "one/toy a→b #1",
        "one/toy a→b #2",
        "one/- a→c",
        "three/-",
        "csv/-",
    ]


def test_a_domain_with_several_hypotheses_asks_for_one(fallback, tmp_path: Path, capsys) -> None:
    studies = (
        "  - {domain: cosmology, hypothesis: WIMP, treatment: feedback, outcome: log10_rho_inner}\n"
        "  - {domain: cosmology, treatment: feedback, outcome: log10_rho_inner}\n"
    )
    cfg, code = _run_config(tmp_path, studies)
    assert code == 2
    assert capsys.readouterr().err == (
        f"dmca: error: {cfg}:8: studies[1].hypothesis: required for domain 'cosmology'; "
        "valid: WIMP, DarkPhoton, Axion\n"
    )
    assert not (tmp_path / "tel.jsonl").exists()


def test_the_csv_domain_still_needs_no_hypothesis(fallback, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    t = rng.normal(size=100)
    data = tmp_path / "d.csv"
    np.savetxt(
        data, np.column_stack([t, 3 * t + rng.normal(size=100)]), delimiter=",", header="T,Y", comments=""
    )
    _, code = _run_config(
        tmp_path, f"  - {{domain: csv, params: {{path: {data}}}, treatment: T, outcome: Y, graph: T->Y}}\n"
    )
    assert code == 0
    (row,) = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert (row["study"], row["hypothesis"], row["status"]) == (f"csv: {data}", "-", "ok")
    assert abs(row["causal_effect"] - 3) < 0.5


# --- the line of a YAML syntax error: the one to fix, not where the parser noticed -----------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        # a key without its ':' is noticed on the next line (or past a comment and a blank line)
        ("experiment: x\nseed 1\nstudies: []\n", 2),
        ("experiment: x\nseed 1\n# a comment\n\nstudies: []\n", 2),
        ("experiment: x\ntelemetry:\n  path: a\n  sink jsonl\n  gzip: false\n", 4),
        # a quote never closed is noticed at the end of the file
        ('experiment: "x\nseed: 1\nstudies: []\n', 1),
        ("experiment: x\nstudies:\n  - domain: 'a\n    treatment: b\n", 3),
        # a flow collection missing its closing bracket or a comma: at the end of the last line
        # of content before the next item
        ("studies: [\n", 1),
        ("experiment: x\nstudies: [\n  {domain: a}\nseed: 3\n", 3),
        ("experiment: x\nstudies:\n  - {domain: a, treatment: b\n  - {domain: c}\nseed: 1\n", 3),
        ("studies: [\n  {domain: a}\n\n  # b next\n  {domain: b}\n]\n", 2),
        ("studies: [{domain: a} {domain: b}]\n", 1),
        # bad indentation and tabs are reported on their own line
        ("experiment: x\nstudies:\n  - domain: a\n    treatment: b\n   outcome: c\nseed: 1\n", 5),
        ("experiment: x\nstudies:\n  - domain: a\n    treatment: b\n\n   outcome: c\n", 6),
        ("experiment: x\ntelemetry:\n  path: a\n    sink: b\nseed: 1\n", 4),
        ("experiment: x\nstudies:\n  - domain: a\n\ttreatment: b\n", 4),
        ("experiment: x\nstudies:\n  - domain: a\n  treatment: b\n", 4),
    ],
)
def test_a_yaml_syntax_error_names_the_line_to_fix(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "x.yaml")
    assert str(info.value).startswith(f"x.yaml:{line}: YAML syntax error: "), str(info.value)


def test_a_refused_character_is_one_line_with_its_line() -> None:
    # the reader's own message is two lines and counts the offset in bytes (libyaml)
    text = "experiment: é\nseed: 1\nstudies: [x\x07]\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "x.yaml")
    # libyaml says "control characters", PyYAML without it "special characters"
    assert re.fullmatch(
        r"x\.yaml:3: YAML error: character #x0007: \w+ characters are not allowed", str(info.value)
    )


def test_an_anchor_used_inside_itself_is_an_error_line_not_a_recursion() -> None:
    # the line index does not follow an alias into itself: it used to recurse until RecursionError
    with pytest.raises(ConfigError) as info:
        parse_config("studies: &s\n  - *s\n", "x.yaml")
    assert str(info.value).startswith("x.yaml:1: studies[0]: expected a study")


def test_aliases_inside_params_are_walked_once() -> None:
    # params are free-form: a params mapping that holds itself, and nine levels of nine aliases,
    # used to end in a RecursionError and in a hang (9**9 paths) while their numbers were checked
    head = "studies:\n  - {domain: d, treatment: t, outcome: y, params: "
    cfg = parse_config(head + "&p {x: *p, k: 1.5}}\n", "x.yaml")
    assert cfg.studies[0].params["x"]["x"]["k"] == 1.5
    levels = ["a0: &a0 [1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    cfg = parse_config(head + "{" + ", ".join(levels) + "}}\n", "x.yaml")
    assert len(cfg.studies[0].params["a8"]) == 9
    with pytest.raises(ConfigError, match=r"^x.yaml:2: studies\[0\].params.a0\[1\]: must be a finite number"):
        parse_config(head + "{a0: &a0 [1.5, .nan], a1: [*a0, *a0]}}\n", "x.yaml")


def test_nested_aliases_do_not_multiply_the_line_index() -> None:
    # nine levels of nine aliases each would be 9**9 nodes to walk (this took minutes)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    with pytest.raises(ConfigError) as info:
        parse_config("\n".join(lines) + "\nstudies: []\n", "x.yaml")
    assert str(info.value).startswith("x.yaml:1: a0: unknown key")


_STUDY = "studies:\n  - {domain: d, treatment: t, outcome: y}\n"


@pytest.mark.parametrize(
    "deep",
    [
        "p: " + "[" * 3000 + "]" * 3000,
        "p: " + "[" * 30000 + "]" * 30000,
        "p:\n  " + "- " * 30000 + "x",  # nested block lists on one line
        "p:\n  " + "? " * 30000 + "x",  # nested explicit keys
        "p:\n" + "".join(" " * (2 + 998 * k) + "- " * 499 + "\n" for k in range(3)),  # over lines
    ],
)
def test_a_config_nested_thousands_deep_is_one_line(deep: str, tmp_path: Path, capsys) -> None:
    # 25,000 levels ended the process in libyaml's C parser (no Python recursion check there)
    text = _STUDY + deep + "\n"
    with pytest.raises(ConfigError, match=r"^x.yaml: nested too deeply \(over 500 levels"):
        parse_config(text, "x.yaml")
    cfg = tmp_path / "deep.yaml"
    cfg.write_text(text)
    assert main(["run", str(cfg), "--out", str(tmp_path / "out")]) == 2  # also past the run's first peek
    assert capsys.readouterr().err.startswith(f"dmca: error: {cfg}: nested too deeply")


@pytest.mark.parametrize(
    "text",
    [
        "".join(f"# dose in [0, {i})\n" for i in range(600)) + _STUDY,  # brackets in comments
        _STUDY.replace("y}", 'y, name: "' + "[" * 600 + '"}'),  # ... and in a string
        "# " + "- " * 600 + "\n" + _STUDY,
        # a long list is not a deep one
        "studies:\n  - domain: d\n    treatment: t\n    outcome: y\n    params:\n      xs:\n"
        + "".join(f"        - a{i}\n" for i in range(600)),
    ],
)
def test_brackets_in_comments_and_strings_are_not_nesting(text: str) -> None:
    parse_config(text, "x.yaml")
