"""Planning: scan the file once, cut it into newline-aligned byte ranges bounded by lines and
bytes, decide what the reader must know about this release, and record one chunk row each."""

from __future__ import annotations

import json

import structlog
from sqlalchemy import delete, insert, select, update

from shared import task_names
from shared.data.source import SourceChanged, SourceError, SourceUnavailable
from shared.db.engine import unit_of_work
from shared.db.models import EtlChunk, EtlDuplicate, EtlJob, utcnow
from shared.etl.finalize import fail_job
from shared.etl.jobs import job_source_version
from shared.etl.states import ChunkStatus, JobPhase, JobStatus

log = structlog.get_logger(__name__)


def plan_job(resources, job_id: int) -> list[int]:
    """Create the chunk rows (once) and enqueue every chunk not yet done; safe to run twice.

    The one pass over the file (shared.data.reader.scan_file) cuts ranges by lines and bytes with
    a checksum each, isolates over-long lines, and profiles the file: subscriber ids seen twice
    (later lines become rejects naming the first), the age-band numbering, what a blank drinking
    cell means in this release, and the years present. Those decisions are stored with the job so
    every chunk reads with the same ones.

    The file may be a URL: it is streamed with one range request. A URL that cannot be reached
    right now leaves the job to the reaper, which plans it again (up to NHIS_CHUNK_MAX_ATTEMPTS);
    anything else that stops planning fails the job with the reason.
    """
    from shared.data.reader import FileChangedError, ReaderError, inspect_file, scan_file
    from shared.etl.chunk import FileChanged, open_planned_source

    settings = resources.settings
    with unit_of_work(resources.sessions) as session:
        job = session.get(EtlJob, job_id, with_for_update=True)
        if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return []
        job.plan_attempts += 1
        already_planned = job.planned_at is not None
        if not already_planned:
            job.status, job.phase = JobStatus.RUNNING, JobPhase.PLANNING
            job.started_at = job.started_at or utcnow()
        location, expected, year = job.source_path, job_source_version(job), job.year
        plan_attempts = job.plan_attempts
    if not already_planned:
        try:
            with open_planned_source(settings, location, expected) as source:
                layout = inspect_file(source)
                scan = scan_file(layout, target_rows=settings.chunk_rows,
                                 max_bytes=settings.chunk_max_mb * 2**20,
                                 max_line_bytes=settings.max_line_kb * 1024, source=source)
        except (FileChanged, FileChangedError, SourceChanged) as exc:
            fail_job(resources, job_id, str(exc))
            return []
        except ReaderError as exc:
            fail_job(resources, job_id, f"cannot read the file: {exc}")
            return []
        except SourceUnavailable as exc:
            if plan_attempts < settings.chunk_max_attempts:
                log.warning("etl_plan_source_unavailable", job_id=job_id, attempt=plan_attempts, error=str(exc))
                return []  # the reaper plans the job again after its grace period
            fail_job(resources, job_id, f"cannot reach the file after {plan_attempts} attempts: {exc}")
            return []
        except SourceError as exc:
            fail_job(resources, job_id, f"cannot read the file: {exc}")
            return []
        except OSError as exc:
            fail_job(resources, job_id, f"cannot open the file: {exc.strerror or exc}")
            return []
        options = scan.read_options(expected_year=year).to_dict()
        duplicates = options.pop("duplicates") or []
        warnings = [f"unknown column ignored: {name}" for name in layout.unknown_columns]
        warnings += list(scan.profile.warnings)
        others = {y: n for y, n in scan.profile.years.items() if y != year}
        if others:
            warnings.append(f"{sum(others.values())} rows of other years ({', '.join(map(str, sorted(others)))}) "
                            f"are rejected: this job loads {year} only")
        if duplicates:
            warnings.append(f"{len(duplicates)} lines repeat an earlier subscriber id; each is a reject "
                            "naming the line of the first")
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
                 "checksum": r.checksum, "oversized": r.oversized, "enqueued_at": now}
                for r in scan.ranges
            ])
            for first in range(0, len(duplicates), 10_000):
                session.execute(insert(EtlDuplicate), [
                    {"job_id": job_id, "line_no": line, "first_line_no": first_line}
                    for line, first_line in duplicates[first:first + 10_000]
                ])
            job.encoding = layout.encoding
            job.options = json.dumps(options)
            job.chunks_total = len(scan.ranges)
            job.rows_total = sum(r.n_lines for r in scan.ranges)
            job.warnings = json.dumps(warnings) if warnings else None
            job.phase = JobPhase.LOADING
            job.planned_at = now
        log.info("etl_planned", job_id=job_id, chunks=len(scan.ranges), encoding=layout.encoding,
                 duplicates=len(duplicates), age_scheme=options["age_scheme"],
                 drinking_blank_means_no=options["drinking_blank_means_no"])
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
