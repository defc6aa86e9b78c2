"""Person-level records (scope records:read): keyset-paged browsing and one record in full."""

from __future__ import annotations

import base64
import math

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import and_, select

from api.audit import audit_read
from api.auth import requires
from api.errors import ApiError
from api.extensions import resources
from api.responses import RecordPageSchema, RecordSchema
from shared.data.catalog import AGE_GROUPS, PROVINCES
from shared.db.models import DERIVED_SQL_TYPES, FLAG_COLUMNS, MEASUREMENT_COLUMNS, screenings
from shared.rules import CATEGORY_LEVELS, DISCLAIMER

URL_PREFIX = "/records"
MAX_RECORD_ID = 2**63 - 1  # BIGINT: a larger id names no record (and must not reach the driver)
blp = Blueprint("records", __name__, description="Person-level screening records (scope records:read)")
FLAG_NAMES = [c.removeprefix("flag_") for c in FLAG_COLUMNS]
RISK_GROUPS = list(CATEGORY_LEVELS["risk_group"])
SEX = {1: "M", 2: "F"}
SMOKING = {1: "never", 2: "former", 3: "current"}
LIST_COLUMNS = ("id", "year", "sex", "age_group", "province", "bmi", "sbp", "dbp", "fasting_glucose",
                "risk_factor_count", "risk_group", *FLAG_COLUMNS, "rule_version")
CATEGORY_COLUMNS = [c for c in DERIVED_SQL_TYPES if c not in FLAG_COLUMNS and not c.startswith("mets_")
                    and c not in ("bmi", "risk_factor_count", "risk_group", "metabolic_syndrome", "cvd_10y")]


class RecordsQuerySchema(Schema):
    year = fields.Integer(validate=validate.Range(2002, 2100))
    sex = fields.String(validate=validate.OneOf(["M", "F"]))
    age_group = fields.Integer(validate=validate.Range(1, 18))
    province = fields.Integer(validate=validate.OneOf(sorted(PROVINCES)))
    risk_group = fields.String(validate=validate.OneOf(RISK_GROUPS))
    flag = fields.List(fields.String(validate=validate.OneOf(FLAG_NAMES)), validate=validate.Length(max=len(FLAG_NAMES)),
                       metadata={"description": "repeatable: only records where each named flag is true"})
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))
    cursor = fields.String(metadata={"description": "next_cursor from the previous page"})


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except Exception:
        raise ApiError(422, "validation_error", "invalid fields: cursor",
                       {"fields": {"cursor": ["not a cursor returned by this API"]}}) from None


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _age(age_group: int) -> dict:
    lo, hi, label = AGE_GROUPS[age_group]
    return {"code": age_group, "label": label, "min_age": lo, "max_age": hi}


def _province(code) -> dict | None:
    if code is None:
        return None
    ko, en = PROVINCES.get(int(code), (None, None))
    return {"code": int(code), "name_ko": ko, "name_en": en}


def _flags(row) -> dict:
    return {name: (None if row[col] is None else bool(row[col])) for name, col in zip(FLAG_NAMES, FLAG_COLUMNS, strict=True)}


def summary(row) -> dict:
    return {
        "id": row["id"], "year": row["year"], "sex": SEX.get(row["sex"]), "age_group": _age(row["age_group"]),
        "province": _province(row["province"]), "bmi": row["bmi"], "sbp": row["sbp"], "dbp": row["dbp"],
        "fasting_glucose": row["fasting_glucose"], "risk_factor_count": row["risk_factor_count"],
        "risk_group": row["risk_group"], "flags": _flags(row), "rule_version": row["rule_version"],
    }


@blp.route("", methods=["GET"])
@blp.arguments(RecordsQuerySchema(), location="query")
@blp.alt_response(200, schema=RecordPageSchema, success=True)
@requires("records:read", person_level=True)
def index(query):
    """Browse records in id order with filters; `limit` ≤ 100; follow `next_cursor`."""
    t = screenings.c
    conds = []
    for name in ("year", "age_group", "province", "risk_group"):
        if name in query:
            conds.append(t[name] == query[name])
    if "sex" in query:
        conds.append(t.sex == (1 if query["sex"] == "M" else 2))
    for flag in query.get("flag", []):
        conds.append(t["flag_" + flag].is_(True))
    if "cursor" in query:
        conds.append(t.id > _decode_cursor(query["cursor"]))
    limit = query["limit"]
    stmt = select(*(t[c] for c in LIST_COLUMNS)).where(and_(*conds)).order_by(t.id).limit(limit + 1)
    with resources().engine.connect() as conn:
        rows = [r._mapping for r in conn.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    audit_read(query, len(rows))
    return {
        "data": [summary(r) for r in rows],
        "next_cursor": _encode_cursor(rows[-1]["id"]) if more and rows else None,
        "meta": {"limit": limit, "disclaimer": DISCLAIMER},
    }


@blp.route("/<int:record_id>", methods=["GET"])
@blp.alt_response(200, schema=RecordSchema, success=True)
@requires("records:read", person_level=True)
def show(record_id: int):
    """One person: measurements, derived values, flags, categories, rule version."""
    row = None
    if record_id <= MAX_RECORD_ID:
        with resources().engine.connect() as conn:
            row = conn.execute(select(screenings).where(screenings.c.id == record_id)).first()
    audit_read({"id": record_id}, 0 if row is None else 1)
    if row is None:
        raise ApiError(404, "not_found", f"no record {record_id}")
    r = row._mapping
    measurements = {c: _clean(r[c]) for c in MEASUREMENT_COLUMNS if c not in ("province", "smoking", "drinking")}
    measurements["smoking"] = SMOKING.get(r["smoking"])
    measurements["drinking"] = None if r["drinking"] is None else bool(r["drinking"])
    return {
        **summary(r),
        "subscriber_id": r["subscriber_id"],
        "release_date": r["release_date"],
        "measurements": measurements,
        "categories": {c: (bool(r[c]) if isinstance(r[c], bool) else _clean(r[c])) for c in CATEGORY_COLUMNS},
        "metabolic_syndrome": {
            **{c.removeprefix("mets_"): (None if r[c] is None else bool(r[c]))
               for c in DERIVED_SQL_TYPES if c.startswith("mets_")},
            "verdict": None if r["metabolic_syndrome"] is None else bool(r["metabolic_syndrome"]),
        },
        "cvd_10y": {"percent": _clean(r["cvd_10y"]), "model": "framingham_2008_general_cvd",
                    "caveat": "US-derived model; tends to overestimate absolute risk in Korean adults"},
        "source": {"job_id": r["job_id"], "line_no": r["line_no"]},
        "disclaimer": DISCLAIMER,
    }
