"""Peer comparison for the simulator: where a value sits among people of the same sex and age
band, read from the published (suppressed) percentiles payload, never from the rows.

A (sex, band) table is read and prepared once per 30 s per process: each measurement's published
quantiles become a :class:`Block` (the points as a tuple, whether they can be interpolated), so
ranking one value is a bisect instead of a walk over the payload's dict (tests/unit/test_peer.py
holds it equal to the definition)."""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import NamedTuple

import orjson

from shared.stats.keys import LATEST, PERCENTILES, payload_key
from shared.stats.store import read_payload

_TTL = 30.0
_SUPPRESSED = "suppressed or too few people"


class Block(NamedTuple):
    """One measurement's published quantiles, ready to rank against."""

    points: tuple[float, ...] | None  # PERCENTILES' values; None when any is withheld
    ascending: bool  # points never fall (then the first interval holding a value is found by bisect)
    n: int | None


_cache: dict[tuple[str, int | None], tuple[float, dict[str, Block] | None]] = {}


def compile_block(block: dict) -> Block:
    points = tuple(block.get(f"p{q}") for q in PERCENTILES)
    if any(v is None for v in points):
        return Block(None, False, block.get("n"))
    ascending = all(a <= b for a, b in zip(points, points[1:], strict=False))
    return Block(points, ascending, block.get("n"))


def peer_table(resources, sex: str, age_group: int | None) -> dict[str, Block] | None:
    """Measurement -> prepared block for (sex, band), from the latest published percentiles; None
    when none are published (cached per process for 30 s either way)."""
    now = time.monotonic()
    hit = _cache.get((sex, age_group))
    if hit and hit[0] > now:
        return hit[1]
    raw, _source = read_payload(resources, payload_key("percentiles", LATEST, sex, age_group))
    measurements = orjson.loads(raw)["data"]["measurements"] if raw else None
    table = {name: compile_block(b) for name, b in measurements.items()} if measurements else None
    _cache[(sex, age_group)] = (now + _TTL, table)
    return table


def rank_block(value: float, block: Block) -> dict:
    """Approximate percentile of value by linear interpolation between the published quantiles."""
    points = block.points
    if points is None:
        return {"value": value, "percentile": None, "reason": _SUPPRESSED}
    if value < points[0]:
        return {"value": value, "percentile": "<5", "n": block.n}
    if value > points[-1]:
        return {"value": value, "percentile": ">95", "n": block.n}
    # The first interval with v0 <= value <= v1. One exists: between the first and the last point,
    # the last point <= value is followed by one >= value.
    if block.ascending:
        i = max(bisect_left(points, value), 1) - 1
    else:
        i = next(i for i in range(len(points) - 1) if points[i] <= value <= points[i + 1])
    return _interpolate(value, i, points, block.n)


def _interpolate(value: float, i: int, points: tuple[float, ...], n: int | None) -> dict:
    q0, q1, v0, v1 = PERCENTILES[i], PERCENTILES[i + 1], points[i], points[i + 1]
    pct = q0 if v1 == v0 else q0 + (q1 - q0) * (value - v0) / (v1 - v0)
    return {"value": value, "percentile": round(pct), "n": n}


def peer_percentiles(resources, sex: str, age_group: int | None, values: dict) -> dict:
    try:
        table = peer_table(resources, sex, age_group)
    except Exception:  # no statistics yet, or a filter without data: peers are optional
        table = None
    if not table:
        return {"available": False, "reason": "statistics not computed yet for this sex and age band"}
    measurements = {}
    for name, value in values.items():
        if value is not None:
            block = table.get(name)
            if block is not None:
                measurements[name] = rank_block(float(value), block)
    return {"available": True, "sex": sex, "age_group": age_group, "measurements": measurements}
