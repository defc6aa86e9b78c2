"""Planning: scan the file once, cut it into newline-aligned byte ranges bounded by lines and
bytes, decide what the reader must know about this release, and record one chunk row each."""

from __future__ import annotations

import json

import structlog
from sqlalchemy import delete, insert, select, update

from shared import task_names
from shared.db.engine import unit_of_work
from shared.db.models import EtlChunk, EtlDuplicate, EtlJob, utcnow
from shared.etl.finalize import fail_job
from shared.etl.states import ChunkStatus, JobPhase, JobStatus

log = structlog.get_logger(__name__)


def plan_job(resources, job_id: int) -> list[int]:
    """Create the chunk rows (once) and enqueue every chunk not yet done; safe to run twice."""
    from shared.data.reader import ReaderError, inspect_file, plan_ranges
    from shared.etl.chunk import FileChanged, check_unchanged

    with unit_of_work(resources.sessions) as session:
        job = session.get(EtlJob, job_id, with_for_update=True)
        if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return []
        job.plan_attempts += 1
        already_planned = job.planned_at is not None
        if not already_planned:
            job.status, job.phase = JobStatus.RUNNING, JobPhase.PLANNING
            job.started_at = job.started_at or utcnow()
        source, size, mtime_ns = job.source_path, job.file_size, job.source_mtime_ns
    if not already_planned:
        try:
            check_unchanged(source, size, mtime_ns)
            layout = inspect_file(source)
            ranges = plan_ranges(layout, target_rows=resources.settings.chunk_rows)
            duplicates: dict[int, int] = {}
        except FileChanged as exc:
            fail_job(resources, job_id, str(exc))
            return []
        except ReaderError as exc:
            fail_job(resources, job_id, f"cannot read the file: {exc}")
            return []
        except OSError as exc:
            fail_job(resources, job_id, f"cannot open the file: {exc.strerror or exc}")
            return []
        warnings = [f"unknown column ignored: {name}" for name in layout.unknown_columns]
        with unit_of_work(resources.sessions) as session:
            job = session.get(EtlJob, job_id, with_for_update=True)
            if job.status != JobStatus.RUNNING:  # cancelled while planning
                return []
            session.execute(delete(EtlChunk).where(EtlChunk.job_id == job_id))
            session.execute(delete(EtlDuplicate).where(EtlDuplicate.job_id == job_id))
            now = utcnow()
            session.execute(insert(EtlChunk), [
                {"job_id": job_id, "chunk_index": r.index, "byte_start": r.start, "byte_end": r.end,
                 "first_line_no": r.first_line_no, "n_lines": r.n_lines, "status": ChunkStatus.QUEUED,
                 "attempts": 0, "rows_loaded": 0, "rows_rejected": 0, "cells_rejected": 0,
                 "checksum": getattr(r, "checksum", None), "oversized": bool(getattr(r, "oversized", False)),
                 "enqueued_at": now}
                for r in ranges
            ])
            if duplicates:
                session.execute(insert(EtlDuplicate), [
                    {"job_id": job_id, "line_no": line, "first_line_no": first} for line, first in duplicates.items()
                ])
            job.encoding = layout.encoding
            job.chunks_total = len(ranges)
            job.rows_total = sum(r.n_lines for r in ranges)
            job.warnings = json.dumps(warnings) if warnings else None
            job.phase = JobPhase.LOADING
            job.planned_at = now
        log.info("etl_planned", job_id=job_id, chunks=len(ranges), encoding=layout.encoding)
    with unit_of_work(resources.sessions) as session:
        pending = list(session.scalars(
            select(EtlChunk.chunk_index).where(EtlChunk.job_id == job_id, EtlChunk.status == ChunkStatus.QUEUED)
            .order_by(EtlChunk.chunk_index)
        ))
        if already_planned:  # a re-plan: these messages are being re-sent now
            session.execute(update(EtlChunk).where(EtlChunk.job_id == job_id, EtlChunk.status == ChunkStatus.QUEUED)
                            .values(enqueued_at=utcnow()))
        total = session.scalar(select(EtlJob.chunks_total).where(EtlJob.id == job_id))
    for index in pending:
        resources.send_task(task_names.ETL_LOAD_CHUNK, job_id, index)
    if total == 0 or (already_planned and not pending):
        resources.send_task(task_names.ETL_FINALIZE_JOB, job_id)
    return pending
