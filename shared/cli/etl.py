"""`nhis ingest FILE [--year Y] [--wait]`, `nhis jobs list|show|cancel|rejects` and
`nhis stats refresh [--wait]`."""

from __future__ import annotations

import json
import sys
import time

import click

from shared import task_names
from shared.etl.jobs import (
    JobConflict,
    JobInputError,
    cancel_job,
    get_job,
    idempotency_key_for,
    list_jobs,
    resolve_source,
    submit_job,
    wait_for_job,
)


@click.command("ingest")
@click.argument("file", metavar="FILE_OR_URL")
@click.option("--year", type=int, help="expected screening year; rows of other years are rejected")
@click.option("--wait", is_flag=True, help="draw a progress bar until the job ends")
@click.option("--again", is_flag=True,
              help="load the file even if the same content was ingested in the last 24 h")
@click.pass_obj
def ingest_command(obj, file: str, year: int | None, wait: bool, again: bool) -> None:
    """Enqueue a file under NHIS_DATA_DIR, or a URL, for loading through Celery; print the job id.

    A URL (http(s)://, or s3:// and other fsspec URLs with the `remote` extra) must start with one
    of NHIS_INGEST_URL_PREFIXES; every worker reads its own byte ranges from it, so worker hosts
    need no shared folder. The job loads a new version of the year; the current one stays visible
    until it succeeds. Running the command twice for the same file and year (a retry) gives the
    same job: the key is the file's content hash and the year, or for a URL the URL, its ETag (or
    Last-Modified) and size, and the year. Exits 3 if the year already has a running job.

    \b
    Examples:
      nhis ingest data/nhis-2024.csv --year 2024 --wait
      nhis ingest nhis-2023.csv            # year read from the file's first lines
      nhis ingest https://files.example.org/nhis/nhis-2022.csv --year 2022
    """
    resources = obj.resources
    try:
        key = None if again else idempotency_key_for(resources.settings, resolve_source(resources.settings, file),
                                                     year)
        submitted = submit_job(resources, file, expected_year=year, idempotency_key=key, idempotency_scope="cli")
    except JobConflict as exc:
        click.echo(f"error: {exc.message}\nrunning job: {exc.job_id} (nhis jobs show {exc.job_id}; "
                   f"GET /api/v1/etl/jobs/{exc.job_id})", err=True)
        sys.exit(3)
    except JobInputError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    job_id = submitted.job_id
    click.echo(f"job_id={job_id}" + (" (already submitted with this file; use --again for a new job)"
                                      if submitted.replayed else ""))
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


@click.group("jobs")
def jobs_group() -> None:
    """ETL jobs: list, show, cancel, rejects.

    Every job loads one year into a version of its own; readers keep seeing the year's previous
    version until the job succeeds (then `nhis status` shows the new one as current).

    \b
    Examples:
      nhis jobs list
      nhis jobs show 12
      nhis jobs rejects 12 --limit 100
      nhis jobs cancel 12
    """


@jobs_group.command("list")
@click.option("--limit", default=20, show_default=True)
@click.pass_obj
def jobs_list(obj, limit: int) -> None:
    """Recent jobs, newest first: id, status, year, chunks, rows loaded and rejected, version, file.

    \b
    Examples:
      nhis jobs list
      nhis jobs list --limit 5
    """
    for job in list_jobs(obj.resources, limit):
        p = job["progress"]
        click.echo(f"{job['job_id']:>6}  {job['status']:<9}  {job['year'] or '-':>4}  "
                   f"{p['chunks_done']}/{p['chunks_total']} chunks  {p['rows_loaded']} loaded  "
                   f"{p['rows_rejected']} rejected  version={job['version']['state']}  {job['file']}")


@jobs_group.command("show")
@click.argument("job_id", type=int)
@click.pass_obj
def jobs_show(obj, job_id: int) -> None:
    """One job as JSON: status, phase, progress, timings, warnings and the error if it failed.

    \b
    Examples:
      nhis jobs show 12
      nhis jobs show 12 | jq .progress
    """
    job = get_job(obj.resources, job_id)
    if job is None:
        click.echo(f"error: no job {job_id}", err=True)
        sys.exit(2)
    click.echo(json.dumps(job, indent=2, default=str))


@jobs_group.command("cancel")
@click.argument("job_id", type=int)
@click.pass_obj
def jobs_cancel(obj, job_id: int) -> None:
    """Stop a queued or running job; the previous version of its year stays current.

    Exits 2 if there is no such job, 3 if it already succeeded or failed.

    \b
    Examples:
      nhis jobs cancel 12
    """
    try:
        job = cancel_job(obj.resources, job_id)
    except JobInputError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2 if exc.status == 404 else 3)
    click.echo(f"job {job_id} {job['status']}")


@jobs_group.command("rejects")
@click.argument("job_id", type=int)
@click.option("--limit", default=50, show_default=True)
@click.pass_obj
def jobs_rejects(obj, job_id: int, limit: int) -> None:
    """Rejected lines and cells of a job: line number, whole row or one cell, column, reason, raw value.

    A rejected cell is loaded as unknown (the rest of its row is kept); a rejected row is not
    loaded. Raw values come from people's rows: treat the output like the records.

    \b
    Examples:
      nhis jobs rejects 12
      nhis jobs rejects 12 --limit 1000 > rejects-12.txt
    """
    from sqlalchemy import select

    from shared.db.engine import unit_of_work
    from shared.db.models import EtlReject

    with unit_of_work(obj.resources.sessions) as session:
        rows = session.scalars(select(EtlReject).where(EtlReject.job_id == job_id)
                               .order_by(EtlReject.line_no, EtlReject.id).limit(limit))
        for r in rows:
            scope = "row" if r.whole_row else "cell"
            click.echo(f"line {r.line_no:>8}  {scope:<4}  {r.column_name or '-':<20}  {r.reason}  "
                       f"{r.raw_value if r.raw_value is not None else ''}")


@click.group("stats")
def stats_group() -> None:
    """Statistics snapshots (precomputed; beat refreshes them every NHIS_STATS_REFRESH_SECONDS).

    \b
    Examples:
      nhis stats refresh --wait
    """


@stats_group.command("refresh")
@click.option("--wait", is_flag=True, help="wait for the worker to finish the refresh")
@click.pass_obj
def refresh_command(obj, wait: bool) -> None:
    """Ask a worker to recompute every statistic now (a finished ingest does this by itself).

    \b
    Examples:
      nhis stats refresh
      nhis stats refresh --wait       # prints the generation, dataset version and timings
    """
    result = obj.resources.send_task(task_names.STATS_REFRESH, reason="cli")
    click.echo(f"task_id={result.id}")
    if wait:
        outcome = result.get(timeout=600)
        click.echo(" ".join(f"{k}={v}" for k, v in outcome.items()))
