"""The command line on the embedded SQLite database: help with examples that parse, `nhis status`,
and `nhis jobs list|show|cancel|rejects` (through click's CliRunner, the way a user runs them)."""

from __future__ import annotations

import datetime as dt
import json
import shlex

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from shared.cli import main
from shared.db.engine import unit_of_work
from shared.db.models import EtlJob, EtlReject, StatsPartial, YearVersion
from shared.etl.states import JobPhase, JobStatus, VersionState
from tests.support.files import sample_file


def all_commands(group: click.Group = main, path: tuple[str, ...] = ()):
    yield path, group
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from all_commands(command, (*path, name))
        else:
            yield (*path, name), command


def examples(help_text: str) -> list[str]:
    """The lines of the help's `Examples:` block."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Examples:")
    block = []
    for line in lines[start + 1:]:
        if not line.startswith("    ") or not line.strip():
            break
        block.append(line.strip())
    return block


def nhis_arguments(example: str) -> list[str] | None:
    """The arguments after `nhis` in an example shell line (env assignments, pipes, redirects and
    comments dropped), or None for a line that does not run nhis (e.g. `make demo`)."""
    words = shlex.split(example, comments=True)
    while words and "=" in words[0] and not words[0].startswith("-"):
        words.pop(0)  # VAR=value before the command
    if not words or words[0] != "nhis":
        return None
    args = []
    for word in words[1:]:
        if word in ("|", ">", ">>", "||", "&&", ";"):
            break
        args.append(word)
    return args


def parse(args: list[str]) -> tuple[str, ...]:
    """Parse an nhis command line the way click would, without running it; return its command path."""
    command, path = main, []
    while isinstance(command, click.Group):
        assert args and args[0] in command.commands, f"no subcommand in {args} for {path}"
        path.append(args.pop(0))
        command = command.commands[path[-1]]
    command.make_context(" ".join(["nhis", *path]), list(args))  # raises on an unknown or missing option
    return tuple(path)


@pytest.mark.parametrize(("path", "command"), list(all_commands()), ids=lambda v: " ".join(v) or "nhis"
                         if isinstance(v, tuple) else None)
def test_every_command_has_help_with_examples_that_parse(path, command):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output, f"nhis {' '.join(path)} --help has no examples"
    runnable = [a for a in map(nhis_arguments, examples(result.output)) if a is not None]
    assert runnable, "at least one example runs nhis"
    for args in runnable:
        parsed = parse(args)
        if not isinstance(command, click.Group):
            assert parsed == path, f"an example of nhis {' '.join(path)} runs nhis {' '.join(parsed)}"
        else:
            assert parsed[:len(path)] == path


def test_the_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    for name in ("audit", "db", "demo", "generate", "ingest", "jobs", "keys", "stats", "status"):
        assert f"  {name}" in result.output


# --- nhis status ------------------------------------------------------------------------------------

@pytest.fixture
def cli(sqlite_resources, monkeypatch):
    """Run nhis against the fixture's SQLite database (the CLI reads its settings from the environment)."""
    monkeypatch.setenv("NHIS_DATA_DIR", str(sqlite_resources.settings.data_dir))

    def run(*args: str):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return run


def add_job(resources, **values) -> int:
    defaults = {"status": JobStatus.SUCCEEDED, "phase": JobPhase.DONE, "version_state": VersionState.CURRENT,
                "source_path": "x.csv", "original_filename": "x.csv"}
    with unit_of_work(resources.sessions) as session:
        job = EtlJob(**{**defaults, **values})
        session.add(job)
        session.flush()
        return job.id


def test_status_of_an_empty_system(cli):
    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["mode"] == "embedded"
    assert {name: s["ok"] for name, s in report["services"].items()} == {"database": True, "cache": True,
                                                                         "broker": True, "schema": True}
    assert report["workers"] == [] and report["years"] == [] and report["running_jobs"] == []
    assert report["queues"] == {"transport": "embedded filesystem broker", "messages": {"etl": 0, "stats": 0}}
    assert report["statistics"] is None
    text = cli("status").output
    assert "none alive" in text and "no year loaded yet" in text and "not computed yet" in text


