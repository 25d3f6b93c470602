"""Standard output that a reader closed early (``dmca plugins | head -3``)."""

from __future__ import annotations

import contextlib
import os
import sys


def drop_stdout() -> None:
    """Point stdout at /dev/null after a BrokenPipeError, so that the interpreter's final flush
    does not raise again: the reader went away, its choice, not an error (``dmca`` and ``sidrce``)."""
    with contextlib.suppress(OSError, ValueError):  # a stdout without a descriptor
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
