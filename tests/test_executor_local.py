"""The ``local`` executor: same numbers whatever the worker count, one telemetry writer, faults.

This module is also a plugin (its ``register_domains`` adds fault-injection domains) that worker
processes import by name; ``test_executor_dask.py`` uses it too.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import pytest
import yaml

from dmca_core import hookimpl
from dmca_core.batches import batches
from dmca_core.cli import main
from dmca_core.default_plugins.local_executor import DASK_FORKSERVER_PRELOAD
from dmca_core.errors import UsageError

HELLO = Path(__file__).resolve().parents[1] / "examples" / "dmca-hello"


def _hello_linear() -> Any:
    if "dmca_hello.plugin" in sys.modules:
        return sys.modules["dmca_hello.plugin"].HelloLinear
    if str(HELLO) not in sys.path:  # a worker process whose driver registered the example
        sys.path.insert(0, str(HELLO))
    import dmca_hello.plugin

    return dmca_hello.plugin.HelloLinear


# --- fault-injection domains (imported by name in worker processes) ------------------------------


class _Wrapped:
    """``hello_linear`` with one extra parameter that controls a fault."""

    name = ""
    extra = ""

    def hypotheses(self) -> tuple[str, ...]:
        return ("toy",)  # non-empty: preflight never loads data in the driver

    def variables(self, hypothesis: str) -> tuple[str, ...]:
        return ("Z", "X", "Y")

    def load(self, hypothesis: str, rows: int, seed: int, params: Mapping[str, Any]) -> Any:
        rest = {k: v for k, v in params.items() if k != self.extra}
        self.fault(Path(params[self.extra]))
        return _hello_linear()().load(hypothesis, rows, seed, rest)

    def fault(self, path: Path) -> None:
        raise NotImplementedError


class CrashOnce(_Wrapped):
    """Kills its worker process the first time any step loads (``marker`` records that it did)."""

    name, extra = "crash_once", "marker"

    def fault(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        os._exit(3)


class CrashAlways(_Wrapped):
    """Kills its worker process every time; ``marker`` counts the attempts."""

    name, extra = "crash_always", "marker"

    def fault(self, path: Path) -> None:
        with open(path, "a") as fh:
            fh.write("x")
        os._exit(3)


class Gate(_Wrapped):
    """Waits until the file ``gate`` exists: the driver creates it when the first result arrives."""

    name, extra = "gate", "gate"

    def fault(self, path: Path) -> None:
        deadline = time.monotonic() + 60
        while not path.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("no progress was reported while steps were still running")
            time.sleep(0.02)


class EnvProbe(_Wrapped):
    """Writes its process id, a malloc setting and its BLAS thread counts into the folder ``probe``."""

    name, extra = "env_probe", "probe"

    def fault(self, path: Path) -> None:
        import scipy.linalg  # noqa: F401 - its own OpenBLAS, first loaded here when no plugin did
        from threadpoolctl import threadpool_info

        blas = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
        seen = {
            "MALLOC_TRIM_THRESHOLD_": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "blas_threads": list(blas.values()),
            "blas": blas,
            "parent": os.getppid(),
        }
        (path / str(os.getpid())).write_text(json.dumps(seen))


class Hang(_Wrapped):
    """Writes its process id into the folder ``pids``, then never finishes (until killed)."""

    name, extra = "hang", "pids"

    def fault(self, path: Path) -> None:
        (path / str(os.getpid())).touch()
        while True:
            time.sleep(0.05)


@hookimpl
def register_domains(register: Callable[[Any], None]) -> None:
    for cls in (CrashOnce, CrashAlways, Gate, EnvProbe, Hang):
        register(cls())


# --- helpers shared with test_executor_dask.py -----------------------------------------------------


def hello_study(**kw: Any) -> dict[str, Any]:
    return {
        "domain": "hello_linear",
        "hypothesis": "toy",
        "treatment": "X",
        "outcome": "Y",
        "rows": 400,
        **kw,
    }


def write_config(tmp_path: Path, studies: list[dict[str, Any]], executor: dict[str, Any], tag: str) -> Path:
    cfg = {
        "experiment": "executors",
        "seed": 11,
        "estimator": "fallback",
        "executor": executor,
        "telemetry": {
            "path": str(tmp_path / f"tel-{tag}.jsonl"),
            "batch": {"max_records": 2, "max_seconds": 1.0},
        },
        "studies": studies,
    }
    path = tmp_path / f"exp-{tag}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run(cfg: Path, out: Path, *extra: str) -> int:
    return main(["run", str(cfg), "--out", str(out), "--quiet", *extra])


def rows(out: Path) -> list[dict[str, Any]]:
    """results.json rows without the measured resource use (timings differ run to run)."""
    return [
        {k: v for k, v in r.items() if k != "ops"}
        for r in json.loads((out / "results.json").read_text())["results"]
    ]


def telemetry(cfg: Path) -> list[dict[str, Any]]:
    path = Path(yaml.safe_load(cfg.read_text())["telemetry"]["path"])
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_one_record_per_step(cfg: Path, out: Path) -> None:
    records = telemetry(cfg)
    payload = json.loads((out / "results.json").read_text())
    expected = sorted((r["domain"], r["step"]) for r in payload["results"])
    assert sorted((r["domain"], r["step"]) for r in records) == expected
    assert {r["run_id"] for r in records} == {payload["run_id"]}
    # each record carries its own step's estimate, not another step's
    ok = [r for r in payload["results"] if r["status"] == "ok"]
    assert sorted(r["causal_effect"] for r in records if "causal_effect" in r) == sorted(
        r["causal_effect"] for r in ok
    )


AES_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # a test key, not a secret


def check_encrypted_run(
    tmp_path: Path,
    executor: dict[str, Any],
    use_plugin: Callable[[Any], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batch-encrypted telemetry from several workers: every record opens, no sequence gap."""
    import dmca_aes_gcm.plugin
    from sidrce.collector import collect

    use_plugin(dmca_aes_gcm.plugin)
    monkeypatch.setenv("SIDRCE_AES_KEY", AES_KEY)
    cfg = write_config(tmp_path, [hello_study(steps=5)], executor, "aes")
    cfg.write_text(cfg.read_text().replace("telemetry:\n", "telemetry:\n  encryption: batch\n"))
    assert run(cfg, tmp_path / "aes") == 0
    tel = Path(yaml.safe_load(cfg.read_text())["telemetry"]["path"])
    assert b"hello_linear" not in tel.read_bytes()  # sealed
    report = collect([tel])
    assert report["count"] == 5 and report["rejected"] == {}


