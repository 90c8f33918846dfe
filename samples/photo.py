"""Phone-photo simulation: puts a flat card render on a surface and degrades the shot.

Owns the geometry (scale, perspective tilt, in-plane rotation, placement, partial framing),
the capture defects (blur, glare, low light, over-exposure, noise, drop shadow, screen
recapture with optional screen glare), a hand holding the card (``samples.hands``) and where
the card's corners end up. Flat crops and photocopies are not photos; ``samples.scans`` makes
those. ``photograph`` obeys a fully specified
``PhotoSpec``: every choice that a label records is made by the caller, only nuisance detail
(texture, noise realisation, exact glare shape) is drawn here.

Conventions:
- corners: the card's own top-left, top-right, bottom-right, bottom-left (clockwise on the
  card), in photo pixel coordinates; after a 180 degree rotation the first corner is at
  the photo's bottom-right. Corners may lie outside the photo when the card is partly out.
- rotation_deg: clockwise in-plane rotation of the card as seen in the photo, in [0, 360);
  rotating the photo counter-clockwise by it makes the card upright.
- severity is in [0, 1]; the sample generator keeps mild (readable) and severe bands apart.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np

from samples.hands import Hand, mm_to_photo_matrix, paint_digits, paint_palm
from samples.render import CARD_MM, card_alpha, load_layout
from samples.surfaces import make_surface

Side = Literal["front", "back"]
CaptureKind = Literal["photo", "flat_crop", "photocopy"]  # a screen recapture is a photo with "recapture"

DEGRADATION_KINDS = (
    "blur", "glare", "low_light", "overexposure", "noise", "jpeg", "partial", "too_small", "tilt",
    "recapture", "shadow",
)  # fmt: skip

# Glare counts as "on a field" when at least this share of some value box is washed out
# (added light >= half of full scale); glare "off the fields" adds < 15 % anywhere on them.
GLARE_WASHOUT = 0.5
GLARE_ON_FIELD_SHARE = 0.2
GLARE_OFF_FIELD_MAX = 0.15

CAMERA_DISTANCE_CARD_WIDTHS = 2.3  # a phone held about 20 cm above the card


@dataclass(frozen=True)
class Degradation:
    kind: str
    severity: float
    details: Mapping[str, Any] = field(default_factory=dict)

    def label(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": round(float(self.severity), 3), **self.details}


@dataclass(frozen=True)
class PhotoSpec:
    side: Side = "front"
    size: tuple[int, int] = (1280, 960)  # (width, height)
    background: str = "wood"
    rotation_deg: float = 0.0
    tilt_deg: float = 0.0
    tilt_axis_deg: float = 0.0
    # card's long side / the photo side it runs along (the width when upright), before fitting
    card_fraction: float = 0.65
    degradations: tuple[Degradation, ...] = ()
    capture: CaptureKind = "photo"
    hand: Hand | None = None  # held in a hand: palm behind, thumb and fingertips over the card
    stamp: str | None = None  # text stamped across a photocopy

    def find(self, kind: str) -> Degradation | None:
        return next((d for d in self.degradations if d.kind == kind), None)


def jpeg_quality(spec: PhotoSpec, default: int) -> int:
    """JPEG artefacts are produced by encoding at the quality the ``jpeg`` degradation chose."""
    jpeg = spec.find("jpeg")
    return int(jpeg.details["quality"]) if jpeg else default


# --- geometry --------------------------------------------------------------------------


def _tilted_corners_mm(tilt_deg: float, axis_deg: float) -> np.ndarray:
    """Card corners (centred, mm) after tilting about an in-plane axis and projecting."""
    w, h = CARD_MM
    pts = np.array([[-w / 2, -h / 2, 0], [w / 2, -h / 2, 0], [w / 2, h / 2, 0], [-w / 2, h / 2, 0]], np.float64)
    axis = np.array([math.cos(math.radians(axis_deg)), math.sin(math.radians(axis_deg)), 0.0])
    angle = math.radians(tilt_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)  # Rodrigues
    p = pts @ rot.T
    distance = CAMERA_DISTANCE_CARD_WIDTHS * w
    return p[:, :2] * (distance / (distance + p[:, 2:3]))


def rotate_points(points: np.ndarray, rotation_deg: float) -> np.ndarray:
    """Clockwise as seen in an image (y axis pointing down)."""
    a = math.radians(rotation_deg)
    matrix = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return points @ matrix.T


def _outside_share(corners: np.ndarray, size: tuple[int, int]) -> float:
    quad = corners.astype(np.float32)
    frame = np.array([[0, 0], [size[0], 0], [size[0], size[1]], [0, size[1]]], np.float32)
    area = abs(cv2.contourArea(quad))
    inside, _ = cv2.intersectConvexConvex(quad, frame)
    return 1.0 - inside / area if area > 0 else 1.0


def place_card(spec: PhotoSpec, rng: random.Random, size: tuple[int, int] | None = None) -> np.ndarray:
    """The card's four corners in photo pixels (clockwise from the card's top-left)."""
    width, height = size or spec.size
    shape = _tilted_corners_mm(spec.tilt_deg, spec.tilt_axis_deg)
    # measured along the photo axis the card's long side runs on (width when upright)
    a = math.radians(spec.rotation_deg)
    scale = spec.card_fraction * (width * abs(math.cos(a)) + height * abs(math.sin(a))) / CARD_MM[0]
    pts = rotate_points(shape * scale, spec.rotation_deg)

    partial = spec.find("partial")
    margin = 0.03 * min(width, height)
    extent = pts.max(axis=0) - pts.min(axis=0)
    fit = min(1.0, (width - 2 * margin) / extent[0], (height - 2 * margin) / extent[1])
    if partial is None:
        pts *= fit
    else:
        pts *= min(fit, 0.9)
    low, high = pts.min(axis=0), pts.max(axis=0)
    x = rng.uniform(margin - low[0], max(margin - low[0], width - margin - high[0]))
    y = rng.uniform(margin - low[1], max(margin - low[1], height - margin - high[1]))
    corners = pts + np.array([x, y])
    if partial is not None:
        corners = _push_out(corners, (width, height), partial.severity, rng)
    return corners


def _push_out(corners: np.ndarray, size: tuple[int, int], share: float, rng: random.Random) -> np.ndarray:
    """Slide the card towards a frame edge until ``share`` of its area is outside."""
    width, height = size
    centre = corners.mean(axis=0)
    direction = rng.choice([(-1, 0), (1, 0), (0, -1), (0, 1)])
    moved = corners - centre + (width / 2, height / 2)
    lo, hi = 0.0, float(max(width, height))
    for _ in range(40):
        mid = (lo + hi) / 2
        if _outside_share(moved + np.multiply(direction, mid), size) < share:
            lo = mid
        else:
            hi = mid
    return moved + np.multiply(direction, lo)


def _homography(card_shape: tuple[int, int], corners: np.ndarray) -> np.ndarray:
    h, w = card_shape
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    return cv2.getPerspectiveTransform(src, corners.astype(np.float32))


def map_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, np.float64).reshape(-1, 1, 2)
    return cv2.perspectiveTransform(pts, matrix).reshape(-1, 2)


# --- compositing -----------------------------------------------------------------------


def composite_card(
    card_bgr: np.ndarray, background: np.ndarray, corners: np.ndarray, rng: random.Random, shadow: Degradation | None
) -> tuple[np.ndarray, np.ndarray]:
    """Card warped onto the background; returns (image, card coverage mask in [0, 1])."""
    height, width = background.shape[:2]
    px_per_mm = card_bgr.shape[1] / CARD_MM[0]
    matrix = _homography(card_bgr.shape[:2], corners)
    shrink = np.linalg.norm(corners[1] - corners[0]) / card_bgr.shape[1]
    card = card_bgr.astype(np.float32)
    if shrink < 0.8:  # pre-filter against aliasing when the card is scaled down a lot
        sigma = 0.5 * math.sqrt(1 / shrink**2 - 1)
        card = cv2.GaussianBlur(card, (0, 0), sigma)
    warped = cv2.warpPerspective(card, matrix, (width, height), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(card_alpha(px_per_mm), matrix, (width, height), flags=cv2.INTER_LINEAR)
    image = background.copy()
    if shadow is not None:
        card_w = np.linalg.norm(corners[1] - corners[0])
        offset = card_w * (0.01 + 0.02 * shadow.severity)
        angle = rng.uniform(0, 2 * math.pi)
        shift = np.float32([[1, 0, offset * math.cos(angle)], [0, 1, offset * math.sin(angle)]])
        cast = cv2.warpAffine(alpha, shift, (width, height))
        cast = cv2.GaussianBlur(cast, (0, 0), card_w * (0.008 + 0.02 * shadow.severity))
        image *= (1 - (0.25 + 0.4 * shadow.severity) * cast)[..., None]
    a = alpha[..., None]
    return image * (1 - a) + warped * a, alpha


def _value_box_quads(side: Side, matrix: np.ndarray, px_per_mm: float) -> dict[str, np.ndarray]:
    layout = load_layout(side)
    return {key: map_points(matrix, np.array(f.value.corners_mm()) * px_per_mm) for key, f in layout.fields.items()}


def _quad_mask(quad: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillConvexPoly(mask, np.round(quad * 4).astype(np.int32), 1, lineType=cv2.LINE_8, shift=2)
    return mask.astype(bool)


def _glare_field(
    size: tuple[int, int], centre: tuple[float, float], radii: tuple[float, float], angle: float
) -> np.ndarray:
    """Specular highlight: a saturated core with a soft halo, values in [0, 1]."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = xx - centre[0], yy - centre[1]
    u = (dx * c + dy * s) / radii[0]
    v = (-dx * s + dy * c) / radii[1]
    d2 = u * u + v * v
    return np.clip(1.35 * np.exp(-d2 * 1.1), 0, 1)


