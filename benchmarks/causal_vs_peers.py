"""Causal discovery and complete studies: the numpy fallback against causal-learn, same data, one run.

    python benchmarks/causal_vs_peers.py            # p in 10..100, n in 1e3..1e5
    python benchmarks/causal_vs_peers.py --quick    # p in {10, 50}, n in {1e3, 1e4}

For each size, linear-Gaussian data from a random DAG (about three neighbours a node, weights
+-[0.3, 1.0]) are handed to both PCs at the same alpha; each is timed ``--repeat`` times (best
kept) after one warm-up call of each. Printed: both times, their ratio, and whether skeleton and
CPDAG are identical. Then one complete study (``dmca_core.study.run_study``, true DAG given,
p = 10, n = 1e4) through each estimator plugin.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable
from itertools import combinations
from typing import Any

import numpy as np

from dmca_causal_fallback import pc as fallback_pc
from dmca_core.types import Graph, Table


def random_dag_data(p: int, n: int, seed: int) -> tuple[Graph, Table]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(p)
    w = np.zeros((p, p))
    for a, b in combinations(range(p), 2):
        if rng.random() < 3.0 / (p - 1):
            w[order[a], order[b]] = rng.uniform(0.3, 1.0) * rng.choice((-1.0, 1.0))
    x = rng.standard_normal((n, p)) @ np.linalg.inv(np.eye(p) - w)
    names = tuple(f"V{i}" for i in range(p))
    dag = Graph(names, [(names[i], names[j]) for i, j in zip(*np.nonzero(w), strict=True)])
    return dag, Table(names, x)


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def causal_learn_pc(table: Table, alpha: float) -> Graph:
    from causallearn.search.ConstraintBased.PC import pc

    from dmca_causal_full.discovery import graph_from_endpoints

    cg = pc(
        table.values, alpha, indep_test="fisherz", stable=True, uc_rule=0, uc_priority=2, show_progress=False
    )
    return graph_from_endpoints(table.names, np.asarray(cg.G.graph))


def discovery_rows(sizes: list[tuple[int, int]], alpha: float, repeat: int) -> None:
    _, warm = random_dag_data(6, 500, 99)
    fallback_pc.discover(warm, alpha)
    causal_learn_pc(warm, alpha)
    print(f"PC (Fisher z, stable, alpha={alpha}): fallback (numpy) vs causal-learn, best of {repeat}")
    print(f"{'p':>4} {'n':>7} {'fallback s':>11} {'causal-learn s':>15} {'ratio':>7}  skeleton  CPDAG")
    for p, n in sizes:
        _, table = random_dag_data(p, n, seed=p * 1000 + n % 997)
        t_fb, g_fb = best_time(lambda t=table: fallback_pc.discover(t, alpha), repeat)
        t_cl, g_cl = best_time(lambda t=table: causal_learn_pc(t, alpha), repeat)
        skel = "same" if g_fb.skeleton() == g_cl.skeleton() else "DIFFERENT"
        cpdag = "same" if g_fb == g_cl else "different"
        print(
            f"{p:>4} {n:>7} {t_fb:>11.4f} {t_cl:>15.3f} {t_cl / t_fb:>6.1f}x  {skel:>8}  {cpdag}", flush=True
        )


def topological_pair(dag: Graph) -> tuple[str, str]:
    """A treatment with descendants, and its descendant that comes last in topological order."""
    order: list[str] = []
    indeg = {v: len(dag.parents(v)) for v in dag.nodes}
    ready = [v for v in dag.nodes if indeg[v] == 0]
    while ready:
        v = ready.pop(0)
        order.append(v)
        for c in sorted(dag.children(v)):
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)

    def descendants(v: str) -> set[str]:
        out, stack = set(), [v]
        while stack:
            for c in dag.children(stack.pop()):
                if c not in out:
                    out.add(c)
                    stack.append(c)
        return out

    for v in order:
        if desc := descendants(v):
            return v, max(desc, key=order.index)
    raise SystemExit("the random DAG has no edge")


def study_rows(alpha: float, repeat: int) -> None:
    from dmca_core.plugins import get_estimator, pm, setup
    from dmca_core.study import run_study

    setup()
    for module in ("dmca_causal_fallback.plugin", "dmca_causal_full.plugin"):
        mod = importlib.import_module(module)
        if not pm.is_registered(mod):
            pm.register(mod)
    dag, table = random_dag_data(10, 10_000, seed=7)
    treatment, outcome = topological_pair(dag)
    print(f"\ncomplete study, p=10, n=10000, true DAG given, {treatment} -> {outcome}, best of {repeat}")
    times = {}
    for name in ("fallback", "full"):
        est = get_estimator(name)

        def study(est: Any = est) -> Any:
            return run_study(
                table,
                treatment=treatment,
                outcome=outcome,
                t0=0,
                t1=1,
                graph=dag,
                alpha=alpha,
                estimator=est,
                seed=0,
            )

        study()  # warm-up
        times[name], res = best_time(study, repeat)
        print(
            f"{name:>9}: {times[name] * 1000:9.1f} ms  effect={res.causal_effect:+.6f}  "
            f"SR9={res.SR9:.3f}  DI2={res.DI2:.3f}  reliability={res.reliability_score:.3f}",
            flush=True,
        )
    print(f"    ratio: {times['full'] / times['fallback']:.1f}x (full / fallback)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="p in {10, 50}, n in {1e3, 1e4} only")
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each (best kept)")
    ap.add_argument("--no-study", action="store_true", help="skip the complete-study row")
    args = ap.parse_args()
    ps, ns = ((10, 50), (1_000, 10_000)) if args.quick else ((10, 20, 50, 100), (1_000, 10_000, 100_000))
    discovery_rows([(p, n) for p in ps for n in ns], args.alpha, args.repeat)
    if not args.no_study:
        study_rows(args.alpha, args.repeat)


if __name__ == "__main__":
    main()
