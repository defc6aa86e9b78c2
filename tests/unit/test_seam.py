"""The fast paths as a declared seam: the Flask hooks they stand in for are pinned, and each
`quick_*` check accepts exactly what its schema accepts within its domain (and loads the same)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from api.fastpath import FastPaths
from api.routes.records import FLAG_NAMES, RISK_GROUPS, RecordsQuerySchema
from api.routes.records import quick_query as records_quick_query
from api.routes.simulate import AGE_GROUP_RANGE, AGE_RANGE, BOUNDS, SMOKING, PersonSchema, quick_person
from api.routes.stats import StatsQuerySchema, quick_query
from tests.support.apps import embedded_app

# What each hook does and where the fast paths get the same behaviour (api/fastpath.py):
#   _start           request id and timer           -> finisher.request_id_for + perf_counter
#   _enforce_policy  body limit, key, scope, limits -> FastPaths._admit (same policy, cache, limiter)
#   _finish          headers, metrics, access log   -> finisher.finishing_headers + complete_request
#   _unbind          structlog context              -> nothing bound on the fast path
PINNED_HOOKS = {
    "before_request": ["init_request_context.<locals>._start", "init_auth.<locals>._enforce_policy"],
    "after_request": ["init_request_context.<locals>._finish"],
    "teardown_request": ["init_request_context.<locals>._unbind"],
    "url_value_preprocessor": [],
}


def test_registered_request_hooks_are_pinned(sqlite_settings, sqlite_resources):
    """A new hook would silently miss the fast paths: give the fast path the same behaviour (or make
    it decline), then update PINNED_HOOKS."""
    app = embedded_app(sqlite_settings, sqlite_resources)
    found = {
        "before_request": app.before_request_funcs,
        "after_request": app.after_request_funcs,
        "teardown_request": app.teardown_request_funcs,
        "url_value_preprocessor": app.url_value_preprocessors,
    }
    for kind, per_blueprint in found.items():
        names = [f.__qualname__ for funcs in per_blueprint.values() for f in funcs]
        assert names == PINNED_HOOKS[kind], kind
    assert type(app.wsgi_app) is FastPaths


# -- stats: quick_query vs StatsQuerySchema ------------------------------------------------------
digits = st.integers(0, 999_999).map(str) | st.integers(0, 99).map(lambda n: f"0{n}")
odd_text = st.sampled_from(["", " 5", "+5", "5.0", "²", "٣", "2024²", "M ", "m", "f", "x", "1e3", "-1", "2024\x00"])
values = digits | odd_text | st.sampled_from(["M", "F"]) | st.text(max_size=6)
query_names = st.sampled_from(["year", "sex", "age_group"])


def schema_query(args: dict) -> dict | None:
    try:
        return StatsQuerySchema().load(args)
    except ValidationError:
        return None


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(query_names, values, max_size=3))
def test_quick_query_accepts_only_what_the_schema_accepts_and_loads_the_same(args):
    quick = quick_query(MultiDict(args))
    loaded = schema_query(args)
    if quick is not None:
        assert quick == loaded
    in_domain = all(v.isascii() and v.isdigit() and len(v) <= 6 for k, v in args.items() if k != "sex")
    if in_domain:  # ASCII digits (what clients send) and any sex value: both agree exactly
        assert (quick is None) == (loaded is None)


@given(st.dictionaries(query_names, values, max_size=3), st.sampled_from(["colour", "limit", "population"]))
def test_quick_query_declines_unknown_and_repeated_parameters(args, extra):
    assert quick_query(MultiDict({**args, extra: "1"})) is None
    if args:
        name = next(iter(args))
        assert quick_query(MultiDict([*args.items(), (name, args[name])])) is None


# -- simulate: quick_person vs PersonSchema -----------------------------------------------------
def _measure(name):
    lo, hi = BOUNDS[name]
    span = hi - lo
    return (st.none() | st.floats(lo - span, hi + span, allow_nan=False) | st.integers(int(lo - span), int(hi + span))
            | st.sampled_from([lo, hi, float(lo), float(hi)]))


def _int_field(bounds, nullable):
    s = st.integers(bounds[0] - 5, bounds[1] + 5) | st.sampled_from([bounds[0], bounds[1]])
    return (st.none() | s) if nullable else s


FIELDS = {
    "sex": st.sampled_from(["M", "F", "X", "m", ""]),
    "age": _int_field(AGE_RANGE, False) | st.none(),
    "age_group": _int_field(AGE_GROUP_RANGE, False) | st.none(),
    "urine_protein": _int_field((1, 6), True),
    "smoking": st.none() | st.sampled_from([*SMOKING, "sometimes", ""]),
    "drinking": st.none() | st.booleans(),
    **{name: _measure(name) for name in BOUNDS},
}


@st.composite
def people(draw):
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), unique=True, max_size=len(FIELDS)))
    person = {name: draw(FIELDS[name]) for name in names}
    if draw(st.booleans()):
        person["sex"] = draw(st.sampled_from(["M", "F"]))
    if draw(st.booleans()):
        person.setdefault("age", draw(st.integers(*AGE_RANGE)))
    return person


@settings(max_examples=800, deadline=None)
@given(people())
def test_quick_person_accepts_exactly_what_the_schema_accepts_with_json_native_types(person):
    """Domain: every value has its field's JSON type (number, integer, string, boolean or null)."""
    quick = quick_person(person)
    errors = PersonSchema().validate(person)
    assert (quick is None) == bool(errors), (person, errors)
    if quick is not None:
        loaded = PersonSchema().load(person)
        assert list(quick.items()) == list(loaded.items())  # same values, same order, same bytes


