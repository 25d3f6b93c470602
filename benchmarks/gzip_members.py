"""SIDRCE's streaming gzip reader on telemetry written one gzip member per flush, against two peers
on the same file: GNU ``gzip -dc`` (C, lines counted as they stream out) and Python's own
``gzip.decompress`` (one call; neither peer streams from an offset or survives a damaged member).

    python benchmarks/gzip_members.py                 # 20,000 members of 100 lines
    python benchmarks/gzip_members.py --members 4000  # fewer, larger

The emitter writes one member per flush (``gzip: true``), so a long-running writer leaves many
small members. Both sides count the lines they got; best of ``--repeat``, alternating.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from sidrce.source import Stream

RECORD = {
    "domain": "cosmology",
    "hypothesis": "Axion",
    "step": 1,
    "intervention": "do(log10_m22=0.5 vs 0)",
    "infra_cost_usd": 1e-5,
    "qps": 10.0,
    "latency_p95_ms": 5.0,
    "ts": "2026-11-25T00:00:00.000Z",
    "run_id": "0123456789ab",
    "schema_version": 1,
}


class Count:
    """A line sink that only counts lines."""

    def __init__(self) -> None:
        self.lines = 0

    def block(self, data: Any, line0: int) -> None:
        self.lines += bytes(data).count(b"\n")

    def tail(self, data: bytes, line: int) -> None:
        self.lines += 1

    def cut(self, line: int, detail: str = "") -> None:
        raise AssertionError(f"the benchmark file is not damaged (line {line})")

    def finish(self) -> None:
        pass


def sidrce_read(path: Path) -> int:
    sink = Count()
    stream = Stream(path, sink)
    try:
        stream.pump()
    finally:
        stream.close()
    return sink.lines


def python_read(path: Path) -> int:
    return gzip.decompress(path.read_bytes()).count(b"\n")


def gnu_gzip_read(path: Path) -> int:
    proc = subprocess.Popen(["gzip", "-dc", str(path)], stdout=subprocess.PIPE)
    lines = 0
    assert proc.stdout is not None
    while chunk := proc.stdout.read(1 << 20):
        lines += chunk.count(b"\n")
    if proc.wait():
        raise RuntimeError("gzip -dc failed")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--lines", type=int, default=100, help="lines per member")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    line = (json.dumps(RECORD) + "\n").encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ops.jsonl.gz"
        member = gzip.compress(line * args.lines, compresslevel=6, mtime=0)
        path.write_bytes(member * args.members)
        size = path.stat().st_size / 1e6
        readers = {"sidrce": sidrce_read, "gzip -dc": gnu_gzip_read, "gzip.decompress": python_read}
        best = dict.fromkeys(readers, float("inf"))
        counts = {}
        for _ in range(args.repeat):
            for name, read in readers.items():
                t = time.perf_counter()
                counts[name] = read(path)
                best[name] = min(best[name], time.perf_counter() - t)
    print(f"{args.members} members x {args.lines} lines ({size:.1f} MB gzip), best of {args.repeat}")
    for name, t in best.items():
        print(f"  {name:<16} {t:6.3f} s  {counts[name]} lines")
    for peer in ("gzip -dc", "gzip.decompress"):
        print(f"sidrce's time / {peer}'s: {best['sidrce'] / best[peer]:.2f}")
    assert set(counts.values()) == {args.members * args.lines}


if __name__ == "__main__":
    main()
