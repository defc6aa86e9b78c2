"""`nhis status`: what is running and what readers see, in one screen (or one JSON document).

Why a command of its own: `/ready` answers a load balancer (ready or not, what is degraded); an
operator also wants to know *which* workers are alive and what they hold, how much work waits,
which job each year's readers see and how old the published statistics are. Everything comes from
the systems of record, never from a broadcast to workers: the database (year pointers, jobs),
the heartbeats (shared/heartbeat.py) and the broker's own queue lengths.

The connection uses the API's short timeouts, so an unreachable database is reported within
seconds; the command then exits 1 (scripts: `nhis status --json || alert`).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time

import click
from sqlalchemy import select

from shared import task_names

QUEUES = (task_names.QUEUE_ETL, task_names.QUEUE_STATS)
EXIT_DATABASE_DOWN = 1


def _reason(exc: Exception) -> str:
    """The first line of an error (SQLAlchemy appends the statement on the next lines)."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]


def _section(fn, *args):
    """Run one probe; a failure becomes {"error": "..."} so the other sections still show."""
    try:
        return fn(*args)
    except Exception as exc:  # each section reports its own failure, with the reason
        return {"error": _reason(exc)}


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=dt.UTC).isoformat(timespec="seconds")


def services(resources) -> dict:
    from shared.health import check_broker, check_cache, check_database

    out = {}
    for name, check in (("database", check_database), ("cache", check_cache), ("broker", check_broker)):
        try:
            ok, detail = check(resources)
        except Exception as exc:
            ok, detail = False, _reason(exc)
        out[name] = {"ok": ok, "detail": detail}
    if out["database"]["ok"]:
        out["schema"] = _schema(resources)
    settings = resources.settings
    out["database"]["url"] = resources.engine.url.render_as_string(hide_password=True)
    if settings.embedded:
        out["cache"]["url"] = None
        out["broker"]["url"] = f"filesystem://{(settings.data_dir / 'broker').resolve()}"
    else:
        out["cache"]["url"] = _hide_password(settings.redis_db_url("cache"))
        out["broker"]["url"] = _hide_password(settings.redis_db_url("broker"))
    return out


def _schema(resources) -> dict:
    from shared.cli.db import schema_revision

    try:
        current, head = schema_revision(resources.engine)
    except Exception as exc:
        return {"ok": False, "detail": _reason(exc), "revision": None, "newest": None}
    if current == head:
        return {"ok": True, "detail": f"revision {current} (the newest)", "revision": current, "newest": head}
    return {"ok": False, "revision": current, "newest": head,
            "detail": f"revision {current or 'none (empty database)'}, newest is {head}: run nhis db upgrade"}


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def workers(resources) -> list[dict]:
    from shared.heartbeat import alive_workers

    now = time.time()
    return [
        {"node": beat.node, "pids": list(beat.pids), "queues": list(beat.queues),
         "chunks": [{"job_id": j, "chunk_index": c, "pid": p} for j, c, p in beat.chunks],
         "seconds_since_beat": round(now - beat.seen_at, 1), "up_seconds": round(now - beat.started_at)}
        for beat in sorted(alive_workers(resources).values(), key=lambda b: b.node)
    ]


def queues(resources) -> dict:
    """Messages waiting in each queue, as the broker's transport counts them (Redis: LLEN of the
    queue's lists; embedded: message files of the filesystem broker). Messages a worker has taken
    are not counted."""
    counts = {}
    with resources.producer.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
        channel = conn.default_channel
        for name in QUEUES:
            counts[name] = channel.queue_declare(queue=name, passive=False).message_count
    transport = "embedded filesystem broker" if resources.settings.embedded else "redis"
    return {"transport": transport, "messages": counts}


def years(session) -> list[dict]:
    from shared.db.models import EtlJob, YearVersion

    rows = session.execute(
        select(YearVersion.year, YearVersion.job_id, YearVersion.activated_at, EtlJob.rows_loaded,
               EtlJob.rows_rejected, EtlJob.original_filename)
        .join(EtlJob, EtlJob.id == YearVersion.job_id, isouter=True)
        .order_by(YearVersion.year)
    ).all()
    return [{"year": r.year, "job_id": r.job_id, "rows_loaded": r.rows_loaded, "rows_rejected": r.rows_rejected,
             "file": r.original_filename, "current_since": _iso(r.activated_at)} for r in rows]


def running_jobs(session) -> list[dict]:
    from shared.db.models import EtlJob
    from shared.etl.states import ACTIVE_JOB

    jobs = session.scalars(select(EtlJob).where(EtlJob.status.in_([s.value for s in ACTIVE_JOB]))
                           .order_by(EtlJob.id))
    return [{"job_id": j.id, "status": j.status, "phase": j.phase, "year": j.year or j.expected_year,
             "chunks_done": j.chunks_done, "chunks_total": j.chunks_total, "rows_loaded": j.rows_loaded,
             "rows_rejected": j.rows_rejected, "file": j.original_filename, "created_at": _iso(j.created_at)}
            for j in jobs]


def current_dataset_version(session) -> str:
    """The dataset version a refresh run now would publish (the years' current jobs with partials)."""
    from shared.db.models import StatsPartial, YearVersion
    from shared.stats.refresh import dataset_version

    rows = session.execute(select(YearVersion.year, YearVersion.job_id)
                           .where(YearVersion.job_id.in_(select(StatsPartial.job_id).distinct()))).all()
    return dataset_version(dict(rows))


