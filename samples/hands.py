"""A hand holding the card: a thumb over the card's face, fingertips wrapped over one edge and
a palm behind the card.

Owns the hand's shape and pixels. Shapes are drawn in card millimetres (x right, y down from
the card's own top-left), so a thumb "over the portrait" stays over the portrait at any
rotation and tilt; the caller passes the card-mm -> photo homography that places them.
A hand never covers a value box or a caption: a card a person reads without effort stays
one (the thumb comes over the portrait from the right or top edge, or rests in the margin
left of the captions; fingertips wrap only over the top or bottom margin).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import cv2
import numpy as np

from samples.render import CARD_MM, load_layout

ThumbEdge = Literal["left", "right", "top"]

# Light to dark skin tones (BGR)
SKIN_BGR = ((128, 160, 222), (112, 146, 204), (96, 128, 184), (146, 176, 230), (74, 104, 150), (60, 84, 122))
_MASK_PX_PER_MM = 4  # raster used to prove a hand leaves every box uncovered
_BOX_MARGIN_MM = 0.6


@dataclass(frozen=True)
class Digit:
    """A thumb or finger: a capsule from far outside the card to a rounded tip (card mm)."""

    tip_mm: tuple[float, float]
    direction_deg: float  # direction the digit points, from knuckle to tip (0 = +x, 90 = +y)
    width_mm: float
    length_mm: float = 60.0

    def outline_mm(self, points: int = 24) -> np.ndarray:
        a = math.radians(self.direction_deg)
        u = np.array([math.cos(a), math.sin(a)])  # towards the tip
        n = np.array([-u[1], u[0]])
        tip = np.array(self.tip_mm)
        r = self.width_mm / 2
        centre = tip - u * r  # centre of the rounded end
        arc = [centre + r * (math.cos(t) * u + math.sin(t) * n) for t in np.linspace(-math.pi / 2, math.pi / 2, points)]
        base = tip - u * self.length_mm
        return np.array([base - n * r * 1.08, *arc, base + n * r * 1.08])


@dataclass(frozen=True)
class Hand:
    thumb_edge: ThumbEdge
    thumb: Digit
    finger_edge: Literal["top", "bottom"]
    fingers: tuple[Digit, ...]
    skin_bgr: tuple[float, float, float]

    def label(self) -> dict[str, Any]:
        return {
            "type": "thumb",
            "side": self.thumb_edge,
            "over": "margin" if self.thumb_edge == "left" else "portrait",
            "tip_mm": [round(v, 1) for v in self.thumb.tip_mm],
            "fingers_edge": self.finger_edge,
            "fingers": len(self.fingers),
        }


@lru_cache(maxsize=1)
def _forbidden_mask() -> np.ndarray:
    """Card-mm raster of every front value box and caption (plus a margin)."""
    k = _MASK_PX_PER_MM
    mask = np.zeros((round(CARD_MM[1] * k), round(CARD_MM[0] * k)), np.uint8)
    for field in load_layout("front").fields.values():
        for box in (field.value, field.label_box):
            x0, y0 = (box.x - _BOX_MARGIN_MM) * k, (box.y - _BOX_MARGIN_MM) * k
            x1, y1 = (box.x + box.w + _BOX_MARGIN_MM) * k, (box.y + box.h + _BOX_MARGIN_MM) * k
            cv2.rectangle(mask, (int(x0), int(y0)), (math.ceil(x1), math.ceil(y1)), 1, thickness=-1)
    return mask


def covers_a_field(digit: Digit) -> bool:
    k = _MASK_PX_PER_MM
    shape = np.zeros_like(_forbidden_mask())
    cv2.fillPoly(shape, [np.round(digit.outline_mm() * k).astype(np.int32)], 1)
    return bool((shape & _forbidden_mask()).any())


def _thumb(rng: random.Random, edge: ThumbEdge) -> Digit:
    w, h = CARD_MM
    width = rng.uniform(15, 21)
    for _ in range(200):
        if edge == "right":  # over the portrait, pointing left
            tip = (rng.uniform(57, 68), rng.uniform(12, 30))
            direction = 180 + rng.uniform(-25, 25)
        elif edge == "top":  # over the portrait from above, pointing down
            tip = (rng.uniform(62, 76), rng.uniform(14, 28))
            direction = 90 + rng.uniform(-25, 25)
        else:  # resting in the left margin, pointing right
            tip = (rng.uniform(1.5, 4.5), rng.uniform(12, h - 10))
            direction = rng.uniform(-20, 20)
        digit = Digit(tip, direction, width)
        if not covers_a_field(digit):
            return digit
        width = max(13.0, width * 0.97)
    raise RuntimeError(f"no thumb position off the fields from the {edge} edge (w={w})")


def _fingers(rng: random.Random, edge: Literal["top", "bottom"]) -> tuple[Digit, ...]:
    w, h = CARD_MM
    count = rng.randint(2, 4)
    width = rng.uniform(13, 17)
    start = rng.uniform(4, w - count * width * 1.05 - 2)
    fingers = []
    for i in range(count):
        x = start + i * width * rng.uniform(1.0, 1.1) + width / 2
        wrap = rng.uniform(0.5, 2.5)
        tip = (x, wrap) if edge == "top" else (x, h - wrap)
        direction = (90 if edge == "top" else 270) + rng.uniform(-10, 10)
        digit = Digit(tip, direction, width, length_mm=45)
        if not covers_a_field(digit):
            fingers.append(digit)
    return tuple(fingers)


def random_hand(rng: random.Random) -> Hand:
    edge: ThumbEdge = rng.choice(("right", "right", "top", "left"))
    finger_edge: Literal["top", "bottom"] = "bottom" if edge == "top" else rng.choice(("top", "bottom"))
    return Hand(edge, _thumb(rng, edge), finger_edge, _fingers(rng, finger_edge), rng.choice(SKIN_BGR))


# --- drawing ---------------------------------------------------------------------------


def _to_photo(mm_to_photo: np.ndarray, points_mm: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(points_mm.reshape(-1, 1, 2).astype(np.float64), mm_to_photo).reshape(-1, 2)


def _paint_digit(image: np.ndarray, digit: Digit, mm_to_photo: np.ndarray, skin: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    outline = _to_photo(mm_to_photo, digit.outline_mm())
    x0, y0 = np.floor(outline.min(axis=0)).astype(int) - 4
    x1, y1 = np.ceil(outline.max(axis=0)).astype(int) + 4
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return image
    crop_h, crop_w = y1 - y0, x1 - x0
    mask = np.zeros((crop_h * 4, crop_w * 4), np.uint8)
    cv2.fillPoly(mask, [np.round((outline - (x0, y0)) * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA)
    alpha = cv2.resize(mask, (crop_w, crop_h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.8)

    # shading from where each pixel lies on the digit (card mm): rounded across, a nail at the tip
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    mm = _to_photo(np.linalg.inv(mm_to_photo), np.stack([xx.ravel(), yy.ravel()], axis=1))
    a = math.radians(digit.direction_deg)
    u, n = np.array([math.cos(a), math.sin(a)]), np.array([-math.sin(a), math.cos(a)])
    rel = mm - np.array(digit.tip_mm)
    across = np.clip((rel @ n) / (digit.width_mm / 2), -1, 1).reshape(crop_h, crop_w)
    back = (-(rel @ u)).reshape(crop_h, crop_w)  # mm behind the tip
    shade = 0.62 + 0.42 * np.sqrt(1 - across**2)
    colour = skin[None, None, :] * shade[..., None]
    nail = ((back > 1.2) & (back < 0.5 * digit.width_mm + 1.2) & (np.abs(across) < 0.55)).astype(np.float32)
    nail = cv2.GaussianBlur(nail, (0, 0), 1.2)[..., None]
    colour = colour * (1 - 0.6 * nail) + (skin * 1.15 + np.array((12, 8, 18)))[None, None, :] * 0.6 * nail

    # a soft contact shadow just outside the digit
    shadow = cv2.GaussianBlur(alpha, (0, 0), 3.0)
    region = image[y0:y1, x0:x1]
    region = region * (1 - 0.3 * np.clip(shadow - alpha, 0, 1))[..., None]
    image[y0:y1, x0:x1] = region * (1 - alpha[..., None]) + colour * alpha[..., None]
    return image


def paint_palm(image: np.ndarray, hand: Hand, mm_to_photo: np.ndarray, rng: random.Random) -> np.ndarray:
    """The palm behind the card, reaching out past the thumb's edge (drawn before the card)."""
    w, h = CARD_MM
    out = {"right": (w + 25, h * 0.6), "top": (w * 0.75, -25), "left": (-25, h * 0.55)}[hand.thumb_edge]
    angles = np.linspace(0, 2 * math.pi, 48, endpoint=False)
    radii = (rng.uniform(45, 60), rng.uniform(35, 45))
    spin = rng.uniform(0, math.pi)
    pts = np.stack([radii[0] * np.cos(angles), radii[1] * np.sin(angles)], axis=1)
    pts = pts @ np.array([[math.cos(spin), -math.sin(spin)], [math.sin(spin), math.cos(spin)]]).T + out
    outline = _to_photo(mm_to_photo, pts)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(outline).astype(np.int32)], 255, lineType=cv2.LINE_AA)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), 2.0)[..., None]
    skin = np.array(hand.skin_bgr, np.float32) * rng.uniform(0.82, 0.95)  # palm in the card's shade
    yy = np.linspace(0.9, 1.05, image.shape[0], dtype=np.float32)[:, None, None]
    return image * (1 - alpha) + skin * yy * alpha


def paint_digits(image: np.ndarray, hand: Hand, mm_to_photo: np.ndarray) -> np.ndarray:
    """Fingertips and thumb over the card (drawn after the card)."""
    skin = np.array(hand.skin_bgr, np.float64)
    out = image.astype(np.float64)
    for finger in hand.fingers:
        out = _paint_digit(out, finger, mm_to_photo, skin * 0.95)
    out = _paint_digit(out, hand.thumb, mm_to_photo, skin)
    return out.astype(np.float32)


def mm_to_photo_matrix(corners: np.ndarray) -> np.ndarray:
    w, h = CARD_MM
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    return cv2.getPerspectiveTransform(src, corners.astype(np.float32))
