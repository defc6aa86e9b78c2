"""Read any NHIS health-screening release, as published, into the canonical frame.

Design (why it is fast and why nothing is lost):
- Only the header line is decoded (cp949 / UTF-8); the body of a real file is ASCII, so it is
  split into lines with numpy and parsed by pyarrow as bytes. Lines that contain a quote or a
  non-ASCII byte (rare) take a slow, exact path through the ``csv`` module.
- A file is cut into newline-aligned byte ranges (a newline byte never sits inside a cp949,
  EUC-KR or UTF-8 character), so each range can be read on its own by seek + read.
- Every non-blank data line ends up in ``frame`` or in ``rejects`` with ``whole_row=True``:
  ``len(frame) + whole-row rejects == lines_read``. Blank lines (zero length once a trailing CR is
  removed) are not data lines and are not counted. A cell that cannot be trusted becomes NaN and
  gets a ``whole_row=False`` note; the rest of its row is kept.
- A file with a header and no data lines raises :class:`EmptyFileError` (an upload with no rows is
  almost always a mistake, and the ETL should say so rather than "succeed" with 0 rows).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from shared.data.catalog import (
    BY_NAME,
    CANONICAL_COLUMNS,
    REQUIRED_COLUMNS,
    guess_style,
    match_header,
)

log = logging.getLogger(__name__)

HEAD_BYTES = 64 * 1024  # the header must fit in this; real headers are ~500 bytes
PLAN_BLOCK = 4 * 1024 * 1024
REJECT_COLUMNS = ("line_no", "column", "reason", "raw_value", "whole_row")
MAX_RAW = 200  # raw_value of a whole bad line is cut to this many characters

_NL, _CR, _QUOTE, _COMMA = 10, 13, 34, 44


# --- errors --------------------------------------------------------------------------------------


class ReaderError(Exception):
    """A file the reader cannot take; the message is meant for the person who uploaded it."""


class EmptyFileError(ReaderError):
    """The file is empty, or has a header and no data lines."""


class NotCsvError(ReaderError):
    """Binary data, an archive, or text without a recognisable NHIS header."""


class EncodingError(ReaderError):
    """The header is neither UTF-8 nor CP949/EUC-KR."""


class MissingColumnsError(ReaderError):
    """Required columns are absent; ``missing`` lists their canonical names."""

    def __init__(self, missing: list[str], message: str | None = None):
        self.missing = list(missing)
        if message is None:
            spelled = "; ".join(f"{m} (e.g. {' / '.join(BY_NAME[m].headers[:2])})" for m in self.missing)
            message = f"required columns missing: {spelled}"
        super().__init__(message)


# --- layout --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileLayout:
    """What inspect_file learned from the first part of a file; enough to read any byte range."""

    path: str
    size: int
    encoding: str  # 'utf-8-sig' | 'utf-8' | 'cp949'
    header_bytes: int  # offset of the first data byte
    newline: bytes  # b'\r\n' or b'\n', as seen on the header line
    columns: tuple[str | None, ...]  # canonical name (or None = ignored) per file position
    raw_headers: tuple[str, ...]
    unknown_columns: tuple[str, ...]
    style: str | None
    n_fields: int


@dataclass(frozen=True)
class ByteRange:
    """Newline-aligned slice [start, end) of a file holding n_lines physical lines."""

    index: int
    start: int
    end: int
    first_line_no: int
    n_lines: int


@dataclass
class ChunkResult:
    frame: pd.DataFrame
    rejects: pd.DataFrame
    lines_read: int


def inspect_file(path: str | os.PathLike) -> FileLayout:
    """Detect encoding, newline and column mapping from the header; raises ReaderError subclasses."""
    path = os.fspath(path)
    name = Path(path).name
    size = os.path.getsize(path)
    if size == 0:
        raise EmptyFileError(f"{name}: the file is empty")
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    _refuse_binary(name, head)

    bom = head.startswith(codecs.BOM_UTF8)
    start = len(codecs.BOM_UTF8) if bom else 0
    nl = head.find(b"\n", start)
    if nl < 0:
        if size > len(head):
            raise NotCsvError(f"{name}: no line break in the first {HEAD_BYTES // 1024} KiB; not a CSV file")
        header_end = size
        line = head[start:]
    else:
        header_end = nl + 1
        line = head[start:nl]
    newline = b"\r\n" if line.endswith(b"\r") else b"\n"
    line = line.rstrip(b"\r")
    if not line.strip():
        raise NotCsvError(f"{name}: the first line is blank; expected the NHIS header")

    encoding, text = _decode_header(name, line, bom)
    raw_headers = tuple(next(csv.reader([text])))
    columns, unknown = _map_columns(raw_headers)
    if not any(columns):
        raise NotCsvError(f"{name}: no recognisable NHIS header in the first line{_separator_hint(text)}")
    if unknown:
        log.warning("%s: ignoring unknown columns: %s", name, ", ".join(unknown))
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise MissingColumnsError(missing, f"{name}: " + str(MissingColumnsError(missing)))
    rest_in_head = head[header_end:]
    if header_end >= size or (size <= len(head) and not rest_in_head.strip()):
        raise EmptyFileError(f"{name}: the file has a header but no data lines")
    return FileLayout(
        path=path,
        size=size,
        encoding=encoding,
        header_bytes=header_end,
        newline=newline,
        columns=columns,
        raw_headers=raw_headers,
        unknown_columns=tuple(unknown),
        style=guess_style(raw_headers),
        n_fields=len(raw_headers),
    )


def _refuse_binary(name: str, head: bytes) -> None:
    if head.startswith(b"PK\x03\x04"):
        raise NotCsvError(f"{name}: this is a ZIP archive; unzip it and give the CSV inside")
    if head.startswith(b"\x1f\x8b"):
        raise NotCsvError(f"{name}: this is a gzip archive; decompress it first")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise NotCsvError(f"{name}: UTF-16 text is not supported; save it as UTF-8 or CP949")
    if b"\x00" in head:
        raise NotCsvError(f"{name}: binary data (NUL bytes), not a CSV file")


def _decode_header(name: str, line: bytes, bom: bool) -> tuple[str, str]:
    if bom:
        try:
            return "utf-8-sig", line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EncodingError(f"{name}: has a UTF-8 BOM but the header is not valid UTF-8") from exc
    for encoding in ("utf-8", "cp949"):
        try:
            return encoding, line.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise EncodingError(f"{name}: the header is neither UTF-8 nor CP949/EUC-KR text")


def _map_columns(raw_headers: tuple[str, ...]) -> tuple[tuple[str | None, ...], list[str]]:
    columns: list[str | None] = []
    unknown: list[str] = []
    for raw in raw_headers:
        canonical = match_header(raw)
        if canonical is not None and canonical in columns:
            log.warning("duplicate column %r (already have %s): ignored", raw, canonical)
            canonical = None
        if canonical is None:
            unknown.append(raw)
        columns.append(canonical)
    return tuple(columns), unknown


def _separator_hint(text: str) -> str:
    for sep, label in (("\t", "tab"), (";", "';'"), ("|", "'|'")):
        if sep in text and "," not in text:
            return f" (fields look {label}-separated; only comma-separated files are supported)"
    return ""


# --- planning ------------------------------------------------------------------------------------


def plan_ranges(layout: FileLayout, target_rows: int = 50_000) -> list[ByteRange]:
    """Cut [header_bytes, size) into newline-aligned ranges of ~target_rows physical lines.

    Streams the file in 4 MiB blocks counting newlines, so memory stays bounded. A last line
    without a trailing newline counts as a line.
    """
    if target_rows < 1:
        raise ValueError("target_rows must be >= 1")
    ranges: list[ByteRange] = []
    range_start = layout.header_bytes
    first_line = 2
    in_range = 0
    pos = layout.header_bytes
    last_byte = _NL
    with open(layout.path, "rb") as fh:
        fh.seek(pos)
        while pos < layout.size:
            block = fh.read(min(PLAN_BLOCK, layout.size - pos))
            if not block:
                break
            last_byte = block[-1]
            count = block.count(b"\n")
            if in_range + count >= target_rows:
                nl = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == _NL)
                i = 0
                while in_range + (len(nl) - i) >= target_rows:
                    take = target_rows - in_range
                    end = pos + int(nl[i + take - 1]) + 1
                    ranges.append(ByteRange(len(ranges), range_start, end, first_line, target_rows))
                    first_line += target_rows
                    range_start, i, in_range = end, i + take, 0
                in_range += len(nl) - i
            else:
                in_range += count
            pos += len(block)
    if range_start < pos:
        n_lines = in_range + (0 if last_byte == _NL else 1)
        ranges.append(ByteRange(len(ranges), range_start, pos, first_line, n_lines))
    return ranges


# --- reading -------------------------------------------------------------------------------------


def read_range(layout: FileLayout, byte_range: ByteRange, expected_year: int | None = None) -> ChunkResult:
    """Read and type one byte range (seek + read of that range only)."""
    with open(layout.path, "rb") as fh:
        fh.seek(byte_range.start)
        data = fh.read(byte_range.end - byte_range.start)
    return parse_bytes(layout, data, byte_range.first_line_no, expected_year)


def iter_chunks(
    path: str | os.PathLike, target_rows: int = 50_000, expected_year: int | None = None
) -> Iterator[ChunkResult]:
    """The whole file, one range at a time (bounded memory)."""
    layout = inspect_file(path)
    for byte_range in plan_ranges(layout, target_rows):
        yield read_range(layout, byte_range, expected_year)


def parse_bytes(
    layout: FileLayout, data: bytes, first_line_no: int, expected_year: int | None = None
) -> ChunkResult:
    """Parse newline-aligned body bytes whose first line is physical line ``first_line_no``."""
    lines = _split_lines(data)
    line_nos = first_line_no + np.arange(len(lines.starts), dtype=np.int64)
    notes = _Notes()

    good = lines.fast
    try:  # common case: every clean line has the right field count and numeric cells
        values, raw_bad, release = _read_fast(layout, _select_lines(data, lines, good), typed_only=True)
    except pa.ArrowInvalid:  # find the lines with a wrong field count, then read cells as text
        bad_count = good & (_comma_counts(data, lines) != layout.n_fields - 1)
        for i in np.flatnonzero(bad_count):
            notes.whole(line_nos[i], None, "field_count", _raw_line(data, lines, i, layout.encoding))
        good = good & ~bad_count
        values, raw_bad, release = _read_fast(layout, _select_lines(data, lines, good), typed_only=False)
    row_lines = line_nos[good]
    slow_idx = np.flatnonzero(lines.special)
    if len(slow_idx):
        slow_rows, slow_lines = _read_slow(layout, data, lines, slow_idx, line_nos, notes)
        if slow_rows:
            values, raw_bad, release, row_lines = _append_slow(
                layout, values, raw_bad, release, row_lines, slow_rows, slow_lines
            )
    frame, rejects = _validate(values, raw_bad, release, row_lines, expected_year, notes)
    return ChunkResult(frame=frame, rejects=rejects, lines_read=int((~lines.blank).sum()))


@dataclass
class _Lines:
    starts: np.ndarray  # first byte of each line
    ends: np.ndarray  # one past the last content byte (CR and LF excluded)
    spans: np.ndarray  # bytes from start to the start of the next line (incl. newline)
    blank: np.ndarray
    special: np.ndarray  # has a quote or a non-ASCII byte: exact slow path
    fast: np.ndarray


def _split_lines(data: bytes) -> _Lines:
    arr = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(arr == _NL)
    ends = nl
    if len(arr) and arr[-1] != _NL:
        ends = np.append(nl, len(arr))
    starts = np.empty(len(ends), dtype=np.int64)
    if len(ends):
        starts[0] = 0
        starts[1:] = nl[: len(ends) - 1] + 1
    spans = np.minimum(ends + 1, len(arr)) - starts
    nonempty = ends > starts
    cr = np.zeros(len(ends), dtype=bool)
    cr[nonempty] = arr[ends[nonempty] - 1] == _CR
    ends = ends - cr
    blank = ends == starts
    special = np.zeros(len(ends), dtype=bool)
    if not data.isascii() or b'"' in data:  # rare: find the lines concerned
        odd = np.flatnonzero((arr == _QUOTE) | (arr >= 0x80))
        special[np.searchsorted(starts, odd, side="right") - 1] = True
        special &= ~blank
    return _Lines(starts, ends, spans, blank, special, ~blank & ~special)


def _comma_counts(data: bytes, lines: _Lines) -> np.ndarray:
    commas_at = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == _COMMA)
    return np.searchsorted(commas_at, lines.ends) - np.searchsorted(commas_at, lines.starts)


def _select_lines(data: bytes, lines: _Lines, keep: np.ndarray) -> bytes:
    if keep.all():
        return data if not len(data) or data.endswith(b"\n") else data + b"\n"
    if not keep.any():
        return b""
    arr = np.frombuffer(data, dtype=np.uint8)
    mask = np.repeat(keep, lines.spans)
    out = arr[: len(mask)][mask].tobytes()
    return out if out.endswith(b"\n") else out + b"\n"


def _raw_line(data: bytes, lines: _Lines, i: int, encoding: str) -> str:
    raw = data[lines.starts[i] : lines.ends[i]]
    return raw.decode("utf-8" if encoding == "utf-8-sig" else encoding, errors="replace")[:MAX_RAW]


def _field_names(layout: FileLayout) -> list[str]:
    return [f"f{i}" for i in range(layout.n_fields)]


def _read_fast(
    layout: FileLayout, body: bytes, typed_only: bool
) -> tuple[dict[str, np.ndarray], dict[str, dict[int, str]], np.ndarray]:
    """pyarrow-parse clean ASCII lines. Returns float columns, unparseable raw text, release dates."""
    names = _field_names(layout)
    wanted = {names[i]: c for i, c in enumerate(layout.columns) if c is not None}
    if not body:
        return ({c: np.empty(0) for c in wanted.values() if c != "release_date"}, {}, np.empty(0, dtype=object))
    types = {f: (pa.string() if c == "release_date" else pa.float64()) for f, c in wanted.items()}
    read = pacsv.ReadOptions(column_names=names, use_threads=False, block_size=max(1 << 20, len(body) + 1))
    parse = pacsv.ParseOptions(delimiter=",", quote_char=False)
    try:
        table = pacsv.read_csv(
            pa.py_buffer(body), read_options=read, parse_options=parse,
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=list(wanted), null_values=[""], strings_can_be_null=True
            ),
        )
        typed = True
    except pa.ArrowInvalid:  # wrong field count or a cell that is not a number
        if typed_only:
            raise
        table = pacsv.read_csv(
            pa.py_buffer(body), read_options=read, parse_options=parse,
            convert_options=pacsv.ConvertOptions(
                column_types={f: pa.string() for f in wanted}, include_columns=list(wanted),
                null_values=[""], strings_can_be_null=True,
            ),
        )
        typed = False
    n = table.num_rows
    values: dict[str, np.ndarray] = {}
    raw_bad: dict[str, dict[int, str]] = {}
    release = np.full(n, None, dtype=object)
    for field, canonical in wanted.items():
        col = table.column(field)
        if canonical == "release_date":
            release = col.to_numpy(zero_copy_only=False).astype(object)
            continue
        if typed:
            arr = col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            nan_text = np.isnan(arr) & ~col.is_null().to_numpy(zero_copy_only=False)
            if nan_text.any():  # a literal 'nan' parsed by Arrow: not a value
                raw_bad[canonical] = {int(i): "nan" for i in np.flatnonzero(nan_text)}
            values[canonical] = arr
        else:
            values[canonical], bad = _text_to_float(col.to_numpy(zero_copy_only=False))
            if bad:
                raw_bad[canonical] = bad
    return values, raw_bad, release


def _text_to_float(text: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """Convert strings (None = empty) to float64; non-empty text that is not a number is reported."""
    series = pd.Series(text, dtype=object)
    stripped = series.str.strip()
    stripped = stripped.where(stripped != "", None)
    numbers = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(np.isnan(numbers) & stripped.notna().to_numpy())
    return numbers, {int(i): str(text[i])[:MAX_RAW] for i in bad}


def _read_slow(
    layout: FileLayout, data: bytes, lines: _Lines, idx: np.ndarray, line_nos: np.ndarray, notes: _Notes
) -> tuple[list[list[str]], list[int]]:
    """Exact path for lines with quotes or non-ASCII bytes: decode, csv-split, count fields."""
    encoding = "utf-8" if layout.encoding == "utf-8-sig" else layout.encoding
    rows: list[list[str]] = []
    row_lines: list[int] = []
    for i in idx:
        raw = data[lines.starts[i] : lines.ends[i]]
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            notes.whole(line_nos[i], None, "undecodable", raw.decode(encoding, errors="replace")[:MAX_RAW])
            continue
        try:
            fields = next(csv.reader([text]))
        except csv.Error:
            fields = []
        if len(fields) != layout.n_fields:
            notes.whole(line_nos[i], None, "field_count", text[:MAX_RAW])
            continue
        rows.append(fields)
        row_lines.append(int(line_nos[i]))
    return rows, row_lines


def _append_slow(layout, values, raw_bad, release, row_lines, slow_rows, slow_lines):
    n_fast = len(row_lines)
    matrix = np.array(slow_rows, dtype=object)
    for pos, canonical in enumerate(layout.columns):
        if canonical is None:
            continue
        text = matrix[:, pos]
        text = np.where(text == "", None, text)
        if canonical == "release_date":
            release = np.concatenate([release, text.astype(object)])
            continue
        numbers, bad = _text_to_float(text)
        values[canonical] = np.concatenate([values[canonical], numbers])
        if bad:
            raw_bad.setdefault(canonical, {}).update({n_fast + k: v for k, v in bad.items()})
    all_lines = np.concatenate([row_lines, np.asarray(slow_lines, dtype=np.int64)])
    if "release_date" not in layout.columns:
        release = np.full(len(all_lines), None, dtype=object)
    order = np.argsort(all_lines, kind="stable")
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    values = {c: v[order] for c, v in values.items()}
    raw_bad = {c: {int(inverse[k]): v for k, v in d.items()} for c, d in raw_bad.items()}
    return values, raw_bad, release[order], all_lines[order]


# --- validation ----------------------------------------------------------------------------------


class _Notes:
    """Collects reject records; whole-row ones are one per rejected line."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str | None, str, str | None, bool]] = []

    def whole(self, line_no, column, reason, raw) -> None:
        self.rows.append((int(line_no), column, reason, raw, True))

    def cell(self, line_no, column, reason, raw) -> None:
        self.rows.append((int(line_no), column, reason, raw, False))

    def frame(self) -> pd.DataFrame:
        if not self.rows:
            return _empty_rejects()
        line_no, column, reason, raw, whole = zip(*self.rows, strict=True)
        out = pd.DataFrame(
            {
                "line_no": np.asarray(line_no, dtype=np.int64),
                "column": pd.Series(column, dtype=object),
                "reason": pd.Series(reason, dtype=object),
                "raw_value": pd.Series(raw, dtype=object),
                "whole_row": np.asarray(whole, dtype=bool),
            }
        )
        return out.sort_values(["line_no", "whole_row"], ascending=[True, False], kind="stable").reset_index(
            drop=True
        )


