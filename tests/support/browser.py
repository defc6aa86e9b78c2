"""Headless Chromium for the browser test: Debian's `chromium` package driven by Playwright.

Playwright's own browser download (`playwright install`) is never used: the test launches the
system's Chromium by path (`NHIS_CHROMIUM`, else `chromium` on PATH). A missing browser skips
locally and fails under REQUIRE_SERVICES=1 (as .ci/run sets; it installs the package first).

Also here: where screenshots go (`TEST_ARTEFACTS`, else a folder under pytest's temporary
directory, printed at the end of the run), and the stamp that ties docs/dashboard.png to the
dashboard files it shows.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import zlib
from pathlib import Path

from tests.support import services

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "api" / "static"
DOCS_SCREENSHOT = ROOT / "docs" / "dashboard.png"
STAMP_KEY = b"nhis-dashboard-assets"
UPDATE_VARIABLE = "NHIS_UPDATE_SCREENSHOT"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
_saved: list[str] = []


def chromium_path() -> str:
    """The system Chromium; skip (locally) or fail (REQUIRE_SERVICES=1) when there is none."""
    path = os.environ.get("NHIS_CHROMIUM") or shutil.which("chromium")
    if not path or not os.access(path, os.X_OK):
        services.require("Chromium", FileNotFoundError(
            "no `chromium` on PATH (Debian: apt-get install chromium; or set NHIS_CHROMIUM)"))
    return path


def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError as exc:  # the dev extra pins it
        services.require("Playwright", exc)
    return start()


def artefacts_dir(base: Path) -> Path:
    folder = Path(os.environ["TEST_ARTEFACTS"]) / "dashboard" if os.environ.get("TEST_ARTEFACTS") else base
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def saved(path: Path) -> Path:
    """Remember a written artefact; tests/conftest.py prints the list at the end of the run."""
    _saved.append(str(path))
    return path


def saved_artefacts() -> list[str]:
    return list(_saved)


def assets_digest() -> str:
    """SHA-256 (16 hex digits) over the dashboard's files, names included: what a screenshot shows."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def stamp_png(png: bytes, digest: str) -> bytes:
    """The PNG with a tEXt chunk naming the dashboard files' digest, right after IHDR."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    ihdr_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    return png[:ihdr_end] + _chunk(b"tEXt", STAMP_KEY + b"\0" + digest.encode()) + png[ihdr_end:]


def png_facts(png: bytes) -> dict:
    """Width, height and text chunks of a PNG (enough to check the docs screenshot without Pillow)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    facts: dict = {"text": {}}
    offset = 8
    while offset < len(png):
        length = struct.unpack(">I", png[offset:offset + 4])[0]
        kind = png[offset + 4:offset + 8]
        data = png[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            facts["width"], facts["height"] = struct.unpack(">II", data[:8])
        elif kind == b"tEXt":
            key, _, value = data.partition(b"\0")
            facts["text"][key.decode("latin-1")] = value.decode("latin-1")
        offset += 12 + length
    return facts
