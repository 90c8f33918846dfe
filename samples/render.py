"""Flat renders of synthetic resident ID cards (front and back), in card pixel coordinates.

Owns how a card looks before it is photographed: the pale guilloche background, the
captions and values placed inside the layout boxes of ``models/layouts`` (the boxes the
OCR reader crops), the synthetic portrait, the back's emblem and titles, rounded corners.

Text placement the reader can rely on (all in millimetres on the 85.6 x 54 mm card):
values start at the value box's left edge and are centred vertically in the box on the
ink of a full-width character; the address is top-aligned in 4.2 mm line slots (wrapped at
11 full-width characters, at most 3 lines); a value wider than its box is squeezed
horizontally to fit.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from models import LAYOUTS_DIR
from samples import fonts
from samples.identity import Identity, address_lines

CARD_MM = (85.6, 54.0)
CORNER_RADIUS_MM = 3.18  # ISO/IEC 7810 ID-1

# Font em sizes in mm. With WenQuanYi Zen Hei a full-width glyph's ink is ~0.9 em tall,
# with DejaVu Sans Mono Bold a digit's ink is ~0.75 em tall.
NAME_EM_MM = 4.2  # name ink ~3.8 mm
VALUE_EM_MM = 3.4  # other values ink ~3.1 mm; 11 full-width characters per 37.5 mm address line
NUMBER_EM_MM = 4.8  # ID number digits ~3.6 mm tall, 18 characters ~52 mm wide
LABEL_EM_MM = 3.0
TITLE_COUNTRY_EM_MM = 4.4
TITLE_DOCUMENT_EM_MM = 7.2
ADDRESS_LINE_PITCH_MM = 4.2

VALUE_RGB = (24, 24, 26)
LABEL_RGB = (62, 128, 190)


@dataclass(frozen=True)
class Box:
    """[x, y, w, h] in millimetres from the card's top-left corner."""

    x: float
    y: float
    w: float
    h: float

    def px(self, px_per_mm: float) -> tuple[float, float, float, float]:
        return (self.x * px_per_mm, self.y * px_per_mm, self.w * px_per_mm, self.h * px_per_mm)

    def corners_mm(self) -> list[tuple[float, float]]:
        return [
            (self.x, self.y),
            (self.x + self.w, self.y),
            (self.x + self.w, self.y + self.h),
            (self.x, self.y + self.h),
        ]


@dataclass(frozen=True)
class FieldLayout:
    label: str
    label_box: Box
    value: Box
    lines: int


@dataclass(frozen=True)
class CardLayout:
    side: str
    fields: dict[str, FieldLayout]
    regions: dict[str, Box]
    fixed_text: dict[str, str]


@lru_cache(maxsize=2)
def load_layout(side: str) -> CardLayout:
    data = json.loads((LAYOUTS_DIR / f"resident_id_{side}.json").read_text(encoding="utf-8"))
    return CardLayout(
        side=side,
        fields={
            key: FieldLayout(f["label"], Box(*f["label_box"]), Box(*f["value"]), int(f.get("lines", 1)))
            for key, f in data["fields"].items()
        },
        regions={key: Box(*box) for key, box in data.get("regions", {}).items()},
        fixed_text=dict(data.get("fixed_text", {})),
    )


def card_size_px(px_per_mm: float) -> tuple[int, int]:
    return round(CARD_MM[0] * px_per_mm), round(CARD_MM[1] * px_per_mm)


def card_alpha(px_per_mm: float) -> np.ndarray:
    """Float mask (1 inside the card, 0 outside its rounded corners), anti-aliased."""
    width, height = card_size_px(px_per_mm)
    scale = 4
    big = Image.new("L", (width * scale, height * scale), 0)
    radius = CORNER_RADIUS_MM * px_per_mm * scale
    ImageDraw.Draw(big).rounded_rectangle((0, 0, width * scale - 1, height * scale - 1), radius, fill=255)
    return np.asarray(big.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32) / 255.0


def format_birth(identity: Identity) -> str:
    b = identity.birth
    return f"{b.year} 年 {b.month} 月 {b.day} 日"


