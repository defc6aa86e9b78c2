"""The column catalog: header spellings, release header lists and code tables."""

import numpy as np
import pytest

from shared.data.catalog import (
    AGE_2013_OFFSET,
    AGE_CODES,
    AGE_GROUPS,
    AGE_SCHEME_2013,
    AGE_SCHEME_2014,
    BY_NAME,
    CANONICAL_COLUMNS,
    PROVINCE_CANONICAL,
    PROVINCES,
    RELEASE_HEADERS,
    REQUIRED_COLUMNS,
    SMOKING,
    STYLE_COLUMNS,
    canonical_province,
    guess_style,
    match_header,
    normalise_header,
)

CANONICAL = (
    "year subscriber_id province sex age_group height_cm weight_kg waist_cm vision_left vision_right "
    "hearing_left hearing_right sbp dbp fasting_glucose total_cholesterol triglycerides hdl ldl hemoglobin "
    "urine_protein creatinine ast alt ggt smoking drinking oral_exam dental_caries missing_teeth tooth_wear "
    "wisdom_tooth tartar release_date"
).split()


def test_canonical_order_is_the_contract():
    assert list(CANONICAL_COLUMNS) == CANONICAL
    assert REQUIRED_COLUMNS == ("year", "subscriber_id", "sex", "age_group")


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("수축기 혈압", "sbp"), ("수축기혈압", "sbp"), ("BP_HIGH", "sbp"),
        ("신장(5Cm단위)", "height_cm"), ("신장(5cm단위)", "height_cm"), ("신장 (5Cm단위)", "height_cm"),
        ("체중(5Kg 단위)", "weight_kg"), ("체중(5kg단위)", "weight_kg"), ("체중(5Kg단위)", "weight_kg"),
        ("(혈청지오티)AST", "ast"), ("혈청지오티(AST)", "ast"), ("SGOT_AST", "ast"),
        ("(혈청지오티)ALT", "alt"), ("혈청지피티(ALT)", "alt"), ("SGPT_ALT", "alt"), ("SGOT_ALT", "alt"),
        ("성별", "sex"), ("성별코드", "sex"), ("SEX", "sex"),
        ("치석유무", "tartar"), ("치석", "tartar"), ("TTR_YN", "tartar"),
        ("결손치 유무", "missing_teeth"), ("결손치유무", "missing_teeth"),
        ("데이터 기준일자", "release_date"), ("데이터공개일자", "release_date"), ("데이터 공개일자", "release_date"),
        ("DATA_STD__DT", "release_date"), ("DATA_STD_DT", "release_date"),
        ("가입자 일련번호", "subscriber_id"), ("IDV_ID", "subscriber_id"),
        ("연령대 코드(5세단위)", "age_group"), ("연령대코드 (5세 단위)", "age_group"),
        ("\ufeff기준년도", "year"), (" hchk_year ", "year"), ("구강검진 수검여부", "oral_exam"),
        ("감마 지티피", "ggt"), ("총 콜레스테롤", "total_cholesterol"), ("HDL 콜레스테롤", "hdl"),
    ],
)
def test_header_variants(raw, canonical):
    assert match_header(raw) == canonical


def test_unknown_header_is_none():
    assert match_header("비고") is None
    assert normalise_header(" A b\tC ") == "abc"


@pytest.mark.parametrize(
    ("style", "n"),
    [("2014", 31), ("2017", 34), ("2020", 31), ("2024", 33), ("english", 34), ("2013", 31), ("2019", 34)],
)
def test_release_headers_map_completely(style, n):
    headers = RELEASE_HEADERS[style]
    assert len(headers) == n
    assert None not in STYLE_COLUMNS[style]
    assert len(set(STYLE_COLUMNS[style])) == n
    assert guess_style(headers) == style


def test_release_header_details():
    assert RELEASE_HEADERS["english"][0] == "HCHK_YEAR" and RELEASE_HEADERS["english"][-1] == "DATA_STD__DT"
    assert RELEASE_HEADERS["2020"][2:4] == ("시도코드", "성별코드")
    assert RELEASE_HEADERS["2014"][2:5] == ("성별코드", "연령대코드(5세단위)", "시도코드")
    assert "release_date" not in STYLE_COLUMNS["2024"]


def test_code_tables():
    assert AGE_GROUPS[5] == (20, 24, "20-24")
    assert AGE_GROUPS[17] == (80, 84, "80-84")
    assert AGE_GROUPS[18] == (85, None, "85+")
    assert sorted(PROVINCES) == [11, 26, 27, 28, 29, 30, 31, 36, *range(41, 53)]
    assert PROVINCES[26][1] == "Busan" and PROVINCES[49][1] == PROVINCES[50][1] == "Jeju"
    assert SMOKING[3] == "current"
    assert BY_NAME["vision_left"].special_values == (9.9,)
    assert 999.0 in BY_NAME["waist_cm"].sentinels


def test_ceilings_are_kept_not_blanked():
    glucose = BY_NAME["fasting_glucose"]
    assert glucose.ceilings == (991.0,) and 991.0 not in glucose.sentinels and 9999.0 in glucose.sentinels
    assert all(BY_NAME[c].ceilings == (999.0,) for c in ("ast", "alt", "ggt"))


def test_canonical_provinces():
    codes = np.array([11.0, 49.0, 50.0, 51.0, 52.0, 42.0, 45.0, np.nan])
    out = canonical_province(codes)
    assert out[:7].tolist() == [11, 49, 49, 42, 45, 42, 45] and np.isnan(out[7])
    assert codes[2] == 50  # the input is not changed
    assert all(PROVINCES[raw][1] == PROVINCES[canon][1] for raw, canon in PROVINCE_CANONICAL.items())


def test_age_schemes():
    assert AGE_CODES[AGE_SCHEME_2013] == tuple(float(k) for k in range(1, 15))
    assert AGE_CODES[AGE_SCHEME_2014] == tuple(float(k) for k in range(5, 19))
    # code k of the 2013 numbering is the band k + 4 of the manual (1 = 20-24, 14 = 85+)
    assert AGE_GROUPS[1 + AGE_2013_OFFSET][:2] == (20, 24) and AGE_GROUPS[14 + AGE_2013_OFFSET][0] == 85
