"""`nhis status` against the real services: the session's worker seen through its heartbeat, a
year's current version after a real ingest, the published statistics, Redis queue lengths, and
an unreachable database (exit 1, the Redis-backed sections still shown)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from shared import task_names
from shared.etl.jobs import create_job, wait_for_job
from tests.support.files import sample_file, wait_for_stats_with
from tests.support.system import IsolatedSystem
from tests.support.worker import wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def nhis_status(env: dict, *args: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "shared.cli", "status", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_status_shows_the_worker_the_year_and_the_statistics(resources, worker, settings, service_env):
    path = sample_file(settings.data_dir / "status", 3_000, seed=16, year=2016, style="2017")
    job_id = create_job(resources, path, expected_year=2016)
    job = wait_for_job(resources, job_id, timeout=180)
    assert job["status"] == "succeeded", job
    wait_for_stats_with(resources, job_id)

    def reported():
        done = nhis_status(service_env, "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        mine = [w for w in report["workers"] if w["node"] == worker.name]
        # A pool child replaced after its task quota shows in the next heartbeat, not this one:
        # wait for a report whose pids are the worker's current processes.
        current = {worker.proc.pid, *worker.child_pids()}
        return (report, mine[0]) if mine and set(mine[0]["pids"]) <= current else None

    report, beat = wait_until(reported, 30, 0.5, "the session worker and its current pids in nhis status")
    assert report["ok"] is True and report["mode"] == "services"
    assert all(s["ok"] for s in report["services"].values()), report["services"]
    assert worker.proc.pid in beat["pids"]
    assert len(beat["pids"]) == 1 + worker.concurrency
    assert beat["queues"] == ["etl", "stats"] and beat["seconds_since_beat"] < 10
    assert report["queues"]["transport"] == "redis"
    assert set(report["queues"]["messages"]) == {"etl", "stats"}
    assert all(isinstance(n, int) and n >= 0 for n in report["queues"]["messages"].values())

    [year] = [y for y in report["years"] if y["year"] == 2016]
    assert (year["job_id"], year["rows_loaded"], year["rows_rejected"]) == \
        (job_id, job["progress"]["rows_loaded"], job["progress"]["rows_rejected"])
    assert year["current_since"] is not None
    assert job_id not in [j["job_id"] for j in report["running_jobs"]]
    stats = report["statistics"]
    assert f"2016:job{job_id}" in stats["dataset_version"] and stats["age_seconds"] >= 0

    human = nhis_status(service_env)
    assert human.returncode == 0
    assert worker.name in human.stdout and f"2016  job {job_id}" in human.stdout


@pytest.fixture
def system(tmp_path):
    made = IsolatedSystem(tmp_path / "iso", db_proxy=True)
    yield made
    made.close()


def test_status_counts_redis_queues_and_survives_a_lost_database(system):
    """No worker here, so sent tasks wait in Redis: the counts are the broker's list lengths."""
    for _ in range(4):
        system.resources.send_task(task_names.ETL_LOAD_CHUNK, 1, 0)
    for _ in range(2):
        system.resources.send_task(task_names.STATS_REFRESH, reason="test")
    broker = redis.Redis.from_url(system.resources.settings.redis_db_url("broker"))
    assert (broker.llen("etl"), broker.llen("stats")) == (4, 2)

    done = nhis_status(system.env, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["queues"] == {"transport": "redis", "messages": {"etl": 4, "stats": 2}}
    assert report["workers"] == [] and report["statistics"] is None

    system.proxy.set_mode("blackhole")  # the database host goes silent
    lost = nhis_status(system.env, "--json")
    assert lost.returncode == 1, lost.stdout
    report = json.loads(lost.stdout)
    assert report["ok"] is False and report["services"]["database"]["ok"] is False
    assert report["services"]["cache"]["ok"] is True and report["services"]["broker"]["ok"] is True
    assert report["queues"]["messages"] == {"etl": 4, "stats": 2}
    assert report["years"] == {"error": "database unreachable"}
    human = nhis_status(system.env)
    assert human.returncode == 1 and "database  FAIL" in human.stdout and "etl: 4  stats: 2" in human.stdout
