"""Canonical text of each hook and registered-object method, as docs/plugins.md must show it."""

from __future__ import annotations

import inspect
from typing import Any

from dmca_core import hookspecs, interfaces

# hook -> the protocol of what it registers
HOOK_OBJECTS = {
    "register_estimators": interfaces.Estimator,
    "register_domains": interfaces.Domain,
    "register_telemetry_sinks": interfaces.TelemetrySink,
    "register_encryptors": interfaces.Encryptor,
    "register_material_models": interfaces.MaterialModel,
    "register_executors": interfaces.Executor,
    "register_commands": interfaces.Command,
}


def call_text(name: str, fn: Any, drop_self: bool = False) -> str:
    parts: list[str] = []
    star = False
    for p in inspect.signature(fn).parameters.values():
        if drop_self and p.name == "self":
            continue
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        parts.append(p.name)
    return f"{name}({', '.join(parts)})"


def hook_names() -> list[str]:
    return sorted(n for n, f in vars(hookspecs).items() if n.startswith("register_") and callable(f))


def object_members(proto: type) -> list[str]:
    """``name(args)`` for methods, ``name`` for attributes, of a protocol or attrs class."""
    out = []
    if hasattr(proto, "__attrs_attrs__"):
        return [a.name for a in proto.__attrs_attrs__]
    for name in getattr(proto, "__annotations__", {}):
        out.append(name)
    for name, member in vars(proto).items():
        if name.startswith("_") or not callable(member):
            continue
        out.append(call_text(name, member, drop_self=True))
    return out