STUDIES = [
    hello_study(steps=3),
    hello_study(outcome="Z", steps=1, graph="discover"),
    hello_study(params={"effect": "oops"}),  # fails in the worker; the others go on
]


@pytest.fixture
def plugins_in_process(use_plugin, fallback) -> Iterator[None]:
    """hello_linear, the fault domains and the fallback estimator, registered in this process only."""
    added = str(HELLO) not in sys.path
    if added:  # spawned workers get the driver's sys.path
        sys.path.insert(0, str(HELLO))
    import dmca_hello.plugin

    use_plugin(dmca_hello.plugin)
    use_plugin(sys.modules[__name__])
    try:
        yield
    finally:
        if added and str(HELLO) in sys.path:
            sys.path.remove(str(HELLO))


def test_same_rows_in_the_same_order_for_one_and_two_workers(plugins_in_process, tmp_path: Path) -> None:
    outs = {}
    for tag, executor in (
        ("one", {"name": "local", "workers": 1}),
        ("two", {"name": "local", "workers": 2}),
        ("forkserver", {"name": "local", "workers": 2, "options": {"start_method": "forkserver"}}),
    ):
        cfg = write_config(tmp_path, STUDIES, executor, tag)
        outs[tag] = tmp_path / tag
        assert run(cfg, outs[tag]) == 1  # exit 1: one study failed
        check_one_record_per_step(cfg, outs[tag])
    one = rows(outs["one"])
    assert [(r["study"], r["step"], r["status"]) for r in one] == [
        *(("hello_linear/toy X→Y", s, "ok") for s in (1, 2, 3)),
        ("hello_linear/toy X→Z", 1, "ok"),
        ("hello_linear/toy (effect=oops)", 1, "failed"),
    ]
    assert "oops" in one[-1]["error"]
    assert len({r["causal_effect"] for r in one[:3]}) == 3  # three steps, three seeds
    assert rows(outs["two"]) == one
    assert rows(outs["forkserver"]) == one


