"""Person-level records (scope records:read): keyset-paged browsing and one record in full."""

from __future__ import annotations

import functools

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from api.audit import audit_read
from api.auth import requires
from api.errors import ApiError
from api.extensions import resources
from api.requests import ascii_digits
from api.responses import RecordPageSchema, RecordSchema
from shared.data.catalog import AGE_GROUPS, PROVINCES
from shared.db.models import FLAG_COLUMNS, ID_YEAR_FACTOR, MEASUREMENT_COLUMNS, YearVersion, screenings
from shared.records.browse import (
    TOO_BROAD,
    BadCursor,
    Page,
    QueryTooBroad,
    browse,
    core_runner,
    decode_cursor,
    encode_cursor,
)
from shared.rules import CATEGORY_LEVELS, DERIVED_COLUMNS, DISCLAIMER
from shared.rules.layout import HEADLINE_COLUMNS, details, headline, stored_reasons

URL_PREFIX = "/records"
MAX_RECORD_ID = 2**63 - 1  # BIGINT: a larger id names no record (and must not reach the driver)
blp = Blueprint("records", __name__, description="Person-level screening records (scope records:read)")
FLAG_NAMES = [c.removeprefix("flag_") for c in FLAG_COLUMNS]
RISK_GROUPS = list(CATEGORY_LEVELS["screening_risk_group"])
_FLAGS = frozenset(FLAG_NAMES)
NUMBERS = {"year": (2002, 2100), "age_group": (1, 18), "limit": (1, 100)}  # inclusive bounds
SEX = {1: "M", 2: "F"}
SMOKING = {1: "never", 2: "former", 3: "current"}
LIST_MEASUREMENTS = ("sbp", "dbp", "fasting_glucose")
FAST_PATH_FAILED = "nhis.records_failed"  # environ: what the fast path met that must not be tried again
LIST_COLUMNS = ("id", "year", "sex", "age_group", "province", *LIST_MEASUREMENTS, *HEADLINE_COLUMNS, "rule_version")


class RecordsQuerySchema(Schema):
    year = fields.Integer(validate=validate.Range(*NUMBERS["year"]), metadata={"example": 2024})
    sex = fields.String(validate=validate.OneOf(["M", "F"]))
    age_group = fields.Integer(validate=validate.Range(*NUMBERS["age_group"]))
    province = fields.Integer(validate=validate.OneOf(sorted(PROVINCES)))
    screening_risk_group = fields.String(validate=validate.OneOf(RISK_GROUPS))
    risk_group = fields.String(validate=validate.OneOf(RISK_GROUPS),
                               metadata={"description": "deprecated alias of screening_risk_group"})
    flag = fields.List(fields.String(validate=validate.OneOf(FLAG_NAMES)), validate=validate.Length(max=len(FLAG_NAMES)),
                       metadata={"description": "repeatable: only records where each named flag is true",
                                 "example": ["hypertension"]})
    limit = fields.Integer(load_default=20, validate=validate.Range(*NUMBERS["limit"]), metadata={"example": 5})
    cursor = fields.String(validate=validate.Length(max=200),
                           metadata={"description": "next_cursor from the previous page (opaque; valid with the "
                                                    "same filters, also after more years are loaded)"})


_SINGLE = ("year", "sex", "age_group", "province", "screening_risk_group", "risk_group", "limit", "cursor")
_CURSOR_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def quick_query(args) -> dict | None:
    """A plainly valid records query loaded without the schema (the fast path, api/fastpath.py);
    None for anything else, which RecordsQuerySchema judges with its documented 422. Accepts
    nothing the schema refuses and loads what the schema loads (tests/unit/test_seam.py)."""
    out: dict = {}
    for name in args:
        values = args.getlist(name)
        if name == "flag":
            if len(values) > len(FLAG_NAMES) or not all(v in _FLAGS for v in values):
                return None
            out["flag"] = values
            continue
        if name not in _SINGLE or len(values) != 1:
            return None
        value = values[0]
        if name in NUMBERS:
            lo, hi = NUMBERS[name]
            if not (ascii_digits(value) and lo <= int(value) <= hi):
                return None
            out[name] = int(value)
        elif name == "province":
            if not (ascii_digits(value) and int(value) in PROVINCES):
                return None
            out[name] = int(value)
        elif name == "sex":
            if value not in ("M", "F"):
                return None
            out[name] = value
        elif name == "cursor":
            if not (len(value) <= 200 and _CURSOR_CHARS.issuperset(value)):
                return None
            out[name] = value
        elif value in RISK_GROUPS:  # screening_risk_group, risk_group
            out[name] = value
        else:
            return None
    out.setdefault("limit", 20)
    return out


def _plain(values) -> list:
    """Values as the API shows them: a NaN (SQLite can hold one) is unknown, None."""
    return [None if v != v else v for v in values]  # only NaN differs from itself


@functools.cache
def _age(age_group: int) -> dict:
    """One object per band, shared by every row that shows it (answers are serialised, never
    changed)."""
    lo, hi, label = AGE_GROUPS[age_group]
    return {"code": age_group, "label": label, "min_age": lo, "max_age": hi}


