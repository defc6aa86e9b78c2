"""The reaper (beat, every NHIS_REAPER_SECONDS): Redis keeps nothing on disk here, so queued
messages can vanish. Job and chunk rows in the database say what work is outstanding; the
reaper re-enqueues what is stuck and fails what keeps failing."""

from __future__ import annotations

import datetime as dt

import structlog
from sqlalchemy import or_, select

from shared import task_names
from shared.db.engine import unit_of_work
from shared.db.models import EtlChunk, EtlJob, utcnow
from shared.etl.finalize import fail_job

log = structlog.get_logger(__name__)


def broker_queue_empty(resources, queue: str) -> bool | None:
    """True when the Redis broker holds no message for the queue (None: cannot tell)."""
    if resources.settings.embedded:
        return None
    import redis

    client = redis.Redis.from_url(resources.settings.redis_db_url("broker"), socket_timeout=2)
    try:
        return client.llen(queue) == 0
    finally:
        client.close()


def reap(resources) -> dict:
    settings = resources.settings
    now = utcnow()
    timeout = dt.timedelta(seconds=settings.chunk_timeout_seconds + 30)
    grace = dt.timedelta(seconds=max(2 * settings.reaper_seconds, 5))
    etl_queue_empty = broker_queue_empty(resources, task_names.QUEUE_ETL)
    requeue: list[tuple[int, int]] = []
    replan: list[int] = []
    finalize: list[int] = []
    failed: list[tuple[int, str]] = []
    with unit_of_work(resources.sessions) as session:
        running_jobs = list(session.scalars(select(EtlJob).where(EtlJob.status.in_(("queued", "running")))))
        for job in running_jobs:
            if job.planned_at is None:
                if now - (job.updated_at or job.created_at) > grace and etl_queue_empty is not False:
                    if job.plan_attempts >= settings.chunk_max_attempts:
                        failed.append((job.id, f"planning did not finish after {job.plan_attempts} attempts"))
                    else:
                        replan.append(job.id)
                continue
            if job.chunks_done >= job.chunks_total:
                finalize.append(job.id)
                continue
            stuck = session.scalars(
                select(EtlChunk).where(
                    EtlChunk.job_id == job.id,
                    or_(
                        EtlChunk.status == "failed",
                        (EtlChunk.status == "running") & (EtlChunk.started_at < now - timeout),
                        (EtlChunk.status == "queued") & (EtlChunk.enqueued_at < now - (grace if etl_queue_empty else timeout)),
                    ),
                )
            )
            for chunk in stuck:
                if chunk.attempts >= settings.chunk_max_attempts:
                    lines = f"lines {chunk.first_line_no}-{chunk.first_line_no + chunk.n_lines - 1}"
                    reason = f": {chunk.error}" if chunk.error else " (worker lost or timed out each time)"
                    failed.append((job.id, f"chunk {chunk.chunk_index} ({lines}) failed after "
                                           f"{chunk.attempts} attempts{reason}"))
                    break
                chunk.status, chunk.enqueued_at = "queued", now
                requeue.append((job.id, chunk.chunk_index))
    for job_id, message in failed:
        fail_job(resources, job_id, message)
    failed_ids = {j for j, _ in failed}
    for job_id in replan:
        resources.send_task(task_names.ETL_PLAN_JOB, job_id)
    for job_id, index in requeue:
        if job_id not in failed_ids:
            resources.send_task(task_names.ETL_LOAD_CHUNK, job_id, index)
    for job_id in finalize:
        resources.send_task(task_names.ETL_FINALIZE_JOB, job_id)
    if requeue or replan or finalize or failed:
        log.info("etl_reaped", requeued=requeue, replanned=replan, finalized=finalize, failed=failed)
    return {"requeued": requeue, "replanned": replan, "finalized": finalize, "failed": [j for j, _ in failed]}
