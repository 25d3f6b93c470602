"""Imported once by the local executor's forkserver: load the plugins (entry points included)
there, so that every worker forked from it starts with them already imported."""

import contextlib
import warnings

from dmca_core import plugins
from dmca_core.errors import DmcaError

# e.g. DMCA_STRICT_PLUGINS with a broken plugin: the driver reports it in one line, and a worker
# that runs anyway loads the plugins itself (and fails the same way). Warnings likewise: the
# driver gives them once, in its own format
with contextlib.suppress(DmcaError), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    plugins.setup()
