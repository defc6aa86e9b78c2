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

    def spy(environ):
        body = fast._original_try(environ)
        fast_calls.append(body is not None)
        return body

    fast._original_try = fast._try
    fast._try = spy
    try:
        second = client.get(f"/api/v1/stats/{endpoint}", headers={"X-API-Key": key}, query_string=query)
    finally:
        fast._try = fast._original_try
    assert fast_calls == [True]  # the key is cached now, so the fast path answered
    assert first.status_code == second.status_code == 200
    assert first.data == second.data
    assert first.headers["X-Cache"] == second.headers["X-Cache"] == "hit"
    assert first.headers["Content-Type"] == second.headers["Content-Type"]
    assert second.headers["X-Request-ID"]


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
