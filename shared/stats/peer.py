"""Peer comparison for the simulator: where a value sits among people of the same sex and age
band, read from the published (suppressed) percentiles payload, never from the rows."""

from __future__ import annotations

import time

import orjson

from shared.stats.keys import LATEST, PERCENTILES, payload_key
from shared.stats.store import read_payload

_TTL = 30.0
_cache: dict[str, tuple[float, dict | None]] = {}


def _percentile_table(resources, sex: str, age_group: int | None) -> dict | None:
    key = payload_key("percentiles", LATEST, sex, age_group)
    now = time.monotonic()
    hit = _cache.get(key)
    if hit and hit[0] > now:
        return hit[1]
    raw, _source = read_payload(resources, key)
    table = orjson.loads(raw)["data"]["measurements"] if raw else None
    _cache[key] = (now + _TTL, table)
    return table


def rank(value: float, block: dict) -> dict:
    """Approximate percentile of value by linear interpolation between the published quantiles."""
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


def peer_percentiles(resources, sex: str, age_group: int | None, values: dict) -> dict:
    try:
        table = _percentile_table(resources, sex, age_group)
    except Exception:  # no statistics yet, or a filter without data: peers are optional
        table = None
    if not table:
        return {"available": False, "reason": "statistics not computed yet for this sex and age band"}
    out = {"available": True, "sex": sex, "age_group": age_group, "measurements": {}}
    for name, value in values.items():
        if value is not None and name in table:
            out["measurements"][name] = rank(float(value), table[name])
    return out
