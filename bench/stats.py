"""Statistics benchmark: a full refresh over 1,000,000 rows, and GET /api/v1/stats/* under
Gunicorn (the Procfile's web role and gunicorn.conf.py) against a bare Flask endpoint returning
the same bytes from Redis under the same Gunicorn settings, side by side, wrk -t2 -c16 on loopback.

Needs wrk (Debian package `wrk`) and the 1M-row database left by `python -m bench.etl`
(it is loaded here if missing).

    python -m bench.stats [--runs 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from sqlalchemy import text

from bench import etl as etl_bench
from bench.report import write_section
from shared.auth.keys import create_key
from shared.config import load_settings
from shared.db.engine import unit_of_work
from shared.resources import Resources
from shared.stats.keys import LATEST, payload_key
from shared.stats.mask_memo import forget
from shared.stats.refresh import refresh

ROOT = Path(__file__).resolve().parent.parent
ENDPOINTS = ("risk", "factors", "percentiles")
# A benchmark measures the server, not the rate limiter's refusals: every bucket is lifted (the
# limiter still counts each request in Redis, as in production). Request metrics stay on.
BUCKETS = ("stats:read", "simulate", "records:read", "etl:write", "admin", "any", "anonymous")
BENCH_SERVER_ENV = {"NHIS_RATE_LIMITS": ",".join(f"{bucket}=1000000/second" for bucket in BUCKETS),
                    "NHIS_METRICS_TOKEN": "bench-metrics-" + "x" * 24}


def ensure_data(rows: int) -> Resources:
    url = f"{etl_bench.SERVER}/{etl_bench.DB}"
    data_dir = Path(tempfile.gettempdir()) / "nhis-bench-data"
    try:
        settings = load_settings(database_url=url, redis_url=etl_bench.REDIS, data_dir=data_dir)
        resources = Resources(settings)
        with resources.engine.connect() as conn:
            have = conn.execute(text("SELECT COUNT(*) FROM screenings")).scalar()
        if have >= rows:
            return resources
    except Exception:
        pass
    path = data_dir / f"nhis-2024-{rows}.csv"
    data_dir.mkdir(exist_ok=True)
    if not path.exists():
        etl_bench.write_file(path, rows=rows, year=2024, seed=42, style="2024", encoding="cp949")
    etl_bench.run_job(path, data_dir, 2)
    return Resources(load_settings(database_url=url, redis_url=etl_bench.REDIS, data_dir=data_dir))


def start_gunicorn(target: str, port: int, env: dict, probe: str | None = None) -> subprocess.Popen:
    environ = {**os.environ, **BENCH_SERVER_ENV, **env, "WEB_BIND": f"127.0.0.1:{port}", "LOG_LEVEL": "WARNING"}
    for name in ("PROMETHEUS_MULTIPROC_DIR", "NHIS_METRICS_MASTER_PID"):  # each master its own folder
        environ.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", target, "--config", str(ROOT / "gunicorn.conf.py")],
        cwd=ROOT, env=environ,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            path = "/health" if "api" in target else (probe or "/stats")
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1)
            return proc
        except urllib.error.HTTPError:  # the server answered (e.g. 405 for a POST-only probe)
            return proc
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{target} did not start")


def wrk(url: str, seconds: int, key: str | None, script: str | None = None, threads: int = 2,
        connections: int = 16) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
           *(["-s", script] if script else []), url]
    if key:
        cmd[1:1] = ["-H", f"X-API-Key: {key}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": lat["50"], "p99": lat["99"], "non2xx": int(errors.group(1)) if errors else 0}


def _runs(results: list[dict]) -> str:
    return ", ".join(f"{r['rps']:,.0f}" for r in results)


def _ms(value: str) -> float:
    num, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(num) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    resources = ensure_data(args.rows)

    def cold() -> dict:
        forget(resources)  # the suppression pass runs for every year, as after a Redis restart
        return refresh(resources, "bench")

    refreshes = [r for r in (cold() for _ in range(5)) if not r.get("skipped")]
    warm = [r for r in (refresh(resources, "bench") for _ in range(5)) if not r.get("skipped")]
    med = lambda k: statistics.median(r[k] for r in refreshes)  # noqa: E731
    warm_seconds = statistics.median(r["seconds"] for r in warm)
    print(f"refresh cold {med('seconds'):.2f} s, warm {warm_seconds:.2f} s", flush=True)

    with unit_of_work(resources.sessions) as session:
        key = create_key(session, f"bench-{time.time_ns()}", "stats:read")
    env = {"DATABASE_URL": resources.settings.database_url, "REDIS_URL": resources.settings.redis_url,
           "BARE_REDIS_URL": resources.settings.redis_db_url("cache")}
    rows = []
    for endpoint in ENDPOINTS:
        field = payload_key(endpoint, LATEST)
        ours = start_gunicorn("api.wsgi:app", 18080, env)
        bare = start_gunicorn("bench.bare_stats:app", 18081, {**env, "BARE_FIELD": field})
        try:
            same = (urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:18080/api/v1/stats/{endpoint}", headers={"X-API-Key": key})).read()
                == urllib.request.urlopen("http://127.0.0.1:18081/stats").read())
            assert same, "the two servers must return the same bytes"
            wrk(f"http://127.0.0.1:18080/api/v1/stats/{endpoint}", 2, key)  # warm-up
            wrk("http://127.0.0.1:18081/stats", 2, None)
            a, b = [], []
            for _ in range(args.runs):
                a.append(wrk(f"http://127.0.0.1:18080/api/v1/stats/{endpoint}", args.seconds, key))
                b.append(wrk("http://127.0.0.1:18081/stats", args.seconds, None))
        finally:
            for proc in (ours, bare):
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
        size = len(resources.cache.hget("nhis:stats:current", field))
        ma = {k: statistics.median(r[k] for r in a) for k in ("rps", "p50", "p99")}
        mb = {k: statistics.median(r[k] for r in b) for k in ("rps", "p50", "p99")}
        rows.append((endpoint, size, ma, mb, a, b))
        print(endpoint, ma, mb, flush=True)

    table = "\n".join(
        f"| `/api/v1/stats/{e}` ({size:,} B) | {ma['rps']:,.0f} | {ma['p50']:.2f} / {ma['p99']:.2f} | "
        f"{mb['rps']:,.0f} | {mb['p50']:.2f} / {mb['p99']:.2f} | **{100 * ma['rps'] / mb['rps']:.0f}%** | "
        f"{_runs(a)} vs {_runs(b)} |"
        for e, size, ma, mb, a, b in rows
    )
    body = f"""
