"""SIDRCE's figures against hand arithmetic (docs/finops-spec.md), and the CLI around them."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from seed_records import SEED_RECORDS

from sidrce import fti as F
from sidrce.cli import main
from sidrce.collector import collect

ROOT = Path(__file__).resolve().parents[1]
SEED = SEED_RECORDS


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def rec(
    d: str = "d",
    h: str = "h",
    cost: float = 1.0,
    qps: float = 1.0,
    lat: float = 1.0,
    iv: str = "-",
    ts: str | None = None,
    step: int = 0,
) -> dict:
    r = {
        "domain": d,
        "hypothesis": h,
        "step": step,
        "intervention": iv,
        "infra_cost_usd": cost,
        "qps": qps,
        "latency_p95_ms": lat,
    }
    if ts is not None:
        r["ts"] = ts
    return r


def test_seed_records_give_the_hand_computed_figures(tmp_path: Path) -> None:
    report = collect([write(tmp_path / "t.jsonl", SEED)])
    # baseline: medians of (120, 130), (480, 470), (180, 190)
    assert report["baseline"] == {
        "source": "medians",
        "infra_cost_usd": 125.0,
        "qps": 475.0,
        "latency_p95_ms": 185.0,
    }
    # FTI = (c/125) / ((q/475) * (185/l)) = c*475*l / (125*q*185)
    fti_wimp = (120 * 475 * 180) / (125 * 480 * 185)  # 10,260,000 / 11,100,000 = 171/185
    fti_dark = (130 * 475 * 190) / (125 * 470 * 185)  # 11,732,500 / 10,868,750 = 9386/8695
    assert fti_wimp == pytest.approx(171 / 185, rel=1e-15)
    assert fti_dark == pytest.approx(9386 / 8695, rel=1e-15)
    groups = {(g["domain"], g["hypothesis"]): g for g in report["groups"]}
    assert groups["direct_lab", "WIMP"]["fti"] == pytest.approx(0.924324324, abs=1e-9)
    assert groups["cosmology", "DarkPhoton"]["fti"] == pytest.approx(1.079470960, abs=1e-9)
    assert groups["direct_lab", "WIMP"]["grade"] == "OK"
    assert groups["cosmology", "DarkPhoton"]["grade"] == "FAIL"  # above 1.05
    assert report["fti_avg"] == pytest.approx((171 / 185 + 9386 / 8695) / 2, rel=1e-12)
    assert report["fti_avg"] == pytest.approx(1.001897642, abs=1e-9)
    assert report["fti_grade_worst"] == "FAIL"
    # λ: no ts, so file order; early = record 1 (WIMP), late = record 2; no intervention: 0 days
    sibg = 0.5 + (171 / 185 - 9386 / 8695) / (171 / 185)  # = 1.5 - 9386/8037
    assert sibg == pytest.approx(1.5 - 9386 / 8037, rel=1e-12)
    assert report["lambda_effective"] == pytest.approx(sibg, rel=1e-12)
    assert report["lambda_effective"] == pytest.approx(0.332151300, abs=1e-9)
    assert report["count"] == 2 and report["rejected"] == {}
    assert report["medians"] == {"infra_cost_usd": 125.0, "qps": 475.0, "latency_p95_ms": 185.0}


def test_collector_script_reads_ops_telemetry_in_cwd(tmp_path: Path) -> None:
    write(tmp_path / "ops_telemetry.jsonl", SEED)
    out = subprocess.run(
        [sys.executable, str(ROOT / "sidrce" / "collector.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(out.stdout)
    assert set(report) >= {
        "count",
        "medians",
        "fti_avg",
        "fti_grade_worst",
        "lambda_effective",
        "groups",
        "rejected",
    }
    assert report["fti_avg"] == pytest.approx((171 / 185 + 9386 / 8695) / 2, rel=1e-12)


def test_fti_zero_rules() -> None:
    base = F.Baseline(2.0, 10.0, 5.0)
    assert F.fti(0.0, 10.0, 5.0, base) == 0.0  # free: FTI 0, OK
    assert F.fti(2.0, 0.0, 5.0, base) is None  # no throughput: undefined
    assert F.fti(2.0, 10.0, 5.0, F.Baseline(0.0, 10.0, 5.0)) is None
    assert F.fti(2.0, 10.0, 5.0, F.Baseline(2.0, 10.0, 0.0)) is None
    assert F.fti(2.0, 10.0, 0.0, base) == 0.0  # zero latency is not a division
    assert F.grade(None) == "FAIL"
    assert [F.grade(x) for x in (1.0, 1.0000001, 1.05, 1.0500001)] == ["OK", "WARN", "WARN", "FAIL"]
    assert F.lambda_sibg(0.0, 1.0, 10) == 0.5 and F.lambda_sibg(1.0, None, 10) == 0.5
    assert F.lambda_sibg(1.0, 0.0, 10) == 1.0 and F.lambda_sibg(1.0, 3.0, 10) == 0.0


def test_zero_qps_group_is_undefined_not_nan(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.jsonl", [rec("a", "x", 1, 10, 5), rec("b", "y", 1, 0, 5), rec("a", "x", 1, 10, 5)]
    )
    report = collect([path])
    text = json.dumps(report, allow_nan=False)  # raises on NaN/inf
    assert "NaN" not in text
    g = {x["domain"]: x for x in report["groups"]}
    assert g["b"]["fti"] is None and g["b"]["grade"] == "FAIL"
    assert g["a"]["fti"] == 1.0 and g["a"]["grade"] == "OK"
    assert report["fti_avg"] is None and report["fti_grade_worst"] == "FAIL"
    assert main(["gate", str(path), "--max-fti", "2"]) == 1


def test_ts_order_halves_and_days_since_change(tmp_path: Path) -> None:
    # written out of time order: the halves must follow ts, not file order
    rows = [
        rec(cost=4, ts="2024-01-03T00:00:00Z"),
        rec(cost=1, ts="2024-01-01T00:00:00Z", iv="estimator=full"),
        rec(cost=3, ts="2024-01-02T12:00:00.5Z"),
        rec(cost=2, ts="2024-01-01T12:00:00Z"),
    ]
    report = collect([write(tmp_path / "t.jsonl", rows)], lambda_asdpi=0.2)
    lam = report["lambda"]
    assert lam["order"] == "ts"
    # baseline cost = median(1,2,3,4) = 2.5; time order costs 1,2 | 3,4 -> medians 1.5 and 3.5
    assert lam["fti_early"] == pytest.approx(1.5 / 2.5) and lam["fti_late"] == pytest.approx(3.5 / 2.5)
    sibg = max(0.0, 0.5 + (0.6 - 1.4) / 0.6)
    assert lam["sibg"] == pytest.approx(sibg)
    assert lam["days_since_change"] == pytest.approx(2.0)  # Jan 3 minus Jan 1
    assert report["lambda_effective"] == pytest.approx(sibg * math.exp(-0.2 * 2.0))
    assert lam["latest_ts"] == "2024-01-03T00:00:00.000000Z"
    # the group series is in time order too
    assert [p["infra_cost_usd"] for p in report["groups"][0]["series"]] == [1, 2, 3, 4]


def test_baseline_option_env_and_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "t.jsonl", SEED)
    assert main(["gate", str(path), "--max-fti", "1.05"]) == 0  # 1.0019 <= 1.05
    assert main(["gate", str(path), "--max-fti", "1.0"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("sidrce gate: FAIL: fti_avg 1.0019 > --max-fti 1")
    assert main(["gate", str(path), "--fail-on", "FAIL"]) == 1
    # a fixed baseline equal to the WIMP record makes WIMP exactly 1.0 (OK)
    report = collect([path], baseline=F.parse_baseline("120,480,180"))
    g = {x["hypothesis"]: x for x in report["groups"]}
    assert g["WIMP"]["fti"] == 1.0 and g["WIMP"]["grade"] == "OK"
    expect = (130 / 120) / ((470 / 480) * (180 / 190))
    assert g["DarkPhoton"]["fti"] == pytest.approx(expect, rel=1e-12)
    monkeypatch.setenv("SIDRCE_BASELINE", "120,480,180")
    capsys.readouterr()
    assert main(["collect", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["baseline"]["source"] == "fixed"
    monkeypatch.setenv("SIDRCE_BASELINE", "1,2")
    assert main(["collect", str(path)]) == 2
    assert "SIDRCE_BASELINE" in capsys.readouterr().err


def test_empty_file_gates_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    report = collect([path])
    assert report["count"] == 0 and report["fti_avg"] is None and report["groups"] == []
    assert main(["gate", str(path), "--fail-on", "WARN"]) == 1
    assert "no valid telemetry" in capsys.readouterr().out


def test_gate_min_records_catches_a_partial_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "t.jsonl", SEED)  # two records
    assert main(["gate", str(path), "--max-fti", "1.05", "--min-records", "2"]) == 0
    assert main(["gate", str(path), "--max-fti", "1.05", "--min-records", "3"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "sidrce gate: FAIL: 2 valid records, fewer than --min-records 3"
    with pytest.raises(SystemExit) as bad:
        main(["gate", str(path), "--max-fti", "1", "--min-records", "0"])
    assert bad.value.code == 2


def test_medians_per_group_match_statistics(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    rows = [
        rec(rng.choice("abc"), rng.choice("xy"), rng.uniform(0, 5), rng.uniform(1, 9), rng.uniform(1, 50))
        for _ in range(3001)
    ]
    report = collect([write(tmp_path / "t.jsonl", rows)])
    for g in report["groups"]:
        mine = [r for r in rows if (r["domain"], r["hypothesis"]) == (g["domain"], g["hypothesis"])]
        assert g["count"] == len(mine)
        assert g["medians"]["qps"] == pytest.approx(statistics.median(r["qps"] for r in mine), rel=1e-12)
        assert g["medians"]["infra_cost_usd"] == pytest.approx(
            statistics.median(r["infra_cost_usd"] for r in mine), rel=1e-12
        )
        assert sum(p["count"] for p in g["series"]) == len(mine) and len(g["series"]) <= 60
    assert report["medians"]["latency_p95_ms"] == pytest.approx(
        statistics.median(r["latency_p95_ms"] for r in rows), rel=1e-12
    )


def test_cli_bad_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect", str(tmp_path / "missing.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing.jsonl" in err
