"""Imported once by the local executor's forkserver: load the plugins (entry points included)
there, so that every worker forked from it starts with them already imported."""

import contextlib

from dmca_core import plugins
from dmca_core.errors import DmcaError

# e.g. DMCA_STRICT_PLUGINS with a broken plugin: the driver reports it in one line, and a worker
# that runs anyway loads the plugins itself (and fails the same way)
with contextlib.suppress(DmcaError):
    plugins.setup()
