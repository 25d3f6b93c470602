"""Config errors are one line naming the file, line and key path; exit code 2."""

from __future__ import annotations

import textwrap
from pathlib import Path

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
        ("studies: [\n", "x.yaml:2: YAML syntax error"),
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
