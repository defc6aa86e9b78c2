"""Migration 0003 on MariaDB: rows of the previous rule version survive the rename and the narrower
bp_category ENUM, and the table ends with exactly the columns the models build from the rule table."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from shared.cli.db import alembic_config, upgrade
from shared.db.models import screenings
from tests.support import services
from tests.support.schema_rows import OLD_ROWS

pytestmark = pytest.mark.integration


def test_migration_0003_on_mariadb(service_env):
    base = service_env["DATABASE_URL"].rsplit("/", 1)[0]
    name = "nhis_mig_" + services.unique_name("r").split("-")[1]
    server = create_engine(base + "/")
    with server.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    engine = create_engine(f"{base}/{name}")
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(text(OLD_ROWS))
        upgrade(engine, "head")
        columns = {c["name"]: c for c in inspect(engine).get_columns("screenings")}
        assert set(columns) == {c.name for c in screenings.columns}
        assert list(columns["bp_category"]["type"].enums) == list(screenings.c.bp_category.type.enums)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, screening_risk_group, bp_category, atp3_risk_category "
                                     "FROM screenings ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, "INDETERMINATE", "stage1", None),
                                            (2, "MULTIPLE_RISK_FACTORS", "stage2", None)]
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0001")
        assert "risk_group" in {c["name"] for c in inspect(engine).get_columns("screenings")}
        upgrade(engine, "head")
        assert {c["name"] for c in inspect(engine).get_columns("screenings")} == set(columns)
    finally:
        engine.dispose()
        with server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()
