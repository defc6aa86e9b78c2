"""Synthetic NHIS health-screening files: the published format of each release, realistic values.

Why synthetic: the real file (1,000,000 rows a year, cp949) cannot be downloaded here. The
generator reproduces the format exactly (header spelling and order, encoding, value formats, empty
fields for missing values, rare garbage codes) and the joint distributions closely enough that the
prevalence anchors of docs/DATA.md §4 hold (tested in tests/unit/test_generator.py).

Model, in one paragraph: sex and age band are drawn from the published composition; true
(continuous) height and BMI are drawn by sex and age, weight follows from them, and only then are
height and weight floored to the published 5-unit bins, so BMI computed from the bins is biased low
exactly as in the real file (tuned so that bin-BMI >= 25 lands near the 39 % yearbook anchor).
Waist, blood pressure, glucose and lipids depend on BMI, age and sex; HDL falls with TG; LDL is
Friedewald (blank when TG >= 400); GGT rises with drinking; haemoglobin and creatinine differ by
sex. Everything is vectorised numpy; rows are produced in fixed blocks of BLOCK_ROWS, each with its
own seed derived from (seed, block), so a file and a frame of the same arguments hold the same rows
whatever the chunking of the caller.

Release quirks are applied only where a file is written (``_as_published``: the 1-14 age numbering
of the "2013" style, "does not drink" as a blank in the "2019" style) and undone where the frame is
built (``_as_read``: what the reader makes of them, plus canonical province codes), so the people
are the same in every style and the other styles' files are unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from shared.data.catalog import (
    AGE_2013_OFFSET,
    AGE_SCHEME_2013,
    AGE_SCHEME_OF_STYLE,
    BY_NAME,
    CANONICAL_COLUMNS,
    DRINKING_BLANK_STYLES,
    INT_COLUMNS,
    RELEASE_HEADERS,
    STYLE_COLUMNS,
    STYLES,
    canonical_province,
    style_for_year,
)

BLOCK_ROWS = 100_000
ENCODINGS = ("cp949", "euc-kr", "utf-8", "utf-8-sig")

# Age bands 5..18 (20-24 .. 85+): mean age ~47, quartiles near 35/45/60 (2017, KG-2017).
AGE_BANDS = np.arange(5, 19)
AGE_WEIGHTS = np.array([6.0, 8.5, 9, 9.5, 10.5, 10.5, 11, 10, 8.5, 6.5, 4.5, 3, 1.8, 0.7])
# 2020 file is 40+ only: 40s 30.0 %, 50s 31.8 %, 60s 24.2 %, 70s 11.0 %, 80+ 3.0 % (NB-2020).
AGE_BANDS_2020 = np.arange(9, 19)
AGE_WEIGHTS_2020 = np.array([15.4, 14.6, 16.4, 15.4, 13.3, 10.9, 6.4, 4.6, 2.1, 0.9])

# Province shares of the 2020 file (NB-2020), percent.
PROVINCE_SHARES = {
    41: 24.74, 11: 16.62, 26: 6.90, 48: 6.85, 28: 5.83, 47: 5.44, 27: 4.84, 44: 4.26, 45: 3.81,
    46: 3.80, 43: 3.40, 42: 3.20, 30: 3.01, 29: 2.85, 31: 2.60, 49: 1.19, 36: 0.65,
}
MALE_SHARE = 0.54
LIPID_TEST_SHARE = 0.40  # share of eligible people with a lipid panel in a given year (2018+)
NO_BLOOD_SHARE = 0.0076  # rows without any blood / BP result (2020: ~7,600 / 1M)

# Garbage codes written into files at these per-row rates (the sources show they exist, not how
# often; rates are assumptions small enough not to move any statistic).
GARBAGE = (
    ("waist_cm", 999.0, 3e-5),
    ("waist_cm", 8.7, 5e-6),
    ("waist_cm", 680.0, 2e-6),
    ("fasting_glucose", 991.0, 1e-5),
    ("ast", 9999.0, 2e-6),
    ("ggt", 9999.0, 2e-6),
    ("creatinine", 98.0, 2e-6),
)


# --- public API ----------------------------------------------------------------------------------


def generate_frame(
    rows: int,
    year: int = 2024,
    seed: int = 0,
    start_id: int = 1,
    *,
    style: str | None = None,
    garbage: bool = False,
) -> pd.DataFrame:
    """Canonical frame of ``rows`` synthetic people (no ``line_no``).

    ``style`` (default: the style ``year`` was published in) decides what a file of that release
    can carry: waist precision, the release date, and which columns exist (absent -> NaN / None).
    With ``garbage=False`` (default) the frame is what the reader returns for the file written by
    ``write_file(..., garbage=False)``; with ``garbage=True`` it holds the published garbage codes.
    """
    style = style or style_for_year(year)
    blocks = [_as_read(_finish(block, style), style) for block in _blocks(rows, year, seed, start_id, style, garbage)]
    if not blocks:
        return _to_frame(_as_read(_finish(_people(0, year, style, np.random.default_rng(0), start_id), style), style))
    merged = {c: np.concatenate([b[c] for b in blocks]) for c in CANONICAL_COLUMNS}
    return _to_frame(merged)


def write_file(
    out: str | os.PathLike,
    rows: int,
    year: int = 2024,
    seed: int = 0,
    style: str = "2024",
    encoding: str = "cp949",
    *,
    start_id: int = 1,
    garbage: bool = True,
    newline: str = "\r\n",
) -> None:
    """Write a file exactly as release ``style`` publishes it, streaming BLOCK_ROWS rows at a time.

    The header is encoded in ``encoding`` (cp949 like the real files, or utf-8 / utf-8-sig); the
    body is ASCII. CRLF is the default newline because the releases are produced on Windows
    [unverified]; the reader accepts both.
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    if encoding.lower() not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    header = (",".join(RELEASE_HEADERS[style]) + newline).encode(encoding)
    with open(out, "wb") as fh:
        fh.write(header)
        for block in _blocks(rows, year, seed, start_id, style, garbage):
            fh.write(format_block(_finish(block, style), style, newline))


