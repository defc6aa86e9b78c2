"""Real releases read right, end to end: a 2013-style file's age bands are renumbered, and a
2019-style file's blank drinking answers are read as non-drinkers, with a note in the statistics."""

from __future__ import annotations

import csv

import orjson
import pytest
from sqlalchemy import text

from shared.etl.jobs import create_job, wait_for_job
from shared.stats import store
from shared.stats.keys import payload_key
from tests.support.files import sample_file, wait_for_stats_with
from tests.support.system import IsolatedSystem

pytestmark = pytest.mark.integration


@pytest.fixture
def system(tmp_path):
    sys_ = IsolatedSystem(tmp_path, chunk_rows=2000)
    sys_.worker("w", concurrency=2)
    yield sys_
    sys_.close()


def test_a_2013_file_is_read_with_the_2013_age_bands(system):
    resources = system.resources
    path = sample_file(resources.settings.data_dir / "y2013", 6_000, name="2013.csv", year=2013, seed=13,
                       style="2013", encoding="utf-8")
    job = wait_for_job(resources, create_job(resources, path), timeout=180)
    assert job["status"] == "succeeded", job
    assert any("1-14" in w or "2013" in w for w in job["warnings"]), job["warnings"]
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    column = [h.upper() for h in rows[0]].index("AGE_GROUP")
    published = {line: int(r[column]) for line, r in enumerate(rows[1:], start=2) if r[column].strip()}
    assert min(published.values()) < 5, "the file uses the 1-14 numbering"
    with resources.engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT line_no, age_group FROM screenings WHERE job_id = :j"),
                                   {"j": job["job_id"]}).all())
    assert stored and all(stored[line] == published[line] + 4 for line in stored)
    assert min(stored.values()) >= 5 and max(stored.values()) <= 18
    wait_for_stats_with(resources, job["job_id"])
    overview = orjson.loads(store.load_generation(resources)[payload_key("overview", 2013)])
    assert all(band["age_min"] >= 20 for band in overview["data"]["age"])
    assert any("renumbered" in n["note"] for n in overview["meta"]["notes"])


def test_a_2019_file_reads_blank_drinking_as_no_and_says_so(system):
    resources = system.resources
    path = sample_file(resources.settings.data_dir / "y2019", 6_000, name="2019.csv", year=2019, seed=19,
                       style="2019")
    job = wait_for_job(resources, create_job(resources, path), timeout=180)
    assert job["status"] == "succeeded", job
    with resources.engine.connect() as conn:
        answered, drinkers = conn.execute(text(
            "SELECT COUNT(drinking), SUM(drinking = 1) FROM screenings WHERE job_id = :j"),
            {"j": job["job_id"]}).one()
    share = drinkers / answered
    assert answered >= 0.95 * job["progress"]["rows_loaded"], "blanks became answers, not unknowns"
    assert 0.3 < share < 0.7, f"a plausible drinker share, not ~100%: {share:.2f}"
    wait_for_stats_with(resources, job["job_id"])
    factors = orjson.loads(store.load_generation(resources)[payload_key("factors", 2019)])
    assert any("drinking" in n["note"] and "non-drinkers" in n["note"] for n in factors["meta"]["notes"])
