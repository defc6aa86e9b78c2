"""Partial aggregates: what one ETL chunk contributes to the statistics, in a few hundred KB.

Why: statistics must be served warm and a full refresh over 1,000,000 rows must take seconds, so
no refresh ever reads people. Each chunk (~50k rows) is reduced once, when it is loaded, to two
small tables whose every number is a *sum* over people; a refresh sums the partials of a year's
current job (``merge_partials``) and ``shared.stats.payloads`` builds every payload from that.

The two tables (see :class:`Aggregates`):

* ``counts`` - wide, one row per cell ``(year, sex, age_group, province)``; province ``-1`` means
  unknown (NaN in the file). Columns, all int64 sums over the people of the cell:

  - ``people``; ``rf_sum`` (sum of the screening risk-factor count over everyone: unknown factors count 0);
  - ``{flag}:measured`` and ``{flag}:positive`` for every tri-state flag (NA = not measured);
  - ``{column}={value}`` for every categorical column (the risk groupings, the categories, smoking,
    drinking; numeric codes are written as integers, e.g. ``smoking=3``). Nulls are not counted,
    so ``n_measured`` of a category is the sum of its value columns.
  - the *complete panel* of every rule (people with every input of the rule measured, the rule
    table's ``RULE_INPUTS``; ``sex`` and ``age_group`` are always known): ``{rule}@panel`` (how many), ``{flag}@panel:measured`` and
    ``{flag}@panel:positive``, ``{column}@panel={value}``, and ``rf_sum@panel`` (risk_factor_count
    summed over the risk grouping's panel, where it is exact);
  - ``panel_counted``: people whose chunk counted panels (partials written before panels existed
    lack them; the statistics then say the complete-panel view needs a reload of that year).

  Value columns exist only where a value occurred; a missing column means 0.

* ``hist`` - long histograms ``(year, sex, age_group, measure, bin, n)`` of every measurement
  (no province: nothing published needs percentiles by province). ``bin`` is the value at the
  measurement's resolution as an integer, ``round_half_even(value * scale)``, clipped to
  ``[lo * scale, hi * scale]`` (the tails pile into the edge bins). Resolution ``1 / scale`` is
  0.1 for waist, hemoglobin, creatinine, BMI and 10-year CVD risk (published or computed with a
  decimal) and 1 unit for everything else. Sums of bins over sex/age give exact roll-ups, and
  ``sum(n)`` is the non-null count.

Every possible bin of every measure has a fixed *slot* in a dense layout (~41k slots per
``(year, sex, age_group)`` cell, see ``BIN_OFFSETS``), so histograms are summed with
``np.bincount`` instead of a sort or hash: merging 20 partials of 50k rows takes 0.2-0.6 s even
with hundreds of thousands of occupied bins. Only occupied bins are stored.

Serialisation: ``MAGIC`` + 8-byte little-endian length + Arrow IPC stream of ``counts`` + Arrow
IPC stream of the histogram as ``(cell, slot, n)`` int32 columns (cell = (year * 4 + sex) * 32 +
age_group), zstd-compressed buffers. The layout (measure, scale, first and last bin) is stored in
the schema metadata; a partial written under another layout is re-binned on merge, and measures
no longer known are dropped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from shared.rules import CATEGORY_LEVELS, DERIVED_KINDS, RULE_INPUTS
from shared.rules.table import ATP3_RULE, SCREENING_GROUP_RULE

MAGIC = b"NHAG1"
UNKNOWN_PROVINCE = -1
CELL_KEYS = ("year", "sex", "age_group", "province")
HIST_KEYS = ("year", "sex", "age_group", "measure", "bin")


@dataclass(frozen=True)
class Measure:
    """How a measurement is binned: value ``bin / scale``; tails clipped into ``[lo, hi]``."""

    scale: int
    lo: float
    hi: float
    unit: str


# Bounds are the catalog's plausibility limits (wider for derived values), so clipping only
# touches values that should not exist; percentiles in the edge bins mean "<= lo" / ">= hi".
MEASURES: Mapping[str, Measure] = {
    "height_cm": Measure(1, 100, 250, "cm"),
    "weight_kg": Measure(1, 20, 300, "kg"),
    "waist_cm": Measure(10, 40, 200, "cm"),
    "sbp": Measure(1, 50, 300, "mmHg"),
    "dbp": Measure(1, 20, 200, "mmHg"),
    "fasting_glucose": Measure(1, 20, 990, "mg/dL"),
    "total_cholesterol": Measure(1, 30, 1500, "mg/dL"),
    "triglycerides": Measure(1, 5, 9000, "mg/dL"),
    "hdl": Measure(1, 5, 300, "mg/dL"),
    "ldl": Measure(1, 1, 1000, "mg/dL"),
    "hemoglobin": Measure(10, 3, 25, "g/dL"),
    "creatinine": Measure(10, 0.1, 20, "mg/dL"),
    "ast": Measure(1, 1, 9000, "IU/L"),
    "alt": Measure(1, 1, 9000, "IU/L"),
    "ggt": Measure(1, 1, 5000, "IU/L"),
    "bmi": Measure(10, 5, 100, "kg/m2"),
    "egfr": Measure(1, 0, 250, "mL/min/1.73m2"),
    "cvd_10y": Measure(10, 0, 100, "%"),
}
MEASURE_NAMES: tuple[str, ...] = tuple(MEASURES)



# The rule table owns which derived columns are flags and categories (one list, shared.rules).
RISK_GROUP_COLUMN: str = SCREENING_GROUP_RULE.column
RISK_COUNT_COLUMN: str = SCREENING_GROUP_RULE.count_column
# Risk groupings published side by side: the screening-flag count and the NCEP ATP III category.
RISK_GROUPINGS: tuple[str, ...] = (SCREENING_GROUP_RULE.column, ATP3_RULE.column)
FLAGS: tuple[str, ...] = tuple(c for c, kind in DERIVED_KINDS.items() if kind == "bool")
CATEGORIES: tuple[str, ...] = tuple(c for c, kind in DERIVED_KINDS.items()
                                    if kind == "category" and c not in RISK_GROUPINGS)
CODED: tuple[str, ...] = ("smoking", "drinking")  # numeric codes reported as distributions
RISK_GROUPS: tuple[str, ...] = CATEGORY_LEVELS[RISK_GROUP_COLUMN]
PANEL_SUFFIX = "@panel"


def rule_inputs(column: str) -> tuple[str, ...]:
    """Raw inputs a published column needs (a coded answer is its own input)."""
    if column in CODED:
        return (column,)
    return RULE_INPUTS.get(column, ())

# Dense layout of every possible bin of every measure (~41k slots per (year, sex, age) cell).
LO_BINS = np.array([round(m.lo * m.scale) for m in MEASURES.values()], np.int64)
HI_BINS = np.array([round(m.hi * m.scale) for m in MEASURES.values()], np.int64)
BIN_OFFSETS = np.concatenate([[0], np.cumsum(HI_BINS - LO_BINS + 1)[:-1]]).astype(np.int64)
TOTAL_BINS = int((HI_BINS - LO_BINS + 1).sum())
_LAYOUT = orjson.dumps([[k, m.scale, int(lo), int(hi)] for (k, m), lo, hi in
                        zip(MEASURES.items(), LO_BINS, HI_BINS, strict=True)]).decode()
_CELL_BATCH = 64  # (year, sex, age) cells summed per bincount: bounds the buffer to ~21 MB
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd" if pa.Codec.is_available("zstd") else None)


@dataclass(frozen=True)
class Aggregates:
    """Merged sums for one or more years (see the module docstring for the columns).

    ``counts``: DataFrame indexed by ``(year, sex, age_group, province)``, int64 columns.
    ``hist``: DataFrame with int64 columns ``year, sex, age_group, bin, n`` and a categorical
    ``measure`` (categories ``MEASURE_NAMES``), sorted by ``(year, sex, age_group, measure, bin)``.
    """

    counts: pd.DataFrame
    hist: pd.DataFrame

    @property
    def years(self) -> list[int]:
        return sorted(int(y) for y in self.counts.index.get_level_values("year").unique())


# --- one chunk ---------------------------------------------------------------------------------


def _int(frame: pd.DataFrame, column: str, fill: int = 0) -> np.ndarray:
    values = frame[column].to_numpy(dtype="float64", na_value=np.nan)
    return np.nan_to_num(values, nan=fill).astype(np.int64)


def _value_label(value: object) -> str:
    """Numeric codes as integers (smoking 3.0 -> "3"); strings as they are."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _measured(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.zeros(len(frame), dtype=bool)
    values = frame[column]
    if values.dtype == object:
        return values.notna().to_numpy()
    return np.isfinite(values.to_numpy(dtype="float64", na_value=np.nan))