def format_block(columns: dict[str, np.ndarray], style: str, newline: str = "\r\n") -> memoryview:
    """ASCII CSV body bytes for one block, in the column order and number formats of ``style``."""
    columns = _as_published(columns, style)
    texts = [_format_column(columns[c], _decimals(c, style), c) for c in STYLE_COLUMNS[style]]
    if "release_date" in STYLE_COLUMNS[style] and style not in ISO_DATE_STYLES:  # 20181126-style integer
        at = STYLE_COLUMNS[style].index("release_date")
        texts[at] = pc.replace_substring(texts[at], "-", "")
    lines = pc.binary_join_element_wise(*texts, ",")
    lines = pc.binary_join_element_wise(lines, pa.scalar(""), newline)
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    if not len(lines):
        return memoryview(b"")
    return memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]]


# --- blocks --------------------------------------------------------------------------------------


def _blocks(rows: int, year: int, seed: int, start_id: int, style: str, garbage: bool) -> Iterator[dict]:
    if rows < 0:
        raise ValueError("rows must be >= 0")
    for index, first in enumerate(range(0, rows, BLOCK_ROWS)):
        n = min(BLOCK_ROWS, rows - first)
        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        block = _people(n, year, style, rng, start_id + first)
        if garbage:
            _add_garbage(block, np.random.default_rng(np.random.SeedSequence([seed, index, 7])))
        yield block


def _to_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    frame = {c: columns[c] for c in CANONICAL_COLUMNS}
    frame["release_date"] = pd.Series(frame["release_date"], dtype=object)  # not pandas 3's str dtype
    return pd.DataFrame(frame)


def _finish(block: dict[str, np.ndarray], style: str) -> dict[str, np.ndarray]:
    """Apply what the release style can carry: absent columns blank, waist precision, date."""
    present = set(STYLE_COLUMNS[style])
    out = dict(block)
    n = len(block["year"])
    for c in CANONICAL_COLUMNS:
        if c not in present and c not in INT_COLUMNS:
            out[c] = np.full(n, None, dtype=object) if c == "release_date" else np.full(n, np.nan)
    if _decimals("waist_cm", style) == 0:
        out["waist_cm"] = np.floor(out["waist_cm"] + 0.5)
    return out


def _as_published(columns: dict[str, np.ndarray], style: str) -> dict[str, np.ndarray]:
    """The quirks a release writes into its file: old age numbering, "does not drink" as a blank."""
    out = columns
    if AGE_SCHEME_OF_STYLE.get(style) == AGE_SCHEME_2013:
        out = {**out, "age_group": out["age_group"] - AGE_2013_OFFSET}
    if style in DRINKING_BLANK_STYLES:
        out = {**out, "drinking": np.where(out["drinking"] == 0, np.nan, out["drinking"])}
    return out


