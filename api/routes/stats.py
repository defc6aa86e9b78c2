"""Statistics: ready-to-send bytes from the warm cache, never an aggregate query per request.

JSON by default; CSV (same numbers, suppression and labels; UTF-8 with BOM) with ``?format=csv`` or
``Accept: text/csv``. Payload names come from :mod:`shared.stats.keys`, which this module and the
fast path share (no pandas or pyarrow on this path).
"""

from __future__ import annotations

import orjson
from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from api.auth import requires
from api.errors import ApiError
from api.extensions import resources
from api.requests import ascii_digits
from api.responses import QueuedTaskSchema, StatsPayloadSchema
from shared import task_names
from shared.stats import keys
from shared.stats.csv_export import MEDIA_TYPE as CSV_MEDIA_TYPE
from shared.stats.csv_export import meta_headers, payload_to_csv
from shared.stats.store import META_FIELD, read_payload, read_payload_from_db

URL_PREFIX = "/stats"
blp = Blueprint("stats", __name__, description="Population statistics (scope stats:read)")

YEARS, SEXES, AGE_GROUPS = keys.YEAR_RANGE, ("M", "F"), (keys.AGE_CODES.start, keys.AGE_CODES.stop - 1)
FORMATS = ("json", "csv")


class StatsQuerySchema(Schema):
    year = fields.Integer(validate=validate.Range(*YEARS), metadata={"description": "default: the latest year"})
    sex = fields.String(validate=validate.OneOf(SEXES))
    age_group = fields.Integer(validate=validate.Range(*AGE_GROUPS),
                               metadata={"description": "band k = ages 5k-5..5k-1"})
    population = fields.String(validate=validate.OneOf(keys.POPULATIONS), metadata={
        "description": "risk, factors, region: `all` (default; every person, unknowns counted) or "
                       "`complete_panel` (people with every input of each rule measured, with its own n)"})
    factor = fields.String(validate=validate.Regexp(keys.FACTOR_PATTERN), metadata={
        "description": "trends: the factor (see GET /stats/trends for the list)"})
    format = fields.String(validate=validate.OneOf(FORMATS), metadata={
        "description": "`csv` for CSV (UTF-8 with BOM); same as `Accept: text/csv`"})


_QUERY = StatsQuerySchema()
_ALLOWED = frozenset(_QUERY.fields) - {"format"}


def quick_query(args) -> dict | None:
    """The common, plainly valid queries without the schema; else None (the schema decides).

    Statistics reads are the hottest path of the API, so they avoid building a marshmallow schema
    per request; anything unusual (including ``format``) goes through the schema for the documented
    422 messages.
    """
    if not args:
        return {}
    if not set(args) <= _ALLOWED or any(len(args.getlist(k)) != 1 for k in args):
        return None
    year, sex, age = args.get("year"), args.get("sex"), args.get("age_group")
    population, factor = args.get("population"), args.get("factor")
    if year is not None and not (ascii_digits(year) and YEARS[0] <= int(year) <= YEARS[1]):
        return None
    if sex is not None and sex not in SEXES:
        return None
    if age is not None and not (ascii_digits(age) and AGE_GROUPS[0] <= int(age) <= AGE_GROUPS[1]):
        return None
    if population is not None and population not in keys.POPULATIONS:
        return None
    if factor is not None and not keys.FACTOR_PATTERN.match(factor):
        return None
    out: dict = {}
    if year is not None:
        out["year"] = int(year)
    if sex is not None:
        out["sex"] = sex
    if age is not None:
        out["age_group"] = int(age)
    if population is not None:
        out["population"] = population
    if factor is not None:
        out["factor"] = factor
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
    """The payload key for a validated query; ApiError(422) naming a filter the endpoint lacks."""
    try:
        return keys.payload_key(endpoint, query.get("year", keys.LATEST), query.get("sex"), query.get("age_group"),
                                query.get("population"), query.get("factor"))
    except keys.FilterError as exc:
        raise ApiError(422, "validation_error", f"invalid fields: {exc.field}",
                       {"fields": {exc.field: [exc.message]}}) from None


def wants_csv(query: dict) -> bool:
    if "format" in query:
        return query["format"] == "csv"
    accept = request.accept_mimetypes
    return accept["text/csv"] > accept["application/json"] and accept["text/csv"] > 0


def serve(name: str, as_csv: bool = False, query: dict | None = None) -> Response:
    """One HGET from Redis; on a Redis error or an empty cache the database snapshot answers."""
    res = resources()
    payload, source = read_payload(res, name)
    if payload is None:
        if read_payload_from_db(res, META_FIELD) is None:
            raise ApiError(503, "stats_not_ready", "statistics are not computed yet; retry shortly",
                           headers={"Retry-After": "10"})
        _unknown_factor(res, query or {})
        raise ApiError(404, "not_found", "no statistics for this selection (year not loaded?)", {"key": name})
    if as_csv:
        filename = "nhis-stats-" + name.replace(":", "-") + ".csv"
        return Response(payload_to_csv(payload), mimetype="text/csv", content_type=CSV_MEDIA_TYPE, headers={
            "X-Cache": source, "Content-Disposition": f'attachment; filename="{filename}"', **meta_headers(payload)})
    return Response(payload, mimetype="application/json", headers={"X-Cache": source})


def _unknown_factor(res, query: dict) -> None:
    """A trends factor that is not published is a 422 naming the field and the known factors."""
    if "factor" not in query:
        return
    index, _source = read_payload(res, keys.TRENDS_INDEX_KEY)
    known = [f["factor"] for f in orjson.loads(index)["data"]["factors"]] if index else []
    raise ApiError(422, "validation_error", "invalid fields: factor",
                   {"fields": {"factor": [f"unknown factor (one of: {', '.join(known)})"]}})


_CSV_RESPONSE = {
    "200": {
        "description": "The payload (`{data, meta}`), or the same numbers as CSV (`format=csv` or "
                       "`Accept: text/csv`)",
        "content": {
            # Listed again here: this override replaces the 200 response's content as a whole.
            "application/json": {"schema": StatsPayloadSchema},
            "text/csv": {"schema": {"type": "string"}, "example": ",".join(
                ("year", "sex", "age_group", "...", "statistic", "value", "suppressed"))},
        },
    },
}


def _make_view(endpoint: str):
    @requires("stats:read", public_if="public_stats")
    def view():
        query = parse_query(request.args)
        return serve(cache_key(endpoint, query), wants_csv(query), query)

    view.__name__ = f"stats_{endpoint}"
    offered = ", ".join(f"`{f}`" for f in keys.FILTERS[endpoint])
    view.__doc__ = (f"`{endpoint}` statistics as precomputed by the last refresh (small cells suppressed).\n\n"
                    f"Filters: {offered}; `format=csv` or `Accept: text/csv` for CSV (UTF-8 with BOM).")
    return view


for _endpoint in keys.ENDPOINTS:
    blp.route(f"/{_endpoint}", methods=["GET"], endpoint=_endpoint)(
        blp.alt_response(200, schema=StatsPayloadSchema, success=True)(
            blp.doc(parameters=[{"in": "query", "schema": StatsQuerySchema}], responses=_CSV_RESPONSE)(
                _make_view(_endpoint)))
    )


@blp.route("/refresh", methods=["POST"])
@blp.response(202, QueuedTaskSchema)
@requires("admin")
def refresh():
    """Enqueue a recompute of every statistic (scope admin)."""
    result = resources().send_task(task_names.STATS_REFRESH, reason="api")
    return {"task_id": result.id, "status": "queued"}
