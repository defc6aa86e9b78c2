"""Auth that fails closed: every route declares its access, every operation refuses what it must,
keys are cached by hash with bounded negative entries, and revocation lands within its window."""

from __future__ import annotations

import pytest
from flask_smorest import Blueprint as SmorestBlueprint
from sqlalchemy import event

from api.auth import KeyCache, RoutePolicy, finalize_policies, policy_of
from shared.auth.keys import SCOPES, hash_key
from tests.support.apps import assert_envelope, embedded_app, make_key

# The documented scope of every OpenAPI operation (docs/API.md). A new operation must be added
# here, so its access rule is decided on purpose and tested below.
OPERATION_SCOPES = {
    ("get", "/api/v1/auth/whoami"): "*",
    ("post", "/api/v1/etl/jobs"): "etl:write",
    ("get", "/api/v1/etl/jobs"): "etl:write",
    ("get", "/api/v1/etl/jobs/{job_id}"): "etl:write",
    ("get", "/api/v1/etl/jobs/{job_id}/rejects"): "etl:write",
    ("post", "/api/v1/etl/jobs/{job_id}/cancel"): "etl:write",
    ("get", "/api/v1/records"): "records:read",
    ("get", "/api/v1/records/{record_id}"): "records:read",
    **{("get", f"/api/v1/stats/{name}"): "stats:read"
       for name in ("overview", "risk", "age", "factors", "region", "percentiles", "trends")},
    ("post", "/api/v1/stats/refresh"): "admin",
    ("post", "/api/v1/simulate"): "simulate",
    ("post", "/api/v1/simulate/batch"): "simulate",
}
PUBLIC_RULES = {"/health", "/ready", "/metrics", "/", "/static/<name>", "/openapi.json", "/docs",
                "/docs/static/<path:filename>"}
# Routes a setting may open to callers without a key (NHIS_PUBLIC_STATS): aggregate statistics only.
PUBLIC_IF = {f"/api/v1/stats/{name}": "public_stats"
             for name in ("overview", "risk", "age", "factors", "region", "percentiles", "trends")}
BODIES = {
    "/api/v1/etl/jobs": {"path": "no-such-file.csv"},
    "/api/v1/simulate": {"sex": "M", "age": 50},
    "/api/v1/simulate/batch": {"people": [{"sex": "F", "age": 40}]},
}


@pytest.fixture
def app(sqlite_settings, sqlite_resources):
    return embedded_app(sqlite_settings, sqlite_resources, rate_limits="any=10000/minute,anonymous=10000/minute")


def test_every_route_declares_a_scope_or_public(app):
    seen_public = set()
    for rule in app.url_map.iter_rules():
        policy = policy_of(app, rule.endpoint)
        assert isinstance(policy, RoutePolicy), f"{rule.rule} declares no access policy"
        if policy.scope is None:
            seen_public.add(rule.rule)
    assert seen_public == PUBLIC_RULES  # nothing else is open to anonymous callers


def test_only_aggregate_statistics_can_be_opened_by_a_setting(app):
    opened = {rule.rule: policy_of(app, rule.endpoint).public_if for rule in app.url_map.iter_rules()
              if policy_of(app, rule.endpoint).public_if is not None}
    assert opened == PUBLIC_IF


def test_an_undeclared_route_stops_start_up_and_is_never_served(app, sqlite_resources):
    forgot = SmorestBlueprint("forgot", __name__)

    @forgot.route("/leak")
    def leak():
        return {"secret": True}

    app.extensions["smorest_api"].register_blueprint(forgot, url_prefix="/api/v1/forgot")
    with pytest.raises(RuntimeError, match="/api/v1/forgot/leak"):
        finalize_policies(app)
    key = make_key(sqlite_resources, ",".join(SCOPES))
    for headers in ({}, {"X-API-Key": key}):
        assert_envelope(app.test_client().get("/api/v1/forgot/leak", headers=headers), 403, "forbidden")


def _operations(app):
    spec = app.test_client().get("/openapi.json").get_json()
    ops = [(method, path) for path, item in spec["paths"].items() for method in item
           if method in ("get", "post", "put", "patch", "delete")]
    assert set(ops) == set(OPERATION_SCOPES), "an operation's scope is not decided in OPERATION_SCOPES"
    return ops


def _wrong_scopes(required: str) -> str | None:
    """A key holding every scope that does not grant `required` (admin grants all but records:read)."""
    if required == "*":
        return None
    wrong = [s for s in SCOPES if s != required and not (s == "admin" and required != "records:read")]
    return ",".join(wrong)


def _call(client, method: str, path: str, key: str | None):
    url = path.replace("{job_id}", "1").replace("{record_id}", "20240000000001")
    headers = {"X-API-Key": key} if key is not None else {}
    return client.open(url, method=method.upper(), headers=headers, json=BODIES.get(path))


