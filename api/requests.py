"""Request id and timing at the start of a request; the shared finisher (api/finisher.py) at the end."""

from __future__ import annotations

import time
import uuid

import structlog
from flask import Flask, g, request

from api.finisher import SAFE_REQUEST_ID, complete_request, finishing_headers, html_csp, request_id_for
from api.observability import NO_ROUTE

__all__ = ["SAFE_REQUEST_ID", "ascii_digits", "current_request_id", "init_request_context"]


def init_request_context(app: Flask) -> None:
    access_log = app.config["SETTINGS"].access_log

    @app.before_request
    def _start() -> None:
        # a fast path that declined may have chosen (and audited) the id already (api/fastpath.py)
        g.request_id = request.environ.get("nhis.request_id") or request_id_for(request.headers.get("X-Request-ID"))
        g.started = time.perf_counter()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def _finish(response):
        policy = g.get("route_policy")
        has_csp = "Content-Security-Policy" in response.headers
        if not has_csp and response.mimetype == "text/html" and not response.direct_passthrough:
            response.headers["Content-Security-Policy"] = html_csp(response.get_data())
            has_csp = True
        for name, value in finishing_headers(current_request_id(), g.get("started"), g.get("rate_decision"),
                                             person_level=bool(policy and policy.person_level),
                                             has_csp=has_csp):
            response.headers[name] = value
        rule = request.url_rule.rule if request.url_rule is not None else NO_ROUTE
        key = g.get("api_key")
        complete_request(access_log, request.method, rule, response.status_code, g.get("started"),
                         current_request_id(), key.id if key is not None else None)
        return response

    @app.teardown_request
    def _unbind(_exc) -> None:
        structlog.contextvars.unbind_contextvars("request_id")


def ascii_digits(value: str) -> bool:
    """A query value the fast paths read as a number without a schema: ASCII digits only (at most
    six). str.isdigit() is also true for "²" or "٣", which int() refuses or reads."""
    return value.isascii() and value.isdigit() and len(value) <= 6


def current_request_id() -> str:
    rid = g.get("request_id")
    if rid is None:
        rid = g.request_id = uuid.uuid4().hex
    return rid
