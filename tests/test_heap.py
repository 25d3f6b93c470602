"""Processes that run study steps keep freed heap memory (glibc's mallopt), once per process."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt is set only with glibc")
def test_limits_are_set_with_glibc_and_a_freed_temporary_stays_in_the_process() -> None:
    # in a fresh interpreter: the limits are per process and this one may have set them already
    code = """
import ctypes, numpy as np
from dmca_core.heap import keep_freed_memory
def rss():
    return int(open('/proc/self/statm').read().split()[1])
assert keep_freed_memory() and keep_freed_memory()
a = np.ones(2_000_000)  # 16 MB: below the new mmap threshold, so it comes from the heap
before = rss()
del a
print(before - rss())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # with glibc's defaults the 16 MB array is mapped and unmapped (~3900 pages go back at once)
    assert int(out.stdout) < 500, out.stdout


def test_without_glibc_it_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    from dmca_core import heap

    monkeypatch.setattr(heap.sys, "platform", "darwin")
    assert heap._mallopt() is False
