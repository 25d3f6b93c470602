"""The plugin manager in-process: defaults can be overridden, names resolve, errors list choices."""

from __future__ import annotations

import contextlib
import json
import os
import types
import warnings
from pathlib import Path

import pytest

from dmca_core import hookimpl, plugins
from dmca_core.errors import PluginError


class _Est:
    def __init__(self, name: str, priority: int) -> None:
        self.name, self.priority = name, priority

    def discover(self, table, alpha):
        raise NotImplementedError

    def estimate(self, table, treatment, outcome, adjustment, t0, t1):
        raise NotImplementedError


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
    low = types.SimpleNamespace(name="unobtainium", source="table", priority=1, form_factor=lambda: None)
    high = types.SimpleNamespace(name="unobtainium", source="dft", priority=9, form_factor=lambda: None)

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


# --- badly written third-party plugins -----------------------------------------------------------------


def _module(name: str, **hooks: object) -> types.ModuleType:
    """A plugin module as an author writes it (in-process plugins are named after their module)."""
    mod = types.ModuleType(name)
    for key, value in hooks.items():
        setattr(mod, key, value)
    return mod


@hookimpl
def _raising_domains(register):
    raise KeyError("oops")


@hookimpl
def _an_estimator(register):
    register(_Est("brokens_own", 1))


def _dmca_warnings(record) -> list[str]:
    return [str(w.message) for w in record if str(w.message).startswith("dmca:")]


def test_a_hook_that_raises_skips_its_plugin_once_and_the_others_go_on(use_plugin, plugin_state) -> None:
    plugin_state.setitem(plugins._plugin_dists, "broken", ("dmca-broken", "0.1"))
    use_plugin(_module("broken", register_domains=_raising_domains, register_estimators=_an_estimator))
    with pytest.warns(RuntimeWarning) as record:
        assert {"cosmology", "direct_lab", "csv"} <= set(plugins.domains())
        assert "brokens_own" not in plugins.estimators()  # nothing of a skipped plugin is used
        plugins.get_domain("cosmology")
    assert _dmca_warnings(record) == [
        "dmca: skipped plugin 'broken' (dmca-broken 0.1): register_domains raised KeyError: 'oops'"
    ]
    assert [(e.name, e.error) for e in plugins.load_errors] == [
        ("broken", "register_domains raised KeyError: 'oops'")
    ]
    assert "broken" not in {i.name for i in plugins.plugin_infos()}
    with pytest.raises(PluginError) as info:  # what it would have provided points at it
        plugins.get_estimator("brokens_own")
    assert str(info.value).endswith("; skipped plugins (see `dmca plugins`): broken")


def test_dmca_plugins_lists_a_plugin_whose_hook_raises_under_its_errors(
    use_plugin, plugin_state, capsys
) -> None:
    import json

    from dmca_core.cli import main

    use_plugin(_module("broken", register_domains=_raising_domains))
    with pytest.warns(RuntimeWarning, match="skipped plugin 'broken'"):  # once, as for a failed import
        assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "broken" not in {p["name"] for p in listing["plugins"]}
    assert listing["errors"] == [
        {
            "name": "broken",
            "distribution": "?",
            "version": "?",
            "error": "register_domains raised KeyError: 'oops'",
        }
    ]


def test_a_skipped_plugin_is_forgotten_once_unregistered(plugin_state) -> None:
    plugins.setup()
    mod = _module("broken", register_domains=_raising_domains)
    plugins.pm.register(mod)
    try:
        with pytest.warns(RuntimeWarning, match="skipped plugin 'broken'"):
            plugins.domains()
        assert [e.name for e in plugins.load_errors] == ["broken"]
    finally:
        plugins.pm.unregister(mod)
    plugins.domains()
    assert plugins.load_errors == []


