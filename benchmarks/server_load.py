"""Load on `sidrce serve` over a 1,000,000-line file while a writer appends (loopback only).

    python benchmarks/server_load.py [--lines 1000000] [--rate 200] [--seconds 20]

Three processes: the server (`sidrce serve`), a writer in this process appending 50 lines/s to the
file, and a load generator in its own process (asyncio, keep-alive HTTP/1.1 connections) that
sends ``--rate`` requests per second on a fixed schedule, alternating /report and /metrics (open
loop: a request leaves at its scheduled time whatever the earlier ones did, and its latency is
counted from that scheduled time, so a stalled server cannot hide queueing).

Prints achieved requests/s, p50/p99/max latency, errors, and the server's RSS after warm-up, each
second of the run (range, and the maximum of each half: growth would show as a higher second half)
and at the end. Target: p99 < 20 ms at 200 requests/s on 2 cores, no memory growth. Bounded: at most
rate × seconds requests, each with a 10 s timeout; the server is stopped in ``finally``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from collector_vs_duckdb import records, write_plain  # noqa: E402

TIMEOUT = 10.0
MAX_CONNECTIONS = 128


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the load generator (its own process) -------------------------------------------------------
class Pool:
    """Keep-alive connections to one loopback port; a request takes an idle one or opens another.

    Like any HTTP client, it drops connections idle for longer than the server keeps them open
    (uvicorn: 5 s) and retries once on a fresh connection when a reused one was closed under it.
    """

    IDLE_SECONDS = 4.0

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.open = 0
        self.freed = asyncio.Condition()

    async def get(self, *, fresh: bool = False) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        async with self.freed:
            while True:
                now = time.monotonic()
                while self.idle and now - self.idle[-1][0] > self.IDLE_SECONDS:
                    self.idle.pop()[2].close()
                    self.open -= 1
                if self.idle and not fresh:
                    _, reader, writer = self.idle.pop()
                    return reader, writer, True
                if self.open < MAX_CONNECTIONS:
                    break
                await self.freed.wait()
            self.open += 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            await self.put(None)
            raise
        return reader, writer, False

    async def put(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        async with self.freed:
            if conn is None:
                self.open -= 1
            else:
                self.idle.append((time.monotonic(), *conn))
            self.freed.notify()


async def fetch(pool: Pool, path: str, *, fresh: bool = False) -> int:
    """One GET; returns the status. The body is read to its Content-Length and checked."""
    reader, writer, reused = await pool.get(fresh=fresh)
    got_head = False
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        got_head = True
        status = int(head.split(b" ", 2)[1])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise ValueError("no Content-Length")
        body = await reader.readexactly(length)
        if status == 200 and path == "/report" and not body.startswith(b'{"count":'):
            raise ValueError("unexpected /report body")
    except BaseException as exc:
        writer.close()
        await pool.put(None)
        closed = isinstance(exc, (asyncio.IncompleteReadError, ConnectionError))
        if reused and not got_head and closed:  # the server closed an idle connection: once more
            return await fetch(pool, path, fresh=True)
        raise
    await pool.put((reader, writer))
    return status


async def load(port: int, rate: float, seconds: float) -> dict:
    pool = Pool(port)
    n = int(rate * seconds)
    latencies: list[float] = []
    errors: list[str] = []

    async def one(i: int, due: float) -> None:
        path = "/report" if i % 2 == 0 else "/metrics"
        try:
            status = await asyncio.wait_for(fetch(pool, path), TIMEOUT)
            if status != 200:
                errors.append(f"{path}: HTTP {status}")
                return
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(f"{path}: {type(exc).__name__}")
            return
        latencies.append(time.perf_counter() - due)  # from the scheduled time: open loop

    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for _, _, writer in pool.idle:
        writer.close()
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed, "asked": n}


def client_main(port: int, rate: float, seconds: float) -> int:
    out = asyncio.run(load(port, rate, seconds))
    json.dump(out, sys.stdout)
    return 0


# --- the benchmark ------------------------------------------------------------------------------
def run_client(port: int, rate: float, seconds: float) -> dict:
    cmd = [sys.executable, __file__, "--client", str(port), "--rate", str(rate), "--seconds", str(seconds)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return json.loads(done.stdout)


def summary(res: dict) -> str:
    lat = sorted(res["latencies"])
    if not lat:
        return f"no successful requests; errors: {res['errors'][:5]}"
    p50 = lat[len(lat) // 2] * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    return (
        f"requests {len(lat)}/{res['asked']} ok in {res['elapsed']:.1f} s = {len(lat) / res['elapsed']:.0f}/s"
        f"; errors {len(res['errors'])} {sorted(set(res['errors']))[:3]}\n"
        f"latency p50 {p50:.1f} ms  p99 {p99:.1f} ms  max {lat[-1] * 1000:.1f} ms (target p99 < 20 ms)"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--client", type=int, help=argparse.SUPPRESS)  # internal: be the load generator
    args = ap.parse_args()
    if args.client:
        return client_main(args.client, args.rate, args.seconds)
    import httpx

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
                extra = records(int(args.seconds * 50) + 500)
                with path.open("a") as f:
                    while not stop.is_set():
                        r = next(extra, None)
                        if r is None:
                            break
                        f.write(json.dumps(r, separators=(",", ":")) + "\n")
                        f.flush()
                        time.sleep(0.02)

            w = threading.Thread(target=writer)
            w.start()
            run_client(port, args.rate, 3.0)  # warm-up, with the writer running
            before = rss_mb(server.pid)
            samples: list[float] = []
            done = threading.Event()

            def sampler() -> None:  # the server's RSS every second of the run
                while not done.wait(1.0):
                    samples.append(rss_mb(server.pid))

            sm = threading.Thread(target=sampler)
            sm.start()
            try:
                res = run_client(port, args.rate, args.seconds)
            finally:
                done.set()
                sm.join(timeout=5)
            stop.set()
            w.join(timeout=10)
            after = rss_mb(server.pid)
            count = httpx.get(f"{base}/report", timeout=10).json()["count"]
            print(summary(res))
            half = len(samples) // 2
            print(
                f"server RSS {before:.0f} MB after warm-up; each second of the run {min(samples):.0f}-"
                f"{max(samples):.0f} MB (max of first half {max(samples[:half] or [before]):.0f}, of second"
                f" half {max(samples[half:] or [after]):.0f}); end {after:.0f} MB; records now {count:,}"
            )
            print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
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
