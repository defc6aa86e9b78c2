"""`nhis demo`: the whole system on this machine with sample data, explained step by step.

This is what `make demo` runs on a fresh clone (after make has installed `.venv`). It migrates the
database, writes a synthetic sample, creates a key, starts every Procfile role with honcho, waits
for the web role and a worker heartbeat, ingests the sample through Celery with a progress bar,
waits for the statistics, then prints the URLs, the key and three requests to try. It uses
DATABASE_URL/REDIS_URL when set and the embedded default (SQLite + filesystem broker) otherwise.

Ctrl-C (or SIGTERM, or closing the terminal) stops every process it started: honcho stops the
roles, and any process of the tree still alive after that is killed (psutil), so nothing is left
behind. tests/integration/test_demo.py checks it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[2]
DEMO_ROLES = ("web", "worker", "beat", "flower")
DEMO_YEAR = 2024
DEMO_CHUNK_ROWS = 10_000  # more, smaller chunks than production: the bar moves, Flower shows parallel work
STEPS = 7
STOP_SECONDS = 30  # honcho sends SIGTERM, then SIGKILL after 5 s; this is our bound before we kill


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stop like Ctrl-C."""


def _raise_interrupt(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


class Steps:
    """Numbered steps, each with what it does and how long it took."""

    def __init__(self, total: int):
        self.total, self.n = total, 0

    @contextlib.contextmanager
    def step(self, title: str):
        self.n += 1
        click.echo(f"[{self.n}/{self.total}] {title}")
        started = time.monotonic()
        outcome = {"text": "done"}
        yield outcome
        click.echo(f"      {outcome['text']} ({time.monotonic() - started:.1f}s)")

    def skip(self, title: str, why: str) -> None:
        self.n += 1
        click.echo(f"[{self.n}/{self.total}] {title}\n      skipped: {why}")


class Roles:
    """The honcho process and every process under it; stops them all, however they behave."""

    def __init__(self, proc: subprocess.Popen, log_path: Path):
        self.proc, self.log_path = proc, log_path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tree(self) -> list:
        import psutil

        try:
            return [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGINT to honcho (it sends SIGTERM to each role's process group, SIGKILL after 5 s);
        then SIGKILL to anything of the tree still alive. A second Ctrl-C skips the wait."""
        import psutil

        processes = self.tree()  # collected before the signal: the roles' children included
        if not processes:
            return
        click.echo(f"\nstopping {', '.join(DEMO_ROLES)} ({len(processes)} processes) ...")
        forced = {"now": False}

        def force(_signum, _frame):
            forced["now"] = True

        previous = {sig: signal.signal(sig, force) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            deadline = time.monotonic() + STOP_SECONDS
            while time.monotonic() < deadline and not forced["now"]:
                _gone, alive = psutil.wait_procs(processes, timeout=0.2)
                if not alive:
                    break
            _gone, alive = psutil.wait_procs(processes, timeout=0)
            for p in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()
            _gone, alive = psutil.wait_procs(alive, timeout=10)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if alive:
            click.echo(f"could not stop pids {[p.pid for p in alive]}", err=True)
        else:
            click.echo(f"stopped: no process left (role logs kept in {self.log_path})")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
        return response.status == 200


def _wait(predicate, timeout: float, what: str, roles: Roles):
    """Poll until predicate() is truthy; fail with the roles' last log lines if they stopped."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not roles.alive():
            raise click.ClickException(f"the roles stopped while waiting for {what}; last lines of "
                                       f"{roles.log_path}:\n{roles.log_tail()}")
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # e.g. connection refused while the role starts
            last = exc
        time.sleep(0.25)
    raise click.ClickException(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last}); "
                               f"see {roles.log_path}")


def _data_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip(b"\r\n")) - 1


def try_commands(base: str, key: str) -> list[str]:
    """Three requests a newcomer can paste: a statistic, the simulator, a page of records."""
    person = ('{"sex": "F", "age": 52, "height_cm": 160, "weight_kg": 68, "waist_cm": 86, "sbp": 146, '
              '"dbp": 92, "fasting_glucose": 104, "total_cholesterol": 232, "hdl": 44, "triglycerides": 180, '
              '"smoking": "never"}')
    header = shlex.quote(f"X-API-Key: {key}")
    return [
        f"curl -s -H {header} {base}/api/v1/stats/overview",
        f"curl -s -X POST -H {header} -H 'Content-Type: application/json' -d {shlex.quote(person)} "
        f"'{base}/api/v1/simulate?include=what_if,explanations'",
        f"curl -s -H {header} '{base}/api/v1/records?year={DEMO_YEAR}&flag=hypertension&limit=5'",
    ]


@click.command("demo")
@click.option("--rows", default=100_000, show_default=True, type=click.IntRange(1000),
              help="rows in the generated sample file")
