"""``/dashboard`` over real HTTP: public page, guarded data, same-origin assets only."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
from dashboard_support import running_sidrce, write_telemetry

TOKEN = "route-test-token-5f1c"


class Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.refs.append(value)


def test_page_is_public_data_is_guarded_and_assets_are_same_origin(tmp_path: Path) -> None:
    path = tmp_path / "ops.jsonl"
    write_telemetry(path, per_group=4)
    with running_sidrce(path, {"SIDRCE_TOKEN": TOKEN}) as base, httpx.Client(base_url=base, timeout=10) as c:
        page = c.get("/dashboard")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe" not in csp
        assert TOKEN not in page.text
        assert c.get("/report").status_code == 401  # the page being public opens no data
        assert c.get("/dashboard/", follow_redirects=True).url.path == "/dashboard"

        parser = Refs()
        parser.feed(page.text)
        assert parser.refs, "the page references its script and style"
        for ref in parser.refs:
            # nothing from another origin: a relative path, an in-page anchor or a data: URL
            assert ref.startswith(("/", "#", "data:")) and not ref.startswith("//"), ref
            if ref.startswith("/dashboard/static/"):
                asset = c.get(ref)
                assert asset.status_code == 200, ref
                assert asset.headers["x-content-type-options"] == "nosniff"
                text = asset.text.replace('"http://www.w3.org/2000/svg"', "")  # a namespace name, not a fetch
                assert not re.search(r"https?://", text), f"{ref} loads something from elsewhere"
        js = c.get("/dashboard/static/dashboard.js")
        assert js.headers["content-type"].startswith("text/javascript")
        assert "innerHTML" not in js.text  # telemetry strings go in as text, never as markup

        for bad in ("nope.js", "..%2Fserver.py", "dashboard.html", "%2e%2e%2fdashboard.py"):
            assert c.get(f"/dashboard/static/{bad}").status_code == 404, bad