def format_validity(identity: Identity) -> str:
    start = identity.valid_from.strftime("%Y.%m.%d")
    end = identity.valid_until.strftime("%Y.%m.%d") if identity.valid_until else "长期"
    return f"{start}-{end}"


# --- drawing helpers -------------------------------------------------------------------


def _ink_centre(font: ImageFont.FreeTypeFont, reference: str) -> float:
    """Vertical centre of the reference text's ink relative to the baseline (negative = above)."""
    _x0, y0, _x1, y1 = font.getbbox(reference, anchor="ls")
    return (y0 + y1) / 2


def _draw_text(
    canvas: Image.Image,
    text: str,
    font: ImageFont.FreeTypeFont,
    left: float,
    centre_y: float,
    rgb: tuple[int, int, int],
    *,
    max_width: float | None = None,
    reference: str = "国",
) -> None:
    """Draw text with its left edge at ``left`` and the reference ink centred on ``centre_y``."""
    width = font.getlength(text)
    ascent, descent = font.getmetrics()
    pad = 4
    mask = Image.new("L", (math.ceil(width) + 2 * pad, ascent + descent + 2 * pad), 0)
    ImageDraw.Draw(mask).text((pad, pad + ascent), text, font=font, fill=255, anchor="ls")
    if max_width is not None and width > max_width:
        squeezed = max(1, round(mask.width * max_width / width))
        mask = mask.resize((squeezed, mask.height), Image.Resampling.LANCZOS)
        pad_x = pad * max_width / width
    else:
        pad_x = pad
    baseline = centre_y - _ink_centre(font, reference)
    x = round(left - pad_x)
    y = round(baseline - ascent - pad)
    canvas.paste(Image.new("RGB", mask.size, rgb), (x, y), mask)


def _draw_justified(
    canvas: Image.Image, text: str, font: ImageFont.FreeTypeFont, box: tuple[float, float, float, float], rgb
) -> None:
    """Spread the characters evenly across the box width (how the card prints its captions)."""
    chars = [c for c in text if not c.isspace()]
    x, y, w, h = box
    widths = [font.getlength(c) for c in chars]
    gap = (w - sum(widths)) / (len(chars) - 1) if len(chars) > 1 else 0.0
    gap = max(gap, 0.0)
    cursor = x
    for ch, cw in zip(chars, widths, strict=True):
        _draw_text(canvas, ch, font, cursor, y + h / 2, rgb)
        cursor += cw + gap


def _jitter_rgb(rng: random.Random, rgb: tuple[int, int, int], amount: int) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.randint(-amount, amount), 0, 255)) for c in rgb)  # type: ignore[return-value]


# --- background ------------------------------------------------------------------------


