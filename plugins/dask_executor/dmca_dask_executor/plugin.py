"""The ``dask`` executor: study steps as tasks on a Dask cluster.

With ``executor.address`` it connects to a running scheduler (``tcp://host:8786``) and leaves the
cluster up; without one it starts a ``LocalCluster`` of ``workers`` processes with one thread each
and closes it at the end. Only the driver writes telemetry: results come back to it and are handed
to ``on_result`` one by one as they finish.

Faults: a worker that dies mid-task is replaced (by its nanny) and the scheduler re-runs the task
elsewhere, up to ``allowed-failures`` times; a task that raises is re-run ``retries`` times.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import urlsplit

from dmca_core import hookimpl
from dmca_core.batches import RunBatch, batch_option, batches
from dmca_core.default_plugins.local_executor import (
    DASK_FORKSERVER_PRELOAD,
    WithPlugins,
    default_workers,
    plugin_modules,
    start_forkserver,
)
from dmca_core.errors import DmcaError, UsageError, first_line
from dmca_core.interrupts import held

OPTIONS = ("retries", "allowed_failures", "connect_timeout", "batch")
DEFAULTS = {"retries": 2, "allowed_failures": 3, "connect_timeout": 30}
REFETCHES = 3  # times a step whose finished result was lost with its worker is run again


@contextmanager
def preserved_environ() -> Iterator[None]:
    """Undo what a LocalCluster's nannies write into this process's environment.

    Nannies run in the driver and set ``distributed.nanny.pre-spawn-environ`` (one BLAS thread,
    ``PYTHONHASHSEED``) in ``os.environ`` for the workers they spawn; the driver keeps its own.
    """
    import dask

    keys = [*dask.config.get("distributed.nanny.pre-spawn-environ", {}), "PYTHONHASHSEED"]
    saved = {k: os.environ.get(k) for k in keys}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def local_cluster_config(allowed_failures: int) -> dict[str, Any]:
    """Dask settings for the LocalCluster dmca starts (read when the scheduler and nannies start).

    Dask's nannies give workers ``MALLOC_TRIM_THRESHOLD_=65536`` to hand memory back to the OS.
    Setting it turns off glibc's adaptive mmap threshold, so every large numpy temporary is
    mmapped and unmapped afresh: short study steps took ~50% more CPU (docs/benchmarks.md). Our
    workers keep nothing between tasks, so they do without it; the one-BLAS-thread settings stay.

    ``lost-worker-timeout``: 15 s after a worker leaves the scheduler, the cluster closes its nanny
    if no worker of that name is registered at that moment. A nanny restarts its dead worker
    itself, so the check only matters when it falls in the second or so of a later restart (a
    step that kills its worker again); then it closed the nanny for good, and once every nanny
    was closed the run waited forever on queued tasks (seen in a test that kills workers
    repeatedly, 3 times in about 35 runs). Our cluster lives for one run; a nanny that cannot
    restart its worker is closed with the cluster.

    ``worker-saturation`` 1.0: a worker holds only the task it runs, the rest wait at the scheduler.
    With Dask's 1.1 a one-thread worker also held the next task; when a step killed that worker,
    Dask counted the death against the waiting task too, and a sound step that happened to wait
    there four times was given up as ``KilledWorker``.
    """
    import dask

    environ = dask.config.get("distributed.nanny.pre-spawn-environ", {})
    return {
        "distributed.scheduler.allowed-failures": allowed_failures,
        # the statistical profiler samples every task thread's stack each 10 ms for the
        # dashboard's profile page, which dmca does not serve: ~25% of a short step's CPU
        "distributed.worker.profile.enabled": False,
        "distributed.deploy.lost-worker-timeout": "1 day",
        "distributed.scheduler.worker-saturation": 1.0,
        "distributed.nanny.pre-spawn-environ": {
            k: v for k, v in environ.items() if k != "MALLOC_TRIM_THRESHOLD_"
        },
    }


def _keep_our_forkserver_preload() -> None:
    """Stop distributed from building its own preload list for the forkserver.

    The first time it starts a worker from a forkserver, distributed imports every package it
    knows of (pandas, pyarrow, ...) in this process to list them as the server's preload; ours is
    already running with numpy, DMCA and distributed loaded, so the list would go unused and the
    imports cost the driver ~0.25 s. It skips them once its private flag says the list was set.
    """
    from distributed import utils

    if hasattr(utils, "_forkserver_preload_set"):
        utils._forkserver_preload_set = True


def _with_scheme(address: str) -> str:
    """``host:port`` as Dask reads it (TCP, its default transport); a ``scheme://`` address with
    its scheme in lower case (Dask knows ``tcp``, not ``TCP``)."""
    scheme, sep, rest = address.partition("://")
    return f"{scheme.lower()}://{rest}" if sep else f"tcp://{address}"


SCHEMES = ("tcp", "tls")  # the transports a scheduler address may name


def _is_address(address: object) -> bool:
    """``tcp://host:port``, ``tls://host:port`` or ``host:port``, nothing after the port.

    Checked here because ``distributed.Client`` answers a malformed one (``tcp://host``,
    ``http://…``, a path) with a traceback, then hangs the interpreter's exit in its ``__del__``.
    """
    if not isinstance(address, str) or not address:
        return False
    try:
        parts = urlsplit(_with_scheme(address))
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return False
    return (
        parts.scheme in SCHEMES
        and bool(parts.hostname)
        and port is not None
        and port > 0
        and not (parts.path or parts.query or parts.fragment or parts.username)
    )


def _probe(address: str, timeout: float) -> dict[str, Any]:
    """Ask the scheduler at ``address`` who it is, within ``timeout`` seconds; its identity.

    A plain TCP connection first, for the quick answer when nobody listens (OSError). Then Dask's
    own handshake and an ``identity`` request under one deadline: ``distributed.Client`` waits
    forever on a peer that accepts the connection and is not a scheduler (Dask's HTTP dashboard
    port, anything else; dask/distributed#8071), whatever its timeout. In a thread of its own with
    its own event loop, so that a notebook's running loop is no obstacle.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect
    from distributed.security import Security

    parts = urlsplit(address)
    if parts.scheme == "tcp":
        socket.create_connection((parts.hostname, parts.port), timeout=timeout).close()

    async def ask() -> Any:
        try:
            comm = await connect(address, timeout=timeout, **Security().get_connection_args("client"))
        except (OSError, TimeoutError):
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. tls:// without Dask's TLS settings: said as it is
            raise OSError(f"{type(exc).__name__}: {first_line(exc)}") from None
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    async def bounded() -> Any:
        return await asyncio.wait_for(ask(), timeout)

    with ThreadPoolExecutor(1, thread_name_prefix="dmca-dask-probe") as pool:
        try:
            reply = pool.submit(asyncio.run, bounded()).result()
        except (OSError, TimeoutError):
            raise
        except Exception as exc:  # noqa: BLE001 - garbage from a peer that is not Dask: any error
            raise OSError(f"not a Dask scheduler: its answer did not parse ({type(exc).__name__})") from None
    if not isinstance(reply, dict) or "Scheduler" not in str(reply.get("type")):  # or a subclass
        kind = reply.get("type") if isinstance(reply, dict) else type(reply).__name__
        raise OSError(f"not a Dask scheduler (it says it is {kind!r})")
    return reply


def _failure(fut: Any) -> BaseException:
    """Why a task that is done has no result: its exception, or the cancellation."""
    try:
        exc = fut.exception()
    except BaseException as cancelled:  # noqa: BLE001 - CancelledError, or the client closing
        return cancelled
    return exc if isinstance(exc, BaseException) else RuntimeError(f"task {fut.key} has no result")


def _int_option(options: Mapping[str, Any], key: str, minimum: int) -> int:
    value = options.get(key, DEFAULTS[key])
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"executor.options.{key}: must be an integer >= {minimum}, got {value!r}")
    return value


class DaskExecutor:
    name = "dask"

    def check(self, workers: int | None, options: Mapping[str, Any]) -> None:
        """Refuse bad options with the key that is wrong, before anything connects."""
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise UsageError(f"executor.workers: must be an integer >= 1, got {workers!r}")
        for key in options:
            if key not in OPTIONS and key != "address":
                raise UsageError(
                    f"executor.options.{key}: unknown option for dask; valid: {', '.join(OPTIONS)}"
                )
        _int_option(options, "retries", 0)
        _int_option(options, "allowed_failures", 0)
        _int_option(options, "connect_timeout", 1)
        batch_option(options)
        address = options.get("address")
        if address is not None and not _is_address(address):
            raise UsageError(
                "executor.address: expected a scheduler address like tcp://host:8786, tls://host:8786 "
                f"or host:8786, got {address!r}"
            )
        if address and "allowed_failures" in options:
            raise UsageError(
                "executor.options.allowed_failures: applies to the LocalCluster dmca starts; a running "
                "scheduler reads DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES when it starts"
            )

    def _client(self, stack: ExitStack, workers: int, options: Mapping[str, Any]) -> Any:
        import dask
        from distributed import Client, LocalCluster

        address = options.get("address")
        if address:
            address = _with_scheme(address)
            timeout = _int_option(options, "connect_timeout", 1)
            try:
                # a Client that fails to connect leaves its event-loop thread behind, or hangs
                identity = _probe(address, timeout)
            except (OSError, TimeoutError) as exc:
                why = f"{type(exc).__name__}: {exc}" if str(exc) else f"no answer within {timeout} s"
                raise UsageError(
                    f"executor.address: cannot reach the Dask scheduler at {address} ({why})"
                ) from None
            if not identity.get("workers"):
                warnings.warn(
                    f"dmca: the Dask scheduler at {address} has no workers yet; the steps wait until one joins",
                    RuntimeWarning,
                    stacklevel=2,
                )
            try:
                return stack.enter_context(Client(address, timeout=timeout, set_as_default=False))
            except (OSError, TimeoutError) as exc:
                raise UsageError(
                    f"executor.address: cannot reach the Dask scheduler at {address} ({type(exc).__name__}: {exc})"
                ) from None
        stack.enter_context(preserved_environ())  # entered first: restored after the cluster closes
        settings = local_cluster_config(_int_option(options, "allowed_failures", 0))
        forked = start_forkserver(DASK_FORKSERVER_PRELOAD)
        if forked:
            settings["distributed.worker.multiprocessing-method"] = "forkserver"
            _keep_our_forkserver_preload()
        # for the cluster's whole life: the scheduler reads allowed-failures when it is created,
        # and a nanny reads the start method again when it replaces a worker that died
        stack.enter_context(dask.config.set(settings))
        cluster = stack.enter_context(
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address="127.0.0.1:0",  # health and metrics only (no bokeh): any free port
                silence_logs=logging.ERROR,
                preload=[f"{__package__}.worker_setup"] if forked else None,
            )
        )
        return stack.enter_context(Client(cluster, set_as_default=False))

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
        results: list[Any] = [None] * len(items)
        if not items:
            return results
        from distributed import as_completed

        n = min(default_workers() if workers is None else workers, len(items))
        call = RunBatch(WithPlugins(fn, plugin_modules()))
        retries = _int_option(options, "retries", 0)
        names = (f"dmca-steps-{uuid.uuid4().hex[:12]}-{k}" for k in itertools.count())
        where: dict[str, list[int]] = {}  # task key -> the steps it runs
        lost: list[tuple[int, BaseException | None]] = []  # (step, exception)
        refetched: Counter[int] = Counter()  # step -> times its finished result was lost and re-run
        with ExitStack() as stack:
            client = self._client(stack, n, options)

            def submit(groups: list[list[int]]) -> list[Any]:
                keys = [next(names) for _ in groups]  # named, so that errors name the task readably
                batch = [[items[i] for i in g] for g in groups]
                futures = client.map(call, batch, key=keys, pure=False, retries=retries)
                where.update(zip(keys, groups, strict=True))
                return futures

            threads = sum(client.nthreads().values()) if options.get("address") else n
            first = submit(batches(range(len(items)), threads or n, batch_option(options)))
            stack.enter_context(client.as_current())  # as_completed looks for the current client
            # Not with_results: there, a result whose worker dies while it is fetched is computed
            # again, and if that run fails too, the exception ends as_completed's own fetching
            # task and the run waits forever. Here the tasks done so far are fetched in one call
            # ("skip": a failed one comes back as None, and is handled below).
            done = as_completed(first)
            for ready in done.batches():
                finished = {f.key: f for f in ready if f.status == "finished"}
                got = client.gather(finished, errors="skip") if finished else {}
                for fut in ready:
                    group = where.pop(fut.key)
                    res = got.get(fut.key)
                    if (
                        res is None
                        and fut.status not in ("error", "cancelled")
                        and refetched[group[0]] < REFETCHES
                    ):
                        # it finished, then its worker died before the driver had the result (a
                        # step killing that worker, say), and the future as_completed handed over
                        # is no longer finished: its steps are sound, run them again
                        fut.release()
                        for i in group:
                            refetched[i] += 1
                        done.update(submit([group]))
                        continue
                    if res is None:  # errored or cancelled, maybe while its result was fetched
                        exc = _failure(fut)
                        if len(group) > 1 and not isinstance(exc, DmcaError):
                            # e.g. one step that kills its worker: its batch-mates get a task each
                            done.update(submit([[i] for i in group]))
                            continue
                        lost.extend((i, exc) for i in group)
                        continue
                    fut.release()  # the driver has it now; free the worker's copy
                    with held():  # a batch that arrived is handed over whole, even on Ctrl-C
                        for i, item_result in zip(group, res, strict=True):
                            results[i] = item_result
                            on_result(i, item_result)
        if lost:
            i, exc = min(lost, key=lambda x: x[0])
            if isinstance(exc, DmcaError):  # e.g. a plugin module that does not import on the workers
                raise exc
            raise DmcaError(
                f"{len(lost)} of {len(items)} steps were lost on the Dask cluster, first step {i}: "
                f"{type(exc).__name__}: {exc}"
            )
        return results


@hookimpl
def register_executors(register: Callable[[DaskExecutor], None]) -> None:
    register(DaskExecutor())
