"""The cap on running ETL jobs per API key (NHIS_MAX_RUNNING_JOBS_PER_KEY).

A job counts while its status is not terminal. The count and the creation run under one lock per
key (a Redis lock in the rate-limit DB; a file lock in embedded mode, which is one host), so two
concurrent requests cannot both take the last slot. Redis down: creation is refused (503), like
the rate limit of this route.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, select

from api.errors import ApiError
from shared.db.engine import unit_of_work
from shared.db.models import EtlJob
from shared.etl.jobs import TERMINAL

LOCK_SECONDS = 120  # longer than the header check and job insert ever take


def running_jobs(resources, key_id: int) -> int:
    with unit_of_work(resources.sessions) as session:
        return session.scalar(select(func.count()).select_from(EtlJob)
                              .where(EtlJob.api_key_id == key_id, EtlJob.status.not_in(TERMINAL)))


def check_quota(resources, key_id: int) -> None:
    """429 when the key already runs its allowed number of jobs."""
    cap = resources.settings.max_running_jobs_per_key
    running = running_jobs(resources, key_id)
    if running >= cap:
        raise ApiError(429, "too_many_running_jobs",
                       f"this key already has {running} running job(s) (limit {cap}); wait for one to finish",
                       {"running": running, "limit": cap}, headers={"Retry-After": "30"})


@contextmanager
def job_slot(resources, key_id: int, skip: bool = False) -> Iterator[None]:
    """Hold the key's creation lock, re-check the cap, and let the caller create its job (which
    records the key as its owner). `skip`: a replay of an idempotent request creates nothing."""
    if skip:
        yield
        return
    with _key_lock(resources, key_id):
        check_quota(resources, key_id)
        yield


@contextmanager
def _key_lock(resources, key_id: int) -> Iterator[None]:
    settings = resources.settings
    if settings.embedded:
        folder = settings.data_dir / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"jobs-key-{key_id}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    import redis

    client = redis.Redis.from_url(settings.redis_db_url("ratelimit"), socket_timeout=1, socket_connect_timeout=1)
    try:
        lock = client.lock(f"nhis:jobs-lock:{key_id}", timeout=LOCK_SECONDS, blocking_timeout=5)
        try:
            acquired = lock.acquire()
        except redis.RedisError:
            raise ApiError(503, "rate_limiter_unavailable", "job creation is refused while Redis is unavailable",
                           headers={"Retry-After": "5"}) from None
        if not acquired:
            raise ApiError(429, "too_many_running_jobs", "another job is being created for this key; retry",
                           headers={"Retry-After": "2"})
        try:
            yield
        finally:
            try:
                lock.release()
            except redis.RedisError:  # expired or Redis gone: the lock times out by itself
                pass
    finally:
        client.close()
