"""Capture quality: scores with named reasons a person can act on.

Owns blur, glare (and whether it covers a text field), exposure, card size in the frame,
card partly outside the frame, strong tilt, and suspected recapture from a screen (moire).
Works on the frame plus the card geometry from ``pipelines.card``; nothing here reads text,
so the live framing check stays cheap (target: <= 15 ms median on a 640x480 frame).

Thresholds are in ``QualityThresholds``; the defaults were chosen with
``benchmarks/scan_accuracy.py --calibrate`` on a generated set (see each comment).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipelines.card import CANONICAL_SIZE, CARD_ASPECT, CardDetection, find_card, load_layout, rectify
from pipelines.reasons import Reason


@dataclass(frozen=True)
class QualityThresholds:
    """Capture thresholds. Values from ``benchmarks/scan_accuracy.py --calibrate`` on the
    generated benchmark set (seed 4242, 400 photos): each comment gives the two populations
    the threshold separates (mild = labelled readable, severe = labelled retake)."""

    # Sharpness: 99.5th-percentile |Laplacian| over print contrast in the name/number/birth
    # boxes of the half-size card (x100). Clean p10 118 (min 39), mild blur p10 56 (min 23),
    # severe blur p10 18, median 33 (severe blur on a large card looks like mild blur on a
    # small one, so part of the overlap is in the labels; the OCR confidence catches the rest).
    min_sharpness: float = 25.0
    # Share of one value box washed out by a local highlight: glare off the fields <= 0.12,
    # glare labelled "on a field" 0.42-1.0.
    max_glare_on_field: float = 0.30
    # Share of the card under blown-out highlight to mention (not block on) glare.
    max_glare_on_card: float = 0.02
    # Above this share the highlight is no longer local glare but exposure of the whole card.
    glare_is_exposure: float = 0.50
    # Mean card luminance: readable low light 110-170, too dark 25-40.
    min_brightness: float = 60.0
    # Share of card pixels clipped at >= 252: mild over-exposure 0.74-0.83 (text still
    # legible), severe 0.94-0.98 (text gone).
    max_clipped: float = 0.90
    # Card long side / frame long side: clean >= 0.19 at the smallest, "too small" <= 0.18.
    min_coverage: float = 0.25
    # Tilt up to 30 degrees is a normal capture that rectification undoes (issue 9); these
    # three only catch cards turned so far that print is squeezed past reading.
    # Keystone: longer/shorter of two opposite sides. Generated mild tilt <= 1.18, strong
    # 1.0-1.30; ../shared/dev-photos clean fronts tilted 20-25 degrees reach 1.35.
    max_side_ratio: float = 1.5
    # Corner angles off 90 degrees: generated mild <= 10, strong up to 29; dev-photos clean
    # fronts tilted 20-25 degrees reach 18.6.
    max_corner_skew_deg: float = 26.0
    # Tilt estimated from foreshortening (the quad's aspect against 85.6:54): generated mild
    # tilt is labelled <= 24 degrees, strong >= 38; dev-photos clean fronts reach 24.
    max_tilt_deg: float = 34.0
    # Moire score (``moire_score``): every non-recapture photo <= 0.92, screen recaptures
    # 1.44-5.46.
    max_moire: float = 1.2
    # Colour spread (``colour_spread``): 99th percentile of chroma around the card's own mean
    # tint. Greyscale copies and copy composites in ../shared/external-eval score 0.0;
    # colour fronts in ../shared/dev-photos 8.1-31 (clean) and 4.0 at the least (a dark,
    # degraded one); sensor noise on a photographed grey copy stays under ~2.
    min_colour_spread: float = 3.0
    # Marginal bounds: the edge of the readable populations above (mild blur, mild
    # over-exposure, readable low light). Between them and the hard bounds a photo often
    # still reads. The live check, which cannot read, asks for a better frame at these; the
    # scan uses them to say *why* a found card did not read instead of "no card", so the two
    # agree (issue 9: a frame the live check passed came back from the upload as no_card).
    # Sharpness of clean fronts: generated p10 118, ../shared/dev-photos min 109; blurred
    # but still readable ones go down to 65.
    marginal_sharpness: float = 90.0
    marginal_clipped: float = 0.84
    # Readable low light is 110-170 (generated), 152 for the committed low-light sample.
    marginal_brightness: float = 90.0


@dataclass(frozen=True)
class QualityScores:
    sharpness: float
    glare_on_card: float
    glare_on_field: float
    glare_field: str | None
    brightness: float
    clipped: float
    coverage: float
    side_ratio: float
    corner_skew_deg: float
    tilt_deg: float
    moire: float
    colour_spread: float
    in_screen_frame: bool


@dataclass(frozen=True)
class QualityReport:
    scores: QualityScores | None
    reasons: tuple[Reason, ...]

    @property
    def ok(self) -> bool:
        return not self.reasons


# Quality is judged on a half-size card (5 px/mm): enough for blur, glare, exposure and
# moire, and a quarter of the pixels, which keeps the live framing check cheap.
_HALF = (CANONICAL_SIZE[0] // 2, CANONICAL_SIZE[1] // 2)


def _half_boxes() -> dict[str, tuple[int, int, int, int]]:
    return {name: tuple(v // 2 for v in box) for name, box in load_layout("front").fields.items()}  # type: ignore[misc]


def _sharpness(gray_half: np.ndarray) -> float:
    """Edge strength relative to print contrast, so dim but sharp print is not called blurry."""
    boxes = _half_boxes()
    values = []
    for name in ("id_number", "name", "birth"):
        x, y, w, h = boxes[name]
        box = gray_half[y : y + h, x : x + w].astype(np.float32)
        contrast = float(np.percentile(box, 80) - np.percentile(box, 1))
        laplacian = np.abs(cv2.Laplacian(box, cv2.CV_32F))
        values.append(float(np.percentile(laplacian, 99.5)) / (contrast + 1.0) * 100.0)
    return float(np.median(values))


def _glare(half: np.ndarray) -> tuple[float, float, str | None, float]:
    # The card's own background is pale (225-249 grey on clean generated photos); specular
    # highlights clip the sensor, so only pixels at >= 252 in every channel count.
    b, g, r = cv2.split(half)
    bright = cv2.min(cv2.min(b, g), r) >= 252
    clipped = float(bright.mean())
    mask = cv2.morphologyEx(bright.astype(np.uint8), cv2.MORPH_OPEN, np.ones((4, 4), np.uint8))
    glare_card = float(mask.mean())
    worst, worst_field = 0.0, None
    for name, (x, y, w, h) in _half_boxes().items():
        share = float(mask[y : y + h, x : x + w].mean())
        if share > worst:
            worst, worst_field = share, name
    return glare_card, worst, worst_field, clipped


def moire_score(frame: np.ndarray) -> float:
    """Colour interference stripes of a photographed screen, measured on the whole frame.

    A screen's subpixel grid beats against the camera's sensor and leaves rainbow bands: a
    strong fine-scale signal in the chroma channels. Paper, wood and fabric carry texture
    in brightness, not in colour. Score: mean |band-passed a*/b*| at 480 px.
    """
    h, w = frame.shape[:2]
    scale = min(1.0, 480 / max(h, w))
    small = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB)
    score = 0.0
    for channel in (1, 2):
        c = lab[:, :, channel].astype(np.float32)
        band = cv2.GaussianBlur(c, (0, 0), 0.8) - cv2.GaussianBlur(c, (0, 0), 3.0)
        score = max(score, float(cv2.mean(cv2.absdiff(band, 0))[0]))
    return score


# A screen's bezel: the dark ring is at most this bright (HSV value, 0-255). A phone or
# tablet bezel photographed in room light is 30-90; tried from the darkest up.
_BEZEL_VALUES = (50, 70, 90)


def in_screen_frame(frame: np.ndarray, quad_corners: np.ndarray) -> bool:
    """Is the card shown inside a device: a bright rectangle held in a thin dark ring?

    Moire (``moire_score``) catches screens whose subpixels beat against the sensor; a
    screen photographed from further away shows its bezel instead. The light region around
    the card, bounded by dark pixels, is a rectangle 1.05-4x the card's area, wholly inside
    the frame, and at least 80 % of a band around it is dark. A card on a dark desk
    fails the area test (its light region is the card); papers on a dark desk fail the ring
    (the dark runs to the frame's edge and the papers' outline is no rectangle or touches
    it). Checked on ../shared/dev-photos, ../shared/external-eval, samples/set and a 200-photo
    wild-mix set (326 located cards): it flags the 7 screen photos among them and nothing else.
    Works on a 320 px copy (the ring is 8 px wide there), about 0.5 ms.
    """
    h, w = frame.shape[:2]
    scale = min(1.0, 320 / max(h, w))
    small = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
    b, g, r = cv2.split(small)
    value = cv2.max(cv2.max(b, g), r)  # HSV's value channel, without the conversion
    card = np.asarray(quad_corners, np.float32) * scale
    card_area = max(float(cv2.contourArea(card)), 1.0)
    cx, cy = (int(v) for v in card.mean(axis=0))
    if not (0 <= cx < small.shape[1] and 0 <= cy < small.shape[0]):
        return False
    for limit in _BEZEL_VALUES:
        dark = (value < limit).astype(np.uint8)
        _, labels = cv2.connectedComponents(1 - dark)
        label = labels[cy, cx]
        if label == 0:
            continue
        region = (labels == label).astype(np.uint8)
        if region[0, :].any() or region[-1, :].any() or region[:, 0].any() or region[:, -1].any():
            continue
        area = float(region.sum())
        if not 1.05 <= area / card_area <= 4.0:
            continue
        contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        (_, _), (rw, rh), _ = cv2.minAreaRect(cv2.convexHull(max(contours, key=cv2.contourArea)))
        if area / max(rw * rh, 1.0) < 0.85:
            continue
        ring = cv2.dilate(region, np.ones((17, 17), np.uint8)) - region
        if float(dark[ring > 0].mean()) > 0.8:
            return True
    return False


def colour_spread(half: np.ndarray) -> float:
    """How much colour the card carries beyond its overall tint (0 for a greyscale copy).

    A resident ID card has blue captions and a tinted guilloche background; a photocopy or
    a greyscale scan has one ink colour. Measured relative to the card's median a*/b*, so a
    warm or cool white balance does not count as colour. The portrait is left out.
    """
    # every second pixel is plenty for a 99th percentile and keeps the live check cheap
    lab = cv2.cvtColor(half[::2, ::2], cv2.COLOR_BGR2LAB).astype(np.float32)
    a, b = lab[:, :, 1], lab[:, :, 2]
    keep = np.ones(a.shape, bool)
    x, y, w, h = (v // 4 for v in load_layout("front").regions["photo"])
    keep[y : y + h, x : x + w] = False
    a, b = a[keep], b[keep]
    spread = np.hypot(a - np.median(a), b - np.median(b))
    return float(np.percentile(spread, 99))


def _geometry(detection: CardDetection) -> tuple[float, float, float]:
    assert detection.quad is not None
    pts = np.array(detection.quad.corners, np.float64)
    s = detection.quad.side_lengths()
    ratio = max(max(s[0], s[2]) / max(min(s[0], s[2]), 1e-6), max(s[1], s[3]) / max(min(s[1], s[3]), 1e-6))
    skew = 0.0
    for i in range(4):
        a, b, c = pts[i - 1], pts[i], pts[(i + 1) % 4]
        v1, v2 = a - b, c - b
        cos = float(np.dot(v1, v2) / (np.linalg.norm(v1) * np.linalg.norm(v2) + 1e-9))
        skew = max(skew, abs(90.0 - np.degrees(np.arccos(np.clip(cos, -1, 1)))))
    long_side, short_side = max(s[0] + s[2], s[1] + s[3]), min(s[0] + s[2], s[1] + s[3])
    aspect = long_side / max(short_side, 1e-6)
    foreshortening = min(aspect / CARD_ASPECT, CARD_ASPECT / aspect)
    tilt = float(np.degrees(np.arccos(np.clip(foreshortening, 0.0, 1.0))))
    return ratio, skew, tilt


def assess(
    frame: np.ndarray,
    detection: CardDetection,
    thresholds: QualityThresholds = QualityThresholds(),
    card: np.ndarray | None = None,
) -> QualityReport:
    """Judge a capture. ``card`` is the rectified card when the caller already has it."""
    if detection.quad is None:
        # a screen photo often hides the card's edges: say so rather than only "no card"
        if moire_score(frame) > thresholds.max_moire:
            return QualityReport(None, (Reason.NO_CARD, Reason.RECAPTURE_SUSPECTED))
        return QualityReport(None, (Reason.NO_CARD,))
    if card is None:
        half = rectify(frame, detection.quad, _HALF)
    else:
        half = cv2.resize(card, _HALF, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(half, cv2.COLOR_BGR2GRAY)
    glare_card, glare_field, glare_field_name, clipped = _glare(half)
    side_ratio, skew, tilt = _geometry(detection)
    scores = QualityScores(
        sharpness=round(_sharpness(gray), 2),
        glare_on_card=round(glare_card, 4),
        glare_on_field=round(glare_field, 4),
        glare_field=glare_field_name if glare_field > 0 else None,
        brightness=round(float(gray.mean()), 1),
        clipped=round(clipped, 4),
        coverage=round(detection.coverage, 3),
        side_ratio=round(side_ratio, 3),
        corner_skew_deg=round(skew, 1),
        tilt_deg=round(tilt, 1),
        moire=round(moire_score(frame), 2),
        colour_spread=round(colour_spread(half), 1),
        # needs the card's true outline: a placement inferred from text lines may be a little
        # small, and the card around it would look like a screen's margin
        in_screen_frame=detection.method != "text" and in_screen_frame(frame, np.array(detection.quad.corners)),
    )
    t = thresholds
    reasons: list[Reason] = []
    if detection.clipped:
        reasons.append(Reason.CARD_PARTLY_OUTSIDE)
    if scores.coverage < t.min_coverage:
        reasons.append(Reason.CARD_TOO_SMALL)
    if (
        scores.side_ratio > t.max_side_ratio
        or scores.corner_skew_deg > t.max_corner_skew_deg
        or scores.tilt_deg > t.max_tilt_deg
    ):
        reasons.append(Reason.STRONG_TILT)
    if scores.brightness < t.min_brightness:
        reasons.append(Reason.TOO_DARK)
    elif scores.clipped > t.max_clipped:
        reasons.append(Reason.OVEREXPOSED)
    if scores.glare_on_card < t.glare_is_exposure:
        if scores.glare_on_field > t.max_glare_on_field:
            reasons.append(Reason.GLARE_ON_FIELD)
        elif scores.glare_on_card > t.max_glare_on_card:
            reasons.append(Reason.GLARE)
    if scores.sharpness < t.min_sharpness:
        reasons.append(Reason.BLURRY)
    if scores.moire > t.max_moire or scores.in_screen_frame:
        reasons.append(Reason.RECAPTURE_SUSPECTED)
    if scores.colour_spread < t.min_colour_spread and scores.brightness >= t.min_brightness:
        reasons.append(Reason.PHOTOCOPY_SUSPECTED)
    return QualityReport(scores, tuple(reasons))


def marginal_reasons(scores: QualityScores, thresholds: QualityThresholds = QualityThresholds()) -> tuple[Reason, ...]:
    """Capture problems at the marginal bounds: likely causes when a found card does not read."""
    t = thresholds
    reasons: list[Reason] = []
    if scores.brightness < t.marginal_brightness:
        reasons.append(Reason.TOO_DARK)
    elif scores.clipped > t.marginal_clipped:
        reasons.append(Reason.OVEREXPOSED)
    if scores.sharpness < t.marginal_sharpness:
        reasons.append(Reason.BLURRY)
    return tuple(reasons)


def check_frame(
    frame: np.ndarray, thresholds: QualityThresholds = QualityThresholds()
) -> tuple[CardDetection, QualityReport]:
    """The live framing check for one camera frame: find the card quickly and judge it."""
    detection = find_card(frame, thorough=False)
    report = assess(frame, detection, thresholds)
    if report.scores is not None:
        # no reading to fall back on: ask for a better frame at the marginal bounds already
        extra = tuple(r for r in marginal_reasons(report.scores, thresholds) if r not in report.reasons)
        report = QualityReport(report.scores, report.reasons + extra)
    return detection, report
