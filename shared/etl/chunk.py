"""Load one chunk: claim it, read its byte range, derive every value, and write rows, rejects and
the partial statistics into the job's own version, all in one transaction that also marks the
chunk done. Running it twice, or in two processes at once, leaves the same rows.

A claim is a guarded update recording the worker node and pid that hold the chunk and counting
the attempt, so a chunk whose worker died is taken over (and counted) by the next delivery, and a
chunk that kills every worker that reads it fails its job after NHIS_CHUNK_MAX_ATTEMPTS claims.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import structlog
from sqlalchemy import delete, insert, select, update

from shared import task_names
from shared.db.engine import unit_of_work
from shared.db.models import EtlChunk, EtlDuplicate, EtlJob, EtlReject, StatsPartial, utcnow
from shared.etl.jobs import end_job
from shared.etl.states import ChunkStatus, JobStatus
from shared.heartbeat import alive_workers, chunk_held, pid_alive

log = structlog.get_logger(__name__)


class FileChanged(Exception):
    """The source file is not the one that was planned (size, mtime or a range checksum differ)."""


@dataclass(frozen=True)
class Claim:
    """What one delivery of a chunk holds after a successful claim (passed, never re-read)."""

    chunk_id: int
    job_id: int
    chunk_index: int
    byte_start: int
    byte_end: int
    first_line_no: int
    n_lines: int
    checksum: int | None
    oversized: bool
    attempts: int
    worker: str
    pid: int

    @property
    def lines(self) -> str:
        return f"lines {self.first_line_no}-{self.first_line_no + self.n_lines - 1}"

    def guard(self):
        """The condition under which this claim still holds the chunk."""
        return ((EtlChunk.id == self.chunk_id) & (EtlChunk.status == ChunkStatus.RUNNING)
                & (EtlChunk.worker == self.worker) & (EtlChunk.worker_pid == self.pid)
                & (EtlChunk.attempts == self.attempts))


def chunk_lines(chunk: EtlChunk) -> str:
    return f"lines {chunk.first_line_no}-{chunk.first_line_no + chunk.n_lines - 1}"


def claim_chunk(resources, job_id: int, chunk_index: int, worker: str, pid: int) -> Claim | None:
    """Take the chunk for (worker, pid) and count the attempt; None when there is nothing to do.

    Nothing to do: the chunk is done or ended, its job is not running, or another live process
    holds it. A chunk held by a process that is gone (its node stopped beating, or its pid left the
    node's pool) is taken over. At the attempt limit the chunk fails, and its job with it.
    """
    limit = resources.settings.chunk_max_attempts
    failed_job = False
    with unit_of_work(resources.sessions) as session:
        chunk = session.scalar(
            select(EtlChunk).where(EtlChunk.job_id == job_id, EtlChunk.chunk_index == chunk_index)
            .with_for_update()
        )
        job_status = session.scalar(select(EtlJob.status).where(EtlJob.id == job_id))
        if chunk is None or job_status != JobStatus.RUNNING:
            return None
        if chunk.status not in (ChunkStatus.QUEUED, ChunkStatus.RUNNING):
            return None
        if chunk.status == ChunkStatus.RUNNING and (chunk.worker, chunk.worker_pid) != (worker, pid):
            if not _holder_gone(resources, chunk, worker):
                return None
        if chunk.attempts >= limit:
            reason = f": {chunk.error}" if chunk.error else " (its worker was lost each time)"
            chunk.status = ChunkStatus.FAILED
            end_job(session, job_id, JobStatus.FAILED,
                    f"chunk {chunk_index} ({chunk_lines(chunk)}) failed after {chunk.attempts} attempts{reason}")
            failed_job = True
        else:
            chunk.status, chunk.attempts, chunk.worker, chunk.worker_pid = (
                ChunkStatus.RUNNING, chunk.attempts + 1, worker, pid)
            chunk.started_at, chunk.error = utcnow(), None
            claim = Claim(chunk.id, job_id, chunk_index, chunk.byte_start, chunk.byte_end, chunk.first_line_no,
                          chunk.n_lines, chunk.checksum, chunk.oversized, chunk.attempts, worker, pid)
    if failed_job:
        log.warning("etl_chunk_gave_up", job_id=job_id, chunk=chunk_index, attempts=limit)
        resources.send_task(task_names.ETL_PURGE_VERSIONS)
        return None
    return claim


def _holder_gone(resources, chunk: EtlChunk, worker: str) -> bool:
    """Whether the process that claimed the chunk no longer works on it.

    On the holder's own node (node names are per host) its pid is checked directly: a child killed
    a moment ago is gone even before the node's next heartbeat says so, which matters because the
    broker redelivers its message at once. Elsewhere the heartbeats decide.
    """
    if chunk.worker == worker and chunk.worker_pid:
        return not pid_alive(chunk.worker_pid)
    claimed_ago = (utcnow() - chunk.started_at).total_seconds() if chunk.started_at else 1e9
    try:
        return not chunk_held(alive_workers(resources), chunk.worker, chunk.worker_pid, chunk.job_id,
                              chunk.chunk_index, claimed_ago, resources.settings)
    except Exception:  # heartbeats unreadable: do not take over; the reaper's timeout will
        return False


def release_chunk(resources, claim: Claim, error: str) -> bool:
    """Hand the chunk back (queued, error kept) after a failed attempt; the retry claims it again."""
    with unit_of_work(resources.sessions) as session:
        return bool(session.execute(
            update(EtlChunk).where(claim.guard()).values(status=ChunkStatus.QUEUED, error=error[:2000],
                                                          enqueued_at=utcnow())
        ).rowcount)


def stop_for_ended_job(resources, claim: Claim) -> None:
    """The job was cancelled or failed while this chunk ran: the chunk ends too (if still ours)."""
    with unit_of_work(resources.sessions) as session:
        session.execute(
            update(EtlChunk).where(claim.guard(), EtlChunk.job_id.in_(
                select(EtlJob.id).where(EtlJob.id == claim.job_id, EtlJob.status != JobStatus.RUNNING)))
            .values(status=ChunkStatus.CANCELLED, finished_at=utcnow())
        )


def job_still_running(resources, job_id: int) -> bool:
    with unit_of_work(resources.sessions) as session:
        return session.scalar(select(EtlJob.status).where(EtlJob.id == job_id)) == JobStatus.RUNNING


def load_chunk(resources, job_id: int, chunk_index: int, worker: str, pid: int | None = None) -> dict:
    claim = claim_chunk(resources, job_id, chunk_index, worker, pid or os.getpid())
    if claim is None:
        log.info("etl_chunk_skipped", job_id=job_id, chunk=chunk_index)
        return {"skipped": True}
    return run_claim(resources, claim)


def run_claim(resources, claim: Claim) -> dict:
    """Read, derive and write the claimed chunk; raises on failure (the caller releases it)."""
    from shared.data.reader import ByteRange, FileChangedError, ReadOptions, inspect_file, read_range
    from shared.etl.sink import load_rows
    from shared.etl.transform import derive
    from shared.stats.aggregate import chunk_partial

    timings: dict[str, float] = {}
    started = time.perf_counter()
    with unit_of_work(resources.sessions) as session:
        job = session.get(EtlJob, claim.job_id)
        source, size, mtime_ns = job.source_path, job.file_size, job.source_mtime_ns
        stored = json.loads(job.options) if job.options else {"expected_year": job.year}
        duplicates = dict(session.execute(
            select(EtlDuplicate.line_no, EtlDuplicate.first_line_no).where(
                EtlDuplicate.job_id == claim.job_id, EtlDuplicate.line_no >= claim.first_line_no,
                EtlDuplicate.line_no < claim.first_line_no + claim.n_lines)
        ).all())
    options = ReadOptions.from_dict({**stored, "duplicates": duplicates})

    t = time.perf_counter()
    check_unchanged(source, size, mtime_ns)
    try:
        result = read_range(
            inspect_file(source),
            ByteRange(claim.chunk_index, claim.byte_start, claim.byte_end, claim.first_line_no, claim.n_lines,
                      claim.checksum, claim.oversized),
            options,
        )
    except FileChangedError as exc:
        raise FileChanged(str(exc)) from None
    timings["read"] = time.perf_counter() - t

    if not job_still_running(resources, claim.job_id):  # cancelled while we read: stop here
        stop_for_ended_job(resources, claim)
        return {"skipped": True, "reason": "job ended"}

    t = time.perf_counter()
    frame = derive(result.frame, claim.job_id, claim.chunk_index)
    partial = chunk_partial(frame)
    timings["derive"] = time.perf_counter() - t

    rejects = result.rejects
    whole = int(rejects["whole_row"].sum()) if len(rejects) else 0
    cells = len(rejects) - whole
    t = time.perf_counter()
    with unit_of_work(resources.sessions) as session:
        conn = session.connection()
        conn.execute(delete(EtlReject).where(EtlReject.job_id == claim.job_id,
                                             EtlReject.chunk_index == claim.chunk_index))
        loaded = load_rows(conn, frame)
        if len(rejects):
            conn.execute(insert(EtlReject), reject_rows(rejects, claim.job_id, claim.chunk_index))
        conn.execute(delete(StatsPartial).where(StatsPartial.job_id == claim.job_id,
                                                StatsPartial.chunk_index == claim.chunk_index))
        conn.execute(insert(StatsPartial), [{"job_id": claim.job_id, "chunk_index": claim.chunk_index,
                                             "payload": partial}])
        timings["write"] = time.perf_counter() - t
        seconds = time.perf_counter() - started
        marked = conn.execute(
            update(EtlChunk).where(claim.guard())
            .values(status=ChunkStatus.DONE, rows_loaded=loaded, rows_rejected=whole, cells_rejected=cells,
                    finished_at=utcnow(), seconds=seconds, timings=json.dumps(timings),
                    years=",".join(str(y) for y in sorted(frame["year"].unique())))
        ).rowcount
        counted = marked and conn.execute(
            update(EtlJob).where(EtlJob.id == claim.job_id, EtlJob.status == JobStatus.RUNNING).values(
                chunks_done=EtlJob.chunks_done + 1,
                rows_read=EtlJob.rows_read + result.lines_read,
                rows_loaded=EtlJob.rows_loaded + loaded,
                rows_rejected=EtlJob.rows_rejected + whole,
                cells_rejected=EtlJob.cells_rejected + cells,
            )
        ).rowcount
        if not counted:  # another process took the chunk over, or the job ended: keep nothing
            session.rollback()
            stop_for_ended_job(resources, claim)
            return {"skipped": True, "reason": "claim lost or job ended"}
        done, total = conn.execute(
            select(EtlJob.chunks_done, EtlJob.chunks_total).where(EtlJob.id == claim.job_id)
        ).one()
    log.info("etl_chunk_done", job_id=claim.job_id, chunk=claim.chunk_index, rows=loaded, rejected=whole,
             attempt=claim.attempts, seconds=round(seconds, 3), **{k: round(v, 3) for k, v in timings.items()})
    if done >= total:
        resources.send_task(task_names.ETL_FINALIZE_JOB, claim.job_id)
    return {"rows_loaded": loaded, "rows_rejected": whole, "seconds": seconds}


def check_unchanged(source: str, size: int | None, mtime_ns: int | None) -> None:
    """Refuse to read a file that changed since the job was created (size or modification time)."""
    try:
        stat = os.stat(source)
    except FileNotFoundError:
        raise FileChanged(f"the source file {os.path.basename(source)} was removed after planning") from None
    if (size is not None and stat.st_size != size) or (mtime_ns is not None and stat.st_mtime_ns != mtime_ns):
        raise FileChanged(f"the source file {os.path.basename(source)} changed after planning "
                          f"(size {size} -> {stat.st_size} bytes); ingest it again as a new job")


def reject_rows(rejects, job_id: int, chunk_index: int) -> list[dict]:
    raw = rejects["raw_value"].astype(object).where(rejects["raw_value"].notna(), None)
    col = rejects["column"].astype(object).where(rejects["column"].notna(), None)
    return [
        {"job_id": job_id, "chunk_index": chunk_index, "line_no": int(line), "column_name": c,
         "reason": reason[:255], "raw_value": (r[:255] if isinstance(r, str) else r), "whole_row": bool(whole)}
        for line, c, reason, r, whole in zip(
            rejects["line_no"], col, rejects["reason"], raw, rejects["whole_row"], strict=True
        )
    ]
