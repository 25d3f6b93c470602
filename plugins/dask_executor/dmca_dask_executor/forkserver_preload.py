"""Imported once by the forkserver that forks the workers of the LocalCluster dmca starts, so that
each worker finds this work done instead of doing it while the run waits for it.

A starting worker reports its package versions to the scheduler (``get_versions``: nine
package-metadata look-ups and one ``uname -p`` subprocess, ~55 ms of CPU, cached for the
process) and serves Prometheus metrics (importing ``prometheus_client``, ~25 ms). That was most
of the ~100 ms of CPU a worker spent from its process start to registering with the scheduler;
it now registers ~40-50 ms after it starts. Done here, before the server forks anything or has
threads, the subprocess is also safe. A forkserver that lacks this module (the plugin not
installed) skips it.
"""

import distributed.http.worker.prometheus  # noqa: F401 - the worker's /metrics route (and distributed)
from distributed.versions import get_versions

get_versions()
