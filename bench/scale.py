"""Ten years of data: generate and ingest years 2014-2023 (1M rows each, mixed release styles)
through Celery into MariaDB, then measure what growing the table does to ingest, refresh, warm
statistics reads and records pages.

Measures: ETL time per year (the 10th against the 1st), a full refresh of every year against one
year's refresh, warm `GET /api/v1/stats/risk` throughput with 1 year and with 10, and records
p50/p99 at 16 clients (wrk, loopback, Gunicorn as shipped) for page 1 and a page 10,000 deep
(cursor at the 200,000th matching row, or the last page when fewer match) of the earliest and the
latest year, and for each published filter (its rarest value) with a year.

    python -m bench.scale [--years 10] [--rows 1000000] [--seconds 5] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import and_, create_engine, func, select, text

from bench import etl as etl_bench
from bench.report import write_section
from bench.stats import start_gunicorn, wrk
from shared.auth.keys import create_key
from shared.data.generate import write_file
from shared.db.engine import unit_of_work
from shared.db.models import screenings
from shared.etl.jobs import create_job, wait_for_job
from shared.records.browse import conditions, encode_cursor
from shared.stats.mask_memo import forget
from shared.stats.refresh import refresh

DB = "nhis_scale"
FIRST_YEAR = 2014
# Release styles by year, as the files were published (docs/DATA.md): headers, encodings, quirks.
STYLES = {2014: "2014", 2015: "2014", 2016: "2017", 2017: "2017", 2018: "english", 2019: "2019",
          2020: "2020", 2021: "2024", 2022: "2024", 2023: "2024"}
RELAXED = etl_bench.RELAXED_LIMITS
DEEP_ROW = 200_000  # page 10,000 of 20 rows


def data_for(year: int, rows: int, folder: Path) -> Path:
    style = STYLES.get(year, "2024")
    path = folder / f"nhis-{year}-{rows}-{style}.csv"
    if not path.exists():
        write_file(path, rows=rows, year=year, seed=year, style=style,
                   encoding="utf-8" if style == "english" else "cp949")
    return path


def filters_to_measure(conn, job_id: int) -> list[tuple[str, dict]]:
    """Each published filter with its rarest value in the year (the worst case for a keyset scan)."""
    def rarest(column: str) -> object:
        return conn.execute(text(
            f"SELECT {column} FROM screenings WHERE job_id = :j AND {column} IS NOT NULL "
            f"GROUP BY {column} ORDER BY COUNT(*) LIMIT 1"), {"j": job_id}).scalar()

    out = [
        ("sex=F", {"sex": "F"}),
        (f"age_group={rarest('age_group')}", {"age_group": int(rarest("age_group"))}),
        (f"province={rarest('province')}", {"province": int(rarest("province"))}),
        (f"screening_risk_group={rarest('screening_risk_group')}",
         {"screening_risk_group": rarest("screening_risk_group")}),
    ]
    for flag in ("hypertension", "diabetes", "high_total_cholesterol", "high_triglycerides", "low_hdl",
                 "obesity", "smoking"):
        out.append((f"flag={flag}", {"flag": [flag]}))
    return out


def cursor_at(conn, job_id: int, params: dict, year: int) -> tuple[str | None, int]:
    """The cursor that starts page 10,000 of this query (or its last page), and the row it is at."""
    t = screenings.c
    where = and_(t.job_id == job_id, *conditions(params))
    matching = conn.execute(select(func.count()).where(where)).scalar()
    at = min(DEEP_ROW, max(matching - 20, 0))
    if at == 0:
        return None, 0
    after = conn.execute(select(t.id).where(where).order_by(t.id).offset(at - 1).limit(1)).scalar()
    return encode_cursor(after, {**params, "year": year}), at


def records_url(port: int, params: dict, cursor: str | None) -> str:
    from urllib.parse import urlencode

    query = [(k, v) for k, v in params.items() if k != "flag"] + [("flag", f) for f in params.get("flag", ())]
    query.append(("limit", 20))
    if cursor:
        query.append(("cursor", cursor))
    return f"http://127.0.0.1:{port}/api/v1/records?{urlencode(query)}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per measurement")
    parser.add_argument("--keep", action="store_true",
                        help="leave the database behind to inspect (each run starts from an empty one; the "
                             "generated files are always kept in the temp folder and reused)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    folder = Path(tempfile.gettempdir()) / "nhis-scale-data"
    folder.mkdir(exist_ok=True)
    years = list(range(FIRST_YEAR, FIRST_YEAR + args.years))
    t = time.perf_counter()
    files = {y: data_for(y, args.rows, folder) for y in years}
    generated = time.perf_counter() - t
    made = "were kept from an earlier run" if generated < 1 else f"took {generated:.0f} s to generate"
    etl_bench.DB = DB
    resources, env, worker = etl_bench._start_system(folder)
    web = None
    port = 19000 + os.getpid() % 1000
    try:
        with unit_of_work(resources.sessions) as session:
            key = create_key(session, f"scale-{time.time_ns()}", "stats:read,records:read")
        etl_seconds: dict[int, float] = {}
        jobs: dict[int, int] = {}
        one_year: dict = {}
        for i, year in enumerate(years):
            t = time.perf_counter()
            job = wait_for_job(resources, create_job(resources, files[year], expected_year=year), timeout=1800)
            etl_seconds[year] = time.perf_counter() - t
            assert job["status"] == "succeeded", job
            jobs[year] = job["job_id"]
            etl_bench.wait_published(resources, job["job_id"])  # each year starts on an idle system
            print(f"{year}: {etl_seconds[year]:.2f} s, {job['progress']['rows_loaded']:,} rows", flush=True)
            if i == 0:
                one_year["refresh"] = statistics.median(_timed_refresh(resources) for _ in range(3))
                web = start_gunicorn("api.wsgi:app", port, {**env, **RELAXED})
                one_year["stats"] = wrk(f"http://127.0.0.1:{port}/api/v1/stats/risk", args.seconds, key)
                _stop(web)
                web = None
        all_refresh = statistics.median(_timed_refresh(resources) for _ in range(3))
        all_refresh_warm = statistics.median(_timed_refresh(resources, cold=False) for _ in range(3))
        web = start_gunicorn("api.wsgi:app", port, {**env, **RELAXED})
        all_stats = wrk(f"http://127.0.0.1:{port}/api/v1/stats/risk", args.seconds, key)
        cases: list[tuple[str, str]] = []
        with resources.engine.connect() as conn:
            size = conn.execute(text(
                "SELECT data_length + index_length FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = 'screenings'")).scalar()
            for year in (years[0], years[-1]):
                params = {"year": year}
                cases.append((f"{year}, page 1", records_url(port, params, None)))
                cursor, at = cursor_at(conn, jobs[year], {}, year)
                cases.append((f"{year}, deep page (row {at:,})", records_url(port, params, cursor)))
            latest = years[-1]
            for label, params in filters_to_measure(conn, jobs[latest]):
                full = {**params, "year": latest}
                cases.append((f"{latest} + {label}, page 1", records_url(port, full, None)))
                cursor, at = cursor_at(conn, jobs[latest], params, latest)
                if cursor:
                    cases.append((f"{latest} + {label}, deep page (row {at:,})", records_url(port, full, cursor)))
        results = []
        for label, url in cases:
            r = wrk(url, args.seconds, key)
            results.append((label, r))
            print(f"{label}: {r}", flush=True)
    finally:
        if web is not None:
            _stop(web)
        worker.stop()
        resources.dispose()
        if not args.keep:
            engine = create_engine(etl_bench.SERVER + "/")
            with engine.begin() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {DB}"))
            engine.dispose()
    first, last = etl_seconds[years[0]], etl_seconds[years[-1]]
    worst = max(r["p99"] for _, r in results)
    etl_rows = "\n".join(f"| {y} ({STYLES.get(y, '2024')}) | {s:.2f} s |" for y, s in etl_seconds.items())
    rec_rows = "\n".join(f"| {label} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['non2xx']} |"
                         for label, r in results)
    body = f"""
{len(years)} years ({years[0]}-{years[-1]}) of {args.rows:,} generated rows each, in the release style of
each year; the screenings table ends at {size / 2**30:.2f} GiB (data + indexes, MariaDB 10.11 with its
default 128 MiB buffer pool). The files {made}. Ingest: 2 worker processes,
years loaded one after another into a growing table.

