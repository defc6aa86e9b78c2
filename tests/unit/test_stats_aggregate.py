"""Partial aggregates: a chunk's partial, merged, equals direct pandas sums over the raw rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.stats.aggregate import (
    MEASURE_NAMES,
    MEASURES,
    RISK_COUNT_COLUMN,
    RISK_GROUP_COLUMN,
    RISK_GROUPS,
    chunk_partial,
    merge_partials,
)
from tests.support.stats_frames import LEVELS, make_frame


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
    assert counts["rf_sum"].sum() == frame[RISK_COUNT_COLUMN].sum()
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
        assert counts[f"{RISK_GROUP_COLUMN}={group}"].sum() == (frame[RISK_GROUP_COLUMN] == group).sum()
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


# --- complete panels ---------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from shared.stats.aggregate import (  # noqa: E402
    CATEGORIES,
    FLAGS,
    PANEL_SUFFIX,
    RULE_INPUTS,
    rule_inputs,
)

# measured inputs (sex and age band are required columns: a row without them is rejected on read)
RAW_INPUTS = sorted({c for inputs in RULE_INPUTS.values() for c in inputs} - {"sex", "age_group"})


def test_every_published_rule_has_inputs() -> None:
    for column in (*FLAGS, *CATEGORIES, RISK_GROUP_COLUMN):
        assert rule_inputs(column), column
    assert set(RULE_INPUTS["metabolic_syndrome"]) - {"sex"} == {"waist_cm", "triglycerides", "hdl", "sbp", "dbp",
                                                                "fasting_glucose"}
    assert set(RULE_INPUTS["flag_obesity"]) == {"height_cm", "weight_kg"}  # BMI's raw inputs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(0, 300), seed=st.integers(0, 10_000), cut=st.floats(0, 1),
       missing=st.dictionaries(st.sampled_from(RAW_INPUTS), st.floats(0, 1), max_size=6))
def test_complete_panel_counts_equal_a_direct_count(rows, seed, cut, missing) -> None:
    frame = make_frame(rows, seed=seed)
    rng = np.random.default_rng(seed)
    for name, share in missing.items():  # blank inputs at random, as screening schedules do
        frame.loc[rng.random(rows) < share, name] = np.nan
    split = int(cut * rows)
    agg = merge_partials([chunk_partial(frame.iloc[:split]), chunk_partial(frame.iloc[split:])])
    if not rows:
        assert agg.counts.empty
        return
    keys = [frame["year"], frame["sex"], frame["age_group"], frame["province"].fillna(-1).astype(int)]
    counts = agg.counts.sort_index()
    assert (counts["panel_counted"] == counts["people"]).all()

    def direct(mask: pd.Series) -> list[int]:
        return mask.groupby(keys).sum().sort_index().astype(int).tolist()

    for column in ("flag_low_hdl", "flag_hypertension", "metabolic_syndrome", RISK_GROUP_COLUMN, "bp_category",
                   "proteinuria", "smoking"):
        in_panel = frame[list(rule_inputs(column))].notna().all(axis=1)
        assert counts[column + PANEL_SUFFIX].tolist() == direct(in_panel), column
        if column in FLAGS:
            positive = frame[column].astype("boolean").fillna(False).astype(bool)
            known = frame[column].notna()
            assert counts[f"{column}{PANEL_SUFFIX}:positive"].tolist() == direct(in_panel & positive)
            assert counts[f"{column}{PANEL_SUFFIX}:measured"].tolist() == direct(in_panel & known)
        else:
            values = frame[column].dropna().unique()
            for value in values:
                label = str(int(value)) if isinstance(value, float) else str(value)
                name = f"{column}{PANEL_SUFFIX}={label}"
                assert counts[name].tolist() == direct(in_panel & (frame[column] == value)), name
    in_panel = frame[list(rule_inputs(RISK_GROUP_COLUMN))].notna().all(axis=1)
    assert counts["rf_sum" + PANEL_SUFFIX].tolist() == frame[RISK_COUNT_COLUMN].where(in_panel, 0).groupby(
        keys).sum().sort_index().astype(int).tolist()
