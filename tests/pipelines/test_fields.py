import random

import cv2
import numpy as np
import pytest

from pipelines.card import CANONICAL_SIZE
from pipelines.fields import (
    clean_address,
    clean_id_number,
    clean_name,
    clean_sex,
    is_caption_text,
    parse_validity,
    read_back,
    read_front,
)
from samples.identity import random_identity
from samples.render import render_back, render_front


def rectified(card: np.ndarray) -> np.ndarray:
    """A rendered card scaled to the canonical size, as the rectifier would deliver it."""
    return cv2.resize(card, CANONICAL_SIZE, interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_front_fields_are_read_from_their_layout_regions(engine, seed):
    rng = random.Random(seed)
    identity = random_identity(rng)
    fields = read_front(rectified(render_front(identity, rng)), engine)
    assert fields.value("id_number") == identity.id_number
    assert fields.value("name") == identity.name
    assert fields.value("sex") == identity.sex
    assert fields.birth_date == identity.birth
    assert fields.confidence("id_number") > 0.9


def test_a_three_line_address_is_read_in_order(engine):
    rng = random.Random(11)
    identity = random_identity(rng, address_lines=3)
    fields = read_front(rectified(render_front(identity, rng)), engine)
    assert fields.value("address") == identity.address


def test_rare_character_and_middle_dot_names_are_read(engine):
    for seed, kind in ((31, "rare"), (32, "dotted"), (33, "tibetan")):
        rng = random.Random(seed)
        identity = random_identity(rng, name_kind=kind)
        fields = read_front(rectified(render_front(identity, rng)), engine)
        assert fields.value("name") == identity.name, kind


def test_back_authority_and_validity_are_read(engine):
    rng = random.Random(21)
    identity = random_identity(rng)
    fields = read_back(rectified(render_back(identity, rng)), engine)
    assert fields.value("authority") == identity.authority
    assert fields.valid_from == identity.valid_from
    assert fields.long_term == (identity.valid_until is None)
    if identity.valid_until:
        assert fields.valid_until == identity.valid_until


def test_an_empty_card_yields_no_fields(engine):
    blank = np.full((CANONICAL_SIZE[1], CANONICAL_SIZE[0], 3), 235, np.uint8)
    fields = read_front(blank, engine)
    assert fields.value("name") == "" and fields.value("id_number") == ""
    assert fields.confidence("name") == 0.0


def test_label_words_caught_in_a_crop_are_stripped():
    assert clean_name("姓名 张三") == "张三"
    assert clean_sex("性别男") == "男"
    assert clean_id_number("公民身份号码 11010519491231002x") == "11010519491231002X"
    assert clean_address(["住址湖北省武汉市", "武昌区中南路 9 号"]) == "湖北省武汉市武昌区中南路9号"


def test_validity_parses_dates_and_long_term():
    from datetime import date

    assert parse_validity("2015.03.01-2035.03.01") == (date(2015, 3, 1), date(2035, 3, 1), False)
    assert parse_validity("2010.10.09-长期") == (date(2010, 10, 9), None, True)
    assert parse_validity("有效期限") == (None, None, False)


def test_a_stray_glyph_before_the_name_caption_is_dropped():
    assert clean_name("练姓名闫婉") == "闫婉"
    assert clean_name("姓名 张三") == "张三"


def test_a_name_read_holding_a_caption_word_is_no_name():
    # the sex line caught by a name crop sitting a little low
    assert is_caption_text("别男民族汉")
    assert not is_caption_text("欧阳娜娜")
