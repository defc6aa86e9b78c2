"""What-if: for each true factor, the nearest modifiable values that switch it off, and what that
does to the metabolic syndrome, both risk categories and the 10-year CVD risk.

Targets come from the rule thresholds themselves (precomputed once at import) on each input's
grid (``InputSpec.step``). A scenario re-evaluates only the rules that read a changed input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .equations import CVD_MODELS, bmi_exact
from .scalar import (
    DEPENDENTS,
    FLAG_FNS,
    OPS,
    Evaluation,
    Inputs,
    at_least,
    atp3_category,
    cvd_inputs,
    screening_group,
)
from .table import (
    ALL_FLAG_RULES,
    ATP3_RULE,
    FLAG_RULES,
    INPUTS,
    METS_RULE,
    SCREENING_GROUP_RULE,
    CodeFlagRule,
    FlagRule,
    Op,
)

WHAT_IF_FACTORS: tuple[str, ...] = (*(r.column for r in FLAG_RULES), *METS_RULE.components)
FACTOR_NAME = {c: c.removeprefix("flag_") for c in WHAT_IF_FACTORS}
BP_INPUTS = frozenset({"sbp", "dbp"})
TREATED_NOTE = (
    "If the lower blood pressure is reached with antihypertensive drugs, the model counts the person "
    "as treated and uses its treated-SBP coefficient: cvd_10y_after_if_treated is that risk."
)


class Change(NamedTuple):
    """One input moved to a target."""

    input: str
    current: float
    target: float | int


class WhatIfCondition(NamedTuple):
    """One condition of a factor's rule with its precomputed targets (None = not modifiable)."""

    input: str
    compare: Callable[[float, float], bool]
    male: float
    female: float
    male_target: float | int | None
    female_target: float | int | None


def grid(v: float, step: float) -> float | int:
    """A target on the input's resolution grid, as int when the grid is whole numbers."""
    return int(round(v)) if step >= 1 else round(v, 1)


def pretty(v: float | None) -> float | int | None:
    return int(v) if v is not None and v.is_integer() else v


def target_for(op: Op, threshold: float, step: float) -> float | int:
    """Nearest value on the grid for which ``value OP threshold`` no longer holds."""
    if op is Op.GE:
        return grid(threshold - step, step)
    if op is Op.GT or op is Op.LT:
        return grid(threshold, step)
    return grid(threshold + step, step)


def weight_for_bmi_below(height_cm: float | None, limit: float) -> float | None:
    """Heaviest weight (0.1 kg grid) whose unrounded BMI is < limit at this height."""
    if height_cm is None or height_cm <= 0:
        return None
    h = height_cm / 100.0
    start = limit * h * h * 10.0
    if not math.isfinite(start):
        return None
    w = math.floor(start) / 10.0
    for _ in range(5):  # floor already lands within a float rounding of the answer
        if w <= 0:
            return None
        b = bmi_exact(height_cm, w)
        if b is not None and b < limit:
            return w
        w = round(w - 0.1, 1)
    return None


def _compile(rule: FlagRule) -> tuple[WhatIfCondition, ...]:
    out = []
    for c in rule.conditions:
        spec = INPUTS[c.input]
        if spec.modifiable:
            tm, tf = target_for(c.op, c.threshold.male, spec.step), target_for(c.op, c.threshold.female, spec.step)
        else:  # the BMI is reached through weight: its target depends on height, solved per person
            tm = tf = None
        out.append(WhatIfCondition(c.input, OPS[c.op], c.threshold.male, c.threshold.female, tm, tf))
    return tuple(out)


_CONDITIONS: dict[str, tuple[WhatIfCondition, ...]] = {
    r.column: _compile(r) for r in ALL_FLAG_RULES if isinstance(r, FlagRule) and r.column in WHAT_IF_FACTORS
}
_CODE_RULES: dict[str, CodeFlagRule] = {r.column: r for r in ALL_FLAG_RULES if isinstance(r, CodeFlagRule)}