def statistics(resources, current: str | None) -> dict | None:
    """The published snapshot's age; `stale` when the years' current versions differ from the
    ones it was computed from (a job finished since; the next refresh publishes it)."""
    from shared.stats.store import read_meta

    meta = read_meta(resources)
    if meta is None:
        return None
    computed = dt.datetime.fromisoformat(meta["computed_at"])
    return {
        "computed_at": meta["computed_at"],
        "age_seconds": round((dt.datetime.now(dt.UTC) - computed).total_seconds()),
        "stale": None if current is None else meta["dataset_version"] != current,
        "dataset_version": meta["dataset_version"],
        "current_dataset_version": current,
        "rule_version": meta.get("rule_version"),
        "refresh_every_seconds": resources.settings.stats_refresh_seconds,
    }


def collect(resources) -> dict:
    """Everything `nhis status` shows, as plain data; `ok` is False when the database is unreachable."""
    from shared.db.engine import unit_of_work

    report = {"checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "mode": "embedded" if resources.settings.embedded else "services"}
    report["services"] = services(resources)
    report["ok"] = report["services"]["database"]["ok"]
    report["workers"] = _section(workers, resources)
    report["queues"] = _section(queues, resources)
    current = None
    if report["ok"]:
        def from_database():
            with unit_of_work(resources.sessions) as session:
                return years(session), running_jobs(session), current_dataset_version(session)

        found = _section(from_database)
        if isinstance(found, dict):  # the error of the section
            report["years"] = report["running_jobs"] = found
        else:
            report["years"], report["running_jobs"], current = found
    else:
        report["years"] = report["running_jobs"] = {"error": "database unreachable"}
    report["statistics"] = _section(statistics, resources, current)
    return report


# --- the human-readable screen -------------------------------------------------------------------

def _mark(ok: bool) -> str:
    return "ok  " if ok else "FAIL"


def render(report: dict) -> str:
    lines = [f"NHIS status at {report['checked_at']} ({report['mode']} mode)", "", "services"]
    for name, svc in report["services"].items():
        where = f"  [{svc['url']}]" if svc.get("url") else ""
        lines.append(f"  {name:<9} {_mark(svc['ok'])} {svc['detail']}{where}")

    lines += ["", "workers (from heartbeats)"]
    ws = report["workers"]
    if isinstance(ws, dict):
        lines.append(f"  cannot read heartbeats: {ws['error']}")
    elif not ws:
        lines.append("  none alive: ingests and refreshes wait until a worker starts")
    for w in ws if isinstance(ws, list) else ():
        running = ", ".join(f"job {c['job_id']} chunk {c['chunk_index']} (pid {c['pid']})" for c in w["chunks"])
        lines.append(f"  {w['node']}  queues {','.join(w['queues'])}  pids {' '.join(map(str, w['pids']))}  "
                     f"last beat {w['seconds_since_beat']:.1f}s ago")
        lines.append(f"    running: {running or 'nothing'}")

    lines += ["", "queues (messages waiting)"]
    qs = report["queues"]
    if "error" in qs:
        lines.append(f"  cannot reach the broker: {qs['error']}")
    else:
        lines.append("  " + "  ".join(f"{q}: {n}" for q, n in qs["messages"].items()) + f"  ({qs['transport']})")

    lines += ["", "years (the version readers see)"]
    ys = report["years"]
    if isinstance(ys, dict):
        lines.append(f"  {ys['error']}")
    elif not ys:
        lines.append("  no year loaded yet: nhis ingest FILE --wait")
    for y in ys if isinstance(ys, list) else ():
        loaded = "?" if y["rows_loaded"] is None else f"{y['rows_loaded']:,}"
        lines.append(f"  {y['year']}  job {y['job_id']}  {loaded} rows  current since {y['current_since']}"
                     + (f"  {y['file']}" if y["file"] else ""))

    lines += ["", "running jobs"]
    js = report["running_jobs"]
    if isinstance(js, dict):
        lines.append(f"  {js['error']}")
    elif not js:
        lines.append("  none")
    for j in js if isinstance(js, list) else ():
        lines.append(f"  job {j['job_id']}  {j['status']}/{j['phase']}  year {j['year'] or '?'}  "
                     f"{j['chunks_done']}/{j['chunks_total']} chunks  {j['rows_loaded']:,} loaded  "
                     f"{j['rows_rejected']:,} rejected  (nhis jobs show {j['job_id']})")

    lines += ["", "statistics"]
    st = report["statistics"]
    if st is None:
        lines.append("  not computed yet (nhis stats refresh --wait)")
    elif "error" in st:
        lines.append(f"  cannot read the snapshot: {st['error']}")
    else:
        state = {True: "stale: a newer version was loaded since; the next refresh publishes it",
                 False: "up to date", None: "freshness unknown (database unreachable)"}[st["stale"]]
        lines.append(f"  computed {st['computed_at']} ({_age(st['age_seconds'])} ago; refreshed every "
                     f"{st['refresh_every_seconds']}s), {state}")
        lines.append(f"  dataset {st['dataset_version']}  rules {st['rule_version']}")
    return "\n".join(lines)


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}min"
    return f"{seconds // 3600}h"


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="one JSON document (for scripts)")
@click.pass_obj
def status_command(obj, as_json: bool) -> None:
    """Services, workers, queue lengths, the current version of each year and the statistics age.

    Exits 1 when the database is unreachable (the rest is still shown). Workers are seen through
    their heartbeats, so a worker that stopped less than five beats ago may still be listed.

    \b
    Examples:
      nhis status
      nhis status --json | jq '.years'
      nhis status --json > /dev/null || echo "database down"
    """
    from shared.resources import Resources

    resources = Resources(obj.settings, role="api")  # short connect and statement timeouts
    try:
        report = collect(resources)
    finally:
        resources.dispose()
    click.echo(json.dumps(report, indent=2) if as_json else render(report))
    if not report["ok"]:
        sys.exit(EXIT_DATABASE_DOWN)
