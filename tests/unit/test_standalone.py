"""The repository stands on its own: no file cites material outside it or a path of one machine.

A reader of a fresh clone must be able to follow every reference. So no tracked (or about to be
tracked) file may point at a folder beside the repository, at the team's private notes by name, or
at an absolute path of a development machine. What the code relies on is written in docs/ with its
primary source instead.

The patterns are assembled from pieces so that this file can be scanned like any other.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_MD = "." + "md"
# Names of notes that live outside the repository (never cite them; cite the primary source).
PRIVATE_NOTES = (
    "contract" + _MD,
    "nhis-data" + _MD,
    "nhis-data " + "§",
    "performance" + "-facts",
    "ecosystem" + "-and-reliability",
    "original-system" + _MD,
    "style" + _MD,  # only if the repository has no style guide of that name (checked below)
)
OUTSIDE = ("../" + "shared", "shared/" + "reference")
# Absolute paths of a particular machine (or of a host system) at a path boundary, in prose or
# code; a URL's path ("https://example.org/home/x") or a relative one ("./var/x") is not one.
MACHINE_ROOTS = ("work", "home", "root", "Users", "mnt", "media", "opt", "srv", "var", "usr")
MACHINE_PATH = re.compile(r"(?<![\w.~/:-])/(?:" + "|".join(MACHINE_ROOTS) + r")/[^\s\"'`),;]*")
WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\" + r"(?:Users|home)\\")

# The only absolute paths allowed (with what lies under them), each in the one file that needs it:
ALLOWED_PATHS = {
    # CI starts the Debian packages' servers itself when they are not running.
    (".ci/run", "/" + "usr/sbin/mariadbd"),
    (".ci/run", "/" + "var/lib/redis"),
    (".ci/run", "/" + "var/log/redis"),
    # The data directory inside the official MySQL image's container, not a host path.
    ("docker-compose.yml", "/" + "var/lib/mysql"),
}


def repository_files() -> list[str]:
    """Tracked files plus new files not ignored (what the next commit may contain)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"this check reads the file list from git; run it in a git checkout ({exc})")
    return sorted({name for name in out.decode().split("\0") if name and (ROOT / name).is_file()})


def is_binary(data: bytes) -> bool:
    return b"\0" in data[:8192]


def findings(name: str, text: str, repo_names: set[str]) -> list[str]:
    """Every forbidden reference in one file, as 'file:line: what'."""
    notes = [n for n in PRIVATE_NOTES if not any(Path(f).name == n for f in repo_names)]
    found = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if line_no == 1 and line.startswith("#!"):
            continue  # a script's interpreter line names the host's env, by design
        for needle in (*OUTSIDE, *notes):
            if needle.lower() in line.lower():
                found.append(f"{name}:{line_no}: cites {needle!r}")
        for match in (*MACHINE_PATH.finditer(line), *WINDOWS_PATH.finditer(line)):
            path = match.group(0).rstrip(".:")
            if not any(n == name and (path == p or path.startswith(p + "/")) for n, p in ALLOWED_PATHS):
                found.append(f"{name}:{line_no}: machine path {path!r}")
    return found


def test_no_file_cites_anything_outside_the_repository():
    names = repository_files()
    assert "README.md" in names and "shared/cli/__init__.py" in names  # the list is the repository's
    repo_names = set(names)
    problems, used = [], set()
    for name in names:
        data = (ROOT / name).read_bytes()
        if is_binary(data):
            continue
        text = data.decode("utf-8", errors="replace")
        problems += findings(name, text, repo_names)
        used |= {(name, path) for n, path in ALLOWED_PATHS if n == name and path in text}
    assert problems == [], "rephrase with the fact and its primary source:\n" + "\n".join(problems)
    assert used == ALLOWED_PATHS, f"allowed paths no longer used (remove them): {sorted(ALLOWED_PATHS - used)}"


@pytest.mark.parametrize("line", [
    "see " + "../" + "shared/" + "reference/notes",
    "details in " + "contract" + _MD + " (the API)",
    "as in " + "nhis-data " + "§3.2",
    "numbers from " + "performance" + "-facts",
    "cf. " + "ecosystem" + "-and-reliability",
    "the " + "original-system" + _MD + " said so",
    "open /" + "work/main/api/app.py",
    "log at /" + "home/dev/nhis.log",
    "(/" + "root/.cache/x)",
    "`/" + "Users/kim/data.csv`",
    "mounted at /" + "mnt/data/nhis",
    "C:\\" + "Users\\kim\\nhis.csv",
    "/" + "usr/sbin/mariadbd",  # allowed in .ci/run only
])
def test_the_check_finds_each_kind_of_reference(line):
    assert findings("docs/X.md", line, set()) != []


@pytest.mark.parametrize("line", [
    "https://example.org/home/index.html",  # a URL's path, not a machine's
    "a path under NHIS_DATA_DIR, e.g. data/nhis-2024.csv",
    "../../etc/passwd is refused",  # a deliberate bad input in tests
    "docs/DATA.md §3.2",  # the repository's own docs
])
def test_the_check_leaves_ordinary_text_alone(line):
    assert findings("docs/X.md", line, set()) == []


def test_a_style_guide_in_the_repository_may_be_named():
    line = "see " + "style" + _MD
    assert findings("README.md", line, {"docs/" + "style" + _MD}) == []
    assert findings("README.md", line, set()) != []