def _as_read(columns: dict[str, np.ndarray], style: str) -> dict[str, np.ndarray]:
    """What the reader makes of a block written in ``style``: canonical provinces; in a release that
    writes "does not drink" as a blank, every blank (unknown ones too) read as 0."""
    out = {**columns, "province": canonical_province(columns["province"])}
    if style in DRINKING_BLANK_STYLES:
        out["drinking"] = np.where(np.isnan(out["drinking"]), 0.0, out["drinking"])
    return out


def _decimals(column: str, style: str) -> int:
    if column == "waist_cm" and style in ("2014", "2013"):
        return 0  # the 2014 file writes waist as an integer (FS); 2013 assumed the same
    return BY_NAME[column].decimals


ISO_DATE_STYLES = frozenset({"2020", "2019"})


def _release_date(year: int, style: str) -> str | None:
    """ISO release date of a style; written 20181126-style except in the ISO_DATE_STYLES."""
    if style == "2013":
        return f"{year + 3}-12-20"  # [inferred] released with the 2002-2015 files, like 2014's 20161220
    if style == "2019":
        return f"{year + 1}-12-31"  # [inferred] from the file names ..._20191231 / ..._20201231
    if style == "2014":
        return f"{year + 2}-12-20"  # 2014 file: 데이터 기준일자 20161220 (FS)
    if style in ("2017", "english"):
        return f"{year + 1}-11-26"  # 2017 file: 데이터공개일자 20181126 (NB-2017)
    if style == "2020":
        return f"{year + 1}-12-29"  # 2020 file: 데이터 공개일자 2021-12-29 (NB-2020)
    return None  # 2023/2024: no date column


# --- the people ----------------------------------------------------------------------------------


