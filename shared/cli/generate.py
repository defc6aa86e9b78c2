"""`nhis generate`: write a synthetic NHIS screening file in the format of a chosen release."""

from __future__ import annotations

import time

import click

from shared.data.catalog import STYLES
from shared.data.generate import write_file


@click.command("generate")
@click.option("--rows", type=click.IntRange(min=0), required=True, help="Number of data rows.")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), required=True,
              help="File to write (overwritten).")
@click.option("--year", type=click.IntRange(2002, 2099), default=2024, show_default=True,
              help="Screening year written in 기준년도.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same file.")
@click.option("--style", type=click.Choice(STYLES), default="2024", show_default=True,
              help="Release whose header, column order and value formats to copy.")
@click.option("--encoding", type=click.Choice(["cp949", "utf-8"]), default="cp949", show_default=True,
              help="Header encoding (the body is ASCII).")
def generate_command(rows: int, out: str, year: int, seed: int, style: str, encoding: str) -> None:
    """Generate a realistic synthetic NHIS health-screening CSV (no real person in it).

    \b
    Examples:
      nhis generate --rows 1000000 --out data/nhis-2024.csv
      nhis generate --rows 5000 --out data/nhis-2013.csv --year 2013 --style 2013
      nhis generate --rows 1000 --out data/small.csv --encoding utf-8 --seed 7
    """
    started = time.perf_counter()
    write_file(out, rows, year=year, seed=seed, style=style, encoding=encoding)
    click.echo(f"rows={rows} path={out} seconds={time.perf_counter() - started:.2f}")
