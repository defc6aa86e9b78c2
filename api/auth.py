"""Access policy per route, enforced in one before_request hook that fails closed.

Every view declares either `@requires(scope)` or `@public`; `finalize_policies` refuses to start
an app with an undeclared route, and the hook denies any request to one. The declaration also
carries the route's body limit, whether it serves person-level data (no-store, audited), and
whether it fails closed when the rate-limit store is down (routes that create work).

Order of checks for one request (each answers before any later work is done):
1. body size from `Content-Length` against the route's limit (413), before the body is read;
2. public route: count against the caller's address (`anonymous` bucket);
3. missing key on a route that is public when a setting says so (`public_if`, e.g. statistics with
   NHIS_PUBLIC_STATS=1): count against the address and serve;
   otherwise a missing or malformed key: count against the address, then 401 (no database query);
4. key looked up by its SHA-256 in the per-process cache (positive and bounded negative entries,
   `NHIS_KEY_CACHE_SECONDS`), else one query: unknown or revoked → 401;
5. scope check → 403; then the key's counter for the route's scope → 429.
"""

from __future__ import annotations

import hmac
import io
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import wraps

from flask import Flask, current_app, g, request
from flask_smorest import Blueprint

from api.errors import ApiError
from api.extensions import resources
from api.observability import RATELIMIT_REJECTED
from api.ratelimit import RateLimiter
from shared.auth.keys import KeyInfo, hash_key, lookup_key_hash
from shared.db.engine import unit_of_work

SECURITY_SCHEME = "ApiKeyAuth"
DEFAULT_MAX_BODY = 64 * 1024
BUFFER_MAX = 4 * 1024 * 1024  # chunked bodies up to this limit are buffered and measured (JSON routes)
KEY_FORMAT = re.compile(r"^nhis_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$")  # what shared.auth.keys.create_key makes
WWW_AUTHENTICATE = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}


@dataclass(frozen=True)
class RoutePolicy:
    scope: str | None  # None: public
    max_body: int | str = DEFAULT_MAX_BODY  # bytes, or "upload" (NHIS_UPLOAD_MAX_MB for multipart)
    person_level: bool = False  # Cache-Control: no-store, and reads go to the audit log
    fail_closed: bool = False  # refuse (503) when the rate-limit store is down
    rate_limited: bool = True
    public_if: str | None = None  # a boolean setting that opens the route to callers without a key

    @property
    def bucket(self) -> str:
        if self.scope is None:
            return "anonymous"
        return "any" if self.scope == "*" else self.scope

    def body_limit(self, settings, content_type: str | None) -> int:
        if self.max_body == "upload":
            if (content_type or "").startswith("multipart/form-data"):
                return settings.upload_max_mb * 1024 * 1024
            return DEFAULT_MAX_BODY
        return int(self.max_body)


def requires(scope: str, *, max_body: int | str = DEFAULT_MAX_BODY, person_level: bool = False,
             fail_closed: bool = False, public_if: str | None = None):
    """Declare the scope a view needs (`*`: any valid key) and its limits.

    `public_if` names a boolean setting: when it is on, a request *without* a key is served too,
    counted in the `anonymous` bucket per client address (a key that is sent is still checked)."""
    if public_if is not None and person_level:
        raise ValueError("person-level routes are never public")
    policy = RoutePolicy(scope, max_body, person_level, fail_closed, public_if=public_if)

    def decorate(view):
        view = Blueprint.doc(security=[{SECURITY_SCHEME: []}])(view)

        @wraps(view)
        def wrapper(*args, **kwargs):
            return view(*args, **kwargs)

        wrapper.route_policy = policy
        wrapper.required_scope = scope
        return wrapper

    return decorate


def public(view=None, *, rate_limited: bool = True):
    """Declare a view open to anyone (still limited per client address unless `rate_limited=False`)."""
    policy = RoutePolicy(None, DEFAULT_MAX_BODY, rate_limited=rate_limited)

    def decorate(fn):
        fn.route_policy = policy
        return fn

    return decorate(view) if view is not None else decorate


def declare_public(app: Flask, *endpoints: str) -> None:
    """Declare routes registered by a library (the OpenAPI document, Swagger UI) as public."""
    for endpoint in endpoints:
        app.extensions["route_policies"][endpoint] = RoutePolicy(None)


def policy_of(app: Flask, endpoint: str | None) -> RoutePolicy | None:
    policies = app.extensions["route_policies"]
    if endpoint is None:
        return None
    if endpoint not in policies:
        view = app.view_functions.get(endpoint)
        policies[endpoint] = getattr(view, "route_policy", None)
    return policies[endpoint]


def finalize_policies(app: Flask) -> None:
    """Resolve every route's policy once; an undeclared route stops start-up (fail closed)."""
    missing = [rule.rule for rule in app.url_map.iter_rules() if policy_of(app, rule.endpoint) is None]
    if missing:
        raise RuntimeError(f"routes without @requires(scope) or @public: {', '.join(sorted(missing))}")
    settings = app.config["SETTINGS"]
    for rule in app.url_map.iter_rules():
        switch = policy_of(app, rule.endpoint).public_if
        if switch is not None and not isinstance(getattr(settings, switch, None), bool):
            raise RuntimeError(f"{rule.rule}: public_if={switch!r} is not a boolean setting")


