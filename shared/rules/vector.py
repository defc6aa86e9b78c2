"""numpy core of the rule table: arrays in, arrays out, no row loops and no pandas.

The ETL reaches it through :func:`shared.rules.frame.evaluate_frame` (a pandas wrapper) and
``POST /simulate/batch`` calls it directly (the web process never imports pandas).

Inputs: a mapping of column name -> 1-D array, all the same length: ``sex`` (1/2, anything else
unknown), ``age_group`` (band code), optionally ``age`` (exact years, overrides the band where
known, like the scalar path), and the measurements of ``table.NUMERIC_INPUTS``; an absent column
is all-unknown, NaN and ±inf are unknown.

Outputs, one array per ``DERIVED_COLUMNS`` name, encoded by its ``DERIVED_KINDS`` kind:

* ``float`` columns: float64, NaN when not computed;
* ``bool`` columns (tri-state): int8, 1 true, 0 false, -1 unknown;
* ``int`` columns: int8 counts;
* ``category`` columns: int8 index into ``CATEGORY_LEVELS[column]``, -1 unknown.

Internally tri-states are (value, known) pairs of bool arrays until the end.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .equations import (
    AGE_GROUP_MAX,
    CVD_MODELS,
    DEFAULT_CVD_MODEL,
    EGFR_MIN_AGE,
    band_bounds_vec,
    band_midpoint_vec,
    bmi_exact_vec,
    bmi_vec,
    egfr_vec,
)
from .table import (
    ALL_FLAG_RULES,
    ATP3_RULE,
    BAND_RULES,
    BP_RULE,
    DERIVED_COLUMNS,
    DERIVED_KINDS,
    ISOLATED_SYSTOLIC_RULE,
    METS_RULE,
    NUMERIC_INPUTS,
    SCREENING_GROUP_RULE,
    AllOfRule,
    BandRule,
    CodeFlagRule,
    Condition,
    FlagRule,
    Op,
    Threshold,
)

Tri = tuple[np.ndarray, np.ndarray]  # (value, known)
ARRAY_INPUTS: tuple[str, ...] = ("sex", "age_group", "age", *NUMERIC_INPUTS)


def as_float(values: object, n: int) -> np.ndarray:
    """float64 copy-free where possible, with NaN for missing and for ±inf."""
    if values is None:
        return np.full(n, np.nan)
    arr = np.asarray(values, dtype=np.float64)
    if np.isinf(arr).any():
        arr = np.where(np.isinf(arr), np.nan, arr)
    return arr


class _Sex:
    """Per-row sex masks and per-sex threshold arrays (cached: the table reuses few thresholds)."""

    def __init__(self, sex: np.ndarray) -> None:
        self.male = sex == 1
        self.female = sex == 2
        self.known = self.male | self.female
        self._cache: dict[Threshold, np.ndarray] = {}

    def threshold(self, t: Threshold) -> float | np.ndarray:
        if not t.sex_specific:
            return t.male
        arr = self._cache.get(t)
        if arr is None:
            arr = np.where(self.male, t.male, t.female)  # unknown sex is masked out by the callers
            self._cache[t] = arr
        return arr


def _compare(v: np.ndarray, op: Op, t: float | np.ndarray) -> np.ndarray:
    if op is Op.GE:
        return v >= t
    if op is Op.GT:
        return v > t
    if op is Op.LT:
        return v < t
    return v <= t


def _condition(cond: Condition, x: Mapping[str, np.ndarray], sex: _Sex) -> Tri:
    v = x[cond.input]
    known = ~np.isnan(v)
    if cond.threshold.sex_specific:
        known &= sex.known
    return _compare(v, cond.op, sex.threshold(cond.threshold)) & known, known


def flag_vec(rule: FlagRule, x: Mapping[str, np.ndarray], sex: _Sex) -> Tri:
    """Tri-state OR: true if any known condition holds; false only if all known and none holds."""
    any_true: np.ndarray | None = None
    all_known: np.ndarray | None = None
    for cond in rule.conditions:
        hit, known = _condition(cond, x, sex)
        any_true = hit if any_true is None else any_true | hit
        all_known = known if all_known is None else all_known & known
    assert any_true is not None and all_known is not None
    return any_true, any_true | all_known


def all_of_vec(rule: AllOfRule, x: Mapping[str, np.ndarray], sex: _Sex) -> Tri:
    """Tri-state AND: false if any known condition fails; true only if all known and all hold."""
    all_true: np.ndarray | None = None
    any_false: np.ndarray | None = None
    for cond in rule.conditions:
        hit, known = _condition(cond, x, sex)
        miss = known & ~hit
        all_true = hit if all_true is None else all_true & hit
        any_false = miss if any_false is None else any_false | miss
    assert all_true is not None and any_false is not None
    return all_true, all_true | any_false


def code_flag_vec(rule: CodeFlagRule, x: Mapping[str, np.ndarray]) -> Tri:
    """True for the listed codes, false for the others listed, unknown for anything else."""
    v = x[rule.input]
    value = np.isin(v, rule.true_codes)
    return value, value | np.isin(v, rule.false_codes)


def band_vec(rule: BandRule, x: Mapping[str, np.ndarray], sex: _Sex) -> np.ndarray:
    """int8 band codes: number of cuts at or below the value; -1 when unknown."""
    v = x[rule.input]
    codes = np.zeros(v.shape, dtype=np.int8)
    for cut in rule.cuts:  # (np.searchsorted measured ~3x slower on 1M unsorted values)
        codes += v >= sex.threshold(cut)
    unknown = np.isnan(v)
    if rule.sex_specific:
        unknown |= ~sex.known
    codes[unknown] = -1
    return codes


def bp_vec(x: Mapping[str, np.ndarray]) -> np.ndarray:
    """KSH 2018 category codes: the higher of the SBP and DBP ranks; -1 if either is unknown."""
    r = BP_RULE
    s, d = x["sbp"], x["dbp"]
    srank = np.zeros(s.shape, dtype=np.int8)
    for cut, rank in r.sbp_steps:
        srank[s >= cut] = rank
    drank = np.zeros(d.shape, dtype=np.int8)
    for cut, rank in r.dbp_steps:
        drank[d >= cut] = rank
    code = np.maximum(srank, drank)
    code[np.isnan(s) | np.isnan(d)] = -1
    return code


def _count(tris: list[Tri]) -> tuple[np.ndarray, np.ndarray]:
    """(number of known trues, number of unknowns) per row."""
    n_true = np.zeros(tris[0][0].shape, dtype=np.int8)
    n_unknown = np.zeros_like(n_true)
    for value, known in tris:
        n_true += value & known
        n_unknown += ~known
    return n_true, n_unknown


def _tri_codes(tri: Tri) -> np.ndarray:
    value, known = tri
    out = np.where(value & known, 1, 0).astype(np.int8)
    out[~known] = -1
    return out


class _Age:
    """Age per row: years for the equations, first/last possible year for threshold rules."""

    def __init__(self, age_group: np.ndarray, exact: np.ndarray | None) -> None:
        group = age_group
        if exact is not None:
            with np.errstate(invalid="ignore"):
                exact = np.where(exact >= 0, exact, np.nan)
            has_exact = ~np.isnan(exact)
            from_exact = np.minimum(np.floor_divide(exact, 5.0) + 1.0, float(AGE_GROUP_MAX))
            group = np.where(np.isnan(group) & has_exact, from_exact, group)
        lo, hi = band_bounds_vec(group)
        years = band_midpoint_vec(group)
        if exact is not None:
            years = np.where(has_exact, exact, years)
            lo = np.where(has_exact, exact, lo)
            hi = np.where(has_exact, exact, hi)
        self.group, self.years, self.first, self.last = group, years, lo, hi

    def at_least(self, t: Threshold, sex: _Sex) -> Tri:
        """Tri-state "age >= threshold": true if the youngest possible age reaches it, false if the
        oldest does not, unknown otherwise (a band straddling the threshold, or age/sex unknown)."""
        cut = sex.threshold(t)
        with np.errstate(invalid="ignore"):
            yes = (self.first >= cut) & sex.known
            no = (self.last < cut) & sex.known
        return yes, yes | no


def _screening_group(tri: Mapping[str, Tri], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Previous system's grouping, see ScreeningGroupRule; returns (codes, count)."""
    rg = SCREENING_GROUP_RULE
    d_value, d_known = tri[rg.diabetes]
    diabetic = d_value & d_known
    f_true, f_unknown = _count([tri[c] for c in rg.factors])
    group = np.full(n, 3, dtype=np.int8)  # INDETERMINATE
    group[d_known & ~diabetic & (f_true + f_unknown < rg.min_multiple)] = 2  # ZERO_TO_ONE
    group[f_true >= rg.min_multiple] = 1  # MULTIPLE
    group[diabetic] = 0  # CHD_RISK_EQUIVALENT
    return group, (f_true + diabetic).astype(np.int8)


