"""The response layout: stored records get the same reasons for null values as /simulate gives."""

from __future__ import annotations

import numpy as np
import pytest

from shared.rules import RULE_VERSION, evaluate_person
from shared.rules.layout import details, headline, stored_reasons


def _stored_row(person: dict) -> dict:
    """What the screenings table holds for a person evaluated by the band (sex as its code)."""
    r = evaluate_person(person, include=())
    return {**person, **r["derived"], "sex": {"M": 1, "F": 2}[person["sex"]], "rule_version": RULE_VERSION}


@pytest.mark.parametrize(
    "person",
    [
        {"sex": "F", "age_group": 4, "creatinine": 0.8},  # eGFR: under 20
        {"sex": "M", "age_group": 12},  # eGFR: no creatinine; CVD: missing inputs
        {"sex": "M", "age_group": 16, "total_cholesterol": 200, "hdl": 50, "sbp": 130, "smoking": 1,
         "fasting_glucose": 90},  # CVD: age 77
        {"sex": "F", "age_group": 10, "total_cholesterol": 420, "hdl": 50, "sbp": 130, "smoking": 1,
         "fasting_glucose": 90},  # CVD: TC outside the derivation range
        {"sex": "F", "age_group": 10, "total_cholesterol": 200, "hdl": 50, "sbp": 130, "smoking": 3,
         "fasting_glucose": 90, "creatinine": 0.7},  # both computed: no reasons
    ],
)
def test_stored_records_get_the_simulator_reasons(person):
    r = evaluate_person(person, include=())
    assert stored_reasons(_stored_row(person)) == (r["cvd_10y"]["reason"], r["categories"]["egfr_reason"])


def test_a_stored_null_the_current_rules_would_compute_names_the_rule_version():
    row = _stored_row({"sex": "F", "age_group": 10, "creatinine": 0.7})
    row.update(egfr=None, rule_version="2026.11.1")
    assert stored_reasons(row)[1] == "not computed under rule version 2026.11.1"


def test_layout_reads_rows_and_evaluations_alike():
    rng = np.random.default_rng(5)
    for _ in range(50):
        person = {"sex": rng.choice(["M", "F"]), "age_group": int(rng.integers(5, 19)),
                  "sbp": float(rng.integers(100, 170)), "dbp": float(rng.integers(60, 100)),
                  "hdl": float(rng.integers(30, 80)), "creatinine": 0.9}
        r = evaluate_person(person, include=())
        row = _stored_row(person)
        rebuilt = {**headline(row), **details(row, *stored_reasons(row))}
        assert rebuilt == {k: r[k] for k in rebuilt}
