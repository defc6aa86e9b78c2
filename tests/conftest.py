"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import pytest

from shared.config import load_settings
from shared.resources import Resources


@pytest.fixture
def sqlite_settings(tmp_path, monkeypatch):
    """Embedded-mode settings on a throwaway SQLite file (no Redis)."""
    for var in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    return load_settings(data_dir=tmp_path, database_url=None, redis_url=None, log_format="console")


@pytest.fixture
def sqlite_resources(sqlite_settings):
    from shared.cli.db import upgrade

    resources = Resources(sqlite_settings)
    upgrade(resources.engine)
    yield resources
    resources.dispose()


def pytest_terminal_summary(terminalreporter):
    """Say where the browser test's screenshots went (tests/support/browser.py)."""
    from tests.support.browser import saved_artefacts

    paths = saved_artefacts()
    if paths:
        terminalreporter.write_sep("-", "artefacts")
        for path in paths:
            terminalreporter.write_line(path)
