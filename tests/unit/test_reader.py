"""The reader: every release style, header variants, bad input, byte ranges and the planning scan."""

import json
import logging
import os
import tracemalloc
import zlib

import numpy as np
import pandas as pd
import pytest

from shared.data.catalog import AGE_SCHEME_2013, AGE_SCHEME_2014, BY_NAME, CANONICAL_COLUMNS, RELEASE_HEADERS
from shared.data.generate import generate_frame, write_file
from shared.data.reader import (
    AGE_BAND_UNDER_20,
    FRAME_COLUMNS,
    LINE_TOO_LONG,
    ByteRange,
    DrinkingCounts,
    EmptyFileError,
    EncodingError,
    FileChangedError,
    MissingColumnsError,
    NotCsvError,
    ReadOptions,
    _decide_age_scheme,
    _Oversized,
    _pieces,
    drinking_blank_means_no,
    duplicate_reason,
    inspect_file,
    iter_chunks,
    parse_bytes,
    plan_ranges,
    read_range,
    scan_file,
)
from shared.data.source import LocalSource

H24 = list(RELEASE_HEADERS["2024"])
BASE = {  # one valid 2024-style row by header
    "기준년도": "2024", "가입자일련번호": "1", "시도코드": "11", "성별코드": "1", "연령대코드(5세단위)": "9",
    "신장(5cm단위)": "170", "체중(5kg단위)": "70", "허리둘레": "84.5", "시력(좌)": "1.0", "시력(우)": "0.9",
    "청력(좌)": "1", "청력(우)": "1", "수축기혈압": "121", "이완기혈압": "78", "식전혈당(공복혈당)": "95",
    "총콜레스테롤": "190", "트리글리세라이드": "120", "HDL콜레스테롤": "50", "LDL콜레스테롤": "116", "혈색소": "15.1",
    "요단백": "1", "혈청크레아티닌": "0.9", "혈청지오티(AST)": "22", "혈청지피티(ALT)": "20", "감마지티피": "30",
    "흡연상태": "1", "음주여부": "1", "구강검진수검여부": "1", "치아우식증유무": "0", "결손치 유무": "",
    "치아마모증유무": "", "제3대구치(사랑니) 이상": "", "치석": "1",
}


def make_file(path, rows, header=H24, encoding="cp949", newline="\r\n", bom=False, trailing=True):
    """rows: list of dicts overriding BASE (id auto-numbered) or raw str lines."""
    out = [",".join(header)]
    for i, row in enumerate(rows, start=1):
        if isinstance(row, str):
            out.append(row)
            continue
        values = {**BASE, "가입자일련번호": str(i), **row}
        out.append(",".join(values.get(h, "") for h in header))
    text = newline.join(out) + (newline if trailing else "")
    data = text.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def read_all(path, **kw):
    chunks = list(iter_chunks(path, **kw))
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    rejects = pd.concat([c.rejects for c in chunks], ignore_index=True)
    return frame, rejects, sum(c.lines_read for c in chunks)


# --- round trips --------------------------------------------------------------------------------


YEAR_OF_STYLE = {"2014": 2014, "2017": 2017, "2020": 2020, "2024": 2024, "english": 2018, "2013": 2013, "2019": 2019}


@pytest.mark.parametrize("style", list(YEAR_OF_STYLE))
@pytest.mark.parametrize("encoding", ["cp949", "utf-8"])
def test_round_trip_every_style(tmp_path, style, encoding):
    year = YEAR_OF_STYLE[style]
    path = tmp_path / "f.csv"
    write_file(path, 3000, year=year, seed=5, style=style, encoding=encoding, garbage=False)
    layout = inspect_file(path)
    ascii_header = style in ("english", "2013")  # an ASCII header is valid UTF-8: reported as such
    assert layout.encoding == ("utf-8" if ascii_header else encoding)
    assert layout.style == style and layout.unknown_columns == ()
    frame, rejects, lines = read_all(path, target_rows=700, expected_year=year)
    assert rejects.empty and lines == 3000
    assert frame["line_no"].tolist() == list(range(2, 3002))
    expected = generate_frame(3000, year=year, seed=5, style=style)
    pd.testing.assert_frame_equal(frame[list(CANONICAL_COLUMNS)], expected)
    assert frame["release_date"].dtype == object


