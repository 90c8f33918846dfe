"""The one mask of a document number, whatever the document: at most two characters stay visible.

A mask that keeps the division code and the last four digits of a resident ID number hides
exactly its eight birth digits, so any answer that also carries the birth date undoes it.
This one keeps only the first and the last character, and only of a value long enough that
the other characters still cannot be guessed; shorter values are hidden whole. The length is
kept, so a reader can still tell an 18-character number from a 9-character passport number.
"""

from __future__ import annotations

MASK_CHAR = "*"
# Values shorter than this are masked whole; from this length on the first and the last show.
MIN_LENGTH_WITH_ENDS = 10


def mask_document_number(number: str | None) -> str:
    """``1****************1`` for an 18-character number; ``*********`` for a 9-character one."""
    if not number:
        return ""
    if len(number) < MIN_LENGTH_WITH_ENDS:
        return MASK_CHAR * len(number)
    return number[0] + MASK_CHAR * (len(number) - 2) + number[-1]
