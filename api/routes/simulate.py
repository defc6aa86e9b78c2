"""What-if simulator (scope simulate): one person, or up to 1,000, through the same rule table
the ETL uses (shared.rules), plus peer percentiles from the warm statistics cache.

The default answer carries every flag, category, both risk categories, metabolic syndrome, eGFR
and the 10-year CVD risk; ``?include=what_if,explanations`` adds the optional parts. The batch
route runs the numpy core (numpy is imported on its first call, never at start-up)."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint, abort
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from webargs.fields import DelimitedList

from api.auth import requires
from api.extensions import resources
from api.responses import BatchSimulationSchema, SimulationSchema
from shared.data.catalog import BY_NAME
from shared.rules.layout import INCLUDES, person_response
from shared.rules.scalar import evaluate_scalar
from shared.stats import peer
from shared.stats.keys import PERCENTILES
from shared.stats.peer import peer_percentiles

URL_PREFIX = "/simulate"
blp = Blueprint("simulate", __name__, description="Risk simulator (scope simulate); not a diagnosis")
MEASUREMENTS = ("height_cm", "weight_kg", "waist_cm", "sbp", "dbp", "fasting_glucose", "total_cholesterol",
                "hdl", "ldl", "triglycerides", "hemoglobin", "creatinine", "ast", "alt", "ggt")
SEXES = ("M", "F")
SMOKING = ("never", "former", "current")
AGE_RANGE, AGE_GROUP_RANGE, URINE_PROTEIN_RANGE = (20, 99), (5, 18), (1, 6)
BATCH_MAX = 1000
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
    people = fields.List(fields.Nested(PersonSchema), required=True, validate=validate.Length(1, BATCH_MAX))


class SimulateQuerySchema(Schema):
    include = DelimitedList(
        fields.String(validate=validate.OneOf(INCLUDES)), load_default=list,
        metadata={"description": "optional parts, comma-separated: what_if (nearest values that switch "
                                 "each true factor off) and explanations (one sentence per finding)",
                  "example": ["what_if", "explanations"]},
    )


# Shown in the OpenAPI document (Swagger UI's "Try it out") and in docs/API.md's curl examples.
EXAMPLE_PERSON = {"sex": "F", "age": 52, "height_cm": 160, "weight_kg": 68, "waist_cm": 86, "sbp": 146, "dbp": 92,
                  "fasting_glucose": 104, "total_cholesterol": 232, "hdl": 44, "triglycerides": 180,
                  "smoking": "never"}
EXAMPLE_BATCH = {"people": [EXAMPLE_PERSON, {"sex": "M", "age_group": 12, "sbp": 128, "dbp": 84,
                                             "fasting_glucose": 131, "smoking": "current"}]}


_BATCH = BatchSchema()


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


def quick_people(body) -> list[dict] | None:
    """A batch body as BatchSchema would load it, when every person is plainly valid; else None."""
    if type(body) is not dict or len(body) != 1 or type(body.get("people")) is not list:
        return None
    people = body["people"]
    if not 1 <= len(people) <= BATCH_MAX:
        return None
    out = []
    for data in people:
        person = quick_person(data)
        if person is None:
            return None
        out.append(person)
    return out


def quick_include(query_string: str) -> tuple[str, ...] | None:
    """``include`` from a raw query string when it is plainly valid (``include=a,b``); else None,
    and the Flask route (SimulateQuerySchema) decides, with its 422 naming the field."""
    if not query_string:
        return ()
    name, _, value = query_string.partition("=")
    if name != "include" or "&" in value or "%" in value or "+" in value:
        return None
    parts = value.split(",") if value else []
    if not all(p in INCLUDES for p in parts):
        return None
    return tuple(p for p in INCLUDES if p in parts)


def _include(query) -> tuple[str, ...]:
    asked = query.get("include") or ()
    return tuple(p for p in INCLUDES if p in asked)


def _peer_values(person: dict, result: dict) -> dict:
    values = {k: person.get(k) for k in MEASUREMENTS}
    values["bmi"] = result["bmi"]
    return values


def _with_peers(result: dict, person: dict, res) -> dict:
    result["input"] = person
    result["peer"] = peer_percentiles(res, person["sex"], result["age"]["age_group"], _peer_values(person, result))
    return result


def simulate_one(person: dict, res, include: tuple[str, ...] = ()) -> dict:
    return _with_peers(person_response(evaluate_scalar(person), include), person, res)


def _rank_all(values: list[float], blocks: list[peer.Block], which: list[int]) -> list[dict]:
    """``shared.stats.peer.rank_block(values[k], blocks[which[k]])`` for every k, vectorised.

    Values between p5 and p95 of a complete, ascending block are interpolated with numpy by the same
    formula (same operations, so the same doubles and the same half-to-even rounding); every other
    case is left to ``rank_block`` itself. Batch answers are compared with single ones in
    tests/integration/test_fastpath.py.
    """
    import numpy as np

    quantiles = PERCENTILES
    table = np.full((len(blocks), len(quantiles)), np.nan)
    for b, block in enumerate(blocks):
        if block.ascending:
            table[b] = block.points
    v = np.array(values, dtype=np.float64)
    p = table[np.array(which, dtype=np.int64)]
    rows = np.arange(len(v))
    i = np.clip((p < v[:, None]).sum(axis=1) - 1, 0, len(quantiles) - 2)  # the first interval holding v
    v0, v1 = p[rows, i], p[rows, i + 1]
    q = np.array(quantiles, dtype=np.float64)
    q0, q1 = q[i], q[i + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(v1 == v0, q0, q0 + (q1 - q0) * (v - v0) / (v1 - v0))
        inside = (v >= p[:, 0]) & (v <= p[:, -1])  # false for an unusable (NaN) block
    rounded = np.rint(np.where(inside, pct, 0.0)).astype(np.int64).tolist()
    return [{"value": x, "percentile": r, "n": blocks[b].n} if ok else peer.rank_block(x, blocks[b])
            for x, r, ok, b in zip(values, rounded, inside.tolist(), which, strict=True)]


def _batch_results(results: list[dict], people: list[dict], res) -> list[dict]:
    """Add ``input`` and ``peer`` to each batch result, equal to what /simulate gives the person.

    Peers are most of a batch's time (~13,000 values for 1,000 people), so each published block
    (sex, band, measurement) is read once and all values are ranked in one pass (:func:`_rank_all`)."""
    heads: dict[tuple, dict] = {}
    group_blocks: dict[tuple, dict[str, int]] = {}  # (sex, band) -> measurement -> index in blocks
    blocks: list[peer.Block] = []
    owners: list[int] = []
    names: list[str] = []
    values: list[float] = []
    which: list[int] = []
    for i, (r, person) in enumerate(zip(results, people, strict=True)):
        r["input"] = person
        group = (person["sex"], r["age"]["age_group"])
        mapping = group_blocks.get(group)
        if mapping is None:
            head = heads[group] = peer_percentiles(res, *group, {})
            table = peer.peer_table(res, *group) if head.get("available") else None
            mapping = group_blocks[group] = {}
            for name in (*MEASUREMENTS, "bmi"):  # the order peer_percentiles lists them in
                if table and name in table:
                    mapping[name] = len(blocks)
                    blocks.append(table[name])
        for name, b in mapping.items():
            value = r["bmi"] if name == "bmi" else person.get(name)
            if value is not None:
                owners.append(i)
                names.append(name)
                values.append(float(value))
                which.append(b)
    measurements: list[dict] = [{} for _ in people]
    for i, name, answer in zip(owners, names, _rank_all(values, blocks, which) if values else [], strict=True):
        measurements[i][name] = answer
    for i, r in enumerate(results):
        head = heads[(people[i]["sex"], r["age"]["age_group"])]
        r["peer"] = {**head, "measurements": measurements[i]} if head.get("available") else head
    return results


@blp.route("", methods=["POST"])
@blp.arguments(SimulateQuerySchema(), location="query")
@blp.arguments(PersonSchema(), example=EXAMPLE_PERSON)
@blp.alt_response(200, schema=SimulationSchema, success=True)
@requires("simulate", max_body=SIMULATE_MAX_BODY, person_level=True)
def simulate(query, person):
    """Flags, categories, both risk categories, metabolic syndrome, eGFR, 10-year CVD risk and peers;
    what-if and explanations with `include=what_if,explanations`."""
    return simulate_one(person, resources(), _include(query))


@blp.route("/batch", methods=["POST"])
@blp.arguments(SimulateQuerySchema(), location="query")
@blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": BatchSchema,
                                                                          "example": EXAMPLE_BATCH}}})
@blp.alt_response(200, schema=BatchSimulationSchema, success=True)
@requires("simulate", max_body=BATCH_MAX_BODY, person_level=True)
def simulate_batch(query):
    """Up to 1,000 people in one call, results in input order, each shaped like one /simulate answer.

    Plainly valid bodies skip marshmallow (a 1,000-person load costs ~40 ms); anything else is
    validated by BatchSchema with the usual 422."""
    body = request.get_json(silent=True)
    people = quick_people(body)
    if people is None:
        try:
            people = _BATCH.load(body if body is not None else {})["people"]
        except ValidationError as err:
            abort(422, messages={"json": err.messages})
    res = resources()
    include = _include(query)
    if include:
        return {"results": [simulate_one(p, res, include) for p in people]}
    from shared.rules import evaluate_batch  # numpy, loaded on the first batch only

    return {"results": _batch_results(evaluate_batch(people), people, res)}
