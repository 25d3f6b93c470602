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

# A worker's first act is to limit BLAS threads, and threadpoolctl resolves the real path of
# every loaded library to do it (~800 lstat calls, 8-13 ms in each new worker). Its cache of those
# paths, filled here once the plugins' libraries are loaded, is inherited by every forked worker.
with contextlib.suppress(ImportError):
    from threadpoolctl import threadpool_info

    threadpool_info()
