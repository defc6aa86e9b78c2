"""Load test on loopback: mixed traffic from N clients against the web role (Gunicorn with
gunicorn.conf.py) while an ingest runs on a real Celery worker; p50/p99 per route, errors, 5xx.

Traffic mix (per request, at random): statistics 70% (any endpoint, common filters), simulator
20% (one person), records 10% (a filtered page). Every client keeps one HTTP/1.1 connection.
Rate limits are raised for the run (this measures serving, not the limiter's refusals).

    python -m bench.load [--seconds 60] [--clients 32] [--rows 50000] [--ingest-rows 300000]

Needs MariaDB and Redis (BENCH_MYSQL, BENCH_REDIS as for bench/etl.py); it uses its own database
(`--database`, dropped at the end). Sends traffic to 127.0.0.1 only and stops by itself.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.etl import wait_published
from bench.report import write_section
from shared.auth.keys import create_key
from shared.cli.db import upgrade
from shared.config import load_settings
from shared.data.generate import write_file
from shared.db.engine import unit_of_work
from shared.etl.jobs import create_job, get_job, wait_for_job
from shared.resources import Resources
from tests.support.worker import WorkerProcess, wait_until

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/4")
STATS = ("overview", "risk", "age", "factors", "region", "percentiles")
MIX = (("stats", 0.7), ("simulate", 0.2), ("records", 0.1))
HIGH_LIMITS = ",".join(f"{b}=100000000/minute" for b in
                       ("stats:read", "simulate", "records:read", "etl:write", "admin", "any", "anonymous"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request_for(rng: random.Random, year: int) -> tuple[str, str, str, bytes | None]:
    """(route label, method, path, body) for one request of the mix."""
    kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
    if kind == "stats":
        endpoint = rng.choice(STATS)
        if endpoint == "overview":  # overview takes the year only
            return "GET /stats/overview", "GET", f"/api/v1/stats/overview{rng.choice(['', f'?year={year}'])}", None
        query = rng.choice(["", f"?year={year}", "?sex=F", f"?year={year}&sex=M"])
        if rng.random() < 0.3:
            query = f"?year={year}&sex={rng.choice('MF')}" + ("" if endpoint == "age" else f"&age_group={rng.randint(5, 18)}")
        return f"GET /stats/{endpoint}", "GET", f"/api/v1/stats/{endpoint}{query}", None
    if kind == "simulate":
        person = {"sex": rng.choice("MF"), "age": rng.randint(20, 99), "sbp": rng.randint(95, 190),
                  "dbp": rng.randint(55, 115), "fasting_glucose": rng.randint(70, 200),
                  "height_cm": rng.randint(150, 190), "weight_kg": rng.randint(45, 110)}
        return "POST /simulate", "POST", "/api/v1/simulate", json.dumps(person).encode()
    query = f"?year={year}&sex={rng.choice('MF')}&limit=20"
    if rng.random() < 0.5:
        query += f"&age_group={rng.randint(5, 18)}"
    return "GET /records", "GET", f"/api/v1/records{query}", None


class Client(threading.Thread):
    def __init__(self, port: int, key: str, deadline: float, year: int, seed: int):
        super().__init__(daemon=True)
        self.port, self.key, self.deadline, self.year = port, key, deadline, year
        self.rng = random.Random(seed)
        self.samples: list[tuple[str, int, float]] = []  # (route, status or 0 for a failure, seconds)
        self.examples: dict[tuple[str, int], tuple[str, bytes]] = {}  # first non-2xx per route and status

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while time.monotonic() < self.deadline:
            route, method, path, body = request_for(self.rng, self.year)
            headers = {"X-API-Key": self.key}
            if body is not None:
                headers["Content-Type"] = "application/json"
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
                status = response.status
                if not 200 <= status < 300:
                    self.examples.setdefault((route, status), (path, answer[:300]))
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.samples.append((route, status, time.perf_counter() - started))
        conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(samples, seconds: float, ingest: dict, clients: int) -> str:
    routes = sorted({s[0] for s in samples})
    lines = ["| route | requests | req/s | p50 ms | p99 ms | errors (non-2xx) | 5xx or failed |",
             "|---|---|---|---|---|---|---|"]
    for route in [*routes, "all"]:
        mine = [s for s in samples if route == "all" or s[0] == route]
        latencies = [s[2] * 1000 for s in mine]
        errors = sum(1 for s in mine if not 200 <= s[1] < 300)
        fives = sum(1 for s in mine if s[1] == 0 or s[1] >= 500)
        lines.append(f"| {route} | {len(mine)} | {len(mine) / seconds:.0f} | {percentile(latencies, 0.5):.1f} "
                     f"| {percentile(latencies, 0.99):.1f} | {errors} | {fives} |")
    lines.append("")
    lines.append(f"{clients} clients, {seconds:.0f} s; ingest during the run: job {ingest['job_id']} "
                 f"{ingest['status']} ({ingest['progress']['rows_loaded']} rows loaded when the window closed).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the year served during the run")
    parser.add_argument("--ingest-rows", type=int, default=300_000, help="rows of the file ingested during the run")
    parser.add_argument("--database", default="nhis_load")
    parser.add_argument("--no-report", action="store_true", help="print only; leave docs/PERFORMANCE.md alone")
    args = parser.parse_args()

    server = create_engine(SERVER + "/")
    with server.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{args.database}`"))
        conn.execute(text(f"CREATE DATABASE `{args.database}` CHARACTER SET utf8mb4"))
    url = f"{SERVER}/{args.database}"
    data_dir = Path(tempfile.mkdtemp(prefix="nhis-load-"))
    settings = load_settings(database_url=url, redis_url=REDIS, data_dir=data_dir, log_level="WARNING")
    resources = Resources(settings)
    upgrade(resources.engine)
    import redis

    for role in ("broker", "results", "cache", "ratelimit"):
        redis.Redis.from_url(settings.redis_db_url(role)).flushdb()
    env = {"DATABASE_URL": url, "REDIS_URL": REDIS, "NHIS_DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING",
           "NHIS_RATE_LIMITS": HIGH_LIMITS, "NHIS_MAX_RUNNING_JOBS_PER_KEY": "5"}
    served, ingested = data_dir / "served.csv", data_dir / "ingested.csv"
    write_file(served, rows=args.rows, year=2023, seed=5, style="2024", encoding="cp949")
    write_file(ingested, rows=args.ingest_rows, year=2024, seed=6, style="2024", encoding="cp949")
    worker = WorkerProcess(env, concurrency=2).start(resources.producer)
    port = free_port()
    web = None
    try:
        served_job = wait_for_job(resources, create_job(resources, served), timeout=900)
        assert served_job["status"] == "succeeded", served_job
        # the job's own refresh, published: traffic for the served year must never race its statistics
        wait_published(resources, served_job["job_id"])
        with unit_of_work(resources.sessions) as session:
            key = create_key(session, "load", "stats:read,simulate,records:read")
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "api.wsgi:app", "--config", str(ROOT / "gunicorn.conf.py")],
            cwd=ROOT, env={**os.environ, **env, "WEB_BIND": f"127.0.0.1:{port}"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_until(lambda: http_ok(port), 60, 0.2, "the web role")
        job_id = create_job(resources, ingested)  # runs on the worker during the load
        deadline = time.monotonic() + args.seconds
        clients = [Client(port, key, deadline, 2023, seed) for seed in range(args.clients)]
        started = time.monotonic()
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        elapsed = time.monotonic() - started
        ingest = get_job(resources, job_id)
        samples = [s for c in clients for s in c.samples]
        examples: dict = {}
        for client in clients:
            for where, what in client.examples.items():
                examples.setdefault(where, what)
        for (route, status), (path, answer) in sorted(examples.items()):
            print(f"non-2xx: {route} {status} e.g. {path}: {answer!r}", flush=True)
        body = report(samples, elapsed, ingest, args.clients)
        if args.no_report:
            print(body)
        else:
            write_section("load", "Load: mixed traffic while an ingest runs", body,
                          command=f"python -m bench.load --seconds {args.seconds:g} --clients {args.clients}")
    finally:
        if web is not None and web.poll() is None:
            os.killpg(web.pid, signal.SIGTERM)
            web.wait(timeout=30)
        worker.stop()
        resources.dispose()
        with server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{args.database}`"))
        server.dispose()


def http_ok(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    finally:
        conn.close()


if __name__ == "__main__":
    main()
