"""API-key authentication and scopes, enforced in one before_request hook.

Views declare their scope with `@requires(scope)`; the hook reads it, so no view can forget the
check and the OpenAPI document lists the key scheme per operation.
"""

from __future__ import annotations

import time
from functools import wraps

from flask import Flask, current_app, g, request
from flask_smorest import Blueprint

from api.errors import ApiError
from api.extensions import resources
from shared.auth.keys import KeyInfo, lookup_key
from shared.db.engine import unit_of_work

SECURITY_SCHEME = "ApiKeyAuth"
_CACHE_SECONDS = 10.0  # a revoked key stops working within this many seconds in every process


def requires(scope: str):
    def decorate(view):
        view = Blueprint.doc(security=[{SECURITY_SCHEME: []}])(view)

        @wraps(view)
        def wrapper(*args, **kwargs):
            return view(*args, **kwargs)

        wrapper.required_scope = scope
        return wrapper

    return decorate


class _KeyCache:
    """Per-process cache of key lookups so a stats read does not cost a database query."""

    def __init__(self):
        self._entries: dict[str, tuple[float, KeyInfo | None]] = {}

    def peek(self, clear: str) -> KeyInfo | None | bool:
        """The cached answer without touching the database; False when not cached (or expired)."""
        hit = self._entries.get(clear)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return False

    def get(self, clear: str) -> KeyInfo | None:
        now = time.monotonic()
        hit = self._entries.get(clear)
        if hit is not None and hit[0] > now:
            return hit[1]
        with unit_of_work(resources().sessions) as session:
            info = lookup_key(session, clear)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[clear] = (now + _CACHE_SECONDS, info)
        return info


def init_auth(app: Flask) -> None:
    app.extensions["key_cache"] = _KeyCache()

    @app.before_request
    def _check_key():
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        scope = getattr(view, "required_scope", None)
        if scope is None:
            return None
        clear = request.headers.get("X-API-Key", "")
        if not clear:
            raise ApiError(401, "unauthorized", "missing API key: send it in the X-API-Key header",
                           headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'})
        info = current_app.extensions["key_cache"].get(clear)
        if info is None:
            raise ApiError(401, "unauthorized", "unknown or revoked API key",
                           headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'})
        if not info.allows(scope):
            raise ApiError(403, "forbidden", f"this key lacks the {scope!r} scope",
                           {"required_scope": scope, "key_scopes": sorted(info.scopes)})
        g.api_key = info
        return None
