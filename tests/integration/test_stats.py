"""Statistics end to end: counts equal independent SQL counts, suppression, Redis down or
flushed, concurrent refreshes."""

from __future__ import annotations

import csv
import io
import threading

import orjson
import pytest
import redis
from sqlalchemy import text

from api import create_app
from shared.db.engine import unit_of_work
from shared.etl.jobs import create_job, wait_for_job
from shared.stats import mask_memo, store
from shared.stats.aggregate import RISK_GROUP_COLUMN, RULE_INPUTS
from shared.stats.mask_memo import forget
from shared.stats.refresh import _refresh, refresh
from tests.support.disclosure import printed_counts
from tests.support.files import sample_file, wait_for_stats_with
from tests.support.worker import wait_until

pytestmark = pytest.mark.integration
YEAR = 2021


@pytest.fixture(scope="module")
def stats_year(resources, worker, settings):
    path = sample_file(settings.data_dir / "stats", 12_000, seed=41, year=YEAR, style="2020")
    job = wait_for_job(resources, create_job(resources, path), timeout=180)
    assert job["status"] == "succeeded"
    wait_for_stats_with(resources, job["job_id"])
    return job


def get(client, key, path, **query):
    r = client.get(f"/api/v1/stats/{path}", headers={"X-API-Key": key}, query_string=query)
    assert r.status_code == 200, r.get_json()
    return r


def sql(resources, query, **params):
    with resources.engine.connect() as conn:
        return conn.execute(text(query), params).all()


def published_equal(block, **expected) -> int:
    """Every number of ``block`` that is published equals the SQL count; returns how many were."""
    shown = 0
    for name, value in expected.items():
        if block[name] is not None:
            assert block[name] == value, name
            shown += 1
        else:
            assert block.get("suppressed") is True, name
    return shown


def visible(cell):
    return cell is not None and not (isinstance(cell, dict) and cell.get("suppressed"))


def test_counts_equal_independent_sql_counts(client, api_key, resources, stats_year):
    key = api_key("stats:read")
    overview = get(client, key, "overview", year=YEAR).get_json()["data"]
    (people,) = sql(resources, "SELECT COUNT(*) FROM screenings WHERE year = :y", y=YEAR)[0]
    assert overview["people"]["n"] == people

    risk = get(client, key, "risk", year=YEAR).get_json()["data"]
    expected = dict(sql(resources, f"SELECT {RISK_GROUP_COLUMN}, COUNT(*) FROM screenings WHERE year = :y "
                                   f"GROUP BY {RISK_GROUP_COLUMN}", y=YEAR))
    for group, n in expected.items():
        cell = risk["groups"][group]
        if not cell.get("suppressed"):
            assert cell["n"] == n
            assert cell["percent"] == pytest.approx(100 * n / people, abs=0.01)

    women = sql(resources, "SELECT COUNT(*) FROM screenings WHERE year=:y AND sex=2", y=YEAR)[0][0]
    measured, positive = map(int, sql(resources, "SELECT COUNT(hdl), SUM(flag_low_hdl) FROM screenings "
                                                 "WHERE year = :y AND sex = 2", y=YEAR)[0])
    panel = get(client, key, "factors", year=YEAR, sex="F", population="complete_panel").get_json()["data"]
    low_hdl = panel["flags"]["flag_low_hdl"]
    assert published_equal(low_hdl, n=measured, n_positive=positive, not_in_panel=women - measured) >= 2
    if low_hdl["percent"] is not None:  # its own denominator: people with HDL measured, not everyone
        assert low_hdl["percent"] == pytest.approx(100 * positive / measured, abs=0.01)
    assert measured < women
    every = get(client, key, "factors", year=YEAR, sex="F").get_json()["data"]
    assert every["population"] == "all"
    low_hdl = every["flags"]["flag_low_hdl"]
    assert published_equal(low_hdl, n_positive=positive, n_unknown=women - measured) >= 1
    if low_hdl["percent_positive"] is not None:
        assert low_hdl["percent_positive"] == pytest.approx(100 * positive / women, abs=0.01)

    age = get(client, key, "age", year=YEAR).get_json()["data"]
    by_band = dict(sql(resources, "SELECT age_group, COUNT(*) FROM screenings WHERE year=:y GROUP BY age_group", y=YEAR))
    labels = {b["age_group"]: b["label"] for b in age["bands"]}
    assert labels.get(9) == "40-44" and labels.get(18, "85+") == "85+"
    for band in age["bands"]:
        if visible(band["people"]) and band["people"]["n"] is not None:
            assert band["people"]["n"] == by_band[band["age_group"]]


