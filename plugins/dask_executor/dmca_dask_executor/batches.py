"""Steps grouped into Dask tasks: large batches first, single steps last (guided scheduling).

A Dask task costs about a millisecond of scheduler, driver and worker time, and several more in
round trips; a fallback study step at n = 1e4 takes ~15 ms, so one task per step spent ~40% of a
64-step sweep's CPU on scheduling (docs/benchmarks.md). Each batch here is a share of what is
left, ``remaining / (SHARE × threads)``, so the first batches are large (few tasks) and the last
ones are single steps (every thread finishes at about the same time, however long each step is).
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
    """A Dask task: ``fn`` over a batch of items, results in the batch's order.

    A step that raises fails its whole batch (Dask re-runs it, ``retries`` times); study steps
    never raise (their errors are results), so this only happens when a worker cannot run at all.
    """

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, batch: list[Any]) -> list[Any]:
        return [self.fn(item) for item in batch]
