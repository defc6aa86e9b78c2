"""ETL jobs: create (path under NHIS_DATA_DIR, URL under an allowed prefix, or streamed upload),
progress, rejects."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from flask import g, request, url_for
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from api.audit import audit_read
from api.auth import requires
from api.errors import ApiError
from api.extensions import resources
from api.job_quota import check_quota, job_slot
from api.responses import AcceptedJobSchema, JobListSchema, JobSchema, RejectPageSchema
from shared.db.engine import unit_of_work
from shared.db.models import EtlJob, EtlReject
from shared.etl.jobs import (
    JobConflict,
    JobInputError,
    cancel_job,
    get_job,
    job_for_key,
    list_jobs,
    submit_job,
)

URL_PREFIX = "/etl"
blp = Blueprint("etl", __name__, description="Ingest NHIS files through Celery (scope etl:write)")
ALLOWED_SUFFIXES = (".csv",)


class JobRequestSchema(Schema):
    path = fields.String(
        validate=[validate.Length(1, 1024), validate.Regexp(r"^[^\x00-\x1f\x7f]*$",
                                                            error="control characters are not allowed")],
        metadata={"description": (
            "file path relative to NHIS_DATA_DIR (or absolute inside it), or a URL under one of "
            "NHIS_INGEST_URL_PREFIXES: http(s):// (read with byte-range requests) or s3:// and other fsspec "
            "URLs when the server has the `remote` extra")})
    year = fields.Integer(validate=validate.Range(2002, 2100),
                          metadata={"description": "expected screening year; rows of other years are rejected"})


_REQUEST = JobRequestSchema()


class ListQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))


class RejectsQuerySchema(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    after = fields.Integer(load_default=0, validate=validate.Range(min=0),
                           metadata={"description": "cursor: the next_cursor of the previous page"})


IDEMPOTENCY_HEADER = "Idempotency-Key"


def _input_error(exc: JobInputError) -> ApiError:
    if isinstance(exc, JobConflict):
        url = url_for("etl.Job", job_id=exc.job_id)
        return ApiError(409, exc.code, exc.message, {**exc.details, "url": url}, headers={"Location": url})
    return ApiError(exc.status, exc.code, exc.message, exc.details)


def _links(job_id: int) -> dict:
    return {
        "self": url_for("etl.Job", job_id=job_id),
        "rejects": url_for("etl.Rejects", job_id=job_id),
        "cancel": url_for("etl.Cancel", job_id=job_id),
    }


def _accepted(submitted):
    job = get_job(resources(), submitted.job_id)
    links = _links(submitted.job_id)
    headers = {"Location": links["self"]}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return {"job_id": submitted.job_id, "status": job["status"], "links": links}, 202, headers


def _idempotency() -> dict:
    """The Idempotency-Key header (<= 255 printable characters), scoped to the calling API key."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return {}
    if not key or len(key) > 255 or not key.isprintable():
        raise ApiError(422, "validation_error", f"invalid header: {IDEMPOTENCY_HEADER}",
                       {"fields": {IDEMPOTENCY_HEADER: ["1 to 255 printable characters"]}})
    return {"idempotency_key": key, "idempotency_scope": f"key:{g.api_key.id}"}


@blp.route("/jobs", methods=["POST"])
@blp.arguments(JobRequestSchema(), location="json", required=False)
@blp.response(202, AcceptedJobSchema)
@requires("etl:write", max_body="upload", fail_closed=True)
def create(body):
    """Create an ingest job from a JSON `{"path", "year"}` or a multipart upload (field `file`, optional `year`).

    `path` is a file under NHIS_DATA_DIR or a URL under an allowed prefix (NHIS_INGEST_URL_PREFIXES;
    empty refuses URLs with 400 `url_not_allowed`). A URL is checked before the job exists: its
    server must answer byte-range requests (422 `range_not_supported`), redirects to another host
    are refused (400 `redirect_refused`), a missing file is 400 `file_not_found`, an unreachable one
    422 `source_unreachable`, one larger than NHIS_INGEST_URL_MAX_MB 413, and the header is read
    as for a local file (415 `not_csv`, 422 `missing_columns`).

    The job loads its year into a new version; the current version stays what readers see until
    the job succeeds. A year that already has a queued or running job answers 409 with that job's
    id and URL. Send an `Idempotency-Key` header to make retries safe: the same key (from the same
    API key, within 24 h) returns the job the first request created, with `Idempotent-Replayed:
    true`; reusing a key for a different request is a 422. Uploads are written once to
    NHIS_DATA_DIR/uploads and removed when the job ends (unless NHIS_KEEP_UPLOADS=1); only `.csv`
    is accepted (415), larger than NHIS_UPLOAD_MAX_MB is refused (413), and missing required
    columns are named (422).
    """
    res = resources()
    idempotency = _idempotency()
    replay = bool(idempotency) and job_for_key(res, idempotency["idempotency_scope"],
                                               idempotency["idempotency_key"]) is not None
    if not replay:
        check_quota(res, g.api_key.id)  # before an upload is written to disk
    upload = request.files.get("file")
    if upload is not None:
        return _accepted(_create_from_upload(res, upload, idempotency, replay))
    if not body or not body.get("path"):
        raise ApiError(422, "validation_error", "invalid fields: path",
                       {"fields": {"path": ["send a JSON body with a path, or a multipart file"]}})
    try:
        with job_slot(res, g.api_key.id, skip=replay):
            submitted = submit_job(res, body["path"], expected_year=body.get("year"), api_key_id=g.api_key.id,
                                   **idempotency)
    except JobInputError as exc:
        raise _input_error(exc) from None
    return _accepted(submitted)


