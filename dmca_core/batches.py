"""Steps grouped into executor tasks: few tasks, yet every worker finishes at about the same time.

Every task has a fixed cost besides its steps: pickling, queues and a round trip for a local pool
worker (~0.5 ms of CPU), about a millisecond of scheduler, driver and worker CPU and several more
in round trips on Dask; a fallback study step at n = 1e4 takes ~15 ms, and one Dask task per step
spent ~40% of a 64-step sweep's CPU on scheduling (docs/benchmarks.md).

Sizes are guided: each batch holds at most ``1 / (SHARE × threads)`` of the steps not yet batched
and at most ``most`` steps, so the first tasks are large and the last ones single steps, which
even out the workers' finishing times. Steps are dealt to the batches like cards, one to every
batch with room per round, so that each batch samples the whole sweep: the steps of one costly
study, which are neighbours in the plan, end up spread over many batches instead of one. The
cap keeps progress and telemetry coming (a batch reports when all its steps are done) and bounds
the work a crash throws away.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import UsageError

SHARE = 2  # each batch is at most 1/(SHARE × threads) of the steps not yet batched
MAX_BATCH = 8  # steps in one task at most (executor option ``batch``)


def batch_option(options: Mapping[str, Any]) -> int:
    """The executors' ``batch`` option: at most this many steps in one task (1: a task per step)."""
    value = options.get("batch", MAX_BATCH)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"executor.options.batch: must be an integer >= 1, got {value!r}")
    return value


def batch_sizes(count: int, threads: int, most: int = MAX_BATCH) -> list[int]:
    """Sizes of the batches covering ``count`` steps for ``threads`` worker threads, largest first."""
    sizes: list[int] = []
    left = count
    while left:
        size = max(1, min(most, math.ceil(left / (SHARE * max(1, threads)))))
        sizes.append(size)
        left -= size
    return sizes


def batches(indices: Sequence[int], threads: int, most: int = MAX_BATCH) -> list[list[int]]:
    """``indices`` cut into batches of :func:`batch_sizes`, dealt round-robin (see the module)."""
    sizes = batch_sizes(len(indices), threads, most)
    out: list[list[int]] = [[] for _ in sizes]
    room = list(range(len(sizes)))
    it = iter(indices)
    while room:  # sizes never increase, so the batches with room are always a prefix
        for b in room:
            out[b].append(next(it))
        room = [b for b in room if len(out[b]) < sizes[b]]
    return out


class RunBatch:
    """One task: ``fn`` over a batch of items, results in the batch's order.

    A step that raises fails its whole batch; study steps never raise (their errors are results),
    so this only happens when a worker cannot run at all.
    """

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, batch: list[Any]) -> list[Any]:
        return [self.fn(item) for item in batch]