CASES = ["no key", "unknown key", "malformed key", "revoked key", "wrong scope", "right scope"]


@pytest.mark.parametrize("case", CASES)
def test_auth_matrix_over_every_openapi_operation(app, sqlite_resources, case):
    client = app.test_client()
    for method, path in _operations(app):
        required = OPERATION_SCOPES[(method, path)]
        grant = "simulate" if required == "*" else required
        if case == "no key":
            key = None
        elif case == "unknown key":
            key = "nhis_0123abcd_" + "A" * 43  # well formed, never issued
        elif case == "malformed key":
            key = "Bearer something"
        elif case == "revoked key":
            key = make_key(sqlite_resources, grant, revoked=True)
        elif case == "wrong scope":
            scopes = _wrong_scopes(required)
            if scopes is None:  # any valid key may call it: no wrong scope exists
                continue
            key = make_key(sqlite_resources, scopes)
        else:
            key = make_key(sqlite_resources, grant)
        response = _call(client, method, path, key)
        where = f"{method.upper()} {path} with {case}"
        if case == "right scope":
            assert response.status_code not in (401, 403), where
            if response.status_code >= 400:
                assert_envelope(response, response.status_code)
        elif case == "wrong scope":
            error = assert_envelope(response, 403, "forbidden")
            assert error["details"]["required_scope"] == required, where
        else:
            assert_envelope(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"].startswith("ApiKey"), where


def test_admin_does_not_imply_records_read(app, sqlite_resources):
    client = app.test_client()
    admin = make_key(sqlite_resources, "admin")
    error = assert_envelope(client.get("/api/v1/records", headers={"X-API-Key": admin}), 403, "forbidden")
    assert error["details"]["required_scope"] == "records:read"
    both = make_key(sqlite_resources, "admin,records:read")
    assert client.get("/api/v1/records", headers={"X-API-Key": both}).status_code == 200
    # admin still implies the other scopes
    assert client.post("/api/v1/simulate", headers={"X-API-Key": admin}, json={"sex": "M", "age": 40}).status_code == 200


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _count_queries(engine):
    queries = []
    event.listen(engine, "before_cursor_execute", lambda *a, **k: queries.append(a[2]))
    return queries


def test_key_cache_is_keyed_by_hash_and_unknown_keys_cost_one_query_per_window(app, sqlite_resources):
    clock = FakeClock()
    cache = KeyCache(ttl=10, clock=clock)
    app.extensions["key_cache"] = cache
    client = app.test_client()
    key = make_key(sqlite_resources, "stats:read")
    assert client.get("/api/v1/auth/whoami", headers={"X-API-Key": key}).status_code == 200
    assert key not in repr(cache.__dict__) and hash_key(key) in cache._positive
    queries = _count_queries(sqlite_resources.engine)
    unknown = "nhis_0123abcd_" + "B" * 43
    for _ in range(5):
        assert client.get("/api/v1/auth/whoami", headers={"X-API-Key": unknown}).status_code == 401
    assert sum("api_keys" in q for q in queries) == 1  # negative entry: one lookup per window
    for _ in range(3):  # malformed keys never reach the database
        assert client.get("/api/v1/auth/whoami", headers={"X-API-Key": "x" * 80}).status_code == 401
    assert sum("api_keys" in q for q in queries) == 1
    clock.now += 10.01
    assert client.get("/api/v1/auth/whoami", headers={"X-API-Key": unknown}).status_code == 401
    assert sum("api_keys" in q for q in queries) == 2


def test_negative_cache_is_bounded():
    cache = KeyCache(ttl=10, max_negative=50)
    for i in range(500):
        cache.store(hash_key(f"made-up-{i}"), None)
    assert len(cache._negative) == 50
    assert cache.peek("made-up-499") is None and cache.peek("made-up-0") is False


def test_revocation_takes_effect_within_the_cache_window(app, sqlite_resources):
    """The documented window is NHIS_KEY_CACHE_SECONDS: served until it ends, refused after."""
    from shared.auth.keys import revoke_key
    from shared.db.engine import unit_of_work

    clock = FakeClock()
    window = app.config["SETTINGS"].key_cache_seconds
    app.extensions["key_cache"] = KeyCache(ttl=window, clock=clock)
    client = app.test_client()
    key = make_key(sqlite_resources, "simulate")
    name = client.get("/api/v1/auth/whoami", headers={"X-API-Key": key}).get_json()["name"]
    with unit_of_work(sqlite_resources.sessions) as session:
        revoke_key(session, name)
    clock.now += window - 0.01
    assert client.get("/api/v1/auth/whoami", headers={"X-API-Key": key}).status_code == 200
    clock.now += 0.02
    assert_envelope(client.get("/api/v1/auth/whoami", headers={"X-API-Key": key}), 401, "unauthorized")