def test_status_shows_workers_queues_years_jobs_and_statistics(cli, sqlite_resources):
    import time

    from shared import task_names
    from shared.heartbeat import WorkerBeat, write_beat
    from shared.stats.store import write_generation

    res = sqlite_resources
    loaded = add_job(res, year=2023, rows_loaded=1234, rows_rejected=5, finished_at=dt.datetime(2026, 11, 1, 9))
    activated = dt.datetime(2026, 11, 1, 9, 0, 5)
    running = add_job(res, status=JobStatus.RUNNING, phase=JobPhase.LOADING, version_state=VersionState.LOADING,
                      year=2024, active_year=2024, chunks_total=3, chunks_done=1, rows_loaded=500,
                      original_filename="nhis-2024.csv")
    with unit_of_work(res.sessions) as session:
        session.add(YearVersion(year=2023, job_id=loaded, activated_at=activated))
        session.add(StatsPartial(job_id=loaded, chunk_index=0, payload=b"{}"))
    now = time.time()
    write_beat(res, WorkerBeat("w1@host", (101, 102, 103), ("etl", "stats"), now - 60, now, ((running, 1, 102),)))
    for _ in range(3):
        res.send_task(task_names.ETL_LOAD_CHUNK, running, 1)
    res.send_task(task_names.STATS_REFRESH, reason="test")
    write_generation(res, {}, {"computed_at": (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=90)).isoformat(),
                               "dataset_version": f"2023:job{loaded}", "rule_version": "2026.11.2"})

    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    [worker] = report["workers"]
    assert worker["node"] == "w1@host" and worker["pids"] == [101, 102, 103]
    assert worker["queues"] == ["etl", "stats"]
    assert worker["chunks"] == [{"job_id": running, "chunk_index": 1, "pid": 102}]
    assert 0 <= worker["seconds_since_beat"] < 5
    assert report["queues"]["messages"] == {"etl": 3, "stats": 1}
    assert report["years"] == [{"year": 2023, "job_id": loaded, "rows_loaded": 1234, "rows_rejected": 5,
                                "file": "x.csv", "current_since": "2026-11-01T09:00:05+00:00"}]
    [job] = report["running_jobs"]
    assert (job["job_id"], job["status"], job["year"], job["chunks_done"], job["chunks_total"]) == \
        (running, "running", 2024, 1, 3)
    stats = report["statistics"]
    assert stats["dataset_version"] == stats["current_dataset_version"] == f"2023:job{loaded}"
    assert stats["stale"] is False and 85 <= stats["age_seconds"] < 150

    text = cli("status").output
    assert f"job {running} chunk 1 (pid 102)" in text
    assert "etl: 3  stats: 1" in text
    assert f"2023  job {loaded}  1,234 rows  current since 2026-11-01T09:00:05+00:00" in text
    assert f"job {running}  running/loading  year 2024  1/3 chunks" in text
    assert "up to date" in text

    # A newer version of 2023 becomes current: the published statistics are now stale.
    newer = add_job(res, year=2023, rows_loaded=1300)
    with unit_of_work(res.sessions) as session:
        session.get(YearVersion, 2023).job_id = newer
        session.add(StatsPartial(job_id=newer, chunk_index=0, payload=b"{}"))
    report = json.loads(cli("status", "--json").output)
    assert report["statistics"]["stale"] is True
    assert report["statistics"]["current_dataset_version"] == f"2023:job{newer}"
    assert "stale" in cli("status").output


def test_status_and_db_current_say_when_the_schema_is_not_migrated(monkeypatch, tmp_path):
    for var in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NHIS_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    report = json.loads(runner.invoke(main, ["status", "--json"], catch_exceptions=False).output)
    schema = report["services"]["schema"]
    assert schema["ok"] is False and schema["revision"] is None and schema["newest"]
    assert "run nhis db upgrade" in schema["detail"]
    assert "behind: run nhis db upgrade" in runner.invoke(main, ["db", "current"]).output
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(main, ["db", "current"]).output.strip() == f"revision {schema['newest']}: up to date"
    report = json.loads(runner.invoke(main, ["status", "--json"], catch_exceptions=False).output)
    assert report["services"]["schema"]["ok"] is True and report["years"] == []


