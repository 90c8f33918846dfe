"""Find the ID card in a photo, rectify it, and tell front from back.

Owns the geometry: the card's quadrilateral in the input photo (at any rotation, on a
cluttered background), the perspective warp to the canonical 856x540 image (10 px/mm), and
which way up the rectified card is. Reading text is not done here; the upright/side decision
asks an OCR engine's direction classifier for help (``resolve_orientation``).

Corner order everywhere: clockwise starting at the card's own top-left, in the input
image's pixel coordinates.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import cv2
import numpy as np

from models import LAYOUTS_DIR

CARD_MM = (85.6, 54.0)
CARD_ASPECT = CARD_MM[0] / CARD_MM[1]
PX_PER_MM = 10
CANONICAL_SIZE = (round(CARD_MM[0] * PX_PER_MM), round(CARD_MM[1] * PX_PER_MM))  # (856, 540)

# Detection works on a copy whose longer side is this many pixels: enough for corners
# within 2 % of the card diagonal, small enough for a <15 ms quality check on 640x480.
_DETECT_LONG_SIDE = 640
_LIVE_LONG_SIDE = 400

Point = tuple[float, float]


class CardSide(StrEnum):
    FRONT = "front"
    BACK = "back"
    UNKNOWN = "unknown"
    NONE = "none"


@dataclass(frozen=True)
class CardQuad:
    """Four corners in input-image pixels, clockwise from the card's own top-left."""

    corners: tuple[Point, Point, Point, Point]

    @property
    def diagonal(self) -> float:
        (x0, y0), _, (x2, y2), _ = self.corners
        return math.hypot(x2 - x0, y2 - y0)

    @property
    def area(self) -> float:
        return float(cv2.contourArea(np.array(self.corners, np.float32)))

    def side_lengths(self) -> tuple[float, float, float, float]:
        pts = self.corners
        return tuple(math.dist(pts[i], pts[(i + 1) % 4]) for i in range(4))  # type: ignore[return-value]

    def rotated_180(self) -> CardQuad:
        c = self.corners
        return CardQuad((c[2], c[3], c[0], c[1]))

    def as_lists(self) -> list[list[float]]:
        return [[round(x, 1), round(y, 1)] for x, y in self.corners]


@dataclass(frozen=True)
class CardDetection:
    """Where the card is in the frame, as far as geometry can tell."""

    quad: CardQuad | None
    frame_size: tuple[int, int]  # (w, h)
    method: str  # contour | full_frame | none
    card_likeness: float  # 0..1: rectangularity and aspect-ratio agreement
    clipped: bool  # the card runs off the edge of the frame

    @property
    def found(self) -> bool:
        return self.quad is not None

    @property
    def coverage(self) -> float:
        """Card long side as a share of the frame's long side."""
        if self.quad is None:
            return 0.0
        s = self.quad.side_lengths()
        return max((s[0] + s[2]) / 2, (s[1] + s[3]) / 2) / max(self.frame_size)


@dataclass(frozen=True)
class Orientation:
    side: CardSide
    quad: CardQuad  # re-ordered so corner 0 is the card's own top-left
    rectified: np.ndarray  # canonical BGR image of the upright card
    upright_probability: float


@dataclass(frozen=True)
class Layout:
    """A card side's field regions, from models/layouts/*.json, in canonical pixels."""

    side: str
    fields: dict[str, tuple[int, int, int, int]]  # name -> (x, y, w, h)
    lines: dict[str, int]
    regions: dict[str, tuple[int, int, int, int]]
    fixed_text: dict[str, str]


@lru_cache(maxsize=4)
def load_layout(side: str) -> Layout:
    data = json.loads((LAYOUTS_DIR / f"resident_id_{side}.json").read_text(encoding="utf-8"))

    def px(box: list[float]) -> tuple[int, int, int, int]:
        return tuple(round(v * PX_PER_MM) for v in box)  # type: ignore[return-value]

    return Layout(
        side=side,
        fields={k: px(v["value"]) for k, v in data["fields"].items()},
        lines={k: int(v.get("lines", 1)) for k, v in data["fields"].items()},
        regions={k: px(v) for k, v in data.get("regions", {}).items()},
        fixed_text=dict(data.get("fixed_text", {})),
    )


# --------------------------------------------------------------------------- detection


