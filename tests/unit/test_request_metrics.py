"""Request metrics keep bounded labels whatever clients send: the URL rule, never the raw path;
unmatched paths as `(no route)`; methods outside the standard seven as `other`."""

from __future__ import annotations

from prometheus_client import REGISTRY

from api.observability import observe_request
from tests.support.apps import embedded_app

NAME = "nhis_http_request_duration_seconds_count"


def count(route: str, method: str, status: str) -> float:
    return REGISTRY.get_sample_value(NAME, {"route": route, "method": method, "status": status}) or 0.0


def test_labels_are_the_rule_and_bounded(sqlite_settings, sqlite_resources):
    client = embedded_app(sqlite_settings, sqlite_resources).test_client()
    before = {k: count(*k) for k in [("/health", "GET", "200"), ("(no route)", "GET", "404"),
                                     ("(no route)", "other", "405")]}
    assert client.get("/health").status_code == 200
    assert client.get("/no/such/page-7f3a").status_code == 404
    assert client.open("/health", method="BREW").status_code == 405
    assert count("/health", "GET", "200") == before[("/health", "GET", "200")] + 1
    assert count("(no route)", "GET", "404") == before[("(no route)", "GET", "404")] + 1
    assert count("(no route)", "other", "405") == before[("(no route)", "other", "405")] + 1
    routes = {s.labels["route"] for m in REGISTRY.collect() for s in m.samples if s.name == NAME}
    assert not any("7f3a" in route for route in routes)


def test_rules_with_parameters_are_one_series(sqlite_settings, sqlite_resources):
    client = embedded_app(sqlite_settings, sqlite_resources).test_client()
    route = "/api/v1/records/<int:record_id>"
    before = count(route, "GET", "401")
    for record in (1, 2, 3):
        assert client.get(f"/api/v1/records/{record}").status_code == 401  # no key
    assert count(route, "GET", "401") == before + 3


def test_observe_request_folds_unknown_methods():
    before = count("/x", "other", "200")
    observe_request("/x", "PROPFIND", 200, 0.002)
    observe_request("/x", "get", 200, 0.002)  # methods are case-sensitive: lower case is not GET
    assert count("/x", "other", "200") == before + 2