def _add_glare(
    image: np.ndarray,
    alpha: np.ndarray,
    glare: Degradation,
    quads: dict[str, np.ndarray],
    corners: np.ndarray,
    matrix: np.ndarray,
    px_per_mm: float,
    rng: random.Random,
) -> np.ndarray:
    height, width = image.shape[:2]
    size = (width, height)
    card_w = float(np.linalg.norm(corners[1] - corners[0]))
    masks = {k: _quad_mask(q, size) for k, q in quads.items()}
    target = glare.details.get("field")
    angle = rng.uniform(0, math.pi)
    strength = 0.75 + 0.25 * glare.severity
    if target:
        quad = quads[target]
        centre = quad.mean(axis=0) + (quad[1] - quad[0]) * rng.uniform(-0.25, 0.25)
        box_h = float(np.linalg.norm(quad[3] - quad[0]))
        radii = (card_w * (0.1 + 0.1 * glare.severity), max(box_h * 1.1, card_w * 0.06))
        angle = math.atan2(*(quad[1] - quad[0])[::-1])
        for _ in range(20):
            light = _glare_field(size, tuple(centre), radii, angle) * strength * alpha
            share = float((light[masks[target]] >= GLARE_WASHOUT).mean()) if masks[target].any() else 0.0
            if share >= GLARE_ON_FIELD_SHARE + 0.1:
                break
            radii = (radii[0] * 1.2, radii[1] * 1.2)
    else:
        light = np.zeros((height, width), np.float32)
        for _ in range(60):
            # around the portrait / emblem, in card margins, or off the card near it
            spot_mm = (rng.uniform(-5, CARD_MM[0] + 5), rng.uniform(-5, CARD_MM[1] + 5))
            centre = map_points(matrix, np.array([spot_mm]) * px_per_mm)[0]
            r = card_w * (0.05 + 0.07 * glare.severity) * rng.uniform(0.8, 1.2)
            candidate = _glare_field(size, tuple(centre), (r * rng.uniform(1.0, 1.8), r), angle) * strength * alpha
            if all(float(candidate[m].max(initial=0)) < GLARE_OFF_FIELD_MAX for m in masks.values()):
                light = candidate
                break
    return image + 255.0 * light[..., None] * np.array([1.0, 1.0, 0.98], np.float32)


