"""One JSON error envelope for every error: {"error": {code, message, details, request_id}}."""

from __future__ import annotations

import structlog
from flask import Flask
from werkzeug.exceptions import HTTPException

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
        code = (exc.name or "error").lower().replace(" ", "_")
        headers = {}
        if exc.code == 405 and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        return error_response(exc.code or 500, code, exc.description or exc.name, headers=headers)

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception):
        log.error("unhandled_error", exc_info=exc)
        return error_response(500, "internal_error", "internal server error; quote the request id")
