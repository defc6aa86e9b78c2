"""The one place a response is finished, for the Flask path and the WSGI fast paths alike.

Request id, timing, security headers, rate-limit headers, `Cache-Control: no-store` on
person-level data, the request metrics and the access log line all come from `finishing_headers`
and `complete_request`, so a header or a metric added here reaches both paths by construction
(tests/unit/test_seam.py pins it).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import time

import structlog

from api.observability import observe_request

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
# JSON and text answers load nothing and may not be framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
NO_STORE = ("Cache-Control", "no-store")

_access = structlog.get_logger("api.access")
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


def request_id_for(incoming: str | None) -> str:
    """The caller's X-Request-ID if it is safe to echo, else a fresh one (128 random bits as 32 hex
    digits, the form of a UUID's hex without uuid4's object: a fifth of the cost on a hot path)."""
    return incoming if incoming and SAFE_REQUEST_ID.match(incoming) else os.urandom(16).hex()


def finishing_headers(request_id: str, started: float | None, decision=None, *,
                      person_level: bool = False, has_csp: bool = False) -> list[tuple[str, str]]:
    """Every header the service adds to a response, whichever path produced it."""
    out = [("X-Request-ID", request_id)]
    if started is not None:
        out.append(("X-Response-Time", f"{(time.perf_counter() - started) * 1000:.2f}ms"))
    out.extend(SECURITY_HEADERS)
    if not has_csp:
        out.append(("Content-Security-Policy", API_CSP))
    if person_level:
        out.append(NO_STORE)
    if decision is not None:
        out.extend(decision.headers())
    return out


# The dashboard (api/routes/dashboard.py): every script and style is a file of this origin, so
# neither inline scripts nor inline styles (nor style attributes) run, and Trusted Types make any
# HTML-string sink (innerHTML, document.write, eval) throw: the page builds its DOM with
# createElement and textContent only.
DASHBOARD_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                 "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
                 "frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'")


def html_csp(body: bytes) -> str:
    """A CSP for a library's HTML page (Swagger UI at /docs): its own inline scripts pinned by hash,
    everything else from this origin. Swagger UI sets inline styles, so styles stay open there;
    the dashboard uses DASHBOARD_CSP instead."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(body)
    )
    return ("default-src 'self'; "
            f"script-src 'self'{' ' + hashes if hashes else ''}; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def complete_request(mode: str, method: str, route: str, status: int, started: float | None,
                     request_id: str, key_id: int | None) -> None:
    """The last step of every request, whichever path answered: its latency in the request
    histogram (labelled by `route`, the URL rule, never the raw path) and its access line."""
    seconds = time.perf_counter() - started if started is not None else None
    if seconds is not None:
        observe_request(route, method, status, seconds)
    log_request(mode, method, route, status, seconds, request_id, key_id)


def log_request(mode: str, method: str, path: str, status: int, seconds: float | None,
                request_id: str, key_id: int | None) -> None:
    """One access line: method, path (never the query string), status, time, key id. Never the key,
    the body or the filters (which may identify a person). `mode`: errors | all | off."""
    if mode == "off" or (mode == "errors" and status < 400):
        return
    if not logging.getLogger("api.access").isEnabledFor(logging.INFO):
        return
    ms = round(seconds * 1000, 2) if seconds is not None else None
    level = _access.warning if status >= 500 else _access.info
    level("request", method=method, path=path, status=status, ms=ms, request_id=request_id, key_id=key_id)
