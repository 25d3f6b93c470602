"""The built-in ``jsonl`` telemetry sink: append to a local file, one ``write()`` per flush."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from dmca_core import hookimpl

# O_APPEND makes each write land at the end even with several writers; O_BINARY matters on Windows
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)


class FileHandle:
    def __init__(self, path: Path, fsync: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # created as open(path, "a") would (0666 less the umask), like the results: SIDRCE often
        # runs as another user (the compose stack's uid 10001). Private runs: umask 077, or
        # encrypt the telemetry
        self._fd: int | None = os.open(path, _FLAGS, 0o666)
        self._fsync = fsync

    def write(self, data: bytes) -> None:
        if self._fd is None or not data:
            return
        view = memoryview(data)
        written = os.write(self._fd, view)
        while written < len(view):  # a regular file takes it whole; a full disk may not
            written += os.write(self._fd, view[written:])
        if self._fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class JsonlSink:
    name = "jsonl"

    def open(self, path: Path, *, fsync: bool) -> FileHandle:
        return FileHandle(Path(path), fsync)


@hookimpl(trylast=True)
def register_telemetry_sinks(register: Callable[[JsonlSink], None]) -> None:
    register(JsonlSink())
