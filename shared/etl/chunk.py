"""Load one chunk: read its byte range, derive every value, write rows, rejects and partial
statistics, and mark it done, all in one transaction. Running it twice leaves the same rows."""

from __future__ import annotations

import json
import time

import pandas as pd
import structlog
from sqlalchemy import delete, insert, select, update

from shared import task_names
from shared.data.reader import ByteRange, inspect_file, read_range
from shared.db.engine import unit_of_work
from shared.db.models import EtlChunk, EtlJob, EtlReject, StatsPartial, screening_id, utcnow
from shared.etl.sink import load_rows
from shared.etl.transform import derive
from shared.stats.aggregate import chunk_partial

log = structlog.get_logger(__name__)


class ChunkSkipped(Exception):
    """The chunk is already done (a redelivery) or its job has ended."""


def claim_chunk(resources, job_id: int, chunk_index: int) -> EtlChunk:
    """Record the attempt before doing work, so the reaper can count attempts across crashes."""
    with unit_of_work(resources.sessions) as session:
        chunk = session.scalar(
            select(EtlChunk).where(EtlChunk.job_id == job_id, EtlChunk.chunk_index == chunk_index)
            .with_for_update()
        )
        job_status = session.scalar(select(EtlJob.status).where(EtlJob.id == job_id))
        if chunk is None or chunk.status == "done" or job_status != "running":
            raise ChunkSkipped(f"chunk {job_id}/{chunk_index} needs no work")
        chunk.status, chunk.attempts, chunk.started_at, chunk.error = "running", chunk.attempts + 1, utcnow(), None
        session.flush()
        return chunk


def load_chunk(resources, job_id: int, chunk_index: int) -> dict:
    try:
        chunk = claim_chunk(resources, job_id, chunk_index)
    except ChunkSkipped as exc:
        log.info("etl_chunk_skipped", reason=str(exc))
        return {"skipped": True}
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with unit_of_work(resources.sessions) as session:
        job = session.get(EtlJob, job_id)
        source, expected_year = job.source_path, job.expected_year

    t = time.perf_counter()
    layout = inspect_file(source)
    result = read_range(
        layout,
        ByteRange(chunk.chunk_index, chunk.byte_start, chunk.byte_end, chunk.first_line_no, chunk.n_lines),
        expected_year=expected_year,
    )
    timings["read"] = time.perf_counter() - t

    t = time.perf_counter()
    frame = derive(result.frame)
    frame["id"] = screening_id(frame["year"], frame["subscriber_id"])
    frame["job_id"] = job_id
    frame["chunk_index"] = chunk_index
    partial = chunk_partial(frame)
    timings["derive"] = time.perf_counter() - t

    rejects = result.rejects
    whole = int(rejects["whole_row"].sum()) if len(rejects) else 0
    cells = len(rejects) - whole
    t = time.perf_counter()
    with unit_of_work(resources.sessions) as session:
        conn = session.connection()
        # Ids are derived from (year, subscriber id), so a second run REPLACEs the same rows.
        if chunk.attempts > 1:
            conn.execute(delete(EtlReject).where(EtlReject.job_id == job_id, EtlReject.chunk_index == chunk_index))
        loaded = load_rows(conn, frame)
        if len(rejects):
            conn.execute(insert(EtlReject), _reject_rows(rejects, job_id, chunk_index))
        conn.execute(delete(StatsPartial).where(StatsPartial.job_id == job_id, StatsPartial.chunk_index == chunk_index))
        conn.execute(insert(StatsPartial), [{"job_id": job_id, "chunk_index": chunk_index, "payload": partial}])
        timings["write"] = time.perf_counter() - t
        seconds = time.perf_counter() - started
        marked = conn.execute(
            update(EtlChunk)
            .where(EtlChunk.id == chunk.id, EtlChunk.status != "done")
            .values(status="done", rows_loaded=loaded, rows_rejected=whole, cells_rejected=cells,
                    finished_at=utcnow(), seconds=seconds, timings=json.dumps(timings),
                    years=",".join(str(y) for y in sorted(frame["year"].unique())))
        ).rowcount
        if marked != 1:  # another delivery finished it first: keep its rows, drop ours
            session.rollback()
            return {"skipped": True}
        conn.execute(
            update(EtlJob).where(EtlJob.id == job_id).values(
                chunks_done=EtlJob.chunks_done + 1,
                rows_read=EtlJob.rows_read + result.lines_read,
                rows_loaded=EtlJob.rows_loaded + loaded,
                rows_rejected=EtlJob.rows_rejected + whole,
                cells_rejected=EtlJob.cells_rejected + cells,
            )
        )
        done, total = conn.execute(
            select(EtlJob.chunks_done, EtlJob.chunks_total).where(EtlJob.id == job_id)
        ).one()
    log.info("etl_chunk_done", job_id=job_id, chunk=chunk_index, rows=loaded, rejected=whole,
             seconds=round(seconds, 3), **{k: round(v, 3) for k, v in timings.items()})
    if done >= total:
        resources.send_task(task_names.ETL_FINALIZE_JOB, job_id)
    return {"rows_loaded": loaded, "rows_rejected": whole, "seconds": seconds}


def record_failure(resources, job_id: int, chunk_index: int, error: str) -> int:
    """Mark the attempt failed (the rows of a failed attempt were rolled back); return attempts."""
    with unit_of_work(resources.sessions) as session:
        chunk = session.scalar(
            select(EtlChunk).where(EtlChunk.job_id == job_id, EtlChunk.chunk_index == chunk_index)
        )
        if chunk is None or chunk.status == "done":
            return 0
        chunk.status, chunk.error = "failed", error[:2000]
        return chunk.attempts


def _reject_rows(rejects: pd.DataFrame, job_id: int, chunk_index: int) -> list[dict]:
    raw = rejects["raw_value"].astype(object).where(rejects["raw_value"].notna(), None)
    col = rejects["column"].astype(object).where(rejects["column"].notna(), None)
    return [
        {"job_id": job_id, "chunk_index": chunk_index, "line_no": int(line), "column_name": c,
         "reason": reason, "raw_value": (r[:255] if isinstance(r, str) else r), "whole_row": bool(whole)}
        for line, c, reason, r, whole in zip(
            rejects["line_no"], col, rejects["reason"], raw, rejects["whole_row"], strict=True
        )
    ]
