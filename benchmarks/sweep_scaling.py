"""A sweep of fallback studies through each executor in one run: local 1 and 2 workers, Dask 2.

    python benchmarks/sweep_scaling.py                # 64 studies, p = 10, n = 1e4
    python benchmarks/sweep_scaling.py --rows 100000  # heavier steps
    python benchmarks/sweep_scaling.py --studies 8 --repeat 1   # a quick look

Each study is a full ``dmca run`` step (simulate, PC discovery, backdoor OLS, refutations) on a
linear-Gaussian domain with 10 variables defined here and registered in-process; workers import
this file as the module ``sweep_scaling``. Every configuration goes through
``dmca_core.runner.run_experiment`` (results and telemetry written to a temporary folder). Two
times are kept, best of ``--repeat`` alternating rounds: the whole ``dmca run``, and "steps", the
executor's ``map`` alone (pool or cluster start-up, every step, shutdown), measured by a thin
wrapper around the real executor; the rest (checks, writing results.json and the forest plot) is
the same for every executor. Dask runs twice: with a LocalCluster it starts and closes itself, and
against a LocalCluster already running in another process (``--address``; its start-up not
timed). The forkserver is started first, as ``dmca run`` starts it, and serves both the local pool
and the LocalCluster's workers (it preloads the Dask plugin's module too). BLAS is held to one
thread in every process, and a full garbage collection runs before every timed configuration (a
fresh ``dmca run`` carries no garbage from an earlier one). Printed: the times (best, then every
round), the 2-worker speed-up over 1 worker, Dask's times over the local pool's, whether every run
gave the same results.json numbers, and two bounds measured in the same run:

- the ceiling of "2 workers over 1" for these very steps: one process runs them all, then two
  processes run half each at once, with no executor (each round; on two cores the steps also
  contend for caches and memory, which the pure-Python "free cores" probe, printed before and
  after, does not show);
- each executor's fixed cost: two no-op tasks through it (start-up, one round trip, close), and
  what that cost alone adds to Dask's ratio over the pool.
"""

from __future__ import annotations

import os

# one BLAS thread everywhere, so that "1 worker" means one core (Dask's workers do the same)
for _key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_key, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator, Mapping  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from itertools import combinations  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from dmca_core import hookimpl  # noqa: E402
from dmca_core.types import DomainData, Graph, Table, Truth  # noqa: E402

P = 10
NAMES = tuple(f"V{i}" for i in range(P))


def _weights(seed: int = 2026) -> np.ndarray:
    """A random DAG over V0..V9 in index order, about three neighbours a node, |w| in [0.3, 1]."""
    rng = np.random.default_rng(seed)
    w = np.zeros((P, P))
    for a, b in combinations(range(P), 2):
        if rng.random() < 3.0 / (P - 1):
            w[a, b] = rng.uniform(0.3, 1.0) * rng.choice((-1.0, 1.0))
    return w


W = _weights()
TOTAL = np.linalg.inv(np.eye(P) - W)  # x = x W + e  =>  total effect of i on j = TOTAL[i, j]


class _Truth:
    """Closed form: in a linear SEM the effect of do(T) is the sum over directed paths."""

    def __call__(self, treatment: str, outcome: str, t0: float, t1: float) -> Truth:
        effect = (t1 - t0) * TOTAL[NAMES.index(treatment), NAMES.index(outcome)]
        return Truth(float(effect), 0.0, 0)


class Linear10:
    name = "bench_linear10"

    def hypotheses(self) -> tuple[str, ...]:
        return ("linear",)

    def variables(self, hypothesis: str) -> tuple[str, ...]:
        return NAMES

    def load(self, hypothesis: str, rows: int, seed: int, params: Mapping[str, Any]) -> DomainData:
        x = np.random.default_rng(seed).standard_normal((rows, P)) @ TOTAL
        dag = Graph(NAMES, [(NAMES[i], NAMES[j]) for i, j in zip(*np.nonzero(W), strict=True)])
        return DomainData(Table(NAMES, x), dag, _Truth())


@hookimpl
def register_domains(register: Callable[[Linear10], None]) -> None:
    register(Linear10())


def pairs(count: int) -> list[tuple[str, str]]:
    """Treatment -> outcome pairs with a non-zero total effect, in a fixed order."""
    found = [(NAMES[i], NAMES[j]) for i in range(P) for j in range(i + 1, P) if abs(TOTAL[i, j]) > 1e-9]
    return [found[k % len(found)] for k in range(count)]


def config(studies: int, rows: int, executor: Mapping[str, Any], out: Path) -> Any:
    import yaml

    from dmca_core.config import parse_config

    raw = {
        "experiment": "sweep_scaling",
        "seed": 5,
        "estimator": "fallback",
        "executor": dict(executor),
        "output": str(out),
        "telemetry": {"path": str(out / "telemetry.jsonl")},
        "studies": [
            {
                "domain": "bench_linear10",
                "hypothesis": "linear",
                "treatment": t,
                "outcome": y,
                "rows": rows,
                "graph": "discover",
            }
            for t, y in pairs(studies)
        ],
    }
    return parse_config(yaml.safe_dump(raw), source="sweep_scaling.py")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _burn(start_at: float) -> float:
    time.sleep(max(0.0, start_at - time.time()))  # both processes start the loop together
    t = time.perf_counter()
    x = 0
    for i in range(5_000_000):
        x += i
    return time.perf_counter() - t


