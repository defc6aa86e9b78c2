"""Celery task metrics come from Flower's /metrics (docs/OPERATIONS.md, "Metrics and alerts"): a
real Flower, started as the Procfile starts it (flowerconfig.py, basic auth), sees the session's
worker online and counts a task it ran, under the metric names the documented alerts use."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from shared import task_names
from tests.support.worker import ROOT, wait_until

pytestmark = pytest.mark.integration
CREDENTIALS = "ops:a-long-flower-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def flower(service_env, tmp_path):
    port = _free_port()
    log = open(tmp_path / "flower.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app", "flower", "--conf=flowerconfig.py",
         f"--port={port}", "--address=127.0.0.1"],
        cwd=ROOT, env={**os.environ, **service_env, "FLOWER_BASIC_AUTH": CREDENTIALS},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: get(url + "/healthcheck")[0] == 200, 60, 0.3, "Flower to answer")
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=20)
    log.close()


def get(url: str, auth: bool = False) -> tuple[int, str]:
    headers = {"Authorization": "Basic " + base64.b64encode(CREDENTIALS.encode()).decode()} if auth else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""


def samples(url: str) -> list:
    from prometheus_client.parser import text_string_to_metric_families

    status, body = get(url + "/metrics", auth=True)
    assert status == 200
    return [s for family in text_string_to_metric_families(body) for s in family.samples]


def test_flower_counts_tasks_and_sees_the_worker(flower, worker, resources):
    assert get(flower + "/")[0] == 401  # the UI needs the flowerconfig.py credentials
    assert get(flower + "/", auth=True)[0] == 200
    node = worker.name

    def online() -> bool:
        return any(s.name == "flower_worker_online" and s.labels["worker"] == node and s.value == 1
                   for s in samples(flower))

    wait_until(online, 30, 0.5, f"Flower to see {node} online")
    resources.producer.send_task(task_names.SYSTEM_PING, args=["metrics"])

    def succeeded() -> float:
        return sum(s.value for s in samples(flower) if s.name == "flower_events_total"
                   and s.labels == {"worker": node, "type": "task-succeeded", "task": task_names.SYSTEM_PING})

    wait_until(succeeded, 30, 0.5, "Flower to count the ping as succeeded")
    assert "flower_task_runtime_seconds_bucket" in {s.name for s in samples(flower)}
    # Flower sets the executing-tasks gauge from the worker's heartbeat events (every 2 s), not from
    # the online event: wait for one
    wait_until(lambda: any(s.name == "flower_worker_number_of_currently_executing_tasks" and s.labels["worker"] == node
                           for s in samples(flower)), 30, 0.5, "Flower to read a heartbeat of the worker")