def _atp3(tri: Mapping[str, Tri], age_factor: Tri, x: Mapping[str, np.ndarray], sex: _Sex,
          n: int) -> tuple[np.ndarray, np.ndarray]:
    """NCEP ATP III category, see Atp3Rule; returns (codes, net count of known factors)."""
    a = ATP3_RULE
    d_value, d_known = tri[a.chd_equivalent]
    diabetic = d_value & d_known
    lowest = np.zeros(n, dtype=np.int8)
    highest = np.zeros(n, dtype=np.int8)
    known_count = np.zeros(n, dtype=np.int8)
    for value, known in (*(tri[c] for c in a.factors), age_factor):
        hit = value & known
        lowest += hit
        highest += hit | ~known
        known_count += hit
    negative, neg_known = _condition(a.negative, x, sex)
    lowest -= negative | ~neg_known
    highest -= negative
    known_count -= negative
    category = np.full(n, 3, dtype=np.int8)  # INDETERMINATE
    not_diabetic = d_known & ~diabetic
    category[not_diabetic & (highest < a.min_multiple)] = 2  # ZERO_TO_ONE
    category[not_diabetic & (lowest >= a.min_multiple)] = 1  # TWO_PLUS
    category[diabetic] = 0  # CHD_RISK_EQUIVALENT
    return category, known_count


