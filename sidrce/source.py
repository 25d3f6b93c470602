"""Reading telemetry files: plain or gzip, whole (the CLI) or followed as they grow (the server).

Bytes become blocks of complete lines handed to a :class:`LineSink`; only the unfinished last line
is held back. A gzip file is a series of members (one per emitter flush); a member cut short by a
crash is either the end of the file (its lines so far count, the cut line is ``truncated``) or is
followed by the next flush's member, which is found again by its magic number.
"""

from __future__ import annotations

import copy
import errno
import os
import stat
import time
import zlib
from pathlib import Path
from typing import Protocol

CHUNK = 8 << 20  # large binary reads: fewer system calls and fewer Python-level splits
GZIP_MAGIC = b"\x1f\x8b\x08"
FINGERPRINT = 64  # bytes before the read offset compared on each poll (see Stream.same_bytes)
HEAD = 4096  # first bytes of a file kept to recognise a copy of it put in its place (Stream.adopt)
COMPARE = 1 << 20  # bytes per read when a copy is compared with the old file: never a whole file in memory
# A line longer than this is rejected (not_json) and its bytes are skipped as they are read, never
# held: a file without newlines must not grow the reader's memory without bound. A record is a few
# hundred bytes; an envelope of a large batch stays far below this.
MAX_LINE = 1 << 20
# A renamed (rotated) file still written by the process that had it open is read on until no byte
# has been added to it for this many polls (at least DRAIN_MIN_SECONDS); then the new file is read.
DRAIN_POLLS = 20
DRAIN_MIN_SECONDS = 1.0


class ReadError(OSError):
    """Reading the telemetry file failed. Only this (and failing to open it) is "cannot read
    telemetry": an OSError raised by a sink, e.g. a closed stdout under ``sidrce validate | head``,
    is not about the file and goes up as it is."""


class LineSink(Protocol):
    def block(self, data: bytes | memoryview, line0: int) -> int | None:
        """``data``: complete lines, each ending in ``\\n``; the first one is line ``line0``.

        May return the number of lines in ``data`` (when it counted them anyway), which saves the
        stream another pass over the bytes."""

    def tail(self, data: bytes, line: int) -> None:
        """The last line of a stream that ended without ``\\n`` (maybe cut by a crash)."""

    def cut(self, line: int, detail: str = "damaged gzip member") -> None:
        """Line ``line`` was lost in a damaged gzip member (or one cut short at the end)."""

    def finish(self) -> None:
        """The stream ended (end of file, rotation or truncation)."""

    # optional: ``too_long(line, size)``, line ``line`` is longer than :data:`MAX_LINE` (its bytes
    # were skipped); a sink without it gets ``cut(line, detail)``


