"""Nothing a client-scope key receives lets it rebuild a document number (issue 11, finding 2).

For every number of the sample set: a verified identity, then everything the client key can ask
about it (the identity, the verification with its attempts, the upload answers). No answer may
hold the birth date (in any spelling) and every number shown keeps at most two characters.
"""

# The fixtures come from the shared harness module: imported here, used as parameters.
# ruff: noqa: F401, F811

from __future__ import annotations

import json
from datetime import date

from ocr_service.masking import MASK_CHAR
from ocr_service.verification import service
from ocr_service.verification.models import Verification, VerificationStatus
from tests.ocr_service.api_harness import (
    ALL_NUMBERS,
    CLEAN,
    LABELS,
    harness,
    harness_callback_url,
    harness_settings,
    photo,
)


def birth_of(number: str) -> date:
    return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def birth_spellings(number: str) -> list[str]:
    birth = birth_of(number)
    return [birth.isoformat(), number[6:14], birth.strftime("%Y/%m/%d"), f"{birth.year}年"]


def approve(harness, verification_id: str, number: str, name: str) -> None:
    """What a reviewer's approval writes: the identity with the birth date the number encodes."""
    with harness.database.session_scope() as session:
        verification = session.get(Verification, verification_id)
        verification.status = VerificationStatus.IN_REVIEW
        identity = service.ReviewedIdentity(name=name, document_number=number, sex="男", birth_date=birth_of(number))
        service.approve_by_reviewer(session, verification, identity, actor="reviewer")


def assert_nothing_rebuilds(number: str, bodies: list[bytes]) -> None:
    for body in bodies:
        text = body.decode("utf-8")
        for spelling in birth_spellings(number):
            assert spelling not in text, f"the birth date ({spelling}) reached a client-scope key"
        for value in _strings(json.loads(text)):
            if MASK_CHAR in value:  # a masked number: the first and the last character at most
                assert sum(1 for ch in value if ch != MASK_CHAR) <= 2, value


def _strings(payload) -> list[str]:
    if isinstance(payload, str):
        return [payload]
    if isinstance(payload, dict):
        return [s for v in payload.values() for s in _strings(v)]
    if isinstance(payload, list):
        return [s for v in payload for s in _strings(v)]
    return []


def test_no_sample_number_can_be_rebuilt_from_what_a_client_key_receives(harness):
    numbers = [n for n in ALL_NUMBERS if len(n) == 18]
    assert len(numbers) >= 19
    for i, number in enumerate(numbers):
        subject = f"subject-{i}"
        start = len(harness.recorded)
        created = harness.create(subject, {"name": "测试", "document_number": number}, method="manual")
        approve(harness, created["id"], number, "测试")
        identity = harness.request("GET", f"/v1/subjects/{subject}/identity")
        assert identity.status_code == 200, identity.text
        body = identity.json()
        assert "birth_date" not in body
        assert body["document_number"] == number[0] + MASK_CHAR * 16 + number[-1]
        assert body["document_number_masked"] is True
        harness.get(created["id"])
        assert_nothing_rebuilds(number, [content for _key, _url, content in harness.recorded[start:]])


def test_a_scanned_and_accepted_card_tells_the_client_no_birth_date(harness):
    number = LABELS[CLEAN]["claim"]["id_number"]
    start = len(harness.recorded)
    created = harness.create("user-scan")
    answer = harness.upload(created["id"], photo(CLEAN))
    assert answer.json()["status"] == "verified", answer.text
    harness.get(created["id"])
    identity = harness.request("GET", "/v1/subjects/user-scan/identity").json()
    assert "birth_date" not in identity
    assert identity["document_number"] == "1****************1"
    assert_nothing_rebuilds(number, [content for _key, _url, content in harness.recorded[start:]])


def test_the_birth_date_goes_only_to_a_key_with_identity_full(harness):
    number = LABELS[CLEAN]["claim"]["id_number"]
    created = harness.create("user-full", key="full")
    assert harness.upload(created["id"], photo(CLEAN), key="full").json()["status"] == "verified"
    full = harness.request("GET", "/v1/subjects/user-full/identity", key="full").json()
    assert full["birth_date"] == birth_of(number).isoformat()
    assert full["document_number"] == number


def test_a_passport_number_is_hidden_whole_and_a_long_permit_keeps_two_characters(harness):
    for subject, document_type, number in [
        ("passport-1", "foreign_passport", "E12345678"),
        ("permit-1", "hk_macau_permit", "H12345678901"),
    ]:
        created = harness.create(
            subject, {"name": "JOHN SMITH", "document_number": number}, document_type=document_type, method="manual"
        )
        shown = created["claim"]["document_number"]
        assert len(shown) == len(number)
        assert sum(1 for ch in shown if ch != MASK_CHAR) <= 2
        assert shown.replace(MASK_CHAR, "") in ("", number[0] + number[-1])
