"""Per-process resources bound to the app (engine, sessions, cache, task producer)."""

from __future__ import annotations

from flask import Flask, current_app

from shared.logging_setup import configure_logging
from shared.resources import Resources


def init_extensions(app: Flask, settings) -> None:
    configure_logging(settings.log_level, settings.log_format, component="api")
    app.extensions["resources"] = Resources(settings, role="api")


def resources() -> Resources:
    return current_app.extensions["resources"]
