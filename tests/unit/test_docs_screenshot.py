"""docs/dashboard.png is the dashboard as it is now, at a size a README can show, and the README's
first screen shows it (below its two commands, which stay exactly as they are).

The browser test writes the screenshot (NHIS_UPDATE_SCREENSHOT=1) with a stamp: the digest of the
dashboard files it was taken from. A change to any of them without a new screenshot fails here."""

from __future__ import annotations

from tests.support.browser import DOCS_SCREENSHOT, ROOT, STAMP_KEY, UPDATE_VARIABLE, assets_digest, png_facts

README_COMMANDS = [
    "make demo   # fresh machine: creates .venv, migrates, generates sample data, starts web/worker/beat/Flower, "
    "ingests through Celery, prints URLs and a demo key",
    "make test   # fresh machine: creates .venv and runs every test (unit + integration against MariaDB, Redis "
    "and real Celery workers)",
]
REGENERATE = (f"regenerate it: {UPDATE_VARIABLE}=1 pytest tests/integration/test_dashboard_browser.py "
              "(needs MariaDB, Redis and chromium)")


def test_the_screenshot_is_a_png_of_a_sensible_size():
    data = DOCS_SCREENSHOT.read_bytes()
    facts = png_facts(data)
    assert facts["width"] == 1280 and 800 <= facts["height"] <= 1800, facts
    assert len(data) < 600 * 1024


def test_the_screenshot_shows_the_current_dashboard_files():
    stamp = png_facts(DOCS_SCREENSHOT.read_bytes())["text"].get(STAMP_KEY.decode())
    assert stamp is not None, "docs/dashboard.png carries no stamp; " + REGENERATE
    assert stamp == assets_digest(), "api/static changed since docs/dashboard.png was taken; " + REGENERATE


def test_the_readme_keeps_its_two_commands_and_shows_the_screenshot_on_its_first_screen():
    lines = (ROOT / "README.md").read_text("utf-8").splitlines()
    assert lines[0] == "# NHIS screening backend"
    assert lines[2:6] == ["```sh", *README_COMMANDS, "```"]
    first_screen = "\n".join(lines[:40])
    assert "](docs/dashboard.png)" in first_screen