class KeyCache:
    """Per-process cache of key lookups, keyed by the key's SHA-256 (never the clear text).

    Positive entries live `ttl` seconds (the revocation window, NHIS_KEY_CACHE_SECONDS); negative
    entries (unknown or revoked keys) live as long but at most `max_negative` are kept, oldest
    dropped first, so a flood of made-up keys cannot grow memory and each costs at most one query
    (and is counted against the caller's address first).
    """

    def __init__(self, ttl: float, max_positive: int = 10_000, max_negative: int = 1_000,
                 clock=time.monotonic):
        self.ttl, self.clock = ttl, clock
        self.max_positive, self.max_negative = max_positive, max_negative
        self._positive: dict[str, tuple[float, KeyInfo]] = {}
        self._negative: OrderedDict[str, float] = OrderedDict()

    def peek(self, clear: str) -> KeyInfo | None | bool:
        """The cached answer without touching the database; False when not cached (or expired)."""
        if not clear:
            return None
        digest = hash_key(clear)
        now = self.clock()
        hit = self._positive.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        expires = self._negative.get(digest)
        if expires is not None and expires > now:
            return None
        return False

    def get(self, clear: str, sessions) -> KeyInfo | None:
        cached = self.peek(clear)
        if cached is not False:
            return cached
        digest = hash_key(clear)
        with unit_of_work(sessions) as session:
            info = lookup_key_hash(session, digest)
        self.store(digest, info)
        return info

    def store(self, digest: str, info: KeyInfo | None) -> None:
        expires = self.clock() + self.ttl
        if info is None:
            self._negative[digest] = expires
            self._negative.move_to_end(digest)
            while len(self._negative) > self.max_negative:
                self._negative.popitem(last=False)
            return
        self._negative.pop(digest, None)
        if len(self._positive) >= self.max_positive:
            now = self.clock()
            self._positive = {k: v for k, v in self._positive.items() if v[0] > now}
            if len(self._positive) >= self.max_positive:
                self._positive.clear()
        self._positive[digest] = (expires, info)

    def clear(self) -> None:
        self._positive.clear()
        self._negative.clear()


def init_auth(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    app.extensions["key_cache"] = KeyCache(settings.key_cache_seconds)
    app.extensions["rate_limiter"] = RateLimiter(settings)
    app.extensions["route_policies"] = {}

    @app.before_request
    def _enforce_policy():
        enforce(current_app._get_current_object())


def _count(app: Flask, policy: RoutePolicy | None, bucket: str, identity: str) -> None:
    """Count the request; 429 over the limit, 503 when a fail-closed route cannot count."""
    prior = request.environ.get("nhis.rate_decision")  # counted by a fast path that then declined
    if prior is not None and prior[0] == bucket and prior[1] == identity:
        decision = prior[2]
    else:
        fail_closed = bool(policy and policy.fail_closed)
        decision = app.extensions["rate_limiter"].hit(bucket, identity, fail_closed=fail_closed)
    g.rate_decision = decision
    if decision.allowed:
        return
    if decision.storage_down:
        raise ApiError(503, "rate_limiter_unavailable",
                       "this operation is refused while the rate-limit store is unavailable; retry shortly",
                       headers={"Retry-After": "5"})
    RATELIMIT_REJECTED.labels(bucket).inc()
    raise ApiError(429, "rate_limited", f"rate limit of {decision.limit.count} requests per "
                   f"{decision.limit.seconds} s exceeded for {bucket}; retry after {decision.reset} s",
                   {"bucket": bucket, "limit": decision.limit.count, "window_seconds": decision.limit.seconds})


def enforce(app: Flask) -> None:
    policy = policy_of(app, request.endpoint)
    g.route_policy = policy
    address = "a" + (request.remote_addr or "unknown")
    if policy is None:
        if request.endpoint is not None:  # a route that declares nothing is never served
            raise ApiError(403, "forbidden", "this route declares no access policy")
        _count(app, None, "anonymous", address)  # 404/405: still one request
        return
    limit = policy.body_limit(app.config["SETTINGS"], request.content_type)
    request.max_content_length = limit  # werkzeug enforces it while reading a body without a length
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "request_entity_too_large", f"request body larger than {limit} bytes",
                       {"max_bytes": limit})
    if request.content_length is None and request.environ.get("wsgi.input_terminated") and limit <= BUFFER_MAX:
        _buffer_chunked_body(request.environ, limit)
    if policy.scope is None:
        if policy.rate_limited:
            _count(app, policy, "anonymous", address)
        return
    clear = request.headers.get("X-API-Key", "")
    if not clear:
        _count(app, policy, "anonymous", address)
        if policy.public_if and getattr(app.config["SETTINGS"], policy.public_if):
            return  # open by setting: served without a key, under the anonymous limit
        raise ApiError(401, "unauthorized", "missing API key: send it in the X-API-Key header",
                       headers=WWW_AUTHENTICATE)
    cache: KeyCache = app.extensions["key_cache"]
    info = cache.peek(clear)
    if not isinstance(info, KeyInfo):
        # Not cached, or cached as unknown: the caller's address pays before any database query.
        _count(app, policy, "anonymous", address)
        if info is False:
            info = cache.get(clear, resources().sessions) if KEY_FORMAT.match(clear) else None
    if info is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key", headers=WWW_AUTHENTICATE)
    g.api_key = info
    if not info.allows(policy.scope):
        raise ApiError(403, "forbidden", f"this key lacks the {policy.scope!r} scope",
                       {"required_scope": policy.scope, "key_scopes": sorted(info.scopes)})
    _count(app, policy, policy.bucket, f"k{info.id}")


def _buffer_chunked_body(environ, limit: int) -> None:
    """A chunked body has no Content-Length: read at most limit + 1 bytes; more is a 413 (werkzeug
    alone would silently cut the body at the limit and the JSON would fail as a 400)."""
    data = environ["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "request_entity_too_large", f"request body larger than {limit} bytes",
                       {"max_bytes": limit})
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def metrics_token_ok(settings, header: str | None) -> bool:
    """`Authorization: Bearer <NHIS_METRICS_TOKEN>`, compared in constant time."""
    token = settings.metrics_token
    if not token or not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].encode(), token.encode())
