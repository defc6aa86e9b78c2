"""Sample NHIS files for tests, written by the project's own generator."""

from __future__ import annotations

from pathlib import Path

from shared.data.generate import write_file


def sample_file(folder: Path, rows: int, name: str = "sample.csv", year: int = 2024, seed: int = 7,
                style: str = "2024", encoding: str = "cp949") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    write_file(path, rows=rows, year=year, seed=seed, style=style, encoding=encoding)
    return path


def data_lines(path: Path) -> int:
    """Non-blank lines after the header: what loaded + rejected must add up to."""
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip(b"\r\n")) - 1
