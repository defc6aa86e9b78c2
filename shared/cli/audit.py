"""`nhis audit`: who read person-level records through the API (newest first)."""

from __future__ import annotations

import datetime as dt
import json

import click

from shared.audit import list_reads


@click.command("audit")
@click.option("--key", "key_name", help="only reads by this key name")
@click.option("--since", type=click.DateTime(), help="only reads at or after this UTC time")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@click.pass_obj
def audit_command(obj, key_name: str | None, since: dt.datetime | None, limit: int, as_json: bool) -> None:
    """Person-level reads through the API, newest first: time, key, route, filters, number of records.

    \b
    Examples:
      nhis audit
      nhis audit --key analyst --since 2026-11-01
      nhis audit --json --limit 1000 > audit.jsonl
    """
    rows = list_reads(obj.resources, key_name=key_name, since=since, limit=limit)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, sort_keys=True))
        else:
            filters = " ".join(f"{k}={v}" for k, v in sorted(row["filters"].items())) or "-"
            click.echo(f"{row['at']}\t{row['key_name'] or '-'}\t{row['route']}\t{row['count']}\t{filters}")
    if not rows and not as_json:
        click.echo("no person-level reads recorded", err=True)
