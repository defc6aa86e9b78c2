"""Bounded work per request on an embedded app: rate limits with standard headers, body limits
checked before the body is read, the running-jobs cap, /ready, /metrics, security headers."""

from __future__ import annotations

import io
import json

import pytest

from api.ratelimit import RateLimiter
from shared.db.engine import unit_of_work
from shared.db.models import AuditLog, EtlJob, EtlReject
from tests.support.apps import EVERY_SCOPE, assert_envelope, embedded_app, make_key


@pytest.fixture
def app(sqlite_settings, sqlite_resources):
    return embedded_app(sqlite_settings, sqlite_resources,
                        rate_limits="any=3/minute,anonymous=4/minute,simulate=1000/minute,etl:write=1000/minute",
                        metrics_token="t" * 32)


def whoami(client, key, addr="10.0.0.1"):
    return client.get("/api/v1/auth/whoami", headers={"X-API-Key": key}, environ_base={"REMOTE_ADDR": addr})


def test_per_key_limit_answers_429_with_standard_headers(app, sqlite_resources):
    client = app.test_client()
    key, other = make_key(sqlite_resources, "simulate"), make_key(sqlite_resources, "simulate")
    seen = [whoami(client, key) for _ in range(3)]
    assert [r.status_code for r in seen] == [200, 200, 200]
    assert [r.headers["RateLimit-Remaining"] for r in seen] == ["2", "1", "0"]
    assert seen[0].headers["RateLimit-Limit"] == "3" and seen[0].headers["RateLimit-Policy"] == "3;w=60"
    refused = whoami(client, key)
    error = assert_envelope(refused, 429, "rate_limited")
    assert error["details"] == {"bucket": "any", "limit": 3, "window_seconds": 60}
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Retry-After"] == refused.headers["RateLimit-Reset"]
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert whoami(client, other).status_code == 200  # another key has its own counter