def _guilloche_background(rng: random.Random, width: int, height: int, px_per_mm: float, side: str) -> np.ndarray:
    """Pale card stock with fine wave-line families and a rosette, as float RGB in [0, 255]."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / px_per_mm  # millimetres
    base = np.array([244, 245, 242], np.float32) + np.array([rng.uniform(-4, 2) for _ in range(3)], np.float32)
    img = np.broadcast_to(base, (height, width, 3)).copy()

    # A soft tint band: pinkish-yellow towards the bottom on the front, blue on the back.
    tint = np.array([250, 228, 226] if side == "front" else [222, 236, 250], np.float32)
    band = np.clip((yy / CARD_MM[1] - 0.35) * 1.2, 0, 1)[..., None] * rng.uniform(0.35, 0.6)
    img = img * (1 - band) + tint * band

    blue = np.array([120, 160, 215], np.float32)
    pink = np.array([225, 150, 170], np.float32)
    for colour, strength in ((blue, rng.uniform(0.16, 0.24)), (pink, rng.uniform(0.10, 0.16)), (blue, 0.12)):
        spacing = rng.uniform(0.9, 1.6)
        amplitude = rng.uniform(1.5, 5.0)
        wavelength = rng.uniform(14, 30)
        phase = rng.uniform(0, 2 * math.pi)
        tilt = rng.uniform(-0.2, 0.2)
        phase_field = (yy + tilt * xx - amplitude * np.sin(2 * math.pi * xx / wavelength + phase)) / spacing
        lines = ((1 + np.cos(2 * math.pi * phase_field)) / 2) ** 24
        img = img * (1 - strength * lines[..., None]) + colour * (strength * lines[..., None])

    cx, cy = rng.uniform(0.35, 0.65) * CARD_MM[0], rng.uniform(0.3, 0.7) * CARD_MM[1]
    r = np.hypot(xx - cx, yy - cy)
    theta = np.arctan2(yy - cy, xx - cx)
    petals = rng.randint(9, 16)
    rosette = ((1 + np.cos(2 * math.pi * (r + 1.2 * np.sin(petals * theta)) / 1.3)) / 2) ** 20
    fade = np.exp(-((r / rng.uniform(14, 22)) ** 2))
    weight = (0.13 * rosette * fade)[..., None]
    img = img * (1 - weight) + blue * weight
    return img


# --- portrait and emblem ---------------------------------------------------------------


def _portrait(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A greyscale head-and-shoulders silhouette on a light background (no real person)."""
    w, h = size
    s = 3  # supersample for smooth edges
    img = Image.new("RGB", (w * s, h * s), _jitter_rgb(rng, (236, 238, 240), 6))
    d = ImageDraw.Draw(img)
    W, H = w * s, h * s
    cx = W * rng.uniform(0.47, 0.53)
    face_w = W * rng.uniform(0.42, 0.5)
    face_h = face_w * rng.uniform(1.22, 1.36)
    face_top = H * rng.uniform(0.14, 0.2)
    clothes = rng.randint(35, 95)
    skin = rng.randint(150, 200)
    hair = rng.randint(20, 60)
    # shoulders and clothes
    shoulder_top = face_top + face_h * 0.95
    d.ellipse((cx - W * 0.62, shoulder_top, cx + W * 0.62, shoulder_top + H * 0.75), fill=(clothes,) * 3)
    # neck
    neck_w = face_w * 0.42
    d.rectangle(
        (cx - neck_w / 2, face_top + face_h * 0.7, cx + neck_w / 2, shoulder_top + H * 0.05), fill=(skin - 18,) * 3
    )
    d.polygon(
        [
            (cx - neck_w / 2, shoulder_top + H * 0.02),
            (cx + neck_w / 2, shoulder_top + H * 0.02),
            (cx, shoulder_top + H * 0.12),
        ],
        fill=(skin - 18,) * 3,
    )
    # hair behind the face
    hair_extra = face_w * rng.uniform(0.06, 0.2)
    long_hair = rng.random() < 0.4
    d.ellipse(
        (
            cx - face_w / 2 - hair_extra,
            face_top - face_h * 0.12,
            cx + face_w / 2 + hair_extra,
            face_top + face_h * (1.05 if long_hair else 0.62),
        ),
        fill=(hair,) * 3,
    )
    # face and ears
    ear = face_w * 0.12
    d.ellipse(
        (cx - face_w / 2 - ear * 0.6, face_top + face_h * 0.38, cx - face_w / 2 + ear, face_top + face_h * 0.6),
        fill=(skin - 8,) * 3,
    )
    d.ellipse(
        (cx + face_w / 2 - ear, face_top + face_h * 0.38, cx + face_w / 2 + ear * 0.6, face_top + face_h * 0.6),
        fill=(skin - 8,) * 3,
    )
    d.ellipse((cx - face_w / 2, face_top, cx + face_w / 2, face_top + face_h), fill=(skin,) * 3)
    # fringe over the forehead
    d.chord(
        (cx - face_w / 2 - 2, face_top - face_h * 0.1, cx + face_w / 2 + 2, face_top + face_h * 0.45),
        180,
        360,
        fill=(hair,) * 3,
    )
    # eyes, brows, nose, mouth: faint, to read as a face at card scale
    eye_y = face_top + face_h * 0.5
    for side in (-1, 1):
        ex = cx + side * face_w * 0.2
        d.ellipse(
            (ex - face_w * 0.06, eye_y - face_h * 0.025, ex + face_w * 0.06, eye_y + face_h * 0.025),
            fill=(hair + 10,) * 3,
        )
        d.line(
            (ex - face_w * 0.09, eye_y - face_h * 0.08, ex + face_w * 0.08, eye_y - face_h * 0.085),
            fill=(hair + 20,) * 3,
            width=max(1, s * 2),
        )
    d.line(
        (cx, eye_y + face_h * 0.05, cx - face_w * 0.04, eye_y + face_h * 0.18),
        fill=(skin - 45,) * 3,
        width=max(1, s * 2),
    )
    mouth_y = face_top + face_h * 0.8
    d.line((cx - face_w * 0.12, mouth_y, cx + face_w * 0.12, mouth_y), fill=(skin - 60,) * 3, width=max(1, s * 3))
    return img.resize((w, h), Image.Resampling.LANCZOS)


