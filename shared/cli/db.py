"""`nhis db upgrade|downgrade|current`: Alembic with the application's own settings."""

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


def upgrade(engine, revision: str = "head") -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


@click.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_obj
def upgrade_cmd(obj, revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    upgrade(obj.resources.engine, revision)
    click.echo(f"database at {revision}: {obj.resources.engine.url.render_as_string(hide_password=True)}")


@db.command("downgrade")
@click.argument("revision")
@click.pass_obj
def downgrade_cmd(obj, revision: str) -> None:
    """Revert migrations down to REVISION (e.g. base)."""
    with obj.resources.engine.begin() as conn:
        command.downgrade(alembic_config(conn), revision)
    click.echo(f"database at {revision}")
