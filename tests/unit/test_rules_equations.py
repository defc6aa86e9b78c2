"""Published and hand-computed vectors for CKD-EPI 2021 and Framingham 2008, both forms."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from shared.rules import CVD_MODELS, evaluate_frame, evaluate_person, register_cvd_model
from shared.rules.equations import (
    FRAMINGHAM_2008,
    age_group_from_age,
    band_bounds,
    band_bounds_vec,
    band_midpoint,
    band_midpoint_vec,
    bmi,
    bmi_exact,
    bmi_exact_vec,
    bmi_vec,
    egfr,
    egfr_vec,
)


def fram_both(sex: int, age: float, tc: float, hdl: float, sbp: float, smoker: float, diabetes: float) -> float:
    x = {"sex": sex, "age": age, "total_cholesterol": tc, "hdl": hdl, "sbp": sbp,
         "current_smoker": smoker, "diabetes": diabetes}
    one, reason = FRAMINGHAM_2008.risk_one(x)
    assert reason is None
    vec = FRAMINGHAM_2008.risk_vec({k: np.array([float(v)]) for k, v in x.items()})[0]
    assert math.isclose(one, vec, rel_tol=1e-12)
    return one


# --- Framingham 2008 (D'Agostino, Circulation 2008;117:743) ---------------------------------------
def test_framingham_published_example_man_55():
    # vcastro/CVrisk ascvd_10y_frs example: man 55, TC 213, HDL 50, SBP 140 untreated,
    # non-smoker, non-diabetic -> 13.53 %.
    assert round(fram_both(1, 55, 213, 50, 140, 0, 0), 2) == 13.53


def test_framingham_hand_vector_woman():
    # Woman 61, TC 180, HDL 47, SBP 124 untreated, current smoker, no diabetes.
    #   2.32888 * ln 61  = 2.32888 * 4.110874 =  9.573732
    #   1.20904 * ln 180 = 1.20904 * 5.192957 =  6.278493
    #  -0.70833 * ln 47  = -0.70833 * 3.850148 = -2.727175
    #   2.76157 * ln 124 = 2.76157 * 4.820282 = 13.311545
    #   smoker 0.52873 * 1 = 0.52873 ; diabetes 0.69154 * 0 = 0
    #   sum = 26.965324 ; minus mean 26.1931 = 0.772224 ; exp = 2.164576
    #   risk = 1 - 0.95012 ** 2.164576 = 1 - 0.895158 = 10.484 %
    assert round(fram_both(2, 61, 180, 47, 124, 1, 0), 2) == 10.48


def test_framingham_hand_vector_man_smoker_diabetic():
    # Man, band 10 (45-49 -> midpoint 47), TC 240, HDL 35, SBP 150, current smoker, diabetic.
    #   3.06117 * ln 47  = 3.06117 * 3.850148 = 11.785956
    #   1.12370 * ln 240 = 1.12370 * 5.480639 =  6.158594
    #  -0.93263 * ln 35  = -0.93263 * 3.555348 = -3.315824
    #   1.93303 * ln 150 = 1.93303 * 5.010635 =  9.685708
    #   0.65451 + 0.57367 = 1.22818
    #   sum = 25.542614 ; minus 23.9802 = 1.562414 ; exp = 4.770325
    #   risk = 1 - 0.88936 ** 4.770325 = 1 - 0.571589 = 42.841 %
    assert round(fram_both(1, 47, 240, 35, 150, 1, 1), 2) == 42.84
    r = evaluate_person({"sex": 1, "age_group": 10, "total_cholesterol": 240, "hdl": 35, "sbp": 150, "dbp": 80,
                         "smoking": 3, "fasting_glucose": 130})
    assert round(r["cvd_10y"]["percent"], 2) == 42.84
    assert r["cvd_10y"]["model"] == "framingham_2008_general_cvd"
    assert "overestimates" in r["cvd_10y"]["caveat"]


@pytest.mark.parametrize(
    ("person", "reason"),
    [
        ({"age_group": 6}, "age 27 outside the model range 30-74"),  # band 6 -> 27
        ({"age_group": 16}, "age 77 outside the model range 30-74"),
        ({"age": 75}, "age 75 outside the model range 30-74"),
        ({"age_group": 11, "total_cholesterol": None, "hdl": None}, "missing: total_cholesterol, hdl"),
        ({"age_group": 11, "smoking": None}, "missing: smoking"),
        ({"age_group": 11, "fasting_glucose": None}, "missing: fasting_glucose"),
        ({"age_group": 11, "sex": None}, "sex unknown"),
        ({"age_group": None}, "age unknown"),
    ],
)
def test_framingham_not_applicable_reasons(person, reason):
    base = {"sex": 1, "total_cholesterol": 200, "hdl": 50, "sbp": 130, "dbp": 80, "smoking": 1, "fasting_glucose": 90}
    r = evaluate_person({**base, **person})
    assert r["cvd_10y"]["percent"] is None
    assert r["cvd_10y"]["reason"] == reason
    assert r["derived"]["cvd_10y"] is None


def test_framingham_age_window_edges_from_bands():
    base = {"sex": 2, "total_cholesterol": 200, "hdl": 50, "sbp": 130, "dbp": 80, "smoking": 1, "fasting_glucose": 90}
    assert evaluate_person({**base, "age_group": 7})["cvd_10y"]["percent"] is not None  # 32
    assert evaluate_person({**base, "age_group": 15})["cvd_10y"]["percent"] is not None  # 72
    assert evaluate_person({**base, "age": 74.9})["cvd_10y"]["percent"] is not None
    assert evaluate_person({**base, "age": 30})["cvd_10y"]["percent"] is not None
    assert evaluate_person({**base, "age": 29.9})["cvd_10y"]["percent"] is None


def test_framingham_treated_sbp_coefficient_for_the_what_if_note():
    # Same man as the published example, SBP 140 reached on treatment: the ln(SBP) coefficient is
    # 1.99881 instead of 1.93303, so the linear predictor rises by 0.06578 * ln 140 = 0.06578 * 4.941642
    # = 0.325061: 24.195485 + 0.325061 = 24.520546 ; minus 23.9802 = 0.540346 ; exp = 1.716601 ;
    # risk = 1 - 0.88936 ** 1.716601 = 18.23 %
    x = {"sex": 1, "age": 55, "total_cholesterol": 213, "hdl": 50, "sbp": 140, "current_smoker": 0, "diabetes": 0}
    assert FRAMINGHAM_2008.risk_one(x) == (13.53, None)
    assert FRAMINGHAM_2008.risk_one({**x, "bp_treated": 1.0}) == (18.23, None)


@pytest.mark.parametrize(
    ("name", "inside", "outside"),
    [("total_cholesterol", (100, 400), (99, 401)), ("hdl", (20, 100), (19, 101)), ("sbp", (90, 200), (89, 201))],
)
def test_framingham_derivation_ranges_give_null_with_a_reason(name, inside, outside):
    x = {"sex": 2, "age": 50.0, "total_cholesterol": 200.0, "hdl": 50.0, "sbp": 130.0, "current_smoker": 0.0,
         "diabetes": 0.0}
    for v in inside:
        assert FRAMINGHAM_2008.risk_one({**x, name: float(v)})[0] is not None
    lo, hi = inside
    for v in outside:
        assert FRAMINGHAM_2008.risk_one({**x, name: float(v)}) == (
            None, f"{name} {v:g} outside the model range {lo:g}-{hi:g}")
    rows = {k: np.array([float(val)] * 4) for k, val in x.items()}
    rows[name] = np.array([float(inside[0]), float(inside[1]), float(outside[0]), float(outside[1])])
    got = FRAMINGHAM_2008.risk_vec(rows)
    assert not np.isnan(got[:2]).any() and np.isnan(got[2:]).all()


# --- CKD-EPI 2021 (Inker, NEJM 2021;385:1737) ------------------------------------------------------
@pytest.mark.parametrize(
    ("scr", "male", "age", "expected"),
    [
        # published: man 55, Scr 1.2 -> 71.4 (r = 1.2/0.9 = 1.33333; 1.33333^-1.2 = 0.70807;
        # 0.9938^55 = 0.71030; 142 * 0.70807 * 0.71030 = 71.418)
        (1.2, True, 55, 71.4),
        # woman 40, Scr 0.6: r = 0.6/0.7 = 0.85714 < 1 -> 0.85714^-0.241 = 1.03785;
        # 0.9938^40 = 0.77976; 142 * 1.03785 * 0.77976 * 1.012 = 116.296
        (0.6, False, 40, 116.3),
        # woman 70, Scr 1.0: r = 1.42857 -> 1.42857^-1.2 = 0.65180; 0.9938^70 = 0.64704;
        # 142 * 0.65180 * 0.64704 * 1.012 = 60.606
        (1.0, False, 70, 60.6),
        # man 47, Scr 0.9 = kappa: both power terms are 1; 142 * 0.9938^47 = 142 * 0.74654 = 106.009
        (0.9, True, 47, 106.0),
        # man 67, Scr 2.5: r = 2.77778 -> 2.77778^-1.2 = 0.29347; 0.9938^67 = 0.65922;
        # 142 * 0.29347 * 0.65922 = 27.472
        (2.5, True, 67, 27.5),
    ],
)
def test_ckd_epi_2021_vectors(scr, male, age, expected):
    assert egfr(scr, male, age) == expected
    vec = egfr_vec(np.array([scr]), np.array([male]), np.array([not male]), np.array([float(age)]))
    assert vec[0] == expected


def test_egfr_missing_inputs():
    assert egfr(None, True, 50) is None
    assert egfr(0.0, True, 50) is None  # non-positive creatinine is not computable
    assert egfr(1.0, None, 50) is None
    assert egfr(1.0, True, None) is None
    v = egfr_vec(np.array([np.nan, 0.0, 1.0]), np.array([True, True, False]), np.array([False, False, False]),
                 np.array([50.0, 50.0, 50.0]))
    assert np.isnan(v).all()  # third row: sex unknown


# --- age and BMI -----------------------------------------------------------------------------------
def test_band_midpoints():
    assert band_midpoint(5) == 22.0 and band_midpoint(11) == 52.0 and band_midpoint(18) == 87.0
    assert band_midpoint(None) is None and band_midpoint(19) is None
    v = band_midpoint_vec(np.array([5, 18, 0, 19]))
    assert v[0] == 22 and v[1] == 87 and np.isnan(v[2]) and np.isnan(v[3])
    assert age_group_from_age(20) == 5 and age_group_from_age(24.9) == 5 and age_group_from_age(85) == 18
    assert age_group_from_age(99) == 18 and age_group_from_age(-1) is None


def test_band_bounds():
    assert band_bounds(10) == (45.0, 49.0) and band_bounds(12) == (55.0, 59.0) and band_bounds(5) == (20.0, 24.0)
    assert band_bounds(18) == (85.0, math.inf) and band_bounds(None) is None and band_bounds(0) is None
    lo, hi = band_bounds_vec(np.array([10.0, 18.0, np.nan, 19.0]))
    assert lo[:2].tolist() == [45.0, 85.0] and hi[0] == 49.0 and math.isinf(hi[1])
    assert np.isnan(lo[2:]).all() and np.isnan(hi[2:]).all()


def test_bmi_both_forms_agree_exact_and_rounded():
    h = np.array([150.0, 155, 160, 165, 170, 175, 180, 100, 100])
    w = np.array([45.0, 50, 55, 60, 65, 70, 75, 24.96, 24.94])
    exact = bmi_exact_vec(h, w)
    assert [bmi_exact(a, b) for a, b in zip(h, w, strict=True)] == exact.tolist()  # bit for bit
    vec = bmi_vec(exact)
    assert [bmi(a, b) for a, b in zip(h, w, strict=True)] == vec.tolist()
    assert vec[-2:].tolist() == [25.0, 24.9]
    assert bmi(0, 60) is None and np.isnan(bmi_exact_vec(np.array([0.0]), np.array([60.0]))[0])


# --- pluggable model -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConstantModel:
    """A stand-in for a future Korean model: 1 % per decade of age, needs SBP only."""

    key: str = "test_constant"
    label: str = "test model"
    guideline: str = "FRAMINGHAM_2008"
    caveat: str = "test only"
    inputs: tuple[str, ...] = ("age", "sbp")

    def risk_vec(self, x):
        return np.where(np.isnan(x["sbp"]), np.nan, x["age"] / 10.0)

    def risk_one(self, x):
        if x.get("sbp") is None or x.get("age") is None:
            return None, "missing: sbp"
        return x["age"] / 10.0, None


def test_cvd_model_registry_is_pluggable():
    register_cvd_model(ConstantModel())
    try:
        person = {"sex": 1, "age_group": 11, "sbp": 120.0, "dbp": 70.0}
        r = evaluate_person(person, cvd_model="test_constant")
        assert r["cvd_10y"]["percent"] == 5.2 and r["cvd_10y"]["model"] == "test_constant"
        out = evaluate_frame(pd.DataFrame([person]), cvd_model="test_constant")
        assert out["cvd_10y"].iloc[0] == 5.2
    finally:
        CVD_MODELS.pop("test_constant")
