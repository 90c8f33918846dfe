"""Read the printed fields from a rectified card, using the card's fixed layout.

Only the known value regions of ``models/layouts`` are recognised (never the whole photo),
so an 18-digit order number on the desk can never be taken for the ID number, and a scan
costs a handful of text-line recognitions instead of a full-page detection.

Each region is tightened to its ink before recognition (the recogniser reads best from a
snug line crop), and the address region is split into its printed lines.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import cv2
import numpy as np

from pipelines.card import Layout, crop, load_layout
from pipelines.idnumber import normalize_id_number, parse_printed_birth
from pipelines.matching import normalize_name
from pipelines.ocr import OcrEngine

FRONT_FIELDS = ("name", "sex", "ethnicity", "birth", "address", "id_number")
BACK_FIELDS = ("authority", "validity")

# The 56 officially recognised ethnic groups as printed on the card (without 族), in the
# official order (the sample generator draws from this order too).
ETHNICITIES = (
    "汉",
    "蒙古",
    "回",
    "藏",
    "维吾尔",
    "苗",
    "彝",
    "壮",
    "布依",
    "朝鲜",
    "满",
    "侗",
    "瑶",
    "白",
    "土家",
    "哈尼",
    "哈萨克",
    "傣",
    "黎",
    "傈僳",
    "佤",
    "畲",
    "高山",
    "拉祜",
    "水",
    "东乡",
    "纳西",
    "景颇",
    "柯尔克孜",
    "土",
    "达斡尔",
    "仫佬",
    "羌",
    "布朗",
    "撒拉",
    "毛南",
    "仡佬",
    "锡伯",
    "阿昌",
    "普米",
    "塔吉克",
    "怒",
    "乌孜别克",
    "俄罗斯",
    "鄂温克",
    "德昂",
    "保安",
    "裕固",
    "京",
    "塔塔尔",
    "独龙",
    "鄂伦春",
    "赫哲",
    "门巴",
    "珞巴",
    "基诺",
)

_LABEL_WORDS = ("公民身份号码", "公民身份证号码", "签发机关", "有效期限", "姓名", "性别", "民族", "出生", "住址")


@dataclass(frozen=True)
class FieldRead:
    """One field as read: normalised value, what the recogniser said, and its confidence."""

    value: str
    raw: str
    confidence: float


@dataclass(frozen=True)
class CardFields:
    side: str  # front | back
    fields: Mapping[str, FieldRead]
    birth_date: date | None = None
    valid_from: date | None = None
    valid_until: date | None = None  # None with long_term=True means 长期
    long_term: bool = False

    def value(self, name: str) -> str:
        read = self.fields.get(name)
        return read.value if read else ""

    def confidence(self, name: str) -> float:
        read = self.fields.get(name)
        return read.confidence if read else 0.0


# --------------------------------------------------------------------------- crops


def _ink_mask(region: np.ndarray) -> np.ndarray:
    """Black value print against the card's light, patterned background.

    The captions (姓名, 性别 …) are printed in blue: dark enough to pass a brightness test,
    so colour decides. Values are near-neutral; captions have strong blue chroma.
    """
    gray = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
    background = float(np.percentile(gray, 75))
    dark = gray < min(background - 45.0, 150.0)
    pixels = region.astype(np.int16)
    chroma = pixels.max(axis=2) - pixels.min(axis=2)
    return dark & (chroma < 60)


def _row_runs(inked_rows: np.ndarray, merge_gap: int) -> list[tuple[int, int]]:
    """Runs of inked rows, with gaps shorter than ``merge_gap`` (a glyph's own gaps) closed."""
    runs: list[list[int]] = []
    for y in np.flatnonzero(inked_rows):
        if runs and y - runs[-1][1] <= merge_gap:
            runs[-1][1] = int(y) + 1
        else:
            runs.append([int(y), int(y) + 1])
    return [(a, b) for a, b in runs]


def _tighten(region: np.ndarray, pad: int = 6) -> np.ndarray | None:
    """Crop a single-line value region to its printed line, or None when nothing is printed.

    Only the tallest band of inked rows is kept: when the rectified card is a little off,
    the region also catches the edge of the line above or below, which must not be read.
    """
    ink = _ink_mask(region)
    runs = [r for r in _row_runs(ink.sum(axis=1) >= 2, merge_gap=6) if r[1] - r[0] >= 8]
    if not runs:
        return None
    y0, y1 = max(runs, key=lambda r: (r[1] - r[0]) * ink[r[0] : r[1]].sum())
    cols = np.flatnonzero(ink[y0:y1].sum(axis=0) >= 1)
    if cols.size < 6:
        return None
    y0, y1 = max(0, y0 - pad), min(region.shape[0], y1 + pad)
    x0, x1 = max(0, cols[0] - pad), min(region.shape[1], cols[-1] + pad + 1)
    return region[y0:y1, x0:x1]


def _split_lines(region: np.ndarray, max_lines: int) -> list[np.ndarray]:
    """Split a multi-line value region at the blank rows between printed lines."""
    ink = _ink_mask(region)
    profile = ink.sum(axis=1)
    runs = [r for r in _row_runs(profile >= max(2, 0.01 * region.shape[1]), merge_gap=7) if r[1] - r[0] >= 10]
    runs = sorted(runs, key=lambda r: r[1] - r[0], reverse=True)[:max_lines]
    out = []
    for a, b in sorted(runs):
        band = region[max(0, a - 5) : min(region.shape[0], b + 5)]
        tight = _tighten(band, pad=5)
        if tight is not None:
            out.append(tight)
    return out


# The number's first digit sits 2-3 mm left of the layout box on some renderings and on a
# card placed a little off (external-eval bdciMT: the number read without its leading 5);
# the caption left of it is blue (kept out by the ink mask) or, on a copy, non-digits that
# clean_id_number drops.
_EXTRA_LEFT_PX = {"id_number": 30}


def field_crops(card: np.ndarray, layout: Layout, names: Sequence[str]) -> dict[str, list[np.ndarray]]:
    """Line crops per field, in reading order (empty list: nothing printed there)."""
    crops: dict[str, list[np.ndarray]] = {}
    for name in names:
        # 1.6 mm to each side: a card placed from its text lines (pipelines.locate) can be a
        # millimetre or two off, and a value cut at its first character reads as another name.
        # The ink mask keeps blue captions out of the widened box. Only 1 mm up and down:
        # more catches the next line (the name box then read 男民族汉 on specimens).
        x, y, w, h = layout.fields[name]
        left = _EXTRA_LEFT_PX.get(name, 6)
        region = crop(card, (x - left, y, w + left + 6, h), pad=10)
        if layout.lines.get(name, 1) > 1:
            crops[name] = _split_lines(region, layout.lines[name])
        else:
            tight = _tighten(region)
            crops[name] = [tight] if tight is not None else []
    return crops


# --------------------------------------------------------------------------- text clean-up


def _strip_labels(text: str, caption_tail: str = "", keep: int = 1) -> str:
    """Drop a caption caught at the start of a value crop.

    Whole captions (姓名, 公民身份号码 …) anywhere in the layout, and ``caption_tail``: the last
    glyph of the field's own caption (名 of 姓 名, 族 of 民 族), which sits 1.5 mm left of the
    value and is caught when the rectified card is a little off. The tail goes only while
    ``keep`` characters remain, and no value of those fields starts with it.
    """
    for word in _LABEL_WORDS:
        if text.startswith(word):
            text = text[len(word) :]
    text = text.strip(" :：")
    if caption_tail and text.startswith(caption_tail) and len(text) - len(caption_tail) >= keep:
        text = text[len(caption_tail) :]
    return text


def clean_name(text: str) -> str:
    text = text.replace(" ", "")
    # a stray glyph before the caption (a thumb's edge, the card's pattern): the name follows 姓名
    _, caption, after = text.partition("姓名")
    if caption and after:
        text = after
    return normalize_name(_strip_labels(text, caption_tail="名", keep=2))


# Caption words no name contains: a name read holding one is the next line (or the caption)
# caught by a crop that sits a little off, not a name to compare with anyone's claim.
NAME_IMPOSSIBLE_WORDS = ("性别", "民族", "出生", "住址", "公民", "身份", "号码", "姓名")


def is_caption_text(text: str) -> bool:
    return any(word in text for word in NAME_IMPOSSIBLE_WORDS)


def clean_sex(text: str) -> str:
    text = _strip_labels(unicodedata.normalize("NFKC", text).replace(" ", ""))
    for sex in ("男", "女"):
        if sex in text:
            return sex
    return text


def clean_ethnicity(text: str) -> str:
    text = _strip_labels(unicodedata.normalize("NFKC", text).replace(" ", ""), caption_tail="族")
    return text.removesuffix("族")


def clean_address(lines: Sequence[str]) -> str:
    joined = "".join(unicodedata.normalize("NFKC", line).replace(" ", "") for line in lines)
    return _strip_labels(joined)


def clean_id_number(text: str) -> str:
    text = normalize_id_number(_strip_labels(text))
    return "".join(ch for ch in text if ch.isdigit() or ch == "X")


_DATE = re.compile(r"(\d{4})[.\-/](\d{1,2})[.\-/](\d{1,2})")


def parse_validity(text: str) -> tuple[date | None, date | None, bool]:
    """'2015.03.01-2035.03.01' or '2015.03.01-长期' -> (from, until, long_term)."""
    norm = unicodedata.normalize("NFKC", text).replace(" ", "")
    dates = []
    for y, m, d in _DATE.findall(norm):
        try:
            dates.append(date(int(y), int(m), int(d)))
        except ValueError:
            dates.append(None)
    long_term = "长期" in norm
    valid_from = dates[0] if dates else None
    valid_until = None if long_term else (dates[1] if len(dates) > 1 else None)
    return valid_from, valid_until, long_term


# --------------------------------------------------------------------------- reading


def read_regions(engine: OcrEngine, crops: dict[str, list[np.ndarray]]) -> dict[str, list[tuple[str, float]]]:
    """Recognise every line crop in one engine call; (text, score) per line, per field."""
    order = [(name, i) for name, lines in crops.items() for i in range(len(lines))]
    results = engine.recognize([crops[name][i] for name, i in order])
    out: dict[str, list[tuple[str, float]]] = {name: [] for name in crops}
    for (name, _), res in zip(order, results, strict=True):
        out[name].append((res.text, res.score))
    return out


def read_front(card: np.ndarray, engine: OcrEngine) -> CardFields:
    """Read the six fields of a rectified, upright portrait side."""
    layout = load_layout("front")
    reads = read_regions(engine, field_crops(card, layout, FRONT_FIELDS))
    return front_fields_from_reads(reads)


def front_fields_from_reads(reads: Mapping[str, list[tuple[str, float]]]) -> CardFields:
    def single(name: str, cleaner) -> FieldRead:
        lines = reads.get(name) or []
        if not lines:
            return FieldRead("", "", 0.0)
        raw = "".join(t for t, _ in lines)
        return FieldRead(cleaner(raw), raw, min(s for _, s in lines))

    address_lines = reads.get("address") or []
    fields = {
        "name": single("name", clean_name),
        "sex": single("sex", clean_sex),
        "ethnicity": single("ethnicity", clean_ethnicity),
        "birth": single("birth", lambda t: unicodedata.normalize("NFKC", t).replace(" ", "")),
        "address": FieldRead(
            clean_address([t for t, _ in address_lines]),
            "\n".join(t for t, _ in address_lines),
            min((s for _, s in address_lines), default=0.0),
        ),
        "id_number": single("id_number", clean_id_number),
    }
    return CardFields(side="front", fields=fields, birth_date=parse_printed_birth(fields["birth"].value))


def read_back(card: np.ndarray, engine: OcrEngine) -> CardFields:
    """Read issuing authority and validity from a rectified, upright emblem side."""
    layout = load_layout("back")
    reads = read_regions(engine, field_crops(card, layout, BACK_FIELDS))
    return back_fields_from_reads(reads)


def back_fields_from_reads(reads: Mapping[str, list[tuple[str, float]]]) -> CardFields:
    def joined(name: str) -> tuple[str, float]:
        lines = reads.get(name) or []
        return "".join(t for t, _ in lines), min((s for _, s in lines), default=0.0)

    authority_raw, authority_conf = joined("authority")
    validity_raw, validity_conf = joined("validity")
    valid_from, valid_until, long_term = parse_validity(validity_raw)
    authority = _strip_labels(unicodedata.normalize("NFKC", authority_raw).replace(" ", ""))
    validity = _strip_labels(unicodedata.normalize("NFKC", validity_raw).replace(" ", ""))
    return CardFields(
        side="back",
        fields={
            "authority": FieldRead(authority, authority_raw, authority_conf),
            "validity": FieldRead(validity, validity_raw, validity_conf),
        },
        valid_from=valid_from,
        valid_until=valid_until,
        long_term=long_term,
    )