**Full refresh** of every payload for every year over {args.rows:,} rows (merge the ETL's partial
aggregates, build and suppress every payload, write the generation to MariaDB and Redis), median
of {len(refreshes)}: **{med('seconds'):.2f} s** (read partials {med('read_seconds'):.2f} s, build
{med('build_seconds'):.2f} s, write {med('write_seconds'):.2f} s), {refreshes[0]['payloads']} payloads,
each run cold (remembered suppression masks dropped first). With the masks of an unchanged year
remembered (a beat refresh when no data changed), median of {len(warm)}: **{warm_seconds:.2f} s**.
The old system paid 157-563 ms on every cache miss, once a minute; here no request ever aggregates.

**Reads under Gunicorn** (`gunicorn api.wsgi:app --config gunicorn.conf.py`: sync workers,
2 × cores = 4) against a bare Flask app returning the same bytes from Redis with the same
Gunicorn settings, `wrk -t2 -c16 -d{args.seconds}s --latency` on loopback, runs alternating,
medians of {args.runs}. Ours authenticates the API key, validates the query, counts the request
against its rate limit (limits lifted for the run), adds request-id, security and timing headers,
records the request histogram and logs; wrk shares the 2 cores with both servers, Redis and MariaDB.

| endpoint (payload) | ours req/s | ours p50 / p99 ms | bare req/s | bare p50 / p99 ms | ours / bare | runs (ours vs bare) |
|---|---|---|---|---|---|---|
{table}

The old system's cached stats reached 3,434 req/s (2 workers × 2 threads) on this machine kind.
"""
    write_section("stats", "Statistics: refresh and warm reads", body,
                  command=f"python -m bench.stats --runs {args.runs} --seconds {args.seconds}")


if __name__ == "__main__":
    main()
