"""Statistics payloads as CSV for analysts: one row per published number, the same numbers, the same
suppression and the same labels as the JSON, UTF-8 with a byte-order mark so Excel reads the Korean
province names.

Pure Python (the web process converts the stored JSON bytes on request; no pandas). The layout is
the same for every endpoint, so CSVs of several payloads can be stacked:

``year, sex, age_group, age_label, province_code, province_name_ko, province_name_en, population,
section, item, level, value_label, statistic, value, unit, suppressed, note``

* the dimensions come from the slice the number belongs to (the payload's own filters, a
  breakdown row, an age band, a province, a year of a trend);
* ``section / item / level`` is the number's place in the JSON (``flags / flag_low_hdl``,
  ``categories / bp_category / stage1``, ``groupings / risk_group / INDETERMINATE``, ``crude``...);
* ``statistic`` is the JSON field (``n``, ``percent``, ``n_positive``, ``p50``, ``ci_low``...);
* ``value`` is empty where the JSON has null; ``suppressed`` is ``true`` where that null is a
  withheld small count (or a number computed from one).

Payload meta (computed_at, rule_version, stale, ...) travels in HTTP headers, not in the table.
"""

from __future__ import annotations

import csv
import io

import orjson

COLUMNS: tuple[str, ...] = (
    "year", "sex", "age_group", "age_label", "province_code", "province_name_ko", "province_name_en",
    "population", "section", "item", "level", "value_label", "statistic", "value", "unit", "suppressed", "note",
)
BOM = "\ufeff"
MEDIA_TYPE = "text/csv; charset=utf-8"

# JSON fields that place a number rather than being one
_DIMENSIONS = {
    "year": "year", "sex": "sex", "age_group": "age_group", "age_label": "age_label", "population": "population",
    "code": "province_code", "name_ko": "province_name_ko", "name_en": "province_name_en",
}
_BY_SEX = ("by_sex", "sex")  # objects keyed by M / F
_SKIP = {"denominator", "description", "last_etl", "standard_population", "inputs", "disclaimer"}
_TRANSPARENT = {"values", "groups", "measurements"}  # containers inside an item that add nothing
_SLICES = {"breakdown", "bands", "provinces", "age", "series", "years"}  # lists of slices: their rows carry the slice
_COLUMNS_OF_CELL = ("label", "unit", "reason", "note", "source", "suppressed")


def _text(value: object) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _is_cell(node: dict) -> bool:
    return all(not isinstance(v, dict | list) for v in node.values())


def _place(path: list[str]) -> tuple[str, str, str]:
    parts = [p for i, p in enumerate(path) if not (p in _TRANSPARENT and i > 0)]
    return (parts[0] if parts else "", parts[1] if len(parts) > 1 else "", ".".join(parts[2:]))


def _dims(node: dict, dims: dict) -> dict:
    out = dict(dims)
    for key, column in _DIMENSIONS.items():
        if key in node and not isinstance(node[key], dict | list):
            out[column] = node[key]
    if "label" in node and "age_group" in node and isinstance(node["label"], str):
        out["age_label"] = node["label"]
    return out


def _emit(rows: list, dims: dict, path: list[str], cell: dict) -> None:
    section, item, level = _place(path)
    value_label = cell["label"] if isinstance(cell.get("label"), str) and "age_group" not in cell else ""
    unit = _text(cell.get("unit"))
    note = _text(cell.get("reason") or cell.get("note") or cell.get("source"))
    withheld = bool(cell.get("suppressed"))
    head = [_text(dims.get(c)) for c in COLUMNS[:8]] + [section, item, level, value_label]
    emitted = False
    for key, value in cell.items():
        if key in _COLUMNS_OF_CELL or key in _DIMENSIONS or key in _SKIP or isinstance(value, dict | list):
            continue
        rows.append(head + [key, _text(value), unit, "true" if withheld and value is None else "", note])
        emitted = True
    if not emitted and (note or withheld):
        rows.append(head + ["", "", unit, "true" if withheld else "", note])


def _walk(node: object, dims: dict, path: list[str], rows: list) -> None:
    if isinstance(node, list):
        for item in node:
            if isinstance(item, dict):
                _walk(item, dims, path, rows)
        return
    if not isinstance(node, dict):
        return
    dims = _dims(node, dims)
    if _is_cell(node):
        _emit(rows, dims, path, node)
        return
    scalars = {k: v for k, v in node.items() if not isinstance(v, dict | list)}
    if any(k not in _DIMENSIONS and k not in _SKIP and k not in _COLUMNS_OF_CELL for k in scalars):
        _emit(rows, dims, path, scalars)
    for key, value in node.items():
        if key in _SKIP or not isinstance(value, dict | list):
            continue
        if key in _BY_SEX and isinstance(value, dict) and set(value) <= {"M", "F", "all"}:
            for sex, sub in value.items():
                sub_dims = {**dims, "sex": sex}
                if isinstance(sub, dict) and _is_cell(sub):
                    _emit(rows, sub_dims, path + ["people"], sub)
                else:
                    _walk(sub, sub_dims, path, rows)
            continue
        _walk(value, dims, path if key in _SLICES and isinstance(value, list) else path + [key], rows)


def payload_to_csv(raw: bytes) -> bytes:
    """The CSV of one stored payload (JSON bytes as the refresh wrote them)."""
    body = orjson.loads(raw)
    rows: list[list[str]] = []
    _walk(body.get("data"), {}, [], rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return (BOM + out.getvalue()).encode("utf-8")


def meta_headers(raw: bytes) -> dict[str, str]:
    """The payload's meta as response headers (ASCII values only; notes stay in the JSON)."""
    meta = orjson.loads(raw).get("meta") or {}
    names = {"computed_at": "X-Stats-Computed-At", "dataset_version": "X-Stats-Dataset-Version",
             "rule_version": "X-Stats-Rule-Version", "stale": "X-Stats-Stale",
             "small_cell_min": "X-Stats-Small-Cell-Min", "standard_population": "X-Stats-Standard-Population"}
    out = {}
    for key, header in names.items():
        if key in meta and meta[key] is not None:
            text = _text(meta[key])
            if text.isascii():
                out[header] = text
    return out
