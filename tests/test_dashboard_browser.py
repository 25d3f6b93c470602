"""The built-in dashboard in a real headless Chromium (Playwright): what it shows equals ``/report``.

Needs Debian's ``chromium`` (/usr/bin/chromium) and the ``playwright`` package; without them these
tests skip, unless ``DMCA_REQUIRE_INTEGRATION=1`` (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_support import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    REPO,
    require_chromium,
    running_sidrce,
    write_telemetry,
)

pytestmark = pytest.mark.integration

TOKEN = "browser-test-token-9d2e"
RENDERED = "() => Number(document.body.dataset.renders || 0) >= {n}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Console:
    """Console errors and uncaught exceptions of one page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))


def grade_of_colour(css: str) -> str:
    """Which grade a colour means to a person: green OK, amber WARN, red FAIL."""
    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
    if g > r + 40 and g > b + 40:
        return "OK"
    if r > 150 and g > 120 and b < 100 and abs(r - g) < 90:
        return "WARN"
    if r > g + 80 and r > b + 80:
        return "FAIL"
    raise AssertionError(f"colour {css} is none of green, amber, red")


def shown(page: Any, selector: str) -> tuple[str, str]:
    el = page.locator(selector)
    return el.inner_text().strip(), el.get_attribute("data-value") or ""


def assert_number(page: Any, selector: str, expected: float | int | None) -> None:
    text, exact = shown(page, selector)
    if expected is None:
        assert text == "–" and exact == "", selector
        return
    assert float(exact) == expected, f"{selector}: data-value {exact} != {expected}"
    assert float(text) == pytest.approx(expected, rel=1e-3, abs=0), (
        f"{selector}: shows {text}, report {expected}"
    )


def check_against_report(page: Any, rep: dict[str, Any]) -> None:
    assert_number(page, "#count", rep["count"])
    assert_number(page, "#rejected-total", sum(rep["rejected"].values()))
    assert_number(page, "#fti-avg", rep["fti_avg"])
    assert_number(page, "#lambda-effective", rep["lambda_effective"])
    assert_number(page, "#lambda-sibg", rep["lambda"]["sibg"])
    assert_number(page, "#median-cost", rep["medians"]["infra_cost_usd"])
    assert_number(page, "#median-qps", rep["medians"]["qps"])
    assert_number(page, "#median-latency", rep["medians"]["latency_p95_ms"])
    assert_number(page, "#baseline-cost", rep["baseline"]["infra_cost_usd"])
    worst = page.locator("#grade-worst")
    assert worst.inner_text().strip() == rep["fti_grade_worst"]
    assert (
        grade_of_colour(worst.evaluate("e => getComputedStyle(e).backgroundColor")) == rep["fti_grade_worst"]
    )

    rows = page.locator("#groups tbody tr")
    assert rows.count() == len(rep["groups"])
    for i, g in enumerate(rep["groups"]):
        row = f"#groups tbody tr:nth-child({i + 1})"
        assert page.locator(row).get_attribute("data-domain") == g["domain"]
        assert page.locator(row).get_attribute("data-hypothesis") == g["hypothesis"]
        assert_number(page, f"{row} .count", g["count"])
        assert_number(page, f"{row} .fti", g["fti"])
        assert_number(page, f"{row} .cost", g["medians"]["infra_cost_usd"])
        assert_number(page, f"{row} .qps", g["medians"]["qps"])
        assert_number(page, f"{row} .latency", g["medians"]["latency_p95_ms"])
        badge = page.locator(f"{row} .grade .badge")
        assert badge.inner_text().strip() == g["grade"]
        assert grade_of_colour(badge.evaluate("e => getComputedStyle(e).backgroundColor")) == g["grade"]
        bar = page.locator(
            f'#fti-chart rect[data-domain="{g["domain"]}"][data-hypothesis="{g["hypothesis"]}"]'
        )
        assert grade_of_colour(bar.evaluate("e => getComputedStyle(e).fill")) == g["grade"]
        name = f"{g['domain']} / {g['hypothesis']}"
        for chart in ("#chart-cost", "#chart-qps", "#chart-latency"):
            line = page.locator(f'{chart} [data-name="{name}"]')
            assert line.get_attribute("data-points") == str(len(g["series"])), (chart, name)

    # the studies table: the latest effect and its interval, the medians, or dashes
    rows = page.locator("#studies tbody tr")
    assert rows.count() == len(rep["groups"])
    for i, g in enumerate(rep["groups"]):
        row = f"#studies tbody tr:nth-child({i + 1})"
        assert page.locator(row).get_attribute("data-domain") == g["domain"]
        assert page.locator(row).get_attribute("data-hypothesis") == g["hypothesis"]
        ns, last = g["north_star"], g["north_star"]["latest"]
        assert_number(page, f"{row} .records", ns["records"])
        if ns["effects_withheld"]:  # several studies in the group: the reason, not a number
            assert last["causal_effect"] is None
            text, exact = shown(page, f"{row} .effect")
            assert (text, exact) == (f"mixed: {ns['effect_studies']}", "")
            withheld = page.locator(f"{row} .effect").get_attribute("data-withheld")
            assert withheld == ns["effects_withheld"]
        else:
            assert_number(page, f"{row} .effect", last["causal_effect"])
            of = ns["effect_of"]
            if of["intervention"] is not None:  # on hover: what the number is the effect of
                title = page.locator(f"{row} .effect").get_attribute("title")
                assert of["intervention"] in title and (of["study"] or "") in title, title
                assert of["outcome"] is None or title.endswith(f" on {of['outcome']}"), title
        assert_number(page, f"{row} .ci .ci-low", last["ci_low"])
        assert_number(page, f"{row} .ci .ci-high", last["ci_high"])
        assert_number(page, f"{row} .reliability", ns["median_reliability_score"])
        assert_number(page, f"{row} .sr9", ns["median_SR9"])
        assert_number(page, f"{row} .di2", ns["median_DI2"])
        when = page.locator(f"{row} .ts").inner_text().strip()
        assert when == ("–" if last["ts"] is None else last["ts"][:19].replace("T", " "))
    # the first group's one "shield_upgrade" step carries an effect of another intervention
    assert [bool(g["north_star"]["effects_withheld"]) for g in rep["groups"]].count(True) == 1

    shown_rejected = {
        r.get_attribute("data-reason"): int(r.locator(".n").inner_text())
        for r in page.locator("#rejected tbody tr[data-reason]").all()
    }
    assert shown_rejected == rep["rejected"]


