"""ETL jobs as the API and CLI see them: create (commit, then enqueue), cancel, describe, wait.

A job reads a path under NHIS_DATA_DIR or a URL under an allowed prefix (NHIS_INGEST_URL_PREFIXES;
see shared/data/source.py): both are confined, and a URL is read with byte ranges by every worker.

A job loads one year into its own version of that year. Creating a job for a year that already has
a queued or running one is refused (`JobConflict`, HTTP 409): the unique `active_year` column makes
the database the arbiter, so two concurrent requests cannot both win. A request carrying an
idempotency key returns the job the first request with that key created.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from shared import task_names
from shared.data.source import (
    Source,
    SourceError,
    SourceRefused,
    SourceVersion,
    UrlPolicy,
    is_url,
    open_source,
)
from shared.db.engine import unit_of_work
from shared.db.models import EtlChunk, EtlJob, utcnow
from shared.etl.states import ACTIVE_JOB, ChunkStatus, JobPhase, JobStatus, VersionState

TERMINAL = tuple(s.value for s in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED))
IDEMPOTENCY_HOURS = 24  # a key is honoured this long, as payment APIs do


class JobInputError(ValueError):
    """A request the ETL cannot accept; `status` is the HTTP status the API answers with."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


class JobConflict(JobInputError):
    """The year already has a queued or running job (`job_id`)."""

    def __init__(self, year: int, job_id: int):
        super().__init__(409, "job_running", f"year {year} already has a running job ({job_id}); "
                         "wait for it or cancel it first", {"year": year, "job_id": job_id})
        self.year, self.job_id = year, job_id


def url_policy(settings) -> UrlPolicy:
    """What URLs ingest may read, and how (the settings NHIS_INGEST_URL_*)."""
    return UrlPolicy(prefixes=settings.url_prefixes, max_bytes=settings.ingest_url_max_mb * 2**20,
                     connect_timeout=settings.ingest_url_connect_seconds,
                     read_timeout=settings.ingest_url_read_seconds)


def open_job_source(settings, location: str | Path) -> Source:
    """A job's file (a resolved path, or a URL) opened for reading under the settings' URL policy."""
    return open_source(str(location) if isinstance(location, Path) else location, url_policy(settings))


# HTTP status of each source problem at job creation (all are the client's to fix, hence 4xx).
_SOURCE_STATUS = {
    "file_too_large": 413,
    "range_not_supported": 422,
    "access_denied": 422,
    "http_error": 422,
    "source_unreachable": 422,
    "source_changed": 422,
}


def source_error_to_input_error(exc: SourceError, path: str | Path) -> JobInputError:
    """A source problem at job creation as a 4xx naming the field (`path`) and the code."""
    return JobInputError(_SOURCE_STATUS.get(exc.code, 400), exc.code, str(exc), {"field": "path", "path": str(path)})


def resolve_source(settings, path: str | Path) -> Path | str:
    """The file as an absolute path inside NHIS_DATA_DIR, or a URL under an allowed prefix (normalised).

    Anything else is refused. A URL is only checked here, not fetched.
    """
    if isinstance(path, str) and is_url(path):
        try:
            return url_policy(settings).check(path)
        except SourceRefused as exc:
            raise source_error_to_input_error(exc, path) from None
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


def reader_error_to_input_error(exc) -> JobInputError:
    from shared.data.reader import EmptyFileError, EncodingError, MissingColumnsError, NotCsvError

    if isinstance(exc, MissingColumnsError):
        return JobInputError(422, "missing_columns", str(exc), {"missing": exc.missing})
    if isinstance(exc, NotCsvError):
        return JobInputError(415, "not_csv", str(exc))
    if isinstance(exc, EmptyFileError):
        return JobInputError(422, "empty_file", str(exc))
    if isinstance(exc, EncodingError):
        return JobInputError(422, "bad_encoding", str(exc))
    return JobInputError(422, "unreadable_file", str(exc))