def _create_from_upload(res, upload, idempotency: dict, replay: bool):
    name = Path(upload.filename or "").name
    part = getattr(upload.stream, "name", None)  # the file werkzeug wrote (api/uploads.py)
    try:
        if not name.lower().endswith(ALLOWED_SUFFIXES):
            raise ApiError(415, "unsupported_media_type", "only .csv files can be ingested", {"filename": name})
        year = None
        if "year" in request.form:
            try:
                year = _REQUEST.load({"year": request.form["year"]})["year"]
            except ValidationError as exc:
                raise ApiError(422, "validation_error", "invalid fields: year",
                               {"fields": exc.normalized_messages()}) from None
        target = res.settings.data_dir / "uploads" / f"{uuid.uuid4().hex[:12]}-{name}"
        if isinstance(part, str):
            upload.stream.flush()
            os.replace(part, target)  # the bytes were written once; this only names them
            part = None
        else:  # a small part werkzeug kept in memory
            upload.save(target)
        try:
            with job_slot(res, g.api_key.id, skip=replay):
                submitted = submit_job(res, target, expected_year=year, original_filename=name, upload=True,
                                       api_key_id=g.api_key.id, **idempotency)
        except JobInputError as exc:
            target.unlink(missing_ok=True)
            raise _input_error(exc) from None
        except ApiError:  # the key's cap was reached meanwhile, or its lock is unavailable: no job exists
            target.unlink(missing_ok=True)
            raise
        if submitted.replayed:  # the first request's upload is the one the job reads
            target.unlink(missing_ok=True)
        return submitted
    finally:
        if isinstance(part, str):
            Path(part).unlink(missing_ok=True)


@blp.route("/jobs", methods=["GET"])
@blp.arguments(ListQuerySchema(), location="query")
@blp.alt_response(200, schema=JobListSchema, success=True)
@requires("etl:write")
def index(query):
    """Recent jobs, newest first."""
    return {"data": list_jobs(resources(), query["limit"])}


@blp.route("/jobs/<int:job_id>", endpoint="Job")
@blp.alt_response(200, schema=JobSchema, success=True)
@requires("etl:write")
def show(job_id: int):
    """One job: status (queued/running/succeeded/failed), phase, progress, timings, error."""
    job = get_job(resources(), job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id}")
    return job


@blp.route("/jobs/<int:job_id>/cancel", methods=["POST"], endpoint="Cancel")
@blp.alt_response(200, schema=JobSchema, success=True)
@requires("etl:write")
def cancel(job_id: int):
    """Cancel a queued or running job: queued chunks are dropped, running ones stop at their next
    check, its version is discarded and the previous version of the year stays current.
    Cancelling a cancelled job answers the same; a job that already succeeded or failed is a 409."""
    try:
        return cancel_job(resources(), job_id)
    except JobInputError as exc:
        raise _input_error(exc) from None


@blp.route("/jobs/<int:job_id>/rejects", endpoint="Rejects")
@blp.arguments(RejectsQuerySchema(), location="query")
@blp.alt_response(200, schema=RejectPageSchema, success=True)
@requires("etl:write", person_level=True)
def rejects(query, job_id: int):
    """Rejected lines and cells: line number, column, reason, raw value (cursor paging).

    A raw value comes from a person's row, so it is shown only to a key that also holds
    `records:read` (and that read is audited); other keys get `raw_value: null`."""
    res = resources()
    show_raw = g.api_key.allows("records:read")
    with unit_of_work(res.sessions) as session:
        if session.get(EtlJob, job_id) is None:
            raise ApiError(404, "not_found", f"no job {job_id}")
        rows = list(session.scalars(
            select(EtlReject).where(EtlReject.job_id == job_id, EtlReject.id > query["after"])
            .order_by(EtlReject.id).limit(query["limit"] + 1)
        ))
        more = len(rows) > query["limit"]
        rows = rows[: query["limit"]]
        if show_raw:  # committed with this read
            audit_read(session.connection(), {"job_id": job_id, **query}, len(rows))
    return {
        "data": [
            {"line_no": r.line_no, "column": r.column_name, "reason": r.reason,
             "raw_value": r.raw_value if show_raw else None, "whole_row": r.whole_row}
            for r in rows
        ],
        "next_cursor": rows[-1].id if more else None,
    }
