"""`nhis demo`: migrate, make sample data, start every Procfile role, ingest the sample, print URLs.

This is what `make demo` runs on a fresh clone. It uses DATABASE_URL/REDIS_URL when set and the
embedded default (SQLite + filesystem broker) otherwise.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click

from shared.auth.keys import SCOPES, create_key
from shared.data.generate import write_file
from shared.db.engine import unit_of_work
from shared.etl.jobs import create_job, wait_for_job

ROOT = Path(__file__).resolve().parents[2]
DEMO_ROLES = ("web", "worker", "beat", "flower")


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"the system stopped while waiting for {what}")
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise click.ClickException(f"timed out waiting for {what}")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
        return response.status == 200


@click.command("demo")
@click.option("--rows", default=100_000, show_default=True, help="rows in the generated sample file")
@click.option("--port", default=8000, show_default=True)
@click.option("--flower-port", default=5555, show_default=True)
@click.option("--no-ingest", is_flag=True, help="start the roles only")
@click.pass_obj
def demo_command(obj, rows: int, port: int, flower_port: int, no_ingest: bool) -> None:
    """Run the whole system with sample data (Ctrl-C stops every role)."""
    from shared.cli.db import upgrade

    resources = obj.resources
    settings = resources.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(resources.engine)
    click.echo(f"database: {resources.engine.url.render_as_string(hide_password=True)}")
    click.echo(f"broker:   {'embedded (filesystem)' if settings.embedded else settings.redis_db_url('broker')}")

    name = f"demo-{dt.datetime.now():%Y%m%d-%H%M%S}"
    with unit_of_work(resources.sessions) as session:
        key = create_key(session, name, [s for s in SCOPES])

    sample = settings.data_dir / "sample-2024.csv"
    _make_sample(sample, rows)

    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "NHIS_DATA_DIR": str(settings.data_dir.resolve()),
        "WEB_BIND": f"127.0.0.1:{port}",
        "FLOWER_PORT": str(flower_port),
        # Never the published default: a fresh password per demo unless one is configured.
        "FLOWER_BASIC_AUTH": settings.flower_basic_auth or f"demo:{secrets.token_urlsafe(12)}",
        "NHIS_METRICS_TOKEN": settings.metrics_token or secrets.token_urlsafe(24),
    }
    proc = subprocess.Popen(
        [str(bin_dir / "honcho"), "start", "-f", str(ROOT / "Procfile"), *DEMO_ROLES],
        cwd=ROOT, env=env, start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(lambda: _http_ok(f"{base}/health"), 90, "the web role", proc)
        _wait(lambda: resources.producer.control.ping(timeout=1), 90, "a worker", proc)
        summary = None
        if not no_ingest:
            summary = _ingest(resources, sample, proc)
        flower_user, _, flower_password = env["FLOWER_BASIC_AUTH"].partition(":")
        click.echo(
            "\n".join(
                [
                    "",
                    "NHIS screening backend is running:",
                    f"  dashboard   {base}/",
                    f"  API docs    {base}/docs   (Authorize with the key below)",
                    f"  readiness   {base}/ready",
                    f"  Flower      http://127.0.0.1:{flower_port}/   (user {flower_user!r}, password {flower_password!r})",
                    f"  metrics     curl -H 'Authorization: Bearer {env['NHIS_METRICS_TOKEN']}' {base}/metrics",
                    f"  sample file {sample}" + (f"  ({summary})" if summary else ""),
                    f"  demo key    {key}",
                    f"  try:        curl -H 'X-API-Key: {key}' {base}/api/v1/auth/whoami",
                    "Ctrl-C stops every role.",
                ]
            )
        )
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _make_sample(path: Path, rows: int) -> bool:
    if not path.exists():
        started = time.perf_counter()
        write_file(path, rows=rows, year=2024, seed=2024, style="2024", encoding="cp949")
        click.echo(f"sample data: {rows} rows -> {path} in {time.perf_counter() - started:.1f}s")
    return True


def _ingest(resources, sample: Path, proc) -> str:
    job_id = create_job(resources, sample)
    click.echo(f"ingest: job {job_id} enqueued through Celery (watch it in Flower)")
    job = wait_for_job(resources, job_id, timeout=600, alive=lambda: proc.poll() is None)
    p = job["progress"]
    return f"job {job_id} {job['status']}: rows_loaded={p['rows_loaded']} rows_rejected={p['rows_rejected']}"
