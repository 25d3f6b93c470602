"""The telemetry emitter: batches records and appends each batch with one write through a sink.

Why batches: one ``write()`` per flush (O_APPEND in the built-in sink) keeps lines of concurrent
writers whole, amortises encryption and compression, and bounds what a crash can lose to the
unflushed batch. A daemon thread flushes every ``max_seconds`` even when no record arrives; exit
and SIGTERM flush too (see ``shutdown.py``).
"""

from __future__ import annotations

import contextlib
import gzip as _gzip
import json
import os
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from .. import plugins
from ..errors import DataError, UsageError, os_reason
from . import shutdown
from .record import is_valid_fast, record_problem

Encryption = Literal["none", "line", "batch"]
_MODES = ("none", "line", "batch")

# compact, UTF-8, and no NaN/Infinity (not JSON; the contract wants finite numbers)
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _make_fast_encode() -> Any:
    # JSONEncoder.encode builds a new C encoder on every call; on the emit path that is a fifth of
    # the cost, so build it once. No circular-reference check: records are flat dicts.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _encoder.encode
    try:
        c_encode = make(
            None, _encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, False
        )
        join = "".join

        def encode(obj: Any) -> str:
            return join(c_encode(obj, 0))

        probe = {"a": [1, 2.5, "é"], "b": None}
        if encode(probe) != _encoder.encode(probe):
            return _encoder.encode
        return encode
    except Exception:  # another Python's private signature: use the public path
        return _encoder.encode


_encode = _make_fast_encode()


