"""Opening a whole slice of envelopes at once: the reader's fast path (``Reader.feed_block``).

Line envelopes spelled exactly as the writer spells them, all of one stream, are read by the
compiled scanner (``_envscan.c``, built at install where a C compiler is found); other slices are
decoded by one msgspec call into typed structs (base64 decoded in C). Then their counters are
checked as arrays, and their ciphertexts opened by one ``map`` over the AEAD. The fast path
takes only the ordinary case, where it is sure to agree with :meth:`Reader.feed` line by line: every
line one canonical envelope (no escapes, no non-canonical base64), known keys, every counter exactly
the next one of its stream, a final envelope only as its stream's last line here (with the end
marker's empty plaintext), every other plaintext non-empty. Anything else returns ``None`` with the
reader untouched, and the caller feeds those lines one at a time. The caller judges the records
(``BlockResult``) and commits only when it takes them all.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any, Literal

import attrs
import numpy as np
from cryptography.exceptions import InvalidTag

from .envelope import _KID, _SID, ALG, NONCE_BYTES, TAG_BYTES, VERSION, batch_aad, line_aad

if TYPE_CHECKING:
    from .reader import Reader

try:
    from . import _envscan  # the C scanner of line envelopes (setup.py); optional
except ImportError:  # pragma: no cover - not built (no C compiler): msgspec reads them
    _envscan = None  # type: ignore[assignment]

try:
    import msgspec
except ImportError:  # pragma: no cover - msgspec comes with dmca; without it every slice goes line by line
    msgspec = None  # type: ignore[assignment]

_MAX_PLAINTEXT = 64 * 1024 * 1024  # as the reader: refuse absurd inflation
NAMES_MAX = 32  # key ids / stream ids worth listing in the decoder's type
COUNTER_MAX = 1 << 53  # a writer that reaches this many envelopes in one stream is not plausible


@attrs.define
class BlockResult:
    """The plaintext records of a slice of envelopes, not yet accounted for by the reader.

    ``records``: the records' texts, each as :meth:`Reader.feed` would judge it (a line envelope's
    plaintext, or one line of a batch), each followed by ``\\n``, whose offsets are ``ends`` (a
    line envelope's plaintext may itself hold a newline); ``lines``: each record's envelope line.
    :meth:`commit` updates the reader's streams as feeding the lines one by one would have; a
    caller that cannot take every record drops the result instead (the reader stays as it was)
    and feeds the lines one at a time.
    """

    records: bytes
    ends: np.ndarray
    lines: np.ndarray
    _apply: Callable[[], None]

    @property
    def count(self) -> int:
        return len(self.ends)

    def commit(self) -> None:
        self._apply()


def _structs(kids: tuple[str, ...], sids: tuple[str, ...]) -> tuple[Any, Any]:
    """Decoders of line and batch envelopes. Fields must be exactly the envelope's (no other, none
    missing); key and stream ids already seen are listed as literals (no allocation per line)."""
    Meta = msgspec.Meta
    kid = Literal[kids] if kids else str  # type: ignore[valid-type]
    sid = Literal[sids] if sids else str  # type: ignore[valid-type]
    common = [
        ("v", Literal[VERSION]),
        ("alg", Literal[ALG]),
        ("kid", kid),
        ("sid", sid),
    ]
    nonce = Annotated[bytes, Meta(min_length=NONCE_BYTES, max_length=NONCE_BYTES)]
    ct = Annotated[bytes, Meta(min_length=TAG_BYTES)]
    # bounded so that counters fit numpy's int64 arrays; a larger one goes to the exact path
    counter = Annotated[int, Meta(ge=0, le=COUNTER_MAX)]
    kw = {"gc": False, "forbid_unknown_fields": True}
    line = msgspec.defstruct(
        "LineEnv",
        [
            *common,
            ("seq", counter),
            ("n", nonce),
            ("ct", ct),
            ("final", Literal[True] | msgspec.UnsetType, msgspec.UNSET),
        ],
        **kw,
    )
    batch = msgspec.defstruct(
        "BatchEnv",
        [*common, ("b", counter), ("final", bool), ("z", Literal["none", "zlib"]), ("n", nonce), ("ct", ct)],
        **kw,
    )
    return msgspec.json.Decoder(line), msgspec.json.Decoder(batch)


@functools.lru_cache(maxsize=16)
def decoders(kids: tuple[str, ...], sids: tuple[str, ...]) -> tuple[Any, Any]:
    return _structs(kids, sids)


_get_kid, _get_sid, _get_ct, _get_n = attrgetter("kid"), attrgetter("sid"), attrgetter("ct"), attrgetter("n")
_get_seq, _get_b, _get_final = attrgetter("seq"), attrgetter("b"), attrgetter("final")

# the last character of canonical base64 before "=" / "==" has its unused low bits zero
_PAD1_OK = np.zeros(256, np.bool_)
_PAD1_OK[np.frombuffer(b"AEIMQUYcgkosw048", np.uint8)] = True
_PAD2_OK = np.zeros(256, np.bool_)
_PAD2_OK[np.frombuffer(b"AQgw", np.uint8)] = True
_CT_KEY = np.frombuffer(b'"ct":"', np.uint8)
# msgspec raises UnicodeDecodeError (not a DecodeError) for invalid UTF-8 inside a string
_ERRORS: tuple[type[Exception], ...] = (
    (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) if msgspec else ()
)


class _Names:
    """Key and stream ids seen (and checked against the envelope's patterns) by one reader."""

    def __init__(self) -> None:
        self.kids: set[str] = set()
        self.sids: set[str] = set()
        self.many = False  # too many to list: decode them as plain strings

    def decoders(self) -> tuple[Any, Any]:
        if self.many:
            return decoders((), ())
        return decoders(tuple(sorted(self.kids)), tuple(sorted(self.sids)))

    def learn(self, kids: set[str], sids: set[str]) -> bool:
        """Whether the ids are well formed (the exact path would reject them otherwise)."""
        for k in kids - self.kids:
            if type(k) is not str or not _KID.match(k):
                return False
        for s in sids - self.sids:
            if type(s) is not str or not _SID.match(s):
                return False
        self.kids |= kids
        self.sids |= sids
        if len(self.kids) > NAMES_MAX or len(self.sids) > NAMES_MAX:
            self.many = True
        return True


def _decode(names: _Names, data: bytes, batch: bool) -> list[Any] | None:
    dec = names.decoders()[batch]
    try:
        return dec.decode_lines(data)
    except _ERRORS:
        pass
    if names.many:
        return None
    try:  # maybe a key or stream id not seen before
        envs = decoders((), ())[batch].decode_lines(data)
    except _ERRORS:
        return None
    if not names.learn(set(map(_get_kid, envs)), set(map(_get_sid, envs))):
        return None
    return envs


def _canonical_ct(a: np.ndarray, ends: np.ndarray, ct_lens: np.ndarray) -> bool:
    """Each line ends with ``"ct":"<base64>"}`` spelled canonically (padding bits zero).

    msgspec decodes base64 whose unused bits are set (``QR==`` as ``A``), which the exact path
    refuses as tampered; this checks the spelling of the ``ct`` field, which must then be the
    line's last one (as the writer puts it). ``n`` (12 bytes, 16 characters) has no padding."""
    b64_len = (ct_lens + 2) // 3 * 4
    close = ends - 2  # the closing quote of ct's value
    if not (bool((a[close] == 34).all()) and bool((a[ends - 1] == 125).all())):
        return False
    key = close - b64_len - 6
    if int(key.min()) < 0:
        return False
    for i, c in enumerate(_CT_KEY):
        if not bool((a[key + i] == c).all()):
            return False
    rem = ct_lens % 3
    one = rem == 2  # "X="
    two = rem == 1  # "X=="
    return bool(_PAD1_OK[a[close[one] - 2]].all()) and bool(_PAD2_OK[a[close[two] - 3]].all())


def feed_block(
    reader: Reader, data: bytes | memoryview, line0: int, ends: np.ndarray | None = None
) -> BlockResult | None:
    """:meth:`Reader.feed_block`: see the module docstring."""
    if msgspec is None or not reader._keys.keys:
        return None
    raw = bytes(data)
    if not raw or raw[-1:] != b"\n" or b"\\" in raw:  # an escape could hide a non-canonical spelling
        return None
    a = np.frombuffer(raw, np.uint8)
    if ends is None:
        ends = np.flatnonzero(a == 10)
    k = len(ends)
    starts = np.empty(k, np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    # every line "{...}": then one decoded value per line is the line-by-line reading
    if not (bool((a[starts] == 123).all()) and bool((a[ends - 1] == 125).all())):
        return None
    batch = raw.startswith(b'{"v":1,"alg":"A256GCM","kid":"') and b',"b":' in raw[: ends[0]]
    lines = np.arange(line0, line0 + k)
    if not batch and _envscan is not None:
        # the writer's own spelling, one stream, read in C; anything else: msgspec below
        got = _envscan.scan_lines(raw, k)
        if got is not None and reader._names.learn({got[0]}, {got[1]}):
            kid, sid, first, final, nonces, cts = got
            finals = np.zeros(k, np.bool_)
            finals[-1] = final
            counters = np.arange(first, first + k, dtype=np.int64)
            return _line_envelopes(reader, [kid] * k, [sid] * k, True, counters, finals, nonces, cts, lines)
    envs = _decode(reader._names, raw, batch)
    if envs is None or len(envs) != k:
        return None
    if batch:
        if not _canonical_ct(a, ends, np.fromiter(map(len, map(_get_ct, envs)), np.int64, k)):
            return None
        return _batches(reader, envs, lines)
    kids, sids, one = _streams_of(envs)
    counters = np.fromiter(map(_get_seq, envs), np.int64, k)
    flags = list(map(_get_final, envs))
    if flags.count(msgspec.UNSET) == k:
        finals = np.zeros(k, np.bool_)
    else:
        finals = np.array([f is True for f in flags], np.bool_)
    cts = list(map(_get_ct, envs))
    lens = np.fromiter(map(len, cts), np.int64, k)
    if not _canonical_ct(a, ends, lens):  # msgspec also decodes base64 whose padding bits are set
        return None
    return _line_envelopes(reader, kids, sids, one, counters, finals, list(map(_get_n, envs)), cts, lines)


def _streams_of(envs: list[Any]) -> tuple[list[str], list[str], bool]:
    kids = list(map(_get_kid, envs))
    sids = list(map(_get_sid, envs))
    one = sids.count(sids[0]) == len(sids) and kids.count(kids[0]) == len(kids)
    return kids, sids, one


def _plan(
    reader: Reader,
    mode: str,
    sids: list[str],
    kids: list[str],
    counters: np.ndarray,
    finals: np.ndarray,
    one: bool,
) -> dict[str, tuple[np.ndarray, int]] | None:
    """Per stream id: (row indices in the slice, first counter), if every stream's counters run on
    exactly from where it stood and only its last envelope here may be final; else None."""
    groups: dict[str, np.ndarray]
    if one:
        groups = {sids[0]: np.arange(len(sids))}
    else:
        where: dict[str, list[int]] = {}
        for i, s in enumerate(sids):
            where.setdefault(s, []).append(i)
        groups = {s: np.array(rows) for s, rows in where.items()}
        for rows in groups.values():  # one key per stream here: one AAD prefix, one key
            if len({kids[i] for i in rows}) != 1:
                return None
    plan = {}
    for sid, rows in groups.items():
        st = reader._streams.get((mode, sid))
        c = counters[rows]
        if st is None:
            first = int(c[0]) if reader._partial else 0
        elif st.final is not None:
            return None
        else:
            first = st.top + 1
        if not bool((c == np.arange(first, first + len(c))).all()):
            return None
        if bool(finals[rows[:-1]].any()):
            return None
        plan[sid] = (rows, first)
    return plan


def _apply(
    reader: Reader,
    mode: str,
    plan: dict[str, tuple[np.ndarray, int]],
    counters: np.ndarray,
    finals: np.ndarray,
    lines: np.ndarray,
    records: np.ndarray,
) -> Callable[[], None]:
    def apply() -> None:
        from .reader import _Stream

        for sid, (rows, first) in plan.items():
            st = reader._streams.get((mode, sid))
            if st is None:
                st = reader._streams[(mode, sid)] = _Stream(mode, sid, top=first - 1)
                if reader._partial:
                    st.first = first
            last = int(rows[-1])
            st.top = int(counters[last])
            if finals[last]:
                st.final, st.final_line = st.top, int(lines[last])
            st.envelopes += len(rows)
            st.records += int(records[rows].sum())
            st.last_line = int(lines[last])

    return apply


def _line_envelopes(
    reader: Reader,
    kids: list[str],
    sids: list[str],
    one: bool,
    counters: np.ndarray,
    finals: np.ndarray,
    nonces: list[bytes],
    cts: list[bytes],
    lines: np.ndarray,
) -> BlockResult | None:
    """Open a slice of line envelopes (its ids, counters, final flags, nonces and ciphertexts, one
    per line; one: a single key and stream); None when the plan or any tag fails."""
    k = len(cts)
    plan = _plan(reader, "line", sids, kids, counters, finals, one)
    if plan is None:
        return None
    aads: list[bytes] = [b""] * k
    keys: list[Any] = [None] * k
    for sid, (rows, first) in plan.items():
        kid = kids[int(rows[0])]
        key = reader._keys.by_kid.get(kid)
        if key is None:
            return None
        head = line_aad(kid, sid, 0, False).rsplit(b"|seq=", 1)[0] + b"|seq=%d|final=0"
        if one:
            aads = list(map(head.__mod__, range(first, first + k)))
            keys = [key.aead] * k
        else:
            for i in rows.tolist():
                aads[i] = head % int(counters[i])
                keys[i] = key.aead
        last = int(rows[-1])
        if finals[last]:
            aads[last] = line_aad(kid, sid, int(counters[last]), True)
    try:
        if one:
            plain = list(map(keys[0].decrypt, nonces, cts, aads))
        else:
            plain = [
                aead.decrypt(n, ct, aad) for aead, n, ct, aad in zip(keys, nonces, cts, aads, strict=True)
            ]
    except InvalidTag:
        return None
    lens = np.fromiter(map(len, plain), np.int64, k)
    # a final envelope carries no record (the writer's end marker); any other empty plaintext is
    # left to the exact path
    has = ~finals
    if not bool(((lens == 0) == finals).all()):
        return None
    if bool(finals.any()):
        plain = [p for p, f in zip(plain, finals.tolist(), strict=True) if not f]
    blob = b"\n".join(plain) + b"\n" if plain else b""
    records = has.astype(np.int64)
    rec_ends = np.cumsum(lens[has] + 1) - 1
    return BlockResult(
        blob, rec_ends, lines[has], _apply(reader, "line", plan, counters, finals, lines, records)
    )


def _batches(reader: Reader, envs: list[Any], lines: np.ndarray) -> BlockResult | None:
    k = len(envs)
    kids, sids, one = _streams_of(envs)
    counters = np.fromiter(map(_get_b, envs), np.int64, k)
    finals = np.fromiter(map(_get_final, envs), np.bool_, k)
    plan = _plan(reader, "batch", sids, kids, counters, finals, one)
    if plan is None:
        return None
    chunks: list[bytes] = []
    counts = np.zeros(k, np.int64)
    for i, e in enumerate(envs):
        key = reader._keys.by_kid.get(e.kid)
        if key is None:
            return None
        try:
            text = key.aead.decrypt(e.n, e.ct, batch_aad(e.kid, e.sid, e.b, e.final, e.z))
        except InvalidTag:
            return None
        if e.z == "zlib":
            try:
                d = zlib.decompressobj()
                text = d.decompress(text, _MAX_PLAINTEXT)
                if d.unconsumed_tail or not d.eof:
                    return None
            except zlib.error:
                return None
        if text:
            if text[-1:] != b"\n":
                return None  # the writer ends every batch with a newline
            counts[i] = text.count(b"\n")
            chunks.append(text)
    blob = b"".join(chunks)
    rec_ends = np.flatnonzero(np.frombuffer(blob, np.uint8) == 10)
    return BlockResult(
        blob,
        rec_ends,
        np.repeat(lines, counts),
        _apply(reader, "batch", plan, counters, finals, lines, counts),
    )
