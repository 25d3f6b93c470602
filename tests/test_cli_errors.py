"""Bad input to the ``dmca`` commands: one line naming the option, file or field, exit 2, and
nothing run or lost; a closed stdout is no error; written files get the usual permissions."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dmca_core import plugins
from dmca_core.cli import main

CONFIG = """
experiment: tiny
seed: 3
estimator: fallback
executor: {{workers: 1}}
output: {output}
telemetry: {{path: {telemetry}}}
studies:
  - {{domain: hello_linear, hypothesis: toy, treatment: X, outcome: Y, rows: 300, steps: 1}}
"""


def _config(tmp_path: Path, output: Path | None = None, telemetry: Path | None = None) -> Path:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        CONFIG.format(output=output or tmp_path / "results", telemetry=telemetry or tmp_path / "tel.jsonl")
    )
    return cfg


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


# --- the results folder ---------------------------------------------------------------------------


def test_out_that_is_a_file_is_refused_before_any_step(hello, tmp_path: Path, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep me\n")
    cfg = _config(tmp_path)
    assert main(["run", str(cfg), "--quiet", "--out", str(afile)]) == 2
    assert _one_line(capsys) == (
        f"dmca: error: --out {afile}: cannot write there: a file of that name exists; give a folder"
    )
    assert not (tmp_path / "tel.jsonl").exists()  # no step ran
    assert main(["run", str(cfg), "--quiet", "--out", str(afile / "sub")]) == 2
    assert _one_line(capsys).endswith("part of the path is a file, not a folder")
    assert afile.read_text() == "keep me\n"


def test_config_output_that_cannot_be_written_names_the_field(hello, tmp_path: Path, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    cfg = _config(tmp_path, output=afile / "res")
    assert main(["run", str(cfg), "--quiet"]) == 2
    line = 1 + next(i for i, t in enumerate(cfg.read_text().splitlines()) if t.startswith("output:"))
    assert _one_line(capsys).startswith(
        f"dmca: error: {cfg}:{line}: output {afile / 'res'}: cannot write there"
    )
    assert not (tmp_path / "tel.jsonl").exists()


def test_read_only_results_folder_is_refused_before_any_step(
    hello, tmp_path: Path, capsys, monkeypatch
) -> None:
    # root ignores permission bits, so stand in for a read-only file system where the probe fails
    import dmca_core.report as report

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "results"))

    monkeypatch.setattr(report.tempfile, "mkstemp", refuse)
    assert main(["run", str(_config(tmp_path)), "--quiet"]) == 2
    assert _one_line(capsys).endswith("cannot write there: read-only file system")
    assert not (tmp_path / "tel.jsonl").exists()


def test_a_write_failure_at_the_end_is_one_line_and_leaves_no_half_file(
    hello, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "results"
    (out / "results.json").mkdir(parents=True)  # the folder takes files, but not this name
    assert main(["run", str(_config(tmp_path)), "--quiet"]) == 1
    line = _one_line(capsys)
    assert line.startswith(f"dmca: error: cannot write {out / 'results.json'}: is a directory")
    assert str(tmp_path / "tel.jsonl") in line  # where what the steps measured went
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]  # no temporary file left
    assert len((tmp_path / "tel.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize("batch", [1, 100])
def test_a_telemetry_file_that_fills_up_stops_the_run_and_keeps_the_results(
    hello, use_plugin, tmp_path: Path, capsys, batch: int
) -> None:
    # the disk fills after the first record's write (a batch a record), or at the final flush
    from dmca_core import hookimpl

    class Full:
        def __init__(self) -> None:
            self.writes = 0

        def write(self, data: bytes) -> None:
            self.writes += 1
            if self.writes > (1 if batch == 1 else 0):
                raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            pass

    class FillingSink:
        name = "jsonl"

        def open(self, path: Path, *, fsync: bool) -> Full:
            return Full()

    class Plugin:
        @hookimpl
        def register_telemetry_sinks(self, register) -> None:
            register(FillingSink())

    use_plugin(Plugin())
    cfg = _config(tmp_path)
    text = cfg.read_text().replace("rows: 300, steps: 1", "rows: 300, steps: 4")
    cfg.write_text(text.replace("telemetry: {path:", f"telemetry: {{batch: {{max_records: {batch}}}, path:"))
    assert main(["run", str(cfg), "--quiet"]) == 1
    line = _one_line(capsys)
    assert line.startswith(
        f"dmca: error: telemetry.path: {tmp_path / 'tel.jsonl'}: cannot write: no space left"
    )
    rows = json.loads((tmp_path / "results" / "results.json").read_text())["results"]
    kept = sum(r["status"] == "ok" for r in rows)
    assert line.endswith(f"; {kept} of 4 steps finished; results in {tmp_path / 'results'}/")
    assert len(rows) == 4 and kept == (2 if batch == 1 else 4)  # mid-run: the others are stopped
    assert all("the run stopped: telemetry.path" in r["error"] for r in rows if r["status"] != "ok")


def test_results_get_the_permissions_open_would_give(hello, tmp_path: Path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    out = tmp_path / "results"
    assert main(["run", str(_config(tmp_path)), "--quiet"]) == 0
    for name in ("results.json", "summary.md", "forest.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~mask, name
    # the telemetry file too: SIDRCE may read it as another user (the compose stack's uid 10001)
    assert stat.S_IMODE((tmp_path / "tel.jsonl").stat().st_mode) == 0o666 & ~mask
    # an existing file keeps its own mode, as open(path, "w") would
    os.chmod(out / "summary.md", 0o640)
    assert main(["run", str(_config(tmp_path)), "--quiet"]) == 0
    assert stat.S_IMODE((out / "summary.md").stat().st_mode) == 0o640


def test_workers_option_is_named_as_typed(hello, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", str(_config(tmp_path)), "--workers", "0"])
    assert info.value.code == 2
    assert _one_line(capsys) == "dmca run: error: argument --workers: must be at least 1, got 0"


# --- telemetry.path ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason"), [("folder", "is a directory"), ("under_a_file", "part of the path")]
)
def test_telemetry_path_that_cannot_be_opened_is_one_line(
    hello, tmp_path: Path, capsys, kind, reason
) -> None:
    if kind == "folder":
        tel = tmp_path / "tdir"
        tel.mkdir()
    else:
        (tmp_path / "afile").write_text("")
        tel = tmp_path / "afile" / "tel.jsonl"
    cfg = _config(tmp_path, telemetry=tel)
    assert main(["run", str(cfg), "--quiet"]) == 2
    line = _one_line(capsys)
    at = 1 + next(i for i, t in enumerate(cfg.read_text().splitlines()) if "path:" in t and "tel" in t)
    assert line.startswith(
        f"dmca: error: {cfg}:{at}: telemetry.path: {tel}: cannot open for appending: {reason}"
    )
    assert not (tmp_path / "results" / "results.json").exists()


def test_telemetry_option_overrides_the_config_and_names_itself(hello, tmp_path: Path, capsys) -> None:
    cfg = _config(tmp_path)
    mine = tmp_path / "mine.jsonl"
    assert main(["run", str(cfg), "--quiet", "--telemetry", str(mine)]) == 0
    assert len(mine.read_text().splitlines()) == len(
        json.loads((tmp_path / "results" / "results.json").read_text())["results"]
    )
    assert not (tmp_path / "tel.jsonl").exists()  # the config's file is left alone
    assert main(["run", str(cfg), "--quiet", "--telemetry", str(tmp_path)]) == 2
    assert _one_line(capsys).startswith(f"dmca: error: --telemetry: {tmp_path}: cannot open for appending")


def test_telemetry_on_a_read_only_file_system_is_one_line(hello, use_plugin, tmp_path: Path, capsys) -> None:
    from dmca_core import hookimpl

    class ReadOnlySink:
        name = "jsonl"

        def open(self, path: Path, *, fsync: bool) -> None:
            raise OSError(errno.EROFS, "Read-only file system", str(path))

    class Plugin:
        @hookimpl
        def register_telemetry_sinks(self, register) -> None:
            register(ReadOnlySink())

    use_plugin(Plugin())
    assert main(["run", str(_config(tmp_path)), "--quiet"]) == 2
    assert _one_line(capsys).endswith("cannot open for appending: read-only file system")


# --- a closed stdout ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["plugins", "--all"],
        ["simulate", "cosmology", "--rows", "3000"],
        pytest.param(["keygen"], marks=pytest.mark.aes),  # a plugin's command: the same main
    ],
)
def test_a_reader_that_goes_away_is_not_an_error(args: list[str]) -> None:
    env = dict(os.environ)
    if args == ["keygen"]:
        env.pop("DMCA_NO_ENTRYPOINTS", None)  # keygen comes from the aes_gcm entry point
        env["DMCA_LOAD_PLUGINS"] = "aes_gcm"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dmca_core.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdout.close()  # like `| head -0`: gone before dmca writes anything
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0
    assert err == ""


# --- estimate / discover / simulate ------------------------------------------------------------------


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    z = rng.normal(size=200)
    t = z + rng.normal(size=200)
    y = 2 * t + z + rng.normal(size=200)
    path = tmp_path / "d.csv"
    np.savetxt(path, np.column_stack([z, t, y]), delimiter=",", header="Z,T,Y", comments="")
    return path


def _estimate(data: Path, *extra: str) -> list[str]:
    return ["estimate", "--data", str(data), "--treatment", "T", "--outcome", "Y", *extra]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--graph", "Z->T,T->Y,Y->Z"],
            "dmca: error: --graph: has a cycle: Z -> T -> Y -> Z; a causal graph must be acyclic",
        ),
        (["--graph", "a-b"], "dmca: error: --graph: cannot read edge 'a-b': write A->B (directed) or A--B"),
        (["--graph", "Z->T,T->Y", "--outcome", "T"], "dmca: error: --outcome: must differ from --treatment"),
        (["--graph", "Z->T,T->Y", "--treatment", "Q"], "dmca: error: --treatment: unknown variable 'Q'"),
        (["--graph", "Z->T,T->Y", "--outcome", "Q"], "dmca: error: --outcome: unknown variable 'Q'"),
    ],
)
def test_estimate_bad_input_exits_2_naming_the_option(fallback, data: Path, capsys, extra, message) -> None:
    assert main(_estimate(data, *extra)) == 2
    assert _one_line(capsys).startswith(message)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--t0", "nan"], "dmca estimate: error: argument --t0: must be a finite number, got 'nan'"),
        (["--t1", "inf"], "dmca estimate: error: argument --t1: must be a finite number, got 'inf'"),
        (["--seed", "-5"], "dmca estimate: error: argument --seed: must be at least 0, got -5"),
        (["--alpha", "2"], "dmca estimate: error: argument --alpha: must lie strictly between 0 and 1"),
    ],
)
def test_estimate_bad_numbers_exit_2(fallback, data: Path, capsys, argv, message) -> None:
    with pytest.raises(SystemExit) as info:
        main(_estimate(data, "--graph", "Z->T,T->Y", *argv))
    assert info.value.code == 2
    assert _one_line(capsys).startswith(message)


def test_estimate_still_works_with_good_input(fallback, data: Path, capsys) -> None:
    assert main(_estimate(data, "--graph", "Z->T,Z->Y,T->Y", "--json")) == 0
    result = json.loads(capsys.readouterr().out)
    # the simulated effect of T on Y is 2; its standard error at 200 rows is about 0.05
    assert abs(result["causal_effect"] - 2.0) < 0.25
    assert result["treatment"] == "T" and result["outcome"] == "Y"


def test_discover_bad_alpha_exits_2(fallback, data: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["discover", "--data", str(data), "--alpha", "nan"])
    assert info.value.code == 2
    assert _one_line(capsys).startswith("dmca discover: error: argument --alpha: must be a finite number")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed", "-1"], "dmca simulate: error: argument --seed: must be at least 0, got -1"),
        (["--rows", "0"], "dmca simulate: error: argument --rows: must be at least 1, got 0"),
    ],
)
def test_simulate_bad_numbers_exit_2(capsys, argv, message) -> None:
    with pytest.raises(SystemExit) as info:
        main(["simulate", "cosmology", "--hypothesis", "Axion", "--rows", "10", *argv])
    assert info.value.code == 2
    assert _one_line(capsys) == message


def test_simulate_out_that_cannot_be_written_is_one_line(tmp_path: Path, capsys) -> None:
    base = ["simulate", "cosmology", "--hypothesis", "Axion", "--rows", "10", "--out"]
    assert main([*base, str(tmp_path)]) == 2
    assert _one_line(capsys) == f"dmca: error: --out {tmp_path}: is a folder; give the CSV file's name"
    (tmp_path / "afile").write_text("")
    assert main([*base, str(tmp_path / "afile" / "x.csv")]) == 2
    assert _one_line(capsys).endswith("cannot write: part of the path is a file, not a folder")


# --- plugins ------------------------------------------------------------------------------------------


def test_plugins_unknown_hook_lists_the_valid_ones(capsys) -> None:
    assert main(["plugins", "--hook", "nope"]) == 2
    line = _one_line(capsys)
    assert line.startswith("dmca: error: --hook: unknown hook 'nope'; valid: ")
    assert "register_domains" in line and "register_estimators" in line
    assert main(["plugins", "--all", "--hook", "register_domains"]) == 0
    assert "csv_domain" in capsys.readouterr().out
    assert plugins.hook_names()  # the listed names are the specs' names


def test_bad_data_found_inside_the_estimate_step_still_exits_2(fallback, tmp_path: Path, capsys) -> None:
    # too few rows is only found when the study runs: still bad input, so exit 2, not 1
    small = tmp_path / "small.csv"
    small.write_text("T,Y\n" + "".join(f"{i},{2 * i + (i % 3)}\n" for i in range(12)))
    assert (
        main(["estimate", "--data", str(small), "--treatment", "T", "--outcome", "Y", "--graph", "T->Y"]) == 2
    )
    # named by its file, as errors found while reading are
    assert (
        _one_line(capsys) == f"dmca: error: {small}: the data have 12 rows; a study over 2 columns needs 20"
    )


# --- defaults and names a newcomer meets ------------------------------------------------------------


def test_simulate_without_hypothesis_uses_the_domains_first(hello, tmp_path: Path, capsys) -> None:
    from dmca_core.domains.cosmology import Cosmology
    from dmca_core.domains.direct_lab import DirectLab

    # the built-in domains list WIMP first: their default stays what it always was
    assert DirectLab().hypotheses()[0] == Cosmology().hypotheses()[0] == "WIMP"
    for domain, first in (("hello_linear", "toy"), ("direct_lab", "WIMP"), ("cosmology", "WIMP")):
        base = ["simulate", domain, "--rows", "40", "--seed", "4", "--out"]
        assert main([*base, str(tmp_path / "default.csv")]) == 0, capsys.readouterr().err
        assert main([*base, str(tmp_path / "named.csv"), "--hypothesis", first]) == 0
        assert (tmp_path / "default.csv").read_bytes() == (tmp_path / "named.csv").read_bytes(), domain
    capsys.readouterr()
    assert main(["simulate", "hello_linear", "--hypothesis", "WIMP"]) == 2
    assert (
        _one_line(capsys)
        == "dmca: error: --hypothesis: unknown hypothesis 'WIMP' for hello_linear; valid: toy"
    )


def test_help_names_what_the_options_accept(capsys) -> None:
    for command in (["run"], ["estimate"], ["discover"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        # the names --estimator accepts, with the plugins they come from (not the plugins' names)
        assert (
            "auto (the best installed), full (plugin causal_full), fallback (plugin causal_fallback)" in text
        )
        assert "estimator plugin name" not in text
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "local (built in) or dask (plugin dask_executor)" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    assert "(default: the domain's first, e.g. WIMP for direct_lab)" in " ".join(
        capsys.readouterr().out.split()
    )


def test_an_ambiguous_estimate_prints_the_effects_it_could_be(fallback, tmp_path: Path, capsys) -> None:
    # two columns, T -> Y: PC finds T -- Y, a graph that cannot say which way the effect goes
    rng = np.random.default_rng(5)
    t = rng.normal(size=300)
    path = tmp_path / "two.csv"
    np.savetxt(
        path, np.column_stack([t, 2 * t + rng.normal(size=300)]), delimiter=",", header="T,Y", comments=""
    )
    argv = ["estimate", "--data", str(path), "--treatment", "T", "--outcome", "Y", "--discover"]
    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ambiguous"] and len(result["effect_set"]) == 2
    others = list(result["effect_set"])
    others.remove(result["causal_effect"])
    assert main(argv) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith(f"  (ambiguous: the discovered graph also allows {others[0]:.6g})"), first


def test_a_run_that_goes_well_reads_its_config_once(hello, tmp_path: Path, monkeypatch) -> None:
    # the line of a key is looked up (the file parsed again) only for an error: a sweep's config
    # takes a noticeable time to parse
    from dmca_core import runner

    def no_second_parse(*_args: object) -> str:
        raise AssertionError("the config was parsed again")

    monkeypatch.setattr(runner, "locate", no_second_parse)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        f"estimator: fallback\nexecutor: {{workers: 1}}\noutput: {tmp_path / 'out'}\n"
        f"telemetry: {{path: {tmp_path / 'tel.jsonl'}}}\n"
        "studies:\n  - {domain: hello_linear, hypothesis: toy, treatment: X, outcome: Y, rows: 300}\n"
    )
    assert main(["run", str(cfg), "--quiet"]) == 0