def free_cores() -> float:
    """How many cores two CPU-bound processes actually get now (2.0 on an idle 2-core machine).

    The same pure-Python loop alone, then in two processes at once; the ratio of the times is the
    ceiling for any 2-worker speed-up measured around it.
    """
    alone = min(_burn(0.0) for _ in range(2))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        start_at = time.time() + 2.0
        together = max(pool.map(_burn, [start_at, start_at]))
    return 2 * alone / together


def _run_steps(args: tuple[Callable[[Any], Any], list[Any], float]) -> float:
    fn, items, start_at = args
    fn(items[0])  # a first step, untimed: lazy imports and the heap's growth happen here
    time.sleep(max(0.0, start_at - time.time()))  # both processes start together
    t = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - t


def step_ceiling(pool: Any, fn: Callable[[Any], Any], items: list[Any]) -> float:
    """The 2-worker speed-up this machine allows for these very steps, with no executor at all.

    One process runs every step; then two processes run half each, at the same time. On two
    cores the steps contend for the shared caches and memory bus as well as for the cores, which
    the pure-Python ``free_cores`` loop does not show; the ratio is the ceiling for "2 workers
    over 1" measured around it.
    """
    alone = pool.apply(_run_steps, ((fn, items, 0.0),))
    start_at = time.time() + 0.3
    halves = pool.map(_run_steps, [(fn, items[0::2], start_at), (fn, items[1::2], start_at)], chunksize=1)
    return alone / max(halves)


def noop(item: int) -> int:
    return item


def fixed_cost(executor: Any, settings: Mapping[str, Any]) -> float:
    """Seconds for ``executor`` to run two no-op tasks: its start-up, one round trip, its close."""
    workers = settings.get("workers")
    options = {k: v for k, v in settings.items() if k != "workers"}
    t = time.perf_counter()
    executor.map(noop, [0, 1], workers=workers, options=options, on_result=lambda i, r: None)
    return time.perf_counter() - t


