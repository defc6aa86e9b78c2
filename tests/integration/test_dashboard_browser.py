"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright, against a
running system (its own MariaDB database and redis-server, a real Celery worker, a real Gunicorn)
with two generated years ingested through the workers.

Every number the page draws is checked against the API's own answer for the same request: each
chart's marks (count and values), the result card, the denominator toggle, the language switch.
No console error, no failed request, no response >= 400 is allowed on any page. Screenshots go to
the artefacts folder printed at the end of the run; with NHIS_UPDATE_SCREENSHOT=1 the test also
rewrites docs/dashboard.png (stamped with the digest of the dashboard files it shows, which
tests/unit/test_docs_screenshot.py compares).
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections import Counter
from types import SimpleNamespace

import pytest

from shared.etl.jobs import create_job, get_job, wait_for_job
from tests.support import browser as chrome
from tests.support.apps import EVERY_SCOPE, make_key
from tests.support.files import sample_file, wait_for_stats_with
from tests.support.system import IsolatedSystem
from tests.support.web import GunicornProcess

pytestmark = pytest.mark.integration

# (year, release style, seed): the two straddle 2018, when the lipid panel went from every 2 to
# every 4 years, so lipid factors carry coverage notes in their trends.
YEARS = ((2016, "2014", 31), (2024, "2024", 37))
ROWS = 15_000
DESKTOP = {"width": 1280, "height": 1000}
PHONE = {"width": 390, "height": 844}
PERSON = {"sex": "F", "age": 58, "height_cm": 158, "weight_kg": 66, "waist_cm": 88, "sbp": 148, "dbp": 94,
          "fasting_glucose": 118, "total_cholesterol": 246, "hdl": 41, "triglycerides": 190, "smoking": "never"}
LOAD_TIMEOUT_MS = 60_000


# --- the system -----------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def browser_present():
    """Checked before the system is built: no browser fails at once (skips without REQUIRE_SERVICES)."""
    chrome.chromium_path()


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dashboard")
    iso = IsolatedSystem(folder, chunk_rows=4000)
    try:
        iso.worker("worker", concurrency=2)
        last = None
        for year, style, seed in YEARS:
            path = sample_file(folder / "data", ROWS, name=f"nhis-{year}.csv", year=year, style=style, seed=seed)
            job = wait_for_job(iso.resources, create_job(iso.resources, path, year), timeout=300)
            assert job["status"] == "succeeded", job
            last = job["job_id"]
        wait_for_stats_with(iso.resources, last)
        key = make_key(iso.resources, EVERY_SCOPE)
        web = GunicornProcess(iso.env, log_path=folder / "web.log").start()
        iso.procs.append(web)
        yield SimpleNamespace(iso=iso, web=web, key=key, folder=folder)
    finally:
        iso.close()


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    return chrome.artefacts_dir(tmp_path_factory.mktemp("dashboard-screenshots"))


@pytest.fixture(scope="module")
def chromium():
    executable = chrome.chromium_path()
    with chrome.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=chrome.CHROMIUM_ARGS)
        yield launched
        launched.close()


class Watched:
    """A page whose console errors, uncaught exceptions, failed requests and HTTP errors are kept."""

    def __init__(self, chromium, viewport=DESKTOP):
        self.context = chromium.new_context(viewport=viewport, locale="en-US")
        self.page = self.context.new_page()
        self.page.set_default_timeout(LOAD_TIMEOUT_MS)
        self.problems: list[str] = []
        self.requests: list = []
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.method} {r.url} {r.failure}"))
        self.page.on("response", lambda r: self.problems.append(f"HTTP {r.status}: {r.request.method} {r.url}")
                     if r.status >= 400 else None)
        self.page.on("request", lambda r: self.requests.append(r))

    def close(self):
        self.context.close()


@pytest.fixture
def watched(chromium):
    opened: list[Watched] = []

    def open_page(viewport=DESKTOP) -> Watched:
        page = Watched(chromium, viewport)
        opened.append(page)
        return page

    yield open_page
    for page in opened:
        page.close()