def changes_for(column: str, x: Inputs, male: bool | None) -> list[Change]:
    """Minimal changes that turn a currently-true factor off (empty if one is not modifiable)."""
    code_rule = _CODE_RULES.get(column)
    if code_rule is not None:
        return [Change(code_rule.input, x[code_rule.input], grid(code_rule.what_if_target, 1.0))]
    changes: list[Change] = []
    female = male is False
    for inp, cmp, cut_m, cut_f, target_m, target_f in _CONDITIONS[column]:
        v = x[inp]
        if v is None or not cmp(v, cut_f if female else cut_m):
            continue
        if inp == "bmi_exact":  # modifiable through weight at the same height (BMI >= cut rules only)
            w = weight_for_bmi_below(x["height_cm"], cut_f if female else cut_m)
            if w is None:
                return []
            changes.append(Change("weight_kg", x["weight_kg"], w))
            continue
        target = target_f if female else target_m
        if target is None:
            return []
        changes.append(Change(inp, v, target))
    return changes


_MODEL_INPUT_SOURCES = {"current_smoker": "smoking", "diabetes": "fasting_glucose"}


def model_inputs(model_key: str) -> frozenset[str]:
    """Measured inputs that can move a CVD model (directly or through a flag)."""
    names = set(CVD_MODELS[model_key].inputs)
    return frozenset(names | {_MODEL_INPUT_SOURCES[n] for n in names if n in _MODEL_INPUT_SOURCES})


def _entry(column: str, changes: list[Change], after: Mapping[str, Any], d: Mapping[str, Any],
           cvd_after: float | None, cvd_treated: float | None, bp_changed: bool) -> dict[str, Any]:
    first = changes[0]
    group_after = after[SCREENING_GROUP_RULE.column]
    atp3_after = after[ATP3_RULE.column]
    return {
        "input": first.input,
        "current": pretty(first.current),
        "target": first.target,
        "also": [{"input": c.input, "current": pretty(c.current), "target": c.target} for c in changes[1:]],
        "factor": FACTOR_NAME[column],
        "factor_after": after[column],
        "screening_risk_group_after": group_after,
        "risk_group_after": group_after,  # deprecated alias of screening_risk_group_after
        "changes_group": group_after != d[SCREENING_GROUP_RULE.column],
        "atp3_risk_category_after": atp3_after,
        "changes_atp3_category": atp3_after != d[ATP3_RULE.column],
        "metabolic_syndrome_after": after[METS_RULE.column],
        "cvd_10y_after": cvd_after,
        "cvd_10y_after_if_treated": cvd_treated,
        "note": TREATED_NOTE if bp_changed else None,
    }


def what_if(ev: Evaluation) -> list[dict[str, Any]]:
    """For each true factor: the nearest values that switch it off and what changes with it."""
    d = ev.derived
    true_factors = [c for c in WHAT_IF_FACTORS if d[c] is True]
    if not true_factors:
        return []
    x, male, age = ev.x, ev.male, ev.age
    model = CVD_MODELS[ev.model_key]
    moves_model = model_inputs(ev.model_key)
    state = {c: d[c] for c in FLAG_FNS}  # everything a scenario's groups need; copied per scenario
    out: list[dict[str, Any]] = []
    for column in true_factors:
        changes = changes_for(column, x, male)
        if not changes:
            continue
        x2 = dict(x)
        after = dict(state)
        for inp, _current, target in changes:
            x2[inp] = float(target)
            if inp == "weight_kg":
                x2["bmi_exact"] = bmi_exact(x2["height_cm"], x2["weight_kg"])
            for col, fn in DEPENDENTS.get(inp, ()):
                after[col] = fn(x2, male)
        after[METS_RULE.column] = at_least([after[c] for c in METS_RULE.components], METS_RULE.min_true).verdict
        after[SCREENING_GROUP_RULE.column] = screening_group(after)[0]
        after[ATP3_RULE.column] = atp3_category(after, x2, age, male)[0]
        touched = any(c.input in moves_model for c in changes)
        bp_changed = any(c.input in BP_INPUTS for c in changes)
        cvd_after = d["cvd_10y"]
        cvd_treated = None
        if touched or bp_changed:
            inputs = cvd_inputs(x2, after, ev.sex, age.years)
            cvd_after = model.risk_one(inputs)[0] if touched else cvd_after
            if bp_changed:
                inputs["bp_treated"] = 1.0
                cvd_treated = model.risk_one(inputs)[0]
        out.append(_entry(column, changes, after, d, cvd_after, cvd_treated, bp_changed))
    return out
