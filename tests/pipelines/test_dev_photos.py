"""The scan on 80 photos from an independent generator (../shared/dev-photos).

Read in place, never copied into the repository; without the folder the module is skipped
(CI runs with ../shared beside the clone, so there it runs). The first finder answered
``retake`` to 22 of its 48 clean fronts and read 26 numbers (issue 9); these tests hold the
read-verified finder to what it measures (benchmarks/scan_accuracy.py --only-dev).
"""

import json

import pytest

from pipelines.decode import decode_file
from pipelines.reasons import Decision
from pipelines.scan import Claim, scan
from tests.conftest import DEV_PHOTOS

pytestmark = pytest.mark.external

if not (DEV_PHOTOS / "labels.jsonl").exists():
    pytest.skip("../shared/dev-photos is not present", allow_module_level=True)

LABELS = [json.loads(line) for line in (DEV_PHOTOS / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
CLEAN_FRONTS = [lb for lb in LABELS if lb["category"] == "clean" and lb["kind"] == "front"]


def _claim(label) -> Claim | None:
    expected = label.get("expected") or {}
    return Claim(expected.get("name"), expected.get("id_number")) if expected else None


@pytest.fixture(scope="module")
def results(engine):
    return {lb["file"]: scan(decode_file(DEV_PHOTOS / lb["file"]).image, engine, _claim(lb)) for lb in LABELS}


def test_clean_fronts_are_found_not_sent_back_for_a_retake(results):
    retaken = [lb["file"] for lb in CLEAN_FRONTS if results[lb["file"]].decision == Decision.RETAKE]
    # measured 0/48 (was 22/48); one miss is allowed for a noisy read, no more
    assert len(retaken) <= 1, retaken


def test_clean_fronts_are_read_exactly(results):
    def read(lb, field):
        fields = results[lb["file"]].fields
        return fields is not None and fields.value(field) == lb["expected"][field]

    numbers = sum(read(lb, "id_number") for lb in CLEAN_FRONTS)
    names = sum(read(lb, "name") for lb in CLEAN_FRONTS)
    # measured 48/48 numbers and 46/48 names (were 26 and 27)
    assert numbers >= 47
    assert names >= 45


def test_nothing_is_accepted_that_a_person_must_see(results):
    wrong = []
    for lb in LABELS:
        result = results[lb["file"]]
        if result.decision != Decision.ACCEPT:
            continue
        expected = lb.get("expected") or {}
        misread = result.fields is None or any(
            result.fields.value(field) != expected.get(field) for field in ("name", "id_number")
        )
        # a correct read of a dim photo labelled "retake" is no false accept; a screen, a back,
        # a partial card or a wrong read is
        if misread or lb["case"] in ("screen_recapture", "back_side", "no_card", "partial", "tiny"):
            wrong.append(lb["file"])
    assert wrong == []


def test_a_claim_one_character_off_is_never_accepted(results, engine):
    probes = [lb for lb in CLEAN_FRONTS if results[lb["file"]].decision == Decision.ACCEPT][:6]
    assert probes
    for lb in probes:
        name, number = lb["expected"]["name"], lb["expected"]["id_number"]
        image = decode_file(DEV_PHOTOS / lb["file"]).image
        other_digit = str((int(number[10]) + 1) % 10)
        for claim in (
            Claim(("王" if name[0] != "王" else "李") + name[1:], number),
            Claim(name, number[:10] + other_digit + number[11:]),
        ):
            assert scan(image, engine, claim).decision != Decision.ACCEPT, (lb["file"], claim)
