"""Ingest under what operators actually do: two jobs for one year, a reload that fails halfway, a
retried request, a cancel, a worker SIGKILLed with default timeouts, a chunk that kills every
worker that reads it, a file changed after planning, the database cut mid-job.

Every test runs an isolated system (its own database, redis-server, workers and beat) and checks
the stored data itself, not only the job's status.
"""

from __future__ import annotations

import hashlib
import threading
import time

import orjson
import pytest
from sqlalchemy import select, text

from shared.db.engine import unit_of_work
from shared.db.models import EtlChunk, EtlJob, YearVersion
from shared.etl.jobs import JobConflict, create_job, get_job, submit_job, wait_for_job
from shared.stats import store
from shared.stats.keys import payload_key
from shared.stats.refresh import refresh
from tests.support.files import assert_loaded_exactly, sample_file, wait_for_stats_with
from tests.support.system import IsolatedSystem
from tests.support.worker import wait_until

pytestmark = pytest.mark.integration
YEAR = 2022


@pytest.fixture
def make_system(tmp_path):
    systems = []

    def make(**settings) -> IsolatedSystem:
        settings.setdefault("chunk_rows", 2000)
        system = IsolatedSystem(tmp_path / f"s{len(systems)}", **settings)
        systems.append(system)
        return system

    yield make
    for system in systems:
        system.close()


def version_digest(resources, job_id: int) -> tuple[int, str]:
    """Row count and a hash of every column of every row of one version, in key order."""
    digest = hashlib.sha256()
    n = 0
    with resources.engine.connect() as conn:
        for row in conn.execute(text("SELECT * FROM screenings WHERE job_id = :j ORDER BY id"), {"j": job_id}):
            digest.update(repr(tuple(row)).encode())
            n += 1
    return n, digest.hexdigest()


def current_version(resources, year: int = YEAR) -> int | None:
    with unit_of_work(resources.sessions) as session:
        return session.scalar(select(YearVersion.job_id).where(YearVersion.year == year))


def rows_of(resources, job_id: int) -> int:
    with resources.engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM screenings WHERE job_id = :j"), {"j": job_id}).scalar()


def published_data(resources, year: int = YEAR) -> dict[str, bytes]:
    """The `data` part of every published payload of the year (meta carries times and versions)."""
    out = {}
    for key, raw in store.load_generation(resources).items():
        if f":{year}:" in key:
            out[key] = orjson.dumps(orjson.loads(raw)["data"])
    return out


