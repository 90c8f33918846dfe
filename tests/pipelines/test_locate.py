"""The card finder on the failure classes of issue 9, built from generated cards.

Each test makes one kind of photo the first finder answered ``no_card`` / ``strong_tilt`` /
``card_too_small`` for, then checks the scan finds the card, reads it exactly and decides
like a person would. Photos are real renders from the sample generator, placed into the
hard condition with OpenCV (rotation onto coloured cloth, a thumb, decoy papers, a flat
crop, a greyscale copy).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines.card import CANONICAL_SIZE, CardQuad, rectify
from pipelines.locate import digit_line, locate_card
from pipelines.reasons import Decision, Reason
from pipelines.scan import Claim, scan
from tests.pipelines.photos import card_photo


def _claim(identity) -> Claim:
    return Claim(identity.name, identity.id_number)


def _on_canvas(photo: np.ndarray, angle: float, colour: tuple[int, int, int], size: tuple[int, int]) -> np.ndarray:
    """The photo's card region rotated by ``angle`` and laid on a plain coloured frame."""
    w, h = size
    canvas = np.full((h, w, 3), colour, np.uint8)
    noise = np.random.default_rng(7).normal(0, 6, canvas.shape)
    canvas = np.clip(canvas + noise, 0, 255).astype(np.uint8)
    ph, pw = photo.shape[:2]
    scale = 0.6 * min(w, h) / max(ph, pw)  # the card's diagonal stays inside the frame at any angle
    matrix = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, scale)
    matrix[:, 2] += (w / 2 - pw / 2, h / 2 - ph / 2)
    mask = cv2.warpAffine(np.full((ph, pw), 255, np.uint8), matrix, (w, h))
    moved = cv2.warpAffine(photo, matrix, (w, h))
    canvas[mask > 0] = moved[mask > 0]
    return canvas


def _flat_card(seed: int) -> tuple[np.ndarray, object]:
    photo, corners, identity = card_photo(seed, tilt=0.0, card_fraction=0.8)
    return rectify(photo, CardQuad(tuple(map(tuple, corners)))), identity


@pytest.mark.parametrize(
    ("angle", "colour", "size"),
    [
        (56.0, (180, 40, 200), (1280, 960)),  # magenta cloth, odd angle
        (269.0, (40, 40, 200), (1080, 1440)),  # red, portrait frame, card on its side
        (180.0, (30, 150, 40), (1280, 960)),  # green, upside down
    ],
)
def test_a_card_at_any_angle_on_strongly_coloured_cloth_is_found_and_read(engine, angle, colour, size):
    card, identity = _flat_card(611)
    frame = _on_canvas(card, angle, colour, size)
    result = scan(frame, engine, _claim(identity))
    assert result.fields is not None
    assert result.fields.value("id_number") == identity.id_number
    assert result.fields.value("name") == identity.name
    assert result.decision == Decision.ACCEPT, result.reasons


def test_a_flat_crop_where_the_image_is_the_card_is_a_card(engine):
    card, identity = _flat_card(612)
    small = cv2.resize(card, (CANONICAL_SIZE[0] * 3 // 4, CANONICAL_SIZE[1] * 3 // 4), interpolation=cv2.INTER_AREA)
    result = scan(small, engine, _claim(identity))
    assert Reason.CARD_TOO_SMALL not in result.reasons
    assert result.fields is not None and result.fields.value("id_number") == identity.id_number
    assert result.decision == Decision.ACCEPT, result.reasons


def test_a_thumb_over_the_card_edge_does_not_hide_the_card(engine):
    photo, corners, identity = card_photo(613, tilt=3.0, card_fraction=0.6)
    thumbed = photo.copy()
    left = np.array(corners[0]) * 0.5 + np.array(corners[3]) * 0.5
    # a skin-coloured thumb reaching over the card's left edge from outside the frame
    cv2.ellipse(thumbed, (int(left[0]) + 20, int(left[1])), (90, 55), 0, 0, 360, (120, 150, 205), -1)
    cv2.rectangle(thumbed, (0, int(left[1]) - 55), (int(left[0]) + 20, int(left[1]) + 55), (120, 150, 205), -1)
    result = scan(thumbed, engine, _claim(identity))
    assert result.fields is not None and result.fields.value("id_number") == identity.id_number
    assert result.decision != Decision.RETAKE, result.reasons


def test_long_digit_strings_on_papers_around_the_card_are_not_taken_for_it(engine):
    photo, _, identity = card_photo(614, rotation=180.0, tilt=2.0, card_fraction=0.5)
    decoyed = photo.copy()
    ys = [40, 90, photo.shape[0] - 60]
    for i, y in enumerate(ys):
        cv2.putText(decoyed, f"No. 4201{i}6198801011234{i}", (30, y), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (40, 40, 40), 3)
    result = scan(decoyed, engine, _claim(identity))
    assert result.fields is not None and result.fields.value("id_number") == identity.id_number
    assert result.decision == Decision.ACCEPT, result.reasons


def test_a_greyscale_copy_of_a_valid_card_is_never_accepted(engine):
    photo, _, identity = card_photo(615)
    grey = cv2.cvtColor(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    result = scan(grey, engine, _claim(identity))
    assert result.decision == Decision.REVIEW
    assert Reason.PHOTOCOPY_SUSPECTED in result.reasons


def test_a_passport_page_is_told_it_is_not_a_resident_id_card(engine):
    page = np.full((900, 1280, 3), 235, np.uint8)
    cv2.putText(page, "PASSPORT", (80, 140), cv2.FONT_HERSHEY_SIMPLEX, 2.2, (60, 40, 30), 5)
    mrz = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10")
    for y, line in zip((760, 830), mrz, strict=True):
        cv2.putText(page, line, (40, y), cv2.FONT_HERSHEY_PLAIN, 2.6, (0, 0, 0), 3)
    result = scan(page, engine, None)
    assert result.decision == Decision.RETAKE
    assert result.reasons == (Reason.NOT_RESIDENT_ID,)


def test_every_placement_the_finder_returns_as_verified_reads_a_digit_line(engine):
    photo, _, _ = card_photo(616, rotation=90.0, size=(1080, 1440))
    located = locate_card(photo, engine)
    assert located is not None and located.verified
    assert located.card.shape[:2] == (CANONICAL_SIZE[1], CANONICAL_SIZE[0])


def test_a_digit_line_is_told_from_prose_and_from_the_validity_line():
    assert digit_line("公民身份号码 42010619961223698X") == "42010619961223698X"
    assert digit_line("2010.01.01-2030.01.01") == "2010010120300101"
    assert digit_line("限2022.04.05-2042.04.05") == "2022040520420405"
    assert digit_line("订单号: 593536956871288723") == ""
    assert digit_line("") == ""


def test_a_card_shown_on_a_screen_inside_its_bezel_is_held_for_a_person(engine):
    card, identity = _flat_card(617)
    # a photo of the card shown on a phone: the card nearly fills a coloured screen, the
    # screen sits in its dark bezel, papers around the device
    screen = np.full((600, 880, 3), (120, 40, 150), np.uint8)
    screen[48:553, 40:840] = cv2.resize(card, (800, 505), interpolation=cv2.INTER_AREA)
    frame = np.full((960, 1280, 3), 215, np.uint8)
    cv2.rectangle(frame, (160, 130), (1120, 830), (35, 35, 35), -1)
    frame[180:780, 200:1080] = screen
    result = scan(frame, engine, _claim(identity))
    assert result.fields is not None and result.fields.value("id_number") == identity.id_number
    assert result.decision == Decision.REVIEW
    assert Reason.RECAPTURE_SUSPECTED in result.reasons
