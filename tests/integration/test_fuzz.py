"""Schemathesis against /openapi.json, in process, with a key that holds every scope: for every
operation, at least 200 generated requests; zero 5xx, every response matches its documented
schema (the error envelope included: every error response is documented with it), and every
error body is the envelope with the response's request id."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration
EXAMPLES_PER_OPERATION = 200
EVERY_SCOPE = "stats:read,simulate,records:read,etl:write,admin"


@pytest.fixture(scope="module")
def fuzz_data(resources, worker, settings):
    """A loaded year with published statistics, so reads answer with data (not 503 not-ready)."""
    from shared.etl.jobs import create_job, wait_for_job
    from tests.support.files import sample_file, wait_for_stats_with

    path = sample_file(settings.data_dir / "fuzz", 1_000, seed=83, year=2017, style="2017")
    job = wait_for_job(resources, create_job(resources, path), timeout=180)
    assert job["status"] == "succeeded"
    wait_for_stats_with(resources, job["job_id"])
    return job


@pytest.fixture(scope="module")
def fuzz_app(resources, settings, fuzz_data):
    from api import create_app

    return create_app({"database_url": settings.database_url, "redis_url": settings.redis_url,
                       "data_dir": settings.data_dir, "access_log": "off",
                       "rate_limits": ",".join(f"{b}=1000000/minute" for b in
                                               ("stats:read", "simulate", "records:read", "etl:write", "admin",
                                                "any", "anonymous"))})


@pytest.fixture(scope="module")
def fuzz_key(resources):
    from shared.auth.keys import create_key
    from shared.db.engine import unit_of_work
    from tests.support.services import unique_name

    with unit_of_work(resources.sessions) as session:
        return create_key(session, unique_name("fuzz"), EVERY_SCOPE)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


def check_envelope(response) -> None:
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message", "details", "request_id"}
        headers = {name.lower(): values for name, values in response.headers.items()}
        assert body["error"]["request_id"] == headers["x-request-id"][0]


def fuzz_operation(operation, key: str, counts: dict):
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
              database=None, phases=[Phase.explicit, Phase.generate])
    def run(case):
        counts[operation.label] += 1
        response = case.call_and_validate(headers={"X-API-Key": key}, checks=CHECKS)
        check_envelope(response)

    return run


def test_every_operation_survives_generated_requests(fuzz_app, fuzz_key):
    """One Hypothesis run per operation (Schemathesis's pytest plugin is not used: its fixture
    hook does not work with the pinned pytest)."""
    api_schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    counts = {}
    for operation in operations:
        counts[operation.label] = 0
        try:
            fuzz_operation(operation, fuzz_key, counts)()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc
    thin = {label: n for label, n in counts.items() if n < EXAMPLES_PER_OPERATION}
    assert not thin, f"fewer than {EXAMPLES_PER_OPERATION} cases generated for {thin}"
