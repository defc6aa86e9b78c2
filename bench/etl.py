"""ETL benchmark: a 1,000,000-row 2024-style cp949 file into MariaDB through real Celery workers.

Measures, side by side in one run: the whole job (create -> succeeded, every derived value,
indexes in place) with 2 worker processes and with 1, peak RSS per worker process, the split of
time between phases, and the floor: a plain LOAD DATA of the already-computed rows.

    python -m bench.etl [--rows 1000000] [--runs 3]
    python -m bench.etl --reload     # reload a year over an existing version, reads measured meanwhile
    python -m bench.etl --poison     # a file with a 1 GiB line: peak worker RSS
    python -m bench.etl --index-costs   # what each candidate secondary index would cost the load
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text

from bench.report import write_section
from shared.cli.db import upgrade
from shared.config import load_settings
from shared.data.generate import write_file
from shared.data.reader import inspect_file, plan_ranges, read_range, scan_file
from shared.etl.jobs import create_job, wait_for_job
from shared.etl.sink import LOAD_COLUMNS, to_csv_bytes
from shared.etl.transform import derive
from shared.resources import Resources
from tests.support.worker import WorkerProcess

SERVER = os.environ.get("BENCH_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/4")
DB = os.environ.get("BENCH_DB", "nhis_bench")  # another name keeps one developer's runs apart


def fresh_database() -> str:
    return _database(create=True)


def _drop_database() -> None:
    _database(create=False)


def _database(create: bool) -> str:
    engine = create_engine(SERVER + "/")
    with engine.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DB}"))
        if create:
            conn.execute(text(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4"))
    engine.dispose()
    return f"{SERVER}/{DB}"


class RssSampler(threading.Thread):
    """Peak RSS of each worker child process, sampled every 50 ms."""

    def __init__(self, root_pid: int):
        super().__init__(daemon=True)
        self.root = psutil.Process(root_pid)
        self.peak: dict[int, int] = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                for child in [self.root, *self.root.children(recursive=True)]:
                    rss = child.memory_info().rss
                    self.peak[child.pid] = max(self.peak.get(child.pid, 0), rss)
            except psutil.Error:
                pass
            time.sleep(0.05)


def run_job(path: Path, data_dir: Path, concurrency: int) -> dict:
    url = fresh_database()
    settings = load_settings(database_url=url, redis_url=REDIS, data_dir=data_dir, log_level="WARNING")
    resources = Resources(settings, role="worker")
    upgrade(resources.engine)
    for role in ("broker", "results", "cache"):
        import redis

        redis.Redis.from_url(settings.redis_db_url(role)).flushdb()
    env = {"DATABASE_URL": url, "REDIS_URL": REDIS, "NHIS_DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"}
    worker = WorkerProcess(env, concurrency=concurrency, queues="etl").start(resources.producer)
    sampler = RssSampler(worker.proc.pid)
    sampler.start()
    try:
        started = time.perf_counter()
        job_id = create_job(resources, path)
        job = wait_for_job(resources, job_id, timeout=300)
        wall = time.perf_counter() - started
    finally:
        sampler.stop.set()
        worker.stop()
    assert job["status"] == "succeeded", job
    with resources.engine.connect() as conn:
        rows = conn.execute(text("SELECT COUNT(*) FROM screenings")).scalar()
        timings = [json.loads(t) for (t,) in conn.execute(text("SELECT timings FROM etl_chunks"))]
    resources.dispose()
    parent = worker.proc.pid
    children = {pid: rss for pid, rss in sampler.peak.items() if pid != parent}
    return {
        "wall": wall,
        "rows": rows,
        "rejected": job["progress"]["rows_rejected"],
        "read": sum(t["read"] for t in timings),
        "derive": sum(t["derive"] for t in timings),
        "write": sum(t["write"] for t in timings),
        "peak_child_mb": max(children.values(), default=0) / 2**20,
        "parent_mb": sampler.peak.get(parent, 0) / 2**20,
    }


def floor_load_data(path: Path, connections: int = 1) -> float:
    """Plain LOAD DATA of rows already read and derived (CSV files on disk), 1 or 2 connections."""
    layout = inspect_file(path)
    files = []
    folder = Path(tempfile.mkdtemp(prefix="nhis-floor-"))
    for r in plan_ranges(layout, 50_000):
        frame = derive(read_range(layout, r).frame, 1, r.index)
        target = folder / f"{r.index}.csv"
        target.write_bytes(to_csv_bytes(frame))
        files.append(target)
    url = fresh_database()
    settings = load_settings(database_url=url, redis_url=None, data_dir=folder)
    resources = Resources(settings, role="worker")
    upgrade(resources.engine)
    def load(share: list[Path]) -> None:
        with resources.engine.begin() as conn:
            for f in share:
                conn.exec_driver_sql(
                    f"LOAD DATA LOCAL INFILE '{f}' INTO TABLE screenings CHARACTER SET binary "
                    f"FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n' ({', '.join(LOAD_COLUMNS)})"
                )

    threads = [threading.Thread(target=load, args=(files[i::connections],)) for i in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    resources.dispose()
    for f in files:
        f.unlink()
    return seconds


def _start_system(data_dir: Path, queues: str = "etl,stats"):
    url = fresh_database()
    settings = load_settings(database_url=url, redis_url=REDIS, data_dir=data_dir, log_level="WARNING")
    resources = Resources(settings)
    upgrade(resources.engine)
    import redis

    for role in ("broker", "results", "cache", "ratelimit"):
        redis.Redis.from_url(settings.redis_db_url(role)).flushdb()
    env = {"DATABASE_URL": url, "REDIS_URL": REDIS, "NHIS_DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"}
    worker = WorkerProcess(env, concurrency=2, queues=queues).start(resources.producer)
    return resources, env, worker


def reload_scenario(rows: int, data_dir: Path, seconds: int) -> None:
    """A year reloaded over an existing version while clients read statistics and records."""
    from bench.stats import start_gunicorn, wrk
    from shared.auth.keys import create_key
    from shared.db.engine import unit_of_work

    first, second = (data_dir / f"nhis-2024-{rows}-seed{seed}.csv" for seed in (42, 43))
    for path, seed in ((first, 42), (second, 43)):
        if not path.exists():
            write_file(path, rows=rows, year=2024, seed=seed, style="2024", encoding="cp949")
    resources, env, worker = _start_system(data_dir)
    web = None
    try:
        v1 = wait_for_job(resources, create_job(resources, first), timeout=600)
        assert v1["status"] == "succeeded", v1
        wait_published(resources, v1["job_id"])  # the job's own refresh: reads start on published statistics
        with unit_of_work(resources.sessions) as session:
            key = create_key(session, f"bench-{time.time_ns()}", "stats:read,records:read")
        port = 18000 + os.getpid() % 1000
        web = start_gunicorn("api.wsgi:app", port, {**env, **RELAXED_LIMITS})
        urls = {"stats": f"http://127.0.0.1:{port}/api/v1/stats/risk",
                "records": f"http://127.0.0.1:{port}/api/v1/records?year=2024&limit=20"}

        def both(duration: int) -> dict:
            out: dict = {}
            threads = [threading.Thread(target=lambda n=n, u=u: out.__setitem__(
                n, wrk(u, duration, key, threads=1, connections=4))) for n, u in urls.items()]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return out

        idle = both(seconds)
        started = time.perf_counter()
        job_id = create_job(resources, second)
        during = both(seconds)
        v2 = wait_for_job(resources, job_id, timeout=600)
        reload_seconds = time.perf_counter() - started
        assert v2["status"] == "succeeded", v2
        with resources.engine.connect() as conn:
            while conn.execute(text("SELECT COUNT(*) FROM screenings WHERE job_id = :j"),
                               {"j": v1["job_id"]}).scalar():
                time.sleep(0.2)
                conn.commit()
        purged = time.perf_counter() - started
    finally:
        if web is not None:
            os.killpg(web.pid, 15)
        worker.stop()
        resources.dispose()
    rows_md = "\n".join(
        f"| {name} | {idle[name]['rps']:,.0f} | {idle[name]['p50']:.2f} | {idle[name]['p99']:.2f} | "
        f"{during[name]['rps']:,.0f} | {during[name]['p50']:.2f} | {during[name]['p99']:.2f} | "
        f"{idle[name]['non2xx'] + during[name]['non2xx']} |"
        for name in urls
    )
    body = f"""
