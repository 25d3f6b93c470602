"""Check telemetry files line by line: prints ``FILE:LINE: reason`` for each bad line, exit 1 if any.

Usage: python scripts/validate_telemetry.py FILE... (the same as ``sidrce validate FILE...``).
"""

from __future__ import annotations

import sys

from sidrce.cli import main

if __name__ == "__main__":
    sys.exit(main(["validate", *sys.argv[1:]]))
