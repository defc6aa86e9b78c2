"""Celery configuration as one plain dict built from Settings (Flask's examples/celery habit).

The same dict configures the worker, beat, Flower and the producer-only app in the API and CLI.
"""

from __future__ import annotations

from datetime import timedelta

from celery import Celery
from kombu import Queue

from shared import task_names
from shared.config import Settings


def build_celery_config(settings: Settings) -> dict:
    if settings.embedded:
        broker_dir = (settings.data_dir / "broker").resolve()
        for sub in ("queue", "control", "processed"):
            (broker_dir / sub).mkdir(parents=True, exist_ok=True)
        transport = {
            "broker_url": "filesystem://",
            "broker_transport_options": {
                "data_folder_in": str(broker_dir / "queue"),
                "data_folder_out": str(broker_dir / "queue"),
                "control_folder": str(broker_dir / "control"),
                "processed_folder": str(broker_dir / "processed"),
                # the default 1 s poll makes control replies (ping, Flower) miss short timeouts
                "polling_interval": 0.1,
            },
            "result_backend": f"db+sqlite:///{(settings.data_dir / 'celery-results.sqlite3').resolve()}",
        }
    else:
        # A task not acked within the visibility timeout is redelivered: keep it above the
        # longest chunk (hard limit) so a slow chunk is never run twice in parallel.
        visibility = settings.chunk_timeout_seconds * 2 + 60
        transport = {
            "broker_url": settings.redis_db_url("broker"),
            "broker_transport_options": {"visibility_timeout": visibility},
            "result_backend": settings.redis_db_url("results"),
            "result_backend_transport_options": {"visibility_timeout": visibility},
        }
    return {
        **transport,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        "task_queues": [Queue(task_names.QUEUE_ETL), Queue(task_names.QUEUE_STATS)],
        "task_default_queue": task_names.QUEUE_STATS,
        "task_routes": {name: {"queue": q} for name, q in task_names.ROUTES.items()},
        "task_ignore_result": True,
        "result_expires": 3600,
        # Redelivered after a crash rather than lost; every task is idempotent (see docs/ARCHITECTURE.md).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.chunk_timeout_seconds,
        "task_time_limit": settings.chunk_timeout_seconds + 30,
        "worker_max_tasks_per_child": 200,
        "worker_max_memory_per_child": 600_000,  # KiB; a child above it is replaced after its task
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "beat_schedule": {
            "stats-refresh": {
                "task": task_names.STATS_REFRESH,
                "schedule": timedelta(seconds=settings.stats_refresh_seconds),
                "kwargs": {"reason": "beat"},
            },
            "etl-reaper": {
                "task": task_names.ETL_REAP,
                "schedule": timedelta(seconds=settings.reaper_seconds),
            },
        },
    }


def make_producer(settings: Settings) -> Celery:
    """A Celery app that only sends tasks by name (API and CLI); it registers no tasks."""
    app = Celery("nhis-producer", set_as_current=False)
    app.conf.update(build_celery_config(settings))
    return app
