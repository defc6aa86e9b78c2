"""Simulator benchmark: POST /api/v1/simulate under Gunicorn (gunicorn.conf.py) against a bare
Flask endpoint with the old system's seven-flag logic under the same Gunicorn settings,
side by side, wrk -t2 -c16 on loopback. Needs wrk and the database left by bench.etl/bench.stats.

    python -m bench.simulate [--runs 6] [--seconds 6]

The two servers share 2 noisy cores with wrk, and one run's req/s moves by ±15% from the next; so
the runs alternate (ours, bare, ours, ...) and the ratio is given per adjacent pair and as the
median of those pairs, beside the ratio of the medians.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import time
import urllib.request

from bench.report import write_section
from bench.stats import ensure_data, start_gunicorn, wrk
from shared.auth.keys import create_key
from shared.db.engine import unit_of_work
from shared.rules import evaluate_person

OURS = ('{"sex":"M","age_group":10,"height_cm":175,"weight_kg":80,"sbp":145,"dbp":95,"fasting_glucose":110,'
        '"total_cholesterol":250,"triglycerides":200,"hdl":45,"smoking":"never"}')
OLD = ('{"age_group":10,"gender":1,"height":175,"weight":80,"systolic_bp":145,"diastolic_bp":95,'
       '"fasting_glucose":110,"total_cholesterol":250,"triglycerides":200,"hdl_cholesterol":45,'
       '"smoking_status":"never"}')


def lua(body: str) -> str:
    path = tempfile.mktemp(suffix=".lua")
    with open(path, "w") as handle:
        handle.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                     f"wrk.body = '{body}'\n")
    return path


def batch_people(n: int = 1000) -> list[dict]:
    """n plausible, different people (deterministic)."""
    people = []
    for i in range(n):
        people.append({"sex": "MF"[i % 2], "age_group": 5 + i % 14, "height_cm": 150 + i % 40,
                       "weight_kg": 45 + i % 60, "sbp": 95 + i % 90, "dbp": 55 + i % 55,
                       "fasting_glucose": 70 + i % 130, "total_cholesterol": 140 + i % 160,
                       "triglycerides": 50 + i % 300, "hdl": 30 + i % 50, "smoking": ("never", "former", "current")[i % 3]})
    return people


def batch_times(key: str, runs: int = 20, warm_up: int = 4) -> tuple[float, float, int]:
    """Median server time (X-Response-Time) and client time of a 1,000-person batch, and its size."""
    import orjson

    body = orjson.dumps({"people": batch_people()})
    server, client, size = [], [], 0
    for i in range(runs + warm_up):
        req = urllib.request.Request("http://127.0.0.1:18082/api/v1/simulate/batch", data=body,
                                     headers={"X-API-Key": key, "Content-Type": "application/json"})
        t = time.perf_counter()
        with urllib.request.urlopen(req) as answer:
            raw = answer.read()
            took = answer.headers["X-Response-Time"]
        if i < warm_up:  # one per web worker: its first batch imports numpy's share of the rules
            assert len(orjson.loads(raw)["results"]) == 1000
            size = len(raw)
            continue
        client.append((time.perf_counter() - t) * 1000)
        server.append(float(took.removesuffix("ms")))
    return statistics.median(server), statistics.median(client), size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    resources = ensure_data(1_000_000)
    with unit_of_work(resources.sessions) as session:
        key = create_key(session, f"bench-sim-{time.time_ns()}", "simulate")
    env = {"DATABASE_URL": resources.settings.database_url, "REDIS_URL": resources.settings.redis_url}
    ours = start_gunicorn("api.wsgi:app", 18082, env)
    bare = start_gunicorn("bench.bare_simulate:app", 18083, env, probe="/simulate")
    ours_lua, old_lua = lua(OURS), lua(OLD)
    try:
        req = urllib.request.Request("http://127.0.0.1:18082/api/v1/simulate", data=OURS.encode(),
                                     headers={"X-API-Key": key, "Content-Type": "application/json"})
        size_ours = len(urllib.request.urlopen(req).read())
        req = urllib.request.Request("http://127.0.0.1:18083/simulate", data=OLD.encode(),
                                     headers={"Content-Type": "application/json"})
        size_old = len(urllib.request.urlopen(req).read())
        wrk("http://127.0.0.1:18082/api/v1/simulate", 2, key, ours_lua)
        wrk("http://127.0.0.1:18083/simulate", 2, None, old_lua)
        a, b = [], []
        for _ in range(args.runs):
            a.append(wrk("http://127.0.0.1:18082/api/v1/simulate", args.seconds, key, ours_lua))
            b.append(wrk("http://127.0.0.1:18083/simulate", args.seconds, None, old_lua))
        batch_server, batch_client, batch_size = batch_times(key)
    finally:
        for proc in (ours, bare):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
    import orjson

    person = orjson.loads(OURS)
    samples = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(2000):
            evaluate_person(person, include=())
        samples.append((time.perf_counter() - t) / 2000 * 1e6)
    med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
    pairs = [x["rps"] / y["rps"] for x, y in zip(a, b, strict=True)]
    body = f"""
`wrk -t2 -c16 -d{args.seconds}s --latency`, runs alternating, medians of {args.runs}; both under
`gunicorn --config gunicorn.conf.py` (sync, 2 × cores). Ours: API-key check, validation against the
data dictionary's bounds, every flag (tri-state), categories, both risk categories, metabolic
syndrome, eGFR, Framingham and peer percentiles (what-if and explanations are opt-in with
`include=`) — {size_ours:,} B. Baseline: the old system's logic
(range checks, seven flags, count, group) in a bare Flask view — {size_old:,} B.

| endpoint | req/s | p50 / p99 ms | runs |
|---|---|---|---|
| ours `POST /api/v1/simulate` | **{med(a, 'rps'):,.0f}** | {med(a, 'p50'):.2f} / {med(a, 'p99'):.2f} | {", ".join(f"{r['rps']:,.0f}" for r in a)} |
| bare seven-flag Flask view | {med(b, 'rps'):,.0f} | {med(b, 'p50'):.2f} / {med(b, 'p99'):.2f} | {", ".join(f"{r['rps']:,.0f}" for r in b)} |
| ratio ours / bare, of the medians | **{100 * med(a, 'rps') / med(b, 'rps'):.0f}%** | | |
| ratio ours / bare, median of the {len(pairs)} pairs | **{100 * statistics.median(pairs):.0f}%** | | {", ".join(f"{100 * p:.0f}%" for p in pairs)} |

`POST /api/v1/simulate/batch` with 1,000 different people ({batch_size:,} B answer, peers
included), one request at a time, median of 20 after 4 warm-ups (one per web worker): **{batch_server:.1f} ms** server time (the `X-Response-Time`
header: from the request reaching the app to the body being ready; target ≤ 50 ms), {batch_client:.1f} ms as
the client sees it.

`evaluate_person(include=())` for this person in-process: {statistics.median(samples):.1f} µs (median of 5 × 2,000).
The old system measured 4,559 req/s on this machine kind with 2 workers × 2 threads (its seven flags only).
"""
    write_section("simulate", "Simulator under Gunicorn", body,
                  command=f"python -m bench.simulate --runs {args.runs} --seconds {args.seconds}")


if __name__ == "__main__":
    main()
