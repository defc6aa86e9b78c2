"""The web role as shipped: a real Gunicorn with gunicorn.conf.py (preloaded app, 2 workers).

- Request metrics are summed over every worker (prometheus_client's multiprocess mode), per route
  template and status, with the WSGI fast paths and the Flask path counted in the same series,
  and they survive workers being recycled.
- Nothing opened before the fork is shared: the master holds no connection, and no two workers
  hold the same socket.
"""

from __future__ import annotations

import glob
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import orjson
import psutil
import pytest

from tests.support.worker import ROOT, wait_until

pytestmark = pytest.mark.integration

YEAR = 2013
TOKEN = "m" * 40
UNTHROTTLED = ",".join(f"{bucket}=1000000/second" for bucket in
                       ("stats:read", "simulate", "records:read", "etl:write", "admin", "any", "anonymous"))
PERSON = {"sex": "F", "age": 61, "height_cm": 158, "weight_kg": 66, "sbp": 138, "dbp": 84,
          "fasting_glucose": 99, "total_cholesterol": 221, "hdl": 55, "smoking": "never"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`gunicorn api.wsgi:app --config gunicorn.conf.py` with the test's environment."""

    def __init__(self, env: dict, tmp_path, **extra):
        self.port = _free_port()
        self.metrics_dir = tmp_path / "metrics"
        self.log = tmp_path / "gunicorn.log"
        self.env = {**os.environ, **env, "WEB_BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": "2",
                    "NHIS_METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
                    "NHIS_RATE_LIMITS": UNTHROTTLED, **extra}
        self.env.pop("NHIS_METRICS_MASTER_PID", None)
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "api.wsgi:app", "--config", str(ROOT / "gunicorn.conf.py"),
                 "--log-level", "info"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: self.call("GET", "/health")[0] == 200, 60, 0.2, "gunicorn to answer /health")
        wait_until(lambda: len(self.workers()) == 2, 30, 0.2, "two workers")
        return self

    def stop(self) -> None:
        """SIGTERM to the master, as a deploy does. A worker that lost its stop signal (one sent
        while it was busy in a hook before installing its handlers) would hold the master for
        Gunicorn's 30-s graceful timeout: waiting less makes that a failure."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)

    def workers(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children()

    def call(self, method: str, path: str, headers: dict | None = None, body: dict | None = None):
        data = orjson.dumps(body) if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                         headers={**(headers or {}),
                                                  **({"Content-Type": "application/json"} if data else {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def scrape(self) -> list:
        from prometheus_client.parser import text_string_to_metric_families

        status, body = self.call("GET", "/metrics", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, body[:300]
        return [s for family in text_string_to_metric_families(body.decode()) for s in family.samples]

    def metrics(self) -> Counter:
        """{(route, method, status): count} from /metrics (the request histogram's _count series)."""
        return Counter({(s.labels["route"], s.labels["method"], s.labels["status"]): int(s.value)
                        for s in self.scrape() if s.name == "nhis_http_request_duration_seconds_count"})

    def recycles(self) -> dict[str, int]:
        return {s.labels["reason"]: int(s.value) for s in self.scrape() if s.name == "nhis_web_worker_recycles_total"}


@pytest.fixture(scope="module")
def loaded(resources, worker, settings):
    from tests.support.files import published_year

    return published_year(resources, settings.data_dir / "gunicorn", 500, 83, YEAR, "2017", "gunicorn-test",
                          "stats:read,simulate,records:read")


@pytest.fixture
def server(service_env, tmp_path):
    servers = []

    def start(**extra) -> Server:
        servers.append(Server(service_env, tmp_path, **extra).start())
        return servers[-1]

    yield start
    for one in servers:
        one.stop()


def test_request_metrics_sum_every_worker_per_route_and_status(loaded, server):
    """Workers are recycled every 60-90 requests here, so at least three processes serve; the
    totals still equal exactly what was sent, per route template, method and status."""
    web = server(WEB_MAX_REQUESTS="60")
    key = {"X-API-Key": loaded["key"]}
    plan = (
        [("GET", "/api/v1/stats/risk", key, None, 200)] * 120  # Flask once per worker, then the fast path
        + [("POST", "/api/v1/simulate", key, PERSON, 200)] * 60  # fast path once the key is cached
        + [("POST", "/api/v1/simulate", key, {**PERSON, "sbp": "138"}, 200)] * 30  # the schema's: Flask
        + [("POST", "/api/v1/simulate", key, {"sex": "X", "age": 50}, 422)] * 10
        + [("GET", f"/api/v1/records/{loaded['record']}", key, None, 200)] * 20
        + [("GET", "/api/v1/stats/risk", None, None, 401)] * 10
        + [("GET", "/no/such/page", None, None, 404)] * 5
    )
    before = web.metrics()
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda c: web.call(c[0], c[1], c[2], c[3])[0], plan))
    assert statuses == [c[4] for c in plan]
    after = web.metrics()
    delta = {k: after[k] - before[k] for k in after if after[k] != before[k] and k[0] != "/metrics"}
    assert delta == {
        ("/api/v1/stats/risk", "GET", "200"): 120,
        ("/api/v1/simulate", "POST", "200"): 90,
        ("/api/v1/simulate", "POST", "422"): 10,
        ("/api/v1/records/<int:record_id>", "GET", "200"): 20,
        ("/api/v1/stats/risk", "GET", "401"): 10,
        ("(no route)", "GET", "404"): 5,
    }
    served = {re.search(r"_(\d+)\.db$", f).group(1) for f in glob.glob(str(web.metrics_dir / "histogram_*.db"))}
    assert len(served) >= 3, served  # 255 requests, at most 90 per worker: recycled workers' counts kept
    assert "Autorestarting worker" in web.log.read_text()
    assert web.recycles().get("max_requests", 0) >= 1


