"""Gunicorn settings for the `web` role (Procfile, Dockerfile.api); every value can be overridden by env.

`PORT` (as Procfile platforms set it) is honoured when `WEB_BIND` is not given.

Recycling without spikes (docs/DECISIONS.md, docs/ARCHITECTURE.md "The web process"):
- the app is preloaded: the master imports it and builds it once, and every worker, a replacement
  included, is a fork of that warm master (a fork costs milliseconds; a cold import plus
  `create_app` costs a few hundred, on a core the other workers need);
- nothing pooled crosses the fork: `create_app` opens no connection and `post_fork` disposes the
  engine's pool anyway (api/wsgi.py `after_fork`); a new worker connects in `post_worker_init`,
  once its signal handlers are installed and before its first request;
- objects built before the fork are frozen out of the garbage collector, so a worker's full
  collections do not walk (and copy) the master's modules;
- workers are recycled for memory, not on a schedule: above `WEB_MAX_WORKER_MEMORY_MB` resident
  (checked every `WEB_MEMORY_CHECK_EVERY` requests) a worker finishes its request and is replaced;
  `WEB_MAX_REQUESTS` (high, with 50% jitter so workers never leave together) is a backstop;
- a worker leaving normally skips the interpreter's teardown (`worker_exit`);
- heartbeat and metrics files live in /dev/shm, where no write waits on a disk.
"""

import gc
import glob
import logging
import multiprocessing
import os
import signal
import sys
import tempfile

bind = os.environ.get("WEB_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Sync workers: on 2 cores they beat gthread under keep-alive load (docs/PERFORMANCE.md).
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
worker_class = os.environ.get("WEB_WORKER_CLASS", "sync")
threads = int(os.environ.get("WEB_THREADS", "1"))
# Above the API's database read timeout (NHIS_DB_READ_TIMEOUT_SECONDS, 15 s): a slow dependency
# becomes a 503 from the app, never a worker killed mid-request.
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
preload_app = os.environ.get("WEB_PRELOAD", "1") != "0"
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "1000000"))
max_requests_jitter = max_requests // 2
max_worker_memory_mb = int(os.environ.get("WEB_MAX_WORKER_MEMORY_MB", "512"))  # 0: off
memory_check_every = int(os.environ.get("WEB_MEMORY_CHECK_EVERY", "1000"))  # requests between two looks
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
# Each worker touches a heartbeat file on every loop; on a disk-backed /tmp (a container's overlay
# filesystem) that call can block a worker (Gunicorn's FAQ): keep it in memory.
worker_tmp_dir = os.environ.get("WEB_WORKER_TMP_DIR") or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
# No control socket: its default path is one per user, shared by every Gunicorn on the host, and
# its server is a thread in the master that every later fork would copy.
control_socket_disable = True
limit_request_line = 4094  # bounded request line and headers (Gunicorn's defaults, stated)
limit_request_fields = 100
limit_request_field_size = 8190


def _fresh_metrics_folder() -> None:
    """Request and process metrics (api/observability.py) of every worker are summed through files
    in one folder. prometheus_client decides at import whether it writes there, and the preloaded
    app imports it before any server hook runs, so the folder is set here, when the master reads
    this file, and emptied of the last run's files. A HUP re-reads this file: the running workers'
    files are kept then."""
    if os.environ.get("NHIS_METRICS_MASTER_PID") == str(os.getpid()):
        return
    # In memory when the host has /dev/shm: workers write these files on every request (mmap), and
    # dirty pages of a disk-backed file are written back under them.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="nhis-metrics-", dir=shm)
    os.makedirs(folder, exist_ok=True)
    for stale in glob.glob(os.path.join(folder, "*.db")):
        os.unlink(stale)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    os.environ["NHIS_METRICS_MASTER_PID"] = str(os.getpid())


_fresh_metrics_folder()


def pre_fork(server, worker):
    gc.freeze()  # everything the master built moves to the permanent generation


# Until a new worker installs its own handlers (Gunicorn's Worker.init_signals, after post_fork),
# a stop signal runs the master's handler in the worker and is lost: the master then waits its
# 30-s graceful timeout for a worker that never heard it (a deploy's SIGTERM that lands while a
# recycled worker is being replaced). The worker holds them back from post_fork on and takes them,
# now with its own handlers, in post_worker_init.
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})


def post_fork(server, worker):
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    wsgi = sys.modules.get("api.wsgi")  # preloaded; absent for the bench's bare apps
    if wsgi is not None:
        wsgi.after_fork()


def post_worker_init(worker):
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # a held-back stop is handled now
    wsgi = sys.modules.get("api.wsgi")
    if wsgi is not None and worker.alive:
        wsgi.warm()


def _resident_mb() -> float:
    with open("/proc/self/statm", "rb") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def post_request(worker, req, environ, resp):
    if worker.nr >= worker.max_requests:  # Gunicorn ends this worker after this request
        _count_recycle("max_requests")
    elif max_worker_memory_mb and worker.nr % memory_check_every == 0 and os.path.exists("/proc/self/statm"):
        resident = _resident_mb()
        if resident > max_worker_memory_mb:
            worker.log.warning("worker %s: %.0f MB resident > WEB_MAX_WORKER_MEMORY_MB=%s, recycling",
                               worker.pid, resident, max_worker_memory_mb)
            _count_recycle("memory")
            worker.alive = False  # the sync loop ends after this request; the master forks a new one


def _count_recycle(reason: str) -> None:
    observability = sys.modules.get("api.observability")  # absent for the bench's bare apps
    if observability is not None:
        observability.WORKER_RECYCLES.labels(reason).inc()


def worker_exit(server, worker):
    """A worker leaving normally (replaced, or the server stopping) ends without the interpreter's
    teardown: freeing every object inherited from the master would write to, and so copy, most of
    the master's memory, a burst of CPU the other workers pay for while they carry the load. Its
    connections are closed properly first. A worker leaving on an error keeps Gunicorn's exit code."""
    if not worker.booted or worker.alive or os.environ.get("WEB_FAST_EXIT", "1") == "0":
        return
    wsgi = sys.modules.get("api.wsgi")
    if wsgi is not None:
        wsgi.before_exit()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
