"""The Flask application factory: a short list of init/register calls."""

from __future__ import annotations

from flask import Flask

from api.auth import init_auth
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
    app = Flask(__name__)
    settings = load_settings(**(overrides or {}))
    app.config.from_mapping(
        SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.upload_max_mb * 1024 * 1024,
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
    init_fast_paths(app)
    return app
