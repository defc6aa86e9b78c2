"""Scalar evaluation: one person through the same rule table as the numpy core, in plain Python.

This is the hot path of ``POST /simulate``: no numpy, no pandas, no per-call allocation beyond the
result. The table is compiled once at import into closures over each rule's thresholds (read from
``table.py`` only); :func:`evaluate_scalar` returns an :class:`Evaluation` that the what-if,
explanation and layout modules read.
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .equations import (
    CVD_MODELS,
    DEFAULT_CVD_MODEL,
    EGFR_MIN_AGE,
    CvdModel,
    age_group_from_age,
    band_bounds,
    band_midpoint,
    bmi_exact,
    egfr,
    egfr_reason,
)
from .table import (
    ALL_FLAG_RULES,
    ATP3_RULE,
    BAND_RULES,
    BP_RULE,
    DERIVED_COLUMNS,
    ISOLATED_SYSTOLIC_RULE,
    METS_RULE,
    NUMERIC_INPUTS,
    SCREENING_GROUP_RULE,
    AllOfRule,
    CodeFlagRule,
    Condition,
    FlagRule,
    Op,
)

Value = float | None
Inputs = dict[str, Value]
FlagFn = Callable[[Inputs, "bool | None"], "bool | None"]

OPS: dict[Op, Callable[[float, float], bool]] = {
    Op.GE: operator.ge,
    Op.GT: operator.gt,
    Op.LT: operator.lt,
    Op.LE: operator.le,
}


class CompiledCondition(NamedTuple):
    """One ``input OP threshold`` with the comparison resolved and both sexes' cut points."""

    input: str
    compare: Callable[[float, float], bool]
    male: float
    female: float
    sex_specific: bool


def compile_condition(c: Condition) -> CompiledCondition:
    return CompiledCondition(c.input, OPS[c.op], c.threshold.male, c.threshold.female, c.threshold.sex_specific)


class AgeInfo(NamedTuple):
    """The age a person's rules use: ``years`` for the equations, ``first``/``last`` possible age
    for threshold rules (equal for an exact age, the band's bounds otherwise)."""

    years: Value
    source: str  # exact | band_midpoint | unknown
    age_group: Value
    first: Value
    last: Value


class AtLeast(NamedTuple):
    """Tri-state "at least k true": the verdict and the counts it was decided from."""

    verdict: bool | None
    n_true: int
    n_unknown: int


@dataclass(slots=True)
class Evaluation:
    """Everything one person's evaluation produced, for the layout, what-if and explanations."""

    x: Inputs  # normalised measurements plus bmi_exact and egfr
    sex: int | None
    male: bool | None
    age: AgeInfo
    derived: dict[str, Any]  # DERIVED_COLUMNS order
    mets: AtLeast
    cvd_reason: str | None
    egfr_reason: str | None
    model_key: str


# --- input normalisation ---------------------------------------------------------------------------
_SEX = {"1": 1, "2": 2, "m": 1, "f": 2, "male": 1, "female": 2}
_SMOKING = {"never": 1.0, "former": 2.0, "current": 3.0}


def num(v: Any) -> Value:
    """A finite float, or None for missing / NaN / inf / non-numbers (never a silent 0)."""
    if v is None:
        return None
    if type(v) is float:  # fast path: finite iff v - v == 0 (inf - inf and NaN give NaN)
        return v if v - v == 0.0 else None
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def sex_code(v: Any) -> int | None:
    if isinstance(v, str):
        return _SEX.get(v.strip().lower())
    f = num(v)
    return int(f) if f in (1.0, 2.0) else None


def read_age(person: Mapping[str, Any]) -> AgeInfo:
    """Exact ``age`` (years) wins where given; otherwise the 5-year band (midpoint and bounds)."""
    exact = num(person.get("age"))
    group = num(person.get("age_group"))
    if exact is not None and exact >= 0:
        if group is None:
            group = age_group_from_age(exact)
        return AgeInfo(exact, "exact", group, exact, exact)
    bounds = band_bounds(group)
    if bounds is None:
        return AgeInfo(None, "unknown", group, None, None)
    return AgeInfo(band_midpoint(group), "band_midpoint", group, bounds[0], bounds[1])


def age_label(age: AgeInfo) -> str:
    """How reasons name the age: exact years, or the band with its ages."""
    if age.source == "exact":
        return f"age {age.years:g}"
    if age.first is None:
        return "age unknown"
    last = "+" if age.last == math.inf else f"-{age.last:g}"
    return f"age band {age.age_group:g} ({age.first:g}{last})"


def read_inputs(person: Mapping[str, Any]) -> Inputs:
    """Canonical numeric inputs (None for unknown), smoking words mapped to their codes."""
    get = person.get
    x: Inputs = {}
    for k in NUMERIC_INPUTS:
        v = get(k)
        if v is None or type(v) is float:  # inline fast path of num (this loop is hot)
            x[k] = v if v is None or v - v == 0.0 else None
        else:
            x[k] = num(v)
    smoking = get("smoking")
    if isinstance(smoking, str):
        x["smoking"] = _SMOKING.get(smoking.strip().lower())
    return x