def test_garbage_codes_become_nan_with_notes(tmp_path):
    path = tmp_path / "g.csv"
    write_file(path, 120_000, seed=1, garbage=True)
    clean = generate_frame(120_000, seed=1)
    dirty = generate_frame(120_000, seed=1, garbage=True)
    frame, rejects, lines = read_all(path, target_rows=50_000)
    assert lines == len(frame) == 120_000 and not rejects["whole_row"].any()
    changed = (clean.ne(dirty) & dirty.notna()).drop(columns=["release_date"])
    ceiling = changed["fasting_glucose"] & (dirty["fasting_glucose"] == 991)  # kept as published
    changed["fasting_glucose"] &= ~ceiling
    assert int(changed.to_numpy().sum()) == len(rejects) > 0
    assert set(rejects["reason"]) <= {"sentinel", "out_of_range"}
    for row in rejects.itertuples():
        assert np.isnan(frame.loc[frame["line_no"] == row.line_no, row.column].iloc[0])
    assert (frame.loc[ceiling.to_numpy(), "fasting_glucose"] == 991).all()


# --- header variants ----------------------------------------------------------------------------


def test_header_variants_shuffled_bom_lf_extra_column(tmp_path, caplog):
    header = ["성별", "수축기 혈압", "비고", "연령대 코드(5세단위)", "가입자 일련번호", "(혈청지오티)ALT",
              "기준년도", "신장(5Cm단위)", "치석유무", "데이터 공개일자"]
    rows = ["2,135,x,18,7,41,2024,135,1,2021-12-29", "1,,y,5,8,,2024,,,20181126"]
    path = make_file(tmp_path / "v.csv", rows, header=header, encoding="utf-8", newline="\n", bom=True)
    with caplog.at_level(logging.WARNING):
        layout = inspect_file(path)
    assert "비고" in caplog.text
    assert layout.encoding == "utf-8-sig" and layout.newline == b"\n"
    assert layout.unknown_columns == ("비고",) and layout.style is None
    frame, rejects, _ = read_all(path)
    assert rejects.empty
    assert frame["sex"].tolist() == [2, 1] and frame["subscriber_id"].tolist() == [7, 8]
    assert frame["sbp"].tolist()[0] == 135 and np.isnan(frame["sbp"].iloc[1])
    assert frame["alt"].iloc[0] == 41 and frame["height_cm"].iloc[0] == 135 and frame["tartar"].iloc[0] == 1
    assert frame["release_date"].tolist() == ["2021-12-29", "2018-11-26"]
    assert np.isnan(frame["province"]).all()  # absent column -> NaN
    assert list(frame.columns) == [*CANONICAL_COLUMNS, "province_raw", "line_no"] == list(FRAME_COLUMNS)


def test_quoted_fields(tmp_path):
    rows = [{}, {"허리둘레": '"90.5"', "흡연상태": '"3"'}, {"시도코드": '"1,1"'}]
    path = make_file(tmp_path / "q.csv", rows)
    frame, rejects, lines = read_all(path)
    assert lines == 3 and len(frame) == 3
    assert frame["waist_cm"].iloc[1] == 90.5 and frame["smoking"].iloc[1] == 3
    assert rejects.to_dict("records") == [
        {"line_no": 4, "column": "province", "reason": "unparseable", "raw_value": "1,1", "whole_row": False}
    ]


def test_missing_required_columns_named(tmp_path):
    header = [h for h in H24 if h not in ("성별코드", "기준년도")]
    path = make_file(tmp_path / "m.csv", [{}], header=header)
    with pytest.raises(MissingColumnsError) as err:
        inspect_file(path)
    assert err.value.missing == ["year", "sex"]
    assert "sex" in str(err.value) and "year" in str(err.value)


# --- bad files ----------------------------------------------------------------------------------


def test_empty_and_header_only(tmp_path):
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(EmptyFileError):
        inspect_file(tmp_path / "e.csv")
    with pytest.raises(EmptyFileError):
        inspect_file(make_file(tmp_path / "h.csv", []))
    with pytest.raises(EmptyFileError):
        inspect_file(make_file(tmp_path / "hb.csv", ["", ""]))


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"PK\x03\x04\x14\x00\x00\x00garbage", NotCsvError),
        (b"\x00\x01\x02\x03binary\x00\n\x00\x00", NotCsvError),
        (b"hello\nworld\nfoo\n", NotCsvError),
        ("기준년도\t성별코드\n2024\t1\n".encode("cp949"), NotCsvError),
        (b"\x80\xff,\xff\n1,2\n", EncodingError),
        (b"\xff\xfeU\x00T\x00", NotCsvError),
    ],
)
def test_not_csv(tmp_path, content, error):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(error):
        inspect_file(path)


# --- rows and cells -----------------------------------------------------------------------------


