"""Faults: a worker SIGKILLed mid-job, and Redis restarted (emptied) mid-job. Each job must still
succeed with exact counts, because job and chunk state live in the database.

Each test runs an isolated system (its own MariaDB database, its own redis-server, its own
worker and beat processes) so nothing else can finish the job for it.
"""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import create_engine, text

from shared.cli.db import upgrade
from shared.config import load_settings
from shared.etl.jobs import create_job, get_job, wait_for_job
from shared.resources import Resources
from tests.support import services
from tests.support.files import data_lines, sample_file
from tests.support.private_redis import PrivateRedis
from tests.support.worker import BeatProcess, WorkerProcess, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def isolated(tmp_path):
    base = services.mysql_database_url().rsplit("/", 1)[0]
    name = "nhis_fault_" + services.unique_name("x").split("-")[1]
    server = create_engine(base + "/")
    with server.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    private = PrivateRedis(tmp_path).start()
    env = {
        "DATABASE_URL": f"{base}/{name}", "REDIS_URL": f"redis://127.0.0.1:{private.port}/0",
        "NHIS_DATA_DIR": str(tmp_path / "data"), "NHIS_REAPER_SECONDS": "2",
        "NHIS_CHUNK_TIMEOUT_SECONDS": "10", "NHIS_CHUNK_ROWS": "2000", "LOG_FORMAT": "json",
    }
    resources = Resources(load_settings(
        database_url=env["DATABASE_URL"], redis_url=env["REDIS_URL"], data_dir=env["NHIS_DATA_DIR"],
        reaper_seconds=2, chunk_timeout_seconds=10, chunk_rows=2000,
    ))
    upgrade(resources.engine)
    procs = []
    yield env, resources, private, procs
    for proc in procs:
        proc.stop()
    private.kill()
    resources.dispose()
    with server.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    server.dispose()


def exact_counts(resources, job, path):
    p = job["progress"]
    assert job["status"] == "succeeded", job
    assert p["rows_loaded"] + p["rows_rejected"] == data_lines(path)
    with resources.engine.connect() as conn:
        stored = conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT subscriber_id) FROM screenings WHERE job_id = :j"),
                              {"j": job["job_id"]}).one()
    assert tuple(stored) == (p["rows_loaded"], p["rows_loaded"])


def test_worker_killed_mid_job_then_a_new_worker_finishes_it(isolated, tmp_path):
    env, resources, _redis, procs = isolated
    path = sample_file(resources.settings.data_dir / "kill", 40_000, seed=21)  # 20 chunks of 2,000 rows
    procs.append(BeatProcess(env, tmp_path / "schedule", log_path=tmp_path / "beat.log").start())
    victim = WorkerProcess(env, concurrency=1, log_path=tmp_path / "victim.log").start(resources.producer)
    procs.append(victim)
    job_id = create_job(resources, path)
    wait_until(lambda: get_job(resources, job_id)["progress"]["chunks_done"] >= 2, 120, 0.02, "two chunks done")
    victim.kill()
    assert get_job(resources, job_id)["status"] == "running"
    procs.append(WorkerProcess(env, concurrency=2, log_path=tmp_path / "rescuer.log").start(resources.producer))
    job = wait_for_job(resources, job_id, timeout=240)
    exact_counts(resources, job, path)


def test_redis_restarted_mid_job_the_reaper_finishes_it(isolated, tmp_path):
    env, resources, private, procs = isolated
    path = sample_file(resources.settings.data_dir / "redis", 40_000, seed=22)
    procs.append(WorkerProcess(env, concurrency=1, log_path=tmp_path / "worker.log").start(resources.producer))
    procs.append(BeatProcess(env, tmp_path / "schedule", log_path=tmp_path / "beat.log").start())
    job_id = create_job(resources, path)
    wait_until(lambda: get_job(resources, job_id)["progress"]["chunks_done"] >= 2, 120, 0.02, "two chunks done")
    redis.Redis(port=private.port).set("test:marker", 1)
    private.kill()  # every queued message, result and lock is gone
    private.start()
    assert not redis.Redis(port=private.port).exists("test:marker")  # nothing survived the restart
    job = wait_for_job(resources, job_id, timeout=300)
    exact_counts(resources, job, path)
