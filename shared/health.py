"""Readiness checks, one per dependency; each returns (ok, detail)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text


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
    with resources.producer.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return True, conn.transport_cls if isinstance(conn.transport_cls, str) else "ok"


def check_workers(resources, timeout: float = 1.0) -> tuple[bool, str]:
    replies = resources.producer.control.ping(timeout=timeout) or []
    names = sorted(name for reply in replies for name in reply)
    if not names:
        return False, "no worker answered a ping"
    return True, f"{len(names)} worker(s): {', '.join(names)}"


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
        try:
            ok, detail = check(resources)
        except Exception as exc:  # a check that raises is a failed check, with the reason
            ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
        results[name] = {"ok": ok, "detail": detail}
    return all(r["ok"] for r in results.values()), results
