"""Statistics: ready-to-send bytes from the warm cache, never an aggregate query per request."""

from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from api.auth import requires
from api.errors import ApiError
from api.extensions import resources
from api.responses import QueuedTaskSchema, StatsPayloadSchema
from shared import task_names
from shared.stats.publish import payload_key
from shared.stats.store import META_FIELD, latest_alias, read_payload, read_payload_from_db

URL_PREFIX = "/stats"
blp = Blueprint("stats", __name__, description="Population statistics (scope stats:read)")
ENDPOINTS = ("overview", "risk", "age", "factors", "region", "percentiles")


YEARS, SEXES, AGE_GROUPS = (2002, 2100), ("M", "F"), (1, 18)


class StatsQuerySchema(Schema):
    year = fields.Integer(validate=validate.Range(*YEARS),
                          metadata={"description": "default: the latest year", "example": 2024})
    sex = fields.String(validate=validate.OneOf(SEXES))
    age_group = fields.Integer(validate=validate.Range(*AGE_GROUPS),
                               metadata={"description": "band k = ages 5k-5..5k-1"})


_QUERY = StatsQuerySchema()
_ALLOWED = frozenset(_QUERY.fields)


def _digits(value: str) -> bool:
    """ASCII digits only: str.isdigit() is also true for "²" or "٣", which int() refuses or reads."""
    return value.isascii() and value.isdigit() and len(value) <= 6


def quick_query(args) -> dict | None:
    """The common, plainly valid queries (no filter, digits, M/F) without the schema; else None.

    Statistics reads are the hottest path of the API, so they avoid building a marshmallow schema
    per request; anything unusual goes through the schema for the documented 422 messages.
    """
    if not args:
        return {}
    if not set(args) <= _ALLOWED or any(len(args.getlist(k)) != 1 for k in args):
        return None
    year, sex, age = args.get("year"), args.get("sex"), args.get("age_group")
    if year is not None and not (_digits(year) and YEARS[0] <= int(year) <= YEARS[1]):
        return None
    if sex is not None and sex not in SEXES:
        return None
    if age is not None and not (_digits(age) and AGE_GROUPS[0] <= int(age) <= AGE_GROUPS[1]):
        return None
    out = {}
    if year is not None:
        out["year"] = int(year)
    if sex is not None:
        out["sex"] = sex
    if age is not None:
        out["age_group"] = int(age)
    return out


def parse_query(args) -> dict:
    query = quick_query(args)
    if query is not None:
        return query
    try:
        return _QUERY.load({k: args.get(k) for k in args})
    except ValidationError as exc:
        fields_ = exc.normalized_messages()
        raise ApiError(422, "validation_error", f"invalid fields: {', '.join(sorted(fields_))}",
                       {"fields": fields_}) from None


def cache_key(endpoint: str, query: dict) -> str:
    """The payload key for a validated query; ApiError(422) for a filter the endpoint lacks."""
    sex, age_group = query.get("sex"), query.get("age_group")
    if endpoint in ("overview", "age") and age_group is not None:
        raise ApiError(422, "validation_error", "invalid fields: age_group",
                       {"fields": {"age_group": [f"not available for /stats/{endpoint}"]}})
    if endpoint == "overview" and sex is not None:
        raise ApiError(422, "validation_error", "invalid fields: sex",
                       {"fields": {"sex": ["not available for /stats/overview"]}})
    key = payload_key(endpoint, query.get("year", 0), sex, age_group)
    return key if "year" in query else latest_alias(key)


def serve(name: str) -> Response:
    """One HGET from Redis; on a Redis error or an empty cache the database snapshot answers."""
    res = resources()
    payload, source = read_payload(res, name)
    if payload is None:
        if read_payload_from_db(res, META_FIELD) is None:
            raise ApiError(503, "stats_not_ready", "statistics are not computed yet; retry shortly",
                           headers={"Retry-After": "10"})
        raise ApiError(404, "not_found", "no statistics for this selection (year not loaded?)", {"key": name})
    return Response(payload, mimetype="application/json", headers={"X-Cache": source})


def _make_view(endpoint: str):
    @requires("stats:read")
    def view():
        return serve(cache_key(endpoint, parse_query(request.args)))

    view.__name__ = f"stats_{endpoint}"
    view.__doc__ = f"`{endpoint}` statistics as precomputed by the last refresh (small cells suppressed)."
    return view


for _endpoint in ENDPOINTS:
    blp.route(f"/{_endpoint}", methods=["GET"], endpoint=_endpoint)(
        blp.alt_response(200, schema=StatsPayloadSchema, success=True)(
            blp.doc(parameters=[{"in": "query", "schema": StatsQuerySchema}])(_make_view(_endpoint)))
    )


@blp.route("/refresh", methods=["POST"])
@blp.response(202, QueuedTaskSchema)
@requires("admin")
def refresh():
    """Enqueue a recompute of every statistic (scope admin)."""
    result = resources().send_task(task_names.STATS_REFRESH, reason="api")
    return {"task_id": result.id, "status": "queued"}
