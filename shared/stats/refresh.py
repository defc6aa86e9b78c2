"""One statistics refresh: merge the partial aggregates of every year's current job, build every
payload, and store the generation (database, then Redis) atomically. A lock makes overlapping
refreshes harmless; without the lock they would still each write one complete generation."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from shared.db.engine import unit_of_work
from shared.db.models import EtlJob, StatsPartial
from shared.rules import RULE_VERSION
from shared.stats.aggregate import merge_partials
from shared.stats.keys import latest_alias, year_of
from shared.stats.payloads import build_payloads
from shared.stats.store import write_generation

log = structlog.get_logger(__name__)
LOCK_KEY = "nhis:stats:refresh-lock"
LOCK_MS = 120_000
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def current_jobs(session) -> list[EtlJob]:
    """Succeeded jobs that still own rows (finalize removes the partials of superseded ones)."""
    owning = select(StatsPartial.job_id).distinct()
    return list(session.scalars(
        select(EtlJob).where(EtlJob.status == "succeeded", EtlJob.id.in_(owning)).order_by(EtlJob.id)
    ))


def dataset_version(jobs: list[EtlJob]) -> str:
    return ";".join(f"{job.year}:job{job.id}" for job in sorted(jobs, key=lambda j: (j.year or 0, j.id))) or "empty"


def refresh(resources, reason: str = "manual") -> dict:
    token = uuid.uuid4().hex
    cache = resources.cache
    if cache is not None and not cache.set(LOCK_KEY, token, nx=True, px=LOCK_MS):
        log.info("stats_refresh_skipped", reason=reason, why="another refresh holds the lock")
        return {"skipped": True}
    try:
        return _refresh(resources, reason)
    finally:
        if cache is not None:
            cache.eval(_RELEASE, 1, LOCK_KEY, token)


def _refresh(resources, reason: str) -> dict:
    started = time.perf_counter()
    with unit_of_work(resources.sessions) as session:
        jobs = current_jobs(session)
        last = session.scalars(
            select(EtlJob).where(EtlJob.status == "succeeded").order_by(EtlJob.finished_at.desc()).limit(1)
        ).first()
        parts = [bytes(p) for (p,) in session.execute(
            select(StatsPartial.payload).where(StatsPartial.job_id.in_([j.id for j in jobs]))
        )] if jobs else []
        last_etl = None
        if last is not None:
            last_etl = {"job_id": last.id, "year": last.year, "finished_at": last.finished_at.isoformat() + "Z",
                        "rows_loaded": last.rows_loaded, "rows_rejected": last.rows_rejected}
        version = dataset_version(jobs)
    t_read = time.perf_counter()
    aggregates = merge_partials(parts)
    settings = resources.settings
    meta = {
        "computed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "dataset_version": version,
        "rule_version": RULE_VERSION,
        "small_cell_min": settings.small_cell_min,
        "last_etl": last_etl,
        # per-year notes from ingest ({year: ["drinking blanks read as non-drinkers", ...]}): each
        # payload of that year carries them in meta.notes
        "notes_by_year": {},
    }
    payloads = build_payloads(aggregates, meta, settings.small_cell_min, settings.percentile_min_n)
    if aggregates.years:
        latest = max(aggregates.years)
        payloads.update({latest_alias(k): v for k, v in list(payloads.items()) if year_of(k) == latest})
    t_build = time.perf_counter()
    for attempt in range(3):
        try:
            generation = write_generation(resources, payloads, meta)
            break
        except IntegrityError:  # a concurrent refresh took this generation number; take the next
            if attempt == 2:
                raise
    seconds = time.perf_counter() - started
    log.info("stats_refreshed", reason=reason, generation=generation, payloads=len(payloads),
             dataset_version=version, seconds=round(seconds, 3))
    return {"generation": generation, "payloads": len(payloads), "seconds": seconds,
            "read_seconds": t_read - started, "build_seconds": t_build - t_read,
            "write_seconds": time.perf_counter() - t_build}