@click.option("--port", default=8000, show_default=True, help="port of the web role (127.0.0.1)")
@click.option("--flower-port", default=5555, show_default=True, help="port of Flower (127.0.0.1)")
@click.option("--no-ingest", is_flag=True, help="start the roles only")
@click.pass_obj
def demo_command(obj, rows: int, port: int, flower_port: int, no_ingest: bool) -> None:
    """Run the whole system with sample data, step by step (Ctrl-C stops every process).

    Migrates the database, writes a synthetic 2024-format sample under NHIS_DATA_DIR, creates an
    API key with every scope, starts web, worker, beat and flower from the Procfile (their logs go
    to NHIS_DATA_DIR/demo/roles.log), ingests the sample through Celery, waits for the statistics
    and prints the URLs, the key and three requests to try. With DATABASE_URL and REDIS_URL set
    it uses them; otherwise SQLite and a filesystem broker under NHIS_DATA_DIR.

    \b
    Examples:
      make demo                          # installs .venv first, then runs this
      nhis demo --rows 20000             # a smaller sample, ready sooner
      nhis demo --port 8080 --flower-port 5556
      DATABASE_URL=mysql+pymysql://root@127.0.0.1/nhis REDIS_URL=redis://127.0.0.1:6379/0 nhis demo
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if our parent ignored it
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    _STARTED.clear()
    try:
        roles = _run(obj, rows, port, flower_port, no_ingest)
        roles.proc.wait()
        click.echo(f"the roles stopped by themselves; last lines of {roles.log_path}:\n{roles.log_tail()}",
                   err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        if "roles" not in _STARTED:
            click.echo("\nstopped before any process was started")
    finally:
        if "roles" in _STARTED:
            _STARTED.pop("roles").stop()


_STARTED: dict[str, Roles] = {}  # the roles, as soon as they exist (an interrupt may come at any step)


def _run(obj, rows: int, port: int, flower_port: int, no_ingest: bool) -> Roles:
    from shared.auth.keys import SCOPES, create_key
    from shared.cli.db import upgrade
    from shared.db.engine import unit_of_work

    settings = obj.settings
    resources = obj.resources
    steps = Steps(STEPS)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    mode = "embedded: SQLite and a filesystem broker" if settings.embedded else "DATABASE_URL and REDIS_URL"
    click.echo(f"nhis demo: the whole system on this machine ({mode}); data in {data_dir}")

    with steps.step(f"Migrate the database {resources.engine.url.render_as_string(hide_password=True)}") as out:
        upgrade(resources.engine)
        out["text"] = "schema at the newest revision"

    sample = data_dir / f"sample-{DEMO_YEAR}.csv"
    with steps.step(f"Sample data: {rows:,} synthetic people in the {DEMO_YEAR} release format (cp949) "
                    f"-> {sample}") as out:
        if sample.exists() and _data_lines(sample) == rows:
            out["text"] = "the file from an earlier run has that many rows: reused"
        else:
            from shared.data.generate import write_file

            write_file(sample, rows=rows, year=DEMO_YEAR, seed=DEMO_YEAR, style=str(DEMO_YEAR), encoding="cp949")
            out["text"] = f"written, {sample.stat().st_size / 1e6:.1f} MB"

    name = f"demo-{dt.datetime.now():%Y%m%d-%H%M%S}"
    with steps.step(f"API key {name!r} with every scope ({', '.join(SCOPES)})") as out:
        with unit_of_work(resources.sessions) as session:
            key = create_key(session, name, list(SCOPES))
        out["text"] = "created (stored hashed; shown at the end)"

    for what, p in (("--port", port), ("--flower-port", flower_port)):
        if not _port_free(p):
            raise click.ClickException(f"port {p} on 127.0.0.1 is in use: choose another with {what}")
    log_dir = data_dir / "demo"
    log_dir.mkdir(exist_ok=True)
    log_path = log_dir / "roles.log"
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "NHIS_DATA_DIR": str(data_dir),
        "NHIS_CHUNK_ROWS": os.environ.get("NHIS_CHUNK_ROWS", str(DEMO_CHUNK_ROWS)),
        "WEB_BIND": f"127.0.0.1:{port}",
        "FLOWER_PORT": str(flower_port),
        # Never a published default: a fresh password per demo unless one is configured.
        "FLOWER_BASIC_AUTH": settings.flower_basic_auth or f"demo:{secrets.token_urlsafe(12)}",
        "NHIS_METRICS_TOKEN": settings.metrics_token or secrets.token_urlsafe(24),
        "PYTHONUNBUFFERED": "1",
    }
    with steps.step(f"Start {', '.join(DEMO_ROLES)} from the Procfile with honcho (logs: {log_path})") as out:
        launched = time.time()
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [str(bin_dir / "honcho"), "start", "-f", str(ROOT / "Procfile"), *DEMO_ROLES],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us only; we stop the roles in order
            )
        roles = _STARTED["roles"] = Roles(proc, log_path)
        out["text"] = f"honcho pid {proc.pid}"

    base = f"http://127.0.0.1:{port}"
    with steps.step("Wait for the web role, Flower and a worker heartbeat") as out:
        from shared.heartbeat import alive_workers

        _wait(lambda: _http_ok(f"{base}/health"), 120, f"the web role at {base}/health", roles)
        _wait(lambda: _http_ok(f"http://127.0.0.1:{flower_port}/healthcheck"), 120, "Flower", roles)
        beats = _wait(lambda: [b for b in alive_workers(resources).values() if b.started_at >= launched - 1],
                      120, "a worker heartbeat", roles)
        beat = beats[0]
        out["text"] = (f"web answers; worker {beat.node} beats (pids {' '.join(map(str, beat.pids))}, "
                       f"queues {','.join(beat.queues)})")

    job_id = None
    if no_ingest:
        steps.skip("Ingest the sample through Celery", "--no-ingest")
        steps.skip("Statistics published", "--no-ingest")
        summary = None
    else:
        with steps.step(f"Ingest {sample.name} through Celery (chunks of {env['NHIS_CHUNK_ROWS']} rows; "
                        f"watch them in Flower)") as out:
            job_id, summary = _ingest(resources, sample, roles)
            out["text"] = summary
        with steps.step("Statistics published (a worker refreshes them when a job succeeds)") as out:
            from shared.stats.store import read_meta

            tag = f"{DEMO_YEAR}:job{job_id}"
            meta = _wait(lambda: (m := read_meta(resources)) and tag in m["dataset_version"] and m, 180,
                         "the statistics of the new version", roles)
            out["text"] = f"dataset {meta['dataset_version']}, computed {meta['computed_at']}"

    flower_user, _, flower_password = env["FLOWER_BASIC_AUTH"].partition(":")
    lines = [
        "",
        "NHIS screening backend is running:",
        f"  dashboard    {base}/",
        f"  API docs     {base}/docs   (Authorize with the key below)",
        f"  readiness    {base}/ready",
        f"  Flower       http://127.0.0.1:{flower_port}/   (user {flower_user!r}, password {flower_password!r})",
        f"  metrics      curl -H 'Authorization: Bearer {env['NHIS_METRICS_TOKEN']}' {base}/metrics",
        f"  sample file  {sample}",
        f"  demo key     {key}",
        f"  status       nhis status   (jobs: nhis jobs list{f'; rejects: nhis jobs rejects {job_id}' if job_id else ''})",
        "",
        "Try:",
        *(f"  {command}" for command in try_commands(base, key)),
        "",
        f"Ctrl-C stops every process started here ({', '.join(DEMO_ROLES)}).",
    ]
    click.echo("\n".join(lines))
    return roles


def _ingest(resources, sample: Path, roles: Roles) -> tuple[int, str]:
    from shared.etl.jobs import JobConflict, submit_job, wait_for_job

    try:
        job_id = submit_job(resources, sample, expected_year=DEMO_YEAR).job_id
        click.echo(f"      job {job_id} created; planning splits the file into chunks")
    except JobConflict as exc:  # an earlier demo stopped mid-ingest: its job resumes, follow it
        job_id = exc.job_id
        click.echo(f"      year {DEMO_YEAR} already has job {job_id} running (an earlier run): following it")
    state = {"bar": None, "done": 0}

    def progress(job):
        p = job["progress"]
        if state["bar"] is None and p["chunks_total"]:
            state["bar"] = click.progressbar(
                length=p["chunks_total"], label=f"      job {job_id}", show_pos=True,
                item_show_func=lambda j: None if j is None else f"{j['progress']['rows_loaded']:,} rows loaded",
            )
            state["bar"].__enter__()
        if state["bar"] is not None and p["chunks_done"] > state["done"]:
            state["bar"].update(p["chunks_done"] - state["done"], current_item=job)
            state["done"] = p["chunks_done"]

    try:
        job = wait_for_job(resources, job_id, timeout=1800, alive=roles.alive, progress=progress)
    except RuntimeError:
        raise click.ClickException(f"the roles stopped during the ingest; last lines of {roles.log_path}:\n"
                                   f"{roles.log_tail()}") from None
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)
    p = job["progress"]
    if job["status"] != "succeeded":
        raise click.ClickException(f"job {job_id} {job['status']}: {job['error']}")
    return job_id, (f"job {job_id} succeeded: {p['rows_loaded']:,} rows loaded, {p['rows_rejected']:,} rows and "
                    f"{p['cells_rejected']:,} cells rejected (the sample has rare garbage codes, like the real "
                    f"file: nhis jobs rejects {job_id})")