A {rows:,}-row year (2024) already loaded and current; a second {rows:,}-row file for the same year
is ingested as a new version (2 worker processes) while two wrk clients (1 thread, 4 connections
each, {seconds} s) read `GET /api/v1/stats/risk` and `GET /api/v1/records?year=2024&limit=20`
under Gunicorn. "idle" is the same {seconds} s read load just before the reload, side by side.

| measurement | value |
|---|---|
| reload: create -> new version current | {reload_seconds:.2f} s |
| old version's rows purged (batches of 20,000) | {purged:.2f} s after create |

| read | idle req/s | idle p50 ms | idle p99 ms | during reload req/s | p50 ms | p99 ms | non-2xx (idle + during) |
|---|---|---|---|---|---|---|---|
{rows_md}

Every read during the reload is served from the current (old) version: the new one becomes
visible only at the swap.
"""
    write_section("etl-reload", "ETL: reloading a 1,000,000-row year over the current version", body,
                  command=f"python -m bench.etl --reload --rows {rows}")


def poison_scenario(rows: int, data_dir: Path) -> None:
    """A file with a 1 GiB line in the middle: it must be a reject, not a memory spike."""
    path = data_dir / f"nhis-2024-{rows}-poison.csv"
    if not path.exists():
        clean = data_dir / f"nhis-2024-{rows}.csv"
        if not clean.exists():
            write_file(clean, rows=rows, year=2024, seed=42, style="2024", encoding="cp949")
        with open(clean, "rb") as src, open(path, "wb") as dst:
            half = clean.stat().st_size // 2
            dst.write(src.read(half))
            dst.write(src.readline())  # finish the line we are in
            dst.write(b"2024," + b"7" * 2**30 + b"\n")  # one line of 1 GiB
            while block := src.read(1 << 24):
                dst.write(block)
    resources, env, worker = _start_system(data_dir, queues="etl")
    sampler = RssSampler(worker.proc.pid)
    sampler.start()
    try:
        started = time.perf_counter()
        job = wait_for_job(resources, create_job(resources, path), timeout=900)
        wall = time.perf_counter() - started
    finally:
        sampler.stop.set()
        worker.stop()
    with resources.engine.connect() as conn:
        long = conn.execute(text("SELECT line_no FROM etl_rejects WHERE reason = 'line_too_long'")).scalars().all()
    resources.dispose()
    children = [rss for pid, rss in sampler.peak.items() if pid != worker.proc.pid]
    body = f"""
