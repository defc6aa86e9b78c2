"""Serving under limits and failing dependencies, against real MariaDB and Redis:

- the fast paths and the Flask routes count against the same rate-limit counter in Redis;
- Redis stopped (a private redis-server): statistics from the database, the simulator answers,
  the limiter fails open for reads and closed for ETL creation, /ready says what is degraded;
- MariaDB unreachable (a TCP proxy in front of the shared server, cut by the test): 503 JSON
  with Retry-After within 2 s, then recovery without a restart;
- the statement timeout and the connection roles (no LOCAL INFILE for the API).
"""

from __future__ import annotations

import http.client
import json
import threading

import pytest
import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api import create_app
from api.observability import RATELIMIT_STORAGE_ERRORS
from api.ratelimit import LEASE_MAX
from shared.config import load_settings
from shared.etl.jobs import create_job, wait_for_job
from shared.resources import Resources
from tests.support.files import sample_file, wait_for_stats_with
from tests.support.private_redis import PrivateRedis
from tests.support.tcpproxy import TcpProxy
from tests.support.worker import wait_until

pytestmark = pytest.mark.integration
YEAR = 2016
PERSON = {"sex": "F", "age": 58, "sbp": 128.0, "dbp": 82.0, "fasting_glucose": 101.0}


@pytest.fixture(scope="module")
def loaded_2016(resources, worker, settings):
    path = sample_file(settings.data_dir / "serving", 1_500, seed=71, year=YEAR, style="2017")
    job = wait_for_job(resources, create_job(resources, path), timeout=180)
    assert job["status"] == "succeeded"
    wait_for_stats_with(resources, job["job_id"])
    return job


def same_statistics(a: bytes, b: bytes) -> bool:
    """The same published statistics. A refresh the load queued may land between two reads and
    publish the same numbers again under a later `computed_at`: only that may differ."""
    if a == b:
        return True
    a_json, b_json = json.loads(a), json.loads(b)
    a_json["meta"].pop("computed_at"), b_json["meta"].pop("computed_at")
    return a_json == b_json


def app_for(settings, **overrides):
    return create_app({"database_url": settings.database_url, "redis_url": settings.redis_url,
                       "data_dir": settings.data_dir, **overrides})


def test_fast_path_and_flask_route_count_together(settings, api_key, loaded_2016):
    app = app_for(settings, rate_limits="stats:read=6/hour,simulate=4/hour")
    client = app.test_client()
    key = api_key("stats:read,simulate")
    used = {"stats": [], "simulate": []}
    fast = app.wsgi_app
    real_stats, real_simulate = fast._stats, fast._simulate
    fast._stats = lambda env, name: used["stats"].append(real_stats(env, name)) or used["stats"][-1]
    fast._simulate = lambda env: used["simulate"].append(real_simulate(env)) or used["simulate"][-1]
    stats = [client.get("/api/v1/stats/risk", headers={"X-API-Key": key}, query_string={"year": YEAR})
             for _ in range(7)]
    assert [r.status_code for r in stats] == [200] * 6 + [429]
    answered_fast = [answer is not None for answer in used["stats"]]
    assert answered_fast[0] is False and any(answered_fast[1:6])  # first via Flask (key not cached), then fast
    assert [r.headers["RateLimit-Remaining"] for r in stats[:6]] == ["5", "4", "3", "2", "1", "0"]
    assert stats[6].get_json()["error"]["code"] == "rate_limited" and stats[6].headers["Retry-After"]
    sims = [client.post("/api/v1/simulate", headers={"X-API-Key": key}, json=PERSON) for _ in range(5)]
    assert [r.status_code for r in sims] == [200] * 4 + [429]
    assert any(answer is not None for answer in used["simulate"])
    # one counter per key and scope in the reserved Redis DB, holding exactly the requests made
    store = redis.Redis.from_url(settings.redis_db_url("ratelimit"))
    key_id = app.extensions["key_cache"].peek(key).id
    counts = {k.decode().removeprefix("nhis:rl:").rsplit(":", 3)[0]: int(store.get(k))
              for k in store.scan_iter(f"nhis:rl:*:k{key_id}:*")}
    assert counts == {"stats:read": 7, "simulate": 5}


def test_running_jobs_cap_holds_with_the_redis_lock(settings, api_key, resources):
    from shared.db.engine import unit_of_work
    from shared.db.models import EtlJob

    app = app_for(settings, max_running_jobs_per_key=1)
    client = app.test_client()
    key = api_key("etl:write")
    client.get("/api/v1/auth/whoami", headers={"X-API-Key": key})
    key_id = app.extensions["key_cache"].peek(key).id
    with unit_of_work(resources.sessions) as session:
        job = EtlJob(status="running", phase="loading", source_path="/elsewhere.csv", api_key_id=key_id)
        session.add(job)
    r = client.post("/api/v1/etl/jobs", headers={"X-API-Key": key}, json={"path": "missing.csv"})
    assert r.status_code == 429 and r.get_json()["error"]["code"] == "too_many_running_jobs"
    with unit_of_work(resources.sessions) as session:
        session.get(EtlJob, job.id).status = "failed"
    r = client.post("/api/v1/etl/jobs", headers={"X-API-Key": key}, json={"path": "missing.csv"})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "file_not_found"


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path).start()
    yield server
    server.kill()


