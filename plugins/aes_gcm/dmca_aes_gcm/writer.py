"""Sealing telemetry: one envelope per record (line mode) or per flush (batch mode).

Each writer is one stream with a random 128-bit stream id. Counters (``seq`` per record, ``b`` per
batch) start at 0 and never repeat; the stream's last envelope carries ``final``. Every message
gets a fresh random 96-bit nonce and is charged to the key's NIST nonce budget before sealing.
"""

from __future__ import annotations

import os
import secrets
import zlib
from collections.abc import Sequence

from .budget import NonceBudget
from .envelope import ALG, NONCE_BYTES, VERSION, b64, batch_aad, line_aad
from .keys import Key


class _Stream:
    def __init__(self, key: Key, budget: NonceBudget) -> None:
        self.key = key
        self.budget = budget
        self.sid = secrets.token_hex(16)
        self.counter = 0
        self.closed = False

    def _begin(self, messages: int) -> bytes:
        if self.closed:
            raise ValueError("this telemetry stream already sealed its final envelope")
        self.budget.take(self.key.budget_id, self.key.kid, messages)
        return os.urandom(NONCE_BYTES * messages)  # one syscall for the whole flush

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kid={self.key.kid!r}, sid={self.sid!r}, next={self.counter})"


class LineWriter(_Stream):
    """Line mode: each record is its own envelope; a final end marker (empty plaintext) closes."""

    def seal(self, lines: Sequence[bytes], final: bool) -> bytes:
        n = len(lines) + (1 if final else 0)
        if n == 0:
            return b""
        nonces = self._begin(n)
        kid, sid, encrypt = self.key.kid, self.sid, self.key.aead.encrypt
        head = f'{{"v":{VERSION},"alg":"{ALG}","kid":"{kid}","sid":"{sid}","seq":'
        aad_head = line_aad(kid, sid, 0, False).rsplit(b"|seq=", 1)[0] + b"|seq="
        out: list[str] = []
        seq = self.counter
        for i, plaintext in enumerate(lines):
            nonce = nonces[i * NONCE_BYTES : (i + 1) * NONCE_BYTES]
            ct = encrypt(nonce, plaintext, aad_head + b"%d|final=0" % seq)
            out.append(f'{head}{seq},"n":"{b64(nonce)}","ct":"{b64(ct)}"}}\n')
            seq += 1
        if final:
            nonce = nonces[-NONCE_BYTES:]
            ct = encrypt(nonce, b"", line_aad(kid, sid, seq, True))
            out.append(f'{head}{seq},"final":true,"n":"{b64(nonce)}","ct":"{b64(ct)}"}}\n')
            seq += 1
            self.closed = True
        self.counter = seq
        return "".join(out).encode("ascii")


class BatchWriter(_Stream):
    """Batch mode: one envelope per flush holding its records as JSON lines (zlib-compressed
    first when ``compress``); ``final`` marks the stream's last batch."""

    def __init__(self, key: Key, budget: NonceBudget, compress: bool) -> None:
        super().__init__(key, budget)
        self.z = "zlib" if compress else "none"

    def seal(self, lines: Sequence[bytes], final: bool) -> bytes:
        if not lines and not final:
            return b""
        nonce = self._begin(1)
        plaintext = b"\n".join(lines) + b"\n" if lines else b""
        if self.z == "zlib":
            plaintext = zlib.compress(plaintext, 6)
        b = self.counter
        ct = self.key.aead.encrypt(nonce, plaintext, batch_aad(self.key.kid, self.sid, b, final, self.z))
        self.counter = b + 1
        self.closed = final
        return (
            f'{{"v":{VERSION},"alg":"{ALG}","kid":"{self.key.kid}","sid":"{self.sid}","b":{b},'
            f'"final":{"true" if final else "false"},"z":"{self.z}","n":"{b64(nonce)}","ct":"{b64(ct)}"}}\n'
        ).encode("ascii")
