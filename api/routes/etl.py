"""ETL jobs: create (path under NHIS_DATA_DIR or streamed upload), progress, rejects."""

from __future__ import annotations

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
from api.job_quota import check_quota, claim_job, job_slot
from api.responses import AcceptedJobSchema, JobListSchema, JobSchema, RejectPageSchema
from shared.db.engine import unit_of_work
from shared.db.models import EtlJob, EtlReject
from shared.etl.jobs import JobInputError, create_job, get_job, list_jobs

URL_PREFIX = "/etl"
blp = Blueprint("etl", __name__, description="Ingest NHIS files through Celery (scope etl:write)")
ALLOWED_SUFFIXES = (".csv",)


class JobRequestSchema(Schema):
    path = fields.String(validate=[validate.Length(1, 1024), validate.Regexp(r"^[^\x00-\x1f\x7f]*$",
                                                                            error="control characters are not allowed")],
                         metadata={"description": "file path relative to NHIS_DATA_DIR (or absolute inside it)"})
    year = fields.Integer(validate=validate.Range(2002, 2100),
                          metadata={"description": "expected screening year; rows of other years are rejected"})


_REQUEST = JobRequestSchema()


class ListQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))


class RejectsQuerySchema(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    after = fields.Integer(load_default=0, validate=validate.Range(min=0),
                           metadata={"description": "cursor: the next_cursor of the previous page"})


def _input_error(exc: JobInputError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message, exc.details)


def _accepted(job_id: int):
    job = get_job(resources(), job_id)
    links = {
        "self": url_for("etl.Job", job_id=job_id),
        "rejects": url_for("etl.Rejects", job_id=job_id),
    }
    return {"job_id": job_id, "status": job["status"], "links": links}, 202, {"Location": links["self"]}


@blp.route("/jobs", methods=["POST"])
@blp.arguments(JobRequestSchema(), location="json", required=False)
@blp.response(202, AcceptedJobSchema)
@requires("etl:write", max_body="upload", fail_closed=True)
def create(body):
    """Create an ingest job from a JSON `{"path", "year"}` or a multipart upload (field `file`, optional `year`).

    Uploads are streamed to NHIS_DATA_DIR/uploads; only `.csv` is accepted (415), larger than
    NHIS_UPLOAD_MAX_MB is refused (413), and missing required columns are named (422).
    """
    res = resources()
    check_quota(res, g.api_key.id)  # before an upload is streamed to disk
    upload = request.files.get("file")
    if upload is not None:
        return _accepted(_create_from_upload(res, upload))
    if not body or not body.get("path"):
        raise ApiError(422, "validation_error", "invalid fields: path",
                       {"fields": {"path": ["send a JSON body with a path, or a multipart file"]}})
    try:
        with job_slot(res, g.api_key.id):
            job_id = create_job(res, body["path"], expected_year=body.get("year"))
            claim_job(res, job_id, g.api_key.id)
    except JobInputError as exc:
        raise _input_error(exc) from None
    return _accepted(job_id)


def _create_from_upload(res, upload) -> int:
    name = Path(upload.filename or "").name
    if not name.lower().endswith(ALLOWED_SUFFIXES):
        raise ApiError(415, "unsupported_media_type", "only .csv files can be ingested", {"filename": name})
    year = None
    if "year" in request.form:
        try:
            year = _REQUEST.load({"year": request.form["year"]})["year"]
        except ValidationError as exc:
            raise ApiError(422, "validation_error", "invalid fields: year",
                           {"fields": exc.normalized_messages()}) from None
    folder = res.settings.data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{uuid.uuid4().hex[:12]}-{name}"
    upload.save(target)  # werkzeug streams the part to disk; the API never holds the file in memory
    try:
        with job_slot(res, g.api_key.id):
            job_id = create_job(res, target, expected_year=year, original_filename=name)
            claim_job(res, job_id, g.api_key.id)
        return job_id
    except JobInputError as exc:
        target.unlink(missing_ok=True)
        raise _input_error(exc) from None
    except ApiError:  # the key's cap was reached meanwhile, or its lock is unavailable: no job exists
        target.unlink(missing_ok=True)
        raise


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


@blp.route("/jobs/<int:job_id>/rejects", endpoint="Rejects")
@blp.arguments(RejectsQuerySchema(), location="query")
@blp.alt_response(200, schema=RejectPageSchema, success=True)
@requires("etl:write", person_level=True)
def rejects(query, job_id: int):
    """Rejected lines and cells: line number, column, reason, raw value (cursor paging).

    A raw value comes from a person's row, so it is shown only to a key that also holds
    `records:read` (and that read is audited); other keys get `raw_value: null`."""
    res = resources()
    with unit_of_work(res.sessions) as session:
        if session.get(EtlJob, job_id) is None:
            raise ApiError(404, "not_found", f"no job {job_id}")
        rows = list(session.scalars(
            select(EtlReject).where(EtlReject.job_id == job_id, EtlReject.id > query["after"])
            .order_by(EtlReject.id).limit(query["limit"] + 1)
        ))
    more = len(rows) > query["limit"]
    rows = rows[: query["limit"]]
    show_raw = g.api_key.allows("records:read")
    if show_raw:
        audit_read({"job_id": job_id, **query}, len(rows))
    return {
        "data": [
            {"line_no": r.line_no, "column": r.column_name, "reason": r.reason,
             "raw_value": r.raw_value if show_raw else None, "whole_row": r.whole_row}
            for r in rows
        ],
        "next_cursor": rows[-1].id if more else None,
    }