def api(system, path: str, body: dict | None = None):
    request = urllib.request.Request(system.web.url + path, headers={"X-API-Key": system.key, "Accept": "application/json"},
                                     data=None if body is None else json.dumps(body).encode(),
                                     method="GET" if body is None else "POST")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def enter_key(page, key: str, loads: int = 1) -> None:
    """Type the key and submit with the keyboard, then wait until the page finished loading."""
    page.fill("#key", key)
    page.press("#key", "Enter")
    page.wait_for_selector(f'body[data-loaded="{loads}"][data-state="ready"]')


# --- what the page should draw, from the API -------------------------------------------------


def shown(values) -> list[float]:
    return sorted(float(v) for v in values if v is not None)


def flag_share(block: dict, population: str):
    if block.get("available") is False:
        return None
    if block.get("complete_panel_only") or population == "complete_panel":
        return block.get("percent")
    return block.get("percent_positive")


def expected_charts(system, population: str, trend_factor="flag_hypertension", province_factor="flag_hypertension"):
    """{chart name: sorted published values} for every chart the page should draw."""
    overview = api(system, "/api/v1/stats/overview")["data"]
    year = overview["year"]
    factors = api(system, f"/api/v1/stats/factors?year={year}&population={population}")["data"]
    risk = api(system, f"/api/v1/stats/risk?year={year}&population={population}")["data"]
    region = api(system, f"/api/v1/stats/region?year={year}&population={population}")["data"]
    trend = api(system, f"/api/v1/stats/trends?factor={trend_factor}")["data"]
    charts = {
        "measured": shown(c["percent"] for c in overview["measurements"].values()),
        "age-distribution": shown(a["percent"] for a in overview["age"]),
        "risk-screening": shown(c["percent"] for c in risk["groupings"]["screening_risk_group"]["groups"].values()),
        "risk-atp3": shown(c["percent"] for c in risk["groupings"]["atp3_risk_category"]["groups"].values()),
        "provinces": shown(flag_share(p["flags"][province_factor], population) for p in region["provinces"]),
        "trend": shown([e["crude"]["percent"] for e in trend["series"] if e["sex"] == "all" and e["code"] == "all"]
                       + [e["age_standardised"]["percent"] for e in trend["series"]
                          if e["sex"] == "all" and e["code"] == "all"]),
    }
    for flag in factors["flags"]:
        values = shown(flag_share(row["flags"][flag], population) for row in factors["breakdown"] if row["sex"] in "MF")
        if values:
            charts[f"prevalence-{flag}"] = values
    return charts, factors, overview


def drawn_charts(page) -> dict[str, list[float]]:
    found = page.eval_on_selector_all(
        "[data-chart]", "els => els.map(e => [e.dataset.chart, "
                        "Array.from(e.querySelectorAll('.mark[data-value]'), m => Number(m.dataset.value))])")
    return {name: sorted(values) for name, values in found}


def assert_charts_match(page, system, population: str) -> dict:
    expected, factors, overview = expected_charts(system, population)
    drawn = drawn_charts(page)
    assert set(drawn) == set(expected), (sorted(set(drawn) ^ set(expected)))
    for name, values in expected.items():
        assert values, f"{name}: the API published nothing to draw"
        assert drawn[name] == pytest.approx(values), name
    # Enough to call it a dashboard: most factors have published values by band and sex.
    assert sum(1 for n in drawn if n.startswith("prevalence-")) >= 0.8 * len(factors["flags"])
    return {"factors": factors, "overview": overview, "drawn": drawn}


def cell_number(text: str) -> float:
    return float(re.sub(r"[^0-9.\-]", "", text))


def crude_cell(page, label: str) -> str:
    row = page.locator("#prevalence-table tbody tr", has=page.locator("th", has_text=label)).first
    return row.locator("td").nth(0).inner_text()


