"""Explanations: one sentence per true or unknown finding, each naming its guideline.

One entry ``{key, text, guideline}`` per true or unknown flag / boolean category, per
non-reference or unknown category, plus the two risk categories, the metabolic syndrome verdict
(when not false) and the CVD risk (value or reason). Texts are precomputed per rule where they do
not depend on the person (the commonest case, no lipid panel, costs no formatting).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .equations import CVD_MODELS
from .guidelines import GUIDELINES
from .scalar import OPS, Evaluation, Inputs, atp3_factors
from .table import (
    ALL_FLAG_RULES,
    ATP3_RULE,
    BAND_RULES,
    BP_RULE,
    INPUTS,
    ISOLATED_SYSTOLIC_RULE,
    METS_RULE,
    SCREENING_GROUP_RULE,
    BandRule,
    CodeFlagRule,
    Op,
    Threshold,
)

_NEGATED = {Op.GE: "<", Op.GT: "≤", Op.LT: "≥", Op.LE: ">"}


def _short(key: str) -> str:
    return GUIDELINES[key].short


def _texts(t: Threshold) -> tuple[str, str, str]:
    """Threshold text for a man, a woman, and sex unknown."""
    return t.text(True), t.text(False), t.text(None)


def _unit(inp: str) -> str:
    return f" {INPUTS[inp].unit}" if INPUTS[inp].unit else ""


def _value(inp: str, v: float) -> str:
    return format(v, INPUTS[inp].fmt)


class ConditionText(NamedTuple):
    input: str
    compare: Any
    male: float
    female: float
    sex_specific: bool
    label: str
    unit: str
    op: str
    negated: str
    thresholds: tuple[str, str, str]


class RuleText(NamedTuple):
    label: str
    short: str
    conditions: tuple[ConditionText, ...]
    all_missing: str  # the text when every input is missing


def _rule_text(rule: Any) -> RuleText:
    conds = tuple(
        ConditionText(c.input, OPS[c.op], c.threshold.male, c.threshold.female, c.threshold.sex_specific,
                      INPUTS[c.input].label, _unit(c.input), c.op.value, _NEGATED[c.op], _texts(c.threshold))
        for c in rule.conditions
    )
    short = _short(rule.guideline)
    missing = f"{rule.label}: unknown, {', '.join(dict.fromkeys(c.label for c in conds))} not available ({short})"
    return RuleText(rule.label, short, conds, missing)


_FLAG_TEXT: dict[str, RuleText] = {
    r.column: _rule_text(r) for r in (*ALL_FLAG_RULES, ISOLATED_SYSTOLIC_RULE) if not isinstance(r, CodeFlagRule)
}


def _si(male: bool | None) -> int:
    return 2 if male is None else (0 if male else 1)


def explain_flag(column: str, value: bool | None, x: Inputs, male: bool | None, all_of: bool = False) -> str:
    """Why a flag is true (the conditions that hold) or unknown (what is missing)."""
    label, short, conds, all_missing = _FLAG_TEXT[column]
    if value is None and all(x[c.input] is None for c in conds):
        return all_missing
    si = _si(male)
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
        if value is True and not hit and not all_of:
            continue
        parts.append(f"{in_label} {_value(inp, v)} {op if hit else neg} {texts[si]}{unit}")
    if value is True:
        return f"{label}: {' and '.join(parts)} ({short})"
    known = f"; {', '.join(parts)}" if parts else ""
    return f"{label}: unknown, {', '.join(dict.fromkeys(missing))} not available{known} ({short})"


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


class BandText(NamedTuple):
    rule: BandRule
    short: str
    input_label: str
    unit: str
    ranges: dict[str, tuple[str, str, str]]
    reference: frozenset[str]
    unknown_value: str  # text when the value is missing
    unknown_sex: str  # text when sex is missing (sex-specific bands)


_BANDS = tuple(
    BandText(r, _short(r.guideline), INPUTS[r.input].label, _unit(r.input), _band_ranges(r), frozenset(r.reference),
             f"{r.label}: unknown, {INPUTS[r.input].label} not available ({_short(r.guideline)})",
             f"{r.label}: unknown, sex not available ({_short(r.guideline)})")
    for r in BAND_RULES
)


def explain_band(b: BandText, category: str, x: Inputs, male: bool | None) -> str:
    rule = b.rule
    v = x[rule.input]
    return (f"{rule.label}: {category} ({b.input_label} {_value(rule.input, v)}{b.unit}, "
            f"{b.ranges[category][_si(male)]}) ({b.short})")


_ATP3_FACTOR_LABELS = ("current smoking", "BP ≥ 140/90", "HDL < 40")
_AGE_LABEL = (f"age ≥ {ATP3_RULE.age.male:g} (men)", f"age ≥ {ATP3_RULE.age.female:g} (women)")


def explain_atp3(d: Mapping[str, Any], x: Inputs, ev: Evaluation) -> str:
    a = ATP3_RULE
    factors, negative = atp3_factors(d, x, ev.age, ev.male)
    labels = (*_ATP3_FACTOR_LABELS, _AGE_LABEL[0] if ev.male is not False else _AGE_LABEL[1])
    present = [lab for lab, v in zip(labels, factors, strict=True) if v is True]
    unknown = [lab for lab, v in zip(labels, factors, strict=True) if v is None]
    if negative is None:
        unknown.append("HDL ≥ 60")
    parts = [f"major risk factors: {', '.join(present) or 'none'}"]
    if negative:
        parts.append("HDL ≥ 60 subtracts one")
    if unknown:
        parts.append(f"unknown: {', '.join(dict.fromkeys(unknown))}")
    diabetes = d[a.chd_equivalent]
    if diabetes is True:
        parts = ["suspected diabetes is a CHD risk equivalent"]
    elif diabetes is None:
        parts.append("diabetes status unknown")
    parts.append("family history not in the data")
    return f"ATP III risk category: {d[a.column]} ({'; '.join(parts)}) ({_short(a.guideline)})"


def explanations(ev: Evaluation) -> list[dict[str, str]]:
    """The explanation entries for one evaluated person (see the module docstring)."""
    x, male, d = ev.x, ev.male, ev.derived
    out: list[dict[str, str]] = []
    append = out.append
    for rule in ALL_FLAG_RULES:
        value = d[rule.column]
        if value is False:
            continue
        if isinstance(rule, CodeFlagRule):
            text = (f"{rule.label}: smoking status current (code {x[rule.input]:g}) ({_short(rule.guideline)})"
                    if value else f"{rule.label}: unknown, smoking status not available ({_short(rule.guideline)})")
        else:
            text = explain_flag(rule.column, value, x, male)
        append({"key": rule.column, "text": text, "guideline": rule.guideline})
    g = SCREENING_GROUP_RULE
    append({"key": g.column, "guideline": g.guideline,
            "text": f"Screening risk group: {d[g.column]} ({d[g.count_column]} known screening flags; "
                    f"{_short(g.guideline)})"})
    append({"key": ATP3_RULE.column, "guideline": ATP3_RULE.guideline, "text": explain_atp3(d, x, ev)})
    bp = d[BP_RULE.column]
    if bp not in BP_RULE.reference:
        text = (f"Blood pressure: {bp} (SBP {x['sbp']:g} / DBP {x['dbp']:g} mmHg)" if bp is not None
                else "Blood pressure: unknown, SBP or DBP not available")
        append({"key": BP_RULE.column, "text": f"{text} ({_short(BP_RULE.guideline)})", "guideline": BP_RULE.guideline})
    iso = d[ISOLATED_SYSTOLIC_RULE.column]
    if iso is not False:
        append({"key": ISOLATED_SYSTOLIC_RULE.column, "guideline": ISOLATED_SYSTOLIC_RULE.guideline,
                "text": explain_flag(ISOLATED_SYSTOLIC_RULE.column, iso, x, male, all_of=True)})
    for b in _BANDS:
        column = b.rule.column
        label = d[column]
        if label in b.reference:
            continue
        if label is not None:
            text = explain_band(b, label, x, male)
        elif column == "egfr_stage" and ev.egfr_reason is not None:
            text = f"{b.rule.label}: unknown, eGFR not computed: {ev.egfr_reason} ({b.short})"
        else:
            text = b.unknown_value if x[b.rule.input] is None else b.unknown_sex
        append({"key": column, "text": text, "guideline": b.rule.guideline})
    verdict = d[METS_RULE.column]
    if verdict is not False:
        state = "present" if verdict else "unknown"
        append({"key": METS_RULE.column, "guideline": METS_RULE.guideline,
                "text": f"{METS_RULE.label}: {state}, {ev.mets.n_true} of {len(METS_RULE.components)} components "
                        f"true, {ev.mets.n_unknown} not available, {METS_RULE.min_true} needed "
                        f"({_short(METS_RULE.guideline)})"})
    model = CVD_MODELS[ev.model_key]
    cvd = d["cvd_10y"]
    text = (f"10-year CVD risk {cvd:.1f}% ({model.label})" if cvd is not None
            else f"10-year CVD risk not computed: {ev.cvd_reason}")
    append({"key": "cvd_10y", "text": f"{text} ({_short(model.guideline)})", "guideline": model.guideline})
    return out
