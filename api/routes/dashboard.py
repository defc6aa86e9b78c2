"""The small dashboard page at `/`: static HTML and JS, no secret in it. The visitor types an API
key, kept in sessionStorage of their own browser and sent as X-API-Key."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

bp = Blueprint("dashboard", __name__)
STATIC = Path(__file__).resolve().parent.parent / "static"


@bp.get("/")
def index():
    return send_from_directory(STATIC, "dashboard.html", max_age=0)
