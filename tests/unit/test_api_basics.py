"""Error envelope, request ids, JSON provider and auth, on an embedded (SQLite) app."""

import decimal
import math

import pytest
from flask import Blueprint

from api import create_app
from shared.auth.keys import create_key, revoke_key
from shared.db.engine import unit_of_work


@pytest.fixture
def app(sqlite_resources, sqlite_settings):
    app = create_app({"data_dir": sqlite_settings.data_dir, "log_format": "console"})
    app.extensions["resources"] = sqlite_resources
    from api.auth import public

    boom = Blueprint("boom", __name__)

    @boom.get("/boom")
    @public
    def _boom():
        raise RuntimeError("secret internals")

    @boom.get("/values")
    @public
    def _values():
        from flask import jsonify

        return jsonify(nan=math.nan, inf=math.inf, dec=decimal.Decimal("1.25"))

    app.register_blueprint(boom)

    from flask_smorest import Blueprint as SmorestBlueprint

    from api.auth import requires

    needs_admin = SmorestBlueprint("needs_admin", __name__)

    @needs_admin.route("/admin-only")
    @requires("admin")
    def admin_only():
        return {"ok": True}

    app.extensions["smorest_api"].register_blueprint(needs_admin, url_prefix="/api/v1/test")
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def make_key(resources, scopes):
    import uuid

    with unit_of_work(resources.sessions) as session:
        return create_key(session, f"k-{uuid.uuid4().hex[:6]}", scopes)


def assert_envelope(response, status, code):
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["X-Request-ID"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def test_404_405_500_share_the_envelope(client):
    assert_envelope(client.get("/no/such/path"), 404, "not_found")
    error = assert_envelope(client.post("/health"), 405, "method_not_allowed")
    assert error["details"] == {}
    error = assert_envelope(client.get("/boom"), 500, "internal_error")
    assert "secret internals" not in error["message"]


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    generated = client.get("/health", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert generated != "bad id with spaces" and len(generated) == 32


def test_json_provider_maps_nan_to_null_and_decimal_to_number(client):
    assert client.get("/values").get_json() == {"nan": None, "inf": None, "dec": 1.25}


def test_missing_and_unknown_keys_are_401(client):
    error = assert_envelope(client.get("/api/v1/auth/whoami"), 401, "unauthorized")
    assert "X-API-Key" in error["message"]
    assert_envelope(client.get("/api/v1/auth/whoami", headers={"X-API-Key": "nhis_nope"}), 401, "unauthorized")


def test_key_without_scope_is_403_and_with_scope_200(app, client, sqlite_resources):
    key = make_key(sqlite_resources, "stats:read")
    assert client.get("/api/v1/auth/whoami", headers={"X-API-Key": key}).get_json()["scopes"] == ["stats:read"]
    error = assert_envelope(client.get("/api/v1/test/admin-only", headers={"X-API-Key": key}), 403, "forbidden")
    assert error["details"]["required_scope"] == "admin"
    admin = make_key(sqlite_resources, "admin")
    assert client.get("/api/v1/test/admin-only", headers={"X-API-Key": admin}).status_code == 200


def test_revoked_key_stops_working(app, client, sqlite_resources):
    key = make_key(sqlite_resources, ["simulate"])
    assert client.get("/api/v1/auth/whoami", headers={"X-API-Key": key}).status_code == 200
    with unit_of_work(sqlite_resources.sessions) as session:
        from sqlalchemy import select

        from shared.db.models import ApiKey

        name = session.scalars(select(ApiKey.name).order_by(ApiKey.id.desc())).first()
        revoke_key(session, name)
    app.extensions["key_cache"].clear()  # the per-process cache lives NHIS_KEY_CACHE_SECONDS (test_auth.py)
    assert_envelope(client.get("/api/v1/auth/whoami", headers={"X-API-Key": key}), 401, "unauthorized")


def test_keys_are_stored_hashed(sqlite_resources):
    key = make_key(sqlite_resources, "stats:read")
    with sqlite_resources.engine.connect() as conn:
        from sqlalchemy import text

        stored = [tuple(r) for r in conn.execute(text("SELECT key_hash, prefix, scopes FROM api_keys"))]
    assert all(key not in "".join(map(str, row)) for row in stored)


def test_openapi_declares_the_key_scheme_and_docs_need_no_cdn(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
    }
    assert spec["paths"]["/api/v1/auth/whoami"]["get"]["security"] == [{"ApiKeyAuth": []}]
    page = client.get("/docs").get_data(as_text=True)
    assert "//cdn" not in page and "/docs/static/swagger-ui-bundle.js" in page
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200


def test_sources_resolve_inside_the_data_dir_only(sqlite_settings, tmp_path, monkeypatch):
    from shared.etl.jobs import JobInputError, resolve_source

    data = sqlite_settings.data_dir
    (data / "in").mkdir(parents=True, exist_ok=True)
    target = data / "in" / "f.csv"
    target.write_text("x")
    monkeypatch.chdir(data.parent)
    assert resolve_source(sqlite_settings, "in/f.csv") == target.resolve()  # relative to NHIS_DATA_DIR
    assert resolve_source(sqlite_settings, f"{data.name}/in/f.csv") == target.resolve()  # relative to cwd
    outside = tmp_path.parent / "outside.csv"
    outside.write_text("x")
    for bad in (str(outside), "../outside.csv", "in/missing.csv"):
        with pytest.raises(JobInputError):
            resolve_source(sqlite_settings, bad)
