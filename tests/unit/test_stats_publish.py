"""Payloads: numbers equal direct pandas computations, and small cells cannot be seen or derived."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import orjson
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
from shared.stats.publish import ENDPOINTS, REGION_FLAGS, build_payloads, payload_key, suppress
from shared.stats.store import STALE_FALSE, STALE_TRUE
from tests.support.stats_frames import make_frame

META = {"computed_at": "2026-11-29T19:00:00+00:00", "dataset_version": "ds-7", "rule_version": "2026.11.1",
        "last_etl": {"job_id": 7, "finished_at": "2026-11-29T18:59:00+00:00"}}
SEX_CODE = {"M": 1, "F": 2}


def _build(frame: pd.DataFrame, k: int) -> dict[str, dict]:
    agg = merge_partials([chunk_partial(frame)])
    return {key: orjson.loads(raw) for key, raw in build_payloads(agg, META, k).items()}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(5000, seed=11, years=(2023, 2024))


@pytest.fixture(scope="module")
def raw(frame) -> dict[str, bytes]:
    return build_payloads(merge_partials([chunk_partial(frame)]), META, 1)


@pytest.fixture(scope="module")
def plain(raw) -> dict[str, dict]:
    """k = 1: nothing suppressed, so every number can be compared with pandas."""
    return {key: orjson.loads(b) for key, b in raw.items()}


def _slice(frame: pd.DataFrame, year: int, sex: str = "all", age: object = "all") -> pd.DataFrame:
    rows = frame[frame["year"] == year]
    if sex != "all":
        rows = rows[rows["sex"] == SEX_CODE[sex]]
    if age != "all":
        rows = rows[rows["age_group"] == int(age)]
    return rows


def _pct(num: int, den: int) -> float | None:
    return None if den == 0 else round(100.0 * num / den, 2)


# --- keys and meta -----------------------------------------------------------------------------


def test_payload_key_formats() -> None:
    assert payload_key("risk", 2024) == "risk:2024:all:all"
    assert payload_key("risk", "2024", 1, 5) == "risk:2024:M:5"
    assert payload_key("factors", 2024, "f", "18") == "factors:2024:F:18"
    assert payload_key("overview", 2024, "all", "all") == "overview:2024:all:all"
    assert payload_key("age", 2024, "female") == "age:2024:F:all"
    assert payload_key("years") == "years"
    for bad in (("overview", 2024, "M"), ("age", 2024, None, 5), ("risk", 2024, "X"), ("risk", 2024, None, 19),
                ("nope", 2024), ("risk", None)):
        with pytest.raises(ValueError):
            payload_key(*bad)


def test_key_set_meta_and_stale_marker(raw, frame) -> None:
    expected = {"years"}
    for year in (2023, 2024):
        bands = ["all", *map(str, sorted(frame.loc[frame["year"] == year, "age_group"].unique()))]
        expected.add(payload_key("overview", year))
        for sex in ("all", "M", "F"):
            expected.add(payload_key("age", year, sex))
            for age in bands:
                expected |= {payload_key(e, year, sex, age) for e in ENDPOINTS if e not in ("overview", "age")}
    assert set(raw) == expected
    for key, body in raw.items():
        assert body.count(STALE_FALSE) == 1, key
        assert body.replace(STALE_FALSE, STALE_TRUE, 1).count(b'"stale":true') == 1
        meta = orjson.loads(body)["meta"]
        assert list(meta)[:4] == ["computed_at", "dataset_version", "rule_version", "last_etl"]
        assert meta["stale"] is False and meta["small_cell_min"] == 1 and "disclaimer" in meta
    years = orjson.loads(raw["years"])["data"]
    assert years["latest"] == 2024
    assert [(y["year"], y["people"]["n"], y["latest"]) for y in years["years"]] == [
        (2023, int((frame["year"] == 2023).sum()), False), (2024, int((frame["year"] == 2024).sum()), True)]
    with pytest.raises(ValueError):
        build_payloads(merge_partials([chunk_partial(frame)]), {**META, "x": {"stale": False}}, 11)


# --- numbers equal pandas (k = 1) --------------------------------------------------------------


def test_overview_and_age_labels(plain, frame) -> None:
    rows = _slice(frame, 2024)
    data = plain["overview:2024:all:all"]["data"]
    assert data["people"]["n"] == len(rows) and data["years_loaded"] == [2023, 2024]
    assert data["last_etl"] == META["last_etl"]
    for name in MEASURE_NAMES:
        assert data["measurements"][name] == {"n": int(rows[name].notna().sum()),
                                              "percent": _pct(rows[name].notna().sum(), len(rows))}
    assert data["sex"]["F"]["n"] == int((rows["sex"] == 2).sum())
    ages = {a["age_group"]: a for a in data["age"]}
    assert ages[5]["label"] == "20-24" and ages[18]["label"] == "85+" and ages[18]["age_max"] is None
    assert ages[9]["n"] == int((rows["age_group"] == 9).sum())
    age = plain["age:2024:all:all"]["data"]
    band = next(b for b in age["bands"] if b["age_group"] == 5)
    assert band["label"] == "20-24" and band["age_min"] == 20 and band["age_max"] == 24
    sub = rows[(rows["age_group"] == 5) & (rows["sex"] == 1)]
    assert band["by_sex"]["M"]["people"]["n"] == len(sub)
    assert band["by_sex"]["M"]["mean_risk_factor_count"] == round(sub["risk_factor_count"].mean(), 3)
    chd = (sub["screening_risk_group"] == "CHD_RISK_EQUIVALENT").sum()
    assert band["by_sex"]["M"]["groups"]["CHD_RISK_EQUIVALENT"] == {"n": int(chd), "percent": _pct(chd, len(sub))}
    assert [b["label"] for b in plain["age:2024:F:all"]["data"]["bands"]][-1] == "85+"


@pytest.mark.parametrize("sex,age", [("all", "all"), ("M", "all"), ("F", "7"), ("all", "18")])
def test_risk_factors_region_equal_pandas(plain, frame, sex, age) -> None:
    rows = _slice(frame, 2024, sex, age)
    risk = plain[payload_key("risk", 2024, sex, age)]["data"]
    assert risk["people"]["n"] == len(rows)
    for group in RISK_GROUPS:
        n = int((rows["screening_risk_group"] == group).sum())
        assert risk["groups"][group] == {"n": n, "percent": _pct(n, len(rows))}
    factors = plain[payload_key("factors", 2024, sex, age)]["data"]
    for flag in FLAGS:
        measured = int(rows[flag].notna().sum())
        positive = int(rows[flag].fillna(False).astype(bool).sum())
        # own denominator: people whose flag is known, not everyone in the slice
        assert factors["flags"][flag] == {"n_measured": measured, "n_positive": positive,
                                          "percent": _pct(positive, measured)}
    for column in (*CATEGORIES, "smoking", "drinking"):
        block = factors["categories"][column]
        known = rows[column].dropna()
        assert block["n_measured"] == len(known)
        for value, cell in block["values"].items():
            n = int((known.astype(str) == value).sum()) if column in CATEGORIES else int((known == float(value)).sum())
            assert cell["n"] == n and cell["percent"] == _pct(n, len(known))
    assert factors["categories"]["smoking"]["values"]["3"]["label"] == "current"
    for entry in factors["breakdown"]:
        sub = _slice(frame, 2024, entry["sex"], entry["age_group"])
        assert entry["people"]["n"] == len(sub)
        assert entry["flags"]["flag_low_hdl"]["n_measured"] == int(sub["flag_low_hdl"].notna().sum())
    expected_breakdown = (2 if sex == "all" else 1) * (14 if age == "all" else 1) if "all" in (sex, age) else 0
    assert len(factors["breakdown"]) == expected_breakdown
    region = plain[payload_key("region", 2024, sex, age)]["data"]
    by_code = {p["code"]: p for p in region["provinces"]}
    assert by_code[11]["name_en"] == "Seoul" and by_code[11]["name_ko"] == "서울특별시"
    assert by_code[50]["name_en"] == "Jeju" and by_code[None]["name_en"] == "unknown"
    for code, entry in by_code.items():
        sub = rows[rows["province"].isna()] if code is None else rows[rows["province"] == code]
        assert entry["people"]["n"] == len(sub)
        assert set(entry["flags"]) == set(REGION_FLAGS)
        ms = sub["metabolic_syndrome"]
        assert entry["flags"]["metabolic_syndrome"]["percent"] == _pct(ms.fillna(False).astype(bool).sum(),
                                                                        ms.notna().sum())


def _expected_percentiles(values: pd.Series, name: str) -> list:
    spec = MEASURES[name]
    v = np.clip(np.round(values.dropna().to_numpy() * spec.scale), round(spec.lo * spec.scale),
                round(spec.hi * spec.scale)) / spec.scale
    if not len(v):
        return [None] * 7
    return np.percentile(v, [5, 10, 25, 50, 75, 90, 95], method="inverted_cdf").tolist()


@pytest.mark.parametrize("sex,age", [("all", "all"), ("F", "all"), ("M", "12")])
def test_percentiles_are_nearest_rank_of_binned_values(plain, frame, sex, age) -> None:
    data = plain[payload_key("percentiles", 2024, sex, age)]["data"]
    assert data["method"] == "inverted_cdf"
    rows = _slice(frame, 2024, sex, age)
    for name in MEASURE_NAMES:
        block = data["measurements"][name]
        assert block["n"] == int(rows[name].notna().sum())
        got = [block[f"p{q}"] for q in (5, 10, 25, 50, 75, 90, 95)]
        assert got == pytest.approx(_expected_percentiles(rows[name], name), abs=1e-9), name
    for entry in data["breakdown"][:4]:
        sub = _slice(frame, 2024, entry["sex"], entry["age_group"])
        assert entry["measurements"]["hdl"]["p50"] == _expected_percentiles(sub["hdl"], "hdl")[3]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20, 21, 40, 101])
def test_percentile_ranks_match_numpy_for_small_n(n) -> None:
    frame = make_frame(n, seed=n, ages=(9,))
    out = orjson.loads(build_payloads(merge_partials([chunk_partial(frame)]), META, 1)["percentiles:2024:all:all"])
    for name in ("sbp", "creatinine", "bmi"):
        got = [out["data"]["measurements"][name][f"p{q}"] for q in (5, 10, 25, 50, 75, 90, 95)]
        assert got == pytest.approx(_expected_percentiles(frame[name], name), abs=1e-9)


# --- suppression -------------------------------------------------------------------------------


def test_suppress_rule_on_small_tables() -> None:
    one = (True,)
    assert suppress(np.array([100, 3, 40, 57]), 11, one).tolist() == [False, True, True, False]
    assert suppress(np.array([50, 1, 1, 20, 28]), 11, one).tolist() == [False, True, True, True, False]
    assert suppress(np.array([50, 0, 50]), 11, one).tolist() == [False, False, False]
    assert suppress(np.array([12, 12, 0]), 11, one).tolist() == [False, False, False]
    assert suppress(np.array([5, 5, 0]), 11, one).tolist() == [True, True, False]
    two = suppress(np.array([[60, 30, 30], [25, 20, 5], [35, 10, 25]]), 11, (True, True))
    assert two.sum(axis=0).tolist() != [0, 0, 1] and all(c != 1 for c in two.sum(axis=0))
    assert all(r != 1 for r in two.sum(axis=1)) and two[1, 2]


def _collect(payloads: dict[str, dict]) -> dict[int, dict[tuple, int | None]]:
    """Every published count as (family, sex, age, province, value) -> n or None, checked to agree
    wherever a cell appears in several payloads; flag negatives are derived as a reader would."""
    cells: dict[int, dict[tuple, int | None]] = defaultdict(dict)

    def put(year, fam, s, a, p, v, n):
        key = (fam, s, a, p, v)
        assert cells[year].setdefault(key, n) == n, (year, key)

    def risk(year, s, a, p, people, groups):
        put(year, "risk", s, a, p, "*", people["n"])
        for g, cell in groups.items():
            put(year, "risk", s, a, p, g, cell["n"])

    def flags(year, s, a, p, block):
        for f, cell in block.items():
            put(year, f, s, a, p, "*", cell["n_measured"])
            put(year, f, s, a, p, "positive", cell["n_positive"])

    def factor(year, s, a, d):
        risk(year, s, a, "all", d["people"], {})
        flags(year, s, a, "all", d["flags"])
        for c, block in d["categories"].items():
            put(year, c, s, a, "all", "*", block["n_measured"])
            for v, cell in block["values"].items():
                put(year, c, s, a, "all", v, cell["n"])

    for key, body in payloads.items():
        if key == "years":
            continue
        endpoint, year, s, a = key.split(":")
        year = int(year)
        a = a if a == "all" else int(a)
        d = body["data"]
        if endpoint == "risk":
            risk(year, s, a, "all", d["people"], d["groups"])
            for ss, sub in d.get("by_sex", {}).items():
                risk(year, ss, a, "all", sub["people"], sub["groups"])
        elif endpoint == "age":
            risk(year, s, "all", "all", d["overall"]["people"], d["overall"]["groups"])
            for band in d["bands"]:
                risk(year, s, band["age_group"], "all", band["people"], band["groups"])
                for ss, sub in band.get("by_sex", {}).items():
                    risk(year, ss, band["age_group"], "all", sub["people"], sub["groups"])
        elif endpoint == "region":
            risk(year, s, a, "all", d["people"], {})
            for p in d["provinces"]:
                code = p["code"] if p["code"] is not None else "unknown"
                risk(year, s, a, code, p["people"], p["groups"])
                flags(year, s, a, code, p["flags"])
        elif endpoint == "factors":
            factor(year, s, a, d)
            for sub in d["breakdown"]:
                factor(year, sub["sex"], sub["age_group"], sub)
        elif endpoint == "percentiles":
            for m, block in d["measurements"].items():
                put(year, "n:" + m, s, a, "all", "*", block["n"])
            for sub in d["breakdown"]:
                for m, block in sub["measurements"].items():
                    put(year, "n:" + m, sub["sex"], sub["age_group"], "all", "*", block["n"])
        elif endpoint == "overview":
            risk(year, "all", "all", "all", d["people"], {})
            for m, cell in d["measurements"].items():
                put(year, "n:" + m, "all", "all", "all", "*", cell["n"])
            for ss, cell in d["sex"].items():
                put(year, "risk", ss, "all", "all", "*", cell["n"])
            for cell in d["age"]:
                put(year, "risk", "all", cell["age_group"], "all", "*", cell["n"])
    for year_cells in cells.values():
        for (fam, s, a, p, v), n in list(year_cells.items()):
            if fam in FLAGS and v == "positive":
                total = year_cells[(fam, s, a, p, "*")]
                year_cells[(fam, s, a, p, "negative")] = None if n is None or total is None else total - n
    return cells


def _relations(cells: dict[tuple, int | None]) -> list[list[tuple]]:
    """Lines of every family cube along one axis: [total, *parts] (only the published lines)."""
    axes: dict[str, list[set]] = defaultdict(lambda: [set(), set(), set(), set()])
    for fam, *coords in cells:
        for i, c in enumerate(coords):
            axes[fam][i].add(c)
    relations = []
    totals = ("all", "all", "all", "*")
    for key in cells:
        fam, *coords = key
        for axis in range(4):
            if coords[axis] != totals[axis]:
                continue
            parts = []
            for member in axes[fam][axis] - {totals[axis]}:
                other = list(coords)
                other[axis] = member
                if (fam, *other) in cells:
                    parts.append((fam, *other))
            if parts:
                relations.append([key, *parts])
    return relations


@pytest.mark.parametrize("seed", [21, 22, 23])
@pytest.mark.parametrize("k", [5, 11])
def test_no_small_cell_is_shown_or_derivable(seed, k) -> None:
    # few people over many cells: lots of counts in 1..k-1
    frame = make_frame(900, seed=seed, years=(2024,), risk_p=(0.04, 0.3, 0.6, 0.06))
    truth = _collect(_build(frame, 1))[2024]
    published = _collect(_build(frame, k))[2024]
    assert truth.keys() == published.keys()
    primary = {key for key, n in truth.items() if 1 <= n < k}
    hidden = {key for key, n in published.items() if n is None}
    assert primary <= hidden  # every small count is withheld (negatives included: never derivable)
    for key, n in published.items():
        assert n is None or n == truth[key]  # shown numbers are the true ones
        assert n is None or not 1 <= n < k
    relations = _relations(published)
    for members in relations:
        missing = [m for m in members if published[m] is None]
        assert len(missing) != 1, missing  # a lone gap would equal total - shown parts
        if missing and published[members[0]] is not None:
            assert sum(truth[m] for m in missing) >= k  # and the gap is not itself a small number
    # nothing else: each complementary cell sits in a relation with another suppressed cell
    in_gap = {m for members in relations for m in members if sum(published[x] is None for x in members) >= 2}
    assert hidden - primary <= in_gap
    assert hidden - primary, "the frame should need complementary suppression"
    assert len(hidden - primary) < len(truth) / 2


def test_no_suppression_when_every_cell_is_large() -> None:
    frame = make_frame(12000, seed=5, ages=(9, 10), provinces=(11, 26))
    frame["province"] = frame["province"].fillna(11)
    cells = _collect(_build(frame, 11))[2024]
    truth = _collect(_build(frame, 1))[2024]
    small = {key for key, n in truth.items() if 1 <= n < 11}
    assert {key for key, n in cells.items() if n is None} == small


def test_suppressed_cells_are_flagged_and_derived_numbers_hidden() -> None:
    frame = make_frame(700, seed=31, years=(2024,))
    out = _build(frame, 11)
    risk = out["risk:2024:F:18"]["data"]
    for cell in risk["groups"].values():
        assert (cell["n"] is None) == cell.get("suppressed", False) or risk["people"]["n"] is None
        if cell["n"] is None:
            assert cell["percent"] is None and cell["suppressed"] is True
    plain = _build(frame, 1)
    for key in ("percentiles:2024:F:18", "percentiles:2024:M:all"):
        blocks = [out[key]["data"]["measurements"]] + [b["measurements"] for b in out[key]["data"]["breakdown"]]
        truths = [plain[key]["data"]["measurements"]] + [b["measurements"] for b in plain[key]["data"]["breakdown"]]
        for shown, true in ((b[m], t[m]) for b, t in zip(blocks, truths, strict=True) for m in MEASURE_NAMES):
            if 1 <= true["n"] < 11:  # primary: the whole block goes
                assert shown["suppressed"] is True and shown["n"] is None
                assert all(shown[f"p{q}"] is None for q in (5, 10, 25, 50, 75, 90, 95))
            elif shown["n"] is None:  # complementary: n goes, percentiles of a large group stay
                assert shown["suppressed"] is True and shown["p50"] == true["p50"]
            else:
                assert shown == true
    small = [b for b in out["percentiles:2024:F:all"]["data"]["breakdown"]
             for m in b["measurements"].values() if m["n"] is None]
    assert small, "expected some small sex x band blocks in a 700-person frame"
    factors = out["factors:2024:all:all"]["data"]["breakdown"]
    for entry in factors:
        for flag in entry["flags"].values():
            if flag["n_positive"] is None or flag["n_measured"] is None:
                assert flag["percent"] is None and flag["suppressed"] is True
