"""Statistics: ready-to-send bytes from the warm cache, never an aggregate query per request."""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api.auth import requires
from api.errors import ApiError
from api.extensions import resources
from shared import task_names
from shared.stats.publish import payload_key
from shared.stats.store import latest_alias, read_payload_from_cache, read_payload_from_db

URL_PREFIX = "/stats"
blp = Blueprint("stats", __name__, description="Population statistics (scope stats:read)")
ENDPOINTS = ("overview", "risk", "age", "factors", "region", "percentiles")


class StatsQuerySchema(Schema):
    year = fields.Integer(validate=validate.Range(2002, 2100), metadata={"description": "default: the latest year"})
    sex = fields.String(validate=validate.OneOf(["M", "F"]))
    age_group = fields.Integer(validate=validate.Range(1, 18), metadata={"description": "band k = ages 5k-5..5k-1"})


def serve(name: str) -> Response:
    """One HGET from Redis; on a Redis error or an empty cache the database snapshot answers."""
    res = resources()
    payload, source = None, "hit"
    if res.cache is not None:
        try:
            payload = read_payload_from_cache(res.cache, name)
        except Exception:
            payload = None
        if payload is None:
            source = "fallback"
    else:
        source = "database"
    if payload is None:
        payload = read_payload_from_db(res, name)
    if payload is None:
        if read_payload_from_db(res, "__meta__") is None:
            raise ApiError(503, "stats_not_ready", "statistics are not computed yet; retry shortly",
                           headers={"Retry-After": "10"})
        raise ApiError(404, "not_found", "no statistics for this selection (year not loaded?)", {"key": name})
    return Response(payload, mimetype="application/json", headers={"X-Cache": source})


def _make_view(endpoint: str):
    @requires("stats:read")
    def view(query):
        sex, age_group = query.get("sex"), query.get("age_group")
        if endpoint in ("overview", "age") and age_group is not None:
            raise ApiError(422, "validation_error", "invalid fields: age_group",
                           {"fields": {"age_group": [f"not available for /stats/{endpoint}"]}})
        if endpoint == "overview" and sex is not None:
            raise ApiError(422, "validation_error", "invalid fields: sex",
                           {"fields": {"sex": ["not available for /stats/overview"]}})
        key = payload_key(endpoint, query.get("year", 0), sex, age_group)
        return serve(key if "year" in query else latest_alias(key))

    view.__name__ = f"stats_{endpoint}"
    view.__doc__ = f"`{endpoint}` statistics as precomputed by the last refresh (small cells suppressed)."
    return view


for _endpoint in ENDPOINTS:
    blp.route(f"/{_endpoint}", methods=["GET"], endpoint=_endpoint)(
        blp.arguments(StatsQuerySchema, location="query")(_make_view(_endpoint))
    )


@blp.route("/refresh", methods=["POST"])
@blp.response(202)
@requires("admin")
def refresh():
    """Enqueue a recompute of every statistic (scope admin)."""
    result = resources().producer.send_task(task_names.STATS_REFRESH, kwargs={"reason": "api"})
    return {"task_id": result.id, "status": "queued"}
