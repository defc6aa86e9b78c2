"""Records at any scale: every filter against a direct SQL count, a cursor that survives a newly
loaded year, opaque cursors tied to their query, and a too-broad query answered in time."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from api.routes import records as records_route
from shared.auth.keys import create_key
from shared.db.engine import unit_of_work
from shared.etl.jobs import create_job, wait_for_job
from shared.records.browse import browse, encode_cursor
from tests.support.fastpath import fast_path_answers
from tests.support.files import sample_file
from tests.support.system import IsolatedSystem

pytestmark = pytest.mark.integration


@pytest.fixture
def system(tmp_path):
    made = []

    def make(**settings):
        made.append(IsolatedSystem(tmp_path / f"s{len(made)}", **settings))
        return made[-1]

    yield make
    for s in made:
        s.close()


def client_for(system, budget_seconds: float | None = None):
    from api import create_app

    app = create_app({"database_url": system.env["DATABASE_URL"], "redis_url": system.env["REDIS_URL"],
                      "data_dir": system.env["NHIS_DATA_DIR"], "rate_limits": "records:read=100000/minute",
                      "records_query_seconds": budget_seconds or system.resources.settings.records_query_seconds})
    with unit_of_work(system.resources.sessions) as session:
        key = create_key(session, f"reader-{uuid.uuid4().hex[:8]}", "records:read")
    return app.test_client(), {"X-API-Key": key}


def ingest(system, rows: int, year: int, seed: int) -> int:
    path = sample_file(system.resources.settings.data_dir / str(year), rows, name=f"{year}-{seed}.csv",
                       year=year, seed=seed)
    job = wait_for_job(system.resources, create_job(system.resources, path), timeout=180)
    assert job["status"] == "succeeded", job
    return job["job_id"]


def walk(client, headers, params: dict, stop_after: int | None = None) -> tuple[list[int], str | None]:
    """Follow next_cursor; returns every id seen (and the cursor where it stopped early)."""
    ids: list[int] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/api/v1/records", query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        ids += [r["id"] for r in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None or (stop_after is not None and len(ids) >= stop_after):
            return ids, cursor


def sql_ids(system, where: str = "1=1") -> list[int]:
    with system.resources.engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT s.id FROM screenings s JOIN year_versions v ON v.job_id = s.job_id "
            f"WHERE {where} ORDER BY s.id")).scalars())


FILTERS = [
    ({"sex": "F"}, "s.sex = 2"),
    ({"age_group": 18}, "s.age_group = 18"),
    ({"province": 36}, "s.province = 36"),
    ({"screening_risk_group": "CHD_RISK_EQUIVALENT"}, "s.screening_risk_group = 'CHD_RISK_EQUIVALENT'"),
    ({"risk_group": "CHD_RISK_EQUIVALENT"}, "s.screening_risk_group = 'CHD_RISK_EQUIVALENT'"),
    ({"flag": ["low_hdl"]}, "s.flag_low_hdl = 1"),
    ({"flag": ["hypertension", "smoking"]}, "s.flag_hypertension = 1 AND s.flag_smoking = 1"),
    ({"sex": "M", "age_group": 12, "province": 41}, "s.sex = 1 AND s.age_group = 12 AND s.province = 41"),
]


def test_every_filter_pages_exactly_what_sql_counts(system):
    sys_ = system(chunk_rows=2000)
    sys_.worker("w", concurrency=2)
    ingest(sys_, 8_000, 2021, 1)
    ingest(sys_, 8_000, 2022, 2)
    client, headers = client_for(sys_)
    for params, where in FILTERS:
        for year in (None, 2022):
            q = {**params, **({"year": year} if year else {}), "limit": 100}
            got, _ = walk(client, headers, q)
            want = sql_ids(sys_, where + (f" AND s.year = {year}" if year else ""))
            assert got == want, (params, year)
            assert want, f"the generated data should hold {params}"


def test_a_cursor_stays_valid_across_a_newly_loaded_year_and_a_reload(system):
    sys_ = system(chunk_rows=2000)
    sys_.worker("w", concurrency=2)
    ingest(sys_, 6_000, 2020, 3)
    client, headers = client_for(sys_)
    first, cursor = walk(client, headers, {"limit": 100}, stop_after=1_000)
    assert cursor is not None and len(first) == 1_000
    ingest(sys_, 5_000, 2021, 4)  # a later year appears while the client pages
    ingest(sys_, 6_000, 2020, 5)  # and the year being paged is reloaded (ids are stable)
    rest, _ = walk(client, headers, {"limit": 100, "cursor": cursor})
    assert first + rest == sorted(set(first + rest)), "no duplicates, in id order"
    assert rest == [i for i in sql_ids(sys_) if i > first[-1]]
    assert {i // 10**10 for i in rest} == {2020, 2021}


def test_cursors_are_opaque_and_tied_to_their_query(system):
    sys_ = system(chunk_rows=2000)
    sys_.worker("w", concurrency=1)
    ingest(sys_, 3_000, 2022, 6)
    client, headers = client_for(sys_)
    page = client.get("/api/v1/records", query_string={"sex": "F", "limit": 5}, headers=headers).get_json()
    cursor = page["next_cursor"]
    assert str(page["data"][-1]["id"]) not in cursor  # not the plain id
    other = client.get("/api/v1/records", query_string={"sex": "M", "cursor": cursor}, headers=headers)
    assert other.status_code == 422 and "other filters" in other.get_json()["error"]["details"]["fields"]["cursor"][0]
    for junk in ("abc", "cjEuMS5hYmM", encode_cursor(-5, {})):
        bad = client.get("/api/v1/records", query_string={"cursor": junk}, headers=headers)
        assert bad.status_code == 422, junk


def test_a_query_too_rare_to_fill_a_page_in_time_is_a_clear_503(system, monkeypatch):
    sys_ = system(chunk_rows=5000, records_query_seconds=0.005)
    sys_.worker("w", concurrency=2)
    ingest(sys_, 60_000, 2022, 7)
    client, headers = client_for(sys_)
    # Suspected diabetes always puts a person in the CHD-risk-equivalent group, so this pair of
    # filters never matches: with no index for either, the whole year is scanned in vain.
    never = {"screening_risk_group": "ZERO_TO_ONE_RISK_FACTOR", "flag": ["diabetes"]}
    slow = client.get("/api/v1/records", query_string=never, headers=headers)  # key not cached yet: the route
    assert slow.status_code == 503, slow.get_json()
    error = slow.get_json()["error"]
    assert error["code"] == "query_too_broad" and slow.headers["Retry-After"]
    # Again with the key cached: the fast path runs the query out of its budget, and the route
    # answers the same 503 without running it a second time.
    route_pages = []
    monkeypatch.setattr(records_route, "browse", lambda *a, **k: route_pages.append(a) or browse(*a, **k))
    with fast_path_answers(client.application, "_records") as answers:
        again = client.get("/api/v1/records", query_string=never, headers=headers)
    assert answers == [False] and route_pages == []
    again_error = again.get_json()["error"]
    assert again.status_code == 503 and again_error.pop("request_id") != error.pop("request_id")
    assert again_error == error
    # A plain page under an ordinary budget (5 ms is below what one page takes on a loaded 2-core CI
    # machine now and then; the budget itself is what is under test above).
    ordinary, ordinary_headers = client_for(sys_, budget_seconds=0.5)
    fast = ordinary.get("/api/v1/records", query_string={"year": 2022, "limit": 10}, headers=ordinary_headers)
    assert fast.status_code == 200 and len(fast.get_json()["data"]) == 10