def _order_clockwise(pts: np.ndarray) -> np.ndarray:
    """Clockwise on screen (y down), starting with the point nearest the image's top-left."""
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    pts = pts[np.argsort(angles)]
    start = int(np.argmin(pts[:, 0] + pts[:, 1]))
    return np.roll(pts, -start, axis=0)


def _canonical_start(pts: np.ndarray) -> np.ndarray:
    """Make edge 0->1 a long edge (the card is landscape); keep the more top-left start."""
    sides = [np.linalg.norm(pts[(i + 1) % 4] - pts[i]) for i in range(4)]
    if sides[0] + sides[2] < sides[1] + sides[3]:
        # the long edges are 1->2 and 3->0: start at corner 3 or 1, whichever is more top-left
        candidates = [3, 1]
        start = min(candidates, key=lambda i: pts[i][0] + pts[i][1])
        pts = np.roll(pts, -start, axis=0)
    return pts


def _intersect(l1: tuple[np.ndarray, np.ndarray], l2: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
    (p, r), (q, s) = l1, l2
    denom = r[0] * s[1] - r[1] * s[0]
    if abs(denom) < 1e-9:
        return None
    t = ((q[0] - p[0]) * s[1] - (q[1] - p[1]) * s[0]) / denom
    return p + t * r


def _refine_with_edges(quad: np.ndarray, contour: np.ndarray) -> np.ndarray:
    """Fit a line to the contour points along each side and intersect neighbours.

    approxPolyDP puts vertices on the rounded corners, a little inside the card's true
    (tangent-line) corners; line fits on the straight stretches recover them.
    """
    pts = contour.reshape(-1, 2).astype(np.float32)
    lines = []
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        ab = b - a
        length = float(np.linalg.norm(ab))
        if length < 1:
            return quad
        u = ab / length
        rel = pts - a
        along = rel @ u
        across = np.abs(rel[:, 0] * u[1] - rel[:, 1] * u[0])
        keep = (along > 0.12 * length) & (along < 0.88 * length) & (across < max(3.0, 0.02 * length))
        if keep.sum() < 5:
            return quad
        vx, vy, x0, y0 = cv2.fitLine(pts[keep], cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        lines.append((np.array([x0, y0]), np.array([vx, vy])))
    refined = []
    for i in range(4):
        corner = _intersect(lines[i - 1], lines[i])
        if corner is None or np.linalg.norm(corner - quad[i]) > 0.08 * np.linalg.norm(quad[2] - quad[0]):
            return quad
        refined.append(corner)
    return np.array(refined, np.float32)


def _quad_aspect(quad: np.ndarray) -> float:
    s = [np.linalg.norm(quad[(i + 1) % 4] - quad[i]) for i in range(4)]
    a, b = (s[0] + s[2]) / 2, (s[1] + s[3]) / 2
    return max(a, b) / max(min(a, b), 1e-6)


def _edge_maps(gray: np.ndarray, sat: np.ndarray) -> list[np.ndarray]:
    """Edge maps that between them catch a card on dark, busy and light backgrounds."""
    kernel = np.ones((5, 5), np.uint8)
    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    median = float(np.median(blurred))
    maps = [
        cv2.Canny(blurred, max(10, 0.5 * median), min(200, max(30, 1.2 * median))),
        # light card on a light desk: only a faint edge and a soft shadow separate them
        cv2.Canny(cv2.GaussianBlur(gray, (7, 7), 0), 8, 24),
        cv2.Canny(cv2.GaussianBlur(sat, (5, 5), 0), 15, 45),
    ]
    return [cv2.morphologyEx(m, cv2.MORPH_CLOSE, kernel) for m in maps]


def _whiteness_mask(hsv: np.ndarray) -> np.ndarray:
    """The card is light and nearly colourless; on dark or coloured desks that alone finds it."""
    score = cv2.subtract(hsv[:, :, 2], hsv[:, :, 1])
    _, mask = cv2.threshold(cv2.GaussianBlur(score, (5, 5), 0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))


@dataclass(frozen=True)
class _Candidate:
    quad: np.ndarray
    score: float
    likeness: float
    clipped: bool
    agreement: float = 0.0


def _layout_masks(size: tuple[int, int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(expected-print, expected-blank) masks for front and back, upright and upside down."""
    w, h = size
    out = []
    for side in ("front", "back"):
        layout = load_layout(side)
        printed = np.zeros((h, w), bool)
        boxes = list(layout.fields.values()) + [box for name, box in layout.regions.items() if name != "photo"]
        sx, sy = w / CANONICAL_SIZE[0], h / CANONICAL_SIZE[1]
        for x, y, bw, bh in boxes:
            printed[round(y * sy) : round((y + bh) * sy), round(x * sx) : round((x + bw) * sx)] = True
        blank = ~printed
        for x, y, bw, bh in layout.regions.values():  # photo/emblem are neither print nor blank
            blank[round(y * sy) : round((y + bh) * sy), round(x * sx) : round((x + bw) * sx)] = False
        out.append((printed, blank))
        out.append((printed[::-1, ::-1], blank[::-1, ::-1]))
    return out


_VERIFY_SIZE = (172, 108)  # 2 px/mm: enough to see text lines, cheap to warp many candidates


def layout_agreement(gray_card: np.ndarray) -> float:
    """How well a rectified candidate's dark print falls where a card layout puts it (-1..1)."""
    small = cv2.resize(gray_card, _VERIFY_SIZE, interpolation=cv2.INTER_AREA)
    ink = cv2.adaptiveThreshold(small, 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 11, 12).astype(bool)
    best = -1.0
    for printed, blank in _LAYOUT_MASKS:
        in_print, in_blank = float(ink[printed].mean()), float(ink[blank].mean())
        best = max(best, (in_print - in_blank) / max(in_print + in_blank, 1e-3))
    return best


_LAYOUT_MASKS = _layout_masks(_VERIFY_SIZE)


def _quad_from_hull(hull: np.ndarray) -> np.ndarray | None:
    peri = cv2.arcLength(hull, True)
    for eps in (0.015, 0.025, 0.04):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4:
            return approx.reshape(4, 2).astype(np.float32)
    hull_area = cv2.contourArea(hull)
    box = cv2.boxPoints(cv2.minAreaRect(hull)).astype(np.float32)
    if hull_area / max(cv2.contourArea(box), 1) < 0.85:
        return None
    return box


def _candidates(small: np.ndarray, thorough: bool = True, min_agreement: float = 0.23) -> list[_Candidate]:
    h, w = small.shape[:2]
    frame_area = float(h * w)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    contours: list[np.ndarray] = []
    for edges in _edge_maps(gray, hsv[:, :, 1]):
        contours.extend(cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)[0])
    contours.extend(cv2.findContours(_whiteness_mask(hsv), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[0])
    border = 3
    geometric: list[tuple[float, np.ndarray, np.ndarray, float, bool]] = []
    for contour in contours:
        _, _, bw, bh = cv2.boundingRect(contour)
        if bw * bh < 0.02 * frame_area:  # cheap reject before the hull: most contours are glyphs
            continue
        hull = cv2.convexHull(contour)
        hull_area = cv2.contourArea(hull)
        if hull_area < 0.02 * frame_area or hull_area > 0.97 * frame_area:
            continue
        quad = _quad_from_hull(hull)
        if quad is None:
            continue
        quad = _order_clockwise(quad)
        if not cv2.isContourConvex(quad.reshape(-1, 1, 2)):
            continue
        touches = bool(
            (hull[:, 0, 0] <= border).any()
            or (hull[:, 0, 1] <= border).any()
            or (hull[:, 0, 0] >= w - 1 - border).any()
            or (hull[:, 0, 1] >= h - 1 - border).any()
        )
        quad_area = cv2.contourArea(quad)
        rectangularity = min(hull_area, quad_area) / max(hull_area, quad_area, 1)
        aspect = _quad_aspect(quad)
        # up to 3.2: a card tilted ~50 degrees away still has to be found (and called tilted)
        if not touches and not 1.2 <= aspect <= 3.2:
            continue
        aspect_fit = 1.0 if touches else math.exp(-abs(math.log(aspect / CARD_ASPECT)) * 2)
        likeness = rectangularity * aspect_fit
        if likeness < 0.3:
            continue
        geometric.append((likeness * math.sqrt(quad_area / frame_area), quad, contour, likeness, touches))
    geometric.sort(key=lambda g: g[0], reverse=True)

    found: list[_Candidate] = []
    seen: list[np.ndarray] = []
    for _, quad, contour, likeness, touches in geometric:
        if any(np.abs(quad - other).max() < 0.02 * max(w, h) for other in seen):
            continue
        seen.append(quad)
        if len(seen) > 8:
            break
        candidate = _verify(gray, _refine_with_edges(quad, contour), likeness, touches, min_agreement)
        if candidate is not None:
            found.append(candidate)
    if thorough and not any(c.agreement >= 0.3 and not c.clipped for c in found):
        # A card on paper or on a light desk: its outline rarely closes into one contour
        # (print touches it, the edge fades), but its four sides are still straight lines.
        # Four lines can also frame a block of printed paper, so these need a card's aspect
        # and a clear layout match: cards found this way scored 0.43-0.68, paper <= 0.37.
        for quad, likeness in _line_quads(gray):
            if likeness < 0.85:
                continue
            candidate = _verify(gray, quad, likeness, False, min_agreement)
            if candidate is not None and candidate.agreement >= max(0.4, min_agreement):
                found.append(candidate)
    found.sort(key=lambda c: c.score, reverse=True)
    return found


_VERIFY_DST = np.array(
    [[0, 0], [_VERIFY_SIZE[0] - 1, 0], [_VERIFY_SIZE[0] - 1, _VERIFY_SIZE[1] - 1], [0, _VERIFY_SIZE[1] - 1]],
    np.float32,
)


def _verify(
    gray: np.ndarray, quad: np.ndarray, likeness: float, touches: bool, min_agreement: float = 0.23
) -> _Candidate | None:
    """Keep a geometric candidate only if print sits inside it where a card layout puts it.

    ``min_agreement`` is the gate on that layout match. The live check keeps the strict
    default; the scan passes a loose one because it verifies every candidate by reading its
    number line, and other card renderings (other fonts, other caption positions) score
    0.15-0.22 on a layout mask drawn from one rendering (../shared/dev-photos).
    """
    warped = cv2.warpPerspective(gray, cv2.getPerspectiveTransform(_canonical_start(quad), _VERIFY_DST), _VERIFY_SIZE)
    agreement = layout_agreement(warped)
    area_share = cv2.contourArea(quad) / float(gray.shape[0] * gray.shape[1])
    # Generated set: clean cards score 0.35-0.45 and partly framed ones 0.26-0.6, while a
    # sheet of printed paper on the desk scores 0.19-0.31 and usually runs off the frame
    # covering half of it or more, which a card held that close rarely does.
    if agreement < min_agreement or (touches and area_share > 0.45 and agreement < 0.4):
        return None
    if _max_corner_skew(quad) > 40:  # even a card tilted 55 degrees keeps its corners near square
        return None
    # a card that runs off the frame is still the card, but a whole-frame texture is not
    score = agreement * likeness * math.sqrt(area_share) * (0.6 if touches else 1.0)
    return _Candidate(quad=quad, score=score, likeness=likeness, clipped=touches, agreement=agreement)


def _line_quads(gray: np.ndarray, max_quads: int = 40) -> list[tuple[np.ndarray, float]]:
    """Quadrilaterals bounded by two pairs of long straight edges, most card-like first."""
    h, w = gray.shape
    edges = cv2.Canny(cv2.GaussianBlur(gray, (5, 5), 0), 15, 45)
    segments = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=40, minLineLength=0.12 * min(h, w), maxLineGap=10)
    if segments is None:
        return []
    segments = segments.reshape(-1, 4).astype(np.float64)
    lengths = np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1])
    lines: list[tuple[float, float, np.ndarray, np.ndarray]] = []  # theta, rho, point, direction
    for x1, y1, x2, y2 in segments[np.argsort(-lengths)[:60]]:
        theta = math.atan2(y2 - y1, x2 - x1) % math.pi
        normal = np.array([-math.sin(theta), math.cos(theta)])
        rho = float(np.dot([x1, y1], normal))
        if any(_angle_gap(theta, t) < math.radians(3) and abs(rho - r) < 6 for t, r, _, _ in lines):
            continue
        lines.append((theta, rho, np.array([x1, y1]), np.array([math.cos(theta), math.sin(theta)])))
        if len(lines) >= 20:
            break
    min_gap = 0.08 * min(h, w)
    pairs = [
        (i, j)
        for i in range(len(lines))
        for j in range(i + 1, len(lines))
        if _angle_gap(lines[i][0], lines[j][0]) < math.radians(14) and abs(lines[i][1] - lines[j][1]) > min_gap
    ]
    gaps = {pair: abs(lines[pair[0]][1] - lines[pair[1]][1]) for pair in pairs}
    quads: list[tuple[float, np.ndarray, float]] = []
    for pi, (a, b) in enumerate(pairs):
        for c, d in pairs[pi + 1 :]:
            # the two pairs' separations are the card's width and height: skip other shapes early
            ratio = gaps[(a, b)] / gaps[(c, d)]
            if not (1.15 <= ratio <= 3.3 or 1 / 3.3 <= ratio <= 1 / 1.15):
                continue
            if _angle_gap(lines[a][0], lines[c][0]) < math.radians(55):
                continue
            corners = []
            for first, second in ((a, c), (c, b), (b, d), (d, a)):
                point = _intersect(lines[first][2:], lines[second][2:])
                if point is None:
                    break
                corners.append(point)
            if len(corners) != 4:
                continue
            pts = np.array(corners, np.float32)
            if (
                (pts[:, 0] < -2).any()
                or (pts[:, 1] < -2).any()
                or (pts[:, 0] > w + 1).any()
                or (pts[:, 1] > h + 1).any()
            ):
                continue
            pts = _order_clockwise(pts)
            if not cv2.isContourConvex(pts.reshape(-1, 1, 2)):
                continue
            area = cv2.contourArea(pts)
            aspect = _quad_aspect(pts)
            if area < 0.02 * h * w or not 1.2 <= aspect <= 3.2:
                continue
            likeness = math.exp(-abs(math.log(aspect / CARD_ASPECT)) * 2)
            quads.append((likeness * math.sqrt(area / (h * w)), pts, likeness))
    quads.sort(key=lambda q: q[0], reverse=True)
    return [(pts, likeness) for _, pts, likeness in quads[:max_quads]]


def _max_corner_skew(quad: np.ndarray) -> float:
    worst = 0.0
    for i in range(4):
        v1, v2 = quad[i - 1] - quad[i], quad[(i + 1) % 4] - quad[i]
        cos = float(np.dot(v1, v2) / (np.linalg.norm(v1) * np.linalg.norm(v2) + 1e-9))
        worst = max(worst, abs(90.0 - math.degrees(math.acos(max(-1.0, min(1.0, cos))))))
    return worst


def _angle_gap(a: float, b: float) -> float:
    d = abs(a - b) % math.pi
    return min(d, math.pi - d)


def card_candidates(image: np.ndarray, min_agreement: float, limit: int = 6) -> list[CardDetection]:
    """Card-shaped quadrilaterals in a BGR photo, most card-like first, for a caller that
    verifies each one by reading it (``pipelines.locate``)."""
    h, w = image.shape[:2]
    scale = min(1.0, _DETECT_LONG_SIDE / max(h, w))
    small = (
        cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else image
    )
    found = []
    for candidate in _candidates(small, True, min_agreement)[:limit]:
        corners = _canonical_start(candidate.quad) / scale
        quad = CardQuad(tuple((float(x), float(y)) for x, y in corners))  # type: ignore[arg-type]
        found.append(CardDetection(quad, (w, h), "contour", round(candidate.likeness, 3), candidate.clipped))
    return found


def full_frame_detection(size: tuple[int, int]) -> CardDetection | None:
    """The frame itself as the card (an album upload cropped to the card), when card-shaped."""
    w, h = size
    if not 1.35 <= max(w, h) / min(w, h) <= 1.85:
        return None
    corners = _canonical_start(np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32))
    quad = CardQuad(tuple((float(x), float(y)) for x, y in corners))  # type: ignore[arg-type]
    return CardDetection(quad, (w, h), "full_frame", 0.5, False)


