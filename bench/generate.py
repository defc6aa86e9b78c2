"""Benchmark: generate 1,000,000 rows (2024 style, cp949) and read them back with the reader.

Each run happens in a child process so its peak RSS is its own (ru_maxrss of the child).
Run from the repository root: ``.venv/bin/python -m bench.generate``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

from bench.report import write_section

ROWS = 1_000_000
RUNS = 3

GENERATE = """
import json, resource, sys, time
from shared.data.generate import write_file
t = time.perf_counter()
write_file(sys.argv[1], {rows}, year=2024, seed=int(sys.argv[2]), style="2024", encoding="cp949")
s = time.perf_counter() - t
print(json.dumps({{"seconds": s, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

READ = """
import json, resource, sys, time
from shared.data.reader import inspect_file, plan_ranges, read_range
t = time.perf_counter()
layout = inspect_file(sys.argv[1])
ranges = plan_ranges(layout, 50_000)
t_plan = time.perf_counter() - t
rows = rejects = 0
per_range = []
for r in ranges:
    t0 = time.perf_counter()
    res = read_range(layout, r)
    per_range.append(time.perf_counter() - t0)
    rows += len(res.frame)
    rejects += len(res.rejects)
s = time.perf_counter() - t
per_range.sort()
print(json.dumps({"seconds": s, "plan": t_plan, "rows": rows, "rejects": rejects, "ranges": len(ranges),
                  "range_median": per_range[len(per_range) // 2],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "nhis_1m.csv")
        gens = [child(GENERATE.format(rows=ROWS), path, str(seed)) for seed in range(RUNS)]
        size_mb = os.path.getsize(path) / 2**20
        reads = [child(READ, path) for _ in range(RUNS)]
    g_med = statistics.median(g["seconds"] for g in gens)
    r_med = statistics.median(r["seconds"] for r in reads)
    body = f"""
| measurement | median of {RUNS} | runs | peak RSS (child) |
|---|---|---|---|
| generate {ROWS:,} rows, 2024 style, cp949 (`write_file`) | **{g_med:.2f} s** ({ROWS / g_med:,.0f} rows/s) | {" / ".join(f"{g['seconds']:.2f}" for g in gens)} s | {max(g['rss_mb'] for g in gens):.0f} MB |
| read it back: `inspect_file` + `plan_ranges(50k)` + `read_range` over all {reads[0]['ranges']} ranges, one process | **{r_med:.2f} s** ({ROWS / r_med:,.0f} rows/s) | {" / ".join(f"{r['seconds']:.2f}" for r in reads)} s | {max(r['rss_mb'] for r in reads):.0f} MB |
| of which `plan_ranges` (newline count) | {statistics.median(r['plan'] for r in reads):.2f} s | | |
| one 50k-row `read_range` (median range) | {statistics.median(r['range_median'] for r in reads) * 1000:.0f} ms | | |

File size {size_mb:.1f} MiB; rows read back {reads[0]['rows']:,}, reject notes {reads[0]['rejects']} (the injected garbage codes).
"""
    write_section("generate", "Synthetic data: generator and reader", body, command="python -m bench.generate")


if __name__ == "__main__":
    main()
