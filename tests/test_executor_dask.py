"""The ``dask`` executor on a LocalCluster: same numbers as ``local``, one telemetry writer, faults.

One cluster serves the module (two worker processes, one thread each); the fault domains come from
``test_executor_local`` (a plugin module the workers import by name).
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import test_executor_local as base
from test_executor_local import (
    STUDIES,
    check_one_record_per_step,
    hello_study,
    rows,
    run,
    write_config,
)

pytestmark = pytest.mark.dask


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    """A LocalCluster for the module; its workers inherit this sys.path (the example plugin)."""
    distributed = pytest.importorskip("distributed")
    import dask

    added = str(base.HELLO) not in sys.path
    if added:
        sys.path.insert(0, str(base.HELLO))
    from dmca_dask_executor.plugin import local_cluster_config, preserved_environ

    # set up as the executor sets up its own, except: one re-run after a worker dies (the
    # crash-once test), the second death loses the task
    with (
        preserved_environ(),
        dask.config.set(local_cluster_config(allowed_failures=1)),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
            silence_logs=50,
        ) as cluster,
    ):
        yield cluster.scheduler_address
    if added and str(base.HELLO) in sys.path:
        sys.path.remove(str(base.HELLO))
    _stop_offload_thread()


def _stop_offload_thread() -> None:
    """End the thread an in-process Dask scheduler leaves behind (its "offload" pool).

    Other tests in this process check that no extra thread runs before they fork (SIDRCE's
    two-process reader); a fresh, idle pool takes the old one's place, so Dask still works.
    """
    from concurrent.futures import ThreadPoolExecutor

    from distributed import utils

    pool = getattr(utils, "_offload_executor", None)
    if isinstance(pool, ThreadPoolExecutor):
        pool.shutdown(wait=True)
        utils._offload_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="Dask-Offload")


@pytest.fixture
def plugins_in_process(use_plugin, fallback, address) -> None:
    import dmca_dask_executor.plugin
    import dmca_hello.plugin

    use_plugin(dmca_dask_executor.plugin)
    use_plugin(dmca_hello.plugin)
    use_plugin(base)


def test_dask_gives_the_local_rows_value_by_value(plugins_in_process, address: str, tmp_path: Path) -> None:
    one = write_config(tmp_path, STUDIES, {"name": "local", "workers": 1}, "one")
    assert run(one, tmp_path / "one") == 1  # one study fails, the others finish
    two = write_config(tmp_path, STUDIES, {"name": "local", "workers": 2}, "two")
    assert run(two, tmp_path / "two") == 1
    remote = write_config(tmp_path, STUDIES, {"name": "local"}, "remote")
    # host:port, as `dask scheduler` prints it without the scheme: Dask's default, TCP
    bare = address.removeprefix("tcp://")
    assert run(remote, tmp_path / "remote", "--executor", "dask", "--address", bare) == 1
    check_one_record_per_step(remote, tmp_path / "remote")
    reference = rows(tmp_path / "one")
    assert [r["status"] for r in reference] == ["ok"] * 4 + ["failed"]
    assert rows(tmp_path / "two") == reference
    assert rows(tmp_path / "remote") == reference


def _worker_processes() -> set[int]:
    """This process's descendants, but for the forkserver (workers are its children)."""
    from multiprocessing import forkserver

    import psutil

    server = getattr(forkserver._forkserver, "_forkserver_pid", None)
    return {c.pid for c in psutil.Process().children(recursive=True) if c.pid != server}


def test_the_forkserver_preload_module_named_in_core_imports() -> None:
    """Core names the plugin's module without importing it (``dmca run`` starts the forkserver
    before any plugin loads); a forkserver would skip a wrong name silently, so it must import."""
    import importlib

    from dmca_core.default_plugins.local_executor import DASK_FORKSERVER_PRELOAD

    for name in DASK_FORKSERVER_PRELOAD:
        assert importlib.import_module(name).__package__ == "dmca_dask_executor"


