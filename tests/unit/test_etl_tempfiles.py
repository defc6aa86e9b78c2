"""Temporary chunk CSVs hold person-level rows: private files, swept when their writer is gone."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pandas as pd

from shared.etl import sink
from shared.etl.tempfiles import TEMP_PREFIX, sweep_temp_files


def test_sweep_removes_files_of_dead_processes_only(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    orphan = tmp_path / f"{TEMP_PREFIX}{dead}-abc.csv"
    mine = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-def.csv"
    unrelated = tmp_path / "other.csv"
    for path in (orphan, mine, unrelated):
        path.write_text("x")
    assert sweep_temp_files(str(tmp_path)) == 1
    assert not orphan.exists() and mine.exists() and unrelated.exists()


def test_the_load_file_is_private_and_named_for_the_sweep(tmp_path, monkeypatch):
    seen = {}

    class Conn:
        dialect = type("D", (), {"name": "mysql"})()

        def exec_driver_sql(self, sql):
            if sql.startswith("LOAD DATA"):
                path = sql.split("'")[1]
                seen["mode"] = stat.S_IMODE(os.stat(path).st_mode)
                seen["name"] = os.path.basename(path)
                return None
            return type("R", (), {"scalar": lambda self: 0})()

    monkeypatch.setattr(sink.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(sink, "to_csv_bytes", lambda frame: b"1\n")
    sink._load_data_infile(Conn(), pd.DataFrame({"a": [1]}))
    assert seen["mode"] == 0o600
    assert seen["name"].startswith(f"{TEMP_PREFIX}{os.getpid()}-")
    assert list(tmp_path.iterdir()) == []  # removed after the load
