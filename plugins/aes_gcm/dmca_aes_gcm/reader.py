"""Opening envelopes and checking each stream's counters: the SIDRCE side of the plugin.

Per stream (mode + stream id) the reader keeps the highest counter seen, the gaps below it, and the
final counter once seen. An authentic envelope whose counter is already accounted for is a replay;
one that fills a gap arrived out of order (lines were swapped or moved); one past ``final`` was
spliced in. All three are ``tampered``. Gaps left at the end are ``missing_seq``, or ``truncated``
when they run up to the final envelope (the tail of a closed stream was cut). A stream with no final
envelope is still being written (``open_streams``), unless the caller says every writer has finished
(``closed=True``): then it was truncated.

A file's second half can be read by another process with a reader put in partial mode
(:meth:`Reader.start_partial`): a stream's first counter seen there is taken as the next one, and
an envelope below it stops the reader (:class:`NeedsEarlier`), whose verdict needs the first half.
:meth:`Reader.join` then continues the first half's reader with the other's :meth:`Reader.state`
when the two meet cleanly (each stream runs on exactly where it stood, or starts at 0).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

import attrs
from cryptography.exceptions import InvalidTag

from dmca_core.errors import TelemetryRejected
from dmca_core.interfaces import Rejection
from dmca_core.telemetry.record import has_lone_surrogate, record_problem

from . import block as _block
from .envelope import parse
from .keys import ENV_KEY, ENV_KEYS, Keyring

_MAX_PLAINTEXT = 64 * 1024 * 1024  # a batch is ~max_records lines; refuse absurd inflation


@attrs.define
class OpenStream:
    """A stream without its final envelope (yet)."""

    sid: str
    mode: str
    envelopes: int
    records: int
    last_line: int


class NeedsEarlier(Exception):
    """A reader in partial mode met a counter below the first one it saw of that stream: its
    verdict (replayed, or out of order) depends on the part of the file read elsewhere."""


@attrs.define
class _Stream:
    mode: str
    sid: str
    top: int = -1  # highest counter accepted
    final: int | None = None  # counter of the final envelope
    final_line: int = 0
    gaps: list[list[int]] = attrs.field(factory=list)  # [first, last, line where noticed]
    envelopes: int = 0
    records: int = 0
    last_line: int = 0
    first: int | None = None  # partial mode: the first counter seen (what came before is unknown)

    def admit(self, counter: int, final: bool, line: int) -> None:
        """Account for an authentic envelope's counter, or raise ``tampered``."""
        unit = "seq" if self.mode == "line" else "batch"
        if self.first is not None and counter < self.first:
            raise NeedsEarlier(self.sid)
        if self.final is not None and counter > self.final:
            raise TelemetryRejected(
                "tampered", f"stream {self.sid[:8]}: {unit} {counter} comes after the stream's final envelope"
            )
        if counter <= self.top:
            for i, (lo, hi, _) in enumerate(self.gaps):
                if lo <= counter <= hi:
                    self._fill(i, counter)
                    raise TelemetryRejected(
                        "tampered", f"stream {self.sid[:8]}: {unit} {counter} out of order (after {self.top})"
                    )
            raise TelemetryRejected("tampered", f"stream {self.sid[:8]}: {unit} {counter} replayed")
        if counter > self.top + 1:
            self.gaps.append([self.top + 1, counter - 1, line])
        self.top = counter
        if final:
            self.final, self.final_line = counter, line
        self.envelopes += 1
        self.last_line = line

    def _fill(self, i: int, counter: int) -> None:
        lo, hi, line = self.gaps[i]
        parts = [[a, b, line] for a, b in ((lo, counter - 1), (counter + 1, hi)) if a <= b]
        self.gaps[i : i + 1] = parts


