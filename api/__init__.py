"""The Flask application factory: a short list of init/register calls."""

from __future__ import annotations

from flask import Flask

from api.auth import DEFAULT_MAX_BODY, finalize_policies, init_auth
from api.docs import init_docs
from api.errors import register_error_handlers
from api.extensions import init_extensions
from api.fastpath import init_fast_paths
from api.jsonprovider import init_json
from api.requests import init_request_context
from api.routes import register_blueprints
from api.uploads import init_uploads
from shared.config import load_settings


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)  # the dashboard is a route; no open static folder
    settings = load_settings(**(overrides or {}))
    app.config.from_mapping(
        SETTINGS=settings,
        # Each route sets its own limit before reading a body (api/auth.py); this is the default.
        MAX_CONTENT_LENGTH=DEFAULT_MAX_BODY,
        JSON_SORT_KEYS=False,
    )
    init_json(app)
    init_uploads(app)
    init_extensions(app, settings)
    init_request_context(app)
    init_auth(app)
    init_docs(app)
    register_blueprints(app)
    register_error_handlers(app)
    finalize_policies(app)
    if settings.trusted_proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)
    init_fast_paths(app)
    return app
