"""GB 11643-1999 number validation, cross-checks with the printed fields, birth line parsing."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric

from pipelines.divisions import PERMIT_PREFIXES
from pipelines.idnumber import (
    IdNumberCheck,
    IdProblem,
    IdWarning,
    NumberKind,
    check_character,
    cross_check,
    foreign_permanent_residence_number_ok,
    normalize_id_number,
    number_kind,
    parse_printed_birth,
    residence_permit_number_ok,
    validate_id_number,
)
from pipelines.reasons import Reason

TODAY = date(2024, 6, 1)
seventeen_digits = st.text(alphabet="0123456789", min_size=17, max_size=17)


def make_number(first17: str) -> str:
    return first17 + check_character(first17)


def validate(number: str) -> IdNumberCheck:
    return validate_id_number(number, today=TODAY)


# --- check character -------------------------------------------------------------------


def test_the_standards_own_example_has_check_character_x_and_validates():
    # GB 11643-1999 example; weighted sum 167, 167 mod 11 = 2 -> 'X' (checked by hand).
    assert check_character("11010519491231002") == "X"
    check = validate("11010519491231002X")
    assert check.valid
    assert check.problems == ()
    assert check.warnings == ()
    assert check.birth_date == date(1949, 12, 31)
    assert check.sex == "女"
    assert check.division_code == "110105"
    assert check.place == "北京市朝阳区"
    assert check.expected_check_character == "X"


def test_the_standards_1880_example_passes_the_check_but_is_flagged_as_too_old():
    # Weighted sum 195, 195 mod 11 = 8 -> '4' (checked by hand).
    assert check_character("44052418800101001") == "4"
    check = validate("440524188001010014")
    assert IdProblem.CHECK_CHARACTER not in check.problems
    assert check.problems == (IdProblem.BIRTH_DATE_TOO_OLD,)
    assert check.sex == "男"


def test_a_wrong_check_character_is_reported_with_the_expected_one():
    # Weighted sum 51, 51 mod 11 = 7 -> '5', so the trailing X is wrong.
    check = validate("11010120000101100X")
    assert check.problems == (IdProblem.CHECK_CHARACTER,)
    assert not check.valid
    assert check.expected_check_character == "5"
    assert validate("110101200001011005").valid


def test_check_character_refuses_anything_but_seventeen_digits():
    for bad in ("", "1101051949123100", "110105194912310021", "1101051949123100X"):
        with pytest.raises(ValueError):
            check_character(bad)


@given(seventeen_digits)
def test_appending_the_check_character_to_any_17_digits_passes_the_check(first17):
    check = validate(make_number(first17))
    assert IdProblem.CHECK_CHARACTER not in check.problems
    assert IdProblem.LENGTH not in check.problems
    assert IdProblem.FORMAT not in check.problems


@given(seventeen_digits, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_changing_any_single_character_breaks_the_check(first17, position, replacement):
    number = make_number(first17)
    if position < 17 and replacement == "X":
        replacement = "0"
    if number[position] == replacement:
        replacement = "1" if replacement == "0" else "0"
    changed = number[:position] + replacement + number[position + 1 :]
    assert IdProblem.CHECK_CHARACTER in validate(changed).problems


@given(seventeen_digits, st.integers(0, 15))
def test_swapping_two_adjacent_different_digits_breaks_the_check(first17, position):
    a, b = first17[position], first17[position + 1]
    if a == b:
        return
    swapped = first17[:position] + b + a + first17[position + 2 :]
    number = make_number(first17)
    assert IdProblem.CHECK_CHARACTER in validate(swapped + number[17]).problems


# --- birth date, sex -------------------------------------------------------------------


def test_february_30_is_an_invalid_birth_date():
    check = validate(make_number("11010519900230001"))
    assert check.problems == (IdProblem.BIRTH_DATE_INVALID,)
    assert check.birth_date is None
    assert check.sex == "男"  # the rest is still decoded


def test_month_13_is_an_invalid_birth_date():
    assert validate(make_number("11010519901301001")).problems == (IdProblem.BIRTH_DATE_INVALID,)


def test_a_birth_date_after_today_is_in_the_future_but_today_is_fine():
    tomorrow = make_number("11010520240602001")
    assert validate(tomorrow).problems == (IdProblem.BIRTH_DATE_FUTURE,)
    assert validate_id_number(tomorrow, today=date(2024, 6, 2)).valid
    assert validate(make_number("11010520240601001")).valid


def test_a_birth_before_1900_is_too_old_and_1900_itself_is_fine():
    assert validate(make_number("11010518991231001")).problems == (IdProblem.BIRTH_DATE_TOO_OLD,)
    assert validate(make_number("11010519000101001")).valid


@given(st.integers(0, 9))
def test_sex_follows_the_parity_of_the_seventeenth_digit(digit):
    check = validate(make_number(f"1101051990010100{digit}"))
    assert check.valid
    assert check.sex == ("男" if digit % 2 else "女")


# --- division codes --------------------------------------------------------------------


def test_an_unknown_division_code_warns_but_the_number_stays_valid():
    check = validate(make_number("99999919900101001"))
    assert check.valid
    assert check.warnings == (IdWarning.UNKNOWN_DIVISION_CODE,)
    assert check.place is None
    assert check.division_code == "999999"


@pytest.mark.parametrize("prefix", ["81", "82", "83"])
def test_residence_permit_prefixes_are_valid_with_a_permit_warning(prefix):
    check = validate(make_number(f"{prefix}000019900101001"))
    assert check.valid
    assert check.warnings == (IdWarning.RESIDENCE_PERMIT,)
    assert check.place == PERMIT_PREFIXES[prefix]


def test_a_district_created_after_the_birth_year_is_valid_here_but_rejected_by_stdnum():
    # 310115 is Shanghai Pudong (created 1992); people born before then were re-registered
    # there and their cards carry the new code. Likewise permits (810000 dates from 1997,
    # 830000 is not in the table at all). This is why we do not use stdnum's validator.
    for number in (
        make_number("31011519500101001"),
        make_number("81000019900101001"),
        make_number("83000019900101002"),
    ):
        assert validate(number).valid, number
        assert not ric.is_valid(number), number
    assert validate(make_number("31011519500101001")).place == "上海市浦东新区"


# --- normalisation and garbage ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "11010519491231002x",
        "１１０１０５１９４９１２３１００２Ｘ",
        "１１０１０５１９４９１２３１００２ｘ",
        " 110105 19491231 002X ",
        "110105-19491231-002X",
        "110105\u300019491231\u3000002X",
        "110105\u200b19491231002X",
    ],
)
def test_case_width_spaces_and_separators_are_normalised_away(text):
    assert normalize_id_number(text) == "11010519491231002X"
    assert validate(text).valid


def test_ocr_letter_confusions_are_not_repaired():
    check = validate("11010519491231OO2X")
    assert check.number == "11010519491231OO2X"
    assert IdProblem.FORMAT in check.problems
    assert check.birth_date is None


def test_a_non_ascii_digit_is_a_format_problem():
    check = validate("11010519491231002\u0661")  # ARABIC-INDIC DIGIT ONE in the check position
    assert check.problems == (IdProblem.FORMAT,)


def test_wrong_lengths_are_reported_and_17_digits_still_give_the_expected_check_character():
    short = validate("11010519491231002")
    assert short.problems == (IdProblem.LENGTH,)
    assert short.expected_check_character == "X"
    assert short.birth_date is None
    assert validate("11010519491231002X1").problems == (IdProblem.LENGTH, IdProblem.FORMAT)
    assert validate("").problems == (IdProblem.LENGTH,)


def test_a_letter_other_than_x_at_the_end_is_a_format_problem():
    assert validate("11010519491231002Y").problems == (IdProblem.FORMAT,)


@given(st.text())
def test_any_text_is_validated_without_raising(text):
    check = validate(text)
    assert check.valid == (not check.problems)
    assert check.number == normalize_id_number(text)


@given(st.text(alphabet="0123456789Xx -１２Ｘ", max_size=25))
def test_number_like_text_is_validated_without_raising(text):
    check = validate(text)
    assert check.valid == (not check.problems)
    if check.valid:
        assert len(check.number) == 18
        assert check.birth_date is not None


@given(st.text())
def test_normalize_id_number_is_idempotent(text):
    once = normalize_id_number(text)
    assert normalize_id_number(once) == once


# --- cross_check -----------------------------------------------------------------------

WOMAN_1949 = validate("11010519491231002X")


def test_printed_fields_that_agree_with_the_number_give_no_reasons():
    assert cross_check(WOMAN_1949, date(1949, 12, 31), "女") == ()


def test_a_different_printed_birth_date_is_inconsistent():
    assert cross_check(WOMAN_1949, date(1949, 12, 30), "女") == (Reason.BIRTH_DATE_INCONSISTENT,)


def test_a_different_printed_sex_is_inconsistent():
    assert cross_check(WOMAN_1949, date(1949, 12, 31), "男") == (Reason.SEX_INCONSISTENT,)


def test_both_disagreeing_give_both_reasons():
    assert cross_check(WOMAN_1949, date(1990, 1, 1), "男") == (
        Reason.BIRTH_DATE_INCONSISTENT,
        Reason.SEX_INCONSISTENT,
    )


def test_a_side_that_was_not_read_is_skipped():
    assert cross_check(WOMAN_1949, None, None) == ()
    assert cross_check(WOMAN_1949, None, "男") == (Reason.SEX_INCONSISTENT,)
    assert cross_check(WOMAN_1949, date(1990, 1, 1), None) == (Reason.BIRTH_DATE_INCONSISTENT,)


def test_printed_sex_tolerates_spaces_and_a_misread_sex_is_inconsistent():
    assert cross_check(WOMAN_1949, None, " 女\u3000") == ()
    assert cross_check(WOMAN_1949, None, "") == ()
    assert cross_check(WOMAN_1949, None, "安") == (Reason.SEX_INCONSISTENT,)


def test_a_number_without_a_real_birth_date_cannot_contradict_the_printed_one():
    check = validate(make_number("11010519900230002"))
    assert cross_check(check, date(1990, 2, 28), "女") == ()


# --- parse_printed_birth ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "1990年1月1日",
        "1990 年 1 月 1 日",
        "1990年01月01日",
        "1990年1月1",
        "１９９０年１月１日",
        "出生 1990年1月1日",
        "出生1990年 1月 1日",
        " 1990\u3000年\u30001\u3000月\u30001\u3000日 ",
    ],
)
def test_printed_birth_lines_parse(text):
    assert parse_printed_birth(text) == date(1990, 1, 1)


def test_two_digit_month_and_day_parse():
    assert parse_printed_birth("1987年12月25日") == date(1987, 12, 25)


@pytest.mark.parametrize(
    "text", ["", "1990年2月30日", "1990年13月1日", "1990-01-01", "90年1月1日", "21990年1月1日", "年月日", "abc"]
)
def test_impossible_birth_lines_give_none(text):
    assert parse_printed_birth(text) is None


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)),
    st.booleans(),
    st.sampled_from(["", " ", "\u3000"]),
)
def test_any_printed_date_round_trips(day, zero_pad, space):
    fmt = "{:02d}" if zero_pad else "{}"
    text = f"{day.year}{space}年{space}{fmt.format(day.month)}{space}月{space}{fmt.format(day.day)}{space}日"
    assert parse_printed_birth(text) == day


@given(st.text())
def test_parse_printed_birth_never_raises(text):
    result = parse_printed_birth(text)
    assert result is None or isinstance(result, date)


# --- residence permits and the foreign permanent residence ID ------------------------------


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        ("81", NumberKind.HMT_RESIDENCE_PERMIT),
        ("82", NumberKind.HMT_RESIDENCE_PERMIT),
        ("83", NumberKind.HMT_RESIDENCE_PERMIT),
        ("91", NumberKind.FOREIGN_PERMANENT_RESIDENCE),
        ("11", NumberKind.RESIDENT),
    ],
)
def test_the_first_digits_tell_a_residence_permit_or_a_foreign_permanent_residence_id(prefix, kind):
    assert number_kind(make_number(prefix + "0000199001011234"[:15])) == kind


def test_a_residence_permit_number_has_a_permit_prefix_four_zeros_and_a_valid_check_character():
    assert residence_permit_number_ok(make_number("81000019900101123"), today=TODAY)
    assert residence_permit_number_ok(" 830000 19881212 0042 ", today=TODAY)
    assert not residence_permit_number_ok(make_number("81010119900101123"), today=TODAY)  # not 810000
    assert not residence_permit_number_ok(make_number("11010119900101123"), today=TODAY)  # a mainland number
    assert not residence_permit_number_ok("810000199001011231", today=TODAY)  # check character
    assert not residence_permit_number_ok(make_number("81000020300101123"), today=TODAY)  # born in the future


def test_a_foreign_permanent_residence_number_is_the_9_format_or_the_2004_letters_and_digits():
    assert foreign_permanent_residence_number_ok(make_number("91184019850505001"), today=TODAY)
    assert foreign_permanent_residence_number_ok("usa310055080101", today=TODAY)
    assert not foreign_permanent_residence_number_ok(make_number("81184019850505001"), today=TODAY)
    assert not foreign_permanent_residence_number_ok("911840198505050018", today=TODAY)  # check character
    assert not foreign_permanent_residence_number_ok("US3100550801011", today=TODAY)
    assert not foreign_permanent_residence_number_ok("E12345678", today=TODAY)
