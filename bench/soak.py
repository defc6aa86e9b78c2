"""Sustained load: 60 s at 16 clients against a warm `GET /api/v1/stats/risk` and
`POST /api/v1/simulate`, each side by side with its bare Flask endpoint (bench/bare_stats.py,
bench/bare_simulate.py) under the same gunicorn.conf.py, worker recycling enabled as shipped.
Reports req/s, p50, p99, p99.9 and max for each, and how many workers were replaced during the
measured window (counted from Gunicorn's own log).

Two settings are run by default:
- `shipped`: gunicorn.conf.py as it is;
- `recycling`: the same with `WEB_MAX_REQUESTS=20000` (the old default's count), so that every
  worker is replaced after 20,000-30,000 requests, every 20-30 s at ~1,000 requests a second per
  worker: recycling itself must not show in the tail.

Rate limits are lifted for the run (NHIS_RATE_LIMITS), request metrics are on (NHIS_METRICS_TOKEN).
Needs wrk and the database of bench/stats.py (loaded if missing; BENCH_MYSQL, BENCH_REDIS, BENCH_DB).

    python -m bench.soak [--seconds 60] [--connections 16] [--settings shipped,recycling] [--pairs 2]

One 60-s run's req/s moves by several per cent from the next on this shared machine, so each case
runs in pairs in the order ours, bare, bare, ours, ... (drift then weighs on both sides alike), and
the table gives each pair's ratios beside the pooled ones (every request over every measured second).
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

import psutil

from bench.report import write_section
from bench.simulate import OLD, OURS
from bench.stats import BENCH_SERVER_ENV, ensure_data
from shared.auth.keys import create_key
from shared.db.engine import unit_of_work
from shared.stats.refresh import refresh

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ("shipped", "recycling")
# wrk's summary as one parseable line; latencies in microseconds. The timeout is long so a slow
# answer is measured rather than dropped as a timeout.
REPORT_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("SOAK %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def lua(method: str = "GET", body: str | None = None, key: str | None = None) -> str:
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines += ['wrk.headers["Content-Type"] = "application/json"', f"wrk.body = '{body}'"]
    if key is not None:
        lines.append(f'wrk.headers["X-API-Key"] = "{key}"')
    handle = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    handle.write("\n".join(lines) + "\n" + REPORT_LUA)
    handle.close()
    return handle.name


class Server:
    """One Gunicorn master with gunicorn.conf.py, its log at info level (worker boots)."""

    def __init__(self, target: str, port: int, env: dict, probe: tuple[str, str]):
        self.target, self.port, self.probe = target, port, probe
        self.log = Path(tempfile.mkstemp(prefix="soak-gunicorn-", suffix=".log")[1])
        environ = {**os.environ, **env, "WEB_BIND": f"127.0.0.1:{port}", "LOG_LEVEL": "WARNING"}
        for name in ("PROMETHEUS_MULTIPROC_DIR", "NHIS_METRICS_MASTER_PID"):  # each master its own
            environ.pop(name, None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", target, "--config", str(ROOT / "gunicorn.conf.py"),
                 "--log-level", "info"],
                cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{target} exited; see {self.log}")
            try:
                urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{probe[1]}",
                                                              method=probe[0]), timeout=1)
                return
            except urllib.error.HTTPError:  # it answered
                return
            except Exception:
                time.sleep(0.2)
        raise RuntimeError(f"{target} did not start; see {self.log}")

    def boots(self) -> int:
        return len(re.findall(r"Booting worker with pid", self.log.read_text(errors="replace")))

    def worker_rss_mb(self) -> float:
        return max((c.memory_info().rss for c in psutil.Process(self.proc.pid).children()), default=0) / 2**20

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


def wrk(url: str, seconds: int, connections: int, script: str) -> dict:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    requests, duration, p50, p99, p999, top, status, socket = map(int, re.search(r"^SOAK (.*)$", out, re.M).group(1).split())
    return {"rps": requests / (duration / 1e6), "p50": p50 / 1000, "p99": p99 / 1000, "p999": p999 / 1000,
            "max": top / 1000, "non2xx": status, "socket_errors": socket, "requests": requests}


def measure(server: Server, url: str, script: str, seconds: int, connections: int) -> dict:
    wrk(url, 3, connections, script)  # warm-up: caches, keys, connections
    before = server.boots()
    result = wrk(url, seconds, connections, script)
    result["replaced"] = server.boots() - before
    result["rss_mb"] = server.worker_rss_mb()
    return result


def pooled(runs: list[dict]) -> dict:
    """Every request over every measured second; latencies as the mean of the runs' percentiles
    (wrk gives percentiles, not its histogram), max as the max."""
    out = {"rps": sum(r["requests"] for r in runs) / sum(r["requests"] / r["rps"] for r in runs),
           "max": max(r["max"] for r in runs), "replaced": sum(r["replaced"] for r in runs),
           "rss_mb": max(r["rss_mb"] for r in runs)}
    for k in ("p50", "p99", "p999"):
        out[k] = statistics.fmean(r[k] for r in runs)
    for k in ("non2xx", "socket_errors", "requests"):
        out[k] = sum(r[k] for r in runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--settings", default="shipped,recycling")
    parser.add_argument("--pairs", type=int, default=2, help="measured pairs per case, ours-bare then bare-ours")
    parser.add_argument("--recycle-after", type=int, default=20_000,
                        help="WEB_MAX_REQUESTS of the recycling setting (± 50%% jitter)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    resources = ensure_data(args.rows)
    refresh(resources, "bench")
    with unit_of_work(resources.sessions) as session:
        key = create_key(session, f"bench-soak-{time.time_ns()}", "stats:read,simulate")
    base = {"DATABASE_URL": resources.settings.database_url, "REDIS_URL": resources.settings.redis_url,
            "BARE_REDIS_URL": resources.settings.redis_db_url("cache"), "BARE_FIELD": "risk:latest:all:all",
            **BENCH_SERVER_ENV}
    cases = [  # (name, ours target, ours url, ours script, bare target, bare url, bare script)
        ("`GET /api/v1/stats/risk` (warm)", "/api/v1/stats/risk", lua(key=key), "bench.bare_stats:app", "/stats",
         lua(), ("GET", "/stats")),
        ("`POST /api/v1/simulate`", "/api/v1/simulate", lua("POST", OURS, key), "bench.bare_simulate:app",
         "/simulate", lua("POST", OLD), ("POST", "/simulate")),
    ]
    rows = []
    for setting in args.settings.split(","):
        if setting not in SETTINGS:
            sys.exit(f"unknown setting {setting!r}; one of {', '.join(SETTINGS)}")
        env = {**base, **({"WEB_MAX_REQUESTS": str(args.recycle_after)} if setting == "recycling" else {})}
        for name, path, script, bare_target, bare_path, bare_script, bare_probe in cases:
            ours = Server("api.wsgi:app", 18090, env, ("GET", "/health"))
            bare = Server(bare_target, 18091, env, bare_probe)
            sides = {"ours": (ours, f"http://127.0.0.1:18090{path}", script),
                     "bare": (bare, f"http://127.0.0.1:18091{bare_path}", bare_script)}
            a, b = [], []
            try:
                for i in range(args.pairs):
                    for side in ("ours", "bare") if i % 2 == 0 else ("bare", "ours"):
                        result = measure(*sides[side], args.seconds, args.connections)
                        (a if side == "ours" else b).append(result)
                        print(setting, name, side, result, flush=True)
            finally:
                ours.stop()
                bare.stop()
            rows.append((setting, name, a, b))

    def cells(r: dict) -> str:
        return f"{r['rps']:,.0f} | {r['p50']:.2f} / {r['p99']:.2f} / {r['p999']:.2f} / {r['max']:.0f}"

    lines = []
    for setting, name, a_runs, b_runs in rows:
        a, b = pooled(a_runs), pooled(b_runs)
        each = ", ".join(f"{x['rps'] / y['rps']:.2f}× / {x['p99'] / y['p99']:.2f}×"
                         for x, y in zip(a_runs, b_runs, strict=True))
        met = a["rps"] >= b["rps"] and a["p99"] <= 1.1 * b["p99"]
        lines.append(f"| {setting} | {name} | {cells(a)} | {cells(b)} | **{a['rps'] / b['rps']:.2f}×** | "
                     f"**{a['p99'] / b['p99']:.2f}×** | {each} | {a['replaced']} / {b['replaced']} | "
                     f"{'yes' if met else 'no'} |")
    table = "\n".join(lines)
    errors = sum(r[k] for _s, _n, a, b in rows for r in (*a, *b) for k in ("non2xx", "socket_errors"))
    rss = max(r["rss_mb"] for *_x, a, _b in rows for r in a)
    body = f"""
