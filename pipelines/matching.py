"""Compare what the applicant typed (the claim) with what OCR read from the card.

The asymmetry is deliberate: a confident contradiction rejects, an uncertain one goes to a
person. A rare character (喆 堃 淼 昇 …) read as a look-alike with low confidence must never
turn an honest applicant away, so one uncertain character is a near match, not a mismatch.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from rapidfuzz.distance import Levenshtein

from pipelines.idnumber import normalize_id_number
from pipelines.reasons import Reason

MIDDLE_DOT = "\u00b7"
# Every glyph OCR or an input method produces for the dot in minority names (买买提·艾力).
# Listed after NFKC, which already folds U+FF0E/U+FE52 into '.', U+FF65 into U+30FB, U+0387
# into U+00B7 and the Kangxi radical U+2F02 into 丶. 丶 itself is an ideograph, but it never
# occurs in a registered name, while OCR readily outputs it for a dot.
_DOT_VARIANTS = frozenset(
    "\u00b7"  # · middle dot
    "\u2022"  # • bullet
    "."  # full stop (also U+FF0E ．, U+FE52 ﹒ after NFKC)
    "\u2027"  # ‧ hyphenation point
    "\u30fb"  # ・ katakana middle dot (also U+FF65 ･ after NFKC)
    "\u22c5"  # ⋅ dot operator
    "\u2219"  # ∙ bullet operator
    "\u2e31"  # ⸱ word separator middle dot
    "\u1427"  # ᐧ canadian syllabics final middle dot
    "\u4e36"  # 丶 (see above)
)


class NameMatch(StrEnum):
    EXACT = "exact"
    NEAR = "near"  # one uncertain character differs: a person must look
    MISMATCH = "mismatch"
    NOT_READ = "not_read"  # OCR returned nothing; the caller decides (unreadable field)
    NO_CLAIM = "no_claim"  # nothing to compare with


class NumberMatch(StrEnum):
    EXACT = "exact"
    MISMATCH = "mismatch"
    NOT_READ = "not_read"
    NO_CLAIM = "no_claim"


@dataclass(frozen=True, slots=True)
class ClaimMatch:
    name: NameMatch
    number: NumberMatch
    name_distance: int  # Levenshtein distance of the normalised names (a missing side counts as '')
    reasons: tuple[Reason, ...]


def _clean(text: str) -> str:
    """Drop whitespace and invisible format characters, unify dots; expects NFKC input."""
    return "".join(
        MIDDLE_DOT if c in _DOT_VARIANTS else c for c in text if not (c.isspace() or unicodedata.category(c) == "Cf")
    )


# Traditional forms of common name characters. Mainland cards print the simplified form,
# but the recogniser's dictionary holds both and sometimes answers with the traditional one
# (黃 for 黄: 2 of 220 clean generated fronts). Only one-to-one pairs whose traditional form
# never appears on a mainland card are listed; ambiguous ones (乾/干, 後/后 …) are left alone.
_TRADITIONAL = str.maketrans(
    "黃悅陳張劉楊趙吳鄭謝許馮鄧蕭葉蘇呂蔣韓偉華麗強國龍鳳軍紅東雲傑慶輝靜蘭婭鵬濤圓嬌潔瑩寶貴憶陽順"
    "齊鄒譚魯錢孫盧蘆陸閆閻賴顧龔餘馬歐溫鍾鐘羅賈鄺賀嚴鄔聶戴紀",
    "黄悦陈张刘杨赵吴郑谢许冯邓萧叶苏吕蒋韩伟华丽强国龙凤军红东云杰庆辉静兰娅鹏涛圆娇洁莹宝贵忆阳顺"
    "齐邹谭鲁钱孙卢芦陆闫阎赖顾龚余马欧温钟钟罗贾邝贺严邬聂戴纪",
)


def normalize_name(text: str | None) -> str:
    """NFKC, drop all whitespace (U+3000 included) and invisible format characters, unify dots
    to '·', and map the common traditional forms of name characters to simplified ones."""
    if not text:
        return ""
    # The second NFKC recomposes what a removed character kept apart ('e', U+200D, U+0301),
    # which keeps the function idempotent.
    cleaned = unicodedata.normalize("NFKC", _clean(unicodedata.normalize("NFKC", str(text))))
    return cleaned.translate(_TRADITIONAL)


def _normalized_confidences(read_name: str, confidences: Sequence[float]) -> list[float] | None:
    """Carry per-character confidences (aligned with the raw OCR text) over to the normalised text.

    Returns None when they cannot be aligned reliably (length differs from the raw text, or
    character-wise normalisation differs from whole-string normalisation, e.g. composing
    combining marks); the caller then falls back to the whole-name confidence.
    """
    if len(confidences) != len(read_name):
        return None
    pieces = [_clean(unicodedata.normalize("NFKC", ch)) for ch in read_name]
    if "".join(pieces) != normalize_name(read_name):
        return None
    return [float(conf) for piece, conf in zip(pieces, confidences, strict=True) for _ in piece]


def _uncertain(confidence: float | None, threshold: float) -> bool:
    # Unknown (None) or NaN confidence is not evidence of a confident read.
    return confidence is None or not confidence >= threshold


def _match_name(
    claim: str,
    read: str,
    raw_read: str,
    read_confidence: float | None,
    char_confidences: Sequence[float] | None,
    threshold: float,
) -> NameMatch:
    if claim == read:
        return NameMatch.EXACT
    # A dropped or doubled middle dot is punctuation, not a different person, but it is
    # not a literal match either: send it to a person instead of rejecting.
    if claim.replace(MIDDLE_DOT, "") == read.replace(MIDDLE_DOT, ""):
        return NameMatch.NEAR
    ops = Levenshtein.editops(claim, read)
    if len(ops) != 1:
        return NameMatch.MISMATCH
    confidence = read_confidence
    op = ops[0]
    if op.tag == "delete" and op.src_pos in (0, len(claim) - 1):
        # The first or last character missing: the crop (or a thumb) cut the name short,
        # which says nothing about the characters that were never seen.
        return NameMatch.NEAR
    if char_confidences is not None and op.tag != "delete":
        # 'replace'/'insert': the read text holds the differing character at dest_pos.
        # 'delete' (OCR missed a character): there is no read character to ask, so the
        # whole-name confidence decides.
        per_char = _normalized_confidences(raw_read, char_confidences)
        if per_char is not None:
            confidence = per_char[op.dest_pos]
    return NameMatch.NEAR if _uncertain(confidence, threshold) else NameMatch.MISMATCH


def match_claim(
    claim_name: str | None,
    claim_number: str | None,
    read_name: str | None,
    read_name_confidence: float | None,
    read_number: str | None,
    *,
    confident_char_threshold: float = 0.95,
    read_name_char_confidences: Sequence[float] | None = None,
) -> ClaimMatch:
    """Compare the claim with the OCR read.

    Number: equal after ``normalize_id_number`` or ID_NUMBER_MISMATCH. No fuzziness: the
    number is validated by its check character and a one-digit difference is another person.

    Name: equal after ``normalize_name`` -> exact. Exactly one character differs
    (substitution, insertion or deletion) and that read is uncertain (below
    ``confident_char_threshold``) -> near, NAME_NEAR_MATCH. Otherwise -> mismatch,
    NAME_MISMATCH. "Uncertain" uses the differing character's own confidence when
    ``read_name_char_confidences`` (aligned with the raw ``read_name``) is given, else the
    whole-name ``read_name_confidence``; None means unknown and counts as uncertain.

    A missing/blank claim gives ``no_claim`` and a missing/blank read ``not_read``, both
    without reasons: whether an unread field is acceptable is the caller's decision.
    """
    reasons: list[Reason] = []

    claim_num = normalize_id_number(claim_number or "")
    read_num = normalize_id_number(read_number or "")
    if not claim_num:
        number = NumberMatch.NO_CLAIM
    elif not read_num:
        number = NumberMatch.NOT_READ
    elif claim_num == read_num:
        number = NumberMatch.EXACT
    else:
        number = NumberMatch.MISMATCH
        reasons.append(Reason.ID_NUMBER_MISMATCH)

    claim_nm = normalize_name(claim_name)
    read_nm = normalize_name(read_name)
    distance = Levenshtein.distance(claim_nm, read_nm)
    if not claim_nm:
        name = NameMatch.NO_CLAIM
    elif not read_nm:
        name = NameMatch.NOT_READ
    else:
        name = _match_name(
            claim_nm,
            read_nm,
            read_name or "",
            read_name_confidence,
            read_name_char_confidences,
            confident_char_threshold,
        )
        if name is NameMatch.NEAR:
            reasons.append(Reason.NAME_NEAR_MATCH)
        elif name is NameMatch.MISMATCH:
            reasons.append(Reason.NAME_MISMATCH)

    return ClaimMatch(name=name, number=number, name_distance=distance, reasons=tuple(reasons))
