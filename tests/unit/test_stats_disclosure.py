"""Suppression that holds across the whole generation: an automated attacker gets every cell that is
not withheld and every additive relation, and must not recover any count from 1 to k-1; and the
payloads print nothing the suppression pass withheld."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from shared.stats import keys
from shared.stats.aggregate import FLAGS, MEASURE_NAMES, RISK_GROUPINGS, chunk_partial, merge_partials
from shared.stats.payloads import PANEL_ONLY, REGION_FLAGS, YearCubes, build_payloads
from shared.stats.rates import WHO_WEIGHTS, standardised, wilson
from shared.stats.suppression import Family, protect, with_totals
from tests.support.disclosure import System, printed_counts
from tests.support.stats_frames import screened_frame

K = 11  # NHIS_SMALL_CELL_MIN
META = {"computed_at": "2026-11-29T19:00:00+00:00", "dataset_version": "ds", "rule_version": "r", "last_etl": None}
# Small provinces (Sejong, Jeju, Gwangju) x four age bands x sex: many counts of 1..10, some people
# cells of a handful of persons.
SPARSE = {"provinces": (36, 49, 29), "bands": (5, 9, 16, 18)}


def _sparse_year(seed: int) -> tuple:
    frame = screened_frame(60_000, seed=seed, **SPARSE)
    agg = merge_partials([chunk_partial(frame)])
    return frame, agg, YearCubes(agg, 2024, K, 100)


@pytest.fixture(scope="module", params=[1, 2])
def sparse(request):
    return _sparse_year(request.param)


def test_every_small_count_is_withheld(sparse) -> None:
    _frame, _agg, year = sparse
    small_people = (year.people_x >= 1) & (year.people_x < K)
    assert small_people.any(), "the data should have small people cells"
    assert (year.people_sup | ~small_people).all()
    small_cells = 0
    for fam in year.families:
        small = (fam.x >= 1) & (fam.x < K)
        small_cells += int(small.sum())
        assert (fam.sup | ~small).all(), fam.name
    assert small_cells > 1000
    assert not year.people_sup[0, 0, 0]  # the year's people count stays published


def test_the_attacker_recovers_no_small_count(sparse) -> None:
    _frame, _agg, year = sparse
    system = System(year.people_x, year.people_sup, year.families)
    recovered = system.difference()
    assert not [k for k, v in recovered.items() if 1 <= v < K]
    for key, value in recovered.items():  # whatever it does recover is right and not small
        assert value == system.value(key)
    determined = system.determined()
    assert not [k for k in determined if 1 <= system.value(k) < K]


def test_the_interval_attack_pins_no_small_count(sparse) -> None:
    """Linear programming with every cell non-negative: every small people cell (protected by
    perturbations that may run one way only) and a sample of small family cells keep a range."""
    _frame, _agg, year = sparse
    system = System(year.people_x, year.people_sup, year.families)
    small = [k for k in system.withheld_keys() if 1 <= system.value(k) < K]
    people = [k for k in small if k[0] == "people"]
    others = [k for k in small if k[0] != "people"]
    rng = np.random.default_rng(0)
    sample = people + [others[i] for i in rng.choice(len(others), size=min(25, len(others)), replace=False)]
    assert people and len(sample) > 25
    assert system.interval_pinned(sample) == []


def test_the_attacker_is_not_blind() -> None:
    """Publish the withheld partners of one small cell and both attacks find it."""
    _frame, _agg, year = _sparse_year(3)
    fam = next(f for f in year.families if f.name == "flag_diabetes")
    small = np.argwhere(fam.sup & (fam.x >= 1) & (fam.x < K))
    target = tuple(small[0])
    opened = [Family(f.name, f.x, f.weight) for f in year.families]
    for f_new, f_old in zip(opened, year.families, strict=True):
        f_new.sup = f_old.sup.copy()
    leak = next(f for f in opened if f.name == "flag_diabetes")
    leak.sup[:] = False
    leak.sup[target] = True
    leak.sup[(slice(None),) * 3 + (0,) * leak.value_axes] = year.people_sup
    system = System(year.people_x, year.people_sup, opened)
    key = (opened.index(leak), tuple(int(v) for v in target))
    assert system.difference().get(key) == year.families[opened.index(leak)].x[target]
    assert key in system.determined()
    assert system.interval_pinned([key]) == [key]


@pytest.mark.parametrize("seed", range(4))
def test_engine_on_random_cubes(seed) -> None:
    rng = np.random.default_rng(seed)
    shape = (2, int(rng.integers(2, 6)), int(rng.integers(2, 6)))
    people = rng.integers(0, 40, shape)

    def split(counts: np.ndarray, probs: list[float], value_shape: tuple[int, ...]) -> np.ndarray:
        out = np.zeros(counts.shape + (len(probs),), dtype=np.int64)
        for idx in np.ndindex(counts.shape):
            out[idx] = rng.multinomial(counts[idx], probs)
        return out.reshape(counts.shape + value_shape)

    families = [
        Family("flag", with_totals(split(people, [0.05, 0.6, 0.35], (3,)))),
        Family("panel", with_totals(split(people, [0.3, 0.3, 0.0, 0.0, 0.1, 0.3], (2, 3)))),
        Family("no_province", with_totals(split(people.sum(axis=2, keepdims=True), [0.02, 0.9, 0.08], (3,)))[:, :, :1]),
    ]
    people_x = with_totals(people)
    k = int(rng.integers(3, 12))
    people_sup = protect(people_x, families, k)
    system = System(people_x, people_sup, families)
    small = [key for key in system.withheld_keys() if 1 <= system.value(key) < k]
    assert not [key for key in system.determined() if 1 <= system.value(key) < k]
    assert system.interval_pinned(small) == []
    for fam in families:
        assert (fam.sup | ~((fam.x >= 1) & (fam.x < k))).all()


# --- the payloads print nothing withheld -------------------------------------------------------


class _Printed:
    """Maps printed payload numbers onto the cells of the year's cubes and checks them."""

    def __init__(self, year: YearCubes) -> None:
        self.year = year
        self.checked = 0
        self.measures = {name: year.families[-len(MEASURE_NAMES) + j] for j, name in enumerate(MEASURE_NAMES)}

    def s(self, label) -> int:
        return keys.SEXES.index(label)

    def a(self, label) -> int:
        return 0 if label == "all" else self.year.bands.index(int(label)) + 1

    def p(self, code) -> int:
        if code == "all":
            return 0
        return self.year.provinces.index(-1 if code is None else int(code)) + 1

    def cell(self, where, s, a, p, values, printed) -> None:
        if where == "people":
            truth, withheld = self.year.people_x[s, a, p], self.year.people_sup[s, a, p]
        else:
            fam = where
            p = p if fam.by_province else 0
            truth, withheld = fam.x[(s, a, p, *values)], fam.sup[(s, a, p, *values)]
        if printed is None:
            assert withheld, (getattr(where, "name", where), s, a, p, values)
        else:
            assert printed == truth and not withheld, (getattr(where, "name", where), s, a, p, values, printed)
        self.checked += 1

    def count(self, block, s, a, p=0) -> None:
        self.cell("people", s, a, p, (), block["n"])

    def truth(self, where, s, a, p, values) -> tuple[int, bool]:
        if where == "people":
            return int(self.year.people_x[s, a, p]), bool(self.year.people_sup[s, a, p])
        p = p if where.by_province else 0
        return int(where.x[(s, a, p, *values)]), bool(where.sup[(s, a, p, *values)])

    def ratio(self, printed, num, den) -> None:
        """A printed percent equals the truth; where a count it uses is withheld, it must print the
        same for every value of the withheld counts within +-K (checked at the corners and at
        random points)."""
        if printed is None:
            return
        (n, n_sup), (d, d_sup) = self.truth(*num), self.truth(*den)
        assert printed == round(100.0 * n / d, 2)
        if n_sup or d_sup:
            rng = np.random.default_rng(n * 7919 + d)
            for _ in range(30):
                nn = n + (int(rng.integers(-K, K + 1)) if n_sup else 0)
                dd = d + (int(rng.integers(-K, K + 1)) if d_sup else 0)
                if 0 <= nn <= dd and dd > 0:
                    assert round(100.0 * nn / dd, 2) == printed

    def grouping(self, column, population, block, s, a, p, people) -> None:
        rule, fam = self.year.rules[column], self.year.family(column)
        if population == "complete_panel":
            self.cell(fam, s, a, p, (1, 0), block["n"])
            self.cell(fam, s, a, p, (2, 0), block["not_in_panel"])
            row, den = 1, (fam, s, a, p, (1, 0))
        else:
            row, den = 0, ("people", s, a, p, ())
        for j, value in enumerate(rule.values, start=1):
            self.cell(fam, s, a, p, (row, j), block["groups"][value]["n"])
            self.ratio(block["groups"][value]["percent"], (fam, s, a, p, (row, j)), den)
        if "UNKNOWN" in block["groups"]:
            self.cell(fam, s, a, p, (row, rule.unknown), block["groups"]["UNKNOWN"]["n"])

    def flag(self, name, population, block, s, a, p) -> None:
        rule, fam = self.year.rules[name], self.year.family(name)
        if population == "complete_panel" or rule.panel_only:
            self.cell(fam, s, a, p, (1, 0), block["n"])
            self.cell(fam, s, a, p, (1, 1), block["n_positive"])
            self.cell(fam, s, a, p, (2, 0), block["not_in_panel"])
            self.ratio(block["percent"], (fam, s, a, p, (1, 1)), (fam, s, a, p, (1, 0)))
        else:
            for j, name_ in enumerate(("positive", "negative", "unknown"), start=1):
                self.cell(fam, s, a, p, (0, j), block[f"n_{name_}"])
                self.ratio(block[f"percent_{name_}"], (fam, s, a, p, (0, j)), ("people", s, a, p, ()))

    def category(self, name, population, block, s, a) -> None:
        rule, fam = self.year.rules[name], self.year.family(name)
        if population == "complete_panel":
            self.cell(fam, s, a, 0, (1, 0), block["n"])
            self.cell(fam, s, a, 0, (2, 0), block["not_in_panel"])
            row, den = 1, (fam, s, a, 0, (1, 0))
        else:
            self.cell(fam, s, a, 0, (0, rule.unknown), block["n_unknown"])
            self.ratio(block["percent_unknown"], (fam, s, a, 0, (0, rule.unknown)), ("people", s, a, 0, ()))
            row, den = 0, ("people", s, a, 0, ())
        for j, value in enumerate(rule.values, start=1):
            self.cell(fam, s, a, 0, (row, j), block["values"][value]["n"])
            self.ratio(block["values"][value]["percent"], (fam, s, a, 0, (row, j)), den)


