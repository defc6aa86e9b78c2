"""The WSGI fast paths (warm statistics, simulate, records) answer exactly like the Flask routes they shortcut."""

from __future__ import annotations

import pytest

from tests.support.fastpath import fast_path_answers

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
    key = api_key("stats:read")  # new, so not cached: the first call goes through Flask
    first = client.get(f"/api/v1/stats/{endpoint}", headers={"X-API-Key": key}, query_string=query)
    assert "request_id" not in (first.get_json() or {})
    with fast_path_answers(app) as fast_calls:
        second = client.get(f"/api/v1/stats/{endpoint}", headers={"X-API-Key": key}, query_string=query)
    assert fast_calls == [True]  # the key is cached now, so the fast path answered
    assert first.status_code == second.status_code == 200
    assert first.data == second.data
    assert first.headers["X-Cache"] == second.headers["X-Cache"] == "hit"
    assert_same_headers(first, second)


# Values that differ per request by design; every other header must be equal on both paths.
PER_REQUEST = {"X-Request-ID", "X-Response-Time", "RateLimit-Remaining", "RateLimit-Reset", "Date"}


def assert_same_headers(flask_answer, fast_answer):
    """The shared finisher (api/finisher.py) makes both paths send the same header set."""
    names = {k for k, _ in flask_answer.headers}
    assert names == {k for k, _ in fast_answer.headers}
    for name in names - PER_REQUEST:
        assert flask_answer.headers.get(name) == fast_answer.headers.get(name), name
    assert {"X-Request-ID", "RateLimit-Limit", "X-Content-Type-Options", "Content-Security-Policy"} <= names
    assert int(fast_answer.headers["RateLimit-Remaining"]) < int(flask_answer.headers["RateLimit-Remaining"]) or \
        int(fast_answer.headers["RateLimit-Reset"]) > int(flask_answer.headers["RateLimit-Reset"])  # a new window


def test_fast_path_leaves_csv_to_flask(app, api_key, resources, worker, loaded_for_fastpath):
    client = app.test_client()
    key = api_key("stats:read")
    client.get("/api/v1/stats/risk", headers={"X-API-Key": key})  # cache the key
    with fast_path_answers(app) as answers:
        by_header = client.get("/api/v1/stats/risk", headers={"X-API-Key": key, "Accept": "text/csv"})
        by_query = client.get("/api/v1/stats/risk", headers={"X-API-Key": key}, query_string={"format": "csv"})
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
    from tests.support.files import ingest_sample, wait_for_stats_with

    job = ingest_sample(resources, settings.data_dir / "fast", 4_000, seed=61, year=2018, style="2017")
    wait_for_stats_with(resources, job["job_id"])
    return job


PEOPLE = [
    {"sex": "M", "age_group": 10, "height_cm": 175, "weight_kg": 80, "sbp": 145, "dbp": 95, "fasting_glucose": 110,
     "total_cholesterol": 250, "triglycerides": 200, "hdl": 45, "smoking": "never"},
    {"smoking": "current", "age": 62, "sex": "F", "waist_cm": 88.5, "drinking": True, "urine_protein": 3,
     "creatinine": 0.9, "hemoglobin": 11.2, "ldl": None},
    {"sex": "F", "age": 30},
]


def _spied_post(app, client, url, key, body):
    """POST through the app with a spy on the simulate fast path: (response, fast path answered)."""
    with fast_path_answers(app, "_simulate") as used:
        response = client.post(url, headers={"X-API-Key": key}, json=body)
    return response, used == [True]


