"""Every hook DMCA defines, in one place.

Each hook hands the plugin a ``register`` callback (as datasette and llm do) and returns nothing;
plugins call ``register(obj)`` once per object they provide. All implementations are called
(none is ``firstresult``). When two plugins register the same ``name``, the first registration
wins: built-in defaults are ``trylast`` so that a third-party plugin can replace them (two
third-party plugins clashing are warned about). ``dmca_core.plugins`` checks every registered
object against its protocol's members (``plugins.REQUIRED``); a third-party plugin whose hook
raises or registers an unfit object is skipped with a warning naming it.

docs/plugins.md documents each hook; ``tests/test_hookspecs_docs.py`` keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from .interfaces import Command, Domain, Encryptor, Estimator, Executor, MaterialModel, TelemetrySink

hookspec = pluggy.HookspecMarker("dmca")


@hookspec
def register_estimators(register: Callable[[Estimator], None]) -> None:
    """Register causal backends.

    Args:
        register: call with an :class:`~dmca_core.interfaces.Estimator` (``name``, ``priority``,
            ``discover(table, alpha)``, ``estimate(table, treatment, outcome, adjustment, t0, t1)``).

    Returns:
        None. Not firstresult: every plugin may register several estimators.
    """


@hookspec
def register_domains(register: Callable[[Domain], None]) -> None:
    """Register domains: simulators with ground truth, or readers of the user's data.

    Args:
        register: call with a :class:`~dmca_core.interfaces.Domain` (``name``, ``hypotheses()``,
            ``variables(hypothesis)``, ``load(hypothesis, rows, seed, params)``).

    Returns:
        None. Not firstresult.
    """


@hookspec
def register_telemetry_sinks(register: Callable[[TelemetrySink], None]) -> None:
    """Register telemetry sinks (where the emitter's bytes go).

    Args:
        register: call with a :class:`~dmca_core.interfaces.TelemetrySink` (``name``,
            ``open(path, fsync=...)`` returning a handle with ``write(bytes)`` and ``close()``).

    Returns:
        None. Not firstresult.
    """


@hookspec
def register_encryptors(register: Callable[[Encryptor], None]) -> None:
    """Register telemetry encryptors.

    Args:
        register: call with an :class:`~dmca_core.interfaces.Encryptor` (``name``,
            ``writer(mode, gzip=..., environ=...)``, ``reader(environ=...)``, ``is_envelope(obj)``).

    Returns:
        None. Not firstresult.
    """


@hookspec
def register_material_models(register: Callable[[MaterialModel], None]) -> None:
    """Register crystal form factors of target materials.

    Args:
        register: call with a :class:`~dmca_core.interfaces.MaterialModel` (``name`` = material,
            ``source``, ``priority``, ``form_factor()``).

    Returns:
        None. Not firstresult: for one material the highest ``priority`` is used.
    """


@hookspec
def register_executors(register: Callable[[Executor], None]) -> None:
    """Register executors (where study steps run).

    Args:
        register: call with an :class:`~dmca_core.interfaces.Executor` (``name``,
            ``map(fn, items, workers=..., options=..., on_result=...)``).

    Returns:
        None. Not firstresult.
    """


@hookspec
def register_commands(register: Callable[[Command], None]) -> None:
    """Register extra ``dmca`` sub-commands.

    Args:
        register: call with a :class:`~dmca_core.interfaces.Command` (``name``, ``help``,
            ``configure(parser)``, ``run(args) -> int``).

    Returns:
        None. Not firstresult.
    """
