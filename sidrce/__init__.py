"""SIDRCE: turns DMCA's operations telemetry into FinOps figures (FTI, λ) for people, CI and Prometheus.

docs/finops-spec.md defines every figure; ``sidrce.collector`` computes them, ``sidrce.server``
serves them.
"""

from dmca_core import __version__

__all__ = ["__version__"]
