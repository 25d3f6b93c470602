"""How many messages each key has sealed in this process, against the NIST SP 800-38D bound.

With random 96-bit nonces, SP 800-38D (section 8.3) allows at most 2**32 invocations of the
authenticated encryption function per key; past that the chance of a repeated nonce, which breaks
GCM, is no longer negligible. We can only count this process's messages: the docs tell users to
rotate keys well before the bound across all processes.
"""

from __future__ import annotations

import threading

from dmca_core.errors import ConfigError

NIST_RANDOM_NONCE_LIMIT = 2**32


class NonceBudget:
    def __init__(self, limit: int = NIST_RANDOM_NONCE_LIMIT) -> None:
        self.limit = limit  # tests inject a small bound
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, budget_id: str, kid: str, n: int) -> None:
        """Reserve ``n`` messages for the key, or refuse (before anything is encrypted)."""
        with self._lock:
            used = self._used.get(budget_id, 0)
            if used + n > self.limit:
                raise ConfigError(
                    f"telemetry key {kid!r} has sealed {used} messages in this process; {n} more would pass "
                    f"the NIST SP 800-38D limit of {self.limit} for random nonces. Rotate: run `dmca keygen` "
                    "and put the new key first in SIDRCE_AES_KEYS"
                )
            self._used[budget_id] = used + n

    def used(self, budget_id: str) -> int:
        with self._lock:
            return self._used.get(budget_id, 0)


#: the process-wide budget
budget = NonceBudget()
