"""The dashboard at `/`: one HTML page whose scripts and styles are files of api/static.

No secret is in the page: the visitor types an API key, kept in this tab's sessionStorage and sent
as X-API-Key (or, with NHIS_PUBLIC_STATS=1, reads statistics without one). Nothing is fetched
from another origin and nothing is built at install time: the charts are SVG drawn by our own
script (api/static/charts.js).

Why a route and not an open static folder: only the files listed here are served, each with its
own type, and the page names every file with a content hash (`?v=`), so a browser may keep a
file for a year (`immutable`) and still never runs an old script with a new page. The page gets
the strict DASHBOARD_CSP of api/finisher.py (no inline script or style at all).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, current_app, request

from api.auth import public
from api.errors import ApiError
from api.finisher import DASHBOARD_CSP

bp = Blueprint("dashboard", __name__)
STATIC = Path(__file__).resolve().parent.parent / "static"
PAGE = "dashboard.html"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
IMMUTABLE = "public, max-age=31536000, immutable"  # only for the exact version the page names
_ASSET_REF = re.compile(r"\{\{asset:([A-Za-z0-9_.-]+)\}\}")
_PUBLIC_STATS = "{{public_stats}}"


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    version: str  # the first 16 hex digits of the file's SHA-256


class Bundle:
    """The page with its asset references resolved, and the assets it may name; read once per process."""

    def __init__(self, folder: Path, public_stats: bool):
        self.assets = {
            path.name: Asset(data, TYPES[path.suffix], hashlib.sha256(data).hexdigest()[:16])
            for path in sorted(folder.iterdir())
            if path.is_file() and path.suffix in TYPES
            for data in (path.read_bytes(),)
        }
        page = (folder / PAGE).read_text("utf-8")
        page = _ASSET_REF.sub(self._reference, page).replace(_PUBLIC_STATS, "true" if public_stats else "false")
        self.page = page.encode("utf-8")
        self.page_etag = hashlib.sha256(self.page).hexdigest()[:16]

    def _reference(self, match: re.Match) -> str:
        asset = self.assets.get(match[1])
        if asset is None:
            raise RuntimeError(f"{PAGE} names {match[1]!r}, which is not in api/static")
        return f"/static/{match[1]}?v={asset.version}"


def bundle() -> Bundle:
    found = current_app.extensions.get("dashboard")
    if found is None:
        found = current_app.extensions["dashboard"] = Bundle(STATIC, current_app.config["SETTINGS"].public_stats)
    return found


@bp.get("/")
@public
def index():
    page = bundle()
    response = Response(page.page, mimetype="text/html", headers={
        "Cache-Control": "no-cache", "Content-Security-Policy": DASHBOARD_CSP})
    response.set_etag(page.page_etag)
    return response.make_conditional(request)


@bp.get("/static/<name>")
@public
def asset(name: str):
    found = bundle().assets.get(name)
    if found is None:
        raise ApiError(404, "not_found", "no such file")
    cache = IMMUTABLE if request.args.get("v") == found.version else "no-cache"
    response = Response(found.body, content_type=found.content_type, headers={"Cache-Control": cache})
    response.set_etag(found.version)
    return response.make_conditional(request)
