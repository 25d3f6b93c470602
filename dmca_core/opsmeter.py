"""Measure a step's own operations: CPU seconds, peak memory, and per-fit latency.

These numbers feed the telemetry record (cost, throughput, latency). They are measured, never
invented: a step with no fits reports qps 0.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import attrs
import numpy as np

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _rss_peak_bytes() -> int:
    """Peak resident set size of this process, as the OS counts it."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource  # not on Windows

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except (ImportError, OSError):
        return 0


def _reset_rss_peak() -> None:
    # Linux lets a process reset its own high-water mark, so the peak is the step's own
    with suppress(OSError):
        _CLEAR_REFS.write_text("5")


@attrs.define
class FitMeter:
    """Records the latency of each model fit (one ``estimate`` or ``discover`` call)."""

    latencies: list[float] = attrs.field(factory=list)

    @contextmanager
    def fit(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.latencies.append(time.perf_counter() - start)

    @property
    def count(self) -> int:
        return len(self.latencies)


@attrs.frozen
class StepUsage:
    wall_seconds: float
    cpu_seconds: float
    peak_mem_bytes: int
    fits: int
    qps: float
    latency_p95_ms: float

    def cost_usd(self, usd_per_cpu_hour: float, usd_per_gb_hour: float) -> float:
        """CPU time plus memory held (peak GB for the step's wall time), priced by the cost model."""
        cpu = self.cpu_seconds / 3600.0 * usd_per_cpu_hour
        mem = (self.peak_mem_bytes / 1e9) * (self.wall_seconds / 3600.0) * usd_per_gb_hour
        return cpu + mem


@contextmanager
def measure_step(meter: FitMeter) -> Iterator[list[StepUsage]]:
    """Measure the enclosed block; the yielded list receives one :class:`StepUsage` at exit."""
    out: list[StepUsage] = []
    _reset_rss_peak()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        yield out
    finally:
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        lat = np.asarray(meter.latencies, dtype=float)
        fits = int(lat.size)
        qps = fits / wall if wall > 0 else 0.0
        p95 = float(np.percentile(lat, 95) * 1000.0) if fits else 0.0
        out.append(StepUsage(wall, cpu, _rss_peak_bytes(), fits, qps, p95))
