"""WSGI fast paths for the two hottest requests, which then skip Flask's per-request machinery.

- `GET /api/v1/stats/<endpoint>`: ready JSON bytes from Redis (CSV requests go to the route).
- `POST /api/v1/simulate`: one person through the rule table.

A fast path answers only the plainly valid case: a key already in the per-process key cache with
the right scope, a plainly valid query or body, and (for stats) a Redis hit. Everything else (a
key not cached yet, a scope error, anything a schema must judge, a Redis miss or error) falls
through to the Flask route, which owns every error and fallback. Both answer with the same bytes
and headers; tests/integration/test_fastpath.py checks it.
"""

from __future__ import annotations

import io
import time
import uuid

import orjson
from werkzeug.datastructures import MultiDict

from api.jsonprovider import dumps_bytes
from api.requests import SAFE_REQUEST_ID
from api.routes.simulate import quick_person, simulate_one
from api.routes.stats import cache_key, quick_query
from shared.stats.keys import ENDPOINTS
from shared.stats.store import read_payload_from_cache

STATS_PREFIX = "/api/v1/stats/"
SIMULATE_PATH = "/api/v1/simulate"
MAX_BODY = 64 * 1024


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


class FastPaths:
    def __init__(self, wsgi_app, flask_app):
        self.wsgi_app = wsgi_app
        self.extensions = flask_app.extensions  # read per call: tests and tools may swap resources

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD")
        answer = None
        if method == "GET" and path.startswith(STATS_PREFIX):
            answer = self._stats(environ, path[len(STATS_PREFIX):])
        elif method == "POST" and path == SIMULATE_PATH:
            answer = self._simulate(environ)
        if answer is None:
            return self.wsgi_app(environ, start_response)
        body, extra = answer
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        start_response("200 OK", [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *extra,
            ("X-Request-ID", request_id),
            ("X-Response-Time", f"{(time.perf_counter() - started) * 1000:.2f}ms"),
        ])
        return [body]

    def _allowed(self, environ, scope: str) -> bool:
        info = self.extensions["key_cache"].peek(environ.get("HTTP_X_API_KEY", ""))
        return bool(info) and info.allows(scope)

    def _stats(self, environ, endpoint: str):
        cache = self.extensions["resources"].cache
        if endpoint not in ENDPOINTS or cache is None or not self._allowed(environ, "stats:read"):
            return None
        if "text/csv" in environ.get("HTTP_ACCEPT", ""):  # content negotiation is the route's job
            return None
        args = _args(environ.get("QUERY_STRING", ""))
        query = quick_query(args) if args is not None else None
        if query is None:
            return None
        try:
            body = read_payload_from_cache(cache, cache_key(endpoint, query))
        except Exception:  # a 422 for this endpoint, or Redis trouble: the Flask route answers
            return None
        return (body, [("X-Cache", "hit")]) if body is not None else None

    def _simulate(self, environ):
        if not self._allowed(environ, "simulate"):
            return None
        if not environ.get("CONTENT_TYPE", "").startswith("application/json"):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if not 0 < length <= MAX_BODY:
            return None
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)  # Flask can still read it if we decline
        try:
            person = quick_person(orjson.loads(raw))
        except orjson.JSONDecodeError:
            return None
        if person is None:
            return None
        return dumps_bytes(simulate_one(person, self.extensions["resources"])), []


def init_fast_paths(app) -> None:
    app.wsgi_app = FastPaths(app.wsgi_app, app)
