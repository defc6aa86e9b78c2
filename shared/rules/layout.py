"""The one response layout of derived values, shared by /simulate, /simulate/batch and the records.

Sections, in order (``headline`` is what a record list shows; ``details`` the rest):

* ``bmi``, ``flags`` {7 screening flags}, ``risk_factor_count``, ``screening_risk_group`` (and its
  deprecated alias ``risk_group``), ``atp3_risk_category``, ``atp3_risk_factor_count``;
* ``categories`` {blood_pressure, isolated_systolic, glucose, bmi_class, abdominal_obesity,
  total_cholesterol, ldl, triglycerides, hdl, dyslipidaemia, anemia, anemia_severity, egfr,
  egfr_stage, egfr_reason, proteinuria, liver_enzymes_high, ggt_high};
* ``metabolic_syndrome`` {waist, triglycerides, hdl, blood_pressure, glucose, verdict};
* ``cvd_10y`` {percent, model, caveat, reason}.

A person's response adds ``what_if`` / ``explanations`` when asked for (``include``), ``age``,
``rule_version`` and ``disclaimer``. Every derived column appears in exactly one place (checked at
import).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .equations import CVD_MODELS, DEFAULT_CVD_MODEL, EGFR_MIN_AGE, band_midpoint, egfr_reason
from .explain import explanations
from .guidelines import DISCLAIMER
from .scalar import AgeInfo, Evaluation, age_label, evaluate_scalar, read_age, sex_code
from .table import ATP3_RULE, DERIVED_COLUMNS, FLAG_RULES, METS_RULE, RULE_VERSION, SCREENING_GROUP_RULE
from .whatif import what_if

INCLUDES: tuple[str, ...] = ("what_if", "explanations")
"""Optional parts of a person's response, in the order they appear."""

FLAG_KEYS: dict[str, str] = {r.column: r.column.removeprefix("flag_") for r in FLAG_RULES}
CATEGORY_KEYS: dict[str, str] = {
    "bp_category": "blood_pressure",
    "isolated_systolic": "isolated_systolic",
    "glucose_category": "glucose",
    "bmi_class": "bmi_class",
    "abdominal_obesity": "abdominal_obesity",
    "tc_class": "total_cholesterol",
    "ldl_class": "ldl",
    "tg_class": "triglycerides",
    "hdl_class": "hdl",
    "dyslipidaemia": "dyslipidaemia",
    "anemia": "anemia",
    "anemia_severity": "anemia_severity",
    "egfr": "egfr",
    "egfr_stage": "egfr_stage",
    "proteinuria": "proteinuria",
    "liver_enzymes_high": "liver_enzymes_high",
    "ggt_high": "ggt_high",
}
METS_KEYS: dict[str, str] = {
    "mets_waist": "waist",
    "mets_triglycerides": "triglycerides",
    "mets_hdl": "hdl",
    "mets_bp": "blood_pressure",
    "mets_glucose": "glucose",
    METS_RULE.column: "verdict",
}
_G, _COUNT = SCREENING_GROUP_RULE.column, SCREENING_GROUP_RULE.count_column
_A, _A_COUNT = ATP3_RULE.column, ATP3_RULE.count_column
HEADLINE_COLUMNS: tuple[str, ...] = ("bmi", *FLAG_KEYS, _COUNT, _G, _A, _A_COUNT)
"""The derived columns the headline (a record list row) reads."""

_placed = [*HEADLINE_COLUMNS, *CATEGORY_KEYS, *METS_KEYS, "cvd_10y"]
if sorted(_placed) != sorted(DERIVED_COLUMNS):
    raise ValueError(f"layout and DERIVED_COLUMNS disagree: {sorted(set(_placed) ^ set(DERIVED_COLUMNS))}")
_FLAG_ITEMS = tuple(FLAG_KEYS.items())
_CATEGORY_ITEMS = tuple(CATEGORY_KEYS.items())
_METS_ITEMS = tuple(METS_KEYS.items())


