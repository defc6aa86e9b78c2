"""`nhis db upgrade|current|downgrade`: Alembic with the application's own settings."""

from __future__ import annotations

from pathlib import Path

import click
from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(connection=None) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "shared" / "migrations"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def schema_revision(engine) -> tuple[str | None, str]:
    """(the database's revision or None when it has no schema, the newest revision this code knows)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision(), head


def upgrade(engine, revision: str = "head") -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


@click.group()
def db() -> None:
    """Database schema (Alembic migrations in shared/migrations).

    Run `nhis db upgrade` once per deploy, before the web role starts (the Procfile's `release`
    line); it is safe to run again. Back the database up before an upgrade (docs/OPERATIONS.md).

    \b
    Examples:
      nhis db upgrade
      nhis db current
      nhis db downgrade 0004
    """


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_obj
def upgrade_cmd(obj, revision: str) -> None:
    """Apply migrations up to REVISION (default: head).

    \b
    Examples:
      nhis db upgrade
      DATABASE_URL=mysql+pymysql://nhis:secret@db.internal/nhis nhis db upgrade
    """
    upgrade(obj.resources.engine, revision)
    click.echo(f"database at {revision}: {obj.resources.engine.url.render_as_string(hide_password=True)}")


@db.command("current")
@click.pass_obj
def current_cmd(obj) -> None:
    """Print the database's migration revision, and whether it is the newest this code knows.

    \b
    Examples:
      nhis db current
    """
    current, head = schema_revision(obj.resources.engine)
    state = "up to date" if current == head else f"behind: run nhis db upgrade (head is {head})"
    click.echo(f"revision {current or 'none (empty database)'}: {state}")


@db.command("downgrade")
@click.argument("revision")
@click.pass_obj
def downgrade_cmd(obj, revision: str) -> None:
    """Revert migrations down to REVISION (e.g. base). Columns added since are dropped with
    their data: back the database up first.

    \b
    Examples:
      nhis db downgrade 0004
      nhis db downgrade base          # an empty schema
    """
    with obj.resources.engine.begin() as conn:
        command.downgrade(alembic_config(conn), revision)
    click.echo(f"database at {revision}")
