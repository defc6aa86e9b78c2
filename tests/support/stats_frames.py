"""Stats frames for tests: what the ETL hands chunk_partial, made by hand (no rule engine)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shared.rules import CATEGORY_LEVELS
from shared.stats.aggregate import (
    CATEGORIES,
    FLAGS,
    MEASURES,
    RISK_COUNT_COLUMN,
    RISK_GROUP_COLUMN,
    RISK_GROUPINGS,
    RISK_GROUPS,
)

PROVINCE_CODES = (11, 26, 41, 42, 49, 50)
LEVELS = {c: (f"{c}_a", f"{c}_b", f"{c}_c") for c in CATEGORIES}
LIPIDS = ("total_cholesterol", "triglycerides", "hdl", "ldl")


def make_frame(n: int, seed: int = 0, years: tuple[int, ...] = (2024,),
               ages: tuple[int, ...] = tuple(range(5, 19)), provinces: tuple[int, ...] = PROVINCE_CODES,
               risk_p: tuple[float, ...] = (0.15, 0.35, 0.4, 0.1)) -> pd.DataFrame:
    """An evaluated chunk as the ETL hands it over, written with numpy (no rule engine)."""
    rng = np.random.default_rng(seed)
    f: dict[str, object] = {
        "year": rng.choice(years, n).astype(np.int64),
        "sex": rng.integers(1, 3, n).astype(np.int64),
        "age_group": rng.choice(ages, n).astype(np.int64),
    }
    province = rng.choice(provinces, n).astype(np.float64)
    province[rng.random(n) < 0.01] = np.nan
    f["province"] = province
    lipid = rng.random(n) < 0.35  # the old system kept only these rows
    center = {"height_cm": 165, "weight_kg": 65, "waist_cm": 82, "sbp": 122, "dbp": 76, "fasting_glucose": 98,
              "total_cholesterol": 195, "triglycerides": 130, "hdl": 55, "ldl": 115, "hemoglobin": 14,
              "creatinine": 0.9, "ast": 25, "alt": 24, "ggt": 30, "bmi": 23.5, "egfr": 95, "cvd_10y": 7}
    for name, spec in MEASURES.items():
        mid = center[name]
        values = rng.normal(mid, mid * 0.15, n)
        if name in ("height_cm", "weight_kg"):
            values = np.floor(values / 5) * 5
        elif spec.scale == 1 and name not in ("egfr",):
            values = np.round(values)
        elif name in ("waist_cm", "hemoglobin", "creatinine"):
            values = np.round(values, 1)
        missing = rng.random(n) < 0.03
        if name in LIPIDS:
            missing |= ~lipid
        values[missing] = np.nan
        f[name] = values
    tg = f["triglycerides"]
    tg[np.flatnonzero(~np.isnan(tg))[:2]] = 25_000.0  # beyond the top edge: clipped to 9000
    for flag in FLAGS:
        arr = pd.array(rng.random(n) < 0.25, dtype="boolean")
        arr[rng.random(n) < (0.65 if "hdl" in flag or "triglycerides" in flag else 0.05)] = pd.NA
        f[flag] = arr
    f[RISK_COUNT_COLUMN] = rng.integers(0, 5, n).astype(np.int64)
    f[RISK_GROUP_COLUMN] = rng.choice(np.array(RISK_GROUPS, dtype=object), n, p=list(risk_p))
    for column in RISK_GROUPINGS[1:]:
        f[column] = rng.choice(np.array(CATEGORY_LEVELS[column], dtype=object), n, p=list(risk_p))
    for c in CATEGORIES:
        f[c] = rng.choice(np.array([*LEVELS[c], None], dtype=object), n, p=[0.55, 0.3, 0.1, 0.05])
    f["urine_protein"] = rng.choice([1.0, 2.0, 3.0, np.nan], n, p=[0.8, 0.1, 0.05, 0.05])
    f["smoking"] = rng.choice([1.0, 2.0, 3.0, np.nan], n, p=[0.6, 0.2, 0.18, 0.02])
    f["drinking"] = rng.choice([0.0, 1.0, np.nan], n, p=[0.5, 0.48, 0.02])
    return pd.DataFrame(f)


def screened_frame(rows: int, year: int = 2024, seed: int = 0, provinces: tuple[int, ...] | None = None,
                   bands: tuple[int, ...] | None = None) -> pd.DataFrame:
    """Realistic evaluated people: the project's generator through the rule table (what the ETL hands
    chunk_partial), optionally kept to some provinces and age bands (to make many small cells)."""
    from shared.data.generate import generate_frame
    from shared.etl.transform import derive

    frame = derive(generate_frame(rows, year=year, seed=seed), job_id=1, chunk_index=0)
    if provinces is not None:
        frame = frame[frame["province"].isin(provinces)]
    if bands is not None:
        frame = frame[frame["age_group"].isin(bands)]
    return frame.reset_index(drop=True)
