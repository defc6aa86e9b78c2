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
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import orjson
from sqlalchemy import Boolean, Engine, Float, Integer, String, create_engine, event, func
from sqlalchemy import exc as sa_exc
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
    from the server (a shorter one than the session's): see `budgeted`. Used by records browsing
    to share one budget among the queries of a page (shared/records/browse.py)."""
    seconds = context.execution_options.get("max_statement_time") if context is not None else None
    if not seconds:
        return statement, parameters
    return budgeted(statement, seconds, conn.dialect.is_mariadb), parameters


def budgeted(statement: str, seconds: float, mariadb: bool) -> str:
    """`statement` with a server-enforced time budget: MariaDB `SET STATEMENT max_statement_time
    ... FOR`, MySQL the `MAX_EXECUTION_TIME` optimizer hint (SELECT only; others unchanged)."""
    if mariadb:
        return f"SET STATEMENT max_statement_time={float(seconds):.3f} FOR {statement}"
    head = statement.lstrip()
    if head[:6].upper() == "SELECT":
        return f"SELECT /*+ MAX_EXECUTION_TIME({max(1, math.ceil(seconds * 1000))}) */{head[6:]}"
    return statement


class DirectConnection:
    """One driver connection held by this process outside the pool, in autocommit, for the API's
    hottest database read (records pages, api/fastpath.py): no pool checkout, no pre-ping, no
    reset on return, and each statement commits by itself (two round trips for a page and its
    audit row instead of five). Made from the engine, so it gets the same connect options and
    session settings (timeouts, isolation level). An error that may have broken the connection
    closes it, and the next use reconnects. Per process: after a fork (or in a new process) it is
    dropped without being closed."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._cursor = None
        self._pid = None

    def execute(self, stmt, params, seconds: float | None = None) -> tuple[Sequence, ...]:
        """Run a Core statement with bind values (by name) under an optional time budget; its
        text is compiled once per statement. Rows are sequences in the statement's column order."""
        cursor = self._cursor if self._pid == os.getpid() and self._cursor is not None else self._connect()
        dialect = self.engine.dialect  # initialised by the first connection (server version, MariaDB or not)
        text = _driver_text(stmt, dialect)
        sql = text.sql if seconds is None else budgeted(text.sql, seconds, dialect.is_mariadb)
        values = [params[n] if fixed is _REQUIRED else params.get(n, fixed) for n, _, fixed in text.binds]
        values = [v if p is None else p(v) for v, (_, p, _) in zip(values, text.binds, strict=True)]
        if not text.positional:
            values = dict(zip((n for n, _, _ in text.binds), values, strict=True))
        try:
            cursor.execute(sql, values)
            rows = cursor.fetchall()
        except dialect.loaded_dbapi.Error as exc:
            if not _statement_refused(exc):
                self.discard()
            raise self._wrapped(exc, sql) from exc
        if text.as_json:
            rows = tuple(orjson.loads(row[0]) for row in rows)
        if not text.results:
            return rows
        return tuple(_processed(row, text.results) for row in rows)

    def open(self) -> None:
        """Connect now if not connected (a new web worker, before its first request)."""
        if self._cursor is None or self._pid != os.getpid():
            self._connect()

    def _connect(self):
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        try:
            fairy = self.engine.raw_connection()  # through the pool's connect events and options
        except dbapi_error as exc:
            raise self._wrapped(exc, None) from exc
        fairy.detach()  # ours now: never returned to (or reset by) the pool
        dbapi = fairy.dbapi_connection
        dbapi.autocommit(True)
        self._cursor, self._pid = dbapi.cursor(), os.getpid()
        return self._cursor

    def _wrapped(self, exc, sql):
        """The driver's error as SQLAlchemy raises it for a Core execution (OperationalError, ...),
        so callers and the API's error handler treat both paths alike."""
        return sa_exc.DBAPIError.instance(sql, None, exc, self.engine.dialect.loaded_dbapi.Error,
                                          hide_parameters=True, dialect=self.engine.dialect)

    def discard(self) -> None:
        """Close this connection (the next use opens a new one); one inherited over a fork is
        only dropped."""
        cursor, self._cursor = self._cursor, None
        if cursor is not None and self._pid == os.getpid():
            try:
                cursor.connection.close()
            except Exception:  # noqa: BLE001 - already broken; it is dropped either way
                pass

    close = discard


def _statement_refused(exc: BaseException) -> bool:
    """The server refused one statement (a server error code: 1000-1999 or 3000 and up, e.g. a
    time budget or a duplicate key): the connection itself is still good. Client errors (2000-2999:
    lost connection, server gone) and PyMySQL's code 0 (a connection the server closed while idle)
    are not."""
    code = exc.args[0] if exc.args else None
    return isinstance(code, int) and code >= 1000 and not 2000 <= code < 3000


_REQUIRED = object()  # a bind parameter whose value the caller must give


class DriverText(NamedTuple):
    sql: str  # with the driver's markers
    positional: bool  # markers by position (%s) or by name (%(name)s)
    binds: tuple  # (name, the type's bind processor or None, the value the statement itself
    #                gives), in marker order when positional
    results: tuple  # (column index, the type's result processor) where the type has one
    as_json: bool  # MariaDB: each row arrives as one JSON array of its values


@functools.lru_cache(maxsize=1024)
def _driver_text(stmt, dialect) -> DriverText:
    """A statement compiled for the driver once, with the value conversions SQLAlchemy would apply
    (booleans from TINYINT, ...), so the direct path returns what a Core execution returns.

    On MariaDB a SELECT whose columns are all numbers, booleans or text sends each row as one JSON
    array (`JSON_ARRAY(col, ...)`), decoded by orjson: PyMySQL decodes every value of a row in
    Python, and a records page of 21 x 21 values spent more CPU there than anywhere else. The text
    of each number in the array is the one the server sends for the column itself (MariaDB formats
    a FLOAT the same way in both); tests/integration/test_direct_connection.py compares a whole
    year, and a statement with any other type (dates, bytes, decimals) is sent as it is."""
    columns = tuple(getattr(stmt, "selected_columns", None) or ())
    as_json = bool(columns) and dialect.is_mariadb and all(_json_safe(c.type) for c in columns)
    if as_json:
        stmt = stmt.with_only_columns(func.json_array(*columns))
    compiled = stmt.compile(dialect=dialect)
    names = compiled.positiontup if compiled.positional else list(compiled.binds)
    binds = tuple((name, b.type.dialect_impl(dialect).bind_processor(dialect), _REQUIRED if b.required else b.effective_value)
                  for name, b in ((n, compiled.binds[n]) for n in names))
    processors = ((i, c.type.dialect_impl(dialect).result_processor(dialect, None)) for i, c in enumerate(columns))
    return DriverText(str(compiled), compiled.positional, binds,
                      tuple((i, p) for i, p in processors if p is not None), as_json)


def _json_safe(type_) -> bool:
    """A column whose value a JSON array carries exactly as PyMySQL would give it (after the type's
    result processor): integers (of any size), floats, booleans, text and enums."""
    return isinstance(type_, (Integer, Float, Boolean, String))  # not Numeric: a Decimal would come back a float


def _processed(row, results: tuple) -> tuple:
    out = list(row)
    for i, convert in results:
        out[i] = convert(out[i])
    return tuple(out)


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
