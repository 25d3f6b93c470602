"""Shared by the dashboard and Grafana tests: sample telemetry, the real SIDRCE app under uvicorn on a
free loopback port, and the rule for tests that need Chromium (skip, or fail under
``DMCA_REQUIRE_INTEGRATION=1`` as CI sets it)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import live_server
from external import missing, require_program

CHROMIUM = os.environ.get("DMCA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"

# A fixed baseline makes each group's grade a property of the data written below:
# FTI = cost·B.qps·latency / (B.cost·qps·B.latency) = cost·latency / (10·qps) with B = (1, 10, 100).
BASELINE = "1,10,100"
# (domain, hypothesis, median cost, qps, latency): FTI 0.9 (OK), 1.03 (WARN), 1.4 (FAIL)
GROUPS = (
    ("direct_lab", "WIMP", 0.5, 12.0, 216.0),
    ("halo_lensing", "axion", 1.03, 10.0, 100.0),
    ("cosmo_bbn", "sterile_nu", 2.0, 8.0, 56.0),
)
SERVER_ENV = {"SIDRCE_POLL_SECONDS": "0.05", "SIDRCE_REFRESH_SECONDS": "0.05", "SIDRCE_BASELINE": BASELINE}


def write_telemetry(path: Path, per_group: int = 120) -> None:
    """Records of three groups over two hours, interleaved, with a drift in each figure (so the
    time series have shape), one intervention, and two bad lines (``not_json``, ``schema``)."""
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    lines = []
    for i in range(per_group):
        frac = i / (per_group - 1)
        for k, (dom, hyp, cost, qps, lat) in enumerate(GROUPS):
            ts = t0 + timedelta(seconds=60 * i + 7 * k)
            rec = {
                "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "domain": dom,
                "hypothesis": hyp,
                "step": i,
                "intervention": "shield_upgrade" if (i, k) == (per_group // 2, 0) else "-",
                "study": f"{dom}/{hyp}",  # as the runner writes them: what the effects are of
                "outcome": "counts" if dom == "direct_lab" else "log10_rho_inner",
                # symmetric drifts around the median keep each group's median at its design value
                "infra_cost_usd": round(cost * (0.9 + 0.2 * frac), 6),
                "qps": round(qps * (1.1 - 0.2 * frac) if k == 1 else qps, 6),
                "latency_p95_ms": round(lat * (1.0 + 0.04 * math.sin(i / 6 + 2 * k)), 6),
            }
            if k == 1:  # keep the WARN group's FTI near 1.03: its qps falls, so hold cost·lat/qps
                rec["infra_cost_usd"] = round(cost * rec["qps"] / qps, 6)
            else:  # the studies' North Star figures; the WARN group's records carry none
                rec.update(north_star(i, k))
            lines.append(json.dumps(rec))
    lines.insert(5, "{not json")
    lines.insert(9, json.dumps({"domain": "direct_lab", "hypothesis": "WIMP", "step": -1}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def north_star(i: int, k: int) -> dict[str, float]:
    """A study's figures for step ``i`` of group ``k``: an effect that drifts, its interval, and
    scores on their grids (reliability in quarters, SR9 in ninths); DI2 left out now and then, as
    the runner leaves out a DI2 that PC could not compute."""
    effect = round((0.8 if k == 0 else -0.3) + 0.05 * math.sin(i / 5 + k), 6)
    out = {
        "causal_effect": effect,
        "ci_low": round(effect - 0.2 - 0.01 * (i % 4), 6),
        "ci_high": round(effect + 0.2 + 0.01 * (i % 3), 6),
        "reliability_score": (2 + (i + k) % 3) / 4,
        "SR9": (6 + (i * (k + 1)) % 4) / 9,
    }
    if i % 5:
        out["DI2"] = round(0.5 + 0.4 * math.cos(i / 7 + k), 6)
    return out


def running_sidrce(
    telemetry: Path, env: dict[str, str] | None = None
) -> contextlib.AbstractContextManager[str]:
    """The real app under uvicorn with this module's server settings; yields its base URL."""
    return live_server.running_sidrce(telemetry, {**SERVER_ENV, **(env or {})})


def require_chromium() -> str:
    """The Chromium binary (and Playwright to drive it)."""
    found = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if not found:
        missing(f"Chromium not found at {CHROMIUM} (Debian: apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        missing(f"playwright not installed ({exc})")
    return found  # type: ignore[return-value]


def require_prometheus() -> str:
    return require_program("prometheus", "/usr/bin/prometheus", "prometheus")
