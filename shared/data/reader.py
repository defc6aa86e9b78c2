"""Read any NHIS health-screening release, as published, into the canonical frame.

Design (why it is fast, bounded and why nothing is lost):
- Only the header line is decoded (cp949 / UTF-8); the body of a real file is ASCII, so it is
  split into lines with numpy and parsed by pyarrow as bytes. Lines that contain a quote or a
  non-ASCII byte (rare) take a slow, exact path through the ``csv`` module.
- Planning is one streaming pass (:func:`scan_file`): it cuts the body into newline-aligned byte
  ranges (a newline byte never sits inside a cp949, EUC-KR or UTF-8 character) bounded by lines and
  by bytes, each with a CRC-32 of its bytes, and profiles the few columns whose meaning is decided
  once per file (duplicate ids, the age-band numbering, blank drinking cells, years). Memory stays
  bounded by the block size whatever the file: a line longer than ``max_line_bytes`` is never held
  whole, it becomes a one-line range read back as a ``line_too_long`` reject.
- Each range is read on its own (:func:`read_range`), with the planning decisions in
  :class:`ReadOptions`; a range whose bytes no longer match raises :class:`FileChangedError`.
- Bytes come from a :class:`shared.data.source.Source`: a local file (plain seek + read), or a URL
  read with byte-range requests, so a worker on any host reads only its own range.
- Every non-blank data line ends up in ``frame`` or in ``rejects`` with ``whole_row=True``:
  ``len(frame) + whole-row rejects == lines_read``. Blank lines (zero length once a trailing CR is
  removed) are not data lines and are not counted. A cell that cannot be trusted becomes NaN and
  gets a ``whole_row=False`` note; the rest of its row is kept.
- A file with a header and no data lines raises :class:`EmptyFileError` (an upload with no rows is
  almost always a mistake, and the ETL should say so rather than "succeed" with 0 rows).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import datetime as dt
import logging
import os
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from shared.data.catalog import (
    AGE_2013_OFFSET,
    AGE_CODES,
    AGE_SCHEME_2013,
    AGE_SCHEME_2014,
    AGE_SCHEMES,
    BY_NAME,
    CANONICAL_COLUMNS,
    LAST_2013_SCHEME_YEAR,
    REQUIRED_COLUMNS,
    canonical_province,
    guess_style,
    match_header,
)
from shared.data.source import Source, SourceChanged, SourceVersion, open_source

log = logging.getLogger(__name__)

HEAD_BYTES = 64 * 1024  # the header must fit in this; real headers are ~500 bytes
SCAN_BLOCK = 8 * 1024 * 1024  # bytes read at a time by the planning scan
MAX_LINE_BYTES = 64 * 1024  # a longer line is rejected whole without being read (real lines: ~100 B)
MAX_RANGE_BYTES = 16 * 1024 * 1024  # a range never holds more (1M real rows are ~95 MB: 50k rows ~5 MB)
REJECT_COLUMNS = ("line_no", "column", "reason", "raw_value", "whole_row")
FRAME_COLUMNS = (*CANONICAL_COLUMNS, "province_raw", "line_no")
MAX_RAW = 200  # raw_value of a whole bad line is cut to this many characters
_RAW_BYTES = 4 * MAX_RAW  # enough bytes for MAX_RAW characters in any supported encoding
_VERIFY_BLOCK = 1024 * 1024  # checksumming an oversized line reads it in blocks of this size

# Reject reasons that are sentences rather than codes (the others are listed in docs/DATA.md §3).
LINE_TOO_LONG = "line_too_long"
AGE_BAND_UNDER_20 = "age band code under 5 (ages 0-19) is not used from 2014"

# Drinking blanks: "does not drink" is read from a blank only when the file's non-blank cells hold
# (almost) no 0 at all but some 1, and blanks are common (docs/DATA.md, "Drinking blanks").
DRINKING_BLANK_MIN_SHARE = 0.10  # blanks among valid rows; normal releases have < 0.1 %
DRINKING_BLANK_MIN_COUNT = 100  # never decide from a handful of rows
DRINKING_ZERO_MAX_SHARE = 0.001  # 0s among non-blank cells; normal releases have ~50 %
# Age numbering: a file of 2013 or earlier is read with the 1-14 numbering unless more than this
# share of its codes are 15-18, which only the 5-18 numbering has (about a tenth of its rows).
AGE_2014_MAX_SHARE_IN_2013 = 0.001

_NL, _CR, _QUOTE, _COMMA = 10, 13, 34, 44
_PROFILE_COLUMNS = ("year", "subscriber_id", "sex", "age_group", "drinking")


def duplicate_reason(first_line_no: int) -> str:
    """The reject reason of a line whose subscriber id was already seen (same year)."""
    return f"duplicate subscriber id (first at line {int(first_line_no)})"


# --- errors --------------------------------------------------------------------------------------


class ReaderError(Exception):
    """A file the reader cannot take; the message is meant for the person who uploaded it."""


class EmptyFileError(ReaderError):
    """The file is empty, or has a header and no data lines."""


class NotCsvError(ReaderError):
    """Binary data, an archive, or text without a recognisable NHIS header."""


class EncodingError(ReaderError):
    """The header is neither UTF-8 nor CP949/EUC-KR."""


class FileChangedError(ReaderError):
    """The file is not the one that was planned: size, modification time, version or a range's bytes differ."""


