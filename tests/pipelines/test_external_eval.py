"""The pipeline on published specimens it was not built from (../shared/external-eval).

These images are read in place, never copied into the repository; without the folder the
module is skipped (CI runs with ../shared beside the clone, so there it runs).
"""

import json

import pytest

from pipelines.decode import decode_file
from pipelines.reasons import Decision, Reason
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
    numbers = sum(
        results[lb["file"]].fields is not None and results[lb["file"]].fields.value("id_number") == lb["id_number"]
        for lb in fronts
    )
    # benchmarks/external_eval.py: 17/25 names, 15/25 numbers before the read-verified finder
    # (issue 9), 20/25 and 18/25 after it; a drop back to the old figures is a regression
    assert names >= 19
    assert numbers >= 17


def test_photocopies_are_held_for_a_person_and_say_so(results):
    copies = [lb["file"] for lb in LABELS if "photocopy" in str(lb.get("capture", ""))]
    assert copies
    assert [f for f in copies if results[f].decision == Decision.ACCEPT] == []
    read = [f for f in copies if results[f].decision == Decision.REVIEW]
    assert read and all(Reason.PHOTOCOPY_SUSPECTED in results[f].reasons for f in read)


def test_a_joke_sex_value_is_flagged_even_when_the_card_is_rejected(results):
    joke = [lb["file"] for lb in LABELS if lb["kind"] == "front" and lb.get("sex") not in (None, "男", "女")]
    assert joke
    read = [f for f in joke if results[f].fields is not None and results[f].fields.value("sex") not in ("男", "女", "")]
    assert read
    assert all(Reason.UNUSUAL_FIELD_VALUE in results[f].reasons for f in read)
