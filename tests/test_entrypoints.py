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


def dmca(
    site: Path | str, *args: str, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
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


# --- plugins that import but are badly written ----------------------------------------------------------


def _dist(target: Path, name: str, module: str, source: str) -> None:
    """A distribution ``dmca-<name>`` 0.1 written by hand: entry point ``name`` = ``module``."""
    info = target / f"dmca_{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: dmca-{name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[dmca]\n{name} = {module}\n")
    (target / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture(scope="module")
def both(site: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``site`` plus a folder of plugins whose hooks are wrong: one raises, one is misspelt."""
    target = tmp_path_factory.mktemp("badsite")
    _dist(
        target,
        "raiser",
        "dmca_raiser_mod",
        """
        from dmca_core import hookimpl

        @hookimpl
        def register_domains(register):
            raise KeyError("oops")
        """,
    )
    _dist(
        target,
        "typo",
        "dmca_typo_mod",
        """
        from dmca_core import hookimpl

        @hookimpl
        def register_domain(register):
            pass
        """,
    )
    return os.pathsep.join([str(site), str(target)])


RAISER = "skipped plugin 'raiser' (dmca-raiser 0.1): register_domains raised KeyError: 'oops'"


def test_a_plugin_whose_hook_raises_is_one_warning_and_the_run_goes_on(both: str, tmp_path: Path) -> None:
    config = tmp_path / "hello.yaml"
    config.write_text(
        "experiment: hello\nestimator: fallback\nexecutor: {workers: 1}\ntelemetry: {path: tel.jsonl}\n"
        "studies:\n  - {domain: hello_linear, treatment: X, outcome: Y, rows: 500, steps: 1}\n"
    )
    proc = dmca(both, "run", str(config), "--out", "out", "--quiet", cwd=tmp_path,
                DMCA_LOAD_PLUGINS="hello,raiser,causal_fallback")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [f"dmca: {RAISER}"]
    results = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert [r["status"] for r in results] == ["ok"]
    listing = json.loads(dmca(both, "plugins", "--json", DMCA_LOAD_PLUGINS="hello,raiser").stdout)
    assert [p["name"] for p in listing["plugins"]] == ["hello"]
    assert listing["errors"] == [
        {"name": "raiser", "distribution": "dmca-raiser", "version": "0.1",
         "error": "register_domains raised KeyError: 'oops'"}
    ]  # fmt: skip


def test_strict_mode_makes_a_raising_hook_one_line_or_a_traceback_when_asked(both: str) -> None:
    proc = dmca(both, "plugins", DMCA_LOAD_PLUGINS="hello,raiser", DMCA_STRICT_PLUGINS="1")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"dmca: error: plugin {RAISER.removeprefix('skipped plugin ')}"]
    proc = dmca(
        both, "plugins", DMCA_LOAD_PLUGINS="raiser", DMCA_STRICT_PLUGINS="1", DMCA_PLUGIN_TRACEBACK="1"
    )
    assert proc.returncode == 2
    assert "Traceback (most recent call last)" in proc.stderr and 'raise KeyError("oops")' in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("dmca: error: plugin 'raiser' (dmca-raiser 0.1): ")


def test_a_misspelt_hook_is_reported_and_strict_mode_refuses_it(both: str) -> None:
    message = "plugin 'typo' (dmca-typo 0.1): implements unknown hook 'register_domain'; did you mean 'register_domains'?"
    proc = dmca(both, "plugins", "--json", DMCA_LOAD_PLUGINS="typo")
    assert proc.returncode == 0 and proc.stderr.splitlines() == [f"dmca: skipped {message}"]
    assert [e["name"] for e in json.loads(proc.stdout)["errors"]] == ["typo"]
    proc = dmca(both, "plugins", DMCA_LOAD_PLUGINS="typo", DMCA_STRICT_PLUGINS="1")
    assert proc.returncode == 2 and proc.stderr.splitlines() == [f"dmca: error: {message}"]


def test_a_plugin_registered_in_process_and_installed_is_quiet(site: Path) -> None:
    # docs/plugins.md's "Testing a plugin" with the plugin installed and entry points on
    script = (
        "import dmca_hello.plugin as mine\n"
        "from dmca_core import plugins\n"
        "plugins.pm.register(mine)\n"
        "plugins.setup()\n"
        "print(plugins.get_domain('hello_linear').name)\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DMCA_")}
    environ.update(PYTHONPATH=str(site), DMCA_LOAD_PLUGINS="hello")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environ)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "hello_linear\n", "")
