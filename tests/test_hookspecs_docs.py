"""docs/plugins.md and dmca_core/hookspecs.py must agree, hook by hook and member by member."""

from __future__ import annotations

import re
from pathlib import Path

import hookdoc

from dmca_core import hookspecs

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def _sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^### `([a-z_]+)\(([^)]*)\)`\s*$", text, flags=re.M)
    # parts: [preamble, name, args, body, name, args, body, ...]
    return {f"{parts[i]}({parts[i + 1]})": parts[i + 2] for i in range(1, len(parts), 3)}


def test_every_hook_is_documented_with_its_exact_arguments() -> None:
    documented = set(_sections())
    expected = {hookdoc.call_text(n, getattr(hookspecs, n)) for n in hookdoc.hook_names()}
    assert documented == expected, (
        f"undocumented: {sorted(expected - documented)}; documented but not a hook: {sorted(documented - expected)}"
    )


def test_registered_objects_are_documented_member_by_member() -> None:
    sections = _sections()
    for name in hookdoc.hook_names():
        body = sections[hookdoc.call_text(name, getattr(hookspecs, name))]
        listed = re.findall(r"^- `([^`]+)`", body, flags=re.M)
        listed_names = [re.sub(r"\s*->.*$|:.*$", "", item).strip() for item in listed]
        expected = hookdoc.object_members(hookdoc.HOOK_OBJECTS[name])
        assert sorted(listed_names) == sorted(expected), (
            f"{name}: docs list {listed_names}, code has {expected}"
        )


def test_every_hookspec_has_a_docstring_with_args_and_returns() -> None:
    for name in hookdoc.hook_names():
        doc = getattr(hookspecs, name).__doc__ or ""
        assert "Args:" in doc and "Returns:" in doc and "firstresult" in doc, name
