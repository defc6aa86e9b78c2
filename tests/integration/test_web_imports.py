"""The web process stays lean: building the app and serving one request of every route family loads
neither pandas nor pyarrow, nor numpy before the batch simulator, nor Celery (tasks are only sent
by the ETL and refresh routes, which import the producer then). Run in a fresh interpreter, since
this test session itself imports pandas."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.worker import ROOT

pytestmark = pytest.mark.integration

YEAR = 2012
NEVER = {"pandas", "pyarrow", "celery", "kombu"}


def judge(problems: dict[str, list[str]]) -> None:
    """Fail naming each unexpected module and the import chain that first brought it in."""
    assert not problems, "; ".join(f"{m} via {' -> '.join(chain)}" for m, chain in sorted(problems.items()))


@pytest.fixture(scope="module")
def probe(resources, worker, settings, service_env):
    from tests.support.files import published_year

    year = published_year(resources, settings.data_dir / "lean", 600, 71, YEAR, "2017", "lean-probe",
                          "stats:read,simulate,records:read,etl:write")
    key, record = year["key"], year["record"]
    env = {**os.environ, **service_env, "NHIS_METRICS_TOKEN": "t" * 32, "PROBE_YEAR": str(YEAR),
           "PROBE_RECORD_ID": str(record), "PROBE_KEY": key}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    out = subprocess.run([sys.executable, "-m", "tests.support.web_imports"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_route_family_answered(probe):
    for family, step in probe["steps"].items():
        assert all(status == 200 for status in step["status"]), (family, step["status"])


def test_no_heavy_module_before_the_batch_simulator(probe):
    steps, chains = probe["steps"], probe["chains"]
    problems = {}
    for family, step in steps.items():
        allowed = {"numpy"} if family == "batch" else set()
        for module in set(step["loaded"]) - allowed:
            problems.setdefault(module, [f"(first seen after {family})", *chains.get(module, [])])
    judge(problems)


def test_the_batch_simulator_loads_numpy_and_nothing_else_heavy(probe):
    batch = set(probe["steps"]["batch"]["loaded"])
    judge({m: probe["chains"].get(m, []) for m in batch & NEVER})
    assert batch == {"numpy"}, batch