def test_payloads_print_only_cells_the_pass_left_published() -> None:
    _frame, agg, year = _sparse_year(1)
    payloads = {k: orjson.loads(v) for k, v in build_payloads(agg, META, K, 21).items()}
    check = _Printed(year)
    for key, body in payloads.items():
        data = body["data"]
        endpoint, *rest = key.split(":")
        if endpoint == "overview":
            check.count(data["people"], 0, 0)
            for name, block in data["measurements"].items():
                check.cell(check.measures[name], 0, 0, 0, (1,), block["n"])
                check.ratio(block["percent"], (check.measures[name], 0, 0, 0, (1,)), ("people", 0, 0, 0, ()))
            for sex, block in data["sex"].items():
                check.count(block, check.s(sex), 0)
                check.ratio(block["percent"], ("people", check.s(sex), 0, 0, ()), ("people", 0, 0, 0, ()))
            for band in data["age"]:
                check.count(band, 0, check.a(band["age_group"]))
                check.ratio(band["percent"], ("people", 0, check.a(band["age_group"]), 0, ()), ("people", 0, 0, 0, ()))
        elif endpoint == "age":
            s = check.s(rest[1])
            for row in [data["overall"], *data["bands"]]:
                a = check.a(row.get("age_group", "all"))
                for sx, sub in [(s, row), *[(check.s(k), v) for k, v in row.get("by_sex", {}).items()]]:
                    check.count(sub["people"], sx, a)
                    check.grouping(RISK_GROUPINGS[0], "all", {"groups": sub["groups"]}, sx, a, 0, None)
                    assert sub["mean_risk_factor_count"] is None or sub["people"]["n"] is not None
        elif endpoint in ("risk", "factors", "region"):
            _year, sex, age, population = rest
            s, a = check.s(sex), check.a(age)
            check.count(data["people"], s, a)
            if endpoint == "risk":
                for sx, sub in [(s, data), *[(check.s(k), v) for k, v in data.get("by_sex", {}).items()]]:
                    check.count(sub["people"], sx, a)
                    for column, block in sub["groupings"].items():
                        check.grouping(column, population, block, sx, a, 0, sub["people"]["n"])
            elif endpoint == "factors":
                for sub in [data, *data["breakdown"]]:
                    sx, ax = check.s(sub["sex"]), check.a(sub["age_group"])
                    check.count(sub["people"], sx, ax)
                    for name, block in sub["flags"].items():
                        check.flag(name, population, block, sx, ax, 0)
                    for name, block in sub["categories"].items():
                        check.category(name, population, block, sx, ax)
            else:
                for province in data["provinces"]:
                    p = check.p(province["code"])
                    check.count(province["people"], s, a, p)
                    for column, block in province["groupings"].items():
                        check.grouping(column, population, block, s, a, p, province["people"]["n"])
                    assert set(province["flags"]) == set(REGION_FLAGS)
                    for name, block in province["flags"].items():
                        check.flag(name, population, block, s, a, p)
        elif endpoint == "percentiles":
            for sub in [data, *data["breakdown"]]:
                sx, ax = check.s(sub["sex"]), check.a(sub["age_group"])
                for name, block in sub["measurements"].items():
                    check.cell(check.measures[name], sx, ax, 0, (1,), block["n"])
                    if block["p50"] is not None:
                        assert block["n"] is not None and block["n"] >= 21
        elif key.startswith("trends:"):
            _check_trend(check, data)
    assert check.checked > 10_000
    printed = [n for body in payloads.values() for n in printed_counts(body["data"])]
    assert printed and not [n for n in printed if 1 <= n < K]  # no printed count is small, wherever it sits


