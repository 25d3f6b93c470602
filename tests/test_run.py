"""``dmca run`` end to end: results folder, telemetry, exit codes, progress only on a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dmca_core import hookimpl
from dmca_core.cli import main
from dmca_core.types import DomainData, Graph, Table, Truth

CONFIG = """
experiment: tiny
seed: 3
estimator: fallback
executor: {{workers: {workers}}}
telemetry: {{path: {telemetry}, batch: {{max_records: 2, max_seconds: 1.0}}}}
studies:
  - {{domain: hello_linear, hypothesis: toy, treatment: X, outcome: Y, rows: 2000, steps: 3}}
  - {{domain: hello_linear, hypothesis: toy, treatment: X, outcome: Z, rows: 2000, steps: 1, graph: discover}}
"""


def _write(tmp_path: Path, workers: int = 1, extra: str = "") -> Path:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(CONFIG.format(workers=workers, telemetry=tmp_path / "tel.jsonl") + extra)
    return cfg


def test_run_writes_results_summary_plot_and_one_record_per_step(hello, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path)), "--out", str(out), "--quiet"]) == 0
    payload = json.loads((out / "results.json").read_text())
    rows = payload["results"]
    # two studies of one domain and hypothesis: each keeps a label of its own
    expected = [("hello_linear/toy X→Y", s) for s in (1, 2, 3)] + [("hello_linear/toy X→Z", 1)]
    assert [(r["study"], r["step"]) for r in rows] == expected
    for r in rows:
        assert r["status"] == "ok"
        for key in ("causal_effect", "ci_low", "ci_high", "reliability_score", "SR9", "DI2", "estimator"):
            assert key in r
    # Z is not a descendant of X: the true effect of do(X) on Z is zero, and the CI must say so
    assert rows[3]["truth"]["effect"] == pytest.approx(0.0, abs=1e-12)
    assert rows[3]["graph_source"] == "discovered"
    summary = (out / "summary.md").read_text()
    assert "| hello_linear/toy X→Y | 3 |" in summary
    assert (out / "forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = [json.loads(line) for line in (tmp_path / "tel.jsonl").read_text().splitlines()]
    assert len(records) == 4
    for rec in records:
        assert rec["fits"] > 0 and rec["qps"] > 0 and rec["latency_p95_ms"] > 0 and rec["infra_cost_usd"] > 0
        assert rec["run_id"] == payload["run_id"] and rec["ts"].endswith("Z")


def test_same_seed_same_numbers_whatever_the_worker_count(hello, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["run", str(_write(tmp_path, workers=1)), "--out", str(a), "--quiet"]) == 0
    assert main(["run", str(_write(tmp_path, workers=2)), "--out", str(b), "--quiet"]) == 0
    keep = ("causal_effect", "ci_low", "ci_high", "reliability_score", "SR9", "DI2", "seed")
    ra = [{k: r[k] for k in keep} for r in json.loads((a / "results.json").read_text())["results"]]
    rb = [{k: r[k] for k in keep} for r in json.loads((b / "results.json").read_text())["results"]]
    assert ra == rb


def test_seed_on_the_command_line_is_the_configs_seed(hello, tmp_path: Path) -> None:
    keep = ("causal_effect", "ci_low", "ci_high", "reliability_score", "seed")
    runs = {}
    for name, cfg_seed, flag in (("flag", 3, ["--seed", "11"]), ("config", 11, []), ("other", 3, [])):
        cfg = _write(tmp_path).read_text().replace("seed: 3", f"seed: {cfg_seed}")
        (tmp_path / f"{name}.yaml").write_text(cfg)
        out = tmp_path / name
        assert main(["run", str(tmp_path / f"{name}.yaml"), "--out", str(out), "--quiet", *flag]) == 0
        payload = json.loads((out / "results.json").read_text())
        runs[name] = (payload["seed"], [{k: r[k] for k in keep} for r in payload["results"]])
    assert runs["flag"] == runs["config"] and runs["flag"][0] == 11
    assert runs["other"][1] != runs["flag"][1]


def test_dry_run_checks_and_lists_the_studies_and_writes_nothing(hello, tmp_path: Path, capsys) -> None:
    cfg = _write(tmp_path, workers=2)
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--dry-run", "--seed", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{cfg}: 2 studies, 4 steps, seed 8, estimator fallback, executor local, workers: 2",
        "  hello_linear/toy X→Y: X → Y, 0 → 1; 3 × 2000 rows; graph truth",
        "  hello_linear/toy X→Z: X → Z, 0 → 1; 1 × 2000 rows; graph discover",
        f"results would go to {out}/, telemetry appended to {tmp_path / 'tel.jsonl'}; nothing written (--dry-run)",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml"]  # no folder, no telemetry
    # what a run refuses before its first step, a dry run refuses the same way
    bad = cfg.read_text().replace("estimator: fallback", "estimator: nope")
    cfg.write_text(bad)
    assert main(["run", str(cfg), "--dry-run", "--quiet"]) == 2
    line = 1 + bad.splitlines().index("estimator: nope")
    err = capsys.readouterr()
    assert err.out == "" and err.err.startswith(
        f"dmca: error: {cfg}:{line}: estimator: unknown estimator 'nope'"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml"]


@pytest.mark.parametrize(
    "change",
    [
        "output: afile\n",  # a file where the results folder should be
        "output: out\ntelemetry: {path: adir}\n",  # a folder where the telemetry file should be
        "output: out\ntelemetry: {path: t.jsonl, encryption: line}\n",  # no key (or no encryptor)
    ],
)
def test_dry_run_refuses_what_the_run_refuses_before_its_first_step(
    hello, tmp_path: Path, monkeypatch, capsys, change: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SIDRCE_AES_KEY", raising=False)
    monkeypatch.delenv("SIDRCE_AES_KEYS", raising=False)
    (tmp_path / "afile").write_text("keep\n")
    (tmp_path / "adir").mkdir()
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "seed: 1\nestimator: fallback\n" + change + "studies:\n"
        "  - {domain: hello_linear, hypothesis: toy, treatment: X, outcome: Y, rows: 300}\n"
    )
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["run", str(cfg), "--dry-run"]) == 2
    dry = capsys.readouterr()
    assert main(["run", str(cfg), "--quiet"]) == 2
    real = capsys.readouterr()
    assert dry.out == "" and dry.err == real.err and real.err.count("\n") == 1, (dry, real)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_failing_study_exits_1_and_the_others_are_reported(hello, tmp_path: Path, capsys) -> None:
    extra = "  - {domain: hello_linear, hypothesis: toy, treatment: X, outcome: Y, params: {effect: oops}}\n"
    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path, extra=extra)), "--out", str(out), "--quiet"]) == 1
    rows = json.loads((out / "results.json").read_text())["results"]
    assert [r["status"] for r in rows] == ["ok"] * 4 + ["failed"]
    assert "oops" in rows[-1]["error"]
    assert "studies" not in capsys.readouterr().out  # --quiet: nothing on stdout


def test_a_run_with_no_finished_step_keeps_the_folders_earlier_results(
    hello, use_plugin, tmp_path: Path, capsys
) -> None:
    """A re-run whose every step fails, or that is stopped before the first step comes back, has
    nothing to add: the earlier run's results stay; results with no finished step are replaced."""
    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path)), "--out", str(out), "--quiet"]) == 0
    first = {name: (out / name).read_bytes() for name in ("results.json", "summary.md", "forest.png")}
    run_id = json.loads(first["results.json"])["run_id"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "seed: 3\nestimator: fallback\nexecutor: {workers: 1}\n"
        f"telemetry: {{path: {tmp_path / 'tel.jsonl'}}}\nstudies:\n"
        "  - {domain: hello_linear, hypothesis: toy, treatment: X, outcome: Y, params: {effect: oops}, steps: 2}\n"
    )
    capsys.readouterr()
    assert main(["run", str(broken), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    kept = f"{out}/ keeps the results of the earlier run {run_id} (4 steps ok)"
    assert captured.out.startswith(f"0/2 steps ok with estimator fallback; {kept}; telemetry appended")
    assert (
        captured.err.count("ValueError: could not convert") == 2
        and f"dmca: no step finished; {kept}\n" in captured.err
    )
    assert {name: (out / name).read_bytes() for name in first} == first
    assert len((tmp_path / "tel.jsonl").read_text().splitlines()) == 4 + 2  # the failures' telemetry

    class StoppedAtOnce:  # Ctrl-C before the first step came back
        name = "stopped"

        def map(self, fn, items, *, workers, options, on_result):  # noqa: ANN001, ANN202
            raise KeyboardInterrupt

    @hookimpl
    def register_executors(register) -> None:  # noqa: ANN001
        register(StoppedAtOnce())

    plugin = type("StoppedPlugin", (), {"register_executors": staticmethod(register_executors)})
    use_plugin(plugin)
    assert main(["run", str(_write(tmp_path)), "--out", str(out), "--quiet", "--executor", "stopped"]) == 130
    assert capsys.readouterr().err == f"dmca: interrupted; 0 of 4 steps finished; {kept}\n"
    assert {name: (out / name).read_bytes() for name in first} == first

    fresh = tmp_path / "fresh"  # nothing earlier to keep: the failures are the results
    assert main(["run", str(broken), "--out", str(fresh), "--quiet"]) == 1
    assert json.loads((fresh / "results.json").read_text())["steps_ok"] == 0
    again = json.loads((fresh / "results.json").read_text())["run_id"]
    assert main(["run", str(broken), "--out", str(fresh), "--quiet"]) == 1
    assert json.loads((fresh / "results.json").read_text())["run_id"] != again  # replaced, not kept


@pytest.mark.parametrize(
    "text",
    ['{"steps_ok": true, "run_id": {"x": 1}}', "[" * 100_000 + "]" * 100_000, "[1]", "{}", "not json"],
)
def test_a_results_json_not_of_a_dmca_run_is_not_kept(tmp_path: Path, text: str) -> None:
    from dmca_core.runner import earlier_results

    (tmp_path / "results.json").write_text(text)
    assert earlier_results(tmp_path) is None
    (tmp_path / "results.json").write_text('{"steps_ok": 3, "run_id": "abc"}')
    assert earlier_results(tmp_path) == "keeps the results of the earlier run abc (3 steps ok)"


def test_bad_variable_is_refused_before_anything_is_written(hello, tmp_path: Path, capsys) -> None:
    extra = "  - {domain: hello_linear, hypothesis: toy, treatment: W, outcome: Y}\n"
    out = tmp_path / "out"
    cfg = _write(tmp_path, extra=extra)
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    last = len(cfg.read_text().splitlines())  # the line of the study that names W
    assert err == f"dmca: error: {cfg}:{last}: studies[2].treatment: unknown variable 'W'; valid: Z, X, Y"
    assert not out.exists() and not (tmp_path / "tel.jsonl").exists()


def test_too_few_rows_are_refused_before_any_step(hello, tmp_path: Path, capsys) -> None:
    extra = "  - {domain: hello_linear, hypothesis: toy, treatment: X, outcome: Y, rows: 19}\n"
    cfg = _write(tmp_path, extra=extra)
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    last = len(cfg.read_text().splitlines())
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"dmca: error: {cfg}:{last}: studies[2].rows: 19; a study of hello_linear (3 columns) needs at least 20"
    )
    assert not out.exists() and not (tmp_path / "tel.jsonl").exists()


def test_unknown_hypothesis_lists_the_valid_ones(hello, tmp_path: Path, capsys) -> None:
    extra = "  - {domain: hello_linear, hypothesis: WIMP, treatment: X, outcome: Y}\n"
    assert main(["run", str(_write(tmp_path, extra=extra))]) == 2
    assert "unknown hypothesis 'WIMP' for hello_linear; valid: toy" in capsys.readouterr().err


def _run_cli(args: list[str], cwd: Path, tty: bool) -> str:
    """Run ``dmca`` in a subprocess, its stderr a pseudo-terminal or a pipe; return stderr."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "examples" / "dmca-hello"),
               DMCA_NO_ENTRYPOINTS="0", DMCA_LOAD_PLUGINS="causal_fallback", COLUMNS="100", TERM="xterm")  # fmt: skip
    code = "import dmca_hello.plugin as h, sys; from dmca_core import plugins, cli; plugins.setup(); " \
           "plugins.pm.register(h); sys.exit(cli.main(sys.argv[1:]))"  # fmt: skip
    cmd = [sys.executable, "-c", code, *args]
    if not tty:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=60) == 0
    os.close(master)
    return b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    cfg = _write(tmp_path)
    piped = _run_cli(["run", str(cfg), "--out", "p"], tmp_path, tty=False)
    assert piped == ""
    shown = _run_cli(["run", str(cfg), "--out", "t"], tmp_path, tty=True)
    # the total from the start (it showed 0/? until the first batch returned), in steps
    assert "steps" in shown and "0/4" in shown and "4/4" in shown
    quiet = _run_cli(["run", str(cfg), "--out", "q", "--quiet"], tmp_path, tty=True)
    assert "steps" not in quiet


def test_encryption_without_an_encryptor_refuses_to_start(hello, tmp_path: Path, capsys) -> None:
    cfg = _write(tmp_path)
    cfg.write_text(cfg.read_text().replace("telemetry: {", "telemetry: {encryption: line, "))
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    assert "no encryptor plugin is installed" in capsys.readouterr().err
    assert not (tmp_path / "tel.jsonl").exists() and not out.exists()


@pytest.mark.aes
def test_encryption_without_a_key_names_the_variable(
    hello, use_plugin, tmp_path: Path, capsys, monkeypatch
) -> None:
    import dmca_aes_gcm.plugin

    use_plugin(dmca_aes_gcm.plugin)
    monkeypatch.delenv("SIDRCE_AES_KEY", raising=False)
    monkeypatch.delenv("SIDRCE_AES_KEYS", raising=False)
    cfg = _write(tmp_path)
    cfg.write_text(cfg.read_text().replace("telemetry: {", "telemetry: {encryption: batch, "))
    assert main(["run", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "SIDRCE_AES_KEY" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tel.jsonl").exists()


@pytest.mark.aes
def test_encrypted_run_reads_back_through_sidrce(hello, use_plugin, tmp_path: Path, monkeypatch) -> None:
    import dmca_aes_gcm.plugin
    from sidrce.collector import collect

    use_plugin(dmca_aes_gcm.plugin)
    monkeypatch.setenv("SIDRCE_AES_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    cfg = _write(tmp_path)
    cfg.write_text(cfg.read_text().replace("telemetry: {", "telemetry: {encryption: line, "))
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    text = (tmp_path / "tel.jsonl").read_text()
    assert "causal_effect" not in text and "hello_linear" not in text  # nothing readable
    report = collect([tmp_path / "tel.jsonl"])
    assert report["count"] == 4 and report["rejected"] == {}


def test_a_huge_sweep_draws_a_bounded_forest_plot(tmp_path: Path) -> None:
    from PIL import Image

    from dmca_core.report import MAX_ROWS, forest_plot

    rows = [
        {"status": "ok", "domain": "d", "hypothesis": "H", "treatment": "x", "outcome": "y", "t0": 0.0, "t1": 1.0,
         "study": f"d/H{s}", "step": k, "causal_effect": 1.0, "ci_low": 0.5, "ci_high": 1.5, "truth": {"effect": 1.1}}
        for s in range(50) for k in range(1, 11)
    ]  # fmt: skip
    path = tmp_path / "forest.png"
    forest_plot({"results": rows}, path)
    width, height = Image.open(path).size
    assert height < (MAX_ROWS + 10) * 0.22 * 110  # about MAX_ROWS rows at 0.22 in and 110 dpi, not 500
    # as many effects as rows: at most MAX_PANELS panels of one row each
    from dmca_core.report import MAX_PANELS

    forest_plot({"results": [{**r, "t1": float(i + 1)} for i, r in enumerate(rows)]}, path)
    assert Image.open(path).size[1] < MAX_PANELS * (0.22 + 0.35 + 0.55 + 0.1) * 110


def test_the_forest_plot_gives_each_effect_its_own_axis(hello, tmp_path: Path) -> None:
    # one panel per (domain, hypothesis, treatment, outcome, t0, t1): effects of different sizes,
    # or of different treatments on one outcome, never share an x axis
    from dmca_core.report import forest_panels

    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path)), "--out", str(out), "--quiet"]) == 0
    rows = json.loads((out / "results.json").read_text())["results"]
    panels = forest_panels(rows + [{**rows[0], "hypothesis": "other"}, {**rows[0], "t1": 2.0}])
    assert list(panels) == [
        ("hello_linear", "toy", "X", "Y", 0.0, 1.0),
        ("hello_linear", "toy", "X", "Z", 0.0, 1.0),
        ("hello_linear", "other", "X", "Y", 0.0, 1.0),
        ("hello_linear", "toy", "X", "Y", 0.0, 2.0),
    ]
    assert [len(v) for v in panels.values()] == [3, 1, 1, 1]


class _SlowStart:
    """The fallback estimator plus a prepare() that costs 0.4 s of CPU, like importing DoWhy."""

    def __init__(self) -> None:
        from dmca_causal_fallback.plugin import FallbackEstimator

        self.inner = FallbackEstimator()
        self.name, self.priority, self.prepared = "slow_start", 1, 0

    def prepare(self) -> None:
        import time

        self.prepared += 1
        end = time.process_time() + 0.4
        while time.process_time() < end:
            pass

    def discover(self, *a, **kw):
        return self.inner.discover(*a, **kw)

    def estimate(self, *a, **kw):
        return self.inner.estimate(*a, **kw)


def test_one_time_set_up_is_not_charged_to_the_first_step(hello, use_plugin, tmp_path: Path) -> None:
    from dmca_core import hookimpl

    slow = _SlowStart()

    class Plugin:
        @hookimpl
        def register_estimators(self, register) -> None:
            register(slow)

    use_plugin(Plugin())
    out = tmp_path / "out"
    assert (
        main(["run", str(_write(tmp_path)), "--out", str(out), "--quiet", "--estimator", "slow_start"]) == 0
    )
    assert slow.prepared == 1  # once per process, before the first step
    cpu = [r["ops"]["cpu_seconds"] for r in json.loads((out / "results.json").read_text())["results"]]
    assert cpu[0] < 0.3, cpu  # the 0.4 s went to no step


@pytest.mark.parametrize(
    ("study", "message"),
    [
        (
            "{domain: cosmology, hypothesis: Axion, treatment: log10_m22, outcome: log10_r_core, params: {bogus: 1}}",
            "studies[0].params: domain 'cosmology', hypothesis 'Axion': unknown param 'bogus'; valid: scatter",
        ),
        (
            "{domain: direct_lab, hypothesis: WIMP, treatment: exposure_kg_day, outcome: counts, params: {target: Pb}}",
            "studies[0].params: domain 'direct_lab': param 'target' is 'Pb'; valid: Xe, Ar, Ge",
        ),
    ],
)
def test_a_bad_domain_param_stops_the_run_before_any_step(
    fallback, tmp_path: Path, capsys, study: str, message: str
) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        f"experiment: p\nestimator: fallback\ntelemetry: {{path: {tmp_path / 't.jsonl'}}}\nstudies:\n  - {study}\n"
    )
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == f"dmca: error: {cfg}:5: {message}"  # the study's line
    assert not (tmp_path / "out" / "results.json").exists() and not (tmp_path / "t.jsonl").exists()


@pytest.mark.parametrize(
    ("config", "flags", "where", "message"),
    [
        ("estimator: nope\n", [], 2, "estimator: unknown estimator 'nope'; installed: "),
        ("executor: {name: nope}\n", [], 2, "executor.name: unknown executor 'nope'; installed: "),
        ("", ["--executor", "nah"], None, "--executor: unknown executor 'nah'; installed: "),
        (
            "telemetry: {sink: nope}\n",
            [],
            2,
            "telemetry.sink: unknown telemetry sink 'nope'; installed: jsonl",
        ),
    ],
)
def test_an_unknown_plugin_name_names_the_setting(
    fallback, tmp_path: Path, capsys, config: str, flags: list[str], where: int | None, message: str
) -> None:
    cfg = tmp_path / "exp.yaml"
    study = "{domain: cosmology, hypothesis: Axion, treatment: log10_m22, outcome: log10_r_core, rows: 300}"
    cfg.write_text(f"experiment: p\n{config}studies:\n  - {study}\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    # a config key gets its FILE:LINE (the plugins are known only after parsing); an option, none
    prefix = f"{cfg}:{where}: " if where else ""
    assert err.startswith(f"dmca: error: {prefix}{message}") and err.count("\n") == 1, err


def test_warnings_of_a_discovered_graph_reach_results_and_summary(fallback, tmp_path: Path, capsys) -> None:
    # the cosmology domain's proxies of halo mass are near copies of it: on this draw PC, given
    # one, even orients the outcome into the treatment; the step that survives carries the warning
    cfg = tmp_path / "exp.yaml"
    studies = "".join(
        f"  - {{domain: cosmology, hypothesis: Axion, treatment: {t}, outcome: log10_rho_inner, "
        "rows: 2000, steps: 2, graph: discover}\n"
        for t in ("feedback", "log10_m22")
    )
    cfg.write_text(
        f"experiment: w\nestimator: fallback\ntelemetry: {{path: {tmp_path / 't.jsonl'}}}\nstudies:\n{studies}"
    )
    out = tmp_path / "out"
    main(["run", str(cfg), "--out", str(out), "--quiet"])
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dmca: warning:")]
    rows = json.loads((out / "results.json").read_text())["results"]
    ok = [r for r in rows if r["status"] == "ok"]
    assert said == [f"dmca: warning: study {r['study']}: {r['warnings'][0]}" for r in ok if r["step"] == 1]
    assert ok and all(len(r["warnings"]) == 1 and "near copies" in r["warnings"][0] for r in ok)
    assert all("near copies" in r["error"] for r in rows if r["status"] != "ok")
    summary = (out / "summary.md").read_text()
    first = ok[0]
    assert (
        f"| {first['study']} | {first['step']} | {first['treatment']} → log10_rho_inner, 0 → 1 |" in summary
    )
    steps = ", ".join(str(r["step"]) for r in ok if r["study"] == first["study"])
    assert (
        f"## Warnings\n\n- {first['study']}, step{'s' if ',' in steps else ''} {steps}: {first['warnings'][0]}"
        in summary
    )


def test_estimate_and_discover_say_when_columns_are_near_copies(fallback, tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(7)
    m, e, t = rng.standard_normal((3, 3000))
    proxy = m + 0.02 * rng.standard_normal(3000)  # measures m almost without noise
    x = m + t
    y = 0.5 * x + m + e
    data = tmp_path / "d.csv"
    np.savetxt(data, np.column_stack([m, proxy, x, y]), delimiter=",", header="m,proxy,x,y", comments="")
    assert main(["discover", "--data", str(data), "--estimator", "fallback"]) == 0
    err = capsys.readouterr().err
    assert (
        err.startswith("dmca: warning: columns m, proxy are near copies of each other")
        and err.count("\n") == 1
    )
    args = ["--data", str(data), "--treatment", "x", "--outcome", "y", "--estimator", "fallback"]
    assert main(["estimate", *args, "--discover"]) == 0
    assert "dmca: warning: columns m, proxy are near copies" in capsys.readouterr().err
    assert main(["estimate", *args, "--graph", "m->proxy,m->x,m->y,x->y"]) == 0
    assert "warning" not in capsys.readouterr().err  # a given graph: PC is not asked


def test_a_signal_during_the_final_write_waits_and_says_what_was_kept(
    hello, tmp_path: Path, capsys, monkeypatch
) -> None:
    import signal

    from dmca_core import report

    write = report.write_outputs

    def interrupted_write(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # held until the results are written
        return write(*args, **kwargs)

    monkeypatch.setattr(report, "write_outputs", interrupted_write)
    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path)), "--out", str(out), "--quiet"]) == 143
    assert capsys.readouterr().err == f"dmca: terminated; 4 of 4 steps finished; results in {out}/\n"
    assert len(json.loads((out / "results.json").read_text())["results"]) == 4


class _Unprepared:
    """The fallback's fits behind an estimator whose one-time set-up fails."""

    name, priority = "unprepared", 1

    def __init__(self) -> None:
        from dmca_causal_fallback.plugin import FallbackEstimator

        self.inner = FallbackEstimator()

    def prepare(self) -> None:
        raise ImportError("no module named 'fancy_backend'")

    def discover(self, table, alpha):
        return self.inner.discover(table, alpha)

    def estimate(self, *args):
        return self.inner.estimate(*args)


@hookimpl
def register_estimators(register) -> None:
    register(_Unprepared())


def test_a_prepare_that_raises_fails_every_step_saying_so(
    hello, use_plugin, tmp_path: Path, monkeypatch
) -> None:
    import sys

    use_plugin(sys.modules[__name__])
    cfg = _write(tmp_path)
    cfg.write_text(cfg.read_text().replace("estimator: fallback", "estimator: unprepared"))
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert {r["status"] for r in rows} == {"failed"}
    want = "estimator 'unprepared': its prepare() raised ImportError: no module named 'fancy_backend'"
    assert {r["error"] for r in rows} == {want}
    # the failure is not kept: once prepare() works (the package installed), the same process runs
    monkeypatch.setattr(_Unprepared, "prepare", lambda self: None)
    assert main(["run", str(cfg), "--out", str(tmp_path / "again"), "--quiet"]) == 0


class _ExactFit:
    """Y = 2T - W with no noise: the effect is 2 and the fit exact, its interval rounding-wide."""

    name = "exact_fit"

    def hypotheses(self) -> tuple[str, ...]:
        return ("toy",)

    def variables(self, hypothesis: str) -> tuple[str, ...]:
        return ("T", "W", "Y")

    def load(self, hypothesis: str, rows: int, seed: int, params: dict) -> DomainData:
        rng = np.random.default_rng(seed)
        w = rng.standard_normal(rows)
        t = w + rng.standard_normal(rows)
        names = ("T", "W", "Y")
        return DomainData(
            Table(names, np.column_stack([t, w, 2 * t - w])),
            Graph(names, [("W", "T"), ("T", "Y"), ("W", "Y")]),
            lambda *_: Truth(2.0, 0.0, 0),
        )


class _ExactFitPlugin:
    @hookimpl
    def register_domains(self, register) -> None:
        register(_ExactFit())


def test_truth_in_ci_allows_an_exact_fit_its_rounding(fallback, use_plugin, tmp_path: Path) -> None:
    use_plugin(_ExactFitPlugin())
    cfg = tmp_path / "exact.yaml"
    cfg.write_text(
        f"seed: 1\nestimator: fallback\noutput: {tmp_path / 'out'}\nexecutor: {{workers: 1}}\n"
        f"telemetry: {{path: {tmp_path / 'tel.jsonl'}}}\n"
        "studies:\n  - {domain: exact_fit, treatment: T, outcome: Y, rows: 200, graph: [W->T, T->Y, W->Y]}\n"
    )
    assert main(["run", str(cfg), "--quiet"]) == 0
    (row,) = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert not row["ci_low"] <= 2.0 <= row["ci_high"]  # the interval misses 2 by rounding alone ...
    assert row["ci_high"] - row["ci_low"] < 1e-12 and row["truth_in_ci"] is True  # ... and counts


class _PreparedSilicon:
    """Silicon from the shipped table, recording ``prepare`` calls (and raising, if asked)."""

    name, source, priority = "silicon", "test", 1000

    def __init__(self, fail: bool = False) -> None:
        self.prepared: list[object] = []
        self.fail = fail

    def form_factor(self):
        from dmca_core.default_plugins.tabulated_materials import read_form_factor, shipped_path

        return read_form_factor(shipped_path())

    def prepare(self, map_groups) -> str:
        self.prepared.append(map_groups)
        if self.fail:
            raise MemoryError("PySCF ran out of memory\nsecond line")
        return "test"


class _ModelPlugin:
    def __init__(self, model: _PreparedSilicon) -> None:
        self.model = model

    @hookimpl
    def register_material_models(self, register) -> None:
        register(self.model)


DARK_PHOTON = "  - {domain: direct_lab, hypothesis: DarkPhoton, treatment: exposure_kg_day, outcome: counts, rows: 300}\n"


def _dark_photon_config(
    tmp_path: Path, extra: str = "", estimator: str = "fallback", tag: str = "exp"
) -> Path:
    cfg = tmp_path / f"{tag}.yaml"
    cfg.write_text(
        f"seed: 1\nestimator: {estimator}\nexecutor: {{workers: 1}}\n"
        f"telemetry: {{path: {tmp_path / 't.jsonl'}}}\nstudies:\n{DARK_PHOTON}{extra}"
    )
    return cfg


def test_materials_are_prepared_once_everything_else_was_checked(
    fallback, use_plugin, tmp_path, capsys
) -> None:
    model = _PreparedSilicon()
    use_plugin(_ModelPlugin(model))
    # a typo anywhere is refused before the (possibly minutes long) preparation
    bad_study = (
        "  - {domain: direct_lab, hypothesis: WIMP, treatment: exposure_kg_day, outcome: counts, rows: 3}\n"
    )
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for argv, said in (
        (
            [str(_dark_photon_config(tmp_path, estimator="nosuch", tag="est"))],
            "estimator: unknown estimator 'nosuch'",
        ),
        ([str(_dark_photon_config(tmp_path, extra=bad_study, tag="rows"))], "studies[1].rows: 3"),
        ([str(_dark_photon_config(tmp_path, tag="out")), "--out", str(a_file / "sub")], "--out"),
        ([str(_dark_photon_config(tmp_path, tag="tel")), "--telemetry", str(tmp_path)], "--telemetry"),
    ):
        out = [] if "--out" in argv else ["--out", str(tmp_path / "out")]
        assert main(["run", *argv, *out, "--quiet"]) == 2
        assert said in capsys.readouterr().err
    assert model.prepared == []
    assert main(["run", str(_dark_photon_config(tmp_path)), "--out", str(tmp_path / "ok"), "--quiet"]) == 0
    assert len(model.prepared) == 1  # then the run prepares it, through its executor


def test_a_failing_preparation_is_one_line(fallback, use_plugin, tmp_path, capsys) -> None:
    use_plugin(_ModelPlugin(_PreparedSilicon(fail=True)))
    assert main(["run", str(_dark_photon_config(tmp_path)), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert capsys.readouterr().err == (
        "dmca: error: material 'silicon': preparing its form factor failed: MemoryError: PySCF ran out of memory\n"
    )
    assert not (tmp_path / "out").exists() and not (tmp_path / "t.jsonl").exists()
