"""Engine and session factories (plain SQLAlchemy 2, no Flask), shared by API, workers and CLI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings


def make_engine(settings: Settings, **kwargs) -> Engine:
    url = settings.sqlalchemy_url
    if settings.is_mysql:
        connect_args = {"local_infile": True, "charset": "utf8mb4"}
        # READ COMMITTED: parallel chunk loads take no gap locks on each other's key ranges.
        engine = create_engine(
            url, pool_pre_ping=True, pool_recycle=1800, connect_args=connect_args,
            isolation_level="READ COMMITTED", **kwargs
        )
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the API read while a worker writes; busy_timeout waits instead of failing.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error. Callers never commit themselves."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
