"""Steps cut into executor tasks (dmca_core/batches.py): every step once, few tasks, balanced."""

from __future__ import annotations

import pytest

from dmca_core.batches import MAX_BATCH, SHARE, RunBatch, batch_option, batch_sizes, batches
from dmca_core.errors import UsageError


@pytest.mark.parametrize(("count", "threads"), [(0, 2), (1, 2), (2, 2), (7, 1), (64, 2), (64, 8), (1000, 3)])
@pytest.mark.parametrize("most", [1, 3, MAX_BATCH, 10**6])
def test_batches_cover_every_step_once_large_first_single_last(count: int, threads: int, most: int) -> None:
    sizes = batch_sizes(count, threads, most)
    assert sum(sizes) == count
    assert sizes == sorted(sizes, reverse=True)  # large batches first ...
    assert all(1 <= s <= most for s in sizes)
    if count >= SHARE * threads:
        assert (
            sizes[-threads:] == [1] * threads
        )  # ... and at least as many single steps at the end as threads
    left = count
    for size in sizes:  # each batch at most its share of what was left
        assert size <= max(1, -(-left // (SHARE * threads)))
        left -= size
    steps = list(range(100, 100 + count))
    cut = batches(steps, threads, most)
    assert [len(b) for b in cut] == sizes
    assert sorted(i for b in cut for i in b) == steps  # each step in exactly one batch
    assert all(b == sorted(b) for b in cut)


def test_a_64_step_sweep_on_two_threads_is_a_handful_of_tasks() -> None:
    assert batch_sizes(64, 2, 10**6) == [16, 12, 9, 7, 5, 4, 3, 2, 2, 1, 1, 1, 1]
    assert batch_sizes(64, 2) == [8, 8, 8, 8, 8, 6, 5, 4, 3, 2, 1, 1, 1, 1]  # capped at MAX_BATCH = 8


def _finish(costs: list[float], cut: list[list[int]], workers: int) -> float:
    """When the last of ``workers`` finishes, each taking the next batch as it becomes free."""
    free = [0.0] * workers
    for b in cut:
        w = free.index(min(free))
        free[w] += sum(costs[i] for i in b)
    return max(free)


@pytest.mark.parametrize(
    "costs",
    [
        [20.0] * 16 + [1.0] * 48,  # one costly study first: its steps are neighbours in the plan
        [1.0] * 48 + [20.0] * 16,
        [10.0] * 8 + [1.0] * 24,
        [1.0] * 64,
    ],
)
def test_the_steps_of_a_costly_study_are_spread_over_the_batches(costs: list[float]) -> None:
    ideal = sum(costs) / 2
    cut = batches(range(len(costs)), 2)
    assert len(cut) <= len(costs) / 2  # far fewer tasks than steps ...
    assert _finish(costs, cut, 2) <= 1.1 * ideal  # ... and both workers done at about the same time
    contiguous, start = [], 0  # the same sizes cut in plan order put a costly study in one batch
    for size in batch_sizes(len(costs), 2, 10**6):
        contiguous.append(list(range(start, start + size)))
        start += size
    if costs[0] > costs[-1]:
        assert _finish(costs, contiguous, 2) > 1.4 * ideal


def test_the_batch_option_is_checked() -> None:
    assert batch_option({}) == MAX_BATCH
    assert batch_option({"batch": 1}) == 1
    for bad in (0, -2, True, "4", 2.5):
        with pytest.raises(UsageError, match=r"executor\.options\.batch: must be an integer >= 1"):
            batch_option({"batch": bad})


def test_a_batch_runs_its_steps_in_order() -> None:
    assert RunBatch(lambda x: x * x)([3, 1, 2]) == [9, 1, 4]