def test_a_killed_worker_is_replaced_and_nothing_is_lost(plugins_in_process, tmp_path: Path) -> None:
    marker = tmp_path / "crashed"
    studies = [
        hello_study(steps=6),
        {**hello_study(domain="crash_once", steps=2), "params": {"marker": str(marker)}},
        hello_study(steps=6),
    ]
    # the pool's first batch holds steps 0 and 7 (a finished one, then the crash): the finished
    # step's result dies with the batch and is re-run
    assert batches(range(14), 2)[0][:2] == [0, 7]
    cfg = write_config(tmp_path, studies, {"name": "local", "workers": 2}, "crash")
    with pytest.warns(RuntimeWarning, match="a worker process died"):
        assert run(cfg, tmp_path / "crash") == 0
    assert marker.exists()  # a worker really died
    check_one_record_per_step(cfg, tmp_path / "crash")
    # the same run where nothing crashes (marker already there), in-process, gives the same rows
    ref = write_config(tmp_path, studies, {"name": "local", "workers": 1}, "ref")
    assert run(ref, tmp_path / "ref") == 0
    assert rows(tmp_path / "crash") == rows(tmp_path / "ref")
    assert all(r["status"] == "ok" for r in rows(tmp_path / "ref"))


def test_a_task_that_always_kills_its_worker_stops_after_the_retries(
    plugins_in_process, tmp_path: Path, capsys
) -> None:
    marker = tmp_path / "attempts"
    studies = [{**hello_study(domain="crash_always"), "params": {"marker": str(marker)}}]
    cfg = write_config(
        tmp_path, studies, {"name": "local", "workers": 2, "options": {"retries": 1}}, "always"
    )
    with pytest.warns(RuntimeWarning, match="a worker process died"):
        assert run(cfg, tmp_path / "always") == 1
    assert marker.read_text() == "xx"  # first try and one retry
    err = capsys.readouterr().err
    assert "worker processes died 2 times; 1 of 1 steps did not finish (executor.options.retries is 1)" in err


def test_progress_counts_each_result_as_it_arrives(plugins_in_process, tmp_path: Path) -> None:
    from dmca_core.config import load_config
    from dmca_core.runner import run_experiment

    gate = tmp_path / "gate"
    studies = [hello_study(), {**hello_study(domain="gate"), "params": {"gate": str(gate)}}]
    cfg_path = write_config(tmp_path, studies, {"name": "local", "workers": 2}, "progress")
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        gate.touch()  # the gated step, already running in the other worker, may now finish

    summary = run_experiment(
        load_config(cfg_path), config_path=str(cfg_path), out_dir=tmp_path / "p", progress=progress
    )
    assert [o.error for o in summary.outcomes] == [None, None]
    assert calls == [(0, 2), (1, 2), (2, 2)]  # the total first, then each result


@pytest.mark.parametrize(
    ("executor", "message"),
    [
        (
            {"name": "local", "address": "tcp://127.0.0.1:8786"},
            "executor.address: the local executor runs on this machine",
        ),
        ({"name": "local", "options": {"threads": 2}}, "executor.options.threads: unknown option for local"),
        (
            {"name": "local", "options": {"start_method": "fork"}},
            "executor.options.start_method: 'fork' is not",
        ),
        ({"name": "local", "options": {"retries": -1}}, "executor.options.retries: must be an integer >= 0"),
        ({"name": "local", "options": {"batch": "4"}}, "executor.options.batch: must be an integer >= 1"),
    ],
)
def test_bad_executor_settings_are_one_line_exit_2(
    plugins_in_process, tmp_path: Path, capsys, executor: dict[str, Any], message: str
) -> None:
    cfg = write_config(tmp_path, [hello_study()], executor, "bad")
    assert run(cfg, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "out").exists()


