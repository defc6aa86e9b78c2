"""Temporary files of the ETL (the CSV each chunk hands to LOAD DATA): private, and never left behind.

They hold person-level rows, so they are created mode 0600 (tempfile.mkstemp) and their names carry
the writing process's pid: a SIGKILLed process skips its `finally`, and the sweep that every worker
runs when it starts removes the files of processes that no longer exist.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from shared.heartbeat import pid_alive

TEMP_PREFIX = "nhis-chunk-"


def sweep_temp_files(folder: str | None = None) -> int:
    """Remove temporary chunk CSVs left by processes that died; returns how many."""
    removed = 0
    for path in Path(folder or tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*.csv"):
        pid_text = path.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if pid_text.isdigit() and pid_alive(int(pid_text)):
            continue
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
    return removed