def _province(code) -> dict | None:
    return None if code is None else _province_of(int(code))


@functools.cache
def _province_of(code: int) -> dict:
    ko, en = PROVINCES.get(code, (None, None))
    return {"code": code, "name_ko": ko, "name_en": en}


_LIST_DERIVED = tuple(c for c in DERIVED_COLUMNS if c in LIST_COLUMNS)


def _derived(row, columns: tuple[str, ...] = DERIVED_COLUMNS) -> dict:
    """The row's derived values by derived column name."""
    return {c: row[c] for c in columns}


def page_body(page: Page, query: dict) -> dict:
    """The list answer (both paths: the Flask route and api/fastpath.py): page rows are sequences
    in LIST_COLUMNS order."""
    return {
        "data": [summary(dict(zip(LIST_COLUMNS, _plain(r), strict=True))) for r in page.rows],
        "next_cursor": encode_cursor(page.next_after, query) if page.next_after is not None else None,
        "meta": {"limit": query["limit"], "disclaimer": DISCLAIMER},
    }


def too_broad(budget_seconds: float, reason: str = TOO_BROAD) -> ApiError:
    return ApiError(503, "query_too_broad", f"{reason}: add a year or drop a filter",
                    {"budget_seconds": budget_seconds}, headers={"Retry-After": "1"})


def summary(row) -> dict:
    """A list row: who, a few measurements, and the headline of the shared response layout
    (`row`: a mapping of plain values, see `_plain`)."""
    return {
        "id": row["id"], "year": row["year"], "sex": SEX.get(row["sex"]), "age_group": _age(row["age_group"]),
        "province": _province(row["province"]),
        "measurements": {c: row[c] for c in LIST_MEASUREMENTS},
        **headline(_derived(row, _LIST_DERIVED)), "rule_version": row["rule_version"],
    }


def detail(row) -> dict:
    """One record in full: the summary plus every measurement and the layout's details."""
    row = dict(zip(row.keys(), _plain(row.values()), strict=True))
    d = _derived(row)
    measurements = {c: row[c] for c in MEASUREMENT_COLUMNS if c not in ("province", "smoking", "drinking")}
    measurements["smoking"] = SMOKING.get(row["smoking"])
    measurements["drinking"] = None if row["drinking"] is None else bool(row["drinking"])
    cvd_reason, egfr_reason = stored_reasons({**row, **d})
    return {
        **summary(row),
        "subscriber_id": row["subscriber_id"],
        "release_date": row["release_date"],
        "measurements": measurements,
        **details(d, cvd_reason, egfr_reason),
        "source": {"job_id": row["job_id"], "line_no": row["line_no"]},
        "disclaimer": DISCLAIMER,
    }


@blp.route("", methods=["GET"])
@blp.arguments(RecordsQuerySchema(), location="query")
@blp.alt_response(200, schema=RecordPageSchema, success=True)
@requires("records:read", person_level=True)
def index(query):
    """Browse records of the current version of each year in id order with filters (each a
    constant-time keyset page, whatever its depth); `limit` ≤ 100; follow `next_cursor`. Filters
    so rare that a page cannot be filled within NHIS_RECORDS_QUERY_SECONDS answer 503
    `query_too_broad`: add a year or drop a filter."""
    res = resources()
    budget = res.settings.records_query_seconds
    try:
        after = decode_cursor(query["cursor"], query) if "cursor" in query else -1
    except BadCursor as exc:
        raise ApiError(422, "validation_error", "invalid fields: cursor", {"fields": {"cursor": [str(exc)]}}) from None
    failed = request.environ.get(FAST_PATH_FAILED)  # api/fastpath.py: out of budget, or no database
    if isinstance(failed, QueryTooBroad):
        raise too_broad(budget)
    if failed is not None:
        raise failed
    try:
        with res.engine.begin() as conn:  # the read and its audit row commit together
            page = browse(core_runner(conn), query, after, query["limit"], LIST_COLUMNS, budget)
            audit_read(conn, query, len(page.rows))
    except QueryTooBroad as exc:
        raise too_broad(budget, str(exc)) from None
    return page_body(page, query)


@blp.route("/<int:record_id>", methods=["GET"], parameters=[{
    "in": "path", "name": "record_id", "description": "year × 10^10 + subscriber id", "example": 20240000000010}])
@blp.alt_response(200, schema=RecordSchema, success=True)
@requires("records:read", person_level=True)
def show(record_id: int):
    """One person of the current version of their year: measurements, derived values, flags,
    categories, rule version."""
    row = None
    with resources().engine.begin() as conn:  # the read and its audit row commit together
        if record_id <= MAX_RECORD_ID:
            current = select(YearVersion.job_id).where(YearVersion.year == record_id // ID_YEAR_FACTOR)
            row = conn.execute(select(screenings).where(
                screenings.c.job_id == current.scalar_subquery(), screenings.c.id == record_id)).first()
        audit_read(conn, {"id": record_id}, 0 if row is None else 1)
    if row is None:
        raise ApiError(404, "not_found", f"no record {record_id}")
    return detail(row._mapping)
