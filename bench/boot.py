"""Boot time of a web worker: what a Gunicorn worker costs before it can answer.

- cold: a fresh interpreter imports `api.wsgi` (every import plus `create_app`), as a worker does
  without `preload_app`; timed inside the child, so the interpreter's own start is reported apart;
- warm: a fork of a process that has already built the app, up to the child having run
  `api.wsgi.after_fork` (what gunicorn.conf.py's `post_fork` does), as every worker does with
  `preload_app`, replacements included.

- leaving: the CPU a replaced worker burns on its way out, with the interpreter's teardown (which
  frees, and so copies, every object inherited from the master) and with the `os._exit` that
  gunicorn.conf.py's `worker_exit` takes after closing its connections.

Needs no running service: `create_app` opens no connection (server URLs are only parsed).

    python -m bench.boot [--runs 15] [--forks 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.report import write_section

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "pyarrow", "numpy", "celery", "kombu")
# URLs are parsed at start-up, never connected to; real ones work too.
ENV = {"DATABASE_URL": os.environ.get("DATABASE_URL", "mysql+pymysql://bench@127.0.0.1:3306/nhis_boot"),
       "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), "LOG_LEVEL": "WARNING"}

COLD = """
import json, sys, time
started = time.perf_counter()
import api.wsgi
seconds = time.perf_counter() - started
heavy = sorted(m for m in sys.argv[1].split(",") if m in sys.modules)
print(json.dumps({"seconds": seconds, "modules": len(sys.modules), "heavy": heavy}))
"""

WARM = """
import gc, json, os, statistics, sys, time
import api.wsgi
gc.freeze()
samples = []
for _ in range(int(sys.argv[1])):
    read, write = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        api.wsgi.after_fork()
        os.write(write, b"1")
        os._exit(0)
    os.read(read, 1)
    samples.append(time.perf_counter() - started)
    os.waitpid(pid, 0)
    os.close(read); os.close(write)
print(json.dumps({"samples": samples}))
"""


EXIT = """
import gc, json, os, sys
import api.wsgi
gc.freeze()
out = {}
for fast in (False, True):
    cpu, faults = [], []
    for _ in range(int(sys.argv[1])):
        pid = os.fork()
        if pid == 0:
            api.wsgi.after_fork()
            if fast:
                api.wsgi.before_exit()
                os._exit(0)
            sys.exit(0)
        _, _, usage = os.wait4(pid, 0)
        cpu.append(usage.ru_utime + usage.ru_stime)
        faults.append(usage.ru_minflt)
    out["fast" if fast else "teardown"] = {"cpu": cpu, "faults": faults}
print(json.dumps(out))
"""


def run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env={**os.environ, **ENV},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def interpreter_start(runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--forks", type=int, default=50)
    args = parser.parse_args()
    cold = [run(COLD, ",".join(HEAVY)) for _ in range(args.runs)]
    seconds = sorted(c["seconds"] for c in cold)
    warm = sorted(run(WARM, str(args.forks))["samples"])
    python = interpreter_start(min(args.runs, 5))
    leaving = run(EXIT, str(max(5, args.forks // 5)))
    exit_cpu = {k: statistics.median(v["cpu"]) for k, v in leaving.items()}
    exit_faults = {k: statistics.median(v["faults"]) for k, v in leaving.items()}
    ms = lambda s: f"{s * 1000:,.1f} ms"  # noqa: E731
    heavy = cold[0]["heavy"]
    body = f"""
| step | median | fastest / slowest | |
|---|---|---|---|
| cold: `import api.wsgi` (imports + `create_app`) in a fresh interpreter, {args.runs} runs | **{ms(statistics.median(seconds))}** | {ms(seconds[0])} / {ms(seconds[-1])} | {cold[0]['modules']:,} modules; heavy ones loaded: {', '.join(heavy) or 'none'} |
| warm: fork of a built app until `after_fork` has run, {args.forks} forks | **{ms(statistics.median(warm))}** | {ms(warm[0])} / {ms(warm[-1])} | what `preload_app` gives every worker, replacements included |
| (the interpreter's own start, `python -c pass`) | {ms(python)} | | paid by a cold worker on top |
| leaving, with the interpreter's teardown: CPU of the exiting worker | {ms(exit_cpu['teardown'])} | | {exit_faults['teardown']:,.0f} page faults (pages copied from the master) |
| leaving as shipped (`worker_exit`: close connections, `os._exit`) | **{ms(exit_cpu['fast'])}** | | {exit_faults['fast']:,.0f} page faults |

Cold is what a recycled worker cost before `preload_app` (its imports ran on a core the other
workers were using); warm is what it costs now, and leaving as shipped is what the worker it
replaces costs on its way out. `create_app` opens no connection, so neither figure
includes one: a worker connects to the database and Redis on its first request that needs them.
"""
    write_section("boot", "Web worker boot", body,
                  command=f"python -m bench.boot --runs {args.runs} --forks {args.forks}")


if __name__ == "__main__":
    main()
