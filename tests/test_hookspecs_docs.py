"""docs/plugins.md and dmca_core/hookspecs.py must agree, hook by hook and member by member."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import hookdoc

from dmca_core import hookspecs

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def _sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^### `([a-z_]+)\(([^)]*)\)`\s*$", text, flags=re.M)
    # parts: [preamble, name, args, body, name, args, body, ...]
    # a hook's body ends at the next section heading (## or ###), not at the next hook
    return {
        f"{parts[i]}({parts[i + 1]})": re.split(r"^#{2,3} ", parts[i + 2], flags=re.M)[0]
        for i in range(1, len(parts), 3)
    }


def _python_block(heading: str) -> str:
    """The first ```python block after ``heading`` (a whole heading line) in docs/plugins.md."""
    text = DOC.read_text(encoding="utf-8")
    after = text[text.index(f"\n{heading}\n") :]
    return re.search(r"^```python\n(.*?)^```$", after, flags=re.M | re.S).group(1)


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


def test_the_testing_a_plugin_example_passes_as_written(tmp_path: Path) -> None:
    test_file = tmp_path / "test_hello_doc.py"
    test_file.write_text(_python_block("## Testing a plugin"), encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DMCA_")}  # the block sets its own
    environ["PYTHONPATH"] = str(DOC.parents[1] / "examples" / "dmca-hello")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(test_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=environ,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout


def test_the_wrapping_example_delegates_and_logs(tmp_path: Path, use_plugin, fallback, caplog) -> None:
    import numpy as np

    from dmca_core import plugins
    from dmca_core.types import Table

    source = tmp_path / "logged_doc_plugin.py"
    source.write_text(_python_block("#### Wrapping another estimator"), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("logged_doc_plugin", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    use_plugin(module)
    rng = np.random.default_rng(3)
    z = rng.standard_normal(400)
    x = 0.8 * z + rng.standard_normal(400)
    table = Table.from_columns({"Z": z, "X": x, "Y": 1.5 * x - z + rng.standard_normal(400)})
    logged = plugins.get_estimator("logged")
    assert plugins.get_estimator("auto") is not logged  # priority 0
    with caplog.at_level("INFO", logger="logged"):
        got = logged.estimate(table, "X", "Y", ("Z",), 0.0, 1.0)
    assert got == fallback.estimate(table, "X", "Y", ("Z",), 0.0, 1.0)
    assert [r.getMessage() for r in caplog.records] == [
        f"X -> Y: {got.effect:.4g} [{got.ci_low:.4g}, {got.ci_high:.4g}]"
    ]
    assert logged.discover(table, 0.01) == fallback.discover(table, 0.01)
    assert plugins.provided_names(module) == {"estimators": ["logged"]}
