"""OpenAPI document and Swagger UI, served from the installed swagger-ui-bundle (no CDN)."""

from __future__ import annotations

import swagger_ui_bundle
from flask import Flask, send_from_directory
from flask_smorest import Api
from marshmallow import Schema, fields

from api.auth import SECURITY_SCHEME, declare_public, public

DESCRIPTION = (
    "Guideline-based cardiovascular and metabolic risk factors over the Korean NHIS health-screening "
    "file. Screening information, not a diagnosis. Every /api/v1 call needs an `X-API-Key` header."
)


class ErrorSchema(Schema):
    class Body(Schema):
        code = fields.String(required=True, metadata={"example": "validation_error"})
        message = fields.String(required=True)
        details = fields.Dict(metadata={"description": "e.g. {\"fields\": {\"sbp\": [\"...\"]}}"})
        request_id = fields.String(required=True)

    error = fields.Nested(Body, required=True)


class EnvelopeApi(Api):
    """flask-smorest documents its own error body by default; ours is the one envelope we send."""

    ERROR_SCHEMA = ErrorSchema


def init_docs(app: Flask) -> None:
    app.config.update(
        API_TITLE="NHIS screening API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/docs/static/",
        API_SPEC_OPTIONS={"info": {"description": DESCRIPTION}},
    )
    api = EnvelopeApi(app)
    api.spec.components.security_scheme(
        SECURITY_SCHEME, {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    )
    app.extensions["smorest_api"] = api
    declare_public(app, "api-docs.openapi_json", "api-docs.openapi_swagger_ui")

    @app.get("/docs/static/<path:filename>")
    @public
    def swagger_static(filename: str):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)