def job_year(source: Source, expected_year: int | None) -> int:
    """The year the job loads: the one asked for, else the year of the file's first data lines.

    The header is read (a bad file is refused before a job exists) and, without a year, the first
    lines; rows of any other year become rejects, never deletions elsewhere. (The reader, and with
    it pandas, is imported here only: the web process loads it for job creation alone.)
    """
    from shared.data.reader import ReaderError, inspect_file

    try:
        layout = inspect_file(source)
        if expected_year is not None:
            return expected_year
        year = _sniff_year(layout, source)
    except ReaderError as exc:
        raise reader_error_to_input_error(exc) from None
    if year is None:
        raise JobInputError(422, "year_unknown", "the first data lines carry no readable year; "
                            "send the year with the request", {"field": "year"})
    return year


def _sniff_year(layout, source: Source, head: int = 64 * 1024) -> int | None:
    """The commonest year among the complete lines of the first `head` bytes of the body."""
    from shared.data.reader import parse_bytes

    data = source.read(layout.header_bytes, layout.header_bytes + head)
    if len(data) == head:
        data = data[: data.rfind(b"\n") + 1]
    years = parse_bytes(layout, data, 2).frame["year"]
    return int(years.mode().iloc[0]) if len(years) else None


def idempotency_digest(scope: str, key: str) -> str:
    return hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()


def file_idempotency_key(path: Path, year: int | None) -> str:
    """What the CLI sends: the file's content hash and the year (a retry of the same file is one job)."""
    digest = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"file-{digest.hexdigest()}-{year or 'auto'}"


def url_idempotency_key(url: str, version: SourceVersion, year: int | None) -> str:
    """The CLI's key for a URL: the URL and its version (ETag or Last-Modified, and size), never
    its content, so nothing is downloaded to compute it. Without a validator the size alone
    stands for the version; ``--again`` forces a new job."""
    digest = hashlib.blake2b(f"{url}\x00{version.size}\x00{version.tag or ''}".encode(), digest_size=20)
    return f"url-{digest.hexdigest()}-{year or 'auto'}"


def idempotency_key_for(settings, location: str | Path, year: int | None) -> str:
    """The CLI's idempotency key for a resolved location (see resolve_source)."""
    if isinstance(location, str) and is_url(location):
        try:
            with open_job_source(settings, location) as source:
                return url_idempotency_key(source.location, source.version, year)
        except SourceError as exc:
            raise source_error_to_input_error(exc, location) from None
    return file_idempotency_key(Path(location), year)


def job_source_version(job: EtlJob) -> SourceVersion:
    """The version of the job's file recorded at creation: size, plus mtime (local) or validator (URL)."""
    tag = json.loads(job.options).get("version") if job.options else None
    return SourceVersion(size=job.file_size or 0, mtime_ns=job.source_mtime_ns, tag=tag)


@dataclass(frozen=True)
class Submitted:
    job_id: int
    replayed: bool  # an earlier request with the same idempotency key created the job


def create_job(resources, path: str | Path, expected_year: int | None = None, **kwargs) -> int:
    """`submit_job` for callers that need only the id."""
    return submit_job(resources, path, expected_year, **kwargs).job_id


def submit_job(resources, path: str | Path, expected_year: int | None = None,
               original_filename: str | None = None, *, idempotency_key: str | None = None,
               idempotency_scope: str = "local", api_key_id: int | None = None,
               upload: bool = False) -> Submitted:
    """Insert the job row, commit it, then enqueue planning by name (never the other way round).

    Raises JobConflict when the year has a running job, JobInputError for a bad file or a reused
    idempotency key with a different request.
    """
    location = resolve_source(resources.settings, path)
    try:
        with open_job_source(resources.settings, location) as source:
            version = source.version
            year = job_year(source, expected_year)
            name = original_filename or source.name
    except SourceError as exc:
        raise source_error_to_input_error(exc, path) from None
    digest = fingerprint = None
    if idempotency_key:
        digest = idempotency_digest(idempotency_scope, idempotency_key)
        fingerprint = hashlib.sha256(json.dumps(
            [name, version.size, expected_year] if upload else [str(location), version.size, expected_year]
        ).encode()).hexdigest()
        existing = _replay(resources, digest, fingerprint)
        if existing is not None:
            return Submitted(existing, True)
    try:
        with unit_of_work(resources.sessions) as session:
            job = EtlJob(
                status=JobStatus.QUEUED, phase=JobPhase.QUEUED, source_path=str(location),
                expected_year=expected_year, year=year, active_year=year, original_filename=name[:255],
                file_size=version.size, source_mtime_ns=version.mtime_ns, upload=upload,
                # a URL's validator, checked again by planning (which then stores its own options)
                options=json.dumps({"expected_year": year, "version": version.tag}) if version.tag else None,
                idempotency_key=digest, request_fingerprint=fingerprint, api_key_id=api_key_id,
                version_state=VersionState.LOADING,
            )
            session.add(job)
            session.flush()
            job_id = job.id
    except IntegrityError:
        if digest is not None:  # a concurrent request with the same key won the insert
            existing = _replay(resources, digest, fingerprint)
            if existing is not None:
                return Submitted(existing, True)
        running = running_job_for_year(resources, year)
        if running is not None:
            raise JobConflict(year, running) from None
        raise
    resources.send_task(task_names.ETL_PLAN_JOB, job_id)
    return Submitted(job_id, False)


