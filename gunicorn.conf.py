"""Gunicorn settings for the `web` role (Procfile, Dockerfile.api); every value can be overridden by env.

`PORT` (as Procfile platforms set it) is honoured when `WEB_BIND` is not given.
"""

import multiprocessing
import os
import shutil
import tempfile

bind = os.environ.get("WEB_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Sync workers: on 2 cores they beat gthread under keep-alive load (docs/PERFORMANCE.md).
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
worker_class = os.environ.get("WEB_WORKER_CLASS", "sync")
threads = int(os.environ.get("WEB_THREADS", "1"))
# Above the API's database read timeout (NHIS_DB_READ_TIMEOUT_SECONDS, 15 s): a slow dependency
# becomes a 503 from the app, never a worker killed mid-request.
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
preload_app = False  # each worker builds its own app and connections after fork
limit_request_line = 4094  # bounded request line and headers (Gunicorn's defaults, stated)
limit_request_fields = 100
limit_request_field_size = 8190


def on_starting(server):
    """Process counters (api/observability.py) of every worker are summed through files in one
    folder, created fresh here before any worker imports prometheus_client."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        folder = tempfile.mkdtemp(prefix="nhis-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    else:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
