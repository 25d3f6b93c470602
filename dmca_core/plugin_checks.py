"""The checks of third-party plugins, for the plugin manager in ``dmca_core.plugins``.

What each hook's objects need (:data:`REQUIRED`); why a plugin is skipped (an unknown or misspelt
hook, none at all, a hook that raises, an object that misses its protocol) and how that is
reported (a warning and an entry in ``plugins.load_errors``; strict mode: :class:`PluginError`);
which object wins a name two plugins provide (clashes, shadowing); did-you-mean suggestions.

The state these checks read and update (``pm``, ``load_errors``, the verdicts, the distributions,
the settings setup() was given) belongs to ``dmca_core.plugins`` and is read from there at each
call: tests swap those attributes for fresh ones.
"""

from __future__ import annotations

import contextlib
import difflib
import multiprocessing
import reprlib
import sys
import threading
import traceback
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from .errors import PluginError

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

# hook -> what one of its objects is called in messages
KIND = {hook: what.split(" ", 1)[1] for hook, (what, _, _) in REQUIRED.items()}

# a hook's lookup that failed (plugins.get_estimator in the hook) gets this advice
LOOKUP_HINT = (
    "look other plugins' objects up when they are called, not in the hook "
    "(docs/plugins.md, 'Wrapping another estimator')"
)


@attrs.define
class LoadError:
    """A plugin that could not be loaded or is skipped, and why (one line)."""

    name: str
    distribution: str
    version: str
    error: str


Problem = tuple[str, BaseException | None]  # (one line, the exception behind it)


def builtin(name: str) -> bool:
    return name.startswith("dmca_core.")


def strict(environ: Mapping[str, str]) -> bool:
    return environ.get("DMCA_STRICT_PLUGINS", "") not in ("", "0", "false", "no")


def one_line(text: object) -> str:
    # pluggy's validation errors (and some exceptions) span lines; a warning or an error is one
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def who(name: str) -> str:
    """``'broken' (dmca-broken 0.1)``, or ``'broken'`` for a plugin registered in-process."""
    dist, version = manager._plugin_dists.get(name, ("?", "?"))
    return repr(name) if dist == "?" else f"{name!r} ({dist} {version})"


# --- did you mean ------------------------------------------------------------------------------------


def near(name: str, names: Iterable[str]) -> str:
    """``; did you mean 'logged'?`` for the nearest of ``names``, or nothing."""
    found = difflib.get_close_matches(name, list(names), n=1)
    return f"; did you mean {found[0]!r}?" if found else ""


def unmatched_selection(names: Iterable[str], allow: set[str] | None, block: set[str]) -> list[str]:
    """One line per name in the allow/blocklist that matches no installed entry point: a typo there
    (``causal-full`` for ``causal_full``) otherwise silently selects nothing."""
    installed = sorted(set(names))
    out = []
    for key, selected in (("DMCA_LOAD_PLUGINS", allow or set()), ("DMCA_BLOCK_PLUGINS", block)):
        for name in sorted(selected - set(installed)):
            found = difflib.get_close_matches(name, installed, n=1)
            hint = f"did you mean {found[0]!r}? " if found else ""
            out.append(
                f"{key} names {name!r}, which matches no installed dmca plugin; "
                f"{hint}installed: {', '.join(installed) or 'none'}"
            )
    return out


# --- reporting ----------------------------------------------------------------------------------------

_held = threading.local()  # the warnings held back by warnings_after() in this thread


@contextlib.contextmanager
def warnings_after() -> Iterator[None]:
    """Hold back the warnings :func:`warn` gives inside the block and give them when it ends.

    Under ``python -W error`` a warning raises: given mid-loop, it would stop the loading or the
    checking of every plugin after the one it names. Held back, every plugin is tried and its
    verdict recorded first. Nested blocks leave the warnings to the outermost; a block left by an
    exception drops them (``load_errors`` keeps the skipped plugins).
    """
    if getattr(_held, "messages", None) is not None:
        yield
        return
    messages: list[str] = []
    _held.messages = messages
    try:
        yield
    finally:
        _held.messages = None
    for message in messages:
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def warn(message: str) -> None:
    """Warn (``dmca: message``) in the driver only: worker processes check the same plugins and
    read the same environment, and would repeat it."""
    if multiprocessing.parent_process() is not None:
        return
    held = getattr(_held, "messages", None)
    if held is not None:
        held.append(f"dmca: {message}")
    else:
        warnings.warn(f"dmca: {message}", RuntimeWarning, stacklevel=3)


def report(err: LoadError, environ: Mapping[str, str], exc: BaseException | None, *, loading: bool) -> None:
    """Report a plugin that is skipped: a warning and an entry in ``load_errors``; in strict mode a
    :class:`PluginError` instead. ``DMCA_PLUGIN_TRACEBACK`` adds the traceback either way."""
    name = repr(err.name) if err.distribution == "?" else f"{err.name!r} ({err.distribution} {err.version})"
    if exc is not None and environ.get("DMCA_PLUGIN_TRACEBACK"):
        traceback.print_exception(exc, file=sys.stderr)
    if strict(environ):
        error = PluginError(f"plugin {name}{' failed to load' if loading else ''}: {err.error}")
        error.dmca_plugin = err.name  # type: ignore[attr-defined] # whose verdict this is (see call)
        raise error from exc
    manager.load_errors.append(err)
    warn(f"skipped plugin {name}: {err.error}")


# --- what a plugin registers --------------------------------------------------------------------------


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


# plugins whose hooks are running in this thread: a hook that looks plugins up (get_estimator in a
# wrapper's hook) sees the others, not itself, instead of recursing without end. Per thread: a
# second thread (a Dask worker runs tasks in threads) must still see a plugin the first is calling
_running = threading.local()


def busy() -> set[str]:
    names = getattr(_running, "names", None)
    if names is None:
        names = _running.names = set()
    return names


def call(impl: Any, hook: str) -> tuple[list[Any], Problem | None]:
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
    busy().add(impl.plugin_name)
    try:
        impl.function(*({"register": register}[arg] for arg in impl.argnames))
    except _Invalid:
        pass
    except Exception as exc:  # noqa: BLE001 - a third-party hook may fail in any way
        if getattr(exc, "dmca_plugin", impl.plugin_name) != impl.plugin_name:
            raise  # strict mode's verdict on another plugin this hook looked up: that one's error
        if not bad:
            # a PluginError here is a lookup of another plugin's object (get_estimator) that failed
            hint = f"; {LOOKUP_HINT}" if isinstance(exc, PluginError) else ""
            return [], (f"{hook} raised {type(exc).__name__}: {one_line(exc)}{hint}", exc)
    finally:
        busy().discard(impl.plugin_name)
    if bad:  # also when the hook swallowed _Invalid
        return [], (f"registered {bad[0]}", None)
    return found, None


def problem_of(plugin: object) -> Problem | None:
    """The first reason why ``plugin`` cannot be used, or None: an unknown (misspelt) hook, no hook
    at all, a hook that raises, or a registered object that does not fit its protocol."""
    callers = manager.pm.get_hookcallers(plugin) or []
    if not callers:
        return ("implements no dmca hook (see docs/plugins.md for their names)", None)
    for caller in callers:
        if caller.has_spec():
            continue
        if all(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin):
            continue  # opted out of the check explicitly, as pluggy allows
        hooks = manager.hook_names()
        found = difflib.get_close_matches(caller.name, hooks, n=1)
        hint = f"did you mean {found[0]!r}?" if found else f"dmca's hooks: {', '.join(hooks)}"
        return (f"implements unknown hook {caller.name!r}; {hint}", None)
    for caller in callers:
        if caller.name not in REQUIRED:
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                problem = call(impl, caller.name)[1]
                if problem is not None:
                    return problem
    return None


# --- verdicts: each third-party plugin is checked once ------------------------------------------------


def reject(name: str, plugin: object, problem: Problem) -> LoadError:
    """Skip ``plugin`` from here on and report it (strict mode: raise, and check it again next time)."""
    dist, version = manager._plugin_dists.get(name, ("?", "?"))
    err = LoadError(name, dist, version, problem[0])
    with warnings_after():  # the verdict is kept even when -W error makes the warning raise
        report(err, manager.settings(), problem[1], loading=False)
        manager._verdicts[name] = (plugin, err)
    return err


def verdict(name: str, plugin: object) -> LoadError | None:
    """Why the third-party plugin ``name`` is skipped (checked on first use), or None."""
    seen = manager._verdicts.get(name)
    if seen is not None and seen[0] is plugin:
        if seen[1] is not None and strict(manager.settings()):
            report(seen[1], manager.settings(), None, loading=False)  # skipped before strict mode: raise
        return seen[1]
    if name in busy():
        return None  # being checked further up the stack; that check decides
    problem = problem_of(plugin)
    if problem is not None:
        return reject(name, plugin, problem)
    manager._verdicts[name] = (plugin, None)
    return None


def prune() -> None:
    """Forget plugins unregistered since they were checked (tests register plugins in-process)."""
    for name, (plugin, err) in list(manager._verdicts.items()):
        if manager.pm.get_plugin(name) is not plugin:
            del manager._verdicts[name]
            if err is not None:
                manager.load_errors[:] = [e for e in manager.load_errors if e is not err]


def skipped(name: str) -> LoadError | None:
    """Why the registered plugin ``name`` is skipped, or None (also for built-in plugins)."""
    plugin = manager.pm.get_plugin(name)
    if plugin is None or builtin(name):
        return None
    prune()
    return verdict(name, plugin)


# --- what is used: every usable plugin's objects, one per name ----------------------------------------


def collect(hook: str) -> list[tuple[Any, Any]]:
    """(hookimpl, object) for everything the usable plugins register through ``hook``, in pluggy's
    call order (tryfirst, then the latest registered, ..., trylast defaults last)."""
    prune()
    found: list[tuple[Any, Any]] = []
    with warnings_after():  # under -W error: every plugin checked before the first warning raises
        for name, plugin in manager.pm.list_name_plugin():  # all: a misspelt hook is reported too
            if plugin is not None and not builtin(name):
                verdict(name, plugin)
        for impl in reversed(getattr(manager.pm.hook, hook).get_hookimpls()):
            if builtin(impl.plugin_name):  # ours: an error here is a bug of DMCA, let it show

                def register(obj: object, impl: Any = impl) -> None:
                    problem = invalid(hook, obj)
                    if problem is not None:
                        raise TypeError(f"built-in plugin {impl.plugin_name!r} registered {problem}")
                    found.append((impl, obj))

                impl.function(register=register)
                continue
            if impl.plugin_name in busy() or verdict(impl.plugin_name, impl.plugin) is not None:
                continue
            objects, problem = call(impl, hook)
            if problem is not None:  # failed now though it passed its check: skip it from here on
                reject(impl.plugin_name, impl.plugin, problem)
                continue
            found.extend((impl, obj) for obj in objects)
    return found


def winners(hook: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The object used for each name, and the hookimpl it came from. First registration wins
    (pluggy calls third-party implementations before ``trylast`` defaults); material models: the
    highest ``priority``, then the first."""
    used: dict[str, Any] = {}
    by: dict[str, Any] = {}
    for impl, obj in collect(hook):
        name = obj.name
        if name not in used or hook == "register_material_models" and obj.priority > used[name].priority:
            used[name], by[name] = obj, impl
        elif hook != "register_material_models" or obj.priority == used[name].priority:
            clash(hook, name, by[name], impl)
    return used, by


def clash(hook: str, name: str, winner: Any, loser: Any) -> None:
    """Warn once when two third-party plugins provide one name (overriding a built-in ``trylast``
    default is what defaults are for, and a plugin repeating itself is its own business)."""
    w, lo = winner.plugin_name, loser.plugin_name
    if winner.plugin is loser.plugin or builtin(w) or builtin(lo):
        return
    key = (hook, name, w, lo)
    if key in manager._warned:
        return
    manager._warned.add(key)
    if winner.tryfirst and not loser.tryfirst:
        why = "its hook is tryfirst"
    else:
        why = "pluggy calls the plugin registered later first; entry points register in name order"
    if hook == "register_material_models":
        why = f"equal priority; {why}"
    block = f"; DMCA_BLOCK_PLUGINS={w} to use {lo!r}" if w in manager._plugin_dists else ""
    warn(f"plugins {who(w)} and {who(lo)} both provide {KIND[hook]} {name!r}; {w!r} is used ({why}){block}")


def shadowed() -> dict[str, dict[str, dict[str, str]]]:
    """plugin name -> kind -> {name: the plugin used for it}, for every name a plugin registers
    that another plugin's object wins (a third-party override of a built-in default included)."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for hook in REQUIRED:
        _, by = winners(hook)
        for impl, obj in collect(hook):
            winner = by.get(obj.name)
            if winner is not None and winner.plugin is not impl.plugin:
                kind = hook.removeprefix("register_")
                out.setdefault(impl.plugin_name, {}).setdefault(kind, {})[obj.name] = winner.plugin_name
    return out


# Last: the plugin manager imports the names above (it re-exports them), and owns the state read
# through it at each call.
from . import plugins as manager  # noqa: E402
