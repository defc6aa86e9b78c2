"""What-if: nearest values that switch a true factor off, and what that does to the risk group."""

from __future__ import annotations

import numpy as np
import pytest

from shared.rules import evaluate_person
from shared.rules.equations import bmi_exact

BASE = dict(sex=1, age_group=12, sbp=118, dbp=75, fasting_glucose=90, total_cholesterol=180, triglycerides=100,
            hdl=55, height_cm=170, weight_kg=60, waist_cm=80, smoking=1)


def what_if(**changes) -> dict[str, dict]:
    r = evaluate_person({**BASE, **changes})
    return {e["factor"]: e for e in r["what_if"]}


def test_no_true_factor_no_what_if():
    assert evaluate_person(BASE)["what_if"] == []


@pytest.mark.parametrize(
    ("inp", "value", "factor", "target"),
    [
        ("sbp", 152, "hypertension", 139),
        ("dbp", 96, "hypertension", 89),
        ("fasting_glucose", 131, "diabetes", 125),
        ("total_cholesterol", 251, "high_total_cholesterol", 239),
        ("triglycerides", 230, "high_triglycerides", 199),
        ("hdl", 35, "low_hdl", 40),
        ("smoking", 3, "smoking", 2),  # current -> former
        ("waist_cm", 93.5, "mets_waist", 89.9),
    ],
)
def test_targets(inp, value, factor, target):
    e = what_if(**{inp: value})[factor]
    assert (e["input"], e["current"], e["target"]) == (inp, value, target)
    assert e["factor_after"] is False and e["also"] == []


def test_both_blood_pressures_must_move_together():
    e = what_if(sbp=152, dbp=96)["hypertension"]
    assert (e["input"], e["target"]) == ("sbp", 139)
    assert e["also"] == [{"input": "dbp", "current": 96, "target": 89}]
    assert e["factor_after"] is False


def test_unknown_partner_value_leaves_factor_unknown():
    e = what_if(sbp=150, dbp=None)["hypertension"]
    assert e["target"] == 139 and e["factor_after"] is None  # DBP unmeasured: cannot promise "off"


def test_sex_specific_targets_for_women():
    w = what_if(sex=2, waist_cm=88, hdl=45)
    assert w["mets_waist"]["target"] == 84.9
    assert w["mets_hdl"]["target"] == 50
    assert "low_hdl" not in w  # HDL 45 is not < 40


def test_weight_target_is_the_heaviest_non_obese_weight():
    e = what_if(weight_kg=80)["obesity"]
    assert e["input"] == "weight_kg" and e["current"] == 80
    w = e["target"]
    assert bmi_exact(170, w) < 25 <= bmi_exact(170, round(w + 0.1, 1))  # the rule reads the unrounded BMI


def test_group_change_is_reported():
    # diabetes false, exactly two factors, everything known: removing either drops to 0-1
    w = what_if(sbp=150, smoking=3)
    for factor in ("hypertension", "smoking"):
        assert w[factor]["risk_group_after"] == "ZERO_TO_ONE_RISK_FACTOR"
        assert w[factor]["changes_group"] is True
    # three factors: removing one leaves MULTIPLE
    w = what_if(sbp=150, smoking=3, total_cholesterol=250)
    assert all(e["changes_group"] is False for e in w.values())
    # diabetic: the group only changes via glucose
    w = what_if(fasting_glucose=140, sbp=150)
    assert w["diabetes"]["risk_group_after"] == "ZERO_TO_ONE_RISK_FACTOR" and w["diabetes"]["changes_group"]
    assert w["hypertension"]["risk_group_after"] == "CHD_RISK_EQUIVALENT"


def test_cvd_after_moves_with_modifiable_inputs():
    r = evaluate_person({**BASE, "sbp": 160, "smoking": 3})
    before = r["cvd_10y"]["percent"]
    w = {e["factor"]: e for e in r["what_if"]}
    assert w["smoking"]["cvd_10y_after"] < before
    assert w["hypertension"]["cvd_10y_after"] < before


def test_metabolic_syndrome_after():
    w = what_if(waist_cm=95, triglycerides=160, fasting_glucose=105)  # exactly 3 components
    assert evaluate_person({**BASE, "waist_cm": 95, "triglycerides": 160, "fasting_glucose": 105})[
        "metabolic_syndrome"]["verdict"] is True
    assert w["mets_waist"]["metabolic_syndrome_after"] is False


