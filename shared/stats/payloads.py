"""Every statistics payload of a generation, built from merged aggregates (workers only: pandas).

Why here and not in the API: payloads are served warm as ready-to-send bytes, so all the work
(denominators, percentiles, standardised rates, suppression) happens once per refresh on the small
aggregate tables of :mod:`shared.stats.aggregate`, never on people. docs/STATISTICS.md has the
shapes; :mod:`shared.stats.keys` the names; :mod:`shared.stats.suppression` the protection.

Two denominators, always labelled. A share that depends on measurements not taken for everyone is
published over *all people* of the slice (unknowns counted and shown, ``population=all``) and over
the rule's *complete panel* (people with every input of that rule measured, with its own ``n`` and
the count of the rest, ``population=complete_panel``). Metabolic syndrome is published over its
complete panel only. The mean risk-factor count over all people is a lower bound (an unmeasured
factor counts 0); over the complete panel it is exact.

Every count a payload shows (or a reader can derive from shown numbers) is a cell of one family cube
(see :mod:`shared.stats.suppression`). A number computed from counts (percent, rate, interval) is
shown only where it prints the same for every value of its withheld inputs within +-k people (a
percent of two shown counts always; a rate over large withheld denominators usually; never one
whose small numerator is withheld), so it reveals nothing the counts do not. Means are shown only
with their count. Percentiles are shown for groups whose count is shown and at least
``percentile_min_n`` (default 100, at least 21), so never the minimum or maximum.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import orjson
import pandas as pd

from shared.data.catalog import AGE_GROUPS, DRINKING, PROVINCES, SMOKING
from shared.rules import CATEGORY_LEVELS
from shared.rules import table as rule_table
from shared.stats import keys, rates
from shared.stats.aggregate import (
    BIN_OFFSETS,
    CATEGORIES,
    CODED,
    FLAGS,
    LO_BINS,
    MEASURE_NAMES,
    MEASURES,
    PANEL_SUFFIX,
    RISK_GROUP_COLUMN,
    RISK_GROUPINGS,
    TOTAL_BINS,
    UNKNOWN_PROVINCE,
    Aggregates,
    rule_inputs,
)
from shared.stats.store import STALE_FALSE
from shared.stats.suppression import Family, protect, with_totals

if TYPE_CHECKING:
    from shared.stats.mask_memo import MaskMemo

DEFAULT_SMALL_CELL_MIN = 11
DEFAULT_PERCENTILE_MIN_N = 100
SEXES = keys.SEXES
PERCENTILES = keys.PERCENTILES
UNKNOWN_GROUP = "UNKNOWN"  # people without a risk grouping value (shown only if there are any)
FLAG_VALUES = ("positive", "negative")
PANEL_ONLY: tuple[str, ...] = (rule_table.METS_RULE.column,)  # published over the complete panel only
_SCREENING = rule_table.SCREENING_GROUP_RULE
REGION_FLAGS: tuple[str, ...] = tuple(
    f for f in (_SCREENING.diabetes, *_SCREENING.factors, rule_table.METS_RULE.column, "dyslipidaemia") if f in FLAGS)
LABELS: dict[str, str] = {
    **{r.column: r.label for r in rule_table.ALL_FLAG_RULES},
    rule_table.ISOLATED_SYSTOLIC_RULE.column: rule_table.ISOLATED_SYSTOLIC_RULE.label,
    rule_table.METS_RULE.column: rule_table.METS_RULE.label,
}
GROUPING_DESCRIPTIONS = {
    RISK_GROUP_COLUMN: "screening-flag count, adapted from NCEP ATP III categories (not the ATP III risk "
                       "assessment: it counts screening flags and leaves out age)",
    rule_table.ATP3_RULE.column: "NCEP ATP III risk category (major risk factors including age, HDL >= 60 "
                                 "subtracts one, diabetes a CHD risk equivalent; family history is not in the data)",
}
DENOMINATORS = {
    "all": "all people of the slice; people whose value cannot be decided are counted as unknown "
           "(INDETERMINATE for risk groups)",
    "complete_panel": "people with every input of the rule measured (its own n per rule); "
                      "not_in_panel counts the rest",
}
NOT_AVAILABLE = "no complete-panel counts for this year (loaded before they were kept): reload the year"
PERCENTILE_MIN_REASON = "fewer than {n} people with this measurement (or their count is withheld)"
DISCLAIMER = (
    "Population statistics of the NHIS health-screening sample; not a diagnosis. "
    "Counts from 1 to {low} people are withheld (null, \"suppressed\": true), and so are cells "
    "from which they could be derived."
)
# Screening-schedule changes that move coverage between years (shown in trends).
SCHEDULE_CHANGES: tuple[dict, ...] = (
    {
        "from_year": 2018,
        "inputs": ("total_cholesterol", "triglycerides", "hdl", "ldl"),
        "note": "From 2018 the general health screening measures the lipid panel every 4 years instead of "
                "every 2 (men from 24, women from 40), so far fewer people per year have lipid values; "
                "compare complete-panel rates, not counts, across 2018.",
        "source": "Lee JH, Lee KJ. Consideration of dyslipidemia examination cycle change in Korea National "
                  "Health Checkup Program. 2021. https://www.koreascience.or.kr/article/JAKO202129436590235.page",
    },
)
HEADLINE = 10.0  # cost weight of a flag's positives and complete-panel n (see _rule_family)
COVERAGE_JUMP = 10.0  # percentage points of people in the complete panel between loaded years
STANDARD_MIN_COVERAGE = 0.10  # a band enters a factor's standard range if >= 10% are in its panel
_CODED_LABELS = {"smoking": SMOKING, "drinking": DRINKING}
_Q = np.asarray(PERCENTILES, dtype=np.float64) / 100  # as numpy.percentile divides


# --- cells -------------------------------------------------------------------------------------


def _pct(num: int, num_sup: bool, den: int, den_sup: bool, k: int) -> float | None:
    """100 * num / den to 2 decimals; with a withheld count only if it prints the same for every
    value of the withheld counts within +-k (so it reveals nothing about them)."""
    if den <= 0:
        return None
    if num_sup or den_sup:
        n_lo, n_hi = (max(0, num - k), num + k) if num_sup else (num, num)
        d_lo, d_hi = (max(1, den - k), den + k) if den_sup else (den, den)
        if round(100.0 * n_lo / d_hi, 2) != round(100.0 * min(1.0, n_hi / max(d_lo, n_lo, 1)), 2):
            return None  # both ends are monotone: equal rounding at the corners holds in between
    return round(100.0 * num / den, 2)


def _count(n: int, sup: bool) -> dict:
    return {"n": None, "suppressed": True} if sup else {"n": n}


def _share(n: int, sup: bool, den: int, den_sup: bool, k: int) -> dict:
    out = {"n": None if sup else n, "percent": _pct(n, sup, den, den_sup, k)}
    if sup or den_sup:
        out["suppressed"] = True
    return out


def _age_info(code: int) -> dict:
    lo, hi, label = AGE_GROUPS[code]
    return {"age_group": code, "label": label, "age_min": lo, "age_max": hi}


def _value_label(column: str, value: str) -> str | None:
    labels = _CODED_LABELS.get(column)
    if labels is not None and value.isdigit():
        return labels.get(int(value))
    return None


def _value_order(column: str, present: list[str]) -> list[str]:
    levels = list(CATEGORY_LEVELS.get(column, ()))
    if column in _CODED_LABELS:
        levels = [str(c) for c in _CODED_LABELS[column]]
    return [v for v in levels if v in present] + sorted(v for v in present if v not in levels)


# --- one rule's cube ---------------------------------------------------------------------------


@dataclass
class _Rule:
    """A rule's family cube and how to read it.

    layout ``both``: axes (sex, age, province, panel [all, yes, no], value [all, *values, unknown]);
    ``all_only`` (no panel counts for this year): (sex, age, province, value [all, *values, unknown]).
    Rules in :data:`PANEL_ONLY` use the ``both`` cube too (so the panel's n is a protected cell) but
    print only its complete-panel numbers.
    """

    column: str
    kind: str  # flag | category | grouping
    values: list[str]
    layout: str
    x: list
    sup: list
    k: int
    show_unknown: bool = True

    @property
    def unknown(self) -> int:
        return len(self.values) + 1

    @property
    def panel_only(self) -> bool:
        return self.column in PANEL_ONLY and self.layout == "both"

    def all_value(self, s: int, a: int, p: int, j: int) -> tuple[int, bool]:
        if self.layout == "both":
            return self.x[s][a][p][0][j], self.sup[s][a][p][0][j]
        return self.x[s][a][p][j], self.sup[s][a][p][j]

    def panel_value(self, s: int, a: int, p: int, j: int) -> tuple[int, bool]:
        return self.x[s][a][p][1][j], self.sup[s][a][p][1][j]

    def rest(self, s: int, a: int, p: int) -> tuple[int, bool]:
        return self.x[s][a][p][2][0], self.sup[s][a][p][2][0]

    def panel_n(self, s: int, a: int, p: int) -> tuple[int, bool]:
        return self.x[s][a][p][1][0], self.sup[s][a][p][1][0]


def _rule_family(column: str, kind: str, values: list[str], all_counts: np.ndarray, panel: np.ndarray | None,
                 panel_counts: np.ndarray | None, people: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """(layout, cube with totals, cost weights). ``all_counts``/``panel_counts``: (2, A, R, V).

    Weights: 0 for cells never printed, 1 for printed ones, ``HEADLINE`` for a flag's positives and
    its complete panel's n (so the pass withholds negatives and unknowns as complements first)."""
    unknown = people - all_counts.sum(axis=-1)
    if panel is None:
        base = np.concatenate([all_counts, unknown[..., None]], axis=-1)
        x = with_totals(base)
        weight = np.ones(x.shape)
        if kind == "flag":
            weight[..., 1] = HEADLINE
        return "all_only", x, weight
    in_unknown = panel - panel_counts.sum(axis=-1)
    yes = np.concatenate([panel_counts, in_unknown[..., None]], axis=-1)
    everyone = np.concatenate([all_counts, unknown[..., None]], axis=-1)
    base = np.stack([yes, everyone - yes], axis=-2)  # (2, A, R, 2, V + 1)
    if (base < 0).any():
        raise ValueError(f"{column}: complete-panel counts exceed all-people counts")
    x = with_totals(base)
    weight = np.ones(x.shape)
    if kind == "flag":
        weight[..., 0, 1] = weight[..., 1, 1] = weight[..., 1, 0] = HEADLINE
    weight[..., 2, 1:] = 0  # outside the panel by value: derivable, never printed
    if column in PANEL_ONLY:
        weight[..., 0, 1:] = 0  # the all-people view is not printed
    return "both", x, weight


# --- one year ----------------------------------------------------------------------------------


class YearCubes:
    """Every cube of one year, suppressed together (``families``, ``people_x``/``people_sup``); the
    payload builders read from them, and the disclosure tests attack them.

    Indices: sex 0 = all, 1 = M, 2 = F; age 0 = all, i + 1 = ``bands[i]``; province 0 = all,
    i + 1 = ``provinces[i]``.
    """

    def __init__(self, agg: Aggregates, year: int, k: int, percentile_min_n: int, memo: MaskMemo | None = None) -> None:
        self.year, self.k, self.percentile_min_n = year, k, percentile_min_n
        counts = agg.counts.xs(year, level="year")
        counts = counts[counts["people"] > 0]
        self.bands = sorted(int(a) for a in counts.index.get_level_values("age_group").unique())
        present = {int(p) for p in counts.index.get_level_values("province").unique()}
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
        self.people_x = with_totals(people)
        self.panel_available = bool(people.sum()) and int(col("panel_counted").sum()) == int(people.sum())
        self.rf = with_totals(col("rf_sum").sum(axis=2)).tolist()
        self.rf_panel = with_totals(col("rf_sum" + PANEL_SUFFIX).sum(axis=2)).tolist()

        families: list[Family] = []
        specs: list[tuple[str, str, list[str], str, bool]] = []

        def add(column: str, kind: str, values: list[str], all_counts, panel, panel_counts, by_province: bool,
                show_unknown: bool = True) -> None:
            if not by_province:
                all_counts = all_counts.sum(axis=2, keepdims=True)
                panel = None if panel is None else panel.sum(axis=2, keepdims=True)
                panel_counts = None if panel_counts is None else panel_counts.sum(axis=2, keepdims=True)
                base_people = people.sum(axis=2, keepdims=True)
            else:
                base_people = people
            layout, x, published = _rule_family(column, kind, values, all_counts, panel, panel_counts, base_people)
            if not by_province:
                x = x[:, :, :1]
                published = published[:, :, :1]
            families.append(Family(column, x, published))
            specs.append((column, kind, values, layout, show_unknown))

        has_panel = lambda c: self.panel_available and bool(rule_inputs(c)) and c + PANEL_SUFFIX in columns  # noqa: E731
        for flag in FLAGS:
            measured, positive = col(f"{flag}:measured"), col(f"{flag}:positive")
            all_counts = np.stack([positive, measured - positive], axis=-1)
            panel = panel_counts = None
            if has_panel(flag):
                panel = col(flag + PANEL_SUFFIX)
                p_measured, p_positive = col(f"{flag}{PANEL_SUFFIX}:measured"), col(f"{flag}{PANEL_SUFFIX}:positive")
                panel_counts = np.stack([p_positive, p_measured - p_positive], axis=-1)
            add(flag, "flag", list(FLAG_VALUES), all_counts, panel, panel_counts, by_province=True)
        for column in (*RISK_GROUPINGS, *CATEGORIES, *CODED):
            prefix = f"{column}="
            values = _value_order(column, [c[len(prefix):] for c in columns if c.startswith(prefix)])
            if column in RISK_GROUPINGS:
                values = [v for v in CATEGORY_LEVELS[column] if v not in values] + values
                values = _value_order(column, values)
            all_counts = np.stack([col(prefix + v) for v in values], axis=-1) if values else np.zeros(shape + (0,), np.int64)
            panel = panel_counts = None
            if has_panel(column):
                panel = col(column + PANEL_SUFFIX)
                panel_counts = (np.stack([col(f"{column}{PANEL_SUFFIX}={v}") for v in values], axis=-1)
                                if values else np.zeros(shape + (0,), np.int64))
            grouping = column in RISK_GROUPINGS
            show_unknown = not grouping or bool((people - all_counts.sum(axis=-1)).any())
            add(column, "grouping" if grouping else "category", values, all_counts, panel, panel_counts,
                by_province=grouping, show_unknown=show_unknown)

        self._measure_counts(agg.hist[agg.hist["year"] == year])  # percentile groups need these counts
        measured = self.measure_n[1:, 1:]  # (2, A, M)
        self.measure_families: list[Family] = []
        for j, name in enumerate(MEASURE_NAMES):
            base = np.stack([measured[..., j], people.sum(axis=2) - measured[..., j]], axis=-1)[:, :, None, :]
            x = with_totals(base)[:, :, :1]
            self.measure_families.append(Family("n:" + name, x))

        self.people_sup = protect(self.people_x, families + self.measure_families, k, memo)
        self.people_list, self.people_sup_list = self.people_x.tolist(), self.people_sup.tolist()
        self.rules: dict[str, _Rule] = {}
        for fam, (column, kind, values, layout, show_unknown) in zip(families, specs, strict=True):
            self.rules[column] = _Rule(column, kind, values, layout, fam.x.tolist(), fam.sup.tolist(), k, show_unknown)
        self._families = {fam.name: fam for fam in families}
        self.families: list[Family] = families + self.measure_families
        self.measures = [(fam.x[:, :, 0, 1].tolist(), fam.sup[:, :, 0, 1].tolist()) for fam in self.measure_families]
        self._percentiles()

    # --- histograms --------------------------------------------------------------------------

    def _dense(self, hist: pd.DataFrame) -> np.ndarray:
        """Histogram counts per (sex incl. all) x (band incl. all), (3 * (bands + 1), TOTAL_BINS)."""
        a_count = len(self.bands) + 1
        band_index = np.zeros(32, np.int64)
        band_index[self.bands] = np.arange(1, a_count)
        measure = hist["measure"].cat.codes.to_numpy().astype(np.int64)
        slot = BIN_OFFSETS[measure] + hist["bin"].to_numpy() - LO_BINS[measure]
        sex = hist["sex"].to_numpy().astype(np.int64)
        age = hist["age_group"].to_numpy().astype(np.int64)
        ok = (sex >= 1) & (sex <= 2) & np.isin(age, self.bands)
        row = sex[ok] * a_count + band_index[age[ok]]
        dense = np.bincount(
            row * TOTAL_BINS + slot[ok], weights=hist["n"].to_numpy()[ok].astype(np.float64),
            minlength=3 * a_count * TOTAL_BINS,
        ).astype(np.int64).reshape(3, a_count, TOTAL_BINS)
        dense[0] = dense[1:].sum(axis=0)
        dense[:, 0] = dense[:, 1:].sum(axis=1)
        return dense.reshape(3 * a_count, TOTAL_BINS)

    def _measure_counts(self, hist: pd.DataFrame) -> None:
        self._dense_hist = self._dense(hist)
        n = np.add.reduceat(self._dense_hist, BIN_OFFSETS, axis=1)  # (rows, measures)
        self.measure_n = n.reshape(3, len(self.bands) + 1, len(MEASURES))

    def _percentiles(self) -> None:
        """Nearest-rank percentiles per (sex, band) incl. "all", vectorised (numpy inverted_cdf)."""
        dense = self._dense_hist
        a_count = len(self.bands) + 1
        n = self.measure_n.reshape(3 * a_count, len(MEASURES))
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
        ints, floats = bins.tolist(), (bins / scale).tolist()
        is_int = [spec.scale == 1 for spec in MEASURES.values()]
        by_row = [[ints[r][j] if is_int[j] else floats[r][j] for j in range(len(MEASURES))] for r in range(len(rows))]
        self.pct = [by_row[s * a_count:(s + 1) * a_count] for s in range(3)]  # [sex][age][measure][q]

    # --- reading -----------------------------------------------------------------------------

    def age_index(self, label: str) -> int:
        return 0 if label == "all" else self.bands.index(int(label)) + 1

    def people(self, s: int, a: int, p: int = 0) -> tuple[int, bool]:
        return self.people_list[s][a][p], self.people_sup_list[s][a][p]

    def measure(self, j: int, s: int, a: int) -> tuple[int, bool]:
        values, sup = self.measures[j]
        return values[s][a], sup[s][a]

    def family(self, name: str) -> Family:
        return self._families[name]

    def mean_rf(self, s: int, a: int) -> float | None:
        n, sup = self.people(s, a)
        if sup or n <= 0:
            return None
        return round(self.rf[s][a] / n, 3)

    def mean_rf_panel(self, s: int, a: int) -> float | None:
        rule = self.rules[RISK_GROUP_COLUMN]
        if rule.layout != "both":
            return None
        n, sup = rule.panel_n(s, a, 0)
        if sup or n <= 0:
            return None
        return round(self.rf_panel[s][a] / n, 3)


# --- blocks ------------------------------------------------------------------------------------


def _not_available() -> dict:
    return {"available": False, "reason": NOT_AVAILABLE}


def _panel_flag(rule: _Rule, s: int, a: int, p: int) -> dict:
    if rule.layout == "all_only":
        return _not_available()
    n, n_sup = rule.panel_n(s, a, p)
    pos, pos_sup = rule.panel_value(s, a, p, 1)
    rest, rest_sup = rule.rest(s, a, p)
    out = {"n": None if n_sup else n, "n_positive": None if pos_sup else pos,
           "percent": _pct(pos, pos_sup, n, n_sup, rule.k), "not_in_panel": None if rest_sup else rest}
    if n_sup or pos_sup or rest_sup:
        out["suppressed"] = True
    return out


def _all_flag(rule: _Rule, people: tuple[int, bool], s: int, a: int, p: int) -> dict:
    if rule.panel_only:
        return {"complete_panel_only": True, **_panel_flag(rule, s, a, p)}
    den, den_sup = people
    out: dict = {}
    hidden = den_sup
    for name, j in (("positive", 1), ("negative", 2), ("unknown", rule.unknown)):
        n, sup = rule.all_value(s, a, p, j)
        out[f"n_{name}"] = None if sup else n
        out[f"percent_{name}"] = _pct(n, sup, den, den_sup, rule.k)
        hidden |= sup
    if hidden:
        out["suppressed"] = True
    return out


def _flag(rule: _Rule, population: str, people: tuple[int, bool], s: int, a: int, p: int) -> dict:
    return _panel_flag(rule, s, a, p) if population == "complete_panel" else _all_flag(rule, people, s, a, p)


def _values(rule: _Rule, read, den: int, den_sup: bool, s: int, a: int, p: int) -> dict:
    out = {}
    for j, value in enumerate(rule.values, start=1):
        cell = _share(*read(s, a, p, j), den, den_sup, rule.k)
        label = _value_label(rule.column, value)
        out[value] = {"label": label, **cell} if label is not None else cell
    return out


def _category(rule: _Rule, population: str, people: tuple[int, bool], s: int, a: int) -> dict:
    if population == "complete_panel":
        if rule.layout == "all_only":
            return _not_available()
        n, n_sup = rule.panel_n(s, a, 0)
        rest, rest_sup = rule.rest(s, a, 0)
        out = {"n": None if n_sup else n, "not_in_panel": None if rest_sup else rest}
        if n_sup or rest_sup:
            out["suppressed"] = True
        out["values"] = _values(rule, rule.panel_value, n, n_sup, s, a, 0)
        return out
    den, den_sup = people
    unk, unk_sup = rule.all_value(s, a, 0, rule.unknown)
    out = {"n_unknown": None if unk_sup else unk, "percent_unknown": _pct(unk, unk_sup, den, den_sup, rule.k)}
    if unk_sup or den_sup:
        out["suppressed"] = True
    out["values"] = _values(rule, rule.all_value, den, den_sup, s, a, 0)
    return out


def _groups(rule: _Rule, population: str, people: tuple[int, bool], s: int, a: int, p: int) -> dict:
    """A risk grouping: its groups over all people (unknown group shown if any) or over its panel."""
    if population == "complete_panel":
        if rule.layout != "both":
            return _not_available()
        den, den_sup = rule.panel_n(s, a, p)
        read = rule.panel_value
    else:
        den, den_sup = people
        read = rule.all_value
    groups = _values(rule, read, den, den_sup, s, a, p)
    if rule.show_unknown:
        groups[UNKNOWN_GROUP] = _share(*read(s, a, p, rule.unknown), den, den_sup, rule.k)
    if population != "complete_panel":
        return {"groups": groups}
    rest, rest_sup = rule.rest(s, a, p)
    out = {"n": None if den_sup else den, "not_in_panel": None if rest_sup else rest, "groups": groups}
    if den_sup or rest_sup:
        out["suppressed"] = True
    return out


def _groupings(y: YearCubes, population: str, s: int, a: int, p: int = 0) -> dict:
    people = y.people(s, a, p)
    return {
        column: {"description": GROUPING_DESCRIPTIONS.get(column, ""),
                 **_groups(y.rules[column], population, people, s, a, p)}
        for column in RISK_GROUPINGS
    }


# --- payloads ----------------------------------------------------------------------------------


def _slice_head(y: YearCubes, s: int, a: int, population: str | None = None) -> dict:
    head: dict = {"year": y.year, "sex": SEXES[s]}
    if a == 0:
        head["age_group"] = "all"
        head["age_label"] = "all"
    else:
        code = y.bands[a - 1]
        head["age_group"] = code
        head["age_label"] = AGE_GROUPS[code][2]
    if population is not None:
        head["population"] = population
        head["denominator"] = DENOMINATORS[population]
    return head


def _breakdown(y: YearCubes, s: int, a: int) -> list[tuple[int, int]]:
    """Sub-slices a payload breaks down into: sex x band when both are "all", else the free one."""
    if s != 0 and a != 0:
        return []
    sexes = [1, 2] if s == 0 else [s]
    bands = range(1, len(y.bands) + 1) if a == 0 else [a]
    return [(ss, aa) for ss in sexes for aa in bands]


def _sub_head(y: YearCubes, s: int, a: int) -> dict:
    return {"sex": SEXES[s], **_age_info(y.bands[a - 1])}


def _overview(y: YearCubes, years: list[int], meta: Mapping) -> dict:
    people, p_sup = y.people(0, 0)
    return {
        "year": y.year,
        "people": _count(people, p_sup),
        "years_loaded": years,
        "last_etl": meta.get("last_etl"),
        "measurements": {name: _share(*y.measure(j, 0, 0), people, p_sup, y.k)
                         for j, name in enumerate(MEASURE_NAMES)},
        "sex": {SEXES[s]: _share(*y.people(s, 0), people, p_sup, y.k) for s in (1, 2)},
        "age": [{**_age_info(code), **_share(*y.people(0, a), people, p_sup, y.k)}
                for a, code in enumerate(y.bands, start=1)],
    }


def _mean_rf(y: YearCubes, population: str, s: int, a: int) -> dict:
    if population == "complete_panel":
        return {"value": y.mean_rf_panel(s, a), "lower_bound": False}
    return {"value": y.mean_rf(s, a), "lower_bound": True}


def _risk_block(y: YearCubes, population: str, s: int, a: int) -> dict:
    groupings = _groupings(y, population, s, a)
    return {"people": _count(*y.people(s, a)), "groups": groupings[RISK_GROUP_COLUMN].get("groups"),
            "groupings": groupings, "mean_risk_factor_count": _mean_rf(y, population, s, a)}


def _risk(y: YearCubes, population: str, s: int, a: int) -> dict:
    data = {**_slice_head(y, s, a, population), **_risk_block(y, population, s, a)}
    if s == 0:
        data["by_sex"] = {SEXES[ss]: _risk_block(y, population, ss, a) for ss in (1, 2)}
    return data


def _age_row(y: YearCubes, s: int, a: int) -> dict:
    return {"people": _count(*y.people(s, a)), "mean_risk_factor_count": y.mean_rf(s, a),
            "groups": _groups(y.rules[RISK_GROUP_COLUMN], "all", y.people(s, a), s, a, 0)["groups"]}


def _age(y: YearCubes, s: int) -> dict:
    bands = []
    for a, code in enumerate(y.bands, start=1):
        row = {**_age_info(code), **_age_row(y, s, a)}
        if s == 0:
            row["by_sex"] = {SEXES[ss]: _age_row(y, ss, a) for ss in (1, 2)}
        bands.append(row)
    return {"year": y.year, "sex": SEXES[s], "population": "all", "denominator": DENOMINATORS["all"],
            "mean_risk_factor_count_is_lower_bound": True, "overall": _age_row(y, s, 0), "bands": bands}


def _factor_block(y: YearCubes, population: str, s: int, a: int) -> dict:
    people = y.people(s, a)
    return {
        "people": _count(*people),
        "flags": {f: _flag(y.rules[f], population, people, s, a, 0) for f in FLAGS},
        "categories": {c: _category(y.rules[c], population, people, s, a) for c in (*CATEGORIES, *CODED)},
    }


def _inputs(columns) -> dict:
    return {c: list(rule_inputs(c)) for c in columns}


def _factors(y: YearCubes, population: str, s: int, a: int) -> dict:
    data = {**_slice_head(y, s, a, population), **_factor_block(y, population, s, a)}
    if population == "complete_panel":
        data["inputs"] = _inputs((*FLAGS, *CATEGORIES, *CODED))
    data["breakdown"] = [{**_sub_head(y, ss, aa), **_factor_block(y, population, ss, aa)}
                         for ss, aa in _breakdown(y, s, a)]
    return data


def _region(y: YearCubes, population: str, s: int, a: int) -> dict:
    provinces = []
    for p, code in enumerate(y.provinces, start=1):
        if code == UNKNOWN_PROVINCE:
            head = {"code": None, "name_ko": None, "name_en": "unknown"}
        else:
            ko, en = PROVINCES.get(code, (None, f"code {code}"))
            head = {"code": code, "name_ko": ko, "name_en": en}
        people = y.people(s, a, p)
        provinces.append({
            **head,
            "people": _count(*people),
            "groupings": _groupings(y, population, s, a, p),
            "flags": {f: _flag(y.rules[f], population, people, s, a, p) for f in REGION_FLAGS},
        })
    return {**_slice_head(y, s, a, population), "people": _count(*y.people(s, a)), "provinces": provinces}


def _percentile_block(y: YearCubes, s: int, a: int) -> dict:
    blocks = {}
    for j, name in enumerate(MEASURE_NAMES):
        n, sup = y.measure(j, s, a)
        block: dict = {"n": None if sup else n}
        shown = not sup and n >= y.percentile_min_n
        values = y.pct[s][a][j]
        for q, value in zip(PERCENTILES, values, strict=True):
            block[f"p{q}"] = value if shown else None
        if sup:
            block["suppressed"] = True
        if not shown:
            block["reason"] = PERCENTILE_MIN_REASON.format(n=y.percentile_min_n)
        spec = MEASURES[name]
        block["unit"] = spec.unit
        block["resolution"] = 1 if spec.scale == 1 else 1 / spec.scale
        blocks[name] = block
    return blocks


def _percentiles(y: YearCubes, s: int, a: int) -> dict:
    data = {**_slice_head(y, s, a), "method": "inverted_cdf", "min_n": y.percentile_min_n,
            "measurements": _percentile_block(y, s, a)}
    data["breakdown"] = [{**_sub_head(y, ss, aa), "measurements": _percentile_block(y, ss, aa)}
                         for ss, aa in _breakdown(y, s, a)]
    return data


# --- trends ------------------------------------------------------------------------------------


def _province_head(code: int | None) -> dict:
    if code is None:
        return {"code": "all", "name_ko": "전국", "name_en": "all"}
    if code == UNKNOWN_PROVINCE:
        return {"code": None, "name_ko": None, "name_en": "unknown"}
    ko, en = PROVINCES.get(code, (None, f"code {code}"))
    return {"code": code, "name_ko": ko, "name_en": en}


def _rate(value: float) -> float | None:
    """A fraction as a percent to 0.1 point, rounded exactly as the stability checks of :mod:`rates`."""
    return None if value is None or not np.isfinite(value) else float(np.round(100.0 * float(value),
                                                                              rates.RATE_DECIMALS))


def _panel_arrays(y: YearCubes, flag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(positives, n, positives withheld, n withheld) over the complete panel, (3, A + 1, R + 1)."""
    rule = y.rules[flag]
    fam = y.family(flag)
    if rule.layout == "both":
        return fam.x[..., 1, 1], fam.x[..., 1, 0], fam.sup[..., 1, 1], fam.sup[..., 1, 0]
    return None


def _standard_bands(years: list[YearCubes], flag: str) -> list[int]:
    """Bands where, in every loaded year and for both sexes, at least 10% of people are in the
    factor's complete panel (so women under 40 drop out of lipid factors once the panel is not
    offered to them)."""
    common: set[int] | None = None
    for y in years:
        arrays = _panel_arrays(y, flag)
        if arrays is None:
            return []
        _pos, n, _ps, _ns = arrays
        people = y.people_x
        ok = set()
        for a, code in enumerate(y.bands, start=1):
            if all(n[s, a, 0] > 0 and n[s, a, 0] >= STANDARD_MIN_COVERAGE * people[s, a, 0] for s in (1, 2)):
                ok.add(code)
        common = ok if common is None else common & ok
    return sorted(common or ())


def _trend(years: list[YearCubes], flag: str, notes_by_year: Mapping) -> dict:
    bands = _standard_bands(years, flag)
    series, coverage, notes = [], [], []
    inputs = rule_inputs(flag)
    loaded = [y.year for y in years]
    for change in SCHEDULE_CHANGES:
        if set(inputs) & set(change["inputs"]) and any(v < change["from_year"] for v in loaded):
            after = [v for v in loaded if v >= change["from_year"]]
            if after:
                notes.append({"year": after[0], "note": change["note"], "source": change["source"]})
    previous = None
    for y in years:
        arrays = _panel_arrays(y, flag)
        people, people_sup = y.people(0, 0)
        if arrays is None:
            coverage.append({"year": y.year, "people": _count(people, people_sup), "n": None, "percent": None,
                             **_not_available()})
            continue
        pos, n, pos_sup, n_sup = arrays
        share = _pct(int(n[0, 0, 0]), bool(n_sup[0, 0, 0]), people, people_sup, y.k)
        coverage.append({"year": y.year, "people": _count(people, people_sup),
                         "n": None if n_sup[0, 0, 0] else int(n[0, 0, 0]), "percent": share})
        if previous is not None and share is not None and previous[1] is not None \
                and abs(share - previous[1]) >= COVERAGE_JUMP:
            notes.append({"year": y.year, "note": f"the share of people in this factor's complete panel changed from "
                                                  f"{previous[1]}% ({previous[0]}) to {share}%"})
        previous = (y.year, share)
        crude, crude_low, crude_high = rates.wilson(pos[:, 0, :], n[:, 0, :])  # (3, R + 1)
        crude_hidden = (n[:, 0, :] > 0) & ~rates.wilson_stable(pos[:, 0, :], pos_sup[:, 0, :], n[:, 0, :],
                                                               n_sup[:, 0, :], y.k, rates.RATE_DECIMALS)
        band_index = [y.bands.index(b) + 1 for b in bands if b in y.bands]
        if bands and len(band_index) == len(bands):
            weights = rates.band_weights(bands)
            d = np.moveaxis(pos[:, band_index, :], 1, -1)  # (3, R + 1, bands)
            m = np.moveaxis(n[:, band_index, :], 1, -1)
            d_sup = np.moveaxis(pos_sup[:, band_index, :], 1, -1)
            m_sup = np.moveaxis(n_sup[:, band_index, :], 1, -1)
            std, std_low, std_high = rates.standardised(d, m, weights)
            std_empty = (m <= 0).any(axis=-1)
            std_hidden = ~std_empty & ~rates.standardised_stable(d, d_sup, m, m_sup, weights, y.k,
                                                                               rates.RATE_DECIMALS)
        else:
            std = std_low = std_high = np.full(crude.shape, np.nan)
            std_hidden = np.zeros(crude.shape, dtype=bool)
            std_empty = np.ones(crude.shape, dtype=bool)
        for p, code in enumerate([None, *y.provinces]):
            for s in range(3):
                hidden = bool(crude_hidden[s, p])
                entry = {"year": y.year, "sex": SEXES[s], **_province_head(code),
                         "n": None if n_sup[s, 0, p] else int(n[s, 0, p]),
                         "n_positive": None if pos_sup[s, 0, p] else int(pos[s, 0, p]),
                         "crude": {"percent": None if hidden else _rate(crude[s, p]),
                                   "ci_low": None if hidden else _rate(crude_low[s, p]),
                                   "ci_high": None if hidden else _rate(crude_high[s, p])}}
                if std_hidden[s, p]:
                    entry["age_standardised"] = {"percent": None, "ci_low": None, "ci_high": None, "suppressed": True,
                                                 "reason": "it would reveal a withheld band count"}
                elif std_empty[s, p]:
                    entry["age_standardised"] = {"percent": None, "ci_low": None, "ci_high": None,
                                                 "reason": "no one in the complete panel in a band of the "
                                                           "standard range" if bands else "no standard range"}
                else:
                    entry["age_standardised"] = {"percent": _rate(std[s, p]), "ci_low": _rate(std_low[s, p]),
                                                 "ci_high": _rate(std_high[s, p])}
                if hidden or entry["n"] is None or entry["n_positive"] is None or std_hidden[s, p]:
                    entry["suppressed"] = True
                series.append(entry)
    for year in loaded:
        for note in notes_by_year.get(year, ()) or ():
            notes.append({"year": year, "note": note})
    return {
        "factor": flag,
        "label": LABELS.get(flag, flag),
        "inputs": list(inputs),
        "population": "complete_panel",
        "denominator": DENOMINATORS["complete_panel"],
        "years": loaded,
        "standard_population": rates.STANDARD_POPULATION,
        "standard_age_bands": [_age_info(b) for b in bands],
        "coverage": coverage,
        "notes": sorted(notes, key=lambda n: n["year"]),
        "series": series,
    }


# --- generation --------------------------------------------------------------------------------


def _dump(data: object, meta: dict) -> bytes:
    raw = orjson.dumps({"data": data, "meta": meta})
    if raw.count(STALE_FALSE) != 1:
        raise ValueError('"stale":false must appear exactly once per payload (check the meta passed in)')
    return raw


def build_payloads(
    aggregates: Aggregates, meta: dict, small_cell_min: int = DEFAULT_SMALL_CELL_MIN,
    percentile_min_n: int = DEFAULT_PERCENTILE_MIN_N, memo: MaskMemo | None = None,
) -> dict[str, bytes]:
    """Every payload of every year in ``aggregates`` as orjson bytes, keyed by :func:`keys.payload_key`.

    ``meta`` (computed_at, dataset_version, rule_version, last_etl, ...) opens each payload's meta
    in the order given; "stale": false, small_cell_min, year, standard_population, notes and a
    disclaimer follow. ``meta["notes_by_year"]`` ({year: [text]}) becomes each year's ``notes``.
    ``memo`` remembers suppression masks by their inputs (:mod:`shared.stats.mask_memo`).
    """
    k = int(small_cell_min)
    if k < 1:
        raise ValueError("small_cell_min must be >= 1")
    if percentile_min_n < 21:  # nearest-rank p5 / p95 of fewer people is the minimum / maximum
        raise ValueError("percentile_min_n must be >= 21")
    reserved = ("stale", "small_cell_min", "year", "disclaimer", "notes", "notes_by_year", "standard_population",
                "percentile_min_n")
    base_meta = {key: v for key, v in meta.items() if key not in reserved}
    notes_by_year = {int(y): list(v) for y, v in (meta.get("notes_by_year") or {}).items()}
    disclaimer = meta.get("disclaimer") or DISCLAIMER.format(low=k - 1)
    years = aggregates.years

    def meta_for(year, notes) -> dict:
        return {**base_meta, "stale": False, "small_cell_min": k, "percentile_min_n": int(percentile_min_n),
                "year": year, "standard_population": rates.STANDARD_POPULATION["name"], "notes": notes,
                "disclaimer": disclaimer}

    out: dict[str, bytes] = {}
    built: list[YearCubes] = []
    for year in years:
        y = YearCubes(aggregates, year, k, int(percentile_min_n), memo)
        built.append(y)
        m = meta_for(year, [{"year": year, "note": n} for n in notes_by_year.get(year, [])])
        out[keys.payload_key("overview", year)] = _dump(_overview(y, years, meta), m)
        ages = ["all", *(str(b) for b in y.bands)]
        for s, sex in enumerate(SEXES):
            out[keys.payload_key("age", year, sex)] = _dump(_age(y, s), m)
            for age in ages:
                a = y.age_index(age)
                out[keys.payload_key("percentiles", year, sex, age)] = _dump(_percentiles(y, s, a), m)
                for population in keys.POPULATIONS:
                    out[keys.payload_key("risk", year, sex, age, population)] = _dump(_risk(y, population, s, a), m)
                    out[keys.payload_key("factors", year, sex, age, population)] = _dump(
                        _factors(y, population, s, a), m)
                    out[keys.payload_key("region", year, sex, age, population)] = _dump(
                        _region(y, population, s, a), m)
    latest = years[-1] if years else None
    all_notes = [{"year": yr, "note": n} for yr in years for n in notes_by_year.get(yr, [])]
    m = meta_for(latest, all_notes)
    listing = [{"year": y.year, "people": _count(*y.people(0, 0)), "latest": y.year == latest} for y in built]
    out[keys.YEARS_KEY] = _dump({"years": listing, "latest": latest}, m)
    index = []
    if built:
        for flag in FLAGS:
            out[keys.payload_key("trends", factor=flag)] = _dump(_trend(built, flag, notes_by_year), m)
            index.append({"factor": flag, "label": LABELS.get(flag, flag), "inputs": list(rule_inputs(flag))})
    out[keys.TRENDS_INDEX_KEY] = _dump({"factors": index, "years": years,
                                        "standard_population": rates.STANDARD_POPULATION}, m)
    return out
