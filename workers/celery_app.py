"""The Celery entry point: `celery -A workers.celery_app worker|beat|flower` all point here.

It builds settings, logging and the per-process resources; tasks live in workers/tasks and call
plain functions in shared/.
"""

from __future__ import annotations

import os
import time

import structlog
from celery import Celery, bootsteps, signals

from shared.celery_config import build_celery_config
from shared.config import load_settings
from shared.logging_setup import configure_logging
from shared.resources import Resources


def create_celery() -> Celery:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format, component="worker")
    celery = Celery("nhis", include=["workers.tasks.system", "workers.tasks.etl", "workers.tasks.stats"])
    celery.conf.update(build_celery_config(settings))
    celery.resources = Resources(settings, role="worker")
    celery.steps["consumer"].add(WorkerHeartbeat)
    return celery


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Writes this node's heartbeat (node name, pool pids, queues) every few seconds from the
    main process's timer, so the reaper and /ready see a dead worker within seconds
    (shared/heartbeat.py)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self.tref = None
        self.started_at = time.time()

    def _beat(self, c) -> None:
        from celery.worker import state

        from shared import task_names
        from shared.heartbeat import WorkerBeat, write_beat

        info = getattr(c.pool, "info", None) or {}
        pids = (os.getpid(), *info.get("processes", ()))
        queues = tuple(sorted(c.app.amqp.queues.consume_from or ()))
        chunks = tuple(
            (int(r.args[0]), int(r.args[1]), int(r.worker_pid))
            for r in list(state.active_requests)
            if r.task_name == task_names.ETL_LOAD_CHUNK and r.worker_pid and len(r.args or ()) >= 2
        )
        try:
            write_beat(c.app.resources, WorkerBeat(c.hostname, pids, queues, self.started_at, time.time(), chunks))
        except Exception:  # Redis or the disk briefly unavailable: the next beat tries again
            structlog.get_logger(__name__).warning("worker_heartbeat_failed", exc_info=True)

    def start(self, c) -> None:
        self._beat(c)
        interval = c.app.resources.settings.worker_heartbeat_seconds
        self.tref = c.timer.call_repeatedly(interval, self._beat, (c,), priority=10)

    def stop(self, c) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def shutdown(self, c) -> None:
        self.stop(c)
        try:
            from shared.heartbeat import remove_beat

            remove_beat(c.app.resources, c.hostname)
        except Exception:
            structlog.get_logger(__name__).warning("worker_heartbeat_remove_failed", exc_info=True)


app = create_celery()


@signals.worker_init.connect
def _sweep_temp_files(**_kwargs) -> None:
    """Chunk CSVs of processes killed before their cleanup ran (a SIGKILL) are removed at start."""
    from shared.etl.tempfiles import sweep_temp_files

    removed = sweep_temp_files()
    if removed:
        structlog.get_logger(__name__).info("etl_temp_files_swept", removed=removed)


@signals.worker_init.connect
def _preload_task_code(**_kwargs) -> None:
    """Import what tasks import lazily (the reader, transform, partial statistics: pandas and numpy,
    about 0.3 s) once in the parent, so each forked pool process starts with it instead of the
    first plan or chunk it runs paying it (after every start and every pool-process replacement)."""
    import shared.data.reader  # noqa: F401
    import shared.etl.chunk  # noqa: F401
    import shared.etl.transform  # noqa: F401
    import shared.stats.aggregate  # noqa: F401


@signals.worker_process_init.connect
def _dispose_after_fork(**_kwargs) -> None:
    # Pooled connections inherited from the parent must never be shared with the child.
    app.resources.dispose()


@signals.task_prerun.connect
def _bind_task_context(task_id=None, task=None, **_kwargs) -> None:
    structlog.contextvars.bind_contextvars(task_id=task_id, task_name=getattr(task, "name", None))


@signals.task_postrun.connect
def _unbind_task_context(**_kwargs) -> None:
    structlog.contextvars.unbind_contextvars("task_id", "task_name")


@signals.worker_ready.connect
def _warm_stats_on_start(sender=None, **_kwargs) -> None:
    """A worker that starts and finds no statistics snapshot asks for one; if Redis lost the
    published snapshot (a restart), it copies it back from the database (reads stay warm)."""
    from shared import task_names
    from shared.stats.store import ensure_cache_warm, has_snapshot

    resources = app.resources
    try:
        if not has_snapshot(resources):
            resources.send_task(task_names.STATS_REFRESH, reason="worker-start")
        else:
            ensure_cache_warm(resources)
    except Exception:  # a missing table before migrations must not stop the worker
        structlog.get_logger(__name__).warning("stats_warm_on_start_skipped", exc_info=True)
