"""What-if simulator (scope simulate): one person, or up to 1,000, through the same rule table
the ETL uses (shared.rules), plus peer percentiles from the warm statistics cache."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.auth import requires
from api.extensions import resources
from shared.data.catalog import BY_NAME
from shared.rules import evaluate_person
from shared.stats.peer import peer_percentiles

URL_PREFIX = "/simulate"
blp = Blueprint("simulate", __name__, description="Risk simulator (scope simulate); not a diagnosis")
MEASUREMENTS = ("height_cm", "weight_kg", "waist_cm", "sbp", "dbp", "fasting_glucose", "total_cholesterol",
                "hdl", "ldl", "triglycerides", "hemoglobin", "creatinine", "ast", "alt", "ggt")


def _measurement(name: str) -> fields.Float:
    lo, hi = BY_NAME[name].bounds  # the same physiological bounds the reader applies to files
    return fields.Float(allow_none=True, validate=validate.Range(lo, hi),
                        metadata={"description": f"{BY_NAME[name].unit}; {lo}-{hi}"})


_PersonBase = Schema.from_dict(
    {
        "sex": fields.String(required=True, validate=validate.OneOf(["M", "F"])),
        "age": fields.Integer(validate=validate.Range(20, 99), metadata={"description": "years (or age_group)"}),
        "age_group": fields.Integer(validate=validate.Range(5, 18),
                                    metadata={"description": "band k = ages 5k-5..5k-1"}),
        "urine_protein": fields.Integer(allow_none=True, validate=validate.Range(1, 6)),
        "smoking": fields.String(allow_none=True, validate=validate.OneOf(["never", "former", "current"])),
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


class BatchSchema(Schema):
    people = fields.List(fields.Nested(PersonSchema), required=True, validate=validate.Length(1, 1000))


def simulate_one(person: dict, res) -> dict:
    result = evaluate_person(person)
    result.pop("derived", None)
    result["input"] = person
    result["peer"] = peer_percentiles(res, person["sex"], result["age"].get("age_group"),
                                      {k: person.get(k) for k in (*MEASUREMENTS, "bmi")} | {"bmi": result["bmi"]})
    return result


@blp.route("", methods=["POST"])
@blp.arguments(PersonSchema)
@requires("simulate")
def simulate(person):
    """Flags, categories, risk group, metabolic syndrome, eGFR, 10-year CVD risk, peers, what-if."""
    return simulate_one(person, resources())


@blp.route("/batch", methods=["POST"])
@blp.arguments(BatchSchema)
@requires("simulate")
def simulate_batch(body):
    """Up to 1,000 people in one call; results in input order."""
    res = resources()
    return {"results": [simulate_one(p, res) for p in body["people"]]}
