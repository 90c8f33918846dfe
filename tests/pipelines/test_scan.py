import math
import random
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from pipelines import PIPELINE_VERSION
from pipelines.card import CardSide
from pipelines.idnumber import check_character
from pipelines.ocr import load_manifest, manifest_digest
from pipelines.reasons import Decision, Reason
from pipelines.scan import Claim, ScanSettings, scan
from samples.identity import random_identity
from samples.photo import PhotoSpec, photograph
from samples.render import render_front
from tests.pipelines.photos import card_photo


def corner_error(found, truth) -> float:
    truth = np.asarray(truth)
    return max(math.dist(a, b) for a, b in zip(found, truth.tolist(), strict=True)) / math.dist(truth[0], truth[2])


@pytest.mark.parametrize("rotation", [0, 90, 180, 270, 33])
def test_a_clean_front_at_any_rotation_is_accepted_with_its_true_claim(engine, rotation):
    photo, corners, identity = card_photo(100 + rotation, rotation=rotation)
    result = scan(photo, engine, Claim(identity.name, identity.id_number))
    assert result.decision == Decision.ACCEPT, result.reasons
    assert result.side == CardSide.FRONT
    assert result.fields.value("id_number") == identity.id_number
    assert result.fields.value("name") == identity.name
    # corners start at the card's own top-left, whatever the photo's rotation
    assert corner_error(result.corners, corners) < 0.02


def test_reading_without_a_claim_still_decides_on_the_card_alone(engine):
    photo, _, identity = card_photo(201)
    result = scan(photo, engine, None)
    assert result.decision == Decision.ACCEPT
    assert result.match is None
    assert result.fields.birth_date == identity.birth


def test_a_one_digit_different_claimed_number_is_rejected(engine):
    photo, _, identity = card_photo(202)
    number = identity.id_number
    wrong = number[:8] + str((int(number[8]) + 1) % 10) + number[9:]
    result = scan(photo, engine, Claim(identity.name, wrong))
    assert result.decision == Decision.REJECT
    assert Reason.ID_NUMBER_MISMATCH in result.reasons


def test_a_claimed_name_differing_in_one_character_is_never_accepted(engine):
    photo, _, identity = card_photo(203)
    other = "王" if identity.name[0] != "王" else "李"
    result = scan(photo, engine, Claim(other + identity.name[1:], identity.id_number))
    assert result.decision in (Decision.REJECT, Decision.REVIEW)
    assert {Reason.NAME_MISMATCH, Reason.NAME_NEAR_MATCH} & set(result.reasons)


def test_a_completely_different_name_is_rejected(engine):
    photo, _, identity = card_photo(204)
    result = scan(photo, engine, Claim("欧阳某某", identity.id_number))
    assert result.decision == Decision.REJECT
    assert Reason.NAME_MISMATCH in result.reasons


def test_the_back_side_asks_for_the_portrait_side(engine):
    photo, _, identity = card_photo(205, side="back", rotation=180)
    result = scan(photo, engine, Claim(identity.name, identity.id_number))
    assert result.decision == Decision.RETAKE
    assert result.reasons == (Reason.WRONG_SIDE,)
    assert result.side == CardSide.BACK


def test_the_back_side_is_read_when_it_was_asked_for(engine):
    photo, _, identity = card_photo(206, side="back")
    result = scan(photo, engine, None, ScanSettings(expected_side=CardSide.BACK))
    assert result.side == CardSide.BACK
    assert result.fields.value("authority") == identity.authority
    assert result.fields.valid_from == identity.valid_from


def test_an_18_digit_number_on_paper_without_a_card_is_never_read_as_an_id(engine):
    photo, _, _ = card_photo(207, side="none", background="paper")
    result = scan(photo, engine, None)
    assert result.decision == Decision.RETAKE
    assert Reason.NO_CARD in result.reasons
    read_number = result.fields.value("id_number") if result.fields else ""
    assert len(read_number) < 15


def render_photo(identity, seed=300):
    rng = random.Random(seed)
    card = render_front(identity, rng)
    spec = PhotoSpec(background="desk_dark", tilt_deg=3.0, card_fraction=0.7)
    photo, _ = photograph(card, rng, spec)
    return photo


def test_a_card_printing_an_invalid_check_character_is_rejected(engine):
    identity = random_identity(random.Random(301))
    right = identity.id_number[-1]
    wrong = "0" if right != "0" else "1"
    bad = replace(identity, id_number=identity.id_number[:17] + wrong)
    result = scan(render_photo(bad), engine, None)
    assert result.decision in (Decision.REJECT, Decision.REVIEW)
    assert {Reason.INVALID_ID_NUMBER, Reason.INVALID_ID_NUMBER_LOW_CONFIDENCE} & set(result.reasons)


def test_a_printed_birth_date_disagreeing_with_the_number_goes_to_review(engine):
    identity = random_identity(random.Random(302))
    shifted = replace(identity, birth=date(identity.birth.year - 3, identity.birth.month, 1))
    result = scan(render_photo(shifted), engine, Claim(identity.name, identity.id_number))
    assert result.decision == Decision.REVIEW
    assert Reason.BIRTH_DATE_INCONSISTENT in result.reasons


def test_an_unknown_division_code_goes_to_review_not_reject(engine):
    identity = random_identity(random.Random(303))
    first17 = "990101" + identity.id_number[6:17]
    odd = replace(identity, id_number=first17 + check_character(first17))
    result = scan(render_photo(odd), engine, Claim(odd.name, odd.id_number))
    assert result.decision == Decision.REVIEW
    assert Reason.UNKNOWN_DIVISION_CODE in result.reasons


def test_every_result_records_the_pipeline_version_and_model_digest(engine):
    photo, _, _ = card_photo(304)
    result = scan(photo, engine, None)
    assert result.pipeline_version == PIPELINE_VERSION
    assert result.models_digest == manifest_digest(load_manifest(verify=False))
    # finding includes turning the card upright: every placement is verified by reading it
    assert {"detect", "quality", "read", "total"} <= set(result.timings_ms)
