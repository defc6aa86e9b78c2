"""Browsing person-level records of the current version of each year, in constant time per page.

Why it is constant: a year's current version is one primary-key range, `(job_id, id)`, and ids
start with the year, so id order is year order. A page is one keyset query per year, `job_id = v
AND id > after ... ORDER BY id LIMIT n`, starting at the cursor's year: it reads the rows it
returns plus the ones its filters skip, never the years or pages before it, however deep the
cursor. The published filters are common enough (the rarest single value is ~0.5% of a year) that
skipping costs a few thousand rows at most; docs/DECISIONS.md has the measurements behind "no
secondary index".

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
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.exc import OperationalError

from shared.db.models import ID_YEAR_FACTOR, YearVersion, screenings

CURSOR_VERSION = "r1"
FILTER_KEYS = ("year", "sex", "age_group", "province", "screening_risk_group", "risk_group", "flag")
STATEMENT_TIMEOUT_ERRORS = (1969, 3024)  # MariaDB max_statement_time; MySQL max_execution_time


class BadCursor(ValueError):
    """The cursor was not made by this API for this query."""


class QueryTooBroad(Exception):
    """The filters are too rare to fill a page within the time budget; add a year or narrow them."""


@dataclass(frozen=True)
class Page:
    rows: list[Mapping]
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


def conditions(filters: Mapping) -> list:
    t = screenings.c
    out = []
    for name in ("age_group", "province"):
        if name in filters:
            out.append(t[name] == filters[name])
    for name in ("screening_risk_group", "risk_group"):  # risk_group: the deprecated name
        if name in filters:
            out.append(t.screening_risk_group == filters[name])
    if "sex" in filters:
        out.append(t.sex == (1 if filters["sex"] == "M" else 2))
    for flag in filters.get("flag", ()):
        out.append(t["flag_" + flag].is_(True))
    return out


def current_versions(conn) -> dict[int, int]:
    """year -> the job whose rows are the year's current version (what every read shows)."""
    return dict(conn.execute(select(YearVersion.year, YearVersion.job_id)).all())


def browse(conn, filters: Mapping, after: int, limit: int, columns: Sequence[str],
           budget_seconds: float | None = None) -> Page:
    """One page of records after id `after` (-1: from the start) matching `filters`."""
    t = screenings.c
    conds = conditions(filters)
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    rows: list[Mapping] = []
    if "year" in filters:  # one query: the year's pointer is a primary-key subquery
        version = select(YearVersion.job_id).where(YearVersion.year == filters["year"]).scalar_subquery()
        targets = [version] if max(after, 0) // ID_YEAR_FACTOR <= filters["year"] else []
    else:
        versions = current_versions(conn)
        targets = [versions[y] for y in sorted(versions) if y >= max(after, 0) // ID_YEAR_FACTOR]
    for version in targets:
        stmt = (select(*(t[c] for c in columns))
                .where(and_(t.job_id == version, t.id > after, *conds))
                .order_by(t.id).limit(limit + 1 - len(rows)))
        rows.extend(r._mapping for r in _run(conn, stmt, deadline))
        if len(rows) > limit:
            break
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1]["id"] if more and rows else None)


def _run(conn, stmt, deadline: float | None):
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0.001:
            raise QueryTooBroad("these filters match too few records to fill a page in time")
        stmt = stmt.execution_options(max_statement_time=left)
    try:
        return conn.execute(stmt).all()
    except OperationalError as exc:
        code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
        if code in STATEMENT_TIMEOUT_ERRORS:
            raise QueryTooBroad("these filters match too few records to fill a page in time") from None
        raise