# --- compiled rules ----------------------------------------------------------------------------------
def _flag_fn(rule: FlagRule | CodeFlagRule) -> FlagFn:
    """A closure evaluating one flag rule for one person (tri-state OR, see table.py)."""
    if isinstance(rule, CodeFlagRule):
        true_codes, false_codes, inp = rule.true_codes, rule.false_codes, rule.input

        def code_flag(x: Inputs, male: bool | None) -> bool | None:
            v = x[inp]
            return True if v in true_codes else (False if v in false_codes else None)

        return code_flag
    conds = tuple(compile_condition(c) for c in rule.conditions)
    if len(conds) == 1 and not conds[0].sex_specific:
        inp, cmp, cut = conds[0].input, conds[0].compare, conds[0].male

        def single(x: Inputs, male: bool | None) -> bool | None:
            v = x[inp]
            return None if v is None else cmp(v, cut)

        return single

    def any_of(x: Inputs, male: bool | None) -> bool | None:
        all_known = True
        for inp, cmp, tm, tf, sex_specific in conds:
            v = x[inp]
            if v is None or (sex_specific and male is None):
                all_known = False
            elif cmp(v, tf if male is False else tm):
                return True
        return False if all_known else None

    return any_of


def _all_of_fn(rule: AllOfRule) -> FlagFn:
    """Tri-state AND (see table.py)."""
    conds = tuple(compile_condition(c) for c in rule.conditions)

    def all_of(x: Inputs, male: bool | None) -> bool | None:
        all_known = True
        for inp, cmp, tm, tf, sex_specific in conds:
            v = x[inp]
            if v is None or (sex_specific and male is None):
                all_known = False
            elif not cmp(v, tf if male is False else tm):
                return False
        return True if all_known else None

    return all_of


FLAG_FNS: dict[str, FlagFn] = {r.column: _flag_fn(r) for r in ALL_FLAG_RULES}
ISOLATED_SYSTOLIC_FN: FlagFn = _all_of_fn(ISOLATED_SYSTOLIC_RULE)


def _raw_inputs(names: set[str]) -> set[str]:
    """Measured inputs behind rule inputs (the unrounded BMI is read through weight and height)."""
    return names | ({"weight_kg", "height_cm"} if "bmi_exact" in names else set())


DEPENDENTS: dict[str, tuple[tuple[str, FlagFn], ...]] = {}
"""Measured input -> the flag rules reading it: a what-if scenario re-evaluates only these."""
for _rule in ALL_FLAG_RULES:
    _names = {_rule.input} if isinstance(_rule, CodeFlagRule) else {c.input for c in _rule.conditions}
    for _inp in _raw_inputs(_names):
        DEPENDENTS[_inp] = (*DEPENDENTS.get(_inp, ()), (_rule.column, FLAG_FNS[_rule.column]))


class CompiledBand(NamedTuple):
    column: str
    input: str
    labels: tuple[str, ...]
    male_cuts: list[float]
    female_cuts: list[float]
    sex_specific: bool


BANDS: tuple[CompiledBand, ...] = tuple(
    CompiledBand(r.column, r.input, r.labels, [c.male for c in r.cuts], [c.female for c in r.cuts], r.sex_specific)
    for r in BAND_RULES
)
if not all(b.male_cuts == sorted(b.male_cuts) and b.female_cuts == sorted(b.female_cuts) for b in BANDS):
    raise ValueError("band cuts must ascend (bisect relies on it)")


def band(b: CompiledBand, value: Value, male: bool | None) -> str | None:
    """Band label: the number of cuts at or below the value (bisect_right) indexes the labels."""
    if value is None or (male is None and b.sex_specific):
        return None
    return b.labels[bisect_right(b.female_cuts if male is False else b.male_cuts, value)]


def bp_category(sbp: Value, dbp: Value) -> str | None:
    """KSH 2018: the higher of the SBP and DBP ranks; None if either is unknown."""
    if sbp is None or dbp is None:
        return None
    rank = 0
    for cut, r in BP_RULE.sbp_steps:
        if sbp >= cut:
            rank = r
    for cut, r in BP_RULE.dbp_steps:
        if dbp >= cut and r > rank:
            rank = r
    return BP_RULE.labels[rank]


def at_least(values: list[bool | None], k: int) -> AtLeast:
    """Tri-state "at least k true" (values are only True / False / None)."""
    n_true = values.count(True)
    n_unknown = values.count(None)
    if n_true >= k:
        return AtLeast(True, n_true, n_unknown)
    return AtLeast(False if n_true + n_unknown < k else None, n_true, n_unknown)


def screening_group(state: Mapping[str, Any]) -> tuple[str, int]:
    """The previous system's grouping (see ScreeningGroupRule): (group, risk_factor_count)."""
    rg = SCREENING_GROUP_RULE
    diabetes = state[rg.diabetes]
    others = [state[c] for c in rg.factors]
    n_true = others.count(True)
    count = n_true + (diabetes is True)
    if diabetes is True:
        return rg.labels[0], count
    if n_true >= rg.min_multiple:
        return rg.labels[1], count
    if diabetes is False and n_true + others.count(None) < rg.min_multiple:
        return rg.labels[2], count
    return rg.labels[3], count


