"""The plain path's speed-ups give the exact report: the report's medians computed on threads, and
the numeric columns taken in one pass (or per field when a North Star field is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_sidrce_collector import line
from test_sidrce_fastpaths import rows

from sidrce import collector as C
from sidrce.collector import Aggregator

pytestmark = pytest.mark.usefixtures("plain_reader")  # each fast path in turn


@pytest.mark.parametrize(
    "filt", [{}, {"domain": "a"}, {"hypothesis": "y"}, {"domain": "c", "hypothesis": "x"}]
)
def test_threaded_report_equals_the_sequential_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filt: dict
) -> None:
    good = rows(5000, seed=4)
    for i in range(0, 5000, 3):  # out of time order: the report sorts by ts
        good[i]["ts"] = f"2023-12-{1 + i % 28:02d}T00:00:00Z"
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(line(r) for r in good))
    snap = Aggregator().read([path]).snapshot()
    monkeypatch.setattr(C, "PARALLEL_MEDIANS", 1 << 62)
    sequential = C.summarize(snap, **filt)
    monkeypatch.setattr(C, "PARALLEL_MEDIANS", 1)
    assert C.summarize(snap, **filt) == sequential
    assert sequential["lambda"]["order"] == "ts" and sequential["count"] > 0


def test_columns_with_and_without_north_star_fields(tmp_path: Path) -> None:
    """Slices where every record has every number, and slices where some lack some, read alike
    by the fast path and by the exact one (leading spaces send every line there)."""
    good = rows(3 * C.FAST_LINES, seed=8)
    full = [r for r in good if "SR9" in r]
    mixed = good
    body = b"".join(line(r) for r in full + mixed)
    fast = tmp_path / "fast.jsonl"
    fast.write_bytes(body)
    slow = tmp_path / "slow.jsonl"
    slow.write_bytes(b"".join(b" " + ln + b"\n" for ln in body.splitlines()))
    a, b = C.collect([fast]), C.collect([slow])
    for ex in b["rejected_examples"]:
        ex["file"] = str(fast)
    assert a == b and a["count"] == len(full) + len(mixed)
    assert all(g["north_star"]["median_SR9"] is not None for g in a["groups"] if g["domain"] in "ab")