def test_without_an_address_a_local_cluster_is_started_and_closed(
    plugins_in_process, tmp_path: Path, monkeypatch
) -> None:
    from dmca_core.config import load_config
    from dmca_core.runner import run_experiment

    probe = tmp_path / "probe"
    probe.mkdir()
    studies = [*STUDIES[:2], {**hello_study(domain="env_probe", steps=4), "params": {"probe": str(probe)}}]
    cfg = write_config(tmp_path, studies, {"name": "dask", "workers": 2}, "own")
    from multiprocessing import forkserver

    from dmca_core.default_plugins.local_executor import DASK_FORKSERVER_PRELOAD, start_forkserver

    monkeypatch.setenv("PYTHONHASHSEED", "123")  # values a nanny would overwrite
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(key, raising=False)
    # a forkserver whose numpy sized its BLAS pool for every core, as in a plain shell; running
    # before the snapshot, as `dmca run` starts it first
    forkserver._forkserver._stop()
    start_forkserver(DASK_FORKSERVER_PRELOAD)
    before = _worker_processes()
    environ = dict(os.environ)
    during: set[int] = set()

    def progress(done: int, total: int) -> None:
        during.update(_worker_processes() - before)

    run_experiment(load_config(cfg), config_path=str(cfg), out_dir=tmp_path / "own", progress=progress)
    assert len(during) == 2  # the run's own two worker processes ...
    assert not during & _worker_processes()  # ... are gone once it returns
    assert dict(os.environ) == environ  # the nannies' OMP_NUM_THREADS, PYTHONHASHSEED are undone
    seen = {int(f.name): json.loads(f.read_text()) for f in probe.iterdir()}
    assert set(seen) <= during  # the probe ran in the cluster's workers ...
    assert {env["parent"] for env in seen.values()} == {
        forkserver._forkserver._forkserver_pid
    }  # forked there
    for env in seen.values():  # ... with one BLAS thread and glibc's adaptive mmap threshold kept
        assert env["MALLOC_TRIM_THRESHOLD_"] is None
        assert env["blas_threads"] and set(env["blas_threads"]) == {1}, env
    ref = write_config(tmp_path, studies, {"name": "local", "workers": 1}, "ref")
    assert run(ref, tmp_path / "ref") == 0
    assert rows(tmp_path / "own") == rows(tmp_path / "ref")
    check_one_record_per_step(cfg, tmp_path / "own")


@pytest.mark.parametrize("cluster", ["running", "own"])  # own: workers forked from dmca's forkserver
def test_a_killed_worker_is_replaced_and_nothing_is_lost(
    plugins_in_process, address: str, tmp_path: Path, cluster: str
) -> None:
    marker = tmp_path / "crashed"
    studies = [
        hello_study(steps=2),
        {**hello_study(domain="crash_once", steps=2), "params": {"marker": str(marker)}},
    ]
    executor = (
        {"name": "dask", "address": address} if cluster == "running" else {"name": "dask", "workers": 2}
    )
    cfg = write_config(tmp_path, studies, executor, "crash")
    assert run(cfg, tmp_path / "crash") == 0
    assert marker.exists()  # a worker really died
    check_one_record_per_step(cfg, tmp_path / "crash")
    ref = write_config(tmp_path, studies, {"name": "local", "workers": 1}, "ref")
    assert run(ref, tmp_path / "ref") == 0
    assert rows(tmp_path / "crash") == rows(tmp_path / "ref")


