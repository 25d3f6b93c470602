"""``dmca keygen``: print a fresh AES-256 telemetry key and its key id."""

from __future__ import annotations

import argparse
import base64
import secrets
import sys

from dmca_core.interfaces import Command

from .keys import ENV_KEY, ENV_KEYS, KEY_BYTES, KID_RE, fingerprint


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kid",
        help=f"print a {ENV_KEYS}=KID:key line with this key id instead of a {ENV_KEY} line",
    )


def _run(args: argparse.Namespace) -> int:
    kid = getattr(args, "kid", None)
    if kid is not None and not KID_RE.match(kid):
        print("dmca keygen: --kid must be 1-32 of A-Z a-z 0-9 _ . -", file=sys.stderr)
        return 2
    material = secrets.token_bytes(KEY_BYTES)
    text = base64.b64encode(material).decode("ascii")
    if kid is None:
        print(f"{ENV_KEY}={text}")
        print(f"# key id {fingerprint(material)}; to rotate, list it first: {ENV_KEYS}=<new>,<old>,...")
    else:
        # a whole assignment, as without --kid: `export $(dmca keygen --kid K | head -1)` works
        print(f"{ENV_KEYS}={kid}:{text}")
        print(f"# key id {kid}; to rotate, append the old entries: {ENV_KEYS}={kid}:<new>,<old>,...")
    return 0


KEYGEN = Command(
    name="keygen",
    help="print a new AES-256 key for encrypted telemetry, and its key id",
    configure=_configure,
    run=_run,
)
