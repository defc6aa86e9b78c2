"""WSGI fast paths for the three hottest requests, which then skip Flask's per-request machinery.

- `GET /api/v1/stats/<endpoint>`: ready JSON bytes from Redis (CSV requests go to the route).
- `POST /api/v1/simulate`: one person through the rule table.
- `GET /api/v1/records`: a page of records on the process's direct database connection
  (shared/db/engine.py `DirectConnection`: autocommit, statements compiled once), its audit row
  written and committed before the answer, as on the route (MySQL/MariaDB only).

The seam with the Flask path is declared, not implied:
- access: the same route policy (`api.auth.policy_of`) and the same per-process key cache; only
  a key already cached as valid with the right scope is served here;
- rate limits: the same `RateLimiter.hit`, counted once; when a fast path declines after
  counting, it leaves its decision in `environ["nhis.rate_decision"]` and the Flask hook reuses it;
- headers, request metrics and logging: the same `api.finisher` functions, with the route label
  of the Flask rule the fast path stands in for (so both paths count in the same series);
- records: the same query check as the schema within its domain (`records.quick_query`), the same
  browse (`shared.records.browse`), audit row (`shared.audit`) and answer (`records.page_body`).
  The request id is chosen before the audit row is written and left in `environ["nhis.request_id"]`
  for Flask. What must not be tried twice in one request, a page that ran out of its time budget
  or a database that cannot be connected to, the fast path leaves in
  `environ["nhis.records_failed"]`, and the route answers its 503 at once; a connection lost
  mid-query is left to the route, which tries its own pool.

A fast path answers only the plainly valid case. Everything else (a key not cached yet, a scope
error, over the rate limit, anything a schema must judge, a Redis miss or error, any parameter or
header it does not know) falls through to the Flask route, which owns every error and fallback.
Both answer with the same bytes and headers; tests/integration/test_fastpath.py checks it, and
tests/unit/test_seam.py pins the Flask hooks so a new one cannot silently miss this path.
"""

from __future__ import annotations

import io
import time

import orjson
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import MultiDict

from api.auth import policy_of
from api.finisher import complete_request, finishing_headers, request_id_for
from api.jsonprovider import dumps_bytes
from api.routes import records
from api.routes.simulate import quick_include, quick_person, simulate_one
from api.routes.stats import cache_key, quick_query
from shared.audit import record_read_direct
from shared.records.browse import BadCursor, QueryTooBroad, browse, decode_cursor
from shared.stats.keys import ENDPOINTS
from shared.stats.store import read_payload_from_cache

