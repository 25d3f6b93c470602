"""Loading third-party plugins: the settings setup() was given, ``-W error``, wrappers whose hook
looks another estimator up. Entry points are faked in-process, as in tests/test_plugins.py."""

from __future__ import annotations

import json
import os
import warnings

import pytest
from test_plugins import _module, _raising_domains  # a plugin as authors write it; a hook that raises

from dmca_core import hookimpl, plugins
from dmca_core.errors import PluginError


class _Est:
    def __init__(self, name: str, priority: int, inner: object = None) -> None:
        self.name, self.priority, self.inner = name, priority, inner

    def discover(self, table, alpha):
        raise NotImplementedError

    def estimate(self, table, treatment, outcome, adjustment, t0, t1):
        raise NotImplementedError


def _estimators(*names: str):
    @hookimpl
    def register_estimators(register):
        for name in names:
            register(_Est(name, 1))

    return register_estimators


# --- the settings given to setup() hold for the lookups after it ---------------------------------


def test_strict_mode_given_to_setup_holds_for_later_lookups(use_plugin, plugin_state) -> None:
    from dmca_core.default_plugins import local_executor

    plugin_state.delenv("DMCA_STRICT_PLUGINS", raising=False)
    plugins.setup({"DMCA_STRICT_PLUGINS": "1", "DMCA_NO_ENTRYPOINTS": "1"})
    use_plugin(_module("broken", register_domains=_raising_domains))
    local_executor.plugin_modules()  # calls setup() itself, as the getters do
    with pytest.raises(PluginError, match=r"^plugin 'broken': register_domains raised KeyError: 'oops'$"):
        plugins.get_domain("cosmology")
    # until the next explicit setup: the environment's (not strict) from here on
    plugins.setup(os.environ)
    with pytest.warns(RuntimeWarning, match="skipped plugin 'broken'"):
        assert plugins.get_domain("cosmology").name == "cosmology"


def test_strict_mode_set_after_a_plugin_was_skipped_raises_on_the_next_lookup(
    use_plugin, plugin_state
) -> None:
    plugin_state.delenv("DMCA_STRICT_PLUGINS", raising=False)
    plugins.setup({"DMCA_NO_ENTRYPOINTS": "1"})
    use_plugin(_module("broken", register_domains=_raising_domains))
    with pytest.warns(RuntimeWarning, match="skipped plugin 'broken'"):
        plugins.get_domain("cosmology")  # lenient: skipped, and the verdict kept
    plugins.setup({"DMCA_STRICT_PLUGINS": "1", "DMCA_NO_ENTRYPOINTS": "1"})
    with pytest.raises(PluginError, match=r"^plugin 'broken': register_domains raised KeyError: 'oops'$"):
        plugins.get_domain("cosmology")


def test_strict_mode_set_after_an_entry_point_was_skipped_raises_on_the_next_lookup(
    installed, plugin_state
) -> None:
    installed({"broken": _module("broken", register_domains=_raising_domains)})
    plugin_state.delenv("DMCA_NO_ENTRYPOINTS")
    plugin_state.delenv("DMCA_STRICT_PLUGINS", raising=False)
    with pytest.warns(RuntimeWarning, match="skipped plugin 'broken'"):
        plugins.setup({})  # lenient: the entry point is skipped as it loads, and unregistered
    assert plugins.pm.get_plugin("broken") is None
    plugins.setup({"DMCA_STRICT_PLUGINS": "1"})  # from the next lookup on
    with pytest.raises(PluginError, match=r"^plugin 'broken' \(dmca-broken 0.1\): register_domains raised"):
        plugins.get_domain("cosmology")


def test_no_entry_points_and_lists_given_to_setup_hold_for_later_lookups(installed, plugin_state) -> None:
    installed({"extra": _module("extra", register_estimators=_estimators("extra_est"))})
    plugin_state.delenv("DMCA_NO_ENTRYPOINTS")  # as outside the tests: the environment would load them
    plugins.setup({"DMCA_NO_ENTRYPOINTS": "1"})
    assert "extra_est" not in plugins.estimators()
    assert plugins.pm.get_plugin("extra") is None
    # a blocklist given to setup() keeps the plugin out of the lookups that follow, too
    plugins.setup({"DMCA_BLOCK_PLUGINS": "extra"})
    assert "extra_est" not in plugins.estimators()
    assert plugins.excluded == {"extra": "DMCA_BLOCK_PLUGINS"}