# --- capture defects -------------------------------------------------------------------


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    n = max(3, math.ceil(length) | 1)
    kernel = np.zeros((n, n), np.float32)
    c = n // 2
    dx, dy = math.cos(angle), math.sin(angle)
    for t in np.linspace(-length / 2, length / 2, max(2, int(length * 3))):
        x, y = c + t * dx, c + t * dy
        x0, y0 = math.floor(x), math.floor(y)
        fx, fy = x - x0, y - y0
        for xi, yi, wgt in (
            (x0, y0, (1 - fx) * (1 - fy)),
            (x0 + 1, y0, fx * (1 - fy)),
            (x0, y0 + 1, (1 - fx) * fy),
            (x0 + 1, y0 + 1, fx * fy),
        ):
            if 0 <= xi < n and 0 <= yi < n:
                kernel[yi, xi] += wgt
    return kernel / kernel.sum()


def _lighting(image: np.ndarray, rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
    """Uneven room light and a slight white-balance shift (nuisance, not a recorded defect)."""
    height, width = image.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (xx * math.cos(angle) + yy * math.sin(angle)) / math.hypot(width, height)
    gain = 1 + rng.uniform(0.0, 0.12) * (ramp - ramp.mean()) / max(float(ramp.std()), 1e-6) * 0.5
    vignette = 1 - rng.uniform(0.0, 0.12) * (((xx / width - 0.5) ** 2 + (yy / height - 0.5) ** 2) * 2)
    white = np.array([rng.uniform(0.95, 1.04), 1.0, rng.uniform(0.95, 1.05)], np.float32)
    return image * (gain * vignette)[..., None] * white


def _apply_defects(
    image: np.ndarray, spec: PhotoSpec, px_per_mm_photo: float, rng: random.Random, nprng: np.random.Generator
) -> np.ndarray:
    low = spec.find("low_light")
    if low is not None:
        gain = math.exp(-2.15 * low.severity)
        image = image * gain * np.array([1.06, 1.0, 0.92], np.float32)
    over = spec.find("overexposure")
    if over is not None:
        bright = cv2.GaussianBlur(np.clip(image - 200, 0, None), (0, 0), 6 + 10 * over.severity)
        image = image * (1 + 1.6 * over.severity) + 255 * 0.55 * over.severity**1.5 + 0.8 * over.severity * bright

    # camera optics: always a little soft
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.35, 0.6))
    blur = spec.find("blur")
    if blur is not None:
        if blur.details.get("type") == "motion":
            length = (0.1 + 2.4 * blur.severity**1.5) * px_per_mm_photo
            image = cv2.filter2D(image, -1, _motion_kernel(length, rng.uniform(0, math.pi)))
        else:
            sigma = (0.04 + 0.5 * blur.severity) * px_per_mm_photo
            image = cv2.GaussianBlur(image, (0, 0), sigma)

    noise_sigma = rng.uniform(0.6, 1.4)
    noise = spec.find("noise")
    if noise is not None:
        noise_sigma = 3 + 22 * noise.severity
    if low is not None:
        noise_sigma = max(noise_sigma, 2 + 7 * low.severity)
    grain = nprng.normal(0, noise_sigma, (*image.shape[:2], 1)).astype(np.float32)
    chroma = nprng.normal(0, noise_sigma * 0.35, image.shape).astype(np.float32)
    return image + grain + chroma