| measurement | value | target |
|---|---|---|
| ETL, year 1 ({years[0]}) | {first:.2f} s | |
| ETL, year {len(years)} ({years[-1]}) | {last:.2f} s (**{last / first:.2f}x** year 1) | <= 1.2x |
| full refresh, 1 year, cold (median of 3) | {one_year['refresh']:.2f} s | |
| full refresh, {len(years)} years, cold (median of 3) | {all_refresh:.2f} s (**{all_refresh / one_year['refresh']:.1f}x**) | <= 10x |
| full refresh, {len(years)} years, masks remembered (median of 3) | {all_refresh_warm:.2f} s | |
| warm `GET /api/v1/stats/risk`, 1 year loaded | {one_year['stats']['rps']:,.0f} req/s, p99 {one_year['stats']['p99']:.2f} ms | |
| warm `GET /api/v1/stats/risk`, {len(years)} years loaded | {all_stats['rps']:,.0f} req/s, p99 {all_stats['p99']:.2f} ms (**{all_stats['rps'] / one_year['stats']['rps']:.2f}x**) | unchanged |
| records, worst p99 of all cases below | **{worst:.2f} ms** | <= 20 ms |

ETL time per year:

| year (style) | create -> succeeded |
|---|---|
{etl_rows}

Records, `GET /api/v1/records?...&limit=20` at 16 clients (wrk -t2 -c16, {args.seconds} s each), Gunicorn as
shipped; each filter takes its rarest value in the year; "deep page" starts at the 200,000th matching
row (page 10,000) or, when fewer rows match, the last page:

