"""The one module that owns DMCA's plugin manager.

Built-in plugins (``dmca_core.default_plugins``) are registered first; third-party plugins come
from entry points of group ``dmca``, each imported and registered on its own so that one broken
package does not take the CLI down, then checked. A third-party plugin is skipped, with a warning naming it, when it fails to import,
implements a hook DMCA does not define (a misspelt name) or none at all, when one of its hooks
raises, or when it registers an object that lacks what the protocol of dmca_core/interfaces.py
requires (the checks are in ``dmca_core.plugin_checks``). Built-in plugins are never skipped: their
errors are DMCA's bugs and propagate. Environment (or the mapping given to :func:`setup`):

- ``DMCA_LOAD_PLUGINS``: comma-separated allowlist of entry-point names (set but empty: none).
- ``DMCA_BLOCK_PLUGINS``: comma-separated blocklist.
- ``DMCA_STRICT_PLUGINS=1``: a plugin that would be skipped, or a name in either list that matches
  no installed entry point, is a hard error (for plugin authors); otherwise both are warnings.
- ``DMCA_NO_ENTRYPOINTS=1``: skip entry points entirely (the test suite sets this).
- ``DMCA_PLUGIN_TRACEBACK=1``: print the full traceback of a plugin that fails (strict or not).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError
from .plugin_checks import (
    REQUIRED,
    LoadError,
    builtin,
    call,
    invalid,
    near,
    one_line,
    prune,
    report,
    shadowed,
    skipped,
    strict,
    unmatched_selection,
    verdict,
    warn,
    warnings_after,
    winners,
)

__all__ = [  # what other modules use (REQUIRED, LoadError, invalid, skipped, shadowed: from plugin_checks)
    "DEFAULT_PLUGINS",
    "GROUP",
    "REQUIRED",
    "LoadError",
    "PluginInfo",
    "commands",
    "domains",
    "encryptors",
    "estimators",
    "executors",
    "get_domain",
    "get_encryptor",
    "get_estimator",
    "get_executor",
    "get_material_model",
    "get_sink",
    "hook_names",
    "invalid",
    "load_entrypoints",
    "load_errors",
    "material_models",
    "plugin_infos",
    "pm",
    "provided_names",
    "settings",
    "setup",
    "shadowed",
    "skipped",
    "telemetry_sinks",
]

GROUP = "dmca"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "dmca_core.default_plugins.jsonl_sink",
    "dmca_core.default_plugins.local_executor",
    "dmca_core.default_plugins.csv_domain",
    "dmca_core.default_plugins.simulated_domains",
    "dmca_core.default_plugins.tabulated_materials",
)

pm = pluggy.PluginManager(GROUP)
pm.add_hookspecs(hookspecs)
load_errors: list[LoadError] = []
_entrypoints_loaded = False
_plugin_dists: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
# entry points installed but not loaded because of DMCA_LOAD_PLUGINS / DMCA_BLOCK_PLUGINS, by the
# variable that left each out: "no estimator installed" would be misleading when one was excluded
excluded: dict[str, str] = {}
# the mapping setup() was last given explicitly (None: read os.environ each time). The getters call
# setup() without one; that must not trade the caller's settings for the process environment's
_environ: Mapping[str, str] | None = None
# plugin name -> (the plugin object checked, its LoadError or None): each plugin is checked once
_verdicts: dict[str, tuple[object, LoadError | None]] = {}
_warned: set[tuple[str, ...]] = set()  # name clashes already warned about


def settings() -> Mapping[str, str]:
    """Where the ``DMCA_*`` plugin settings are read: the mapping :func:`setup` was last given, or
    ``os.environ``."""
    return os.environ if _environ is None else _environ


def _env_list(environ: Mapping[str, str], key: str) -> set[str] | None:
    if key not in environ:
        return None
    return {x.strip() for x in environ[key].split(",") if x.strip()}


def _ep_dist(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ("?", "?")
    return (dist.metadata["Name"] or "?", dist.version or "?")


def _load_default_plugins() -> None:
    for modname in DEFAULT_PLUGINS:
        if pm.get_plugin(modname) is None:
            mod = importlib.import_module(modname)
            pm.register(mod, name=modname)
            _plugin_dists[modname] = ("dmca", _core_version())


def _core_version() -> str:
    from . import __version__

    return __version__


def load_entrypoints(environ: Mapping[str, str] | None = None) -> list[LoadError]:
    """Load every selected entry point of group ``dmca`` that is not loaded yet, and check it.

    ``environ``: the settings for this loading (default :func:`settings`). Every entry point is
    registered before any is checked, so that a hook looking another plugin up (a wrapper's
    ``get_estimator``) finds it whatever the names' order; the warnings come after all are checked
    (under ``python -W error`` the first then raises, with every good plugin loaded). Returns the
    load errors of this call. In strict mode the first error raises :class:`PluginError`.
    """
    global _entrypoints_loaded, _environ
    environ = settings() if environ is None else environ
    if _entrypoints_loaded:
        return []
    _entrypoints_loaded = True
    allow = _env_list(environ, "DMCA_LOAD_PLUGINS")
    block = _env_list(environ, "DMCA_BLOCK_PLUGINS") or set()
    found = sorted(entry_points(group=GROUP), key=lambda e: e.name)
    errors: list[LoadError] = []
    kept, _environ = _environ, environ  # the checks below read the settings of this loading
    try:
        with warnings_after():
            for message in unmatched_selection((ep.name for ep in found), allow, block):
                if strict(environ):
                    raise PluginError(message)
                warn(message)
            # all registered first, then checked in name order: a hook that looks another plugin
            # up (a wrapper's get_estimator) finds it even when that one's name sorts later
            loaded: list[tuple[EntryPoint, object, LoadError | None, Exception | None]] = []
            for ep in found:
                if (allow is not None and ep.name not in allow) or ep.name in block:
                    excluded[ep.name] = "DMCA_BLOCK_PLUGINS" if ep.name in block else "DMCA_LOAD_PLUGINS"
                elif pm.get_plugin(ep.name) is None:
                    loaded.append(_register(ep))
            for ep, plugin, err, exc in loaded:
                if err is not None:
                    report(err, environ, exc, loading=True)
                elif plugin is not None:
                    err = _check(ep.name, plugin)
                if err is not None:
                    errors.append(err)
    finally:
        _environ = kept
    return errors


def _register(ep: EntryPoint) -> tuple[EntryPoint, object, LoadError | None, Exception | None]:
    """Import and register one entry point: (it, the plugin or None, its load error, the exception)."""
    dist, version = _ep_dist(ep)
    plugin = None
    try:
        plugin = ep.load()
        if pm.is_registered(plugin):  # registered in-process already (a plugin's own tests)
            return ep, None, None, None
        pm.register(plugin, name=ep.name)
    except Exception as exc:  # a third-party plugin may fail in any way; report it and go on
        if plugin is not None and pm.get_plugin(ep.name) is plugin:
            pm.unregister(plugin)  # pluggy keeps a plugin whose hook failed validation
        return ep, None, LoadError(ep.name, dist, version, f"{type(exc).__name__}: {one_line(exc)}"), exc
    _plugin_dists[ep.name] = (dist, version)
    return ep, plugin, None, None


def _check(name: str, plugin: object) -> LoadError | None:
    """Check a registered entry point; unregister it when it is skipped (none of its hooks runs,
    `dmca plugins` lists its error) or when strict mode raises."""
    try:
        err = verdict(name, plugin)  # may be known already: another plugin's hook looked it up
    except BaseException:
        pm.unregister(plugin)
        raise
    if err is not None:
        pm.unregister(plugin)
        _verdicts.pop(name, None)  # unregistered: its load error stays listed (prune would drop it)
    return err


def setup(environ: Mapping[str, str] | None = None) -> pluggy.PluginManager:
    """Register the built-in plugins and (unless ``DMCA_NO_ENTRYPOINTS`` is set) the entry points.

    ``environ``: where the ``DMCA_*`` settings are read instead of ``os.environ``. It is kept for
    the calls that follow without one (every getter calls ``setup()``), until the next call with one:
    ``setup(os.environ)`` goes back to the process environment.
    """
    global _environ
    if environ is not None:
        _environ = environ
    _load_default_plugins()
    if settings().get("DMCA_NO_ENTRYPOINTS", "") in ("", "0"):
        load_entrypoints(settings())
    if environ is None and load_errors and strict(settings()):
        # a lookup (the getters call setup()) after strict mode was set: a plugin skipped before raises
        report(load_errors[0], settings(), None, loading=False)
    return pm


# --- the getters --------------------------------------------------------------------------------------


def estimators() -> dict[str, Any]:
    setup()
    return winners("register_estimators")[0]


def domains() -> dict[str, Any]:
    setup()
    return winners("register_domains")[0]


def telemetry_sinks() -> dict[str, Any]:
    setup()
    return winners("register_telemetry_sinks")[0]


def encryptors() -> dict[str, Any]:
    setup()
    return winners("register_encryptors")[0]


def encryption_key_set(environ: Mapping[str, str]) -> bool:
    """Whether an installed encryptor has a key in ``environ`` (its optional ``has_key``): the
    telemetry is then meant to be sealed (dmca warns about plaintext, SIDRCE refuses it)."""
    return any(
        callable(getattr(enc, "has_key", None)) and bool(enc.has_key(environ))
        for enc in encryptors().values()
    )


def executors() -> dict[str, Any]:
    setup()
    return winners("register_executors")[0]


def commands() -> dict[str, Any]:
    setup()
    return winners("register_commands")[0]


def material_models() -> dict[str, Any]:
    """The best model per material: highest ``priority``, then first registered."""
    setup()
    return winners("register_material_models")[0]


X = TypeVar("X")


def _skipped_note() -> str:
    # the name asked for may be one a skipped plugin would have provided
    names = sorted({e.name for e in load_errors})
    return f"; skipped plugins (see `dmca plugins`): {', '.join(names)}" if names else ""


def _pick(kind: str, registry: Mapping[str, X], name: str, hook: str) -> X:
    try:
        return registry[name]
    except KeyError:
        raise _unknown(kind, hook, registry, name) from None


def _left_out() -> str:
    """The installed plugins the allow/block lists left out, each with the list that did it."""
    return ", ".join(f"{n} (by {why})" for n, why in sorted(excluded.items()))


def _unknown(kind: str, hook: str, registry: Mapping[str, Any], name: str) -> PluginError:
    """The error for a name no plugin registers with ``hook``: the names there are, the installed
    plugins the allow/block lists left out, the skipped ones, and a plugin's own name given where
    one of its objects' names belongs (`dmca plugins` lists `causal_full`; its estimator is `full`)."""
    left_out = _left_out()
    valid = ", ".join(sorted(registry)) or "none"
    message = f"unknown {kind} {name!r}; {'available' if left_out else 'installed'}: {valid}"
    if left_out:
        message += f"; installed plugins left out: {left_out}"
    message += _skipped_note()
    plugin = _plugin_named(name)
    given = provided_names(plugin).get(hook.removeprefix("register_")) if plugin is not None else None
    if given:
        its = f"{kind} is" if len(given) == 1 else f"{kind}s are"
        return PluginError(f"{message}; {name!r} is a plugin, its {its} {', '.join(map(repr, given))}")
    return PluginError(message + near(name, registry))