def test_status_exits_non_zero_when_the_database_is_unreachable(monkeypatch, tmp_path):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("NHIS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "mysql+pymysql://nhis@127.0.0.1:1/nhis")  # nothing listens on port 1
    result = CliRunner().invoke(main, ["status", "--json"], catch_exceptions=False)
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False and report["services"]["database"]["ok"] is False
    assert "OperationalError" in report["services"]["database"]["detail"]
    assert report["years"] == {"error": "database unreachable"} and "schema" not in report["services"]
    human = CliRunner().invoke(main, ["status"], catch_exceptions=False)
    assert human.exit_code == 1 and "database  FAIL" in human.output


# --- nhis jobs --------------------------------------------------------------------------------------

def test_jobs_list_show_cancel(cli, sqlite_resources):
    from shared.etl.jobs import create_job

    res = sqlite_resources
    path = sample_file(res.settings.data_dir / "in", 200, year=2022, style="2020")
    queued = create_job(res, path, expected_year=2022)  # no worker here: it stays queued
    done = add_job(res, year=2021, rows_loaded=900, rows_rejected=2, chunks_total=2, chunks_done=2)

    listing = cli("jobs", "list").output.splitlines()  # newest first
    assert [line.split()[:3] for line in listing] == [[str(done), "succeeded", "2021"],
                                                      [str(queued), "queued", "2022"]]
    assert "2/2 chunks  900 loaded  2 rejected" in listing[0]
    assert cli("jobs", "list", "--limit", "1").output.splitlines() == listing[:1]

    shown = json.loads(cli("jobs", "show", str(queued)).output)
    assert (shown["job_id"], shown["status"], shown["year"], shown["file"]) == (queued, "queued", 2022, "sample.csv")

    result = cli("jobs", "cancel", str(queued))
    assert result.exit_code == 0 and result.output.strip() == f"job {queued} cancelled"
    with unit_of_work(res.sessions) as session:
        job = session.get(EtlJob, queued)
        assert (job.status, job.version_state, job.active_year) == ("cancelled", "discarded", None)
    assert cli("jobs", "cancel", str(queued)).exit_code == 0  # idempotent

    ended = cli("jobs", "cancel", str(done))
    assert ended.exit_code == 3 and "already succeeded" in ended.output
    for command in ("show", "cancel"):
        missing = cli("jobs", command, "999")
        assert missing.exit_code == 2 and "no job 999" in missing.output


def test_jobs_rejects_in_line_order_with_a_limit(cli, sqlite_resources):
    res = sqlite_resources
    job = add_job(res, year=2020)
    with unit_of_work(res.sessions) as session:
        session.add_all([
            EtlReject(job_id=job, chunk_index=1, line_no=70, column_name="sbp", reason="out_of_range",
                      raw_value="999", whole_row=False),
            EtlReject(job_id=job, chunk_index=0, line_no=12, column_name=None, reason="wrong_field_count",
                      raw_value="1,2,3", whole_row=True),
            EtlReject(job_id=job + 1, chunk_index=0, line_no=5, column_name=None, reason="other job",
                      raw_value=None, whole_row=True),
        ])
    lines = cli("jobs", "rejects", str(job)).output.splitlines()
    assert [line.split()[:4] for line in lines] == [["line", "12", "row", "-"], ["line", "70", "cell", "sbp"]]
    assert "wrong_field_count" in lines[0] and lines[1].endswith("999")
    assert len(cli("jobs", "rejects", str(job), "--limit", "1").output.splitlines()) == 1
    with unit_of_work(res.sessions) as session:  # the listing read only; nothing changed
        assert len(session.scalars(select(EtlReject)).all()) == 3