The {rows:,}-row file with one line of 1 GiB inserted in the middle ({path.stat().st_size / 2**30:.2f} GiB in all),
through 2 worker processes.

| measurement | value |
|---|---|
| job status | {job['status']} |
| rows loaded / lines rejected | {job['progress']['rows_loaded']:,} / {job['progress']['rows_rejected']:,} |
| the long line | rejected as `line_too_long` at line {long[0] if long else '?'} |
| wall time | {wall:.2f} s |
| peak RSS of a worker child process | {max(children, default=0) / 2**20:.0f} MB (bound: 400 MB) |
"""
    write_section("etl-poison", "ETL: a file with a 1 GiB line", body,
                  command=f"python -m bench.etl --poison --rows {rows}")


INDEX_CANDIDATES = {
    "sex": "(job_id, sex, id)",
    "age_group": "(job_id, age_group, id)",
    "province": "(job_id, province, id)",
    "screening_risk_group": "(job_id, screening_risk_group, id)",
    **{f"flag_{f}": f"(job_id, flag_{f}, id)" for f in (
        "hypertension", "diabetes", "high_total_cholesterol", "high_triglycerides", "low_hdl", "obesity",
        "smoking")},
}


SHIPPED_INDEXES = {"age_group": "ix_screenings_age_group", "province": "ix_screenings_province"}  # models.py


def index_costs(rows: int, data_dir: Path) -> None:
    """ETL time of the 1M-row load with no secondary index, with the two the schema ships
    (age band, province), with each candidate alone, and with all of them."""
    path = data_dir / f"nhis-2024-{rows}.csv"
    if not path.exists():
        write_file(path, rows=rows, year=2024, seed=42, style="2024", encoding="cp949")

    def load(indexes: list[str]) -> float:
        resources, _env, worker = _start_system(data_dir, queues="etl")
        try:
            with resources.engine.begin() as conn:
                for name in SHIPPED_INDEXES.values():  # every scenario starts from no secondary index
                    conn.exec_driver_sql(f"DROP INDEX {name} ON screenings")
                for name in indexes:
                    conn.exec_driver_sql(f"CREATE INDEX ix_bench_{name} ON screenings {INDEX_CANDIDATES[name]}")
            started = time.perf_counter()
            job = wait_for_job(resources, create_job(resources, path), timeout=900)
            assert job["status"] == "succeeded", job
            return time.perf_counter() - started
        finally:
            worker.stop()
            resources.dispose()

    try:
        base, shipped = [], []
        for _ in range(3):  # alternated, so drift on the shared machine falls on both alike
            base.append(load([]))
            shipped.append(load(list(SHIPPED_INDEXES)))
            print(f"none {base[-1]:.2f} s, shipped {shipped[-1]:.2f} s", flush=True)
        baseline, as_shipped = statistics.median(base), statistics.median(shipped)
        rows_md = []
        for name in INDEX_CANDIDATES:
            seconds = load([name])
            rows_md.append(f"| `{name}` {INDEX_CANDIDATES[name]} | {seconds:.2f} s | "
                           f"{(seconds / baseline - 1) * 100:+.0f}% |")
            print(rows_md[-1], flush=True)
        every = load(list(INDEX_CANDIDATES))
    finally:  # its table keeps the last scenario's indexes: the other benchmarks load a table as shipped
        _drop_database()
    body = f"""
