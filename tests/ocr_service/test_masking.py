"""One mask for every document number: at most the first and the last character stay visible.

The old mask (6 + 4 characters) hid exactly the eight birth digits of a resident ID number, so a
response carrying the birth date beside it gave the number back (issue 11, finding 2).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocr_service.masking import MASK_CHAR, MIN_LENGTH_WITH_ENDS, mask_document_number


def visible_positions(original: str, masked: str) -> list[int]:
    return [i for i, ch in enumerate(masked) if ch != MASK_CHAR]


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("142536197609041151", "1****************1"),  # resident ID: 18 characters
        ("50010419450223450X", "5****************X"),
        ("E12345678", "*********"),  # passport: 9 characters, all hidden
        ("H12345678901", "H**********1"),  # HK/Macau permit
        ("军字第0012345号", "军*********号"),  # military: 11 characters
        ("军字第001号", "*******"),
        ("123456789", "*********"),
        ("1234567890", "1********0"),
        ("X", "*"),
        ("", ""),
        (None, ""),
    ],
)
def test_every_document_type_gets_the_same_mask(number, masked):
    assert mask_document_number(number) == masked


def test_the_birth_digits_and_the_division_code_are_hidden():
    number = "142536197609041151"
    masked = mask_document_number(number)
    assert "19760904" not in masked
    assert "142536" not in masked
    assert "1151" not in masked


@given(st.text())
def test_at_most_the_first_and_the_last_character_are_visible_whatever_the_value(value):
    masked = mask_document_number(value)
    assert len(masked) == len(value)
    visible = visible_positions(value, masked)
    assert len(visible) <= 2
    allowed = {0, len(value) - 1} if len(value) >= MIN_LENGTH_WITH_ENDS else set()
    assert set(visible) <= allowed
    for i in visible:
        assert masked[i] == value[i]
    # whatever is not shown is the mask character
    assert all(masked[i] == MASK_CHAR for i in range(len(value)) if i not in allowed)


@given(st.text(min_size=1))
def test_a_masked_value_never_equals_its_input_unless_the_hidden_part_was_already_masked(value):
    masked = mask_document_number(value)
    hidden = value[1:-1] if len(value) >= MIN_LENGTH_WITH_ENDS else value
    if any(ch != MASK_CHAR for ch in hidden):
        assert masked != value


@given(st.text(alphabet="0123456789Xx军字第号HMECT", min_size=1, max_size=40))
def test_document_like_values_show_at_most_two_characters(value):
    masked = mask_document_number(value)
    assert sum(1 for ch in masked if ch != MASK_CHAR) <= 2
    assert masked != value
