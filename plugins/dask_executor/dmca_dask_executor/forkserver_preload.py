"""Imported once by the forkserver that forks the workers of the LocalCluster dmca starts, so that
each worker finds this work done instead of doing it while the run waits for it.

A starting worker reports its package versions to the scheduler (``get_versions``: nine
package-metadata look-ups, ~55 ms of CPU, cached for the process) and serves Prometheus metrics
(importing ``prometheus_client``, ~25 ms); together they were most of a worker's ~100 ms start-up.
A forkserver that lacks this module (the plugin not installed) simply skips it.
"""

import distributed.http.worker.prometheus  # noqa: F401 - the worker's /metrics route (and distributed)
from distributed.versions import get_versions

get_versions()
