"""Planning: split the file into newline-aligned byte ranges and record one chunk row each."""

from __future__ import annotations

import json

import structlog
from sqlalchemy import delete, select

from shared import task_names
from shared.data.reader import ReaderError, inspect_file, plan_ranges
from shared.db.engine import unit_of_work
from shared.db.models import EtlChunk, EtlJob, utcnow
from shared.etl.finalize import fail_job

log = structlog.get_logger(__name__)


def plan_job(resources, job_id: int) -> list[int]:
    """Create the chunk rows (once) and enqueue every chunk not yet done; safe to run twice."""
    with unit_of_work(resources.sessions) as session:
        job = session.get(EtlJob, job_id, with_for_update=True)
        if job is None or job.status in ("succeeded", "failed"):
            return []
        job.plan_attempts += 1
        already_planned = job.planned_at is not None
        if not already_planned:
            job.status, job.phase = "running", "planning"
            job.started_at = job.started_at or utcnow()
    if not already_planned:
        try:
            layout = inspect_file(job.source_path)
            ranges = plan_ranges(layout, target_rows=resources.settings.chunk_rows)
        except ReaderError as exc:
            fail_job(resources, job_id, f"cannot read the file: {exc}")
            return []
        except OSError as exc:
            fail_job(resources, job_id, f"cannot open the file: {exc.strerror or exc}")
            return []
        warnings = [f"unknown column ignored: {name}" for name in layout.unknown_columns]
        with unit_of_work(resources.sessions) as session:
            job = session.get(EtlJob, job_id, with_for_update=True)
            session.execute(delete(EtlChunk).where(EtlChunk.job_id == job_id))
            now = utcnow()
            session.add_all(
                EtlChunk(job_id=job_id, chunk_index=r.index, byte_start=r.start, byte_end=r.end,
                         first_line_no=r.first_line_no, n_lines=r.n_lines, status="queued", enqueued_at=now)
                for r in ranges
            )
            job.encoding = layout.encoding
            job.chunks_total = len(ranges)
            job.rows_total = sum(r.n_lines for r in ranges)
            job.warnings = json.dumps(warnings) if warnings else None
            job.phase = "loading"
            job.planned_at = now
        log.info("etl_planned", job_id=job_id, chunks=len(ranges), encoding=layout.encoding)
    with unit_of_work(resources.sessions) as session:
        pending = list(session.scalars(
            select(EtlChunk.chunk_index).where(EtlChunk.job_id == job_id, EtlChunk.status != "done")
            .order_by(EtlChunk.chunk_index)
        ))
        total = session.scalar(select(EtlJob.chunks_total).where(EtlJob.id == job_id))
    for index in pending:
        resources.send_task(task_names.ETL_LOAD_CHUNK, job_id, index)
    if total == 0 or (already_planned and not pending):
        resources.send_task(task_names.ETL_FINALIZE_JOB, job_id)
    return pending