def _people(n: int, year: int, style: str, rng: np.random.Generator, first_id: int) -> dict[str, np.ndarray]:
    """One block of clean canonical values (float64 with NaN, ints for the required columns)."""
    male = rng.random(n) < MALE_SHARE
    bands, weights = (AGE_BANDS_2020, AGE_WEIGHTS_2020) if year == 2020 else (AGE_BANDS, AGE_WEIGHTS)
    age_group = rng.choice(bands, size=n, p=weights / weights.sum())
    age = 5.0 * age_group - 5 + rng.random(n) * 5
    age[age_group == 18] = 85 + rng.exponential(3.5, int((age_group == 18).sum()))
    a = age - 45.0
    sexf = np.where(male, 1.0, 0.0)

    codes = np.array(list(PROVINCE_SHARES))
    shares = np.array(list(PROVINCE_SHARES.values()))
    province = rng.choice(codes, size=n, p=shares / shares.sum()).astype(np.float64)
    if year in (2017, 2018):
        province[province == 49] = 50  # Jeju was coded 50 in the 2017/2018 files

    # Body size: true height and BMI, then weight; publish only the 5-unit bin floors.
    height = np.where(
        male, 174.0 - 0.13 * np.maximum(age - 30, 0), 161.0 - 0.13 * np.maximum(age - 30, 0)
    ) + rng.normal(0, 1, n) * np.where(male, 5.8, 5.3)
    bmi_mean = np.where(male, 25.5 + 0.02 * a - 0.0012 * a * a, 23.85 + 0.055 * a - 0.0008 * a * a)
    bmi = bmi_mean * np.exp(rng.normal(0, 0.135, n) - 0.009)
    weight = bmi * (height / 100) ** 2
    height_cm = np.floor(height / 5) * 5
    weight_kg = np.floor(weight / 5) * 5
    b = bmi - 24.0

    waist = np.where(male, 82.2 + 2.45 * b + 0.05 * a, 76.6 + 2.2 * b + 0.14 * a) + rng.normal(0, 4.2, n)
    waist = np.round(np.clip(waist, 50, 150), 1)

    vision_l = np.clip(rng.normal(1.02 - 0.008 * a, 0.33, n), 0.1, 2.0)
    vision_r = np.clip(vision_l + rng.normal(0, 0.15, n), 0.1, 2.0)
    vision_l, vision_r = np.round(vision_l, 1), np.round(vision_r, 1)
    vision_l[rng.random(n) < 0.002] = 9.9
    vision_r[rng.random(n) < 0.002] = 9.9

    p_deaf = np.clip(0.012 + 0.0022 * np.maximum(age - 50, 0) ** 1.3 / 4, 0, 0.6)
    hearing_l = np.where(rng.random(n) < p_deaf, 2.0, 1.0)
    hearing_r = np.where(rng.random(n) < p_deaf, 2.0, 1.0)
    hearing_l[rng.random(n) < 1e-4] = 3.0  # undocumented code 3 exists in the files

    z_bp = rng.normal(0, 1, n)
    sbp = np.where(male, 125.0, 118.5) + 0.42 * a + 1.15 * b + 12.5 * z_bp
    dbp = (np.where(male, 79.5, 74.0) + 0.10 * a - 0.004 * a * a + 0.75 * b + 4.5 * z_bp
           + rng.normal(0, 6.5, n))
    sbp = np.round(np.clip(sbp, 80, 240))
    dbp = np.round(np.clip(dbp, 45, 140))

    logit = -3.2 + 0.052 * a + 0.16 * b + 0.35 * sexf
    diabetic = rng.random(n) < 1 / (1 + np.exp(-logit))
    fbg_normal = 92.0 + 0.12 * a + 0.95 * b + 3.5 * sexf + rng.normal(0, 9.5, n)
    fbg_diab = 112.0 + rng.gamma(2.0, 20.0, n)
    glucose = np.round(np.clip(np.where(diabetic, fbg_diab, fbg_normal), 60, 600))

    tg_median = np.where(male, 95.0, 72.0 + 0.45 * np.maximum(a, 0)) * np.exp(0.055 * b)
    log_tg_z = rng.normal(0, 1, n)
    tg = np.round(np.clip(tg_median * np.exp(0.5 * log_tg_z), 20, 3000))
    hdl = np.where(male, 51.0, 61.0) - 0.9 * b - 5.5 * log_tg_z + rng.normal(0, 9.5, n)
    hdl = np.round(np.clip(hdl, 18, 150))
    tc_mean = np.where(male, 192.0 - 0.05 * a, 190.0 + 0.55 * np.clip(a, -10, 20))
    tc = np.round(np.clip(tc_mean + 1.4 * b + 8 * log_tg_z + rng.normal(0, 33, n), 80, 500))
    ldl = np.round(tc - hdl - tg / 5)
    ldl[(tg >= 400) | (ldl < 1)] = np.nan

    hemoglobin = np.round(np.where(male, 15.2 - 0.015 * a, 13.1 + 0.004 * a) + rng.normal(0, 1.0, n), 1)
    hemoglobin = np.clip(hemoglobin, 7, 20)
    creatinine = np.where(male, 0.95, 0.72) * (1 + 0.004 * np.maximum(a, 0)) * np.exp(rng.normal(0, 0.15, n))
    ckd = rng.random(n) < 0.004  # a thin kidney-disease tail
    creatinine[ckd] *= rng.uniform(1.5, 6.0, int(ckd.sum()))
    creatinine = np.round(np.clip(creatinine, 0.3, 15), 1)

    drink_p = np.where(male, 0.71 - 0.0075 * a, 0.33 - 0.008 * a)
    drinking = (rng.random(n) < np.clip(drink_p, 0.03, 0.95)).astype(np.float64)

    u = rng.random(n)
    cur_p = np.where(male, np.clip(0.38 - 0.0045 * a, 0.08, 0.6), 0.038)
    former_p = np.where(male, np.clip(0.24 + 0.004 * a, 0.05, 0.5), 0.026)
    smoking = np.where(u < cur_p, 3.0, np.where(u < cur_p + former_p, 2.0, 1.0))

    ast = 22.0 * np.exp(0.02 * b + 0.004 * a + rng.normal(0, 0.3, n) + 0.9 * (rng.random(n) < 0.03)) + 4 * drinking * rng.random(n)
    alt = np.where(male, 24.0, 16.0) * np.exp(0.06 * b + rng.normal(0, 0.5, n) + 1.0 * (rng.random(n) < 0.03))
    ggt_median = np.where(male, np.where(drinking == 1, 38.0, 26.0), 17.0) * np.exp(0.03 * b)
    ggt = ggt_median * np.exp(rng.normal(0, 0.7, n))
    ast, alt, ggt = (np.clip(np.round(x), 3, 999) for x in (ast, alt, ggt))  # 999 = assay ceiling

    urine = rng.choice(np.arange(1.0, 7.0), size=n, p=[0.940, 0.030, 0.020, 0.007, 0.0025, 0.0005])

    oral = (rng.random(n) < 0.36).astype(np.float64)
    caries = np.where(oral == 1, (rng.random(n) < 0.19).astype(np.float64), np.nan)
    tartar = np.where(oral == 1, (rng.random(n) < 0.53).astype(np.float64), np.nan)
    blank = np.full(n, np.nan)  # 결손치 / 치아마모증 / 사랑니: published empty (2017, 2018?, 2023)

    cols: dict[str, np.ndarray] = {
        "year": np.full(n, year, dtype=np.int64),
        "subscriber_id": np.arange(first_id, first_id + n, dtype=np.int64),
        "province": province,
        "sex": np.where(male, 1, 2).astype(np.int64),
        "age_group": age_group.astype(np.int64),
        "height_cm": height_cm, "weight_kg": weight_kg, "waist_cm": waist,
        "vision_left": vision_l, "vision_right": vision_r,
        "hearing_left": hearing_l, "hearing_right": hearing_r,
        "sbp": sbp, "dbp": dbp, "fasting_glucose": glucose,
        "total_cholesterol": tc, "triglycerides": tg, "hdl": hdl, "ldl": ldl,
        "hemoglobin": hemoglobin, "urine_protein": urine, "creatinine": creatinine,
        "ast": ast, "alt": alt, "ggt": ggt, "smoking": smoking, "drinking": drinking,
        "oral_exam": oral, "dental_caries": caries, "missing_teeth": blank, "tooth_wear": blank.copy(),
        "wisdom_tooth": blank.copy(), "tartar": tartar,
    }
    _blank_missing(cols, year, male, age, rng)
    cols["release_date"] = np.full(n, _release_date(year, style), dtype=object)
    return cols


