"""``dmca migrate-check``: find code that still computes FTI/λ in DMCA, by AST, not grep.

Flags imports of the legacy names from ``dmca_core.metrics`` (or the old ``dmca.metrics``),
attribute uses like ``metrics.compute_fti`` on a module imported from there, and calls of a
bare legacy name that was imported that way. Comments and strings never match.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import attrs

from .metrics import LEGACY_NAMES

_MODULES = {"dmca_core.metrics", "dmca.metrics", "metrics"}
_SKIP_DIRS = {".git", ".tox", ".venv", "venv", "__pycache__", "node_modules", "build", "dist"}


@attrs.frozen
class Finding:
    path: Path
    line: int
    name: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: legacy {self.name}() — DMCA never computes FTI or λ; use {LEGACY_NAMES[self.name]}"


class _Visitor(ast.NodeVisitor):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.found: list[Finding] = []
        self.module_aliases: set[str] = set()  # names bound to a metrics module
        self.name_aliases: dict[str, str] = {}  # local name -> legacy name

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name in _MODULES - {"metrics"}:
                self.module_aliases.add(alias.asname or alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        if mod in _MODULES or (node.level and mod == "metrics"):
            for alias in node.names:
                if alias.name in LEGACY_NAMES:
                    self.name_aliases[alias.asname or alias.name] = alias.name
                    self.found.append(Finding(self.path, node.lineno, alias.name))
        elif mod in {"dmca_core", "dmca"} or (node.level and not mod):
            for alias in node.names:
                if alias.name == "metrics":
                    self.module_aliases.add(alias.asname or "metrics")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = _dotted(node.value)
        if node.attr in LEGACY_NAMES and (dotted in self.module_aliases or dotted in _MODULES - {"metrics"}):
            self.found.append(Finding(self.path, node.lineno, node.attr))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in self.name_aliases:
            self.found.append(Finding(self.path, node.lineno, self.name_aliases[node.func.id]))
        self.generic_visit(node)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def iter_python_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*.py")):
        if not _SKIP_DIRS.intersection(path.relative_to(root).parts):
            yield path


def check_file(path: Path) -> list[Finding]:
    """Legacy uses in one file; a file that does not parse is reported as a SyntaxError."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    visitor = _Visitor(path)
    visitor.visit(tree)
    unique = {(f.line, f.name): f for f in visitor.found}
    return [unique[k] for k in sorted(unique)]


def check_paths(paths: list[Path]) -> tuple[list[Finding], list[str]]:
    findings: list[Finding] = []
    problems: list[str] = []
    for root in paths:
        if not root.exists():
            problems.append(f"{root}: no such file or directory")
            continue
        for path in iter_python_files(root):
            if path.resolve() == Path(__file__).with_name("metrics.py").resolve():
                continue  # the guards themselves
            try:
                findings.extend(check_file(path))
            except (SyntaxError, UnicodeDecodeError) as exc:
                problems.append(f"{path}: cannot parse: {exc}")
    return findings, problems