def test_applying_each_what_if_reproduces_its_claims():
    """For random people: apply each entry's change(s), re-evaluate, and check every claim it made."""
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(1500):
        person = {
            "sex": int(rng.choice([1, 2])), "age_group": int(rng.integers(5, 19)),
            "height_cm": float(rng.choice([150, 155, 160, 165, 170, 175, 180])),
            "weight_kg": float(rng.choice([50, 60, 70, 80, 90, 100])),
            "waist_cm": float(np.round(rng.uniform(70, 105), 1)),
            "sbp": float(rng.integers(100, 180)), "dbp": float(rng.integers(60, 110)),
            "fasting_glucose": float(rng.integers(80, 160)),
            "total_cholesterol": float(rng.integers(150, 290)) if rng.random() < 0.7 else None,
            "triglycerides": float(rng.integers(60, 400)), "hdl": float(rng.integers(25, 80)),
            "smoking": float(rng.choice([1, 2, 3])),
        }
        before = evaluate_person(person)
        for e in before["what_if"]:
            changed = {**person, e["input"]: e["target"], **{a["input"]: a["target"] for a in e["also"]}}
            after = evaluate_person(changed)
            column = e["factor"] if e["factor"].startswith("mets_") else f"flag_{e['factor']}"
            assert after["derived"][column] is e["factor_after"]
            assert after["screening_risk_group"] == e["screening_risk_group_after"] == e["risk_group_after"]
            assert e["changes_group"] == (after["screening_risk_group"] != before["screening_risk_group"])
            assert after["atp3_risk_category"] == e["atp3_risk_category_after"]
            assert e["changes_atp3_category"] == (after["atp3_risk_category"] != before["atp3_risk_category"])
            bp_moved = {e["input"], *(a["input"] for a in e["also"])} & {"sbp", "dbp"}
            assert (e["note"] is not None) == bool(bp_moved)
            if not bp_moved:
                assert e["cvd_10y_after_if_treated"] is None
            assert after["metabolic_syndrome"]["verdict"] is e["metabolic_syndrome_after"]
            assert after["cvd_10y"]["percent"] == e["cvd_10y_after"]
            checked += 1
    assert checked > 1500


def test_lowered_bp_notes_the_treated_coefficient():
    r = evaluate_person({**BASE, "age_group": 11, "sbp": 150, "dbp": 80, "smoking": 3})
    e = {x["factor"]: x for x in r["what_if"]}["hypertension"]
    assert (e["input"], e["target"]) == ("sbp", 139)
    assert "treated" in e["note"]
    # SBP 139 reached on drugs: same person, treated-SBP coefficient (the model's, not ours)
    from shared.rules.equations import FRAMINGHAM_2008

    x = {"sex": 1, "age": 52.0, "total_cholesterol": 180.0, "hdl": 55.0, "sbp": 139.0, "current_smoker": 1.0,
         "diabetes": 0.0}
    assert e["cvd_10y_after"] == FRAMINGHAM_2008.risk_one(x)[0]
    assert e["cvd_10y_after_if_treated"] == FRAMINGHAM_2008.risk_one({**x, "bp_treated": 1.0})[0]
    # lower than today if the SBP falls untreated; on drugs the model's treated coefficient can
    # even put the estimate above today's untreated 150 mmHg (what the note warns about)
    assert e["cvd_10y_after"] < r["cvd_10y"]["percent"] < e["cvd_10y_after_if_treated"]
    smoking = {x["factor"]: x for x in r["what_if"]}["smoking"]
    assert smoking["note"] is None and smoking["cvd_10y_after_if_treated"] is None


def test_dbp_only_change_keeps_sbp_but_is_treated():
    r = evaluate_person({**BASE, "sbp": 130, "dbp": 95})
    e = {x["factor"]: x for x in r["what_if"]}["hypertension"]
    assert (e["input"], e["target"], e["also"]) == ("dbp", 89, [])
    assert e["cvd_10y_after"] == r["cvd_10y"]["percent"]  # DBP is not in the model
    assert e["cvd_10y_after_if_treated"] > e["cvd_10y_after"] and e["note"]


def test_atp3_category_after():
    # man 55-59 (age factor) who smokes: two ATP III factors; quitting leaves one
    w = what_if(smoking=3)
    assert w["smoking"]["atp3_risk_category_after"] == "ZERO_TO_ONE_RISK_FACTOR"
    assert w["smoking"]["changes_atp3_category"] is True
