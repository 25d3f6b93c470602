"""Keep freed memory in the heap of a process that runs study steps (glibc only).

A study step allocates and frees numpy temporaries of 0.1-10 MB many times over. With glibc's
defaults each one above the mmap threshold is mapped and unmapped afresh, and memory freed at the
top of the heap is handed back to the OS at once, so the next temporary page-faults it in again:
about 40% of an n = 1e4 step's time (docs/benchmarks.md). Raising both limits lets the process
reuse what it freed; it keeps at most ``TRIM`` bytes of free heap it does not use.

The kept memory is resident, so a step's measured peak memory (``peak_mem_mb``, and the memory
part of its cost) may include up to ``TRIM`` bytes freed by an earlier step in the same process.
Trimming it between steps (``malloc_trim``) was measured and undoes most of the gain: it is the
reuse across steps, not within one, that saves the page faults.
"""

from __future__ import annotations

import ctypes
import functools
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
TRIM = 128 << 20  # free heap above this is returned to the OS (32 MB: n = 1e5 steps ~20% slower)
MMAP = 32 << 20  # allocations this large or larger are still mapped one by one


@functools.cache
def keep_freed_memory() -> bool:
    """Set the limits once per process; False where the C library is not glibc (a no-op)."""
    return _mallopt()


def _mallopt() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl's mallopt does nothing
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP))