The {rows:,}-row load (2 worker processes) into an empty table. Each index is `(job_id, <filter>,
id)`: the year's version, the filter value, then the key order a keyset page needs. The schema
ships two of them (age band and province, docs/DECISIONS.md); every scenario drops those first and
adds what it measures.

| secondary indexes | load time | cost against none |
|---|---|---|
| none (median of 3: {" / ".join(f"{b:.2f}" for b in base)} s) | {baseline:.2f} s | |
| **as shipped: age band + province** (median of 3, alternated with none: {" / ".join(f"{b:.2f}" for b in shipped)} s) | **{as_shipped:.2f} s** | **{(as_shipped / baseline - 1) * 100:+.0f}%** |
{chr(10).join(rows_md)}
| all {len(INDEX_CANDIDATES)} | {every:.2f} s | {(every / baseline - 1) * 100:+.0f}% |
"""
    write_section("etl-indexes", "ETL: what a secondary index for each records filter costs", body,
                  command=f"python -m bench.etl --index-costs --rows {rows}")


def wait_published(resources, job_id: int, timeout: float = 600) -> None:
    """Until the refresh the job asked for has published statistics that include it."""
    from shared.stats import store

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = store.read_meta(resources)
        if meta and f"job{job_id}" in meta["dataset_version"]:
            return
        time.sleep(0.2)
    raise TimeoutError(f"statistics never included job {job_id}")


RELAXED_LIMITS = {  # the benchmark measures the server, not the limiter
    "NHIS_RATE_LIMITS": "any=10000000/minute,stats:read=10000000/minute,records:read=10000000/minute"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reload", action="store_true", help="only the reload-over-a-version scenario")
    parser.add_argument("--poison", action="store_true", help="only the 1 GiB line scenario")
    parser.add_argument("--index-costs", action="store_true", help="only the secondary-index cost scenario")
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration in the reload scenario")
    args = parser.parse_args()
    data_dir = Path(tempfile.gettempdir()) / "nhis-bench-data"
    data_dir.mkdir(exist_ok=True)
    if args.reload:
        reload_scenario(args.rows, data_dir, args.seconds)
        return
    if args.poison:
        poison_scenario(args.rows, data_dir)
        return
    if args.index_costs:
        index_costs(args.rows, data_dir)
        return
    path = data_dir / f"nhis-2024-{args.rows}.csv"
    if not path.exists():
        write_file(path, rows=args.rows, year=2024, seed=42, style="2024", encoding="cp949")

    two, one, floors, floors2 = [], [], [], []
    for i in range(args.runs):
        two.append(run_job(path, data_dir, 2))
        print(f"run {i + 1} (2 workers): {two[-1]}", flush=True)
        floors.append(floor_load_data(path, 1))
        floors2.append(floor_load_data(path, 2))
        print(f"run {i + 1} floor LOAD DATA: {floors[-1]:.2f}s (1 conn), {floors2[-1]:.2f}s (2 conns)", flush=True)
    plans = []
    for _ in range(3):  # the planning scan (ranges, checksums, file profile), timed in-process
        t = time.perf_counter()
        scan_file(inspect_file(path), 50_000)
        plans.append(time.perf_counter() - t)
    one.append(run_job(path, data_dir, 1))
    print(f"1 worker: {one[-1]}", flush=True)

    med = lambda key, runs=two: statistics.median(r[key] for r in runs)  # noqa: E731
    wall2, wall1, floor = med("wall"), med("wall", one), statistics.median(floors)
    floor2 = statistics.median(floors2)
    body = f"""