def test_a_task_that_always_kills_its_worker_is_reported_lost(
    plugins_in_process, address: str, tmp_path: Path, capsys
) -> None:
    marker = tmp_path / "attempts"
    studies = [hello_study(), {**hello_study(domain="crash_always"), "params": {"marker": str(marker)}}]
    cfg = write_config(tmp_path, studies, {"name": "dask", "address": address}, "always")
    assert run(cfg, tmp_path / "always") == 1
    assert marker.read_text() == "xx"  # allowed-failures 1: one re-run, then the scheduler gives up
    err = capsys.readouterr().err
    lost = re.search(r"(\d) of 2 steps were lost on the Dask cluster, first step (\d): KilledWorker", err)
    assert lost, err
    rows = json.loads((tmp_path / "always" / "results.json").read_text())["results"]
    # the crashing step is lost; the good one is too when Dask had queued it on a worker that the
    # crash took down (the scheduler then counts it as suspicious as well), which depends on timing
    assert rows[1]["status"] == "failed" and "KilledWorker" in rows[1]["error"]
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == int(lost.group(1))  # every lost step is reported, none dropped
    assert len(base.telemetry(cfg)) == 2 - len(failed)  # every step that finished was recorded


def test_a_step_that_always_kills_its_worker_does_not_take_its_batch_mates_with_it(
    plugins_in_process, address: str, tmp_path: Path, capsys
) -> None:
    from dmca_core.batches import batches

    marker = tmp_path / "attempts"
    studies = [
        hello_study(),
        {**hello_study(domain="crash_always"), "params": {"marker": str(marker)}},
        hello_study(steps=10),
    ]
    assert [1, 8, 11] in batches(range(12), 2)  # the crashing step 1 shares its task with two others
    cfg = write_config(tmp_path, studies, {"name": "dask", "address": address}, "mates")
    assert run(cfg, tmp_path / "mates") == 1
    # the batch ran twice (allowed-failures 1), then each of its steps got a task of its own:
    # step 1 alone ran twice more
    assert marker.read_text() == "xxxx"
    got = json.loads((tmp_path / "mates" / "results.json").read_text())["results"]
    assert got[1]["status"] == "failed" and "KilledWorker" in got[1]["error"]
    assert "dmca-steps-" in got[1]["error"]  # the task is named, not an object's repr
    err = capsys.readouterr().err
    lost = re.search(r"(\d+) of 12 steps were lost on the Dask cluster, first step (\d+): KilledWorker", err)
    assert lost, err
    failed = [i for i, r in enumerate(got) if r["status"] == "failed"]
    assert len(failed) == int(lost.group(1))  # every lost step is reported, none dropped
    # a step Dask had also placed on a worker the crash took down (twice) may be lost with it, as
    # without batches (step 0 too, at times): that depends on timing; every other step finished,
    # as in a run without it, and the message names the first step lost
    assert 1 in failed and len(failed) < 12 and int(lost.group(2)) == min(failed)
    done = tmp_path / "crashed-already"
    done.touch()  # crash_once with its marker present runs as the toy domain does
    calm = {**hello_study(domain="crash_once"), "params": {"marker": str(done)}}
    ref = write_config(tmp_path, [studies[0], calm, studies[2]], {"name": "local", "workers": 1}, "ref")
    assert run(ref, tmp_path / "ref") == 0
    want = rows(tmp_path / "ref")
    assert [r for i, r in enumerate(rows(tmp_path / "mates")) if i not in failed] == [
        r for i, r in enumerate(want) if i not in failed
    ]


def test_progress_counts_each_result_as_it_arrives(plugins_in_process, address: str, tmp_path: Path) -> None:
    from dmca_core.config import load_config
    from dmca_core.runner import run_experiment

    gate = tmp_path / "gate"
    studies = [hello_study(), {**hello_study(domain="gate"), "params": {"gate": str(gate)}}]
    cfg_path = write_config(tmp_path, studies, {"name": "dask", "address": address}, "progress")
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        gate.touch()

    summary = run_experiment(
        load_config(cfg_path), config_path=str(cfg_path), out_dir=tmp_path / "p", progress=progress
    )
    assert [o.error for o in summary.outcomes] == [None, None]
    assert calls == [(0, 2), (1, 2), (2, 2)]  # the total first, then each result


