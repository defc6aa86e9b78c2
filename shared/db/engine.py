"""Engine and session factories (plain SQLAlchemy 2, no Flask), shared by API, workers and CLI.

Each process says which role its connections serve, and gets only what that role needs:

| role | `local_infile` | connect timeout | read timeout | statement timeout |
|---|---|---|---|---|
| `api` | off | `NHIS_DB_CONNECT_TIMEOUT_SECONDS` | `NHIS_DB_READ_TIMEOUT_SECONDS` | `NHIS_DB_STATEMENT_TIMEOUT_SECONDS` |
| `worker` | on (LOAD DATA LOCAL INFILE) | 10 s | `NHIS_DB_WORKER_READ_TIMEOUT_SECONDS` | none |
| `cli` | off | 10 s | none (migrations may rewrite big tables) | none |

A request never waits on the database longer than the statement timeout (the server stops the
query) or the read timeout (the client gives up if the server does not answer); either becomes
a 503 with `Retry-After` in the API (api/errors.py), never a hung Gunicorn worker.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings

ROLES = ("api", "worker", "cli")


def mysql_connect_args(settings: Settings, role: str) -> dict:
    """PyMySQL arguments for a role (see the table above)."""
    if role not in ROLES:
        raise ValueError(f"unknown connection role {role!r}; one of {ROLES}")
    args: dict = {"charset": "utf8mb4", "local_infile": role == "worker"}
    if role == "api":
        args["connect_timeout"] = settings.db_connect_timeout_seconds
        args["read_timeout"] = args["write_timeout"] = settings.db_read_timeout_seconds
    elif role == "worker":
        args["connect_timeout"] = 10
        args["read_timeout"] = args["write_timeout"] = settings.db_worker_read_timeout_seconds
    else:
        args["connect_timeout"] = 10
    return args


def make_engine(settings: Settings, role: str = "cli", **kwargs) -> Engine:
    url = settings.sqlalchemy_url
    # Bound parameters can be person-level values or key hashes: keep them out of error text and logs.
    kwargs.setdefault("hide_parameters", True)
    if settings.is_mysql:
        connect_args = mysql_connect_args(settings, role)
        if role == "api":
            kwargs.setdefault("pool_timeout", settings.db_connect_timeout_seconds)
        # READ COMMITTED: parallel chunk loads take no gap locks on each other's key ranges.
        engine = create_engine(
            url, pool_pre_ping=True, pool_recycle=1800, connect_args=connect_args,
            isolation_level="READ COMMITTED", **kwargs
        )
        event.listen(engine, "do_connect", _bounded_handshake(connect_args) if role == "api" else _connect)
        if role == "api":
            event.listen(engine, "connect", _statement_timeout(settings.db_statement_timeout_seconds))
        event.listen(engine, "before_cursor_execute", _statement_budget, retval=True)
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        busy = 5 if role == "api" else 30  # seconds a writer waits for SQLite's single write lock
        engine = create_engine(url, connect_args={"timeout": busy}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas(busy))
    return engine


@functools.cache
def connection_class():
    """PyMySQL's connection, building its default TLS context once per process instead of once per
    connection.

    Given no TLS option, PyMySQL 1.2 negotiates TLS when the server offers it ("preferred", no
    certificate check) and builds a new `ssl.create_default_context()` for it on every connection:
    loading the system's CA bundle, ~35-50 ms of CPU on the request that opens the connection (a
    new worker's first query, a reconnect after `pool_recycle` or an outage), against 0.5 ms for the
    rest of the connect. The same context serves every connection of the process; TLS options given
    in `DATABASE_URL` (`ssl_ca`, ...) keep PyMySQL's own handling. Overrides PyMySQL's
    `_create_ssl_ctx` (pinned 1.2.4; tests/integration/test_gunicorn.py checks the sharing)."""
    from pymysql.connections import Connection

    class SharedTlsContext(Connection):
        preferred_context = None

        @classmethod
        def preferred(cls):
            if cls.preferred_context is None:
                cls.preferred_context = Connection._create_ssl_ctx(None, {})  # uses only its argument
            return cls.preferred_context

        def _create_ssl_ctx(self, sslp):
            return super()._create_ssl_ctx(sslp) if sslp else self.preferred()

    return SharedTlsContext


def prepare_driver(settings: Settings) -> None:
    """Load the MySQL driver and build its TLS context now (a preloaded Gunicorn master calls this
    once, so no worker pays for it on a request). Opens no connection."""
    if settings.is_mysql:
        connection_class().preferred()


def _connect(dialect, _record, cargs, cparams):
    return connection_class()(*cargs, **cparams)


def _bounded_handshake(connect_args: dict):
    """PyMySQL waits for the server's greeting with the *read* timeout, so a host that accepts
    TCP but never answers would hold a request for the whole read timeout. Connect with the
    connect timeout for every read and write of the handshake, then restore the read and write
    timeouts (PyMySQL 1.2 applies `_read_timeout`/`_write_timeout` again on the next read/write;
    tests/integration/test_serving_faults.py, blackhole case, guards this)."""
    short = connect_args["connect_timeout"]

    def connect(dialect, _record, cargs, cparams):
        conn = connection_class()(*cargs, **{**cparams, "read_timeout": short, "write_timeout": short})
        conn._read_timeout = cparams.get("read_timeout")
        conn._write_timeout = cparams.get("write_timeout")
        return conn

    return connect


def _statement_timeout(seconds: float):
    """Per-session statement timeout: MariaDB `max_statement_time` (seconds, every statement);
    MySQL `max_execution_time` (milliseconds, SELECT only)."""

    def apply(dbapi_connection, _record) -> None:
        cur = dbapi_connection.cursor()
        try:
            if "mariadb" in dbapi_connection.get_server_info().lower():
                cur.execute(f"SET SESSION max_statement_time = {float(seconds):.3f}")
            else:
                cur.execute(f"SET SESSION max_execution_time = {math.ceil(seconds * 1000)}")
        finally:
            cur.close()

    return apply


def _statement_budget(conn, _cursor, statement, parameters, context, _executemany):
    """A statement executed with `execution_options(max_statement_time=seconds)` gets that budget
    from the server (a shorter one than the session's): MariaDB `SET STATEMENT ... FOR`, MySQL
    the `MAX_EXECUTION_TIME` optimizer hint (SELECT only). Used by records browsing to share one
    budget among the queries of a page (shared/records/browse.py)."""
    seconds = context.execution_options.get("max_statement_time") if context is not None else None
    if not seconds:
        return statement, parameters
    if conn.dialect.is_mariadb:
        return f"SET STATEMENT max_statement_time={float(seconds):.3f} FOR {statement}", parameters
    if statement.lstrip()[:6].upper() == "SELECT":
        head = statement.lstrip()
        return f"SELECT /*+ MAX_EXECUTION_TIME({max(1, math.ceil(seconds * 1000))}) */{head[6:]}", parameters
    return statement, parameters


def _sqlite_pragmas(busy_seconds: int):
    def apply(dbapi_connection, _record) -> None:
        # WAL lets the API read while a worker writes; busy_timeout waits instead of failing.
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={busy_seconds * 1000}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return apply


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
