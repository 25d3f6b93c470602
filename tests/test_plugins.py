"""The plugin manager in-process: defaults can be overridden, names resolve, errors list choices."""

from __future__ import annotations

import os
import types

import pytest

from dmca_core import hookimpl, plugins
from dmca_core.errors import PluginError


class _Est:
    def __init__(self, name: str, priority: int) -> None:
        self.name, self.priority = name, priority


def _plugin(**hooks: object) -> types.SimpleNamespace:
    return types.SimpleNamespace(**hooks)


def test_a_third_party_plugin_overrides_a_trylast_default(use_plugin) -> None:
    builtin = plugins.get_sink("jsonl")
    mine = types.SimpleNamespace(name="jsonl", open=lambda path, *, fsync: None)

    @hookimpl
    def register_telemetry_sinks(register):
        register(mine)

    use_plugin(_plugin(register_telemetry_sinks=register_telemetry_sinks))
    assert plugins.get_sink("jsonl") is mine
    assert builtin is not mine


def test_default_comes_back_after_unregistering(use_plugin) -> None:
    assert type(plugins.get_sink("jsonl")).__name__ == "JsonlSink"


def test_auto_picks_the_highest_priority_estimator(use_plugin) -> None:
    @hookimpl
    def register_estimators(register):
        register(_Est("slow", 5))
        register(_Est("best", 500))

    use_plugin(_plugin(register_estimators=register_estimators))
    assert plugins.get_estimator("auto").name == "best"
    assert plugins.get_estimator("slow").priority == 5


def test_unknown_names_list_what_is_installed() -> None:
    with pytest.raises(PluginError, match=r"unknown executor 'nope'; installed: .*local"):
        plugins.get_executor("nope")


def test_material_model_with_highest_priority_wins(use_plugin) -> None:
    low = types.SimpleNamespace(name="unobtainium", source="table", priority=1)
    high = types.SimpleNamespace(name="unobtainium", source="dft", priority=9)

    @hookimpl(trylast=True)
    def register_material_models(register):
        register(high)
        register(low)

    use_plugin(_plugin(register_material_models=register_material_models))
    assert plugins.get_material_model("unobtainium") is high


def test_plugin_infos_name_hooks() -> None:
    infos = {i.name: i for i in plugins.plugin_infos()}
    assert infos["dmca_core.default_plugins.jsonl_sink"].hooks == ["register_telemetry_sinks"]
    assert infos["dmca_core.default_plugins.jsonl_sink"].builtin


# --- DMCA_LOAD_PLUGINS / DMCA_BLOCK_PLUGINS name checks ------------------------------------------


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Entry points as if ``causal_full`` and ``aes_gcm`` were installed; none is loaded (every
    test below selects them away), and the loader's once-only state is fresh."""
    from importlib.metadata import EntryPoint

    found = [
        EntryPoint("causal_full", "dmca_causal_full.plugin", plugins.GROUP),
        EntryPoint("aes_gcm", "dmca_aes_gcm.plugin", plugins.GROUP),
    ]
    monkeypatch.setattr(plugins, "entry_points", lambda group: list(found) if group == plugins.GROUP else [])
    monkeypatch.setattr(plugins, "_entrypoints_loaded", False)
    monkeypatch.setattr(plugins, "excluded", {}, raising=False)
    return found


def test_an_allowlist_name_that_matches_nothing_is_warned_about(fake_entry_points) -> None:
    with pytest.warns(RuntimeWarning) as record:
        plugins.load_entrypoints({"DMCA_LOAD_PLUGINS": "causal-full"})
    (w,) = record
    assert str(w.message) == (
        "dmca: DMCA_LOAD_PLUGINS names 'causal-full', which matches no installed dmca plugin; "
        "did you mean 'causal_full'? installed: aes_gcm, causal_full"
    )


def test_a_blocklist_name_that_matches_nothing_is_warned_about(fake_entry_points) -> None:
    with pytest.warns(
        RuntimeWarning, match=r"DMCA_BLOCK_PLUGINS names 'zzz', .*installed: aes_gcm, causal_full"
    ):
        plugins.load_entrypoints({"DMCA_LOAD_PLUGINS": "", "DMCA_BLOCK_PLUGINS": "zzz"})


def test_strict_mode_makes_an_unmatched_name_an_error(fake_entry_points) -> None:
    with pytest.raises(PluginError, match=r"DMCA_LOAD_PLUGINS names 'causal-full'"):
        plugins.load_entrypoints({"DMCA_LOAD_PLUGINS": "causal-full", "DMCA_STRICT_PLUGINS": "1"})


def test_matching_names_give_no_warning(fake_entry_points) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plugins.load_entrypoints({"DMCA_LOAD_PLUGINS": "", "DMCA_BLOCK_PLUGINS": "causal_full"})


