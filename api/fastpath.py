"""A WSGI fast path for warm statistics reads: the hottest requests skip Flask entirely.

`GET /api/v1/stats/<endpoint>` with a cached, valid key and a plainly valid query is answered
from Redis here with the same bytes and headers the Flask route sends. Everything else (a key not
yet cached, a scope error, an unusual query, a Redis miss or error) falls through to the Flask
route, which owns every error and the database fallback. tests/integration/test_fastpath.py checks
both paths answer alike.
"""

from __future__ import annotations

import time
import uuid

from werkzeug.datastructures import MultiDict

from api.requests import SAFE_REQUEST_ID
from api.routes.stats import ENDPOINTS, cache_key, quick_query
from shared.stats.store import read_payload_from_cache

PREFIX = "/api/v1/stats/"


def _args(query_string: str) -> MultiDict | None:
    if not query_string:
        return MultiDict()
    pairs = []
    for part in query_string.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:  # anything encoded: let Flask decode it
            return None
        pairs.append((name, value))
    return MultiDict(pairs)


class StatsFastPath:
    def __init__(self, wsgi_app, flask_app):
        self.wsgi_app = wsgi_app
        self.extensions = flask_app.extensions  # read per call: tests and tools may swap resources

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        body = self._try(environ)
        if body is None:
            return self.wsgi_app(environ, start_response)
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        start_response("200 OK", [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Cache", "hit"),
            ("X-Request-ID", request_id),
            ("X-Response-Time", f"{(time.perf_counter() - started) * 1000:.2f}ms"),
        ])
        return [body]

    def _try(self, environ) -> bytes | None:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "GET" or not path.startswith(PREFIX):
            return None
        endpoint = path[len(PREFIX):]
        cache = self.extensions["resources"].cache
        if endpoint not in ENDPOINTS or cache is None:
            return None
        info = self.extensions["key_cache"].peek(environ.get("HTTP_X_API_KEY", ""))
        if not info or not info.allows("stats:read"):
            return None
        args = _args(environ.get("QUERY_STRING", ""))
        query = quick_query(args) if args is not None else None
        if query is None:
            return None
        try:
            return read_payload_from_cache(cache, cache_key(endpoint, query))
        except Exception:  # a 422 for this endpoint, or Redis trouble: the Flask route answers
            return None


def init_fast_paths(app) -> None:
    app.wsgi_app = StatsFastPath(app.wsgi_app, app)
