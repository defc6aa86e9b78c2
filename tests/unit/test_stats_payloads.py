"""Payloads: every number equals a direct pandas computation over the people (k = 1, nothing
withheld), over both denominators; trends and age-standardised rates equal a hand computation."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from shared.stats import keys
from shared.stats.aggregate import (
    CATEGORIES,
    FLAGS,
    MEASURE_NAMES,
    MEASURES,
    RISK_COUNT_COLUMN,
    RISK_GROUP_COLUMN,
    RISK_GROUPINGS,
    Aggregates,
    chunk_partial,
    merge_partials,
    rule_inputs,
)
from shared.stats.payloads import PANEL_ONLY, REGION_FLAGS, build_payloads
from shared.stats.rates import WHO_WEIGHTS
from shared.stats.store import STALE_FALSE, STALE_TRUE
from tests.support.stats_frames import screened_frame

META = {"computed_at": "2026-11-29T19:00:00+00:00", "dataset_version": "ds-7", "rule_version": "2026.11.1",
        "last_etl": {"job_id": 7, "finished_at": "2026-11-29T18:59:00+00:00"},
        "notes_by_year": {2024: ["drinking blanks read as non-drinkers in this release"]}}
SEX_CODE = {"M": 1, "F": 2}
MIN_N = 21


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.concat([screened_frame(6000, year=2023, seed=5), screened_frame(6000, year=2024, seed=6)],
                     ignore_index=True)


@pytest.fixture(scope="module")
def raw(frame) -> dict[str, bytes]:
    parts = [chunk_partial(frame.iloc[i:i + 2500]) for i in range(0, len(frame), 2500)]
    return build_payloads(merge_partials(parts), META, 1, MIN_N)


@pytest.fixture(scope="module")
def plain(raw) -> dict[str, dict]:
    """k = 1: nothing withheld, so every number can be compared with pandas."""
    return {key: orjson.loads(body) for key, body in raw.items()}


def _slice(frame: pd.DataFrame, year: int, sex: str = "all", age: object = "all") -> pd.DataFrame:
    rows = frame[frame["year"] == year]
    if sex != "all":
        rows = rows[rows["sex"] == SEX_CODE[sex]]
    if age != "all":
        rows = rows[rows["age_group"] == int(age)]
    return rows


def _panel(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    measured = np.ones(len(rows), dtype=bool)
    for name in rule_inputs(column):
        measured &= rows[name].notna().to_numpy()
    return rows[measured]


def _pct(num, den) -> float | None:
    return None if den == 0 else round(100.0 * num / den, 2)


def _matches(series: pd.Series, column: str, value: str) -> pd.Series:
    return series.astype(str) == value if column in CATEGORIES else series == float(value)


def _is(values: pd.Series, target) -> int:
    return int((values.astype("boolean") == target).fillna(False).sum())


# --- keys and meta -----------------------------------------------------------------------------


def test_key_set_meta_notes_and_stale_marker(raw, frame) -> None:
    expected = {keys.YEARS_KEY, keys.TRENDS_INDEX_KEY} | {keys.payload_key("trends", factor=f) for f in FLAGS}
    for year in (2023, 2024):
        bands = ["all", *map(str, sorted(frame.loc[frame["year"] == year, "age_group"].unique()))]
        expected.add(keys.payload_key("overview", year))
        for sex in keys.SEXES:
            expected.add(keys.payload_key("age", year, sex))
            for age in bands:
                expected.add(keys.payload_key("percentiles", year, sex, age))
                for population in keys.POPULATIONS:
                    expected |= {keys.payload_key(e, year, sex, age, population) for e in keys.POPULATION_ENDPOINTS}
    assert set(raw) == expected
    for key, body in raw.items():
        assert body.count(STALE_FALSE) == 1, key
        assert body.replace(STALE_FALSE, STALE_TRUE, 1).count(b'"stale":true') == 1
        meta = orjson.loads(body)["meta"]
        assert list(meta)[:4] == ["computed_at", "dataset_version", "rule_version", "last_etl"]
        assert meta["small_cell_min"] == 1 and meta["percentile_min_n"] == MIN_N and "disclaimer" in meta
        assert meta["standard_population"].startswith("WHO World Standard Population")
        year = keys.year_of(key)
        if year == 2024 or key.startswith("trends"):
            assert meta["notes"] == [{"year": 2024, "note": META["notes_by_year"][2024][0]}]
        elif year == 2023:
            assert meta["notes"] == []
    with pytest.raises(ValueError):
        build_payloads(merge_partials([chunk_partial(frame)]), {**META, "x": {"stale": False}}, 11)


# --- both denominators equal pandas (k = 1) ----------------------------------------------------


@pytest.mark.parametrize("sex,age", [("all", "all"), ("M", "all"), ("F", "7"), ("all", "14")])
def test_risk_over_all_people_and_over_the_complete_panel(plain, frame, sex, age) -> None:
    rows = _slice(frame, 2024, sex, age)
    every = plain[keys.payload_key("risk", 2024, sex, age, "all")]["data"]
    assert every["population"] == "all" and every["people"] == {"n": len(rows)}
    for column in RISK_GROUPINGS:
        groups = every["groupings"][column]["groups"]
        for group, cell in groups.items():
            n = int((rows[column] == group).sum())
            assert cell == {"n": n, "percent": _pct(n, len(rows))}, (column, group)
    assert every["groups"] == every["groupings"][RISK_GROUP_COLUMN]["groups"]
    assert "INDETERMINATE" in every["groups"]  # counted and shown over everyone
    assert every["mean_risk_factor_count"] == {"value": round(rows[RISK_COUNT_COLUMN].mean(), 3), "lower_bound": True}

    panel_view = plain[keys.payload_key("risk", 2024, sex, age, "complete_panel")]["data"]
    assert panel_view["population"] == "complete_panel"
    for column in RISK_GROUPINGS:
        panel = _panel(rows, column)
        block = panel_view["groupings"][column]
        assert block["n"] == len(panel) and block["not_in_panel"] == len(rows) - len(panel)
        for group, cell in block["groups"].items():
            n = int((panel[column] == group).sum())
            assert cell == {"n": n, "percent": _pct(n, len(panel))}
        assert block["groups"]["INDETERMINATE"]["n"] == 0  # every input measured: always decided
    complete = _panel(rows, RISK_GROUP_COLUMN)
    if len(complete):
        exact = round(complete[RISK_COUNT_COLUMN].mean(), 3)
        assert panel_view["mean_risk_factor_count"] == {"value": exact, "lower_bound": False}
        assert exact >= every["mean_risk_factor_count"]["value"]
    else:  # women 30-34 are not offered the lipid panel: no complete panel, no exact mean
        assert panel_view["mean_risk_factor_count"] == {"value": None, "lower_bound": False}


@pytest.mark.parametrize("sex,age", [("all", "all"), ("F", "all"), ("M", "12")])
def test_factors_over_all_people_and_over_the_complete_panel(plain, frame, sex, age) -> None:
    rows = _slice(frame, 2024, sex, age)
    every = plain[keys.payload_key("factors", 2024, sex, age, "all")]["data"]
    panel_view = plain[keys.payload_key("factors", 2024, sex, age, "complete_panel")]["data"]
    for flag in FLAGS:
        panel = _panel(rows, flag)
        positive = _is(panel[flag], True)
        expected_panel = {"n": len(panel), "n_positive": positive, "percent": _pct(positive, len(panel)),
                          "not_in_panel": len(rows) - len(panel)}
        assert panel_view["flags"][flag] == expected_panel, flag
        if flag in PANEL_ONLY:  # metabolic syndrome: only over people with all five components measured
            assert every["flags"][flag] == {"complete_panel_only": True, **expected_panel}
            continue
        counts = {"positive": _is(rows[flag], True), "negative": _is(rows[flag], False),
                  "unknown": int(rows[flag].isna().sum())}
        assert every["flags"][flag] == {
            **{f"n_{k}": v for k, v in counts.items()},
            **{f"percent_{k}": _pct(v, len(rows)) for k, v in counts.items()},
        } or list(every["flags"][flag]) != []
        for name, n in counts.items():
            assert every["flags"][flag][f"n_{name}"] == n
            assert every["flags"][flag][f"percent_{name}"] == _pct(n, len(rows))
    for column in (*CATEGORIES, "smoking", "drinking"):
        panel = _panel(rows, column)
        block = every["categories"][column]
        assert block["n_unknown"] == int(rows[column].isna().sum())
        pblock = panel_view["categories"][column]
        assert pblock["n"] == len(panel) and pblock["not_in_panel"] == len(rows) - len(panel)
        for value, cell in block["values"].items():
            n = int(_matches(rows[column], column, value).sum())
            assert cell["n"] == n and cell["percent"] == _pct(n, len(rows)), (column, value)
            n_panel = int(_matches(panel[column], column, value).sum())
            assert pblock["values"][value]["n"] == n_panel
            assert pblock["values"][value]["percent"] == _pct(n_panel, len(panel))
    assert every["categories"]["smoking"]["values"]["3"]["label"] == "current"
    assert set(panel_view["inputs"]["metabolic_syndrome"]) - {"sex"} == {"waist_cm", "triglycerides", "hdl", "sbp",
                                                                          "dbp", "fasting_glucose"}
    for entry in every["breakdown"]:
        sub = _slice(frame, 2024, entry["sex"], entry["age_group"])
        assert entry["people"]["n"] == len(sub)
        assert entry["flags"]["flag_low_hdl"]["n_unknown"] == int(sub["flag_low_hdl"].isna().sum())


def test_region_by_province_for_both_populations(plain, frame) -> None:
    rows = _slice(frame, 2024, "F", "all")
    for population in keys.POPULATIONS:
        data = plain[keys.payload_key("region", 2024, "F", "all", population)]["data"]
        by_code = {p["code"]: p for p in data["provinces"]}
        assert by_code[11]["name_en"] == "Seoul" and by_code[11]["name_ko"] == "서울특별시"
        for code, entry in by_code.items():
            sub = rows[rows["province"].isna()] if code is None else rows[rows["province"] == code]
            assert entry["people"]["n"] == len(sub)
            assert set(entry["flags"]) == set(REGION_FLAGS)
            hyper = entry["flags"]["flag_hypertension"]
            if population == "all":
                assert hyper["n_positive"] == _is(sub["flag_hypertension"], True)
                assert hyper["percent_positive"] == _pct(hyper["n_positive"], len(sub))
            else:
                panel = _panel(sub, "flag_hypertension")
                assert hyper["n"] == len(panel) and hyper["n_positive"] == _is(panel["flag_hypertension"], True)
            groups = entry["groupings"][RISK_GROUP_COLUMN]
            base = sub if population == "all" else _panel(sub, RISK_GROUP_COLUMN)
            assert groups["groups"]["CHD_RISK_EQUIVALENT"]["n"] == int((base[RISK_GROUP_COLUMN] == "CHD_RISK_EQUIVALENT").sum())


def test_age_means_are_marked_lower_bounds(plain, frame) -> None:
    data = plain[keys.payload_key("age", 2024, "all")]["data"]
    assert data["mean_risk_factor_count_is_lower_bound"] is True and data["population"] == "all"
    band = next(b for b in data["bands"] if b["age_group"] == 9)
    sub = _slice(frame, 2024, "M", 9)
    assert band["by_sex"]["M"]["mean_risk_factor_count"] == round(sub[RISK_COUNT_COLUMN].mean(), 3)


# --- percentiles -------------------------------------------------------------------------------


def _expected_percentiles(values: pd.Series, name: str) -> list:
    spec = MEASURES[name]
    v = np.clip(np.round(values.dropna().to_numpy() * spec.scale), round(spec.lo * spec.scale),
                round(spec.hi * spec.scale)) / spec.scale
    return np.percentile(v, list(keys.PERCENTILES), method="inverted_cdf").tolist()


@pytest.mark.parametrize("sex,age", [("all", "all"), ("F", "all"), ("M", "12")])
def test_percentiles_nearest_rank_only_for_groups_of_min_n(plain, frame, sex, age) -> None:
    data = plain[keys.payload_key("percentiles", 2024, sex, age)]["data"]
    assert data["method"] == "inverted_cdf" and data["min_n"] == MIN_N
    blocks = [(sex, age, data["measurements"])] + [(b["sex"], b["age_group"], b["measurements"]) for b in data["breakdown"]]
    seen_small = False
    for s, a, measurements in blocks:
        rows = _slice(frame, 2024, s, a)
        for name in MEASURE_NAMES:
            block = measurements[name]
            n = int(rows[name].notna().sum())
            assert block["n"] == n
            got = [block[f"p{q}"] for q in keys.PERCENTILES]
            if n >= MIN_N:
                assert got == pytest.approx(_expected_percentiles(rows[name], name), abs=1e-9), name
                # never the minimum or the maximum of the group
                assert "p0" not in block and "p100" not in block
            else:
                seen_small = True
                assert got == [None] * len(keys.PERCENTILES) and "fewer than" in block["reason"]
    assert seen_small or sex != "F"  # women under 40 have (almost) no lipid values


# --- trends and standardised rates -------------------------------------------------------------


def _one(fraction: float) -> float:
    """Trends print rates to 0.1 percentage point."""
    return float(np.round(100 * fraction, 1))


def _wilson(d: int, n: int) -> tuple[float, float, float]:
    z = 1.959963984540054
    p = d / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


@pytest.mark.parametrize("flag", ["flag_hypertension", "flag_low_hdl", "metabolic_syndrome"])
def test_trends_crude_and_standardised_equal_a_hand_computation(plain, frame, flag) -> None:
    data = plain[keys.payload_key("trends", factor=flag)]["data"]
    assert data["years"] == [2023, 2024] and data["population"] == "complete_panel"
    assert data["standard_population"]["name"].startswith("WHO World Standard Population")
    bands = [b["age_group"] for b in data["standard_age_bands"]]
    # a band is in the standard range if >= 10% of each sex are in the panel, every year
    expected_bands = []
    for band in sorted(frame["age_group"].unique()):
        ok = all(len(_panel(rows := _slice(frame, year, sex, band), flag)) >= max(1, 0.1 * len(rows))
                 for year in (2023, 2024) for sex in ("M", "F"))
        if ok:
            expected_bands.append(int(band))
    assert bands == expected_bands
    if {"hdl", "triglycerides"} & set(rule_inputs(flag)):  # no lipid panel for women under 40
        assert min(bands) >= 9
    else:
        assert min(bands) == 5
    weights = WHO_WEIGHTS[np.array(bands) - 1] / WHO_WEIGHTS[np.array(bands) - 1].sum()
    series = {(e["year"], e["sex"], e["code"]): e for e in data["series"]}
    for year in (2023, 2024):
        for sex in keys.SEXES:
            for code in ("all", 11, 41):
                rows = _slice(frame, year, sex)
                if code != "all":
                    rows = rows[rows["province"] == code]
                panel = _panel(rows, flag)
                entry = series[(year, sex, code)]
                d = _is(panel[flag], True)
                assert entry["n"] == len(panel) and entry["n_positive"] == d
                p, low, high = _wilson(d, len(panel))
                assert entry["crude"] == {"percent": _one(p), "ci_low": _one(low), "ci_high": _one(high)}
                by_band = [(_is(_panel(rows[rows["age_group"] == b], flag)[flag], True),
                            len(_panel(rows[rows["age_group"] == b], flag))) for b in bands]
                if any(n == 0 for _d, n in by_band):
                    assert entry["age_standardised"]["percent"] is None
                    continue
                rates = np.array([dd / n for dd, n in by_band])
                rate = float((weights * rates).sum())
                se = float(np.sqrt((weights ** 2 * rates * (1 - rates) / np.array([n for _d, n in by_band])).sum()))
                assert entry["age_standardised"] == pytest.approx({
                    "percent": _one(rate), "ci_low": _one(max(0.0, rate - 1.959963984540054 * se)),
                    "ci_high": _one(min(1.0, rate + 1.959963984540054 * se))}, abs=0.11)
    assert [c["year"] for c in data["coverage"]] == [2023, 2024]


def test_trends_note_the_lipid_schedule_change_and_coverage_jumps() -> None:
    older = screened_frame(4000, year=2017, seed=8)
    newer = screened_frame(4000, year=2018, seed=9)
    payloads = build_payloads(merge_partials([chunk_partial(older), chunk_partial(newer)]), META, 1, MIN_N)
    hdl = orjson.loads(payloads[keys.payload_key("trends", factor="flag_low_hdl")])["data"]
    coverage = {c["year"]: c["percent"] for c in hdl["coverage"]}
    assert coverage[2017] - coverage[2018] >= 10  # 2017-style files carry lipids for (nearly) everyone
    notes = [(n["year"], n["note"]) for n in hdl["notes"]]
    assert any(year == 2018 and "lipid panel" in note and "every 4 years" in note for year, note in notes), notes
    assert any(year == 2018 and "complete panel changed" in note for year, note in notes), notes
    bp = orjson.loads(payloads[keys.payload_key("trends", factor="flag_hypertension")])["data"]
    assert not any("lipid" in n["note"] for n in bp["notes"])
    index = orjson.loads(payloads[keys.TRENDS_INDEX_KEY])["data"]
    assert [f["factor"] for f in index["factors"]] == list(FLAGS) and index["years"] == [2017, 2018]


def test_partials_without_panel_counts_say_so(frame) -> None:
    agg = merge_partials([chunk_partial(frame[frame["year"] == 2024])])
    old = agg.counts.drop(columns=[c for c in agg.counts.columns if "@panel" in c or c == "panel_counted"])
    payloads = build_payloads(Aggregates(counts=old, hist=agg.hist), META, 1, MIN_N)
    panel = orjson.loads(payloads[keys.payload_key("factors", 2024, population="complete_panel")])["data"]
    assert panel["flags"]["flag_low_hdl"]["available"] is False
    every = orjson.loads(payloads[keys.payload_key("factors", 2024)])["data"]
    assert every["flags"]["flag_low_hdl"]["n_unknown"] is not None  # the all-people view still works
    risk = orjson.loads(payloads[keys.payload_key("risk", 2024, population="complete_panel")])["data"]
    assert risk["groupings"][RISK_GROUP_COLUMN]["available"] is False


@pytest.mark.parametrize("n", [21, 22, 40, 101])
def test_percentiles_never_print_a_minimum_or_maximum(n) -> None:
    from tests.support.stats_frames import make_frame

    frame = make_frame(n, seed=n, ages=(9,))
    frame["sbp"] = np.arange(100, 100 + n, dtype=float)  # every value distinct
    out = orjson.loads(build_payloads(merge_partials([chunk_partial(frame)]), META, 1, 21)[
        keys.payload_key("percentiles", 2024)])["data"]["measurements"]["sbp"]
    printed = [out[f"p{q}"] for q in keys.PERCENTILES]
    assert None not in printed and min(printed) > 100 and max(printed) < 100 + n - 1
    with pytest.raises(ValueError):
        build_payloads(merge_partials([chunk_partial(frame)]), META, 1, 20)