_ATP3_NEGATIVE = compile_condition(ATP3_RULE.negative)


def age_at_least(age: AgeInfo, male: bool | None, male_cut: float, female_cut: float) -> bool | None:
    """Tri-state "age >= cut" (a band straddling the cut would be unknown; 5-year bands never do
    for 45 and 55)."""
    if male is None or age.first is None or age.last is None:
        return None
    cut = male_cut if male else female_cut
    if age.first >= cut:
        return True
    return False if age.last < cut else None


def atp3_factors(state: Mapping[str, Any], x: Inputs, age: AgeInfo, male: bool | None) -> tuple[list[bool | None], bool | None]:
    """ATP III major risk factors in ``ATP3_RULE.factors`` order plus age, and the HDL >= 60 state."""
    a = ATP3_RULE
    factors = [state[c] for c in a.factors]
    factors.append(age_at_least(age, male, a.age.male, a.age.female))
    n = _ATP3_NEGATIVE
    hdl = x[n.input]
    negative = None if hdl is None or (n.sex_specific and male is None) else n.compare(hdl, n.female if male is False else n.male)
    return factors, negative


def atp3_category(state: Mapping[str, Any], x: Inputs, age: AgeInfo, male: bool | None) -> tuple[str, int]:
    """NCEP ATP III category (see Atp3Rule): (category, net count of known factors)."""
    a = ATP3_RULE
    factors, negative = atp3_factors(state, x, age, male)
    known = factors.count(True)
    lowest = known - (negative is not False)
    highest = known + factors.count(None) - (negative is True)
    count = known - (negative is True)
    diabetes = state[a.chd_equivalent]
    if diabetes is True:
        return a.labels[0], count
    if diabetes is False:
        if lowest >= a.min_multiple:
            return a.labels[1], count
        if highest < a.min_multiple:
            return a.labels[2], count
    return a.labels[3], count


def cvd_inputs(x: Inputs, state: Mapping[str, Any], sex: int | None, age: Value) -> dict[str, Any]:
    """The CVD model's named inputs for one person (a new dict: the caller may change it)."""
    smk, dm = state["flag_smoking"], state["flag_diabetes"]
    return {
        **x,
        "age": age,
        "sex": sex,
        "current_smoker": None if smk is None else float(smk),
        "diabetes": None if dm is None else float(dm),
    }


def model_of(cvd_model: str | None) -> tuple[str, CvdModel]:
    key = cvd_model or DEFAULT_CVD_MODEL
    return key, CVD_MODELS[key]


_GROUP, _COUNT = SCREENING_GROUP_RULE.column, SCREENING_GROUP_RULE.count_column
_ATP3, _ATP3_COUNT = ATP3_RULE.column, ATP3_RULE.count_column
_ISO, _BP, _METS = ISOLATED_SYSTOLIC_RULE.column, BP_RULE.column, METS_RULE.column
_FLAG_ITEMS = tuple(FLAG_FNS.items())
_METS_COMPONENTS = METS_RULE.components


def evaluate_scalar(person: Mapping[str, Any], cvd_model: str | None = None) -> Evaluation:
    """Every derived column for one person, with what the other modules need to explain it."""
    model_key, model = model_of(cvd_model)
    x = read_inputs(person)
    sex = sex_code(person.get("sex"))
    male = None if sex is None else sex == 1
    age = read_age(person)
    x["bmi_exact"] = bmi_exact(x["height_cm"], x["weight_kg"])
    adult = age.first is not None and age.first >= EGFR_MIN_AGE
    x["egfr"] = egfr(x["creatinine"], male, age.years) if adult else None

    d: dict[str, Any] = dict.fromkeys(DERIVED_COLUMNS)  # fixes the key order
    for column, fn in _FLAG_ITEMS:
        d[column] = fn(x, male)
    d[_ISO] = ISOLATED_SYSTOLIC_FN(x, male)
    mets = at_least([d[c] for c in _METS_COMPONENTS], METS_RULE.min_true)
    d[_METS] = mets.verdict
    d[_GROUP], d[_COUNT] = screening_group(d)
    d[_ATP3], d[_ATP3_COUNT] = atp3_category(d, x, age, male)
    d[_BP] = bp_category(x["sbp"], x["dbp"])
    for b in BANDS:
        d[b.column] = band(b, x[b.input], male)
    raw = x["bmi_exact"]
    d["bmi"] = None if raw is None else round(raw * 10.0) / 10.0
    d["egfr"] = x["egfr"]
    cvd, cvd_reason = model.risk_one(cvd_inputs(x, d, sex, age.years))
    d["cvd_10y"] = cvd
    reason = None if x["egfr"] is not None else egfr_reason(x["creatinine"], male, age.first, age_label(age))
    return Evaluation(x, sex, male, age, d, mets, cvd_reason, reason, model_key)
