"""Find the card with the OCR engine's help: every placement is verified by what it reads.

``pipelines.card`` proposes card-shaped quadrilaterals from edges alone; on a card rendered
differently from our own generator, on strongly coloured cloth, or with a thumb over its
edge, those proposals are either missing or cannot be told from a sheet of paper by shape.
What a card has and paper rarely has is a line of 15-18 digits exactly where the layout puts
the number (the back has its 16-digit validity line in the same place). So:

1. geometric candidates, loosely gated, are tried most card-like first: each is turned
   upright and its number region read; the first that reads as a digit line is the card
   (the common photo: one classifier call and one recognition);
2. then the frame itself, when card-shaped (a flat crop uploaded from an album);
3. otherwise the PP-OCR text detector runs on a small copy of the whole frame (the learned
   detector does not care about background, rotation or occlusion); each long line that
   reads as digits places the card through the layout, in either reading direction; the
   placement is snapped to the card's own edges and verified the same way, and among
   several the one with a valid number and a name where the layout puts it wins.

Nothing here decides anything about the applicant; a placement that is found but does not
read is returned as ``unverified`` so the quality check can still say *why* (blur, glare).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, replace

import cv2
import numpy as np

from pipelines.card import (
    CARD_MM,
    CardDetection,
    CardQuad,
    card_candidates,
    crop,
    find_card,
    full_frame_detection,
    load_layout,
    rectify,
    snap_to_edges,
)
from pipelines.idnumber import validate_id_number
from pipelines.ocr import OcrEngine

# Loose layout gate for geometric candidates (see card._verify): paper blocks and cards of
# other renderings both pass it; reading the number line tells them apart.
_CANDIDATE_MIN_AGREEMENT = 0.05
_MAX_GEOMETRIC_TRIES = 4
# The text detector's working copy: PP-OCR det at 480 px long side finds the number line of
# a card covering a quarter of the frame and costs ~100 ms on one core (320 px: 56 ms but
# misses small cards); RapidOCR's own default would upscale to 736 px short side.
DETECT_LONG_SIDE = 480
# A digit line is at least this many times longer than high (18 digits at ~1:2 per glyph).
_MIN_LINE_ASPECT = 5.0
# Papers under the card can carry a dozen digit lines longer than the card's own; a line
# that does not read as digits costs one recognition pair, so many can be tried.
_MAX_LINES_TRIED = 8
# Where the detector's number line sits on a portrait side, in mm from the card's top-left.
# Measured with the detector at 480 px, boxes mapped through the labelled corners: on the
# 48 clean dev-photos fronts the digits alone span x 26.7 +- 0.5 to 78.5 +- 0.5 at y 47.5;
# caption + digits as one line span 4.1-78.8 there and 4.3-81.8 at y 46 on our own cards,
# whose digits alone (a turned card splits the line) start at 30 (models/layouts).
# Each is (x0, x1, y): renderings differ by a few millimetres, so every one is tried and
# the placement whose number region reads best is kept.
_DIGITS_SPANS_MM = ((26.7, 78.5, 47.5), (30.0, 81.8, 45.8))
_CAPTION_SPANS_MM = ((4.1, 78.8, 47.5), (4.3, 81.8, 46.0))
_CAPTIONS = ("公民身份号码", "公民身份证号码")
# A number region that reads at least this many digits (and nothing but digits) is a card.
_MIN_DIGITS = 15
# Fewer digits than this in the upright read (and a confident classifier): no second read
# of the region turned round.
_FLIP_MIN_DIGITS = 6


@dataclass(frozen=True)
class LocatedCard:
    """A card placement, upright (corner 0 is the card's own top-left), and its rectified image."""

    detection: CardDetection
    card: np.ndarray  # canonical BGR image, upright
    upright_probability: float
    verified: bool  # its number region read as a digit line
    # that read (digits, recogniser score): a valid 18-character number need not be read twice
    number_read: tuple[str, float] | None = None
    # placed from text only: the name line and the sex/ethnicity line as the detector boxed
    # them, read straight from the photo (raw text with captions, score); they do not depend
    # on the placement's accuracy
    name_line: tuple[str, float] | None = None
    sex_line: tuple[str, float] | None = None


def digit_line(raw: str) -> str:
    """The digits (and X) of a number-region read, or '' when the read is not a digit line.

    The back's validity line (``2010.01.01-2030.01.01``) counts too: its separators are dropped.
    """
    text = unicodedata.normalize("NFKC", raw).replace(" ", "")
    for caption in (*_CAPTIONS, "有效期限"):
        text = text.replace(caption, "")
    text = text.lstrip("公民身份证号码有效期限:：")  # a caption's tail caught at the crop's edge
    if not text or not all(ch.isdigit() or ch in "Xx.-—~" for ch in text):
        return ""
    return "".join(ch for ch in text if ch.isdigit() or ch in "Xx").upper()


def _number_read(card: np.ndarray, engine: OcrEngine) -> tuple[str, float]:
    """The digit line in the card's number region ('' when it does not read as one), and its score."""
    return _region_read(card, engine)[:2]


def _region_read(card: np.ndarray, engine: OcrEngine) -> tuple[str, float, int]:
    """The number region's digit line, the read's score, and how many digits the raw read holds."""
    (read,) = engine.recognize([crop(card, load_layout("front").fields["id_number"], pad=10)])
    return digit_line(read.text), read.score, sum(ch.isdigit() for ch in read.text)


def _digit_read(card: np.ndarray, engine: OcrEngine) -> tuple[tuple[str, float] | None, int]:
    """The number region's read when it is a digit line of a card (else None), and the raw digit count."""
    number, score, digits = _region_read(card, engine)
    return ((number, score) if len(number) >= _MIN_DIGITS else None), digits


def _number_evidence(digits: str) -> int:
    """How strongly a digit line says "this is an ID number": 2 valid, 1 well-formed, 0 other.

    Papers under the card carry order numbers of 18-20 digits too; a random digit string
    passes MOD 11-2 one time in eleven, a card's number (read right) always does.
    """
    if len(digits) == 18 and validate_id_number(digits).valid:
        return 2
    return 1 if len(digits) in (17, 18) else 0


def _reads_front(located: LocatedCard) -> bool:
    return located.number_read is not None and len(located.number_read[0]) in (17, 18)


def orient(image: np.ndarray, quad: CardQuad, engine: OcrEngine) -> tuple[CardQuad, np.ndarray, float]:
    """Choose between the two landscape readings of a quad (0 or 180 degrees).

    The direction classifier looks at the two text bands every layout has in the same place
    (the number / validity line at the bottom, the name / title line at the top).
    """
    card = rectify(image, quad)
    front = load_layout("front")
    bands = [crop(card, front.fields["id_number"]), crop(card, front.fields["name"])]
    if hasattr(engine, "classify_orientation"):
        votes = engine.classify_orientation(bands)
        upright = sum(p if angle == 0 else 1.0 - p for angle, p in votes) / len(votes)
    else:  # an engine without a direction classifier: compare reading confidence both ways
        flipped = [cv2.rotate(b, cv2.ROTATE_180) for b in bands]
        res = engine.recognize(bands + flipped)
        upright = 1.0 if sum(r.score for r in res[:2]) >= sum(r.score for r in res[2:]) else 0.0
    if upright < 0.5:
        return quad.rotated_180(), cv2.rotate(card, cv2.ROTATE_180), 1.0 - upright
    return quad, card, upright


def _verified(image: np.ndarray, detection: CardDetection, engine: OcrEngine) -> LocatedCard | None:
    """The placement, upright, when its number region reads as a digit line either way up."""
    assert detection.quad is not None
    quad, card, upright = orient(image, detection.quad, engine)
    read, digits = _digit_read(card, engine)
    if read is not None:
        return LocatedCard(_with_quad(detection, quad), card, upright, True, read)
    # The classifier sees two bands only; a thumb or a stamp over one of them can fool it.
    # An upside-down digit line still reads as many digits (0 1 6 8 9 survive the turn);
    # wood, cloth or a paper's prose does not, and is not worth a second read.
    if digits < _FLIP_MIN_DIGITS and upright >= 0.9:
        return None
    flipped = cv2.rotate(card, cv2.ROTATE_180)
    read, _ = _digit_read(flipped, engine)
    if read is not None:
        return LocatedCard(_with_quad(detection, quad.rotated_180()), flipped, 1.0 - upright, True, read)
    return None


def _with_quad(detection: CardDetection, quad: CardQuad) -> CardDetection:
    # "Partly outside" is a property of the card's corners, not of the outline that found it
    # (a hand holding the card makes that outline run off the frame).
    clipped = detection.clipped and _runs_off(quad, detection.frame_size, tolerance=-0.004)
    return CardDetection(quad, detection.frame_size, detection.method, detection.card_likeness, clipped)


def line_axes(box: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Centre, unit vector along the line's long axis, its length and its height."""
    (cx, cy), (w, h), angle = cv2.minAreaRect(box.astype(np.float32))
    theta = math.radians(angle)
    along = np.array([math.cos(theta), math.sin(theta)])
    if h > w:
        along = np.array([-along[1], along[0]])
        w, h = h, w
    return np.array([cx, cy]), along, float(w), float(h)


def line_crop(image: np.ndarray, centre: np.ndarray, along: np.ndarray, length: float, height: float) -> np.ndarray:
    """The line cut out of the frame and laid horizontal, reading along ``along``."""
    down = np.array([-along[1], along[0]])
    half_l, half_h = length / 2 + 0.6 * height, 0.8 * height
    src = np.array(
        [
            centre - half_l * along - half_h * down,
            centre + half_l * along - half_h * down,
            centre + half_l * along + half_h * down,
            centre - half_l * along + half_h * down,
        ],
        np.float32,
    )
    out_h = 48
    out_w = max(48, round(out_h * (2 * half_l) / max(2 * half_h, 1)))
    dst = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def placements_from_line(
    centre: np.ndarray, along: np.ndarray, length: float, spans: tuple[tuple[float, float, float], ...]
) -> list[CardQuad]:
    """The card placements implied by a number line read in direction ``along``, one per span
    (x0, x1, y in mm) the line may cover; perspective is ignored (edges snap it later)."""
    down = np.array([-along[1], along[0]])
    quads = []
    for x0, x1, y_mm in spans:
        scale = length / (x1 - x0)
        cx = (x0 + x1) / 2
        corners = []
        for x, y in ((0, 0), (CARD_MM[0], 0), CARD_MM, (0, CARD_MM[1])):
            p = centre + (x - cx) * scale * along + (y - y_mm) * scale * down
            corners.append((float(p[0]), float(p[1])))
        quads.append(CardQuad(tuple(corners)))  # type: ignore[arg-type]
    return quads


def _span_families(with_caption: bool) -> tuple[tuple[tuple[float, float, float], ...], ...]:
    return (_CAPTION_SPANS_MM, _DIGITS_SPANS_MM) if with_caption else (_DIGITS_SPANS_MM, _CAPTION_SPANS_MM)


def _placed(image: np.ndarray, quad: CardQuad, engine: OcrEngine) -> LocatedCard | None:
    """A placement snapped to the card's edges (or as placed), when its number region reads."""
    h, w = image.shape[:2]
    snapped = snap_to_edges(image, quad)
    for candidate in (snapped, quad) if snapped != quad else (quad,):
        card = rectify(image, candidate)
        number, score = _number_read(card, engine)
        if len(number) >= _MIN_DIGITS:
            detection = CardDetection(candidate, (w, h), "text", 0.5, _runs_off(candidate, (w, h)))
            return LocatedCard(detection, card, 1.0, True, (number, score))
    return None


def locate_by_text(image: np.ndarray, engine: OcrEngine) -> LocatedCard | None:
    """Place the card from the number line the text detector finds (any rotation, any background)."""
    h, w = image.shape[:2]
    scale = min(1.0, DETECT_LONG_SIDE / max(h, w))
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    boxes = [line_axes(np.asarray(box) / scale) for box in engine.detect_lines(small)]
    lines = [
        (length, centre, along, height)
        for centre, along, length, height in boxes
        if length >= _MIN_LINE_ASPECT * max(height, 1.0) and length >= 0.06 * max(h, w)
    ]
    lines.sort(key=lambda line: line[0], reverse=True)
    best: tuple[tuple[int, bool, float], LocatedCard] | None = None
    for length, centre, along, height in lines[:_MAX_LINES_TRIED]:
        reads = engine.recognize(
            [line_crop(image, centre, along, length, height), line_crop(image, centre, -along, length, height)]
        )
        for direction, read in zip((along, -along), reads, strict=True):
            digits = digit_line(read.text)
            if len(digits) < _MIN_DIGITS:
                continue
            # the box may hold the whole caption, or only its last character or two (the
            # detector splits 公民身份号码 unpredictably): the likelier family of spans first
            with_caption = sum(ch in read.text for ch in "公民身份号码") >= 4
            for family in _span_families(with_caption):
                # within a family the placement whose number reads best is the best aligned
                placed = []
                for quad in placements_from_line(centre, direction, length, family):
                    located = _placed(image, quad, engine)
                    if located is not None:
                        placed.append(located)
                if not placed:
                    continue
                located = max(placed, key=lambda p: (_number_evidence(p.number_read[0]), p.number_read[1]))
                evidence = _number_evidence(located.number_read[0])
                named = False
                if evidence:
                    # papers carry 18-digit strings too, some of them valid numbers; a card
                    # also has a name where the layout puts it
                    located = _with_name_line(image, located, boxes, engine)
                    named = located.name_line is not None and _looks_like_name(located.name_line[0])
                if evidence == 2 and named:
                    return located  # a valid number and a name: the other lines are paper
                rank = (evidence, named, located.number_read[1])
                if best is None or rank > best[0]:
                    best = (rank, located)
    return best[1] if best else None


def _looks_like_name(raw: str) -> bool:
    """A name line's read, caption stripped: 2-20 CJK characters (middle dots allowed)."""
    text = unicodedata.normalize("NFKC", raw).replace(" ", "")
    for caption in ("姓名", "姓", "名"):
        text = text.removeprefix(caption)
    return 2 <= len(text) <= 20 and all(ch == "·" or "\u3400" <= ch <= "\u9fff" for ch in text)


# The lines as the detector boxes them, in mm on the card: the name line (caption 姓名 and
# the name) is centred 8-10 mm down and starts at the caption column 4-5 mm from the left;
# the sex/ethnicity line 15-16 mm down (both generators and the specimens).
_NAME_LINE_Y_MM = (4.0, 12.5)
_SEX_LINE_Y_MM = (12.5, 18.5)
_CAPTION_MAX_X0_MM = 12.0
_VALUE_COLUMN_MAX_X_MM = 54.0  # the portrait starts at 55.5 mm


def _with_name_line(
    image: np.ndarray, located: LocatedCard, boxes: list[tuple[np.ndarray, np.ndarray, float, float]], engine: OcrEngine
) -> LocatedCard:
    """Add the name and sex/ethnicity lines read straight from the photo to a text placement."""
    assert located.detection.quad is not None
    corners = np.array(located.detection.quad.corners, np.float32)
    to_mm = cv2.getPerspectiveTransform(
        corners, np.array([[0, 0], [CARD_MM[0], 0], [CARD_MM[0], CARD_MM[1]], [0, CARD_MM[1]]], np.float32)
    )
    card_x = corners[1] - corners[0]
    name_box = None
    sex_boxes = []
    for centre, along, length, height in boxes:
        direction = along if float(np.dot(along, card_x)) >= 0 else -along
        ends = np.array([[centre - direction * length / 2, centre]], np.float32)
        start_mm, centre_mm = cv2.perspectiveTransform(ends, to_mm)[0]
        box = (centre, direction, length, height)
        in_column = start_mm[0] <= _VALUE_COLUMN_MAX_X_MM
        if _NAME_LINE_Y_MM[0] <= centre_mm[1] < _NAME_LINE_Y_MM[1] and start_mm[0] <= _CAPTION_MAX_X0_MM:
            if name_box is None or length > name_box[2]:
                name_box = box
        elif _SEX_LINE_Y_MM[0] <= centre_mm[1] < _SEX_LINE_Y_MM[1] and in_column:
            sex_boxes.append((float(start_mm[0]), box))
    sex_boxes.sort(key=lambda item: item[0])
    crops = [line_crop(image, *box) for box in ([name_box] if name_box else []) + [b for _, b in sex_boxes]]
    if not crops:
        return located
    reads = engine.recognize(crops)
    name_line = (reads[0].text, reads[0].score) if name_box else None
    sex_reads = reads[1:] if name_box else reads
    sex_line = None
    if sex_reads:
        sex_line = ("".join(r.text for r in sex_reads), min(r.score for r in sex_reads))
    return replace(located, name_line=name_line, sex_line=sex_line)


def _runs_off(quad: CardQuad, size: tuple[int, int], tolerance: float = 0.02) -> bool:
    w, h = size
    corners = np.array(quad.corners)
    margin = tolerance * max(w, h)
    return bool(
        (corners[:, 0] < -margin).any()
        or (corners[:, 1] < -margin).any()
        or (corners[:, 0] > w + margin).any()
        or (corners[:, 1] > h + margin).any()
    )


def locate_card(image: np.ndarray, engine: OcrEngine, use_text_detector: bool = True) -> LocatedCard | None:
    """The card in a BGR photo, verified by reading when at all possible.

    Returns an unverified placement (the most card-like outline) when nothing reads, so the
    caller can still judge the capture; ``None`` when there is no card-shaped thing at all.
    """
    h, w = image.shape[:2]
    # A copy or a mock-up can show both sides: a back (its 16-digit validity line) is kept
    # while the search goes on for a front (17-18 digits), which the scan prefers.
    back: LocatedCard | None = None
    candidates = card_candidates(image, _CANDIDATE_MIN_AGREEMENT, limit=_MAX_GEOMETRIC_TRIES)
    whole = full_frame_detection((w, h))  # a flat crop (an album upload): the frame's edges are the card's
    for detection in [*candidates, *([whole] if whole is not None else [])]:
        located = _verified(image, detection, engine)
        if located is not None:
            if _reads_front(located):
                return located
            back = back or located
    if use_text_detector and hasattr(engine, "detect_lines"):
        located = locate_by_text(image, engine)
        if located is not None and (back is None or _reads_front(located)):
            return located
    if back is not None:
        return back
    # Nothing reads: the strict geometric finder's outline (a card-like print layout, or the
    # frame) still lets the quality check say what is wrong with the capture.
    fallback = find_card(image)
    if fallback.quad is None:
        return None
    return oriented(image, fallback, engine)


def oriented(image: np.ndarray, detection: CardDetection, engine: OcrEngine) -> LocatedCard:
    """A placement known from elsewhere (the live check), turned upright, not verified."""
    assert detection.quad is not None
    quad, card, upright = orient(image, detection.quad, engine)
    return LocatedCard(_with_quad(detection, quad), card, upright, False)
