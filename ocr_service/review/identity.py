"""Which identity an approval proposes, and whether a case's photos show more than one person.

The rule (issue 10): values are proposed only from a read whose name *and* number match what
the applicant typed; the claim itself is then proposed, completed with what the card adds (sex,
ethnicity, birth date). Any other read proposes nothing and the reviewer types what the document
shows: pre-filling a read that differs from the claim once verified another person's card.

A read of a valid number other than the claimed one is another person: the case is flagged
``multiple_identities`` and lists every identity seen, other people's numbers masked. An invalid
read number is an OCR slip, not a person, and does not count.

Pure functions over plain values: ``review.service`` decrypts the reads and passes them in.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from ocr_service.masking import mask_document_number
from ocr_service.verification.models import DocumentType
from pipelines.idnumber import validate_id_number

PROPOSED_FIELDS = ("name", "document_number", "sex", "ethnicity", "birth_date")
# the separators of transliterated minority names, as typed on phones and as OCR reads them
_NAME_DOTS = str.maketrans({"•": "·", "・": "·", "‧": "·", "．": "·", "∙": "·", "⋅": "·"})


@dataclass(frozen=True)
class CardRead:
    """What one scan read from the portrait side (empty strings for what it did not read)."""

    name: str
    number: str  # full, normalised
    sex: str = ""
    ethnicity: str = ""
    birth_date: str = ""  # ISO


@dataclass(frozen=True)
class SeenIdentity:
    """One person seen in a case: the claim, or a card whose number differs from it."""

    name: str  # the names typed or read for this number, " / " between them
    number: str  # in full for the claim (reviewers compare it); masked for anyone else
    is_claim: bool
    reads: int  # how many scans read this number


@dataclass(frozen=True)
class Proposal:
    fields: dict[str, str]  # every key of PROPOSED_FIELDS; all empty when nothing may be proposed
    confirmed: bool  # a read matched the claim in name and number
    identities: list[SeenIdentity]  # the claim first
    multiple: bool  # more than one person seen: nothing proposed, the case says so in red


def normalize_name(name: str) -> str:
    return "".join(unicodedata.normalize("NFKC", name or "").split()).translate(_NAME_DOTS)


def _is_person(document_type: DocumentType, number: str) -> bool:
    if not number:
        return False
    return validate_id_number(number).valid if document_type == DocumentType.RESIDENT_ID else True


def derived_from_number(document_type: DocumentType, number: str) -> dict[str, str]:
    """Sex and birth date encoded in a valid resident ID number (nothing for other documents)."""
    if document_type != DocumentType.RESIDENT_ID or not number:
        return {}
    check = validate_id_number(number)
    derived = {}
    if check.birth_date:
        derived["birth_date"] = check.birth_date.isoformat()
    if check.sex:
        derived["sex"] = check.sex
    return derived


def propose(document_type: DocumentType, claim_name: str, claim_number: str, reads: list[CardRead]) -> Proposal:
    """The proposal for a case whose applicant typed ``claim_name``/``claim_number``; ``reads`` oldest first."""
    names: dict[str, list[str]] = {claim_number: [claim_name]}
    counts: dict[str, int] = {claim_number: 0}
    for read in reads:
        if not _is_person(document_type, read.number):
            continue
        seen = names.setdefault(read.number, [])
        counts[read.number] = counts.get(read.number, 0) + 1
        if read.name and normalize_name(read.name) not in {normalize_name(n) for n in seen}:
            seen.append(read.name)
    identities = [
        SeenIdentity(
            name=" / ".join(n for n in names[number] if n) or "（未识别姓名）",
            number=number if number == claim_number else mask_document_number(number),
            is_claim=number == claim_number,
            reads=counts[number],
        )
        for number in names
    ]
    multiple = len(identities) > 1
    empty = dict.fromkeys(PROPOSED_FIELDS, "")
    confirming = [
        read
        for read in reads
        if read.number == claim_number and normalize_name(read.name) == normalize_name(claim_name)
    ]
    if multiple or not confirming:
        return Proposal(empty, bool(confirming), identities, multiple)
    read = confirming[-1]
    fields = {
        "name": claim_name,
        "document_number": claim_number,
        "sex": read.sex,
        "ethnicity": read.ethnicity,
        "birth_date": read.birth_date,
    }
    for key, value in derived_from_number(document_type, claim_number).items():
        fields[key] = fields[key] or value
    return Proposal(fields, True, identities, False)