def _check_trend(check: _Printed, data: dict) -> None:
    """Crude and standardised rates equal the truth, and print the same for random values of their
    withheld counts within +-K."""
    fam = check.year.family(data["factor"])
    bands = [b["age_group"] for b in data["standard_age_bands"]]
    weights = WHO_WEIGHTS[np.array(bands) - 1] / WHO_WEIGHTS[np.array(bands) - 1].sum() if bands else None
    rng = np.random.default_rng(len(data["series"]))
    for entry in data["series"]:
        if entry["year"] != check.year.year:
            continue
        s, p = check.s(entry["sex"]), check.p(entry["code"])
        check.cell(fam, s, 0, p, (1, 0), entry["n"])
        check.cell(fam, s, 0, p, (1, 1), entry["n_positive"])
        crude = entry["crude"]
        if crude["percent"] is not None:
            d, n = fam.x[s, 0, p, 1, 1], fam.x[s, 0, p, 1, 0]
            hidden = fam.sup[s, 0, p, 1, 1], fam.sup[s, 0, p, 1, 0]
            for _ in range(20):
                dd = d + (rng.integers(-K, K + 1) if hidden[0] else 0)
                nn = n + (rng.integers(-K, K + 1) if hidden[1] else 0)
                if 0 <= dd <= nn and nn > 0:
                    printed = [float(np.round(100 * v, 1)) for v in wilson(np.array(dd), np.array(nn))]
                    assert printed == [crude["percent"], crude["ci_low"], crude["ci_high"]]
        std = entry["age_standardised"]
        if std["percent"] is None:
            continue
        a = [check.a(b) for b in bands]
        d, n = fam.x[s, a, p, 1, 1].astype(float), fam.x[s, a, p, 1, 0].astype(float)
        d_sup, n_sup = fam.sup[s, a, p, 1, 1], fam.sup[s, a, p, 1, 0]
        for trial in range(40):
            dd = d + (rng.integers(-K, K + 1, len(d)) * d_sup if trial else 0)
            nn = n + (rng.integers(-K, K + 1, len(n)) * n_sup if trial else 0)
            dd = np.clip(dd, 0, None)
            nn = np.maximum(np.maximum(nn, dd), 1)  # a printed rate says no band is empty
            printed = [float(np.round(100 * v, 1)) for v in standardised(dd, nn, weights)]
            assert printed == [std["percent"], std["ci_low"], std["ci_high"]], (data["factor"], entry["sex"], trial)


def test_flags_by_province_cover_the_panel_only_rule() -> None:
    assert set(PANEL_ONLY) <= set(FLAGS)
