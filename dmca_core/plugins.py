"""The one module that owns DMCA's plugin manager.

Built-in plugins (``dmca_core.default_plugins``) are registered first; third-party plugins come
from entry points of group ``dmca``, loaded one at a time so that one broken package does not take
the CLI down. Environment:

- ``DMCA_LOAD_PLUGINS``: comma-separated allowlist of entry-point names (set but empty: none).
- ``DMCA_BLOCK_PLUGINS``: comma-separated blocklist.
- ``DMCA_STRICT_PLUGINS=1``: a plugin that fails to load, or a name in either list that matches no
  installed entry point, is a hard error (for plugin authors); otherwise both are warnings.
- ``DMCA_NO_ENTRYPOINTS=1``: skip entry points entirely (the test suite sets this).
- ``DMCA_PLUGIN_TRACEBACK=1``: print the full traceback of a plugin that fails to load.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError

GROUP = "dmca"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "dmca_core.default_plugins.jsonl_sink",
    "dmca_core.default_plugins.local_executor",
    "dmca_core.default_plugins.csv_domain",
    "dmca_core.default_plugins.simulated_domains",
    "dmca_core.default_plugins.tabulated_materials",
)


@attrs.define
class LoadError:
    """An entry point that could not be loaded."""

    name: str
    distribution: str
    version: str
    error: str


pm = pluggy.PluginManager(GROUP)
pm.add_hookspecs(hookspecs)
load_errors: list[LoadError] = []
_entrypoints_loaded = False
_plugin_dists: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
# entry points installed but not loaded because of DMCA_LOAD_PLUGINS / DMCA_BLOCK_PLUGINS, by the
# variable that left each out: "no estimator installed" would be misleading when one was excluded
excluded: dict[str, str] = {}


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
    """Load every selected entry point of group ``dmca`` that is not loaded yet.

    Returns the load errors of this call. In strict mode the first error raises
    :class:`PluginError`.
    """
    global _entrypoints_loaded
    environ = os.environ if environ is None else environ
    if _entrypoints_loaded:
        return []
    _entrypoints_loaded = True
    allow = _env_list(environ, "DMCA_LOAD_PLUGINS")
    block = _env_list(environ, "DMCA_BLOCK_PLUGINS") or set()
    strict = environ.get("DMCA_STRICT_PLUGINS", "") not in ("", "0", "false", "no")
    errors: list[LoadError] = []
    found = sorted(entry_points(group=GROUP), key=lambda e: e.name)
    _check_selection(found, allow, block, strict)
    for ep in found:
        if (allow is not None and ep.name not in allow) or ep.name in block:
            excluded[ep.name] = "DMCA_BLOCK_PLUGINS" if ep.name in block else "DMCA_LOAD_PLUGINS"
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        dist, version = _ep_dist(ep)
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a third-party plugin may fail in any way; report and go on
            err = LoadError(ep.name, dist, version, f"{type(exc).__name__}: {exc}")
            if strict:
                raise PluginError(
                    f"plugin {ep.name!r} from {dist} {version} failed to load: {err.error}"
                ) from exc
            errors.append(err)
            warnings.warn(
                f"dmca: skipped plugin {ep.name!r} from {dist} {version}: {err.error}",
                RuntimeWarning,
                stacklevel=2,
            )
            if environ.get("DMCA_PLUGIN_TRACEBACK"):
                traceback.print_exc(file=sys.stderr)
            continue
        _plugin_dists[ep.name] = (dist, version)
    load_errors.extend(errors)
    return errors


def _check_selection(found: list[EntryPoint], allow: set[str] | None, block: set[str], strict: bool) -> None:
    """Warn (strict: raise) about names in the allow/blocklist that match no entry point: a typo
    there (``causal-full`` for ``causal_full``) otherwise silently selects nothing."""
    import difflib

    names = sorted({ep.name for ep in found})
    for key, selected in (("DMCA_LOAD_PLUGINS", allow or set()), ("DMCA_BLOCK_PLUGINS", block)):
        for name in sorted(selected - set(names)):
            near = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            message = (
                f"{key} names {name!r}, which matches no installed dmca plugin; "
                f"{hint}installed: {', '.join(names) or 'none'}"
            )
            if strict:
                raise PluginError(message)
            # the driver warns; worker processes read the same environment and would repeat it
            if multiprocessing.parent_process() is None:
                warnings.warn(f"dmca: {message}", RuntimeWarning, stacklevel=3)


def setup(environ: Mapping[str, str] | None = None) -> pluggy.PluginManager:
    """Register the built-in plugins and (unless ``DMCA_NO_ENTRYPOINTS`` is set) the entry points."""
    environ = os.environ if environ is None else environ
    _load_default_plugins()
    if environ.get("DMCA_NO_ENTRYPOINTS", "") in ("", "0"):
        load_entrypoints(environ)
    return pm


X = TypeVar("X")


def _collect(hook: Callable[..., Any]) -> list[Any]:
    found: list[Any] = []
    hook(register=found.append)
    return found


def _by_name(items: Iterable[X]) -> dict[str, X]:
    # pluggy calls third-party implementations before trylast defaults: first registration wins
    out: dict[str, X] = {}
    for item in items:
        out.setdefault(item.name, item)  # type: ignore[attr-defined]
    return out


def estimators() -> dict[str, Any]:
    setup()
    return _by_name(_collect(pm.hook.register_estimators))


def domains() -> dict[str, Any]:
    setup()
    return _by_name(_collect(pm.hook.register_domains))


def telemetry_sinks() -> dict[str, Any]:
    setup()
    return _by_name(_collect(pm.hook.register_telemetry_sinks))


def encryptors() -> dict[str, Any]:
    setup()
    return _by_name(_collect(pm.hook.register_encryptors))


def executors() -> dict[str, Any]:
    setup()
    return _by_name(_collect(pm.hook.register_executors))


def commands() -> dict[str, Any]:
    setup()
    return _by_name(_collect(pm.hook.register_commands))


def material_models() -> dict[str, Any]:
    """The best model per material: highest ``priority``, then first registered."""
    setup()
    best: dict[str, Any] = {}
    for model in _collect(pm.hook.register_material_models):
        cur = best.get(model.name)
        if cur is None or model.priority > cur.priority:
            best[model.name] = model
    return best


def _pick(kind: str, registry: Mapping[str, X], name: str) -> X:
    try:
        return registry[name]
    except KeyError:
        valid = ", ".join(sorted(registry)) or "none installed"
        raise PluginError(f"unknown {kind} {name!r}; installed: {valid}") from None


def get_estimator(name: str = "auto") -> Any:
    """The estimator called ``name``; ``auto`` = the installed one with the highest priority."""
    registry = estimators()
    if name == "auto" and registry:
        return max(registry.values(), key=lambda e: e.priority)
    if name in registry:
        return registry[name]
    # an error from here on: say which installed plugins the allow/block lists left out
    left_out = ", ".join(f"{n} (by {why})" for n, why in sorted(excluded.items()))
    if name == "auto":
        if left_out:
            raise PluginError(f"no estimator available: installed plugins left out: {left_out}")
        raise PluginError("no estimator installed: pip install plugins/causal_fallback")
    if left_out:
        valid = ", ".join(sorted(registry)) or "none"
        raise PluginError(
            f"unknown estimator {name!r}; available: {valid}; installed plugins left out: {left_out}"
        )
    # `dmca plugins` lists `causal_full` (a plugin); the estimator it registers is `full`
    given = provided_names(_plugin_named(name)).get("estimators")
    if given:
        its = "estimator is" if len(given) == 1 else "estimators are"
        raise PluginError(
            f"unknown estimator {name!r}; installed: {', '.join(sorted(registry))}; "
            f"{name!r} is a plugin, its {its} {', '.join(map(repr, given))}"
        )
    return _pick("estimator", registry, name)


def _plugin_named(name: str) -> object | None:
    """The plugin registered as ``name`` (its entry point's name), or from the distribution of
    that name (``dmca-causal-full``, ``dmca_causal_full``)."""
    plugin = pm.get_plugin(name)
    if plugin is not None:
        return plugin
    key = name.lower().replace("-", "_")
    for plugin_name, (dist, _) in _plugin_dists.items():
        if dist.lower().replace("-", "_") == key and not plugin_name.startswith("dmca_core."):
            return pm.get_plugin(plugin_name)
    return None


def hook_names() -> list[str]:
    """The hooks a plugin may implement (those with a spec in ``hookspecs``)."""
    return sorted(name for name, caller in vars(pm.hook).items() if getattr(caller, "spec", None) is not None)


def get_domain(name: str) -> Any:
    return _pick("domain", domains(), name)


def get_executor(name: str) -> Any:
    return _pick("executor", executors(), name)


def get_sink(name: str) -> Any:
    return _pick("telemetry sink", telemetry_sinks(), name)


def get_encryptor(name: str | None = None) -> Any:
    registry = encryptors()
    if name is None:
        if not registry:
            raise PluginError(
                "telemetry encryption is on but no encryptor plugin is installed: "
                "pip install plugins/aes_gcm (or set telemetry.encryption: none)"
            )
        return next(iter(registry.values()))
    return _pick("encryptor", registry, name)


def get_material_model(material: str) -> Any:
    return _pick("material model", material_models(), material)


def provided_names(plugin: object | None) -> dict[str, list[str]]:
    """The names ``plugin`` registers, by kind (the hook's name without ``register_``):
    ``{"estimators": ["full"]}``, ``{"commands": ["keygen"], "encryptors": ["aes-gcm"]}``."""
    out: dict[str, list[str]] = {}
    if plugin is None:
        return out
    for caller in pm.get_hookcallers(plugin) or []:
        if not caller.name.startswith("register_"):
            continue
        found: list[Any] = []
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                impl.function(register=found.append)
            except Exception:  # noqa: BLE001 - a listing; the hook's own callers report its errors
                continue
        names = sorted({str(getattr(obj, "name", "?")) for obj in found})
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


def plugin_infos() -> list[PluginInfo]:
    """Every registered plugin with the hooks it implements."""
    setup()
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        dist, version = _plugin_dists.get(name, ("?", "?"))
        infos.append(
            PluginInfo(name, dist, version, hooks, name.startswith("dmca_core."), provided_names(plugin))
        )
    return sorted(infos, key=lambda i: (not i.builtin, i.name))