def find_card(image: np.ndarray, thorough: bool = True, exclude: CardQuad | None = None) -> CardDetection:
    """Locate the card's quadrilateral in a BGR photo.

    ``thorough=False`` is the live framing check: a smaller working copy and no straight-line
    search for cards whose outline does not close (that search costs up to ~60 ms).
    ``exclude``: find another card than this one (both sides copied onto one page).
    """
    h, w = image.shape[:2]
    scale = min(1.0, (_DETECT_LONG_SIDE if thorough else _LIVE_LONG_SIDE) / max(h, w))
    small = (
        cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else image
    )
    candidates = _candidates(small, thorough)
    if exclude is not None:
        taken = np.array(exclude.corners, np.float32) * scale
        candidates = [c for c in candidates if cv2.pointPolygonTest(taken, c.quad.mean(axis=0).tolist(), False) < 0]
    if candidates:
        best = candidates[0]
        corners = _canonical_start(best.quad) / scale
        quad = CardQuad(tuple((float(x), float(y)) for x, y in corners))  # type: ignore[arg-type]
        return CardDetection(quad, (w, h), "contour", round(best.likeness, 3), best.clipped)
    # A flat crop of the card itself (scanner output, a mock-up): its edges are the frame's.
    whole = full_frame_detection((w, h)) if exclude is None else None
    return whole or CardDetection(None, (w, h), "none", 0.0, False)


