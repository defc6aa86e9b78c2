"""Worker heartbeats: a live node is seen with its pool pids; a SIGKILLed node disappears."""

from __future__ import annotations

import pytest

from shared.heartbeat import alive_workers, holder_alive, ttl_seconds
from tests.support.worker import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


def test_live_worker_beats_with_its_pool_pids(resources, worker):
    beats = wait_until(lambda: alive_workers(resources).get(worker.name), 15, 0.2, "the worker's heartbeat")
    children = set(worker.child_pids())
    assert worker.proc.pid in beats.pids or children & set(beats.pids)
    assert children <= set(beats.pids), "every pool process is listed"
    assert "etl" in beats.queues and "stats" in beats.queues
    assert holder_alive(alive_workers(resources), worker.name, max(children))
    assert not holder_alive(alive_workers(resources), worker.name, 1)  # not one of its pids


def test_killed_worker_stops_beating_within_the_ttl(resources, service_env, tmp_path):
    env = {**service_env, "NHIS_WORKER_HEARTBEAT_SECONDS": "0.5"}
    doomed = WorkerProcess(env, concurrency=1, log_path=tmp_path / "doomed.log").start(resources.producer)
    wait_until(lambda: doomed.name in alive_workers(resources), 15, 0.2, "the doomed worker's heartbeat")
    doomed.kill()
    # the session settings say 2 s per beat, the doomed node 0.5 s: its key lives at most 5 beats
    wait_until(lambda: doomed.name not in alive_workers(resources), ttl_seconds(resources.settings) + 5, 0.2,
               "the killed worker's heartbeat to expire")


def test_clean_shutdown_removes_the_heartbeat_at_once(resources, service_env, tmp_path):
    node = WorkerProcess(service_env, concurrency=1, log_path=tmp_path / "clean.log").start(resources.producer)
    wait_until(lambda: node.name in alive_workers(resources), 15, 0.2, "the worker's heartbeat")
    node.stop()
    assert node.name not in alive_workers(resources)
