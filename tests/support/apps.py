"""An embedded (SQLite, no Redis) app and keys for unit tests of the serving rules."""

from __future__ import annotations

import uuid

from shared.auth.keys import create_key, revoke_key
from shared.db.engine import unit_of_work

EVERY_SCOPE = "stats:read,simulate,records:read,etl:write,admin"


def embedded_app(settings, resources, **overrides):
    from api import create_app

    app = create_app({"data_dir": settings.data_dir, "log_format": "console", **overrides})
    app.extensions["resources"] = resources
    return app


def make_key(resources, scopes, revoked: bool = False) -> str:
    name = f"k-{uuid.uuid4().hex[:8]}"
    with unit_of_work(resources.sessions) as session:
        clear = create_key(session, name, scopes)
    if revoked:
        with unit_of_work(resources.sessions) as session:
            revoke_key(session, name)
    return clear


def assert_envelope(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["request_id"] == response.headers["X-Request-ID"]
    if code is not None:
        assert error["code"] == code
    return error
