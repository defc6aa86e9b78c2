"""Integration fixtures: real MariaDB, real Redis, real Celery worker processes."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import MetaData, text

from shared.config import load_settings
from shared.resources import Resources
from tests.support import services
from tests.support.worker import BeatProcess, WorkerProcess

pytestmark = pytest.mark.integration


def reset_mysql(url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        meta = MetaData()
        meta.reflect(conn)
        for table in meta.sorted_tables:
            conn.execute(text(f"DROP TABLE IF EXISTS `{table.name}`"))
        conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
    engine.dispose()


def flush_redis(url: str) -> None:
    settings = load_settings(redis_url=url)
    for role in ("broker", "results", "cache", "ratelimit"):
        redis.Redis.from_url(settings.redis_db_url(role)).flushdb()


@pytest.fixture(scope="session")
def service_env(tmp_path_factory):
    """Environment for every process of the system under test (API, worker, beat, CLI)."""
    db_url = services.mysql_database_url()
    redis_url = services.redis_url()
    reset_mysql(db_url)
    flush_redis(redis_url)
    data_dir = tmp_path_factory.mktemp("data")
    return {
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "NHIS_DATA_DIR": str(data_dir),
        "LOG_FORMAT": "json",
        "NHIS_REAPER_SECONDS": "2",
        "NHIS_STATS_REFRESH_SECONDS": "5",
        "NHIS_CHUNK_TIMEOUT_SECONDS": "10",
        "NHIS_CHUNK_ROWS": "2000",
    }


@pytest.fixture(scope="session")
def settings(service_env):
    return load_settings(
        database_url=service_env["DATABASE_URL"],
        redis_url=service_env["REDIS_URL"],
        data_dir=service_env["NHIS_DATA_DIR"],
        reaper_seconds=2,
        stats_refresh_seconds=5,
        chunk_timeout_seconds=10,
        chunk_rows=2000,
    )


@pytest.fixture(scope="session")
def resources(settings):
    from shared.cli.db import upgrade

    res = Resources(settings, role="worker")  # tests load chunks in-process (LOAD DATA LOCAL INFILE)
    upgrade(res.engine)
    yield res
    res.dispose()


@pytest.fixture(scope="session")
def worker(resources, service_env, tmp_path_factory):
    log = tmp_path_factory.mktemp("logs") / "worker.log"
    proc = WorkerProcess(service_env, concurrency=2, log_path=log).start(resources.producer)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def beat(service_env, tmp_path_factory):
    """Exactly one beat (stats refresh every 5 s, reaper every 2 s in tests)."""
    folder = tmp_path_factory.mktemp("beat")
    proc = BeatProcess(service_env, folder / "schedule", log_path=folder / "beat.log").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def app(resources, settings):
    from api import create_app

    app = create_app(
        {
            "database_url": settings.database_url,
            "redis_url": settings.redis_url,
            "data_dir": settings.data_dir,
        }
    )
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api_key(resources):
    """Create a key with the given scopes and return its clear text."""
    from shared.auth.keys import create_key
    from shared.db.engine import unit_of_work

    def make(scopes: str) -> str:
        with unit_of_work(resources.sessions) as session:
            return create_key(session, services.unique_name("key"), scopes)

    return make
