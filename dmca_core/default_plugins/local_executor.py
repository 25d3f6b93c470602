"""The built-in ``local`` executor: a process pool on this machine (in-process with one worker)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from dmca_core import hookimpl


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class LocalExecutor:
    name = "local"

    def map(
        self,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        *,
        workers: int | None,
        options: Mapping[str, Any],
        on_result: Callable[[int, Any], None],
    ) -> list[Any]:
        n = default_workers() if workers is None else max(1, int(workers))
        n = min(n, max(1, len(items)))
        results: list[Any] = [None] * len(items)
        if n == 1:
            for i, item in enumerate(items):
                results[i] = fn(item)
                on_result(i, results[i])
            return results
        with ProcessPoolExecutor(max_workers=n) as pool:
            pending = {pool.submit(fn, item): i for i, item in enumerate(items)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    results[i] = fut.result()
                    on_result(i, results[i])
        return results


@hookimpl(trylast=True)
def register_executors(register: Callable[[LocalExecutor], None]) -> None:
    register(LocalExecutor())