def test_anonymous_calls_are_limited_per_client_address(app):
    client = app.test_client()
    codes = [client.get("/ready", environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code for _ in range(5)]
    assert codes[:4] == [200] * 4 and codes[4] == 429
    assert client.get("/ready", environ_base={"REMOTE_ADDR": "10.9.9.8"}).status_code == 200
    # made-up keys from the exhausted address are refused before any lookup
    assert_envelope(whoami(client, "nhis_0123abcd_" + "C" * 43, addr="10.9.9.9"), 429, "rate_limited")
    assert client.get("/health", environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 200  # never limited


def test_fixed_windows_reset_on_the_clock():
    from shared.config import load_settings

    now = [120.0]
    limiter = RateLimiter(load_settings(redis_url=None, rate_limits="any=2/minute"), clock=lambda: now[0])
    assert [limiter.hit("any", "k1").allowed for _ in range(3)] == [True, True, False]
    now[0] = 179.5
    decision = limiter.hit("any", "k1")
    assert not decision.allowed and decision.reset == 1
    now[0] = 180.0  # the next window
    assert limiter.hit("any", "k1").allowed


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anyone reads it."""

    def readable(self):
        return True

    def readinto(self, _buffer):
        raise AssertionError("the body was read although Content-Length was over the limit")


def raw_post(app, path: str, key: str, body, length: str | None, chunked: bool = False):
    """POST with a hand-made WSGI environ (the test client would measure and rewind the body)."""
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Response

    environ = EnvironBuilder(path, method="POST", headers={"X-API-Key": key},
                             content_type="application/json").get_environ()
    environ["wsgi.input"] = body
    environ.pop("CONTENT_LENGTH", None)
    if length is not None:
        environ["CONTENT_LENGTH"] = length
    if chunked:  # what a server that de-chunks the body (Gunicorn) tells the application
        environ["wsgi.input_terminated"] = True
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    return Response.from_app(app, environ)


@pytest.mark.parametrize(("path", "limit"), [("/api/v1/simulate", 64 * 1024),
                                             ("/api/v1/simulate/batch", 2 * 1024 * 1024),
                                             ("/api/v1/etl/jobs", 64 * 1024)])
def test_body_over_the_route_limit_is_refused_from_content_length(app, sqlite_resources, path, limit):
    key = make_key(sqlite_resources, EVERY_SCOPE)
    response = raw_post(app, path, key, Unreadable(), str(limit + 1))
    error = assert_envelope(_as_test_response(response), 413, "request_entity_too_large")
    assert error["details"] == {"max_bytes": limit}


def test_batch_of_a_thousand_people_fits_its_limit_and_a_bigger_body_does_not(app, sqlite_resources):
    client = app.test_client()
    key = make_key(sqlite_resources, "simulate")
    person = {"sex": "F", "age": 50, "sbp": 120.0, "dbp": 80.0, "fasting_glucose": 95.0, "height_cm": 160.0}
    ok = client.post("/api/v1/simulate/batch", headers={"X-API-Key": key}, json={"people": [person] * 1000})
    assert ok.status_code == 200 and len(ok.get_json()["results"]) == 1000
    padded = json.dumps({"people": [person], "pad": "x" * (2 * 1024 * 1024)})
    assert_envelope(client.post("/api/v1/simulate/batch", headers={"X-API-Key": key},
                                data=padded, content_type="application/json"), 413)


def test_a_body_without_content_length_is_cut_at_the_limit(app, sqlite_resources):
    key = make_key(sqlite_resources, "simulate")
    body = b'{"sex": "M", "age": 50, "pad": "' + b"x" * (70 * 1024) + b'"}'
    response = raw_post(app, "/api/v1/simulate", key, io.BytesIO(body), None, chunked=True)
    assert_envelope(_as_test_response(response), 413)
    small = raw_post(app, "/api/v1/simulate", key, io.BytesIO(b'{"sex": "M", "age": 50}'), None, chunked=True)
    assert small.status_code == 200


def _as_test_response(response):
    from flask.testing import FlaskClient  # noqa: F401 - the same response class the client returns

    response.get_json = lambda: json.loads(response.get_data())
    return response


def test_running_jobs_cap_per_key(app, sqlite_resources, sqlite_settings):
    client = app.test_client()
    key = make_key(sqlite_resources, "etl:write")
    key_id = whoami(client, key).get_json() and app.extensions["key_cache"].peek(key).id
    with unit_of_work(sqlite_resources.sessions) as session:
        for status in ("running", "queued", "succeeded", "failed"):
            session.add(EtlJob(status=status, phase=status, source_path="/x.csv", api_key_id=key_id))
    cap = sqlite_settings.max_running_jobs_per_key
    assert cap == 2
    error = assert_envelope(client.post("/api/v1/etl/jobs", headers={"X-API-Key": key}, json={"path": "a.csv"}),
                            429, "too_many_running_jobs")
    assert error["details"] == {"running": 2, "limit": 2}
    other = make_key(sqlite_resources, "etl:write")  # another key is not affected
    assert client.post("/api/v1/etl/jobs", headers={"X-API-Key": other}, json={"path": "a.csv"}).status_code == 400


def test_rejected_raw_values_need_records_read_too_and_are_audited(app, sqlite_resources):
    client = app.test_client()
    with unit_of_work(sqlite_resources.sessions) as session:
        job = EtlJob(status="succeeded", phase="done", source_path="/x.csv")
        session.add(job)
        session.flush()
        session.add(EtlReject(job_id=job.id, chunk_index=0, line_no=7, column_name="sbp", reason="out_of_range",
                              raw_value="999", whole_row=False))
        job_id = job.id
    etl_only = make_key(sqlite_resources, "etl:write,admin")
    r = client.get(f"/api/v1/etl/jobs/{job_id}/rejects", headers={"X-API-Key": etl_only})
    assert r.status_code == 200 and r.get_json()["data"][0]["raw_value"] is None
    assert r.get_json()["data"][0]["line_no"] == 7 and r.headers["Cache-Control"] == "no-store"
    both = make_key(sqlite_resources, "etl:write,records:read")
    r = client.get(f"/api/v1/etl/jobs/{job_id}/rejects", headers={"X-API-Key": both})
    assert r.get_json()["data"][0]["raw_value"] == "999"
    with unit_of_work(sqlite_resources.sessions) as session:
        rows = session.query(AuditLog).all()
    assert [(a.route, a.result_count, json.loads(a.filters)["job_id"]) for a in rows] == [
        ("/api/v1/etl/jobs/<int:job_id>/rejects", 1, job_id)]
    assert rows[0].request_id == r.headers["X-Request-ID"]


def test_records_reads_are_audited_and_not_stored(app, sqlite_resources):
    client = app.test_client()
    key = make_key(sqlite_resources, "records:read")
    listing = client.get("/api/v1/records", headers={"X-API-Key": key}, query_string={"sex": "F", "limit": 5})
    one = client.get("/api/v1/records/20240000000042", headers={"X-API-Key": key})
    assert listing.status_code == 200 and one.status_code == 404
    assert listing.headers["Cache-Control"] == one.headers["Cache-Control"] == "no-store"
    with unit_of_work(sqlite_resources.sessions) as session:
        rows = [(a.route, json.loads(a.filters), a.result_count) for a in session.query(AuditLog).order_by(AuditLog.id)]
    assert rows == [("/api/v1/records", {"sex": "F", "limit": 5}, 0),
                    ("/api/v1/records/<int:record_id>", {"id": 20240000000042}, 0)]


def test_nhis_audit_prints_the_reads(app, sqlite_resources, sqlite_settings, monkeypatch):
    from click.testing import CliRunner

    from shared.cli import main

    client = app.test_client()
    key = make_key(sqlite_resources, "records:read")
    client.get("/api/v1/records", headers={"X-API-Key": key}, query_string={"year": 2024})
    monkeypatch.setenv("NHIS_DATA_DIR", str(sqlite_settings.data_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    out = CliRunner().invoke(main, ["audit", "--json"])
    assert out.exit_code == 0, out.output
    row = json.loads(out.output.strip().splitlines()[-1])
    assert row["route"] == "/api/v1/records" and row["filters"]["year"] == 2024 and row["key_name"].startswith("k-")
    assert key not in out.output


def test_unicode_digits_in_a_query_are_a_422_not_a_500(app, sqlite_resources):
    client = app.test_client()
    key = make_key(sqlite_resources, "stats:read")
    for raw in ("year=%C2%B2", "year=%D9%A3%D9%A3", "age_group=%C2%B2", "year=2024%00"):
        r = client.get(f"/api/v1/stats/risk?{raw}", headers={"X-API-Key": key})
        assert_envelope(r, 422, "validation_error")


def test_metrics_need_the_token(app, sqlite_settings, sqlite_resources):
    client = app.test_client()
    assert_envelope(client.get("/metrics"), 401, "unauthorized")
    assert_envelope(client.get("/metrics", headers={"Authorization": "Bearer " + "u" * 32}), 401)
    r = client.get("/metrics", headers={"Authorization": "Bearer " + "t" * 32})
    assert r.status_code == 200 and b"nhis_etl_jobs" in r.data and b"nhis_ratelimit_storage_errors" in r.data
    off = embedded_app(sqlite_settings, sqlite_resources)  # no token configured: the route is off
    assert_envelope(off.test_client().get("/metrics", headers={"Authorization": "Bearer x"}), 404)


def test_ready_hides_internals_from_anonymous_callers_and_names_degraded_parts(app, sqlite_resources):
    client = app.test_client()
    anonymous = client.get("/ready", environ_base={"REMOTE_ADDR": "10.1.1.1"})
    body = anonymous.get_json()
    assert anonymous.status_code == 200 and body["status"] == "degraded"  # no worker, no statistics yet
    assert {"workers", "stats"} <= set(body["degraded"]) and "database" not in body["degraded"]
    assert all(set(check) == {"ok"} for check in body["checks"].values())
    admin = make_key(sqlite_resources, "admin")
    detailed = client.get("/ready", headers={"X-API-Key": admin}, environ_base={"REMOTE_ADDR": "10.1.1.2"}).get_json()
    assert "no worker heartbeat" in detailed["checks"]["workers"]["detail"]
    assert detailed["checked_at"] == body["checked_at"]  # one cached result shared by both calls


def test_ready_is_computed_once_per_interval(app, monkeypatch):
    from api.routes import health

    calls = []
    monkeypatch.setattr(health, "readiness", lambda res: calls.append(1) or {
        "status": "ready", "ready": True, "degraded": [], "checks": {}, "checked_at": "t"})
    client = app.test_client()
    for i in range(3):
        assert client.get("/ready", environ_base={"REMOTE_ADDR": f"10.2.0.{i}"}).status_code == 200
    assert len(calls) == 1


@pytest.mark.parametrize("path", ["/health", "/ready", "/", "/docs", "/openapi.json", "/no/such/route",
                                  "/api/v1/auth/whoami", "/metrics"])
def test_security_headers_on_every_response(app, path):
    r = app.test_client().get(path, environ_base={"REMOTE_ADDR": "10.3.0.1"})
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Request-ID"]


def test_swagger_ui_pins_its_inline_scripts_by_hash(app):
    import base64
    import hashlib
    import re

    r = app.test_client().get("/docs")
    csp = r.headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]+)", csp)[1]
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    inline = re.findall(rb"<script(?![^>]*src=)[^>]*>(.*?)</script>", r.data, re.S)
    assert inline
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
        assert f"'sha256-{digest}'" in script_src


def test_the_dashboard_runs_no_inline_script_or_style(app):
    """The dashboard's scripts and styles are files: its CSP allows this origin's files only, so no
    hash is needed and no inline code or style attribute would run (tests/unit/test_dashboard.py)."""
    import re

    r = app.test_client().get("/")
    csp = r.headers["Content-Security-Policy"]
    assert re.search(r"script-src ([^;]+)", csp)[1].strip() == "'self'"
    assert re.search(r"style-src ([^;]+)", csp)[1].strip() == "'self'"
    assert "unsafe" not in csp and "sha256-" not in csp
    assert re.findall(rb"<script(?![^>]*src=)[^>]*>(.*?)</script>", r.data, re.S) == []
    assert b"<style" not in r.data and b" style=" not in r.data
