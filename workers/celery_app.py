"""The Celery entry point: `celery -A workers.celery_app worker|beat|flower` all point here.

It builds settings, logging and the per-process resources; tasks live in workers/tasks and call
plain functions in shared/.
"""

from __future__ import annotations

import structlog
from celery import Celery, signals

from shared.celery_config import build_celery_config
from shared.config import load_settings
from shared.logging_setup import configure_logging
from shared.resources import Resources


def create_celery() -> Celery:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format, component="worker")
    celery = Celery("nhis", include=["workers.tasks.system", "workers.tasks.etl", "workers.tasks.stats"])
    celery.conf.update(build_celery_config(settings))
    celery.resources = Resources(settings)
    return celery


app = create_celery()


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
            app.send_task(task_names.STATS_REFRESH, kwargs={"reason": "worker-start"})
        else:
            ensure_cache_warm(resources)
    except Exception:  # a missing table before migrations must not stop the worker
        structlog.get_logger(__name__).warning("stats_warm_on_start_skipped", exc_info=True)
