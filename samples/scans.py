"""Images of the card that are not a phone photo of it: album flat crops and greyscale photocopies.

Owns the pixels of those two capture kinds. A flat crop is the card itself, cut out and
saved (the whole image is the card, perhaps with a thin border, turned by a quarter turn at
most). A photocopy is the card copied onto paper in greyscale: the copier's tone curve washes
out the pale guilloche and darkens the ink, toner leaves specks and streaks, and a stamp such
as 复印无效 is printed across it. Both obey the ``PhotoSpec`` the generator chose.
"""

from __future__ import annotations

import random

import cv2
import numpy as np
from PIL import Image, ImageDraw

from samples import fonts
from samples.photo import PhotoSpec, composite_card, place_card, rotate_points
from samples.render import CARD_MM

COPY_STAMPS = ("复印无效", "复印无效", "仅限办理业务使用", "此复印件仅供备案使用", "仅限BDCI比赛使用")


def flat_crop(card_bgr: np.ndarray, rng: random.Random, spec: PhotoSpec) -> tuple[np.ndarray, np.ndarray]:
    """The card filling the image (``spec.card_fraction`` of it), turned by ``spec.rotation_deg``."""
    width, height = spec.size
    turned = spec.rotation_deg % 180 == 90
    card_w, card_h = (CARD_MM[1], CARD_MM[0]) if turned else CARD_MM
    scale = spec.card_fraction * min(width / card_w, height / card_h)
    w, h = CARD_MM[0] * scale, CARD_MM[1] * scale
    upright = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    corners = rotate_points(upright, spec.rotation_deg) + np.array([width / 2, height / 2])
    border = rng.choice(((255, 255, 255), (245, 245, 245), (30, 30, 30), (225, 228, 232)))
    canvas = np.empty((height, width, 3), np.float32)
    canvas[:] = border
    image, _alpha = composite_card(card_bgr, canvas, corners, rng, None)
    nprng = np.random.default_rng(rng.getrandbits(64))
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 0.55))
    image = image + nprng.normal(0, rng.uniform(0.4, 1.2), image.shape).astype(np.float32)
    return np.clip(image, 0, 255).round().astype(np.uint8), corners


def _stamp_layer(text: str, size: tuple[int, int], centre: np.ndarray, card_w: float, angle: float) -> np.ndarray:
    """Stamp ink coverage in [0, 1]: the text in a rectangular frame, rotated about its centre."""
    font_px = max(12, int(card_w / max(len(text), 4) * 0.9))
    font = fonts.load(fonts.cjk_font_file(), font_px)
    text_w = int(font.getlength(text))
    pad = font_px // 2
    tile = Image.new("L", (text_w + 2 * pad, font_px + 2 * pad), 0)
    draw = ImageDraw.Draw(tile)
    draw.rectangle((2, 2, tile.width - 3, tile.height - 3), outline=255, width=max(2, font_px // 12))
    draw.text((pad, pad + font_px * 0.85), text, font=font, fill=255, anchor="ls")
    tile_arr = np.asarray(tile, np.float32) / 255
    matrix = cv2.getRotationMatrix2D((tile.width / 2, tile.height / 2), angle, 1.0)
    matrix[:, 2] += centre - (tile.width / 2, tile.height / 2)
    return cv2.warpAffine(tile_arr, matrix, size, flags=cv2.INTER_LINEAR)


def photocopy(card_bgr: np.ndarray, rng: random.Random, spec: PhotoSpec) -> tuple[np.ndarray, np.ndarray]:
    """A greyscale copy of the card on a sheet, stamped with ``spec.stamp``; every pixel is grey."""
    width, height = spec.size
    nprng = np.random.default_rng(rng.getrandbits(64))
    sheet = np.full((height, width, 3), rng.uniform(236, 250), np.float32)
    corners = place_card(spec, rng)
    image, _alpha = composite_card(card_bgr, sheet, corners, rng, None)
    grey = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32) / 255

    # the copier's tone curve: pale print drops to paper white, ink goes darker
    low, high = rng.uniform(0.12, 0.25), rng.uniform(0.72, 0.86)
    grey = np.clip((grey - low) / (high - low), 0, 1) ** rng.uniform(1.0, 1.5)
    # toner haze, streaks along the feed direction, specks
    haze = cv2.resize(nprng.uniform(-1, 1, (6, 8)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    grey *= 1 - rng.uniform(0.02, 0.07) * (haze + 1) / 2
    streaks = cv2.resize(nprng.normal(0, 1, (1, max(8, width // 12))).astype(np.float32), (width, height))
    grey *= 1 - rng.uniform(0.01, 0.05) * np.clip(streaks, 0, None)
    specks = (nprng.random((height, width)) < rng.uniform(2e-4, 1.5e-3)).astype(np.float32)
    specks = cv2.GaussianBlur(specks, (0, 0), rng.uniform(0.6, 1.2)) * 4
    grey = np.clip(grey - np.clip(specks, 0, 1) * rng.uniform(0.5, 0.9), 0, 1)

    if rng.random() < 0.7:  # the card's edge, as the copier's lamp catches it
        edge = np.zeros((height, width), np.float32)
        cv2.polylines(edge, [np.round(corners * 4).astype(np.int32)], True, 1.0, 2, cv2.LINE_AA, shift=2)
        grey = grey * (1 - rng.uniform(0.3, 0.7) * cv2.GaussianBlur(edge, (0, 0), 0.7))

    if spec.stamp:
        card_w = float(np.linalg.norm(corners[1] - corners[0]))
        centre = corners.mean(axis=0) + nprng.uniform(-0.15, 0.15, 2) * card_w
        ink = _stamp_layer(spec.stamp, (width, height), centre, card_w, rng.uniform(-35, 35))
        grey = grey * (1 - ink * rng.uniform(0.45, 0.75))

    grey = cv2.GaussianBlur(grey * 255, (0, 0), rng.uniform(0.5, 0.9))
    grey = grey + nprng.normal(0, rng.uniform(1.0, 3.0), grey.shape).astype(np.float32)
    photo = np.clip(grey, 0, 255).round().astype(np.uint8)
    return cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR), corners


def stamp_for(rng: random.Random) -> str:
    return rng.choice(COPY_STAMPS)


def card_fraction_of_flat_crop(rng: random.Random) -> float:
    """Most album crops are cut at the card's edge; some keep a thin border."""
    return 1.0 if rng.random() < 0.4 else round(rng.uniform(0.9, 0.99), 3)
