"""Claim (what the applicant typed) against OCR read: exact, near (a person looks), mismatch."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.idnumber import check_character
from pipelines.matching import ClaimMatch, NameMatch, NumberMatch, match_claim, normalize_name
from pipelines.reasons import Reason

NUMBER = "11010519491231002X"
NAME = "张三丰"
CONFIDENT = 0.99
UNSURE = 0.60


def match(claim_name, read_name, confidence=CONFIDENT, **kwargs) -> ClaimMatch:
    return match_claim(claim_name, NUMBER, read_name, confidence, NUMBER, **kwargs)


# --- normalize_name --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["张三丰", " 张三丰 ", "张 三 丰", "张\u3000三\u3000丰", "张\t三\n丰", "张\u200b三丰", "\ufeff张三丰"],
)
def test_spaces_and_invisible_characters_are_removed(text):
    assert normalize_name(text) == "张三丰"


def test_kangxi_radicals_and_compatibility_ideographs_fold_to_the_ordinary_character():
    # OCR sometimes emits the look-alike radical (U+2F08 ⼈) or compatibility form (U+F900 豈).
    assert normalize_name("王\u2f08杰") == "王人杰"
    assert normalize_name("\uf900") == "\u8c48"
    assert match("王人杰", "王\u2f08杰").name is NameMatch.EXACT


def test_full_width_latin_becomes_half_width():
    assert normalize_name("ＡＢＣ　ｄ") == "ABCd"


@pytest.mark.parametrize(
    "dot",
    [
        "\u00b7",  # ·
        "\u2022",  # •
        "\uff0e",  # ．
        ".",
        "\u2027",  # ‧
        "\u30fb",  # ・
        "\uff65",  # ･
        "\u22c5",  # ⋅
        "\u2219",  # ∙
        "\u0387",  # Greek ano teleia
        "\ufe52",  # ﹒
        "\u2e31",  # ⸱
        "\u4e36",  # 丶
    ],
)
def test_every_middle_dot_variant_becomes_the_middle_dot(dot):
    assert normalize_name(f"买买提{dot}艾力") == "买买提·艾力"
    result = match("买买提·艾力", f"买买提 {dot} 艾力")
    assert result.name is NameMatch.EXACT
    assert result.reasons == ()


def test_normalize_name_of_nothing_is_empty():
    assert normalize_name(None) == ""
    assert normalize_name(" \u3000 ") == ""


@given(st.text())
def test_normalize_name_is_idempotent(text):
    once = normalize_name(text)
    assert normalize_name(once) == once


# --- numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "read", ["11010519491231002X", "11010519491231002x", "１１０１０５１９４９１２３１００２Ｘ", "110105 19491231 002X"]
)
def test_the_number_matches_across_case_width_and_spaces(read):
    result = match_claim(NAME, "11010519491231002x", NAME, CONFIDENT, read)
    assert result.number is NumberMatch.EXACT
    assert result.reasons == ()


def test_a_number_one_digit_off_is_a_mismatch_however_it_was_read():
    result = match_claim(NAME, NUMBER, NAME, CONFIDENT, "11010519491231003X")
    assert result.number is NumberMatch.MISMATCH
    assert result.name is NameMatch.EXACT
    assert result.reasons == (Reason.ID_NUMBER_MISMATCH,)


def test_ocr_letter_confusions_in_the_number_are_not_forgiven():
    result = match_claim(NAME, "110105194912310O2X", NAME, CONFIDENT, NUMBER)
    assert result.number is NumberMatch.MISMATCH


# --- names -----------------------------------------------------------------------------


def test_an_identical_name_is_exact():
    result = match(NAME, NAME)
    assert (result.name, result.number, result.name_distance, result.reasons) == (
        NameMatch.EXACT,
        NumberMatch.EXACT,
        0,
        (),
    )


def test_one_different_character_read_with_low_confidence_is_a_near_match():
    result = match("王喆", "王哲", UNSURE)
    assert result.name is NameMatch.NEAR
    assert result.name_distance == 1
    assert result.reasons == (Reason.NAME_NEAR_MATCH,)


def test_one_different_character_read_confidently_is_a_mismatch():
    result = match("王喆", "王哲", CONFIDENT)
    assert result.name is NameMatch.MISMATCH
    assert result.reasons == (Reason.NAME_MISMATCH,)


def test_confidence_exactly_at_the_threshold_counts_as_confident():
    assert match("王喆", "王哲", 0.95).name is NameMatch.MISMATCH
    assert match("王喆", "王哲", 0.9499).name is NameMatch.NEAR
    assert match("王喆", "王哲", 0.9, confident_char_threshold=0.8).name is NameMatch.MISMATCH


def test_unknown_or_nan_confidence_counts_as_uncertain():
    assert match("王喆", "王哲", None).name is NameMatch.NEAR
    assert match("王喆", "王哲", float("nan")).name is NameMatch.NEAR


def test_two_different_characters_are_a_mismatch_even_when_unsure():
    result = match("张三丰", "章山丰", 0.1)
    assert result.name is NameMatch.MISMATCH
    assert result.name_distance == 2
    assert result.reasons == (Reason.NAME_MISMATCH,)


def test_one_extra_or_missing_character_read_with_low_confidence_is_near():
    assert match("张三", "张三丰", UNSURE).name is NameMatch.NEAR
    assert match("张三丰", "张三", UNSURE).name is NameMatch.NEAR
    assert match("张三丰", "张丰", CONFIDENT).name is NameMatch.MISMATCH


def test_a_first_or_last_character_missing_is_a_cropping_doubt_even_when_read_confidently():
    # dev-photos img_0028: a card placed from its text lines, the name crop cut at 张 of 张永泽;
    # a confident "永泽" said nothing about the unseen character and was rejected
    assert match("张永泽", "永泽", CONFIDENT).name is NameMatch.NEAR
    assert match("张永泽", "张永", CONFIDENT).name is NameMatch.NEAR


def test_a_dropped_middle_dot_is_near_even_when_read_confidently():
    result = match("买买提·艾力", "买买提艾力", CONFIDENT)
    assert result.name is NameMatch.NEAR
    assert result.reasons == (Reason.NAME_NEAR_MATCH,)


def test_both_name_and_number_reasons_are_reported():
    result = match_claim("王喆", NUMBER, "王哲", CONFIDENT, "110105194912310021")
    assert result.reasons == (Reason.ID_NUMBER_MISMATCH, Reason.NAME_MISMATCH)


# --- per-character confidences ---------------------------------------------------------


def test_the_differing_characters_own_low_confidence_makes_it_near_despite_a_high_overall():
    result = match("王喆", "王哲", CONFIDENT, read_name_char_confidences=[0.99, 0.50])
    assert result.name is NameMatch.NEAR


def test_the_differing_characters_own_high_confidence_makes_it_a_mismatch_despite_a_low_overall():
    result = match("王喆", "王哲", UNSURE, read_name_char_confidences=[0.30, 0.99])
    assert result.name is NameMatch.MISMATCH


def test_per_character_confidences_follow_the_raw_text_through_normalisation():
    # The raw read has spaces; the confidences are aligned with the raw characters.
    raw = " 王 哲"
    confs = [0.99, 0.99, 0.99, 0.40]
    assert match("王喆", raw, CONFIDENT, read_name_char_confidences=confs).name is NameMatch.NEAR
    confs = [0.10, 0.10, 0.10, 0.99]
    assert match("王喆", raw, UNSURE, read_name_char_confidences=confs).name is NameMatch.MISMATCH


def test_misaligned_per_character_confidences_fall_back_to_the_overall_confidence():
    assert match("王喆", "王哲", UNSURE, read_name_char_confidences=[0.99]).name is NameMatch.NEAR
    assert match("王喆", "王哲", CONFIDENT, read_name_char_confidences=[0.1]).name is NameMatch.MISMATCH


def test_an_extra_read_character_uses_its_own_confidence():
    confs = [0.99, 0.99, 0.30]
    assert match("张三", "张三丰", CONFIDENT, read_name_char_confidences=confs).name is NameMatch.NEAR


def test_a_missing_character_has_no_own_confidence_so_the_overall_one_decides():
    assert match("张三丰", "张丰", CONFIDENT, read_name_char_confidences=[0.1, 0.1]).name is NameMatch.MISMATCH
    assert match("张三丰", "张丰", UNSURE, read_name_char_confidences=[0.99, 0.99]).name is NameMatch.NEAR


# --- missing sides ---------------------------------------------------------------------


def test_without_a_claim_nothing_is_compared_and_no_reason_is_given():
    result = match_claim(None, None, NAME, CONFIDENT, NUMBER)
    assert (result.name, result.number, result.reasons) == (NameMatch.NO_CLAIM, NumberMatch.NO_CLAIM, ())
    assert match_claim(" ", "", NAME, CONFIDENT, NUMBER).name is NameMatch.NO_CLAIM


def test_a_field_not_read_is_reported_without_a_reason():
    result = match_claim(NAME, NUMBER, None, None, "  ")
    assert (result.name, result.number, result.reasons) == (NameMatch.NOT_READ, NumberMatch.NOT_READ, ())
    assert result.name_distance == 3


# --- properties ------------------------------------------------------------------------

names = st.text(alphabet=st.characters(codec="utf-8", categories=["Lo", "Lu", "Ll", "Po", "Zs"]), max_size=8)


@given(st.text())
def test_a_name_always_matches_itself_exactly(name):
    result = match(name, name, 0.0)
    expected = NameMatch.EXACT if normalize_name(name) else NameMatch.NO_CLAIM
    assert result.name is expected
    assert result.reasons == ()


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_a_valid_number_matches_itself_in_either_case(first17):
    number = first17 + check_character(first17)
    result = match_claim(NAME, number.lower(), NAME, CONFIDENT, number)
    assert result.number is NumberMatch.EXACT


@given(
    st.text(alphabet="张王李赵喆堃淼昇买提艾力·", min_size=1, max_size=6),
    st.data(),
    st.floats(min_value=0.0, max_value=0.9499),
)
def test_a_single_uncertain_substitution_is_never_a_mismatch(name, data, confidence):
    position = data.draw(st.integers(0, len(name) - 1))
    replacement = data.draw(st.sampled_from("甲乙丙丁"))
    read = name[:position] + replacement + name[position + 1 :]
    result = match(name, read, confidence)
    assert result.name is NameMatch.NEAR
    assert Reason.NAME_MISMATCH not in result.reasons


@given(names, names, st.floats(0.0, 1.0), st.none() | st.lists(st.floats(0.0, 1.0), max_size=10))
def test_match_claim_never_raises_and_reasons_follow_the_outcome(claim, read, confidence, confs):
    result = match(claim, read, confidence, read_name_char_confidences=confs)
    assert (Reason.NAME_MISMATCH in result.reasons) == (result.name is NameMatch.MISMATCH)
    assert (Reason.NAME_NEAR_MATCH in result.reasons) == (result.name is NameMatch.NEAR)
    if result.name is NameMatch.EXACT:
        assert result.name_distance == 0


def test_traditional_forms_of_common_name_characters_match_the_simplified_claim():
    result = match_claim("黄悦", "11010519491231002X", "黃悅", 0.99, "11010519491231002X")
    assert result.name == NameMatch.EXACT