class _Gunzip:
    """Streaming gzip decoder for a series of members, tolerant of a member cut short.

    A member cut by a crash and followed by the next flush's member does not always make zlib
    fail: the new member's bytes may decode as more (garbage) data of the cut one. So wherever
    the gzip magic appears inside a member that has not ended, and a member plausibly starts there
    (:func:`_starts_member`), the current member is taken as cut at that point.
    """

    def __init__(self) -> None:
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._member = bytearray()  # raw bytes of the current member, to resync after damage
        self._emitted = 0  # decoded bytes of the current member handed out so far
        self._held = b""  # a possible member start too short to judge yet
        self.damaged = 0
        self.in_member = False

    def feed(self, raw: bytes, *, final: bool = False) -> list[bytes | None]:
        """Decoded bytes in order; ``None`` marks where a damaged member was skipped.
        ``final``: no more bytes will come (decide on anything held back)."""
        out: list[bytes | None] = []
        data = self._held + raw if self._held else raw
        self._held = b""
        pos = 0  # data[:pos] has been fed
        search = 1 if not self._member else 0  # a new member's own magic is not a cut
        while pos < len(data):
            self.in_member = True
            p = data.find(GZIP_MAGIC, max(search, pos))
            end = len(data) if p < 0 else p
            if end > pos:
                piece = data[pos:end]
                self._member += piece
                try:
                    part = self._d.decompress(piece)
                except zlib.error:  # damage inside the member: keep what precedes it, resync
                    data, pos, search = self._damaged(out, data[end:]), 0, 1
                    continue
                pos = end
                self._emitted += len(part)
                out.append(part)
                if self._d.eof:
                    unused = self._d.unused_data
                    self._reset()
                    # the usual member ends right where the next one's magic was found, so go on
                    # at the same offset: rebuilding the rest of a chunk at every member end
                    # made many small members (one per flush) cost quadratic time
                    if unused:  # bytes after the member inside this piece: rare, so copying is fine
                        data, pos = unused + data[pos:], 0
                    search = pos + 1
                    self.in_member = pos < len(data)
                    continue
            if p < 0:
                break
            if len(data) - p < 10 and not final:  # not even a gzip header yet: judge it with more bytes
                self._held = data[p:]
                break
            if _starts_member(data[p : p + 4096]):  # the current member was cut here
                self.damaged += 1
                self._reset()
                out.append(None)
                pos, search = p, p + 1
                continue
            search = p + 1
        return out

    def _damaged(self, out: list[bytes | None], unfed: bytes) -> bytes:
        """zlib failed in the current member: hand out what it held before the damage, mark the
        cut, and return the bytes to go on from (the next member's magic, if any)."""
        self.damaged += 1
        member = bytes(self._member)
        at = member.find(GZIP_MAGIC, 1)
        # the call that failed returned nothing: decode the member alone again to keep the lines
        # it holds before the damage
        out.append(_salvage(member[:at] if at >= 0 else member)[self._emitted :])
        rest = member[at:] + unfed if at >= 0 else unfed
        self._reset()
        out.append(None)
        self.in_member = bool(rest)
        return rest

    def _reset(self) -> None:
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._member = bytearray()
        self._emitted = 0


def _starts_member(data: bytes) -> bool:
    """Whether a gzip member plausibly starts at ``data`` (which starts with the magic): reserved
    flag bits clear, and its first bytes decode without error to the start of a JSON line. The
    magic inside compressed data by chance (once in 16 MiB) almost never passes all three."""
    if len(data) < 10 or data[3] & 0xE0:
        return False
    try:
        text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[:4096], 64)
    except zlib.error:
        return False
    return text.lstrip()[:1] == b"{"


