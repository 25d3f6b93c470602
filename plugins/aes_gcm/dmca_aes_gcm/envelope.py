"""The two envelope formats and their associated data (AAD). docs/telemetry.md is the reference.

line:  {"v":1,"alg":"A256GCM","kid":K,"sid":S,"seq":N,"n":NONCE,"ct":CT}      one record
       (the stream's end marker adds "final":true and has an empty plaintext)
batch: {"v":1,"alg":"A256GCM","kid":K,"sid":S,"b":N,"final":F,"z":Z,"n":NONCE,"ct":CT}

AAD (ASCII), binding every header field except the nonce (which GCM already authenticates):
  DMCA-TLM|v=1|mode=line|alg=A256GCM|kid=K|sid=S|seq=N|final=0|1
  DMCA-TLM|v=1|mode=batch|alg=A256GCM|kid=K|sid=S|b=N|final=0|1|z=none|zlib
The key id charset excludes "|" and sid is hex, so the AAD is unambiguous.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from typing import Any

from dmca_core.errors import TelemetryRejected

VERSION = 1
ALG = "A256GCM"
NONCE_BYTES = 12
TAG_BYTES = 16
COMPRESSIONS = ("none", "zlib")

LINE_KEYS = frozenset({"v", "alg", "kid", "sid", "seq", "n", "ct"})
LINE_END_KEYS = LINE_KEYS | {"final"}
BATCH_KEYS = frozenset({"v", "alg", "kid", "sid", "b", "final", "z", "n", "ct"})

_KID = re.compile(r"[A-Za-z0-9_.-]{1,32}\Z")
_SID = re.compile(r"[0-9a-f]{32}\Z")


def b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def line_aad(kid: str, sid: str, seq: int, final: bool) -> bytes:
    return (
        f"DMCA-TLM|v={VERSION}|mode=line|alg={ALG}|kid={kid}|sid={sid}|seq={seq}|final={int(final)}".encode()
    )


def batch_aad(kid: str, sid: str, b: int, final: bool, z: str) -> bytes:
    return (
        f"DMCA-TLM|v={VERSION}|mode=batch|alg={ALG}|kid={kid}|sid={sid}|b={b}|final={int(final)}|z={z}"
    ).encode()


def is_envelope(obj: Any) -> bool:
    """Envelope-looking objects go to the reader (which rejects damaged ones as ``tampered``).

    Records never carry ``ct`` or ``alg``; either key marks an envelope, so an envelope with one
    damaged field name still reaches the reader instead of passing for plaintext.
    """
    return isinstance(obj, Mapping) and ("ct" in obj or "alg" in obj)


class Parsed:
    """A structurally valid envelope, fields decoded, not yet authenticated."""

    __slots__ = ("counter", "ct", "final", "kid", "mode", "nonce", "sid", "z")

    def __init__(
        self, mode: str, kid: str, sid: str, counter: int, final: bool, z: str, nonce: bytes, ct: bytes
    ) -> None:
        self.mode, self.kid, self.sid, self.counter = mode, kid, sid, counter
        self.final, self.z, self.nonce, self.ct = final, z, nonce, ct

    def aad(self) -> bytes:
        if self.mode == "line":
            return line_aad(self.kid, self.sid, self.counter, self.final)
        return batch_aad(self.kid, self.sid, self.counter, self.final, self.z)


def _bad(why: str) -> TelemetryRejected:
    return TelemetryRejected("tampered", f"malformed envelope: {why}")


def _b64field(obj: Mapping[str, Any], name: str) -> bytes:
    text = obj[name]
    if type(text) is not str:
        raise _bad(f"{name!r} is not a string")
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{name!r} is not base64") from None
    # one value, one spelling: a flipped padding bit that decodes to the same bytes is still a change
    if b64(raw) != text:
        raise _bad(f"{name!r} is not canonical base64")
    return raw


def _counter(obj: Mapping[str, Any], name: str) -> int:
    value = obj[name]
    if type(value) is not int or value < 0:
        raise _bad(f"{name!r} is not an integer >= 0")
    return value


def parse(obj: Mapping[str, Any]) -> Parsed:
    """Check an envelope's shape and decode its fields; raise ``tampered`` on any deviation."""
    keys = obj.keys()
    if keys in (LINE_KEYS, LINE_END_KEYS):
        mode = "line"
    elif keys == BATCH_KEYS:
        mode = "batch"
    else:
        raise _bad("unexpected set of fields")
    if type(obj["v"]) is not int or obj["v"] != VERSION:
        raise _bad(f"unsupported version {obj['v']!r}")
    if obj["alg"] != ALG:
        raise _bad("unsupported algorithm")
    kid, sid = obj["kid"], obj["sid"]
    if type(kid) is not str or not _KID.match(kid):
        raise _bad("bad key id")
    if type(sid) is not str or not _SID.match(sid):
        raise _bad("bad stream id")
    if mode == "line":
        counter = _counter(obj, "seq")
        final = "final" in obj
        if final and obj["final"] is not True:
            raise _bad("'final' must be true when present")
        z = "none"
    else:
        counter = _counter(obj, "b")
        final = obj["final"]
        if type(final) is not bool:
            raise _bad("'final' is not a boolean")
        z = obj["z"]
        if z not in COMPRESSIONS:
            raise _bad("unknown compression")
    nonce = _b64field(obj, "n")
    if len(nonce) != NONCE_BYTES:
        raise _bad("nonce is not 96 bits")
    ct = _b64field(obj, "ct")
    if len(ct) < TAG_BYTES:
        raise _bad("ciphertext shorter than the tag")
    return Parsed(mode, kid, sid, counter, final, z, nonce, ct)
