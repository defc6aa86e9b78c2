"""Statistics tasks: a thin wrapper around shared.stats.refresh (idempotent, lock-guarded)."""

from __future__ import annotations

from shared import task_names
from shared.stats.refresh import HARD_LIMIT_SECONDS, SOFT_LIMIT_SECONDS, refresh
from shared.stats.store import ensure_cache_warm
from workers.celery_app import app


@app.task(name=task_names.STATS_REFRESH, ignore_result=False, soft_time_limit=SOFT_LIMIT_SECONDS,
          time_limit=HARD_LIMIT_SECONDS)
def refresh_stats(reason: str = "manual") -> dict:
    resources = app.resources
    result = refresh(resources, reason)
    if result.get("skipped"):
        ensure_cache_warm(resources)  # Redis was flushed while another refresh ran: copy from the DB
    return result
