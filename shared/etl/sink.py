"""Write one chunk's rows into the screenings table by the fastest safe path per engine.

MySQL/MariaDB: LOAD DATA LOCAL INFILE from a temporary CSV written by pyarrow (`\\N` for NULL),
with REPLACE so reloading a year replaces its rows instead of duplicating them. SQLite:
executemany of INSERT OR REPLACE. Both run inside the caller's transaction.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Connection, insert

from shared.db.models import screenings
from shared.etl.tempfiles import TEMP_PREFIX

NULL = "\\N"

INT_COLUMNS = {c.name for c in screenings.columns if c.type.python_type is int}
BOOL_COLUMNS = {c.name for c in screenings.columns if c.type.python_type is bool}
LOAD_COLUMNS = tuple(c.name for c in screenings.columns)


def _arrow_column(series: pd.Series, name: str) -> pa.Array:
    if name in BOOL_COLUMNS:
        return pa.array(series.astype("Int8"), from_pandas=True)
    arr = pa.array(series, from_pandas=True)
    if pa.types.is_dictionary(arr.type):
        return arr.cast(pa.string())
    if pa.types.is_floating(arr.type):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        finite = values[~np.isnan(values)]
        # Integers format several times faster than doubles, and most published values are whole.
        if name in INT_COLUMNS or (np.abs(finite).max(initial=0) < 2**53 and np.all(finite == np.round(finite))):
            return pc.cast(arr, pa.int64())  # codes are integral; a fraction would raise here
    return arr


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    table = pa.table({name: _arrow_column(frame[name], name) for name in LOAD_COLUMNS})
    sink = pa.BufferOutputStream()
    options = pacsv.WriteOptions(include_header=False, quoting_style="none", null_string=NULL)
    pacsv.write_csv(table, sink, options)
    return sink.getvalue().to_pybytes()


def load_rows(conn: Connection, frame: pd.DataFrame) -> int:
    """Insert (or replace) the chunk's rows; returns the number of rows written."""
    if frame.empty:
        return 0
    if conn.dialect.name in ("mysql", "mariadb"):
        return _load_data_infile(conn, frame)
    return _executemany(conn, frame)


def _load_data_infile(conn: Connection, frame: pd.DataFrame) -> int:
    # mkstemp creates the file with mode 0600: the rows are person-level data
    fd, path = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(to_csv_bytes(frame))
        sql = (
            f"LOAD DATA LOCAL INFILE '{path}' REPLACE INTO TABLE screenings CHARACTER SET binary "
            "FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n' "
            f"({', '.join(LOAD_COLUMNS)})"
        )
        conn.exec_driver_sql(sql)
        warnings = conn.exec_driver_sql("SHOW COUNT(*) WARNINGS").scalar()
        if warnings:
            detail = conn.exec_driver_sql("SHOW WARNINGS LIMIT 3").fetchall()
            raise RuntimeError(f"LOAD DATA produced {warnings} warnings, e.g. {detail}")
    finally:
        os.unlink(path)
    return len(frame)


def _executemany(conn: Connection, frame: pd.DataFrame) -> int:
    data = frame[list(LOAD_COLUMNS)].astype(object)
    data = data.where(pd.notna(data), None)
    rows = [dict(zip(LOAD_COLUMNS, _plain(row), strict=True)) for row in data.itertuples(index=False)]
    conn.execute(insert(screenings).prefix_with("OR REPLACE"), rows)
    return len(rows)


def _plain(row) -> tuple:
    return tuple(v.item() if isinstance(v, np.generic) else v for v in row)

