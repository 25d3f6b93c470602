"""A real Prometheus scrapes /metrics on loopback; sidrce_fti_avg is read back through its query API."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest
from external import require_program
from test_sidrce_server import free_port, rec, running

from sidrce.collector import collect

pytestmark = pytest.mark.integration


def test_prometheus_scrapes_fti_avg(tmp_path: Path) -> None:
    prometheus = require_program("prometheus", "/usr/bin/prometheus", "prometheus")
    path = tmp_path / "ops.jsonl"
    path.write_bytes(b"".join(rec(i, d="ab"[i % 2]) for i in range(50)))
    expected = collect([path])["fti_avg"]
    with running(path) as base:
        target = base.removeprefix("http://")
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: sidrce\n    scrape_interval: 1s\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        port = free_port()
        proc = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "prometheus.log").open("wb"),
        )
        try:
            value = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    r = httpx.get(
                        f"http://127.0.0.1:{port}/api/v1/query", params={"query": "sidrce_fti_avg"}, timeout=2
                    )
                    result = r.json()["data"]["result"] if r.status_code == 200 else []
                except (httpx.TransportError, ValueError, KeyError):
                    result = []
                if result:
                    value = float(result[0]["value"][1])
                    assert result[0]["metric"]["job"] == "sidrce"
                    break
                assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
                time.sleep(0.5)
            assert value is not None, "Prometheus did not scrape sidrce_fti_avg within 60 s"
            assert value == pytest.approx(expected, rel=1e-12)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
