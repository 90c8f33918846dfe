import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.card import CANONICAL_SIZE, CardQuad, find_card, layout_agreement, load_layout, rectify
from samples.photo import Degradation
from tests.pipelines.photos import card_photo


def max_corner_error(found: CardQuad, truth: np.ndarray) -> float:
    return max(math.dist(a, b) for a, b in zip(found.corners, truth.tolist(), strict=True)) / math.dist(
        truth[0], truth[2]
    )


@pytest.mark.parametrize(
    ("angle", "background"),
    [(0, "wood"), (12, "desk_dark"), (335, "fabric"), (90, "keyboard"), (135, "gradient"), (200, "desk_light")],
)
def test_card_corners_are_found_within_two_percent_of_the_diagonal(angle, background):
    photo, truth, _ = card_photo(40 + angle, rotation=angle, background=background)
    detection = find_card(photo)
    assert detection.found and not detection.clipped
    # geometry alone cannot tell 0 from 180 degrees; accept either reading of the quad
    error = min(max_corner_error(detection.quad, truth), max_corner_error(detection.quad.rotated_180(), truth))
    assert error < 0.02


def test_rectified_card_is_canonical_size_and_upright():
    photo, truth, _ = card_photo(41, rotation=90)
    quad = CardQuad(tuple(map(tuple, truth.tolist())))
    card = rectify(photo, quad)
    assert card.shape[:2] == (CANONICAL_SIZE[1], CANONICAL_SIZE[0])
    # upright: the portrait (dark hair and shoulders) is on the right, the left is pale print
    assert card[60:380, 560:800].mean() < card[60:380, 40:300].mean() - 20
    assert layout_agreement(cv2.cvtColor(card, cv2.COLOR_BGR2GRAY)) > 0.3


def test_an_empty_desk_has_no_card():
    rng = np.random.default_rng(1)
    desk = np.clip(rng.normal(90, 20, (960, 1280, 3)), 0, 255).astype(np.uint8)
    assert not find_card(desk).found


def test_a_card_running_off_the_frame_is_flagged_as_clipped():
    photo, _, _ = card_photo(42, degradations=(Degradation("partial", 0.35),))
    detection = find_card(photo)
    assert detection.found and detection.clipped


def test_a_sheet_of_printed_paper_is_not_taken_for_a_card():
    photo, _, _ = card_photo(43, side="none", background="paper")
    assert not find_card(photo).found


def test_a_flat_crop_of_a_card_is_taken_as_the_whole_frame():
    crop = np.full((364, 580, 3), 230, np.uint8)
    cv2.putText(crop, "ID", (40, 100), cv2.FONT_HERSHEY_SIMPLEX, 2, (0, 0, 0), 3)
    detection = find_card(crop)
    assert detection.method == "full_frame"
    assert detection.coverage == pytest.approx(1.0, abs=0.01)


@settings(max_examples=25, deadline=None)
@given(st.permutations(range(4)))
def test_quad_corner_order_does_not_depend_on_contour_order(order):
    from pipelines.card import _canonical_start, _order_clockwise

    pts = np.float32([[100, 100], [900, 120], [880, 620], [90, 600]])[list(order)]
    ordered = _canonical_start(_order_clockwise(pts))
    assert ordered.tolist() == [[100, 100], [900, 120], [880, 620], [90, 600]]


def test_rotating_a_quad_by_180_degrees_swaps_opposite_corners():
    quad = CardQuad(((0, 0), (10, 0), (10, 5), (0, 5)))
    assert quad.rotated_180().corners == ((10, 5), (0, 5), (0, 0), (10, 0))
    assert quad.rotated_180().rotated_180() == quad


def test_layouts_put_every_value_box_inside_the_card():
    for side in ("front", "back"):
        layout = load_layout(side)
        for x, y, w, h in layout.fields.values():
            assert x >= 0 and y >= 0 and x + w <= CANONICAL_SIZE[0] and y + h <= CANONICAL_SIZE[1]
