"""Creating ingest jobs from URLs on an embedded (SQLite) app: each refusal is a clear 4xx naming
the field before any job exists; an accepted URL records its version; the CLI's idempotency key
comes from the URL and its version, never from downloading the file."""

from __future__ import annotations

import json
import os
import socket
import types

import pytest
from click.testing import CliRunner

from api import create_app
from shared.auth.keys import create_key
from shared.cli.etl import ingest_command
from shared.config import load_settings
from shared.db.engine import unit_of_work
from shared.db.models import EtlJob
from shared.resources import Resources
from tests.support.files import sample_file
from tests.support.range_server import RangeServer


@pytest.fixture
def server(tmp_path):
    folder = tmp_path / "served"
    sample_file(folder, 3_000, name="nhis-2022.csv", year=2022, seed=3)  # ~300 KB
    (folder / "archive.csv").write_bytes(b"PK\x03\x04" + bytes(200))
    with RangeServer(folder) as srv:
        yield srv


@pytest.fixture
def make_app(tmp_path, monkeypatch):
    for var in ("DATABASE_URL", "REDIS_URL", "NHIS_INGEST_URL_PREFIXES"):
        monkeypatch.delenv(var, raising=False)
    made = []

    def make(**overrides):
        from shared.cli.db import upgrade

        overrides = {"data_dir": tmp_path / "data", "database_url": None, "redis_url": None,
                     "log_format": "console", **overrides}
        (tmp_path / "data").mkdir(exist_ok=True)
        resources = Resources(load_settings(**overrides))
        upgrade(resources.engine)
        app = create_app(overrides)
        app.extensions["resources"] = resources
        with unit_of_work(resources.sessions) as session:
            key = create_key(session, f"k{len(made)}", "etl:write")
        made.append(resources)
        return app.test_client(), {"X-API-Key": key}, resources

    yield make
    for resources in made:
        resources.dispose()


def error_of(response):
    return response.status_code, response.get_json()["error"]


def test_urls_are_refused_while_no_prefix_is_configured(make_app, server):
    client, headers, _ = make_app()
    status, error = error_of(client.post("/api/v1/etl/jobs", headers=headers,
                                         json={"path": server.url("nhis-2022.csv")}))
    assert status == 400 and error["code"] == "url_not_allowed"
    assert error["details"]["field"] == "path" and "NHIS_INGEST_URL_PREFIXES" in error["message"]
    assert not server.requests  # refused before anything was fetched


def test_each_url_problem_is_a_clear_4xx_before_a_job_exists(make_app, server, tmp_path):
    with RangeServer(server.folder) as other, RangeServer(server.folder, ranges=False) as plain:
        prefixes = ",".join(s.url("") for s in (server, other, plain))
        client, headers, resources = make_app(ingest_url_prefixes=prefixes)
        small_client, small_headers, _ = make_app(ingest_url_prefixes=prefixes, ingest_url_max_mb=1)
        server.redirects["/moved.csv"] = other.url("nhis-2022.csv")
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{closed.getsockname()[1]}/nhis-2022.csv"
            cases = [
                (server.url("../etc/passwd").replace("/../", "/%2e%2e/"), 400, "bad_url"),
                ("http://elsewhere.example/nhis-2022.csv", 400, "url_not_allowed"),
                (server.url("missing.csv"), 400, "file_not_found"),
                (server.url("moved.csv"), 400, "redirect_refused"),
                (plain.url("nhis-2022.csv"), 422, "range_not_supported"),
                (server.url("archive.csv"), 415, "not_csv"),
            ]
            for url, want_status, want_code in cases:
                status, error = error_of(client.post("/api/v1/etl/jobs", headers=headers, json={"path": url}))
                assert (status, error["code"]) == (want_status, want_code), (url, error)
                assert error["message"]
            client_dead, headers_dead, _ = make_app(ingest_url_prefixes=f"{prefixes},{dead}",
                                                    ingest_url_connect_seconds=1)
            status, error = error_of(client_dead.post("/api/v1/etl/jobs", headers=headers_dead, json={"path": dead}))
            assert (status, error["code"]) == (422, "source_unreachable") and "cannot connect" in error["message"]
        big = sample_file(server.folder, 12_000, name="big.csv", seed=4)
        assert big.stat().st_size > 2**20
        status, error = error_of(small_client.post("/api/v1/etl/jobs", headers=small_headers,
                                                   json={"path": server.url("big.csv")}))
        assert (status, error["code"]) == (413, "file_too_large")
    with unit_of_work(resources.sessions) as session:
        assert session.query(EtlJob).count() == 0


