"""Operational routes: liveness (process only) and readiness (cached, details for admin keys)."""

from __future__ import annotations

import threading
import time

from flask import Blueprint, current_app, jsonify, request

from api.auth import KEY_FORMAT, public
from api.extensions import resources
from shared.health import readiness

bp = Blueprint("health", __name__)


@bp.get("/health")
@public(rate_limited=False)
def health():
    """Liveness: the process answers. No dependency is touched, so it never blocks."""
    return jsonify(status="ok")


class ReadyCache:
    """One readiness result per process, recomputed at most every NHIS_READY_CACHE_SECONDS and
    shared by every caller, so looping clients cost one set of checks per interval."""

    def __init__(self, ttl: float, clock=time.monotonic):
        self.ttl, self.clock = ttl, clock
        self._value: dict | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def get(self, compute) -> dict:
        with self._lock:
            if self._value is None or self.clock() >= self._expires:
                self._value = compute()
                self._expires = self.clock() + self.ttl
            return self._value


def _is_admin() -> bool:
    clear = request.headers.get("X-API-Key", "")
    if not KEY_FORMAT.match(clear):
        return False
    try:
        info = current_app.extensions["key_cache"].get(clear, resources().sessions)
    except Exception:  # the database is down: no details, the verdict still answers
        return False
    return info is not None and "admin" in info.scopes


@bp.get("/ready")
@public
def ready():
    """Readiness: 200 while reads can be served (degraded parts named), 503 when they cannot.
    Anonymous callers get the verdict and ok per check; an `admin` key also gets the details."""
    if "ready_cache" not in current_app.extensions:
        current_app.extensions["ready_cache"] = ReadyCache(current_app.config["SETTINGS"].ready_cache_seconds)
    result = current_app.extensions["ready_cache"].get(lambda: readiness(resources()))
    checks = result["checks"]
    if not _is_admin():
        checks = {name: {"ok": r["ok"]} for name, r in checks.items()}
    response = jsonify(status=result["status"], degraded=result["degraded"], checks=checks,
                       checked_at=result["checked_at"])
    response.status_code = 200 if result["ready"] else 503
    response.headers["Cache-Control"] = "no-store"
    if not result["ready"]:
        response.headers["Retry-After"] = "5"
    return response
