"""Exceptions that the CLI turns into one-line messages and exit codes."""

from __future__ import annotations

from pathlib import Path


class DmcaError(Exception):
    """Base of every error DMCA reports to the user as one line."""

    exit_code = 1


class UsageError(DmcaError):
    """Bad input: a config key, a CSV column, a command-line value. Exit 2."""

    exit_code = 2


class ConfigError(UsageError):
    """A config file that cannot be used; the message names the file and key path."""


class DataError(UsageError):
    """User data (CSV, Parquet) that cannot be used; the message names the column and row."""


class PluginError(DmcaError):
    """A plugin failed to load (strict mode) or a requested plugin is not installed."""

    exit_code = 2


class OutputError(DmcaError):
    """The telemetry file or the results could not be written (disk full, device gone) during a
    run; what could be kept is said in the message. Exit 1: the input was fine."""


class LegacyMetricError(DmcaError):
    """Raised by the legacy FTI/λ names: DMCA never computes FTI or λ, SIDRCE does."""


class TelemetryRejected(DmcaError):
    """A telemetry line that is skipped, with the contract's reason code.

    Reason codes: ``not_json``, ``schema``, ``tampered``, ``unknown_kid``, ``missing_seq``,
    ``truncated``, ``unexpected_plaintext``, ``no_key``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def first_line(exc: BaseException) -> str:
    """An exception's message cut to one line of at most 300 characters, for a one-line report."""
    return (str(exc).splitlines() or [""])[0][:300]


def os_reason(exc: OSError, path: Path) -> str:
    """A short reason why writing to ``path`` (or creating it as a folder) failed, for one line."""
    if isinstance(exc, FileExistsError) and exc.filename == str(path):
        return "a file of that name exists; give a folder"
    if isinstance(exc, FileExistsError | NotADirectoryError):  # mkdir of a parent
        return "part of the path is a file, not a folder"
    return (exc.strerror or type(exc).__name__).lower()