def test_bad_rows_and_cells(tmp_path):
    rows = [
        {},  # 2: fine
        {"허리둘레": "999"},  # 3: sentinel
        {"허리둘레": "8"},  # 4: out of range
        {"허리둘레": "680"},  # 5: out of range
        {"혈청지오티(AST)": "9999", "혈청지피티(ALT)": "999", "감마지티피": "999"},  # 6: sentinel; 999 kept
        {"식전혈당(공복혈당)": "991"},  # 7: ceiling, kept
        {"시력(좌)": "9.9", "신장(5cm단위)": "130"},  # 8: blind code kept, 130 bin kept
        {"수축기혈압": "abc"},  # 9: unparseable
        {"흡연상태": "4", "청력(좌)": "3"},  # 10: bad code; hearing 3 kept
        {"성별코드": ""},  # 11: whole row, missing
        {"성별코드": "3"},  # 12: whole row, bad code
        {"연령대코드(5세단위)": "19"},  # 13: whole row, bad code
        {"가입자일련번호": "1"},  # 14: duplicate of line 2
        "2024,99,11,1,9",  # 15: wrong field count
        {"기준년도": "2023"},  # 16: year mismatch
        {"음주여부": ""},  # 17: unknown drinking stays NaN
        {"혈청크레아티닌": "98", "LDL콜레스테롤": "-5"},  # 18: out of range
        {"가입자일련번호": "x1"},  # 19: whole row, unparseable id
        {"연령대코드(5세단위)": "4"},  # 20: whole row, under 20 (not used from 2014)
        {"시도코드": "50", "식전혈당(공복혈당)": "9999"},  # 21: Jeju's other code; glucose sentinel
        {"시도코드": "51"},  # 22: Gangwon's new code
        {"시도코드": "52"},  # 23: Jeonbuk's new code
        {"시도코드": "99"},  # 24: bad code: no province, no raw province
        {"연령대코드(5세단위)": "inf"},  # 25: whole row, bad code
        {"기준년도": "inf"},  # 26: whole row, out of range
    ]
    path = make_file(tmp_path / "b.csv", rows)
    frame, rejects, lines = read_all(path, expected_year=2024)
    assert lines == 25
    whole = rejects[rejects["whole_row"]]
    assert len(frame) + len(whole) == lines
    got = {(r.line_no, r.column, r.reason, r.raw_value) for r in whole.itertuples()}
    assert got == {
        (11, "sex", "missing", None), (12, "sex", "bad_code", "3"), (13, "age_group", "bad_code", "19"),
        (14, "subscriber_id", "duplicate subscriber id (first at line 2)", "1"),
        (15, None, "field_count", "2024,99,11,1,9"),
        (16, "year", "year_mismatch", "2023"), (19, "subscriber_id", "unparseable", "x1"),
        (20, "age_group", AGE_BAND_UNDER_20, "4"), (25, "age_group", "bad_code", "inf"),
        (26, "year", "out_of_range", "inf"),
    }
    cells = {(r.line_no, r.column, r.reason, r.raw_value) for r in rejects[~rejects["whole_row"]].itertuples()}
    assert cells == {
        (3, "waist_cm", "sentinel", "999"), (4, "waist_cm", "out_of_range", "8"),
        (5, "waist_cm", "out_of_range", "680"), (6, "ast", "sentinel", "9999"),
        (9, "sbp", "unparseable", "abc"),
        (10, "smoking", "bad_code", "4"), (18, "creatinine", "out_of_range", "98"),
        (18, "ldl", "out_of_range", "-5"), (21, "fasting_glucose", "sentinel", "9999"),
        (24, "province", "bad_code", "99"),
    }
    by_line = frame.set_index("line_no")
    assert np.isnan(by_line.loc[3, "waist_cm"]) and by_line.loc[2, "waist_cm"] == 84.5
    assert by_line.loc[6, "alt"] == 999 and by_line.loc[6, "ggt"] == 999
    assert by_line.loc[8, "vision_left"] == 9.9 and by_line.loc[8, "height_cm"] == 130
    assert by_line.loc[10, "hearing_left"] == 3 and np.isnan(by_line.loc[10, "smoking"])
    assert np.isnan(by_line.loc[17, "drinking"]) and by_line.loc[2, "drinking"] == 1
    assert by_line.loc[9, "dbp"] == 78  # the rest of the row is kept
    assert by_line.loc[7, "fasting_glucose"] == 991 and 991 in BY_NAME["fasting_glucose"].ceilings
    provinces = by_line.loc[[2, 21, 22, 23, 24], ["province", "province_raw"]].to_numpy().tolist()
    assert provinces[:4] == [[11, 11], [49, 50], [42, 51], [45, 52]] and np.isnan(provinces[4]).all()
    for c in ("year", "subscriber_id", "sex", "age_group", "line_no"):
        assert frame[c].dtype == np.int64
    assert set(frame.select_dtypes("float64").columns) == (set(CANONICAL_COLUMNS) | {"province_raw"}) - {
        "year", "subscriber_id", "sex", "age_group", "release_date"}