def _panels(frame: pd.DataFrame, columns) -> dict[str, np.ndarray]:
    """Complete-panel mask of each column (every input measured); columns without inputs get none."""
    measured: dict[str, np.ndarray] = {}
    by_inputs: dict[tuple[str, ...], np.ndarray] = {}
    out = {}
    for column in columns:
        inputs = rule_inputs(column)
        if not inputs:
            continue
        if inputs not in by_inputs:
            mask = np.ones(len(frame), dtype=bool)
            for name in inputs:
                if name not in measured:
                    measured[name] = _measured(frame, name)
                mask &= measured[name]
            by_inputs[inputs] = mask
        out[column] = by_inputs[inputs]
    return out


def _count_table(frame: pd.DataFrame) -> pd.DataFrame:
    year = _int(frame, "year")
    sex = _int(frame, "sex")
    age = _int(frame, "age_group")
    province = _int(frame, "province", fill=UNKNOWN_PROVINCE)
    cell, uniques = pd.factorize(((year * 4 + sex) * 32 + age) * 1024 + (province + 1))
    g = len(uniques)
    u = np.asarray(uniques, dtype=np.int64)
    columns: dict[str, np.ndarray] = {
        "year": u // (4 * 32 * 1024),
        "sex": (u // (32 * 1024)) % 4,
        "age_group": (u // 1024) % 32,
        "province": u % 1024 - 1,
        "people": np.bincount(cell, minlength=g),
        "rf_sum": np.bincount(cell, weights=_int(frame, RISK_COUNT_COLUMN), minlength=g),
        "panel_counted": np.bincount(cell, minlength=g),
    }
    panels = _panels(frame, [c for c in (*FLAGS, *RISK_GROUPINGS, *CATEGORIES, *CODED) if c in frame])
    if RISK_GROUP_COLUMN in panels:
        in_panel = panels[RISK_GROUP_COLUMN]
        columns["rf_sum" + PANEL_SUFFIX] = np.bincount(cell[in_panel], weights=_int(frame, RISK_COUNT_COLUMN)[in_panel],
                                                       minlength=g)
    # One bincount per rule over (cell, state) instead of one per masked count: the chunk's hot loop.
    for flag in FLAGS:
        if flag not in frame:
            continue
        values = frame[flag].astype("boolean").to_numpy(dtype="float64", na_value=np.nan)
        in_panel = panels.get(flag)
        # state bits: 1 measured, 2 positive (implies measured), 4 in the complete panel
        state = (~np.isnan(values)).astype(np.int64) + 2 * (values == 1.0)
        if in_panel is not None:
            state += 4 * in_panel
        table = np.bincount(cell * 8 + state, minlength=g * 8).reshape(g, 8)
        columns[f"{flag}:measured"] = table[:, 1::2].sum(axis=1)
        columns[f"{flag}:positive"] = table[:, 3] + table[:, 7]
        if in_panel is not None:
            columns[flag + PANEL_SUFFIX] = table[:, 4:].sum(axis=1)
            columns[f"{flag}{PANEL_SUFFIX}:measured"] = table[:, 5] + table[:, 7]
            columns[f"{flag}{PANEL_SUFFIX}:positive"] = table[:, 7]
    for column in (*RISK_GROUPINGS, *CATEGORIES, *CODED):
        if column not in frame:
            continue
        codes, levels = pd.factorize(frame[column], use_na_sentinel=True)
        width = len(levels)
        in_panel = panels.get(column)
        # (cell, value or -1 for unknown, in the panel or not) in one pass
        slot = (codes + 1) * 2 + (in_panel if in_panel is not None else 0)
        table = np.bincount(cell * (2 * (width + 1)) + slot, minlength=g * 2 * (width + 1)).reshape(g, width + 1, 2)
        if in_panel is not None:
            columns[column + PANEL_SUFFIX] = table[:, :, 1].sum(axis=1)
        for j, level in enumerate(levels):
            columns[f"{column}={_value_label(level)}"] = table[:, j + 1, :].sum(axis=1)
        if in_panel is not None:
            for j, level in enumerate(levels):
                columns[f"{column}{PANEL_SUFFIX}={_value_label(level)}"] = table[:, j + 1, 1]
    return pd.DataFrame({k: np.asarray(v).astype(np.int64) for k, v in columns.items()})


def _sum_slots(
    cell: np.ndarray, slot: np.ndarray, n: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum ``n`` (or count rows) by (cell, slot) with bincount: slots are bounded, so no sort or
    hash is needed. ``cell`` = (year * 4 + sex) * 32 + age_group. Returns (cell, slot, n)."""
    if not len(cell):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    present = np.flatnonzero(np.bincount(cell))
    lookup = np.zeros(int(cell.max()) + 1, np.int64)
    lookup[present] = np.arange(len(present))
    dense_cell = lookup[cell]
    out_cell, out_slot, out_n = [], [], []
    for first in range(0, len(present), _CELL_BATCH):
        last = min(first + _CELL_BATCH, len(present))
        take = (dense_cell >= first) & (dense_cell < last) if len(present) > _CELL_BATCH else slice(None)
        index = (dense_cell[take] - first) * TOTAL_BINS + slot[take]
        sums = np.bincount(index, weights=None if n is None else n[take], minlength=(last - first) * TOTAL_BINS)
        hit = np.flatnonzero(sums)
        out_cell.append(present[first + hit // TOTAL_BINS])
        out_slot.append(hit % TOTAL_BINS)
        out_n.append(sums[hit].astype(np.int64))
    return np.concatenate(out_cell), np.concatenate(out_slot), np.concatenate(out_n)


def _decode(cell: np.ndarray, slot: np.ndarray, n: np.ndarray) -> pd.DataFrame:
    measure = np.searchsorted(BIN_OFFSETS, slot, side="right") - 1
    return pd.DataFrame(
        {
            "year": cell // 128,
            "sex": (cell // 32) % 4,
            "age_group": cell % 32,
            "measure": pd.Categorical.from_codes(measure, categories=MEASURE_NAMES),
            "bin": slot - BIN_OFFSETS[measure] + LO_BINS[measure],
            "n": n,
        }
    )


def _hist_slots(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cell = (_int(frame, "year") * 4 + _int(frame, "sex")) * 32 + _int(frame, "age_group")
    cells, slots = [], []
    for code, (name, spec) in enumerate(MEASURES.items()):
        if name not in frame:
            continue
        values = frame[name].to_numpy(dtype="float64", na_value=np.nan)
        known = np.isfinite(values)
        bins = np.clip(np.rint(values[known] * spec.scale), LO_BINS[code], HI_BINS[code]).astype(np.int64)
        cells.append(cell[known])
        slots.append(bins - LO_BINS[code] + BIN_OFFSETS[code])
    if not cells:
        return _sum_slots(np.zeros(0, np.int64), np.zeros(0, np.int64), None)
    return _sum_slots(np.concatenate(cells), np.concatenate(slots), None)


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def chunk_partial(frame: pd.DataFrame) -> bytes:
    """The partial aggregate of one evaluated chunk, as bytes for the ETL to store by the chunk."""
    counts = _count_table(frame)
    small = {"year": pa.int16(), "sex": pa.int8(), "age_group": pa.int8(), "province": pa.int16()}
    counts_table = pa.table(
        {c: pa.array(counts[c].to_numpy(), type=small.get(c, pa.int64())) for c in counts.columns}
    )
    cell, slot, n = _hist_slots(frame)
    hist_table = pa.table(
        {"cell": pa.array(cell, pa.int32()), "slot": pa.array(slot, pa.int32()), "n": pa.array(n, pa.int32())}
    ).replace_schema_metadata({"layout": _LAYOUT})
    first = _ipc(counts_table)
    return MAGIC + struct.pack("<Q", len(first)) + first + _ipc(hist_table)


# --- merging -----------------------------------------------------------------------------------


def _read(part: bytes) -> tuple[pa.Table, pa.Table]:
    if not part.startswith(MAGIC):
        raise ValueError("not a statistics partial (bad magic)")
    start = len(MAGIC) + 8
    (length,) = struct.unpack_from("<Q", part, len(MAGIC))
    view = memoryview(part)
    counts = pa.ipc.open_stream(view[start : start + length]).read_all()
    hist = pa.ipc.open_stream(view[start + length :]).read_all()
    return counts, hist


def _relayout(layout: bytes, slot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slots written under another MEASURES layout -> current slots (unknown measures dropped)."""
    old = orjson.loads(layout)
    lo = np.array([m[2] for m in old], np.int64)
    offsets = np.concatenate([[0], np.cumsum([m[3] - m[2] + 1 for m in old])[:-1]]).astype(np.int64)
    measure = np.searchsorted(offsets, slot, side="right") - 1
    value = (slot - offsets[measure] + lo[measure]) / np.array([m[1] for m in old], np.float64)[measure]
    target = np.array([MEASURE_NAMES.index(m[0]) if m[0] in MEASURES else -1 for m in old], np.int64)[measure]
    keep = target >= 0
    target = target[keep]
    scale = np.array([m.scale for m in MEASURES.values()], np.float64)[target]
    bins = np.clip(np.rint(value[keep] * scale), LO_BINS[target], HI_BINS[target]).astype(np.int64)
    return bins - LO_BINS[target] + BIN_OFFSETS[target], keep


def merge_partials(parts: Iterable[bytes]) -> Aggregates:
    """Sum partials (any years, any order): the result equals the partial of all their rows."""
    count_frames: list[pd.DataFrame] = []
    cells: list[np.ndarray] = []
    slots: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for part in parts:
        counts, hist = _read(part)
        if counts.num_rows:
            count_frames.append(counts.to_pandas())
        if not hist.num_rows:
            continue
        cell, slot, n = (hist.column(c).to_numpy() for c in ("cell", "slot", "n"))
        layout = (hist.schema.metadata or {}).get(b"layout", b"")
        if layout != _LAYOUT.encode():
            slot, keep = _relayout(layout, slot.astype(np.int64))
            cell, n = cell[keep], n[keep]
        cells.append(cell)
        slots.append(slot)
        weights.append(n)
    if count_frames:
        counts_df = pd.concat(count_frames, ignore_index=True).fillna(0)
        counts_df = counts_df.astype({k: np.int64 for k in CELL_KEYS})
        counts_df = counts_df.groupby(list(CELL_KEYS), sort=True).sum().astype(np.int64)
    else:
        counts_df = pd.DataFrame(
            {"people": np.zeros(0, np.int64), "rf_sum": np.zeros(0, np.int64)},
            index=pd.MultiIndex.from_arrays([np.zeros(0, np.int64)] * 4, names=list(CELL_KEYS)),
        )
    if cells:
        cell, slot, n = (np.concatenate(a) for a in (cells, slots, weights))
        sums = _sum_slots(cell.astype(np.int64), slot.astype(np.int64), n.astype(np.float64))
    else:
        sums = _sum_slots(np.zeros(0, np.int64), np.zeros(0, np.int64), None)
    return Aggregates(counts=counts_df, hist=_decode(*sums))
