"""The studies' North Star figures in the report: group medians, the latest result and the series,
checked against a plain-Python reading of the same records; fast and exact paths agree."""

from __future__ import annotations

import json
import random
import statistics
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from test_sidrce_collector import line, rec

from sidrce.cli import main
from sidrce.collector import LATEST, NORTH_STAR, collect

FIELDS = tuple(NORTH_STAR)
#: what the records of group ("a", x) draw their (study, intervention, outcome) from; None: left out
MIXES: dict[str, list[tuple[str | None, str, str | None]]] = {
    "old": [(None, "-", None)],  # records from before study/outcome: one intervention
    # one study, some records without study or outcome (older ones): still one study
    "agree": [(None, "do(x=1 vs 0)", None), ("s1", "do(x=1 vs 0)", None), ("s1", "do(x=1 vs 0)", "y"),
              (None, "do(x=1 vs 0)", "y")],
    # several: labels (one not ASCII, which the compiled scanner leaves to msgspec), interventions
    "mixed": [(st, iv, oc) for st in (None, "s1", "s2 x→y") for iv in ("do(x=1 vs 0)", "do(x=2 vs 0)")
              for oc in (None, "y")],
}  # fmt: skip


def studies(n: int, seed: int, *, with_ts: bool = True, mix: str = "old") -> list[dict[str, Any]]:
    """Groups ("a", x) carry North Star fields, some fields missing at random (as a failed DI2
    leaves DI2 out), their study, intervention and outcome drawn from ``MIXES[mix]``; group
    ("b", y) carries none."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r = rec(i, d="ab"[i % 2], h="xy"[i % 2])
        r["infra_cost_usd"] = rng.uniform(0, 5)
        # repeated seconds and a jump back: ts order differs from line order, with ties
        r["ts"] = f"2024-01-01T00:{(i * 7) % 50:02d}:{rng.randrange(3):02d}.000Z"
        if not with_ts and i % 11 == 3:
            del r["ts"]
        if r["domain"] == "a":
            study, r["intervention"], outcome = rng.choice(MIXES[mix])
            r.update({k: v for k, v in (("study", study), ("outcome", outcome)) if v is not None})
        if r["domain"] == "a" and rng.random() < 0.8:
            r["causal_effect"] = rng.choice([rng.gauss(0, 1), 2])  # ints too
            r["ci_low"], r["ci_high"] = r["causal_effect"] - 0.5, r["causal_effect"] + 0.5
            for name, value in (
                ("reliability_score", rng.randrange(5) / 4),
                ("SR9", rng.randrange(10) / 9),
                ("DI2", rng.random()),
            ):
                if rng.random() < 0.85:
                    r[name] = value
        out.append(r)
    return out


def iso(ts: str | None) -> str | None:
    """A record's ts as the report writes times (microseconds)."""
    if ts is None:
        return None
    return datetime.fromisoformat(ts).isoformat(timespec="microseconds").replace("+00:00", "Z")


def reference_verdict(with_effect: list[dict[str, Any]]) -> tuple[int, str | None]:
    """(effect_studies, effects_withheld) by the rule as the spec states it: every two records
    carrying an effect agree on each of study, intervention, outcome that both carry."""
    names = ("study", "intervention", "outcome")
    ids = sorted({tuple(r.get(k) for k in names) for r in with_effect}, key=repr)
    if not ids:
        return 0, None
    differing = [
        name
        for i, name in enumerate(names)
        if any(a[i] is not None and b[i] is not None and a[i] != b[i] for a in ids for b in ids)
    ]
    if not differing:
        return 1, None
    return len(ids), f"mixed: {len(ids)} studies (differing {', '.join(differing)})"


