"""Ending a job: confirm every chunk against the database, replace older rows of the same
year, mark the job, and ask for a statistics refresh."""

from __future__ import annotations

import structlog
from sqlalchemy import delete, func, select

from shared import task_names
from shared.db.engine import unit_of_work
from shared.db.models import EtlChunk, EtlJob, StatsPartial, screenings, utcnow

log = structlog.get_logger(__name__)


def fail_job(resources, job_id: int, message: str) -> None:
    with unit_of_work(resources.sessions) as session:
        job = session.get(EtlJob, job_id, with_for_update=True)
        if job is None or job.status in ("succeeded", "failed"):
            return
        job.status, job.phase, job.error, job.finished_at = "failed", "failed", message[:4000], utcnow()
    log.warning("etl_job_failed", job_id=job_id, error=message)


def finalize_job(resources, job_id: int) -> str:
    """Succeed the job only if the chunk rows say every chunk is done; idempotent."""
    with unit_of_work(resources.sessions) as session:
        job = session.get(EtlJob, job_id, with_for_update=True)
        if job is None or job.status in ("succeeded", "failed"):
            return job.status if job else "missing"
        states = dict(session.execute(
            select(EtlChunk.status, func.count()).where(EtlChunk.job_id == job_id).group_by(EtlChunk.status)
        ).all())
        if sum(states.values()) != job.chunks_total or states.get("done", 0) != job.chunks_total:
            return "running"  # a redelivered or early finalize; the last chunk will call again
        job.phase = "finalizing"
        years = sorted({int(y) for (text,) in session.execute(
            select(EtlChunk.years).where(EtlChunk.job_id == job_id)) for y in (text or "").split(",") if y})
        if job.rows_loaded == 0:
            job.status, job.phase, job.finished_at = "failed", "failed", utcnow()
            job.error = (f"no row could be loaded: all {job.rows_rejected} data lines were rejected; "
                         "see GET /api/v1/etl/jobs/{id}/rejects")
            return "failed"
        # Older jobs' rows for these years that the new file did not replace are stale now.
        # Other jobs (succeeded or failed) that loaded rows of these years, found from chunk rows
        # rather than by scanning the table; only then is the (unindexed) delete worth running.
        older_jobs = sorted({
            j for j, text in session.execute(
                select(EtlChunk.job_id, EtlChunk.years).where(EtlChunk.job_id != job_id, EtlChunk.status == "done")
            ) if set(years) & {int(y) for y in (text or "").split(",") if y}
        })
        if older_jobs:
            session.execute(delete(screenings).where(screenings.c.year.in_(years),
                                                     screenings.c.job_id != job_id))
            session.execute(delete(StatsPartial).where(StatsPartial.job_id.in_(older_jobs)))
        job.year = max(years) if years else None
        job.status, job.phase, job.finished_at = "succeeded", "done", utcnow()
    log.info("etl_job_succeeded", job_id=job_id, years=years, replaced_jobs=older_jobs)
    try:
        from shared.stats.store import mark_stale

        mark_stale(resources)
    except Exception:
        log.warning("stats_mark_stale_failed", exc_info=True)
    resources.producer.send_task(task_names.STATS_REFRESH, kwargs={"reason": f"etl-job-{job_id}"})
    return "succeeded"

