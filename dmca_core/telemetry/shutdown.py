"""Flush every open emitter at interpreter exit and on SIGTERM.

One process-wide ``atexit`` hook and (in the main thread only) one SIGTERM handler serve all
emitters; the handler chains whatever handler was installed before it, so DMCA stays a polite
guest in programs that embed it.
"""

from __future__ import annotations

import atexit
import signal
import threading
import weakref
from types import FrameType
from typing import Any, Protocol


class _Closable(Protocol):
    def _on_shutdown(self, from_signal: bool) -> bool:
        """Flush and close; return True if that had to wait for the interrupted main thread."""
        ...


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()
_atexit_installed = False
_sigterm_installed = False
_previous: Any = signal.SIG_DFL
_pending: tuple[int, FrameType | None] | None = None


def track(emitter: _Closable) -> None:
    """Flush ``emitter`` at exit and on SIGTERM (until it is closed and collected)."""
    global _atexit_installed
    with _lock:
        _live.add(emitter)
        if not _atexit_installed:
            atexit.register(_close_all)
            _atexit_installed = True
    _install_sigterm()


def untrack(emitter: _Closable) -> None:
    with _lock:
        _live.discard(emitter)


def _close_all(from_signal: bool = False) -> bool:
    with _lock:
        emitters = list(_live)
    deferred = False
    for em in emitters:
        deferred |= em._on_shutdown(from_signal)
    return deferred


def _install_sigterm() -> None:
    global _sigterm_installed, _previous
    sigterm = getattr(signal, "SIGTERM", None)
    if _sigterm_installed or sigterm is None:
        return
    if threading.current_thread() is not threading.main_thread():
        return  # signal.signal only works in the main thread; atexit still covers us
    try:
        _previous = signal.getsignal(sigterm)
        signal.signal(sigterm, _on_sigterm)
    except (ValueError, OSError):  # e.g. an embedding interpreter that forbids it
        return
    _sigterm_installed = True


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _pending
    if _close_all(from_signal=True):
        # the signal interrupted an emitter mid-flush in this thread: it closes itself when it
        # leaves that critical section and then calls resume_signal(), so nothing is lost
        _pending = (signum, frame)
        return
    _chain(signum, frame)


def resume_signal() -> None:
    """Called by an emitter that finished a close deferred by SIGTERM: pass the signal on."""
    global _pending
    pending, _pending = _pending, None
    if pending is not None:
        _chain(*pending)


def _chain(signum: int, frame: FrameType | None) -> None:
    prev = _previous
    if callable(prev):
        prev(signum, frame)
    elif prev == signal.SIG_DFL or prev is None:
        # behave as if we had never been here: default action, i.e. terminate by this signal
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
    # SIG_IGN: the program chose to ignore SIGTERM; we flushed and carry on
