"""The objects plugins register: what the core calls on each kind of plugin.

Hooks (``hookspecs.py``) hand plugins a ``register`` callback; what they register must satisfy
one of these protocols. Every registered object has a ``name`` that users write in configs and on
the command line. ``dmca_core.plugins.REQUIRED`` lists the members each kind must have (checked
as plugins register them; tests/test_plugins.py keeps it in step with these protocols).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import attrs

from .types import DomainData, EffectEstimate, FormFactor, Graph, Table

T = TypeVar("T")
R = TypeVar("R")


@runtime_checkable
class Estimator(Protocol):
    """A causal backend.

    ``priority`` decides ``estimator: auto``: the installed estimator with the highest priority
    wins (causal_full 100, causal_fallback 10).

    Optional: ``prepare() -> None``, one-time set-up (imports, caches) that DMCA calls once per
    process before it starts measuring a step, so that the set-up is not charged to whichever
    step a worker happens to run first.
    """

    name: str
    priority: int

    def discover(self, table: Table, alpha: float) -> Graph:
        """Run the order-independent ("stable") PC algorithm with Fisher-z tests at level ``alpha``
        over every column of ``table``; return the CPDAG (Meek rules R1-R3 applied)."""
        ...

    def estimate(
        self, table: Table, treatment: str, outcome: str, adjustment: Sequence[str], t0: float, t1: float
    ) -> EffectEstimate:
        """Backdoor adjustment by OLS ``outcome ~ 1 + treatment + adjustment``; HC3 standard errors
        and a Student-t 95% interval (docs/metrics.md)."""
        ...


@runtime_checkable
class Domain(Protocol):
    """A source of study data: a simulator with ground truth, or the user's own file.

    Optional: ``check(hypothesis, params) -> None``, raising :class:`dmca_core.errors.UsageError`
    for bad ``params`` without loading data; ``dmca run`` calls it for every study before any step
    runs, so that a typo stops the run at once instead of failing every step.
    """

    name: str

    def hypotheses(self) -> tuple[str, ...]:
        """The hypotheses this domain simulates (empty: the domain takes any label, e.g. csv)."""
        ...

    def variables(self, hypothesis: str) -> tuple[str, ...]:
        """The variable names a study may use as treatment or outcome under ``hypothesis``."""
        ...

    def load(self, hypothesis: str, rows: int, seed: int, params: Mapping[str, Any]) -> DomainData:
        """Produce the data (and, for simulators, the true DAG and a truth function) for one step.

        Raise :class:`dmca_core.errors.UsageError` naming the parameter for bad ``params``.
        """
        ...


@runtime_checkable
class MaterialModel(Protocol):
    """A target material's crystal form factor for dark-matter-electron scattering.

    Several models may serve one material; the one with the highest ``priority`` wins.
    """

    name: str  # the material, e.g. "silicon"
    source: str  # where the numbers come from, e.g. "table" or "pyscf"
    priority: int

    def form_factor(self) -> FormFactor: ...


class SinkHandle(Protocol):
    def write(self, data: bytes) -> None:
        """Append ``data`` with a single write call (so concurrent writers never interleave)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class TelemetrySink(Protocol):
    """Where telemetry bytes go (the built-in ``jsonl`` sink appends to a file)."""

    name: str

    def open(self, path: Path, *, fsync: bool) -> SinkHandle: ...


class EnvelopeWriter(Protocol):
    def seal(self, lines: Sequence[bytes], final: bool) -> bytes:
        """Turn one flush's plaintext JSON lines (each without newline) into the bytes to append.

        ``final`` is true on the stream's last flush (``lines`` may then be empty).
        """
        ...


@attrs.frozen
class Rejection:
    """A telemetry line that is not counted, and why (``reason`` is one of the contract's codes)."""

    reason: str
    line: int
    detail: str = ""


class EnvelopeReader(Protocol):
    """Opens one file's envelopes, line by line, in file order.

    Optional, for speed (the collector looks them up with ``getattr`` and does without):

    - ``feed_block(data, line0, ends=None) -> BlockResult | None``: open a slice of whole lines
      (``data``, each line ending in ``\n``, the first being line ``line0``; ``ends``: the offsets
      of the newlines when the caller has them). ``None``, with the reader's state untouched,
      whenever any line is not an ordinary envelope the reader is sure to judge exactly as
      :meth:`feed` would; the caller then feeds those lines one by one. A result has ``records``
      (the plaintext records' texts, each as :meth:`feed` would judge it, each followed by a
      newline at the offsets ``ends``), ``count``, ``lines`` (each record's envelope line) and
      ``commit()``, which updates the state as feeding the lines would have; a caller that cannot
      take every record drops the result and feeds the lines one by one instead.
    - ``start_partial()``, ``state()`` and ``join(state, line_offset) -> bool``: a reader put in
      partial mode reads the later part of a file (another process), and the reader of the
      earlier part continues with its ``state()``; ``join`` returns False, changing nothing, when
      the parts do not meet cleanly (the later part must then be read again in order).
    """

    def feed(self, obj: Mapping[str, Any], line: int) -> list[dict[str, Any]]:
        """Open one parsed JSON line (an envelope) and return the plaintext records it holds.

        Raise :class:`dmca_core.errors.TelemetryRejected` for a line that fails.
        """
        ...

    def finish(self) -> list[Rejection]:
        """End of input: rejections only visible at the end (missing sequence numbers,
        truncated closed streams). Streams without a final batch are open, not truncated."""
        ...


@runtime_checkable
class Encryptor(Protocol):
    """Authenticated encryption of telemetry. Keys come from the environment, never from configs."""

    name: str

    def writer(
        self, mode: Literal["line", "batch"], *, gzip: bool, environ: Mapping[str, str]
    ) -> EnvelopeWriter: ...

    def reader(self, *, environ: Mapping[str, str]) -> EnvelopeReader:
        """A reader for one file. A bad key configuration raises ConfigError here; no key at all
        is not an error until an envelope arrives (``no_key``). The aes-gcm reader also takes
        ``closed=True`` (every writer has finished: streams without a final envelope are
        ``truncated``) and lists open streams in ``reader.open_streams``."""
        ...

    def is_envelope(self, obj: Mapping[str, Any]) -> bool:
        """Whether a parsed JSON line is one of this encryptor's envelopes."""
        ...


@runtime_checkable
class Executor(Protocol):
    """Where independent tasks (study steps) run."""

    name: str

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        workers: int | None,
        options: Mapping[str, Any],
        on_result: Callable[[int, R], None],
    ) -> list[R]:
        """Apply ``fn`` to every item and return the results in the order of ``items``.

        ``on_result(index, result)`` is called in the driver as each result arrives (for progress
        and for the single telemetry writer). ``fn`` must be picklable for executors that leave the
        process; it reports its own failures in its result rather than raising.
        """
        ...


@attrs.frozen
class Command:
    """A ``dmca`` sub-command contributed by a plugin."""

    name: str
    help: str
    configure: Callable[[Any], None]  # receives the argparse sub-parser
    run: Callable[[Any], int]  # receives parsed args, returns the exit code
