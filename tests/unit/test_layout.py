"""The dependency rule: api -> shared, workers -> shared; shared imports neither; api never imports workers."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_roots(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {(str(path.relative_to(ROOT)), a.name.split(".")[0]) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(path.relative_to(ROOT)), node.module.split(".")[0]))
    return found


@pytest.mark.parametrize(("package", "forbidden"), [("shared", {"api", "workers"}), ("api", {"workers"})])
def test_dependency_rule(package, forbidden):
    offenders = sorted((f, m) for f, m in imported_roots(package) if m in forbidden)
    assert offenders == []
