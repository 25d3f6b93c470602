"""Aggregate DMCA telemetry into SIDRCE's report (counts, medians, FTI, λ) in one streaming pass.

Memory holds, per accepted record, only the figures the report needs (cost, qps, latency, group
id, time, whether it is an intervention, and the North Star values whose medians are reported:
causal effect, reliability score, SR9, DI2, NaN where absent: 69 bytes), never the raw text; of the
confidence interval only each group's latest is kept, and per group the distinct (study,
intervention, outcome) of its records carrying an effect (:class:`Effects`): a group mixing studies
gets no effect figures. Bad lines are counted by reason and skipped.

Speed: plain lines go through a compiled scanner (``sidrce/_linescan.c``, built at install; see
:data:`sidrce.validate.SCANNER`) that writes the report's numbers, times and group indices straight
into numpy columns, 4,096 lines a call, and gives up on anything outside the common shape. From
there on, or where it was not built, lines are decoded a slice at a time by one msgspec call into
typed structs (see :mod:`sidrce.validate`; string fields whose values repeat are narrowed to the
values seen, so they cost no allocation), and turned into columns without a per-record Python
loop; a slice with any line neither fast path can take is read line by line with the exact
check. Each fast path accepts only what the contract accepts, with the values json.loads gives.
A slice of envelopes is opened at once by the reader (``feed_block``, when it has one) and its
plaintext records go through the same paths; a slice the reader or the decode cannot take whole
is read line by line.
A large file is read by two processes, each half of it, and merged as if read in order: the
child's envelope readers start mid-stream and this process's continue from their state when the
halves meet cleanly (else it reads the second half itself); the child leaves its columns in memory
shared with the parent rather than pickling them down a pipe. The report's medians run on two
threads.

Run as a script (``python sidrce/collector.py``) it reads
``ops_telemetry.jsonl`` in the working directory and prints the report as JSON.
"""

from __future__ import annotations

import contextlib
import json
import math
import mmap
import multiprocessing as mp
import os
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from dmca_core.errors import ConfigError, TelemetryRejected, UsageError
from dmca_core.telemetry.record import REQUIRED, TS_PATTERN, is_valid_fast, not_unicode
from sidrce import fti as F
from sidrce.source import MAX_LINE, ReadError, Stream, cannot_read, read_all
from sidrce.validate import (
    FAST,
    NUMBER_FIELDS,
    REPEATED,
    SCAN_COLUMNS,
    SCANNER,
    fast_decoder,
    loads,
    problem,
    ts_epoch,
    ts_epochs_blob,
)

try:
    from msgspec import UNSET, DecodeError, ValidationError

    # msgspec raises UnicodeDecodeError (not a DecodeError) for invalid UTF-8 inside a string, and
    # RecursionError for an extra field nested too deep: the exact path gives their verdict
    _FAST_ERRORS: tuple[type[Exception], ...] = (
        DecodeError,
        ValidationError,
        UnicodeDecodeError,
        RecursionError,
    )
except ImportError:  # pragma: no cover - msgspec is optional
    UNSET = object()
    _FAST_ERRORS = ()

KEY_VARS = "SIDRCE_AES_KEY (or SIDRCE_AES_KEYS)"
PARALLEL_MIN_BYTES = 64 << 20  # below this, forking a second reader costs more than it saves
SERIES_POINTS = 60  # per group; enough for a chart, small enough for every /report
EXAMPLES = 20

_get = {n: attrgetter(n) for n in ("domain", "hypothesis", "infra_cost_usd", "qps", "latency_p95_ms", "ts")}
#: the study's North Star fields (optional in a record): report name -> column name
NORTH_STAR = {"causal_effect": "eff", "reliability_score": "rel", "SR9": "sr9", "DI2": "di2"}
LATEST = ("causal_effect", "ci_low", "ci_high", "reliability_score", "SR9", "DI2")
_get_ns = [(col, attrgetter(name)) for name, col in NORTH_STAR.items()]
_COLUMNS = ("cost", "qps", "lat", *NORTH_STAR.values())
_get_numbers = attrgetter("infra_cost_usd", "qps", "latency_p95_ms", *NORTH_STAR)
_get_latest = attrgetter(*LATEST)
_SCAN_COL = dict(SCAN_COLUMNS)
# a record's key: its group, then what tells its study's effects from another study's
_get_kind = attrgetter("domain", "hypothesis", "intervention", "study", "outcome")
KINDS_MAX = 1 << 16
EFFECT_IDS_MAX = 256  # distinct studies kept per group: beyond, the group is mixed, the count capped
LITERALS_MAX = 32  # values of one string field worth listing in the decoder's type
PARALLEL_MEDIANS = 1 << 16  # records from which the report's overall medians get their own thread
FAST_LINES = 4096  # lines per fast-path decode: small enough for the decoded objects to stay in cache
SCAN_LINES = 4096  # lines per call of the compiled scanner: its columns stay in cache


class Columns:
    """Growable numpy columns. A view ``[:n]`` stays valid while rows are appended: old rows are
    never written again and a grown buffer is a new array."""

    FIELDS = (
        ("cost", np.float64),
        ("qps", np.float64),
        ("lat", np.float64),
        ("gid", np.int32),
        ("ts", np.float64),
        ("chg", np.bool_),
        ("eff", np.float64),
        ("rel", np.float64),
        ("sr9", np.float64),
        ("di2", np.float64),
    )

    def __init__(self) -> None:
        self.n = 0
        self.arrays = {name: np.empty(1024, dtype) for name, dtype in self.FIELDS}

    def extend(self, **cols: np.ndarray) -> None:
        k = len(cols["cost"])
        need = self.n + k
        cap = len(self.arrays["cost"])
        if need > cap:
            while cap < need:
                cap *= 2
            for name, arr in self.arrays.items():
                new = np.empty(cap, arr.dtype)
                new[: self.n] = arr[: self.n]
                self.arrays[name] = new
        for name, arr in self.arrays.items():
            arr[self.n : need] = cols[name]
        self.n = need

    def view(self) -> dict[str, np.ndarray]:
        return {name: arr[: self.n] for name, arr in self.arrays.items()}


@attrs.frozen
class Snapshot:
    """What a report is computed from: column views, group keys and rejection counts."""

    cols: dict[str, np.ndarray]
    keys: list[tuple[str, str]]
    rejected: dict[str, int]
    examples: list[dict[str, Any]]
    latest: Latest = attrs.field(factory=lambda: Latest())
    open_streams: list[dict[str, Any]] = attrs.field(factory=list)
    effects: Effects = attrs.field(factory=lambda: Effects())


#: (ts, (causal_effect, ci_low, ci_high, reliability_score, SR9, DI2)), None where absent
Result = tuple[float, tuple[float | None, ...]]


@attrs.define
class Latest:
    """Per group, the last record carrying ``causal_effect``: in file order (``file``) and by
    ``ts`` with ties to the later line (``by_ts``). The report uses the one matching its time order.
    """

    file: dict[int, Result] = attrs.field(factory=dict)
    by_ts: dict[int, Result] = attrs.field(factory=dict)

    def note(self, gid: int, ts: float, values: tuple[float | None, ...]) -> None:
        """A record later in file order than every one noted before."""
        self.file[gid] = (ts, values)
        cur = self.by_ts.get(gid)
        if ts == ts and (cur is None or ts >= cur[0]):  # ts == ts: not NaN
            self.by_ts[gid] = (ts, values)

    def copy(self) -> Latest:
        return Latest(dict(self.file), dict(self.by_ts))