def test_no_published_count_is_a_small_cell(client, api_key, resources, stats_year):
    k = resources.settings.small_cell_min
    payloads = store.load_generation(resources)

    counts = [n for key, raw in payloads.items() if key != store.META_FIELD
              for n in printed_counts(orjson.loads(raw)["data"])]
    assert counts and all(n == 0 or n >= k for n in counts)
    region = orjson.loads(payloads[f"region:{YEAR}:all:all:all"])["data"]
    assert any(p["people"].get("suppressed") for p in region["provinces"]) or all(
        p["people"]["n"] >= k for p in region["provinces"])


RISK_INPUTS = RULE_INPUTS[RISK_GROUP_COLUMN]


def test_complete_panel_views_equal_sql_counts(client, api_key, resources, stats_year):
    key = api_key("stats:read")
    panel_sql = " AND ".join(f"{c} IS NOT NULL" for c in RISK_INPUTS)
    expected = dict(sql(resources, f"SELECT {RISK_GROUP_COLUMN}, COUNT(*) FROM screenings WHERE year = :y "
                                   f"AND {panel_sql} GROUP BY {RISK_GROUP_COLUMN}", y=YEAR))
    (everyone,) = sql(resources, "SELECT COUNT(*) FROM screenings WHERE year = :y", y=YEAR)[0]
    data = get(client, key, "risk", year=YEAR, population="complete_panel").get_json()["data"]
    block = data["groupings"][RISK_GROUP_COLUMN]
    assert data["population"] == "complete_panel"
    assert published_equal(block, n=sum(expected.values()), not_in_panel=everyone - sum(expected.values())) == 2
    for group, n in expected.items():
        cell = block["groups"][group]
        if not cell.get("suppressed"):
            assert cell["n"] == n and cell["percent"] == pytest.approx(100 * n / block["n"], abs=0.01)
    assert not expected.get("INDETERMINATE")  # every input measured: the group is always decided
    assert data["mean_risk_factor_count"]["lower_bound"] is False
    every = get(client, key, "risk", year=YEAR).get_json()["data"]
    assert every["mean_risk_factor_count"]["lower_bound"] is True
    assert every["groups"]["INDETERMINATE"]["n"] > 0  # counted and shown over everyone


def test_trends_and_csv(client, api_key, resources, stats_year):
    key = api_key("stats:read")
    index = get(client, key, "trends").get_json()["data"]
    assert "flag_hypertension" in [f["factor"] for f in index["factors"]] and YEAR in index["years"]
    trend = get(client, key, "trends", factor="flag_hypertension").get_json()
    assert trend["meta"]["standard_population"].startswith("WHO World Standard Population")
    national = next(e for e in trend["data"]["series"] if e["year"] == YEAR and e["sex"] == "all"
                    and e["code"] == "all")
    measured, positive = map(int, sql(resources, "SELECT COUNT(*), SUM(flag_hypertension) FROM screenings WHERE "
                                                 "year = :y AND sbp IS NOT NULL AND dbp IS NOT NULL", y=YEAR)[0])
    assert published_equal(national, n=measured, n_positive=positive) == 2
    assert national["crude"]["ci_low"] < national["crude"]["percent"] < national["crude"]["ci_high"]
    for entry in trend["data"]["series"]:  # a standardised rate, or the reason there is none
        std = entry["age_standardised"]
        assert (std["ci_low"] <= std["percent"] <= std["ci_high"]) if std["percent"] is not None else std["reason"]
    bad = client.get("/api/v1/stats/trends", headers={"X-API-Key": key}, query_string={"factor": "no_such_factor"})
    assert bad.status_code == 422 and "flag_hypertension" in bad.get_json()["error"]["details"]["fields"]["factor"][0]

    as_json = get(client, key, "risk", year=YEAR, sex="F").get_json()["data"]
    for response in (get(client, key, "risk", year=YEAR, sex="F", format="csv"),
                     client.get("/api/v1/stats/risk", headers={"X-API-Key": key, "Accept": "text/csv"},
                                query_string={"year": YEAR, "sex": "F"})):
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert response.data.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark for Excel
        assert response.headers["X-Stats-Rule-Version"] and "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
        people = next(r for r in rows if r["section"] == "people" and r["sex"] == "F")
        assert int(people["value"]) == as_json["people"]["n"]
    region = get(client, key, "region", year=YEAR, format="csv").data.decode("utf-8-sig")
    assert "서울특별시" in region
    assert client.get("/api/v1/stats/risk", headers={"X-API-Key": key},
                      query_string={"format": "xml"}).status_code == 422
    wrong = client.get("/api/v1/stats/overview", headers={"X-API-Key": key},
                       query_string={"population": "complete_panel"})
    assert wrong.status_code == 422 and "population" in wrong.get_json()["error"]["details"]["fields"]


def test_redis_down_serves_the_database_snapshot(settings, api_key, stats_year):
    with socket_free_port() as port:
        dead = create_app({"database_url": settings.database_url, "redis_url": f"redis://127.0.0.1:{port}/0",
                           "data_dir": settings.data_dir})
    r = dead.test_client().get("/api/v1/stats/risk", headers={"X-API-Key": api_key("stats:read")},
                               query_string={"year": YEAR})
    assert r.status_code == 200 and r.headers["X-Cache"] == "fallback"
    assert r.get_json()["data"]["people"]["n"] > 0