def _salvage(member: bytes) -> bytes:
    """What a damaged gzip member decodes to before the damage (in small steps: a step that fails
    returns nothing)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    got = bytearray()
    for i in range(0, len(member), 1024):
        try:
            got += d.decompress(member[i : i + 1024])
        except zlib.error:
            break
        if d.eof:
            break
    return bytes(got)


def _same_bytes(fd_a: int, fd_b: int, end: int) -> tuple[int, int] | int:
    """Whether two open files hold the same bytes over ``[0, end)``, compared a chunk at a time:
    ``(number of \\n, offset of the last one or -1)`` if so, else the offset of the first byte
    that differs (-1 if ``fd_a`` has fewer than ``end`` bytes)."""
    newlines, last_nl, pos = 0, -1, 0
    while pos < end:
        n = min(COMPARE, end - pos)
        a = os.pread(fd_a, n, pos)
        if len(a) != n:
            return -1
        b = os.pread(fd_b, n, pos)
        if b != a:
            return pos + _first_difference(a, b)
        newlines += a.count(b"\n")
        at = a.rfind(b"\n")
        if at >= 0:
            last_nl = pos + at
        pos += n
    return newlines, last_nl


def _first_difference(a: bytes, b: bytes) -> int:
    """Index of the first byte where ``a`` and ``b`` (not equal) differ, or the shorter length:
    halving with slice comparisons (memcmp), not a Python loop over up to a chunk of bytes."""
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while hi - lo > 1:  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


class Stream:
    """One file (one inode) read from the start; :meth:`pump` hands new lines to ``sink``."""

    def __init__(self, path: Path, sink: LineSink, *, start: int = 0) -> None:
        """``start``: a byte offset just after a ``\\n`` of a plain file to read from (line
        numbers then count from there, starting at 1); 0 for the whole file, plain or gzip."""
        self.path = path
        self.sink = sink
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        st = os.fstat(self.fd)
        if stat.S_ISDIR(st.st_mode):
            os.close(self.fd)
            raise IsADirectoryError(errno.EISDIR, "is a directory, not a telemetry file")
        # a pipe or FIFO (`sidrce collect <(cat f)`) cannot be read at an offset: read it in order
        self.seekable = stat.S_ISREG(st.st_mode)
        self.ino = (st.st_dev, st.st_ino)
        self.offset = start
        self.line = 1
        self._pending = b""
        self._gz: _Gunzip | None = None
        self._sniffed = start > 0
        self._last = b""  # the last bytes read: a file truncated and regrown past offset differs here
        self._head = b""  # the first HEAD bytes of the file (when read from its start)
        self._skipping = -1  # >= 0: inside a line longer than MAX_LINE, this many bytes skipped so far
        # an old file left by an adopted copy (see adopt) shares its sink with the stream reading the
        # copy: only that one finishes the sink, and an unfinished last line the copy holds too is
        # reported by the copy's stream alone (unless bytes are added here after the switch)
        self._finishes = True
        self._tail_shared = False
        # the copy's stream, for an old file whose unfinished last line it holds; when the writer
        # finishes that line here, the copy's stream is told (_tail_taken_at: its offset then) and
        # reports its prefix only if the copy grows after that
        self._twin: Stream | None = None
        self._tail_taken_at: int | None = None
        # an offset where the last candidate copy was found to differ from this file: while the
        # bytes there still differ, a candidate is not compared again (see adopt)
        self._differs_at: int | None = None
        self.closed = False

    def pump(self, limit: int | None = None) -> int:
        """Read up to ``limit`` new bytes (all available if None); returns the number read."""
        total = 0
        while limit is None or total < limit:
            size = CHUNK if limit is None else min(CHUNK, limit - total)
            try:
                raw = os.pread(self.fd, size, self.offset) if self.seekable else os.read(self.fd, size)
            except OSError as exc:
                raise ReadError(exc.errno, exc.strerror) from exc
            if not raw:
                break
            if self._tail_shared and self._twin is not None:
                self._twin._tail_taken_at = self._twin.offset  # this file finishes the line now
            self._tail_shared = False
            if self.offset < HEAD and self.offset == len(self._head):
                self._head += raw[: HEAD - self.offset]
            self.offset += len(raw)
            self._last = (self._last + raw[-FINGERPRINT:])[-FINGERPRINT:]
            total += len(raw)
            if not self._sniffed:
                self._sniffed = True
                # JSON text never starts with 0x1f, gzip always does
                if raw[:1] == GZIP_MAGIC[:1]:
                    self._gz = _Gunzip()
            if self._gz is None:
                self._lines_plain(raw)
            else:
                self._decoded(self._gz.feed(raw))
        return total

    def _decoded(self, parts: list[bytes | None]) -> None:
        for part in parts:
            if part is None:
                # the line being decoded when the member broke is lost
                self.sink.cut(self.line)
                self.line += 1
                self._pending = b""
                self._skipping = -1
            else:
                self._lines_plain(part)

    def _lines_plain(self, data: bytes) -> None:
        if not data:
            return
        if self._skipping >= 0:  # inside a line too long to keep: drop bytes up to its newline
            nl = data.find(b"\n")
            if nl < 0:
                self._skipping += len(data)
                return
            self._too_long(self._skipping + nl)
            data = data[nl + 1 :]
            if not data:
                return
        cut = data.rfind(b"\n")
        if cut < 0:
            if len(self._pending) + len(data) > MAX_LINE:
                self._skipping = len(self._pending) + len(data)
                self._pending = b""
            else:
                self._pending += data
            return
        start = 0
        if self._pending:
            # the held-back line and its end go first, alone: no copy of the whole read
            start = data.find(b"\n") + 1
            if len(self._pending) + start - 1 > MAX_LINE:
                self._too_long(len(self._pending) + start - 1)
            else:
                self._block(self._pending + data[:start])
        self._pending = b""
        rest = data[cut + 1 :]
        if start <= cut:
            self._complete(data, start, cut + 1)
        if len(rest) > MAX_LINE:
            self._skipping = len(rest)
        else:
            self._pending = rest

    def _complete(self, data: bytes, start: int, end: int) -> None:
        """``data[start:end]``: complete lines; any longer than MAX_LINE is rejected, not passed on.
        Each step jumps to the last newline within MAX_LINE + 1 bytes, so an ordinary block costs a
        few ``rfind`` calls, not a pass over every line."""
        pos = block_start = start
        while end - pos > MAX_LINE:
            nl = data.rfind(b"\n", pos, pos + MAX_LINE + 1)
            if nl >= 0:
                pos = nl + 1
                continue
            # the line starting at pos is too long: lines before it go on, it is skipped
            if pos > block_start:
                self._block(memoryview(data)[block_start:pos])
            nl = data.find(b"\n", pos, end)
            self._too_long(nl - pos)
            pos = block_start = nl + 1
        if block_start < end:
            self._block(memoryview(data)[block_start:end])

    def _too_long(self, size: int) -> None:
        detail = f"line of {size} bytes, longer than the limit of {MAX_LINE}"
        too_long = getattr(self.sink, "too_long", None)
        if too_long is not None:
            too_long(self.line, size)
        else:
            self.sink.cut(self.line, detail)
        self.line += 1
        self._skipping = -1

    def _block(self, block: bytes | memoryview) -> None:
        line0 = self.line
        n = self.sink.block(block, line0)
        self.line += bytes(block).count(b"\n") if n is None else n

    def same_bytes(self) -> bool:
        """Whether the bytes just before ``offset`` are still the ones read there: a file truncated
        in place and grown again past ``offset`` between two looks (logrotate's copytruncate) is
        caught here, unless the new bytes at that place are the very same."""
        k = len(self._last)
        return k == 0 or not self.seekable or os.pread(self.fd, k, self.offset - k) == self._last

    def adopt(self, path: Path) -> Stream | None:
        """Whether ``path`` (another file, put in this one's place) is a copy of this file; if so,
        read on from ``path`` instead of counting its lines again, and return a stream of the old
        file (else None).

        The old file's writer may still hold it open (``dmca run`` appends by the descriptor it
        opened before the ``mv``), so the returned stream reads on from the old file's offset into
        the same sink, its lines numbered as in the old file (as a renamed file's are in a
        rotation); the caller reads it until idle, then closes it. It never finishes the sink:
        this stream, reading the copy, does.

        A copy holds this file's bytes over its whole length, or over every byte read here so far
        when it is longer (``cp f f.tmp && mv f.tmp f``, the source grown in between). It may also
        be shorter than what was read: ``cp f f.tmp``, then the writer appends to ``f`` and those
        lines are read, then ``mv f.tmp f``. Then reading goes on from the copy's end (its line
        numbers and unfinished last line as in the copy); the lines read past it are not taken
        back, and only what is later added to the copy is new. A shorter copy counts only when the
        old file has left every directory (a rotated file, renamed and still written, has not) and
        is not empty.

        The bytes are compared with the old file's, read again by its open descriptor, in chunks
        (the first :data:`HEAD` bytes and the :data:`FINGERPRINT` before the offset first: a
        rotated log's new file differs there at once). Plain files read from their start only: a
        gzip stream's decoder state cannot move to another file.

        A candidate found different is not compared again while the byte where it differed still
        differs: a near-copy left at the path (a rotation whose new file starts like the old one)
        would otherwise be read whole again at every poll of the drain."""
        if (
            self._gz is not None
            or not self.seekable
            or self.offset == 0
            or len(self._head) < min(HEAD, self.offset)
        ):
            return None
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError:
            return None
        old: Stream | None = None
        try:
            st = os.fstat(fd)
            size = st.st_size
            end = min(size, self.offset)
            k = len(self._last)
            same = (
                stat.S_ISREG(st.st_mode)
                and (size >= self.offset or (size > 0 and os.fstat(self.fd).st_nlink == 0))
                and os.pread(fd, min(len(self._head), end), 0) == self._head[:end]
                and (size < self.offset or os.pread(fd, k, self.offset - k) == self._last)
            )
            w = self._differs_at
            if same and w is not None and w < end and os.pread(self.fd, 1, w) != os.pread(fd, 1, w):
                same = False  # still different where it was found different: no new comparison
            got = _same_bytes(self.fd, fd, end) if same else None
            if isinstance(got, int):
                self._differs_at = got if got >= 0 else None
            elif got is not None:
                old = copy.copy(self)  # the old file as read so far, before any rewind
                old._finishes = False
                # its unfinished last line started inside the copy: the copy's stream reports it
                # (the same bytes, or a prefix of them); lines read past the copy stay counted
                start = self.offset - (self._skipping if self._skipping >= 0 else len(self._pending))
                old._tail_shared = start < min(size, self.offset) and (
                    self._skipping >= 0 or bool(self._pending)
                )
                old._twin = self if old._tail_shared else None
                if size < self.offset:
                    self._rewind(fd, size, *got)
        except OSError:
            old = None
        if old is None:
            os.close(fd)
            return None
        self.fd = fd
        self.ino = (st.st_dev, st.st_ino)
        self._differs_at = None
        return old

    def _rewind(self, fd: int, size: int, newlines: int, last_nl: int) -> None:
        """Go on at ``size`` in the file ``fd``, shorter than what was read here and equal to it
        over its ``size`` bytes (``newlines`` of them ``\\n``, the last at ``last_nl``, -1 if none)."""
        tail = size - (last_nl + 1)
        pending = os.pread(fd, tail, last_nl + 1) if 0 < tail <= MAX_LINE else b""
        k = min(FINGERPRINT, size)
        last = os.pread(fd, k, size - k)
        self.offset = size
        self.line = 1 + newlines
        self._pending = pending
        self._skipping = tail if tail > MAX_LINE else -1
        self._last = last
        self._head = self._head[:size]

    def close(self, *, final: bool = True) -> None:
        """End of this stream: a held-back line without ``\\n`` goes to ``sink.tail``."""
        if self.closed:
            return
        self.closed = True
        try:
            if final:
                if self._gz is not None:  # bytes held back to judge a possible member start
                    self._decoded(self._gz.feed(b"", final=True))
                if self._tail_shared:
                    pass  # the copy that replaced this file holds this unfinished line: it reports it
                elif self._tail_taken_at == self.offset:
                    pass  # the old file's writer finished this line there, where it was counted
                elif self._skipping >= 0:  # the file ends inside a line too long to keep
                    self._too_long(self._skipping)
                elif self._pending:
                    self.sink.tail(self._pending, self.line)
                    self.line += 1
                elif self._gz is not None and self._gz.in_member:
                    # the last gzip member (or the only one) is cut short, or no gzip at all
                    self.sink.cut(self.line, "gzip stream cut short or not valid gzip")
                    self.line += 1
                self._pending = b""
                if self._finishes:
                    self.sink.finish()
        finally:
            os.close(self.fd)


def cannot_read(path: Path, exc: OSError) -> Exception:
    """The one-line error for a telemetry file that cannot be opened or read."""
    from dmca_core.errors import UsageError

    return UsageError(f"{path}: cannot read telemetry: {exc.strerror or exc}")


def read_all(path: Path, sink: LineSink) -> None:
    """Read a whole file once (the CLI)."""
    try:
        stream = Stream(path, sink)
    except OSError as exc:
        raise cannot_read(path, exc) from None
    try:
        stream.pump()
    except OSError as exc:
        # a read that failed, or a sink that did (a closed stdout): no tail or finish from part of
        # a file
        stream.close(final=False)
        if isinstance(exc, ReadError):
            raise cannot_read(path, exc) from None
        raise
    finally:
        stream.close()


class Follower:
    """Follow ``path`` as it grows, is rotated (new inode) or truncated (size below what was read).

    ``new_sink()`` makes the sink for each new stream; each :meth:`poll` reads only new bytes.

    Rotation by rename: the old file (by the descriptor already open) is read on while its writer
    keeps adding to it, until nothing has been added for ``drain_seconds``; only then is the new
    file read. A new file that holds the old one's bytes (a copy put in its place by rename, also
    one made before the last lines read were written) is read on, not counted again
    (:meth:`Stream.adopt`); the old file is then read on too, from where it was, by its open
    descriptor and until idle for ``drain_seconds`` as in a rotation, since its writer may still
    append to it: lines added to either file count once.
    """

    def __init__(self, path: Path, new_sink, *, drain_seconds: float = 5.0) -> None:  # noqa: ANN001 - a factory of LineSink
        self.path = Path(path)
        self.new_sink = new_sink
        self.stream: Stream | None = None
        self.generation = 0
        self.truncated = False  # while ``new_sink`` runs: True if the file was truncated in place
        self.drain_seconds = drain_seconds
        self.draining = False  # the path is another file now; the old one is still being read
        self._active = 0.0  # monotonic time the current stream last gave bytes (or was opened)
        # old files left by adopted copies, each with the monotonic time it last gave bytes
        self._behind: list[tuple[Stream, float]] = []

    def poll(self, limit: int | None = 64 << 20) -> int:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        cur = self.stream
        now = time.monotonic()
        got = self._read_behind(now)
        if cur is not None:
            rotated = st is None or (st.st_dev, st.st_ino) != cur.ino
            if rotated and st is not None and stat.S_ISREG(st.st_mode):
                n = cur.pump()  # what the old file got before the copy was made
                got += n
                old = cur.adopt(self.path)
                if old is not None:
                    self.draining = False
                    self._active = now
                    self._behind.append((old, now))
                    return got + cur.pump(limit)
                if n:
                    self._active = now
            elif rotated:
                n = cur.pump()
                got += n
                if n:
                    self._active = now
            if rotated:
                if now - self._active < self.drain_seconds:
                    self.draining = True  # its writer may still hold it open: read it on first
                    return got
                self.draining = False
                self._close_behind()
                cur.close()
                self.stream = cur = None
            elif st is not None and (st.st_size < cur.offset or not cur.same_bytes()):
                self._close_behind()
                cur.close()  # truncated in place: the old contents are gone; start over
                self.stream = cur = None
                self.truncated = True
        if cur is None and st is not None:
            if not stat.S_ISREG(st.st_mode):  # try again at the next poll: it may be put back
                raise OSError(errno.EINVAL, "not a regular file")
            try:
                self.stream = cur = Stream(self.path, self.new_sink(self.generation))
                self.generation += 1
                self._active = now
            except FileNotFoundError:
                return got
            finally:
                self.truncated = False
        if cur is not None:
            n = cur.pump(limit)
            if n:
                self._active = now
            got += n
        return got

    def _read_behind(self, now: float) -> int:
        """Read on the old files left by adopted copies; close those idle for ``drain_seconds``."""
        got = 0
        keep: list[tuple[Stream, float]] = []
        for i, (old, active) in enumerate(self._behind):
            try:
                n = old.pump()
            except ReadError:  # let it go, or the error would come back at every poll
                self._behind = keep + self._behind[i + 1 :]
                old.close(final=False)
                raise
            got += n
            if n:
                # also keeps a rotated stream sharing this sink from being closed before it
                active = self._active = now
            if now - active < self.drain_seconds:
                keep.append((old, active))
            else:
                old.close()
        self._behind = keep
        return got

    def _close_behind(self) -> None:
        """Close the old files left by adopted copies, before the stream they share a sink with
        finishes it (they were read at the start of this poll)."""
        behind, self._behind = self._behind, []
        for old, _ in behind:
            old.close()

    def close(self) -> None:
        try:
            self._close_behind()
        finally:
            if self.stream is not None:
                self.stream.close()
                self.stream = None