Input: {args.rows:,}-row 2024-style cp949 file ({path.stat().st_size / 2**20:.0f} MiB) from `nhis generate`
(seed 42). Job = create -> plan -> {args.rows // 50_000} chunks of 50,000 rows through Celery (Redis broker)
-> LOAD DATA LOCAL INFILE ... REPLACE into the job's own version in MariaDB 10.11 (primary key (job_id, id))
-> job succeeded. Runs: {args.runs} with 2 worker processes (median), 1 with 1 worker process.

| measurement | median | all runs |
|---|---|---|
| **whole job, 2 worker processes** | **{wall2:.2f} s** ({args.rows / wall2:,.0f} rows/s) | {", ".join(f"{r['wall']:.2f}" for r in two)} |
| whole job, 1 worker process | {wall1:.2f} s ({args.rows / wall1:,.0f} rows/s) | {", ".join(f"{r['wall']:.2f}" for r in one)} |
| floor: plain LOAD DATA of the already-computed rows (1 connection, same table and indexes) | {floor:.2f} s | {", ".join(f"{f:.2f}" for f in floors)} |
| floor, 2 connections in parallel (half the files each) | {floor2:.2f} s | {", ".join(f"{f:.2f}" for f in floors2)} |
| ratio whole job (2 workers) / floor (1 connection) | {wall2 / floor:.2f}x | |
| ratio whole job (2 workers) / floor (2 connections) | {wall2 / floor2:.2f}x | |
| speed-up 1 -> 2 worker processes | {wall1 / wall2:.2f}x | |
| the old system (to_sql + row-wise risk, its own report) | 1,849 s | |
| peak RSS of one worker child process | {max(r['peak_child_mb'] for r in two):.0f} MB | |
| peak RSS of the worker parent | {max(r['parent_mb'] for r in two):.0f} MB | |

Where the time goes (2 workers, median run; seconds summed over chunks, so they add up to more than
the wall time when 2 processes overlap): plan {statistics.median(plans):.2f} s (once per job), read {med('read'):.2f} s,
derive (rules + partial statistics) {med('derive'):.2f} s, write (CSV + LOAD DATA + rejects + commit)
{med('write'):.2f} s. Rows loaded {two[0]['rows']:,}, whole lines rejected {two[0]['rejected']:,}
(the generator's garbage values are cell-level notes; those rows load with the cell null).
"""
    write_section("etl", "ETL: 1,000,000 rows into MariaDB through Celery", body,
                  command=f"python -m bench.etl --rows {args.rows} --runs {args.runs}")


if __name__ == "__main__":
    main()
