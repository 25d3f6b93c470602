"""Records per second written by the telemetry emitter, against a bare json.dumps + write loop.

Run:  python benchmarks/telemetry_throughput.py [--records N] [--repeats R]

Every variant writes the same records to a fresh file in a temporary directory; each is timed
``--repeats`` times, interleaved with the others so that load on a shared machine hits all of
them alike, and the best time counts. Targets: plain >= 0.8x the bare loop, batch-encrypted >= 0.7x,
line-encrypted >= 60,000 records/s. Encrypted variants need the aes_gcm plugin and use a throwaway
key generated here.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dmca_core.plugins import pm, setup
from dmca_core.telemetry import TelemetryEmitter, make_record


def make_records(n: int) -> list[dict]:
    return [
        make_record(
            domain="direct_lab",
            hypothesis="WIMP",
            step=i,
            infra_cost_usd=0.0012 * i,
            qps=480.5,
            latency_p95_ms=18.25,
            run_id="bench",
            causal_effect=0.51,
            ci_low=0.42,
            ci_high=0.6,
            reliability_score=0.93,
            estimator="fallback",
            cpu_seconds=1.25,
            wall_seconds=1.5,
            peak_mem_mb=120.0,
            fits=3,
        )
        for i in range(n)
    ]


def bare_loop(path: Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def emitter(**kwargs: object) -> Callable[[Path, list[dict]], None]:
    def run(path: Path, records: list[dict]) -> None:
        with TelemetryEmitter(path, **kwargs) as em:  # type: ignore[arg-type]
            for r in records:
                em.emit(r)

    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=30_000)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()

    os.environ["DMCA_NO_ENTRYPOINTS"] = "1"
    setup()
    variants: dict[str, Callable[[Path, list[dict]], None]] = {
        "bare json.dumps+write": bare_loop,
        "emitter plain": emitter(),
        "emitter gzip": emitter(gzip=True),
    }
    try:
        import dmca_aes_gcm.plugin as aes

        if not pm.is_registered(aes):
            pm.register(aes)
        env = {"SIDRCE_AES_KEY": base64.b64encode(secrets.token_bytes(32)).decode()}
        variants["emitter line-encrypted"] = emitter(encryption="line", environ=env)
        variants["emitter batch-encrypted"] = emitter(encryption="batch", environ=env)
        variants["emitter batch-encrypted+gzip"] = emitter(encryption="batch", gzip=True, environ=env)
    except ImportError:
        print("aes_gcm plugin not installed: encrypted variants skipped", file=sys.stderr)

    records = make_records(args.records)
    best = dict.fromkeys(variants, float("inf"))
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for name, fn in variants.items():
                path = Path(tmp) / f"{rep}-{name.replace(' ', '_').replace('+', '_')}.jsonl"
                t0 = time.perf_counter()
                fn(path, records)
                best[name] = min(best[name], time.perf_counter() - t0)
                path.unlink()

    bare = args.records / best["bare json.dumps+write"]
    targets = {
        "emitter plain": ("ratio", 0.8),
        "emitter batch-encrypted": ("ratio", 0.7),
        "emitter line-encrypted": ("rate", 60_000),
    }
    print(f"{args.records} records, best of {args.repeats}, Python {sys.version.split()[0]}")
    print(f"{'variant':32s} {'records/s':>12s} {'vs bare':>8s}  target")
    failed = False
    for name, secs in best.items():
        rate = args.records / secs
        ratio = rate / bare
        kind, want = targets.get(name, ("", 0))
        if kind == "ratio":
            ok = ratio >= want
            note = f">= {want}x {'ok' if ok else 'MISSED'}"
        elif kind == "rate":
            ok = rate >= want
            note = f">= {want:,} /s {'ok' if ok else 'MISSED'}"
        else:
            ok, note = True, ""
        failed |= not ok
        print(f"{name:32s} {rate:12,.0f} {ratio:7.2f}x  {note}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
