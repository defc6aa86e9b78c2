"""The `nhis` command line: generate data, migrate, manage keys, ingest, watch jobs, refresh
statistics, read the audit log, show the status, run the demo."""

from __future__ import annotations

import sys

import click

from shared.config import Settings, SettingsError, load_settings
from shared.resources import Resources


class Context:
    """Settings and resources built once per invocation, after the command line is parsed."""

    def __init__(self):
        self._settings: Settings | None = None
        self._resources: Resources | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings()
            except SettingsError as exc:
                click.echo(str(exc), err=True)
                sys.exit(2)
        return self._settings

    @property
    def resources(self) -> Resources:
        if self._resources is None:
            self._resources = Resources(self.settings)
        return self._resources


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """NHIS health-screening backend: ingest the NHIS screening file, derive guideline risk
    factors, serve statistics, records and a simulator.

    Settings come from the environment (and a .env file): DATABASE_URL and REDIS_URL, or neither
    for the embedded mode (SQLite and a filesystem broker under NHIS_DATA_DIR). `nhis COMMAND
    --help` shows each command's options and examples.

    \b
    Examples:
      nhis demo                                   # everything, with sample data
      nhis db upgrade
      nhis keys create --name analyst --scopes stats:read,records:read
      nhis generate --rows 100000 --out data/nhis-2024.csv
      nhis ingest data/nhis-2024.csv --year 2024 --wait
      nhis status
    """
    ctx.obj = Context()


def _register() -> None:
    from shared.cli.audit import audit_command
    from shared.cli.db import db
    from shared.cli.demo import demo_command
    from shared.cli.etl import ingest_command, jobs_group, stats_group
    from shared.cli.keys import keys
    from shared.cli.status import status_command

    main.add_command(db)
    main.add_command(audit_command)
    main.add_command(keys)
    main.add_command(demo_command)
    main.add_command(ingest_command)
    main.add_command(jobs_group)
    main.add_command(stats_group)
    main.add_command(status_command)
    from shared.cli.generate import generate_command

    main.add_command(generate_command, "generate")


_register()
