"""docs/API.md's curl examples: rendered from the OpenAPI document, current, one per operation,
and each accepted by the app as written (no validation or authorisation error)."""

from __future__ import annotations

import shlex

import pytest

from api import create_app
from api.docs_examples import API_MD, BEGIN, END, METHODS, examples, openapi_document, render, replace_section
from shared.auth.keys import SCOPES, create_key
from shared.db.engine import unit_of_work
from tests.support.files import sample_file


@pytest.fixture(scope="module")
def document():
    return openapi_document()


def test_api_md_examples_are_rendered_from_the_current_document(document):
    text = API_MD.read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    assert replace_section(text, render(document)) == text, \
        "docs/API.md is out of date with /openapi.json: run `python -m api.docs_examples`"


def test_every_operation_has_one_example(document):
    operations = {(m.upper(), path) for path, item in document["paths"].items() for m in METHODS if m in item}
    rendered = examples(document)
    assert {(e.method, e.template) for e in rendered} == operations
    assert len(rendered) == len(operations)
    section = API_MD.read_text(encoding="utf-8").split(BEGIN, 1)[1]
    for method, path in operations:
        assert f"`{method} {path}`" in section


def test_replace_section_keeps_the_hand_written_text():
    text = f"# API\n\nintro\n\n{BEGIN}\nold\n{END}\n\nafter\n"
    assert replace_section(text, f"{BEGIN}\nnew\n{END}") == f"# API\n\nintro\n\n{BEGIN}\nnew\n{END}\n\nafter\n"
    assert replace_section("# API\n", f"{BEGIN}\nnew\n{END}") == f"# API\n\n{BEGIN}\nnew\n{END}\n"


def test_each_example_is_accepted_as_written(sqlite_resources, sqlite_settings, document):
    """Run every example through the app (embedded) with a key holding every scope, in document
    order: the job the POST creates is the one the next examples show, cancel and list rejects."""
    data_dir = sqlite_settings.data_dir
    sample_file(data_dir, 300, name="nhis-2024.csv", year=2024)  # the file the POST example names
    app = create_app({"data_dir": data_dir, "database_url": None, "redis_url": None, "log_format": "console"})
    app.extensions["resources"] = sqlite_resources
    client = app.test_client()
    with unit_of_work(sqlite_resources.sessions) as session:
        key = create_key(session, "docs", list(SCOPES))
    statuses = {}
    for ex in examples(document):
        command = ex.curl().replace("\\\n", " ")
        words = shlex.split(command.replace("$NHIS_URL", "").replace("$NHIS_KEY", key))
        assert words[0] == "curl"
        headers = dict(h.split(": ", 1) for h in (words[i + 1] for i, w in enumerate(words) if w == "-H"))
        data = next((words[i + 1] for i, w in enumerate(words) if w == "-d"), None)
        url = next(w for w in words if w.startswith("/"))
        r = client.open(url, method=ex.method, headers=headers, data=data)
        body = r.get_json(silent=True) or {}
        code = body.get("error", {}).get("code") if isinstance(body.get("error"), dict) else None
        statuses[(ex.method, ex.template)] = (r.status_code, code)
        assert r.status_code not in (400, 401, 403, 405, 413, 415, 422), (ex.method, url, r.status_code, body)
        assert r.status_code < 500 or code == "stats_not_ready", (ex.method, url, r.status_code, body)
    # What an empty system answers: the job exists and is cancelled, nothing else is loaded yet.
    assert statuses[("POST", "/api/v1/etl/jobs")] == (202, None)
    assert statuses[("GET", "/api/v1/etl/jobs/{job_id}")] == (200, None)
    assert statuses[("POST", "/api/v1/etl/jobs/{job_id}/cancel")] == (200, None)
    assert statuses[("POST", "/api/v1/simulate")] == (200, None)
    assert statuses[("POST", "/api/v1/simulate/batch")] == (200, None)
    assert statuses[("GET", "/api/v1/records")] == (200, None)
    assert statuses[("GET", "/api/v1/records/{record_id}")] == (404, "not_found")
    assert statuses[("GET", "/api/v1/stats/overview")] == (503, "stats_not_ready")
