"""One statistics refresh: merge the partial aggregates of the current version of every year, build
every payload, and store the generation (database, then Redis) atomically.

Concurrency (a beat tick, an ETL success and an admin request can all ask at once):
- A Redis lock whose lifetime is at least the task's hard time limit, so it cannot expire while its
  holder may still run.
- A refresh asked for while another runs is not dropped: it leaves a "pending" mark and the holder
  runs once more after its current pass (the mark is re-checked after the lock is released, so no
  request falls between the two).
- Reads are one statement joining the year pointers to their partials: a consistent snapshot of
  the current versions. The write re-checks the pointers inside its transaction and gives up if a
  year was swapped meanwhile (a newer refresh is then due), so a late writer never publishes an
  older dataset over a newer one; Redis takes a generation only if it is newer than the one it holds.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from shared import task_names
from shared.db.engine import unit_of_work
from shared.db.models import EtlJob, StatsPartial, YearVersion
from shared.etl.states import JobStatus
from shared.rules import RULE_VERSION
from shared.stats.keys import latest_alias, year_of
from shared.stats.store import StaleSnapshot, write_generation

log = structlog.get_logger(__name__)
LOCK_KEY = "nhis:stats:refresh-lock"
PENDING_KEY = "nhis:stats:refresh-pending"
SOFT_LIMIT_SECONDS = 300  # the stats.refresh task's limits (workers/tasks/stats.py)
HARD_LIMIT_SECONDS = 330
LOCK_MS = (HARD_LIMIT_SECONDS + 30) * 1000
MAX_PASSES = 3  # passes one holder runs for requests that arrived meanwhile
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def dataset_version(versions: dict[int, int]) -> str:
    return ";".join(f"{year}:job{job_id}" for year, job_id in sorted(versions.items())) or "empty"


def _versions_with_partials(session, lock: bool = False) -> dict[int, int]:
    stmt = (select(YearVersion.year, YearVersion.job_id)
            .where(YearVersion.job_id.in_(select(StatsPartial.job_id).distinct())))
    if lock:  # a swap (finalize locks its pointer row for update) waits until our write commits
        stmt = stmt.with_for_update(read=True)
    return dict(session.execute(stmt).all())


def refresh(resources, reason: str = "manual") -> dict:
    cache = resources.cache
    if cache is None:  # embedded: one host; overlapping refreshes each write a full generation
        return _refresh(resources, reason)
    token = uuid.uuid4().hex
    if not cache.set(LOCK_KEY, token, nx=True, px=LOCK_MS):
        cache.set(PENDING_KEY, reason, px=LOCK_MS)
        if not cache.set(LOCK_KEY, token, nx=True, px=LOCK_MS):  # the holder may have just let go
            log.info("stats_refresh_queued", reason=reason, why="another refresh holds the lock")
            return {"skipped": True, "queued": True}
    result: dict = {}
    try:
        for _ in range(MAX_PASSES):
            cache.delete(PENDING_KEY)  # requests made before this pass are served by it
            result = _refresh(resources, reason)
            if not cache.exists(PENDING_KEY):
                break
            reason = "pending"
    finally:
        cache.eval(_RELEASE, 1, LOCK_KEY, token)
    if cache.exists(PENDING_KEY):  # asked for after our last check: a fresh task serves it
        resources.send_task(task_names.STATS_REFRESH, reason="pending")
    return result


def read_notes(options_json: str | None) -> list[str]:
    """What a reader of a year's statistics must know about how its file was read (planning's
    decisions, shared.data.reader.FileProfile; docs/DATA.md)."""
    options = json.loads(options_json) if options_json else {}
    notes = []
    if options.get("drinking_blank_means_no"):
        notes.append("drinking: this release exports 'does not drink' as a blank (no 0 answers, many blanks), "
                     "so blank drinking cells were read as non-drinkers")
    if options.get("age_scheme") == "2013":
        notes.append("age bands: this release numbers them 1-14 (1 = ages 20-24); they were renumbered to the "
                     "5-18 scheme used from 2014 (5 = ages 20-24)")
    return notes


def _read_notes(session, versions: dict[int, int]) -> dict[str, list[str]]:
    rows = session.execute(select(EtlJob.id, EtlJob.options).where(EtlJob.id.in_(list(versions.values())))).all()
    by_job = dict(rows)
    notes = {year: read_notes(by_job.get(job_id)) for year, job_id in versions.items()}
    return {str(year): n for year, n in notes.items() if n}  # JSON keys: the meta is stored as JSON


def _read_snapshot(resources) -> tuple[dict[int, int], list[bytes], dict | None, dict[str, list[str]]]:
    """The current version of each year and their partials, in one statement (one snapshot)."""
    with unit_of_work(resources.sessions) as session:
        rows = session.execute(
            select(YearVersion.year, YearVersion.job_id, StatsPartial.payload)
            .join(StatsPartial, StatsPartial.job_id == YearVersion.job_id)
        ).all()
        versions = {year: job_id for year, job_id, _ in rows}
        parts = [bytes(payload) for _, _, payload in rows]
        last = session.scalars(
            select(EtlJob).where(EtlJob.status == JobStatus.SUCCEEDED).order_by(EtlJob.finished_at.desc()).limit(1)
        ).first()
        last_etl = None
        if last is not None:
            last_etl = {"job_id": last.id, "year": last.year, "finished_at": last.finished_at.isoformat() + "Z",
                        "rows_loaded": last.rows_loaded, "rows_rejected": last.rows_rejected}
        notes = _read_notes(session, versions) if versions else {}
    return versions, parts, last_etl, notes


def _refresh(resources, reason: str) -> dict:
    from shared.stats.aggregate import merge_partials
    from shared.stats.mask_memo import memo_for
    from shared.stats.payloads import build_payloads

    started = time.perf_counter()
    versions, parts, last_etl, notes = _read_snapshot(resources)
    version = dataset_version(versions)
    t_read = time.perf_counter()
    aggregates = merge_partials(parts)
    settings = resources.settings
    meta = {
        "computed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "dataset_version": version,
        "rule_version": RULE_VERSION,
        "small_cell_min": settings.small_cell_min,
        "last_etl": last_etl,
        # per-year notes from ingest (how the year's file was read): each payload of that year
        # carries them in meta.notes
        "notes_by_year": notes,
    }
    payloads = build_payloads(aggregates, meta, settings.small_cell_min, settings.percentile_min_n,
                              memo=memo_for(resources))
    if aggregates.years:
        latest = max(aggregates.years)
        payloads.update({latest_alias(k): v for k, v in list(payloads.items()) if year_of(k) == latest})
    t_build = time.perf_counter()
    generation = None
    for attempt in range(3):
        try:
            generation = write_generation(
                resources, payloads, meta,
                still_current=lambda session: _versions_with_partials(session, lock=True) == versions,
            )
            break
        except StaleSnapshot:  # a year was swapped while we built: the newer data needs a new pass
            log.info("stats_refresh_superseded", reason=reason, dataset_version=version)
            if resources.cache is not None:
                resources.cache.set(PENDING_KEY, "superseded", px=LOCK_MS)
            else:
                resources.send_task(task_names.STATS_REFRESH, reason="superseded")
            return {"superseded": True, "dataset_version": version}
        except IntegrityError:  # a concurrent refresh took this generation number; take the next
            if attempt == 2:
                raise
    seconds = time.perf_counter() - started
    log.info("stats_refreshed", reason=reason, generation=generation, payloads=len(payloads),
             dataset_version=version, seconds=round(seconds, 3))
    return {"generation": generation, "payloads": len(payloads), "seconds": seconds,
            "read_seconds": t_read - started, "build_seconds": t_build - t_read,
            "write_seconds": time.perf_counter() - t_build, "dataset_version": version}
