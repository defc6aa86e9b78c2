"""The HTTP surface against real MariaDB, Redis and a real worker: uploads, jobs, records,
statistics and the simulator."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from api import create_app
from shared.db.models import screenings
from shared.etl.jobs import wait_for_job
from tests.support.files import ingest_sample, sample_file
from tests.support.worker import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def loaded(resources, worker, settings):
    """One succeeded 2023 job to read from (records and statistics)."""
    return ingest_sample(resources, settings.data_dir / "api", 8_000, seed=31, year=2023, style="2024")


def test_upload_rules(app, client, api_key, settings):
    key = api_key("etl:write")
    h = {"X-API-Key": key}
    r = client.post("/api/v1/etl/jobs", headers=h, data={"file": (io.BytesIO(b"a,b\n1,2\n"), "x.txt")})
    assert r.status_code == 415 and r.get_json()["error"]["code"] == "unsupported_media_type"
    r = client.post("/api/v1/etl/jobs", headers=h, json={"path": "../../etc/passwd"})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "path_outside_data_dir"
    header_only = "기준년도,가입자일련번호,시도코드\n2024,1,11\n".encode("cp949")
    r = client.post("/api/v1/etl/jobs", headers=h, data={"file": (io.BytesIO(header_only), "short.csv")})
    body = r.get_json()["error"]
    assert r.status_code == 422 and body["code"] == "missing_columns"
    assert {"sex", "age_group"} <= set(body["details"]["missing"])
    r = client.post("/api/v1/etl/jobs", headers=h, json={"path": "x.csv", "colour": "red"})
    assert r.status_code == 422 and "colour" in r.get_json()["error"]["details"]["fields"]
    small = create_app({"database_url": settings.database_url, "redis_url": settings.redis_url,
                        "data_dir": settings.data_dir, "upload_max_mb": 1})
    big = io.BytesIO(b"0" * (2 * 1024 * 1024))
    r = small.test_client().post("/api/v1/etl/jobs", headers=h, data={"file": (big, "big.csv")})
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "request_entity_too_large"


def test_upload_is_ingested_and_progress_and_rejects_are_visible(client, api_key, worker, resources, settings):
    key = api_key("etl:write")
    path = sample_file(settings.data_dir / "upload-src", 3_000, seed=32, year=2022, style="2020")
    with open(path, "rb") as handle:
        r = client.post("/api/v1/etl/jobs", headers={"X-API-Key": key},
                        data={"file": (handle, "nhis-2022.csv"), "year": "2022"})
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    job = wait_for_job(resources, body["job_id"], timeout=120)
    assert job["status"] == "succeeded"
    shown = client.get(body["links"]["self"], headers={"X-API-Key": key}).get_json()
    assert shown["progress"]["rows_loaded"] == job["progress"]["rows_loaded"]
    assert shown["progress"]["chunks_done"] == shown["progress"]["chunks_total"]
    rejects = client.get(body["links"]["rejects"], headers={"X-API-Key": key}).get_json()
    assert all({"line_no", "column", "reason", "raw_value"} <= set(r) for r in rejects["data"])


def test_records_need_the_scope_and_page_by_cursor(client, api_key, loaded, resources):
    assert client.get("/api/v1/records", headers={"X-API-Key": api_key("stats:read")}).status_code == 403
    h = {"X-API-Key": api_key("records:read")}
    seen, cursor = [], None
    for _ in range(3):
        q = {"year": 2023, "sex": "F", "limit": 50, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/records", headers=h, query_string=q).get_json()
        assert all(r["sex"] == "F" and r["year"] == 2023 for r in page["data"])
        seen += [r["id"] for r in page["data"]]
        cursor = page["next_cursor"]
    assert seen == sorted(seen) and len(set(seen)) == 150
    one = client.get(f"/api/v1/records/{seen[0]}", headers=h).get_json()
    assert one["age_group"]["label"] in {"20-24", "25-29", "30-34", "35-39", "40-44", "45-49", "50-54",
                                         "55-59", "60-64", "65-69", "70-74", "75-79", "80-84", "85+"}
    assert one["rule_version"] and "not a diagnosis" in one["disclaimer"]
    flagged = client.get("/api/v1/records", headers=h,
                         query_string={"year": 2023, "flag": ["diabetes", "smoking"], "limit": 100}).get_json()
    assert all(r["flags"]["diabetes"] and r["flags"]["smoking"] for r in flagged["data"])
    with resources.engine.connect() as conn:
        expected = conn.execute(select(func.count()).select_from(screenings).where(
            screenings.c.year == 2023, screenings.c.flag_diabetes.is_(True), screenings.c.flag_smoking.is_(True)
        )).scalar()
    assert len(flagged["data"]) == min(expected, 100)
    bad = client.get("/api/v1/records", headers=h, query_string={"limit": 500, "sex": "X"})
    assert bad.status_code == 422 and {"limit", "sex"} <= set(bad.get_json()["error"]["details"]["fields"])
    assert client.get("/api/v1/records/999999999", headers=h).status_code == 404


def test_stats_are_served_warm_from_redis(client, api_key, loaded, resources):
    from tests.support.files import wait_for_stats_with

    wait_for_stats_with(resources, loaded["job_id"])
    h = {"X-API-Key": api_key("stats:read")}
    r = client.get("/api/v1/stats/risk", headers=h, query_string={"year": 2023})
    assert r.status_code == 200 and r.headers["X-Cache"] == "hit"
    body = r.get_json()
    assert set(body["meta"]) >= {"computed_at", "dataset_version", "rule_version", "stale", "small_cell_min"}
    latest = client.get("/api/v1/stats/overview", headers=h)
    assert latest.status_code == 200
    assert client.get("/api/v1/stats/age", headers=h, query_string={"age_group": 9}).status_code == 422


def test_simulate_validates_and_explains(client, api_key):
    h = {"X-API-Key": api_key("simulate")}
    person = {"sex": "M", "age": 55, "height_cm": 170, "weight_kg": 80, "sbp": 152, "dbp": 96,
              "fasting_glucose": 110, "total_cholesterol": 213, "hdl": 50, "smoking": "never"}
    r = client.post("/api/v1/simulate", headers=h, json=person)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["flags"]["hypertension"] is True and body["flags"]["triglycerides" if False else "high_triglycerides"] is None
    assert body["risk_group"] in {"MULTIPLE_RISK_FACTORS", "INDETERMINATE"}
    assert body["rule_version"] and body["disclaimer"]
    bad = client.post("/api/v1/simulate", headers=h, json={"sex": "X", "sbp": 900, "shoe_size": 44})
    fields = bad.get_json()["error"]["details"]["fields"]
    assert bad.status_code == 422 and {"sex", "sbp", "shoe_size"} <= set(fields)
    batch = client.post("/api/v1/simulate/batch", headers=h, json={"people": [person] * 3})
    assert batch.status_code == 200 and len(batch.get_json()["results"]) == 3


def test_refresh_needs_admin(client, api_key):
    assert client.post("/api/v1/stats/refresh", headers={"X-API-Key": api_key("stats:read")}).status_code == 403
    r = client.post("/api/v1/stats/refresh", headers={"X-API-Key": api_key("admin")})
    assert r.status_code == 202


def test_ready_turns_green_once_stats_exist(client, worker, loaded, resources):
    # 200 as soon as the database answers; "ready" (nothing degraded) once statistics exist too
    wait_until(lambda: client.get("/ready").get_json()["status"] == "ready", 60, 0.5, "/ready to say ready")
    assert client.get("/ready").status_code == 200
