"""Browsing person-level records of the current version of each year, in constant time per page.

Why it is constant: a year's current version is one primary-key range, `(job_id, id)`, and ids
start with the year, so id order is year order. A page is one keyset query per year, `job_id = v
AND id > after ... ORDER BY id LIMIT n`, starting at the cursor's year: it reads the rows it
returns plus the ones its filters skip, never the years or pages before it, however deep the
cursor. The two rarest filters (age band, province: ~0.7% of a year for their rarest values) have
an index `(job_id, <filter>, id)`, so such a page is one index range; every other published filter
is common enough (>= 2.6%) that skipping costs a few hundred rows a page. docs/DECISIONS.md has the
measurements.

Statements are built once per shape of query (which filters, which flags, by year or by job), with
every value a bind parameter, and run through a `Runner`: SQLAlchemy Core on the Flask route
(`core_runner`), the process's `DirectConnection` on the fast path (api/fastpath.py). Rows are
sequences in the order of the columns asked for.

Arbitrary combinations of filters can be rare enough to scan a whole year. Every query of a page
therefore shares one time budget (`NHIS_RECORDS_QUERY_SECONDS`), enforced by the database (the
`max_statement_time` execution option, shared/db/engine.py), so a page answers or fails with
`QueryTooBroad` (a 503 telling the client to narrow it); it never holds a web worker.

Cursors are opaque to clients: the last id of the page and a digest of the filters, so a cursor
stays valid when years are loaded or reloaded (ids are stable) and is refused with a different
query.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Select, and_, bindparam, select

from shared.db.models import ID_YEAR_FACTOR, YearVersion, screenings

CURSOR_VERSION = "r1"
FILTER_KEYS = ("year", "sex", "age_group", "province", "screening_risk_group", "risk_group", "flag")
STATEMENT_TIMEOUT_ERRORS = (1969, 3024)  # MariaDB max_statement_time; MySQL max_execution_time
TOO_BROAD = "these filters match too few records to fill a page in time"


class BadCursor(ValueError):
    """The cursor was not made by this API for this query."""


class QueryTooBroad(Exception):
    """The filters are too rare to fill a page within the time budget; add a year or narrow them."""


@dataclass(frozen=True)
class Page:
    rows: list[Sequence]  # in the columns' order
    next_after: int | None  # the last id when more rows follow


def filter_digest(filters: Mapping) -> str:
    relevant = {k: filters[k] for k in FILTER_KEYS if k in filters}
    if "flag" in relevant:
        relevant["flag"] = sorted(relevant["flag"])
    raw = json.dumps(relevant, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def encode_cursor(after: int, filters: Mapping) -> str:
    text = f"{CURSOR_VERSION}.{after}.{filter_digest(filters)}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, filters: Mapping) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        version, after, digest = text.split(".")
        after_id = int(after)
    except (ValueError, UnicodeDecodeError):
        raise BadCursor("not a cursor returned by this API") from None
    if version != CURSOR_VERSION or not 0 <= after_id < 2**63:
        raise BadCursor("not a cursor returned by this API")
    if digest != filter_digest(filters):
        raise BadCursor("this cursor belongs to a query with other filters; start again without it")
    return after_id


VALUE_FILTERS = {  # filter -> column; risk_group is the deprecated name of screening_risk_group
    "sex": "sex", "age_group": "age_group", "province": "province",
    "screening_risk_group": "screening_risk_group", "risk_group": "screening_risk_group",
}


def _value(name: str, value):
    return (1 if value == "M" else 2) if name == "sex" else value


def conditions(filters: Mapping) -> list:
    """The filters as conditions on `screenings`, values inlined (benchmarks and tools)."""
    t = screenings.c
    out = [t[column] == _value(name, filters[name]) for name, column in VALUE_FILTERS.items() if name in filters]
    return out + [t["flag_" + flag].is_(True) for flag in filters.get("flag", ())]


def shape(filters: Mapping) -> tuple:
    """What a page's statement depends on (not the values): which filters, which flags, by year."""
    return (tuple(n for n in VALUE_FILTERS if n in filters), tuple(sorted(set(filters.get("flag", ())))),
            "year" in filters)


