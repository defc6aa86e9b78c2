"""The batch route's vectorised peer ranking answers exactly like shared.stats.peer.rank_block, and its
schema-free checks accept exactly what the schemas accept."""

from __future__ import annotations

import numpy as np
import pytest

from api.routes.simulate import BatchSchema, SimulateQuerySchema, _rank_all, quick_include, quick_people
from shared.stats.keys import PERCENTILES as QUANTILES
from shared.stats.peer import compile_block, rank_block


def _block(rng, kind: str) -> dict:
    points = np.sort(np.round(rng.uniform(50, 200, len(QUANTILES)), int(rng.integers(0, 2)))).tolist()
    if kind == "ties":
        points[2] = points[3] = points[4]
    elif kind == "suppressed":
        points[int(rng.integers(0, len(points)))] = None
    elif kind == "unordered":
        points[1], points[5] = points[5], points[1]
    block = {f"p{q}": v for q, v in zip(QUANTILES, points, strict=True)}
    block["n"] = int(rng.integers(11, 5000))
    return block


def test_rank_all_equals_rank_value_by_value():
    rng = np.random.default_rng(17)
    blocks = [_block(rng, kind) for kind in ("plain", "ties", "suppressed", "unordered") for _ in range(6)]
    values, which = [], []
    for b, block in enumerate(blocks):
        edges = [v for v in block.values() if isinstance(v, float)]
        for v in [*rng.uniform(30, 220, 40).round(1), *edges, *(e + 0.1 for e in edges), *(e - 0.1 for e in edges)]:
            values.append(float(v))
            which.append(b)
    prepared = [compile_block(b) for b in blocks]
    got = _rank_all(values, prepared, which)
    assert got == [rank_block(v, prepared[b]) for v, b in zip(values, which, strict=True)]
    assert {type(a["percentile"]) for a in got} >= {int, str, type(None)}  # every branch was hit


PERSON = {"sex": "F", "age": 61, "sbp": 128.0, "hdl": 48.0, "smoking": "never"}


@pytest.mark.parametrize(
    "body",
    [
        {"people": [PERSON]},
        {"people": [PERSON] * 1000},
        {"people": []},
        {"people": [PERSON] * 1001},
        {"people": [PERSON, {**PERSON, "sbp": 900}]},
        {"people": [PERSON], "extra": 1},
        {"people": "x"},
        [PERSON],
        {"people": [{**PERSON, "age": 61.0}]},
    ],
)
def test_quick_people_accepts_only_what_the_schema_accepts(body):
    """Declining is always allowed (the schema then judges); accepting must match the schema."""
    quick = quick_people(body)
    if quick is not None:
        assert not BatchSchema().validate(body) and quick == BatchSchema().load(body)["people"]


def test_quick_people_takes_the_plain_case():
    assert quick_people({"people": [PERSON] * 1000}) == BatchSchema().load({"people": [PERSON] * 1000})["people"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ()),
        ("include=", ()),
        ("include=what_if", ("what_if",)),
        ("include=explanations,what_if", ("what_if", "explanations")),
        ("include=what_if,what_if", ("what_if",)),
        ("include=bogus", None),
        ("include=what_if,", None),
        ("include=what_if&x=1", None),
        ("include=what%5Fif", None),
        ("other=1", None),
    ],
)
def test_quick_include_agrees_with_the_query_schema(query, expected):
    assert quick_include(query) == expected
    if expected is not None:
        value = query.partition("=")[2]
        loaded = SimulateQuerySchema().load({"include": value} if query else {})
        assert tuple(p for p in ("what_if", "explanations") if p in loaded["include"]) == expected
