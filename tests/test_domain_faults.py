"""A third-party domain that hands the core something wrong: one line naming the domain, never a
traceback, and in `dmca run` only that study's steps fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dmca_core import hookimpl
from dmca_core.cli import main
from dmca_core.types import DomainData, Graph, Table, Truth


class Faulty:
    """A linear toy domain whose ``fault`` decides what goes wrong."""

    name = "faulty"

    def __init__(self, fault: str) -> None:
        self.fault = fault

    def hypotheses(self) -> tuple[str, ...]:
        return ("toy",)

    def variables(self, hypothesis: str) -> tuple[str, ...]:
        return ("X", "Y")

    def check(self, hypothesis: str, params: dict[str, Any]) -> None:
        if self.fault == "check":
            raise KeyError("sigma")

    def load(self, hypothesis: str, rows: int, seed: int, params: dict[str, Any]) -> Any:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(rows)
        y = 0.5 * x + rng.standard_normal(rows)
        if self.fault == "nan":
            y[3] = np.nan
        graph = {
            "cycle": Graph(("X", "Y"), [("X", "Y"), ("Y", "X")]),
            "unknown": Graph(("X", "Y", "Q"), [("X", "Q")]),
        }
        data = DomainData(
            Table(("X", "Y"), np.column_stack([x, y])),
            graph.get(self.fault, Graph(("X", "Y"), [("X", "Y")])),
            (lambda t, o, t0, t1: 0.5)
            if self.fault == "truth"
            else (lambda t, o, t0, t1: Truth(0.5, 0.0, 0)),
        )
        return "a table" if self.fault == "load" else data


def _plugin(fault: str) -> object:
    class Plugin:
        @hookimpl
        def register_domains(self, register: Any) -> None:
            register(Faulty(fault))

    return Plugin()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("truth", "domain 'faulty': its truth_fn returned float, not a Truth"),
        ("load", "domain 'faulty': load returned str, not DomainData with a Table"),
        ("unknown", "domain 'faulty': its true graph names 'Q', not in its data"),
        ("cycle", "domain 'faulty': its true graph has a cycle: X -> Y -> X"),
    ],
)
def test_a_bad_domain_fails_its_own_steps_with_one_line(
    fallback, use_plugin, tmp_path: Path, capsys, fault: str, message: str
) -> None:
    use_plugin(_plugin(fault))
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        f"estimator: fallback\nexecutor: {{workers: 1}}\ntelemetry: {{path: {tmp_path / 't.jsonl'}}}\nstudies:\n"
        "  - {domain: faulty, treatment: X, outcome: Y, rows: 200}\n"
        "  - {domain: cosmology, hypothesis: WIMP, treatment: feedback, outcome: log10_rho_inner, rows: 300}\n"
    )
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"failed: {message}" in err
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert [r["status"] for r in rows] == ["failed", "ok"] and rows[0]["error"] == message


def test_a_check_that_raises_a_plugin_bug_is_one_line(fallback, use_plugin, tmp_path: Path, capsys) -> None:
    use_plugin(_plugin("check"))
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        f"telemetry: {{path: {tmp_path / 't.jsonl'}}}\nstudies:\n  - {{domain: faulty, treatment: X, outcome: Y}}\n"
    )
    assert main(["run", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"dmca: error: {cfg}:3: studies[0].params: domain 'faulty''s check raised KeyError: 'sigma'\n"
    )
    assert not (tmp_path / "t.jsonl").exists()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("nan", "domain 'faulty': simulated a non-finite value (nan) in column 'Y', data row 4"),
        ("cycle", "domain 'faulty': its true graph has a cycle: X -> Y -> X"),
        ("load", "domain 'faulty': load returned str, not DomainData with a Table"),
    ],
)
def test_simulate_writes_nothing_a_domain_got_wrong(
    use_plugin, tmp_path: Path, capsys, fault: str, message: str
) -> None:
    use_plugin(_plugin(fault))
    out = tmp_path / "d.csv"
    assert main(["simulate", "faulty", "--rows", "50", "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"dmca: error: {message}\n"
    assert not out.exists()
