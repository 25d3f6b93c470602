"""Legacy FTI/λ: the guards raise, and ``dmca migrate-check`` finds uses by AST."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmca_core import metrics
from dmca_core.cli import main
from dmca_core.errors import LegacyMetricError


@pytest.mark.parametrize("name", sorted(metrics.LEGACY_NAMES))
def test_every_legacy_name_raises_and_points_to_sidrce(name: str) -> None:
    with pytest.raises(LegacyMetricError, match="sidrce"):
        getattr(metrics, name)([1.0], [2.0])


def test_migrate_check_finds_uses_not_comments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "old.py").write_text(
        "from dmca_core.metrics import compute_fti as fti\n"   # line 1: import
        "import dmca_core.metrics as m\n"
        "# compute_lambda(x) in a comment is fine\n"
        "s = 'compute_fti(1)'\n"                               # a string is fine
        "x = fti(1, 2)\n"                                      # line 5: call via alias
        "y = m.compute_lambda(3)\n"                            # line 6: attribute
    )  # fmt: skip
    (tmp_path / "clean.py").write_text("def compute_fti(x):\n    return x\n\ncompute_fti(1)\n")
    assert main(["migrate-check", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": legacy")[0] for line in out] == [
        f"{tmp_path / 'old.py'}:1",
        f"{tmp_path / 'old.py'}:5",
        f"{tmp_path / 'old.py'}:6",
    ]
    assert all("sidrce" in line for line in out)


def test_migrate_check_clean_tree_exits_0(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("import math\nprint(math.pi)\n")
    assert main(["migrate-check", "-q", str(tmp_path)]) == 0


def test_migrate_check_on_this_repository_is_clean() -> None:
    root = Path(__file__).resolve().parents[1]
    assert main(["migrate-check", "-q", str(root / "dmca_core"), str(root / "plugins")]) == 0