def test_address_on_the_command_line_reaches_the_executor(plugins_in_process, tmp_path: Path, capsys) -> None:
    cfg = write_config(tmp_path, [hello_study()], {"name": "local"}, "cli")
    assert run(cfg, tmp_path / "out", "--address", "tcp://127.0.0.1:8786") == 2
    assert "--address: the local executor runs on this machine" in capsys.readouterr().err


def test_check_rejects_zero_workers() -> None:
    from dmca_core.default_plugins.local_executor import LocalExecutor

    with pytest.raises(UsageError, match="executor.workers: must be an integer >= 1"):
        LocalExecutor().check(0, {})


def write_plugin_elsewhere(tmp_path: Path, name: str) -> ModuleType:
    """A plugin module importable in this process only: its folder leaves sys.path at once."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / f"{name}.py").write_text(  # a real plugin: one hook, registering nothing
        "from dmca_core import hookimpl\n\n\n@hookimpl\ndef register_domains(register):\n    pass\n"
    )
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))


def test_a_plugin_the_workers_cannot_import_stops_the_run(
    plugins_in_process, use_plugin, tmp_path: Path, capsys
):
    use_plugin(write_plugin_elsewhere(tmp_path, "dmca_plugin_only_here"))
    cfg = write_config(tmp_path, [hello_study(steps=2)], {"name": "local", "workers": 2}, "missing")
    assert run(cfg, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "plugin module 'dmca_plugin_only_here' does not import in the worker process" in err


def test_plugins_travel_by_module_name_and_objects_are_flagged(plugins_in_process, use_plugin) -> None:
    from dmca_core.default_plugins.local_executor import plugin_modules

    class ObjectPlugin:
        @hookimpl
        def register_domains(self, register: Callable[[Any], None]) -> None:
            pass

    use_plugin(ObjectPlugin())
    with pytest.warns(RuntimeWarning, match="is not an importable module; workers in other processes"):
        names = plugin_modules()
    assert names[-3:] == ("dmca_causal_fallback.plugin", "dmca_hello.plugin", __name__)
    assert not any(n.startswith("dmca_core.") for n in names)


@pytest.mark.aes
def test_batch_encrypted_telemetry_from_two_workers_opens_without_gaps(
    plugins_in_process, use_plugin, tmp_path: Path, monkeypatch
) -> None:
    check_encrypted_run(tmp_path, {"name": "local", "workers": 2}, use_plugin, monkeypatch)


def test_pool_workers_get_their_share_of_blas_threads_also_for_libraries_loaded_later(
    plugins_in_process, tmp_path: Path, monkeypatch
) -> None:
    from multiprocessing import forkserver

    from dmca_core.default_plugins.local_executor import default_workers, start_forkserver

    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(key, raising=False)  # numpy in the forkserver sizes BLAS for every core
    forkserver._forkserver._stop()
    if not start_forkserver():
        pytest.skip("no forkserver on this platform")
    probe = tmp_path / "probe"
    probe.mkdir()
    study = {**hello_study(domain="env_probe", steps=6), "params": {"probe": str(probe)}}
    cfg = write_config(tmp_path, [study], {"name": "local", "workers": 2, "options": {"batch": 1}}, "blas")
    assert run(cfg, tmp_path / "out") == 0
    seen = [json.loads(f.read_text()) for f in probe.iterdir()]
    assert seen
    for env in seen:
        assert env["parent"] == forkserver._forkserver._forkserver_pid
        # numpy's OpenBLAS, loaded before the worker started, and scipy's, loaded by the step
        assert len(env["blas"]) >= 2 and set(env["blas_threads"]) == {max(1, default_workers() // 2)}, env


# --- dmca run starts the workers' forkserver before its own imports --------------------------------

DASK = DASK_FORKSERVER_PRELOAD


@pytest.mark.parametrize(
    ("executor", "flags", "expected"),
    [
        ({"name": "local", "workers": 2}, [], ()),
        ({"name": "local", "workers": 1}, [], None),
        ({"name": "local", "workers": 2}, ["--workers", "1"], None),
        ({"name": "dask"}, [], DASK),  # its own LocalCluster's workers come from the forkserver
        ({"name": "dask", "workers": 1}, [], DASK),
        ({"name": "dask", "address": "tcp://10.0.0.5:8786"}, [], None),  # a cluster elsewhere
        ({"name": "dask"}, ["--address", "tcp://10.0.0.5:8786"], None),
        ({"name": "dask", "options": {"address": "tcp://10.0.0.5:8786"}}, [], None),
        ({"name": "dask", "address": "tcp://10.0.0.5:8786", "workers": 2}, ["--executor", "local"], ()),
        ({"name": "local", "workers": 1}, ["--workers", "3"], ()),
        ({"name": "local", "workers": 2}, ["--executor", "dask"], DASK),
        ({"name": "local", "workers": "4"}, [], None),  # the real parser reports it
        ({"name": "local", "workers": True}, [], None),
        ({"name": "local", "workers": 2, "options": {"start_method": "spawn"}}, [], None),
        ({"name": "local", "workers": 2}, ["--dry-run"], None),  # runs no step
        ({"name": "dask"}, ["--dry-run"], None),
        ({"name": "local", "workers": 2}, ["--dry"], None),  # argparse takes the abbreviation
    ],
)
def test_the_forkserver_is_started_ahead_only_for_runs_with_worker_processes_here(
    tmp_path: Path, executor: dict[str, Any], flags: list[str], expected: tuple[str, ...] | None
) -> None:
    from dmca_core.cli import _forkserver_ahead

    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({"experiment": "x", "executor": executor, "studies": []}))
    assert _forkserver_ahead(["run", str(cfg), *flags]) == expected
    assert _forkserver_ahead(["run", "--out", str(tmp_path / "o"), str(cfg), *flags]) == expected
    assert _forkserver_ahead(["plugins"]) is None


def test_bad_flags_and_settings_get_one_error_from_the_real_parser(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({"experiment": "x", "executor": {"workers": "4"}, "studies": []}))
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("executor.workers: expected int, got '4'"), err
    with pytest.raises(SystemExit) as exc:
        main(["run", str(cfg), "--workers", "abc"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --workers: invalid int value: 'abc'" in err[0]
    with pytest.raises(SystemExit):
        main(["run", str(cfg), "--e", "x"])  # ambiguous: --executor or --estimator
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ambiguous option: --e" in err[0]


def test_an_unreadable_config_starts_nothing_ahead_and_still_gets_its_error(tmp_path: Path) -> None:
    from dmca_core.cli import _forkserver_ahead

    bad = tmp_path / "bad.yaml"
    bad.write_text("executor: [unclosed\n")
    assert _forkserver_ahead(["run", str(bad)]) is None
    assert _forkserver_ahead(["run", str(tmp_path / "missing.yaml")]) is None
    assert _forkserver_ahead(["run"]) is None


# --- Ctrl-C and SIGTERM: a real `dmca run` process -----------------------------------------------

_DRIVER = """
import importlib, sys
sys.path[:0] = sys.argv[1:3]
from dmca_core.plugins import pm, setup
from dmca_core.cli import main
setup()  # entry points stay off, as in every test: the plugins are registered here
for name in ("dmca_causal_fallback.plugin", "dmca_hello.plugin", "test_executor_local", *sys.argv[5:]):
    pm.register(importlib.import_module(name))