STATS_PREFIX = "/api/v1/stats/"
SIMULATE_PATH = "/api/v1/simulate"
SIMULATE_ENDPOINT = "simulate.simulate"
RECORDS_PATH = "/api/v1/records"
RECORDS_ENDPOINT = "records.index"
REQUEST_ID = "nhis.request_id"  # environ: the id a fast path chose (and audited) before it declined
JSON = ("Content-Type", "application/json")


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
        self.flask_app = flask_app
        self.extensions = flask_app.extensions  # read per call: tests and tools may swap resources
        self.access_log = flask_app.config["SETTINGS"].access_log
        self.rules = {rule.endpoint: rule.rule for rule in flask_app.url_map.iter_rules()}

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD")
        answer = None
        if method == "GET" and path.startswith(STATS_PREFIX):
            answer = self._stats(environ, path[len(STATS_PREFIX):])
        elif method == "POST" and path == SIMULATE_PATH:
            answer = self._simulate(environ)
        elif method == "GET" and path == RECORDS_PATH:
            answer = self._records(environ)
        if answer is None:
            return self.wsgi_app(environ, start_response)
        body, extra, endpoint, policy, decision, key_id = answer
        request_id = environ.get(REQUEST_ID) or request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        start_response("200 OK", [
            JSON, ("Content-Length", str(len(body))), *extra,
            *finishing_headers(request_id, started, decision, person_level=policy.person_level),
        ])
        complete_request(self.access_log, method, self.rules[endpoint], 200, started, request_id, key_id)
        return [body]

    def _admit(self, environ, endpoint: str):
        """(policy, key, decision) when a cached key may call this route and is under its limit;
        None to let Flask decide. A decision made here is left for Flask if this path declines."""
        policy = policy_of(self.flask_app, endpoint)
        if policy is None or policy.scope is None:
            return None
        info = self.extensions["key_cache"].peek(environ.get("HTTP_X_API_KEY", ""))
        if not info or not info.allows(policy.scope):
            return None
        identity = f"k{info.id}"
        decision = self.extensions["rate_limiter"].hit(policy.bucket, identity, fail_closed=policy.fail_closed)
        environ["nhis.rate_decision"] = (policy.bucket, identity, decision)
        if not decision.allowed:
            return None
        return policy, info, decision

    def _stats(self, environ, endpoint: str):
        cache = self.extensions["resources"].cache
        if endpoint not in ENDPOINTS or cache is None or "text/csv" in environ.get("HTTP_ACCEPT", ""):
            return None
        args = _args(environ.get("QUERY_STRING", ""))
        query = quick_query(args) if args is not None else None
        if query is None:
            return None
        try:
            name = cache_key(endpoint, query)
        except Exception:  # a 422 for this endpoint: the Flask route answers
            return None
        flask_endpoint = f"stats.{endpoint}"
        admitted = self._admit(environ, flask_endpoint)
        if admitted is None:
            return None
        policy, info, decision = admitted
        try:
            body = read_payload_from_cache(cache, name)
        except Exception:  # Redis trouble: the Flask route falls back to the database copy
            return None
        if body is None:
            return None
        return body, [("X-Cache", "hit")], flask_endpoint, policy, decision, info.id

    def _simulate(self, environ):
        if not environ.get("CONTENT_TYPE", "").startswith("application/json"):
            return None
        include = quick_include(environ.get("QUERY_STRING", ""))
        if include is None:  # anything but a plain include=... is the route's to judge
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        admitted = self._admit(environ, SIMULATE_ENDPOINT)
        if admitted is None:
            return None
        policy, info, decision = admitted
        if not 0 < length <= policy.body_limit(None, environ.get("CONTENT_TYPE")):
            return None
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)  # Flask can still read it if we decline
        try:
            person = quick_person(orjson.loads(raw))
        except orjson.JSONDecodeError:
            return None
        if person is None:
            return None
        body = dumps_bytes(simulate_one(person, self.extensions["resources"], include))
        return body, [], SIMULATE_ENDPOINT, policy, decision, info.id

    def _records(self, environ):
        res = self.extensions["resources"]
        direct = res.direct
        if direct is None:  # SQLite: the route
            return None
        args = _args(environ.get("QUERY_STRING", ""))
        query = records.quick_query(args) if args is not None else None
        if query is None:
            return None
        try:
            after = decode_cursor(query["cursor"], query) if "cursor" in query else -1
        except BadCursor:  # the route's 422 names the field
            return None
        admitted = self._admit(environ, RECORDS_ENDPOINT)
        if admitted is None:
            return None
        policy, info, decision = admitted
        request_id = environ[REQUEST_ID] = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        budget = res.settings.records_query_seconds
        try:
            direct.open()
        except SQLAlchemyError as exc:  # no database now: the route says so at once
            environ[records.FAST_PATH_FAILED] = exc
            return None
        try:
            page = browse(direct.execute, query, after, query["limit"], records.LIST_COLUMNS, budget)
            record_read_direct(direct, route=self.rules[RECORDS_ENDPOINT], filters=query, count=len(page.rows),
                               key_id=info.id, key_name=info.name, request_id=request_id)
        except QueryTooBroad as exc:  # the route answers its 503 without running the query again
            environ[records.FAST_PATH_FAILED] = exc
            return None
        except SQLAlchemyError:  # a lost connection: the route tries its pool
            return None
        return dumps_bytes(records.page_body(page, query)), [], RECORDS_ENDPOINT, policy, decision, info.id


def init_fast_paths(app) -> None:
    app.wsgi_app = FastPaths(app.wsgi_app, app)
