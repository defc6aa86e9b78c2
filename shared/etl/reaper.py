"""The reaper (beat, every NHIS_REAPER_SECONDS): the job and chunk rows say what work is
outstanding, the worker heartbeats say who is alive; the reaper re-sends what nobody holds.

- A running chunk whose holder is gone (its node stopped beating, or no longer lists the chunk as
  running) goes back to queued (a guarded update naming the claim it replaces) and is re-sent,
  within seconds of the loss rather than after a timeout.
- A queued chunk whose message was lost (Redis keeps nothing on disk here) is re-sent once the
  broker queue is empty and a grace period has passed.
- Planning that never finished is re-sent; a job whose chunks are all done is finalized.
- Versions waiting to be purged get a purge task.
The reaper never counts an attempt: only a claim does, so a re-send of a chunk that finished
meanwhile costs nothing (the claim sees it done).
"""

from __future__ import annotations

import datetime as dt

import structlog
from sqlalchemy import select, update

from shared import task_names
from shared.db.engine import unit_of_work
from shared.db.models import EtlChunk, EtlJob, YearVersion, utcnow
from shared.etl.finalize import fail_job
from shared.etl.states import ChunkStatus, JobStatus, VersionState
from shared.heartbeat import alive_workers, chunk_held

log = structlog.get_logger(__name__)


def broker_queue_empty(resources, queue: str) -> bool | None:
    """True when the Redis broker holds no message for the queue (None: cannot tell)."""
    if resources.settings.embedded:
        return None
    import redis

    client = redis.Redis.from_url(resources.settings.redis_db_url("broker"), socket_timeout=2,
                                  socket_connect_timeout=2)
    try:
        return client.llen(queue) == 0
    except Exception:
        return None
    finally:
        client.close()


def reap(resources) -> dict:
    settings = resources.settings
    now = utcnow()
    timeout = dt.timedelta(seconds=settings.chunk_timeout_seconds + 30)
    grace = dt.timedelta(seconds=max(2 * settings.reaper_seconds, 5))
    etl_queue_empty = broker_queue_empty(resources, task_names.QUEUE_ETL)
    try:
        workers = alive_workers(resources)
    except Exception:  # heartbeats unreadable: fall back to the wall-clock timeout
        workers = None
    requeue: list[tuple[int, int]] = []
    replan: list[int] = []
    finalize: list[int] = []
    failed: list[tuple[int, str]] = []
    with unit_of_work(resources.sessions) as session:
        active = list(session.scalars(
            select(EtlJob).where(EtlJob.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
        ))
        for job in active:
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
            chunks = session.scalars(
                select(EtlChunk).where(EtlChunk.job_id == job.id,
                                       EtlChunk.status.in_([ChunkStatus.QUEUED, ChunkStatus.RUNNING]))
            )
            for chunk in chunks:
                if chunk.status == ChunkStatus.RUNNING:
                    if not _holder_lost(chunk, workers, now, timeout, settings):
                        continue
                    moved = session.execute(
                        update(EtlChunk).where(
                            EtlChunk.id == chunk.id, EtlChunk.status == ChunkStatus.RUNNING,
                            EtlChunk.worker == chunk.worker, EtlChunk.worker_pid == chunk.worker_pid,
                            EtlChunk.attempts == chunk.attempts,
                        ).values(status=ChunkStatus.QUEUED, enqueued_at=now,
                                 error=chunk.error or f"worker {chunk.worker} (pid {chunk.worker_pid}) was lost")
                    ).rowcount
                    if moved:
                        requeue.append((job.id, chunk.chunk_index))
                    continue
                waited = now - (chunk.enqueued_at or now)
                if waited > (grace if etl_queue_empty else timeout):
                    moved = session.execute(
                        update(EtlChunk).where(EtlChunk.id == chunk.id, EtlChunk.status == ChunkStatus.QUEUED,
                                               EtlChunk.enqueued_at == chunk.enqueued_at)
                        .values(enqueued_at=now)
                    ).rowcount
                    if moved:
                        requeue.append((job.id, chunk.chunk_index))
        purge_due = session.scalar(
            select(EtlJob.id).where(EtlJob.version_state.in_([VersionState.RETIRED, VersionState.DISCARDED]),
                                    EtlJob.id.not_in(select(YearVersion.job_id))).limit(1)
        ) is not None
    for job_id, message in failed:
        fail_job(resources, job_id, message)
    for job_id in replan:
        resources.send_task(task_names.ETL_PLAN_JOB, job_id)
    for job_id, index in requeue:
        resources.send_task(task_names.ETL_LOAD_CHUNK, job_id, index)
    for job_id in finalize:
        resources.send_task(task_names.ETL_FINALIZE_JOB, job_id)
    if purge_due:
        resources.send_task(task_names.ETL_PURGE_VERSIONS)
    if requeue or replan or finalize or failed:
        log.info("etl_reaped", requeued=requeue, replanned=replan, finalized=finalize, failed=failed)
    return {"requeued": requeue, "replanned": replan, "finalized": finalize, "failed": [j for j, _ in failed],
            "purge": purge_due}


def _holder_lost(chunk: EtlChunk, workers, now: dt.datetime, timeout: dt.timedelta, settings) -> bool:
    claimed_ago = (now - chunk.started_at) if chunk.started_at else timeout * 2
    if workers is None:
        return claimed_ago > timeout
    return not chunk_held(workers, chunk.worker, chunk.worker_pid, chunk.job_id, chunk.chunk_index,
                          claimed_ago.total_seconds(), settings)