sys.exit(main(["run", sys.argv[3], "--out", sys.argv[4], "--quiet"]))
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has ended; only its parent has not collected it yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True  # no /proc here (macOS): kill(0) is all there is


class StuckRun(NamedTuple):
    proc: Any  # subprocess.Popen[str]
    workers: list[int]  # process ids of the workers stuck in steps
    cfg: Path
    out: Path


@contextmanager
def stuck_run(tmp_path: Path, executor: dict[str, Any], *plugins: str) -> Iterator[StuckRun]:
    """A real `dmca run` process with two steps that finish and three that hang in the workers,
    handed over once the finished ones are recorded and the workers are in the hanging steps;
    killed at the end if it is still running (shared with the Dask tests)."""
    import signal
    import subprocess

    pids = tmp_path / "pids"
    pids.mkdir()
    studies = [hello_study(steps=2), {**hello_study(domain="hang", steps=3), "params": {"pids": str(pids)}}]
    cfg = write_config(tmp_path, studies, executor, "int")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(HELLO), str(Path(__file__).parent), str(cfg), str(out), *plugins],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job has
    )
    try:
        deadline = time.monotonic() + 60
        tel = Path(yaml.safe_load(cfg.read_text())["telemetry"]["path"])
        while len(list(pids.iterdir())) < 2 or not tel.exists() or len(tel.read_text().splitlines()) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()  # type: ignore[union-attr]
            time.sleep(0.05)
        yield StuckRun(proc, [int(p.name) for p in pids.iterdir()], cfg, out)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stderr.close()  # type: ignore[union-attr]


