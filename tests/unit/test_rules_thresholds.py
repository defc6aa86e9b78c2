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
    RULE_VERSION,
    evaluate_frame,
    evaluate_person,
)
from shared.rules.evaluate import _Sex, band_vec
from shared.rules.person import _BANDS, _band
from shared.rules.table import INPUTS, NUMERIC_INPUTS

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


def test_obesity_uses_rounded_bmi():
    # height 100 cm -> BMI = weight
    assert derive(height_cm=100, weight_kg=25)["flag_obesity"] is True
    assert derive(height_cm=100, weight_kg=24.9)["flag_obesity"] is False
    d = derive(height_cm=100, weight_kg=24.96)  # reported BMI 25.0 -> obese (as published, 1 decimal)
    assert d["bmi"] == 25.0 and d["flag_obesity"] is True
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
        (140, 79, "isolated_systolic"),  # SBP >= 140 and DBP < 90
        (140, 89, "isolated_systolic"),
        (159, 70, "isolated_systolic"),
        (140, 90, "stage1"),
        (135, 92, "stage1"),
        (159, 99, "stage1"),
        (160, 70, "stage2"),  # SBP >= 160 stays stage2 even when DBP < 90 (documented choice)
        (120, 100, "stage2"),
        (170, 105, "stage2"),
        (None, 80, None),
        (120, None, None),
    ],
)
def test_bp_category(sbp, dbp, expected):
    assert derive(sbp=sbp, dbp=dbp)["bp_category"] == expected


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
    rule, cuts = next((r, c) for r, c in _BANDS if r.column == "egfr_stage")
    assert _band(rule, cuts, {"egfr": egfr}, True) == expected
    codes = band_vec(rule, {"egfr": np.array([np.nan if egfr is None else egfr])}, _Sex(np.array([1.0])))
    assert (None if codes[0] < 0 else rule.labels[codes[0]]) == expected


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
def test_risk_group(changes, group, count):
    d = derive(**{**ALL_NORMAL, **changes})
    assert d["risk_group"] == group
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
    assert set(r) >= {"bmi", "flags", "risk_factor_count", "risk_group", "categories", "metabolic_syndrome",
                      "cvd_10y", "what_if", "explanations", "rule_version", "derived", "disclaimer"}
    assert set(r["flags"]) == {"hypertension", "diabetes", "high_total_cholesterol", "high_triglycerides",
                               "low_hdl", "obesity", "smoking"}
    assert set(r["categories"]) == {"blood_pressure", "glucose", "bmi_class", "abdominal_obesity",
                                    "total_cholesterol", "ldl", "triglycerides", "hdl", "anemia",
                                    "anemia_severity", "egfr", "egfr_stage", "proteinuria",
                                    "liver_enzymes_high", "ggt_high"}
    assert set(r["metabolic_syndrome"]) == {"waist", "triglycerides", "hdl", "blood_pressure", "glucose", "verdict"}
    assert set(r["cvd_10y"]) == {"percent", "model", "caveat", "reason"}
    assert list(r["derived"]) == list(DERIVED_COLUMNS)
    assert r["rule_version"] == RULE_VERSION and "not a diagnosis" in DISCLAIMER


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
    assert out["risk_group"].astype(object).tolist() == ["INDETERMINATE"] * 3
    assert len(evaluate_frame(df.iloc[:0])) == 0


def test_every_rule_cites_a_registered_guideline():
    from shared.rules.table import COLUMN_GUIDELINE

    assert set(COLUMN_GUIDELINE) == set(DERIVED_COLUMNS)
    assert all(g in GUIDELINES for g in COLUMN_GUIDELINE.values())
    assert all(spec.unit is not None for spec in INPUTS.values())
