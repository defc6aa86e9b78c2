"""The NHIS health-screening column catalog: every fact about a column in one place.

docs/DATA.md is the prose version, with the evidence for each fact (the NHIS file description on
data.go.kr, the manual paraphrased by statgarten/datatoys, a 2014-file exploration, public analysis
notebooks of each release). Headers are matched by *normalised name* (all whitespace removed, ASCII
lower-cased), never by position, because every release spells and orders them differently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # numpy only where an array is transformed: the web process imports this catalog
    import numpy as np

Kind = Literal["int", "float", "code", "date"]


@dataclass(frozen=True)
class ColumnSpec:
    """One canonical column: what it means, how to check it, and how releases spell it."""

    name: str
    label: str
    unit: str | None
    kind: Kind
    headers: tuple[str, ...]
    required: bool = False
    bounds: tuple[float, float] | None = None
    codes: tuple[float, ...] | None = None
    sentinels: tuple[float, ...] = ()
    special_values: tuple[float, ...] = ()  # documented codes kept as published (vision 9.9)
    ceilings: tuple[float, ...] = ()  # kept as published; the true value is at least this
    decimals: int = 0  # how the published file writes the value
    note: str = ""
    extra: dict = field(default_factory=dict, compare=False)


# --- code tables -------------------------------------------------------------------------------

SEX = MappingProxyType({1: ("남", "male"), 2: ("여", "female")})


def _age_groups() -> dict[int, tuple[int, int | None, str]]:
    groups: dict[int, tuple[int, int | None, str]] = {}
    for k in range(1, 18):
        lo, hi = 5 * k - 5, 5 * k - 1
        groups[k] = (lo, hi, f"{lo}-{hi}")
    groups[18] = (85, None, "85+")
    return groups


AGE_GROUPS = MappingProxyType(_age_groups())
"""k -> (lowest age, highest age or None, label). Code k covers ages 5k-5..5k-1; 18 = 85+ (DT)."""

# Age-band numbering schemes (docs/DATA.md, "Age bands"). Files up to 2013 number the bands 1-14
# (1 = 20-24, 14 = 85+); files from 2014 use the manual's 5-18 (5 = 20-24, 18 = 85+). Codes 1-4 of
# the 5-18 scheme (ages 0-19) never occur in a file from 2014 on: such a row is rejected.
AGE_SCHEME_2013 = "2013"
AGE_SCHEME_2014 = "2014"
AGE_SCHEMES = (AGE_SCHEME_2013, AGE_SCHEME_2014)
LAST_2013_SCHEME_YEAR = 2013
AGE_2013_OFFSET = 4  # 2013 code + 4 = canonical code
AGE_CODES: MappingProxyType[str, tuple[float, ...]] = MappingProxyType({
    AGE_SCHEME_2013: tuple(float(k) for k in range(1, 15)),
    AGE_SCHEME_2014: tuple(float(k) for k in range(5, 19)),
})
"""The codes a file of each scheme may hold (before remapping)."""

PROVINCES = MappingProxyType(
    {
        11: ("서울특별시", "Seoul"),
        26: ("부산광역시", "Busan"),
        27: ("대구광역시", "Daegu"),
        28: ("인천광역시", "Incheon"),
        29: ("광주광역시", "Gwangju"),
        30: ("대전광역시", "Daejeon"),
        31: ("울산광역시", "Ulsan"),
        36: ("세종특별자치시", "Sejong"),
        41: ("경기도", "Gyeonggi"),
        42: ("강원도", "Gangwon"),
        43: ("충청북도", "Chungbuk"),
        44: ("충청남도", "Chungnam"),
        45: ("전라북도", "Jeonbuk"),
        46: ("전라남도", "Jeonnam"),
        47: ("경상북도", "Gyeongbuk"),
        48: ("경상남도", "Gyeongnam"),
        49: ("제주특별자치도", "Jeju"),
        # 50/51/52: the legal-district (법정동) codes of the special self-governing provinces:
        # Jeju since 2006 (the 2017/2018 files use it), Gangwon since 2023, Jeonbuk since 2024
        # (whether the files use 51/52 is unverified). Read as 49/42/45: PROVINCE_CANONICAL.
        50: ("제주특별자치도", "Jeju"),
        51: ("강원특별자치도", "Gangwon"),
        52: ("전북특별자치도", "Jeonbuk"),
    }
)
PROVINCE_CANONICAL = MappingProxyType({50: 49, 51: 42, 52: 45})
"""Published code -> the code every year is reported under (the same province, renamed)."""


def canonical_province(codes: np.ndarray) -> np.ndarray:
    """float64 province codes (NaN = unknown) with 50/51/52 replaced by 49/42/45."""
    import numpy as np

    out = np.asarray(codes, dtype=np.float64).copy()
    for published, canonical in PROVINCE_CANONICAL.items():
        out[out == published] = canonical
    return out


URINE_PROTEIN = MappingProxyType(
    {1: "(-)", 2: "(±) trace", 3: "(+1)", 4: "(+2)", 5: "(+3)", 6: "(+4)"}
)
HEARING = MappingProxyType({1: "normal", 2: "abnormal", 3: "undocumented code (kept as published)"})
SMOKING = MappingProxyType({1: "never", 2: "former", 3: "current"})
DRINKING = MappingProxyType({0: "does not drink", 1: "drinks"})
YES_NO = MappingProxyType({0: "no", 1: "yes"})

LAB_SENTINELS = (9999.0,)


def _codes(table) -> tuple[float, ...]:
    return tuple(float(k) for k in table)


# --- the catalog ---------------------------------------------------------------------------------
# Bounds are *physiological plausibility* limits chosen wide enough to keep every real row seen in
# the sources (height bins 130/135, ALT 7210, TG in the thousands) and to catch the garbage the
# sources report (waist 8 / 680, creatinine 98). Sentinels are published codes that mean "no value".

COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("year", "기준년도 (screening year)", None, "int", ("기준년도", "HCHK_YEAR"),
               required=True, bounds=(2002, 2099)),
    ColumnSpec("subscriber_id", "가입자일련번호 (row id within the release)", None, "int",
               ("가입자일련번호", "가입자 일련번호", "IDV_ID"), required=True, bounds=(1, 9_999_999_999)),
    ColumnSpec("province", "시도코드 (province)", None, "code", ("시도코드", "SIDO"),
               codes=_codes(PROVINCES)),
    ColumnSpec("sex", "성별코드 (1 male, 2 female)", None, "code", ("성별코드", "성별", "SEX"),
               required=True, codes=_codes(SEX)),
    ColumnSpec("age_group", "연령대코드 (5-year band)", None, "code",
               ("연령대코드(5세단위)", "연령대 코드(5세단위)", "연령대코드 (5세 단위)", "AGE_GROUP"),
               required=True, codes=_codes(AGE_GROUPS)),
    ColumnSpec("height_cm", "신장 (5 cm bin floor)", "cm", "int",
               ("신장(5Cm단위)", "신장(5cm단위)", "신장 (5Cm단위)", "HEIGHT"), bounds=(100, 250),
               note="published floored to 5 cm: 170 means 170-174 cm"),
    ColumnSpec("weight_kg", "체중 (5 kg bin floor)", "kg", "int",
               ("체중(5Kg 단위)", "체중(5Kg단위)", "체중(5kg단위)", "WEIGHT"), bounds=(20, 300),
               note="published floored to 5 kg: 70 means 70-74 kg"),
    ColumnSpec("waist_cm", "허리둘레 (waist)", "cm", "float", ("허리둘레", "WAIST"),
               bounds=(40, 200), sentinels=(999.0,), decimals=1,
               note="integer in 2014, one decimal from 2017"),
    ColumnSpec("vision_left", "시력(좌)", "decimal acuity", "float", ("시력(좌)", "SIGHT_LEFT"),
               bounds=(0.1, 2.5), special_values=(9.9,), decimals=1, note="9.9 = blind (kept)"),
    ColumnSpec("vision_right", "시력(우)", "decimal acuity", "float", ("시력(우)", "SIGHT_RIGHT"),
               bounds=(0.1, 2.5), special_values=(9.9,), decimals=1, note="9.9 = blind (kept)"),
    ColumnSpec("hearing_left", "청력(좌)", None, "code", ("청력(좌)", "HEAR_LEFT"), codes=_codes(HEARING)),
    ColumnSpec("hearing_right", "청력(우)", None, "code", ("청력(우)", "HEAR_RIGHT"), codes=_codes(HEARING)),
    ColumnSpec("sbp", "수축기혈압 (systolic BP)", "mmHg", "int", ("수축기혈압", "수축기 혈압", "BP_HIGH"),
               bounds=(50, 300)),
    ColumnSpec("dbp", "이완기혈압 (diastolic BP)", "mmHg", "int", ("이완기혈압", "이완기 혈압", "BP_LWST"),
               bounds=(20, 200)),
    ColumnSpec("fasting_glucose", "식전혈당(공복혈당)", "mg/dL", "int", ("식전혈당(공복혈당)", "BLDS"),
               bounds=(20, 990), sentinels=(9999.0,), ceilings=(991.0,),
               note="991 is a ceiling code (at least 126 either way): kept as 991"),
    ColumnSpec("total_cholesterol", "총콜레스테롤", "mg/dL", "int",
               ("총콜레스테롤", "총 콜레스테롤", "TOT_CHOLE"), bounds=(30, 1500), sentinels=LAB_SENTINELS),
    ColumnSpec("triglycerides", "트리글리세라이드", "mg/dL", "int", ("트리글리세라이드", "TRIGLYCERIDE"),
               bounds=(5, 9000), sentinels=LAB_SENTINELS),
    ColumnSpec("hdl", "HDL콜레스테롤", "mg/dL", "int", ("HDL콜레스테롤", "HDL 콜레스테롤", "HDL_CHOLE"),
               bounds=(5, 300), sentinels=LAB_SENTINELS),
    ColumnSpec("ldl", "LDL콜레스테롤", "mg/dL", "int", ("LDL콜레스테롤", "LDL 콜레스테롤", "LDL_CHOLE"),
               bounds=(1, 1000), sentinels=LAB_SENTINELS, note="LDL <= 0 is invalid (Friedewald artefact)"),
    ColumnSpec("hemoglobin", "혈색소", "g/dL", "float", ("혈색소", "HMG"), bounds=(3, 25), decimals=1),
    ColumnSpec("urine_protein", "요단백 (dipstick)", None, "code", ("요단백", "OLIG_PROTE_CD"),
               codes=_codes(URINE_PROTEIN)),
    ColumnSpec("creatinine", "혈청크레아티닌", "mg/dL", "float", ("혈청크레아티닌", "CREATININE"),
               bounds=(0.1, 20), sentinels=LAB_SENTINELS, decimals=1),
    ColumnSpec("ast", "AST (혈청지오티)", "IU/L", "int", ("(혈청지오티)AST", "혈청지오티(AST)", "SGOT_AST"),
               bounds=(1, 9000), sentinels=LAB_SENTINELS, ceilings=(999.0,),
               note="999 is the assay ceiling: kept (means >= 999)"),
    ColumnSpec("alt", "ALT (혈청지피티)", "IU/L", "int",
               ("(혈청지오티)ALT", "(혈청지피티)ALT", "혈청지피티(ALT)", "SGPT_ALT", "SGOT_ALT"),
               bounds=(1, 9000), sentinels=LAB_SENTINELS, ceilings=(999.0,),
               note="999 is the assay ceiling, kept; old files label ALT '(혈청지오티)ALT' (typo); Kaggle copy 'SGOT_ALT'"),
    ColumnSpec("ggt", "감마지티피 (GGT)", "IU/L", "int", ("감마지티피", "감마 지티피", "GAMMA_GTP"),
               bounds=(1, 5000), sentinels=LAB_SENTINELS, ceilings=(999.0,), note="999 is the assay ceiling: kept"),
    ColumnSpec("smoking", "흡연상태", None, "code", ("흡연상태", "SMK_STAT_TYPE_CD"), codes=_codes(SMOKING)),
    ColumnSpec("drinking", "음주여부", None, "code", ("음주여부", "DRK_YN"), codes=_codes(DRINKING),
               note="blank stays NaN (unknown), except in a release that writes 'does not drink' as "
                    "blank (decided per file from the data: docs/DATA.md)"),
    ColumnSpec("oral_exam", "구강검진수검여부", None, "code",
               ("구강검진 수검여부", "구강검진수검여부", "HCHK_OE_INSPEC_YN"), codes=_codes(YES_NO)),
    ColumnSpec("dental_caries", "치아우식증유무", None, "code", ("치아우식증유무", "CRS_YN"), codes=_codes(YES_NO)),
    ColumnSpec("missing_teeth", "결손치유무", None, "code", ("결손치유무", "결손치 유무", "TTH_MSS_YN"),
               codes=_codes(YES_NO)),
    ColumnSpec("tooth_wear", "치아마모증유무", None, "code", ("치아마모증유무", "ODT_TRB_YN"), codes=_codes(YES_NO)),
    ColumnSpec("wisdom_tooth", "제3대구치(사랑니)이상", None, "code",
               ("제3대구치(사랑니)이상", "제3대구치(사랑니) 이상", "WSDM_DIS_YN"), codes=_codes(YES_NO)),
    ColumnSpec("tartar", "치석(유무)", None, "code", ("치석유무", "치석", "TTR_YN"), codes=_codes(YES_NO)),
    ColumnSpec("release_date", "데이터 공개일자 / 기준일자", None, "date",
               ("데이터 기준일자", "데이터공개일자", "데이터 공개일자", "DATA_STD__DT", "DATA_STD_DT")),
)

BY_NAME = MappingProxyType({c.name: c for c in COLUMNS})
CANONICAL_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.required)
INT_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS  # int64 in frames; everything else float64
FLOAT_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in COLUMNS if not c.required and c.kind != "date"
)

_WHITESPACE = re.compile(r"\s+")
_ASCII_UPPER = str.maketrans({chr(c): chr(c + 32) for c in range(ord("A"), ord("Z") + 1)})


def normalise_header(raw: str) -> str:
    """Strip every whitespace character (and a stray BOM) and lower-case ASCII letters only."""
    text = raw.replace("\ufeff", "").strip().strip('"')
    return _WHITESPACE.sub("", text).translate(_ASCII_UPPER)


def _header_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for col in COLUMNS:
        for spelling in col.headers:
            key = normalise_header(spelling)
            owner = index.setdefault(key, col.name)
            if owner != col.name:  # a spelling must never be ambiguous
                raise AssertionError(f"header {spelling!r} claimed by {owner} and {col.name}")
    return index


HEADER_INDEX = MappingProxyType(_header_index())


def match_header(raw: str) -> str | None:
    """Canonical column name for a published header, or None if it is not a known spelling."""
    return HEADER_INDEX.get(normalise_header(raw))


# --- the release styles (docs/DATA.md §1): five printed character for character, two inferred ---
# "2013": the English names the sample files of 2013 carried, in the 2014 file's order and column
#   set, with the old 1-14 age numbering [inferred: names and numbering are printed, the full
#   header line is not].
# "2019": the files published as ..._20191231 / ..._20201231 (data years 2018/2019 probable):
#   the 2020 spellings plus the three dental columns of 2017 [inferred], and "does not drink"
#   exported as a blank cell.

RELEASE_HEADERS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "2014": tuple(
            "기준년도,가입자일련번호,성별코드,연령대코드(5세단위),시도코드,신장(5Cm단위),체중(5Kg 단위),"
            "허리둘레,시력(좌),시력(우),청력(좌),청력(우),수축기혈압,이완기혈압,식전혈당(공복혈당),총콜레스테롤,"
            "트리글리세라이드,HDL콜레스테롤,LDL콜레스테롤,혈색소,요단백,혈청크레아티닌,(혈청지오티)AST,"
            "(혈청지오티)ALT,감마지티피,흡연상태,음주여부,구강검진 수검여부,치아우식증유무,치석유무,데이터 기준일자".split(",")
        ),
        "2017": tuple(
            "기준년도,가입자일련번호,성별코드,연령대코드(5세단위),시도코드,신장(5Cm단위),체중(5Kg단위),허리둘레,"
            "시력(좌),시력(우),청력(좌),청력(우),수축기혈압,이완기혈압,식전혈당(공복혈당),총콜레스테롤,트리글리세라이드,"
            "HDL콜레스테롤,LDL콜레스테롤,혈색소,요단백,혈청크레아티닌,(혈청지오티)AST,(혈청지오티)ALT,감마지티피,"
            "흡연상태,음주여부,구강검진수검여부,치아우식증유무,결손치유무,치아마모증유무,제3대구치(사랑니)이상,치석,"
            "데이터공개일자".split(",")
        ),
        "2020": tuple(
            "기준년도,가입자 일련번호,시도코드,성별코드,연령대 코드(5세단위),신장(5Cm단위),체중(5Kg 단위),허리둘레,"
            "시력(좌),시력(우),청력(좌),청력(우),수축기 혈압,이완기 혈압,식전혈당(공복혈당),총 콜레스테롤,"
            "트리글리세라이드,HDL 콜레스테롤,LDL 콜레스테롤,혈색소,요단백,혈청크레아티닌,(혈청지오티)AST,"
            "(혈청지오티)ALT,감마 지티피,흡연상태,음주여부,구강검진 수검여부,치아우식증유무,치석,데이터 공개일자".split(",")
        ),
        "2024": tuple(
            "기준년도,가입자일련번호,시도코드,성별코드,연령대코드(5세단위),신장(5cm단위),체중(5kg단위),허리둘레,"
            "시력(좌),시력(우),청력(좌),청력(우),수축기혈압,이완기혈압,식전혈당(공복혈당),총콜레스테롤,"
            "트리글리세라이드,HDL콜레스테롤,LDL콜레스테롤,혈색소,요단백,혈청크레아티닌,혈청지오티(AST),"
            "혈청지피티(ALT),감마지티피,흡연상태,음주여부,구강검진수검여부,치아우식증유무,결손치 유무,치아마모증유무,"
            "제3대구치(사랑니) 이상,치석".split(",")
        ),
        "english": tuple(
            "HCHK_YEAR,IDV_ID,SIDO,SEX,AGE_GROUP,HEIGHT,WEIGHT,WAIST,SIGHT_LEFT,SIGHT_RIGHT,HEAR_LEFT,"
            "HEAR_RIGHT,BP_HIGH,BP_LWST,BLDS,TOT_CHOLE,TRIGLYCERIDE,HDL_CHOLE,LDL_CHOLE,HMG,OLIG_PROTE_CD,"
            "CREATININE,SGOT_AST,SGPT_ALT,GAMMA_GTP,SMK_STAT_TYPE_CD,DRK_YN,HCHK_OE_INSPEC_YN,CRS_YN,"
            "TTH_MSS_YN,ODT_TRB_YN,WSDM_DIS_YN,TTR_YN,DATA_STD__DT".split(",")
        ),
        "2013": tuple(
            "HCHK_YEAR,IDV_ID,SEX,AGE_GROUP,SIDO,HEIGHT,WEIGHT,WAIST,SIGHT_LEFT,SIGHT_RIGHT,HEAR_LEFT,"
            "HEAR_RIGHT,BP_HIGH,BP_LWST,BLDS,TOT_CHOLE,TRIGLYCERIDE,HDL_CHOLE,LDL_CHOLE,HMG,OLIG_PROTE_CD,"
            "CREATININE,SGOT_AST,SGPT_ALT,GAMMA_GTP,SMK_STAT_TYPE_CD,DRK_YN,HCHK_OE_INSPEC_YN,CRS_YN,"
            "TTR_YN,DATA_STD_DT".split(",")
        ),
        "2019": tuple(
            "기준년도,가입자 일련번호,시도코드,성별코드,연령대 코드(5세단위),신장(5Cm단위),체중(5Kg 단위),허리둘레,"
            "시력(좌),시력(우),청력(좌),청력(우),수축기 혈압,이완기 혈압,식전혈당(공복혈당),총 콜레스테롤,"
            "트리글리세라이드,HDL 콜레스테롤,LDL 콜레스테롤,혈색소,요단백,혈청크레아티닌,(혈청지오티)AST,"
            "(혈청지오티)ALT,감마 지티피,흡연상태,음주여부,구강검진 수검여부,치아우식증유무,결손치 유무,"
            "치아마모증유무,제3대구치(사랑니) 이상,치석,데이터 공개일자".split(",")
        ),
    }
)
AGE_SCHEME_OF_STYLE = MappingProxyType({"2013": AGE_SCHEME_2013})
"""Styles whose files number age bands other than the 5-18 scheme."""
DRINKING_BLANK_STYLES = frozenset({"2019"})
"""Styles whose files write "does not drink" (0) as a blank cell."""
STYLES: tuple[str, ...] = tuple(RELEASE_HEADERS)

STYLE_COLUMNS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {style: tuple(match_header(h) for h in headers) for style, headers in RELEASE_HEADERS.items()}
)
"""Canonical column per file position for each release style."""


def style_for_year(year: int) -> str:
    """The release style a given screening year was published in (best knowledge, docs/DATA.md §1).

    The "2013" and "2019" styles are only used when asked for by name, so that a year's default
    output stays what it always was.
    """
    if year <= 2015:
        return "2014"
    if year <= 2019:
        return "2017"
    if year <= 2022:
        return "2020"
    return "2024"


def guess_style(raw_headers: tuple[str, ...] | list[str]) -> str | None:
    """Exact release style for a header row, else the style with the same column set, else None."""
    normalised = tuple(normalise_header(h) for h in raw_headers)
    for style, headers in RELEASE_HEADERS.items():
        if normalised == tuple(normalise_header(h) for h in headers):
            return style
    columns = {match_header(h) for h in raw_headers} - {None}
    for style, cols in STYLE_COLUMNS.items():
        if columns == set(cols):
            return style
    return None
