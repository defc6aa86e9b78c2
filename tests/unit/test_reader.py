"""The reader: every release style, header variants, bad input and byte ranges."""

import logging

import numpy as np
import pandas as pd
import pytest

from shared.data.catalog import CANONICAL_COLUMNS, RELEASE_HEADERS
from shared.data.generate import generate_frame, write_file
from shared.data.reader import (
    EmptyFileError,
    EncodingError,
    MissingColumnsError,
    NotCsvError,
    inspect_file,
    iter_chunks,
    parse_bytes,
    plan_ranges,
    read_range,
)

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


@pytest.mark.parametrize("style", ["2014", "2017", "2020", "2024", "english"])
@pytest.mark.parametrize("encoding", ["cp949", "utf-8"])
def test_round_trip_every_style(tmp_path, style, encoding):
    year = {"2014": 2014, "2017": 2017, "2020": 2020, "2024": 2024, "english": 2018}[style]
    path = tmp_path / "f.csv"
    write_file(path, 3000, year=year, seed=5, style=style, encoding=encoding, garbage=False)
    layout = inspect_file(path)
    ascii_header = style == "english"  # an ASCII header is valid UTF-8: reported as such
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
    assert int(changed.to_numpy().sum()) == len(rejects) > 0
    assert set(rejects["reason"]) <= {"sentinel", "out_of_range"}
    for row in rejects.itertuples():
        assert np.isnan(frame.loc[frame["line_no"] == row.line_no, row.column].iloc[0])


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
    assert list(frame.columns) == [*CANONICAL_COLUMNS, "line_no"]


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
        {"식전혈당(공복혈당)": "991"},  # 7: sentinel
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
    ]
    path = make_file(tmp_path / "b.csv", rows)
    frame, rejects, lines = read_all(path, expected_year=2024)
    assert lines == 18
    whole = rejects[rejects["whole_row"]]
    assert len(frame) + len(whole) == lines
    got = {(r.line_no, r.column, r.reason, r.raw_value) for r in whole.itertuples()}
    assert got == {
        (11, "sex", "missing", None), (12, "sex", "bad_code", "3"), (13, "age_group", "bad_code", "19"),
        (14, "subscriber_id", "duplicate_id", "1"), (15, None, "field_count", "2024,99,11,1,9"),
        (16, "year", "year_mismatch", "2023"), (19, "subscriber_id", "unparseable", "x1"),
    }
    cells = {(r.line_no, r.column, r.reason, r.raw_value) for r in rejects[~rejects["whole_row"]].itertuples()}
    assert cells == {
        (3, "waist_cm", "sentinel", "999"), (4, "waist_cm", "out_of_range", "8"),
        (5, "waist_cm", "out_of_range", "680"), (6, "ast", "sentinel", "9999"),
        (7, "fasting_glucose", "sentinel", "991"), (9, "sbp", "unparseable", "abc"),
        (10, "smoking", "bad_code", "4"), (18, "creatinine", "out_of_range", "98"),
        (18, "ldl", "out_of_range", "-5"),
    }
    by_line = frame.set_index("line_no")
    assert np.isnan(by_line.loc[3, "waist_cm"]) and by_line.loc[2, "waist_cm"] == 84.5
    assert by_line.loc[6, "alt"] == 999 and by_line.loc[6, "ggt"] == 999
    assert by_line.loc[8, "vision_left"] == 9.9 and by_line.loc[8, "height_cm"] == 130
    assert by_line.loc[10, "hearing_left"] == 3 and np.isnan(by_line.loc[10, "smoking"])
    assert np.isnan(by_line.loc[17, "drinking"]) and by_line.loc[2, "drinking"] == 1
    assert by_line.loc[9, "dbp"] == 78  # the rest of the row is kept
    for c in ("year", "subscriber_id", "sex", "age_group", "line_no"):
        assert frame[c].dtype == np.int64
    assert set(frame.select_dtypes("float64").columns) == set(CANONICAL_COLUMNS) - {
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
