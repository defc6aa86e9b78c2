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
from pathlib import Path

import structlog
from sqlalchemy import delete, insert, select, update

from shared import task_names
from shared.data.source import (
    Source,
    SourceChanged,
    SourceError,
    SourceNotFound,
    SourceUnavailable,
    SourceVersion,
)
from shared.db.engine import unit_of_work
from shared.db.models import EtlChunk, EtlDuplicate, EtlJob, EtlReject, StatsPartial, utcnow
from shared.etl.jobs import end_job, job_source_version, open_job_source
from shared.etl.states import ChunkStatus, JobStatus
from shared.heartbeat import alive_workers, chunk_held, pid_alive

log = structlog.get_logger(__name__)


class SourceUnusable(Exception):
    """The job's file cannot be read as planned, and retrying will not change that: the job fails."""


class FileChanged(SourceUnusable):
    """The source file is not the one that was planned (size, mtime, version or a range checksum differ)."""


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
        location, expected = job.source_path, job_source_version(job)
        stored = json.loads(job.options) if job.options else {"expected_year": job.year}
        duplicates = dict(session.execute(
            select(EtlDuplicate.line_no, EtlDuplicate.first_line_no).where(
                EtlDuplicate.job_id == claim.job_id, EtlDuplicate.line_no >= claim.first_line_no,
                EtlDuplicate.line_no < claim.first_line_no + claim.n_lines)
        ).all())
    options = ReadOptions.from_dict({**stored, "duplicates": duplicates})

    t = time.perf_counter()
    byte_range = ByteRange(claim.chunk_index, claim.byte_start, claim.byte_end, claim.first_line_no, claim.n_lines,
                           claim.checksum, claim.oversized)
    try:
        with open_planned_source(resources.settings, location, expected) as source:
            result = read_range(inspect_file(source), byte_range, options, source=source)
    except (FileChangedError, SourceChanged) as exc:
        raise FileChanged(str(exc)) from None
    except SourceNotFound:
        raise FileChanged(f"the source file {_name(location)} was removed after planning") from None
    except SourceError as exc:
        if isinstance(exc, SourceUnavailable):
            raise  # may work on the next attempt (the task retries with backoff)
        raise SourceUnusable(f"cannot read {_name(location)}: {exc}") from None
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


def _name(location: str) -> str:
    return Path(location).name if "://" not in location else location.rsplit("/", 1)[-1] or location


def open_planned_source(settings, location: str, expected: SourceVersion) -> Source:
    """Open the job's file (a path or a URL) and refuse it if it changed since the job was created.

    Changed means another size, modification time (local) or validator (a URL's ETag or
    Last-Modified); each range is also checked against its CRC-32 when it is read.
    """
    try:
        source = open_job_source(settings, location)
    except FileNotFoundError:
        raise FileChanged(f"the source file {_name(location)} was removed after planning") from None
    try:
        check_unchanged(source, expected)
    except BaseException:
        source.close()
        raise
    return source


def check_unchanged(source: Source, expected: SourceVersion) -> None:
    """Refuse a file whose size, modification time or validator differ from ``expected``."""
    try:
        current = source.version
    except SourceNotFound:
        raise FileChanged(f"the source file {source.name} was removed after planning") from None
    if current.size != expected.size:
        raise FileChanged(f"the source file {source.name} changed after planning "
                          f"(size {expected.size} -> {current.size} bytes); ingest it again as a new job")
    if (expected.mtime_ns is not None and current.mtime_ns != expected.mtime_ns) or (
            expected.tag is not None and current.tag != expected.tag):
        how = (f"version {expected.tag} -> {current.tag or 'none'}" if expected.tag is not None
               else "it was modified since")
        raise FileChanged(f"the source file {source.name} changed after planning ({how}); "
                          "ingest it again as a new job")


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
