"""Ctrl-C and SIGTERM during a run: an exception in the main thread, never in the middle of a record.

While a run is in progress, SIGINT raises ``KeyboardInterrupt`` and SIGTERM raises
:class:`Terminated` in the main thread, so that the run unwinds the normal way: the executor
stops its workers, the steps that finished keep their results and telemetry, and the telemetry
file is flushed and closed. Python's own SIGINT handler raises anywhere, including half-way
through recording a step's outcome; here the signal is held back while the main thread is inside
:func:`held` (recording a batch of results, writing the run's outputs) and raised as soon as it
leaves. Once one signal has been raised, the next is only noted, so that a second Ctrl-C does not
cut the clean-up short (stopping workers, writing results); a third one is raised at once.
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


_active: Interrupts | None = None  # the run in progress in this process's main thread, if any


@contextmanager
def held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back for a short block while a run is in progress (else a no-op).

    Executors wrap the hand-over of a batch of results in it, so that an interrupt never falls
    between two steps whose results had already arrived."""
    if _active is None:
        yield
        return
    with _active.critical():
        yield


class Interrupts:
    """SIGINT/SIGTERM handlers for the duration of a ``with`` block (main thread only)."""

    def __init__(self) -> None:
        self._depth = 0
        self._pending: BaseException | None = None
        self._raised = 0
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        global _active
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
                if sig is not None:
                    self._saved[sig] = signal.signal(sig, self._handle)
            _active = self
        return self

    def __exit__(self, *exc: object) -> None:
        global _active
        for sig, previous in self._saved.items():
            signal.signal(sig, previous)
        self._saved.clear()
        if _active is self:
            _active = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        error = KeyboardInterrupt() if signum == signal.SIGINT else Terminated()
        if self._raised == 1:  # the run is already stopping: let it finish that
            self._raised += 1
            return
        if self._depth and not self._raised:
            self._pending = self._pending or error  # raised when the critical section ends
            return
        self._raised += 1
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
                self._raised += 1
                raise error
