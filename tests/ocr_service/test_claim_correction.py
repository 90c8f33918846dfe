"""A claim that contradicts a clearly read card asks for the claim, not a new photo (issue 13).

The answer names the field to correct (``next_action: correct_claim``, ``claim_fields``), the
scan does not count as a failed attempt, and correcting the claim re-scans the stored photo.
"""

from __future__ import annotations

from ocr_service.verification.models import Attempt, StoredImage
from tests.ocr_service.api_harness import CLEAN, LABELS
from tests.ocr_service.api_harness import harness as harness
from tests.ocr_service.api_harness import harness_callback_url as harness_callback_url
from tests.ocr_service.api_harness import harness_settings as harness_settings

CLEAN_CLAIM = LABELS[CLEAN]["claim"]
OTHER_VALID_NUMBER = LABELS["0002_front_clean.jpg"]["claim"]["id_number"]


def test_a_mistyped_number_asks_for_the_claim_naming_the_field_and_costs_no_attempt(harness):
    created = harness.create("claim-1", {"name": CLEAN_CLAIM["name"], "document_number": OTHER_VALID_NUMBER})
    answer = harness.upload(created["id"], CLEAN).json()
    assert answer["decision"] == "reject"
    assert "id_number_mismatch" in [r["code"] for r in answer["reasons"]]
    assert answer["next_action"] == "correct_claim"
    assert answer["claim_fields"] == ["document_number"]
    assert answer["attempts_left"] == 5
    view = harness.get(created["id"])
    assert view["next_action"] == "correct_claim"
    assert view["claim_fields"] == ["document_number"]
    assert view["failed_attempts"] == 0
    assert [a["counts_as_failure"] for a in view["attempts"]] == [False]


def test_a_mistyped_name_names_the_name(harness):
    created = harness.create("claim-2", {"name": "王小明", "document_number": CLEAN_CLAIM["id_number"]})
    answer = harness.upload(created["id"], CLEAN).json()
    assert answer["next_action"] == "correct_claim"
    assert answer["claim_fields"] == ["name"]
    assert answer["attempts_left"] == 5


def test_someone_elses_card_is_a_failed_attempt_not_a_typo(harness):
    # name and number both differ from the read: another person's card, not a mistyped claim, so it
    # costs an attempt and asks for a photo (free re-scans of other people's cards would be an oracle)
    other = LABELS["0002_front_clean.jpg"]["claim"]
    created = harness.create("claim-4", {"name": other["name"], "document_number": other["id_number"]})
    answer = harness.upload(created["id"], CLEAN).json()
    assert answer["decision"] == "reject"
    assert {"id_number_mismatch", "name_mismatch"} <= {r["code"] for r in answer["reasons"]}
    assert answer["next_action"] == "upload_front"
    assert answer["claim_fields"] == []
    assert answer["attempts_left"] == 4
    assert harness.get(created["id"])["failed_attempts"] == 1


def test_the_same_contradiction_again_counts_so_an_insisting_applicant_still_reaches_a_person(harness):
    # e.g. the card's rare character misread: the applicant's claim is right and they photograph again
    created = harness.create("claim-5", {"name": "王小明", "document_number": CLEAN_CLAIM["id_number"]})
    first = harness.upload(created["id"], CLEAN).json()
    assert first["attempts_left"] == 5
    second = harness.upload(created["id"], CLEAN).json()
    assert second["next_action"] == "correct_claim"
    assert second["attempts_left"] == 4
    view = harness.get(created["id"])
    assert [a["counts_as_failure"] for a in view["attempts"]] == [False, True]


def test_correcting_the_claim_rescans_the_stored_photo_without_a_new_upload(harness):
    created = harness.create("claim-3", {"name": CLEAN_CLAIM["name"], "document_number": OTHER_VALID_NUMBER})
    harness.upload(created["id"], CLEAN)
    corrected = harness.request(
        "PUT",
        f"/v1/verifications/{created['id']}/claim",
        json={"name": CLEAN_CLAIM["name"], "document_number": CLEAN_CLAIM["id_number"]},
    )
    assert corrected.status_code == 200, corrected.text
    answer = corrected.json()
    assert answer["status"] == "verified"
    assert answer["decision"] == "accept"
    assert answer["next_action"] == "none"
    assert harness.count(StoredImage) == 1
    assert harness.count(Attempt, Attempt.verification_id == created["id"]) == 2
    view = harness.get(created["id"])
    assert view["failed_attempts"] == 0
    assert view["claim"]["document_number"] == "1****************1"


def test_the_claim_can_be_corrected_only_when_it_is_asked_for(harness):
    created = harness.create("claim-4")
    response = harness.request(
        "PUT",
        f"/v1/verifications/{created['id']}/claim",
        json={"name": CLEAN_CLAIM["name"], "document_number": CLEAN_CLAIM["id_number"]},
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "illegal_transition"
    assert response.json()["error"]["message_zh"]


def test_a_corrected_number_that_fails_its_check_is_refused(harness):
    created = harness.create("claim-5", {"name": CLEAN_CLAIM["name"], "document_number": OTHER_VALID_NUMBER})
    harness.upload(created["id"], CLEAN)
    response = harness.request(
        "PUT",
        f"/v1/verifications/{created['id']}/claim",
        json={"name": CLEAN_CLAIM["name"], "document_number": "110105194912310021"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert harness.get(created["id"])["next_action"] == "correct_claim"