def test_redis_stopped_reads_stay_up_and_etl_creation_fails_closed(settings, api_key, loaded_2016, private_redis):
    app = create_app({"database_url": settings.database_url, "data_dir": settings.data_dir,
                      "redis_url": f"redis://127.0.0.1:{private_redis.port}/0", "ready_cache_seconds": 0})
    client = app.test_client()
    key = api_key("stats:read,simulate,etl:write")
    h = {"X-API-Key": key}
    before = client.get("/api/v1/stats/risk", headers=h, query_string={"year": YEAR})
    assert before.status_code == 200 and before.headers["RateLimit-Remaining"]  # counted in the private Redis
    private_redis.kill()
    failed_open = RATELIMIT_STORAGE_ERRORS.labels("open")._value.get()
    # the places this process reserved before the outage are used first (still counted); once they
    # are gone the limiter cannot reach Redis and fails open: served, not counted, the error counted
    for _ in range(LEASE_MAX + 1):
        stats = client.get("/api/v1/stats/risk", headers=h, query_string={"year": YEAR})
        assert stats.status_code == 200 and stats.headers["X-Cache"] == "fallback"  # the database copy
        assert same_statistics(stats.data, before.data)
        if "RateLimit-Remaining" not in stats.headers:
            break
    assert "RateLimit-Remaining" not in stats.headers  # not counted: failed open
    assert RATELIMIT_STORAGE_ERRORS.labels("open")._value.get() > failed_open
    sim = client.post("/api/v1/simulate", headers=h, json=PERSON)
    assert sim.status_code == 200 and sim.get_json()["rule_version"]
    refused = client.post("/api/v1/etl/jobs", headers=h, json={"path": "x.csv"})
    assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "rate_limiter_unavailable"
    assert refused.headers["Retry-After"]
    ready = client.get("/ready")
    body = ready.get_json()
    assert ready.status_code == 200 and body["status"] == "degraded"
    assert {"cache", "broker", "workers"} <= set(body["degraded"]) and "database" not in body["degraded"]


class ServedApp:
    """The app behind a real HTTP server on loopback, so a request can carry a client timeout."""

    def __init__(self, app):
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def get(self, path: str, key: str | None = None, timeout: float = 2.0):
        """Fails with a socket timeout if no answer comes within `timeout` seconds."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"X-API-Key": key} if key else {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def proxied_db(settings):
    url = make_url(settings.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 3306).start()
    app = create_app({"database_url": url.set(port=proxy.port).render_as_string(hide_password=False),
                      "redis_url": settings.redis_url, "data_dir": settings.data_dir, "ready_cache_seconds": 0})
    served = ServedApp(app)
    yield proxy, served
    served.stop()
    proxy.stop()


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_database_unreachable_is_a_503_within_2s_and_recovers_without_restart(proxied_db, api_key, loaded_2016, mode):
    proxy, served = proxied_db
    key = api_key("records:read")
    status, _, _ = served.get("/api/v1/records?limit=1", key)
    assert status == 200
    proxy.set_mode(mode)
    for path in ("/api/v1/records?limit=1", "/api/v1/records/20160000000001"):
        status, headers, body = served.get(path, key, timeout=2.0)
        error = json.loads(body)["error"]
        assert status == 503 and error["code"] == "database_unavailable", (status, body[:200])
        assert headers["Retry-After"] and error["request_id"] == headers["X-Request-ID"]
    status, headers, body = served.get("/ready", timeout=2.0)
    assert status == 503 and json.loads(body)["status"] == "not_ready" and headers["Retry-After"]
    assert "database" not in json.loads(body)["degraded"]
    proxy.set_mode("forward")
    wait_until(lambda: served.get("/api/v1/records?limit=1", key)[0] == 200, 15, 0.2, "records after recovery")
    assert served.get("/ready")[0] == 200


def test_statement_timeout_turns_a_slow_query_into_a_503(settings, resources):
    from flask import Blueprint

    from api.auth import public
    from api.extensions import resources as app_resources

    app = app_for(settings, db_statement_timeout_seconds=0.5)
    slow = Blueprint("slow", __name__)

    @slow.get("/slow")
    @public
    def sleep():
        with app_resources().engine.connect() as conn:
            conn.execute(text("SELECT SLEEP(3)"))
        return {"slept": True}

    app.register_blueprint(slow)
    with app.app_context():
        with app_resources().engine.connect() as conn:
            assert float(conn.execute(text("SELECT @@max_statement_time")).scalar()) == 0.5
    r = app.test_client().get("/slow")
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "database_unavailable"
    assert r.headers["Retry-After"]


def test_only_worker_connections_may_load_local_files(settings, tmp_path):
    """LOCAL INFILE is refused on API (and CLI) connections by the client itself."""
    source = tmp_path / "one.csv"
    source.write_text("1\n")
    stmt = text(f"LOAD DATA LOCAL INFILE '{source}' INTO TABLE t_local_infile")
    worker = Resources(load_settings(database_url=settings.database_url, redis_url=settings.redis_url), role="worker")
    with worker.engine.begin() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE t_local_infile (n INT)"))
        conn.execute(stmt)
        assert conn.execute(text("SELECT COUNT(*) FROM t_local_infile")).scalar() == 1
    for role in ("api", "cli"):
        res = Resources(load_settings(database_url=settings.database_url, redis_url=settings.redis_url), role=role)
        with res.engine.begin() as conn:
            conn.execute(text("CREATE TEMPORARY TABLE t_local_infile (n INT)"))
            with pytest.raises(Exception, match="(?i)local|infile|1148|2068|not allowed"):
                conn.execute(stmt)
        res.dispose()
    worker.dispose()
