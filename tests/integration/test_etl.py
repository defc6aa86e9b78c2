"""The ETL through real Celery workers into MariaDB: counts, idempotency, replacement, bad files."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text, update

from shared.data.reader import iter_chunks
from shared.db.engine import unit_of_work
from shared.db.models import EtlChunk, EtlJob, EtlReject, screenings
from shared.etl.chunk import load_chunk
from shared.etl.jobs import JobInputError, create_job, wait_for_job
from tests.support.files import data_lines, sample_file
from tests.support.worker import wait_until

pytestmark = pytest.mark.integration


def run_job(resources, path, **kwargs) -> dict:
    job_id = create_job(resources, path, **kwargs)
    return wait_for_job(resources, job_id, timeout=180)


def table_fingerprint(resources, job_id=None) -> tuple:
    where = "" if job_id is None else f"WHERE job_id = {int(job_id)}"
    with resources.engine.connect() as conn:
        return tuple(conn.execute(text(
            "SELECT COUNT(*), SUM(subscriber_id), SUM(COALESCE(sbp, 0)), SUM(COALESCE(total_cholesterol, 0)), "
            "SUM(risk_factor_count), SUM(COALESCE(flag_hypertension, 0)), COUNT(DISTINCT screening_risk_group), "
            f"SUM(line_no) FROM screenings {where}"
        )).one())


def test_small_file_end_to_end_matches_the_file(resources, worker, settings):
    path = sample_file(settings.data_dir / "e2e", 9_000, seed=11)
    job = run_job(resources, path)
    assert job["status"] == "succeeded", job
    p = job["progress"]
    lines = data_lines(path)
    assert p["rows_read"] == lines
    assert p["rows_loaded"] + p["rows_rejected"] == lines
    assert p["chunks_done"] == p["chunks_total"] >= 4

    expected = [c.frame for c in iter_chunks(path)]
    ids = sorted(int(i) for f in expected for i in f["subscriber_id"])
    with resources.engine.connect() as conn:
        loaded = sorted(conn.execute(
            select(screenings.c.subscriber_id).where(screenings.c.job_id == job["job_id"])).scalars())
        sbp_sum = conn.execute(select(func.sum(screenings.c.sbp)).where(screenings.c.job_id == job["job_id"])).scalar()
        rejects = conn.execute(select(func.count()).select_from(EtlReject)
                               .where(EtlReject.job_id == job["job_id"], EtlReject.whole_row.is_(True))).scalar()
    assert loaded == ids
    assert rejects == p["rows_rejected"]
    assert sbp_sum == pytest.approx(sum(float(f["sbp"].sum()) for f in expected))


def test_a_chunk_run_twice_leaves_the_same_rows(resources, worker, settings):
    path = sample_file(settings.data_dir / "twice", 5_000, seed=12)
    job = run_job(resources, path)
    assert job["status"] == "succeeded"
    job_id = job["job_id"]
    before = table_fingerprint(resources, job_id)
    # Simulate a redelivery of chunk 1 whose first holder died (a node that never beat) and run it again.
    with unit_of_work(resources.sessions) as session:
        session.execute(update(EtlChunk).where(EtlChunk.job_id == job_id, EtlChunk.chunk_index == 1)
                        .values(status="running", worker="gone@nowhere", worker_pid=1))
        session.execute(update(EtlJob).where(EtlJob.id == job_id).values(status="running", chunks_done=EtlJob.chunks_done - 1))
    try:
        assert load_chunk(resources, job_id, 1, worker="test@here")["rows_loaded"] > 0
        assert table_fingerprint(resources, job_id) == before
        # A delivery of a chunk that is already done changes nothing.
        assert load_chunk(resources, job_id, 1, worker="test@here") == {"skipped": True}
        assert table_fingerprint(resources, job_id) == before
    finally:
        with unit_of_work(resources.sessions) as session:
            session.execute(update(EtlJob).where(EtlJob.id == job_id).values(status="succeeded"))


def test_the_same_year_ingested_twice_swaps_versions_and_purges_the_old(resources, worker, beat, settings):
    path = sample_file(settings.data_dir / "again", 6_000, seed=13, year=2019, style="2020")
    first = run_job(resources, path)
    second = run_job(resources, path)
    assert first["status"] == second["status"] == "succeeded"
    assert second["version"] == {"state": "current", "current": True}

    def rows_by_job():
        with resources.engine.connect() as conn:
            return conn.execute(text("SELECT job_id, COUNT(*) FROM screenings WHERE year = 2019 GROUP BY job_id")).all()

    # the first version is retired at the swap and purged in the background, in batches
    wait_until(lambda: rows_by_job() == [(second["job_id"], second["progress"]["rows_loaded"])], 60, 0.5,
               "the retired version to be purged")
    with resources.engine.connect() as conn:
        state = conn.execute(select(EtlJob.version_state).where(EtlJob.id == first["job_id"])).scalar()
        dupes = conn.execute(text(
            "SELECT COUNT(*) FROM (SELECT subscriber_id FROM screenings WHERE year = 2019 "
            "GROUP BY subscriber_id HAVING COUNT(*) > 1) d")).scalar()
    assert state == "purged"
    assert dupes == 0


@pytest.mark.parametrize(
    ("content", "status", "expected"),
    [
        (b"PK\x03\x04\x14\x00\x00\x00binary zip data\x00\x00", 415, "ZIP archive"),
        (b"", 422, "empty"),
        ("기준년도,가입자일련번호,시도코드\n2024,1,11\n".encode("cp949"), 422, "required columns missing"),
    ],
    ids=["not-csv", "empty", "missing-columns"],
)
def test_bad_files_are_refused_before_a_job_exists(resources, settings, content, status, expected):
    folder = settings.data_dir / "bad"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bad-{abs(hash(content))}.csv"
    path.write_bytes(content)
    with unit_of_work(resources.sessions) as session:
        jobs_before = session.scalar(select(func.count()).select_from(EtlJob))
    with pytest.raises(JobInputError) as caught:
        create_job(resources, path)
    assert caught.value.status == status and expected in caught.value.message
    with unit_of_work(resources.sessions) as session:
        assert session.scalar(select(func.count()).select_from(EtlJob)) == jobs_before


def test_truncated_file_rejects_the_cut_line_and_loads_the_rest(resources, worker, settings):
    path = sample_file(settings.data_dir / "cut", 3_000, seed=14)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # cut inside the last line
    job = run_job(resources, path)
    assert job["status"] == "succeeded"
    p = job["progress"]
    assert p["rows_loaded"] + p["rows_rejected"] == data_lines(path)
    with resources.engine.connect() as conn:
        last = conn.execute(select(EtlReject.reason, EtlReject.line_no).where(
            EtlReject.job_id == job["job_id"], EtlReject.whole_row.is_(True)
        ).order_by(EtlReject.line_no.desc()).limit(1)).one()
    assert last == ("field_count", data_lines(path) + 1)


def test_cli_ingest_wait_prints_the_summary_line(resources, worker, settings, service_env):
    import os
    import subprocess
    import sys

    from tests.support.worker import ROOT

    path = sample_file(settings.data_dir / "cli", 4_000, seed=15, year=2017, style="2017")
    done = subprocess.run([sys.executable, "-m", "shared.cli", "ingest", str(path), "--year", "2017", "--wait"],
                          cwd=ROOT, env={**os.environ, **service_env}, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("rows_total=4000 rows_loaded=") and " rows_rejected=" in last and " seconds=" in last
    loaded = int(last.split("rows_loaded=")[1].split()[0])
    rejected = int(last.split("rows_rejected=")[1].split()[0])
    assert loaded + rejected == data_lines(path)
    bad = subprocess.run([sys.executable, "-m", "shared.cli", "ingest", "/etc/hostname"], cwd=ROOT,
                         env={**os.environ, **service_env}, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "NHIS_DATA_DIR" in bad.stderr
