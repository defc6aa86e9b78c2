"""The embedded default end to end: no DATABASE_URL/REDIS_URL, SQLite + filesystem broker,
worker as a separate process; ingest through Celery, then statistics served from the database."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from api import create_app
from shared.auth.keys import create_key
from shared.cli.db import upgrade
from shared.config import load_settings
from shared.db.engine import unit_of_work
from shared.etl.jobs import create_job, wait_for_job
from shared.resources import Resources
from tests.support.files import data_lines, sample_file
from tests.support.worker import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


def test_embedded_ingest_and_stats(tmp_path, monkeypatch):
    for var in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings(data_dir=tmp_path, chunk_rows=1500)
    assert settings.embedded and settings.sqlalchemy_url.startswith("sqlite")
    resources = Resources(settings)
    upgrade(resources.engine)
    env = {"NHIS_DATA_DIR": str(tmp_path), "DATABASE_URL": "", "REDIS_URL": "", "NHIS_CHUNK_ROWS": "1500"}
    worker = WorkerProcess(env, concurrency=2, log_path=tmp_path / "worker.log").start(resources.producer)
    try:
        path = sample_file(tmp_path / "in", 5_000, seed=51)
        job = wait_for_job(resources, create_job(resources, path), timeout=180)
        assert job["status"] == "succeeded", job
        p = job["progress"]
        assert p["chunks_total"] >= 3 and p["rows_loaded"] + p["rows_rejected"] == data_lines(path)
        with resources.engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM screenings")).scalar() == p["rows_loaded"]

        app = create_app({"data_dir": tmp_path})
        with unit_of_work(resources.sessions) as session:
            key = create_key(session, "embedded", "stats:read")
        client = app.test_client()

        def served():
            r = client.get("/api/v1/stats/overview", headers={"X-API-Key": key})
            return r if r.status_code == 200 and r.get_json()["data"]["people"]["n"] == p["rows_loaded"] else None

        r = wait_until(served, 60, 0.3, "the refresh after the job to publish statistics")
        assert r.headers["X-Cache"] == "database"
    finally:
        worker.stop()
        resources.dispose()
