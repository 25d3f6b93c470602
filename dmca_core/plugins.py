"""The one module that owns DMCA's plugin manager.

Built-in plugins (``dmca_core.default_plugins``) are registered first; third-party plugins come
from entry points of group ``dmca``, loaded one at a time so that one broken package does not take
the CLI down. A third-party plugin is skipped, with a warning naming it, when it fails to import,
implements a hook DMCA does not define (a misspelt name) or none at all, when one of its hooks
raises, or when it registers an object that lacks what the protocol of dmca_core/interfaces.py
requires. Built-in plugins are never skipped: their errors are DMCA's bugs and propagate.
Environment:

- ``DMCA_LOAD_PLUGINS``: comma-separated allowlist of entry-point names (set but empty: none).
- ``DMCA_BLOCK_PLUGINS``: comma-separated blocklist.
- ``DMCA_STRICT_PLUGINS=1``: a plugin that would be skipped, or a name in either list that matches
  no installed entry point, is a hard error (for plugin authors); otherwise both are warnings.
- ``DMCA_NO_ENTRYPOINTS=1``: skip entry points entirely (the test suite sets this).
- ``DMCA_PLUGIN_TRACEBACK=1``: print the full traceback of a plugin that fails (strict or not).
"""

from __future__ import annotations

import difflib
import importlib
import multiprocessing
import os
import reprlib
import sys
import threading
import traceback
import warnings
from collections.abc import Iterable, Mapping
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

# hook -> (what it registers, in words; attributes every registered object needs; methods it needs).
# The protocols in interfaces.py are the source; tests/test_plugins.py keeps the two in step.
REQUIRED: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "register_estimators": ("an estimator", ("name", "priority"), ("discover", "estimate")),
    "register_domains": ("a domain", ("name",), ("hypotheses", "variables", "load")),
    "register_telemetry_sinks": ("a telemetry sink", ("name",), ("open",)),
    "register_encryptors": ("an encryptor", ("name",), ("writer", "reader", "is_envelope")),
    "register_material_models": ("a material model", ("name", "source", "priority"), ("form_factor",)),
    "register_executors": ("an executor", ("name",), ("map",)),
    "register_commands": ("a command", ("name", "help"), ("configure", "run")),
}


@attrs.define
class LoadError:
    """A plugin that could not be loaded or is skipped, and why (one line)."""

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
# the environment setup() was given: strict mode and tracebacks for problems found after it
_environ: Mapping[str, str] = os.environ
# plugin name -> (the plugin object checked, its LoadError or None): each plugin is checked once
_verdicts: dict[str, tuple[object, LoadError | None]] = {}
_warned: set[tuple[str, ...]] = set()  # name clashes already warned about
# plugins whose hooks are running in this thread: a hook that looks plugins up (get_estimator in a
# wrapper's hook) sees the others, not itself, instead of recursing without end. Per thread: a
# second thread (a Dask worker runs tasks in threads) must still see a plugin the first is calling
_running = threading.local()


def _busy() -> set[str]:
    busy = getattr(_running, "names", None)
    if busy is None:
        busy = _running.names = set()
    return busy


def _env_list(environ: Mapping[str, str], key: str) -> set[str] | None:
    if key not in environ:
        return None
    return {x.strip() for x in environ[key].split(",") if x.strip()}


def _strict(environ: Mapping[str, str]) -> bool:
    return environ.get("DMCA_STRICT_PLUGINS", "") not in ("", "0", "false", "no")


