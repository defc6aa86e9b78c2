"""The skeleton runs for real: migrations on MariaDB, a task sent by name runs on a real worker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from shared.cli.db import alembic_config
from shared.config import load_settings
from shared.resources import Resources
from tests.support import services
from tests.support.worker import ROOT, WorkerProcess

pytestmark = pytest.mark.integration


def test_exactly_one_alembic_head():
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, heads


def test_upgrade_then_downgrade_then_upgrade_on_mariadb(service_env):
    base = service_env["DATABASE_URL"].rsplit("/", 1)[0]
    name = "nhis_mig_" + services.unique_name("t").split("-")[1]
    server = create_engine(base + "/")
    with server.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    try:
        env = {**os.environ, **service_env, "DATABASE_URL": f"{base}/{name}"}
        for args in (["upgrade"], ["downgrade", "base"], ["upgrade"]):
            done = subprocess.run([sys.executable, "-m", "shared.cli", "db", *args], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            engine = create_engine(f"{base}/{name}")
            tables = set(inspect(engine).get_table_names())
            engine.dispose()
            expected = {"screenings", "etl_jobs", "etl_chunks", "etl_rejects", "stats_snapshots", "api_keys"}
            if args[0] == "upgrade":
                assert expected <= tables
            else:
                assert tables <= {"alembic_version"}
    finally:
        with server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


def test_task_sent_by_name_from_the_api_side_runs_on_a_real_worker(app, worker):
    producer = app.extensions["resources"].producer
    result = producer.send_task("system.ping", kwargs={"payload": "hello"})
    reply = result.get(timeout=30)
    assert reply["reply"] == "hello"
    assert reply["pid"] != os.getpid()


def test_ready_reports_each_dependency(client, worker):
    body = client.get("/ready").get_json()
    assert set(body["checks"]) == {"database", "cache", "broker", "workers", "stats"}
    for name in ("database", "cache", "broker", "workers"):
        assert body["checks"][name]["ok"], body["checks"][name]


def test_embedded_mode_runs_a_task_on_a_worker_subprocess(tmp_path, monkeypatch):
    """No DATABASE_URL/REDIS_URL: SQLite plus the filesystem broker, worker still a separate process."""
    for var in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    env = {"NHIS_DATA_DIR": str(tmp_path), "DATABASE_URL": "", "REDIS_URL": ""}
    settings = load_settings(data_dir=tmp_path)
    assert settings.embedded
    resources = Resources(settings)
    from shared.cli.db import upgrade

    upgrade(resources.engine)
    worker = WorkerProcess(env, concurrency=1, log_path=tmp_path / "worker.log").start(resources.producer)
    try:
        reply = resources.producer.send_task("system.ping", kwargs={"payload": "embedded"}).get(timeout=60)
        assert reply["reply"] == "embedded"
    finally:
        worker.stop()


def test_models_match_the_migrated_schema_on_mariadb(resources):
    """The declarative models (what the code reads and writes) and the migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from shared.db.models import Base

    with resources.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