@pytest.mark.parametrize("person", [
    {"sex": "M", "age": 50, "sbp": "150"},  # a string for a number: the schema converts it
    {"sex": "M", "age": 50.0},  # a float for an integer
    {"sex": "M", "age": 50, "drinking": 1},  # an integer for a boolean
    {"sex": "M", "age": 50, "sbp": True},
    {"sex": "M", "age": 50, "shoe_size": 44},  # unknown field
    ["sex", "M"],
])
def test_quick_person_declines_anything_outside_its_domain(person):
    assert quick_person(person) is None


# -- records: quick_query vs RecordsQuerySchema -------------------------------------------------
CURSOR_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")  # base64url
record_names = st.sampled_from(["year", "sex", "age_group", "province", "screening_risk_group", "risk_group",
                                "limit", "cursor"])
record_values = (digits | odd_text | st.sampled_from(["M", "F", "2024", "11", "36", "100", "101", "0"])
                 | st.sampled_from([*RISK_GROUPS, "LOW", ""]) | st.text(max_size=8)
                 | st.text("".join(sorted(CURSOR_ALPHABET)), max_size=12))
flag_values = st.lists(st.sampled_from([*FLAG_NAMES, "HYPERTENSION", "", "bmi"]), max_size=9)


def records_schema(args: dict, flags: list[str]) -> dict | None:
    try:
        return RecordsQuerySchema().load({**args, **({"flag": flags} if flags else {})})
    except ValidationError:
        return None


@settings(max_examples=800, deadline=None)
@given(st.dictionaries(record_names, record_values, max_size=4), flag_values)
def test_records_quick_query_accepts_only_what_the_schema_accepts_and_loads_the_same(args, flags):
    quick = records_quick_query(MultiDict([*args.items(), *(("flag", f) for f in flags)]))
    loaded = records_schema(args, flags)
    if quick is not None:
        assert quick == loaded
    # Outside the domain, the schema reads more than clients send: int() takes " 5", "+5", "2_024"
    # and non-ASCII digits, and any text is a cursor to it (the route refuses what is not one).
    # Inside it, both agree exactly.
    in_domain = all(set(v) <= CURSOR_ALPHABET if k == "cursor" else
                    v.isascii() and v == v.strip() and not {"+", "_"} & set(v) for k, v in args.items())
    if in_domain:
        assert (quick is None) == (loaded is None), (args, flags, loaded)


def test_records_quick_query_declines_unknown_and_repeated_parameters():
    assert records_quick_query(MultiDict({"year": "2020", "colour": "red"})) is None
    assert records_quick_query(MultiDict([("year", "2020"), ("year", "2021")])) is None
    assert records_quick_query(MultiDict([("flag", "smoking")] * 8)) is None  # more flags than exist
    assert records_quick_query(MultiDict()) == {"limit": 20}