class TimedExecutor:
    """A real executor, plus the time its ``map`` took (pool or cluster start-up, every step, close)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.last = inner, f"timed_{inner.name}", 0.0
        self.call: tuple[Callable[[Any], Any], list[Any]] | None = None  # the last map's (fn, items)

    def map(self, fn: Callable[[Any], Any], items: Any, **kw: Any) -> list[Any]:
        self.call = (fn, list(items))
        t = time.perf_counter()
        try:
            return self.inner.map(fn, items, **kw)
        finally:
            self.last = time.perf_counter() - t


TIMED: dict[str, TimedExecutor] = {}


@hookimpl
def register_executors(register: Callable[[TimedExecutor], None]) -> None:
    from dmca_core.default_plugins.local_executor import LocalExecutor
    from dmca_dask_executor.plugin import DaskExecutor

    for inner in (LocalExecutor(), DaskExecutor()):
        register(TIMED.setdefault(inner.name, TimedExecutor(inner)))


# A cluster "already running" is another process, as a user's would be: hosted in this process,
# its scheduler's event loop would compete with the driver for the GIL and slow every executor.
_CLUSTER = """
import logging, sys
import dask
from distributed import LocalCluster
from dmca_dask_executor.plugin import local_cluster_config
with dask.config.set(local_cluster_config(allowed_failures=3)):
    cluster = LocalCluster(n_workers=int(sys.argv[1]), threads_per_worker=1,
                           dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
print(cluster.scheduler_address, flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
cluster.close()
"""


@contextmanager
def running_cluster(workers: int) -> Iterator[str]:
    """A Dask LocalCluster in a child process; yields its scheduler address."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", _CLUSTER, str(workers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        address = proc.stdout.readline().strip()  # type: ignore[union-attr]
        if not address.startswith("tcp://"):
            raise RuntimeError(f"the Dask cluster process did not start (exit {proc.poll()})")
        yield address
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=64)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds, alternating; best kept")
    args = parser.parse_args()

    from dmca_core.default_plugins.local_executor import (
        DASK_FORKSERVER_PRELOAD,
        WithPlugins,
        plugin_modules,
        start_forkserver,
    )
    from dmca_core.plugins import pm, setup
    from dmca_core.runner import run_experiment

    # as `dmca run` does before its own imports (dmca_core/cli.py); one server for every
    # configuration, with the Dask plugin's preload as `dmca run --executor dask` has it, and this
    # file's domain plugin as `dmca run` loads installed plugins there (their entry points)
    started = start_forkserver((*DASK_FORKSERVER_PRELOAD, "sweep_scaling"))
    setup()
    # registered under its importable name (not __main__), so that worker processes can import it
    me = importlib.import_module("sweep_scaling")
    for mod in (me, importlib.import_module("dmca_causal_fallback.plugin")):
        if not pm.is_registered(mod):
            pm.register(mod)

    print(f"{args.studies} fallback studies (PC discovery + backdoor OLS), p = {P}, n = {args.rows}, "
          f"best of {args.repeat}")  # fmt: skip
    print(f"load average before: {load_average()}  (cores: {os.cpu_count()}); free cores: {free_cores():.2f}")
    total: dict[str, float] = {}
    steps: dict[str, float] = {}
    numbers: dict[str, list[Any]] = {}
    failed: dict[str, int] = {}
    every: dict[str, list[tuple[float, float]]] = {}  # (dmca run, steps) of every round
    ceilings: list[float] = []
    fixed: dict[str, list[float]] = {}
    # the ceiling probe's processes come from the same forkserver as the pool's workers
    probe = multiprocessing.get_context("forkserver" if started else "spawn").Pool(2)
    with tempfile.TemporaryDirectory() as tmp, running_cluster(2) as address, probe:
        runs: list[tuple[str, str, dict[str, Any]]] = [
            ("local, 1 worker", "local", {"workers": 1}),
            ("local, 2 workers", "local", {"workers": 2}),
            ("dask, own LocalCluster, 2 workers", "dask", {"workers": 2}),
            ("dask, running LocalCluster, 2", "dask", {"address": address}),
        ]
        for round_ in range(args.repeat):
            for label, name, settings in runs:
                out = Path(tmp) / f"{round_}-{name}-{len(total)}"
                cfg = config(args.studies, args.rows, {"name": f"timed_{name}", **settings}, out)
                # a fresh `dmca run` has no garbage from an earlier run: without this, a full
                # collection of the earlier rounds' objects (0.1-0.2 s here) lands in a random
                # round, in the driver or in the Dask scheduler's thread
                gc.collect()
                t = time.perf_counter()
                summary = run_experiment(cfg, config_path="sweep_scaling.py", out_dir=out)
                elapsed = time.perf_counter() - t
                total[label] = min(total.get(label, float("inf")), elapsed)
                steps[label] = min(steps.get(label, float("inf")), me.TIMED[name].last)
                every.setdefault(label, []).append((round(elapsed, 2), round(me.TIMED[name].last, 2)))
                failed[label] = len(summary.failed)
                rows = json.loads((out / "results.json").read_text())["results"]
                numbers.setdefault(label, [{k: v for k, v in r.items() if k != "ops"} for r in rows])
            for label, name, settings in runs[1:]:
                gc.collect()
                fixed.setdefault(label, []).append(fixed_cost(me.TIMED[name].inner, settings))
            fn, items = me.TIMED["local"].call  # type: ignore[misc]
            ceilings.append(step_ceiling(probe, WithPlugins(fn, plugin_modules()), items))
    print(
        f"  {'executor':<36} {'dmca run':>9} {'steps':>9}   (steps = the executor's map: start-up, steps, close)"
    )
    for label, _, _ in runs:
        print(f"  {label:<36} {total[label]:8.2f}s {steps[label]:8.2f}s   ({failed[label]} steps failed)")
    for what, t in (("dmca run", total), ("steps", steps)):
        one, two, own, running_ = (t[label] for label, _, _ in runs)
        print(f"{what}: speed-up 2 workers over 1 {one / two:.2f}x (target >= 1.7); dask / local, 2 workers: "
              f"own cluster {own / two:.2f}, running cluster {running_ / two:.2f} (target <= 1.15)")  # fmt: skip
    low, mid, high = np.percentile(ceilings, [0, 50, 100])
    print(f"ceiling for 2 workers over 1 (these steps in 1 process, then 2 processes at once, no executor; "
          f"each round): median {mid:.2f}x, {low:.2f}-{high:.2f}x; every round: "
          f"{[round(c, 2) for c in ceilings]}")  # fmt: skip
    print(
        "fixed cost, 2 no-op tasks through each executor (start-up, a round trip, close; median of the rounds):"
    )
    for label, _, _ in runs[1:]:
        extra = (np.median(fixed[label]) - np.median(fixed[runs[1][0]])) / steps[runs[1][0]]
        print(f"  {label:<36} {np.median(fixed[label]):.3f}s" + (
            f"   (alone adds {extra:.2f} to the steps ratio over the pool)" if label != runs[1][0] else ""))  # fmt: skip
    print("every round, (dmca run, steps) in s:")
    for label, times in every.items():
        print(f"  {label:<36} {times}")
    same = all(numbers[label] == numbers[runs[0][0]] for label, _, _ in runs)
    print(f"same results.json numbers in every run: {'yes' if same else 'NO'}")
    print(f"load average after: {load_average()}; free cores: {free_cores():.2f}")


if __name__ == "__main__":
    main()
