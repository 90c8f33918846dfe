"""Procedural surfaces a card is photographed on: wood, fabric, plain desks, printed paper,
keyboards, gradients, and (for the ``wild`` mix) strongly coloured cloth, red digital
backdrops and piles of printed papers.

Owns only the background pixels (float32 BGR in [0, 255]); nothing here knows about cards.
The printed-paper surfaces carry 18-digit order numbers shaped like ID numbers, the usual
distractor in real uploads.
"""

from __future__ import annotations

import math
import random

import cv2
import numpy as np
from PIL import Image, ImageDraw

from pipelines.divisions import county_codes
from pipelines.idnumber import check_character
from samples import fonts

SURFACE_KINDS = ("wood", "fabric", "desk_dark", "desk_light", "paper", "keyboard", "gradient")
# Kept apart from SURFACE_KINDS: the older mixes draw from that tuple by position, so adding to
# it would change every sample they make.
WILD_SURFACE_KINDS = (*SURFACE_KINDS, "cloth", "red_digital", "papers")
LIGHT_SURFACES = frozenset({"desk_light", "paper"})

_PAPER_PHRASES = (
    "订单编号：",
    "运单号：",
    "流水号：",
    "合同编号：",
    "客户编号：",
    "收货地址：",
    "商品名称：",
    "合计金额：",
    "付款方式：",
    "下单时间：",
    "备注：",
    "联系电话：",
    "发票抬头：",
    "经办人：",
    "数量：",
    "单价：",
)
_PAPER_WORDS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下"
    "过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都"
    "两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重"
    "新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想"
    "已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知"
    "较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处府"
)
_DESK_DARK = ((38, 38, 40), (28, 32, 44), (52, 44, 38), (30, 48, 34), (60, 58, 56), (20, 22, 26), (70, 52, 40))
_DESK_LIGHT = ((232, 232, 228), (206, 210, 214), (224, 214, 196), (200, 206, 196), (236, 228, 222), (190, 190, 188))
_FABRIC = ((150, 92, 48), (60, 60, 150), (70, 70, 72), (40, 110, 60), (160, 150, 140), (30, 30, 90), (120, 40, 40))
# Saturated cloth (BGR): the colours on which a colour-threshold card finder loses the card.
STRONG_CLOTH = {
    "magenta": (170, 40, 215),
    "red": (40, 35, 205),
    "crimson": (70, 20, 160),
    "orange": (30, 120, 235),
    "yellow": (40, 200, 230),
    "royal_blue": (190, 70, 30),
    "green": (60, 160, 30),
    "purple": (140, 40, 110),
}


