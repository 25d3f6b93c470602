"""Entry points for real: the example plugin installed into a folder, a broken plugin beside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.entrypoints


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with dmca-hello installed by pip and a broken distribution written by hand."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT / "examples" / "dmca-hello")],
        check=True,
    )  # fmt: skip
    dist = target / "dmca_broken-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dmca-broken\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[dmca]\nbroken = dmca_broken_mod\n")
    (target / "dmca_broken_mod.py").write_text('raise ImportError("needs libquux, which is not installed")\n')
    return target


def dmca(site: Path, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DMCA_")}
    environ["PYTHONPATH"] = os.pathsep.join([str(site), environ.get("PYTHONPATH", "")])
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "dmca_core.cli", *args], capture_output=True, text=True, env=environ, cwd=cwd
    )


def test_example_plugin_is_discovered_and_a_broken_one_is_reported(site: Path) -> None:
    proc = dmca(site, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    hello = [p for p in listing["plugins"] if p["name"] == "hello"]
    assert hello == [
        {
            "name": "hello",
            "distribution": "dmca-hello",
            "version": "0.1.0",
            "hooks": ["register_domains"],
            "provides": {"domains": ["hello_linear"]},
        }
    ]
    (err,) = [e for e in listing["errors"] if e["name"] == "broken"]
    assert err["distribution"] == "dmca-broken" and "libquux" in err["error"]
    assert "broken" in proc.stderr and "dmca-broken" in proc.stderr  # the warning names the package


def test_strict_mode_makes_a_broken_plugin_fatal(site: Path) -> None:
    proc = dmca(site, "plugins", DMCA_STRICT_PLUGINS="1")
    assert proc.returncode == 2
    assert "dmca-broken" in proc.stderr and "libquux" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_blocklist_and_allowlist_work_while_a_plugin_is_broken(site: Path) -> None:
    blocked = json.loads(dmca(site, "plugins", "--json", DMCA_BLOCK_PLUGINS="broken").stdout)
    assert blocked["errors"] == [] and "hello" in {p["name"] for p in blocked["plugins"]}
    only = json.loads(dmca(site, "plugins", "--json", DMCA_LOAD_PLUGINS="hello").stdout)
    assert [p["name"] for p in only["plugins"]] == ["hello"] and only["errors"] == []
    none = json.loads(dmca(site, "plugins", "--json", DMCA_LOAD_PLUGINS="").stdout)
    assert none == {"plugins": [], "errors": []}


def test_hook_filter_and_builtins(site: Path) -> None:
    out = json.loads(dmca(site, "plugins", "--json", "--all", "--hook", "register_domains").stdout)
    names = {p["name"] for p in out["plugins"]}
    assert "hello" in names and "dmca_core.default_plugins.csv_domain" in names
    assert all("register_domains" in p["hooks"] for p in out["plugins"])


def test_run_uses_the_entry_point_domain_despite_a_broken_plugin(site: Path, tmp_path: Path) -> None:
    config = tmp_path / "hello.yaml"
    config.write_text(
        textwrap.dedent(
            """
            experiment: hello
            seed: 7
            estimator: fallback
            executor: {workers: 1}
            telemetry: {path: tel.jsonl}
            studies:
              - {domain: hello_linear, hypothesis: toy, treatment: X, outcome: Y, rows: 3000, steps: 2,
                 params: {effect: 2.0}, intervention: {t0: 0, t1: 1}}
            """
        )
    )
    proc = dmca(site, "run", str(config), "--out", "out", "--quiet", cwd=tmp_path,
                DMCA_LOAD_PLUGINS="hello,broken,causal_fallback")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert [r["status"] for r in results] == ["ok", "ok"]
    for r in results:
        assert r["ci_low"] <= r["truth"]["effect"] <= r["ci_high"]
        assert abs(r["truth"]["effect"] - 2.0) < 0.05  # re-simulated truth matches the model's coefficient
    assert len((tmp_path / "tel.jsonl").read_text().splitlines()) == 2