# --- python -W error: every plugin is still tried ---------------------------------------------------


def _dmca_warnings(record) -> list[str]:
    return [str(w.message) for w in record if str(w.message).startswith("dmca:")]


def test_warnings_as_errors_do_not_stop_the_loading_of_the_other_entry_points(installed, capsys) -> None:
    from dmca_core.cli import main

    installed(
        {
            "a_raiser": _module("a_raiser", register_domains=_raising_domains),
            "b_gone": None,
            "c_good": _module("c_good", register_estimators=_estimators("good_est")),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # the first warning raises (the unmatched name), but only once every entry point was tried
        with pytest.raises(RuntimeWarning, match=r"^dmca: DMCA_LOAD_PLUGINS names 'd_typo'"):
            plugins.load_entrypoints({"DMCA_LOAD_PLUGINS": "a_raiser,b_gone,c_good,d_typo"})
        # the good plugin loaded, both broken ones are listed
        assert plugins.get_estimator("good_est").name == "good_est"
        assert [(e.name, e.error.split(":")[0]) for e in plugins.load_errors] == [
            ("a_raiser", "register_domains raised KeyError"),
            ("b_gone", "ModuleNotFoundError"),
        ]
        assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in listing["plugins"]] == ["c_good"]
    assert [e["name"] for e in listing["errors"]] == ["a_raiser", "b_gone"]


def test_each_load_problem_is_warned_about_once_after_the_loading(installed) -> None:
    installed({"a_raiser": _module("a_raiser", register_domains=_raising_domains), "b_gone": None})
    installed({"c_good": _module("c_good", register_estimators=_estimators("good_est"))})
    seen: list[tuple[str, bool]] = []  # each warning, and whether the good plugin was loaded by then

    def show(message, category, filename, lineno, file=None, line=None):
        seen.append((str(message).split(";")[0], plugins.pm.get_plugin("c_good") is not None))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show  # catch_warnings puts the original back
        plugins.load_entrypoints({"DMCA_LOAD_PLUGINS": "a_raiser,b_gone,c_good,d_typo"})
    assert seen == [
        ("dmca: DMCA_LOAD_PLUGINS names 'd_typo', which matches no installed dmca plugin", True),
        (
            "dmca: skipped plugin 'a_raiser' (dmca-a_raiser 0.1): register_domains raised KeyError: 'oops'",
            True,
        ),
        (
            "dmca: skipped plugin 'b_gone' (dmca-b_gone 0.1): ModuleNotFoundError: import of dmca_b_gone_mod halted",
            True,
        ),
    ]


def test_warnings_as_errors_in_a_lookup_check_every_plugin_and_report_each_once(
    use_plugin, plugin_state
) -> None:
    use_plugin(_module("broken_a", register_domains=_raising_domains))
    use_plugin(_module("broken_b", register_domains=_raising_domains))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match="skipped plugin 'broken_"):
            plugins.domains()
        assert sorted(e.name for e in plugins.load_errors) == ["broken_a", "broken_b"]
        assert "cosmology" in plugins.domains()  # both are skipped from here on, without a warning
    assert sorted(e.name for e in plugins.load_errors) == ["broken_a", "broken_b"]


# --- a wrapper whose hook looks another estimator up ---------------------------------------------


def _wrapper(inner: str):
    @hookimpl
    def register_estimators(register):
        register(_Est("wrapped", 0, plugins.get_estimator(inner)))  # in the hook: at load time

    return register_estimators


