"""Open operational routes: liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, jsonify

from api.extensions import resources
from shared.health import run_checks

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    return jsonify(status="ok")


@bp.get("/ready")
def ready():
    ok, checks = run_checks(resources())
    response = jsonify(status="ready" if ok else "not_ready", checks=checks)
    response.status_code = 200 if ok else 503
    if not ok:
        response.headers["Retry-After"] = "5"
    return response
