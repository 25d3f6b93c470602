"""Hook implementations of the aes_gcm plugin: AES-256-GCM telemetry envelopes and ``dmca keygen``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from dmca_core import hookimpl
from dmca_core.errors import ConfigError, UsageError
from dmca_core.interfaces import Command, Encryptor

from . import budget as _budget
from .envelope import is_envelope as _is_envelope
from .keygen import KEYGEN
from .keys import ENV_KEY, ENV_KEYS, load_keyring
from .reader import Reader
from .writer import BatchWriter, LineWriter


class AesGcmEncryptor:
    """Keys come from ``SIDRCE_AES_KEY`` or ``SIDRCE_AES_KEYS`` in the given environment."""

    name = "aes-gcm"

    def writer(
        self, mode: Literal["line", "batch"], *, gzip: bool, environ: Mapping[str, str]
    ) -> LineWriter | BatchWriter:
        """A new stream. ``gzip`` compresses each batch inside its envelope; line mode ignores it
        (the emitter gzips the file instead). Raises ConfigError without a usable key."""
        if mode not in ("line", "batch"):
            raise UsageError(f"telemetry.encryption: {mode!r} is not line or batch")
        key = load_keyring(environ).primary
        if key is None:
            raise ConfigError(
                f"telemetry encryption is on but no key is set: set {ENV_KEY} or {ENV_KEYS} "
                "(make one with `dmca keygen`)"
            )
        if mode == "line":
            return LineWriter(key, _budget.budget)
        return BatchWriter(key, _budget.budget, compress=gzip)

    def reader(self, *, environ: Mapping[str, str], closed: bool = False) -> Reader:
        """``closed=True`` when every writer has finished: streams without a final envelope are then
        reported as ``truncated`` instead of listed in ``open_streams``."""
        return Reader(load_keyring(environ), closed=closed)

    def is_envelope(self, obj: Mapping[str, Any]) -> bool:
        return _is_envelope(obj)

    def has_key(self, environ: Mapping[str, str]) -> bool:
        """Whether a key is set (not whether it is valid: the reader says that). SIDRCE then
        expects sealed telemetry and refuses plaintext records unless told to allow them."""
        return bool(environ.get(ENV_KEY, "").strip() or environ.get(ENV_KEYS, "").strip())

    def __repr__(self) -> str:
        return "AesGcmEncryptor()"


ENCRYPTOR = AesGcmEncryptor()


@hookimpl
def register_encryptors(register: Callable[[Encryptor], None]) -> None:
    register(ENCRYPTOR)


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    register(KEYGEN)