def _ep_dist(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ("?", "?")
    return (dist.metadata["Name"] or "?", dist.version or "?")


def _builtin(name: str) -> bool:
    return name.startswith("dmca_core.")


def _one_line(text: object) -> str:
    # pluggy's validation errors (and some exceptions) span lines; a warning or an error is one
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _load_default_plugins() -> None:
    for modname in DEFAULT_PLUGINS:
        if pm.get_plugin(modname) is None:
            mod = importlib.import_module(modname)
            pm.register(mod, name=modname)
            _plugin_dists[modname] = ("dmca", _core_version())


def _core_version() -> str:
    from . import __version__

    return __version__


def _who(name: str) -> str:
    """``'broken' (dmca-broken 0.1)``, or ``'broken'`` for a plugin registered in-process."""
    dist, version = _plugin_dists.get(name, ("?", "?"))
    return repr(name) if dist == "?" else f"{name!r} ({dist} {version})"


def _fail(err: LoadError, environ: Mapping[str, str], exc: BaseException | None, *, loading: bool) -> None:
    """Report a plugin that is skipped: a warning and an entry in ``load_errors``; in strict mode a
    :class:`PluginError` instead. ``DMCA_PLUGIN_TRACEBACK`` adds the traceback either way."""
    who = repr(err.name) if err.distribution == "?" else f"{err.name!r} ({err.distribution} {err.version})"
    if exc is not None and environ.get("DMCA_PLUGIN_TRACEBACK"):
        traceback.print_exception(exc, file=sys.stderr)
    if _strict(environ):
        raise PluginError(f"plugin {who}{' failed to load' if loading else ''}: {err.error}") from exc
    load_errors.append(err)
    # the driver warns; worker processes check the same plugins and would repeat it
    if multiprocessing.parent_process() is None:
        warnings.warn(f"dmca: skipped plugin {who}: {err.error}", RuntimeWarning, stacklevel=3)


def load_entrypoints(environ: Mapping[str, str] | None = None) -> list[LoadError]:
    """Load every selected entry point of group ``dmca`` that is not loaded yet, and check it.

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
    errors: list[LoadError] = []
    found = sorted(entry_points(group=GROUP), key=lambda e: e.name)
    _check_selection(found, allow, block, _strict(environ))
    for ep in found:
        if (allow is not None and ep.name not in allow) or ep.name in block:
            excluded[ep.name] = "DMCA_BLOCK_PLUGINS" if ep.name in block else "DMCA_LOAD_PLUGINS"
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        dist, version = _ep_dist(ep)
        try:
            plugin = ep.load()
            if pm.is_registered(plugin):  # registered in-process already (a plugin's own tests)
                continue
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a third-party plugin may fail in any way; report and go on
            err = LoadError(ep.name, dist, version, f"{type(exc).__name__}: {_one_line(exc)}")
            _fail(err, environ, exc, loading=True)
            errors.append(err)
            continue
        _plugin_dists[ep.name] = (dist, version)
        problem = _problem_of(plugin)
        if problem is not None:
            pm.unregister(plugin)  # skipped: none of its hooks runs, `dmca plugins` lists the error
            err = LoadError(ep.name, dist, version, problem[0])
            _fail(err, environ, problem[1], loading=False)
            errors.append(err)
            continue
        _verdicts[ep.name] = (plugin, None)
    return errors


def _check_selection(found: list[EntryPoint], allow: set[str] | None, block: set[str], strict: bool) -> None:
    """Warn (strict: raise) about names in the allow/blocklist that match no entry point: a typo
    there (``causal-full`` for ``causal_full``) otherwise silently selects nothing."""
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
    global _environ
    environ = os.environ if environ is None else environ
    _environ = environ
    _load_default_plugins()
    if environ.get("DMCA_NO_ENTRYPOINTS", "") in ("", "0"):
        load_entrypoints(environ)
    return pm


# --- checking what plugins register ------------------------------------------------------------------


class _Invalid(Exception):
    """Raised from ``register`` for an object that lacks what its protocol requires."""


def _what_is(obj: object) -> str:
    return reprlib.repr(obj) if type(obj).__module__ == "builtins" else f"a {type(obj).__name__}"


def invalid(hook: str, obj: object) -> str | None:
    """Why ``obj`` cannot be what ``hook`` registers (``an estimator without 'priority'``), or None."""
    what, fields, methods = REQUIRED[hook]
    missing = []
    for attr in (*fields, *methods):
        try:
            getattr(obj, attr)
        except Exception:  # noqa: BLE001 - a property that raises is as good as missing
            missing.append(attr)
    name = getattr(obj, "name", None) if "name" not in missing else None
    if missing:
        which = f"{name!r}" if isinstance(name, str) else _what_is(obj)
        return f"{what} without {', '.join(map(repr, missing))} ({which})"
    if not isinstance(name, str) or not name:
        return f"{what} whose name is {name!r}, not a non-empty string"
    for attr in fields:
        value = getattr(obj, attr)
        if attr == "priority" and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"{what} {name!r} whose priority is {value!r}, not a number"
        if attr in ("source", "help") and not isinstance(value, str):
            return f"{what} {name!r} whose {attr} is {value!r}, not a string"
    flat = [m for m in methods if not callable(getattr(obj, m))]
    if flat:
        return f"{what} {name!r} whose {', '.join(map(repr, flat))} is not callable"
    return None


Problem = tuple[str, BaseException | None]  # (one line, the exception behind it)


def _call(impl: Any, hook: str) -> tuple[list[Any], Problem | None]:
    """Call one plugin's implementation of ``hook``: what it registered, or why it cannot be used."""
    found: list[Any] = []
    bad: list[str] = []

    def register(obj: object) -> None:
        problem = invalid(hook, obj)
        if problem is not None:
            bad.append(problem)
            raise _Invalid(problem)  # stop the hook: nothing of this plugin is used
        found.append(obj)

    if impl.hookwrapper or impl.wrapper:
        return [], (f"{hook} is declared as a hook wrapper; dmca's hooks take plain implementations", None)
    _busy().add(impl.plugin_name)
    try:
        impl.function(*({"register": register}[arg] for arg in impl.argnames))
    except _Invalid:
        pass
    except Exception as exc:  # noqa: BLE001 - a third-party hook may fail in any way
        if not bad:
            return [], (f"{hook} raised {type(exc).__name__}: {_one_line(exc)}", exc)
    finally:
        _busy().discard(impl.plugin_name)
    if bad:  # also when the hook swallowed _Invalid
        return [], (f"registered {bad[0]}", None)
    return found, None


def _problem_of(plugin: object) -> Problem | None:
    """The first reason why ``plugin`` cannot be used, or None: an unknown (misspelt) hook, no hook
    at all, a hook that raises, or a registered object that does not fit its protocol."""
    callers = pm.get_hookcallers(plugin) or []
    if not callers:
        return ("implements no dmca hook (see docs/plugins.md for their names)", None)
    for caller in callers:
        if caller.has_spec():
            continue
        if all(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin):
            continue  # opted out of the check explicitly, as pluggy allows
        near = difflib.get_close_matches(caller.name, hook_names(), n=1)
        hint = f"did you mean {near[0]!r}?" if near else f"dmca's hooks: {', '.join(hook_names())}"
        return (f"implements unknown hook {caller.name!r}; {hint}", None)
    for caller in callers:
        if caller.name not in REQUIRED:
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                problem = _call(impl, caller.name)[1]
                if problem is not None:
                    return problem
    return None


def _reject(name: str, plugin: object, problem: Problem) -> LoadError:
    dist, version = _plugin_dists.get(name, ("?", "?"))
    err = LoadError(name, dist, version, problem[0])
    _fail(err, _environ, problem[1], loading=False)
    _verdicts[name] = (plugin, err)
    return err


def _verdict(name: str, plugin: object) -> LoadError | None:
    """Why the third-party plugin ``name`` is skipped (checked on first use), or None."""
    seen = _verdicts.get(name)
    if seen is not None and seen[0] is plugin:
        return seen[1]
    if name in _busy():
        return None  # being checked further up the stack; that check decides
    problem = _problem_of(plugin)
    if problem is not None:
        return _reject(name, plugin, problem)
    _verdicts[name] = (plugin, None)
    return None


def _prune() -> None:
    """Forget plugins unregistered since they were checked (tests register plugins in-process)."""
    for name, (plugin, err) in list(_verdicts.items()):
        if pm.get_plugin(name) is not plugin:
            del _verdicts[name]
            if err is not None:
                load_errors[:] = [e for e in load_errors if e is not err]


def skipped(name: str) -> LoadError | None:
    """Why the registered plugin ``name`` is skipped, or None (also for built-in plugins)."""
    plugin = pm.get_plugin(name)
    if plugin is None or _builtin(name):
        return None
    _prune()
    return _verdict(name, plugin)


X = TypeVar("X")


def _collect(hook: str) -> list[tuple[Any, Any]]:
    """(hookimpl, object) for everything the usable plugins register through ``hook``, in pluggy's
    call order (tryfirst, then the latest registered, ..., trylast defaults last)."""
    _prune()
    for name, plugin in pm.list_name_plugin():  # all, so that a misspelt hook is reported too
        if plugin is not None and not _builtin(name):
            _verdict(name, plugin)
    found: list[tuple[Any, Any]] = []
    for impl in reversed(getattr(pm.hook, hook).get_hookimpls()):
        if _builtin(impl.plugin_name):  # ours: an error here is a bug of DMCA, let it show

            def register(obj: object, impl: Any = impl) -> None:
                problem = invalid(hook, obj)
                if problem is not None:
                    raise TypeError(f"built-in plugin {impl.plugin_name!r} registered {problem}")
                found.append((impl, obj))

            impl.function(register=register)
            continue
        if impl.plugin_name in _busy() or _verdict(impl.plugin_name, impl.plugin) is not None:
            continue
        objects, problem = _call(impl, hook)
        if problem is not None:  # failed now though it passed its check: skip it from here on
            _reject(impl.plugin_name, impl.plugin, problem)
            continue
        found.extend((impl, obj) for obj in objects)
    return found


# hook -> what one of its objects is called in messages
_KIND = {hook: what.split(" ", 1)[1] for hook, (what, _, _) in REQUIRED.items()}


def _winners(hook: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The object used for each name, and the hookimpl it came from. First registration wins
    (pluggy calls third-party implementations before ``trylast`` defaults); material models: the
    highest ``priority``, then the first."""
    used: dict[str, Any] = {}
    by: dict[str, Any] = {}
    for impl, obj in _collect(hook):
        name = obj.name
        if name not in used or hook == "register_material_models" and obj.priority > used[name].priority:
            used[name], by[name] = obj, impl
        elif hook != "register_material_models" or obj.priority == used[name].priority:
            _clash(hook, name, by[name], impl)
    return used, by


def _clash(hook: str, name: str, winner: Any, loser: Any) -> None:
    """Warn once when two third-party plugins provide one name (overriding a built-in ``trylast``
    default is what defaults are for, and a plugin repeating itself is its own business)."""
    w, lo = winner.plugin_name, loser.plugin_name
    if winner.plugin is loser.plugin or _builtin(w) or _builtin(lo):
        return
    key = (hook, name, w, lo)
    if key in _warned or multiprocessing.parent_process() is not None:
        return
    _warned.add(key)
    if winner.tryfirst and not loser.tryfirst:
        why = "its hook is tryfirst"
    else:
        why = "pluggy calls the plugin registered later first; entry points register in name order"
    if hook == "register_material_models":
        why = f"equal priority; {why}"
    block = f"; DMCA_BLOCK_PLUGINS={w} to use {lo!r}" if w in _plugin_dists else ""
    warnings.warn(
        f"dmca: plugins {_who(w)} and {_who(lo)} both provide {_KIND[hook]} {name!r}; "
        f"{w!r} is used ({why}){block}",
        RuntimeWarning,
        stacklevel=3,
    )


def estimators() -> dict[str, Any]:
    setup()
    return _winners("register_estimators")[0]


def domains() -> dict[str, Any]:
    setup()
    return _winners("register_domains")[0]


def telemetry_sinks() -> dict[str, Any]:
    setup()
    return _winners("register_telemetry_sinks")[0]


def encryptors() -> dict[str, Any]:
    setup()
    return _winners("register_encryptors")[0]


def executors() -> dict[str, Any]:
    setup()
    return _winners("register_executors")[0]


def commands() -> dict[str, Any]:
    setup()
    return _winners("register_commands")[0]


def material_models() -> dict[str, Any]:
    """The best model per material: highest ``priority``, then first registered."""
    setup()
    return _winners("register_material_models")[0]


def _near(name: str, names: Iterable[str]) -> str:
    near = difflib.get_close_matches(name, list(names), n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def _skipped_note() -> str:
    # the name asked for may be one a skipped plugin would have provided
    names = sorted({e.name for e in load_errors})
    return f"; skipped plugins (see `dmca plugins`): {', '.join(names)}" if names else ""


def _pick(kind: str, registry: Mapping[str, X], name: str) -> X:
    try:
        return registry[name]
    except KeyError:
        valid = ", ".join(sorted(registry)) or "none installed"
        raise PluginError(
            f"unknown {kind} {name!r}; installed: {valid}{_skipped_note()}{_near(name, registry)}"
        ) from None


def get_estimator(name: str = "auto") -> Any:
    """The estimator called ``name``; ``auto`` = the installed one with the highest priority.

    Public: a plugin may wrap another estimator (``get_estimator("fallback")``) and delegate to it.
    """
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
        raise PluginError("no estimator installed: pip install plugins/causal_fallback" + _skipped_note())
    valid = ", ".join(sorted(registry)) or "none"
    message = f"unknown estimator {name!r}; {'available' if left_out else 'installed'}: {valid}"
    if left_out:
        message += f"; installed plugins left out: {left_out}"
    message += _skipped_note()
    # `dmca plugins` lists `causal_full` (a plugin); the estimator it registers is `full`
    plugin = _plugin_named(name)
    given = provided_names(plugin).get("estimators") if plugin is not None else None
    if given:
        its = "estimator is" if len(given) == 1 else "estimators are"
        raise PluginError(f"{message}; {name!r} is a plugin, its {its} {', '.join(map(repr, given))}")
    raise PluginError(message + _near(name, registry))


def _plugin_named(name: str) -> object | None:
    """The usable plugin registered as ``name`` (its entry point's name), or from the distribution
    of that name (``dmca-causal-full``, ``dmca_causal_full``)."""
    plugin = pm.get_plugin(name)
    if plugin is None:
        key = name.lower().replace("-", "_")
        for plugin_name, (dist, _) in _plugin_dists.items():
            if dist.lower().replace("-", "_") == key and not _builtin(plugin_name):
                name, plugin = plugin_name, pm.get_plugin(plugin_name)
                break
    if plugin is None or skipped(name) is not None:
        return None
    return plugin


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
        if caller.name not in REQUIRED:
            continue
        found: list[Any] = []
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                found += _call(impl, caller.name)[0]  # a listing: the checks report the errors
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


def shadowed() -> dict[str, dict[str, dict[str, str]]]:
    """plugin name -> kind -> {name: the plugin used for it}, for every name a plugin registers
    that another plugin's object wins (a third-party override of a built-in default included)."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for hook in REQUIRED:
        _, by = _winners(hook)
        for impl, obj in _collect(hook):
            winner = by.get(obj.name)
            if winner is not None and winner.plugin is not impl.plugin:
                kind = hook.removeprefix("register_")
                out.setdefault(impl.plugin_name, {}).setdefault(kind, {})[obj.name] = winner.plugin_name
    return out


def plugin_infos() -> list[PluginInfo]:
    """Every registered, usable plugin with the hooks it implements; skipped ones are in
    ``load_errors``."""
    setup()
    _prune()
    infos = []
    lost = shadowed()
    for name, plugin in pm.list_name_plugin():
        if plugin is None or skipped(name) is not None:
            continue
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        dist, version = _plugin_dists.get(name, ("?", "?"))
        infos.append(
            PluginInfo(name, dist, version, hooks, _builtin(name), provided_names(plugin), lost.get(name, {}))
        )
    return sorted(infos, key=lambda i: (not i.builtin, i.name))
