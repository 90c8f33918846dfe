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


def _edge_map(small: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    edges = np.zeros(gray.shape, np.uint8)
    for channel in (gray, hsv[:, :, 1]):
        blurred = cv2.GaussianBlur(channel, (5, 5), 0)
        median = float(np.median(blurred))
        lo, hi = max(10, 0.5 * median), max(30, 1.2 * median)
        edges |= cv2.Canny(blurred, lo, min(hi, 200))
    return cv2.morphologyEx(edges, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))


@dataclass(frozen=True)
class _Candidate:
    quad: np.ndarray
    score: float
    likeness: float
    clipped: bool


def _candidates(small: np.ndarray) -> list[_Candidate]:
    h, w = small.shape[:2]
    frame_area = float(h * w)
    edges = _edge_map(small)
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    found: list[_Candidate] = []
    border = 3
    for contour in contours:
        hull = cv2.convexHull(contour)
        hull_area = cv2.contourArea(hull)
        if hull_area < 0.02 * frame_area or hull_area > 0.98 * frame_area:
            continue
        peri = cv2.arcLength(hull, True)
        quad = None
        for eps in (0.015, 0.025, 0.04):
            approx = cv2.approxPolyDP(hull, eps * peri, True)
            if len(approx) == 4:
                quad = approx.reshape(4, 2).astype(np.float32)
                break
        touches = bool(
            (hull[:, 0, 0] <= border).any()
            or (hull[:, 0, 1] <= border).any()
            or (hull[:, 0, 0] >= w - 1 - border).any()
            or (hull[:, 0, 1] >= h - 1 - border).any()
        )
        if quad is None:
            rect = cv2.minAreaRect(hull)
            box = cv2.boxPoints(rect).astype(np.float32)
            if hull_area / max(cv2.contourArea(box), 1) < 0.85:
                continue
            quad = box
        quad = _order_clockwise(quad)
        if not cv2.isContourConvex(quad.reshape(-1, 1, 2)):
            continue
        quad_area = cv2.contourArea(quad)
        rectangularity = min(hull_area, quad_area) / max(hull_area, quad_area, 1)
        aspect = _quad_aspect(quad)
        if not 1.15 <= aspect <= 2.3 and not touches:
            continue
        aspect_fit = math.exp(-abs(math.log(aspect / CARD_ASPECT)) * 4)
        likeness = rectangularity * aspect_fit
        if likeness < 0.25 and not touches:
            continue
        quad = _refine_with_edges(quad, hull)
        score = likeness * math.sqrt(quad_area / frame_area)
        found.append(_Candidate(quad=quad, score=score, likeness=likeness, clipped=touches))
    found.sort(key=lambda c: c.score, reverse=True)
    return found


def find_card(image: np.ndarray) -> CardDetection:
    """Locate the card's quadrilateral in a BGR photo."""
    h, w = image.shape[:2]
    scale = min(1.0, _DETECT_LONG_SIDE / max(h, w))
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else image
    candidates = _candidates(small)
    if candidates:
        best = candidates[0]
        corners = _canonical_start(best.quad) / scale
        quad = CardQuad(tuple((float(x), float(y)) for x, y in corners))  # type: ignore[arg-type]
        return CardDetection(quad, (w, h), "contour", round(best.likeness, 3), best.clipped)
    aspect = max(w, h) / min(w, h)
    if 1.35 <= aspect <= 1.85:
        # A flat crop of the card itself (scanner output, a mock-up): its edges are the frame's.
        corners = _canonical_start(np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32))
        quad = CardQuad(tuple((float(x), float(y)) for x, y in corners))  # type: ignore[arg-type]
        return CardDetection(quad, (w, h), "full_frame", 0.5, False)
    return CardDetection(None, (w, h), "none", 0.0, False)


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
