"""Reading telemetry files: plain or gzip, whole (the CLI) or followed as they grow (the server).

Bytes become blocks of complete lines handed to a :class:`LineSink`; only the unfinished last line
is held back. A gzip file is a series of members (one per emitter flush); a member cut short by a
crash is either the end of the file (its lines so far count, the cut line is ``truncated``) or is
followed by the next flush's member, which is found again by its magic number.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Protocol

CHUNK = 8 << 20  # large binary reads: fewer system calls and fewer Python-level splits
GZIP_MAGIC = b"\x1f\x8b\x08"


class LineSink(Protocol):
    def block(self, data: bytes | memoryview, line0: int) -> int | None:
        """``data``: complete lines, each ending in ``\\n``; the first one is line ``line0``.

        May return the number of lines in ``data`` (when it counted them anyway), which saves the
        stream another pass over the bytes."""

    def tail(self, data: bytes, line: int) -> None:
        """The last line of a stream that ended without ``\\n`` (maybe cut by a crash)."""

    def cut(self, line: int) -> None:
        """Line ``line`` was lost in a damaged gzip member."""

    def finish(self) -> None:
        """The stream ended (end of file, rotation or truncation)."""


class _Gunzip:
    """Streaming gzip decoder for a series of members, tolerant of a member cut short."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._member = bytearray()  # raw bytes of the current member, to resync after damage
        self.damaged = 0
        self.in_member = False

    def feed(self, raw: bytes) -> list[bytes | None]:
        """Decoded bytes in order; ``None`` marks where a damaged member was skipped."""
        out: list[bytes | None] = []
        while raw:
            self.in_member = True
            self._member += raw
            try:
                out.append(self._d.decompress(raw))
            except zlib.error:
                # a crash left a partial member and the next flush appended a new one after it
                self.damaged += 1
                pos = bytes(self._member).find(GZIP_MAGIC, 1)
                rest = bytes(self._member[pos:]) if pos >= 0 else b""
                self._reset()
                out.append(None)
                raw = rest
                if not rest:
                    self.in_member = False
                continue
            if self._d.eof:
                raw = self._d.unused_data
                self._reset()
                self.in_member = bool(raw)
            else:
                raw = b""
        return out

    def _reset(self) -> None:
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._member = bytearray()


class Stream:
    """One file (one inode) read from the start; :meth:`pump` hands new lines to ``sink``."""

    def __init__(self, path: Path, sink: LineSink, *, start: int = 0) -> None:
        """``start``: a byte offset just after a ``\\n`` of a plain file to read from (line
        numbers then count from there, starting at 1); 0 for the whole file, plain or gzip."""
        self.path = path
        self.sink = sink
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        st = os.fstat(self.fd)
        self.ino = (st.st_dev, st.st_ino)
        self.offset = start
        self.line = 1
        self._pending = b""
        self._gz: _Gunzip | None = None
        self._sniffed = start > 0
        self.closed = False

    def pump(self, limit: int | None = None) -> int:
        """Read up to ``limit`` new bytes (all available if None); returns the number read."""
        total = 0
        while limit is None or total < limit:
            size = CHUNK if limit is None else min(CHUNK, limit - total)
            raw = os.pread(self.fd, size, self.offset)
            if not raw:
                break
            self.offset += len(raw)
            total += len(raw)
            if not self._sniffed:
                self._sniffed = True
                # JSON text never starts with 0x1f, gzip always does
                if raw[:1] == GZIP_MAGIC[:1]:
                    self._gz = _Gunzip()
            if self._gz is None:
                self._lines_plain(raw)
            else:
                for part in self._gz.feed(raw):
                    if part is None:
                        # the line being decoded when the member broke is lost
                        self.sink.cut(self.line)
                        self.line += 1
                        self._pending = b""
                    else:
                        self._lines_plain(part)
        return total

    def _lines_plain(self, data: bytes) -> None:
        if not data:
            return
        cut = data.rfind(b"\n")
        if cut < 0:
            self._pending += data
            return
        start = 0
        if self._pending:
            # the held-back line and its end go first, alone: no copy of the whole read
            start = data.find(b"\n") + 1
            self._block(self._pending + data[:start])
        self._pending = data[cut + 1 :]
        if start <= cut:
            self._block(memoryview(data)[start : cut + 1])

    def _block(self, block: bytes | memoryview) -> None:
        line0 = self.line
        n = self.sink.block(block, line0)
        self.line += bytes(block).count(b"\n") if n is None else n

    def close(self, *, final: bool = True) -> None:
        """End of this stream: a held-back line without ``\\n`` goes to ``sink.tail``."""
        if self.closed:
            return
        self.closed = True
        try:
            if final:
                if self._pending:
                    self.sink.tail(self._pending, self.line)
                    self.line += 1
                self._pending = b""
                self.sink.finish()
        finally:
            os.close(self.fd)


def read_all(path: Path, sink: LineSink) -> None:
    """Read a whole file once (the CLI)."""
    try:
        stream = Stream(path, sink)
    except OSError as exc:
        from dmca_core.errors import UsageError

        raise UsageError(f"{path}: cannot read telemetry: {exc.strerror or exc}") from None
    try:
        stream.pump()
    finally:
        stream.close()


class Follower:
    """Follow ``path`` as it grows, is rotated (new inode) or truncated (size below what was read).

    ``new_sink()`` makes the sink for each new stream; each :meth:`poll` reads only new bytes.
    """

    def __init__(self, path: Path, new_sink) -> None:  # noqa: ANN001 - a factory of LineSink
        self.path = Path(path)
        self.new_sink = new_sink
        self.stream: Stream | None = None
        self.generation = 0
        self.truncated = False  # while ``new_sink`` runs: True if the file was truncated in place

    def poll(self, limit: int | None = 64 << 20) -> int:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        got = 0
        cur = self.stream
        if cur is not None:
            rotated = st is None or (st.st_dev, st.st_ino) != cur.ino
            if rotated:
                got += cur.pump()  # the old file may still have lines written before the rename
                cur.close()
                self.stream = cur = None
            elif st is not None and st.st_size < cur.offset:
                cur.close()  # truncated in place: the old contents are gone; start over
                self.stream = cur = None
                self.truncated = True
        if cur is None and st is not None:
            try:
                self.stream = cur = Stream(self.path, self.new_sink(self.generation))
                self.generation += 1
            except FileNotFoundError:
                return got
            finally:
                self.truncated = False
        if cur is not None:
            got += cur.pump(limit)
        return got

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None
