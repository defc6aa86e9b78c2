"""Person-level reads go to the audit log (shared/audit.py) before the data leaves the server."""

from __future__ import annotations

from flask import g, request

from api.requests import current_request_id
from shared.audit import record_read


def audit_read(conn, filters: dict, count: int) -> None:
    """Record this request's read in the transaction of `conn` (the connection that read it): key,
    route (the rule, e.g. /api/v1/records/<int:record_id>), filters and how many records it
    returns. The read's commit writes it; an error here fails the request (no row, no data)."""
    key = g.api_key
    record_read(conn, route=request.url_rule.rule, filters=filters, count=count,
                key_id=key.id, key_name=key.name, request_id=current_request_id())
