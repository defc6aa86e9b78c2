"""The WSGI fast path for warm statistics answers exactly like the Flask route it shortcuts."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

CASES = [
    ("risk", {}),
    ("risk", {"sex": "F", "age_group": "9"}),
    ("factors", {"year": "2018"}),
    ("percentiles", {"sex": "M"}),
    ("overview", {}),
    ("region", {"population": "complete_panel", "sex": "F"}),
    ("factors", {"population": "all", "age_group": "12"}),
    ("trends", {"factor": "flag_diabetes"}),
    ("trends", {}),
]


@pytest.mark.parametrize(("endpoint", "query"), CASES)
def test_fast_path_equals_the_flask_route(app, api_key, resources, worker, loaded_for_fastpath, endpoint, query):
    client = app.test_client()
    key = api_key("stats:read")
    app.extensions["key_cache"]._entries.pop(key, None)
    first = client.get(f"/api/v1/stats/{endpoint}", headers={"X-API-Key": key}, query_string=query)
    assert "request_id" not in (first.get_json() or {})
    fast_calls = []
    fast = app.wsgi_app
    original = fast._stats

    def spy(environ, name):
        answer = original(environ, name)
        fast_calls.append(answer is not None)
        return answer

    fast._stats = spy
    try:
        second = client.get(f"/api/v1/stats/{endpoint}", headers={"X-API-Key": key}, query_string=query)
    finally:
        fast._stats = original
    assert fast_calls == [True]  # the key is cached now, so the fast path answered
    assert first.status_code == second.status_code == 200
    assert first.data == second.data
    assert first.headers["X-Cache"] == second.headers["X-Cache"] == "hit"
    assert first.headers["Content-Type"] == second.headers["Content-Type"]
    assert second.headers["X-Request-ID"]


def test_fast_path_leaves_csv_to_flask(app, api_key, resources, worker, loaded_for_fastpath):
    client = app.test_client()
    key = api_key("stats:read")
    client.get("/api/v1/stats/risk", headers={"X-API-Key": key})  # cache the key
    fast = app.wsgi_app
    original, answers = fast._stats, []

    def spy(environ, name):
        answer = original(environ, name)
        answers.append(answer is not None)
        return answer

    fast._stats = spy
    try:
        by_header = client.get("/api/v1/stats/risk", headers={"X-API-Key": key, "Accept": "text/csv"})
        by_query = client.get("/api/v1/stats/risk", headers={"X-API-Key": key}, query_string={"format": "csv"})
    finally:
        fast._stats = original
    assert answers == [False, False]  # neither took the JSON fast path
    assert by_header.status_code == by_query.status_code == 200
    assert by_header.data == by_query.data and by_header.mimetype == "text/csv"


def test_fast_path_leaves_errors_to_flask(app, api_key, loaded_for_fastpath):
    client = app.test_client()
    key = api_key("stats:read")
    client.get("/api/v1/stats/risk", headers={"X-API-Key": key})  # cache the key
    r = client.get("/api/v1/stats/age", headers={"X-API-Key": key}, query_string={"age_group": 9})
    assert r.status_code == 422 and r.get_json()["error"]["details"]["fields"]["age_group"]
    r = client.get("/api/v1/stats/risk", headers={"X-API-Key": key}, query_string={"sex": "X"})
    assert r.status_code == 422
    other = api_key("simulate")
    client.get("/api/v1/auth/whoami", headers={"X-API-Key": other})
    assert client.get("/api/v1/stats/risk", headers={"X-API-Key": other}).status_code == 403


@pytest.fixture(scope="module")
def loaded_for_fastpath(resources, worker, settings):
    from shared.etl.jobs import create_job, wait_for_job
    from tests.support.files import sample_file, wait_for_stats_with

    path = sample_file(settings.data_dir / "fast", 4_000, seed=61, year=2018, style="2017")
    job = wait_for_job(resources, create_job(resources, path), timeout=180)
    assert job["status"] == "succeeded"
    wait_for_stats_with(resources, job["job_id"])
    return job


PEOPLE = [
    {"sex": "M", "age_group": 10, "height_cm": 175, "weight_kg": 80, "sbp": 145, "dbp": 95, "fasting_glucose": 110,
     "total_cholesterol": 250, "triglycerides": 200, "hdl": 45, "smoking": "never"},
    {"smoking": "current", "age": 62, "sex": "F", "waist_cm": 88.5, "drinking": True, "urine_protein": 3,
     "creatinine": 0.9, "hemoglobin": 11.2, "ldl": None},
    {"sex": "F", "age": 30},
]


@pytest.mark.parametrize("person", PEOPLE)
def test_simulate_fast_path_equals_the_flask_route(app, api_key, loaded_for_fastpath, person):
    client = app.test_client()
    key = api_key("simulate")
    first = client.post("/api/v1/simulate", headers={"X-API-Key": key}, json=person)  # key not cached: Flask
    used = []
    fast = app.wsgi_app
    original = fast._simulate

    def spy(environ):
        answer = original(environ)
        used.append(answer is not None)
        return answer

    fast._simulate = spy
    try:
        second = client.post("/api/v1/simulate", headers={"X-API-Key": key}, json=person)
    finally:
        fast._simulate = original
    assert used == [True]
    assert first.status_code == second.status_code == 200
    assert first.data == second.data
    assert first.headers["Content-Type"] == second.headers["Content-Type"]


@pytest.mark.parametrize(
    "body",
    [
        {"sex": "M"},  # no age
        {"sex": "M", "age": 50, "sbp": 900},
        {"sex": "M", "age": 50, "sbp": "150"},  # a string: the schema decides
        {"sex": "M", "age": 50, "shoe_size": 44},
        {"sex": "X", "age": 50},
        {"sex": "M", "age": True},
    ],
)
def test_simulate_fast_path_declines_what_the_schema_must_judge(app, api_key, body):
    from api.routes.simulate import PersonSchema, quick_person

    assert quick_person(body) is None
    client = app.test_client()
    key = api_key("simulate")
    flask_first = client.post("/api/v1/simulate", headers={"X-API-Key": key}, json=body)
    again = client.post("/api/v1/simulate", headers={"X-API-Key": key}, json=body)  # key cached now
    assert flask_first.status_code == again.status_code
    assert (flask_first.status_code == 200) == (not PersonSchema().validate(body))
