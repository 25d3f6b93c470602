"""The built-in simulated domains, ``direct_lab`` and ``cosmology`` (docs/domains.md)."""

from __future__ import annotations

from collections.abc import Callable

from dmca_core import hookimpl
from dmca_core.domains.cosmology import Cosmology
from dmca_core.domains.direct_lab import DirectLab
from dmca_core.interfaces import Domain


@hookimpl(trylast=True)
def register_domains(register: Callable[[Domain], None]) -> None:
    register(DirectLab())
    register(Cosmology())
