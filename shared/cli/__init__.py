"""The `nhis` command line: generate data, migrate, manage keys, ingest, refresh stats, demo."""

from __future__ import annotations

import sys

import click

from shared.config import SettingsError, load_settings
from shared.resources import Resources


class Context:
    """Settings and resources built once per invocation, after the command line is parsed."""

    def __init__(self):
        self._resources: Resources | None = None

    @property
    def resources(self) -> Resources:
        if self._resources is None:
            try:
                self._resources = Resources(load_settings())
            except SettingsError as exc:
                click.echo(str(exc), err=True)
                sys.exit(2)
        return self._resources


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """NHIS health-screening backend."""
    ctx.obj = Context()


def _register() -> None:
    from shared.cli.audit import audit_command
    from shared.cli.db import db
    from shared.cli.demo import demo_command
    from shared.cli.etl import ingest_command, jobs_group, stats_group
    from shared.cli.keys import keys

    main.add_command(db)
    main.add_command(audit_command)
    main.add_command(keys)
    main.add_command(demo_command)
    main.add_command(ingest_command)
    main.add_command(jobs_group)
    main.add_command(stats_group)
    from shared.cli.generate import generate_command

    main.add_command(generate_command, "generate")


_register()
