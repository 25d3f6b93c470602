"""The built-in ``csv`` domain: the user's own CSV (or Parquet) file (docs/domains.md)."""

from __future__ import annotations

from collections.abc import Callable

from dmca_core import hookimpl
from dmca_core.domains.csv_file import CsvDomain
from dmca_core.interfaces import Domain


@hookimpl(trylast=True)
def register_domains(register: Callable[[Domain], None]) -> None:
    register(CsvDomain())
