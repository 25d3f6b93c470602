"""A real Prometheus, configured from the repo's grafana/prometheus.yml, scrapes the real SIDRCE app
with the bearer token, and every Prometheus query of the dashboard returns data.

Only the address of the target, the token file's path and the intervals are changed for the test.
Needs the ``prometheus`` binary (Debian package); skips without it unless
``DMCA_REQUIRE_INTEGRATION=1`` (CI), where it fails.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from dashboard_support import REPO, require_prometheus, running_sidrce, write_telemetry
from live_server import free_port

pytestmark = pytest.mark.integration

TOKEN = "prometheus-test-token-31c0"
DASHBOARD = REPO / "grafana/provisioning/dashboards/json/dmca_finops.json"


def dashboard_exprs() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            if t["datasource"]["type"] == "prometheus":
                # what Grafana substitutes before the query reaches Prometheus
                out.append((p["title"], t["expr"].replace("$__rate_interval", "1m")))
    return out


def test_prometheus_scrapes_sidrce_and_answers_every_dashboard_query(tmp_path: Path) -> None:
    binary = require_prometheus()
    telemetry = tmp_path / "ops.jsonl"
    write_telemetry(telemetry, per_group=20)
    with running_sidrce(telemetry, {"SIDRCE_TOKEN": TOKEN}) as base:
        cfg = yaml.safe_load((REPO / "grafana/prometheus.yml").read_text(encoding="utf-8"))
        (job,) = cfg["scrape_configs"]
        token_file = tmp_path / "sidrce_token"
        token_file.write_text(TOKEN)
        job["authorization"]["credentials_file"] = str(token_file)
        job["static_configs"][0]["targets"] = [base.removeprefix("http://")]
        job["scrape_interval"] = job["scrape_timeout"] = "1s"
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump(cfg))
        port = free_port()
        api = f"http://127.0.0.1:{port}/api/v1"
        log = (tmp_path / "prometheus.log").open("w")
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:

            def query(expr: str) -> list[dict]:
                r = httpx.get(f"{api}/query", params={"query": expr}, timeout=5).json()
                assert r["status"] == "success", (expr, r)
                return r["data"]["result"]

            # up, scraped with the token, and two samples in (rate() needs two)
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
                # until its storage is open Prometheus answers "Service Unavailable" as plain text
                with contextlib.suppress(httpx.TransportError, ValueError):
                    target = httpx.get(f"{api}/targets", timeout=2).json()["data"]["activeTargets"]
                    if target and target[0]["health"] == "down":
                        raise AssertionError(f"scrape failed: {target[0]['lastError']}")
                    if query("count_over_time(sidrce_telemetry_records_total[1m]) >= 2"):
                        break
                assert time.monotonic() < deadline, "Prometheus did not scrape SIDRCE twice in 60 s"
                time.sleep(0.3)

            exprs = dashboard_exprs()
            assert len(exprs) >= 8
            for title, expr in exprs:
                assert query(expr), f"panel {title!r}: {expr!r} returned nothing"
            groups = {(s["metric"]["domain"], s["metric"]["hypothesis"]) for s in query("sidrce_fti")}
            assert len(groups) == 3
            assert query("sidrce_telemetry_records_total")[0]["value"][1] == "60"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
