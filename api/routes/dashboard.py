"""The small dashboard page at `/`: static HTML and JS, no secret in it. The visitor types an API
key, kept in sessionStorage of their own browser and sent as X-API-Key.

Served as an ordinary response (not a file stream) so the finisher can pin its inline script by
hash in the page's Content-Security-Policy (api/finisher.py: html_csp)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

from api.auth import public

bp = Blueprint("dashboard", __name__)
STATIC = Path(__file__).resolve().parent.parent / "static"


@bp.get("/")
@public
def index():
    page = (STATIC / "dashboard.html").read_bytes()
    return Response(page, mimetype="text/html", headers={"Cache-Control": "no-cache"})