def headline(d: Mapping[str, Any]) -> dict[str, Any]:
    """BMI, the screening flags and both risk categories (plain values, None for unknown)."""
    group = d[_G]
    return {
        "bmi": d["bmi"],
        "flags": {k: d[c] for c, k in _FLAG_ITEMS},
        "risk_factor_count": d[_COUNT],
        "screening_risk_group": group,
        "risk_group": group,  # deprecated alias of screening_risk_group (CHANGELOG.md)
        "atp3_risk_category": d[_A],
        "atp3_risk_factor_count": d[_A_COUNT],
    }


def details(d: Mapping[str, Any], cvd_reason: str | None, egfr_why: str | None,
            model_key: str = DEFAULT_CVD_MODEL) -> dict[str, Any]:
    """Categories, metabolic syndrome and the CVD risk, with the reasons for what was not computed."""
    categories = {k: d[c] for c, k in _CATEGORY_ITEMS}
    categories["egfr_reason"] = egfr_why
    model = CVD_MODELS[model_key]
    return {
        "categories": categories,
        "metabolic_syndrome": {k: d[c] for c, k in _METS_ITEMS},
        "cvd_10y": {"percent": d["cvd_10y"], "model": model.key, "caveat": model.caveat, "reason": cvd_reason},
    }


def _whole(v: float | None) -> float | int | None:
    return int(v) if v is not None and float(v).is_integer() else v


def assemble(d: Mapping[str, Any], cvd_reason: str | None, egfr_why: str | None, model_key: str,
             age: AgeInfo, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A person's response from derived values (scalar or numpy core): headline, details, the
    optional parts in ``extra``, then age, rule version and disclaimer."""
    out = headline(d)
    out.update(details(d, cvd_reason, egfr_why, model_key))
    if extra:
        out.update(extra)
    out["age"] = {"years": age.years, "source": age.source, "age_group": _whole(age.age_group)}
    out["rule_version"] = RULE_VERSION
    out["disclaimer"] = DISCLAIMER
    return out


def person_response(ev: Evaluation, include: Collection[str] = ()) -> dict[str, Any]:
    """One person's simulate answer (without ``input`` and ``peer``, which the API adds)."""
    extra = {}
    if "what_if" in include:
        extra["what_if"] = what_if(ev)
    if "explanations" in include:
        extra["explanations"] = explanations(ev)
    return assemble(ev.derived, ev.cvd_reason, ev.egfr_reason, ev.model_key, ev.age, extra)


def evaluate_person(person: Mapping[str, Any], cvd_model: str | None = None,
                    include: Collection[str] = INCLUDES) -> dict[str, Any]:
    """Full result for one person: the response layout plus ``derived`` (column -> value, in
    DERIVED_COLUMNS order, the form the property tests compare with the numpy core)."""
    ev = evaluate_scalar(person, cvd_model)
    out = person_response(ev, include)
    out["derived"] = ev.derived
    return out


def stored_reasons(row: Mapping[str, Any], model_key: str = DEFAULT_CVD_MODEL) -> tuple[str | None, str | None]:
    """(cvd reason, eGFR reason) for a stored record whose value is null, from its stored inputs.

    Stored rows have only the age band, so the reasons read the band (as the ETL did)."""
    cvd_why = egfr_why = None
    sex = sex_code(row.get("sex"))
    group = row.get("age_group")
    if row.get("cvd_10y") is None:
        smoker, diabetes = row.get("flag_smoking"), row.get("flag_diabetes")
        x = {k: row.get(k) for k in ("total_cholesterol", "hdl", "sbp")}
        x.update(sex=sex, age=band_midpoint(group),
                 current_smoker=None if smoker is None else float(smoker),
                 diabetes=None if diabetes is None else float(diabetes))
        cvd_why = CVD_MODELS[model_key].risk_one(x)[1] or f"not computed under rule version {row.get('rule_version')}"
    if row.get("egfr") is None:
        age = read_age({"age_group": group})
        male = None if sex is None else sex == 1
        creatinine = row.get("creatinine")
        if age.first is not None and age.first >= EGFR_MIN_AGE and male is not None and creatinine and creatinine > 0:
            egfr_why = f"not computed under rule version {row.get('rule_version')}"
        else:
            egfr_why = egfr_reason(creatinine, male, age.first, age_label(age))
    return cvd_why, egfr_why