`wrk -t2 -c{args.connections} -d{args.seconds}s --timeout 10s` on loopback, {args.pairs} measured
pair(s) of runs per case, each run after a 3-s warm-up, in the order ours, bare, bare, ours, ...;
each server under `gunicorn --config gunicorn.conf.py` (sync, 2 × cores, `preload_app`, recycling as
the setting says) with rate limits lifted and request metrics on. Ours: API key, validation,
rate-limit counting, request-id, security and timing headers, the request histogram. Bare:
bench/bare_stats.py (the same bytes from Redis) and bench/bare_simulate.py (the old seven-flag
logic). wrk, both servers, Redis and MariaDB share the machine's cores.

req/s is pooled: every request of a side's runs over all their measured seconds. p50, p99 and p99.9
are the mean of the runs' own percentiles (wrk reports percentiles, not its histogram); max is the
largest of any run.

| setting | endpoint | ours req/s | ours p50 / p99 / p99.9 / max ms | bare req/s | bare p50 / p99 / p99.9 / max ms | req/s ours / bare | p99 ours / bare | each pair: req/s, p99 | workers replaced during the runs (ours / bare) | target met (≥ 1.0× req/s, p99 ≤ 1.1×) |
|---|---|---|---|---|---|---|---|---|---|---|
{table}

Settings: `shipped` is gunicorn.conf.py as it is (workers replaced above `WEB_MAX_WORKER_MEMORY_MB`,
or after `WEB_MAX_REQUESTS` ± 50%); `recycling` sets `WEB_MAX_REQUESTS={args.recycle_after}` (± 50%;
the old default was 20,000), so each worker is replaced several times a run.
Non-2xx answers and socket errors over every run: {errors}. Largest resident size of one of our workers at the end of a run: {rss:.0f} MB.
"""
    write_section("soak", "Sustained load: 60 s against bare endpoints, worker recycling on", body,
                  command=f"python -m bench.soak --seconds {args.seconds} --connections {args.connections} "
                          f"--settings {args.settings} --pairs {args.pairs} --recycle-after {args.recycle_after}")


if __name__ == "__main__":
    main()
