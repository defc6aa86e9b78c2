"""The audit log of person-level reads: who read which records, with which filters, how many.

Written by the API in the same transaction as the read, before the records leave the server (no
audit row, no data: the commit that ends the read is the audit's); read by `nhis audit`. It never
stores the records, only the request's shape.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import bindparam, insert, select

from shared.db.engine import unit_of_work
from shared.db.models import AuditLog, utcnow

_COLUMNS = ("at", "api_key_id", "key_name", "route", "filters", "result_count", "request_id")
_INSERT = insert(AuditLog.__table__).values({c: bindparam(c) for c in _COLUMNS})


def read_row(*, route: str, filters: dict, count: int, key_id: int | None, key_name: str | None,
             request_id: str | None) -> dict:
    return {
        "at": utcnow(), "api_key_id": key_id, "key_name": key_name, "route": route,
        "filters": json.dumps(filters, sort_keys=True, default=str)[:4000], "result_count": count,
        "request_id": request_id,
    }


def record_read(conn, **read) -> None:
    """Add the read to the caller's transaction (`conn` is the connection that read the records).
    `read`: the keyword arguments of `read_row`."""
    conn.execute(_INSERT, read_row(**read))


def record_read_direct(direct, **read) -> None:
    """Write the read on a `DirectConnection` (autocommit): durable when this returns, before the
    records it describes leave the server."""
    direct.execute(_INSERT, read_row(**read))


def list_reads(resources, *, key_name: str | None = None, since: dt.datetime | None = None,
               limit: int = 100) -> list[dict]:
    """Newest first."""
    stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if key_name is not None:
        stmt = stmt.where(AuditLog.key_name == key_name)
    if since is not None:
        stmt = stmt.where(AuditLog.at >= since)
    with unit_of_work(resources.sessions) as session:
        return [
            {"at": row.at.isoformat(timespec="seconds"), "key_id": row.api_key_id, "key_name": row.key_name,
             "route": row.route, "filters": json.loads(row.filters or "{}"), "count": row.result_count,
             "request_id": row.request_id}
            for row in session.scalars(stmt)
        ]