def test_no_estimator_because_the_lists_left_it_out_says_so(fake_entry_points) -> None:
    with pytest.warns(RuntimeWarning):
        plugins.load_entrypoints({"DMCA_LOAD_PLUGINS": "causal-full"})
    with pytest.raises(PluginError) as info:
        plugins.get_estimator("auto")
    assert str(info.value) == (
        "no estimator available: installed plugins left out: aes_gcm (by DMCA_LOAD_PLUGINS), "
        "causal_full (by DMCA_LOAD_PLUGINS)"
    )
    with pytest.raises(
        PluginError, match=r"unknown estimator 'full'; .*causal_full \(by DMCA_LOAD_PLUGINS\)"
    ):
        plugins.get_estimator("full")


def test_no_estimator_and_nothing_left_out_says_to_install_one(fake_entry_points) -> None:
    with pytest.raises(PluginError, match=r"^no estimator installed: pip install plugins/causal_fallback$"):
        plugins.get_estimator("auto")


# --- the names users type ----------------------------------------------------------------------------


@pytest.fixture
def named_fallback():
    """The fallback plugin registered as its entry point names it (``causal_fallback``), as
    ``dmca`` loads it outside the tests."""
    import importlib

    mod = importlib.import_module("dmca_causal_fallback.plugin")
    plugins.setup()
    if plugins.pm.is_registered(mod):
        pytest.skip("the fallback plugin is registered already, under another name")
    plugins.pm.register(mod, name="causal_fallback")
    try:
        yield mod
    finally:
        plugins.pm.unregister(mod)


def test_a_plugins_name_given_as_estimator_points_at_its_estimator(named_fallback) -> None:
    with pytest.raises(PluginError) as info:
        plugins.get_estimator("causal_fallback")
    assert str(info.value).endswith("; 'causal_fallback' is a plugin, its estimator is 'fallback'")
    assert str(info.value).startswith("unknown estimator 'causal_fallback'; installed: ")
    assert "fallback" in str(info.value).split("installed: ")[1].split(";")[0].split(", ")
    assert plugins.get_estimator("fallback").name == "fallback"
    # a plugin that provides no estimator gets no such hint
    with pytest.raises(PluginError) as info:
        plugins.get_estimator("dmca_core.default_plugins.jsonl_sink")
    assert "is a plugin" not in str(info.value)


def test_plugin_infos_list_the_names_each_plugin_registers(named_fallback) -> None:
    infos = {i.name: i for i in plugins.plugin_infos()}
    assert infos["causal_fallback"].provides == {"estimators": ["fallback"]}
    assert infos["dmca_core.default_plugins.simulated_domains"].provides == {
        "domains": ["cosmology", "direct_lab"]
    }
    assert infos["dmca_core.default_plugins.local_executor"].provides == {"executors": ["local"]}
    assert infos["dmca_core.default_plugins.jsonl_sink"].provides == {"telemetry_sinks": ["jsonl"]}


def test_dmca_plugins_prints_the_names(named_fallback, capsys) -> None:
    import json

    from dmca_core.cli import main

    assert main(["plugins", "--all"]) == 0
    out = capsys.readouterr().out.splitlines()
    at = out.index(next(line for line in out if line.startswith("causal_fallback  (")))
    assert out[at + 1 : at + 3] == ["    hooks: register_estimators", "    provides: estimator fallback"]
    at = out.index(
        next(line for line in out if line.startswith("dmca_core.default_plugins.simulated_domains"))
    )
    assert out[at + 2] == "    provides: domains cosmology, direct_lab"
    assert main(["plugins", "--all", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)["plugins"]}
    assert listed["causal_fallback"]["provides"] == {"estimators": ["fallback"]}
    assert listed["causal_fallback"]["hooks"] == ["register_estimators"]  # the fields it had stay


@pytest.mark.aes
def test_both_keygen_lines_work_with_export(use_plugin, tmp_path, capsys) -> None:
    import subprocess

    import dmca_aes_gcm.plugin
    from dmca_aes_gcm.keys import load_keyring
    from dmca_core.cli import main

    use_plugin(dmca_aes_gcm.plugin)
    for argv, var, kid in (([], "SIDRCE_AES_KEY", None), (["--kid", "2024q3"], "SIDRCE_AES_KEYS", "2024q3")):
        assert main(["keygen", *argv]) == 0
        out = tmp_path / "keygen.txt"
        out.write_text(capsys.readouterr().out)
        # the README's idiom in a real shell: the first line is an assignment `export` accepts
        shell = subprocess.run(
            ["sh", "-c", f'export $(head -1 "{out}") && printenv {var}'],
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"]},
            check=False,
        )
        assert shell.returncode == 0, shell.stderr
        keyring = load_keyring({var: shell.stdout.strip()})
        assert keyring.primary is not None
        assert kid is None or keyring.primary.kid == kid
