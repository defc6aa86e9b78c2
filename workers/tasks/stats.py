"""Statistics tasks: a thin wrapper around shared.stats.refresh (idempotent, lock-guarded)."""

from __future__ import annotations

from shared import task_names
from shared.stats.refresh import refresh
from shared.stats.store import cache_is_warm, rewarm_cache
from workers.celery_app import app


@app.task(name=task_names.STATS_REFRESH, ignore_result=False, soft_time_limit=300, time_limit=330)
def refresh_stats(reason: str = "manual") -> dict:
    resources = app.resources
    result = refresh(resources, reason)
    if result.get("skipped") and resources.cache is not None and not cache_is_warm(resources):
        rewarm_cache(resources)  # Redis was flushed while another refresh ran: copy from the DB
    return result