@pytest.mark.parametrize("query", ["", "?include=what_if", "?include=explanations", "?include=explanations,what_if"])
@pytest.mark.parametrize("person", PEOPLE)
def test_simulate_fast_path_equals_the_flask_route(app, api_key, loaded_for_fastpath, person, query):
    client = app.test_client()
    key = api_key("simulate")
    url = "/api/v1/simulate" + query
    first = client.post(url, headers={"X-API-Key": key}, json=person)  # key not cached: Flask
    second, fast = _spied_post(app, client, url, key, person)
    assert fast
    assert first.status_code == second.status_code == 200
    assert first.data == second.data
    assert_same_headers(first, second)
    assert second.headers["Cache-Control"] == "no-store"  # the result describes one person
    body = second.get_json()
    assert ("what_if" in body) == ("what_if" in query) and ("explanations" in body) == ("explanations" in query)
    assert body["screening_risk_group"] == body["risk_group"] and body["atp3_risk_category"]


def test_simulate_include_is_validated_and_odd_queries_go_to_flask(app, api_key, loaded_for_fastpath):
    client = app.test_client()
    key = api_key("simulate")
    person = PEOPLE[0]
    client.post("/api/v1/simulate", headers={"X-API-Key": key}, json=person)  # cache the key
    bad, fast = _spied_post(app, client, "/api/v1/simulate?include=what_if,bogus", key, person)
    assert not fast and bad.status_code == 422
    assert set(bad.get_json()["error"]["details"]["fields"]) == {"include"}
    plain, fast = _spied_post(app, client, "/api/v1/simulate?include=what_if", key, person)
    assert fast
    odd, fast = _spied_post(app, client, "/api/v1/simulate?include=what_if&unrelated=1", key, person)
    assert not fast and odd.status_code == 200 and odd.data == plain.data


def test_batch_answers_each_person_like_simulate(app, api_key, loaded_for_fastpath):
    from shared.stats import peer

    peer._cache.clear()  # a "no statistics yet" answer cached by an earlier module would hide the peers
    client = app.test_client()
    key = api_key("simulate")
    people = PEOPLE * 5
    batch = client.post("/api/v1/simulate/batch", headers={"X-API-Key": key}, json={"people": people})
    assert batch.status_code == 200
    singles = [client.post("/api/v1/simulate", headers={"X-API-Key": key}, json=p).get_json() for p in people]
    assert batch.get_json()["results"] == singles
    assert all(r["peer"]["available"] and r["peer"]["measurements"] for r in singles if len(r["input"]) > 3)
    with_parts = client.post("/api/v1/simulate/batch?include=what_if,explanations", headers={"X-API-Key": key},
                             json={"people": PEOPLE}).get_json()["results"]
    full = [client.post("/api/v1/simulate?include=what_if,explanations", headers={"X-API-Key": key},
                        json=p).get_json() for p in PEOPLE]
    assert with_parts == full
    bad = client.post("/api/v1/simulate/batch", headers={"X-API-Key": key},
                      json={"people": [PEOPLE[0], {"sex": "M", "age": 50, "sbp": 900}]})
    assert bad.status_code == 422
    assert "people" in bad.get_json()["error"]["details"]["fields"]
    too_many = client.post("/api/v1/simulate/batch", headers={"X-API-Key": key}, json={"people": [PEOPLE[2]] * 1001})
    assert too_many.status_code == 422


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


# -- records: a page on the direct connection ---------------------------------------------------
RECORD_QUERIES = [
    {},
    {"year": "2018", "limit": "5"},
    {"year": "2018", "sex": "F", "age_group": "12"},
    {"province": "11", "flag": ["hypertension", "smoking"]},
    {"risk_group": "CHD_RISK_EQUIVALENT", "limit": "100"},
    {"screening_risk_group": "MULTIPLE_RISK_FACTORS", "year": "2018", "flag": "obesity"},
]


def _audited(resources, request_ids: list[str]) -> dict[str, tuple]:
    from sqlalchemy import select

    from shared.db.models import AuditLog

    stmt = select(AuditLog.request_id, AuditLog.api_key_id, AuditLog.route, AuditLog.filters, AuditLog.result_count)
    with resources.engine.connect() as conn:
        return {r[0]: tuple(r[1:]) for r in conn.execute(stmt.where(AuditLog.request_id.in_(request_ids)))}


