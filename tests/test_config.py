"""Config errors are one line naming the file, line and key path; exit code 2."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from dmca_core.cli import main
from dmca_core.config import load_config, parse_config
from dmca_core.errors import ConfigError

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
        ("studies: []\n", "x.yaml: studies: at least one study is required"),
        ("studies:\n  - {domain: d, treatment: a, outcome: b, intervention: {t0: 1, t1: 1}}\n",
         "x.yaml: studies[0].intervention: t0 and t1 must differ"),
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
        ConfigError, match=r"x.yaml: studies\[1\].name: 'same' is already the name of studies\[0\]"
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