#: what must agree between the records behind one group's effect figures: (study, intervention,
#: outcome), None for a study or outcome a record does not carry (older records)
EffectId = tuple[str | None, str, str | None]
EFFECT_PARTS = ("study", "intervention", "outcome")


def effect_id(intervention: str, study: Any, outcome: Any) -> EffectId:
    """A record's :data:`EffectId`; ``study``/``outcome`` absent (None or msgspec's UNSET): None."""
    return (study if type(study) is str else None, intervention, outcome if type(outcome) is str else None)


@attrs.define
class Effects:
    """Per group, the distinct :data:`EffectId` of its records that carry ``causal_effect``, at most
    :data:`EFFECT_IDS_MAX` + 1 of them (one more shows the group is past the cap). A set: the
    same whatever order the records came in, so every reading path and a two-process merge agree."""

    ids: dict[int, set[EffectId]] = attrs.field(factory=dict)

    def note(self, gid: int, ident: EffectId) -> None:
        s = self.ids.get(gid)
        if s is None:
            self.ids[gid] = {ident}
        elif len(s) <= EFFECT_IDS_MAX:
            s.add(ident)

    def merge(self, gid: int, idents: set[EffectId]) -> None:
        for ident in idents:
            self.note(gid, ident)

    def copy(self) -> Effects:
        return Effects({g: set(s) for g, s in self.ids.items()})


def effect_verdict(idents: set[EffectId] | None) -> tuple[int, str | None]:
    """(studies, why the group's effect figures are withheld or None) for a group's
    :data:`EffectId` set. They agree when the records carrying each field give one value of it:
    a record without ``study``/``outcome`` is compared on what it carries. Agreeing: one study.
    Else the distinct (study, intervention, outcome) count, and which of them differ."""
    if not idents:
        return 0, None
    n = len(idents)
    if n > EFFECT_IDS_MAX:  # the set was capped: which parts differ could depend on the reading
        return n, f"mixed: more than {EFFECT_IDS_MAX} studies"
    differ = [
        name
        for i, name in enumerate(EFFECT_PARTS)
        if len({ident[i] for ident in idents if ident[i] is not None}) > 1
    ]
    if not differ:
        return 1, None
    return n, f"mixed: {n} studies (differing {', '.join(differ)})"


def effect_of(idents: set[EffectId] | None) -> dict[str, str | None]:
    """What the group's effect figures are of: each of ``study``, ``intervention``, ``outcome``
    that its records carrying ``causal_effect`` agree on, else None (mixed, or never given)."""
    out: dict[str, str | None] = dict.fromkeys(EFFECT_PARTS)
    if idents and len(idents) <= EFFECT_IDS_MAX:
        for i, name in enumerate(EFFECT_PARTS):
            values = {ident[i] for ident in idents if ident[i] is not None}
            if len(values) == 1:
                out[name] = values.pop()
    return out


def _key_var_set(environ: Mapping[str, str]) -> bool:
    """Whether the aes-gcm plugin's key variables hold something (blank counts as unset)."""
    return any(environ.get(var, "").strip() for var in ("SIDRCE_AES_KEY", "SIDRCE_AES_KEYS"))


