"""Scalar path: one person through the same rule objects, plus what-if and explanations.

Plain Python (no pandas, no per-call numpy): a full simulate result, what-if and explanations
included, targets <= 100 µs (see docs/PERFORMANCE.md).
The rule table is compiled once at import into tuples of (input, comparison, male cut, female
cut); the thresholds themselves are only ever read from ``table.py``.
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_right
from collections.abc import Callable, Mapping
from typing import Any

from .equations import CVD_MODELS, DEFAULT_CVD_MODEL, CvdModel, age_group_from_age, band_midpoint, bmi, egfr
from .guidelines import DISCLAIMER, GUIDELINES
from .table import (
    BAND_RULES,
    BP_RULE,
    DERIVED_COLUMNS,
    EXTRA_FLAG_RULES,
    FLAG_RULES,
    INPUTS,
    METS_RULE,
    NUMERIC_INPUTS,
    RISK_GROUP_RULE,
    RULE_VERSION,
    BandRule,
    CodeFlagRule,
    FlagRule,
    Op,
)

_OPS: dict[Op, Callable[[float, float], bool]] = {
    Op.GE: operator.ge,
    Op.GT: operator.gt,
    Op.LT: operator.lt,
    Op.LE: operator.le,
}
_NEGATED = {Op.GE: "<", Op.GT: "≤", Op.LT: "≥", Op.LE: ">"}

# (input, compare, male cut, female cut, sex-specific) per condition of a flag rule.
_CompiledCond = tuple[str, Callable[[float, float], bool], float, float, bool]
_FlagFn = Callable[[Mapping[str, "float | None"], "bool | None"], "bool | None"]


def _compile_conditions(rule: FlagRule) -> tuple[_CompiledCond, ...]:
    return tuple(
        (c.input, _OPS[c.op], c.threshold.male, c.threshold.female, c.threshold.sex_specific) for c in rule.conditions
    )


def _compile_flag(rule: FlagRule | CodeFlagRule) -> _FlagFn:
    """A closure evaluating one rule for one person; thresholds are read from the rule object once."""
    if isinstance(rule, CodeFlagRule):
        return lambda x, male: _code_flag(rule, x)
    conds = _compile_conditions(rule)
    if len(conds) == 1:
        inp, cmp, tm, tf, sex_specific = conds[0]
        if not sex_specific:
            def single(x: Mapping[str, float | None], male: bool | None) -> bool | None:
                v = x[inp]
                return None if v is None else cmp(v, tm)

            return single

        def single_by_sex(x: Mapping[str, float | None], male: bool | None) -> bool | None:
            v = x[inp]
            if v is None or male is None:
                return None
            return cmp(v, tm if male else tf)

        return single_by_sex
    return lambda x, male: _flag(conds, x, male)


_ALL_FLAG_RULES: tuple[FlagRule | CodeFlagRule, ...] = (*FLAG_RULES, *EXTRA_FLAG_RULES)
_FLAG_FNS: list[tuple[str, _FlagFn]] = [(r.column, _compile_flag(r)) for r in _ALL_FLAG_RULES]
# Band cuts per sex as ascending lists (men, women) for bisect.
_BANDS: list[tuple[BandRule, tuple[list[float], list[float]]]] = [
    (r, ([c.male for c in r.cuts], [c.female for c in r.cuts])) for r in BAND_RULES
]
if not all(m == sorted(m) and f == sorted(f) for _r, (m, f) in _BANDS):
    raise ValueError("band cuts must ascend (bisect relies on it)")
_BAND_SPECS = [(r.column, r.input, r.labels, cuts, r.sex_specific) for r, cuts in _BANDS]


def _rule_inputs(rule: FlagRule | CodeFlagRule) -> set[str]:
    """Measured inputs a rule reads (BMI is read through weight and height)."""
    names = {rule.input} if isinstance(rule, CodeFlagRule) else {c.input for c in rule.conditions}
    if "bmi" in names:
        names |= {"weight_kg", "height_cm"}
    return names


# input -> flag rules reading it: a what-if scenario re-evaluates only these.
_DEPENDENTS: dict[str, list[tuple[str, _FlagFn]]] = {}
for _rule, (_column, _fn) in zip(_ALL_FLAG_RULES, _FLAG_FNS, strict=True):
    for _inp in _rule_inputs(_rule):
        _DEPENDENTS.setdefault(_inp, []).append((_column, _fn))
_SEX = {"1": 1, "2": 2, "m": 1, "f": 2, "male": 1, "female": 2}
_SMOKING = {"never": 1.0, "former": 2.0, "current": 3.0}

# Output layout of evaluate_person (derived column -> key inside its section).
FLAG_KEYS = {r.column: r.column.removeprefix("flag_") for r in FLAG_RULES}
CATEGORY_KEYS = {
    "bp_category": "blood_pressure",
    "glucose_category": "glucose",
    "bmi_class": "bmi_class",
    "abdominal_obesity": "abdominal_obesity",
    "tc_class": "total_cholesterol",
    "ldl_class": "ldl",
    "tg_class": "triglycerides",
    "hdl_class": "hdl",
    "anemia": "anemia",
    "anemia_severity": "anemia_severity",
    "egfr": "egfr",
    "egfr_stage": "egfr_stage",
    "proteinuria": "proteinuria",
    "liver_enzymes_high": "liver_enzymes_high",
    "ggt_high": "ggt_high",
}
METS_KEYS = {
    "mets_waist": "waist",
    "mets_triglycerides": "triglycerides",
    "mets_hdl": "hdl",
    "mets_bp": "blood_pressure",
    "mets_glucose": "glucose",
    "metabolic_syndrome": "verdict",
}
WHAT_IF_FACTORS = (*(r.column for r in FLAG_RULES), *METS_RULE.components)
_FACTOR_NAME = {c: c.removeprefix("flag_") for c in WHAT_IF_FACTORS}


# --- input normalisation ---------------------------------------------------------------------------
def _num(v: Any) -> float | None:
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


def _sex(v: Any) -> int | None:
    if isinstance(v, str):
        return _SEX.get(v.strip().lower())
    f = _num(v)
    return int(f) if f in (1.0, 2.0) else None


def _inputs(person: Mapping[str, Any]) -> tuple[dict[str, float | None], int | None, dict[str, Any]]:
    """Canonical numeric inputs, sex code, and the age actually used (exact or band midpoint)."""
    get = person.get
    x: dict[str, float | None] = {}
    for k in NUMERIC_INPUTS:
        v = get(k)
        if v is None or type(v) is float:  # inline fast path of _num (this loop is hot)
            x[k] = v if v is None or v - v == 0.0 else None
        else:
            x[k] = _num(v)
    smoking = get("smoking")
    if isinstance(smoking, str):
        x["smoking"] = _SMOKING.get(smoking.strip().lower())
    sex = _sex(get("sex"))
    exact = _num(get("age"))
    group = _num(get("age_group"))
    if exact is not None and exact >= 0:
        if group is None:
            group = age_group_from_age(exact)
        age_info = {"years": exact, "source": "exact", "age_group": group}
    else:
        mid = band_midpoint(group)
        age_info = {"years": mid, "source": "band_midpoint" if mid is not None else "unknown", "age_group": group}
    x["bmi"] = bmi(x["height_cm"], x["weight_kg"])
    return x, sex, age_info


# --- rule kinds, scalar form (same semantics as evaluate.py) --------------------------------------
def _flag(conds: tuple[_CompiledCond, ...], x: Mapping[str, float | None], male: bool | None) -> bool | None:
    """Tri-state OR (see table.py)."""
    any_true = False
    all_known = True
    for inp, cmp, tm, tf, sex_specific in conds:
        v = x[inp]
        if v is None or (sex_specific and male is None):
            all_known = False
        elif cmp(v, tf if male is False else tm):
            any_true = True
    return True if any_true else (False if all_known else None)


def _code_flag(rule: CodeFlagRule, x: Mapping[str, float | None]) -> bool | None:
    v = x[rule.input]
    if v in rule.true_codes:
        return True
    if v in rule.false_codes:
        return False
    return None


def _band(rule: BandRule, cuts: tuple[list[float], list[float]], x: Mapping[str, float | None], male: bool | None) -> str | None:
    """Band label: the number of cuts at or below the value (bisect_right) indexes the labels."""
    v = x[rule.input]
    if v is None or (male is None and rule.sex_specific):
        return None
    return rule.labels[bisect_right(cuts[1] if male is False else cuts[0], v)]


def _bp(x: Mapping[str, float | None]) -> str | None:
    r = BP_RULE
    s, d = x["sbp"], x["dbp"]
    if s is None or d is None:
        return None
    srank = drank = 0
    for cut, rank in r.sbp_steps:
        if s >= cut:
            srank = rank
    for cut, rank in r.dbp_steps:
        if d >= cut:
            drank = rank
    code = max(srank, drank)
    if code == r.isolated_rank_from and s >= r.isolated_sbp_min and d < r.isolated_dbp_below:
        code = r.isolated_rank
    return r.labels[code]


def _at_least(values: list[bool | None], k: int) -> tuple[bool | None, int, int]:
    """Tri-state "at least k true": (verdict, known trues, unknowns)."""
    n_true = values.count(True)  # values are only True / False / None
    n_unknown = values.count(None)
    if n_true >= k:
        return True, n_true, n_unknown
    return (False if n_true + n_unknown < k else None), n_true, n_unknown


def _risk_group(flags: Mapping[str, bool | None]) -> tuple[str, int]:
    """ATP III frame (see RiskGroupRule); returns (group, risk_factor_count)."""
    rg = RISK_GROUP_RULE
    diabetes = flags[rg.diabetes]
    others = [flags[c] for c in rg.factors]
    n_true = others.count(True)
    n_unknown = others.count(None)
    count = n_true + (diabetes is True)
    if diabetes is True:
        return rg.labels[0], count
    if n_true >= rg.min_multiple:
        return rg.labels[1], count
    if diabetes is False and n_true + n_unknown < rg.min_multiple:
        return rg.labels[2], count
    return rg.labels[3], count


def _core(x: Mapping[str, float | None], male: bool | None) -> dict[str, Any]:
    """Flags, MetS components + verdict and risk group: what a what-if scenario needs to recompute."""
    out: dict[str, Any] = {column: fn(x, male) for column, fn in _FLAG_FNS}
    out[METS_RULE.column] = _at_least([out[c] for c in METS_RULE.components], METS_RULE.min_true)[0]
    out[RISK_GROUP_RULE.column], out[RISK_GROUP_RULE.count_column] = _risk_group(out)
    return out


def _cvd(model: CvdModel, x: dict[str, Any], d: Mapping[str, Any], sex: int | None, age: float | None) -> tuple[float | None, str | None]:
    """Run the CVD model on ``x`` (internal scratch dict: the model's extra inputs are set in place)."""
    smk, dm = d["flag_smoking"], d["flag_diabetes"]
    x["age"] = age
    x["sex"] = sex
    x["current_smoker"] = None if smk is None else float(smk)
    x["diabetes"] = None if dm is None else float(dm)
    return model.risk_one(x)


# --- what-if ---------------------------------------------------------------------------------------
def _grid(v: float, step: float) -> float | int:
    """A target on the input's resolution grid, as int when the grid is whole numbers."""
    return int(round(v)) if step >= 1 else round(v, 1)


def _pretty(v: float | None) -> float | int | None:
    return int(v) if v is not None and v.is_integer() else v


def _target(op: Op, threshold: float, step: float) -> float | int:
    """Nearest value on the grid for which ``value OP threshold`` no longer holds."""
    if op is Op.GE:
        return _grid(threshold - step, step)
    if op is Op.GT or op is Op.LT:
        return _grid(threshold, step)
    return _grid(threshold + step, step)


def _weight_for_bmi_below(height_cm: float, limit: float) -> float | None:
    """Heaviest weight (0.1 kg grid) whose reported BMI is < limit at this height."""
    h = height_cm / 100.0
    start = limit * h * h * 10.0
    if not math.isfinite(start):
        return None
    w = math.floor(start) / 10.0
    for _ in range(20):  # rounding to 1 decimal moves the answer by at most a few 0.1 kg steps
        if w <= 0:
            return None
        b = bmi(height_cm, w)
        if b is not None and b < limit:
            return w
        w = round(w - 0.1, 1)
    return None


# Per what-if factor, per condition: (input, compare, male cut, female cut, male target, female target).
# Targets come from the rule's own thresholds, precomputed once; None target = not modifiable.
_WhatIfCond = tuple[str, Callable[[float, float], bool], float, float, "float | int | None", "float | int | None"]


def _compile_what_if(rule: FlagRule) -> tuple[_WhatIfCond, ...]:
    out = []
    for c in rule.conditions:
        spec = INPUTS[c.input]
        if c.input == "bmi":  # reached through weight; target depends on height, solved per person
            tm = tf = None
        elif spec.modifiable:
            tm, tf = _target(c.op, c.threshold.male, spec.step), _target(c.op, c.threshold.female, spec.step)
        else:
            tm = tf = None
        out.append((c.input, _OPS[c.op], c.threshold.male, c.threshold.female, tm, tf))
    return tuple(out)


_WHAT_IF_CONDS: dict[str, tuple[_WhatIfCond, ...]] = {
    r.column: _compile_what_if(r) for r in _ALL_FLAG_RULES if isinstance(r, FlagRule) and r.column in WHAT_IF_FACTORS
}
_WHAT_IF_CODES: dict[str, CodeFlagRule] = {r.column: r for r in _ALL_FLAG_RULES if isinstance(r, CodeFlagRule)}


def _changes_for(column: str, x: Mapping[str, float | None], male: bool | None) -> list[tuple[str, float, float | int]]:
    """Minimal single-input changes that turn a currently-true factor off: [(input, current, target)]."""
    code_rule = _WHAT_IF_CODES.get(column)
    if code_rule is not None:
        return [(code_rule.input, x[code_rule.input], _grid(code_rule.what_if_target, 1.0))]
    changes: list[tuple[str, float, float | int]] = []
    female = male is False
    for inp, cmp, cut_m, cut_f, target_m, target_f in _WHAT_IF_CONDS[column]:
        v = x[inp]
        if v is None or not cmp(v, cut_f if female else cut_m):
            continue
        if inp == "bmi":  # modifiable through weight at the same height (BMI >= cut rules only)
            w = _weight_for_bmi_below(x["height_cm"], cut_f if female else cut_m)
            if w is None:
                return []
            changes.append(("weight_kg", x["weight_kg"], w))
            continue
        target = target_f if female else target_m
        if target is None:
            return []
        changes.append((inp, v, target))
    return changes


_MODEL_INPUT_CACHE: dict[str, frozenset[str]] = {}
_DERIVED_MODEL_INPUTS = {"current_smoker": "smoking", "diabetes": "fasting_glucose", "bmi": "weight_kg"}


def _model_inputs(model_key: str) -> frozenset[str]:
    """Measured inputs that can move a CVD model (directly or through a flag / BMI)."""
    got = _MODEL_INPUT_CACHE.get(model_key)
    if got is None:
        names = set(CVD_MODELS[model_key].inputs)
        got = frozenset(names | {_DERIVED_MODEL_INPUTS[n] for n in names if n in _DERIVED_MODEL_INPUTS})
        _MODEL_INPUT_CACHE[model_key] = got
    return got


def _what_if(x: dict[str, float | None], male: bool | None, sex: int | None, age: float | None,
             d: Mapping[str, Any], model_key: str) -> list[dict[str, Any]]:
    """For each true factor, the nearest values that switch it off and what that does to the group."""
    out: list[dict[str, Any]] = []
    true_factors = [c for c in WHAT_IF_FACTORS if d[c] is True]
    if not true_factors:
        return out
    before = d[RISK_GROUP_RULE.column]
    model_inputs = _model_inputs(model_key)
    model = CVD_MODELS[model_key]
    state = {c: d[c] for c in WHAT_IF_FACTORS}  # all a scenario needs for MetS + group; copied per scenario
    for column in true_factors:
        changes = _changes_for(column, x, male)
        if not changes:
            continue
        x2 = dict(x)
        after = dict(state)
        touched = False
        for inp, _cur, target in changes:
            x2[inp] = float(target)
            if inp == "weight_kg":
                x2["bmi"] = bmi(x2["height_cm"], x2["weight_kg"])
            for col, fn in _DEPENDENTS.get(inp, ()):
                after[col] = fn(x2, male)
            touched = touched or inp in model_inputs
        after[METS_RULE.column] = _at_least([after[c] for c in METS_RULE.components], METS_RULE.min_true)[0]
        after[RISK_GROUP_RULE.column], after[RISK_GROUP_RULE.count_column] = _risk_group(after)
        cvd_after = _cvd(model, x2, after, sex, age)[0] if touched else d["cvd_10y"]
        inp, cur, target = changes[0]
        out.append(
            {
                "input": inp,
                "current": _pretty(cur),
                "target": target,
                "also": [{"input": i, "current": _pretty(c), "target": t} for i, c, t in changes[1:]] if len(changes) > 1 else [],
                "factor": _FACTOR_NAME[column],
                "factor_after": after[column],
                "risk_group_after": after[RISK_GROUP_RULE.column],
                "changes_group": after[RISK_GROUP_RULE.column] != before,
                "metabolic_syndrome_after": after[METS_RULE.column],
                "cvd_10y_after": cvd_after,
            }
        )
    return out


# --- explanations ----------------------------------------------------------------------------------
def _short(key: str) -> str:
    return GUIDELINES[key].short


def _texts(t: Any) -> tuple[str, str, str]:
    """Threshold text for a man, a woman, and sex unknown (precomputed: explanations are hot)."""
    return t.text(True), t.text(False), t.text(None)


def _unit(inp: str) -> str:
    return f" {INPUTS[inp].unit}" if INPUTS[inp].unit else ""


# column -> (label, guideline short, per condition: input, compare, cuts, labels, op texts, threshold texts)
_FLAG_TEXT = {
    r.column: (
        r.label,
        _short(r.guideline),
        tuple(
            (c.input, _OPS[c.op], c.threshold.male, c.threshold.female, c.threshold.sex_specific,
             INPUTS[c.input].label, _unit(c.input), c.op.value, _NEGATED[c.op], _texts(c.threshold))
            for c in r.conditions
        ),
    )
    for r in (*FLAG_RULES, *EXTRA_FLAG_RULES)
    if isinstance(r, FlagRule)
}


def _band_ranges(rule: BandRule) -> dict[str, tuple[str, str, str]]:
    """Label -> the band's range text for a man, a woman, sex unknown."""
    out = {}
    for i, label in enumerate(rule.labels):
        texts = []
        for si in range(3):
            lo = f"≥ {_texts(rule.cuts[i - 1])[si]}" if i > 0 else ""
            hi = f"< {_texts(rule.cuts[i])[si]}" if i < len(rule.cuts) else ""
            texts.append(" and ".join(p for p in (lo, hi) if p))
        out[label] = (texts[0], texts[1], texts[2])
    return out


_BAND_TEXT = {
    r.column: (r.label, _short(r.guideline), INPUTS[r.input].label, _unit(r.input), _band_ranges(r))
    for r in BAND_RULES
}


# The commonest explanation (no lipid panel): every input of the rule missing -> a fixed text.
_ALL_MISSING_TEXT = {
    column: f"{label}: unknown, {', '.join(c[5] for c in conds)} not available ({short})"
    for column, (label, short, conds) in _FLAG_TEXT.items()
}


def _explain_flag(column: str, value: bool | None, x: Mapping[str, float | None], male: bool | None) -> str:
    label, short, conds = _FLAG_TEXT[column]
    if value is None and all(x[c[0]] is None for c in conds):
        return _ALL_MISSING_TEXT[column]
    si = 2 if male is None else (0 if male else 1)
    parts: list[str] = []
    missing: list[str] = []
    for inp, cmp, tm, tf, sex_specific, in_label, unit, op, neg, texts in conds:
        v = x[inp]
        if v is None:
            missing.append(in_label)
            continue
        if sex_specific and male is None:
            missing.append("sex")
            continue
        hit = cmp(v, tf if male is False else tm)
        if value is True and not hit:
            continue
        parts.append(f"{in_label} {v:g} {op if hit else neg} {texts[si]}{unit}")
    if value is True:
        return f"{label}: {' and '.join(parts)} ({short})"
    known = f"; {', '.join(parts)}" if parts else ""
    return f"{label}: unknown, {', '.join(missing)} not available{known} ({short})"


_BAND_UNKNOWN_TEXT = {
    (column, value_missing): f"{label}: unknown, {in_label if value_missing else 'sex'} not available ({short})"
    for column, (label, short, in_label, _unit_text, _ranges) in _BAND_TEXT.items()
    for value_missing in (True, False)
}


def _explain_band(rule: BandRule, category: str | None, x: Mapping[str, float | None], male: bool | None) -> str:
    label, short, in_label, unit, ranges = _BAND_TEXT[rule.column]
    v = x[rule.input]
    if category is None:
        return _BAND_UNKNOWN_TEXT[(rule.column, v is None)]
    rng = ranges[category][2 if male is None else (0 if male else 1)]
    return f"{label}: {category} ({in_label} {v:g}{unit}, {rng}) ({short})"


# (column, guideline key, is code rule, rule, inputs read, text when every input is missing)
_EXPLAIN_FLAGS = [
    (
        r.column,
        r.guideline,
        isinstance(r, CodeFlagRule),
        r,
        (r.input,) if isinstance(r, CodeFlagRule) else tuple(c.input for c in r.conditions),
        (f"{r.label}: unknown, smoking status not available ({_short(r.guideline)})" if isinstance(r, CodeFlagRule)
         else _ALL_MISSING_TEXT[r.column]),
    )
    for r in (*FLAG_RULES, *EXTRA_FLAG_RULES)
]
_EXPLAIN_BANDS = [(r.column, r.guideline, frozenset(r.reference), r, r.input) for r in BAND_RULES]


def _explanations(x: Mapping[str, float | None], male: bool | None, d: Mapping[str, Any],
                  n_mets: tuple[int, int], cvd_reason: str | None, model_key: str) -> list[dict[str, str]]:
    """One entry per true or unknown flag, per non-reference or unknown category, plus group and CVD."""
    out: list[dict[str, str]] = []
    append = out.append
    for column, guideline, is_code, rule, inputs, missing_text in _EXPLAIN_FLAGS:
        value = d[column]
        if value is False:
            continue
        if value is None:
            for inp in inputs:
                if x[inp] is not None:
                    break
            else:  # the common case (no lipid panel): fixed text, no formatting
                append({"key": column, "text": missing_text, "guideline": guideline})
                continue
        if is_code:
            text = f"{rule.label}: smoking status current (code {x[rule.input]:g}) ({_short(guideline)})"
        else:
            text = _explain_flag(column, value, x, male)
        append({"key": column, "text": text, "guideline": guideline})
    rg = RISK_GROUP_RULE
    append({"key": rg.column, "guideline": rg.guideline,
            "text": f"Risk group: {d[rg.column]} ({d[rg.count_column]} known risk factors; {_short(rg.guideline)})"})
    bp = d[BP_RULE.column]
    if bp not in BP_RULE.reference:
        text = (f"Blood pressure: {bp} (SBP {x['sbp']:g} / DBP {x['dbp']:g} mmHg)" if bp is not None
                else "Blood pressure: unknown, SBP or DBP not available")
        append({"key": BP_RULE.column, "text": f"{text} ({_short(BP_RULE.guideline)})", "guideline": BP_RULE.guideline})
    for column, guideline, reference, rule, inp in _EXPLAIN_BANDS:
        label = d[column]
        if label in reference:
            continue
        if label is None:
            text = _BAND_UNKNOWN_TEXT[(column, x[inp] is None)]
        else:
            text = _explain_band(rule, label, x, male)
        append({"key": column, "text": text, "guideline": guideline})
    verdict = d[METS_RULE.column]
    if verdict is not False:
        n_true, n_unknown = n_mets
        state = "present" if verdict else "unknown"
        append({"key": METS_RULE.column, "guideline": METS_RULE.guideline,
                "text": f"{METS_RULE.label}: {state}, {n_true} of {len(METS_RULE.components)} components true, "
                        f"{n_unknown} not available, {METS_RULE.min_true} needed ({_short(METS_RULE.guideline)})"})
    model = CVD_MODELS[model_key]
    cvd = d["cvd_10y"]
    text = f"10-year CVD risk {cvd:.1f}% ({model.label})" if cvd is not None else f"10-year CVD risk not computed: {cvd_reason}"
    append({"key": "cvd_10y", "text": f"{text} ({_short(model.guideline)})", "guideline": model.guideline})
    return out


# --- public ----------------------------------------------------------------------------------------
def evaluate_person(person: Mapping[str, Any], cvd_model: str | None = None) -> dict[str, Any]:
    """Full simulate result for one person (see module docs and contract.md)."""
    model_key = cvd_model or DEFAULT_CVD_MODEL
    x, sex, age_info = _inputs(person)
    male = None if sex is None else sex == 1
    age = age_info["years"]
    x["egfr"] = egfr(x["creatinine"], male, age)

    d = _core(x, male)
    d[BP_RULE.column] = _bp(x)
    cut_index = 1 if male is False else 0
    for column, inp, labels, cuts, sex_specific in _BAND_SPECS:  # _band, inlined (hot loop)
        v = x[inp]
        d[column] = None if v is None or (male is None and sex_specific) else labels[bisect_right(cuts[cut_index], v)]
    _, n_true, n_unknown = _at_least([d[c] for c in METS_RULE.components], METS_RULE.min_true)
    d["bmi"] = x["bmi"]
    d["egfr"] = x["egfr"]
    model = CVD_MODELS[model_key]
    cvd, reason = _cvd(model, x, d, sex, age)
    d["cvd_10y"] = cvd
    derived = {c: d[c] for c in DERIVED_COLUMNS}
    return {
        "bmi": derived["bmi"],
        "flags": {FLAG_KEYS[c]: derived[c] for c in FLAG_KEYS},
        "risk_factor_count": derived[RISK_GROUP_RULE.count_column],
        "risk_group": derived[RISK_GROUP_RULE.column],
        "categories": {k: derived[c] for c, k in CATEGORY_KEYS.items()},
        "metabolic_syndrome": {k: derived[c] for c, k in METS_KEYS.items()},
        "cvd_10y": {"percent": cvd, "model": model.key, "caveat": model.caveat, "reason": reason},
        "what_if": _what_if(x, male, sex, age, d, model_key),
        "explanations": _explanations(x, male, d, (n_true, n_unknown), reason, model_key),
        "age": age_info,
        "rule_version": RULE_VERSION,
        "disclaimer": DISCLAIMER,
        "derived": derived,
    }