def test_undecodable_line_in_utf8_file(tmp_path):
    path = make_file(tmp_path / "u.csv", [{}, {}], encoding="utf-8", newline="\n")
    data = path.read_bytes().replace(b"\n2024,2,", b"\n2024,2\xff,", 1)
    path.write_bytes(data)
    frame, rejects, lines = read_all(path)
    assert lines == 2 and frame["subscriber_id"].tolist() == [1]
    assert rejects[["line_no", "reason", "whole_row"]].to_dict("records") == [
        {"line_no": 3, "reason": "undecodable", "whole_row": True}]


def test_non_ascii_text_cell_in_cp949_file(tmp_path):
    path = make_file(tmp_path / "k.csv", [{"흡연상태": "없음"}])
    frame, rejects, _ = read_all(path)
    assert len(frame) == 1 and np.isnan(frame["smoking"].iloc[0])
    assert rejects[["column", "reason", "raw_value"]].to_dict("records") == [
        {"column": "smoking", "reason": "unparseable", "raw_value": "없음"}]


# --- byte ranges --------------------------------------------------------------------------------


@pytest.mark.parametrize("trailing", [True, False])
def test_ranges_cover_the_file(tmp_path, trailing):
    path = tmp_path / "r.csv"
    write_file(path, 1000, seed=9, garbage=False)
    text = path.read_bytes()
    if not trailing:
        text = text.rstrip(b"\r\n")
    # blank lines and one bad line in the middle
    text = text.replace(b"\r\n2024,500,", b"\r\n\r\n2024,500,", 1).replace(b"\r\n2024,600,", b"\r\n2024,600,,,", 1)
    path.write_bytes(text)
    layout = inspect_file(path)
    ranges = plan_ranges(layout, target_rows=97)
    assert ranges[0].start == layout.header_bytes and ranges[-1].end == layout.size
    assert all(a.end == b.start for a, b in zip(ranges, ranges[1:], strict=False))
    assert all(a.first_line_no + a.n_lines == b.first_line_no for a, b in zip(ranges, ranges[1:], strict=False))
    assert sum(r.n_lines for r in ranges) == text.count(b"\n") - 1 + (0 if trailing else 1)
    parts = [read_range(layout, r) for r in ranges]
    whole = parse_bytes(layout, text[layout.header_bytes:], 2)
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    rejects = pd.concat([p.rejects for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(frame, whole.frame)
    pd.testing.assert_frame_equal(rejects, whole.rejects)
    lines_read = sum(p.lines_read for p in parts)
    assert lines_read == 1000 == len(frame) + int(rejects["whole_row"].sum())
    assert rejects["reason"].tolist() == ["field_count"]
    assert 501 not in set(frame["line_no"])  # the blank line is not a data line


def test_read_range_reads_only_its_range(tmp_path):
    path = tmp_path / "o.csv"
    write_file(path, 300, seed=4, garbage=False)
    layout = inspect_file(path)
    ranges = plan_ranges(layout, target_rows=100)
    before = read_range(layout, ranges[1])
    data = bytearray(path.read_bytes())  # wreck everything outside range 1
    data[ranges[0].start:ranges[0].end] = b"x" * (ranges[0].end - ranges[0].start)
    data[ranges[2].start:] = b"y" * (len(data) - ranges[2].start)
    path.write_bytes(bytes(data))
    after = read_range(layout, ranges[1])
    pd.testing.assert_frame_equal(before.frame, after.frame)
    assert after.frame["line_no"].iloc[0] == 102 and len(after.frame) == 100


# --- planning scan: ranges, checksums, limits ---------------------------------------------------


def body_lines(path, layout):
    """(start, end-with-newline) of every physical body line, computed independently of the reader."""
    data = path.read_bytes()
    out, pos = [], layout.header_bytes
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        out.append((pos, end))
        pos = end
    return data, out


@pytest.mark.parametrize(("target_rows", "max_bytes", "block_bytes"), [(97, 16 << 20, 8 << 20), (1000, 2_000, 700)])
def test_scan_ranges_bounded_by_lines_and_bytes_with_checksums(tmp_path, target_rows, max_bytes, block_bytes):
    path = tmp_path / "s.csv"
    write_file(path, 1000, seed=9, garbage=False)
    layout = inspect_file(path)
    scan = scan_file(layout, target_rows, max_bytes, max_line_bytes=400, block_bytes=block_bytes)
    data, lines = body_lines(path, layout)
    ranges = scan.ranges
    assert ranges[0].start == layout.header_bytes and ranges[-1].end == len(data)
    assert all(a.end == b.start and a.first_line_no + a.n_lines == b.first_line_no
               for a, b in zip(ranges, ranges[1:], strict=False))
    assert [r.index for r in ranges] == list(range(len(ranges)))
    ends = {end for _, end in lines}
    for r in ranges:
        assert r.end in ends and not r.oversized  # newline-aligned
        assert r.n_lines <= target_rows and r.end - r.start <= max_bytes
        assert r.checksum == zlib.crc32(data[r.start:r.end])
        assert r.n_lines == sum(1 for s, _ in lines if r.start <= s < r.end)
    # greedy: a range ends only when the next line would break a limit
    for r, _nxt in zip(ranges, ranges[1:], strict=False):
        next_len = lines[r.last_line_no - 1][1] - lines[r.last_line_no - 1][0]
        assert r.n_lines == target_rows or r.end - r.start + next_len > max_bytes
    assert len(ranges) > 1
    assert [(r.start, r.end, r.checksum) for r in plan_ranges(layout, target_rows, max_bytes, 400)] == [
        (r.start, r.end, r.checksum) for r in ranges]
    stat = os.stat(path)
    assert (scan.size, scan.mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert scan.profile.lines == 1000 and scan.profile.years == {2024: 1000} and not scan.profile.duplicates


def test_scan_limits_are_checked(tmp_path):
    layout = inspect_file(make_file(tmp_path / "l.csv", [{}]))
    with pytest.raises(ValueError, match="target_rows"):
        scan_file(layout, target_rows=0)
    with pytest.raises(ValueError, match="max_bytes"):
        scan_file(layout, max_bytes=100, max_line_bytes=99)
    assert len(scan_file(layout, max_bytes=102, max_line_bytes=100).ranges) == 1


def long_line_file(tmp_path, sizes, rows=16, last=None):
    """A valid file whose lines 3, 6, 9, ... are junk lines of the given byte sizes (without CRLF);
    with ``last``, the last line is a junk line of that size with no line break after it."""
    path = make_file(tmp_path / "long.csv", [{} for _ in range(rows)], trailing=last is None)
    text = path.read_bytes().split(b"\r\n")
    for k, size in enumerate(sizes):
        text[2 + 3 * k] = b"2024," + b"7" * (size - 5)  # list index i holds physical line i + 1
    if last is not None:
        text[-1] = b"9" * last
    path.write_bytes(b"\r\n".join(text))
    return path


@pytest.mark.parametrize("block_bytes", [8 << 20, 64, 1000])
def test_oversized_lines_are_isolated_and_rejected_unread(tmp_path, block_bytes):
    limit = 300
    path = long_line_file(tmp_path, [301, 5000, 300, 20_000], rows=12, last=2_500)
    layout = inspect_file(path)
    scan = scan_file(layout, target_rows=4, max_line_bytes=limit, block_bytes=block_bytes)
    data, lines = body_lines(path, layout)
    oversized = [r for r in scan.ranges if r.oversized]
    # line 9 is exactly at the limit: a normal line; the others are one-line ranges
    assert [(r.first_line_no, r.n_lines) for r in oversized] == [(3, 1), (6, 1), (12, 1), (13, 1)]
    for r in oversized:
        start, end = lines[r.first_line_no - 2]
        assert (r.start, r.end) == (start, end) and r.checksum == zlib.crc32(data[start:end])
    assert all(r.n_lines <= 4 for r in scan.ranges)
    assert scan.profile.lines == 12 == sum(r.n_lines for r in scan.ranges)

    parts = [read_range(layout, r, scan.read_options()) for r in scan.ranges]
    rejects = pd.concat([p.rejects for p in parts], ignore_index=True)
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    assert sum(p.lines_read for p in parts) == 12 == len(frame) + int(rejects["whole_row"].sum())
    too_long = rejects[rejects["reason"] == LINE_TOO_LONG]
    assert too_long["line_no"].tolist() == [3, 6, 12, 13] and too_long["whole_row"].all()
    assert too_long["raw_value"].tolist()[:3] == ["2024," + "7" * 195] * 3
    assert too_long["raw_value"].iloc[3] == "9" * 200
    assert set(rejects["reason"]) == {LINE_TOO_LONG, "field_count"}  # line 9: 300 bytes, one field
    # the same file read in one piece with the same limit gives the same rows and rejects
    whole = parse_bytes(layout, data[layout.header_bytes:], 2, options=ReadOptions(max_line_bytes=limit))
    pd.testing.assert_frame_equal(frame, whole.frame)
    pd.testing.assert_frame_equal(rejects, whole.rejects)


def test_pieces_never_hold_a_long_line(tmp_path):
    """By construction: with block B and limit L, no piece exceeds B + L + 1 bytes, whatever the line."""
    block, limit = 256, 100
    path = long_line_file(tmp_path, [101, 102, 5000, 257, 100_000], rows=18)
    layout = inspect_file(path)
    data, lines = body_lines(path, layout)
    pos, streamed = layout.header_bytes, []
    with LocalSource(path) as source:
        for piece in _pieces(source.blocks(layout.header_bytes, len(data), block), layout.header_bytes, limit):
            if isinstance(piece, _Oversized):
                assert piece.start == pos and (piece.start, piece.end) in lines
                assert piece.end - piece.start > limit + 2 and piece.checksum == zlib.crc32(data[piece.start:piece.end])
                streamed.append(lines.index((piece.start, piece.end)) + 2)
                pos = piece.end
            else:
                assert piece.at == pos and len(piece.data) <= block + limit + 1
                assert piece.data == data[pos:pos + len(piece.data)] and piece.data.endswith(b"\n")
                pos += len(piece.data)
    assert pos == len(data)  # pieces and streamed lines tile the body
    assert {9, 15} <= set(streamed) <= {3, 6, 9, 12, 15}  # 5,000 and 100,000 bytes cannot fit a piece


def test_a_huge_line_keeps_memory_bounded(tmp_path):
    """A 24 MB line planned and read with a 64 KiB limit: traced peak stays a few MB (the line never whole)."""
    path = make_file(tmp_path / "big.csv", [{}, {}])
    with open(path, "ab") as fh:
        fh.write(b"2024,3," + b"1" * (24 << 20) + b"\r\n")
        fh.write(b"2024,4,11,1,9" + b"," * 28 + b"\r\n")
    layout = inspect_file(path)
    tracemalloc.start()
    try:
        scan = scan_file(layout, block_bytes=1 << 20)
        _, scan_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        big = next(r for r in scan.ranges if r.oversized)
        result = read_range(layout, big, scan.read_options())
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert big.first_line_no == 4 and big.end - big.start > 24 << 20
    assert scan_peak < 6 << 20 and read_peak < 4 << 20
    assert result.lines_read == 1 and result.frame.empty
    assert result.rejects[["line_no", "reason"]].to_dict("records") == [{"line_no": 4, "reason": LINE_TOO_LONG}]
    assert len(result.rejects["raw_value"].iloc[0]) == 200


# --- planning scan: the profile ---------------------------------------------------------------------


@pytest.mark.parametrize("block_bytes", [8 << 20, 1000])  # one piece, or many pieces across ranges
def test_duplicates_across_ranges_point_to_the_first_line(tmp_path, block_bytes):
    ids = list(range(1, 301))
    ids[120] = 5  # line 122 repeats line 6
    ids[250] = 5  # line 252 too
    ids[260] = 200  # line 262 repeats line 201
    ids[10] = 77  # line 12 is the first 77 ...
    ids[76] = 1_000  # ... and id 77's own line no longer holds 77
    ids[280] = 77  # line 282 repeats line 12
    rows = [{"가입자일련번호": str(i)} for i in ids]
    rows[3]["성별코드"] = "9"  # line 5: id 4 is invalid here, so line 31 (id 4) is a first occurrence
    rows[29]["가입자일련번호"] = "4"
    rows[40]["기준년도"] = "2023"  # line 42: id 41 of another year is another record
    rows[90]["가입자일련번호"] = "41"  # line 92: id 41 of 2024 is no repeat
    path = make_file(tmp_path / "d.csv", rows)
    layout = inspect_file(path)
    scan = scan_file(layout, target_rows=50, block_bytes=block_bytes)
    assert dict(scan.profile.duplicates) == {122: 6, 252: 6, 262: 201, 282: 12}
    assert scan.profile.years == {2024: 298, 2023: 1} and scan.profile.main_year == 2024
    assert any("several years" in w for w in scan.profile.warnings)
    options = scan.read_options(expected_year=2024)
    parts = [read_range(layout, r, options.for_range(r)) for r in scan.ranges]
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    rejects = pd.concat([p.rejects for p in parts], ignore_index=True)
    whole = rejects[rejects["whole_row"]]
    assert {(r.line_no, r.reason) for r in whole.itertuples()} == {
        (5, "bad_code"), (42, "year_mismatch"),
        (122, duplicate_reason(6)), (252, duplicate_reason(6)), (262, duplicate_reason(201)),
        (282, duplicate_reason(12)),
    }
    assert duplicate_reason(6) == "duplicate subscriber id (first at line 6)"
    assert frame["subscriber_id"].is_unique and len(frame) + len(whole) == 300
    assert frame.loc[frame["line_no"] == 31, "subscriber_id"].item() == 4


def test_within_range_duplicates_when_read_without_a_plan(tmp_path):
    path = make_file(tmp_path / "w.csv", [{}, {}, {"가입자일련번호": "2"}])
    layout = inspect_file(path)
    result = read_range(layout, plan_ranges(layout)[0])  # no options: repeats within the range only
    assert result.rejects[["line_no", "reason"]].to_dict("records") == [
        {"line_no": 4, "reason": duplicate_reason(3)}]


def test_2013_file_reads_with_correct_age_bands(tmp_path):
    path = tmp_path / "y2013.csv"
    write_file(path, 5000, year=2013, seed=4, style="2013", garbage=False)
    body = path.read_text(encoding="cp949").splitlines()
    assert body[0].startswith("HCHK_YEAR,IDV_ID,SEX,AGE_GROUP,")
    published = {int(line.split(",")[3]) for line in body[1:]}
    assert published == set(range(1, 15))  # the old numbering: 1 = 20-24 ... 14 = 85+
    layout = inspect_file(path)
    scan = scan_file(layout, target_rows=1500)
    assert scan.profile.age_scheme == AGE_SCHEME_2013 and set(scan.profile.age_codes) == set(range(1, 15))
    assert any("1-14" in w for w in scan.profile.warnings)
    frame, rejects, lines = read_all(path, target_rows=1500, expected_year=2013)
    assert rejects.empty and lines == 5000
    assert set(frame["age_group"]) == set(range(5, 19))
    expected = generate_frame(5000, year=2013, seed=4, style="2013")
    pd.testing.assert_series_equal(frame["age_group"], expected["age_group"])
    # a mean age near 47 says the bands were not shifted by 20 years
    assert 44 <= (5 * frame["age_group"] - 3).mean() <= 50
    # read as if from 2014 on, the same file loses everyone under 40 to a reason
    plain = read_range(layout, scan.ranges[0], ReadOptions())
    assert set(plain.rejects["reason"]) == {AGE_BAND_UNDER_20}


@pytest.mark.parametrize(
    ("year", "codes", "scheme"),
    [
        (2013, [1] * 10 + [14] * 10, AGE_SCHEME_2013),
        (2012, [5] * 10, AGE_SCHEME_2013),  # 1-14 numbering fits (40+ only): the year decides
        (2014, [1] * 10 + [14] * 10, AGE_SCHEME_2014),  # from 2014: codes 1-4 are rejects
        (2013, [1] * 999 + [15], AGE_SCHEME_2013),  # one stray 15 in 1,000: a bad code
        (2013, [1] * 998 + [15] * 2, AGE_SCHEME_2014),  # above 0.1 %: the 5-18 numbering
        (2013, [5] * 90 + [18] * 10, AGE_SCHEME_2014),
        (None, [], AGE_SCHEME_2014),
    ],
)
def test_age_scheme_decision(year, codes, scheme):
    warnings = []
    assert _decide_age_scheme(year, np.asarray(codes, dtype=float), warnings) == scheme


def test_2019_style_drinking_blanks_give_a_plausible_drinker_share(tmp_path):
    path = tmp_path / "y2019.csv"
    write_file(path, 20_000, year=2019, seed=6, style="2019")
    column = [line.split(",")[26] for line in path.read_text(encoding="cp949").splitlines()[1:]]
    assert "0" not in column and 0.35 < column.count("") / len(column) < 0.65
    layout = inspect_file(path)
    scan = scan_file(layout, target_rows=6000)
    assert scan.profile.drinking_blank_means_no and scan.profile.drinking.no == 0
    assert any("drinking" in w for w in scan.profile.warnings)
    frame, rejects, lines = read_all(path, target_rows=6000)
    assert lines == 20_000 and not rejects["whole_row"].any()
    assert frame["drinking"].notna().all()
    share = frame["drinking"].mean()
    assert 0.40 < share < 0.60  # real releases: about half drink (2017: 49 %)
    male = frame["sex"] == 1
    assert frame.loc[male, "drinking"].mean() > frame.loc[~male, "drinking"].mean() + 0.2
    # read without the decision, blanks stay unknown and almost everyone known "drinks"
    naive = pd.concat([read_range(layout, r).frame for r in scan.ranges])
    assert naive["drinking"].mean() > 0.99


def test_normal_release_keeps_drinking_blanks_unknown(tmp_path):
    path = tmp_path / "y2020.csv"
    write_file(path, 20_000, year=2020, seed=6, style="2020")
    scan = scan_file(inspect_file(path))
    assert not scan.profile.drinking_blank_means_no
    assert scan.profile.drinking.blank < 20 and scan.profile.drinking.no > 5000


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        (DrinkingCounts(blank=500, no=0, yes=500), True),
        (DrinkingCounts(blank=100, no=0, yes=900), True),  # exactly 10 % blank, 100 blanks
        (DrinkingCounts(blank=99, no=0, yes=0 + 500), True),  # 16.5 % blank... but only 99 blanks
        (DrinkingCounts(blank=500, no=1, yes=999), True),  # 0.1 % zeros tolerated
        (DrinkingCounts(blank=500, no=2, yes=998), False),
        (DrinkingCounts(blank=110, no=0, yes=1000), False),  # under 10 % blank
        (DrinkingCounts(blank=1000, no=0, yes=0), False),  # nothing answered (2016: not asked)
        (DrinkingCounts(blank=20, no=490, yes=490), False),  # a normal release
    ],
)
def test_drinking_blank_decision(counts, expected):
    if counts.blank == 99:
        expected = False  # never decided from fewer than 100 blanks
    assert drinking_blank_means_no(counts) is expected


def test_read_options_round_trip_through_json(tmp_path):
    options = ReadOptions(expected_year=2013, age_scheme=AGE_SCHEME_2013, drinking_blank_means_no=True,
                          duplicates={122: 6, 40: 3}, file_size=10, mtime_ns=5, max_line_bytes=300)
    again = ReadOptions.from_dict(json.loads(json.dumps(options.to_dict())))
    assert again == options
    sub = options.for_range(ByteRange(0, 0, 1, 30, 50))  # lines 30..79
    assert sub.duplicates == {40: 3} and sub.expected_year == 2013
    with pytest.raises(ValueError):
        ReadOptions(age_scheme="1999")


# --- a file that changes after planning ---------------------------------------------------------


def test_a_changed_file_raises_file_changed_error(tmp_path):
    path = tmp_path / "c.csv"
    write_file(path, 900, seed=3, garbage=False)
    original = path.read_bytes()
    layout = inspect_file(path)
    scan = scan_file(layout, target_rows=300)
    options = scan.read_options()
    first, second = scan.ranges[0], scan.ranges[1]
    expected_first = read_range(layout, first, options).frame

    def rewrite(content: bytes, keep_mtime: bool) -> None:
        path.write_bytes(content)
        if keep_mtime:
            os.utime(path, ns=(scan.mtime_ns, scan.mtime_ns))

    # one digit of range 1 changed, same size and modification time: only the checksum can tell
    changed = bytearray(original)
    at = changed.index(b",", second.start + 10) - 1
    changed[at] = ord("8") if changed[at] == ord("9") else ord("9")
    rewrite(bytes(changed), keep_mtime=True)
    with pytest.raises(FileChangedError, match=r"changed after the job was planned: .*lines 302-601.*checksum"):
        read_range(layout, second, options)
    pd.testing.assert_frame_equal(read_range(layout, first, options).frame, expected_first)  # range 0 intact

    # the original bytes written again later: the modification time tells
    rewrite(original, keep_mtime=False)
    os.utime(path, ns=(scan.mtime_ns + 10**9, scan.mtime_ns + 10**9))
    with pytest.raises(FileChangedError, match="modified at"):
        read_range(layout, first, options)

    # a line appended, modification time put back: the size tells
    rewrite(original + b"2024,901\r\n", keep_mtime=True)
    with pytest.raises(FileChangedError, match=f"it was {len(original):,} bytes, it is now"):
        read_range(layout, first, options)

    # the original file back, as planned: reads again
    rewrite(original, keep_mtime=True)
    pd.testing.assert_frame_equal(read_range(layout, first, options).frame, expected_first)