class Aggregator:
    """Accepted records and rejections from any number of files (or followed streams)."""

    def __init__(
        self,
        *,
        allow_plaintext: bool = False,
        environ: Mapping[str, str] | None = None,
        on_reject: Any = None,
        closed: bool = False,
    ) -> None:
        self.allow_plaintext = allow_plaintext
        # every writer has finished: an encrypted stream without final envelope was truncated
        self.closed = closed
        self.environ = os.environ if environ is None else environ
        self.on_reject = on_reject  # callable(file, line, reason, detail), e.g. for `sidrce validate`
        self.groups: dict[tuple[str, str], int] = {}
        self.keys: list[tuple[str, str]] = []
        self.cols = Columns()
        self.rejected: Counter[str] = Counter()
        self.examples: list[dict[str, Any]] = []
        self.latest = Latest()
        self.effects = Effects()
        self.open_streams: list[dict[str, Any]] = []  # streams without a final envelope (see FileState)
        self.version = 0
        self._encryptors: list[Any] | None = None
        self._expects: bool | None = None
        self._pending: list[tuple[Any, ...]] = []
        # (domain, hypothesis, intervention, study, outcome) -> kind: the fast paths' lookup table
        self._kinds: dict[tuple[Any, ...], int] = {}
        self._kind_eff: list[EffectId] = []  # per kind
        self._kind_noted = np.zeros(16, np.bool_)  # the kind's EffectId is in its group's Effects
        self.decoder = FAST  # becomes fast_decoder(values seen) once a block is read
        self._lit: dict[str, set[str]] = {}
        self._lit_off: set[str] = set()  # fields with too many values to list
        self._kind_gid = np.zeros(16, np.int32)
        self._kind_chg = np.zeros(16, np.bool_)
        self._scan_bufs: tuple[np.ndarray, np.ndarray] | None = None

    # --- input ---------------------------------------------------------------------------------
    def file(self, label: str) -> FileState:
        return FileState(self, label)

    def read(self, paths: Iterable[str | Path]) -> Aggregator:
        for path in paths:
            path = Path(path)
            split = self._split_point(path)
            if split is None:
                read_all(path, self.file(str(path)))
            else:
                try:
                    self._read_split(path, split)
                except ReadError as exc:  # the file's read failed (not a sink's write)
                    raise cannot_read(path, exc) from None
        return self

    # --- one file on two cores ------------------------------------------------------------------
    def _split_point(self, path: Path) -> int | None:
        """Where a second process may start reading ``path`` (just after a newline near the middle),
        or None when the file is read in one pass: small, gzip, no spare core, a caller that wants
        every rejection as it happens (``on_reject``), or no safe way to fork."""
        if (
            FAST is None
            or self.on_reject is not None
            or (os.cpu_count() or 1) < 2
            or "fork" not in mp.get_all_start_methods()
            or threading.active_count() > 1  # forking a threaded process can deadlock the child
        ):
            return None
        try:
            size = path.stat().st_size
            if size < PARALLEL_MIN_BYTES:
                return None
            with path.open("rb") as f:
                if f.read(1) == b"\x1f":  # gzip: one stream, read in order
                    return None
                f.seek(size // 2)
                probe = f.read(1 << 20)
        except OSError:
            return None  # read_all reports it
        nl = probe.find(b"\n")
        if nl < 0 or size // 2 + nl + 1 >= size:
            return None
        return size // 2 + nl + 1

    def _read_split(self, path: Path, split: int) -> None:
        """Lines before ``split`` here, the rest in a forked process; merged as if read in order.

        The child's envelope readers start mid-stream and send back their streams' state, which
        this process's readers continue when the halves meet cleanly (see :meth:`_join`); when
        they do not, or the child failed, this process reads the second half itself.
        """
        label = str(path)
        ctx = mp.get_context("fork")
        recv, send = ctx.Pipe(duplex=False)
        shared = _Shared.for_bytes(path.stat().st_size - split)
        child = ctx.Process(target=_second_half, args=(self, path, label, split, send, shared), daemon=True)
        child.start()
        send.close()
        sink = self.file(label)
        try:
            stream = Stream(path, sink)
        except OSError as exc:
            child.kill()
            raise cannot_read(path, exc) from None
        try:
            stream.pump(limit=split)
            try:
                result = recv.recv()
            except Exception:  # noqa: BLE001 - the child died (e.g. out of memory): read its half here
                result = None
            child.join()
            if result is None or not self._join(sink, result, stream.line - 1):
                stream.pump()
            else:
                if isinstance(result["cols"], int):  # the columns are in shared memory
                    result["cols"] = shared.columns(result["cols"])  # type: ignore[union-attr]
                self._merge(result, label, stream.line - 1)
                sink.mode = sink.mode or result["mode"]
                del result
        finally:
            if shared is not None:
                shared.close()
            recv.close()
            if child.is_alive():
                child.kill()
                child.join()
            stream.close()

    def _join(self, sink: FileState, part: dict[str, Any], line_offset: int) -> bool:
        """Continue ``sink``'s readers with the child's, if every verdict the child gave is the one
        this process would have given reading on (False, nothing changed, otherwise):

        - a plaintext line's verdict depends on the file's mode (set by its first JSON line): the
          child's must be this one's, unless plaintext is allowed anyway;
        - each reader's streams must run on exactly from where they stand here (``join``).
        """
        if part["plaintext"] and not self.allow_plaintext and sink.mode not in (None, part["mode"]):
            return False
        states = part["readers"]
        if not states:
            return True
        if len(states) > 1:
            return False
        ((idx, state),) = states.items()
        reader = sink._readers.get(idx)
        if reader is None:
            try:
                reader = sink._reader(idx, self.encryptors()[idx], line_offset + 1)
            except Exception:  # noqa: BLE001 - reading on here reports it, on the right line
                return False
        join = getattr(reader, "join", None)
        return join is not None and bool(join(state, line_offset))

    def _merge(self, part: dict[str, Any], label: str, line_offset: int) -> None:
        self.flush()
        cols = part["cols"]
        remap = np.array([self._gid(k) for k in part["keys"]], np.int32)
        if len(cols["cost"]):
            self.cols.extend(**{**cols, "gid": remap[cols["gid"]]})
        latest: Latest = part["latest"]
        for g, (ts, values) in latest.file.items():  # the second half comes later in file order
            self.latest.file[int(remap[g])] = (ts, values)
        for g, (ts, values) in latest.by_ts.items():
            cur = self.latest.by_ts.get(int(remap[g]))
            if cur is None or ts >= cur[0]:
                self.latest.by_ts[int(remap[g])] = (ts, values)
        for g, idents in part["effects"].ids.items():
            self.effects.merge(int(remap[g]), idents)
        self.rejected.update(part["rejected"])
        for ex in part["examples"]:
            if len(self.examples) >= EXAMPLES:
                break
            self.examples.append({**ex, "line": ex["line"] + line_offset})
        self.version += 1

    def expects_envelopes(self) -> bool:
        """Whether every record should come sealed: an installed encryptor has a key in
        :attr:`environ` (its optional ``has_key``), and plaintext is not allowed."""
        if self._expects is None:
            from dmca_core import plugins

            # this loads the plugins (~0.1 s) also for a plain file, which the C scanner alone
            # used to read: the price of asking every encryptor, not only the aes-gcm one
            self._expects = not self.allow_plaintext and plugins.encryption_key_set(self.environ)
        return self._expects

    def encryptors(self) -> list[Any]:
        if self._encryptors is None:
            from dmca_core import plugins

            self._encryptors = list(plugins.encryptors().values())
        return self._encryptors

    def reject(self, label: str, line: int, reason: str, detail: str = "") -> None:
        self.rejected[reason] += 1
        self.version += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append({"file": label, "line": line, "reason": reason, "detail": detail})
        if self.on_reject is not None:
            self.on_reject(label, line, reason, detail)

    def _gid(self, key: tuple[str, str]) -> int:
        gid = self.groups.get(key)
        if gid is None:
            gid = self.groups[key] = len(self.keys)
            self.keys.append(key)
        return gid

    def add(self, rec: Mapping[str, Any], ts: float) -> None:
        """One validated record (slow path); buffered until :meth:`flush`."""
        gid = self._gid((rec["domain"], rec["hypothesis"]))
        get = rec.get
        eff = get("causal_effect")
        if eff is not None:
            self.latest.note(gid, ts, tuple(None if v is None else float(v) for v in map(get, LATEST)))
            self.effects.note(gid, effect_id(rec["intervention"], get("study"), get("outcome")))
        nan = math.nan
        self._pending.append(
            (
                rec["infra_cost_usd"],
                rec["qps"],
                rec["latency_p95_ms"],
                gid,
                ts,
                rec["intervention"] != "-",
                nan if eff is None else eff,
                get("reliability_score", nan),
                get("SR9", nan),
                get("DI2", nan),
            )
        )
        if len(self._pending) >= 65536:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        c, q, l, g, t, v, eff, rel, sr9, di2 = zip(*self._pending, strict=True)
        self._pending = []
        self.cols.extend(
            cost=np.array(c, float),
            qps=np.array(q, float),
            lat=np.array(l, float),
            gid=np.array(g, np.int32),
            ts=np.array(t, float),
            chg=np.array(v, bool),
            eff=np.array(eff, float),
            rel=np.array(rel, float),
            sr9=np.array(sr9, float),
            di2=np.array(di2, float),
        )
        self.version += 1

    def add_fast(self, recs: list[Any]) -> bool:
        """A block decoded by the fast path; False (nothing added) if a ``ts`` is no real time."""
        n = len(recs)
        ts = None
        first = recs[0].ts
        if type(first) is str:
            try:
                blob = "".join(map(_get["ts"], recs)).encode("ascii")
            except (TypeError, UnicodeEncodeError):  # a missing ts (UNSET), or not ASCII
                blob = None
            if blob is not None:
                ts = ts_epochs_blob(blob, n, len(first))
        if ts is None:
            ts = np.empty(n)
            for i, s in enumerate(map(_get["ts"], recs)):
                if s is UNSET:
                    ts[i] = math.nan
                else:
                    e = ts_epoch(s) if TS_PATTERN.match(s) else None
                    if e is None:
                        return False
                    ts[i] = e
        # one dict lookup per record gives both the group and whether it is an intervention
        try:
            kind = np.fromiter(map(self._kinds.get, map(_get_kind, recs)), np.int32, n)
        except TypeError:  # None: a triple not seen yet
            if len(self._kinds) + n > KINDS_MAX:  # a cache: distinct interventions must not grow it
                self._clear_kinds()
            kind = np.fromiter(map(self._kind, map(_get_kind, recs)), np.int32, n)
        self.flush()  # keep file order
        gid = self._kind_gid[: len(self._kinds)][kind]
        try:  # every number present (the common case): one pass over all records and fields
            m = np.fromiter(chain.from_iterable(map(_get_numbers, recs)), float, n * len(_COLUMNS))
            num = dict(zip(_COLUMNS, m.reshape(n, len(_COLUMNS)).T, strict=True))
        except TypeError:  # UNSET: some North Star field absent in some record
            num = {
                "cost": np.fromiter(map(_get["infra_cost_usd"], recs), float, n),
                "qps": np.fromiter(map(_get["qps"], recs), float, n),
                "lat": np.fromiter(map(_get["latency_p95_ms"], recs), float, n),
            }
            num.update((col, _floats(recs, get, n)) for col, get in _get_ns)
        self.cols.extend(gid=gid, ts=ts, chg=self._kind_chg[: len(self._kinds)][kind], **num)
        self._note_latest(
            lambda r: tuple(None if v is UNSET else v for v in _get_latest(recs[r])), gid, ts, num["eff"]
        )
        self._note_effects(kind, num["eff"])
        self.version += 1
        return True

    def add_scanned(
        self, data: bytes | memoryview, start: int = 0, expect: int | None = None
    ) -> tuple[int, int] | None:
        """Up to :data:`SCAN_LINES` plain lines of ``data`` from offset ``start``, read by the
        compiled scanner straight into columns: ``(lines, offset after them)``, or None (nothing
        added) if it gives up, and the msgspec path reads them. ``expect``: all of ``data`` must be
        exactly that many lines, else nothing is added."""
        cap = SCAN_LINES if expect is None else expect + 1  # + 1: a line more than expected shows
        bufs = self._scan_bufs
        if bufs is None or len(bufs[1]) < cap:
            bufs = (np.empty(len(SCAN_COLUMNS) * cap), np.empty(cap, np.int32))
            if cap <= SCAN_LINES + 1:  # kept for the next call; a batch envelope's many records are not
                self._scan_bufs = bufs
        table, local = bufs
        res = SCANNER.scan(data, start, table, local[:cap])
        if res is None:
            return None
        n, end, triples = res
        if expect is not None and (n != expect or end != len(data)):
            return None
        if n == 0:
            return n, end
        if len(self._kinds) + len(triples) > KINDS_MAX:  # a cache: distinct interventions must not grow it
            self._clear_kinds()
        kind = np.fromiter(map(self._kind, triples), np.int32, len(triples))[local[:n]]
        self.flush()  # keep file order
        gid = self._kind_gid[: len(self._kinds)][kind]
        num = {col: table[c * cap : c * cap + n] for c, (_, col) in enumerate(SCAN_COLUMNS)}
        self.cols.extend(gid=gid, chg=self._kind_chg[: len(self._kinds)][kind], **num)
        latest = [num[_SCAN_COL[name]] for name in LATEST]

        def values(r: int) -> tuple[float | None, ...]:
            return tuple(None if v != v else v for v in (float(c[r]) for c in latest))  # NaN: absent

        self._note_latest(values, gid, num["ts"], num["eff"])
        self._note_effects(kind, num["eff"])
        self.version += 1
        return n, end

    def _note_effects(self, kind: np.ndarray, eff: np.ndarray) -> None:
        """:meth:`Effects.note` for a block: once per kind whose records carry an effect."""
        nk = len(self._kinds)
        has = np.zeros(nk, np.bool_)
        has[kind[~np.isnan(eff)]] = True
        noted = self._kind_noted[:nk]
        for k in np.flatnonzero(has & ~noted).tolist():
            self.effects.note(int(self._kind_gid[k]), self._kind_eff[k])
            noted[k] = True

    def _clear_kinds(self) -> None:
        self._kinds.clear()
        self._kind_eff.clear()
        self._kind_noted[:] = False

    def _note_latest(self, values: Any, gid: np.ndarray, ts: np.ndarray, eff: np.ndarray) -> None:
        """:meth:`Latest.note` for a block, only for the rows that can be a group's latest: the
        last row with an effect per group, and the one with the latest ``ts`` (ties: the last).
        ``values(row)``: that row's :data:`LATEST` figures, None where absent."""
        has = ~np.isnan(eff)
        if bool(has.all()):  # the common case: every record carries an effect
            rows, g, t = np.arange(len(eff)), gid, ts
        else:
            rows = np.flatnonzero(has)
            if not len(rows):
                return
            g, t = gid[rows], ts[rows]
        last = np.full(len(self.keys), -1, np.int64)
        np.maximum.at(last, g, rows)  # each group's last row: O(n), no sort
        last = last[last >= 0]
        if bool((t[1:] >= t[:-1]).all()):  # times in line order (no NaN): the last row is the latest
            candidates = last
        else:
            order = np.lexsort((rows, np.nan_to_num(t, nan=-np.inf), g))  # by group, ts, line
            ends = np.flatnonzero(np.r_[g[order][1:] != g[order][:-1], True])
            # a NaN ts sorts first: it is a candidate only where every ts is NaN, and note skips it
            candidates = np.union1d(rows[order[ends]], last)
        for r in np.sort(candidates):
            r = int(r)
            # rows in line order: the file-order candidate ends as each group's last row
            self.latest.note(int(gid[r]), float(ts[r]), values(r))

    def learn(self, recs: list[Any]) -> None:
        """Note the values of the repeated string fields in ``recs`` and narrow the decoder."""
        for name in REPEATED:
            if name in self._lit_off:
                continue
            values = set(map(attrgetter(name), recs))
            values.discard(UNSET)
            seen = self._lit.setdefault(name, set())
            seen |= values
            if len(seen) > LITERALS_MAX:
                self._lit_off.add(name)
                del self._lit[name]
        literals = tuple((k, tuple(sorted(v))) for k, v in sorted(self._lit.items()) if v)
        if not literals:  # nothing worth listing: stop trying
            self._lit_off.update(REPEATED)
        self.decoder = fast_decoder(literals) if literals else FAST

    def _kind(self, key: tuple[Any, ...]) -> int:
        """Index of a (domain, hypothesis, intervention, study, outcome) key in the fast path's
        lookup table (study and outcome None, or msgspec's UNSET, where a record has none)."""
        k = self._kinds.get(key)
        if k is None:
            k = self._kinds[key] = len(self._kinds)
            if k >= len(self._kind_gid):
                self._kind_gid = np.resize(self._kind_gid, 2 * k + 2)
                self._kind_chg = np.resize(self._kind_chg, 2 * k + 2)
                self._kind_noted = np.resize(self._kind_noted, 2 * k + 2)
            self._kind_gid[k] = self._gid(key[:2])
            self._kind_chg[k] = key[2] != "-"
            self._kind_noted[k] = False
            self._kind_eff.append(effect_id(*key[2:]))
        return k

    # --- output --------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        self.flush()
        return Snapshot(
            self.cols.view(),
            list(self.keys),
            dict(self.rejected),
            list(self.examples),
            self.latest.copy(),
            list(self.open_streams),
            self.effects.copy(),
        )

    def report(self, **kw: Any) -> dict[str, Any]:
        return summarize(self.snapshot(), **kw)


_ZEROS = (0,) * len(NUMBER_FIELDS)


def _floats(recs: list[Any], get: Any, n: int) -> np.ndarray:
    """An optional number field of a decoded block as a column, NaN where absent."""
    try:
        return np.fromiter(map(get, recs), float, n)
    except TypeError:  # UNSET: absent in some record
        return np.array([math.nan if v is UNSET else v for v in map(get, recs)], float)


def _not_unicode(obj: Any) -> bool:
    """A decrypted record with a string that is not valid Unicode (a lone surrogate). Cheap for
    the usual record: its keys and values are ASCII strings or numbers."""
    if not isinstance(obj, dict):
        return False
    for k, v in obj.items():
        if not k.isascii() or (type(v) is str and not v.isascii()) or isinstance(v, (dict, list)):
            return not_unicode(obj)
    return False


def _finite(obj: Mapping[str, Any]) -> bool:
    """No number field of ``obj`` is NaN or infinite. Call only after ``is_valid_fast(obj)`` (every
    such field is absent or an int or float): a NaN or infinity makes the sum NaN or infinite; a
    sum that overflows from finite values only sends the record to the exact check."""
    try:
        total = sum(map(obj.get, NUMBER_FIELDS, _ZEROS))
    except OverflowError:  # an int too large for a float
        return False
    return total - total == 0


class _Envelope(Exception):
    """A child reading half a file met envelopes its reader cannot read from mid-stream: that half
    must be read in order by the parent."""


_ENV_HEAD = b'{"v":1,"alg":'  # how every envelope line begins (see the aes_gcm plugin)


def _shape(data: bytes | memoryview) -> tuple[np.ndarray, np.ndarray]:
    """The offset of each line's ``\n`` in ``data`` (which ends with one), and whether the line
    starts with "{" and ends with "}" (or "}\r"). Lines so shaped hold no value spanning lines, so
    one decoded value per line is exactly the per-line reading (decode_lines splits on whitespace).
    """
    a = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(a == 10)  # data ends with "\n", so ends[-1] == len(data) - 1
    first = np.empty(len(ends), np.bool_)
    if len(ends):
        first[0] = a[0] == 123
        first[1:] = a[ends[:-1] + 1] == 123
    last = a[ends - 1]
    cr = last == 13
    if cr.any():
        last = last.copy()
        last[cr] = a[ends[cr] - 2]
    return ends, first & (last == 125)


# the shortest valid record: its required fields, each as short as it can be
_MIN_RECORD = len(json.dumps({n: "x" if k == "str" else 0 for n, k in REQUIRED}, separators=(",", ":")))


class _Shared:
    """Memory shared with the forked reader of a file's second half, which writes its columns
    there: the parent reads them in place instead of unpickling them from the pipe. Sized for as
    many records as the bytes could hold; only the pages written are ever allocated."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.offsets: dict[str, int] = {}
        size = 0
        for name, dtype in Columns.FIELDS:
            self.offsets[name] = size
            size += -(-cap * np.dtype(dtype).itemsize // 8) * 8  # each column 8-byte aligned
        self.map = mmap.mmap(-1, max(size, 1))  # anonymous and MAP_SHARED: visible across fork

    @classmethod
    def for_bytes(cls, nbytes: int) -> _Shared | None:
        try:
            return cls(nbytes // _MIN_RECORD + 1)
        except (OSError, ValueError, OverflowError):  # no room: the columns go through the pipe
            return None

    def columns(self, n: int) -> dict[str, np.ndarray]:
        return {name: np.frombuffer(self.map, dtype, n, self.offsets[name]) for name, dtype in Columns.FIELDS}

    def put(self, cols: Mapping[str, np.ndarray]) -> bool:
        n = len(cols["cost"])
        if n > self.cap:  # the file grew since it was measured
            return False
        for name, view in self.columns(n).items():
            view[:] = cols[name]
        return True

    def close(self) -> None:
        with contextlib.suppress(BufferError):  # a view still alive: the collector frees it later
            self.map.close()


def _second_half(
    parent: Aggregator, path: Path, label: str, start: int, conn: Any, shared: _Shared | None = None
) -> None:
    """In the forked child: read ``path`` from ``start`` and send back columns (in ``shared`` when
    they fit) and rejections."""
    result = None
    try:
        agg = Aggregator(allow_plaintext=parent.allow_plaintext, environ=parent.environ)
        agg._encryptors = parent._encryptors
        sink = agg.file(label)
        sink.partial = True
        stream = Stream(path, sink, start=start)
        try:
            stream.pump()
        finally:
            stream.close()
        snap = agg.snapshot()
        fits = shared is not None and shared.put(snap.cols)
        result = {
            "cols": len(snap.cols["cost"]) if fits else snap.cols,
            "keys": snap.keys,
            "rejected": snap.rejected,
            "examples": snap.examples,
            "latest": snap.latest,
            "effects": snap.effects,
            "mode": sink.mode,
            "plaintext": sink.plaintext,
            "readers": {idx: reader.state() for idx, reader in sink._readers.items()},
        }
    except Exception:  # noqa: BLE001 - any trouble: the parent reads this half itself, and reports it
        result = None
    conn.send(result)
    conn.close()


class FileState:
    """The :class:`~sidrce.source.LineSink` of one stream: plain or encrypted, its reader."""

    def __init__(self, agg: Aggregator, label: str) -> None:
        self.agg = agg
        self.label = label
        self.mode: str | None = None  # "plain" or "encrypted", set by the first JSON line
        # ... or "encrypted" from the start when a key is set: the telemetry is meant to be sealed,
        # and a plaintext record is what anyone without the key could add
        self.sealed_expected = agg.expects_envelopes()
        if self.sealed_expected:
            self.mode = "encrypted"
        # set in the child that reads the second half of a file: its readers start mid-stream and
        # their state goes back to the parent instead of being finished here
        self.partial = False
        self.plaintext = False  # a plaintext line was judged (its verdict depends on ``mode``)
        self._readers: dict[int, Any] = {}

    # LineSink
    def block(self, data: bytes | memoryview, line0: int) -> int:
        if FAST is not None:
            return self._block_fast(data, line0)
        return self._block_exact(data, line0)

    def _block_exact(self, data: bytes | memoryview, line0: int) -> int:
        lines = bytes(data).split(b"\n")
        lines.pop()
        for i, line in enumerate(lines):
            self.line(line, line0 + i)
        self.agg.flush()
        return len(lines)

    def _block_fast(self, data: bytes | memoryview, line0: int) -> int:
        """Plain records through the compiled scanner, :data:`SCAN_LINES` a call, until it gives
        up; from there (or for envelopes) :meth:`_slices`."""
        pos = lines = 0
        if SCANNER is not None and self.mode != "encrypted":
            size = len(data)
            while pos < size:
                res = self.agg.add_scanned(data, pos)
                if res is None:
                    break
                self._plain()
                lines += res[0]
                pos = res[1]
            if pos == size:
                return lines
        return lines + self._slices(data[pos:] if pos else data, line0 + lines)

    def _slices(self, data: bytes | memoryview, line0: int) -> int:
        """Slices of :data:`FAST_LINES` lines: each one decoded in one C call when every line in it
        is a plain record (or opened at once by the reader when every line is an ordinary
        envelope), else read line by line (so one bad line costs only its own slice)."""
        ends, shaped = _shape(data)
        nl = len(ends)
        for i in range(0, nl, FAST_LINES):
            j = min(i + FAST_LINES, nl)
            lo = 0 if i == 0 else int(ends[i - 1]) + 1
            hi = int(ends[j - 1]) + 1
            piece = data[lo:hi]
            ok = bool(shaped[i:j].all())
            if ok:
                envelopes = bytes(piece[: len(_ENV_HEAD)]) == _ENV_HEAD
                if self.mode == "encrypted" or envelopes:
                    ok = envelopes and self._fast_envelopes(piece, line0 + i, ends[i:j] - lo)
                else:
                    ok = self._fast(piece, j - i)
            if not ok:
                self._block_exact(piece, line0 + i)
        return nl

    def _decode(self, data: bytes | memoryview) -> list[Any] | None:
        """Plain records, one per line, decoded in one C call; None if any fails the fast check."""
        agg = self.agg
        try:
            recs = agg.decoder.decode_lines(data)
        except _FAST_ERRORS:
            if agg.decoder is FAST:
                return None
            try:  # maybe only a value not seen before: the general decoder, then learn it
                recs = FAST.decode_lines(data)  # type: ignore[union-attr]
            except _FAST_ERRORS:
                return None
            agg.learn(recs)
        else:
            if agg.decoder is FAST and len(agg._lit_off) < len(REPEATED):
                agg.learn(recs)
        return recs

    def _records(self, data: bytes | memoryview, nl: int) -> bool:
        """``nl`` plain records, one per line, added by the compiled scanner or else by one msgspec
        call; False (nothing added) if either finds a line it cannot take."""
        if SCANNER is not None and self.agg.add_scanned(data, expect=nl) is not None:
            return True
        recs = self._decode(data)
        return recs is not None and len(recs) == nl and self.agg.add_fast(recs)

    # the fast path: a whole slice of plain records in one C call
    def _fast(self, data: bytes | memoryview, nl: int) -> bool:
        if not self._records(data, nl):
            return False
        self._plain()
        return True

    def _plain(self) -> None:
        """Plain records were taken by a fast path."""
        if self.mode is None:
            self.mode = "plain"
        self.plaintext = True

    def _fast_envelopes(self, data: bytes | memoryview, line0: int, ends: np.ndarray) -> bool:
        """A slice of envelopes opened at once by the reader (``feed_block``), their records
        through the plain fast path; False (nothing changed) unless every line and record is
        taken, and the caller feeds the slice line by line."""
        encryptors = self.agg.encryptors()
        if len(encryptors) != 1:  # which one claims a line is decided line by line
            return False
        reader = self._readers.get(0)
        if reader is None:
            try:
                reader = self._reader(0, encryptors[0], line0)
            except Exception:  # noqa: BLE001 - the exact path reports it, on the right line
                return False
        feed_block = getattr(reader, "feed_block", None)
        if feed_block is None:
            return False
        res = feed_block(data, line0, ends)
        if res is None:
            return False
        ends = res.ends
        if len(ends):
            # each record "{...}" and followed by a newline: then no decoded value can span two
            # records (after a closing "}", "{" can only start a new top-level value), so one
            # value per record is exactly the record-by-record reading
            a = np.frombuffer(res.records, np.uint8)
            starts = np.empty_like(ends)
            starts[0] = 0
            starts[1:] = ends[:-1] + 1
            if not (bool((a[starts] == 123).all()) and bool((a[ends - 1] == 125).all())):
                return False
            if not self._records(res.records, len(ends)):
                return False
        res.commit()
        if self.mode is None:
            self.mode = "encrypted"
        return True

    def tail(self, data: bytes, line: int) -> None:
        self.line(data, line, tail=True)
        self.agg.flush()

    def cut(self, line: int, detail: str = "damaged gzip member") -> None:
        self.agg.reject(self.label, line, "truncated", detail)

    def too_long(self, line: int, size: int) -> None:
        self.agg.flush()  # the records before it were added already: keep the rejection in order
        self.agg.reject(self.label, line, "not_json", f"line of {size} bytes, over the {MAX_LINE}-byte limit")

    def finish(self) -> None:
        if self.partial:  # the parent finishes the readers, with their state joined to its own
            self.agg.flush()
            return
        for reader in self._readers.values():
            for rej in reader.finish():
                self.agg.reject(self.label, rej.line, rej.reason, rej.detail)
            if not self.agg.closed:  # with closed=True the reader reported them as truncated
                for s in getattr(reader, "open_streams", ()):
                    self.agg.open_streams.append(
                        {
                            "file": self.label,
                            "line": s.last_line,
                            "stream": s.sid[:8],
                            "mode": s.mode,
                            "envelopes": s.envelopes,
                            "records": s.records,
                        }
                    )
                self.agg.version += 1
        self._readers.clear()
        self.agg.flush()

    def line(self, line: bytes, no: int, *, tail: bool = False) -> None:
        agg = self.agg
        if not line.strip():
            return  # blank lines carry nothing and are not an error
        try:
            obj = loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            agg.reject(self.label, no, "truncated" if tail else "not_json", str(exc).split(":")[0])
            return
        if isinstance(obj, dict):
            for idx, enc in enumerate(agg.encryptors()):
                if enc.is_envelope(obj):
                    self._envelope(idx, enc, obj, no)
                    return
        self.plaintext = True
        if self.mode is None:
            self.mode = "plain"
        elif self.mode == "encrypted" and not agg.allow_plaintext:
            why = (
                "plaintext line where a key is set (encrypted telemetry expected; --allow-plaintext counts it)"
                if self.sealed_expected
                else "plaintext line in an encrypted file"
            )
            agg.reject(self.label, no, "unexpected_plaintext", why)
            return
        self.record(obj, no)

    def record(self, obj: Any, no: int) -> None:
        # the emitter's quick check settles almost every record; what it cannot (NaN/Infinity,
        # which Python's json reads, and a ts that is no real time) is checked here, and anything
        # it refuses gets the exact verdict and message
        ts = ts_epoch(obj["ts"]) if is_valid_fast(obj) and _finite(obj) and "ts" in obj else None
        if ts is None:
            why = problem(obj)
            if why is not None:
                self.agg.reject(self.label, no, "schema", why)
                return
            ts = ts_epoch(obj["ts"]) if "ts" in obj else math.nan
        self.agg.add(obj, math.nan if ts is None else ts)

    def _reader(self, idx: int, enc: Any, no: int) -> Any:
        """A new reader for encryptor ``idx`` (at line ``no``, for error messages)."""
        kw = {"closed": True} if self.agg.closed else {}
        try:
            reader = enc.reader(environ=self.agg.environ, **kw)
        except TypeError:
            if not kw:
                raise
            raise UsageError(
                f"{self.label}:{no}: encryptor {type(enc).__name__} cannot read closed streams (--closed)"
            ) from None
        except TelemetryRejected as exc:
            raise self._key_error(no, exc) from None
        except (UsageError, ValueError, KeyError) as exc:
            if not self._has_key():
                raise self._key_error(no, exc) from None
            raise ConfigError(f"{self.label}:{no}: cannot open encrypted telemetry: {exc}") from None
        if self.partial:
            start = getattr(reader, "start_partial", None)
            if start is None:
                raise _Envelope  # this reader needs every line in order: the parent reads them
            start()
        self._readers[idx] = reader
        return reader

    def _envelope(self, idx: int, enc: Any, obj: Mapping[str, Any], no: int) -> None:
        if self.mode is None:
            self.mode = "encrypted"
        reader = self._readers.get(idx)
        if reader is None:
            reader = self._reader(idx, enc, no)
        try:
            records = reader.feed(obj, no)
        except TelemetryRejected as exc:
            if exc.reason == "no_key" and not self._has_key():
                raise self._key_error(no, exc) from None
            self.agg.reject(self.label, no, exc.reason, exc.detail)
            return
        for rec in records:
            if _not_unicode(rec):  # any encryptor's reader: its parser may keep lone surrogates
                self.agg.reject(
                    self.label, no, "not_json", "lone surrogate: a string that is not valid Unicode"
                )
                continue
            self.record(rec, no)

    def _has_key(self) -> bool:
        return _key_var_set(self.agg.environ)

    def _key_error(self, no: int, exc: Exception) -> ConfigError:
        return ConfigError(
            f"{self.label}:{no}: telemetry is encrypted but no key is set: "
            f"set {KEY_VARS} to the key the emitter used"
        )


# --- the report --------------------------------------------------------------------------------
def _iso(epoch: float) -> str | None:
    if not math.isfinite(epoch):
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _num(x: float | None) -> float | None:
    """JSON-safe float: NaN and infinities become null."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _medians(cost: np.ndarray, qps: np.ndarray, lat: np.ndarray) -> dict[str, float | None]:
    if len(cost) == 0:
        return {"infra_cost_usd": None, "qps": None, "latency_p95_ms": None}
    return {
        "infra_cost_usd": float(np.median(cost)),
        "qps": float(np.median(qps)),
        "latency_p95_ms": float(np.median(lat)),
    }


def _fti_of(m: Mapping[str, float | None], base: F.Baseline | None) -> float | None:
    if base is None or m["infra_cost_usd"] is None:
        return None
    return F.fti(m["infra_cost_usd"], m["qps"], m["latency_p95_ms"], base)  # type: ignore[arg-type]


def summarize(
    snap: Snapshot,
    *,
    baseline: F.Baseline | None = None,
    lambda_asdpi: float = F.DEFAULT_LAMBDA_ASDPI,
    domain: str | None = None,
    hypothesis: str | None = None,
    series_points: int = SERIES_POINTS,
) -> dict[str, Any]:
    """The report (see docs/finops-spec.md for every field). Deterministic: no clock is read."""
    with contextlib.ExitStack() as cleanup:
        return _summarize(snap, cleanup, baseline, lambda_asdpi, domain, hypothesis, series_points)


def _summarize(
    snap: Snapshot,
    cleanup: contextlib.ExitStack,
    baseline: F.Baseline | None,
    lambda_asdpi: float,
    domain: str | None,
    hypothesis: str | None,
    series_points: int,
) -> dict[str, Any]:
    c = snap.cols
    cost, qps, lat, gid, ts, chg = c["cost"], c["qps"], c["lat"], c["gid"], c["ts"], c["chg"]
    ns = {col: c[col] for col in NORTH_STAR.values()}
    all_cols = (cost, qps, lat)

    selected = [
        g
        for g, (d, h) in enumerate(snap.keys)
        if (domain is None or d == domain) and (hypothesis is None or h == hypothesis)
    ]
    filtered = domain is not None or hypothesis is not None
    if filtered:
        mask = np.isin(gid, np.array(selected, np.int32))
        idx = np.flatnonzero(mask)
        cost, qps, lat, gid, ts, chg = cost[idx], qps[idx], lat[idx], gid[idx], ts[idx], chg[idx]
        ns = {col: x[idx] for col, x in ns.items()}
    n = len(cost)

    # time order: by ts when every record has one (ties keep file order), else file order
    has_ts = n > 0 and not bool(np.isnan(ts).any())
    if has_ts and n > 1 and not bool((ts[1:] >= ts[:-1]).all()):
        order = np.argsort(ts, kind="stable")
    else:
        order = None  # file order
    half = n // 2

    # the medians over all records and over each half in time order, and the groups, run on two
    # threads (np.partition, where the time goes, releases the GIL)
    def whole() -> tuple[dict[str, float | None], ...]:
        if order is None:  # slices: no copies
            early = _medians(cost[:half], qps[:half], lat[:half])
            late = _medians(cost[half:], qps[half:], lat[half:])
        else:
            e, l_ = order[:half], order[half:]
            early = _medians(cost[e], qps[e], lat[e])
            late = _medians(cost[l_], qps[l_], lat[l_])
        everything = _medians(*all_cols)
        return everything, (_medians(cost, qps, lat) if filtered else everything), early, late

    pool = ThreadPoolExecutor(2) if n >= PARALLEL_MEDIANS else None
    if pool is not None:  # its threads end with the report, whether it is made or raises
        cleanup.callback(pool.shutdown)
    pending = pool.submit(whole) if pool is not None else None

    # groups: records of each group, in time order
    by_time_gid = gid if order is None else gid[order]
    perm = np.argsort(by_time_gid, kind="stable")
    if order is not None:
        perm = order[perm]
    sorted_gid = gid[perm]
    starts = np.flatnonzero(np.r_[True, sorted_gid[1:] != sorted_gid[:-1]]) if n else np.array([], int)
    ends = np.r_[starts[1:], n] if n else np.array([], int)

    def group(s: int, e: int) -> dict[str, Any]:
        g = int(sorted_gid[s])
        rows = perm[s:e]
        # the group's columns in time order, one row each: cost, qps, latency, then North Star
        table = np.empty((3 + len(ns), e - s))
        for i, src in enumerate((cost, qps, lat, *ns.values())):
            np.take(src, rows, out=table[i])
        full = ~np.isnan(table[3:]).any(axis=1)  # North Star rows without gaps
        series = _series(table, full, ts[rows] if has_ts else None, series_points)
        latest = (snap.latest.by_ts if has_ts else snap.latest.file).get(g)
        north_star = _north_star(table, full, latest)  # last: it reorders the table's rows
        idents = snap.effects.ids.get(g)
        studies, withheld = effect_verdict(idents)
        north_star["effect_studies"] = studies
        north_star["effects_withheld"] = withheld
        north_star["effect_of"] = effect_of(idents)
        if withheld is not None:  # a median or "latest" of unlike effects is no figure at all
            north_star["median_causal_effect"] = None
            north_star["latest"].update(causal_effect=None, ci_low=None, ci_high=None)
            for point in series:
                point.pop("causal_effect", None)
        m = dict(zip(("infra_cost_usd", "qps", "latency_p95_ms"), north_star.pop("_base"), strict=True))
        d, h = snap.keys[g]
        return {
            "domain": d,
            "hypothesis": h,
            "count": int(e - s),
            "medians": m,
            "fti": None,  # below, once the baseline is known
            "grade": None,
            "north_star": north_star,
            "series": series,
        }

    bounds = list(zip(starts.tolist(), ends.tolist(), strict=True))
    groups = list(pool.map(lambda b: group(*b), bounds)) if pool is not None else [group(*b) for b in bounds]
    groups.sort(key=lambda g: (g["domain"], g["hypothesis"]))

    if pending is not None and pool is not None:
        all_medians, medians, m_early, m_late = pending.result()
    else:
        all_medians, medians, m_early, m_late = whole()
    if baseline is not None:
        base: F.Baseline | None = baseline
        source = "fixed"
    elif len(all_cols[0]):
        base = F.Baseline(all_medians["infra_cost_usd"], all_medians["qps"], all_medians["latency_p95_ms"])  # type: ignore[arg-type]
        source = "medians"
    else:
        base, source = None, "medians"
    for grp in groups:
        value = _fti_of(grp["medians"], base)
        grp["fti"], grp["grade"] = _num(value), F.grade(value)

    fti_avg = F.weighted_mean([g["fti"] for g in groups], [g["count"] for g in groups])
    worst = F.worst([g["grade"] for g in groups])

    # λ: early and late halves in time order, each scored by the FTI of its medians against B
    fti_early = _fti_of(m_early, base) if half else None
    fti_late = _fti_of(m_late, base) if n - half else None
    sibg = F.lambda_sibg(fti_early, fti_late, n)
    latest_ts = float(ts.max()) if has_ts else math.nan
    change_ts = float(ts[chg].max()) if has_ts and bool(chg.any()) else math.nan
    days = (latest_ts - change_ts) / 86400.0 if math.isfinite(change_ts) else 0.0
    lam = F.lambda_effective(sibg, lambda_asdpi, days)

    report: dict[str, Any] = {
        "count": n,
        "medians": medians,
        "fti_avg": _num(fti_avg),
        "fti_grade_worst": worst,
        "lambda_effective": _num(lam),
        "baseline": {
            "source": source,
            "infra_cost_usd": base.cost if base else None,
            "qps": base.qps if base else None,
            "latency_p95_ms": base.latency if base else None,
        },
        "lambda": {
            "sibg": sibg,
            "asdpi_per_day": lambda_asdpi,
            "days_since_change": days,
            "fti_early": _num(fti_early),
            "fti_late": _num(fti_late),
            "early_count": int(half),
            "late_count": int(n - half),
            "order": "ts" if has_ts else "file",
            "latest_ts": _iso(latest_ts),
            "last_change_ts": _iso(change_ts),
        },
        "groups": groups,
        "rejected": dict(sorted(snap.rejected.items())),
        "rejected_examples": snap.examples,
        "open_streams": len(snap.open_streams),
        "open_stream_examples": snap.open_streams[:EXAMPLES],
    }
    if domain is not None or hypothesis is not None:
        report["filter"] = {"domain": domain, "hypothesis": hypothesis}
    return report


def _present_median(x: np.ndarray) -> float | None:
    """Median of the values present (not NaN); None when there are none."""
    x = x[~np.isnan(x)]
    return float(np.median(x)) if len(x) else None


def _north_star(table: np.ndarray, full: np.ndarray, latest: Result | None) -> dict[str, Any]:
    """A group's study figures: medians over the records carrying each, and the latest result;
    with, under ``_base``, the medians of cost, qps and latency (rows 0-2 of ``table``).

    Rows without gaps are partitioned in place (``table`` is the caller's scratch copy)."""
    nf = 3 + int(np.argmin(full)) if not bool(full.all()) else len(table)  # leading rows without gaps
    medians = np.median(table[:nf], axis=1, overwrite_input=True).tolist()
    out: dict[str, Any] = {"_base": medians[:3]}
    out["records"] = len(table[3]) if nf > 3 else int(np.count_nonzero(~np.isnan(table[3])))
    for i, name in enumerate(NORTH_STAR):
        out[f"median_{name}"] = medians[3 + i] if 3 + i < nf else _present_median(table[3 + i])
    # an object either way, so that a consumer's path to a field always resolves (to null)
    ts, values = (math.nan, (None,) * len(LATEST)) if latest is None else latest
    out["latest"] = {**dict(zip(LATEST, values, strict=True)), "ts": _iso(ts)}
    return out


def _series(table: np.ndarray, full: np.ndarray, ts: np.ndarray | None, points: int) -> list[dict[str, Any]]:
    """A group's records in time order (``table``: rows cost, qps, latency, then the North Star
    fields, ``full`` saying which of those have no gaps) cut into ≤ ``points`` runs of (almost)
    equal length; each point is a run's medians, its last record's ordinal in the group (``last``,
    from 1) and ``ts``; a North Star field is there when a record of the run carries it (the
    median of those)."""
    n = table.shape[1]
    k = min(points, n)
    out = []
    bounds = np.linspace(0, n, k + 1).astype(np.int64) if k else []
    # one median call per run for the leading rows without gaps; the others per row, over the
    # values present
    nf = 3 + int(np.argmin(full)) if not bool(full.all()) else len(table)
    names = ["infra_cost_usd", "qps", "latency_p95_ms", *NORTH_STAR]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        point: dict[str, Any] = {
            "last": int(b),
            "count": int(b - a),
            "ts": _iso(float(ts[b - 1])) if ts is not None else None,
        }
        point.update(zip(names, np.median(table[:nf, a:b], axis=1).tolist(), strict=False))
        for i in range(nf, len(table)):
            value = _present_median(table[i, a:b])
            if value is not None:
                point[names[i]] = value
        out.append(point)
    return out


def collect(
    paths: Iterable[str | Path],
    *,
    baseline: F.Baseline | None = None,
    lambda_asdpi: float = F.DEFAULT_LAMBDA_ASDPI,
    allow_plaintext: bool = False,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Read ``paths`` in one pass and return the report."""
    agg = Aggregator(allow_plaintext=allow_plaintext, environ=environ).read(paths)
    return agg.report(baseline=baseline, lambda_asdpi=lambda_asdpi)


def settings_from_env(environ: Mapping[str, str]) -> tuple[F.Baseline | None, float]:
    """``SIDRCE_BASELINE`` and ``SIDRCE_LAMBDA_ASDPI``."""
    baseline = None
    if environ.get("SIDRCE_BASELINE"):
        try:
            baseline = F.parse_baseline(environ["SIDRCE_BASELINE"])
        except ValueError as exc:
            raise ConfigError(f"SIDRCE_BASELINE: {exc}") from None
    asdpi = F.DEFAULT_LAMBDA_ASDPI
    if environ.get("SIDRCE_LAMBDA_ASDPI"):
        try:
            asdpi = float(environ["SIDRCE_LAMBDA_ASDPI"])
        except ValueError:
            raise ConfigError("SIDRCE_LAMBDA_ASDPI: expected a number (per day)") from None
        if not (math.isfinite(asdpi) and asdpi >= 0):
            raise ConfigError("SIDRCE_LAMBDA_ASDPI: expected a finite number >= 0 (per day)")
    return baseline, asdpi


if __name__ == "__main__":  # pragma: no cover - exercised by tests through a subprocess
    import sys

    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path.pop(0)  # running as a script must not turn our module names into top-level ones
    from sidrce.cli import main

    sys.exit(main(["collect", "--json", "ops_telemetry.jsonl"]))