def reference(
    records: list[dict[str, Any]], runs: dict[tuple[str, str], list[tuple[int, int]]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The North Star part of each group, computed record by record with the standard library;
    ``runs``: each group's series runs as (first, end) ordinals (their bounds are tested elsewhere)."""
    timed = all("ts" in r for r in records)
    order = sorted(range(len(records)), key=lambda i: records[i]["ts"]) if timed else range(len(records))
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for i in order:
        r = records[i]
        groups.setdefault((r["domain"], r["hypothesis"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        with_effect = [r for r in rs if "causal_effect" in r]
        ns: dict[str, Any] = {"records": len(with_effect)}
        for name in FIELDS:
            values = [r[name] for r in rs if name in r]
            ns[f"median_{name}"] = statistics.median(values) if values else None
        last = with_effect[-1] if with_effect else {}
        ns["latest"] = {**{k: last.get(k) for k in LATEST}, "ts": iso(last.get("ts"))}
        ns["effect_studies"], ns["effects_withheld"] = reference_verdict(with_effect)
        # what the effects are of: each part their records agree on (past 256 studies, none)
        parts = ("study", "intervention", "outcome")
        few = len({tuple(r.get(k) for k in parts) for r in with_effect}) <= 256
        ns["effect_of"] = {}
        for name in parts:
            values = {r[name] for r in with_effect if name in r}
            ns["effect_of"][name] = values.pop() if few and len(values) == 1 else None
        if ns["effects_withheld"]:  # no figure of unlike effects; the scores stay
            ns["median_causal_effect"] = None
            ns["latest"].update(causal_effect=None, ci_low=None, ci_high=None)
        series = []
        for a, b in runs[key]:
            point = {}
            for name in FIELDS:
                values = [r[name] for r in rs[a:b] if name in r]
                if values and not (name == "causal_effect" and ns["effects_withheld"]):
                    point[name] = statistics.median(values)
            series.append(point)
        out[key] = {"north_star": ns, "series": series}
    return out


def north_star_of(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (g["domain"], g["hypothesis"]): {
            "north_star": g["north_star"],
            "series": [{k: p[k] for k in FIELDS if k in p} for p in g["series"]],
        }
        for g in report["groups"]
    }


@pytest.mark.parametrize("mix", list(MIXES))
@pytest.mark.parametrize("with_ts", [True, False])
def test_north_star_matches_a_record_by_record_reading(tmp_path: Path, with_ts: bool, mix: str) -> None:
    records = studies(900, seed=1, with_ts=with_ts, mix=mix)
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(line(r) for r in records))
    report = collect([path])
    runs = {
        (g["domain"], g["hypothesis"]): [(p["last"] - p["count"], p["last"]) for p in g["series"]]
        for g in report["groups"]
    }
    got, want = north_star_of(report), reference(records, runs)
    assert got.keys() == want.keys()
    for key in want:
        g, w = got[key]["north_star"], want[key]["north_star"]
        # medians: the mean of the two middle values, computed alike, so equal to the last bit
        assert g == w, key
        for p, q in zip(got[key]["series"], want[key]["series"], strict=True):
            assert p == q
    b = got["b", "y"]["north_star"]
    nothing = {"records": 0, **{f"median_{f}": None for f in FIELDS}}
    assert b == {
        **nothing,
        "latest": dict.fromkeys((*LATEST, "ts")),
        "effect_studies": 0,
        "effects_withheld": None,
        "effect_of": {"study": None, "intervention": None, "outcome": None},
    }
    a = got["a", "x"]["north_star"]
    assert a["records"] > 300  # the test data has studies in it
    assert a["median_SR9"] is not None and a["latest"]["ts"] is not None  # scores stay, mixed or not
    if mix == "mixed":
        assert a["effect_studies"] == 12 and a["median_causal_effect"] is None
        assert a["effects_withheld"] == "mixed: 12 studies (differing study, intervention)"
        assert a["effect_of"]["study"] is None and a["effect_of"]["intervention"] is None
    else:
        assert a["effect_studies"] == 1 and a["median_causal_effect"] is not None
        assert a["effect_of"]["intervention"] is not None


@pytest.mark.parametrize("mix", ["old", "mixed"])
def test_fast_and_exact_paths_agree_on_north_star_fields(tmp_path: Path, mix: str) -> None:
    records = studies(3 * 4096 + 17, seed=2, mix=mix)
    bad = dict(records[5]) | {"domain": "a", "SR9": "high"}
    fast = tmp_path / "fast.jsonl"
    fast.write_bytes(b"".join(line(r) for r in records) + line(bad) + b'{"DI2": 1e999}\n')
    # leading spaces: every line through json.loads and the exact check
    slow = tmp_path / "slow.jsonl"
    slow.write_bytes(b"".join(b" " + line(r) for r in records) + b" " + line(bad) + b' {"DI2": 1e999}\n')
    one, two = collect([fast]), collect([slow])
    for ex in two["rejected_examples"]:
        ex["file"] = str(fast)
    assert one == two
    assert one["rejected"] == {"schema": 2}
    # JSON has no NaN; a number too large for a float is refused by both paths
    out = dict(records[0]) | {"reliability_score": 1e999}
    fast.write_bytes(json.dumps(out).replace("inf", "1e999").replace("Infinity", "1e999").encode() + b"\n")
    assert collect([fast])["rejected"] == {"schema": 1}


def test_human_report_shows_the_studies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = studies(200, seed=3)
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(line(r) for r in records))
    assert main(["collect", str(path)]) == 0
    out = capsys.readouterr().out
    a = [g for g in collect([path])["groups"] if g["domain"] == "a"][0]["north_star"]
    row = [ln for ln in out.splitlines() if ln.startswith("a ") and "[" in ln][0]
    assert f"{a['latest']['causal_effect']:.4g}" in row and f"{a['median_SR9']:.3f}" in row
    assert not [ln for ln in out.splitlines() if ln.startswith("b ") and "[" in ln]