| case | req/s | p50 ms | p99 ms | non-2xx |
|---|---|---|---|---|
{rec_rows}
"""
    write_section("scale", f"Ten years of data: {len(years)} x {args.rows:,} rows", body,
                  command=f"python -m bench.scale --years {args.years} --rows {args.rows} --seconds {args.seconds}")


def _until_idle(resources, timeout: float = 300) -> None:
    """Until no refresh runs, is pending, or waits in the broker (a load's own refresh can follow
    the one that first published it): the timed refresh must own the system."""
    import redis

    from shared import task_names
    from shared.stats.refresh import LOCK_KEY, PENDING_KEY

    broker = redis.Redis.from_url(resources.settings.redis_db_url("broker"))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            busy = (resources.cache.exists(LOCK_KEY, PENDING_KEY) or broker.llen(task_names.QUEUE_STATS)
                    or broker.hlen("unacked"))  # kombu's Redis transport: messages being worked on
            if not busy:
                return
            time.sleep(0.2)
    finally:
        broker.close()
    raise RuntimeError("statistics refreshes kept running: the benchmark must own the system")


def _timed_refresh(resources, cold: bool = True) -> float:
    """One refresh; cold drops the remembered suppression masks first (as after a Redis restart)."""
    _until_idle(resources)
    if cold:
        forget(resources)
    t = time.perf_counter()
    result = refresh(resources, "bench")
    if result.get("skipped"):
        raise RuntimeError("a refresh was running: the benchmark must own the system")
    return time.perf_counter() - t


def _stop(proc) -> None:
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


if __name__ == "__main__":
    main()
