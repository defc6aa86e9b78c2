"""Sample NHIS files for tests, written by the project's own generator."""

from __future__ import annotations

from pathlib import Path

from shared.data.generate import write_file


def sample_file(folder: Path, rows: int, name: str = "sample.csv", year: int = 2024, seed: int = 7,
                style: str = "2024", encoding: str = "cp949") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    write_file(path, rows=rows, year=year, seed=seed, style=style, encoding=encoding)
    return path


def ingest_sample(resources, folder: Path, rows: int, **sample) -> dict:
    """Write a sample file (`sample`: the keywords of `sample_file`) and ingest it through the
    running worker; the succeeded job."""
    from shared.etl.jobs import create_job, wait_for_job

    job = wait_for_job(resources, create_job(resources, sample_file(folder, rows, **sample)), timeout=180)
    assert job["status"] == "succeeded", job
    return job


def data_lines(path: Path) -> int:
    """Non-blank lines after the header: what loaded + rejected must add up to."""
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip(b"\r\n")) - 1


def wait_for_stats_with(resources, job_id: int, timeout: float = 90) -> None:
    """Refresh, and wait until the published snapshot (Redis and database) includes the job.

    A refresh may be skipped because another one (beat, the job's own finalize) holds the lock,
    so the test waits for the published dataset_version rather than assuming its call won.
    """
    import orjson

    from shared.stats import store
    from shared.stats.refresh import refresh
    from tests.support.worker import wait_until

    def published() -> bool:
        refresh(resources, "test")
        meta = store.read_meta(resources)
        cached = resources.cache.hget(store.CURRENT_KEY, store.META_FIELD) if resources.cache else None
        tag = f"job{job_id}"
        return bool(meta and tag in meta["dataset_version"]
                    and (resources.cache is None or (cached and tag in orjson.loads(cached)["dataset_version"])))

    wait_until(published, timeout, 0.5, f"statistics that include job {job_id}")


def assert_loaded_exactly(resources, job: dict, path: Path) -> None:
    """The job succeeded, every data line is a row or a reject, and each row is stored once."""
    from sqlalchemy import text

    p = job["progress"]
    assert job["status"] == "succeeded", job
    assert p["rows_loaded"] + p["rows_rejected"] == data_lines(path)
    with resources.engine.connect() as conn:
        stored = conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT subscriber_id) FROM screenings WHERE job_id = :j"),
                              {"j": job["job_id"]}).one()
    assert tuple(stored) == (p["rows_loaded"], p["rows_loaded"])


def published_year(resources, folder: Path, rows: int, seed: int, year: int, style: str, key_name: str,
                   scopes: str) -> dict:
    """Ingest a generated year, wait for its statistics, and return a key and one record id of it."""
    from sqlalchemy import select

    from shared.auth.keys import create_key
    from shared.db.engine import unit_of_work
    from shared.db.models import YearVersion, screenings
    from shared.etl.jobs import create_job, wait_for_job

    job = wait_for_job(resources, create_job(resources, sample_file(folder, rows, seed=seed, year=year, style=style)),
                       timeout=180)
    assert job["status"] == "succeeded", job
    wait_for_stats_with(resources, job["job_id"])
    with resources.engine.connect() as conn:
        current = conn.scalar(select(YearVersion.job_id).where(YearVersion.year == year))
        record = conn.scalar(select(screenings.c.id).where(screenings.c.job_id == current).limit(1))
    with unit_of_work(resources.sessions) as session:
        key = create_key(session, key_name, scopes)
    return {"key": key, "record": record, "job_id": job["job_id"]}
