"""The numpy core and the scalar path agree on 100,000 random people (nulls and exact thresholds included).

One DataFrame, one evaluate_frame call, then evaluate_person row by row and a comparison of every
derived column. Values are drawn a third from each guideline's cut points (and one grid step either
side), the rest from a wide range or missing, so every boundary is hit thousands of times. The
batch layout (numpy core) is compared with the one-person layout the same way.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.rules import CATEGORY_LEVELS, DERIVED_COLUMNS, evaluate_batch, evaluate_frame, evaluate_person
from shared.rules.equations import FRAMINGHAM_2008
from shared.rules.layout import person_response
from shared.rules.scalar import evaluate_scalar
from shared.rules.table import (
    ATP3_RULE,
    BAND_RULES,
    BP_RULE,
    EXTRA_FLAG_RULES,
    FLAG_RULES,
    ISOLATED_SYSTOLIC_RULE,
    FlagRule,
)

N = 100_000
RANGES = {
    "height_cm": (130, 195), "weight_kg": (30, 130), "waist_cm": (55, 130), "sbp": (80, 200), "dbp": (45, 130),
    "fasting_glucose": (60, 300), "total_cholesterol": (100, 350), "triglycerides": (30, 700), "hdl": (20, 110),
    "ldl": (40, 260), "hemoglobin": (6, 18), "creatinine": (0.3, 6), "ast": (8, 120), "alt": (5, 120),
    "ggt": (5, 200),
}


def cut_points() -> dict[str, list[float]]:
    """Every threshold in the table, by input, with one step either side."""
    pts: dict[str, set[float]] = {k: set() for k in RANGES}
    for rule in (*FLAG_RULES, *EXTRA_FLAG_RULES, ISOLATED_SYSTOLIC_RULE):
        if isinstance(rule, FlagRule) or rule is ISOLATED_SYSTOLIC_RULE:
            for c in rule.conditions:
                pts.setdefault(c.input, set()).update({c.threshold.male, c.threshold.female})
    pts["hdl"].add(ATP3_RULE.negative.threshold.male)
    for r in FRAMINGHAM_2008.ranges:  # the model's derivation ranges
        pts[r.name].update({r.lo, r.hi})
    for rule in BAND_RULES:
        for c in rule.cuts:
            pts.setdefault(rule.input, set()).update({c.male, c.female})
    for cut, _ in BP_RULE.sbp_steps:
        pts["sbp"].add(cut)
    for cut, _ in BP_RULE.dbp_steps:
        pts["dbp"].add(cut)
    pts["weight_kg"].update({18.5, 23.0, 25.0, 30.0, 35.0, 24.96, 24.94})  # BMI cuts at height 100
    out = {}
    for k, vals in pts.items():
        if k not in RANGES:
            continue
        step = 0.1 if k in ("waist_cm", "hemoglobin", "creatinine", "weight_kg") else 1.0
        out[k] = sorted({round(v + d, 2) for v in vals for d in (-step, 0.0, step)} | {v - 0.01 for v in vals})
    return out


def random_people(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pts = cut_points()
    cols: dict[str, np.ndarray] = {}
    for k, (lo, hi) in RANGES.items():
        uniform = np.round(rng.uniform(lo, hi, n), 1)
        pool = np.array(pts.get(k) or [lo], dtype=np.float64)
        pick = pool[rng.integers(0, len(pool), n)]
        u = rng.random(n)
        cols[k] = np.where(u < 0.35, pick, np.where(u < 0.85, uniform, np.nan))
    # exact BMI cut points need height 100 cm sometimes
    cols["height_cm"] = np.where(rng.random(n) < 0.1, 100.0, cols["height_cm"])
    # lipid panel missing together ~40% of the time (the real file's pattern)
    no_lipids = rng.random(n) < 0.4
    for k in ("total_cholesterol", "triglycerides", "hdl", "ldl"):
        cols[k][no_lipids] = np.nan
    cols["urine_protein"] = rng.choice(np.array([1, 2, 3, 4, 5, 6, np.nan, 0, 7]), n,
                                       p=[0.5, 0.15, 0.1, 0.05, 0.05, 0.05, 0.08, 0.01, 0.01])
    cols["smoking"] = rng.choice(np.array([1.0, 2.0, 3.0, np.nan, 4.0]), n, p=[0.4, 0.2, 0.3, 0.08, 0.02])
    cols["drinking"] = rng.choice(np.array([0.0, 1.0, np.nan]), n)
    df = pd.DataFrame(cols)
    df["sex"] = rng.choice(np.array([1, 2, 0], dtype=np.int64), n, p=[0.49, 0.49, 0.02])  # 0: unknown sex
    group = rng.integers(1, 19, n).astype(np.float64)
    group[rng.random(n) < 0.03] = np.nan
    df["age_group"] = group
    # an exact age for a quarter (as /simulate accepts), often at a rule's age boundary
    edges = np.array([19.9, 20.0, 29.9, 30.0, 44.9, 45.0, 54.9, 55.0, 74.9, 75.0, -1.0])
    exact = np.where(rng.random(n) < 0.5, edges[rng.integers(0, len(edges), n)], np.round(rng.uniform(0, 100, n), 1))
    df["age"] = np.where(rng.random(n) < 0.25, exact, np.nan)
    return df


def as_python(series: pd.Series) -> list:
    """Frame column -> list of plain values with None for missing."""
    if isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == "boolean":
        return [None if v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v for v in series.astype(object)]
    return [None if isinstance(v, float) and math.isnan(v) else v for v in series.tolist()]


def close(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def assert_paths_agree(df: pd.DataFrame) -> None:
    out = evaluate_frame(df)
    assert list(out.columns) == list(DERIVED_COLUMNS) and out.index.equals(df.index)
    rows = list(zip(*(as_python(out[c]) for c in DERIVED_COLUMNS), strict=True))
    mismatches = []
    for i, person in enumerate(df.to_dict("records")):
        d = evaluate_person(person)["derived"]
        scalar = tuple(d.values())  # "derived" is ordered like DERIVED_COLUMNS (checked below)
        if scalar != rows[i]:  # fast exact path; floats (cvd_10y) may differ by an ulp -> tolerance
            for c, a, b in zip(DERIVED_COLUMNS, scalar, rows[i], strict=True):
                if not close(a, b):
                    mismatches.append((i, c, a, b))
            if len(mismatches) > 20:
                break
    assert list(d) == list(DERIVED_COLUMNS)
    assert not mismatches, mismatches[:20]


def test_vector_and_scalar_paths_agree_on_100k_people():
    df = random_people(N, seed=20261129)
    assert_paths_agree(df)


def test_generated_people_hit_every_state():
    """Guard against a generator that silently stops exercising nulls or boundaries."""
    out = evaluate_frame(random_people(20_000, seed=7))
    for c in ("flag_hypertension", "flag_low_hdl", "metabolic_syndrome", "ggt_high", "mets_hdl", "isolated_systolic",
              "dyslipidaemia"):
        assert out[c].isna().any() and out[c].eq(True).any() and out[c].eq(False).any(), c
    for c in ("screening_risk_group", "atp3_risk_category", "bp_category"):
        assert set(out[c].dropna().astype(object)) == set(CATEGORY_LEVELS[c]), c
    assert out["egfr"].isna().any() and out["cvd_10y"].notna().any()


def test_batch_layout_equals_the_one_person_layout():
    """evaluate_batch (numpy core) gives exactly the /simulate default answer of each person."""
    df = random_people(5_000, seed=99)
    people = [{k: v for k, v in p.items() if not (isinstance(v, float) and math.isnan(v))}
              for p in df.to_dict("records")]
    for p in people[::3]:
        p["sex"] = {1: "M", 2: "F"}.get(p["sex"], p["sex"])  # the API's spelling
    batch = evaluate_batch(people)
    single = [person_response(evaluate_scalar(p)) for p in people]
    mismatches = [(i, k) for i, (a, b) in enumerate(zip(batch, single, strict=True)) for k in a if a[k] != b[k]]
    assert not mismatches, mismatches[:10]
    assert evaluate_batch([]) == []


maybe = st.one_of(st.none(), st.floats(min_value=0, max_value=400, allow_nan=False), st.sampled_from([
    40.0, 50.0, 85.0, 90.0, 100.0, 120.0, 126.0, 130.0, 140.0, 150.0, 160.0, 200.0, 240.0]))
person_strategy = st.fixed_dictionaries(
    {"sex": st.sampled_from([1, 2]), "age_group": st.integers(1, 18), "smoking": st.sampled_from([1.0, 2.0, 3.0, None])},
    optional={**{k: maybe for k in RANGES}, "age": st.sampled_from([19.0, 20.0, 44.0, 45.0, 54.0, 55.0, 74.0, 75.0])},
)


@settings(max_examples=40, deadline=None)
@given(st.lists(person_strategy, min_size=1, max_size=30))
def test_paths_agree_hypothesis(people):
    df = pd.DataFrame(people)
    for k in RANGES:
        df[k] = df[k].astype("float64") if k in df.columns else np.nan
    df["smoking"] = df["smoking"].astype("float64")
    df["sex"] = df["sex"].astype("int64")
    df["age_group"] = df["age_group"].astype("int64")
    df["age"] = df["age"].astype("float64") if "age" in df.columns else np.nan
    assert_paths_agree(df)


any_float = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e3, 1e3))
wild_person = st.fixed_dictionaries(
    {"sex": st.sampled_from([1, 2, 0]), "age_group": st.integers(0, 20)},
    optional={k: any_float for k in (*RANGES, "smoking", "urine_protein", "age")},
)


@settings(max_examples=60, deadline=None)
@given(st.lists(wild_person, min_size=1, max_size=10))
def test_paths_agree_on_absurd_values(people):
    """Out-of-range, negative, tiny, huge and infinite values never crash and still agree."""
    df = pd.DataFrame(people)
    for k in (*RANGES, "smoking", "urine_protein", "age"):
        df[k] = df[k].astype("float64") if k in df.columns else np.nan
    df["sex"] = df["sex"].astype("int64")
    df["age_group"] = df["age_group"].astype("int64")
    assert_paths_agree(df)