def assert_workers_end(workers: list[int], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers), "a worker outlived the run"


def check_interrupted_run(
    tmp_path: Path,
    executor: dict[str, Any],
    signame: str,
    group: bool,
    code: int,
    why: str,
    *plugins: str,
    times: int = 1,
) -> None:
    """Send the signal to a run stuck in steps, and check what is left (shared with the Dask tests)."""
    import signal

    with stuck_run(tmp_path, executor, *plugins) as run:
        sig = getattr(signal, signame)
        sent = time.monotonic()
        for _ in range(times):  # an impatient user presses Ctrl-C again while the run stops
            if group:
                os.killpg(run.proc.pid, sig)
            else:
                os.kill(run.proc.pid, sig)
            time.sleep(0.05)
        assert run.proc.wait(timeout=30) == code
        assert time.monotonic() - sent < 15
        err = run.proc.stderr.read()  # type: ignore[union-attr]
    assert_workers_end(run.workers)
    assert f"dmca: {why}; 2 of 5 steps finished; results in {run.out}/" in err
    assert all((run.out / name).stat().st_size for name in ("results.json", "summary.md", "forest.png"))
    got = json.loads((run.out / "results.json").read_text())["results"]
    assert [r["status"] for r in got] == ["ok", "ok", "failed", "failed", "failed"]
    assert all(f"the run was {why} before this step finished" in r["error"] for r in got[2:])
    records = telemetry(run.cfg)  # every line complete and parseable
    assert sorted(r["step"] for r in records) == [1, 2] and {r["domain"] for r in records} == {"hello_linear"}


def check_killed_driver(tmp_path: Path, executor: dict[str, Any], *plugins: str) -> None:
    """SIGKILL (the OOM killer, `kill -9`) to the driver alone while its workers are stuck in steps:
    nobody is left to take their results, so they end too, within seconds (shared with Dask)."""
    import signal

    with stuck_run(tmp_path, executor, *plugins) as run:
        os.kill(run.proc.pid, signal.SIGKILL)
        assert run.proc.wait(timeout=30) == -signal.SIGKILL
        assert_workers_end(run.workers)
    records = telemetry(run.cfg)  # what was written before the kill is whole
    assert sorted(r["step"] for r in records) == [1, 2]


@pytest.mark.parametrize(
    ("signame", "group", "times", "code", "why"),
    [
        ("SIGINT", True, 1, 130, "interrupted"),
        ("SIGINT", True, 2, 130, "interrupted"),
        ("SIGTERM", False, 1, 143, "terminated"),
    ],
)
def test_an_interrupted_run_stops_its_workers_and_keeps_what_finished(
    tmp_path: Path, signame: str, group: bool, times: int, code: int, why: str
) -> None:
    """Ctrl-C at a terminal (SIGINT to the whole process group) or `kill` (SIGTERM to the driver)
    while both workers are stuck in steps: the run ends within seconds, no worker survives it,
    the finished steps keep their rows and telemetry, and the others are reported as cut short.
    A second Ctrl-C while the run stops does not cut its clean-up (results, plot) short."""
    # one step a task, so that the finished steps come back while the others hang
    executor = {"name": "local", "workers": 2, "options": {"batch": 1}}
    check_interrupted_run(tmp_path, executor, signame, group, code, why, times=times)


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_workers_end_when_their_driver_is_killed(tmp_path: Path, method: str) -> None:
    # a forkserver's workers are its children, not the driver's: they watch the driver itself
    executor = {"name": "local", "workers": 2, "options": {"batch": 1, "start_method": method}}
    check_killed_driver(tmp_path, executor)
