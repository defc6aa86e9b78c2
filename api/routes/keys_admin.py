"""Who am I: the smallest authenticated call, for checking a key and its scopes."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from api.auth import requires

URL_PREFIX = "/auth"
blp = Blueprint("auth", __name__, description="API keys")


class WhoAmISchema(Schema):
    name = fields.String()
    scopes = fields.List(fields.String())


@blp.route("/whoami")
@blp.response(200, WhoAmISchema)
@requires("*")
def whoami():
    return {"name": g.api_key.name, "scopes": sorted(g.api_key.scopes)}