def _group_labels() -> dict[str, str]:
    text = (chrome.STATIC / "i18n.js").read_text("utf-8")
    body = re.search(r"const groups = \{(.*?)\n  \};", text, re.S)[1]
    return {k: en for k, en in re.findall(r'^\s+(\w+): \["([^"]*)", "[^"]*"\]', body, re.M)}


def save(page_or_locator, artefacts, name: str, **kwargs):
    path = artefacts / name
    page_or_locator.screenshot(path=str(path), **kwargs)
    chrome.saved(path)
    return path


# --- the tests ----------------------------------------------------------------------------------


def test_dashboard_draws_every_section_from_the_api(system, watched, artefacts):
    w = watched()
    page = w.page
    page.goto(system.web.url + "/")
    page.wait_for_selector('body[data-state="ready"]')
    # Before a key: nothing but the page and its files was requested, and the page says why.
    assert {r.url.split("?")[0].replace(system.web.url, "") for r in w.requests} <= {
        "/", "/static/dashboard.css", "/static/i18n.js", "/static/charts.js", "/static/dashboard.js",
        "/static/favicon.svg"}
    assert "Enter an API key" in page.inner_text("#status")
    # Keyboard: the skip link comes first, then the language switch.
    page.keyboard.press("Tab")
    assert page.locator(":focus").get_attribute("class") == "skip"
    page.keyboard.press("Tab")
    assert page.locator(":focus").get_attribute("id") == "lang"

    enter_key(page, system.key)
    assert page.evaluate("sessionStorage.getItem('nhis-key')") == system.key
    assert all("X-API-Key" not in r.url and system.key not in r.url for r in w.requests)
    facts = assert_charts_match(page, system, "all")
    overview = facts["overview"]
    assert page.locator("#overview-cards .card b").first.inner_text() == f"{overview['people']['n']:,}"
    assert ", ".join(str(y) for y in overview["years_loaded"]) in page.inner_text("#overview-cards")
    # Age bands: band k is ages 5k-5..5k-1, the last 85+.
    bands = [a["age_group"] for a in overview["age"]]
    labels = page.locator('svg[data-chart="age-distribution"] .axis-label').all_text_contents()
    assert labels == [("85+" if k == 18 else f"{5 * k - 5}–{5 * k - 1}") for k in bands]
    assert labels[0] == "20–24" and labels[-1] == "85+"
    # The prevalence table shows the API's crude shares (rounded to 0.1).
    tc_all = flag_share(facts["factors"]["flags"]["flag_high_total_cholesterol"], "all")
    assert cell_number(crude_cell(page, "High total cholesterol")) == pytest.approx(tc_all, abs=0.051)
    page.locator(":focus").blur()
    save(page, artefacts, "dashboard-en.png")
    page.evaluate("window.scrollTo(0, 0)")
    first_row = page.locator("#prevalence-grid figure").first.bounding_box()  # title to the first prevalence charts
    clip = {"x": 0, "y": 0, "width": DESKTOP["width"], "height": min(1800, round(first_row["y"] + first_row["height"] + 24))}
    shot = page.screenshot(full_page=True, clip=clip)
    save(page, artefacts, "dashboard-full.png", full_page=True)

    # The denominator toggle: values change to the complete panel's, and so does the explanation.
    explain_all = page.inner_text("#population-explain")
    page.click("#population label:has(input[value=complete_panel])")
    page.wait_for_selector('body[data-population="complete_panel"][data-state="ready"]')
    assert page.inner_text("#population-explain") != explain_all
    panel = assert_charts_match(page, system, "complete_panel")
    tc_panel = flag_share(panel["factors"]["flags"]["flag_high_total_cholesterol"], "complete_panel")
    assert tc_panel != pytest.approx(tc_all, abs=0.051)  # the unknown two thirds leave the denominator
    assert cell_number(crude_cell(page, "High total cholesterol")) == pytest.approx(tc_panel, abs=0.051)
    assert panel["drawn"] != facts["drawn"]
    page.click("#population label:has(input[value=all])")
    page.wait_for_selector('body[data-population="all"][data-state="ready"]')

    # Trends: another factor and sex redraw from that factor's payload, with its coverage notes.
    trend = api(system, "/api/v1/stats/trends?factor=flag_low_hdl")["data"]
    page.select_option("#trend-factor", "flag_low_hdl")
    page.click("#trend-sex label:has(input[value=F])")
    wanted = shown([e[k]["percent"] for e in trend["series"] if e["sex"] == "F" and e["code"] == "all"
                    for k in ("crude", "age_standardised")])
    page.wait_for_selector('svg[data-chart="trend"][aria-label^="Low HDL cholesterol, Women:"]')
    assert drawn_charts(page)["trend"] == pytest.approx(wanted) and wanted
    assert page.locator("#coverage-table tbody tr").count() == len(trend["years"]) == len(YEARS)
    assert trend["notes"], "years straddling 2018 give lipid factors a schedule note"
    notes = page.locator("#trend-notes li").all_inner_texts()
    assert len(notes) == len(trend["notes"])
    assert all(n["note"] in text for n, text in zip(trend["notes"], notes, strict=True))

    # Check a person: the form gives the API's answer for the same person.
    form = page.locator("#person-form")
    for name, value in PERSON.items():
        if name in ("sex", "smoking"):
            form.locator(f"select[name={name}]").select_option(value)
        else:
            form.locator(f"input[name={name}]").fill(str(value))
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#person-result:not([hidden])")
    answer = api(system, "/api/v1/simulate?include=what_if,explanations", PERSON)
    result = page.locator("#person-result")
    cvd = result.locator('[data-field="cvd_10y"]').inner_text()
    assert answer["cvd_10y"]["percent"] is not None
    assert re.fullmatch(r"\d+\.\d%", cvd) and cell_number(cvd) == pytest.approx(answer["cvd_10y"]["percent"], abs=0.051)
    assert "overestimates" in result.inner_text()  # the CVD caveat travels with the number
    groups = _group_labels()
    assert result.locator('[data-field="screening_risk_group"]').inner_text() == groups[answer["screening_risk_group"]]
    assert result.locator('[data-field="atp3_risk_category"]').inner_text() == groups[answer["atp3_risk_category"]]
    chips = result.locator('[data-field="flags"] li').all_inner_texts()
    assert len(chips) == len(answer["flags"]) == 7
    word = {True: "yes", False: "no", None: "unknown"}
    assert chips[0].strip().endswith(word[answer["flags"]["hypertension"]])
    assert result.locator('[data-field="what_if"] li').count() == len(answer["what_if"]) > 0
    assert result.locator('[data-field="explanations"] li').count() == len(answer["explanations"]) > 0
    assert result.locator('[data-field="peers"] tbody tr').count() == len(answer["peer"]["measurements"])
    assert page.locator(":focus").get_attribute("id") == "result-h"  # keyboard users land on the result
    assert page.inner_text("#person-status").startswith("Result")  # announced (aria-live)
    save(page.locator("#person"), artefacts, "dashboard-person.png")

    # Korean: every label switches, numbers and charts stay.
    before = drawn_charts(page)
    page.click("#lang")
    page.wait_for_selector('html[lang="ko"]')
    assert page.inner_text("h1") == "국민건강보험 건강검진 대시보드"
    assert page.locator("#prevalence-grid figcaption").first.inner_text().startswith("고혈압")
    labels_ko = page.locator('svg[data-chart="age-distribution"] .axis-label').all_text_contents()
    assert labels_ko[0] == "20–24세" and labels_ko[-1] == "85세 이상"
    assert drawn_charts(page) == before
    assert result.locator('[data-field="cvd_10y"]').inner_text() == cvd
    page.locator("#overview").scroll_into_view_if_needed()
    save(page, artefacts, "dashboard-ko.png")
    page.click("#lang")
    page.wait_for_selector('html[lang="en"]')
    assert page.inner_text("h1") == "NHIS health-screening dashboard"

    assert w.problems == []
    if os.environ.get(chrome.UPDATE_VARIABLE) == "1":
        chrome.DOCS_SCREENSHOT.write_bytes(chrome.stamp_png(shot, chrome.assets_digest()))
        chrome.saved(chrome.DOCS_SCREENSHOT)


