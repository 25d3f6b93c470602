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


def missing(why: str) -> None:
    """Skip for want of an external program, or fail when ``DMCA_REQUIRE_INTEGRATION`` is set."""
    if os.environ.get("DMCA_REQUIRE_INTEGRATION", "") not in ("", "0"):
        pytest.fail(f"DMCA_REQUIRE_INTEGRATION is set but {why}")
    pytest.skip(why)


def require_program(name: str, default: str, package: str) -> str:
    path = shutil.which(name) or default
    if not Path(path).exists():
        missing(f"{name} not installed (Debian: apt-get install -y {package})")
    return path
