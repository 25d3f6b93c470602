"""AES-256 keys from the environment: ``SIDRCE_AES_KEY`` (one key) or ``SIDRCE_AES_KEYS`` (rotation).

Key material lives only inside :class:`Key` objects whose repr shows the key id; errors name the
variable and the entry's position or key id, never the value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dmca_core.errors import ConfigError

ENV_KEY = "SIDRCE_AES_KEY"
ENV_KEYS = "SIDRCE_AES_KEYS"
KEY_BYTES = 32
KID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")  # no "|" or ":": the kid goes into the AAD and the env syntax


def fingerprint(key: bytes) -> str:
    """The key id of a key given without one: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:8]


class Key:
    """One AES-256-GCM key and its id. The key bytes are not kept outside the AEAD object."""

    __slots__ = ("aead", "budget_id", "kid")

    def __init__(self, kid: str, material: bytes) -> None:
        self.kid = kid
        self.aead = AESGCM(material)
        # the nonce budget belongs to the key, whatever id it travels under
        self.budget_id = hashlib.sha256(b"dmca-nonce-budget|" + material).hexdigest()

    def __repr__(self) -> str:
        return f"Key(kid={self.kid!r})"


class Keyring:
    """The configured keys: the first encrypts, all decrypt (looked up by key id)."""

    def __init__(self, keys: list[Key], source: str) -> None:
        self.keys = keys
        self.by_kid = {k.kid: k for k in keys}
        self.source = source

    @property
    def primary(self) -> Key | None:
        return self.keys[0] if self.keys else None

    def __repr__(self) -> str:
        return f"Keyring(source={self.source!r}, kids={[k.kid for k in self.keys]!r})"


def _decode(text: str, var: str, what: str) -> bytes:
    s = text.strip()
    s = s.replace("-", "+").replace("_", "/")  # accept URL-safe base64 as well
    s += "=" * (-len(s) % 4)
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{var}: {what} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise ConfigError(
            f"{var}: {what} decodes to {len(raw)} bytes; AES-256 needs {KEY_BYTES} (make one with `dmca keygen`)"
        )
    return raw


def load_keyring(environ: Mapping[str, str]) -> Keyring:
    """Parse the keys in ``environ``; an empty keyring if neither variable is set.

    Raises:
        ConfigError: both variables set, bad base64, wrong length, a bad or duplicate key id.
    """
    single = environ.get(ENV_KEY, "").strip()
    multi = environ.get(ENV_KEYS, "").strip()
    if single and multi:
        raise ConfigError(f"set only one of {ENV_KEY} or {ENV_KEYS} (put every key in {ENV_KEYS})")
    if single:
        material = _decode(single, ENV_KEY, "the key")
        return Keyring([Key(fingerprint(material), material)], ENV_KEY)
    keys: list[Key] = []
    if multi:
        for pos, entry in enumerate(multi.split(","), start=1):
            entry = entry.strip()
            if not entry:
                raise ConfigError(f"{ENV_KEYS}: entry {pos} is empty (expected kid:base64,kid:base64,...)")
            if ":" in entry:
                kid, _, b64 = entry.partition(":")
                kid = kid.strip()
                if not KID_RE.match(kid):
                    raise ConfigError(f"{ENV_KEYS}: entry {pos} has a bad key id (1-32 of A-Z a-z 0-9 _ . -)")
                material = _decode(b64, ENV_KEYS, f"entry {pos} (kid {kid!r})")
            else:  # a bare key: its id is its fingerprint, as for SIDRCE_AES_KEY
                material = _decode(entry, ENV_KEYS, f"entry {pos}")
                kid = fingerprint(material)
            if any(k.kid == kid for k in keys):
                raise ConfigError(f"{ENV_KEYS}: key id {kid!r} appears twice")
            keys.append(Key(kid, material))
    return Keyring(keys, ENV_KEYS if multi else "")