class Reader:
    """EnvelopeReader for the aes-gcm encryptor. ``closed=True``: every writer has finished, so a
    stream without a final envelope was truncated rather than still open."""

    def __init__(self, keyring: Keyring, *, closed: bool = False) -> None:
        self._keys = keyring
        self._closed = closed
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._late: list[Rejection] = []
        self._partial = False
        self._names = _block._Names()

    def __repr__(self) -> str:
        return f"Reader(kids={list(self._keys.by_kid)!r}, streams={len(self._streams)})"

    def feed(self, obj: Mapping[str, Any], line: int) -> list[dict[str, Any]]:
        env = parse(obj)
        if not self._keys.keys:
            raise TelemetryRejected("no_key", f"set {ENV_KEY} or {ENV_KEYS}")
        key = self._keys.by_kid.get(env.kid)
        if key is None:
            raise TelemetryRejected("unknown_kid", f"key id {env.kid!r} is not among the configured keys")
        try:
            plaintext = key.aead.decrypt(env.nonce, env.ct, env.aad())
        except InvalidTag:
            raise TelemetryRejected(
                "tampered", "authentication failed (edited, moved or wrong key)"
            ) from None
        stream = self._streams.get((env.mode, env.sid))
        if stream is None:
            stream = self._streams[(env.mode, env.sid)] = _Stream(env.mode, env.sid)
            if self._partial:
                stream.top, stream.first = env.counter - 1, env.counter
        stream.admit(env.counter, env.final, line)
        if env.z == "zlib":
            try:
                d = zlib.decompressobj()
                plaintext = d.decompress(plaintext, _MAX_PLAINTEXT)
                if d.unconsumed_tail or not d.eof:
                    raise zlib.error("bad or oversized stream")
            except zlib.error:
                raise TelemetryRejected("not_json", "batch does not decompress") from None
        if env.mode == "line":
            if not plaintext:
                return []
            records = [self._record(plaintext)]
        else:
            records = []
            chunks = plaintext.split(b"\n")
            if chunks[-1] == b"":
                chunks.pop()  # the batch's last newline
            for i, chunk in enumerate(chunks):
                try:
                    records.append(self._record(chunk))
                except TelemetryRejected as exc:
                    # keep the batch's good records; report the bad one at the end
                    self._late.append(Rejection(exc.reason, line, f"batch record {i + 1}: {exc.detail}"))
        stream.records += len(records)
        return records

    def feed_block(self, data: bytes | memoryview, line0: int, ends: Any = None) -> _block.BlockResult | None:
        """Open a slice of whole lines at once (the first is line ``line0``; ``ends``: the offsets
        of their newlines, if known). ``None``, with the reader untouched, unless every line is
        an ordinary envelope (see :mod:`dmca_aes_gcm.block`); the caller then uses :meth:`feed`.
        The result's records are not accounted for until its ``commit()``."""
        return _block.feed_block(self, data, line0, ends)

    # --- reading a file in two parts ---------------------------------------------------------
    def start_partial(self) -> None:
        """Read the later part of a file: streams may begin mid-way (see the module docstring)."""
        if self._streams:
            raise ValueError("start_partial() must come before the first envelope")
        self._partial = True

    def state(self) -> dict[str, Any]:
        """What :meth:`join` needs of a partial reader (picklable)."""
        return {"streams": dict(self._streams), "late": list(self._late)}

    def join(self, state: Mapping[str, Any], line_offset: int) -> bool:
        """Continue with a partial reader's ``state`` (its lines numbered from 1 after line
        ``line_offset`` of this one), as if this reader had read those lines itself. False, with
        nothing changed, when a stream of the other does not run on exactly from this one (a stream
        here already final, or a new one not starting at 0)."""
        streams: dict[tuple[str, str], _Stream] = state["streams"]
        for key, other in streams.items():
            mine = self._streams.get(key)
            if mine is None:
                if other.first != 0:
                    return False
            elif mine.final is not None or other.first != mine.top + 1:
                return False
        for key, other in streams.items():
            gaps = [[lo, hi, line + line_offset] for lo, hi, line in other.gaps]
            mine = self._streams.get(key)
            if mine is None:
                mine = self._streams[key] = _Stream(other.mode, other.sid)
            mine.top = other.top
            if other.final is not None:
                mine.final, mine.final_line = other.final, other.final_line + line_offset
            mine.gaps.extend(gaps)
            mine.envelopes += other.envelopes
            mine.records += other.records
            if other.envelopes:
                mine.last_line = other.last_line + line_offset
        self._late.extend(Rejection(r.reason, r.line + line_offset, r.detail) for r in state["late"])
        return True

    @staticmethod
    def _record(data: bytes) -> dict[str, Any]:
        try:
            rec = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise TelemetryRejected("not_json", "decrypted text is not JSON") from None
        except RecursionError:  # a sealed line nested deeper than Python's parser goes
            raise TelemetryRejected("not_json", "decrypted text nested too deep") from None
        if has_lone_surrogate(data, rec):  # json.loads keeps them; SIDRCE's plain path refuses them
            raise TelemetryRejected("not_json", "lone surrogate: a string that is not valid Unicode")
        problem = record_problem(rec)
        if problem is not None:
            raise TelemetryRejected("schema", problem)
        return rec

    @property
    def open_streams(self) -> list[OpenStream]:
        """Streams without a final envelope (with ``closed=True`` these are reported as truncated)."""
        return [
            OpenStream(s.sid, s.mode, s.envelopes, s.records, s.last_line)
            for s in self._streams.values()
            if s.final is None
        ]

    def finish(self) -> list[Rejection]:
        out = list(self._late)
        for s in self._streams.values():
            unit = "seq" if s.mode == "line" else "batch"
            for lo, hi, line in s.gaps:
                span = f"{unit} {lo}" if lo == hi else f"{unit} {lo}-{hi}"
                what = "records" if s.mode == "line" else "batches"
                if s.final is not None and hi == s.final - 1:
                    out.append(Rejection("truncated", line, f"stream {s.sid[:8]}: {span} cut from the end"))
                else:
                    out.append(
                        Rejection(
                            "missing_seq", line, f"stream {s.sid[:8]}: {span} missing ({hi - lo + 1} {what})"
                        )
                    )
            if s.final is None and self._closed:
                out.append(
                    Rejection(
                        "truncated",
                        s.last_line,
                        f"stream {s.sid[:8]}: no final envelope (cut or writer crashed)",
                    )
                )
        return sorted(out, key=lambda r: r.line)