def test_an_accepted_url_records_its_version_and_reads_only_ranges(make_app, server):
    client, headers, resources = make_app(ingest_url_prefixes=server.url(""))
    url = server.url("nhis-2022.csv")
    r = client.post("/api/v1/etl/jobs", headers=headers, json={"path": url})
    assert r.status_code == 202, r.get_json()
    with unit_of_work(resources.sessions) as session:
        job = session.get(EtlJob, r.get_json()["job_id"])
        assert (job.source_path, job.original_filename, job.year) == (url, "nhis-2022.csv", 2022)
        assert job.file_size == (server.folder / "nhis-2022.csv").stat().st_size and job.source_mtime_ns is None
        assert json.loads(job.options)["version"].startswith('etag:"')
    assert server.requests and all(status == 206 for _, _, status in server.requests)


def test_the_cli_key_for_a_url_follows_its_version_without_downloading_it(make_app, server):
    _, _, resources = make_app(ingest_url_prefixes=server.url(""))
    obj = types.SimpleNamespace(resources=resources)
    url = server.url("nhis-2022.csv")
    first = CliRunner().invoke(ingest_command, [url, "--year", "2022"], obj=obj)
    again = CliRunner().invoke(ingest_command, [url, "--year", "2022"], obj=obj)
    assert first.exit_code == 0 and again.exit_code == 0, (first.output, again.output)
    job_id = first.stdout.strip().split("=")[1]
    assert again.stdout.startswith(f"job_id={job_id} (already submitted")
    assert (server.folder / "nhis-2022.csv").stat().st_size > 4 * 64 * 1024
    for _, range_header, status in server.requests:  # ranges of at most 64 KiB: never the whole file
        first_byte, last_byte = (int(x) for x in range_header.removeprefix("bytes=").split("-"))
        assert status == 206 and last_byte - first_byte < 64 * 1024
    # a new version of the file is a new key: not a replay, so the running job of 2022 is named (exit 3)
    path = server.folder / "nhis-2022.csv"
    stat = path.stat()
    path.write_bytes(path.read_bytes() + b"\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    changed = CliRunner().invoke(ingest_command, [url, "--year", "2022"], obj=obj)
    assert changed.exit_code == 3 and f"running job: {job_id}" in changed.stderr


def test_planning_waits_for_an_unreachable_url_then_fails_with_the_reason(make_app, server):
    from shared.etl.jobs import submit_job
    from shared.etl.plan import plan_job

    _, _, resources = make_app(ingest_url_prefixes=server.url(""), chunk_max_attempts=2)
    job_id = submit_job(resources, server.url("nhis-2022.csv"), 2022).job_id
    server.stop()  # the file server goes away after the job was accepted
    assert plan_job(resources, job_id) == []
    with unit_of_work(resources.sessions) as session:
        job = session.get(EtlJob, job_id)
        assert (job.status, job.plan_attempts, job.error, job.planned_at) == ("running", 1, None, None)
    plan_job(resources, job_id)  # what the reaper sends after its grace period
    with unit_of_work(resources.sessions) as session:
        job = session.get(EtlJob, job_id)
        assert job.status == "failed" and "cannot reach the file after 2 attempts" in job.error
        assert "cannot connect" in job.error


def test_a_chunk_read_refused_removed_or_unreachable(make_app, server):
    """Refused or removed: the job cannot succeed (SourceUnusable); unreachable: retried (SourceUnavailable)."""
    from shared.data.source import SourceUnavailable
    from shared.etl import chunk as chunk_mod
    from shared.etl.jobs import submit_job
    from shared.etl.plan import plan_job

    _, _, resources = make_app(ingest_url_prefixes=server.url(""), chunk_rows=1000)
    job_id = submit_job(resources, server.url("nhis-2022.csv"), 2022).job_id
    assert plan_job(resources, job_id) == [0, 1, 2]
    done = chunk_mod.load_chunk(resources, job_id, 0, worker="w@test")
    assert done["rows_loaded"] + done["rows_rejected"] == 1000
    server.ranges = False
    with pytest.raises(chunk_mod.SourceUnusable, match="does not support byte ranges"):
        chunk_mod.load_chunk(resources, job_id, 1, worker="w@test")
    server.ranges = True
    path = server.folder / "nhis-2022.csv"
    data = path.read_bytes()
    path.unlink()
    with pytest.raises(chunk_mod.FileChanged, match="removed after planning"):
        chunk_mod.load_chunk(resources, job_id, 1, worker="w@test")
    path.write_bytes(data)
    os.utime(path, ns=(1, 1))
    with pytest.raises(chunk_mod.FileChanged, match="changed after planning"):
        chunk_mod.load_chunk(resources, job_id, 2, worker="w@test")
    server.stop()
    with pytest.raises(SourceUnavailable):
        chunk_mod.load_chunk(resources, job_id, 2, worker="w@test")
