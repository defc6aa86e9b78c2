"""Ending a job: confirm every chunk against the database, then make the job's version the
current version of its year in one transaction (the swap), or discard it on failure."""

from __future__ import annotations

import structlog
from sqlalchemy import func, select, update

from shared import task_names
from shared.db.engine import unit_of_work
from shared.db.models import EtlChunk, EtlJob, YearVersion, utcnow
from shared.etl.jobs import end_job
from shared.etl.states import ChunkStatus, JobPhase, JobStatus, VersionState

log = structlog.get_logger(__name__)


def fail_job(resources, job_id: int, message: str) -> bool:
    """Fail an active job; its version is discarded and the previous one stays current."""
    with unit_of_work(resources.sessions) as session:
        ended = end_job(session, job_id, JobStatus.FAILED, message)
    if ended:
        log.warning("etl_job_failed", job_id=job_id, error=message)
        resources.send_task(task_names.ETL_PURGE_VERSIONS)
    return ended


def finalize_job(resources, job_id: int) -> str:
    """Succeed the job only if the chunk rows say every chunk is done, and swap it in; idempotent.

    The swap is one transaction: the job row and the year's pointer row are locked, the pointer
    moves to this job, the previous version is marked retired. Readers (records, statistics
    refresh, metrics) resolve a year through the pointer, so they see the old version in full
    until this commit and the new one in full after it.
    """
    with unit_of_work(resources.sessions) as session:
        job = session.get(EtlJob, job_id, with_for_update=True)
        if job is None or JobStatus(job.status).terminal:
            return job.status if job else "missing"
        states = dict(session.execute(
            select(EtlChunk.status, func.count()).where(EtlChunk.job_id == job_id).group_by(EtlChunk.status)
        ).all())
        if sum(states.values()) != job.chunks_total or states.get(ChunkStatus.DONE, 0) != job.chunks_total:
            return JobStatus.RUNNING  # a redelivered or early finalize; the last chunk will call again
        if job.rows_loaded == 0:
            end_job(session, job_id, JobStatus.FAILED,
                    f"no row could be loaded: all {job.rows_rejected} data lines were rejected; "
                    f"see GET /api/v1/etl/jobs/{job_id}/rejects")
            outcome = JobStatus.FAILED
        else:
            pointer = session.get(YearVersion, job.year, with_for_update=True)
            previous = pointer.job_id if pointer is not None else None
            if pointer is None:
                session.add(YearVersion(year=job.year, job_id=job_id, activated_at=utcnow()))
            else:
                pointer.job_id, pointer.activated_at = job_id, utcnow()
            if previous is not None and previous != job_id:
                session.execute(update(EtlJob).where(EtlJob.id == previous)
                                .values(version_state=VersionState.RETIRED))
            job.status, job.phase, job.finished_at = JobStatus.SUCCEEDED, JobPhase.DONE, utcnow()
            job.active_year, job.version_state = None, VersionState.CURRENT
            outcome = JobStatus.SUCCEEDED
    if outcome is JobStatus.FAILED:
        resources.send_task(task_names.ETL_PURGE_VERSIONS)
        return outcome
    log.info("etl_job_succeeded", job_id=job_id, year=job.year, replaced_job=previous)
    try:
        from shared.stats.store import mark_stale

        mark_stale(resources)
    except Exception:
        log.warning("stats_mark_stale_failed", exc_info=True)
    resources.send_task(task_names.STATS_REFRESH, reason=f"etl-job-{job_id}")
    resources.send_task(task_names.ETL_PURGE_VERSIONS)  # the retired version, and the job's upload
    return outcome
