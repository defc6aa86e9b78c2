"""The generator: exact formats per release, determinism, and prevalences near the anchors."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from shared.cli.generate import generate_command
from shared.data.catalog import CANONICAL_COLUMNS, RELEASE_HEADERS
from shared.data.generate import generate_frame, write_file


def lines(path, encoding="cp949"):
    return path.read_bytes().decode(encoding).split("\r\n")


def test_frame_contract():
    frame = generate_frame(500, year=2024, seed=1, start_id=10)
    assert list(frame.columns) == list(CANONICAL_COLUMNS)
    for c in ("year", "subscriber_id", "sex", "age_group"):
        assert frame[c].dtype == np.int64
    assert frame["release_date"].dtype == object
    assert frame["subscriber_id"].iloc[0] == 10 and frame["subscriber_id"].is_unique
    assert frame["waist_cm"].dtype == np.float64
    assert set(frame["height_cm"].dropna() % 5) == {0}


def test_deterministic_and_chunk_independent(tmp_path):
    a = generate_frame(1200, seed=7)
    b = generate_frame(1200, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(generate_frame(1200, seed=8))
    write_file(tmp_path / "a.csv", 300, seed=7)
    write_file(tmp_path / "b.csv", 300, seed=7)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@pytest.mark.parametrize("style", ["2014", "2017", "2020", "2024", "english", "2013", "2019"])
def test_header_and_formats(tmp_path, style):
    out = tmp_path / "f.csv"
    write_file(out, 50, year=2017 if style in ("2017", "english") else 2020, seed=1, style=style)
    text = lines(out)
    assert text[0] == ",".join(RELEASE_HEADERS[style])
    assert text[-1] == "" and len(text) == 52
    first = text[1].split(",")
    assert len(first) == len(RELEASE_HEADERS[style])
    if style == "2017":
        assert first[-1] == "20181126"
    if style == "2020":
        assert first[-1] == "2021-12-29"
    if style == "2019":
        assert first[-1] == "2021-12-31"
    if style == "2013":
        assert first[-1] == "20231220" and "." not in first[7]  # integer waist, like 2014


def test_value_formats_2014_vs_2024(tmp_path):
    write_file(tmp_path / "a.csv", 200, year=2014, seed=2, style="2014", garbage=False)
    write_file(tmp_path / "b.csv", 200, year=2024, seed=2, style="2024", garbage=False)
    waist14 = [r.split(",")[7] for r in lines(tmp_path / "a.csv")[1:-1]]
    waist24 = [r.split(",")[7] for r in lines(tmp_path / "b.csv")[1:-1]]
    assert all("." not in w for w in waist14)
    assert all(w == "" or len(w.split(".")[1]) == 1 for w in waist24)
    sbp = [r.split(",")[12] for r in lines(tmp_path / "b.csv")[1:-1]]
    assert all("." not in v for v in sbp)


def test_utf8_header(tmp_path):
    write_file(tmp_path / "u.csv", 5, encoding="utf-8")
    assert (tmp_path / "u.csv").read_bytes().decode("utf-8").startswith("기준년도,")


def test_cli(tmp_path):
    out = tmp_path / "c.csv"
    result = CliRunner().invoke(generate_command, ["--rows", "100", "--out", str(out), "--style", "english",
                                                   "--encoding", "utf-8", "--year", "2018", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("rows=100 path=") and "seconds=" in result.output
    assert out.read_text(encoding="utf-8").startswith("HCHK_YEAR,")


def test_prevalences_near_anchors():
    """200k rows of 2024 against the anchors of docs/DATA.md §4 (bands allow sampling noise and model error)."""
    f = generate_frame(200_000, year=2024, seed=11)
    male = f["sex"] == 1
    bmi = f["weight_kg"] / (f["height_cm"] / 100) ** 2
    glucose = f["fasting_glucose"].dropna()
    lipid = f["total_cholesterol"].notna()
    abdominal = np.where(male, f["waist_cm"] >= 90, f["waist_cm"] >= 85)
    high_bp = (f["sbp"] >= 130) | (f["dbp"] >= 85)
    low_hdl = np.where(male, f["hdl"] < 40, f["hdl"] < 50)
    mets = abdominal.astype(int) + (f["triglycerides"] >= 150) + low_hdl + high_bp + (f["fasting_glucose"] >= 100)
    checks = {
        "male share": (male.mean(), 0.53, 0.55),
        "mean age": ((5 * f["age_group"] - 3).mean(), 45, 49),
        "bmi>=25": ((bmi >= 25).mean(), 0.36, 0.42),
        "bmi>=25 men": ((bmi[male] >= 25).mean(), 0.45, 0.53),
        "bmi>=25 women": ((bmi[~male] >= 25).mean(), 0.25, 0.33),
        "fbg>=126": ((glucose >= 126).mean(), 0.07, 0.095),
        "fbg 100-125": (((glucose >= 100) & (glucose < 126)).mean(), 0.27, 0.33),
        "lipid panel present": (lipid.mean(), 0.30, 0.40),
        "tg>=150 (tested)": ((f["triglycerides"][lipid] >= 150).mean(), 0.17, 0.23),
        "abdominal obesity": (abdominal.mean(), 0.22, 0.28),
        "high bp 130/85": (high_bp.mean(), 0.38, 0.47),
        "metabolic syndrome (tested)": ((mets[lipid] >= 3).mean(), 0.19, 0.25),
        "current smoking": ((f["smoking"] == 3).mean(), 0.18, 0.23),
        "current smoking men": ((f["smoking"][male] == 3).mean(), 0.32, 0.38),
        "current smoking women": ((f["smoking"][~male] == 3).mean(), 0.025, 0.05),
        "no blood results": (f["sbp"].isna().mean(), 0.005, 0.01),
        "urine protein missing": (f["urine_protein"].isna().mean(), 0.009, 0.015),
    }
    bad = {k: round(v, 4) for k, (v, lo, hi) in checks.items() if not lo <= v <= hi}
    assert not bad, bad
    # women under 40 never have a lipid panel (screening rule), dental only for examined
    assert f.loc[(~male) & (f["age_group"] < 9), "total_cholesterol"].isna().all()
    assert f.loc[f["oral_exam"] == 0, "tartar"].isna().all()
    assert f.loc[f["triglycerides"] >= 400, "ldl"].isna().all()
    assert f["drinking"].isna().sum() > 0  # unknown stays NaN
    assert f[["height_cm", "weight_kg"]].corr().iloc[0, 1] > 0.5


def test_2017_style_has_full_lipids_and_jeju_50(tmp_path):
    f = generate_frame(20_000, year=2017, seed=3)
    assert f["total_cholesterol"].notna().mean() > 0.98
    assert f["missing_teeth"].isna().all() and (f["release_date"] == "2018-11-26").all()
    # the file writes Jeju as 50; the frame (what the reader returns) has the canonical 49
    write_file(tmp_path / "j.csv", 20_000, year=2017, seed=3, style="2017")
    written = {int(r.split(",")[4]) for r in lines(tmp_path / "j.csv")[1:-1]}
    assert 50 in written and 49 not in written
    assert 49 in set(f["province"]) and 50 not in set(f["province"])


def test_existing_styles_unchanged_by_the_new_ones(tmp_path):
    """The 2013/2019 quirks apply only to those styles: same seed, same rows elsewhere."""
    write_file(tmp_path / "a.csv", 2000, year=2019, seed=4, style="2020", garbage=False)
    write_file(tmp_path / "b.csv", 2000, year=2019, seed=4, style="2019", garbage=False)
    a = [r.split(",") for r in lines(tmp_path / "a.csv")[1:-1]]
    b = [r.split(",") for r in lines(tmp_path / "b.csv")[1:-1]]
    drink_a, drink_b = [r[26] for r in a], [r[26] for r in b]
    assert "0" in drink_a and "0" not in drink_b
    assert [d if d != "0" else "" for d in drink_a] == drink_b
    assert [r[:26] for r in a] == [r[:26] for r in b]


def test_2013_style_writes_the_old_age_numbering(tmp_path):
    write_file(tmp_path / "o.csv", 3000, year=2013, seed=8, style="2013", garbage=False)
    text = lines(tmp_path / "o.csv")
    assert text[0].split(",")[:5] == ["HCHK_YEAR", "IDV_ID", "SEX", "AGE_GROUP", "SIDO"]
    written = np.array([int(r.split(",")[3]) for r in text[1:-1]])
    frame = generate_frame(3000, year=2013, seed=8, style="2013")
    assert (written + 4 == frame["age_group"].to_numpy()).all()
    assert written.min() == 1 and written.max() == 14


def test_2019_style_drinking_shares():
    """Blank means "does not drink" in this release: the frame (as read) has realistic shares."""
    f = generate_frame(50_000, year=2019, seed=2, style="2019")
    male = f["sex"] == 1
    assert f["drinking"].notna().all()
    assert 0.45 < f["drinking"].mean() < 0.55  # 2017 file: 49-50 % drink
    assert 0.60 < f.loc[male, "drinking"].mean() < 0.72  # 2017: men 67 %
    assert 0.24 < f.loc[~male, "drinking"].mean() < 0.36  # 2017: women 30 %