def _star(cx: float, cy: float, r: float, rotation: float = -math.pi / 2) -> list[tuple[float, float]]:
    points = []
    for k in range(10):
        radius = r if k % 2 == 0 else r * 0.4
        angle = rotation + k * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def _emblem(size: tuple[int, int]) -> Image.Image:
    """An emblem-like red and gold roundel (stars over a gate, a ring of rays). RGBA."""
    w, h = size
    s = 4
    W, H = w * s, h * s
    img = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    red, gold, dark_gold = (206, 32, 40, 255), (244, 196, 48, 255), (196, 140, 20, 255)
    cx, cy = W / 2, H / 2
    r = min(W, H) * 0.48
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=gold)
    for k in range(36):  # ring of rays, like ears of grain
        a = 2 * math.pi * k / 36
        d.ellipse(
            (
                cx + 0.86 * r * math.cos(a) - r * 0.07,
                cy + 0.86 * r * math.sin(a) - r * 0.07,
                cx + 0.86 * r * math.cos(a) + r * 0.07,
                cy + 0.86 * r * math.sin(a) + r * 0.07,
            ),
            fill=dark_gold,
        )
    inner = r * 0.74
    d.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=red)
    d.polygon(_star(cx, cy - inner * 0.42, inner * 0.26), fill=gold)
    for k, angle in enumerate((-0.9, -0.35, 0.35, 0.9)):
        sx = cx + inner * 0.48 * math.sin(angle)
        sy = cy - inner * 0.42 - inner * 0.3 * math.cos(angle) + inner * 0.18 * (k in (0, 3))
        d.polygon(_star(sx, sy, inner * 0.09), fill=gold)
    # a gate: roof, body, doors
    gx0, gx1 = cx - inner * 0.55, cx + inner * 0.55
    d.polygon(
        [
            (gx0 - inner * 0.08, cy + inner * 0.12),
            (gx1 + inner * 0.08, cy + inner * 0.12),
            (gx1, cy + inner * 0.02),
            (gx0, cy + inner * 0.02),
        ],
        fill=gold,
    )
    d.rectangle((gx0 + inner * 0.05, cy + inner * 0.12, gx1 - inner * 0.05, cy + inner * 0.42), fill=gold)
    for k in range(5):
        dx = gx0 + inner * 0.15 + k * (gx1 - gx0 - inner * 0.3) / 4
        d.rectangle((dx - inner * 0.035, cy + inner * 0.24, dx + inner * 0.035, cy + inner * 0.42), fill=red)
    d.rectangle((gx0 - inner * 0.1, cy + inner * 0.46, gx1 + inner * 0.1, cy + inner * 0.54), fill=gold)
    return img.resize((w, h), Image.Resampling.LANCZOS)


# --- public renderers ------------------------------------------------------------------


def _blank_card(rng: random.Random, px_per_mm: float, side: str) -> Image.Image:
    width, height = card_size_px(px_per_mm)
    background = _guilloche_background(rng, width, height, px_per_mm, side)
    return Image.fromarray(np.clip(background, 0, 255).astype(np.uint8), "RGB")


def _draw_labels(canvas: Image.Image, layout: CardLayout, px_per_mm: float, rgb: tuple[int, int, int]) -> None:
    label_font = fonts.load(fonts.cjk_font_file(), LABEL_EM_MM * px_per_mm)
    for field in layout.fields.values():
        _draw_justified(canvas, field.label, label_font, field.label_box.px(px_per_mm), rgb)


def _draw_value(canvas: Image.Image, box: Box, text: str, font, px_per_mm: float, reference: str = "国") -> None:
    x, y, w, h = box.px(px_per_mm)
    _draw_text(canvas, text, font, x, y + h / 2, VALUE_RGB, max_width=w, reference=reference)


