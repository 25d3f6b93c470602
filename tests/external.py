"""Real external programs (Prometheus, Chromium) for integration tests.

Missing program: the test is skipped on a developer's machine, but fails under
``DMCA_REQUIRE_INTEGRATION=1`` (CI sets it, after installing the Debian packages), so a skipped
integration test can never pass for a green CI run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def require_program(name: str, default: str, package: str) -> str:
    path = shutil.which(name) or default
    if Path(path).exists():
        return path
    why = f"{name} not installed (apt-get install {package})"
    if os.environ.get("DMCA_REQUIRE_INTEGRATION", "") not in ("", "0"):
        pytest.fail(f"DMCA_REQUIRE_INTEGRATION is set but {why}")
    pytest.skip(why)
