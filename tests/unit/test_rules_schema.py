"""The screenings table follows the rule table: models built from DERIVED_KINDS, and migration 0003
takes a database from the previous rule version's columns to them (SQLite here; the MariaDB run is
in tests/integration/test_rules_migration.py)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from shared.cli.db import alembic_config, upgrade
from shared.db.models import DERIVED_SQL_TYPES, screenings
from shared.rules import CATEGORY_LEVELS, DERIVED_COLUMNS, DERIVED_KINDS
from tests.support.schema_rows import OLD_ROWS


def test_models_take_every_derived_column_from_the_rule_table():
    assert list(DERIVED_SQL_TYPES) == list(DERIVED_COLUMNS)
    for name, kind in DERIVED_KINDS.items():
        column = screenings.c[name]
        if kind == "category":
            assert tuple(column.type.enums) == CATEGORY_LEVELS[name]
        else:
            assert column.type.python_type is {"float": float, "bool": bool, "int": int}[kind]


def test_migration_renames_the_group_and_retires_the_isolated_label(sqlite_settings):
    from shared.resources import Resources

    resources = Resources(sqlite_settings)
    try:
        engine = resources.engine
        upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(text(OLD_ROWS))
        upgrade(engine, "head")
        columns = {c["name"] for c in inspect(engine).get_columns("screenings")}
        assert columns == {c.name for c in screenings.columns}
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, screening_risk_group, bp_category, atp3_risk_category, "
                                     "isolated_systolic, dyslipidaemia FROM screenings ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, "INDETERMINATE", "stage1", None, None, None),
                                            (2, "MULTIPLE_RISK_FACTORS", "stage2", None, None, None)]
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0001")
        assert "risk_group" in {c["name"] for c in inspect(engine).get_columns("screenings")}
        upgrade(engine, "head")
        assert {c["name"] for c in inspect(engine).get_columns("screenings")} == columns
    finally:
        resources.dispose()
