"""Process-wide handles (engine, sessions, cache client, task producer), built lazily.

Each process (Gunicorn worker, Celery child, CLI) owns one `Resources`; Celery children and
Gunicorn workers (forked from a preloaded master, api/wsgi.py) call `dispose()` after fork so no
pooled connection crosses the fork. Nothing here connects when built: every handle is made on
first use. The role (`api`,
`worker`, `cli`) picks the database connection options (shared/db/engine.py): only workers may
`LOAD DATA LOCAL INFILE`, only the API gets short timeouts.
"""

from __future__ import annotations

from functools import cached_property

from shared.config import Settings
from shared.db.engine import DirectConnection, make_engine, make_sessionmaker


class Resources:
    def __init__(self, settings: Settings, role: str = "cli"):
        self.settings = settings
        self.role = role

    @cached_property
    def engine(self):
        return make_engine(self.settings, self.role)

    @cached_property
    def sessions(self):
        return make_sessionmaker(self.engine)

    @cached_property
    def direct(self) -> DirectConnection | None:
        """The process's own autocommit connection for the hottest read (MySQL only; None on SQLite)."""
        return DirectConnection(self.engine) if self.settings.is_mysql else None

    @cached_property
    def cache(self):
        """Redis client for the stats cache DB, or None in embedded mode (cache = database)."""
        if self.settings.embedded:
            return None
        import redis

        timeout = 1 if self.role == "api" else 2  # a request never waits long on a cache
        return redis.Redis.from_url(
            self.settings.redis_db_url("cache"), socket_timeout=timeout, socket_connect_timeout=timeout,
            health_check_interval=30,
        )

    @cached_property
    def producer(self):
        from shared.celery_config import make_producer

        return make_producer(self.settings)

    def send_task(self, name: str, *args, **kwargs):
        return self.producer.send_task(name, args=args, kwargs=kwargs)

    def warm(self) -> None:
        """Open one database connection (and the API's direct one) and one cache connection now, in
        a new worker before it takes requests, so its first request does not pay for them (with the
        dialect's first-connect queries). A dependency that is down is left for the request path
        to report."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            if self.direct is not None and self.role == "api":
                self.direct.open()
        except Exception:  # noqa: BLE001 - the first request reports it (503 database_unavailable)
            pass
        if self.cache is not None:
            try:
                self.cache.ping()
            except Exception:  # noqa: BLE001 - statistics fall back to the database copy
                pass

    def close(self) -> None:
        """Before this process exits: close the connections it opened (the database then sees a
        clean quit, not a reset)."""
        if self.__dict__.get("direct") is not None:
            self.direct.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
        if self.__dict__.get("cache") is not None:
            self.cache.close()

    def dispose(self) -> None:
        """After a fork: drop the engine's pooled connections without closing them (they are the
        parent's; the direct connection too). Redis clients need nothing: redis-py starts a new pool
        when the pid changes."""
        self.__dict__.pop("direct", None)
        if "engine" in self.__dict__:
            self.engine.dispose(close=False)
