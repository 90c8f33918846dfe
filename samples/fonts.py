"""Font files the sample renderer draws with: a CJK heiti for captions and values, a bold
CJK face for the back's titles, and a monospaced bold digit face for the ID number.

Only system fonts are used (the build machines have no internet); a missing font is a
clear error naming the Debian package that provides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont


class FontNotFoundError(RuntimeError):
    pass


@dataclass(frozen=True)
class FontFile:
    path: Path
    index: int = 0  # face index inside a .ttc collection


_CJK_CANDIDATES = (
    (FontFile(Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")), "fonts-wqy-zenhei"),
    (FontFile(Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), 2), "fonts-noto-cjk"),
)
_CJK_BOLD_CANDIDATES = (
    (FontFile(Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"), 2), "fonts-noto-cjk"),
    (FontFile(Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")), "fonts-wqy-zenhei"),
)
_DIGIT_CANDIDATES = (
    (FontFile(Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf")), "fonts-dejavu-core"),
    (FontFile(Path("/usr/share/fonts/truetype/liberation/LiberationMono-Bold.ttf")), "fonts-liberation"),
)


def _first_present(candidates: tuple[tuple[FontFile, str], ...], what: str) -> FontFile:
    for font, _package in candidates:
        if font.path.is_file():
            return font
    packages = " or ".join(dict.fromkeys(p for _f, p in candidates))
    paths = ", ".join(str(f.path) for f, _p in candidates)
    raise FontNotFoundError(f"no {what} font found (looked for {paths}); install it with: apt-get install {packages}")


def cjk_font_file() -> FontFile:
    """Heiti face for captions and field values (WenQuanYi Zen Hei, else Noto Sans CJK SC)."""
    return _first_present(_CJK_CANDIDATES, "CJK (Chinese)")


def cjk_bold_font_file() -> FontFile:
    """Bold face for the back's 中华人民共和国 / 居民身份证 titles."""
    return _first_present(_CJK_BOLD_CANDIDATES, "bold CJK (Chinese)")


def digit_font_file() -> FontFile:
    """Monospaced bold face for the 18-character citizen identity number."""
    return _first_present(_DIGIT_CANDIDATES, "monospaced digit")


@lru_cache(maxsize=256)
def _load(path: str, index: int, size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size_px, index=index)


def load(font: FontFile, size_px: float) -> ImageFont.FreeTypeFont:
    return _load(str(font.path), font.index, max(4, round(size_px)))
