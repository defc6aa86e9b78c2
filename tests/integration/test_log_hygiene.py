"""No secret and no person-level data in the logs of a full run.

An isolated system (its own database reached with a password, its own redis-server, its own
worker process) ingests an upload through the API, serves records, statistics and the simulator,
refuses bad keys and answers /metrics and /ready; then every log line of the API and the worker
is searched for the database password, the API keys, the metrics token, the Flower password,
the ids of the records served, whole data lines of the file and the simulated person's values.
"""

from __future__ import annotations

import io
import logging
import secrets

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.cli.db import upgrade
from shared.config import load_settings
from shared.etl.jobs import wait_for_job
from shared.logging_setup import make_formatter
from shared.resources import Resources
from tests.support import services
from tests.support.files import sample_file
from tests.support.private_redis import PrivateRedis
from tests.support.worker import WorkerProcess, wait_until

pytestmark = pytest.mark.integration
SIM = {"sex": "M", "age": 47, "sbp": 163.5, "dbp": 97.5, "fasting_glucose": 131.5, "waist_cm": 97.5}


@pytest.fixture
def system(tmp_path):
    base = make_url(services.mysql_database_url())
    name = "nhis_logs_" + secrets.token_hex(4)
    user, password = "nhis_log_" + secrets.token_hex(3), "Pw-" + secrets.token_urlsafe(18)
    root = create_engine(base.set(database=""))
    with root.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}`"))
        for host in ("%", "localhost"):
            conn.execute(text(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'"))
            conn.execute(text(f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'{host}'"))
    private = PrivateRedis(tmp_path).start()
    url = base.set(database=name, username=user, password=password).render_as_string(hide_password=False)
    secrets_ = {"db_password": password, "metrics": "m-" + secrets.token_urlsafe(24),
                "flower": "f-" + secrets.token_urlsafe(18)}
    env = {"DATABASE_URL": url, "REDIS_URL": f"redis://127.0.0.1:{private.port}/0",
           "NHIS_DATA_DIR": str(tmp_path / "data"), "LOG_FORMAT": "json", "NHIS_CHUNK_ROWS": "500",
           "NHIS_METRICS_TOKEN": secrets_["metrics"], "FLOWER_BASIC_AUTH": "ops:" + secrets_["flower"]}
    settings = load_settings(database_url=url, redis_url=env["REDIS_URL"], data_dir=env["NHIS_DATA_DIR"],
                             chunk_rows=500, metrics_token=secrets_["metrics"], access_log="all")
    resources = Resources(settings)
    upgrade(resources.engine)
    worker = WorkerProcess(env, concurrency=1, log_path=tmp_path / "worker.log").start(resources.producer)
    yield settings, resources, secrets_, tmp_path / "worker.log"
    worker.stop()
    private.kill()
    resources.dispose()
    with root.begin() as conn:
        for host in ("%", "localhost"):
            conn.execute(text(f"DROP USER IF EXISTS '{user}'@'{host}'"))
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    root.dispose()


def test_logs_of_a_full_run_hold_no_secret_and_no_person_level_data(system, tmp_path):
    from api import create_app
    from shared.auth.keys import create_key
    from shared.db.engine import unit_of_work

    settings, resources, secret, worker_log = system
    api_log = io.StringIO()
    root = logging.getLogger()
    app = create_app({"database_url": settings.database_url, "redis_url": settings.redis_url,
                      "data_dir": settings.data_dir, "metrics_token": settings.metrics_token, "access_log": "all"})
    handler = logging.StreamHandler(api_log)
    handler.setFormatter(make_formatter("json"))  # whatever format an earlier test configured
    root.addHandler(handler)
    try:
        with unit_of_work(resources.sessions) as session:
            keys = [create_key(session, f"logs-{i}", scopes) for i, scopes in
                    enumerate(["etl:write,records:read", "stats:read,simulate", "admin"])]
        ingest, reader, admin = keys
        client = app.test_client()
        csv = sample_file(tmp_path / "in", 1_200, seed=97, year=2015, style="2017")
        lines = csv.read_bytes().decode("cp949").splitlines()[1:]
        with open(csv, "rb") as handle:
            created = client.post("/api/v1/etl/jobs", headers={"X-API-Key": ingest},
                                  data={"file": (handle, "logs.csv"), "year": "2015"})
        assert created.status_code == 202, created.get_json()
        job = wait_for_job(resources, created.get_json()["job_id"], timeout=180)
        assert job["status"] == "succeeded"
        page = client.get("/api/v1/records", headers={"X-API-Key": ingest}, query_string={"limit": 20}).get_json()
        ids = [str(r["id"]) for r in page["data"]]
        assert ids and client.get(f"/api/v1/records/{ids[0]}", headers={"X-API-Key": ingest}).status_code == 200
        client.get(f"/api/v1/etl/jobs/{job['job_id']}/rejects", headers={"X-API-Key": ingest})
        assert client.post("/api/v1/simulate", headers={"X-API-Key": reader}, json=SIM).status_code == 200
        client.post("/api/v1/simulate", headers={"X-API-Key": reader}, json={**SIM, "sbp": "high"})  # a 422
        wait_until(lambda: client.get("/api/v1/stats/overview", headers={"X-API-Key": reader}).status_code == 200,
                   60, 0.5, "statistics")
        client.get("/api/v1/auth/whoami", headers={"X-API-Key": ingest[:-4] + "AAAA"})  # a wrong key
        client.get("/ready", headers={"X-API-Key": admin})
        assert client.get("/metrics", headers={"Authorization": f"Bearer {settings.metrics_token}"}).status_code == 200
    finally:
        root.removeHandler(handler)
    logs = {"api": api_log.getvalue(), "worker": worker_log.read_text(errors="replace")}
    assert '"path": "/api/v1/records/<int:record_id>"' in logs["api"]  # the access log did run
    assert "chunk" in logs["worker"]
    forbidden = {
        "database password": secret["db_password"], "metrics token": secret["metrics"],
        "Flower password": secret["flower"],
        **{f"API key {i}": key for i, key in enumerate(keys)},
        # the part after "nhis_<hex prefix>_" (token_urlsafe may itself hold "_", so not rsplit: a
        # short tail after the last "_" would match unrelated log text)
        **{f"API key {i} secret part": key.split("_", 2)[2] for i, key in enumerate(keys)},
        **{f"record id {rid}": rid for rid in ids},
        **{f"data line {n}": lines[n] for n in (0, 1, 2, 500, 1000)},
        "simulated blood pressure": "163.5", "simulated glucose": "131.5",
    }
    leaks = [(what, where) for what, value in forbidden.items() for where, text_ in logs.items() if value in text_]
    assert leaks == []
