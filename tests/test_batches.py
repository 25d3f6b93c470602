"""Steps cut into executor tasks (dmca_core/batches.py): every step once, in order, large first."""

from __future__ import annotations

import pytest

from dmca_core.batches import SHARE, RunBatch, batch_sizes, batches


@pytest.mark.parametrize(("count", "threads"), [(0, 2), (1, 2), (2, 2), (7, 1), (64, 2), (64, 8), (1000, 3)])
def test_batches_cover_every_step_once_in_order_large_first_single_last(count: int, threads: int) -> None:
    sizes = batch_sizes(count, threads)
    assert sum(sizes) == count
    assert sizes == sorted(sizes, reverse=True)  # large batches first ...
    if count >= SHARE * threads:
        assert (
            sizes[-threads:] == [1] * threads
        )  # ... and at least as many single steps at the end as threads
    left = count
    for size in sizes:  # each batch at most its share of what was left
        assert size <= max(1, -(-left // (SHARE * threads)))
        left -= size
    items = list(range(count))
    cut = batches(items, threads)
    assert [i for _, batch in cut for i in batch] == items
    assert [start for start, _ in cut] == [sum(sizes[:k]) for k in range(len(sizes))]


def test_a_64_step_sweep_on_two_threads_is_a_handful_of_tasks() -> None:
    assert batch_sizes(64, 2) == [16, 12, 9, 7, 5, 4, 3, 2, 2, 1, 1, 1, 1]


def test_a_batch_runs_its_steps_in_order() -> None:
    assert RunBatch(lambda x: x * x)([3, 1, 2]) == [9, 1, 4]
