"""Process counters for events the system of record cannot tell at scrape time (a request failed
open because Redis was down, a 429, a 503 because the database was unreachable).

Under Gunicorn each worker is its own process: when `PROMETHEUS_MULTIPROC_DIR` is set (gunicorn.conf.py
sets it before the workers start) the counters live in files there and /metrics sums every worker;
otherwise /metrics shows the answering process only.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.multiprocess import MultiProcessCollector

RATELIMIT_STORAGE_ERRORS = Counter(
    "nhis_ratelimit_storage_errors", "requests decided without the rate-limit store (Redis unavailable)",
    ["outcome"],  # open: served anyway (reads); closed: refused with 503 (work-creating routes)
)
RATELIMIT_REJECTED = Counter("nhis_ratelimit_rejected", "requests refused with 429", ["bucket"])
DATABASE_UNAVAILABLE = Counter("nhis_database_unavailable", "requests answered 503 because the database failed")


def process_registry() -> CollectorRegistry | None:
    """A registry summing every Gunicorn worker's counters, or None for this process's default one."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry
