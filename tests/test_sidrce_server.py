"""The real app under uvicorn on a loopback port, spoken to over HTTP, while a writer appends."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from live_server import answering_sidrce, free_port, running_sidrce, wait_for
from prometheus_client.parser import text_string_to_metric_families

from sidrce.collector import collect
from sidrce.server import create_app

ENV = {"SIDRCE_POLL_SECONDS": "0.05", "SIDRCE_REFRESH_SECONDS": "0.05"}


def rec(i: int, d: str = "d", h: str = "h", cost: float | None = None, study: bool = False) -> bytes:
    r = {
        "domain": d,
        "hypothesis": h,
        "step": i,
        "intervention": "-",
        "infra_cost_usd": float(i % 7 + 1) if cost is None else cost,
        "qps": 10.0 + i % 5,
        "latency_p95_ms": 20.0 + i % 3,
    }
    if study:  # the study's North Star figures, as the runner writes them for a finished step
        r |= {"causal_effect": 0.1 * (i % 9) - 0.4, "ci_low": -1.0, "ci_high": 1.0}
        r |= {"reliability_score": (i % 5) / 4, "SR9": (i % 10) / 9, "DI2": 1 / (1 + i % 4)}
    return json.dumps(r).encode() + b"\n"


def running(path: Path, env: dict[str, str] | None = None) -> contextlib.AbstractContextManager[str]:
    return running_sidrce(path, {**ENV, **(env or {})})


def test_report_filters_metrics_and_bad_params(tmp_path: Path) -> None:
    path = tmp_path / "ops.jsonl"
    path.write_bytes(
        b"".join(rec(i, d="ab"[i % 2], h="xy"[i % 3 == 0], study=i % 2 == 0) for i in range(300)) + b"junk\n"
    )
    expected = collect([path])
    with running(path) as base, httpx.Client(base_url=base, timeout=10) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/report").json() == expected
        one = c.get("/report", params={"domain": "a", "hypothesis": "x"}).json()
        g = [x for x in expected["groups"] if (x["domain"], x["hypothesis"]) == ("a", "x")][0]
        assert one["count"] == g["count"] and one["groups"] == [g]
        assert one["baseline"] == expected["baseline"]  # filters keep the whole file's baseline
        assert c.get("/report", params={"domain": "b"}).json()["count"] == sum(
            x["count"] for x in expected["groups"] if x["domain"] == "b"
        )
        for bad in ({"domian": "a"}, {"domain": "x" * 5000}):
            r = c.get("/report", params=bad)
            assert r.status_code == 400 and "error" in r.json()
        # an empty or unknown value matches no group (Grafana sends `domain=` before its variable
        # has a value); a long name is a name like any other
        for none in ({"domain": ""}, {"domain": "x" * 300}, {"domain": "a", "hypothesis": ""}):
            r = c.get("/report", params=none)
            assert r.status_code == 200 and r.json()["count"] == 0 and r.json()["groups"] == []
        assert c.get("/report?domain=a&domain=b").status_code == 400
        text = c.get("/metrics").text
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        assert fams["sidrce_fti_avg"].samples[0].value == pytest.approx(expected["fti_avg"])
        assert fams["sidrce_telemetry_records"].samples[0].value == 300
        rej = {s.labels["reason"]: s.value for s in fams["sidrce_telemetry_rejected"].samples}
        assert rej == {"not_json": 1}
        lat = {
            (s.labels["domain"], s.labels["hypothesis"]): s.value
            for s in fams["sidrce_median_latency_p95_seconds"].samples
        }
        assert lat["a", "x"] == pytest.approx(g["medians"]["latency_p95_ms"] / 1000)
        assert "sidrce_build_info" in text and "sidrce_fti_grade_worst" in text
        # the studies' figures: only the groups whose records carry them (domain "a")
        for metric, field in (
            ("sidrce_study_reliability_score", "median_reliability_score"),
            ("sidrce_study_sr9", "median_SR9"),
            ("sidrce_study_di2", "median_DI2"),
            ("sidrce_study_causal_effect", None),
        ):
            got = {(s.labels["domain"], s.labels["hypothesis"]): s.value for s in fams[metric].samples}
            want = {
                (x["domain"], x["hypothesis"]): (
                    x["north_star"][field] if field else x["north_star"]["latest"]["causal_effect"]
                )
                for x in expected["groups"]
                if x["domain"] == "a"
            }
            assert got == pytest.approx(want) and len(want) == 2, metric
        assert all(x["north_star"]["records"] == 0 for x in expected["groups"] if x["domain"] == "b")
        om = c.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.rstrip().endswith("# EOF")


def test_metrics_show_no_figures_before_the_first_record(tmp_path: Path) -> None:
    path = tmp_path / "ops.jsonl"
    path.write_bytes(b"junk\n")
    with answering_sidrce(path, ENV) as c:

        def families() -> dict[str, Any]:
            return {f.name: f for f in text_string_to_metric_families(c.get("/metrics").text)}

        # every line read was rejected: not ready, and /metrics says so, with the reason
        why = wait_for(
            lambda: c.get("/readyz").status_code == 503 and "rejected" in c.get("/readyz").text, "503"
        )
        assert why and "1 not_json" in c.get("/readyz").json()["error"]
        fams = families()
        assert fams["sidrce_telemetry_up"].samples[0].value == 0
        assert fams["sidrce_telemetry_records"].samples[0].value == 0
        assert {"sidrce_lambda_effective", "sidrce_fti_avg", "sidrce_fti_grade_worst"}.isdisjoint(fams)
        assert c.get("/report").json()["lambda_effective"] == 0.5  # the spec's "no evidence" value
        with path.open("ab") as f:
            f.write(b"".join(rec(i) for i in range(4)))
        wait_for(lambda: families()["sidrce_telemetry_records"].samples[0].value == 4, "the 4 records")
        fams = families()
        assert fams["sidrce_lambda_effective"].samples[0].value == pytest.approx(
            collect([path])["lambda_effective"]
        )
        assert c.get("/readyz").json() == {"status": "ready", "records": 4}
        assert fams["sidrce_telemetry_up"].samples[0].value == 1


def test_token_required_when_set(tmp_path: Path) -> None:
    path = tmp_path / "ops.jsonl"
    path.write_bytes(rec(1))
    with running(path, {"SIDRCE_TOKEN": "s3cret-token"}) as base, httpx.Client(base_url=base) as c:
        for url in ("/report", "/metrics"):
            assert c.get(url).status_code == 401
            assert c.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
            r = c.get(url, headers={"Authorization": "Bearer s3cret-token"})
            assert r.status_code == 200
            assert "s3cret" not in r.text
        assert c.get("/healthz").status_code == 200


def test_follows_growth_rotation_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "ops.jsonl"
    path.write_bytes(b"")
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        with path.open("ab") as f:
            i = 0
            while not stop.is_set() and i < 400:
                f.write(rec(i))
                f.flush()
                i += 1
                written[0] = i
                time.sleep(0.002)

    with running(path) as base, httpx.Client(base_url=base, timeout=10) as c:
        t = threading.Thread(target=writer)
        t.start()
        try:
            counts = []
            while t.is_alive():  # requests while the file grows: always a valid, growing report
                r = c.get("/report")
                assert r.status_code == 200
                counts.append(r.json()["count"])
                time.sleep(0.02)
        finally:
            stop.set()
            t.join(timeout=10)
        assert counts == sorted(counts)
        wait_for(lambda: c.get("/report").json()["count"] == written[0], "all appended records")
        # rotation: rename, new file; the old records stay counted, the new ones are added
        path.rename(tmp_path / "ops.jsonl.1")
        path.write_bytes(rec(1000, d="new") + rec(1001, d="new"))
        wait_for(lambda: c.get("/report").json()["count"] == written[0] + 2, "records of the rotated file")
        # truncation in place: the file is read again from its start
        with path.open("wb") as f:
            f.write(rec(2000, d="trunc"))
        doms = wait_for(
            lambda: {g["domain"]: g["count"] for g in c.get("/report").json()["groups"]}.get("trunc") == 1,
            "records after truncation",
        )
        assert doms


def test_encrypted_file_without_key_is_a_503_with_the_variable_names(tmp_path: Path, use_plugin: Any) -> None:
    from test_sidrce_collector import FakePlugin, envelope
    from test_sidrce_collector import rec as crec

    use_plugin(FakePlugin())
    path = tmp_path / "enc.jsonl"
    path.write_bytes(envelope(0, [crec(1)]))
    env = {k: v for k, v in os.environ.items() if k not in ("SIDRCE_AES_KEY", "SIDRCE_AES_KEYS")}
    app_env = {**env, **ENV}
    app = create_app(path, environ=app_env)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"

        def report() -> httpx.Response | None:
            with contextlib.suppress(httpx.TransportError):
                r = httpx.get(f"{base}/report", timeout=2)
                return r if r.status_code == 503 else None
            return None

        r = wait_for(report, "the no-key error")
        assert "SIDRCE_AES_KEY" in r.json()["error"] and "SIDRCE_AES_KEYS" in r.json()["error"]
        assert httpx.get(f"{base}/readyz", timeout=2).status_code == 503
    finally:
        server.should_exit = True
        thread.join(timeout=10)
