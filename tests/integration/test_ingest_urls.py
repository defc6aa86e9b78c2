"""Ingest over HTTP with no shared folder: two workers under different node names, each with its
own empty NHIS_DATA_DIR, read their own byte ranges of a file served by a Range-capable HTTP
server; the job succeeds with exact counts and both workers loaded chunks. A file removed from
the server after the job was created fails the job cleanly."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from api import create_app
from shared.auth.keys import create_key
from shared.db.engine import unit_of_work
from shared.etl.jobs import get_job, submit_job, wait_for_job
from tests.support.files import data_lines, sample_file
from tests.support.range_server import RangeServer
from tests.support.system import IsolatedSystem

pytestmark = pytest.mark.integration
YEAR = 2021


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "served"  # no worker's NHIS_DATA_DIR: reachable only over HTTP
    path = sample_file(folder, 20_000, name="nhis-2021.csv", year=YEAR, seed=61, style="2020")
    with RangeServer(folder) as server:
        yield server, path


@pytest.fixture
def make_system(tmp_path):
    systems = []

    def make(**settings) -> IsolatedSystem:
        system = IsolatedSystem(tmp_path / f"s{len(systems)}", chunk_rows=1000, **settings)
        systems.append(system)
        return system

    yield make
    for system in systems:
        system.close()


def host_worker(system: IsolatedSystem, tmp_path, host: str):
    """A worker as on its own host: its own node name and its own, empty, NHIS_DATA_DIR."""
    data_dir = tmp_path / host / "data"
    data_dir.mkdir(parents=True)
    worker = system.worker(host, concurrency=1, node=f"etl@{host}", env={"NHIS_DATA_DIR": str(data_dir)})
    return worker, data_dir


def test_an_http_ingest_with_two_workers_and_no_shared_folder(make_system, served, tmp_path):
    server, path = served
    system = make_system(ingest_url_prefixes=server.url(""))
    resources = system.resources
    folders = [host_worker(system, tmp_path, host)[1] for host in ("host-a", "host-b")]

    api_dir = tmp_path / "api-data"
    api_dir.mkdir()
    app = create_app({"database_url": resources.settings.database_url, "redis_url": resources.settings.redis_url,
                      "data_dir": api_dir, "ingest_url_prefixes": server.url("")})
    with unit_of_work(resources.sessions) as session:
        key = create_key(session, "ingest", "etl:write")
    url = server.url(path.name)
    r = app.test_client().post("/api/v1/etl/jobs", headers={"X-API-Key": key}, json={"path": url, "year": YEAR})
    assert r.status_code == 202, r.get_json()
    job = wait_for_job(resources, r.get_json()["job_id"], timeout=240)

    p = job["progress"]
    assert job["status"] == "succeeded", job
    assert p["rows_loaded"] + p["rows_rejected"] == data_lines(path) == p["rows_total"]
    assert p["chunks_done"] == p["chunks_total"] >= 20
    with resources.engine.connect() as conn:
        stored = conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT subscriber_id) FROM screenings "
                                   "WHERE job_id = :j"), {"j": job["job_id"]}).one()
        workers = set(conn.execute(text("SELECT DISTINCT worker FROM etl_chunks WHERE job_id = :j"),
                                   {"j": job["job_id"]}).scalars())
        chunks = conn.execute(text("SELECT byte_start, byte_end FROM etl_chunks WHERE job_id = :j"),
                              {"j": job["job_id"]}).all()
    assert tuple(stored) == (p["rows_loaded"], p["rows_loaded"])
    assert workers == {"etl@host-a", "etl@host-b"}

    # every read was a range request (never the whole file), and each chunk read exactly its range
    assert server.requests and all(status == 206 for _, _, status in server.requests)
    asked = server.ranged_gets(path.name)
    assert all(f"bytes={start}-{end - 1}" in asked for start, end in chunks)
    for folder in [*folders, api_dir]:  # nothing was copied to any host's data folder
        assert not list(folder.rglob("*.csv"))


def test_a_url_removed_after_the_job_was_created_fails_the_job_cleanly(make_system, served, tmp_path):
    server, path = served
    system = make_system(ingest_url_prefixes=server.url(""))
    resources = system.resources
    job_id = submit_job(resources, server.url(path.name), YEAR).job_id  # no worker yet: queued
    path.unlink()
    host_worker(system, tmp_path, "host-a")
    job = wait_for_job(resources, job_id, timeout=120)
    assert job["status"] == "failed" and "removed after planning" in job["error"], job
    assert get_job(resources, job_id)["version"]["state"] in ("discarded", "purged")
    with resources.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM screenings WHERE job_id = :j"), {"j": job_id}).scalar() == 0