def _cold_refresh_seconds(resources) -> float:
    """How long a refresh takes here with no remembered masks (what a flushed Redis costs): the
    database holds every year the earlier test modules loaded, so this is measured, not assumed."""
    forget(resources)
    # one pass, beside the lock: the beat's refreshes keep taking it (and a caller that finds it held
    # queues another pass), and two passes at once are safe (the newer generation wins)
    return _refresh(resources, "measure")["seconds"]


def test_redis_flushed_is_warm_again_within_one_beat_interval(client, api_key, resources, stats_year, beat):
    key = api_key("stats:read")
    cold = _cold_refresh_seconds(resources)
    redis.Redis.from_url(resources.settings.redis_db_url("cache")).flushdb()  # masks go too: a cold pass
    assert get(client, key, "risk", year=YEAR).headers["X-Cache"] == "fallback"
    interval = resources.settings.stats_refresh_seconds
    # one beat interval plus one cold refresh (a tick that came just before the flush may be half done:
    # allow two), plus a second for the worker to pick the task up
    wait_until(lambda: get(client, key, "risk", year=YEAR).headers["X-Cache"] == "hit", interval + 2 * cold + 1,
               0.2, "the beat refresh to re-warm Redis")


def test_refresh_remembers_masks_in_redis_and_publishes_the_same_numbers(resources, stats_year):
    cache = redis.Redis.from_url(resources.settings.redis_db_url("cache"))

    def numbers() -> dict:
        generation = _refresh(resources, "memo")["generation"]  # one pass, beside the lock (see above)
        out = {}
        for name, raw in store.load_generation(resources, generation).items():
            body = orjson.loads(raw)
            (body.get("meta") or body).pop("computed_at", None)  # the generation's own record has no "meta"
            out[name] = body
        return out

    forget(resources)
    cold = numbers()
    remembered = set(cache.scan_iter(match=mask_memo.KEY_PREFIX + "*"))
    assert remembered, "a refresh stores each year's masks"
    warm = numbers()
    assert set(cache.scan_iter(match=mask_memo.KEY_PREFIX + "*")) == remembered  # read back, none new
    assert warm == cold
    assert forget(resources) == len(remembered)


def _at_once(*calls) -> tuple[list, list]:
    """Run each call in its own thread, all released together by a barrier: (results, errors), the
    errors surfaced rather than lost in the threads."""
    barrier, results, errors = threading.Barrier(len(calls)), [], []

    def run(call):
        barrier.wait()
        try:
            results.append(call())
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_two_refreshes_at_once_leave_one_consistent_snapshot(resources, stats_year):
    results, errors = _at_once(*[lambda: refresh(resources, "race")] * 2)
    assert errors == [] and len(results) == 2
    cache = redis.Redis.from_url(resources.settings.redis_db_url("cache"))

    def consistent():  # beat may publish a newer generation meanwhile; both stores must then agree
        cached = {k.decode(): v for k, v in cache.hgetall(store.CURRENT_KEY).items()}
        generation = cached.pop(store.GENERATION_FIELD, None)
        with unit_of_work(resources.sessions) as session:
            latest = store.latest_generation(session)
        return (cached == store.load_generation(resources, latest) and len(cached) > 1
                and generation == str(latest).encode())

    wait_until(consistent, 20, 0.2, "Redis and the database to hold the same complete generation")


def test_writers_of_one_generation_at_once_both_land_under_distinct_generations(resources, stats_year):
    """Two snapshot writes that start together read the same latest generation and insert the same
    keys: one wins, the other is refused (duplicate key, or a deadlock victim) and must write again
    under the next number rather than fail. Ten rounds, each released by a barrier."""
    meta = {"computed_at": "2026-01-01T00:00:00", "dataset_version": "race", "rule_version": "race"}

    def writer(round_no: int, n: int):
        payloads = {f"race:{k}": orjson.dumps({"round": round_no, "writer": n, "k": k}) for k in range(50)}
        return lambda: store.write_generation(resources, payloads, meta)

    for round_no in range(10):
        generations, errors = _at_once(writer(round_no, 0), writer(round_no, 1))
        assert errors == [], f"round {round_no}: {errors!r}"
        assert len(set(generations)) == 2, generations
        for generation in generations:  # each generation holds one writer's complete set
            rows = store.load_generation(resources, generation)
            writers = {orjson.loads(v)["writer"] for k, v in rows.items() if k.startswith("race:")}
            assert len(writers) == 1 and len(rows) == 51
    _refresh(resources, "after-race")  # leave a real generation current for the tests that follow


class socket_free_port:
    def __enter__(self):
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()