def test_an_unreachable_scheduler_is_one_line_exit_2(plugins_in_process, tmp_path: Path, capsys) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = write_config(tmp_path, [hello_study()], {"name": "dask", "options": {"connect_timeout": 1}}, "down")
    assert run(cfg, tmp_path / "out", "--address", f"tcp://127.0.0.1:{port}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--address: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("peer", ["silent", "http"])
def test_a_listener_that_is_no_scheduler_is_one_line_exit_2_within_the_timeout(
    plugins_in_process, tmp_path: Path, capsys, peer: str
) -> None:
    # distributed.Client waited forever on these (Dask's own dashboard port is such a peer)
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # the test reads stderr
            pass

    if peer == "http":
        server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port, stop = server.server_address[1], server.shutdown
    else:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port, stop = listener.getsockname()[1], listener.close
    try:
        cfg = write_config(
            tmp_path, [hello_study()], {"name": "dask", "options": {"connect_timeout": 2}}, peer
        )
        start = time.monotonic()
        assert run(cfg, tmp_path / "out", "--address", f"127.0.0.1:{port}") == 2
        assert time.monotonic() - start < 30
    finally:
        stop()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in err[0], err


@pytest.mark.parametrize(
    ("executor", "message"),
    [
        ({"name": "dask", "options": {"threads": 2}}, "executor.options.threads: unknown option for dask"),
        *(
            ({"name": "dask", "address": bad}, "executor.address: expected a scheduler address like tcp://")
            # Client answered these with a traceback, then hung the interpreter's exit
            for bad in (
                "host",
                "host:port",
                "host:99999",
                "tcp://localhost",
                "http://127.0.0.1:8786",
                "ucx://127.0.0.1:8786",
                "127.0.0.1:8786/x",
                "tcp://127.0.0.1:0",
            )  # fmt: skip
        ),
        (
            {"name": "dask", "address": "tcp://127.0.0.1:1", "options": {"allowed_failures": 5}},
            "executor.options.allowed_failures: applies to the LocalCluster dmca starts",
        ),
        ({"name": "dask", "options": {"batch": 0}}, "executor.options.batch: must be an integer >= 1"),
    ],
)
def test_bad_dask_settings_are_one_line_exit_2(
    plugins_in_process, tmp_path: Path, capsys, executor, message
) -> None:
    cfg = write_config(tmp_path, [hello_study()], executor, "bad")
    assert run(cfg, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_plugin_the_workers_cannot_import_stops_the_run(
    plugins_in_process, use_plugin, address, tmp_path, capsys
):
    use_plugin(base.write_plugin_elsewhere(tmp_path, "dmca_plugin_only_in_driver"))
    cfg = write_config(tmp_path, [hello_study()], {"name": "dask", "address": address}, "missing")
    assert run(cfg, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "plugin module 'dmca_plugin_only_in_driver' does not import in the worker process" in err


@pytest.mark.aes
def test_batch_encrypted_telemetry_from_dask_workers_opens_without_gaps(
    plugins_in_process, use_plugin, address: str, tmp_path: Path, monkeypatch
) -> None:
    base.check_encrypted_run(tmp_path, {"name": "dask", "address": address}, use_plugin, monkeypatch)


def _kill_step1s_worker(tmp_path: Path, got: list[tuple[int, int]]) -> Callable[[int, int], None]:
    """An ``on_result`` that records each result and, at step 0's, holds the driver until step 1
    is done (:func:`_fetched_late` marks it), then kills the worker holding step 1's result."""
    import signal
    import time

    def on_result(i: int, res: int) -> None:
        got.append((i, res))
        if i == 0:
            mark = tmp_path / "step1"
            deadline = time.monotonic() + 30
            while not mark.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)  # its result is in the worker's memory
            os.kill(int(mark.read_text()), signal.SIGKILL)

    return on_result


def _fetched_late(item: tuple[int, str]) -> int:
    """Step 0 returns at once. Step 1 returns too, after step 0, noting its worker's pid; run again
    (its result lost with that worker) it raises."""
    import time

    step, folder = item
    if step == 0:
        return 0
    mark = Path(folder) / "step1"
    if mark.exists():
        raise ValueError("step 1 ran again")
    time.sleep(0.5)  # after step 0's result has reached the driver
    tmp = mark.with_suffix(".tmp")
    tmp.write_text(str(os.getpid()))
    tmp.rename(mark)
    return 1


def test_a_result_lost_while_fetched_whose_rerun_fails_is_reported_not_waited_for(
    plugins_in_process, address: str, tmp_path: Path
) -> None:
    """A finished task's worker dies before the driver fetches the result; Dask runs the task
    again and that run fails. The step is reported lost, and the run ends. (When Dask's
    ``as_completed`` fetched the results itself, such a failure ended its fetching task and the
    run waited forever: seen once in 60 runs of a loop of the batch-mates test.)"""
    from dmca_core.errors import DmcaError
    from dmca_dask_executor.plugin import DaskExecutor

    got: list[tuple[int, int]] = []
    on_result = _kill_step1s_worker(tmp_path, got)
    items = [(0, str(tmp_path)), (1, str(tmp_path))]
    with pytest.raises(DmcaError, match=r"1 of 2 steps were lost on the Dask cluster, first step 1: "):
        DaskExecutor().map(
            _fetched_late,
            items,
            workers=None,
            options={"address": address, "batch": 1, "retries": 0},
            on_result=on_result,
        )
    assert got == [(0, 0)]


def test_ctrl_c_stops_the_own_cluster_and_keeps_what_finished(tmp_path: Path) -> None:
    # the LocalCluster dmca starts itself, in a real `dmca run` process; its workers hang in steps
    executor = {"name": "dask", "workers": 2, "options": {"batch": 1}}
    base.check_interrupted_run(
        tmp_path, executor, "SIGINT", True, 130, "interrupted", "dmca_dask_executor.plugin"
    )


def test_the_own_clusters_workers_end_when_the_driver_is_killed(tmp_path: Path) -> None:
    executor = {"name": "dask", "workers": 2, "options": {"batch": 1}}
    base.check_killed_driver(tmp_path, executor, "dmca_dask_executor.plugin")


def _fetched_late_sound(item: tuple[int, str]) -> int:
    """As :func:`_fetched_late`, but run again, step 1 gives its result again (a sound step)."""
    step, folder = item
    if step == 1 and (Path(folder) / "step1").exists():
        return 1
    return _fetched_late(item)


def test_a_sound_step_whose_result_is_lost_with_its_worker_runs_again(
    plugins_in_process, address: str, tmp_path: Path
) -> None:
    """A finished task's worker dies (a step killing it, say) before the driver fetched the
    result: the step is run again, not reported lost. In this timing Dask's own gather computes
    the lost key again; the executor's resubmission covers a future handed over by as_completed
    that is no longer finished when its batch is read (a window too narrow to hit on purpose)."""
    from dmca_dask_executor.plugin import DaskExecutor

    got: list[tuple[int, int]] = []
    on_result = _kill_step1s_worker(tmp_path, got)
    items = [(0, str(tmp_path)), (1, str(tmp_path))]
    results = DaskExecutor().map(
        _fetched_late_sound,
        items,
        workers=None,
        options={"address": address, "batch": 1, "retries": 0},
        on_result=on_result,
    )
    assert results == [0, 1] and sorted(got) == [(0, 0), (1, 1)]


def test_an_address_from_the_command_line_is_blamed_on_the_option(
    plugins_in_process, tmp_path: Path, capsys
) -> None:
    # the error named the config's line, where no address was written
    cfg = write_config(tmp_path, [hello_study()], {"name": "dask"}, "cli")
    assert run(cfg, tmp_path / "out", "--address", "localhost") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dmca: error: --address: expected a scheduler address like tcp://host:8786, "
                   "tls://host:8786 or host:8786, got 'localhost'"]  # fmt: skip
