import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.card import CANONICAL_SIZE, CARD_ASPECT, CardQuad, find_card, load_layout, rectify


def card_on_background(angle: float, scale: float = 0.6, size=(1280, 960), tilt: float = 0.0):
    """A plain light card with a dark marker in its own top-left, on a dark textured desk."""
    w, h = size
    rng = np.random.default_rng(3)
    photo = np.clip(rng.normal(70, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    cw = int(w * scale)
    ch = int(cw / CARD_ASPECT)
    card = np.full((ch, cw, 3), 235, np.uint8)
    cv2.rectangle(card, (20, 20), (cw // 5, ch // 5), (20, 20, 200), -1)
    src = np.float32([[0, 0], [cw, 0], [cw, ch], [0, ch]])
    centre = np.float32([w / 2, h / 2])
    rad = math.radians(angle)
    rot = np.float32([[math.cos(rad), -math.sin(rad)], [math.sin(rad), math.cos(rad)]])
    dst = (src - np.float32([cw / 2, ch / 2])) @ rot.T + centre
    dst[1] += np.float32([0, tilt * ch])  # pull one corner for perspective
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(card, matrix, (w, h))
    mask = cv2.warpPerspective(np.full((ch, cw), 255, np.uint8), matrix, (w, h))
    photo[mask > 0] = warped[mask > 0]
    return photo, dst


def max_corner_error(found: CardQuad, truth: np.ndarray) -> float:
    return max(math.dist(a, b) for a, b in zip(found.corners, truth.tolist(), strict=True)) / math.dist(
        truth[0], truth[2]
    )


@pytest.mark.parametrize("angle", [0, 12, -25, 90, 135])
def test_card_corners_are_found_within_two_percent_of_the_diagonal(angle):
    photo, truth = card_on_background(angle)
    detection = find_card(photo)
    assert detection.found and not detection.clipped
    # geometry alone cannot tell 0 from 180 degrees; accept either reading of the quad
    error = min(max_corner_error(detection.quad, truth), max_corner_error(detection.quad.rotated_180(), truth))
    assert error < 0.02


def test_rectified_card_is_canonical_size_and_landscape():
    photo, truth = card_on_background(90)
    quad = CardQuad(tuple(map(tuple, truth.tolist())))
    card = rectify(photo, quad)
    assert card.shape[:2] == (CANONICAL_SIZE[1], CANONICAL_SIZE[0])
    # the red marker in the card's own top-left lands top-left after rectification
    assert card[40:90, 40:90, 2].mean() > 150 and card[40:90, 40:90, 0].mean() < 80


def test_an_empty_desk_has_no_card():
    rng = np.random.default_rng(1)
    desk = np.clip(rng.normal(90, 20, (960, 1280, 3)), 0, 255).astype(np.uint8)
    assert not find_card(desk).found


def test_a_card_running_off_the_frame_is_flagged_as_clipped():
    photo, _ = card_on_background(0, scale=0.7)
    shifted = np.roll(photo, 420, axis=1)
    shifted[:, :420] = 70
    detection = find_card(shifted)
    assert detection.found and detection.clipped


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
            assert 0 <= x and 0 <= y and x + w <= CANONICAL_SIZE[0] and y + h <= CANONICAL_SIZE[1]
