"""Write one benchmark's figures into its own section of docs/PERFORMANCE.md.

Each benchmark owns the block between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` so
re-running one benchmark never clobbers another's figures.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import statistics
import sys
from pathlib import Path

PERF_DOC = Path(__file__).resolve().parent.parent / "docs" / "PERFORMANCE.md"
HEADER = """# Performance

Figures written by the scripts in `bench/` (each owns one section below; re-run it to refresh it).
The machine is small, shared and noisy (2 cores): figures are medians of repeated runs, and
comparisons are ratios measured side by side in the same run.
"""


def machine_line() -> str:
    cores = os.cpu_count()
    try:
        import psutil

        mem = f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    except Exception:  # psutil is a dependency, but a report must never fail on it
        mem = "? GiB"
    return f"{cores} cores, {mem}, {platform.system()} {platform.release()}, Python {platform.python_version()} (shared, noisy)"


def median(values):
    return statistics.median(values)


def write_section(name: str, title: str, body: str, command: str | None = None) -> None:
    """Replace (or append) the section owned by benchmark ``name``."""
    if command is None:  # under `python -m bench.x` argv[0] is the file's absolute path: name the module
        module = "bench." + Path(sys.argv[0]).stem if sys.argv and sys.argv[0].endswith(".py") else sys.argv[0]
        command = " ".join(["python -m", module, *sys.argv[1:]])
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"- command: `{command}`\n- machine: {machine_line()}\n- date: {stamp}\n\n"
        f"{body.strip()}\n<!-- /bench:{name} -->"
    )
    PERF_DOC.parent.mkdir(parents=True, exist_ok=True)
    text = PERF_DOC.read_text(encoding="utf-8") if PERF_DOC.exists() else HEADER
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    PERF_DOC.write_text(text, encoding="utf-8")
    print(block)
