"""docs/errors.md lists exactly the error types the code has, with their status codes."""

from __future__ import annotations

from pathlib import Path

from neutrino import errors

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_errors_table_matches_code() -> None:
    rows = [
        line.split("|")[1:4]
        for line in DOC.read_text().splitlines()
        if line.startswith("| ") and "---" not in line
    ]
    documented = {name.strip(): int(status) for name, status, _ in rows[1:]}
    in_code = {cls.__name__: cls.status for cls in errors.all_leaves()}
    assert documented == in_code
