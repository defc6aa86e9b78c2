"""One response layout: records (list and one) and /simulate use the same field names and shapes, and
a stored record's derived values equal what the scalar path computes from its stored measurements
(the ETL's numpy core and /simulate agree end to end)."""

from __future__ import annotations

import pytest

from shared.rules import RULE_VERSION, evaluate_person
from shared.rules.layout import details, headline

pytestmark = pytest.mark.integration

YEAR = 2021


@pytest.fixture(scope="module")
def loaded_for_layout(resources, worker, settings):
    from shared.etl.jobs import create_job, wait_for_job
    from tests.support.files import sample_file

    path = sample_file(settings.data_dir / "layout", 3_000, seed=83, year=YEAR, style="2024")
    job = wait_for_job(resources, create_job(resources, path), timeout=180)
    assert job["status"] == "succeeded"
    return job


def _shape(value):
    """Keys (recursively) and value kinds, so two answers can be compared by shape."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__


def _same_shape(a, b) -> bool:
    """Same keys everywhere; leaf kinds agree unless one side is null (unknown)."""
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(
            _same_shape(a[k], b[k]) for k in a)
    return a == b or "NoneType" in (a, b)


def test_records_and_simulate_share_the_layout_and_the_values(client, api_key, loaded_for_layout):
    key = {"X-API-Key": api_key("records:read,simulate")}
    page = client.get("/api/v1/records", headers=key, query_string={"year": YEAR, "limit": 100}).get_json()
    assert len(page["data"]) == 100
    headline_keys = set(headline({c: None for c in _columns()}))
    compared = 0
    for row in page["data"][:40]:
        assert headline_keys <= set(row) and row["rule_version"] == RULE_VERSION
        one = client.get(f"/api/v1/records/{row['id']}", headers=key).get_json()
        assert {k: one[k] for k in row if k != "measurements"} == {k: row[k] for k in row if k != "measurements"}
        m = one["measurements"]
        person = {k: v for k, v in m.items() if v is not None and k in _SIMULATE_FIELDS}
        person.update(sex=one["sex"], age_group=one["age_group"]["code"])
        if person.get("urine_protein") is not None:
            person["urine_protein"] = int(person["urine_protein"])
        sim = client.post("/api/v1/simulate", headers=key, json=person)
        if sim.status_code != 200:  # a stored value outside the simulator's bounds
            continue
        sim = sim.get_json()
        for section in ("categories", "metabolic_syndrome", "cvd_10y"):
            assert _same_shape(_shape(one[section]), _shape(sim[section])), section
            assert one[section] == sim[section], (row["id"], section)
        assert {k: one[k] for k in headline_keys} == {k: sim[k] for k in headline_keys}
        expected = evaluate_person(person, include=())
        assert one["categories"] == expected["categories"]
        compared += 1
    assert compared >= 30


_SIMULATE_FIELDS = {"height_cm", "weight_kg", "waist_cm", "sbp", "dbp", "fasting_glucose", "total_cholesterol",
                    "hdl", "ldl", "triglycerides", "hemoglobin", "creatinine", "ast", "alt", "ggt", "urine_protein",
                    "smoking", "drinking"}


def _columns():
    from shared.rules import DERIVED_COLUMNS

    return DERIVED_COLUMNS


def test_layout_sections_name_every_field_once():
    d = {c: None for c in _columns()}
    out = {**headline(d), **details(d, None, None)}
    assert out["risk_group"] is None and "screening_risk_group" in out and "atp3_risk_category" in out
    assert set(out) == {"bmi", "flags", "risk_factor_count", "screening_risk_group", "risk_group",
                        "atp3_risk_category", "atp3_risk_factor_count", "categories", "metabolic_syndrome",
                        "cvd_10y"}