def _smooth_noise(nprng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1] (bicubic upsampling of a small random grid)."""
    grid = nprng.uniform(-1, 1, (max(2, cells * height // max(width, 1)), cells)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def _plain(nprng: np.random.Generator, height: int, width: int, bgr) -> np.ndarray:
    img = np.empty((height, width, 3), np.float32)
    img[:] = np.asarray(bgr, np.float32)
    shade = 1 + 0.08 * _smooth_noise(nprng, height, width, 4)
    img *= shade[..., None]
    img += nprng.normal(0, 1.6, (height, width, 1)).astype(np.float32)
    return img


def _wood(rng: random.Random, nprng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Planks: fine streaks stretched along the grain plus slow growth-ring bands, at an angle."""
    side = int(math.hypot(width, height)) + 2
    streaks = cv2.resize(
        nprng.normal(0, 1, (side // 3, 8)).astype(np.float32), (side, side), interpolation=cv2.INTER_CUBIC
    )
    yy = np.mgrid[0:side, 0:side][0].astype(np.float32)
    warp = 40 * _smooth_noise(nprng, side, side, 3) + 6 * _smooth_noise(nprng, side, side, 12)
    period = rng.uniform(30, 90)
    rings = (0.5 + 0.5 * np.sin(2 * math.pi * (yy + warp) / period)) ** 2
    t = np.clip(0.45 * rings + 0.18 * streaks + 0.35, 0, 1)
    dark = rng.random() < 0.5
    light_bgr = np.array((120, 168, 212) if not dark else (58, 88, 122), np.float32)
    dark_bgr = np.array((62, 104, 156) if not dark else (24, 40, 62), np.float32)
    wood = light_bgr * (1 - t[..., None]) + dark_bgr * t[..., None]
    if rng.random() < 0.5:  # seams between planks
        plank = rng.uniform(120, 260)
        seam = (yy % plank) < 2.5
        wood[seam] *= 0.55
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), rng.uniform(0, 180), 1.0)
    matrix[:, 2] -= ((side - width) / 2, (side - height) / 2)
    return cv2.warpAffine(wood, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _fabric(rng: random.Random, nprng: np.random.Generator, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    pitch = rng.uniform(3, 7)
    weave = np.sin(2 * math.pi * xx / pitch) * np.sin(2 * math.pi * yy / pitch)
    base = np.array(rng.choice(_FABRIC), np.float32)
    texture = 1 + 0.10 * weave + 0.035 * nprng.normal(0, 1, (height, width)).astype(np.float32)
    texture += 0.1 * _smooth_noise(nprng, height, width, 5)
    return base * texture[..., None]


def _gradient(rng: random.Random, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    a = np.array([rng.randint(10, 200) for _ in range(3)], np.float32)
    b = np.array([rng.randint(10, 200) for _ in range(3)], np.float32)
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(angle) + yy * math.sin(angle)) / math.hypot(width, height) + 0.5
    else:
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        t = np.hypot(xx - cx, yy - cy) / math.hypot(width, height)
    t = np.clip(t, 0, 1)[..., None]
    return a * (1 - t) + b * t


def fake_id_like_number(rng: random.Random) -> str:
    """An 18-character order number indistinguishable in shape from a citizen identity number."""
    code = rng.choice(county_codes())
    first17 = (
        f"{code}{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    )
    return first17 + check_character(first17) if rng.random() < 0.7 else first17 + str(rng.randint(0, 9))


def printed_paper(rng: random.Random, width: int, height: int, number_share: float = 0.35) -> Image.Image:
    """A white sheet with printed lines of text, at least one carrying an 18-digit number.

    ``number_share`` is the share of lines that carry a number (decoy sheets print many).
    """
    paper = Image.new("RGB", (width, height), tuple(rng.randint(236, 252) for _ in range(3)))
    draw = ImageDraw.Draw(paper)
    size = rng.randint(18, 30)
    cjk = fonts.load(fonts.cjk_font_file(), size)
    digits = fonts.load(fonts.digit_font_file(), size * 0.95)
    margin = int(width * 0.08)
    y = int(height * 0.07)
    numbered = False
    ink = tuple(rng.randint(10, 60) for _ in range(3))
    while y < height - size * 2:
        roll = rng.random()
        if roll < number_share or (not numbered and y > height * 0.5):
            phrase = rng.choice(_PAPER_PHRASES[:5])
            draw.text((margin, y), phrase, font=cjk, fill=ink)
            draw.text(
                (margin + cjk.getlength(phrase) + 4, y + size * 0.08), fake_id_like_number(rng), font=digits, fill=ink
            )
            numbered = True
        elif roll < 0.85:
            phrase = rng.choice(_PAPER_PHRASES)
            words = "".join(rng.choice(_PAPER_WORDS) for _ in range(rng.randint(4, 24)))
            draw.text((margin, y), phrase + words, font=cjk, fill=ink)
        else:
            draw.line((margin, y + size // 2, width - margin, y + size // 2), fill=ink, width=2)
        y += int(size * rng.uniform(1.5, 2.2))
    return paper


def _paper_on_desk(rng: random.Random, nprng: np.random.Generator, height: int, width: int) -> np.ndarray:
    desk = _plain(nprng, height, width, rng.choice(_DESK_DARK + _DESK_LIGHT[-2:]))
    pw, ph = int(width * rng.uniform(0.75, 1.1)), int(height * rng.uniform(0.85, 1.3))
    sheet = cv2.cvtColor(np.asarray(printed_paper(rng, pw, ph)), cv2.COLOR_RGB2BGR).astype(np.float32)
    centre = (width * rng.uniform(0.4, 0.6), height * rng.uniform(0.4, 0.6))
    matrix = cv2.getRotationMatrix2D((pw / 2, ph / 2), rng.uniform(-12, 12), 1.0)
    matrix[:, 2] += (centre[0] - pw / 2, centre[1] - ph / 2)
    warped = cv2.warpAffine(sheet, matrix, (width, height), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(np.ones((ph, pw), np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR)[..., None]
    return desk * (1 - mask) + warped * mask


def _keyboard(rng: random.Random, nprng: np.random.Generator, height: int, width: int) -> np.ndarray:
    dark = rng.random() < 0.7
    base = (30, 30, 32) if dark else (200, 200, 204)
    cap = (58, 58, 62) if dark else (236, 236, 238)
    legend = (200, 200, 200) if dark else (40, 40, 40)
    img = Image.new("RGB", (width, height), base)
    draw = ImageDraw.Draw(img)
    key = rng.randint(60, 110)
    gap = key // 8
    font = fonts.load(fonts.digit_font_file(), key * 0.3)
    letters = "QWERTYUIOPASDFGHJKLZXCVBNM1234567890"
    offset_x, offset_y = -rng.randint(0, key), -rng.randint(0, key)
    for row in range(height // (key + gap) + 2):
        stagger = (row % 3) * key // 3
        for col in range(width // (key + gap) + 2):
            x0 = offset_x + stagger + col * (key + gap)
            y0 = offset_y + row * (key + gap)
            draw.rounded_rectangle((x0, y0, x0 + key, y0 + key), radius=key // 8, fill=cap)
            draw.text((x0 + key * 0.2, y0 + key * 0.15), rng.choice(letters), font=font, fill=legend)
    bgr = cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR).astype(np.float32)
    angle = rng.uniform(-20, 20)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.15)
    return cv2.warpAffine(bgr, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


def _cloth(rng: random.Random, nprng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Strongly coloured cloth with soft folds and a fine weave."""
    base = np.array(STRONG_CLOTH[rng.choice(sorted(STRONG_CLOTH))], np.float32)
    base = base * np.array([rng.uniform(0.85, 1.1) for _ in range(3)], np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    warp = 60 * _smooth_noise(nprng, height, width, 3)
    folds = np.sin(2 * math.pi * (u + warp) / rng.uniform(150, 400))
    shade = 1 + rng.uniform(0.12, 0.28) * folds + 0.1 * _smooth_noise(nprng, height, width, 4)
    pitch = rng.uniform(2.5, 5)
    weave = 0.06 * np.sin(2 * math.pi * xx / pitch) * np.sin(2 * math.pi * yy / pitch)
    fuzz = 0.03 * nprng.normal(0, 1, (height, width)).astype(np.float32)
    return base * (shade + weave + fuzz)[..., None]


def _red_digital(rng: random.Random, nprng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A red backdrop as an app or a screen shows it: smooth gradient, soft light spots, no texture."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    deep = np.array((rng.uniform(10, 40), rng.uniform(5, 25), rng.uniform(140, 190)), np.float32)
    bright = np.array((rng.uniform(40, 80), rng.uniform(30, 70), rng.uniform(215, 255)), np.float32)
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
    t = np.clip(np.hypot(xx - cx, yy - cy) / math.hypot(width, height) * 1.6, 0, 1)[..., None]
    img = bright * (1 - t) + deep * t
    for _ in range(rng.randint(0, 6)):  # bokeh
        r = rng.uniform(0.03, 0.12) * width
        bx, by = rng.uniform(0, width), rng.uniform(0, height)
        spot = np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * r * r))
        img += (rng.uniform(20, 50) * spot)[..., None] * np.array((0.4, 0.5, 1.0), np.float32)
    return img + nprng.normal(0, 0.8, (height, width, 1)).astype(np.float32)


def _papers(rng: random.Random, nprng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Several printed sheets at any angle (some upside down), thick with 18-digit numbers."""
    img = _plain(nprng, height, width, rng.choice(_DESK_DARK + _DESK_LIGHT))
    for _ in range(rng.randint(2, 4)):
        pw, ph = int(width * rng.uniform(0.5, 0.9)), int(height * rng.uniform(0.6, 1.0))
        sheet = printed_paper(rng, pw, ph, number_share=rng.uniform(0.4, 0.7))
        sheet_bgr = cv2.cvtColor(np.asarray(sheet), cv2.COLOR_RGB2BGR).astype(np.float32)
        centre = (width * rng.uniform(0.15, 0.85), height * rng.uniform(0.15, 0.85))
        matrix = cv2.getRotationMatrix2D((pw / 2, ph / 2), rng.uniform(0, 360), 1.0)
        matrix[:, 2] += (centre[0] - pw / 2, centre[1] - ph / 2)
        warped = cv2.warpAffine(sheet_bgr, matrix, (width, height), flags=cv2.INTER_LINEAR)
        cover = np.ones((ph, pw), np.float32)
        mask = cv2.warpAffine(cover, matrix, (width, height), flags=cv2.INTER_LINEAR)[..., None]
        img = img * (1 - mask) + warped * mask
    return img


def make_surface(kind: str, size: tuple[int, int], rng: random.Random) -> np.ndarray:
    """A background of the given kind, float32 BGR of shape (height, width, 3)."""
    width, height = size
    nprng = np.random.default_rng(rng.getrandbits(64))
    if kind == "wood":
        img = _wood(rng, nprng, height, width)
    elif kind == "fabric":
        img = _fabric(rng, nprng, height, width)
    elif kind == "desk_dark":
        img = _plain(nprng, height, width, rng.choice(_DESK_DARK))
    elif kind == "desk_light":
        img = _plain(nprng, height, width, rng.choice(_DESK_LIGHT))
    elif kind == "paper":
        img = _paper_on_desk(rng, nprng, height, width)
    elif kind == "keyboard":
        img = _keyboard(rng, nprng, height, width)
    elif kind == "gradient":
        img = _gradient(rng, height, width)
    elif kind == "cloth":
        img = _cloth(rng, nprng, height, width)
    elif kind == "red_digital":
        img = _red_digital(rng, nprng, height, width)
    elif kind == "papers":
        img = _papers(rng, nprng, height, width)
    else:
        raise ValueError(f"unknown surface kind {kind!r}; expected one of {WILD_SURFACE_KINDS}")
    return np.clip(img, 0, 255).astype(np.float32)