def _to_bgr(canvas: Image.Image, px_per_mm: float) -> np.ndarray:
    rgb = np.asarray(canvas, dtype=np.float32)
    alpha = card_alpha(px_per_mm)[..., None]
    rgb = rgb * alpha + 255.0 * (1 - alpha)  # outside the rounded corners: white
    return np.ascontiguousarray(rgb[..., ::-1].round().astype(np.uint8))


def render_front(identity: Identity, rng: random.Random, px_per_mm: float = 12) -> np.ndarray:
    """The portrait side as a BGR uint8 image of card_size_px(px_per_mm)."""
    layout = load_layout("front")
    canvas = _blank_card(rng, px_per_mm, "front")
    label_rgb = _jitter_rgb(rng, LABEL_RGB, 8)

    px, py, pw, ph = (round(v) for v in layout.regions["photo"].px(px_per_mm))
    canvas.paste(_portrait(rng, (pw, ph)), (px, py))

    _draw_labels(canvas, layout, px_per_mm, label_rgb)
    cjk = fonts.cjk_font_file()
    value_font = fonts.load(cjk, VALUE_EM_MM * px_per_mm)
    fields = layout.fields
    _draw_value(canvas, fields["name"].value, identity.name, fonts.load(cjk, NAME_EM_MM * px_per_mm), px_per_mm)
    _draw_value(canvas, fields["sex"].value, identity.sex, value_font, px_per_mm)
    _draw_value(canvas, fields["ethnicity"].value, identity.ethnicity, value_font, px_per_mm)
    _draw_value(canvas, fields["birth"].value, format_birth(identity), value_font, px_per_mm)

    ax, ay, aw, _ah = fields["address"].value.px(px_per_mm)
    pitch = ADDRESS_LINE_PITCH_MM * px_per_mm
    top = ay + (fields["address"].value.h - 3 * ADDRESS_LINE_PITCH_MM) / 2 * px_per_mm
    lines = address_lines(identity.address)
    if len(lines) > fields["address"].lines:
        raise ValueError(f"address needs {len(lines)} lines: {identity.address}")
    for i, line in enumerate(lines):
        _draw_text(canvas, line, value_font, ax, top + (i + 0.5) * pitch, VALUE_RGB, max_width=aw)

    number_font = fonts.load(fonts.digit_font_file(), NUMBER_EM_MM * px_per_mm)
    _draw_value(canvas, fields["id_number"].value, identity.id_number, number_font, px_per_mm, reference="0123456789")
    return _to_bgr(canvas, px_per_mm)


def render_back(identity: Identity, rng: random.Random, px_per_mm: float = 12) -> np.ndarray:
    """The emblem side as a BGR uint8 image of card_size_px(px_per_mm)."""
    layout = load_layout("back")
    canvas = _blank_card(rng, px_per_mm, "back")
    label_rgb = _jitter_rgb(rng, LABEL_RGB, 8)

    ex, ey, ew, eh = (round(v) for v in layout.regions["emblem"].px(px_per_mm))
    side = min(ew, eh)
    emblem = _emblem((side, side))
    canvas.paste(emblem, (ex + (ew - side) // 2, ey + (eh - side) // 2), emblem)

    bold = fonts.cjk_bold_font_file()
    for key, em in (("title_country", TITLE_COUNTRY_EM_MM), ("title_document", TITLE_DOCUMENT_EM_MM)):
        x, y, w, h = layout.regions[key].px(px_per_mm)
        inset = 0.04 * w
        _draw_justified(
            canvas,
            layout.fixed_text[key],
            fonts.load(bold, em * px_per_mm),
            (x + inset, y, w - 2 * inset, h),
            VALUE_RGB,
        )

    _draw_labels(canvas, layout, px_per_mm, label_rgb)
    value_font = fonts.load(fonts.cjk_font_file(), VALUE_EM_MM * px_per_mm)
    _draw_value(canvas, layout.fields["authority"].value, identity.authority, value_font, px_per_mm)
    _draw_value(canvas, layout.fields["validity"].value, format_validity(identity), value_font, px_per_mm)
    return _to_bgr(canvas, px_per_mm)