def test_dashboard_shows_report_and_follows_it(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "ops.jsonl"
    write_telemetry(path)
    with running_sidrce(path, {"SIDRCE_TOKEN": TOKEN}) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        console = Console(page)
        page.goto(f"{base}/dashboard?refresh=1#token={TOKEN}")
        page.wait_for_function(RENDERED.format(n=1), timeout=15000)
        rep = httpx.get(f"{base}/report", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert {g["grade"] for g in rep["groups"]} == {"OK", "WARN", "FAIL"}  # the sample covers every grade
        # some groups carry study figures (one with DI2 gaps), one carries none: shown as dashes
        assert sorted(g["north_star"]["records"] for g in rep["groups"]) == [0, 120, 120]
        check_against_report(page, rep)
        assert TOKEN not in page.url  # the fragment is gone from the address bar
        assert TOKEN not in page.content()

        # a few samples for the "since this page opened" charts of the screenshot
        page.wait_for_function(RENDERED.format(n=3), timeout=15000)
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("DMCA_UPDATE_SCREENSHOT"):  # refresh README's picture on request only
            (REPO / "docs" / "img").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, REPO / "docs" / "img" / "dashboard.png")

        # new telemetry reaches the page by itself: a fourth group appears within a few refreshes;
        # it has no throughput, so its FTI (and so the record-weighted FTI) is undefined
        with path.open("a", encoding="utf-8") as f:
            for i in range(5):
                f.write(
                    json.dumps(
                        {
                            "ts": f"2025-03-01T14:30:0{i}.000Z",
                            "domain": "solar_axion",
                            "hypothesis": "ALP",
                            "step": i,
                            "intervention": "-",
                            "infra_cost_usd": 3.0,
                            "qps": 0.0,
                            "latency_p95_ms": 100.0,
                        }
                    )
                    + "\n"
                )
        page.wait_for_selector('#groups tr[data-domain="solar_axion"]', timeout=15000)
        page.wait_for_function(
            RENDERED.format(n=page.evaluate("() => Number(document.body.dataset.renders)") + 1)
        )
        rep2 = httpx.get(f"{base}/report", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert rep2["count"] == rep["count"] + 5
        assert rep2["fti_avg"] is None and None in [g["fti"] for g in rep2["groups"]]
        check_against_report(page, rep2)
        assert console.errors == []
        page.close()


def test_dashboard_asks_for_the_token(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "ops.jsonl"
    write_telemetry(path, per_group=6)
    with running_sidrce(path, {"SIDRCE_TOKEN": TOKEN}) as base:
        page = browser.new_page()
        console = Console(page)
        page.goto(f"{base}/dashboard?refresh=1")
        page.wait_for_selector("#auth:not([hidden])", timeout=15000)
        assert page.locator("#main").is_hidden()
        page.fill("#token", "not-the-token")
        page.click("#auth button")
        page.wait_for_function("() => document.getElementById('auth-msg').textContent.includes('refused')")
        assert page.locator("#main").is_hidden()
        page.fill("#token", TOKEN)
        page.click("#auth button")
        page.wait_for_function(RENDERED.format(n=1), timeout=15000)
        assert page.locator("#auth").is_hidden()
        rep = httpx.get(f"{base}/report", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        check_against_report(page, rep)
        # the only console errors are Chromium's notes on the two refused fetches (HTTP 401)
        assert len(console.errors) == 2 and all("401" in e for e in console.errors), console.errors
        assert page.evaluate("() => sessionStorage.getItem('sidrce_token')") == TOKEN
        page.close()


@pytest.mark.parametrize("refresh", ["1e9", "Infinity", "-3", "x"])
def test_an_out_of_range_refresh_does_not_poll_non_stop(browser: Any, tmp_path: Path, refresh: str) -> None:
    # a browser's timer overflows past ~24.8 days and fires at once: 1e9 s polled back to back
    path = tmp_path / "ops.jsonl"
    write_telemetry(path, per_group=5)
    with running_sidrce(path, {}) as base:
        page = browser.new_page()
        reports: list[str] = []
        page.on("request", lambda r: reports.append(r.url) if "/report" in r.url else None)
        try:
            page.goto(f"{base}/dashboard?refresh={refresh}")
            page.wait_for_function(RENDERED.format(n=1), timeout=15000)
            page.wait_for_timeout(1500)
        finally:
            page.close()
    assert len(reports) == 1, reports  # the first load; the next no sooner than 5 s (or a day)