def test_two_jobs_for_one_year_one_is_refused_and_the_year_holds_exactly_one_file(make_system):
    system = make_system()
    resources = system.resources
    files = [sample_file(resources.settings.data_dir / "race", 6_000, name=f"{n}.csv", seed=30 + n, year=YEAR)
             for n in range(2)]
    outcomes: list = []
    gate = threading.Barrier(2)

    def submit(path):
        gate.wait()
        try:
            outcomes.append(submit_job(resources, path))
        except JobConflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=submit, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [o for o in outcomes if not isinstance(o, Exception)]
    lost = [o for o in outcomes if isinstance(o, JobConflict)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert lost[0].job_id == won[0].job_id and lost[0].status == 409

    system.worker("w", concurrency=2)
    job = wait_for_job(resources, won[0].job_id, timeout=120)
    winner = files[0] if get_job(resources, job["job_id"])["file"] == files[0].name else files[1]
    assert_loaded_exactly(resources, job, winner)
    assert current_version(resources) == job["job_id"]
    with resources.engine.connect() as conn:
        stored = conn.execute(text("SELECT COUNT(*), SUM(subscriber_id) FROM screenings WHERE year = :y"),
                              {"y": YEAR}).one()
    from shared.data.reader import iter_chunks

    frames = [c.frame for c in iter_chunks(winner)]
    assert tuple(stored) == (sum(len(f) for f in frames), sum(int(f["subscriber_id"].sum()) for f in frames))


def test_a_reload_that_fails_halfway_leaves_the_previous_version_and_statistics_untouched(make_system):
    system = make_system(chunk_max_attempts=2)
    resources = system.resources
    first = sample_file(resources.settings.data_dir / "v1", 8_000, name="v1.csv", seed=41, year=YEAR)
    healthy = system.worker("healthy", concurrency=2)
    v1 = wait_for_job(resources, create_job(resources, first), timeout=120)
    assert_loaded_exactly(resources, v1, first)
    wait_for_stats_with(resources, v1["job_id"])
    before_rows = version_digest(resources, v1["job_id"])
    before_stats = published_data(resources)
    assert before_stats

    healthy.stop()
    # every process that derives chunk 2 kills itself, as a worker running out of memory would
    system.worker("crashing", concurrency=2, include="tests.support.crash_chunk", env={"TEST_CRASH_CHUNK": "2"})
    second = sample_file(resources.settings.data_dir / "v2", 8_000, name="v2.csv", seed=42, year=YEAR)
    v2 = wait_for_job(resources, create_job(resources, second), timeout=180)

    assert v2["status"] == "failed"
    assert "chunk 2 (lines 4002-6001) failed after 2 attempts" in v2["error"]
    with unit_of_work(resources.sessions) as session:
        chunk2 = session.scalar(select(EtlChunk).where(EtlChunk.job_id == v2["job_id"], EtlChunk.chunk_index == 2))
        assert (chunk2.status, chunk2.attempts) == ("failed", 2)
        assert session.get(EtlJob, v2["job_id"]).version_state in ("discarded", "purged")
    assert current_version(resources) == v1["job_id"]
    assert version_digest(resources, v1["job_id"]) == before_rows
    assert published_data(resources) == before_stats
    refresh(resources, "test")  # a refresh after the failure computes the same numbers
    assert published_data(resources) == before_stats
    wait_until(lambda: rows_of(resources, v2["job_id"]) == 0, 60, 0.2, "the failed version's rows to be purged")


def test_an_idempotent_retry_returns_the_same_job(make_system):
    from api import create_app
    from shared.auth.keys import create_key

    system = make_system()
    resources = system.resources
    path = sample_file(resources.settings.data_dir / "idem", 3_000, name="idem.csv", seed=51, year=YEAR)
    other = sample_file(resources.settings.data_dir / "idem", 3_000, name="other.csv", seed=52, year=YEAR + 1)
    with unit_of_work(resources.sessions) as session:
        key = create_key(session, "etl-test", "etl:write")
    app = create_app({"database_url": system.env["DATABASE_URL"], "redis_url": system.env["REDIS_URL"],
                      "data_dir": system.env["NHIS_DATA_DIR"]})
    client = app.test_client()
    headers = {"X-API-Key": key, "Idempotency-Key": "retry-me-1"}
    first = client.post("/api/v1/etl/jobs", json={"path": "idem/idem.csv"}, headers=headers)
    again = client.post("/api/v1/etl/jobs", json={"path": "idem/idem.csv"}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.get_json()["job_id"] == first.get_json()["job_id"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    reused = client.post("/api/v1/etl/jobs", json={"path": "idem/other.csv"}, headers=headers)
    assert reused.status_code == 422 and reused.get_json()["error"]["code"] == "idempotency_key_reused"
    # without the key, a second request for the running year is a conflict naming the job
    conflict = client.post("/api/v1/etl/jobs", json={"path": "idem/idem.csv"}, headers={"X-API-Key": key})
    assert conflict.status_code == 409
    body = conflict.get_json()["error"]
    assert body["details"]["job_id"] == first.get_json()["job_id"]
    assert body["details"]["url"] == f"/api/v1/etl/jobs/{first.get_json()['job_id']}"
    with unit_of_work(resources.sessions) as session:
        assert session.scalar(select(EtlJob.id).where(EtlJob.id != first.get_json()["job_id"])) is None
    assert other.exists()

    system.worker("w", concurrency=2)
    job = wait_for_job(resources, first.get_json()["job_id"], timeout=120)
    assert_loaded_exactly(resources, job, path)


def test_the_cli_retries_with_a_key_from_the_file_content(make_system):
    import os
    import subprocess
    import sys

    from tests.support.worker import ROOT

    system = make_system()
    path = sample_file(system.resources.settings.data_dir / "cli", 2_000, name="cli.csv", seed=53, year=YEAR)
    env = {**os.environ, **system.env}

    def ingest(*extra):
        return subprocess.run([sys.executable, "-m", "shared.cli", "ingest", str(path), *extra], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)

    first, again = ingest(), ingest()
    assert first.returncode == again.returncode == 0, (first.stderr, again.stderr)
    job_id = first.stdout.split("job_id=")[1].split()[0]
    assert again.stdout.startswith(f"job_id={job_id} (already submitted")
    conflict = ingest("--again")  # a new job for the same year while the first is still queued
    assert conflict.returncode == 3 and f"running job: {job_id}" in conflict.stderr


def test_cancel_stops_the_job_and_keeps_the_previous_version(make_system):
    system = make_system(chunk_rows=1000)
    resources = system.resources
    system.worker("w", concurrency=1)
    first = sample_file(resources.settings.data_dir / "c1", 3_000, name="c1.csv", seed=61, year=YEAR)
    v1 = wait_for_job(resources, create_job(resources, first), timeout=120)
    before = version_digest(resources, v1["job_id"])
    big = sample_file(resources.settings.data_dir / "c2", 60_000, name="c2.csv", seed=62, year=YEAR)
    job_id = create_job(resources, big)
    wait_until(lambda: get_job(resources, job_id)["progress"]["chunks_done"] >= 2, 120, 0.05, "two chunks done")

    from shared.etl.jobs import cancel_job

    cancelled = cancel_job(resources, job_id)
    assert cancelled["status"] == "cancelled" and cancelled["version"]["state"] == "discarded"
    assert cancel_job(resources, job_id)["status"] == "cancelled"  # idempotent

    def settled():
        with unit_of_work(resources.sessions) as session:
            return not session.scalar(select(EtlChunk.id).where(EtlChunk.job_id == job_id,
                                                                  EtlChunk.status.in_(("queued", "running"))))

    wait_until(settled, 60, 0.2, "no chunk of the cancelled job to be queued or running")
    done = get_job(resources, job_id)["progress"]["chunks_done"]
    assert 2 <= done < 60
    assert current_version(resources) == v1["job_id"]
    assert version_digest(resources, v1["job_id"]) == before
    wait_until(lambda: rows_of(resources, job_id) == 0, 60, 0.2, "the cancelled version's rows to be purged")
    with unit_of_work(resources.sessions) as session:
        assert session.get(EtlJob, job_id).version_state == "purged"
        assert session.get(EtlJob, job_id).active_year is None  # the year is free for a new job


def test_a_sigkilled_worker_with_default_timeouts_is_recovered_within_a_minute(make_system):
    system = make_system()  # default reaper interval, heartbeat and chunk timeout
    resources = system.resources
    assert resources.settings.chunk_timeout_seconds == 600
    path = sample_file(resources.settings.data_dir / "kill", 30_000, seed=71, year=YEAR)
    system.beat()
    victim = system.worker("victim", concurrency=1)
    job_id = create_job(resources, path)
    wait_until(lambda: get_job(resources, job_id)["progress"]["chunks_done"] >= 2, 120, 0.02, "two chunks done")
    victim.kill()
    assert get_job(resources, job_id)["status"] == "running"
    system.worker("rescuer", concurrency=2)
    started = time.monotonic()
    job = wait_for_job(resources, job_id, timeout=60)  # the bound: done within 60 s of a live worker
    assert time.monotonic() - started <= 60
    assert_loaded_exactly(resources, job, path)
    with unit_of_work(resources.sessions) as session:
        attempts = dict(session.execute(select(EtlChunk.chunk_index, EtlChunk.attempts)
                                        .where(EtlChunk.job_id == job_id)).all())
    # the victim (one process) held at most one chunk when it died: only that one needed a second claim
    assert max(attempts.values()) <= 2 and sum(a == 2 for a in attempts.values()) <= 1


def test_a_file_modified_after_planning_fails_the_job_and_says_so(make_system):
    system = make_system(chunk_rows=1000)
    resources = system.resources
    system.worker("w", concurrency=1)
    first = sample_file(resources.settings.data_dir / "m1", 2_000, name="m1.csv", seed=81, year=YEAR)
    v1 = wait_for_job(resources, create_job(resources, first), timeout=120)
    before = version_digest(resources, v1["job_id"])
    path = sample_file(resources.settings.data_dir / "m2", 40_000, name="m2.csv", seed=82, year=YEAR)
    job_id = create_job(resources, path)
    wait_until(lambda: get_job(resources, job_id)["progress"]["chunks_done"] >= 1, 120, 0.02, "a chunk done")
    with open(path, "ab") as handle:  # an operator overwrites the file while it loads
        handle.write(b"2022,999999,1,10,11,170,70,80,1,1,1,1,120,80,90,,,,,14,1,1,20,20,20,1,1,0,,,,,\n")
    job = wait_for_job(resources, job_id, timeout=120)
    assert job["status"] == "failed"
    assert "changed after planning" in job["error"]
    assert current_version(resources) == v1["job_id"]
    assert version_digest(resources, v1["job_id"]) == before


def test_the_database_cut_mid_job_the_job_finishes_cleanly_after_it_returns(make_system):
    system = make_system(db_proxy=True)
    resources = system.resources
    path = sample_file(resources.settings.data_dir / "db", 40_000, seed=91, year=YEAR)
    system.beat()
    worker = system.worker("w", concurrency=2)
    job_id = create_job(resources, path)
    wait_until(lambda: get_job(resources, job_id)["progress"]["chunks_done"] >= 2, 120, 0.02, "two chunks done")
    system.proxy.set_mode("refuse")
    wait_until(lambda: "Retry in" in worker.log_path.read_text() or "OperationalError" in worker.log_path.read_text(),
               60, 0.2, "the worker to meet the outage")
    system.proxy.set_mode("forward")
    job = wait_until(lambda: (j := get_job(resources, job_id)) and j["status"] in ("succeeded", "failed") and j,
                     240, 0.5, "the job to end after the database returned")
    if job["status"] == "succeeded":
        assert_loaded_exactly(resources, job, path)
        assert current_version(resources) == job_id
    else:  # failing is allowed, half-writing is not
        assert current_version(resources) is None
        wait_until(lambda: rows_of(resources, job_id) == 0, 60, 0.5, "the failed version's rows to be purged")


def test_a_subscriber_id_seen_twice_is_kept_once_across_chunks(make_system):
    system = make_system()
    resources = system.resources
    path = sample_file(resources.settings.data_dir / "dup", 6_000, name="dup.csv", seed=101, year=YEAR)
    lines = path.read_bytes().splitlines(keepends=True)
    # line 10 (in chunk 0) appears again in chunk 2 and at the very end; line 2500 again in chunk 2
    lines.insert(4_500, lines[9])
    lines.insert(4_600, lines[2_499])
    lines.append(lines[9])
    path.write_bytes(b"".join(lines))
    system.worker("w", concurrency=2)
    job = wait_for_job(resources, create_job(resources, path), timeout=120)
    assert_loaded_exactly(resources, job, path)
    assert job["progress"]["rows_loaded"] == 6_000 and job["progress"]["rows_rejected"] == 3
    with resources.engine.connect() as conn:
        rejects = conn.execute(text(
            "SELECT line_no, reason FROM etl_rejects WHERE job_id = :j AND whole_row ORDER BY line_no"),
            {"j": job["job_id"]}).all()
    assert [tuple(r) for r in rejects] == [
        (4_501, "duplicate subscriber id (first at line 10)"),
        (4_601, "duplicate subscriber id (first at line 2500)"),
        (6_004, "duplicate subscriber id (first at line 10)"),
    ]
    wait_for_stats_with(resources, job["job_id"])  # statistics count each person once
    overview = orjson.loads(store.load_generation(resources)[payload_key("overview", YEAR)])["data"]
    assert overview["people"] == {"n": 6_000}


def test_an_over_long_line_is_a_reject_not_a_memory_spike(make_system):
    system = make_system()
    resources = system.resources
    path = sample_file(resources.settings.data_dir / "long", 5_000, name="long.csv", seed=102, year=YEAR)
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(3_000, b"2022," + b"9" * (resources.settings.max_line_kb * 1024 * 4) + b"\n")  # 256 KB line
    path.write_bytes(b"".join(lines))
    system.worker("w", concurrency=2)
    job = wait_for_job(resources, create_job(resources, path), timeout=120)
    assert_loaded_exactly(resources, job, path)
    with resources.engine.connect() as conn:
        reject = conn.execute(text(
            "SELECT line_no, reason, LENGTH(raw_value) FROM etl_rejects WHERE job_id = :j AND whole_row"),
            {"j": job["job_id"]}).all()
    assert len(reject) == 1 and reject[0][:2] == (3_001, "line_too_long") and reject[0][2] <= 255


@pytest.mark.parametrize("keep", [False, True], ids=["removed", "kept"])
def test_an_upload_is_written_once_and_removed_when_its_job_ends(make_system, keep):
    import io

    from api import create_app
    from shared.auth.keys import create_key

    system = make_system(keep_uploads=keep)
    resources = system.resources
    source = sample_file(system.tmp_path / "src", 3_000,
                         name="upload.csv", seed=111, year=YEAR)
    with unit_of_work(resources.sessions) as session:
        key = create_key(session, "uploader", "etl:write")
    app = create_app({"database_url": system.env["DATABASE_URL"], "redis_url": system.env["REDIS_URL"],
                      "data_dir": system.env["NHIS_DATA_DIR"], "keep_uploads": keep})
    system.worker("w", concurrency=2)
    response = app.test_client().post(
        "/api/v1/etl/jobs", headers={"X-API-Key": key}, content_type="multipart/form-data",
        data={"file": (io.BytesIO(source.read_bytes()), "upload.csv"), "year": str(YEAR)},
    )
    assert response.status_code == 202, response.get_json()
    job = wait_for_job(resources, response.get_json()["job_id"], timeout=120)
    assert_loaded_exactly(resources, job, source)
    uploads = resources.settings.data_dir / "uploads"
    assert not list(uploads.glob(".upload-*.part")), "the spooled part was renamed, not copied"
    if keep:
        kept = list(uploads.glob("*upload.csv"))
        assert len(kept) == 1 and kept[0].read_bytes() == source.read_bytes()
    else:
        wait_until(lambda: not list(uploads.glob("*.csv")), 60, 0.2, "the upload to be removed")
