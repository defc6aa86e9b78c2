"""Request id on every response and in every log line of the request."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from flask import Flask, g, request

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def init_request_context(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def _finish(response):
        response.headers["X-Request-ID"] = current_request_id()
        if "started" in g:
            response.headers["X-Response-Time"] = f"{(time.perf_counter() - g.started) * 1000:.2f}ms"
        return response

    @app.teardown_request
    def _unbind(_exc) -> None:
        structlog.contextvars.unbind_contextvars("request_id")


def current_request_id() -> str:
    rid = g.get("request_id")
    if rid is None:
        rid = g.request_id = uuid.uuid4().hex
    return rid