def get_estimator(name: str = "auto") -> Any:
    """The estimator called ``name``; ``auto`` = the installed one with the highest priority.

    Public: a plugin may wrap another estimator (``get_estimator("fallback")``) and delegate to it.
    """
    registry = estimators()
    if name == "auto" and registry:
        return max(registry.values(), key=lambda e: e.priority)
    if name in registry:
        return registry[name]
    if name == "auto":
        left_out = _left_out()
        if left_out:
            raise PluginError(f"no estimator available: installed plugins left out: {left_out}")
        raise PluginError("no estimator installed: pip install plugins/causal_fallback" + _skipped_note())
    raise _unknown("estimator", "register_estimators", registry, name)


def _plugin_named(name: str) -> object | None:
    """The usable plugin registered as ``name`` (its entry point's name), or from the distribution
    of that name (``dmca-causal-full``, ``dmca_causal_full``)."""
    plugin = pm.get_plugin(name)
    if plugin is None:
        key = name.lower().replace("-", "_")
        for plugin_name, (dist, _) in _plugin_dists.items():
            if dist.lower().replace("-", "_") == key and not builtin(plugin_name):
                name, plugin = plugin_name, pm.get_plugin(plugin_name)
                break
    if plugin is None or skipped(name) is not None:
        return None
    return plugin


