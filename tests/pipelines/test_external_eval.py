"""The pipeline on published specimens it was not built from (../shared/external-eval).

These images are read in place, never copied into the repository; without the folder the
module is skipped (CI runs with ../shared beside the clone, so there it runs).
"""

import json

import pytest

from pipelines.decode import decode_file
from pipelines.reasons import Decision
from pipelines.scan import scan
from tests.conftest import EXTERNAL_EVAL

pytestmark = pytest.mark.external

if not (EXTERNAL_EVAL / "labels.jsonl").exists():
    pytest.skip("../shared/external-eval is not present", allow_module_level=True)

LABELS = [json.loads(line) for line in (EXTERNAL_EVAL / "labels.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def results(engine):
    return {
        label["file"]: scan(decode_file(EXTERNAL_EVAL / "images" / label["file"]).image, engine, None)
        for label in LABELS
    }


def test_no_specimen_with_a_bad_check_character_is_accepted(results):
    bad = [lb["file"] for lb in LABELS if "BAD" in str(lb.get("id_checksum", ""))]
    assert bad
    assert [f for f in bad if results[f].decision == Decision.ACCEPT] == []


def test_passports_and_other_documents_are_never_taken_for_a_resident_id(results):
    others = [lb["file"] for lb in LABELS if lb["kind"] in ("passport", "other", "back")]
    assert [f for f in others if results[f].decision == Decision.ACCEPT] == []


def test_most_specimen_fronts_are_read(results):
    fronts = [lb for lb in LABELS if lb["kind"] == "front"]
    names = sum(
        results[lb["file"]].fields is not None and results[lb["file"]].fields.value("name") == lb["name"]
        for lb in fronts
    )
    # measured 17/25 names with benchmarks/external_eval.py; a drop below half is a regression
    assert names >= len(fronts) // 2
