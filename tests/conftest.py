"""Shared fixtures.

Entry-point loading is off in tests (``DMCA_NO_ENTRYPOINTS=1``): a test that needs a plugin
registers it in-process with ``use_plugin`` and it is unregistered afterwards. Tests that need an
optional plugin carry its marker (``full``, ``pyscf``, ``aes``, ``dask``); they are skipped when
the plugin's libraries are absent, unless ``DMCA_REQUIRE_PLUGINS`` names the marker (tox's
``full`` env does), in which case a missing library is a failure, not a skip.
"""

from __future__ import annotations

import importlib
import os
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

os.environ["DMCA_NO_ENTRYPOINTS"] = "1"
# a developer's shell may hold a telemetry key (README: `export $(dmca keygen | head -1)`), and
# SIDRCE refuses plaintext while one is set: tests that want a key set it themselves
for _var in ("SIDRCE_AES_KEY", "SIDRCE_AES_KEYS"):
    os.environ.pop(_var, None)

# marker -> modules that must import for the tests to run
_REQUIRES = {
    "full": ("dmca_causal_full", "causallearn", "dowhy"),
    "pyscf": ("dmca_pyscf_materials", "pyscf"),
    "aes": ("dmca_aes_gcm", "cryptography"),
    "dask": ("dmca_dask_executor", "distributed"),
}


def _missing(modules: tuple[str, ...]) -> str | None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            return f"{name} not installed ({exc})"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    required = {m.strip() for m in os.environ.get("DMCA_REQUIRE_PLUGINS", "").split(",") if m.strip()}
    status = {marker: _missing(mods) for marker, mods in _REQUIRES.items()}
    for marker in required:
        if marker in status and status[marker]:
            raise pytest.UsageError(f"DMCA_REQUIRE_PLUGINS names {marker!r} but {status[marker]}")
    for item in items:
        for marker, why in status.items():
            if why and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture
def use_plugin() -> Iterator[Callable[[ModuleType | object], object]]:
    """Register plugins in-process for one test; they are unregistered in ``finally``."""
    from dmca_core.plugins import pm, setup

    setup()
    added: list[object] = []

    def register(plugin: ModuleType | object) -> object:
        if pm.is_registered(plugin):
            return plugin
        pm.register(plugin)
        added.append(plugin)
        return plugin

    try:
        yield register
    finally:
        for plugin in added:
            pm.unregister(plugin)


@pytest.fixture
def plugin_state(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The plugin manager's bookkeeping (and the settings setup() keeps), restored after the test;
    the monkeypatch that restores it, for the test's own changes."""
    from dmca_core import plugins

    for attr, copy in (
        ("load_errors", []),
        ("_verdicts", dict(plugins._verdicts)),
        ("_plugin_dists", dict(plugins._plugin_dists)),
        ("_warned", set()),
        ("excluded", {}),
        ("_environ", plugins._environ),
    ):
        monkeypatch.setattr(plugins, attr, copy)
    return monkeypatch


@pytest.fixture
def installed(plugin_state: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, ModuleType | None]], None]]:
    """``installed({"ep_name": module, ...})`` makes each module an installed ``dmca`` entry point
    (distribution ``dmca-<ep_name>`` 0.1), not loaded yet (``None``: importing it raises
    ImportError); the plugins that load are unregistered afterwards."""
    from importlib.metadata import EntryPoint

    from dmca_core import plugins

    found: list[EntryPoint] = []

    def install(mods: dict[str, ModuleType | None]) -> None:
        for name, mod in mods.items():
            modname = f"dmca_{name}_mod"
            plugin_state.setitem(sys.modules, modname, mod)
            found.append(EntryPoint(name, modname, plugins.GROUP))

    plugin_state.setattr(plugins, "entry_points", lambda group: list(found))
    plugin_state.setattr(plugins, "_entrypoints_loaded", False)
    plugin_state.setattr(plugins, "_ep_dist", lambda ep: (f"dmca-{ep.name}", "0.1"))
    try:
        yield install
    finally:
        for ep in found:
            plugin = plugins.pm.get_plugin(ep.name)
            if plugin is not None:
                plugins.pm.unregister(plugin)


@pytest.fixture
def fallback(use_plugin):
    """The fallback estimator, registered for the test."""
    mod = importlib.import_module("dmca_causal_fallback.plugin")
    use_plugin(mod)
    from dmca_core.plugins import get_estimator

    return get_estimator("fallback")


@pytest.fixture
def hello(use_plugin, fallback):
    """The example plugin's domain (examples/dmca-hello) and the fallback estimator, in-process."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "dmca-hello"))
    try:
        import dmca_hello.plugin

        use_plugin(dmca_hello.plugin)
        yield
    finally:
        sys.path.pop(0)


def require_compiled(module: object, name: str) -> None:
    """Skip a test of a compiled module (``name``) that was not built here; under tox
    (``DMCA_REQUIRE_COMPILED=1``) fail instead, so a missing build never passes as a skip."""
    if module is None:
        if os.environ.get("DMCA_REQUIRE_COMPILED"):
            pytest.fail(f"{name} was not built (are gcc and Python's headers installed?)")
        pytest.skip(f"{name} not built here")


@pytest.fixture(params=["C", "msgspec"])
def plain_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each plain-record fast path in turn: the compiled line scanner, then msgspec alone (what
    reads a block the scanner gives up on, or everything where it was not built)."""
    from sidrce import collector

    if request.param == "C":
        require_compiled(collector.SCANNER, "sidrce._linescan")
    else:
        monkeypatch.setattr(collector, "SCANNER", None)
    return request.param


@pytest.fixture(params=["C", "msgspec"])
def envelope_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each line-envelope fast path in turn: the compiled scanner, then msgspec alone."""
    from dmca_aes_gcm import block

    if request.param == "C":
        require_compiled(block._envscan, "dmca_aes_gcm._envscan")
    else:
        monkeypatch.setattr(block, "_envscan", None)
    return request.param


def mutated(text: bytes, rng: random.Random, alphabet: bytes, times: int) -> bytes:
    """``text`` with ``times`` random one-byte edits (replace, insert or delete, from
    ``alphabet``), for tests that a fast reader never takes what the exact one refuses."""
    out = bytearray(text)
    for _ in range(times):
        at = rng.randrange(len(out))
        op = rng.randrange(3)
        if op == 0:
            out[at] = rng.choice(alphabet)
        elif op == 1:
            out.insert(at, rng.choice(alphabet))
        else:
            del out[at]
    return bytes(out)