def _empty_rejects() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line_no": np.empty(0, dtype=np.int64),
            "column": pd.Series([], dtype=object),
            "reason": pd.Series([], dtype=object),
            "raw_value": pd.Series([], dtype=object),
            "whole_row": np.empty(0, dtype=bool),
        }
    )


def format_number(value: float) -> str:
    """Text for a parsed number in a reject note: 999.0 -> '999', 8.7 -> '8.7'."""
    if np.isfinite(value) and value == int(value):
        return str(int(value))
    return repr(float(value))


def _validate(values, raw_bad, release, row_lines, expected_year, notes: _Notes):
    n = len(row_lines)
    keep = np.ones(n, dtype=bool)

    for name in REQUIRED_COLUMNS:
        spec = BY_NAME[name]
        v = values[name]
        nan = np.isnan(v)
        nonint = v != np.floor(v)  # False for NaN
        if spec.codes is not None:
            bad_value = ~nan & ~np.isin(v, spec.codes)
            bad_reason = "bad_code"
            nonint = np.zeros(n, dtype=bool)  # 1.5 is a bad code, reported below
        else:
            lo, hi = spec.bounds
            bad_value = (v < lo) | (v > hi)
            bad_reason = "out_of_range"
        if not (nan.any() or nonint.any() or bad_value.any()):
            continue
        unparseable = np.zeros(n, dtype=bool)
        if raw_bad.get(name):
            unparseable[list(raw_bad[name])] = True
        for mask, reason in ((nan & ~unparseable, "missing"), (unparseable | nonint, "unparseable"),
                             (bad_value, bad_reason)):
            hit = np.flatnonzero(mask & keep)
            for i in hit:
                raw = raw_bad.get(name, {}).get(int(i))
                notes.whole(row_lines[i], name, reason, raw if raw is not None else _fmt_or_none(v[i]))
            keep[hit] = False

    if expected_year is not None:
        hit = np.flatnonzero(keep & (values["year"] != expected_year))
        for i in hit:
            notes.whole(row_lines[i], "year", "year_mismatch", format_number(values["year"][i]))
        keep[hit] = False

    kept_idx = np.flatnonzero(keep)
    dup = pd.Series(values["subscriber_id"][kept_idx]).duplicated(keep="first").to_numpy()
    for i in kept_idx[dup]:
        notes.whole(row_lines[i], "subscriber_id", "duplicate_id", format_number(values["subscriber_id"][i]))
    keep[kept_idx[dup]] = False

    out: dict[str, object] = {}
    for name in CANONICAL_COLUMNS:
        spec = BY_NAME[name]
        if name == "release_date":
            # object dtype on purpose: pandas 3 would otherwise infer its own string dtype
            out[name] = pd.Series(_release_dates(release[keep], row_lines[keep], notes), dtype=object)
        elif spec.required:
            out[name] = values[name][keep].astype(np.int64)
        elif name not in values:
            out[name] = np.full(int(keep.sum()), np.nan)
        else:
            out[name] = _check_cells(spec, values[name], raw_bad.get(name, {}), keep, row_lines, notes)
    out["line_no"] = row_lines[keep].astype(np.int64)
    return pd.DataFrame(out), notes.frame()


