"""`nhis keys create|list|revoke`."""

from __future__ import annotations

import sys

import click

from shared.auth.keys import SCOPES, KeyError_, create_key, list_keys, revoke_key
from shared.db.engine import unit_of_work


@click.group()
def keys() -> None:
    """API keys (stored hashed; the clear key is printed once).

    Scopes: stats:read, simulate, records:read (person-level rows, audited), etl:write and admin.
    admin implies every scope except records:read, which is always granted explicitly.

    \b
    Examples:
      nhis keys create --name dashboard --scopes stats:read,simulate
      nhis keys list
      nhis keys revoke dashboard
    """


@keys.command("create")
@click.option("--name", required=True, help="a unique name (it appears in the audit log)")
@click.option("--scopes", required=True, help=f"comma-separated: {','.join(SCOPES)}")
@click.pass_obj
def create_cmd(obj, name: str, scopes: str) -> None:
    """Create a key and print it once (only its SHA-256 is stored).

    \b
    Examples:
      nhis keys create --name analyst --scopes stats:read,records:read
      nhis keys create --name loader --scopes etl:write
      KEY=$(nhis keys create --name ops --scopes admin)
    """
    try:
        with unit_of_work(obj.resources.sessions) as session:
            clear = create_key(session, name, scopes)
    except KeyError_ as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(clear)


@keys.command("list")
@click.pass_obj
def list_cmd(obj) -> None:
    """Every key: name, prefix, scopes, active or revoked (never the key itself).

    \b
    Examples:
      nhis keys list
    """
    with unit_of_work(obj.resources.sessions) as session:
        for key in list_keys(session):
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            click.echo(f"{key.name}\tnhis_{key.prefix}_…\t{key.scopes}\t{state}")


@keys.command("revoke")
@click.argument("name")
@click.pass_obj
def revoke_cmd(obj, name: str) -> None:
    """Revoke the key NAME; API processes stop accepting it within NHIS_KEY_CACHE_SECONDS.

    \b
    Examples:
      nhis keys revoke analyst
    """
    try:
        with unit_of_work(obj.resources.sessions) as session:
            revoke_key(session, name)
    except KeyError_ as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"revoked {name}")