def snap_to_edges(image: np.ndarray, quad: CardQuad, band: float = 0.06) -> CardQuad:
    """Move each side of an approximately placed quad onto the straight edge right next to it.

    For placements inferred from text (``pipelines.locate``), which ignore perspective: within
    a band of +-6 % of the diagonal around each side, the card's own edge is a long straight
    run of edge pixels whose gradient points across the side. Text lines and paper edges run
    parallel too, so offsets far from the placement are discounted (a Gaussian prior of
    2.5 % of the diagonal): the placement is usually within a few millimetres. A side
    without such support keeps its position.
    """
    h, w = image.shape[:2]
    scale = min(1.0, _DETECT_LONG_SIDE / max(h, w))
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    gray = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    edges = cv2.Canny(gray, 10, 30)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    ys, xs = np.nonzero(edges)
    points = np.column_stack([xs, ys]).astype(np.float32)
    grads = np.column_stack([gx[ys, xs], gy[ys, xs]])
    grads /= np.linalg.norm(grads, axis=1, keepdims=True) + 1e-6
    corners = np.array(quad.corners, np.float32) * scale
    diagonal = float(np.linalg.norm(corners[2] - corners[0]))
    sigma = 0.025 * diagonal
    lines = []
    for i in range(4):
        a, b = corners[i], corners[(i + 1) % 4]
        length = float(np.linalg.norm(b - a))
        u = (b - a) / max(length, 1e-6)
        normal = np.array([-u[1], u[0]], np.float32)
        rel = points - a
        along, across = rel @ u, rel @ normal
        near = (
            (along > 0.1 * length)
            & (along < 0.9 * length)
            & (np.abs(across) < band * diagonal)
            & (np.abs(grads @ normal) > 0.9)  # the edge runs along the side (within ~25 degrees)
        )
        line = (a, u)
        if near.sum() > 0.3 * length:
            offsets = np.round(across[near]).astype(int)
            values, counts = np.unique(offsets, return_counts=True)
            support = np.array([counts[np.abs(values - v) <= 1].sum() for v in values], np.float64)
            peak = values[np.argmax(support * np.exp(-0.5 * (values / sigma) ** 2))]
            chosen = near & (np.abs(across - peak) <= 2)
            if chosen.sum() > 0.35 * length:
                vx, vy, x0, y0 = cv2.fitLine(points[chosen], cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
                line = (np.array([x0, y0]), np.array([vx, vy]))
        lines.append(line)
    snapped = []
    for i in range(4):
        corner = _intersect(lines[i - 1], lines[i])
        if corner is None or np.linalg.norm(corner - corners[i]) > 2 * band * diagonal:
            return quad
        snapped.append((float(corner[0] / scale), float(corner[1] / scale)))
    return CardQuad(tuple(snapped))  # type: ignore[arg-type]


def rectify(image: np.ndarray, quad: CardQuad, size: tuple[int, int] = CANONICAL_SIZE) -> np.ndarray:
    """Warp the card to the canonical landscape image; corner 0 lands top-left."""
    cw, ch = size
    dst = np.array([[0, 0], [cw - 1, 0], [cw - 1, ch - 1], [0, ch - 1]], np.float32)
    matrix = cv2.getPerspectiveTransform(np.array(quad.corners, np.float32), dst)
    return cv2.warpPerspective(image, matrix, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def crop(card: np.ndarray, box: tuple[int, int, int, int], pad: int = 0) -> np.ndarray:
    x, y, w, h = box
    H, W = card.shape[:2]
    return card[max(0, y - pad) : min(H, y + h + pad), max(0, x - pad) : min(W, x + w + pad)]