def _fmt_or_none(value: float) -> str | None:
    return None if np.isnan(value) else format_number(value)


def _check_cells(spec, v, bad_text: dict[int, str], keep, row_lines, notes: _Notes) -> np.ndarray:
    """Blank cells that are unparseable, sentinels, bad codes or out of bounds; note each one."""
    present = ~np.isnan(v)
    checks: list[tuple[np.ndarray, str]] = []
    if spec.sentinels:
        checks.append((present & np.isin(v, spec.sentinels), "sentinel"))
    if spec.codes is not None:
        checks.append((present & ~np.isin(v, spec.codes), "bad_code"))
    if spec.bounds is not None:
        lo, hi = spec.bounds
        outside = (v < lo) | (v > hi)
        if spec.special_values:
            outside &= ~np.isin(v, spec.special_values)
        checks.append((outside, "out_of_range"))
    for i, raw in bad_text.items():
        if keep[i]:
            notes.cell(row_lines[i], spec.name, "unparseable", raw)
    if not any(mask.any() for mask, _ in checks):
        return v[keep]
    v = v.copy()
    done = np.zeros(len(v), dtype=bool)
    for mask, reason in checks:
        hit = np.flatnonzero(mask & keep & ~done)
        for i in hit:
            notes.cell(row_lines[i], spec.name, reason, format_number(v[i]))
        done[hit] = True
    v[done] = np.nan
    return v[keep]


def _release_dates(text: np.ndarray, row_lines: np.ndarray, notes: _Notes) -> np.ndarray:
    """'20181126' / '2021-12-29' / '2021.12.29' -> '2021-12-29'; anything else -> None + note."""
    out = np.full(len(text), None, dtype=object)
    if not len(text):
        return out
    codes, uniques = pd.factorize(pd.Series(text, dtype=object), use_na_sentinel=True)
    parsed = [_parse_date(u) for u in uniques]
    for k, (raw, iso) in enumerate(zip(uniques, parsed, strict=True)):
        where = np.flatnonzero(codes == k)
        out[where] = iso
        if iso is None:
            for i in where:
                notes.cell(row_lines[i], "release_date", "unparseable", str(raw)[:MAX_RAW])
    return out


def _parse_date(raw: str) -> str | None:
    text = str(raw).strip()
    if text.endswith(".0"):
        text = text[:-2]
    digits = text.replace("-", "").replace(".", "").replace("/", "")
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:])).isoformat()
    except ValueError:
        return None
