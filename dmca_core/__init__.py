"""DMCA, the Dark Matter Causal Analyzer: core, hook specifications and plugin manager."""

from importlib.metadata import PackageNotFoundError, version

import pluggy

try:
    __version__ = version("dmca")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

#: Marker for hook implementations; plugins write ``@dmca_core.hookimpl``.
hookimpl = pluggy.HookimplMarker("dmca")

__all__ = ["__version__", "hookimpl"]
