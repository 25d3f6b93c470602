"""Worker preload for the LocalCluster dmca starts: one BLAS thread in each worker process.

Dask's nannies ask for it with ``OMP_NUM_THREADS=1`` in the environment they start workers with;
a worker forked from dmca's forkserver has the forkserver's environment instead, and numpy,
imported there already, has sized its BLAS thread pool. The local pool's initializer resizes it
at run time (threadpoolctl), as it does for the pool's own workers.
"""

from __future__ import annotations

from typing import Any

from dmca_core.default_plugins.local_executor import _init_worker


def dask_setup(worker: Any) -> None:
    """Called by Dask in each worker process as it starts (the worker's ``preload``)."""
    _init_worker(1)
