"""Every statistics payload, built from merged aggregates and small-cell suppressed.

Why here and not in the API: payloads are served warm as ready-to-send bytes, so all the work
(denominators, percentiles, suppression) happens once per refresh, on the small aggregate tables
of :mod:`shared.stats.aggregate` (never on people). See docs/STATISTICS.md for the shapes.

Keys: ``"{endpoint}:{year}:{sex}:{age_group}"`` (:func:`payload_key`), sex ``all|M|F`` and
age_group ``all`` or a band code present in that year; ``overview`` exists for ``all:all`` only and
``age`` for age_group ``all`` only; ``"years"`` lists the loaded years.

Denominators: every prevalence uses its own: a flag's percent is n_positive / n_measured (people
whose flag is known), a category value's percent is n / n_measured (people with that category),
risk groups and measurement coverage are over the people of the slice. Percentiles are
nearest-rank (numpy ``method="inverted_cdf"``: the smallest binned value whose cumulative count
reaches ``q * n``) on values rounded (half to even) to the measurement's resolution.

Small-cell suppression (k = ``small_cell_min``, default 11, CMS rule):

* Cells. Statistics are organised as *families* of counts, each a cube over sex x age band x
  province (only where published by province) x value, where every axis has an "all" member equal
  to the sum of the others: the risk family (people = sum of the risk groups), one family per flag
  (n_measured = n_positive + n_negative; the negative count is never published but derivable, so
  it is protected like a published cell), one per category/coded column (n_measured = sum of its
  values), and one per measurement for the non-null count n. Every payload reads its numbers from
  these cubes, so the same cell has the same value and the same suppression in every payload
  (no cross-payload subtraction, e.g. ``M:all`` minus the published ``M:<band>`` payloads).
* Primary: a count in [1, k-1] is published as ``null``; 0 is shown.
* Complementary: each line of a cube along one axis (a total and its parts) is a *relation*. While
  any relation has exactly one suppressed member, or has a published total and suppressed parts
  summing to < k, the smallest published non-zero part of it is suppressed too (the total itself
  only when no part is left). This repeats over all axes until nothing changes, so no suppressed
  count equals a published total minus published parts, and a gap left by subtraction is never a
  small number by itself.
* Derived numbers: a percent, mean or rate is null when its numerator or denominator is
  suppressed; a percentile block whose n is in [1, k-1] is suppressed entirely, while a block whose
  n is only complementarily suppressed keeps its percentiles (they are not additive, so they reveal
  no count). Any object holding a withheld number carries ``"suppressed": true``.
* Not protected: counts of people *without* a measurement (people - n_measured) describe data
  completeness, not a characteristic of people, and are derivable by design from people and
  n_measured. The guarantee is against single-relation subtraction (the audit the tests run), not
  against solving all relations of a cube as a linear system.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd

from shared.data.catalog import AGE_GROUPS, DRINKING, PROVINCES, SMOKING
from shared.stats.aggregate import (
    BIN_OFFSETS,
    CATEGORIES,
    CODED,
    FLAGS,
    LO_BINS,
    MEASURE_NAMES,
    MEASURES,
    RISK_GROUPS,
    TOTAL_BINS,
    UNKNOWN_PROVINCE,
    Aggregates,
)
from shared.stats.store import STALE_FALSE

try:  # only for a friendly value order (normal -> stage2); the stats never depend on the rules
    from shared.rules import CATEGORY_LEVELS as _LEVEL_ORDER
except Exception:  # pragma: no cover - rules package broken or absent
    _LEVEL_ORDER = {}

ENDPOINTS: tuple[str, ...] = ("overview", "risk", "age", "factors", "region", "percentiles")
YEARS_KEY = "years"
DEFAULT_SMALL_CELL_MIN = 11
SEXES: tuple[str, ...] = ("all", "M", "F")
REGION_FLAGS: tuple[str, ...] = FLAGS[:7] + ("metabolic_syndrome",)
PERCENTILES: tuple[int, ...] = (5, 10, 25, 50, 75, 90, 95)
DISCLAIMER = (
    "Population statistics of the NHIS health-screening sample; not a diagnosis. "
    "Counts from 1 to {low} people are withheld (null, \"suppressed\": true), and so are cells "
    "from which they could be derived."
)
UNKNOWN_RISK = "UNKNOWN"  # people without a screening_risk_group value (published only if there are any)
_CODED_LABELS = {"smoking": SMOKING, "drinking": DRINKING}
_Q = np.asarray(PERCENTILES, dtype=np.float64) / 100  # as numpy.percentile divides


# --- keys --------------------------------------------------------------------------------------


def _sex_label(sex: object) -> str:
    text = "all" if sex is None else str(sex).strip().lower()
    for label, spellings in (("all", ("all", "")), ("M", ("m", "1", "male")), ("F", ("f", "2", "female"))):
        if text in spellings:
            return label
    raise ValueError(f"unknown sex {sex!r} (use all, M or F)")


def _age_label(age_group: object) -> str:
    if age_group is None or str(age_group).strip().lower() in ("all", ""):
        return "all"
    try:
        code = int(str(age_group).strip())
    except ValueError:
        raise ValueError(f"unknown age_group {age_group!r} (use all or 1..18)") from None
    if code not in AGE_GROUPS:
        raise ValueError(f"unknown age_group {age_group!r} (use all or 1..18)")
    return str(code)


def payload_key(endpoint: str, year: int | None = None, sex: object = None, age_group: object = None) -> str:
    """The stored key for a request; raises ValueError for a filter the endpoint does not offer.

    sex: None/"all", 1/"1"/"M"/"male", 2/"2"/"F"/"female"; age_group: None/"all" or 1..18.
    ``overview`` takes no filter; ``age`` takes sex only; ``years`` takes nothing.
    """
    if endpoint == YEARS_KEY:
        return YEARS_KEY
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}")
    if year is None:
        raise ValueError("year is required")
    s, a = _sex_label(sex), _age_label(age_group)
    if endpoint == "overview" and (s, a) != ("all", "all"):
        raise ValueError("overview has no sex/age_group filter")
    if endpoint == "age" and a != "all":
        raise ValueError("age has no age_group filter")
    return f"{endpoint}:{int(year)}:{s}:{a}"


# --- suppression -------------------------------------------------------------------------------


def _extend(base: np.ndarray, totals: tuple[bool, ...]) -> np.ndarray:
    """Add an "all" member at index 0 of every axis flagged in ``totals`` (sum of the others)."""
    shape = tuple(d + 1 if t else d for d, t in zip(base.shape, totals, strict=True))
    ext = np.zeros(shape, dtype=np.int64)
    ext[tuple(slice(1, None) if t else slice(None) for t in totals)] = base
    for axis, t in enumerate(totals):
        if t:
            index = [slice(None)] * ext.ndim
            index[axis] = 0
            rest = list(index)
            rest[axis] = slice(1, None)
            ext[tuple(index)] = ext[tuple(rest)].sum(axis=axis)
    return ext


def suppress(n: np.ndarray, k: int, totals: tuple[bool, ...]) -> np.ndarray:
    """Suppression mask of a cube whose axes flagged in ``totals`` hold their sum at index 0.

    Primary: 1 <= n < k. Complementary (see the module docstring): repeat over every relation
    (a line along one axis) until none has exactly one suppressed member, nor a published total
    whose suppressed parts sum to < k.
    """
    sup = (n >= 1) & (n < k)
    changed = True
    while changed:
        changed = False
        for axis, has_total in enumerate(totals):
            if not has_total or n.shape[axis] < 2:
                continue
            x = np.moveaxis(n, axis, -1).reshape(-1, n.shape[axis])
            s = np.moveaxis(sup, axis, -1).reshape(-1, n.shape[axis]).copy()
            while True:
                count = s.sum(axis=1)
                part_sum = (x[:, 1:] * s[:, 1:]).sum(axis=1)
                need = (count == 1) | (~s[:, 0] & (count >= 1) & (part_sum < k))
                if not need.any():
                    break
                rows = np.flatnonzero(need)
                cand = np.where(~s[rows, 1:] & (x[rows, 1:] > 0), x[rows, 1:], np.iinfo(np.int64).max)
                pick = cand.argmin(axis=1)
                has = cand[np.arange(len(rows)), pick] != np.iinfo(np.int64).max
                s[rows[has], pick[has] + 1] = True
                fallback = rows[~has & ~s[rows, 0]]
                s[fallback, 0] = True
                if not has.any() and not len(fallback):
                    break  # nothing left to suppress in these relations
                changed = True
            if changed:
                moved = np.moveaxis(sup, axis, -1).shape
                sup = np.moveaxis(s.reshape(moved), -1, axis)
    return sup


@dataclass
class _Family:
    """One suppressed cube, as nested lists [sex][age][province][value] for fast lookups."""

    values: list[str]  # index 0 is the total ("*") when the value axis has one
    n: list
    sup: list

    def cell(self, s: int, a: int, p: int, v: int) -> tuple[int, bool]:
        return self.n[s][a][p][v], self.sup[s][a][p][v]


def _family(base: np.ndarray, values: list[str], k: int, by_province: bool, value_total: bool) -> _Family:
    totals = (True, True, by_province, value_total)
    ext = _extend(base, totals)
    sup = suppress(ext, k, totals)
    return _Family(values=(["*"] if value_total else []) + values, n=ext.tolist(), sup=sup.tolist())


# --- cells -------------------------------------------------------------------------------------


def _pct(num: int, num_sup: bool, den: int, den_sup: bool) -> float | None:
    if num_sup or den_sup or den <= 0:
        return None
    return round(100.0 * num / den, 2)


def _count(n: int, sup: bool) -> dict:
    return {"n": None, "suppressed": True} if sup else {"n": n}


def _share(n: int, sup: bool, den: int, den_sup: bool) -> dict:
    out = {"n": None if sup else n, "percent": _pct(n, sup, den, den_sup)}
    if sup or den_sup:
        out["suppressed"] = True
    return out


def _age_info(code: int) -> dict:
    lo, hi, label = AGE_GROUPS[code]
    return {"age_group": code, "label": label, "age_min": lo, "age_max": hi}


def _value_order(column: str, present: list[str]) -> list[str]:
    levels = list(_LEVEL_ORDER.get(column, ()))
    if column in _CODED_LABELS:
        levels = [str(c) for c in _CODED_LABELS[column]]
    return [v for v in levels if v in present] + sorted(v for v in present if v not in levels)


# --- one year ----------------------------------------------------------------------------------


class _Year:
    """All suppressed cubes and percentiles of one year; payload builders read from them."""

    def __init__(self, agg: Aggregates, year: int, k: int) -> None:
        self.year, self.k = year, k
        counts = agg.counts.xs(year, level="year")
        counts = counts[counts["people"] > 0]
        self.bands = sorted(int(a) for a in counts.index.get_level_values("age_group").unique())
        present = {int(p) for p in counts.index.get_level_values("province").unique()}
        # known codes in order, the unknown province (NaN in the file) last
        self.provinces = sorted(present - {UNKNOWN_PROVINCE}) + [UNKNOWN_PROVINCE] * (UNKNOWN_PROVINCE in present)
        full = pd.MultiIndex.from_product([[1, 2], self.bands, self.provinces], names=counts.index.names)
        counts = counts.reindex(full, fill_value=0)
        shape = (2, len(self.bands), len(self.provinces))
        columns = set(counts.columns)

        def col(name: str) -> np.ndarray:
            if name not in columns:
                return np.zeros(shape, np.int64)
            return counts[name].to_numpy(dtype=np.int64).reshape(shape)

        people = col("people")
        rf = _extend(col("rf_sum").sum(axis=2), (True, True))
        self.rf_sum = rf.tolist()

        # risk family: people = sum of the groups (+ people without a group)
        extra = sorted(c.split("=", 1)[1] for c in columns if c.startswith("screening_risk_group="))
        groups = list(RISK_GROUPS) + [g for g in extra if g not in RISK_GROUPS]
        parts = [col(f"screening_risk_group={g}") for g in groups]
        missing = people - sum(parts)
        if missing.any():
            groups.append(UNKNOWN_RISK)
            parts.append(missing)
        self.groups = groups
        self.risk = _family(np.stack(parts, axis=-1), groups, k, by_province=True, value_total=True)

        # flag families: n_measured = positive + negative
        self.flags: dict[str, _Family] = {}
        for flag in FLAGS:
            measured, positive = col(f"{flag}:measured"), col(f"{flag}:positive")
            base = np.stack([positive, measured - positive], axis=-1)
            by_province = flag in REGION_FLAGS
            if not by_province:
                base = base.sum(axis=2, keepdims=True)
            self.flags[flag] = _family(base, ["positive", "negative"], k, by_province, True)

        # category / coded families: n_measured = sum of the values
        self.categories: dict[str, _Family] = {}
        for column in (*CATEGORIES, *CODED):
            prefix = f"{column}="
            values = _value_order(column, [c[len(prefix) :] for c in columns if c.startswith(prefix)])
            if values:
                base = np.stack([col(prefix + v) for v in values], axis=-1).sum(axis=2, keepdims=True)
            else:
                base = np.zeros((2, len(self.bands), 1, 0), np.int64)
            self.categories[column] = _family(base, values, k, False, True)

        self._percentiles(agg.hist[agg.hist["year"] == year])

    def _percentiles(self, hist: pd.DataFrame) -> None:
        """Per (sex, band) incl. "all": n per measure and nearest-rank percentiles, vectorised."""
        a_count = len(self.bands) + 1
        band_index = np.zeros(32, np.int64)
        band_index[self.bands] = np.arange(1, a_count)
        measure = hist["measure"].cat.codes.to_numpy().astype(np.int64)
        slot = BIN_OFFSETS[measure] + hist["bin"].to_numpy() - LO_BINS[measure]
        sex = hist["sex"].to_numpy().astype(np.int64)
        ok = (sex >= 1) & (sex <= 2)
        row = sex[ok] * a_count + band_index[hist["age_group"].to_numpy()[ok]]
        dense = np.bincount(
            row * TOTAL_BINS + slot[ok], weights=hist["n"].to_numpy()[ok].astype(np.float64),
            minlength=3 * a_count * TOTAL_BINS,
        ).astype(np.int64).reshape(3, a_count, TOTAL_BINS)
        dense[0] = dense[1:].sum(axis=0)
        dense[:, 0] = dense[:, 1:].sum(axis=1)
        dense = dense.reshape(3 * a_count, TOTAL_BINS)
        n = np.add.reduceat(dense, BIN_OFFSETS, axis=1)  # (rows, measures)
        self.measure_n = _family(n.reshape(3, a_count, 1, len(MEASURES))[1:, 1:], list(MEASURE_NAMES),
                                 self.k, False, False)
        # rank exactly as numpy's inverted_cdf: index = (n*q - 1) rounded up unless integral
        virtual = n[..., None] * _Q - 1
        prev = np.floor(virtual)
        index = np.where(virtual - prev == 0, prev, prev + 1).astype(np.int64).clip(min=0)
        cum = np.cumsum(dense, axis=1)
        before = np.cumsum(n, axis=1) - n
        big = np.int64(1) << 40
        rows = np.arange(dense.shape[0], dtype=np.int64)
        flat = (cum + rows[:, None] * big).ravel()
        target = before[..., None] + index + 1 + rows[:, None, None] * big
        slot = np.searchsorted(flat, target.ravel(), side="left").reshape(target.shape)
        slot -= (rows * TOTAL_BINS)[:, None, None]
        m = np.arange(len(MEASURES))[None, :, None]
        bins = slot - BIN_OFFSETS[m] + LO_BINS[m]
        scale = np.array([spec.scale for spec in MEASURES.values()])[None, :, None]
        ints, floats, empty = bins.tolist(), (bins / scale).tolist(), (n == 0).tolist()
        is_int = [spec.scale == 1 for spec in MEASURES.values()]
        none = [None] * len(PERCENTILES)
        by_row = [
            [none if empty[r][j] else (ints[r][j] if is_int[j] else floats[r][j]) for j in range(len(MEASURES))]
            for r in range(len(rows))
        ]
        self.pct = [by_row[s * a_count : (s + 1) * a_count] for s in range(3)]  # [sex][age][measure][q]

    # indices: sex 0=all 1=M 2=F; age 0=all, i+1 = self.bands[i]; province 0=all
    def age_index(self, label: str) -> int:
        return 0 if label == "all" else self.bands.index(int(label)) + 1

    def people(self, s: int, a: int, p: int = 0) -> tuple[int, bool]:
        return self.risk.cell(s, a, p, 0)

    def risk_groups(self, s: int, a: int, p: int = 0) -> dict:
        den, den_sup = self.people(s, a, p)
        return {g: _share(*self.risk.cell(s, a, p, i + 1), den, den_sup) for i, g in enumerate(self.groups)}

    def flag(self, name: str, s: int, a: int, p: int = 0) -> dict:
        fam = self.flags[name]
        measured, m_sup = fam.cell(s, a, p, 0)
        positive, p_sup = fam.cell(s, a, p, 1)
        out = {
            "n_measured": None if m_sup else measured,
            "n_positive": None if p_sup else positive,
            "percent": _pct(positive, p_sup, measured, m_sup),
        }
        if m_sup or p_sup:
            out["suppressed"] = True
        return out

    def category(self, name: str, s: int, a: int) -> dict:
        fam = self.categories[name]
        measured, m_sup = fam.cell(s, a, 0, 0)
        labels = _CODED_LABELS.get(name)
        values = {}
        for i, v in enumerate(fam.values[1:], start=1):
            cell = _share(*fam.cell(s, a, 0, i), measured, m_sup)
            if labels is not None and v.isdigit() and int(v) in labels:
                cell = {"label": labels[int(v)], **cell}
            values[v] = cell
        out: dict = {"n_measured": None if m_sup else measured}
        if m_sup:
            out["suppressed"] = True
        out["values"] = values
        return out

    def percentile_block(self, s: int, a: int) -> dict:
        blocks = {}
        for j, name in enumerate(MEASURE_NAMES):
            n, sup = self.measure_n.cell(s, a, 0, j)
            if sup and n < self.k:
                block = {"n": None, **{f"p{q}": None for q in PERCENTILES}, "suppressed": True}
            else:
                block = {"n": None if sup else n, **dict(zip((f"p{q}" for q in PERCENTILES),
                                                             self.pct[s][a][j], strict=True))}
                if sup:
                    block["suppressed"] = True
            spec = MEASURES[name]
            block["unit"] = spec.unit
            block["resolution"] = 1 if spec.scale == 1 else 1 / spec.scale
            blocks[name] = block
        return blocks

    def mean_rf(self, s: int, a: int) -> float | None:
        n, sup = self.people(s, a)
        if sup or n <= 0:
            return None
        return round(self.rf_sum[s][a] / n, 3)


# --- payloads ----------------------------------------------------------------------------------


def _slice_head(y: _Year, s: int, a: int) -> dict:
    head: dict = {"year": y.year, "sex": SEXES[s]}
    if a == 0:
        head["age_group"] = "all"
        head["age_label"] = "all"
    else:
        code = y.bands[a - 1]
        head["age_group"] = code
        head["age_label"] = AGE_GROUPS[code][2]
    return head


def _breakdown(y: _Year, s: int, a: int) -> list[tuple[int, int]]:
    """Sub-slices a payload breaks down into: sex x band when both are "all", else the free one."""
    sexes = [1, 2] if s == 0 else [s]
    bands = range(1, len(y.bands) + 1) if a == 0 else [a]
    if s != 0 and a != 0:
        return []
    return [(ss, aa) for ss in sexes for aa in bands]


def _sub_head(y: _Year, s: int, a: int) -> dict:
    return {"sex": SEXES[s], **_age_info(y.bands[a - 1])}


def _overview(y: _Year, years: list[int], meta: Mapping) -> dict:
    people, p_sup = y.people(0, 0)
    measurements = {}
    for j, name in enumerate(MEASURE_NAMES):
        measurements[name] = _share(*y.measure_n.cell(0, 0, 0, j), people, p_sup)
    return {
        "year": y.year,
        "people": _count(people, p_sup),
        "years_loaded": years,
        "last_etl": meta.get("last_etl"),
        "measurements": measurements,
        "sex": {SEXES[s]: _share(*y.people(s, 0), people, p_sup) for s in (1, 2)},
        "age": [
            {**_age_info(code), **_share(*y.people(0, a), people, p_sup)}
            for a, code in enumerate(y.bands, start=1)
        ],
    }


def _risk(y: _Year, s: int, a: int) -> dict:
    data = {**_slice_head(y, s, a), "people": _count(*y.people(s, a)), "groups": y.risk_groups(s, a)}
    if s == 0:
        data["by_sex"] = {
            SEXES[ss]: {"people": _count(*y.people(ss, a)), "groups": y.risk_groups(ss, a)} for ss in (1, 2)
        }
    return data


def _age_row(y: _Year, s: int, a: int) -> dict:
    return {"people": _count(*y.people(s, a)), "mean_risk_factor_count": y.mean_rf(s, a),
            "groups": y.risk_groups(s, a)}


def _age(y: _Year, s: int) -> dict:
    bands = []
    for a, code in enumerate(y.bands, start=1):
        row = {**_age_info(code), **_age_row(y, s, a)}
        if s == 0:
            row["by_sex"] = {SEXES[ss]: _age_row(y, ss, a) for ss in (1, 2)}
        bands.append(row)
    return {"year": y.year, "sex": SEXES[s], "overall": _age_row(y, s, 0), "bands": bands}


def _factor_block(y: _Year, s: int, a: int) -> dict:
    return {
        "people": _count(*y.people(s, a)),
        "flags": {f: y.flag(f, s, a) for f in FLAGS},
        "categories": {c: y.category(c, s, a) for c in (*CATEGORIES, *CODED)},
    }


def _factors(y: _Year, s: int, a: int) -> dict:
    data = {**_slice_head(y, s, a), **_factor_block(y, s, a)}
    data["breakdown"] = [{**_sub_head(y, ss, aa), **_factor_block(y, ss, aa)} for ss, aa in _breakdown(y, s, a)]
    return data


def _region(y: _Year, s: int, a: int) -> dict:
    provinces = []
    for p, code in enumerate(y.provinces, start=1):
        if code == UNKNOWN_PROVINCE:
            head = {"code": None, "name_ko": None, "name_en": "unknown"}
        else:
            ko, en = PROVINCES.get(code, (None, f"code {code}"))
            head = {"code": code, "name_ko": ko, "name_en": en}
        provinces.append({
            **head,
            "people": _count(*y.people(s, a, p)),
            "groups": y.risk_groups(s, a, p),
            "flags": {f: y.flag(f, s, a, p) for f in REGION_FLAGS},
        })
    return {**_slice_head(y, s, a), "people": _count(*y.people(s, a)), "provinces": provinces}


def _percentiles(y: _Year, s: int, a: int) -> dict:
    data = {**_slice_head(y, s, a), "method": "inverted_cdf", "measurements": y.percentile_block(s, a)}
    data["breakdown"] = [
        {**_sub_head(y, ss, aa), "measurements": y.percentile_block(ss, aa)} for ss, aa in _breakdown(y, s, a)
    ]
    return data


def _dump(data: object, meta: dict) -> bytes:
    raw = orjson.dumps({"data": data, "meta": meta})
    if raw.count(STALE_FALSE) != 1:
        raise ValueError('"stale":false must appear exactly once per payload (check the meta passed in)')
    return raw


def build_payloads(
    aggregates: Aggregates, meta: dict, small_cell_min: int = DEFAULT_SMALL_CELL_MIN
) -> dict[str, bytes]:
    """Every payload of every year in ``aggregates`` as orjson bytes, keyed by :func:`payload_key`.

    ``meta`` (computed_at, dataset_version, rule_version, last_etl, ...) opens each payload's meta
    in the order given; "stale": false, small_cell_min, year and a disclaimer follow.
    """
    k = int(small_cell_min)
    if k < 1:
        raise ValueError("small_cell_min must be >= 1")
    reserved = ("stale", "small_cell_min", "year", "disclaimer")
    base_meta = {key: v for key, v in meta.items() if key not in reserved}
    disclaimer = meta.get("disclaimer") or DISCLAIMER.format(low=k - 1)
    years = aggregates.years
    out: dict[str, bytes] = {}
    totals = []
    for year in years:
        y = _Year(aggregates, year, k)
        m = {**base_meta, "stale": False, "small_cell_min": k, "year": year, "disclaimer": disclaimer}
        totals.append(y.people(0, 0))
        out[payload_key("overview", year)] = _dump(_overview(y, years, meta), m)
        ages = ["all", *(str(b) for b in y.bands)]
        for s, sex in enumerate(SEXES):
            out[payload_key("age", year, sex)] = _dump(_age(y, s), m)
            for age in ages:
                a = y.age_index(age)
                out[payload_key("risk", year, sex, age)] = _dump(_risk(y, s, a), m)
                out[payload_key("factors", year, sex, age)] = _dump(_factors(y, s, a), m)
                out[payload_key("region", year, sex, age)] = _dump(_region(y, s, a), m)
                out[payload_key("percentiles", year, sex, age)] = _dump(_percentiles(y, s, a), m)
    latest = years[-1] if years else None
    listing = [
        {"year": year, "people": _count(n, sup), "latest": year == latest}
        for year, (n, sup) in zip(years, totals, strict=True)
    ]
    m = {**base_meta, "stale": False, "small_cell_min": k, "year": latest, "disclaimer": disclaimer}
    out[YEARS_KEY] = _dump({"years": listing, "latest": latest}, m)
    return out
