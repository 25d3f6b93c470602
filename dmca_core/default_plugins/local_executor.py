"""The built-in ``local`` executor: a process pool on this machine (in-process with one worker).

Workers are never forked from the driver (``fork``): a forked child would inherit the driver's
telemetry emitter and its SIGTERM flush, and could write records a second time. Where the platform
has it, workers come from a ``forkserver`` — a fresh interpreter that imports numpy and DMCA's
study code once, then forks each worker from itself, so a worker starts in milliseconds rather
than paying the imports again; elsewhere (Windows, macOS defaults) they are ``spawn``ed. A fresh interpreter has none of the plugins registered in the driver at run time
(tests, notebooks), so each task carries their module names and the worker registers them
(:class:`WithPlugins`); the Dask executor does the same.

A worker that dies (killed, out of memory) breaks the whole pool; the unfinished tasks are
resubmitted to a fresh pool, at most ``retries`` times. Steps are seeded per (study, step), so a
re-run gives the same numbers.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from types import ModuleType
from typing import Any

from dmca_core import hookimpl
from dmca_core.batches import RunBatch, batch_option, batches
from dmca_core.errors import DmcaError, PluginError, UsageError
from dmca_core.interrupts import held

START_METHODS = ("forkserver", "spawn")
# imported once by the forkserver, inherited by every worker it forks. Besides the study code:
# numpy.ma, which numpy's ``unique`` imports on first use (~15 ms of a worker's first step),
# numpy.random (numpy imports it on first use, ~8 ms), the modules a step imports late (cpdag,
# heap), and threadpoolctl for the pool's initializer.
PRELOAD = (
    "numpy",
    "numpy.ma",
    "numpy.random",
    "scipy.special",
    "threadpoolctl",
    "dmca_core.runner",
    "dmca_core.study",
    "dmca_core.cpdag",
    "dmca_core.heap",
    "dmca_core.default_plugins._worker_preload",
)
#: what the Dask plugin's own LocalCluster adds to the preload (a forkserver skips a module that is
#: not installed); named here so that ``dmca run`` can start the forkserver before any plugin loads
DASK_FORKSERVER_PRELOAD = ("dmca_dask_executor.forkserver_preload",)
DEFAULT_RETRIES = 3
OPTIONS = ("start_method", "retries", "batch")


def _default_method() -> str:
    available = multiprocessing.get_all_start_methods()
    return next(m for m in START_METHODS if m in available)


def start_forkserver(extra: Sequence[str] = ()) -> bool:
    """Start the forkserver now, preloading :data:`PRELOAD` and ``extra``, if this platform has one.

    ``dmca run`` calls this before its own imports, so that the server's imports (~0.3 s of CPU)
    run on another core at the same time instead of before the first step; the Dask executor
    adds its ``forkserver_preload`` module for the workers of the LocalCluster it starts. A pool
    started later finds it running; modules missing from its preload are imported by each worker
    on first use.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload([*PRELOAD, *extra])
    forkserver.ensure_running()
    return True


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# --- plugins registered in the driver, re-registered in workers ----------------------------------


