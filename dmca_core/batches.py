"""Steps grouped into executor tasks: large batches first, single steps last (guided scheduling).

Every task has a fixed cost besides its steps: pickling, queues and a round trip for a local pool
worker (~0.5 ms of CPU), about a millisecond of scheduler, driver and worker CPU and several more
in round trips on Dask; a fallback study step at n = 1e4 takes ~15 ms, and one Dask task per step
spent ~40% of a 64-step sweep's CPU on scheduling (docs/benchmarks.md). Each batch here is a share
of what is left, ``remaining / (SHARE × threads)``, so the first batches are large (few tasks) and
the last ones single steps (every worker finishes at about the same time, however long each
step is).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

SHARE = 2  # each batch is at most 1/(SHARE × threads) of the steps not yet batched


def batch_sizes(count: int, threads: int) -> list[int]:
    """Sizes of consecutive batches covering ``count`` steps for ``threads`` worker threads."""
    sizes: list[int] = []
    left = count
    while left:
        size = max(1, math.ceil(left / (SHARE * max(1, threads))))
        sizes.append(size)
        left -= size
    return sizes


def batches(items: Sequence[Any], threads: int) -> list[tuple[int, list[Any]]]:
    """``items`` cut into (index of the first item, items) batches, in order."""
    out: list[tuple[int, list[Any]]] = []
    start = 0
    for size in batch_sizes(len(items), threads):
        out.append((start, list(items[start : start + size])))
        start += size
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
