"""What-if simulator (scope simulate): one person, or up to 1,000, through the same rule table
the ETL uses (shared.rules), plus peer percentiles from the warm statistics cache."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.auth import requires
from api.extensions import resources
from api.responses import BatchSimulationSchema, SimulationSchema
from shared.data.catalog import BY_NAME
from shared.rules import evaluate_person
from shared.stats.peer import peer_percentiles

URL_PREFIX = "/simulate"
blp = Blueprint("simulate", __name__, description="Risk simulator (scope simulate); not a diagnosis")
MEASUREMENTS = ("height_cm", "weight_kg", "waist_cm", "sbp", "dbp", "fasting_glucose", "total_cholesterol",
                "hdl", "ldl", "triglycerides", "hemoglobin", "creatinine", "ast", "alt", "ggt")
SEXES = ("M", "F")
SMOKING = ("never", "former", "current")
AGE_RANGE, AGE_GROUP_RANGE, URINE_PROTEIN_RANGE = (20, 99), (5, 18), (1, 6)
BOUNDS = {name: BY_NAME[name].bounds for name in MEASUREMENTS}  # the reader's physiological bounds
# Checked from Content-Length before the body is read: one person is < 1 KB, 1,000 are < 1 MB.
SIMULATE_MAX_BODY, BATCH_MAX_BODY = 64 * 1024, 2 * 1024 * 1024


def _measurement(name: str) -> fields.Float:
    lo, hi = BOUNDS[name]
    return fields.Float(allow_none=True, validate=validate.Range(lo, hi),
                        metadata={"description": f"{BY_NAME[name].unit}; {lo}-{hi}"})


_PersonBase = Schema.from_dict(
    {
        "sex": fields.String(required=True, validate=validate.OneOf(SEXES)),
        "age": fields.Integer(validate=validate.Range(*AGE_RANGE), metadata={"description": "years (or age_group)"}),
        "age_group": fields.Integer(validate=validate.Range(*AGE_GROUP_RANGE),
                                    metadata={"description": "band k = ages 5k-5..5k-1"}),
        "urine_protein": fields.Integer(allow_none=True, validate=validate.Range(*URINE_PROTEIN_RANGE)),
        "smoking": fields.String(allow_none=True, validate=validate.OneOf(SMOKING)),
        "drinking": fields.Boolean(allow_none=True),
        **{name: _measurement(name) for name in MEASUREMENTS},
    },
    name="PersonBase",
)


class PersonSchema(_PersonBase):
    @validates_schema
    def _age_given(self, data, **_kwargs):
        if "age" not in data and "age_group" not in data:
            raise ValidationError("give age (years) or age_group (5-18)", field_name="age")


FIELD_ORDER = tuple(PersonSchema().fields)


class BatchSchema(Schema):
    people = fields.List(fields.Nested(PersonSchema), required=True, validate=validate.Length(1, 1000))


def _int_in(value, bounds) -> bool:
    return type(value) is int and bounds[0] <= value <= bounds[1]


def quick_person(data) -> dict | None:
    """The person as PersonSchema would load it, for plainly valid JSON only; otherwise None.

    Same names, bounds and choices as the schema (the constants above); anything unusual
    (strings for numbers, unknown fields, out of range) returns None so the schema answers,
    with its 422 messages. tests/integration/test_fastpath.py checks both give the same bytes.
    """
    if type(data) is not dict or data.get("sex") not in SEXES:
        return None
    out = {}
    for name, value in data.items():
        if name in BOUNDS:
            if value is not None:
                if type(value) not in (int, float) or not BOUNDS[name][0] <= value <= BOUNDS[name][1]:
                    return None
                value = float(value)
        elif name == "sex":
            pass
        elif name == "age":
            if not _int_in(value, AGE_RANGE):
                return None
        elif name == "age_group":
            if not _int_in(value, AGE_GROUP_RANGE):
                return None
        elif name == "urine_protein":
            if value is not None and not _int_in(value, URINE_PROTEIN_RANGE):
                return None
        elif name == "smoking":
            if value is not None and value not in SMOKING:
                return None
        elif name == "drinking":
            if value is not None and type(value) is not bool:
                return None
        else:
            return None
        out[name] = value
    if "age" not in out and "age_group" not in out:
        return None
    return {name: out[name] for name in FIELD_ORDER if name in out}  # the order the schema loads in


def simulate_one(person: dict, res) -> dict:
    result = evaluate_person(person)
    result.pop("derived", None)
    result["input"] = person
    result["peer"] = peer_percentiles(res, person["sex"], result["age"].get("age_group"),
                                      {k: person.get(k) for k in (*MEASUREMENTS, "bmi")} | {"bmi": result["bmi"]})
    return result


@blp.route("", methods=["POST"])
@blp.arguments(PersonSchema())
@blp.alt_response(200, schema=SimulationSchema, success=True)
@requires("simulate", max_body=SIMULATE_MAX_BODY, person_level=True)
def simulate(person):
    """Flags, categories, risk group, metabolic syndrome, eGFR, 10-year CVD risk, peers, what-if."""
    return simulate_one(person, resources())


@blp.route("/batch", methods=["POST"])
@blp.arguments(BatchSchema())
@blp.alt_response(200, schema=BatchSimulationSchema, success=True)
@requires("simulate", max_body=BATCH_MAX_BODY, person_level=True)
def simulate_batch(body):
    """Up to 1,000 people in one call; results in input order."""
    res = resources()
    return {"results": [simulate_one(p, res) for p in body["people"]]}