def plugin_modules() -> tuple[str, ...]:
    """Importable names of the non-built-in plugin modules registered in this process, in order.

    Entry-point plugins are listed too: a worker whose entry points are off (or filtered
    differently) still gets the driver's set. Plugins that are not modules cannot travel by name;
    they are left out with a warning.
    """
    from dmca_core import plugins

    plugins.setup()
    names: list[str] = []
    for name, plugin in plugins.pm.list_name_plugin():
        if plugin is None or name in plugins.DEFAULT_PLUGINS:
            continue
        modname = _importable_name(plugin)
        if modname is None and name in plugins._plugin_dists:
            continue  # an entry point: workers load it from their own installation
        if modname is None:
            warnings.warn(
                f"dmca: plugin {name!r} is not an importable module; workers in other processes "
                "will not have it (put its hooks in a module)",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        names.append(modname)
    return tuple(names)


def _importable_name(plugin: object) -> str | None:
    if not isinstance(plugin, ModuleType):
        return None
    if plugin.__name__ != "__main__":
        return plugin.__name__
    spec = getattr(plugin, "__spec__", None)  # ``python -m pkg.mod`` keeps its real name here
    return spec.name if spec is not None and spec.name != "__main__" else None


_synced: list[str] = []  # modules this worker registered because a driver sent them


def sync_plugins(modules: Sequence[str]) -> None:
    """Make this worker's plugin set the driver's: register ``modules``, drop earlier extras."""
    from dmca_core.plugins import pm, setup

    setup()
    if list(modules) == _synced:
        return
    wanted: list[ModuleType] = []
    for name in modules:
        try:
            wanted.append(importlib.import_module(name))
        except Exception as exc:  # any import failure means this worker cannot run the study
            raise PluginError(
                f"plugin module {name!r} does not import in the worker process "
                f"({type(exc).__name__}: {exc}); install the plugin where the workers run"
            ) from None
    for name in _synced:  # a long-lived worker (Dask) may serve several runs
        mod = sys.modules.get(name)
        if name not in modules and mod is not None and pm.is_registered(mod):
            pm.unregister(mod)
    for mod in wanted:
        if not pm.is_registered(mod):
            pm.register(mod)
    _synced[:] = modules


class WithPlugins:
    """``fn`` wrapped so that a worker registers the driver's plugin modules before calling it."""

    def __init__(self, fn: Callable[[Any], Any], modules: Sequence[str]) -> None:
        self.fn = fn
        self.modules = tuple(modules)

    def __call__(self, item: Any) -> Any:
        sync_plugins(self.modules)
        return self.fn(item)


def _init_pool_worker(blas_threads: int) -> None:
    """The pool's initializer: Ctrl-C is the driver's to handle (it stops the workers itself; a
    terminal sends it to the whole process group), the driver's death ends the worker, then the
    BLAS limit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_driver()
    _init_worker(blas_threads)


def _exit_with_driver() -> None:
    """End this worker as soon as the driver is gone (``kill -9``, the OOM killer).

    Nobody is left to take its results, and the pool's own check runs only between tasks, so a
    worker would otherwise finish a step that may take minutes, then wait forever. A forkserver's
    worker is the server's child, not the driver's, but its ``parent_process()`` is the driver:
    the sentinel is a pipe only the driver holds open, and it becomes readable when the driver dies.
    """
    from multiprocessing.connection import wait as wait_ready

    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch() -> None:
        wait_ready([parent.sentinel])
        os._exit(1)  # not sys.exit: this is not the main thread, and nothing here needs cleaning up

    threading.Thread(target=watch, name="dmca-driver-watch", daemon=True).start()


def _init_worker(blas_threads: int) -> None:
    """Each worker's share of the cores for BLAS, as Dask does (no oversubscription).

    threadpoolctl limits the libraries loaded now; the variables are for those a step loads
    later (scipy's own OpenBLAS, say, first imported by an estimator), which read them when they
    load and would otherwise start a thread per core in every worker.
    """
    keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    # fewer threads than the share, if the user asked for fewer
    threads = min(
        [
            blas_threads,
            *(int(v) for k in keys if (v := os.environ.get(k, "")).isascii() and v.isdigit() and int(v) > 0),
        ]
    )
    for key in keys:
        os.environ[key] = str(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the variables alone: effective for libraries not loaded yet
        return
    threadpool_limits(threads)


# --- the executor ----------------------------------------------------------------------------------


class LocalExecutor:
    name = "local"

    def check(self, workers: int | None, options: Mapping[str, Any]) -> None:
        """Refuse options this executor does not understand, with the key that is wrong."""
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise UsageError(f"executor.workers: must be an integer >= 1, got {workers!r}")
        if options.get("address"):
            raise UsageError(
                "executor.address: the local executor runs on this machine; "
                "use executor 'dask' (pip install plugins/dask_executor) to reach a cluster"
            )
        for key in options:
            if key not in OPTIONS and key != "address":
                raise UsageError(
                    f"executor.options.{key}: unknown option for local; valid: {', '.join(OPTIONS)}"
                )
        method = options.get("start_method", _default_method())
        if method not in START_METHODS or method not in multiprocessing.get_all_start_methods():
            valid = [m for m in START_METHODS if m in multiprocessing.get_all_start_methods()]
            raise UsageError(f"executor.options.start_method: {method!r} is not one of {', '.join(valid)}")
        retries = options.get("retries", DEFAULT_RETRIES)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise UsageError(f"executor.options.retries: must be an integer >= 0, got {retries!r}")
        batch_option(options)

    def map(
        self,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        *,
        workers: int | None,
        options: Mapping[str, Any],
        on_result: Callable[[int, Any], None],
    ) -> list[Any]:
        self.check(workers, options)
        n = default_workers() if workers is None else workers
        results: list[Any] = [None] * len(items)
        if n == 1 or not items:  # asked for one worker: no pool, no isolation
            for i, item in enumerate(items):
                results[i] = fn(item)
                on_result(i, results[i])
            return results
        n = min(n, len(items))
        ctx = multiprocessing.get_context(options.get("start_method", _default_method()))
        retries = int(options.get("retries", DEFAULT_RETRIES))
        modules = plugin_modules()
        if ctx.get_start_method() == "forkserver":
            ctx.set_forkserver_preload([*PRELOAD, *modules])
        call = RunBatch(WithPlugins(fn, modules))
        blas = max(1, default_workers() // n)
        finished = [False] * len(items)
        remaining = list(range(len(items)))
        breaks = 0
        while remaining:
            pool = ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_pool_worker, initargs=(blas,))
            try:
                # steps in batches (dmca_core/batches.py): fewer round trips. After a worker died,
                # one step a task, so that a step that kills its worker takes no other with it
                most = batch_option(options) if breaks == 0 else 1
                pending = {pool.submit(call, [items[i] for i in b]): b for b in batches(remaining, n, most)}
                self._collect(pending, results, finished, on_result)
            except BaseException:  # Ctrl-C, SIGTERM, an error in on_result: stop now
                _stop(pool)
                raise
            # every result is in: the workers exit on their own while the driver goes on to
            # write the results (waiting for them cost ~10 ms a run); interpreter exit joins them
            pool.shutdown(wait=False)
            remaining = [i for i in remaining if not finished[i]]
            if not remaining:
                break
            breaks += 1
            if breaks > retries:
                raise DmcaError(
                    f"worker processes died {breaks} times; {len(remaining)} of {len(items)} steps did not "
                    f"finish (executor.options.retries is {retries})"
                )
            warnings.warn(
                f"dmca: a worker process died; re-running {len(remaining)} unfinished step(s) "
                f"in a fresh pool ({breaks}/{retries})",
                RuntimeWarning,
                stacklevel=2,
            )
        return results

    @staticmethod
    def _collect(
        pending: dict[Future[Any], list[int]],
        results: list[Any],
        finished: list[bool],
        on_result: Callable[[int, Any], None],
    ) -> None:
        """Hand each result to ``on_result`` as its batch arrives; stop quietly when the pool breaks."""
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                where = pending.pop(fut)
                try:
                    res = fut.result()
                except BrokenProcessPool:
                    continue  # re-run by the caller in a fresh pool
                with held():  # a batch that arrived is handed over whole, even on Ctrl-C
                    for i, item_result in zip(where, res, strict=True):
                        results[i] = item_result
                        finished[i] = True
                        on_result(i, item_result)


def _stop(pool: ProcessPoolExecutor) -> None:
    """End the pool without waiting for its workers: their unfinished steps are given up anyway,
    and a worker may be minutes into a long step. ``_processes`` is private, but the pool gives
    no other handle on its workers (``shutdown`` lets running tasks finish)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


@hookimpl(trylast=True)
def register_executors(register: Callable[[LocalExecutor], None]) -> None:
    register(LocalExecutor())
