"""`nhis ingest FILE [--year Y] [--wait]` and `nhis stats refresh [--wait]`."""

from __future__ import annotations

import sys
import time

import click

from shared import task_names
from shared.etl.jobs import JobInputError, create_job, wait_for_job


@click.command("ingest")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--year", type=int, help="expected screening year; rows of other years are rejected")
@click.option("--wait", is_flag=True, help="draw a progress bar until the job ends")
@click.pass_obj
def ingest_command(obj, file: str, year: int | None, wait: bool) -> None:
    """Enqueue FILE (under NHIS_DATA_DIR) for loading through Celery and print the job id."""
    resources = obj.resources
    try:
        job_id = create_job(resources, file, expected_year=year)
    except JobInputError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    click.echo(f"job_id={job_id}")
    if not wait:
        return
    started = time.monotonic()
    state = {"bar": None, "done": 0}

    def progress(job):
        p = job["progress"]
        if state["bar"] is None and p["chunks_total"]:
            state["bar"] = click.progressbar(length=p["chunks_total"], label=f"job {job_id}", file=sys.stderr,
                                             show_pos=True)
            state["bar"].__enter__()
        if state["bar"] is not None and p["chunks_done"] > state["done"]:
            state["bar"].update(p["chunks_done"] - state["done"])
            state["done"] = p["chunks_done"]

    try:
        job = wait_for_job(resources, job_id, timeout=6 * 3600, progress=progress)
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)
    p = job["progress"]
    click.echo(f"rows_total={p['rows_total']} rows_loaded={p['rows_loaded']} rows_rejected={p['rows_rejected']} "
               f"seconds={time.monotonic() - started:.1f}")
    if job["status"] != "succeeded":
        click.echo(f"job {job_id} {job['status']}: {job['error']}", err=True)
        sys.exit(1)


@click.group("stats")
def stats_group() -> None:
    """Statistics snapshots."""


@stats_group.command("refresh")
@click.option("--wait", is_flag=True, help="wait for the worker to finish the refresh")
@click.pass_obj
def refresh_command(obj, wait: bool) -> None:
    result = obj.resources.producer.send_task(task_names.STATS_REFRESH, kwargs={"reason": "cli"})
    click.echo(f"task_id={result.id}")
    if wait:
        outcome = result.get(timeout=600)
        click.echo(" ".join(f"{k}={v}" for k, v in outcome.items()))
