"""Readiness checks, one per dependency; each returns (ok, detail) and is bounded in time.

`readiness()` turns them into a verdict: the node is *ready* while the database answers (records
and statistics can be served; statistics fall back to the database copy without Redis); a failed
cache, broker, worker or statistics check leaves it ready but *degraded*, naming what is missing
(e.g. no worker: reads work, new ingests wait). Workers are seen through their heartbeats
(shared/heartbeat.py), never a broadcast ping.
"""

from __future__ import annotations

import datetime as dt
import os
import time

from sqlalchemy import text

REQUIRED = ("database",)  # without these the node cannot serve reads


def check_database(resources) -> tuple[bool, str]:
    with resources.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return True, resources.engine.dialect.name


def check_cache(resources) -> tuple[bool, str]:
    if resources.cache is None:
        return True, "embedded: statistics are served from the database"
    resources.cache.ping()
    return True, "redis"


def check_broker(resources) -> tuple[bool, str]:
    """The broker answers: a PING on its Redis database, or its folder in embedded mode. Not through
    the Celery producer, whose import (celery, kombu) the web process pays only when it sends a task."""
    settings = resources.settings
    if settings.embedded:
        folder = settings.data_dir / "broker"
        if not os.access(folder if folder.exists() else settings.data_dir, os.W_OK):
            return False, f"filesystem broker folder {folder} is not writable"
        return True, "filesystem"
    import redis

    client = redis.Redis.from_url(settings.redis_db_url("broker"), socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return True, "redis"


def check_workers(resources) -> tuple[bool, str]:
    from shared.heartbeat import alive_workers

    nodes = alive_workers(resources)
    if not nodes:
        return False, "no worker heartbeat: ingests and refreshes wait until a worker starts"
    newest = max(beat.seen_at for beat in nodes.values())
    return True, f"{len(nodes)} worker(s): {', '.join(sorted(nodes))}; last beat {time.time() - newest:.1f}s ago"


def check_stats_age(resources) -> tuple[bool, str]:
    from shared.stats.store import read_meta

    meta = read_meta(resources)
    if meta is None:
        return False, "statistics not computed yet"
    computed = dt.datetime.fromisoformat(meta["computed_at"])
    age = (dt.datetime.now(dt.UTC) - computed).total_seconds()
    limit = 3 * resources.settings.stats_refresh_seconds + 60
    if age > limit:
        return False, f"snapshot is {age:.0f}s old (limit {limit}s): is beat running?"
    return True, f"snapshot {age:.0f}s old"


CHECKS = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "workers": check_workers,
    "stats": check_stats_age,
}


def run_checks(resources) -> tuple[bool, dict]:
    results = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            ok, detail = check(resources)
        except Exception as exc:  # a check that raises is a failed check, with the reason
            ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
        results[name] = {"ok": ok, "detail": detail, "seconds": round(time.perf_counter() - started, 3)}
    return all(r["ok"] for r in results.values()), results


def readiness(resources) -> dict:
    """{"status": ready|degraded|not_ready, "ready": bool, "degraded": [...], "checks": {...}}."""
    _all_ok, checks = run_checks(resources)
    ready = all(checks[name]["ok"] for name in REQUIRED)
    degraded = sorted(name for name, r in checks.items() if not r["ok"] and name not in REQUIRED)
    status = "not_ready" if not ready else ("degraded" if degraded else "ready")
    return {"status": status, "ready": ready, "degraded": degraded, "checks": checks,
            "checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
