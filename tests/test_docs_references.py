"""docs/manual-rules.md cites code (`path.py:function`) and tests (`tests/path.py::test_name`): each must exist.

The table maps every rule of the platform's manuals to what enforces and checks it; a renamed function
or test would leave it pointing at nothing, so this test fails instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "manual-rules.md"

CODE_REF = re.compile(r"`((?:ocr_service|pipelines)/[\w/]+\.py):(\w+)`")
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
ROW = re.compile(r"^\| (\d+) \| (000|003) \|")
STATUSES = ("enforced", "partly — ", "not enforced — ")


def _rows() -> list[list[str]]:
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if ROW.match(line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _defines(path: str, name: str) -> bool:
    source = (ROOT / path).read_text(encoding="utf-8")
    return re.search(rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b", source, re.MULTILINE) is not None


def _refs(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    return sorted(set(pattern.findall(DOC.read_text(encoding="utf-8"))))


def test_the_table_has_numbered_rows_of_both_manuals_each_with_a_status():
    rows = _rows()
    assert [int(row[0]) for row in rows] == list(range(1, len(rows) + 1))
    assert {row[1] for row in rows} == {"000", "003"}
    for row in rows:
        assert len(row) == 6, row
        status = row[5]
        assert status == "enforced" or status.startswith(STATUSES), f"row {row[0]}: status {status!r}"
        if status.startswith("not enforced"):
            continue
        assert CODE_REF.search(row[3]), f"row {row[0]} cites no code"
        if status.startswith("enforced"):
            assert TEST_REF.search(row[4]), f"row {row[0]} is enforced but cites no test"


@pytest.mark.parametrize(("path", "name"), _refs(CODE_REF), ids=lambda value: value)
def test_every_cited_code_function_exists(path, name):
    assert (ROOT / path).is_file(), f"{path} does not exist"
    assert _defines(path, name), f"{path} defines no {name}"


@pytest.mark.parametrize(("path", "name"), _refs(TEST_REF), ids=lambda value: value)
def test_every_cited_test_exists(path, name):
    assert name.startswith("test_")
    assert (ROOT / path).is_file(), f"{path} does not exist"
    assert _defines(path, name), f"{path} defines no {name}"
