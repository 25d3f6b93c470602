"""The plugin manager in-process: defaults can be overridden, names resolve, errors list choices."""

from __future__ import annotations

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
