"""Ctrl-C and SIGTERM during a run: an exception in the main thread, never in the middle of a record.

While a run is in progress, SIGINT raises ``KeyboardInterrupt`` and SIGTERM raises
:class:`Terminated` in the main thread, so that the run unwinds the normal way: the executor
stops its workers, the steps that finished keep their results and telemetry, and the telemetry
file is flushed and closed. Python's own SIGINT handler raises anywhere, including half-way
through recording a step's outcome; here the signal is held back while the main thread is inside
:meth:`Interrupts.critical` (recording one step) and raised as soon as it leaves.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM during a run (a ``KeyboardInterrupt``, so code that cleans up after Ctrl-C does so here)."""


class Interrupts:
    """SIGINT/SIGTERM handlers for the duration of a ``with`` block (main thread only)."""

    def __init__(self) -> None:
        self._depth = 0
        self._pending: BaseException | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
                if sig is not None:
                    self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._saved.items():
            signal.signal(sig, previous)
        self._saved.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        error = KeyboardInterrupt() if signum == signal.SIGINT else Terminated()
        if self._depth:
            self._pending = self._pending or error  # raised when the critical section ends
            return
        raise error

    @contextmanager
    def critical(self) -> Iterator[None]:
        """Hold signals back until the block is done (it must be short)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self._pending is not None:
                error, self._pending = self._pending, None
                raise error
