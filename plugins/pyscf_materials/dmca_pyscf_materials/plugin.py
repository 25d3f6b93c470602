"""Hook implementations of the pyscf_materials plugin.

Importing this module does not import PySCF: the model computes (and imports PySCF) only when
neither the cache nor the shipped table has the requested preset.
"""

from __future__ import annotations

from collections.abc import Callable

from dmca_core import hookimpl
from dmca_core.interfaces import Command, MaterialModel

from .command import MATERIALS_COMMAND
from .model import PyscfSilicon


@hookimpl
def register_material_models(register: Callable[[MaterialModel], None]) -> None:
    register(PyscfSilicon("converged"))


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    register(MATERIALS_COMMAND)