def test_a_worker_above_its_memory_limit_is_replaced_after_its_request(resources, server):
    web = server(WEB_MAX_WORKER_MEMORY_MB="1", WEB_MEMORY_CHECK_EVERY="10")  # every worker is above 1 MB
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: web.call("GET", "/health")[0], range(60)))
    assert statuses == [200] * 60  # nobody sees the replacement
    assert web.recycles().get("memory", 0) >= 1
    assert "WEB_MAX_WORKER_MEMORY_MB=1, recycling" in web.log.read_text()


def test_both_paths_observe_the_same_series_once_per_request(app, loaded):
    """In-process, with a spy on the fast path: the Flask route and the fast path each add exactly
    one observation to the same (route, method, status) series."""
    from prometheus_client import REGISTRY

    labels = {"route": "/api/v1/stats/risk", "method": "GET", "status": "200"}

    def count() -> float:
        return REGISTRY.get_sample_value("nhis_http_request_duration_seconds_count", labels) or 0

    client = app.test_client()
    app.extensions["key_cache"]._positive.clear()  # the first call goes through Flask
    fast, answered = app.wsgi_app, []
    original = fast._stats
    fast._stats = lambda environ, name: answered.append(original(environ, name)) or answered[-1]
    try:
        for _ in range(2):
            first = count()
            assert client.get("/api/v1/stats/risk", headers={"X-API-Key": loaded["key"]}).status_code == 200
            assert count() == first + 1
    finally:
        fast._stats = original
    assert [a is not None for a in answered] == [False, True]  # Flask first, then the fast path


def _established(proc: psutil.Process) -> set:
    return {(c.laddr, c.raddr) for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_ESTABLISHED}


def test_nothing_opened_before_the_fork_is_shared(loaded, server, settings):
    """The master builds the app (preload) and holds no connection; each worker opens its own
    database and Redis connections after the fork, before its first request (only /health, which
    touches neither, has been called), and no two workers hold the same socket, also after serving."""
    from sqlalchemy.engine import make_url

    web = server()
    key = {"X-API-Key": loaded["key"]}
    ports = {make_url(settings.database_url).port or 3306, int(settings.redis_url.rsplit(":", 1)[1].split("/")[0])}

    def every_worker_connected() -> bool:
        return all({raddr.port for _laddr, raddr in _established(w)} >= ports for w in web.workers())

    wait_until(every_worker_connected, 30, 0.1, "both workers connected to the database and Redis")
    with ThreadPoolExecutor(4) as pool:  # records use the database, stats Redis
        statuses = set(pool.map(lambda path: web.call("GET", path, key)[0],
                                [f"/api/v1/records/{loaded['record']}", "/api/v1/stats/risk"] * 8))
    assert statuses == {200}
    master = psutil.Process(web.proc.pid)
    assert _established(master) == set()
    first, second = (_established(w) for w in web.workers())
    assert first and second and not first & second


def test_after_fork_gives_the_child_its_own_database_connection(settings):
    """`Resources.dispose` (what api.wsgi.after_fork calls) in a forked child: the child connects
    anew, and the parent's pooled connection is left open for the parent."""
    from sqlalchemy import text

    from shared.resources import Resources

    res = Resources(settings, role="api")
    with res.engine.connect() as conn:
        parent_id = conn.scalar(text("SELECT CONNECTION_ID()"))
    pid = os.fork()
    if pid == 0:  # the child: report by exit code only
        code = 2
        try:
            res.dispose()
            with res.engine.connect() as conn:
                code = 0 if conn.scalar(text("SELECT CONNECTION_ID()")) != parent_id else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with res.engine.connect() as conn:
        assert conn.scalar(text("SELECT CONNECTION_ID()")) == parent_id
    res.engine.dispose()


@pytest.mark.parametrize("role", ["api", "worker"])
def test_connections_share_one_tls_context_and_keep_tls_optional(settings, role):
    """PyMySQL's default TLS context (CA bundle loaded: tens of ms) is built once per process, not
    per connection; TLS stays what PyMySQL makes it without options: offered, not required."""
    from shared.db.engine import connection_class
    from shared.resources import Resources

    res = Resources(settings, role=role)
    first, second = res.engine.connect(), res.engine.connect()  # two pooled connections
    try:
        a, b = first.connection.dbapi_connection, second.connection.dbapi_connection
        assert a is not b and isinstance(a, connection_class())
        assert a.ctx is b.ctx is connection_class().preferred()
        assert a._ssl_required is False  # a server without TLS (as here) still answers
    finally:
        first.close()
        second.close()
        res.engine.dispose()