@pytest.mark.parametrize("query", RECORD_QUERIES)
def test_records_fast_path_equals_the_flask_route(app, api_key, resources, loaded_for_fastpath, query):
    client = app.test_client()
    key, fresh = api_key("records:read"), api_key("records:read")
    first = client.get("/api/v1/records", headers={"X-API-Key": key}, query_string=query)  # not cached: Flask
    with fast_path_answers(app, "_records") as answers:
        second = client.get("/api/v1/records", headers={"X-API-Key": key}, query_string=query)
    assert answers == [True]
    assert first.status_code == second.status_code == 200
    assert first.data == second.data and first.get_json()["data"], query
    assert_same_headers(first, second)
    assert second.headers["Cache-Control"] == "no-store"
    # Both reads are in the audit log alike, under the request ids the answers carry.
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    audited = _audited(resources, ids)
    assert audited[ids[0]] == audited[ids[1]] and audited[ids[1]][3] == len(second.get_json()["data"])
    # The next page, through Flask (a key not cached yet) and through the fast path: the same.
    cursor = first.get_json()["next_cursor"]
    if cursor:
        later = {**query, "cursor": cursor}
        by_flask = client.get("/api/v1/records", headers={"X-API-Key": fresh}, query_string=later)
        with fast_path_answers(app, "_records") as answers:
            by_fast = client.get("/api/v1/records", headers={"X-API-Key": key}, query_string=later)
        assert answers == [True] and by_flask.status_code == by_fast.status_code == 200
        assert by_flask.data == by_fast.data


def test_records_fast_path_leaves_what_the_schema_must_judge_to_flask(app, api_key, loaded_for_fastpath):
    client = app.test_client()
    key = api_key("records:read")
    client.get("/api/v1/records", headers={"X-API-Key": key}, query_string={"limit": 1})  # cache the key
    odd = [{"limit": "0"}, {"sex": "X"}, {"flag": "nonsense"}, {"cursor": "abc"},
           {"cursor": "not a cursor!"}, {"province": "99"}, {"limit": "1e2"}]
    with fast_path_answers(app, "_records") as answers:
        answered = [client.get("/api/v1/records", headers={"X-API-Key": key}, query_string=q) for q in odd]
        unusual = [client.get("/api/v1/records", headers={"X-API-Key": key}, query_string=q)
                   for q in ({"colour": "red"}, {"year": ["2018", "2019"]}, {"age_group": "٣"})]
    assert answers == [False] * (len(odd) + 3)
    assert [r.status_code for r in answered] == [422] * len(odd)
    for response, query in zip(answered, odd, strict=True):
        assert set(response.get_json()["error"]["details"]["fields"]) == set(query), query
    # what the schema accepts, unusual as it is (an unknown name, a repeated value, a non-ASCII
    # digit), the route serves
    assert [r.status_code for r in unusual] == [200, 200, 200]


def test_a_lost_direct_connection_costs_one_request_the_route_and_then_reconnects(app, api_key, resources,
                                                                                   loaded_for_fastpath):
    client = app.test_client()
    key = api_key("records:read")
    headers, query = {"X-API-Key": key}, {"year": "2018", "limit": "3"}
    client.get("/api/v1/records", headers=headers, query_string=query)  # cache the key
    with fast_path_answers(app, "_records") as answers:
        before = client.get("/api/v1/records", headers=headers, query_string=query)
    assert answers == [True]
    direct = app.extensions["resources"].direct
    with resources.engine.connect() as conn:  # the server ends the fast path's connection
        conn.exec_driver_sql(f"KILL CONNECTION {direct._cursor.connection.thread_id()}")
    with fast_path_answers(app, "_records") as answers:
        during = client.get("/api/v1/records", headers=headers, query_string=query)
        after = client.get("/api/v1/records", headers=headers, query_string=query)
    assert answers == [False, True]  # the route answered once, then a new direct connection
    assert before.status_code == during.status_code == after.status_code == 200
    assert before.data == during.data == after.data
