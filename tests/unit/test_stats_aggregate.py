"""Partial aggregates: a chunk's partial, merged, equals direct pandas sums over the raw rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.stats.aggregate import (
    CATEGORIES,
    FLAGS,
    MEASURE_NAMES,
    MEASURES,
    RISK_GROUPS,
    chunk_partial,
    merge_partials,
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
    f["risk_factor_count"] = rng.integers(0, 5, n).astype(np.int64)
    f["risk_group"] = rng.choice(np.array(RISK_GROUPS, dtype=object), n, p=list(risk_p))
    for c in CATEGORIES:
        f[c] = rng.choice(np.array([*LEVELS[c], None], dtype=object), n, p=[0.55, 0.3, 0.1, 0.05])
    f["smoking"] = rng.choice([1.0, 2.0, 3.0, np.nan], n, p=[0.6, 0.2, 0.18, 0.02])
    f["drinking"] = rng.choice([0.0, 1.0, np.nan], n, p=[0.5, 0.48, 0.02])
    return pd.DataFrame(f)


def _sorted_counts(counts: pd.DataFrame) -> pd.DataFrame:
    return counts[sorted(counts.columns)].sort_index()


def test_split_partials_merge_to_the_whole() -> None:
    frame = make_frame(4000, seed=1, years=(2023, 2024))
    whole = merge_partials([chunk_partial(frame)])
    pieces = [frame.iloc[:7], frame.iloc[7:1500], frame.iloc[1500:1500], frame.iloc[1500:]]
    split = merge_partials(chunk_partial(p) for p in reversed(pieces))
    pd.testing.assert_frame_equal(_sorted_counts(whole.counts), _sorted_counts(split.counts))
    pd.testing.assert_frame_equal(whole.hist, split.hist)
    assert whole.years == [2023, 2024]


def test_counts_equal_direct_pandas() -> None:
    frame = make_frame(3000, seed=2)
    agg = merge_partials([chunk_partial(frame[:1000]), chunk_partial(frame[1000:])])
    keys = [frame["year"], frame["sex"], frame["age_group"], frame["province"].fillna(-1).astype(int)]
    counts = agg.counts
    expected_people = frame.groupby(keys).size()
    assert counts["people"].sort_index().tolist() == expected_people.sort_index().tolist()
    assert counts["rf_sum"].sum() == frame["risk_factor_count"].sum()
    for flag in ("flag_low_hdl", "metabolic_syndrome"):
        measured = frame[flag].notna().groupby(keys).sum()
        positive = frame[flag].fillna(False).astype(bool).groupby(keys).sum()
        assert counts[f"{flag}:measured"].sort_index().tolist() == measured.sort_index().tolist()
        assert counts[f"{flag}:positive"].sort_index().tolist() == positive.sort_index().tolist()
    for value in LEVELS["bp_category"]:
        assert counts[f"bp_category={value}"].sum() == (frame["bp_category"] == value).sum()
    assert counts["smoking=3"].sum() == (frame["smoking"] == 3).sum()
    assert counts["drinking=0"].sum() == (frame["drinking"] == 0).sum()
    for group in RISK_GROUPS:
        assert counts[f"risk_group={group}"].sum() == (frame["risk_group"] == group).sum()
    unknown = counts.xs(-1, level="province")["people"].sum()
    assert unknown == frame["province"].isna().sum() > 0


def test_histograms_bin_at_resolution_and_clip_tails() -> None:
    frame = make_frame(2000, seed=3)
    hist = merge_partials([chunk_partial(frame)]).hist
    for name in ("sbp", "creatinine", "bmi", "triglycerides", "egfr"):
        spec = MEASURES[name]
        values = frame[name].dropna()
        sub = hist[hist["measure"] == name]
        assert sub["n"].sum() == len(values)
        bins = np.clip(np.rint(values.to_numpy() * spec.scale), round(spec.lo * spec.scale),
                       round(spec.hi * spec.scale)).astype(np.int64)
        expected = pd.Series(bins).value_counts().sort_index()
        got = sub.groupby("bin")["n"].sum().sort_index()
        assert got.index.tolist() == expected.index.tolist()
        assert got.tolist() == expected.tolist()
    assert hist[hist["measure"] == "triglycerides"]["bin"].max() == 9000
    per_cell = hist[hist["measure"] == "hdl"].groupby(["sex", "age_group"])["n"].sum()
    direct = frame.groupby(["sex", "age_group"])["hdl"].count()
    assert per_cell.tolist() == direct.tolist()
    assert set(hist["measure"].cat.categories) == set(MEASURE_NAMES)


def test_object_flags_categorical_categories_and_empty_chunk() -> None:
    frame = make_frame(300, seed=4)
    variant = frame.copy()
    variant["flag_smoking"] = variant["flag_smoking"].astype(object).where(variant["flag_smoking"].notna(), None)
    variant["bmi_class"] = variant["bmi_class"].astype("category")
    a = merge_partials([chunk_partial(frame)])
    b = merge_partials([chunk_partial(variant), chunk_partial(frame.iloc[:0])])
    pd.testing.assert_frame_equal(_sorted_counts(a.counts), _sorted_counts(b.counts))
    empty = merge_partials([chunk_partial(frame.iloc[:0])])
    assert empty.years == [] and len(empty.hist) == 0


def test_rejects_foreign_bytes() -> None:
    with pytest.raises(ValueError):
        merge_partials([b"not a partial"])


def test_partial_from_another_bin_layout_is_rebinned() -> None:
    """Partials outlive code changes: a partial written with another measure list still merges."""
    import struct

    import orjson
    import pyarrow as pa

    from shared.stats import aggregate as ag

    frame = make_frame(500, seed=6)
    part = chunk_partial(frame)
    counts, hist = ag._read(part)
    slot = hist.column("slot").to_numpy().astype(np.int64)
    measure = np.searchsorted(ag.BIN_OFFSETS, slot, side="right") - 1
    bins = slot - ag.BIN_OFFSETS[measure] + ag.LO_BINS[measure]
    old = [["retired_measure", 1, 0, 9], *reversed(orjson.loads(ag._LAYOUT))]  # other order, one extra
    sizes = [m[3] - m[2] + 1 for m in old]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    position = {m[0]: i for i, m in enumerate(old)}
    old_index = np.array([position[name] for name in MEASURE_NAMES])[measure]
    old_slot = offsets[old_index] + bins - np.array([m[2] for m in old])[old_index]
    old_slot = np.concatenate([old_slot, [3]])  # a bin of the retired measure: dropped on merge
    old_hist = pa.table({
        "cell": pa.array(np.concatenate([hist.column("cell").to_numpy(), [hist.column("cell")[0].as_py()]]),
                         pa.int32()),
        "slot": pa.array(old_slot, pa.int32()),
        "n": pa.array(np.concatenate([hist.column("n").to_numpy(), [5]]), pa.int32()),
    }).replace_schema_metadata({"layout": orjson.dumps(old).decode()})
    first = ag._ipc(counts)
    legacy = ag.MAGIC + struct.pack("<Q", len(first)) + first + ag._ipc(old_hist)
    pd.testing.assert_frame_equal(merge_partials([legacy]).hist, merge_partials([part]).hist)