def test_a_wrapper_looking_up_in_its_hook_works_when_it_loads_before_what_it_wraps(installed) -> None:
    # entry points load in name order: the wrapper's hook runs before the inner plugin would be
    # registered, were each entry point checked as it is registered
    installed(
        {
            "aa_wrapper": _module("aa_wrapper", register_estimators=_wrapper("inner")),
            "zz_inner": _module("zz_inner", register_estimators=_estimators("inner")),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plugins.load_entrypoints({}) == []
        assert plugins.get_estimator("wrapped").inner.name == "inner"
        assert plugins.skipped("aa_wrapper") is None


def test_strict_mode_names_the_broken_plugin_a_wrappers_lookup_ran_into(installed) -> None:
    # every entry point is registered before any is checked, so the wrapper's lookup meets the
    # broken plugin's verdict first: the error is that plugin's, not the wrapper's
    installed(
        {
            "aa_wrapper": _module("aa_wrapper", register_estimators=_wrapper("inner")),
            "mm_broken": _module("mm_broken", register_domains=_raising_domains),
            "zz_inner": _module("zz_inner", register_estimators=_estimators("inner")),
        }
    )
    with pytest.raises(PluginError) as err:
        plugins.load_entrypoints({"DMCA_STRICT_PLUGINS": "1"})
    assert str(err.value) == (
        "plugin 'mm_broken' (dmca-mm_broken 0.1): register_domains raised KeyError: 'oops'"
    )


def test_a_wrapper_whose_hook_looks_up_a_missing_estimator_is_told_to_look_up_when_called(
    installed,
) -> None:
    installed({"aa_wrapper": _module("aa_wrapper", register_estimators=_wrapper("nowhere"))})
    with pytest.warns(RuntimeWarning) as record:
        (err,) = plugins.load_entrypoints({})
    (line,) = _dmca_warnings(record)
    assert line.startswith(
        "dmca: skipped plugin 'aa_wrapper' (dmca-aa_wrapper 0.1): register_estimators raised PluginError: "
        "unknown estimator 'nowhere'"
    )
    assert line.endswith(
        "; look other plugins' objects up when they are called, not in the hook "
        "(docs/plugins.md, 'Wrapping another estimator')"
    )
    assert line == f"dmca: skipped plugin 'aa_wrapper' (dmca-aa_wrapper 0.1): {err.error}"


def test_dmca_plugins_lists_the_skipped_plugins_under_warnings_as_errors(
    installed, plugin_state, capsys
) -> None:
    from dmca_core.cli import main

    installed({"a_raiser": _module("a_raiser", register_domains=_raising_domains), "b_gone": None})
    installed({"c_good": _module("c_good", register_estimators=_estimators("good_est"))})
    plugin_state.delenv("DMCA_NO_ENTRYPOINTS")  # `dmca plugins` loads them itself, as outside the tests
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in listing["plugins"]] == ["c_good"]
    assert [(e["name"], e["distribution"]) for e in listing["errors"]] == [
        ("a_raiser", "dmca-a_raiser"),
        ("b_gone", "dmca-b_gone"),
    ]


def test_other_commands_stop_at_a_skipped_plugin_under_warnings_as_errors(
    installed, plugin_state, capsys
) -> None:
    from dmca_core.cli import main

    installed({"b_gone": None})
    plugin_state.delenv("DMCA_NO_ENTRYPOINTS")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match=r"^dmca: skipped plugin 'b_gone'"):
            main(["simulate", "cosmology", "--rows", "10"])
    assert capsys.readouterr().out == ""


class _Dom:
    name = "nufloor"

    def hypotheses(self):
        return ("H",)

    def variables(self, hypothesis):
        return ("a", "b")

    def load(self, hypothesis, rows, seed, params):
        raise NotImplementedError


@hookimpl
def _register_nufloor(register):
    register(_Dom())


def test_an_unknown_domain_gets_the_estimators_hints(installed, plugin_state) -> None:
    installed({"floor": _module("floor", register_domains=_register_nufloor)})
    plugin_state.delenv("DMCA_NO_ENTRYPOINTS")
    # the plugin's name where its domain's belongs
    plugins.setup({})
    with pytest.raises(
        PluginError, match=r"unknown domain 'floor'; .*'floor' is a plugin, its domain is 'nufloor'$"
    ):
        plugins.get_domain("floor")
    # a blocklist left it out: say so
    plugins.pm.unregister(name="floor")
    plugins._entrypoints_loaded = False
    plugins.setup({"DMCA_BLOCK_PLUGINS": "floor"})
    with pytest.raises(
        PluginError,
        match=r"^unknown domain 'nufloor'; available: .*; installed plugins left out: floor \(by DMCA_BLOCK_PLUGINS\)",
    ):
        plugins.get_domain("nufloor")
