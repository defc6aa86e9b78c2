"""Faults: a worker SIGKILLed mid-job, and Redis restarted (emptied) mid-job. Each job must still
succeed with exact counts, because job and chunk state live in the database.

Each test runs an isolated system (tests/support/system.py) so nothing else can finish the job.
"""

from __future__ import annotations

import pytest
import redis

from shared.etl.jobs import create_job, get_job, wait_for_job
from tests.support.files import assert_loaded_exactly, sample_file
from tests.support.system import IsolatedSystem
from tests.support.worker import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def system(tmp_path):
    sys_ = IsolatedSystem(tmp_path, reaper_seconds=2, chunk_timeout_seconds=10, chunk_rows=2000)
    yield sys_
    sys_.close()


def test_worker_killed_mid_job_then_a_new_worker_finishes_it(system):
    resources = system.resources
    path = sample_file(resources.settings.data_dir / "kill", 40_000, seed=21)  # 20 chunks of 2,000 rows
    system.beat()
    victim = system.worker("victim")
    job_id = create_job(resources, path)
    wait_until(lambda: get_job(resources, job_id)["progress"]["chunks_done"] >= 2, 120, 0.02, "two chunks done")
    victim.kill()
    assert get_job(resources, job_id)["status"] == "running"
    system.worker("rescuer", concurrency=2)
    job = wait_for_job(resources, job_id, timeout=240)
    assert_loaded_exactly(resources, job, path)


def test_redis_restarted_mid_job_the_reaper_finishes_it(system):
    resources = system.resources
    path = sample_file(resources.settings.data_dir / "redis", 40_000, seed=22)
    system.worker("worker")
    system.beat()
    job_id = create_job(resources, path)
    wait_until(lambda: get_job(resources, job_id)["progress"]["chunks_done"] >= 2, 120, 0.02, "two chunks done")
    redis.Redis(port=system.redis.port).set("test:marker", 1)
    system.redis.kill()  # every queued message, result, lock and heartbeat is gone
    system.redis.start()
    assert not redis.Redis(port=system.redis.port).exists("test:marker")  # nothing survived the restart
    job = wait_for_job(resources, job_id, timeout=300)
    assert_loaded_exactly(resources, job, path)
