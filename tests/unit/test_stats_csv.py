"""CSV for analysts: the same numbers, suppression and labels as the JSON, UTF-8 with BOM."""

from __future__ import annotations

import csv
import io

import orjson
import pytest

from shared.stats import keys
from shared.stats.aggregate import chunk_partial, merge_partials
from shared.stats.csv_export import BOM, COLUMNS, meta_headers, payload_to_csv
from shared.stats.payloads import build_payloads
from tests.support.stats_frames import screened_frame

META = {"computed_at": "2026-11-29T19:00:00+00:00", "dataset_version": "ds-7", "rule_version": "2026.11.1",
        "last_etl": None}


@pytest.fixture(scope="module")
def payloads() -> dict[str, bytes]:
    frame = screened_frame(30_000, seed=4)
    return build_payloads(merge_partials([chunk_partial(frame)]), META, 11, 100)


def _rows(raw: bytes) -> list[dict]:
    body = payload_to_csv(raw)
    assert body.startswith(BOM.encode("utf-8"))
    reader = csv.DictReader(io.StringIO(body.decode("utf-8")[1:]))
    assert tuple(reader.fieldnames) == COLUMNS
    return list(reader)


def test_every_number_of_the_json_is_a_row(payloads) -> None:
    key = keys.payload_key("factors", 2024, "F", "all", "complete_panel")
    data = orjson.loads(payloads[key])["data"]
    rows = _rows(payloads[key])
    low_hdl = data["flags"]["flag_low_hdl"]
    got = {r["statistic"]: r for r in rows if r["item"] == "flag_low_hdl" and r["age_group"] == "all"}
    for statistic in ("n", "n_positive", "percent", "not_in_panel"):
        value = low_hdl[statistic]
        assert got[statistic]["value"] == ("" if value is None else str(value))
        assert got[statistic]["suppressed"] == ("true" if value is None else "")
        assert got[statistic]["sex"] == "F" and got[statistic]["population"] == "complete_panel"
    band = next(b for b in data["breakdown"] if b["age_group"] == 9)
    nine = [r for r in rows if r["age_group"] == "9" and r["section"] == "categories" and r["item"] == "smoking"
            and r["level"] == "3" and r["statistic"] == "n"]
    assert len(nine) == 1 and nine[0]["age_label"] == "40-44" and nine[0]["value_label"] == "current"
    assert nine[0]["value"] == _text(band["categories"]["smoking"]["values"]["3"]["n"])


def test_withheld_cells_stay_withheld_and_korean_labels_survive(payloads) -> None:
    key = keys.payload_key("region", 2024, "F", "18")
    region = orjson.loads(payloads[key])["data"]
    rows = _rows(payloads[key])
    seoul = [r for r in rows if r["province_code"] == "11"]
    assert seoul and all(r["province_name_ko"] == "서울특별시" and r["province_name_en"] == "Seoul" for r in seoul)
    withheld_json = sum(1 for p in region["provinces"] for f in p["flags"].values()
                        for k, v in f.items() if k.startswith("n_") and v is None)
    withheld_csv = sum(1 for r in rows if r["section"] == "flags" and r["statistic"].startswith("n_")
                       and r["suppressed"] == "true")
    assert withheld_json == withheld_csv > 0
    # no count from 1 to 10 appears anywhere in the CSV's count columns
    counts = [int(r["value"]) for r in rows if r["statistic"] in ("n", "n_positive", "n_negative", "n_unknown",
                                                                   "not_in_panel") and r["value"]]
    assert counts and all(n == 0 or n >= 11 for n in counts)


def test_trends_and_meta_headers(payloads) -> None:
    key = keys.payload_key("trends", factor="flag_hypertension")
    rows = _rows(payloads[key])
    national = [r for r in rows if r["year"] == "2024" and r["sex"] == "all" and r["province_code"] == "all"]
    stats = {(r["section"], r["statistic"]) for r in national}
    assert {("crude", "percent"), ("crude", "ci_low"), ("age_standardised", "percent"), ("", "n")} <= stats
    headers = meta_headers(payloads[key])
    assert headers["X-Stats-Rule-Version"] == "2026.11.1" and headers["X-Stats-Stale"] == "false"
    assert headers["X-Stats-Standard-Population"].startswith("WHO")


def _text(value) -> str:
    return "" if value is None else str(value)