def test_dashboard_works_at_phone_width(system, watched, artefacts):
    w = watched(PHONE)
    page = w.page
    page.goto(system.web.url + "/")
    enter_key(page, system.key)
    assert_charts_match(page, system, "all")
    overflow = page.eval_on_selector("html", "e => e.scrollWidth - e.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {PHONE['width']}px"
    save(page, artefacts, "dashboard-phone.png", full_page=True)
    assert w.problems == []


def test_etl_panel_uploads_with_progress_then_lists_the_job_and_its_rejects(system, watched, artefacts):
    upload = sample_file(system.folder / "upload", 3000, name="upload-2022.csv", year=2022, style="2020", seed=43)
    with open(upload, "ab") as handle:  # two lines no reader accepts: they become rejects
        handle.write(b"2022,1,2,3\nthis is not a screening line\n")
    w = watched()
    page = w.page
    page.goto(system.web.url + "/")
    enter_key(page, system.key)
    assert page.locator("#etl").is_visible()
    page.set_input_files("#etl-file", str(upload))
    page.fill("#etl-year", "2022")
    page.click("#etl-form button[type=submit]")
    page.wait_for_selector("#etl-status:has-text('succeeded')", timeout=180_000)
    assert page.eval_on_selector("#upload-progress", "e => e.value") == 100
    assert page.eval_on_selector("#job-progress", "e => e.value") == 100
    job_id = int(re.search(r"\b(\d+)\b", page.inner_text("#etl-status"))[1])
    job = get_job(system.iso.resources, job_id)
    assert job["status"] == "succeeded" and job["year"] == 2022 and job["progress"]["rows_rejected"] == 2
    row = page.locator("#jobs-table tbody tr", has=page.locator("th", has_text=re.compile(rf"^{job_id}$")))
    assert "succeeded" in row.inner_text() and "upload-2022.csv" in row.inner_text()
    row.locator("button").click()
    page.wait_for_selector("#rejects-table tbody tr")
    rejects = api(system, f"/api/v1/etl/jobs/{job_id}/rejects?limit=100")["data"]
    shown_rows = page.locator("#rejects-table tbody tr").all_inner_texts()
    assert len(shown_rows) == len(rejects) >= 2
    assert Counter(r.split("\t")[0] for r in shown_rows) == Counter(str(r["line_no"]) for r in rejects)
    save(page.locator("#etl"), artefacts, "dashboard-etl.png")
    # The workers refresh the statistics after the load; the page reloads them once they include it.
    page.wait_for_selector(f"#etl-stats:has-text('Statistics now include job {job_id}')", timeout=180_000)
    assert "2022" in page.inner_text("#overview-cards")
    assert w.problems == []


def test_public_statistics_need_no_key_but_nothing_else_opens(system, watched):
    # A page load is about 30 requests from one address; the earlier tests' page loads count too.
    env = {**system.iso.env, "NHIS_PUBLIC_STATS": "1", "NHIS_RATE_LIMITS": "anonymous=600/minute"}
    web = GunicornProcess(env, log_path=system.folder / "web-public.log").start()
    try:
        w = watched()
        page = w.page
        page.goto(web.url + "/")
        page.wait_for_selector('body[data-loaded="1"][data-state="ready"]')
        charts = drawn_charts(page)
        assert "measured" in charts and "trend" in charts and all(charts.values())
        assert page.locator("#person [data-lock]").is_visible()  # the simulator still needs a key
        assert not page.locator("#etl").is_visible()
        assert all("x-api-key" not in {k.lower() for k in r.headers} for r in w.requests)
        assert w.problems == []
    finally:
        web.stop()