def _needs_newline(path: Path) -> bool:
    """Whether ``path`` ends in a partial line (a writer died mid-write): then we start a new line."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError:
        return False


def cannot_open(path_field: str, path: Path, exc: OSError) -> UsageError:
    """The one line for a telemetry file that cannot be opened (also what ``--dry-run`` says)."""
    return UsageError(f"{path_field}: {path}: cannot open for appending: {os_reason(exc, path)}")


class TelemetryEmitter:
    """Append operations telemetry records to ``path`` (JSON lines, optionally gzip or encrypted).

    Args:
        path: the telemetry file (created with its parent directories).
        sink: the telemetry sink plugin that opens ``path`` (built-in: ``jsonl``).
        max_records: flush when this many records wait.
        max_seconds: flush records that waited this long, even if no new record arrives.
        gzip: plain and line-encrypted output: one gzip member per flush (``gzip -dc`` reads the
            file); batch encryption: the batch is compressed inside the envelope instead.
        encryption: ``none``, ``line`` (one envelope per record) or ``batch`` (one per flush),
            by the installed encryptor plugin; keys come from ``environ``.
        fsync: fsync after every flush (durable against power loss, slower).
        environ: where the encryptor finds its keys (default ``os.environ``).

    Raises:
        UsageError: a bad argument. PluginError: encryption requested but no encryptor
        installed. Both before the file is touched.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sink: str = "jsonl",
        max_records: int = 100,
        max_seconds: float = 5.0,
        gzip: bool = False,
        encryption: Encryption = "none",
        fsync: bool = False,
        environ: Mapping[str, str] | None = None,
        path_field: str = "telemetry.path",
    ) -> None:
        """``path_field``: how the user gave ``path`` (a config key, or ``--telemetry``), for errors."""
        if encryption not in _MODES:
            raise UsageError(f"telemetry.encryption: {encryption!r} is not one of none, line, batch")
        if not isinstance(max_records, int) or max_records < 1:
            raise UsageError(f"telemetry.max_records: must be an integer >= 1, got {max_records!r}")
        if not max_seconds > 0:
            raise UsageError(f"telemetry.max_seconds: must be > 0, got {max_seconds!r}")
        self.path = Path(path)
        self.max_records = max_records
        self.max_seconds = float(max_seconds)
        self.encryption: Encryption = encryption
        self._writer = None
        if encryption != "none":
            environ = os.environ if environ is None else environ
            # may raise PluginError (no encryptor) or ConfigError (no/bad key): nothing written yet
            self._writer = plugins.get_encryptor().writer(encryption, gzip=gzip, environ=environ)
        # batch envelopes compress inside; everything else compresses the file, one member per flush
        self._gzip_file = gzip and encryption != "batch"
        handle_sink = plugins.get_sink(sink)
        self._new_line = not self._gzip_file and _needs_newline(self.path)
        try:
            self._handle = handle_sink.open(self.path, fsync=fsync)
        except OSError as exc:  # a folder, a file where a folder belongs, a read-only disk: one line
            raise cannot_open(path_field, self.path, exc) from None

        self._lock = threading.Lock()
        self._owner: int | None = None  # thread id holding _lock, so SIGTERM can tell it interrupted us
        self._buf: list[str] = []  # encoded records; turned into UTF-8 bytes once per flush
        self._oldest = 0.0  # monotonic time the oldest waiting record arrived
        self._unwritten = b""  # sealed bytes whose write failed; retried first (seq numbers are spent)
        self._unwritten_records = 0
        self._closed = False
        self._close_deferred = False
        self.records_written = 0
        # a child forked from this process inherits the emitter, its waiting records and its
        # stream: were it to write, the records would be there twice (sealed: as replays)
        self._pid = os.getpid()
        self._forked = False  # set in a forked child (see _mark_forked)
        _EMITTERS.add(self)

        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_timer_loop,
            args=(weakref.ref(self), self._stop, self.max_seconds),
            name=f"telemetry-flush:{self.path.name}",
            daemon=True,
        )
        self._thread.start()
        shutdown.track(self)

    # -- public API ------------------------------------------------------------------------------

    def emit(self, record: dict[str, Any]) -> None:
        """Queue one record; flushes when ``max_records`` wait.

        Raises:
            DataError: the record breaks the telemetry contract (names the field).
        """
        if not is_valid_fast(record):
            problem = record_problem(record)
            if problem is not None:
                raise DataError(f"telemetry record {problem}")
        if "ct" in record or "alg" in record:
            # readers take any line with these fields for an encrypted envelope
            raise DataError("telemetry record: fields 'ct' and 'alg' are reserved for encrypted envelopes")
        try:
            line = _encode(record)
        except (TypeError, ValueError, RecursionError) as exc:  # NaN/Inf, or an extra field not JSON
            problem = record_problem(record) or str(exc)
            raise DataError(f"telemetry record {problem}") from None
        if self._forked:
            raise UsageError(self._not_ours())
        lock = self._lock
        lock.acquire()
        self._owner = threading.get_ident()
        try:
            if self._closed:
                raise ValueError(f"telemetry emitter for {self.path} is closed")
            buf = self._buf
            if not buf:
                self._oldest = time.monotonic()
            buf.append(line)
            if len(buf) >= self.max_records:
                self._flush_locked(final=False)
        finally:
            self._owner = None
            lock.release()
        if self._close_deferred:
            self._finish_deferred_close()

    def flush(self) -> None:
        """Write every waiting record now."""
        if self._forked:
            raise UsageError(self._not_ours())
        self._locked_call(self._flush_locked, False)

    def close(self) -> None:
        """Flush, mark the stream final (encrypted modes) and close the file. Idempotent; in a
        forked child (a ``with`` block left there, its exit hook) it does nothing: the emitter
        is the parent's."""
        if self._forked:
            return
        self._locked_call(self._close_locked)
        self._stop.set()
        shutdown.untrack(self)

    def __enter__(self) -> TelemetryEmitter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"TelemetryEmitter({str(self.path)!r}, encryption={self.encryption!r}, {state})"

    # -- internals -------------------------------------------------------------------------------

    def _not_ours(self) -> str:
        return (
            f"telemetry emitter for {self.path} belongs to process {self._pid}, not this forked "
            "child: open an emitter in the child (it gets a stream of its own)"
        )

    def _locked_call(self, fn: Any, *args: Any) -> None:
        with self._lock:
            self._owner = threading.get_ident()
            try:
                fn(*args)
            finally:
                self._owner = None
        if self._close_deferred:
            self._finish_deferred_close()

    def _flush_locked(self, final: bool) -> None:
        lines = self._buf
        if self._closed or (not lines and not final and not self._unwritten):
            return
        if self._writer is not None:
            if lines or final:
                # seal before clearing the buffer: a refused seal (nonce budget) loses nothing
                blobs = "\n".join(lines).encode("utf-8").split(b"\n") if lines else []
                self._unwritten += self._writer.seal(blobs, final)
        elif lines:
            self._unwritten += ("\n".join(lines) + "\n").encode("utf-8")
        self._unwritten_records += len(lines)
        self._buf = []
        data = self._unwritten
        if not data:
            return
        if self._gzip_file:
            data = _gzip.compress(data, compresslevel=6, mtime=0)
        elif self._new_line:
            data = b"\n" + data
        try:
            self._handle.write(data)
        except OSError:
            # the write may have been partial: start the retry on a fresh line
            self._new_line = not self._gzip_file
            raise
        self._new_line = False
        self._unwritten = b""
        self.records_written += self._unwritten_records
        self._unwritten_records = 0

    def _close_locked(self) -> None:
        if self._closed:
            return
        try:
            self._flush_locked(final=True)
        finally:
            self._closed = True
            self._handle.close()

    def _due(self) -> bool:
        return bool(self._buf) and time.monotonic() - self._oldest >= self.max_seconds

    def _on_shutdown(self, from_signal: bool) -> bool:
        # SIGTERM runs in the main thread between bytecodes: if that thread is inside our lock,
        # closing now would deadlock or interleave a batch; let it close on its way out instead
        if from_signal and self._owner == threading.get_ident():
            self._close_deferred = True
            return True
        with contextlib.suppress(Exception):  # exit paths must not raise; the batch is lost either way
            self.close()
        return False

    def _finish_deferred_close(self) -> None:
        self._close_deferred = False
        try:
            self.close()
        finally:
            shutdown.resume_signal()


_EMITTERS: weakref.WeakSet[TelemetryEmitter] = weakref.WeakSet()


def _mark_forked() -> None:
    """In a child just forked: every emitter it inherited is its parent's (a flag, not a pid
    compared at each emit)."""
    for em in list(_EMITTERS):
        em._forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked)


def _timer_loop(ref: weakref.ReferenceType[TelemetryEmitter], stop: threading.Event, period: float) -> None:
    # holds only a weak reference, so an emitter nobody closed can still be collected
    tick = min(period / 2, 1.0)
    while not stop.wait(tick):
        em = ref()
        if em is None:
            return
        if em._due():
            with contextlib.suppress(Exception):  # retried next tick; close() raises it
                em.flush()
        del em