def _blank_missing(cols: dict[str, np.ndarray], year: int, male: np.ndarray, age: np.ndarray,
                   rng: np.random.Generator) -> None:
    """Blank cells the way the releases do (docs/DATA.md §4)."""
    n = len(male)
    lipids = ("total_cholesterol", "triglycerides", "hdl", "ldl")
    if year >= 2018:  # lipids every 4 years since 2018, men from 24, women from 40
        eligible = np.where(male, age >= 24, age >= 40)
        tested = eligible & (rng.random(n) < LIPID_TEST_SHARE)
    else:
        tested = rng.random(n) >= 5e-5
    for c in lipids:
        cols[c][~tested] = np.nan
    no_blood = rng.random(n) < NO_BLOOD_SHARE
    for c in ("sbp", "dbp", "fasting_glucose", "hemoglobin", "urine_protein", "creatinine", "ast", "alt",
              "ggt", *lipids):
        cols[c][no_blood] = np.nan
    for c, rate in (("urine_protein", 0.0045), ("waist_cm", 1.5e-4), ("vision_left", 2.5e-4),
                    ("vision_right", 2.5e-4), ("hearing_left", 2.3e-4), ("hearing_right", 2.3e-4),
                    ("smoking", 3.5e-4), ("drinking", 2e-4)):
        cols[c][rng.random(n) < rate] = np.nan


def _add_garbage(cols: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    n = len(cols["year"])
    for column, value, rate in GARBAGE:
        hit = (rng.random(n) < rate) & ~np.isnan(cols[column])
        cols[column][hit] = value


# --- formatting ----------------------------------------------------------------------------------


def _format_column(values: np.ndarray, decimals: int, column: str) -> pa.Array:
    """Text of one column: integers, or one decimal; NaN / None -> empty field."""
    if column == "release_date":
        return pa.array(values, type=pa.string()).fill_null("")
    if values.dtype.kind in "iu":
        return pc.cast(pa.array(values), pa.string())
    missing = np.isnan(values)
    if decimals == 0:
        text = pc.cast(pa.array(np.where(missing, 0, values).astype(np.int64)), pa.string())
    else:
        tenths = np.rint(np.where(missing, 0, values) * 10).astype(np.int64)
        whole = pc.cast(pa.array(tenths // 10), pa.string())
        frac = pc.cast(pa.array(tenths % 10), pa.string())
        text = pc.binary_join_element_wise(whole, frac, ".")
    if missing.any():
        text = pc.if_else(pa.array(missing), pa.scalar("", pa.string()), text)
    return text
