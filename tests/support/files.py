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
