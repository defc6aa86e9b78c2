"""One JSON error envelope for every error: {"error": {code, message, details, request_id}}."""

from __future__ import annotations

import structlog
from flask import Flask
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from api.observability import DATABASE_UNAVAILABLE
from api.requests import current_request_id

log = structlog.get_logger(__name__)


class ApiError(Exception):
    """Raised by views for a documented 4xx/5xx with a machine-readable code."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None, headers=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, details: dict | None = None, headers=None):
    from flask import jsonify

    body = {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "request_id": current_request_id(),
        }
    }
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _flatten_validation(messages) -> dict:
    """webargs nests messages by location ({"json": {"field": [...]}}); name each field plainly."""
    fields: dict = {}
    if isinstance(messages, dict):
        for location, per_field in messages.items():
            if isinstance(per_field, dict):
                for field, msgs in per_field.items():
                    fields[field] = msgs
            else:
                fields[location] = per_field
    return fields


# MySQL/MariaDB client and server error numbers that mean "the database cannot answer now":
# 2002/2003 cannot connect, 2006 server gone, 2013 lost connection (includes our read timeout),
# 1040 too many connections, 1205 lock wait timeout, 1969 MariaDB max_statement_time exceeded,
# 3024 MySQL max_execution_time exceeded, 1317 query interrupted, 1927 connection killed.
UNAVAILABLE_ERRNOS = frozenset({1040, 1205, 1317, 1927, 1969, 2002, 2003, 2006, 2013, 3024})
DB_RETRY_AFTER = "5"


def database_unavailable(exc: BaseException) -> bool:
    """Whether an exception says the database is unreachable, overloaded or timed out (not a bug)."""
    if isinstance(exc, (sa_exc.TimeoutError, sa_exc.DisconnectionError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        args = getattr(orig, "args", ())
        if args and isinstance(args[0], int):
            return args[0] in UNAVAILABLE_ERRNOS
        if isinstance(exc, sa_exc.OperationalError):  # sqlite: "database is locked", unreadable file
            return True
    return False


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        data = getattr(exc, "data", None) or {}
        if exc.code == 422 and "messages" in data:
            fields = _flatten_validation(data["messages"])
            names = ", ".join(sorted(fields)) or "request"
            return error_response(422, "validation_error", f"invalid fields: {names}", {"fields": fields})
        if exc.code == 413:
            return error_response(413, "request_entity_too_large", "request body too large for this route")
        code = (exc.name or "error").lower().replace(" ", "_")
        headers = {}
        if exc.code == 405 and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        return error_response(exc.code or 500, code, exc.description or exc.name, headers=headers)

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception):
        if database_unavailable(exc):
            DATABASE_UNAVAILABLE.inc()
            args = getattr(getattr(exc, "orig", None), "args", None) or (None,)
            log.warning("database_unavailable", error=type(exc).__name__, errno=args[0])
            return error_response(503, "database_unavailable", "the database is not answering; retry shortly",
                                  headers={"Retry-After": DB_RETRY_AFTER})
        log.error("unhandled_error", exc_info=exc)
        return error_response(500, "internal_error", "internal server error; quote the request id")