@functools.lru_cache(maxsize=1024)
def page_statement(query_shape: tuple, columns: tuple[str, ...]) -> Select:
    """One keyset page of one year's current version, every value a named bind parameter
    (`parameters` gives them): the year's pointer (`year`) or its job (`job_id`), `after`,
    `limit` and each value filter. Built once per shape, so a driver can reuse its compiled text."""
    names, flags, by_year = query_shape
    t = screenings.c
    version = (select(YearVersion.job_id).where(YearVersion.year == bindparam("year")).scalar_subquery()
               if by_year else bindparam("job_id"))
    conds = [t[VALUE_FILTERS[name]] == bindparam(name) for name in names]
    conds += [t["flag_" + flag].is_(True) for flag in flags]
    return (select(*(t[c] for c in columns)).where(and_(t.job_id == version, t.id > bindparam("after"), *conds))
            .order_by(t.id).limit(bindparam("limit")))


def parameters(filters: Mapping) -> dict:
    """The bind values of `page_statement` for these filters (without `after`, `limit`, `job_id`)."""
    out = {name: _value(name, filters[name]) for name in VALUE_FILTERS if name in filters}
    if "year" in filters:
        out["year"] = filters["year"]
    return out


CURRENT_VERSIONS = select(YearVersion.year, YearVersion.job_id)


class Runner(Protocol):
    """Executes a statement with bind values under a time budget (None: the session's own) and
    returns its rows as sequences in the statement's column order."""

    def __call__(self, stmt, params: Mapping, seconds: float | None) -> Sequence[Sequence]: ...


def core_runner(conn) -> Runner:
    """Through a SQLAlchemy connection (any database; the Flask route). The fast path's runner is
    the process's `DirectConnection.execute` (MySQL/MariaDB)."""
    def run(stmt, params, seconds):
        if seconds is not None:
            stmt = stmt.execution_options(max_statement_time=seconds)
        return conn.execute(stmt, params).all()

    return run


def browse(run: Runner, filters: Mapping, after: int, limit: int, columns: tuple[str, ...],
           budget_seconds: float | None = None) -> Page:
    """One page of records after id `after` (-1: from the start) matching `filters`; rows are
    sequences in `columns` order (which must start with "id")."""
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    stmt = page_statement(shape(filters), columns)
    params = parameters(filters)
    first_year = max(after, 0) // ID_YEAR_FACTOR
    if "year" in filters:  # one query: the year's pointer is a primary-key subquery
        targets = [None] if first_year <= filters["year"] else []
    else:
        versions = dict(_timed(run, CURRENT_VERSIONS, {}, deadline))
        targets = [versions[y] for y in sorted(versions) if y >= first_year]
    rows: list[Sequence] = []
    for version in targets:
        if version is not None:
            params["job_id"] = version
        params["after"], params["limit"] = after, limit + 1 - len(rows)
        rows.extend(_timed(run, stmt, params, deadline))
        if len(rows) > limit:
            break
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1][0] if more and rows else None)


def _timed(run: Runner, stmt, params: Mapping, deadline: float | None):
    seconds = None
    if deadline is not None:
        seconds = deadline - time.monotonic()
        if seconds <= 0.001:
            raise QueryTooBroad(TOO_BROAD)
    try:
        return run(stmt, params, seconds)
    except Exception as exc:
        if statement_timed_out(exc):
            raise QueryTooBroad(TOO_BROAD) from None
        raise


def statement_timed_out(exc: BaseException) -> bool:
    """Whether the server stopped the statement at its time budget (SQLAlchemy's wrapper or the
    driver's own error)."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    return bool(args) and args[0] in STATEMENT_TIMEOUT_ERRORS