def hook_names() -> list[str]:
    """The hooks a plugin may implement (those with a spec in ``hookspecs``)."""
    return sorted(name for name, caller in vars(pm.hook).items() if getattr(caller, "spec", None) is not None)


def get_domain(name: str) -> Any:
    return _pick("domain", domains(), name, "register_domains")


def get_executor(name: str) -> Any:
    return _pick("executor", executors(), name, "register_executors")


def get_sink(name: str) -> Any:
    return _pick("telemetry sink", telemetry_sinks(), name, "register_telemetry_sinks")


def get_encryptor(name: str | None = None) -> Any:
    registry = encryptors()
    if name is None:
        if not registry:
            raise PluginError(
                "telemetry encryption is on but no encryptor plugin is installed: "
                "pip install plugins/aes_gcm (or set telemetry.encryption: none)"
            )
        return next(iter(registry.values()))
    return _pick("encryptor", registry, name, "register_encryptors")


def get_material_model(material: str) -> Any:
    return _pick("material model", material_models(), material, "register_material_models")


def provided_names(plugin: object | None) -> dict[str, list[str]]:
    """The names ``plugin`` registers, by kind (the hook's name without ``register_``):
    ``{"estimators": ["full"]}``, ``{"commands": ["keygen"], "encryptors": ["aes-gcm"]}``."""
    out: dict[str, list[str]] = {}
    if plugin is None:
        return out
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.name not in REQUIRED:
            continue
        found: list[Any] = []
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                found += call(impl, caller.name)[0]  # a listing: the checks report the errors
        names = sorted({str(obj.name) for obj in found})
        if names:
            out[caller.name.removeprefix("register_")] = names
    return dict(sorted(out.items()))


@attrs.define
class PluginInfo:
    name: str
    distribution: str
    version: str
    hooks: list[str]
    builtin: bool
    provides: dict[str, list[str]] = attrs.field(factory=dict)  # kind -> names, see provided_names
    # kind -> {name this plugin provides: the plugin whose object of that name is used instead}
    shadowed: dict[str, dict[str, str]] = attrs.field(factory=dict)


def plugin_infos() -> list[PluginInfo]:
    """Every registered, usable plugin with the hooks it implements; skipped ones are in
    ``load_errors``."""
    setup()
    prune()
    infos = []
    lost = shadowed()
    for name, plugin in pm.list_name_plugin():
        if plugin is None or skipped(name) is not None:
            continue
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        dist, version = _plugin_dists.get(name, ("?", "?"))
        infos.append(
            PluginInfo(name, dist, version, hooks, builtin(name), provided_names(plugin), lost.get(name, {}))
        )
    return sorted(infos, key=lambda i: (not i.builtin, i.name))
