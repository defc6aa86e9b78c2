"""Every guideline threshold at its boundary and just below, through BOTH evaluation paths.

``derive`` runs one person through evaluate_person and a one-row frame through evaluate_frame,
asserts they agree, and returns the derived mapping, so each case also checks scalar == vector.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shared.rules import (
    CATEGORY_LEVELS,
    DERIVED_COLUMNS,
    DERIVED_KINDS,
    DISCLAIMER,
    GUIDELINES,
    RULE_INPUTS,
    RULE_VERSION,
    evaluate_frame,
    evaluate_person,
)
from shared.rules.scalar import BANDS, band
from shared.rules.table import BAND_RULES, INPUTS, NUMERIC_INPUTS, RAW_INPUTS
from shared.rules.vector import _Sex, band_vec

M, F, UNKNOWN_SEX = 1, 2, 0


def frame_row(out: pd.DataFrame, i: int = 0) -> dict:
    """One evaluate_frame row as plain Python (None for missing)."""
    row = {}
    for c in DERIVED_COLUMNS:
        v = out[c].iloc[i]
        row[c] = None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v
        if isinstance(row[c], np.generic):
            row[c] = row[c].item()
    return row


def same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def derive(sex: int = M, age_group: int = 11, **values: float | None) -> dict:
    person = {"sex": sex, "age_group": age_group, **values}
    scalar = evaluate_person(person)["derived"]
    row = {k: np.nan for k in NUMERIC_INPUTS}
    row.update({k: (np.nan if v is None else v) for k, v in values.items()})
    df = pd.DataFrame([row]).astype("float64")
    df["sex"] = np.int64(sex)
    df["age_group"] = np.int64(age_group)
    vector = frame_row(evaluate_frame(df))
    diff = {c: (scalar[c], vector[c]) for c in DERIVED_COLUMNS if not same(scalar[c], vector[c])}
    assert not diff, diff
    return scalar


# --- flags ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sbp", "dbp", "expected"),
    [
        (140, 80, True),  # KSH 2018: SBP >= 140
        (139, 80, False),
        (139.9, 89.9, False),
        (120, 90, True),  # DBP >= 90
        (120, 89, False),
        (150, None, True),  # one known crossing is enough
        (None, 95, True),
        (130, None, None),  # known below, other unknown -> unknown, never false
        (None, None, None),
    ],
)
def test_hypertension_tri_state(sbp, dbp, expected):
    assert derive(sbp=sbp, dbp=dbp)["flag_hypertension"] is expected


@pytest.mark.parametrize(
    ("column", "inp", "at", "below", "at_value", "below_value"),
    [
        ("flag_diabetes", "fasting_glucose", 126, 125, True, False),
        ("flag_diabetes", "fasting_glucose", 126, 125.9, True, False),
        ("flag_high_total_cholesterol", "total_cholesterol", 240, 239, True, False),
        ("flag_high_triglycerides", "triglycerides", 200, 199, True, False),
        ("flag_low_hdl", "hdl", 40, 39, False, True),  # HDL < 40 is the risk factor
        ("mets_triglycerides", "triglycerides", 150, 149, True, False),
        ("mets_glucose", "fasting_glucose", 100, 99, True, False),
    ],
)
def test_single_threshold_flags(column, inp, at, below, at_value, below_value):
    for sex in (M, F):
        assert derive(sex=sex, **{inp: at})[column] is at_value
        assert derive(sex=sex, **{inp: below})[column] is below_value
        assert derive(sex=sex, **{inp: None})[column] is None


def test_bmi_rules_use_the_unrounded_bmi():
    # height 100 cm -> BMI = weight
    assert derive(height_cm=100, weight_kg=25)["flag_obesity"] is True
    assert derive(height_cm=100, weight_kg=24.99)["flag_obesity"] is False
    d = derive(height_cm=100, weight_kg=24.96)  # reported BMI 25.0, but 24.96 < 25: not obese
    assert d["bmi"] == 25.0 and d["flag_obesity"] is False and d["bmi_class"] == "pre_obese"
    d = derive(height_cm=155, weight_kg=60)  # 24.97 -> shown as 25.0, classified pre-obese
    assert d["bmi"] == 25.0 and d["flag_obesity"] is False and d["bmi_class"] == "pre_obese"
    assert derive(height_cm=100, weight_kg=24.94)["bmi"] == 24.9
    assert derive(height_cm=170, weight_kg=None)["flag_obesity"] is None
    assert derive(height_cm=None, weight_kg=70)["bmi"] is None
    assert derive(height_cm=170, weight_kg=65)["bmi"] == 22.5  # 65 / 1.7^2 = 22.49


@pytest.mark.parametrize(("code", "expected"), [(3, True), (2, False), (1, False), (None, None), (4, None)])
def test_smoking_flag(code, expected):
    assert derive(smoking=code)["flag_smoking"] is expected


@pytest.mark.parametrize(
    ("column", "inp", "male_at", "male_below", "female_at", "female_below", "true_at"),
    [
        ("abdominal_obesity", "waist_cm", 90, 89.9, 85, 84.9, True),  # KSSO 90/85
        ("mets_waist", "waist_cm", 90, 89.9, 85, 84.9, True),
        ("mets_hdl", "hdl", 40, 39, 50, 49, False),  # NCEP 2005: < 40 men, < 50 women
        ("anemia", "hemoglobin", 13, 12.9, 12, 11.9, False),  # WHO 2011: < 13 men, < 12 women
    ],
)
def test_sex_specific_flags(column, inp, male_at, male_below, female_at, female_below, true_at):
    assert derive(sex=M, **{inp: male_at})[column] is true_at
    assert derive(sex=M, **{inp: male_below})[column] is (not true_at)
    assert derive(sex=F, **{inp: female_at})[column] is true_at
    assert derive(sex=F, **{inp: female_below})[column] is (not true_at)
    assert derive(sex=UNKNOWN_SEX, **{inp: male_at})[column] is None  # sex-specific -> unknown
    assert derive(sex=M, **{inp: None})[column] is None


@pytest.mark.parametrize(
    ("ast", "alt", "expected"),
    [(40, 40, False), (41, 20, True), (20, 41, True), (40.5, None, True), (30, None, None), (None, None, None)],
)
def test_liver_enzymes(ast, alt, expected):
    assert derive(ast=ast, alt=alt)["liver_enzymes_high"] is expected


def test_ggt_by_sex():
    assert derive(sex=M, ggt=63)["ggt_high"] is False
    assert derive(sex=M, ggt=64)["ggt_high"] is True
    assert derive(sex=F, ggt=35)["ggt_high"] is False
    assert derive(sex=F, ggt=36)["ggt_high"] is True
    assert derive(sex=UNKNOWN_SEX, ggt=100)["ggt_high"] is None


def test_sex_independent_rules_still_work_without_sex():
    d = derive(sex=UNKNOWN_SEX, sbp=150, dbp=80, fasting_glucose=130)
    assert d["flag_hypertension"] is True and d["flag_diabetes"] is True
    assert d["egfr"] is None and d["cvd_10y"] is None


# --- categories ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sbp", "dbp", "expected"),
    [
        (119, 79, "normal"),
        (120, 79, "elevated"),
        (129, 79, "elevated"),
        (130, 79, "prehypertension"),
        (119, 80, "prehypertension"),  # the higher category wins
        (125, 85, "prehypertension"),
        (139, 89, "prehypertension"),
        (140, 79, "stage1"),  # isolated systolic is grade 1 here, with its own indicator
        (140, 89, "stage1"),
        (159, 70, "stage1"),
        (140, 90, "stage1"),
        (135, 92, "stage1"),
        (159, 99, "stage1"),
        (160, 70, "stage2"),  # the higher of SBP/DBP
        (120, 100, "stage2"),
        (170, 105, "stage2"),
        (None, 80, None),
        (120, None, None),
    ],
)
def test_bp_category(sbp, dbp, expected):
    assert derive(sbp=sbp, dbp=dbp)["bp_category"] == expected


@pytest.mark.parametrize(
    ("sbp", "dbp", "expected"),
    [
        (140, 89, True),  # KSH 2018: SBP >= 140 and DBP < 90
        (165, 70, True),  # any grade
        (139, 70, False),
        (140, 90, False),
        (150, None, None),  # DBP could be either side of 90
        (None, 85, None),
        (130, None, False),  # one known failing condition decides
        (None, 95, False),
        (None, None, None),
    ],
)
def test_isolated_systolic_tri_state(sbp, dbp, expected):
    assert derive(sbp=sbp, dbp=dbp)["isolated_systolic"] is expected


CATEGORY_CASES = [
    # (column, input, value, expected)  -- boundary and just below for each cut
    ("glucose_category", "fasting_glucose", 99, "normal"),
    ("glucose_category", "fasting_glucose", 100, "impaired"),
    ("glucose_category", "fasting_glucose", 125, "impaired"),
    ("glucose_category", "fasting_glucose", 126, "diabetes"),
    ("tc_class", "total_cholesterol", 199, "desirable"),
    ("tc_class", "total_cholesterol", 200, "borderline_high"),
    ("tc_class", "total_cholesterol", 239, "borderline_high"),
    ("tc_class", "total_cholesterol", 240, "high"),
    ("ldl_class", "ldl", 99, "optimal"),
    ("ldl_class", "ldl", 100, "near_optimal"),
    ("ldl_class", "ldl", 129, "near_optimal"),
    ("ldl_class", "ldl", 130, "borderline_high"),
    ("ldl_class", "ldl", 159, "borderline_high"),
    ("ldl_class", "ldl", 160, "high"),
    ("ldl_class", "ldl", 189, "high"),
    ("ldl_class", "ldl", 190, "very_high"),
    ("tg_class", "triglycerides", 149, "normal"),
    ("tg_class", "triglycerides", 150, "borderline_high"),
    ("tg_class", "triglycerides", 199, "borderline_high"),
    ("tg_class", "triglycerides", 200, "high"),
    ("tg_class", "triglycerides", 499, "high"),
    ("tg_class", "triglycerides", 500, "very_high"),
    ("hdl_class", "hdl", 39, "low"),
    ("hdl_class", "hdl", 40, "normal"),
    ("hdl_class", "hdl", 59, "normal"),
    ("hdl_class", "hdl", 60, "high"),
    ("proteinuria", "urine_protein", 1, "negative"),
    ("proteinuria", "urine_protein", 2, "trace"),
    ("proteinuria", "urine_protein", 3, "positive"),
    ("proteinuria", "urine_protein", 6, "positive"),
]


@pytest.mark.parametrize(("column", "inp", "value", "expected"), CATEGORY_CASES)
def test_band_categories(column, inp, value, expected):
    assert derive(**{inp: value})[column] == expected
    assert derive(**{inp: None})[column] is None


@pytest.mark.parametrize(
    ("weight", "expected"),
    [
        (18.4, "underweight"),
        (18.5, "normal"),
        (22.9, "normal"),
        (23, "pre_obese"),
        (24.9, "pre_obese"),
        (25, "obese_1"),
        (29.9, "obese_1"),
        (30, "obese_2"),
        (34.9, "obese_2"),
        (35, "obese_3"),
    ],
)
def test_bmi_class_ksso(weight, expected):
    assert derive(height_cm=100, weight_kg=weight)["bmi_class"] == expected  # BMI == weight at 1 m


@pytest.mark.parametrize(
    ("sex", "hb", "expected"),
    [
        (M, 7.9, "severe"),
        (M, 8, "moderate"),
        (M, 10.9, "moderate"),
        (M, 11, "mild"),
        (M, 12.9, "mild"),
        (M, 13, "none"),
        (F, 10.9, "moderate"),
        (F, 11, "mild"),
        (F, 11.9, "mild"),
        (F, 12, "none"),
        (UNKNOWN_SEX, 12.5, None),
    ],
)
def test_anemia_severity_who(sex, hb, expected):
    assert derive(sex=sex, hemoglobin=hb)["anemia_severity"] == expected


@pytest.mark.parametrize(
    ("egfr", "expected"),
    [(14.9, "G5"), (15, "G4"), (29.9, "G4"), (30, "G3b"), (44.9, "G3b"), (45, "G3a"), (59.9, "G3a"),
     (60, "G2"), (89.9, "G2"), (90, "G1"), (None, None)],
)
def test_egfr_stage_kdigo_both_paths(egfr, expected):
    # eGFR is computed, so the stage band is driven directly through both evaluators' band code.
    rule = next(r for r in BANDS if r.column == "egfr_stage")
    assert band(rule, egfr, True) == expected
    table_rule = next(r for r in BAND_RULES if r.column == "egfr_stage")
    codes = band_vec(table_rule, {"egfr": np.array([np.nan if egfr is None else egfr])}, _Sex(np.array([1.0])))
    assert (None if codes[0] < 0 else table_rule.labels[codes[0]]) == expected


def test_egfr_stage_matches_computed_egfr():
    for scr in np.round(np.arange(0.3, 8.0, 0.1), 1):
        d = derive(sex=F, age_group=14, creatinine=float(scr))
        e = d["egfr"]
        expected = "G1" if e >= 90 else "G2" if e >= 60 else "G3a" if e >= 45 else "G3b" if e >= 30 else "G4" if e >= 15 else "G5"
        assert d["egfr_stage"] == expected


# --- metabolic syndrome and risk group -------------------------------------------------------------
MET = dict(waist_cm=95, triglycerides=180, hdl=35, sbp=135, dbp=80, fasting_glucose=105)  # 5 of 5 (man)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, True),
        ({"waist_cm": 80, "triglycerides": 100}, True),  # 3 true
        ({"waist_cm": 80, "triglycerides": 100, "hdl": 50}, False),  # 2 true, 0 unknown
        ({"waist_cm": 80, "triglycerides": 100, "hdl": None}, None),  # 2 true + 1 unknown
        ({"waist_cm": 80, "triglycerides": None, "hdl": None, "sbp": 110}, None),  # 1 true (FPG) + 2 unknown = 3
        ({"waist_cm": 80, "triglycerides": None, "hdl": None, "sbp": 110, "fasting_glucose": 90}, False),  # 0 + 2 < 3
        ({"triglycerides": None, "hdl": None}, True),  # 3 known trues decide even without lipids
        ({k: None for k in MET}, None),
    ],
)
def test_metabolic_syndrome_tri_state(changes, expected):
    assert derive(sex=M, **{**MET, **changes})["metabolic_syndrome"] is expected


ALL_NORMAL = dict(sbp=118, dbp=75, fasting_glucose=90, total_cholesterol=180, triglycerides=100, hdl=55,
                  height_cm=170, weight_kg=60, smoking=1)


@pytest.mark.parametrize(
    ("changes", "group", "count"),
    [
        ({}, "ZERO_TO_ONE_RISK_FACTOR", 0),
        ({"sbp": 150}, "ZERO_TO_ONE_RISK_FACTOR", 1),
        ({"sbp": 150, "smoking": 3}, "MULTIPLE_RISK_FACTORS", 2),
        ({"fasting_glucose": 126}, "CHD_RISK_EQUIVALENT", 1),
        ({"fasting_glucose": 130, "total_cholesterol": None, "hdl": None, "smoking": None}, "CHD_RISK_EQUIVALENT", 1),
        # one unknown that could make a second factor -> undecidable
        ({"sbp": 150, "hdl": None}, "INDETERMINATE", 1),
        # no lipid panel: 3 unknowns -> cannot exclude >= 2
        ({"total_cholesterol": None, "triglycerides": None, "hdl": None}, "INDETERMINATE", 0),
        # zero known trues and a single unknown -> still at most 1
        ({"smoking": None}, "ZERO_TO_ONE_RISK_FACTOR", 0),
        # diabetes unknown: never ZERO_TO_ONE ...
        ({"fasting_glucose": None}, "INDETERMINATE", 0),
        # ... but >= 2 known trues is MULTIPLE (the brief's order; a lower bound when diabetes is unknown)
        ({"fasting_glucose": None, "sbp": 150, "smoking": 3}, "MULTIPLE_RISK_FACTORS", 2),
        ({"sbp": 150, "smoking": 3, "total_cholesterol": 250, "weight_kg": 80}, "MULTIPLE_RISK_FACTORS", 4),
    ],
)
def test_screening_risk_group(changes, group, count):
    d = derive(**{**ALL_NORMAL, **changes})
    assert d["screening_risk_group"] == group
    assert d["risk_factor_count"] == count


# --- inputs, output contract -----------------------------------------------------------------------
def test_exact_age_overrides_band_and_band_is_derived():
    r = evaluate_person({"sex": "M", "age": 55, "creatinine": 1.2})
    assert r["age"] == {"years": 55.0, "source": "exact", "age_group": 12}
    assert r["derived"]["egfr"] == 71.4
    r = evaluate_person({"sex": 1, "age_group": 18, "creatinine": 1.0})
    assert r["age"]["years"] == 87.0 and r["age"]["source"] == "band_midpoint"
    assert evaluate_person({"sex": 1, "age": 90})["age"]["age_group"] == 18


def test_scalar_input_normalisation():
    base = evaluate_person({"sex": 1, "age_group": 10, "smoking": 3, "sbp": 150, "dbp": 80})
    alt = evaluate_person({"sex": "m", "age_group": 10.0, "smoking": "current", "sbp": "150", "dbp": np.float64(80)})
    assert base["derived"] == alt["derived"]
    weird = evaluate_person({"sex": "x", "sbp": float("inf"), "dbp": float("nan"), "hdl": "n/a", "drinking": True})
    assert weird["flags"]["hypertension"] is None and weird["flags"]["low_hdl"] is None
    assert weird["categories"]["abdominal_obesity"] is None


def test_result_shape():
    r = evaluate_person({"sex": 2, "age_group": 12, "sbp": 152, "dbp": 96})
    assert list(r) == ["bmi", "flags", "risk_factor_count", "screening_risk_group", "risk_group",
                       "atp3_risk_category", "atp3_risk_factor_count", "categories", "metabolic_syndrome",
                       "cvd_10y", "what_if", "explanations", "age", "rule_version", "disclaimer", "derived"]
    assert r["risk_group"] == r["screening_risk_group"]  # deprecated alias, same value
    assert set(r["flags"]) == {"hypertension", "diabetes", "high_total_cholesterol", "high_triglycerides",
                               "low_hdl", "obesity", "smoking"}
    assert set(r["categories"]) == {"blood_pressure", "isolated_systolic", "glucose", "bmi_class",
                                    "abdominal_obesity", "total_cholesterol", "ldl", "triglycerides", "hdl",
                                    "dyslipidaemia", "anemia", "anemia_severity", "egfr", "egfr_stage",
                                    "egfr_reason", "proteinuria", "liver_enzymes_high", "ggt_high"}
    assert set(r["metabolic_syndrome"]) == {"waist", "triglycerides", "hdl", "blood_pressure", "glucose", "verdict"}
    assert set(r["cvd_10y"]) == {"percent", "model", "caveat", "reason"}
    assert list(r["derived"]) == list(DERIVED_COLUMNS)
    assert r["rule_version"] == RULE_VERSION and "not a diagnosis" in DISCLAIMER
    lean = evaluate_person({"sex": 2, "age_group": 12, "sbp": 152, "dbp": 96}, include=())
    assert "what_if" not in lean and "explanations" not in lean
    assert {k: v for k, v in r.items() if k not in ("what_if", "explanations")} == lean


def test_explanations_cite_guidelines():
    r = evaluate_person({"sex": 1, "age_group": 12, "sbp": 152, "dbp": 96})
    texts = {e["key"]: e for e in r["explanations"]}
    assert texts["flag_hypertension"]["text"] == "Hypertension: SBP 152 ≥ 140 mmHg and DBP 96 ≥ 90 mmHg (KSH 2018)"
    assert texts["flag_diabetes"]["text"].startswith("Suspected diabetes: unknown")  # unknowns are explained
    assert "flag_smoking" in texts and "cvd_10y" in texts
    assert all(e["guideline"] in GUIDELINES for e in r["explanations"])
    one = evaluate_person({"sex": 1, "age_group": 12, "sbp": 150, "dbp": 80})
    assert {e["key"]: e["text"] for e in one["explanations"]}["flag_hypertension"] == (
        "Hypertension: SBP 150 ≥ 140 mmHg (KSH 2018)"
    )


def test_frame_contract_dtypes_index_and_missing_columns():
    df = pd.DataFrame(
        {"sex": np.array([1, 2, 1], dtype=np.int64), "age_group": np.array([11, 12, 18], dtype=np.int64),
         "sbp": [150.0, np.nan, 120.0], "dbp": [80.0, 95.0, np.nan], "unrelated": ["a", "b", "c"]},
        index=pd.Index([10, 20, 30], name="row_id"),
    )
    out = evaluate_frame(df)  # most input columns absent -> unknown, not an error
    assert list(out.columns) == list(DERIVED_COLUMNS)
    assert out.index.equals(df.index)
    for c in DERIVED_COLUMNS:
        kind = DERIVED_KINDS[c]
        dtype = out[c].dtype
        if kind == "float":
            assert dtype == np.float64
        elif kind == "int":
            assert dtype == np.int8
        elif kind == "bool":
            assert dtype == "boolean"
        else:
            assert isinstance(dtype, pd.CategoricalDtype)
            assert tuple(dtype.categories) == CATEGORY_LEVELS[c]
    htn = out["flag_hypertension"]
    assert bool(htn.iloc[0]) and bool(htn.iloc[1]) and htn.isna().iloc[2]  # 120/missing -> unknown
    assert out["flag_diabetes"].isna().all()
    assert out["screening_risk_group"].astype(object).tolist() == ["INDETERMINATE"] * 3
    assert out["atp3_risk_category"].astype(object).tolist() == ["INDETERMINATE"] * 3
    assert len(evaluate_frame(df.iloc[:0])) == 0


def test_every_rule_cites_a_registered_guideline():
    from shared.rules.table import COLUMN_GUIDELINE

    assert set(COLUMN_GUIDELINE) == set(DERIVED_COLUMNS)
    assert all(g in GUIDELINES for g in COLUMN_GUIDELINE.values())
    assert all(spec.unit is not None for spec in INPUTS.values())


# --- NCEP ATP III risk category ----------------------------------------------------------------------
ATP3_BASE = dict(sbp=118, dbp=75, fasting_glucose=90, hdl=50, smoking=1)


@pytest.mark.parametrize(
    ("sex", "age_group", "changes", "category", "count"),
    [
        (M, 9, {}, "ZERO_TO_ONE_RISK_FACTOR", 0),  # 40-44: under 45
        (M, 10, {}, "ZERO_TO_ONE_RISK_FACTOR", 1),  # 45-49: age counts
        (M, 10, {"smoking": 3}, "TWO_PLUS_RISK_FACTORS", 2),
        (F, 11, {"smoking": 3}, "ZERO_TO_ONE_RISK_FACTOR", 1),  # women: 50-54 under 55
        (F, 12, {"smoking": 3}, "TWO_PLUS_RISK_FACTORS", 2),  # 55-59
        (M, 13, {"sbp": 150}, "TWO_PLUS_RISK_FACTORS", 2),  # the issue's 60-year-old man with SBP 150
        (M, 13, {"sbp": 150, "hdl": 60}, "ZERO_TO_ONE_RISK_FACTOR", 1),  # HDL >= 60 subtracts one
        (M, 13, {"sbp": 150, "hdl": 59}, "TWO_PLUS_RISK_FACTORS", 2),
        (M, 13, {"sbp": 150, "hdl": 39}, "TWO_PLUS_RISK_FACTORS", 3),  # HDL < 40 adds one
        (M, 13, {"dbp": 90}, "TWO_PLUS_RISK_FACTORS", 2),  # BP >= 140/90 by DBP
        (M, 13, {"fasting_glucose": 126}, "CHD_RISK_EQUIVALENT", 1),  # diabetes = CHD risk equivalent
        (M, 13, {"fasting_glucose": None}, "INDETERMINATE", 1),  # could be diabetic
        (M, 13, {"hdl": None}, "INDETERMINATE", 1),  # 1 known + HDL in [-1, +1]: 0..2
        (M, 9, {"hdl": None}, "ZERO_TO_ONE_RISK_FACTOR", 0),  # at most 1 whatever HDL is
        (M, 13, {"hdl": None, "smoking": 3, "sbp": 150}, "TWO_PLUS_RISK_FACTORS", 3),  # at least 2 anyway
        (M, 9, {"smoking": None}, "ZERO_TO_ONE_RISK_FACTOR", 0),
        (M, 10, {"smoking": None}, "INDETERMINATE", 1),
        (UNKNOWN_SEX, 13, {}, "ZERO_TO_ONE_RISK_FACTOR", 0),  # age unknown (sex-specific cut): at most 1
        (UNKNOWN_SEX, 13, {"smoking": 3}, "INDETERMINATE", 1),  # ... and now 1 or 2
        (M, 0, {}, "ZERO_TO_ONE_RISK_FACTOR", 0),  # age unknown but nothing else could reach 2
        (M, 0, {"smoking": 3}, "INDETERMINATE", 1),
    ],
)
def test_atp3_risk_category(sex, age_group, changes, category, count):
    d = derive(sex=sex, age_group=age_group, **{**ATP3_BASE, **changes})
    assert (d["atp3_risk_category"], d["atp3_risk_factor_count"]) == (category, count)


def test_atp3_age_from_exact_years_and_band_boundaries():
    # bands are 5k-5..5k-1, so 45 and 55 are band boundaries: no band straddles them
    assert derive(sex=M, age_group=10, age=44, smoking=3, **{k: v for k, v in ATP3_BASE.items() if k != "smoking"})[
        "atp3_risk_category"] == "ZERO_TO_ONE_RISK_FACTOR"  # exact age wins over the band
    assert derive(sex=M, age_group=9, age=45, smoking=3, **{k: v for k, v in ATP3_BASE.items() if k != "smoking"})[
        "atp3_risk_category"] == "TWO_PLUS_RISK_FACTORS"
    r = evaluate_person({"sex": "F", "age": 55, **ATP3_BASE, "smoking": "current"})
    assert r["atp3_risk_category"] == "TWO_PLUS_RISK_FACTORS" and r["atp3_risk_factor_count"] == 2


def test_screening_group_and_atp3_differ_where_the_issue_says():
    # TC, TG and BMI count in the screening group but not in ATP III; age counts only in ATP III
    d = derive(sex=M, age_group=13, sbp=150, dbp=80, fasting_glucose=90, total_cholesterol=180,
               triglycerides=100, hdl=50, height_cm=170, weight_kg=60, smoking=1)
    assert d["screening_risk_group"] == "ZERO_TO_ONE_RISK_FACTOR"
    assert d["atp3_risk_category"] == "TWO_PLUS_RISK_FACTORS"
    d = derive(sex=F, age_group=7, sbp=118, dbp=75, fasting_glucose=90, total_cholesterol=250,
               triglycerides=250, hdl=50, height_cm=160, weight_kg=70, smoking=1)
    assert d["screening_risk_group"] == "MULTIPLE_RISK_FACTORS"
    assert d["atp3_risk_category"] == "ZERO_TO_ONE_RISK_FACTOR"


# --- dyslipidaemia -----------------------------------------------------------------------------------
LIPIDS_NORMAL = dict(total_cholesterol=239, ldl=159, triglycerides=199, hdl=40)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, False),
        ({"total_cholesterol": 240}, True),
        ({"ldl": 160}, True),
        ({"triglycerides": 200}, True),
        ({"hdl": 39}, True),
        ({"ldl": None}, None),  # LDL unknown could still be >= 160
        ({"ldl": None, "triglycerides": 450}, True),  # one known abnormality decides
        ({k: None for k in LIPIDS_NORMAL}, None),
    ],
)
def test_dyslipidaemia_tri_state(changes, expected):
    assert derive(**{**LIPIDS_NORMAL, **changes})["dyslipidaemia"] is expected


# --- eGFR for adults only ------------------------------------------------------------------------------
def test_egfr_only_for_adults():
    assert derive(sex=F, age_group=5, creatinine=0.8)["egfr"] is not None  # 20-24
    d = derive(sex=F, age_group=4, creatinine=0.8)  # 15-19
    assert d["egfr"] is None and d["egfr_stage"] is None
    r = evaluate_person({"sex": 2, "age_group": 4, "creatinine": 0.8}, include=("explanations",))
    assert r["categories"]["egfr_reason"] == "age band 4 (15-19) is under 20: CKD-EPI 2021 is used for adults only"
    assert any("eGFR not computed: age band 4" in e["text"] for e in r["explanations"])
    assert evaluate_person({"sex": 2, "age": 19, "creatinine": 0.8})["categories"]["egfr_reason"].startswith("age 19 ")
    assert evaluate_person({"sex": 2, "age": 20, "creatinine": 0.8})["categories"]["egfr_reason"] is None
    assert evaluate_person({"sex": 2, "age": 40})["categories"]["egfr_reason"] == "missing: creatinine"


# --- raw inputs of every rule (the complete-panel population of the statistics) -------------------------
def test_rule_inputs_are_raw_columns_and_transitive():
    assert set(RULE_INPUTS) == set(DERIVED_COLUMNS)
    assert all(isinstance(v, tuple) and v and set(v) <= set(RAW_INPUTS) for v in RULE_INPUTS.values())
    assert RULE_INPUTS["bmi"] == RULE_INPUTS["flag_obesity"] == RULE_INPUTS["bmi_class"] == ("height_cm", "weight_kg")
    assert RULE_INPUTS["flag_hypertension"] == ("sbp", "dbp")
    assert set(RULE_INPUTS["metabolic_syndrome"]) == {"sex", "waist_cm", "triglycerides", "hdl", "sbp", "dbp",
                                                      "fasting_glucose"}
    assert set(RULE_INPUTS["screening_risk_group"]) == {"sbp", "dbp", "fasting_glucose", "total_cholesterol",
                                                        "triglycerides", "hdl", "height_cm", "weight_kg", "smoking"}
    assert set(RULE_INPUTS["atp3_risk_category"]) == {"sex", "age_group", "sbp", "dbp", "fasting_glucose", "hdl",
                                                      "smoking"}
    assert set(RULE_INPUTS["dyslipidaemia"]) == {"total_cholesterol", "ldl", "triglycerides", "hdl"}
    assert set(RULE_INPUTS["egfr_stage"]) == {"creatinine", "sex", "age_group"}
    assert set(RULE_INPUTS["cvd_10y"]) == {"sex", "age_group", "total_cholesterol", "hdl", "sbp", "smoking",
                                           "fasting_glucose"}


def test_rule_inputs_are_all_a_rule_reads():
    """Every input outside a rule's RULE_INPUTS can be wiped without changing that rule's value."""
    rng = np.random.default_rng(3)
    people = [{"sex": int(rng.choice([1, 2])), "age_group": int(rng.integers(5, 19)), "height_cm": 165.0,
               "weight_kg": float(rng.integers(45, 95)), "waist_cm": float(rng.integers(65, 105)),
               "sbp": float(rng.integers(100, 170)), "dbp": float(rng.integers(60, 105)),
               "fasting_glucose": float(rng.integers(80, 140)), "total_cholesterol": float(rng.integers(150, 280)),
               "triglycerides": float(rng.integers(60, 300)), "hdl": float(rng.integers(30, 75)),
               "ldl": float(rng.integers(70, 190)), "hemoglobin": 13.0, "creatinine": 0.9, "ast": 30.0,
               "alt": 30.0, "ggt": 40.0, "urine_protein": 1.0, "smoking": float(rng.choice([1, 2, 3]))}
              for _ in range(40)]
    for person in people:
        full = evaluate_person(person, include=())["derived"]
        for column, needed in RULE_INPUTS.items():
            kept = {k: v for k, v in person.items() if k in needed}
            assert evaluate_person(kept, include=())["derived"][column] == full[column], column