def evaluate_arrays(columns: Mapping[str, object], cvd_model: str | None = None) -> dict[str, np.ndarray]:
    """Every derived column for every row (encodings in the module docstring)."""
    present = [v for v in columns.values() if v is not None]
    n = len(present[0]) if present else 0
    x = {name: as_float(columns.get(name), n) for name in NUMERIC_INPUTS}
    sex_code = as_float(columns.get("sex"), n)
    sex = _Sex(sex_code)
    exact = columns.get("age")
    age = _Age(as_float(columns.get("age_group"), n), None if exact is None else as_float(exact, n))

    x["bmi_exact"] = bmi_exact_vec(x["height_cm"], x["weight_kg"])
    with np.errstate(invalid="ignore"):
        adult_years = np.where(age.first >= EGFR_MIN_AGE, age.years, np.nan)
    x["egfr"] = egfr_vec(x["creatinine"], sex.male, sex.female, adult_years)

    tri: dict[str, Tri] = {}
    for rule in ALL_FLAG_RULES:
        tri[rule.column] = code_flag_vec(rule, x) if isinstance(rule, CodeFlagRule) else flag_vec(rule, x, sex)
    tri[ISOLATED_SYSTOLIC_RULE.column] = all_of_vec(ISOLATED_SYSTOLIC_RULE, x, sex)
    codes: dict[str, np.ndarray] = {rule.column: band_vec(rule, x, sex) for rule in BAND_RULES}
    codes[BP_RULE.column] = bp_vec(x)

    # Metabolic syndrome: >= 3 known trues -> true; known trues + unknowns < 3 -> false; else null.
    m_true, m_unknown = _count([tri[c] for c in METS_RULE.components])
    mets_value = m_true >= METS_RULE.min_true
    tri[METS_RULE.column] = (mets_value, mets_value | (m_true + m_unknown < METS_RULE.min_true))

    ints: dict[str, np.ndarray] = {}
    codes[SCREENING_GROUP_RULE.column], ints[SCREENING_GROUP_RULE.count_column] = _screening_group(tri, n)
    codes[ATP3_RULE.column], ints[ATP3_RULE.count_column] = _atp3(
        tri, age.at_least(ATP3_RULE.age, sex), x, sex, n)

    model = CVD_MODELS[cvd_model or DEFAULT_CVD_MODEL]
    smk_v, smk_k = tri["flag_smoking"]
    dm_v, dm_k = tri["flag_diabetes"]
    cvd_in = {
        **x,
        "age": age.years,
        "sex": sex_code,
        "current_smoker": np.where(smk_k, smk_v.astype(np.float64), np.nan),
        "diabetes": np.where(dm_k, dm_v.astype(np.float64), np.nan),
    }
    floats = {"bmi": bmi_vec(x["bmi_exact"]), "egfr": x["egfr"], "cvd_10y": model.risk_vec(cvd_in)}

    out: dict[str, np.ndarray] = {}
    for col in DERIVED_COLUMNS:
        kind = DERIVED_KINDS[col]
        if kind == "float":
            out[col] = floats[col]
        elif kind == "int":
            out[col] = ints[col]
        elif kind == "category":
            out[col] = codes[col]
        else:
            out[col] = _tri_codes(tri[col])
    return out
