"""Person-level reads go to the audit log (shared/audit.py) before the data leaves the server."""

from __future__ import annotations

from flask import g, request

from api.extensions import resources
from api.requests import current_request_id
from shared.audit import record_read


def audit_read(filters: dict, count: int) -> None:
    """Record this request's read: key, route (the rule, e.g. /api/v1/records/<int:record_id>),
    filters and how many records it returns. An error here fails the request (no row, no data)."""
    key = g.api_key
    record_read(resources(), route=request.url_rule.rule, filters=filters, count=count,
                key_id=key.id, key_name=key.name, request_id=current_request_id())
