"""Documented shapes of the success responses (OpenAPI only: views return plain dicts, so these
schemas never serialize anything). They name the fields clients rely on and let more through
(`unknown = INCLUDE` documents `additionalProperties: true`), so Schemathesis can check every
answer against its documented schema (tests/integration/test_fuzz.py)."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


class _Open(Schema):
    class Meta:
        unknown = INCLUDE


class JobSchema(_Open):
    job_id = fields.Integer(required=True)
    status = fields.String(required=True)
    phase = fields.String()
    progress = fields.Dict()
    timings = fields.Dict()
    error = fields.String(allow_none=True)


class JobListSchema(_Open):
    data = fields.List(fields.Nested(JobSchema), required=True)


class RejectSchema(_Open):
    line_no = fields.Integer(required=True)
    column = fields.String(allow_none=True)
    reason = fields.String(required=True)
    raw_value = fields.String(allow_none=True, metadata={"description": "null unless the key also holds records:read"})
    whole_row = fields.Boolean()


class RejectPageSchema(_Open):
    data = fields.List(fields.Nested(RejectSchema), required=True)
    next_cursor = fields.Integer(allow_none=True, required=True)


class RecordSummarySchema(_Open):
    id = fields.Integer(required=True)
    year = fields.Integer(required=True)
    sex = fields.String(allow_none=True)
    flags = fields.Dict()
    rule_version = fields.String(required=True)


class RecordPageSchema(_Open):
    data = fields.List(fields.Nested(RecordSummarySchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
    meta = fields.Dict(required=True)


class RecordSchema(RecordSummarySchema):
    measurements = fields.Dict(required=True)
    disclaimer = fields.String(required=True)


class StatsPayloadSchema(_Open):
    data = fields.Dict(required=True)
    meta = fields.Dict(required=True)


class SimulationSchema(_Open):
    flags = fields.Dict(required=True)
    rule_version = fields.String(required=True)
    disclaimer = fields.String(required=True)


class BatchSimulationSchema(_Open):
    results = fields.List(fields.Nested(SimulationSchema), required=True)


class QueuedTaskSchema(_Open):
    task_id = fields.String(required=True)
    status = fields.String(required=True)


class AcceptedJobSchema(_Open):
    job_id = fields.Integer(required=True)
    status = fields.String(required=True)
    links = fields.Dict(required=True)
