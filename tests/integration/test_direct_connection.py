"""The direct connection (shared/db/engine.py) returns exactly what SQLAlchemy Core returns for the
same statement: every column of every row of a loaded year, sent as JSON arrays on MariaDB."""

from __future__ import annotations

import pytest
from sqlalchemy import BigInteger, Boolean, Float, Integer, String, literal, select

from api.routes.records import LIST_COLUMNS
from shared.db.engine import DirectConnection, _driver_text
from shared.db.models import screenings
from shared.records.browse import page_statement, parameters, shape
from tests.support.files import ingest_sample

pytestmark = pytest.mark.integration
YEAR = 2014  # no other test module loads it


@pytest.fixture(scope="module")
def year_job(resources, worker, settings):
    return ingest_sample(resources, settings.data_dir / "direct", 6_000, seed=83, year=YEAR, style="2014")["job_id"]


def direct_and_core(resources, stmt, params: dict, seconds: float | None = None) -> tuple[list, list]:
    """The rows of one statement read on a new direct connection, and through SQLAlchemy Core."""
    direct = DirectConnection(resources.engine)
    try:
        got = [tuple(r) for r in direct.execute(stmt, params, seconds)]
    finally:
        direct.close()
    with resources.engine.connect() as conn:
        return got, [tuple(r) for r in conn.execute(stmt, params)]


def test_every_column_of_a_year_reads_the_same_as_through_core(resources, year_job):
    stmt = select(*screenings.c).where(screenings.c.job_id == year_job).order_by(screenings.c.id)
    got, want = direct_and_core(resources, stmt, {})
    assert len(want) == 6_000
    assert got == want
    # the comparison covered values of every type, unknowns included
    assert any(v is None for row in want for v in row) and any(isinstance(v, bool) for v in want[0])
    if resources.engine.dialect.is_mariadb:  # rows travelled as JSON arrays
        assert _driver_text(stmt, resources.engine.dialect).as_json


def test_a_records_page_reads_the_same_as_through_core(resources, year_job):
    filters = {"year": YEAR, "sex": "M", "flag": ["hypertension"]}
    stmt = page_statement(shape(filters), LIST_COLUMNS)
    params = {**parameters(filters), "after": -1, "limit": 50}
    got, want = direct_and_core(resources, stmt, params, seconds=5.0)
    assert len(want) == 50 and got == want


def test_text_and_numbers_that_json_must_escape_or_bound_come_back_unchanged(resources):
    """The JSON array is the transport on MariaDB: quotes, backslashes, control characters, Hangul
    and emoji in text, and integers and floats at their edges read the same as through Core."""
    values = [
        ('quote " backslash \\ slash / tab \t newline \n nul-free', String(64)),
        ("건강검진 🩺 ü", String(64)),
        ("", String(8)),
        (None, String(8)),
        (2**62 + 1, BigInteger()),
        (-(2**31), Integer()),
        (0.1, Float()),
        (-1.5e-30, Float()),
        (1.7976931348623157e308, Float()),
        (True, Boolean()),
    ]
    stmt = select(*(literal(v, t) for v, t in values))
    got, want = direct_and_core(resources, stmt, {})
    assert got == want
    assert want[0][:5] == tuple(v for v, _ in values[:5])  # and both are the values themselves
    if resources.engine.dialect.is_mariadb:
        assert _driver_text(stmt, resources.engine.dialect).as_json
