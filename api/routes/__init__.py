"""Blueprint registration: open operational routes, then the versioned API."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from api.routes import dashboard, health, metrics

    api = app.extensions["smorest_api"]
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(dashboard.bp)
    for module in _api_modules():
        api.register_blueprint(module.blp, url_prefix="/api/v1" + module.URL_PREFIX)


def _api_modules():
    from api.routes import etl, keys_admin, records, simulate, stats

    return [keys_admin, etl, records, stats, simulate]
