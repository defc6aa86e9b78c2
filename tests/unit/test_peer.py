"""Peer ranking by bisect over prepared blocks answers exactly like the definition: the first
published interval [v0, v1] holding the value, interpolated and rounded half to even."""

from __future__ import annotations

import numpy as np

from shared.stats.keys import PERCENTILES
from shared.stats.peer import compile_block, rank_block


def _by_definition(value: float, block: dict) -> dict:
    points = [(q, block.get(f"p{q}")) for q in PERCENTILES]
    if any(v is None for _, v in points):
        return {"value": value, "percentile": None, "reason": "suppressed or too few people"}
    if value < points[0][1]:
        return {"value": value, "percentile": "<5", "n": block.get("n")}
    if value > points[-1][1]:
        return {"value": value, "percentile": ">95", "n": block.get("n")}
    for (q0, v0), (q1, v1) in zip(points, points[1:], strict=False):
        if v0 <= value <= v1:
            pct = q0 if v1 == v0 else q0 + (q1 - q0) * (value - v0) / (v1 - v0)
            return {"value": value, "percentile": round(pct), "n": block.get("n")}
    return {"value": value, "percentile": None}


def _blocks(rng) -> list[dict]:
    out = []
    for kind in ("plain", "ties", "flat", "suppressed", "unordered", "dip"):
        for _ in range(8):
            points = np.sort(np.round(rng.uniform(50, 200, len(PERCENTILES)), int(rng.integers(0, 2)))).tolist()
            if kind == "ties":
                points[2] = points[3] = points[4]
            elif kind == "flat":
                points = [points[0]] * len(points)
            elif kind == "suppressed":
                points[int(rng.integers(0, len(points)))] = None
            elif kind == "unordered":
                points[1], points[5] = points[5], points[1]
            elif kind == "dip":  # a middle point below its neighbours
                points[3] = points[1] - 1
            block = {f"p{q}": v for q, v in zip(PERCENTILES, points, strict=True)}
            block["n"] = int(rng.integers(11, 5000))
            out.append(block)
    return out


def test_rank_by_bisect_equals_the_definition_at_every_edge():
    rng = np.random.default_rng(3)
    answers = []
    for block in _blocks(rng):
        edges = [v for k, v in block.items() if k != "n" and v is not None]
        values = [*rng.uniform(30, 220, 30).round(1), *edges, *(e + 0.05 for e in edges), *(e - 0.05 for e in edges)]
        prepared = compile_block(block)
        for v in map(float, values):
            expected = _by_definition(v, block)
            assert rank_block(v, prepared) == expected, (block, v)
            answers.append(expected)
    assert {type(a["percentile"]) for a in answers} == {int, str, type(None)}  # inside, outside, withheld
