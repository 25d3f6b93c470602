"""Load on `sidrce serve` over a 1,000,000-line file while a writer appends (loopback only).

    python benchmarks/server_load.py [--lines 1000000] [--rate 200] [--seconds 20]

Sends ``--rate`` requests per second (alternating /report and /metrics) for ``--seconds``, from a
client in this process, to a server in its own process; a writer appends 50 lines/s meanwhile.
Prints achieved requests/s, p50/p99 latency, and the server's RSS before and after the run.
Target: p99 < 20 ms at 200 requests/s on 2 cores, no memory growth. Bounded: at most
rate × seconds requests, every wait has a timeout, the server is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from collector_vs_duckdb import records, write_plain  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(base: str, rate: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    n = int(rate * seconds)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as client:

        async def one(i: int) -> None:
            t = time.perf_counter()
            r = await client.get("/report" if i % 2 == 0 else "/metrics")
            r.raise_for_status()
            latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        tasks = []
        for i in range(n):  # open loop: requests leave on schedule whatever the latency
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sidrce-load-") as tmp:
        path = Path(tmp) / "ops.jsonl"
        write_plain(path, args.lines)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "SIDRCE_TELEMETRY": str(path)}
        server = subprocess.Popen([sys.executable, "-m", "sidrce.cli", "serve", "--port", str(port)], env=env)
        stop = threading.Event()
        try:
            t0 = time.perf_counter()
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("server did not become ready")
                time.sleep(0.2)
            print(f"ready after {time.perf_counter() - t0:.1f} s with {args.lines:,} lines")

            def writer() -> None:
                extra = records(int(args.seconds * 50) + 100)
                with path.open("a") as f:
                    while not stop.is_set():
                        r = next(extra, None)
                        if r is None:
                            break
                        f.write(json.dumps(r, separators=(",", ":")) + "\n")
                        f.flush()
                        time.sleep(0.02)

            asyncio.run(load(base, args.rate, 2.0))  # warm-up
            before = rss_mb(server.pid)
            w = threading.Thread(target=writer)
            w.start()
            t = time.perf_counter()
            lat = sorted(asyncio.run(load(base, args.rate, args.seconds)))
            elapsed = time.perf_counter() - t
            stop.set()
            w.join(timeout=10)
            after = rss_mb(server.pid)
            count = httpx.get(f"{base}/report", timeout=10).json()["count"]
            p50 = lat[len(lat) // 2] * 1000
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
            print(
                f"requests {len(lat)} in {elapsed:.1f} s = {len(lat) / elapsed:.0f}/s (asked {args.rate}/s)"
            )
            print(
                f"latency p50 {p50:.1f} ms  p99 {p99:.1f} ms  max {lat[-1] * 1000:.1f} ms (target p99 < 20 ms)"
            )
            print(f"server RSS {before:.0f} MB -> {after:.0f} MB; records now {count:,}")
        finally:
            stop.set()
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