def test_strict_mode_makes_a_raising_hook_one_line_and_honours_the_traceback_switch(
    use_plugin, plugin_state, capsys
) -> None:
    plugin_state.setitem(plugins._plugin_dists, "broken", ("dmca-broken", "0.1"))
    use_plugin(_module("broken", register_domains=_raising_domains))
    plugin_state.setenv("DMCA_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError) as info:
        plugins.domains()
    assert str(info.value) == "plugin 'broken' (dmca-broken 0.1): register_domains raised KeyError: 'oops'"
    assert "Traceback" not in capsys.readouterr().err
    plugin_state.setenv("DMCA_PLUGIN_TRACEBACK", "1")
    with pytest.raises(PluginError):
        plugins.domains()
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "_raising_domains" in err


def test_a_built_in_plugin_that_raises_is_not_skipped(plugin_state) -> None:
    plugins.setup()
    mod = _module("dmca_core.not_really_default", register_domains=_raising_domains)
    plugins.pm.register(mod, name="dmca_core.not_really_default")
    try:
        with pytest.raises(KeyError, match="oops"):
            plugins.domains()
    finally:
        plugins.pm.unregister(mod)


class _NoPriority:
    name = "shrink"

    def discover(self, table, alpha):
        raise NotImplementedError

    def estimate(self, table, treatment, outcome, adjustment, t0, t1):
        raise NotImplementedError


class _WordPriority(_NoPriority):
    priority = "high"


@pytest.mark.parametrize(
    ("hook", "obj", "problem"),
    [
        ("register_domains", 3, "registered a domain without 'name', 'hypotheses', 'variables', 'load' (3)"),
        ("register_estimators", _NoPriority(), "registered an estimator without 'priority' ('shrink')"),
        (
            "register_estimators",
            _WordPriority(),
            "registered an estimator 'shrink' whose priority is 'high', not a number",
        ),
        (
            "register_telemetry_sinks",
            types.SimpleNamespace(name="s3", open="s3://bucket"),
            "registered a telemetry sink 's3' whose 'open' is not callable",
        ),
        (
            "register_executors",
            types.SimpleNamespace(name=5, map=lambda *a, **k: []),
            "registered an executor whose name is 5, not a non-empty string",
        ),
    ],
)
def test_a_registered_object_that_misses_its_protocol_skips_the_plugin(
    use_plugin, plugin_state, hook: str, obj: object, problem: str
) -> None:
    @hookimpl(specname=hook)
    def bad(register):
        register(obj)

    use_plugin(_module("shrinkest", bad=bad))
    with pytest.warns(RuntimeWarning) as record:
        assert plugins.get_domain("cosmology").name == "cosmology"  # every kind: the others go on
        assert "local" in plugins.executors()
    assert _dmca_warnings(record) == [f"dmca: skipped plugin 'shrinkest': {problem}"]
    plugin_state.setattr(plugins, "_verdicts", {})
    plugin_state.setenv("DMCA_STRICT_PLUGINS", "1")
    with pytest.raises(
        PluginError, match=f"^plugin 'shrinkest': {problem}$".replace("(", r"\(").replace(")", r"\)")
    ):
        plugins.domains()


def test_a_hook_that_swallows_the_rejection_is_still_skipped(use_plugin, plugin_state) -> None:
    @hookimpl
    def register_domains(register):
        with contextlib.suppress(Exception):  # what a careless plugin does
            register(3)

    use_plugin(_module("careless", register_domains=register_domains))
    with pytest.warns(RuntimeWarning, match="skipped plugin 'careless': registered a domain without"):
        plugins.domains()


def test_the_required_members_are_those_of_the_protocols() -> None:
    import re

    import hookdoc

    for hook, proto in hookdoc.HOOK_OBJECTS.items():
        _, fields, methods = plugins.REQUIRED[hook]
        members = {re.sub(r"\(.*$", "", m) for m in hookdoc.object_members(proto)}
        assert set(fields) | set(methods) == members, hook


def test_misspelt_hooks_and_hookless_modules_are_reported(use_plugin, plugin_state) -> None:
    @hookimpl
    def register_domain(register):  # the spec is register_domains
        pass

    use_plugin(_module("typo", register_domain=register_domain))
    use_plugin(_module("empty"))
    with pytest.warns(RuntimeWarning) as record:
        plugins.estimators()
    assert sorted(_dmca_warnings(record)) == [
        "dmca: skipped plugin 'empty': implements no dmca hook (see docs/plugins.md for their names)",
        "dmca: skipped plugin 'typo': implements unknown hook 'register_domain'; did you mean 'register_domains'?",
    ]
    plugin_state.setattr(plugins, "_verdicts", {})
    plugin_state.setenv("DMCA_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"^plugin '(typo|empty)': implements"):
        plugins.estimators()


# --- entry points, faked in-process -------------------------------------------------------------


def test_an_entry_point_whose_hook_raises_is_unregistered_and_listed(installed) -> None:
    installed({"broken": _module("dmca_broken_hook", register_domains=_raising_domains)})
    with pytest.warns(RuntimeWarning) as record:
        errors = plugins.load_entrypoints({})
    assert _dmca_warnings(record) == [
        "dmca: skipped plugin 'broken' (dmca-broken 0.1): register_domains raised KeyError: 'oops'"
    ]
    assert errors == plugins.load_errors and [e.error for e in errors] == [
        "register_domains raised KeyError: 'oops'"
    ]
    assert plugins.pm.get_plugin("broken") is None
    assert "cosmology" in plugins.domains()


def test_an_argument_name_mismatch_is_one_line(installed) -> None:
    @hookimpl
    def register_domains(registr):
        pass

    installed({"argy": _module("dmca_argy", register_domains=register_domains)})
    with pytest.warns(RuntimeWarning) as record:
        (err,) = plugins.load_entrypoints({})
    (line,) = _dmca_warnings(record)
    assert "\n" not in line and "\n" not in err.error
    assert line.startswith("dmca: skipped plugin 'argy' (dmca-argy 0.1): PluginValidationError: ")
    assert "register_domains(registr)" in line and "can not be found in the hookspec" in line
    # nothing of it is left registered: a lookup neither warns again nor lists it twice
    assert plugins.pm.get_plugin("argy") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "cosmology" in plugins.domains()
    assert [e.name for e in plugins.load_errors] == ["argy"]
    with pytest.raises(PluginError) as info:
        fresh = {"DMCA_STRICT_PLUGINS": "1"}
        plugins._entrypoints_loaded = False
        plugins.load_entrypoints(fresh)
    assert "\n" not in str(info.value) and str(info.value).startswith(
        "plugin 'argy' (dmca-argy 0.1) failed to load:"
    )


def test_a_plugin_pluggy_left_half_registered_is_removed(installed) -> None:
    # pluggy before 1.7 keeps a plugin whose hook failed validation under its name; a lookup then
    # found a hookless plugin and warned about it a second time (and `dmca plugins` listed it twice)
    from pluggy import PluginValidationError

    real = plugins.pm.register

    def register_then_fail(plugin, name=None):
        real(plugin, name=name)
        raise PluginValidationError(plugin, "hookimpl definition: as pluggy 1.6 leaves it")

    mod = _module("dmca_half", register_estimators=_an_estimator)
    installed({"half": mod})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plugins.pm, "register", register_then_fail)
        with pytest.warns(RuntimeWarning):
            (err,) = plugins.load_entrypoints({})
    assert err.name == "half" and plugins.pm.get_plugin("half") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning about it
        assert "cosmology" in plugins.domains()
    assert [e.name for e in plugins.load_errors] == ["half"]


def test_a_misspelt_entry_point_hook_is_an_error_in_strict_mode(installed, capsys) -> None:
    @hookimpl
    def register_domain(register):
        pass

    installed({"typo": _module("dmca_typo", register_domain=register_domain)})
    with pytest.raises(PluginError) as info:
        plugins.load_entrypoints({"DMCA_STRICT_PLUGINS": "1"})
    assert str(info.value) == (
        "plugin 'typo' (dmca-typo 0.1): implements unknown hook 'register_domain'; did you mean 'register_domains'?"
    )


def test_strict_mode_prints_the_traceback_of_a_failed_import_when_asked(installed, capsys) -> None:
    installed({"gone": None})  # importing it raises ImportError
    with pytest.raises(
        PluginError, match=r"^plugin 'gone' \(dmca-gone 0.1\) failed to load: ModuleNotFoundError"
    ):
        plugins.load_entrypoints({"DMCA_STRICT_PLUGINS": "1", "DMCA_PLUGIN_TRACEBACK": "1"})
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_a_plugin_registered_in_process_and_installed_is_loaded_once_quietly(installed) -> None:
    import warnings

    mod = _module("dmca_mine", register_estimators=_an_estimator)
    installed({"mine": mod})
    plugins.pm.register(mod)  # as docs/plugins.md's "Testing a plugin" does
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert plugins.load_entrypoints({}) == []
        assert plugins.get_estimator("brokens_own").name == "brokens_own"
    finally:
        plugins.pm.unregister(mod)


def _domain(name: str) -> types.SimpleNamespace:
    return types.SimpleNamespace(name=name, hypotheses=tuple, variables=lambda h: (), load=lambda *a: None)


def test_two_plugins_providing_one_name_are_warned_about_once(installed) -> None:
    a, b = _domain("nufloor"), _domain("nufloor")

    @hookimpl
    def from_a(register):
        register(a)

    @hookimpl
    def from_b(register):
        register(b)

    from_a.__name__ = from_b.__name__ = "register_domains"
    installed({"floor_b": _module("dmca_floor_b", register_domains=from_b)})
    installed({"floor_a": _module("dmca_floor_a", register_domains=from_a)})
    plugins.load_entrypoints({})
    with pytest.warns(RuntimeWarning) as record:
        assert plugins.get_domain("nufloor") is b
        plugins.domains()
    assert _dmca_warnings(record) == [
        "dmca: plugins 'floor_b' (dmca-floor_b 0.1) and 'floor_a' (dmca-floor_a 0.1) both provide domain "
        "'nufloor'; 'floor_b' is used (pluggy calls the plugin registered later first; entry points "
        "register in name order); DMCA_BLOCK_PLUGINS=floor_b to use 'floor_a'"
    ]
    doc = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert _dmca_warnings(record)[0] in doc.splitlines()  # the example docs/plugins.md shows
    infos = {i.name: i for i in plugins.plugin_infos()}
    assert infos["floor_a"].shadowed == {"domains": {"nufloor": "floor_b"}}
    assert infos["floor_b"].shadowed == {}


def test_overriding_a_built_in_default_is_quiet_but_marked(use_plugin, plugin_state, capsys) -> None:
    import warnings

    mine = types.SimpleNamespace(name="jsonl", open=lambda path, *, fsync: None)

    @hookimpl
    def register_telemetry_sinks(register):
        register(mine)

    use_plugin(_module("mysink", register_telemetry_sinks=register_telemetry_sinks))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plugins.get_sink("jsonl") is mine
        infos = {i.name: i for i in plugins.plugin_infos()}
    assert infos["dmca_core.default_plugins.jsonl_sink"].shadowed == {"telemetry_sinks": {"jsonl": "mysink"}}
    assert infos["mysink"].shadowed == {}
    # `dmca plugins --all` says which one is used, in text and JSON
    from dmca_core.cli import main

    assert main(["plugins", "--all"]) == 0
    text = capsys.readouterr().out.split("dmca_core.default_plugins.jsonl_sink", 1)[1]
    assert text.splitlines()[3] == "    shadowed: telemetry sink jsonl (the one of mysink is used)"
    assert main(["plugins", "--all", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)["plugins"]}
    assert listed["dmca_core.default_plugins.jsonl_sink"]["shadowed"] == {
        "telemetry_sinks": {"jsonl": "mysink"}
    }
    assert "shadowed" not in listed["mysink"]


# --- the names users type: hints --------------------------------------------------------------------


def test_the_plugin_hint_survives_a_blocked_plugin(named_fallback, plugin_state) -> None:
    plugin_state.setattr(plugins, "excluded", {"aes_gcm": "DMCA_BLOCK_PLUGINS"})
    with pytest.raises(PluginError) as info:
        plugins.get_estimator("causal_fallback")
    assert str(info.value).startswith("unknown estimator 'causal_fallback'; available: ")
    assert "; installed plugins left out: aes_gcm (by DMCA_BLOCK_PLUGINS); " in str(info.value)
    assert str(info.value).endswith("; 'causal_fallback' is a plugin, its estimator is 'fallback'")


def test_unknown_names_suggest_the_nearest(use_plugin) -> None:
    @hookimpl
    def register_estimators(register):
        register(_Est("logged", 1))

    use_plugin(_plugin(register_estimators=register_estimators))
    cases = [
        (plugins.get_estimator, "logd", "logged"),
        (plugins.get_domain, "cosmolgy", "cosmology"),
        (plugins.get_sink, "jsnl", "jsonl"),
        (plugins.get_executor, "locl", "local"),
    ]
    for get, typed, meant in cases:
        with pytest.raises(PluginError) as info:
            get(typed)
        assert str(info.value).endswith(f"; did you mean {meant!r}?"), str(info.value)
        assert "; installed: " in str(info.value)
    with pytest.raises(PluginError) as info:
        plugins.get_executor("zzzzzz")
    assert "did you mean" not in str(info.value)


# --- types ------------------------------------------------------------------------------------------


def test_columns_of_unequal_length_are_a_data_error_naming_them() -> None:
    from dmca_core.errors import DataError
    from dmca_core.types import Table

    with pytest.raises(DataError, match=r"^columns of unequal length \(rows per column: X 3, Y 2\)$"):
        Table.from_columns({"X": [1.0, 2.0, 3.0], "Y": [1.0, 2.0]})
    with pytest.raises(DataError, match=r"^column 'Z': not numeric"):
        Table.from_columns({"Z": ["a", "b"]})
    assert Table.from_columns({"X": [1, 2], "Y": (3, 4)}).column("Y").tolist() == [3.0, 4.0]


def test_a_hook_that_looks_up_another_estimator_sees_the_others_not_itself(use_plugin, fallback) -> None:
    import warnings

    class Wrapper(_Est):
        def __init__(self, inner) -> None:
            super().__init__("wrapped", 0)
            self.inner = inner

    @hookimpl
    def register_estimators(register):
        register(Wrapper(plugins.get_estimator("fallback")))  # runs the hooks, this one included

    use_plugin(_module("wrapping", register_estimators=register_estimators))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert type(plugins.get_estimator("wrapped").inner) is type(fallback)
        assert plugins.skipped("wrapping") is None


def test_a_plugin_whose_hook_runs_in_one_thread_is_seen_by_another(use_plugin) -> None:
    # the recursion guard is per thread: a Dask worker runs steps in threads, and one thread's
    # lookup must not lose a plugin whose hook another thread happens to be inside
    import threading

    inside, release = threading.Event(), threading.Event()
    block = [False]

    @hookimpl
    def register_estimators(register):
        if block[0] and threading.current_thread() is not threading.main_thread():
            inside.set()
            release.wait(5)
        register(_Est("threaded", 1))

    use_plugin(_module("threaded_plugin", register_estimators=register_estimators))
    assert "threaded" in plugins.estimators()  # checked once, in this thread
    block[0] = True
    other = threading.Thread(target=plugins.estimators)
    other.start()
    try:
        assert inside.wait(5)
        assert "threaded" in plugins.estimators()
    finally:
        release.set()
        other.join()