class MissingColumnsError(ReaderError):
    """Required columns are absent; ``missing`` lists their canonical names."""

    def __init__(self, missing: list[str], message: str | None = None):
        self.missing = list(missing)
        if message is None:
            spelled = "; ".join(f"{m} (e.g. {' / '.join(BY_NAME[m].headers[:2])})" for m in self.missing)
            message = f"required columns missing: {spelled}"
        super().__init__(message)


# --- what the reader returns and takes --------------------------------------------------------------


@dataclass(frozen=True)
class FileLayout:
    """What inspect_file learned from the first part of a file; enough to read any byte range."""

    path: str  # a local path or a URL (shared.data.source)
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
    """Newline-aligned slice [start, end) of a file holding n_lines physical lines.

    ``checksum`` is the CRC-32 of the range's bytes at planning (None: not checked). ``oversized``
    marks a range that is exactly one line longer than the line limit: it is rejected unread.
    """

    index: int
    start: int
    end: int
    first_line_no: int
    n_lines: int
    checksum: int | None = None
    oversized: bool = False

    @property
    def last_line_no(self) -> int:
        return self.first_line_no + self.n_lines - 1


@dataclass(frozen=True)
class ReadOptions:
    """The planning decisions a range is read with (all default to "read the file as written").

    ``duplicates`` maps the line number of a repeated (year, subscriber id) to the line of its first
    occurrence; None means "detect repeats within the range only" (a range read on its own).
    ``file_size`` / ``mtime_ns`` / ``version`` (a URL's ETag or Last-Modified, see
    shared.data.source.SourceVersion), when given, must still match the file.
    """

    expected_year: int | None = None
    age_scheme: str = AGE_SCHEME_2014
    drinking_blank_means_no: bool = False
    duplicates: Mapping[int, int] | None = None
    file_size: int | None = None
    mtime_ns: int | None = None
    max_line_bytes: int = MAX_LINE_BYTES
    version: str | None = None

    def __post_init__(self) -> None:
        if self.age_scheme not in AGE_SCHEMES:
            raise ValueError(f"age_scheme must be one of {AGE_SCHEMES}, not {self.age_scheme!r}")
        if self.max_line_bytes < 1:
            raise ValueError("max_line_bytes must be >= 1")

    def for_range(self, byte_range: ByteRange) -> ReadOptions:
        """The same options with only the duplicate lines that fall inside ``byte_range``."""
        if not self.duplicates:
            return self
        lo, hi = byte_range.first_line_no, byte_range.last_line_no
        return dataclasses.replace(
            self, duplicates={line: first for line, first in self.duplicates.items() if lo <= line <= hi}
        )

    def to_dict(self) -> dict:
        """JSON-ready form (duplicate map as [[line, first], ...]) for storing with a job or chunk."""
        out = dataclasses.asdict(self)
        out["duplicates"] = None if self.duplicates is None else sorted(self.duplicates.items())
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> ReadOptions:
        data = dict(data)
        dups = data.get("duplicates")
        if dups is not None:
            items = dups.items() if isinstance(dups, Mapping) else dups
            data["duplicates"] = {int(line): int(first) for line, first in items}
        return cls(**data)


@dataclass(frozen=True)
class DrinkingCounts:
    """Drinking cells of the rows whose required cells are valid."""

    blank: int = 0
    no: int = 0
    yes: int = 0
    other: int = 0  # not 0/1 (bad codes, text): noted per cell by the reader