def job_for_key(resources, scope: str, key: str) -> int | None:
    """The job an idempotency key created, if the key is still honoured (no request check)."""
    digest = idempotency_digest(scope, key)
    with unit_of_work(resources.sessions) as session:
        job = session.scalar(select(EtlJob).where(EtlJob.idempotency_key == digest))
        if job is None or utcnow() - job.created_at > dt.timedelta(hours=IDEMPOTENCY_HOURS):
            return None
        return job.id


def _replay(resources, digest: str, fingerprint: str) -> int | None:
    """The job an earlier request with this key created, if the key is still honoured."""
    with unit_of_work(resources.sessions) as session:
        job = session.scalar(select(EtlJob).where(EtlJob.idempotency_key == digest))
        if job is None:
            return None
        if utcnow() - job.created_at > dt.timedelta(hours=IDEMPOTENCY_HOURS):
            job.idempotency_key = None  # expired: the key may start a new job
            return None
        if job.request_fingerprint != fingerprint:
            raise JobInputError(422, "idempotency_key_reused",
                                "this Idempotency-Key was used for a different request",
                                {"job_id": job.id, "field": "Idempotency-Key"})
        return job.id


def running_job_for_year(resources, year: int) -> int | None:
    with unit_of_work(resources.sessions) as session:
        return session.scalar(select(EtlJob.id).where(EtlJob.active_year == year))


def end_job(session, job_id: int, status: JobStatus, message: str | None = None) -> bool:
    """Move an active job to a terminal failed/cancelled state (guarded); its version is discarded.

    Returns False when the job had already ended (someone else won the race).
    """
    phase = JobPhase.CANCELLED if status is JobStatus.CANCELLED else JobPhase.FAILED
    ended = session.execute(
        update(EtlJob).where(EtlJob.id == job_id, EtlJob.status.in_([s.value for s in ACTIVE_JOB]))
        .values(status=status, phase=phase, error=(message or "")[:4000] or None, finished_at=utcnow(),
                active_year=None, version_state=VersionState.DISCARDED)
    ).rowcount
    if ended:
        session.execute(
            update(EtlChunk).where(EtlChunk.job_id == job_id, EtlChunk.status == ChunkStatus.QUEUED)
            .values(status=ChunkStatus.CANCELLED)
        )
    return bool(ended)


def cancel_job(resources, job_id: int) -> dict:
    """Stop a queued or running job: queued chunks are dropped, running ones stop at their next
    check, the version is discarded and the previous one stays current. Idempotent."""
    with unit_of_work(resources.sessions) as session:
        job = session.get(EtlJob, job_id)
        if job is None:
            raise JobInputError(404, "not_found", f"no job {job_id}")
        status = JobStatus(job.status)
        if status.terminal and status is not JobStatus.CANCELLED:
            raise JobInputError(409, "job_ended", f"job {job_id} already {status.value}; nothing to cancel",
                                {"job_id": job_id, "status": status.value})
        ended = end_job(session, job_id, JobStatus.CANCELLED, "cancelled on request")
    if ended:
        resources.send_task(task_names.ETL_PURGE_VERSIONS)
    return get_job(resources, job_id)


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
        "version": {"state": job.version_state, "current": job.version_state == VersionState.CURRENT},
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
