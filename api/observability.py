"""Process metrics: request latency per route, method and status (observed by api/finisher.py for
the Flask path and the fast paths alike), and counters for events the system of record cannot tell
at scrape time (a request failed open because Redis was down, a 429, a 503 because the database
was unreachable).

Under Gunicorn each worker is its own process: when `PROMETHEUS_MULTIPROC_DIR` is set (gunicorn.conf.py
sets it before the workers start) the counters live in files there and /metrics sums every worker;
otherwise /metrics shows the answering process only.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

RATELIMIT_STORAGE_ERRORS = Counter(
    "nhis_ratelimit_storage_errors", "requests decided without the rate-limit store (Redis unavailable)",
    ["outcome"],  # open: served anyway (reads); closed: refused with 503 (work-creating routes)
)
RATELIMIT_REJECTED = Counter("nhis_ratelimit_rejected", "requests refused with 429", ["bucket"])
DATABASE_UNAVAILABLE = Counter("nhis_database_unavailable", "requests answered 503 because the database failed")

WORKER_RECYCLES = Counter("nhis_web_worker_recycles", "Gunicorn workers that left to be replaced (gunicorn.conf.py)",
                          ["reason"])  # memory: above WEB_MAX_WORKER_MEMORY_MB; max_requests: the backstop

# Its _count series is the request counter (one series less to write on every request).
REQUEST_SECONDS = Histogram(
    "nhis_http_request_duration_seconds",
    "time from a request's start to its response headers, by route template, method and status",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
NO_ROUTE = "(no route)"  # the route label of a request no URL rule matched (a 404 or 405)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_series: dict[tuple[str, str, int], object] = {}  # bounded: routes x METHODS + other x statuses


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """One request in the latency histogram. `route` is the URL rule (`/api/v1/records/<int:record_id>`),
    never the raw path, and methods outside METHODS count as `other`: the label sets stay bounded
    whatever clients send."""
    if method not in METHODS:
        method = "other"
    key = (route, method, status)
    series = _series.get(key)
    if series is None:
        series = _series[key] = REQUEST_SECONDS.labels(route, method, str(status))
    series.observe(seconds)


def process_registry() -> CollectorRegistry | None:
    """A registry summing every Gunicorn worker's counters, or None for this process's default one."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry
