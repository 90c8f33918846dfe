"""One call from a photo to a decision: ``scan(image, engine, claim) -> ScanResult``.

Stages: find the card -> turn it upright -> judge the capture -> read the layout's field
regions -> validate the number and cross-check the printed fields -> match the claim ->
decide. The order of precedence in the decision is deliberate: a capture problem asks for a
retake before anything is concluded from a poor read; a confident contradiction rejects;
anything uncertain goes to a person; only a clean, consistent, matching read is accepted.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
from rapidfuzz import fuzz

from pipelines import PIPELINE_VERSION
from pipelines.card import CANONICAL_SIZE, CardDetection, CardSide, crop, find_card, load_layout
from pipelines.document import other_document_evidence
from pipelines.fields import (
    BACK_FIELDS,
    ETHNICITIES,
    FRONT_FIELDS,
    CardFields,
    FieldRead,
    back_fields_from_reads,
    clean_ethnicity,
    clean_id_number,
    clean_name,
    clean_sex,
    field_crops,
    front_fields_from_reads,
    is_caption_text,
    read_regions,
)
from pipelines.idnumber import IdNumberCheck, IdWarning, cross_check, validate_id_number
from pipelines.locate import locate_by_text, locate_card, oriented
from pipelines.matching import ClaimMatch, NameMatch, NumberMatch, match_claim
from pipelines.ocr import OcrEngine, manifest_digest
from pipelines.quality import QualityReport, QualityThresholds, assess, marginal_reasons
from pipelines.reasons import Decision, Reason


@dataclass(frozen=True)
class Claim:
    """What the applicant typed."""

    name: str | None = None
    id_number: str | None = None


@dataclass(frozen=True)
class ScanSettings:
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    # Below this a required field counts as unreadable (retake). On the generated benchmark
    # set, wrong reads of name/number score < 0.80; correct ones on readable photos > 0.90.
    min_readable_confidence: float = 0.60
    # Below this a field is read but a person should confirm it (review).
    min_field_confidence: float = 0.90
    # A contradiction or invalid number read at or above this is trusted enough to reject.
    reject_confidence: float = 0.97
    # Per-character confidence under which a one-character name difference goes to review.
    confident_char_threshold: float = 0.95
    expected_side: CardSide = CardSide.FRONT
    # The address decides nothing (the identity handed to consumers has no address) and its
    # up to three lines cost more than every other field together (benchmarks/scan_speed.py,
    # scan-1t vs scan-1t-addr): read only when asked for. Not reading it is also less personal
    # data kept.
    read_address: bool = False


@dataclass(frozen=True)
class ScanResult:
    decision: Decision
    reasons: tuple[Reason, ...]
    side: CardSide
    detection: CardDetection
    quality: QualityReport
    fields: CardFields | None
    id_check: IdNumberCheck | None
    match: ClaimMatch | None
    timings_ms: dict[str, float]
    pipeline_version: str = PIPELINE_VERSION
    models_digest: str = ""

    @property
    def corners(self) -> list[list[float]] | None:
        return self.detection.quad.as_lists() if self.detection.quad else None


# Quality reasons that make a read untrustworthy: ask for a retake before reading anything into it.
_BLOCKING_QUALITY = frozenset(
    {
        Reason.CARD_PARTLY_OUTSIDE,
        Reason.CARD_TOO_SMALL,
        Reason.TOO_DARK,
        Reason.OVEREXPOSED,
        Reason.GLARE_ON_FIELD,
        Reason.BLURRY,
        Reason.STRONG_TILT,
    }
)
# What decisions need; the address is read too unless ScanSettings.read_address is off.
_DECISION_FIELDS = tuple(name for name in FRONT_FIELDS if name != "address")
_GEOMETRIC_DOUBT = frozenset({Reason.STRONG_TILT, Reason.CARD_PARTLY_OUTSIDE})
_BACK_TITLE = "居民身份证"
_BACK_COUNTRY = "中华人民共和国"


# Reads from the detector's line boxes stay under ScanSettings.reject_confidence (0.97).
_LINE_READ_MAX_CONFIDENCE = 0.95


def _prefer_name_line(fields: CardFields, name_line: tuple[str, float] | None) -> CardFields:
    """For a card placed from its text: the name as read from the detector's own line box.

    A placement inferred from the number line is a millimetre or two off at the top of the
    card, which can cut the name's first character off the layout crop; the detector's box
    of the name line holds the whole line wherever the placement put the layout.
    """
    if name_line is None:
        return fields
    value = clean_name(name_line[0])
    current = fields.fields.get("name")
    if not _looks_like_name(value) or (current is not None and current.value == value):
        return fields
    if current is not None and current.value not in value and name_line[1] < current.confidence:
        return fields
    # a line picked by position can be the wrong line: it may confirm a claim, never reject one
    confidence = min(name_line[1], _LINE_READ_MAX_CONFIDENCE)
    return replace(fields, fields={**fields.fields, "name": FieldRead(value, name_line[0], confidence)})


def _capped(fields: CardFields, names: tuple[str, ...]) -> CardFields:
    capped = {
        name: replace(read, confidence=min(read.confidence, _LINE_READ_MAX_CONFIDENCE)) if name in names else read
        for name, read in fields.fields.items()
    }
    return replace(fields, fields=capped)


def _prefer_sex_line(fields: CardFields, sex_line: tuple[str, float] | None) -> CardFields:
    """Sex and ethnicity from the detector's own line boxes, when the layout crop missed them."""
    if sex_line is None:
        return fields
    text = unicodedata.normalize("NFKC", sex_line[0]).replace(" ", "")
    sex_part, _, ethnicity_part = text.partition("民族")
    updated = dict(fields.fields)
    sex = clean_sex(sex_part)
    if sex in ("男", "女") and fields.value("sex") not in ("男", "女"):
        updated["sex"] = FieldRead(sex, sex_line[0], min(sex_line[1], _LINE_READ_MAX_CONFIDENCE))
    ethnicity = clean_ethnicity(ethnicity_part) if ethnicity_part else ""
    if ethnicity in ETHNICITIES and fields.value("ethnicity") not in ETHNICITIES:
        updated["ethnicity"] = FieldRead(ethnicity, sex_line[0], min(sex_line[1], _LINE_READ_MAX_CONFIDENCE))
    return replace(fields, fields=updated) if updated != dict(fields.fields) else fields


def _likely_cause(quality: QualityReport, settings: ScanSettings) -> tuple[Reason, ...]:
    return marginal_reasons(quality.scores, settings.quality) if quality.scores is not None else ()


def _looks_like_name(text: str) -> bool:
    """A printed name: 2-20 CJK characters, optionally with middle dots; not a line of prose
    and not a caption (dataset 4242 0144: "别男民族汉", the sex line, rejected a true claim)."""
    if not 2 <= len(text) <= 20 or is_caption_text(text):
        return False
    return all(ch == "·" or "\u3400" <= ch <= "\u9fff" or "\U00020000" <= ch <= "\U0003134f" for ch in text)


def _looks_like_number(raw: str) -> bool:
    """What the number region printed: digits (and X), perhaps with its caption; not prose."""
    text = unicodedata.normalize("NFKC", raw).replace(" ", "")
    for caption in ("公民身份号码", "公民身份证号码"):
        text = text.replace(caption, "")
    return bool(text) and all(ch.isdigit() or ch in "Xx" for ch in text)


def _digits(text: str) -> int:
    return sum(ch.isdigit() or ch == "X" for ch in text)


def _decide(
    quality: QualityReport,
    fields: CardFields,
    id_check: IdNumberCheck,
    consistency: tuple[Reason, ...],
    match: ClaimMatch | None,
    settings: ScanSettings,
) -> tuple[Decision, tuple[Reason, ...]]:
    blocking = [r for r in quality.reasons if r in _BLOCKING_QUALITY]
    if blocking:
        return Decision.RETAKE, tuple(blocking)
    # a screen photo or a copy is for a person to judge: never accepted, never retaken until it reads
    held = [r for r in (Reason.RECAPTURE_SUSPECTED, Reason.PHOTOCOPY_SUSPECTED) if r in quality.reasons]
    name_conf, number_conf = fields.confidence("name"), fields.confidence("id_number")
    number = fields.value("id_number")
    if (
        not _looks_like_name(fields.value("name"))
        or not _looks_like_number(fields.fields["id_number"].raw)
        or len(number) < 17
        or min(name_conf, number_conf) < settings.min_readable_confidence
    ):
        if held:
            return Decision.REVIEW, tuple(held)
        return Decision.RETAKE, (Reason.FIELD_UNREADABLE,)

    # Only a read that is itself well-formed is trusted enough to contradict anyone: a
    # dropped or doubled digit (wrong length) is a misread, not evidence.
    number_trusted = number_conf >= settings.reject_confidence and len(number) == 18
    reject: list[Reason] = []
    review: list[Reason] = list(held)
    if not id_check.valid:
        if number_trusted:
            reject.append(Reason.INVALID_ID_NUMBER)
        else:
            review.append(Reason.INVALID_ID_NUMBER_LOW_CONFIDENCE)
    if match is not None:
        if match.number == NumberMatch.MISMATCH:
            # the claim contradicts a valid, confident read: reject; otherwise a person looks
            (reject if number_trusted and id_check.valid else review).append(Reason.ID_NUMBER_MISMATCH)
        if match.name == NameMatch.NEAR:
            review.append(Reason.NAME_NEAR_MATCH)
        elif match.name == NameMatch.MISMATCH:
            (reject if name_conf >= settings.reject_confidence else review).append(Reason.NAME_MISMATCH)
    # values no real card carries (sex 公, ethnicity outside the 56) are named even on a reject
    unusual = fields.value("sex") not in ("男", "女") or fields.value("ethnicity") not in ETHNICITIES
    if reject and not held:
        return Decision.REJECT, tuple(reject) + ((Reason.UNUSUAL_FIELD_VALUE,) if unusual else ())
    review.extend(reject)

    review.extend(consistency)
    if IdWarning.UNKNOWN_DIVISION_CODE in id_check.warnings:
        review.append(Reason.UNKNOWN_DIVISION_CODE)
    if unusual:
        review.append(Reason.UNUSUAL_FIELD_VALUE)
    # A field is confirmed by something independent of its own confidence score: the number
    # by its check character and the claim, the name by equalling the claim exactly (rare
    # characters read right still score 0.75-0.9), birth date and sex by agreeing with the
    # number. Only what nothing confirms must clear the confidence bar.
    confirmed = {"sex", "birth"}
    if match is not None and match.name == NameMatch.EXACT:
        confirmed.add("name")
    if id_check.valid and match is not None and match.number == NumberMatch.EXACT:
        confirmed.add("id_number")
    checked = [name for name in ("name", "id_number", "sex", "ethnicity", "birth") if name not in confirmed]
    if any(fields.confidence(name) < settings.min_field_confidence for name in checked):
        review.append(Reason.LOW_CONFIDENCE_FIELD)
    if review:
        return Decision.REVIEW, tuple(dict.fromkeys(review))
    return Decision.ACCEPT, ()


def scan(
    image: np.ndarray,
    engine: OcrEngine,
    claim: Claim | None = None,
    settings: ScanSettings = ScanSettings(),
    today: date | None = None,
    detection: CardDetection | None = None,
) -> ScanResult:
    """Run every stage on one BGR photo and decide.

    ``detection`` skips the card search (a location already known, e.g. from the live check).
    """
    timings: dict[str, float] = {}
    digest = manifest_digest(engine.models)
    t0 = time.perf_counter()

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round((now - since) * 1000, 1)
        return now

    searched = detection is None
    located = locate_card(image, engine) if detection is None else None
    if detection is not None and detection.quad is not None:
        located = oriented(image, detection, engine)
    t = lap("detect", t0)
    if located is None:
        detection = detection or CardDetection(None, image.shape[1::-1], "none", 0.0, False)
        quality = assess(image, detection, settings.quality)
        decision = Decision.REVIEW if Reason.RECAPTURE_SUSPECTED in quality.reasons else Decision.RETAKE
        reasons = (Reason.RECAPTURE_SUSPECTED,) if decision == Decision.REVIEW else (Reason.NO_CARD,)
        if decision == Decision.RETAKE and other_document_evidence(image, engine):
            reasons = (Reason.NOT_RESIDENT_ID,)
        timings["total"] = round((time.perf_counter() - t0) * 1000, 1)
        return ScanResult(
            decision, reasons, CardSide.NONE, detection, quality, None, None, None, timings, models_digest=digest
        )

    detection, card = located.detection, located.card
    quality = assess(image, detection, settings.quality, card=card)
    if _GEOMETRIC_DOUBT & set(quality.reasons) and detection.method != "text" and hasattr(engine, "detect_lines"):
        # A "tilted" or "cut off" outline is sometimes the wrong outline even when it reads:
        # the card plus the hand holding it, a white card on white paper. The number line
        # gives a second opinion, taken when it places a whole, untilted card.
        second = locate_by_text(image, engine)
        if second is not None:
            second_quality = assess(image, second.detection, settings.quality, card=second.card)
            if not _GEOMETRIC_DOUBT & set(second_quality.reasons):
                located, detection, card, quality = second, second.detection, second.card, second_quality
    t = lap("quality", t)

    front, back = load_layout("front"), load_layout("back")
    crops = field_crops(card, front, FRONT_FIELDS if settings.read_address else _DECISION_FIELDS)
    # The number line first: when it reads as a number this is a portrait side and the
    # back-side check (one more recognition) is skipped, which is the common case.
    known = located.number_read
    if known is not None and known[1] >= settings.reject_confidence and validate_id_number(known[0]).valid:
        # the finder already read a valid number here: MOD 11-2 catches every one-digit
        # misread and every swap of neighbours, so a second read would only cost time
        crops.pop("id_number")
        reads = {"id_number": [known]}
    else:
        reads = read_regions(engine, {"id_number": crops.pop("id_number")})
    number_text = "".join(text for text, _ in reads["id_number"])
    looks_back = False
    if not (_looks_like_number(number_text) and len(clean_id_number(number_text)) >= 17):
        probe = read_regions(engine, {"title": [crop(card, back.regions["title_document"])], "name": crops.pop("name")})
        reads["name"] = probe["name"]
        title_text = probe["title"][0][0]
        name_text = "".join(text for text, _ in probe["name"])
        # The back's title lines sit where the front has its name and ethnicity/photo; its
        # validity line (16 digits) sits where the number is, so digits alone cannot tell.
        looks_back = (
            fuzz.partial_ratio(_BACK_TITLE, title_text) >= 60 or fuzz.partial_ratio(_BACK_COUNTRY, name_text) >= 70
        ) and len(clean_id_number(number_text)) != 18
    if not looks_back:
        reads.update(read_regions(engine, crops))
    t = lap("read", t)

    if looks_back:
        back_fields = back_fields_from_reads(read_regions(engine, field_crops(card, back, BACK_FIELDS)))
        t = lap("read_back", t)
        timings["total"] = round((time.perf_counter() - t0) * 1000, 1)
        if settings.expected_side == CardSide.BACK:
            decision, reasons = Decision.ACCEPT, ()
            if any(f.confidence < settings.min_field_confidence for f in back_fields.fields.values()):
                decision, reasons = Decision.REVIEW, (Reason.LOW_CONFIDENCE_FIELD,)
        else:
            decision, reasons = Decision.RETAKE, (Reason.WRONG_SIDE,)
            # photocopies and scans often show both sides: look for a second card
            other = find_card(image, exclude=detection.quad) if searched else None
            if other is not None and other.quad is not None:
                alternative = scan(image, engine, claim, settings, today, detection=other)
                if alternative.side == CardSide.FRONT:
                    return alternative
        return ScanResult(
            decision, reasons, CardSide.BACK, detection, quality, back_fields, None, None, timings, models_digest=digest
        )

    fields = front_fields_from_reads(reads)
    if _digits(number_text) < 10 and not fields.value("name"):
        # nothing of a portrait side was read: no card (or not an ID card) in the quad
        blocking = tuple(r for r in quality.reasons if r in _BLOCKING_QUALITY)
        reasons = blocking or _likely_cause(quality, settings) or (Reason.NO_CARD,)
        if other_document_evidence(image, engine):
            reasons = (Reason.NOT_RESIDENT_ID,)
        timings["total"] = round((time.perf_counter() - t0) * 1000, 1)
        return ScanResult(
            Decision.RETAKE,
            reasons,
            CardSide.UNKNOWN,
            detection,
            quality,
            fields,
            None,
            None,
            timings,
            models_digest=digest,
        )

    fields = _prefer_name_line(fields, located.name_line)
    fields = _prefer_sex_line(fields, located.sex_line)
    if detection.method == "text":
        # a placement from one text line can put the layout a line off: what it reads may
        # confirm a claim, never contradict one (the number is held by its check character)
        fields = _capped(fields, ("name", "sex", "ethnicity", "birth"))
    id_check = validate_id_number(fields.value("id_number"), today=today)
    consistency = cross_check(id_check, fields.birth_date, fields.value("sex") or None)
    match = None
    if claim is not None and (claim.name or claim.id_number):
        match = match_claim(
            claim.name,
            claim.id_number,
            fields.value("name"),
            fields.confidence("name"),
            fields.value("id_number"),
            confident_char_threshold=settings.confident_char_threshold,
        )
    decision, reasons = _decide(quality, fields, id_check, consistency, match, settings)
    if reasons == (Reason.FIELD_UNREADABLE,):
        # a found card that does not read: name the capture problem when there is one
        reasons = _likely_cause(quality, settings) or reasons
    if detection.method == "text" and reasons == (Reason.FIELD_UNREADABLE,):
        # the fallback's only evidence of a card was one text line: with nothing readable
        # where the card's fields should be, there most likely is no card
        reasons = (Reason.NO_CARD,)
    unread = decision == Decision.RETAKE or set(reasons) <= {Reason.RECAPTURE_SUSPECTED, Reason.PHOTOCOPY_SUSPECTED}
    if unread and not located.verified and other_document_evidence(image, engine):
        # a passport or an HK card is not fixed by holding the phone steadier
        decision, reasons = Decision.RETAKE, (Reason.NOT_RESIDENT_ID,)
    lap("decide", t)
    timings["total"] = round((time.perf_counter() - t0) * 1000, 1)
    return ScanResult(
        decision, reasons, CardSide.FRONT, detection, quality, fields, id_check, match, timings, models_digest=digest
    )


__all__ = ["CANONICAL_SIZE", "Claim", "ScanResult", "ScanSettings", "scan"]