@dataclass(frozen=True)
class FileProfile:
    """What planning decides once per file, from the data (docs/DATA.md §3, "Planning")."""

    lines: int  # non-blank data lines: what loaded + rejected must add up to
    years: Mapping[int, int]  # year -> rows whose required cells are valid (duplicates included)
    duplicates: Mapping[int, int]  # line of each later occurrence -> line of the first
    age_scheme: str  # AGE_SCHEME_2013 (1-14, remapped +4) or AGE_SCHEME_2014 (5-18)
    age_codes: Mapping[int, int]  # integer age codes of the main year's rows, as published
    drinking: DrinkingCounts
    drinking_blank_means_no: bool
    warnings: tuple[str, ...] = ()

    @property
    def main_year(self) -> int | None:
        """The year most rows carry (the job's year unless the caller says otherwise)."""
        if not self.years:
            return None
        return max(self.years.items(), key=lambda kv: (kv[1], kv[0]))[0]

    def to_dict(self) -> dict:
        return {
            "lines": self.lines,
            "years": {str(y): n for y, n in sorted(self.years.items())},
            "duplicates": sorted(self.duplicates.items()),
            "age_scheme": self.age_scheme,
            "age_codes": {str(k): n for k, n in sorted(self.age_codes.items())},
            "drinking": dataclasses.asdict(self.drinking),
            "drinking_blank_means_no": self.drinking_blank_means_no,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class FileScan:
    """The result of planning: ranges to read, the file's identity, and the file's profile."""

    path: str
    size: int
    mtime_ns: int | None  # local files; None for a URL
    ranges: tuple[ByteRange, ...]
    profile: FileProfile
    max_line_bytes: int = MAX_LINE_BYTES
    version: str | None = None  # a URL's validator (ETag or Last-Modified)

    def read_options(self, expected_year: int | None = None) -> ReadOptions:
        """Options that read every range with this scan's decisions (restrict per range with for_range)."""
        return ReadOptions(
            expected_year=expected_year,
            age_scheme=self.profile.age_scheme,
            drinking_blank_means_no=self.profile.drinking_blank_means_no,
            duplicates=dict(self.profile.duplicates),
            file_size=self.size,
            mtime_ns=self.mtime_ns,
            max_line_bytes=self.max_line_bytes,
            version=self.version,
        )


@dataclass
class ChunkResult:
    frame: pd.DataFrame
    rejects: pd.DataFrame
    lines_read: int


# --- layout --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _opened(location: str | os.PathLike | Source, source: Source | None = None) -> Iterator[Source]:
    """The given source, or one opened (and closed) here; a change seen while reading is a FileChangedError.

    Opening a URL here uses the default policy, which refuses URLs: callers that accept URLs open
    the source with their policy and pass it in.
    """
    if source is None and isinstance(location, Source):
        source = location
    src = source if source is not None else open_source(location)
    try:
        yield src
    except SourceChanged as exc:
        raise FileChangedError(f"{exc}; start a new job for the new file") from None
    finally:
        if source is None:
            src.close()


def inspect_file(path: str | os.PathLike | Source) -> FileLayout:
    """Detect encoding, newline and column mapping from the header; raises ReaderError subclasses.

    ``path`` is a local path or an open :class:`Source` (a URL opened with its policy).
    """
    with _opened(path) as source:
        return _inspect(source)


def _inspect(source: Source) -> FileLayout:
    path, name = source.location, source.name
    size = source.version.size
    if size == 0:
        raise EmptyFileError(f"{name}: the file is empty")
    head = source.read(0, min(HEAD_BYTES, size))
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


# --- planning: one streaming pass -----------------------------------------------------------------


def scan_file(
    layout: FileLayout,
    target_rows: int = 50_000,
    max_bytes: int = MAX_RANGE_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
    *,
    block_bytes: int = SCAN_BLOCK,
    source: Source | None = None,
) -> FileScan:
    """Read the body once in blocks: ranges (by lines and bytes, with checksums) and the profile.

    Memory is bounded by ``block_bytes + max_line_bytes`` for the bytes, plus 21 bytes per row for
    the file-wide checks (1M rows: 21 MB). Raises FileChangedError if the file changes while
    it is read. A URL is streamed with one range request (``source``: opened with its policy).
    """
    _check_limits(target_rows, max_bytes, max_line_bytes, block_bytes)
    cutter = _RangeCutter(layout.header_bytes, target_rows, max_bytes)
    profiler = _Profiler(layout)
    with _opened(layout.path, source) as src:
        before = src.version
        blocks = src.blocks(layout.header_bytes, before.size, block_bytes)
        for piece in _pieces(blocks, layout.header_bytes, max_line_bytes):
            if isinstance(piece, _Oversized):
                cutter.add_oversized(piece.start, piece.end, piece.checksum)
                profiler.add_oversized()
                continue
            lines = _split_lines(piece.data, max_line_bytes)
            profiler.add(piece.data, lines, cutter.upcoming_line_no)
            _cut_piece(cutter, piece, lines)
        cutter.finish()
        after = src.current_version()
    if after != before:
        raise FileChangedError(f"{src.name}: the file changed while it was being planned")
    return FileScan(
        path=layout.path,
        size=before.size,
        mtime_ns=before.mtime_ns,
        ranges=tuple(cutter.ranges),
        profile=profiler.finish(),
        max_line_bytes=max_line_bytes,
        version=before.tag,
    )


def plan_ranges(
    layout: FileLayout,
    target_rows: int = 50_000,
    max_bytes: int = MAX_RANGE_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
    *,
    source: Source | None = None,
) -> list[ByteRange]:
    """The ranges of :func:`scan_file` without the profile (no parsing): for tools and tests."""
    _check_limits(target_rows, max_bytes, max_line_bytes, SCAN_BLOCK)
    cutter = _RangeCutter(layout.header_bytes, target_rows, max_bytes)
    with _opened(layout.path, source) as src:
        blocks = src.blocks(layout.header_bytes, src.version.size, SCAN_BLOCK)
        for piece in _pieces(blocks, layout.header_bytes, max_line_bytes):
            if isinstance(piece, _Oversized):
                cutter.add_oversized(piece.start, piece.end, piece.checksum)
            else:
                _cut_piece(cutter, piece, _split_lines(piece.data, max_line_bytes, classify=False))
        cutter.finish()
    return cutter.ranges


def _check_limits(target_rows: int, max_bytes: int, max_line_bytes: int, block_bytes: int) -> None:
    if target_rows < 1:
        raise ValueError("target_rows must be >= 1")
    if max_line_bytes < 1 or block_bytes < 1:
        raise ValueError("max_line_bytes and block_bytes must be >= 1")
    if max_bytes < max_line_bytes + 2:  # any line that is not oversized fits in one range
        raise ValueError("max_bytes must be at least max_line_bytes + 2")


@dataclass(frozen=True)
class _Piece:
    """Complete lines (the last one may lack its newline at the end of the file) at file offset ``at``."""

    at: int
    data: bytes


@dataclass(frozen=True)
class _Oversized:
    """One line longer than the limit, streamed past without being kept: [start, end) and its CRC."""

    start: int
    end: int
    checksum: int


def _pieces(blocks: Iterator[bytes], start: int, max_line_bytes: int) -> Iterator[_Piece | _Oversized]:
    """Turn the blocks of [start, end) into pieces of whole lines; a line that outgrows the limit is skipped over.

    An incomplete line is carried into the next block only while it is at most max_line_bytes + 1
    bytes (its content may still end in CR); beyond that it is oversized for certain, and its bytes
    are only checksummed until its newline. So no piece is longer than block_bytes + max_line_bytes
    + 1, whatever the file holds.
    """
    carry, carry_at = b"", start  # the start of an incomplete line, and its file offset
    skipping, skip_start, skip_len, skip_crc = False, 0, 0, 0
    for block in blocks:  # a file that shrank ends early; scan_file's final version check reports it
        at = 0  # first byte of the block not handled yet
        if skipping:
            nl = block.find(b"\n")
            if nl < 0:
                skip_crc, skip_len = zlib.crc32(block, skip_crc), skip_len + len(block)
                continue
            skip_crc, skip_len = zlib.crc32(memoryview(block)[: nl + 1], skip_crc), skip_len + nl + 1
            yield _Oversized(skip_start, skip_start + skip_len, skip_crc)
            skipping, carry_at, at = False, skip_start + skip_len, nl + 1
        cut = block.rfind(b"\n", at) + 1
        if cut:
            body = block if (at, cut) == (0, len(block)) else block[at:cut]
            piece = carry + body if carry else body
            yield _Piece(carry_at, piece)
            carry, carry_at = block[cut:], carry_at + len(piece)
        else:
            carry = carry + block[at:]
        if len(carry) > max_line_bytes + 1:
            skipping, skip_start, skip_len, skip_crc = True, carry_at, len(carry), zlib.crc32(carry)
            carry = b""
    if skipping:
        yield _Oversized(skip_start, skip_start + skip_len, skip_crc)
    elif carry:
        yield _Piece(carry_at, carry)


class _RangeCutter:
    """Cuts consecutive lines into ranges of at most target_rows lines and max_bytes bytes."""

    def __init__(self, start: int, target_rows: int, max_bytes: int):
        self.target_rows, self.max_bytes = target_rows, max_bytes
        self.ranges: list[ByteRange] = []
        self.start, self.next_line_no, self.n, self.crc, self.last_end = start, 2, 0, 0, start

    def add_lines(self, data: bytes, at: int, begin: int, ends: np.ndarray) -> None:
        """Lines data[begin:ends[0]], data[ends[0]:ends[1]], ... (ends: offsets past each newline)."""
        view, pos, i, n = memoryview(data), begin, 0, len(ends)
        while i < n:
            if self.n == self.target_rows:
                self._close(at + pos)
            by_bytes = int(np.searchsorted(ends, self.start + self.max_bytes - at, side="right"))
            k = min(i + self.target_rows - self.n, by_bytes, n)
            if k <= i:  # the next line does not fit in the open range
                if self.n:
                    self._close(at + pos)
                    continue
                k = i + 1  # unreachable while max_bytes >= max_line_bytes + 2; never loop forever
            end = int(ends[k - 1])
            self.crc = zlib.crc32(view[pos:end], self.crc)
            self.n += k - i
            pos, i = end, k
        self.last_end = at + pos

    @property
    def upcoming_line_no(self) -> int:
        """Line number of the next line to be added."""
        return self.next_line_no + self.n

    def add_oversized(self, start: int, end: int, checksum: int) -> None:
        if self.n:
            self._close(start)
        self.ranges.append(ByteRange(len(self.ranges), start, end, self.next_line_no, 1, checksum, True))
        self.start, self.next_line_no, self.last_end = end, self.next_line_no + 1, end

    def finish(self) -> None:
        if self.n:
            self._close(self.last_end)

    def _close(self, end: int) -> None:
        self.ranges.append(ByteRange(len(self.ranges), self.start, end, self.next_line_no, self.n, self.crc))
        self.start, self.next_line_no, self.n, self.crc = end, self.next_line_no + self.n, 0, 0


def _cut_piece(cutter: _RangeCutter, piece: _Piece, lines: _Lines) -> None:
    """Feed a piece's lines to the cutter, isolating each oversized line in its own range."""
    ends = lines.starts + lines.spans  # lines are contiguous: line i starts where line i-1 ends
    first = 0
    for j in np.flatnonzero(lines.oversized):
        if j > first:
            cutter.add_lines(piece.data, piece.at, int(lines.starts[first]), ends[first:j])
        start, stop = int(lines.starts[j]), int(ends[j])
        cutter.add_oversized(piece.at + start, piece.at + stop, zlib.crc32(memoryview(piece.data)[start:stop]))
        first = j + 1
    if first < len(ends):
        cutter.add_lines(piece.data, piece.at, int(lines.starts[first]), ends[first:])


class _Profiler:
    """Collects, block by block, what planning decides once per file (see FileProfile)."""

    def __init__(self, layout: FileLayout):
        self.layout = layout
        self.columns = frozenset(c for c in _PROFILE_COLUMNS if c in layout.columns)
        self.lines = 0
        self.keys: list[np.ndarray] = []  # year * 10**10 + id of rows with valid year, id and sex
        self.line_nos: list[np.ndarray] = []
        self.ages: list[np.ndarray] = []  # their age code as published (NaN: missing/unparseable)
        self.drink: list[np.ndarray] = []  # their drinking cell: -1 blank, 0, 1, 2 anything else

    def add_oversized(self) -> None:
        self.lines += 1

    def add(self, data: bytes, lines: _Lines, first_line_no: int) -> None:
        self.lines += int((~lines.blank).sum())
        line_nos = first_line_no + np.arange(len(lines.starts), dtype=np.int64)
        values, raw_bad, _, row_lines = _parse_lines(self.layout, data, lines, line_nos, _Notes(), self.columns)
        ok = np.ones(len(row_lines), dtype=bool)
        for name in ("year", "subscriber_id", "sex"):
            for mask, _reason in _required_checks(name, values[name], _unparseable(raw_bad, name, len(ok))):
                ok &= ~mask
        age = values["age_group"].copy()
        age[_unparseable(raw_bad, "age_group", len(ok))] = np.nan
        self.keys.append(_record_key(values["year"][ok], values["subscriber_id"][ok]))
        self.line_nos.append(row_lines[ok])
        self.ages.append(age[ok].astype(np.float32))  # small integers: exact in float32
        if "drinking" in self.columns:
            v = values["drinking"][ok]
            code = np.where(v == 0, 0, np.where(v == 1, 1, 2)).astype(np.int8)
            code[np.isnan(v) & ~_unparseable(raw_bad, "drinking", len(ok))[ok]] = -1
            self.drink.append(code)

    def finish(self) -> FileProfile:
        keys = np.concatenate(self.keys) if self.keys else np.empty(0, dtype=np.int64)
        line_nos = np.concatenate(self.line_nos) if self.line_nos else np.empty(0, dtype=np.int64)
        ages = np.concatenate(self.ages) if self.ages else np.empty(0)
        years_all = keys // _KEY_FACTOR
        warnings: list[str] = []

        main_year = _most_common(years_all)
        integral = np.isfinite(ages) & (ages == np.floor(ages))
        main_ages = ages[(years_all == main_year) & integral] if main_year is not None else ages[:0]
        scheme = _decide_age_scheme(main_year, main_ages, warnings)
        valid = np.ones(len(keys), dtype=bool)
        for mask, reason in _required_checks("age_group", ages, np.zeros(len(ages), dtype=bool), scheme):
            if reason == AGE_BAND_UNDER_20 and (mask & valid).any():
                warnings.append(f"{int((mask & valid).sum()):,} rows have an age band code under 5 (ages 0-19), "
                                "not used from 2014: rejected")
            valid &= ~mask
        if not valid.all():
            keys, line_nos = keys[valid], line_nos[valid]

        duplicates = _find_duplicates(keys, line_nos)
        if duplicates:
            warnings.append(f"{len(duplicates):,} lines repeat a subscriber id of the same year seen on an "
                            "earlier line: rejected")
        years = _counts(keys // _KEY_FACTOR)
        if len(years) > 1:
            listed = ", ".join(f"{y} ({n:,} rows)" for y, n in sorted(years.items(), key=lambda kv: -kv[1]))
            warnings.append(f"rows of several years: {listed}")

        drinking = _drinking_counts(np.concatenate(self.drink)[valid] if self.drink else None)
        blank_means_no = drinking_blank_means_no(drinking)
        if blank_means_no:
            warnings.append(
                f"drinking: {drinking.blank:,} blank cells and {drinking.no:,} '0' (does not drink) among "
                f"{drinking.no + drinking.yes + drinking.other:,} answers, so this release writes 'does not "
                "drink' as a blank: blanks read as 0"
            )
        return FileProfile(
            lines=self.lines,
            years=MappingProxyType(years),
            duplicates=MappingProxyType(duplicates),
            age_scheme=scheme,
            age_codes=MappingProxyType(_counts(main_ages)),
            drinking=drinking,
            drinking_blank_means_no=blank_means_no,
            warnings=tuple(warnings),
        )


def _counts(values: np.ndarray) -> dict[int, int]:
    """{value: count} of integer-valued numbers (bincount over the span when it is small)."""
    if not len(values):
        return {}
    lo, hi = int(values.min()), int(values.max())
    if hi - lo <= 10_000:
        shifted = values - lo
        counts = np.bincount(shifted if shifted.dtype == np.int64 else shifted.astype(np.int64))
        return {lo + int(k): int(counts[k]) for k in np.flatnonzero(counts)}
    uniq, counts = np.unique(values, return_counts=True)
    return {int(u): int(c) for u, c in zip(uniq, counts, strict=True)}


_KEY_FACTOR = 10**10  # subscriber ids are below 10**10 (catalog bounds)


def _record_key(year: np.ndarray, subscriber_id: np.ndarray) -> np.ndarray:
    return year.astype(np.int64) * _KEY_FACTOR + subscriber_id.astype(np.int64)


def _most_common(values: np.ndarray) -> int | None:
    counts = _counts(values)
    if not counts:
        return None
    return max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]  # ties: the later year


def _decide_age_scheme(main_year: int | None, codes: np.ndarray, warnings: list[str]) -> str:
    """2013 numbering iff the main year is 2013 or earlier and (almost) none of its codes is 15-18.

    Codes 15-18 (70 and over) are about a tenth of a real 5-18 file and cannot exist in a 1-14
    file; codes outside 1-18 are garbage in either numbering and do not count.
    """
    if main_year is None or main_year > LAST_2013_SCHEME_YEAR or not len(codes):
        return AGE_SCHEME_2014
    high = int(((codes >= 15) & (codes <= 18)).sum())
    if high <= AGE_2014_MAX_SHARE_IN_2013 * len(codes):
        warnings.append(f"age bands are numbered 1-14 (1 = 20-24), as in files up to {LAST_2013_SCHEME_YEAR}: "
                        f"read as the 5-18 bands (code + {AGE_2013_OFFSET})")
        return AGE_SCHEME_2013
    warnings.append(f"a {main_year} file with age band codes outside 1-14: read with the 5-18 numbering")
    return AGE_SCHEME_2014


def _find_duplicates(keys: np.ndarray, line_nos: np.ndarray) -> dict[int, int]:
    """{line of each later occurrence: line of the first} for repeated keys (rows in line order)."""
    if len(keys) < 2 or bool((keys[1:] > keys[:-1]).all()):  # real files: ids ascending, no repeat
        return {}
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    new_group = np.ones(len(keys), dtype=bool)
    new_group[1:] = sorted_keys[1:] != sorted_keys[:-1]
    first_of_group = order[np.maximum.accumulate(np.where(new_group, np.arange(len(keys)), 0))]
    later = ~new_group
    return dict(zip(line_nos[order[later]].tolist(), line_nos[first_of_group[later]].tolist(), strict=True))


def _drinking_counts(codes: np.ndarray | None) -> DrinkingCounts:
    if codes is None:
        return DrinkingCounts()
    counts = np.bincount(codes.astype(np.int64) + 1, minlength=4)
    return DrinkingCounts(blank=int(counts[0]), no=int(counts[1]), yes=int(counts[2]), other=int(counts[3]))


def drinking_blank_means_no(counts: DrinkingCounts) -> bool:
    """True when a release writes "does not drink" as a blank (thresholds: docs/DATA.md)."""
    answered = counts.no + counts.yes + counts.other
    rows = answered + counts.blank
    return (
        rows > 0
        and counts.yes > 0
        and counts.blank >= DRINKING_BLANK_MIN_COUNT
        and counts.blank >= DRINKING_BLANK_MIN_SHARE * rows
        and counts.no <= DRINKING_ZERO_MAX_SHARE * answered
    )


# --- reading -------------------------------------------------------------------------------------


def read_range(
    layout: FileLayout,
    byte_range: ByteRange,
    options: ReadOptions | None = None,
    *,
    expected_year: int | None = None,
    source: Source | None = None,
) -> ChunkResult:
    """Read and type one byte range (that range only: seek + read, or one range request).

    Raises FileChangedError when the file's size, modification time or version differ from
    ``options``, or the range's bytes from its checksum. An oversized range is rejected without
    reading the line.
    """
    options = options or ReadOptions()
    if expected_year is not None:
        options = dataclasses.replace(options, expected_year=expected_year)
    with _opened(layout.path, source) as src:
        name = src.name
        _check_identity(name, src.version, options)
        if byte_range.oversized:
            return _read_oversized(layout, src, byte_range, name)
        data = src.read(byte_range.start, byte_range.end)
    if byte_range.checksum is not None and (
        len(data) != byte_range.end - byte_range.start or zlib.crc32(data) != byte_range.checksum
    ):
        raise _changed(name, byte_range)
    return parse_bytes(layout, data, byte_range.first_line_no, options=options.for_range(byte_range))


def iter_chunks(
    path: str | os.PathLike,
    target_rows: int = 50_000,
    expected_year: int | None = None,
    *,
    max_bytes: int = MAX_RANGE_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[ChunkResult]:
    """The whole file, planned by scan_file and read one range at a time (bounded memory)."""
    with _opened(path) as source:
        layout = inspect_file(source)
        scan = scan_file(layout, target_rows, max_bytes, max_line_bytes, source=source)
        options = scan.read_options(expected_year)
        for byte_range in scan.ranges:
            yield read_range(layout, byte_range, options, source=source)


def parse_bytes(
    layout: FileLayout,
    data: bytes,
    first_line_no: int,
    expected_year: int | None = None,
    *,
    options: ReadOptions | None = None,
) -> ChunkResult:
    """Parse newline-aligned body bytes whose first line is physical line ``first_line_no``."""
    options = options or ReadOptions()
    if expected_year is not None:
        options = dataclasses.replace(options, expected_year=expected_year)
    lines = _split_lines(data, options.max_line_bytes)
    line_nos = first_line_no + np.arange(len(lines.starts), dtype=np.int64)
    notes = _Notes()
    for i in np.flatnonzero(lines.oversized):
        notes.whole(line_nos[i], None, LINE_TOO_LONG, _line_prefix(data, lines, i, layout))
    values, raw_bad, release, row_lines = _parse_lines(layout, data, lines, line_nos, notes)
    frame, rejects = _validate(values, raw_bad, release, row_lines, options, notes)
    return ChunkResult(frame=frame, rejects=rejects, lines_read=int((~lines.blank).sum()))


def _check_identity(name: str, current: SourceVersion, options: ReadOptions) -> None:
    if options.file_size is not None and current.size != options.file_size:
        raise FileChangedError(
            f"{name} changed after the job was planned: it was {options.file_size:,} bytes, it is now "
            f"{current.size:,}; start a new job for the new file"
        )
    if options.mtime_ns is not None and current.mtime_ns is not None and current.mtime_ns != options.mtime_ns:
        raise FileChangedError(
            f"{name} changed after the job was planned: it was modified at "
            f"{_when(current.mtime_ns)}, after planning (file then modified at {_when(options.mtime_ns)}); "
            "start a new job for the new file"
        )
    if options.version is not None and current.tag != options.version:
        raise FileChangedError(
            f"{name} changed after the job was planned: its version was {options.version}, it is now "
            f"{current.tag or 'unknown'}; start a new job for the new file"
        )


def _changed(name: str, byte_range: ByteRange) -> FileChangedError:
    return FileChangedError(
        f"{name} changed after the job was planned: bytes {byte_range.start:,}-{byte_range.end:,} (lines "
        f"{byte_range.first_line_no:,}-{byte_range.last_line_no:,}) no longer match the checksum taken "
        "at planning; start a new job for the new file"
    )


def _when(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).isoformat(timespec="seconds")


def _read_oversized(layout: FileLayout, source: Source, byte_range: ByteRange, name: str) -> ChunkResult:
    """One over-long line: a whole-row reject with a short prefix; its bytes are only checksummed.

    The line is streamed in blocks of _VERIFY_BLOCK (memory stays flat whatever its length).
    """
    length = byte_range.end - byte_range.start
    head = source.read(byte_range.start, byte_range.start + min(_RAW_BYTES, length))
    crc, seen = zlib.crc32(head), len(head)
    if byte_range.checksum is not None:
        for block in source.blocks(byte_range.start + seen, byte_range.end, _VERIFY_BLOCK):
            crc, seen = zlib.crc32(block, crc), seen + len(block)
        if seen != length or crc != byte_range.checksum:
            raise _changed(name, byte_range)
    if len(head) == length:  # a short line (small limit): drop its line break
        head = head[:-1] if head.endswith(b"\n") else head
        head = head[:-1] if head.endswith(b"\r") else head
    notes = _Notes()
    notes.whole(byte_range.first_line_no, None, LINE_TOO_LONG, _raw_text(head, layout))
    frame, rejects = _validate(*_empty_values(layout), ReadOptions(), notes)
    return ChunkResult(frame=frame, rejects=rejects, lines_read=1)


def _line_prefix(data: bytes, lines: _Lines, i: int, layout: FileLayout) -> str:
    """The start of line i as text, slicing only the bytes needed (the line may be long)."""
    start = int(lines.starts[i])
    return _raw_text(data[start:min(int(lines.ends[i]), start + _RAW_BYTES)], layout)


def _raw_text(raw: bytes, layout: FileLayout) -> str:
    """The first MAX_RAW characters of a line, decoded leniently (never the whole of a long line)."""
    encoding = "utf-8" if layout.encoding == "utf-8-sig" else layout.encoding
    return raw[:_RAW_BYTES].decode(encoding, errors="replace")[:MAX_RAW]


def _empty_values(layout: FileLayout):
    values = {c: np.empty(0) for c in layout.columns if c is not None and c != "release_date"}
    return values, {}, np.empty(0, dtype=object), np.empty(0, dtype=np.int64)


@dataclass
class _Lines:
    starts: np.ndarray  # first byte of each line
    ends: np.ndarray  # one past the last content byte (CR and LF excluded)
    spans: np.ndarray  # bytes from start to the start of the next line (incl. newline)
    blank: np.ndarray
    oversized: np.ndarray  # content longer than the line limit: never parsed
    special: np.ndarray  # has a quote or a non-ASCII byte: exact slow path
    fast: np.ndarray


def _split_lines(data: bytes, max_line_bytes: int | None = None, classify: bool = True) -> _Lines:
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
    oversized = np.zeros(len(ends), dtype=bool)
    if max_line_bytes is not None:
        oversized = (ends - starts) > max_line_bytes
    special = np.zeros(len(ends), dtype=bool)
    if classify and (not data.isascii() or b'"' in data):  # rare: find the lines concerned
        odd = np.flatnonzero((arr == _QUOTE) | (arr >= 0x80))
        special[np.searchsorted(starts, odd, side="right") - 1] = True
        special &= ~blank & ~oversized
    return _Lines(starts, ends, spans, blank, oversized, special, ~blank & ~special & ~oversized)


def _parse_lines(layout, data, lines: _Lines, line_nos, notes, columns: frozenset[str] | None = None):
    """Values of ``columns`` (default: all) for every line that has the right shape.

    Lines with a wrong field count or undecodable bytes are noted whole and left out. Returns
    (values, unparseable raw text per column, release dates, line number per row).
    """
    good = lines.fast
    try:  # common case: every clean line has the right field count and numeric cells
        values, raw_bad, release = _read_fast(layout, _select_lines(data, lines, good), True, columns)
    except pa.ArrowInvalid:  # find the lines with a wrong field count, then read cells as text
        bad_count = good & (_comma_counts(data, lines) != layout.n_fields - 1)
        for i in np.flatnonzero(bad_count):
            notes.whole(line_nos[i], None, "field_count", _line_prefix(data, lines, i, layout))
        good = good & ~bad_count
        values, raw_bad, release = _read_fast(layout, _select_lines(data, lines, good), False, columns)
    row_lines = line_nos[good]
    slow_idx = np.flatnonzero(lines.special)
    if len(slow_idx):
        slow_rows, slow_lines = _read_slow(layout, data, lines, slow_idx, line_nos, notes)
        if slow_rows:
            values, raw_bad, release, row_lines = _append_slow(
                layout, values, raw_bad, release, row_lines, slow_rows, slow_lines, columns
            )
    return values, raw_bad, release, row_lines


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


def _field_names(layout: FileLayout) -> list[str]:
    return [f"f{i}" for i in range(layout.n_fields)]


def _wanted(layout: FileLayout, columns: frozenset[str] | None) -> dict[str, str]:
    """Arrow field name -> canonical column, for the columns to read (default: every known one)."""
    names = _field_names(layout)
    return {names[i]: c for i, c in enumerate(layout.columns) if c is not None and (columns is None or c in columns)}


def _read_fast(
    layout: FileLayout, body: bytes, typed_only: bool, columns: frozenset[str] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, dict[int, str]], np.ndarray]:
    """pyarrow-parse clean ASCII lines. Returns float columns, unparseable raw text, release dates.

    A full read (a chunk, run in parallel with other chunks) parses on one thread; the planning
    scan's subset runs alone before the chunks and parses in 1 MiB blocks on every core.
    """
    names = _field_names(layout)
    wanted = _wanted(layout, columns)
    if not body:
        return ({c: np.empty(0) for c in wanted.values() if c != "release_date"}, {}, np.empty(0, dtype=object))
    types = {f: (pa.string() if c == "release_date" else pa.float64()) for f, c in wanted.items()}
    threads = columns is not None
    read = pacsv.ReadOptions(column_names=names, use_threads=threads,
                             block_size=1 << 20 if threads else max(1 << 20, len(body) + 1))
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
            notes.whole(line_nos[i], None, "undecodable", _raw_text(raw, layout))
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


def _append_slow(layout, values, raw_bad, release, row_lines, slow_rows, slow_lines, columns=None):
    n_fast = len(row_lines)
    matrix = np.array(slow_rows, dtype=object)
    wanted = _wanted(layout, columns)
    for pos, canonical in enumerate(layout.columns):
        if f"f{pos}" not in wanted:
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
    if "release_date" not in wanted.values():
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


def _unparseable(raw_bad: dict[str, dict[int, str]], name: str, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    if raw_bad.get(name):
        mask[list(raw_bad[name])] = True
    return mask


def _required_checks(
    name: str, v: np.ndarray, unparseable: np.ndarray, age_scheme: str = AGE_SCHEME_2014
) -> list[tuple[np.ndarray, str]]:
    """The checks of a required column, in order; a row is rejected for the first that hits it.

    Shared by the reader and the planning scan, so both agree on which lines are valid rows.
    """
    spec = BY_NAME[name]
    nan = np.isnan(v)
    checks = [(nan & ~unparseable, "missing")]
    if name == "age_group":
        codes = AGE_CODES[age_scheme]
        checks.append((unparseable, "unparseable"))
        if age_scheme == AGE_SCHEME_2014:
            checks.append((np.isin(v, (1.0, 2.0, 3.0, 4.0)), AGE_BAND_UNDER_20))
        checks.append((~nan & ~np.isin(v, codes), "bad_code"))  # 1.5 is a bad code, not unparseable
    elif spec.codes is not None:
        checks.append((unparseable, "unparseable"))
        checks.append((~nan & ~np.isin(v, spec.codes), "bad_code"))
    else:
        lo, hi = spec.bounds
        checks.append((unparseable | (v != np.floor(v)), "unparseable"))  # NaN != NaN: NaN is "missing"
        checks.append(((v < lo) | (v > hi), "out_of_range"))
    return checks


def _validate(values, raw_bad, release, row_lines, options: ReadOptions, notes: _Notes):
    n = len(row_lines)
    keep = np.ones(n, dtype=bool)

    for name in REQUIRED_COLUMNS:
        v = values[name]
        for mask, reason in _required_checks(name, v, _unparseable(raw_bad, name, n), options.age_scheme):
            hit = np.flatnonzero(mask & keep)
            for i in hit:
                raw = raw_bad.get(name, {}).get(int(i))
                notes.whole(row_lines[i], name, reason, raw if raw is not None else _fmt_or_none(v[i]))
            keep[hit] = False

    if options.expected_year is not None:
        hit = np.flatnonzero(keep & (values["year"] != options.expected_year))
        for i in hit:
            notes.whole(row_lines[i], "year", "year_mismatch", format_number(values["year"][i]))
        keep[hit] = False

    _reject_duplicates(values, row_lines, keep, options.duplicates, notes)

    out: dict[str, object] = {}
    for name in CANONICAL_COLUMNS:
        spec = BY_NAME[name]
        if name == "release_date":
            # object dtype on purpose: pandas 3 would otherwise infer its own string dtype
            out[name] = pd.Series(_release_dates(release[keep], row_lines[keep], notes), dtype=object)
        elif name == "age_group" and options.age_scheme == AGE_SCHEME_2013:
            out[name] = values[name][keep].astype(np.int64) + AGE_2013_OFFSET
        elif spec.required:
            out[name] = values[name][keep].astype(np.int64)
        elif name not in values:
            out[name] = np.full(int(keep.sum()), np.nan)
        else:
            v = values[name]
            if name == "drinking" and options.drinking_blank_means_no:
                v = np.where(np.isnan(v) & ~_unparseable(raw_bad, name, n), 0.0, v)
            out[name] = _check_cells(spec, v, raw_bad.get(name, {}), keep, row_lines, notes)
    out["province_raw"] = out["province"]
    out["province"] = canonical_province(out["province"])
    out["line_no"] = row_lines[keep].astype(np.int64)
    return pd.DataFrame(out, columns=list(FRAME_COLUMNS)), notes.frame()


def _reject_duplicates(values, row_lines, keep, duplicates: Mapping[int, int] | None, notes: _Notes) -> None:
    """Later occurrences of a (year, subscriber id): from the file-wide map, else within these rows."""
    if duplicates is None:
        kept_idx = np.flatnonzero(keep)
        keys = _record_key(values["year"][kept_idx], values["subscriber_id"][kept_idx])
        duplicates = _find_duplicates(keys, row_lines[kept_idx])
    if not duplicates:
        return
    later = np.fromiter(duplicates.keys(), dtype=np.int64, count=len(duplicates))
    dup = keep & np.isin(row_lines, later)
    for i in np.flatnonzero(dup):
        notes.whole(row_lines[i], "subscriber_id", duplicate_reason(duplicates[int(row_lines[i])]),
                    format_number(values["subscriber_id"][i]))
    keep[dup] = False


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
        kept_as_published = spec.special_values + spec.ceilings
        if kept_as_published:
            outside &= ~np.isin(v, kept_as_published)
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