# --- screen recapture ------------------------------------------------------------------


def _screen_recapture(
    content: np.ndarray, spec: PhotoSpec, rng: random.Random, nprng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Show ``content`` on a screen and photograph it; returns (photo, content->photo homography)."""
    width, height = spec.size
    ch, cw = content.shape[:2]
    severity = spec.find("recapture").severity  # type: ignore[union-attr]
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)

    # RGB subpixel stripes (period 3 px) and a dark gap between pixel rows
    stripes = np.zeros((ch, cw, 3), np.float32)
    phase = (np.arange(cw) % 3)[None, :]
    for channel, bgr_index in enumerate((2, 1, 0)):  # R, G, B columns
        stripes[..., bgr_index] = np.where(phase == channel, 1.0, 1 - 0.35 * (0.5 + severity))
    row_gap = np.where((np.arange(ch) % 3) == 2, 1 - 0.2 * severity, 1.0)[:, None, None]
    screen = content * stripes * row_gap * (1.0 / (1 - 0.35 * (0.5 + severity) * 2 / 3))

    # moire: curved interference bands, colour-shifted per channel
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(9, 26)
    bend = 12 * np.sin(2 * math.pi * yy / rng.uniform(200, 500)) + 8 * np.sin(2 * math.pi * xx / rng.uniform(250, 600))
    t = (xx * math.cos(angle) + yy * math.sin(angle) + bend) / period
    amplitude = 0.05 + 0.1 * severity
    for i in range(3):
        screen[..., i] *= 1 + amplitude * np.cos(2 * math.pi * t + i * 2.1)

    # screens lift the blacks, cool the white point and lose contrast
    cast = np.array([rng.uniform(1.02, 1.12), rng.uniform(0.98, 1.04), rng.uniform(0.86, 0.96)], np.float32)
    screen = (18 + screen * 0.88) * cast

    bezel = int(min(cw, ch) * rng.uniform(0.03, 0.06))
    framed = np.full((ch + 2 * bezel, cw + 2 * bezel, 3), rng.uniform(8, 24), np.float32)
    framed[bezel : bezel + ch, bezel : bezel + cw] = screen
    room = make_surface(rng.choice(("desk_dark", "gradient", "fabric")), spec.size, rng) * 0.6

    fh, fw = framed.shape[:2]
    jitter = 0.03 * min(width, height)
    scale = min(width / fw, height / fh) * rng.uniform(0.92, 1.02)
    dst = np.array([[-fw, -fh], [fw, -fh], [fw, fh], [-fw, fh]], np.float64) / 2 * scale
    dst += np.array([width / 2, height / 2])
    dst += nprng.uniform(-jitter, jitter, dst.shape)
    src = np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], np.float32)
    to_photo = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    warped = cv2.warpPerspective(framed, to_photo, spec.size, flags=cv2.INTER_LINEAR)
    cover = cv2.warpPerspective(np.ones((fh, fw), np.float32), to_photo, spec.size, flags=cv2.INTER_LINEAR)[..., None]
    photo = room * (1 - cover) + warped * cover
    if spec.find("recapture").details.get("screen_glare"):  # type: ignore[union-attr]
        photo = photo + _screen_sheen(spec.size, rng) * cover * 255
    offset = np.array([[1, 0, bezel], [0, 1, bezel], [0, 0, 1]], np.float64)
    return photo, to_photo @ offset


def _screen_sheen(size: tuple[int, int], rng: random.Random) -> np.ndarray:
    """A window reflected in the glass: a broad, soft, slanted band of light (H x W x 1)."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    offset = rng.uniform(0.2, 0.8) * (width * abs(math.cos(angle)) + height * abs(math.sin(angle)))
    d = xx * math.cos(angle) + yy * math.sin(angle) - offset
    band = np.exp(-((d / (rng.uniform(0.06, 0.16) * width)) ** 2))
    return (rng.uniform(0.25, 0.5) * band)[..., None]


# --- entry point -----------------------------------------------------------------------


def photograph(
    card_bgr: np.ndarray | None, rng: random.Random, spec: PhotoSpec
) -> tuple[np.ndarray, np.ndarray | None]:
    """A simulated phone photo of the card (or of the bare surface when ``card_bgr`` is None).

    Returns the BGR uint8 photo and the card's corners (4x2 float, clockwise from the card's
    own top-left) in photo pixels, or None without a card.
    """
    nprng = np.random.default_rng(rng.getrandbits(64))
    recapture = spec.find("recapture")
    content_size = (int(spec.size[0] * 0.82), int(spec.size[1] * 0.82)) if recapture else spec.size
    image = make_surface(spec.background, content_size, rng)
    corners = None
    alpha = np.zeros(image.shape[:2], np.float32)
    if card_bgr is not None:
        corners = place_card(spec, rng, content_size)
        if spec.hand is not None:
            image = paint_palm(image, spec.hand, mm_to_photo_matrix(corners), rng)
        image, alpha = composite_card(card_bgr, image, corners, rng, spec.find("shadow"))
        glare = spec.find("glare")
        if glare is not None:
            px_per_mm = card_bgr.shape[1] / CARD_MM[0]
            matrix = _homography(card_bgr.shape[:2], corners)
            quads = _value_box_quads(spec.side, matrix, px_per_mm)
            image = _add_glare(image, alpha, glare, quads, corners, matrix, px_per_mm, rng)
        if spec.hand is not None:
            image = paint_digits(image, spec.hand, mm_to_photo_matrix(corners))
    if recapture is not None:
        image, to_photo = _screen_recapture(np.clip(image, 0, 255), spec, rng, nprng)
        if corners is not None:
            corners = map_points(to_photo, corners)

    image = _lighting(image, rng, nprng)
    px_per_mm_photo = (
        float(np.linalg.norm(corners[1] - corners[0])) / CARD_MM[0]
        if corners is not None
        else spec.size[0] * 0.6 / CARD_MM[0]
    )
    image = _apply_defects(image, spec, px_per_mm_photo, rng, nprng)
    photo = np.clip(image, 0, 255).round().astype(np.uint8)
    return photo, corners
