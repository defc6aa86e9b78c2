"""ETL jobs as the API and CLI see them: create (commit, then enqueue), describe, wait."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import select

from shared import task_names
from shared.data.reader import (
    EmptyFileError,
    EncodingError,
    MissingColumnsError,
    NotCsvError,
    ReaderError,
    inspect_file,
)
from shared.db.engine import unit_of_work
from shared.db.models import EtlJob, utcnow

TERMINAL = ("succeeded", "failed")


class JobInputError(ValueError):
    """A request the ETL cannot accept; `status` is the HTTP status the API answers with."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def resolve_source(settings, path: str | Path) -> Path:
    """The file as an absolute path inside NHIS_DATA_DIR; anything outside is refused."""
    root = settings.data_dir.resolve()
    candidate = Path(path)
    if not candidate.is_absolute() and not candidate.exists():
        candidate = root / candidate  # a name relative to NHIS_DATA_DIR (what the API is sent)
    resolved = candidate.resolve()
    if resolved != root and root not in resolved.parents:
        raise JobInputError(400, "path_outside_data_dir", f"only files under NHIS_DATA_DIR ({root}) can be ingested",
                            {"path": str(path)})
    if not resolved.is_file():
        raise JobInputError(400, "file_not_found", f"no such file under NHIS_DATA_DIR: {path}", {"path": str(path)})
    return resolved


def precheck(path: Path) -> None:
    """Read the header only (never the file) so a bad file is refused before a job exists."""
    try:
        inspect_file(path)
    except ReaderError as exc:
        raise reader_error_to_input_error(exc) from None


def reader_error_to_input_error(exc: ReaderError) -> JobInputError:
    if isinstance(exc, MissingColumnsError):
        return JobInputError(422, "missing_columns", str(exc), {"missing": exc.missing})
    if isinstance(exc, NotCsvError):
        return JobInputError(415, "not_csv", str(exc))
    if isinstance(exc, EmptyFileError):
        return JobInputError(422, "empty_file", str(exc))
    if isinstance(exc, EncodingError):
        return JobInputError(422, "bad_encoding", str(exc))
    return JobInputError(422, "unreadable_file", str(exc))


def create_job(resources, path: str | Path, expected_year: int | None = None,
               original_filename: str | None = None, check: bool = True) -> int:
    """Insert the job row, commit it, then enqueue planning by name (never the other way round)."""
    source = resolve_source(resources.settings, path)
    if check:
        precheck(source)
    with unit_of_work(resources.sessions) as session:
        job = EtlJob(
            status="queued", phase="queued", source_path=str(source), expected_year=expected_year,
            original_filename=original_filename or source.name, file_size=source.stat().st_size,
        )
        session.add(job)
        session.flush()
        job_id = job.id
    resources.send_task(task_names.ETL_PLAN_JOB, job_id)
    return job_id


def describe(job: EtlJob) -> dict:
    seconds = None
    if job.started_at:
        seconds = ((job.finished_at or utcnow()) - job.started_at).total_seconds()
    return {
        "job_id": job.id,
        "status": job.status,
        "phase": job.phase,
        "file": job.original_filename,
        "year": job.year,
        "expected_year": job.expected_year,
        "encoding": job.encoding,
        "file_size": job.file_size,
        "progress": {
            "chunks_total": job.chunks_total,
            "chunks_done": job.chunks_done,
            "rows_total": job.rows_total,
            "rows_read": job.rows_read,
            "rows_loaded": job.rows_loaded,
            "rows_rejected": job.rows_rejected,
            "cells_rejected": job.cells_rejected,
        },
        "timings": {
            "created_at": job.created_at,
            "started_at": job.started_at,
            "planned_at": job.planned_at,
            "finished_at": job.finished_at,
            "seconds": seconds,
        },
        "warnings": json.loads(job.warnings) if job.warnings else [],
        "error": job.error,
    }


def get_job(resources, job_id: int) -> dict | None:
    with unit_of_work(resources.sessions) as session:
        job = session.get(EtlJob, job_id)
        return describe(job) if job else None


def list_jobs(resources, limit: int = 50) -> list[dict]:
    with unit_of_work(resources.sessions) as session:
        jobs = session.scalars(select(EtlJob).order_by(EtlJob.id.desc()).limit(limit))
        return [describe(job) for job in jobs]


def wait_for_job(resources, job_id: int, timeout: float = 3600, alive=None, progress=None) -> dict:
    """Poll the job row (the system of record) until it is terminal; `progress` sees each state."""
    deadline = time.monotonic() + timeout
    while True:
        job = get_job(resources, job_id)
        if progress:
            progress(job)
        if job["status"] in TERMINAL:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']} after {timeout}s")
        if alive is not None and not alive():
            raise RuntimeError(f"the system stopped while job {job_id} was {job['status']}")
        time.sleep(0.25)
