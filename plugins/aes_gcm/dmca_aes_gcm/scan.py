"""A reference reading of an encrypted telemetry file: the line loop a collector runs.

SIDRCE has its own, faster loop; this one states the semantics in a few lines and serves the tests
and quick inspections (``python -m dmca_aes_gcm.scan FILE``). Gzip is the one place it reads less
than SIDRCE: it stops at a damaged member (reporting it as ``truncated``), where SIDRCE resumes at
the next member.
"""

from __future__ import annotations

import json
import sys
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dmca_core.errors import DmcaError, TelemetryRejected
from dmca_core.interfaces import Encryptor, Rejection


@attrs.define
class Scan:
    records: list[dict[str, Any]]
    rejections: list[Rejection]
    open_streams: list[Any]

    def reasons(self) -> list[str]:
        return [r.reason for r in self.rejections]


def gunzip_members(data: bytes) -> tuple[bytes, bool]:
    """Concatenated gzip members, decompressed, and whether all of ``data`` was read: a member
    cut by a crash yields what it holds, and a damaged one ends the reading there."""
    out = []
    while data:
        d = zlib.decompressobj(wbits=31)
        try:
            out.append(d.decompress(data))
        except zlib.error:
            return b"".join(out), False
        if not d.eof:
            return b"".join(out), False
        data = d.unused_data
    return b"".join(out), True


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def scan(data: bytes, encryptor: Encryptor, environ: Mapping[str, str], *, closed: bool = False) -> Scan:
    """Every record a reader accepts from ``data`` and every line it rejects, with the reason."""
    whole = True
    if data[:2] == b"\x1f\x8b":
        data, whole = gunzip_members(data)
    reader = encryptor.reader(environ=environ, closed=closed)  # type: ignore[call-arg]
    records: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    for no, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw, parse_constant=_no_constants)
        except (ValueError, UnicodeDecodeError, RecursionError):
            rejections.append(Rejection("not_json", no))
            continue
        if not encryptor.is_envelope(obj):
            rejections.append(Rejection("unexpected_plaintext", no))
            continue
        try:
            records += reader.feed(obj, no)
        except TelemetryRejected as exc:
            rejections.append(Rejection(exc.reason, no, exc.detail))
    if not whole:
        # this reading stops at the damage (SIDRCE goes on at the next member); the line it cut
        # is that one rejection, not also not_json
        if rejections and rejections[-1].reason == "not_json" and rejections[-1].line == no:
            rejections.pop()
        rejections.append(Rejection("truncated", no, "a gzip member is cut or damaged: what follows is lost"))
    rejections += reader.finish()
    return Scan(records, rejections, list(getattr(reader, "open_streams", [])))


def main(argv: list[str] | None = None) -> int:
    import os

    from .plugin import ENCRYPTOR

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m dmca_aes_gcm.scan FILE", file=sys.stderr)
        return 2
    try:
        result = scan(Path(args[0]).read_bytes(), ENCRYPTOR, os.environ)
    except (OSError, DmcaError) as exc:
        print(f"{args[0]}: {exc}", file=sys.stderr)
        return 2
    try:
        for rec in result.records:
            print(json.dumps(rec))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`| head`): its choice, not an error
        from dmca_core.stdio import drop_stdout

        drop_stdout()
    for rej in result.rejections:
        print(f"line {rej.line}: {rej.reason} {rej.detail}", file=sys.stderr)
    for s in result.open_streams:  # not an error while its writer runs; a cut tail looks the same
        print(
            f"stream {s.sid[:8]}: open, no final envelope after {s.envelopes} envelope(s) to line "
            f"{s.last_line} (still being written, or its end was cut)",
            file=sys.stderr,
        )
    return 1 if result.rejections else 0


if __name__ == "__main__":
    raise SystemExit(main())
