"""Machine-readable zones: ICAO check digits, the mainland HK/Macau permit's CS line, TD1/TD2/TD3 via ``mrz``."""

from __future__ import annotations

import pytest

from ocr_service.verification.mrz import check_digit, find_mrz, parse_cs_line, parse_icao

# ICAO 9303 part 3's specimen passport (Anna Maria Eriksson of Utopia)
TD3 = ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"]
TD1 = ["I<UTOD231458907<<<<<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<6", "ERIKSSON<<ANNA<MARIA<<<<<<<<<<"]


def cs_line(number: str = "C12345678", expiry: str = "290531", birth: str = "900101") -> str:
    """A CS line built with ICAO 7-3-1 check digits (computed here by hand, not by the parser)."""

    def digit(text: str) -> str:
        values = [int(c) if c.isdigit() else (0 if c == "<" else ord(c) - 55) for c in text]
        return str(sum(v * (7, 3, 1)[i % 3] for i, v in enumerate(values)) % 10)

    body = number + digit(number) + "<" + expiry + digit(expiry) + "<" + birth + digit(birth) + "<"
    composite = digit(body[0:10] + body[11:18] + body[19:26])
    return "CS" + body + composite


def test_check_digits_follow_the_icao_specimen():
    assert check_digit("L898902C3") == "6"
    assert check_digit("740812") == "2"
    assert check_digit("120415") == "9"
    assert check_digit("D23145890") == "7"
    assert check_digit("<<<<<<") == "0"


def test_a_well_formed_cs_line_parses_with_every_check_digit_holding():
    line = cs_line()
    assert len(line) == 30
    reading = parse_cs_line(line)
    assert reading.format == "CS" and reading.valid
    assert reading.fields == {
        "document_type": "CS",
        "document_number": "C12345678",
        "expiry_date": "290531",
        "birth_date": "900101",
    }
    assert [c.field for c in reading.checks] == ["document_number", "expiry_date", "birth_date", "composite"]


@pytest.mark.parametrize("position", [11, 19, 27, 29])
def test_a_wrong_check_digit_in_a_cs_line_is_reported(position):
    line = cs_line()
    wrong = str((int(line[position]) + 1) % 10)
    reading = parse_cs_line(line[:position] + wrong + line[position + 1 :])
    assert not reading.valid
    assert sum(not c.ok for c in reading.checks) >= 1


def test_a_misread_number_in_a_cs_line_fails_its_digit_and_the_composite():
    line = cs_line()
    reading = parse_cs_line(line[:5] + "9" + line[6:])  # C12345678 -> C12945678
    failed = {c.field for c in reading.checks if not c.ok}
    assert failed == {"document_number", "composite"}


@pytest.mark.parametrize("bad", ["CS123", "XX" + cs_line()[2:], cs_line()[:12] + "X" + cs_line()[13:]])
def test_malformed_cs_lines_are_refused(bad):
    with pytest.raises(ValueError):
        parse_cs_line(bad)


def test_a_td3_passport_zone_parses_with_its_check_digits():
    reading = parse_icao(TD3)
    assert reading.format == "TD3" and reading.valid
    assert reading.fields["surname"] == "ERIKSSON" and reading.fields["document_number"] == "L898902C3"


def test_a_td1_card_zone_parses_and_a_changed_birth_date_fails_its_digit():
    assert parse_icao(TD1).valid
    tampered = [TD1[0], "7408132F1204159UTO<<<<<<<<<<<6", TD1[2]]
    reading = parse_icao(tampered)
    assert not reading.valid
    assert {c.field for c in reading.checks if not c.ok} >= {"birth_date"}


def test_the_zone_is_found_among_noisy_ocr_lines():
    texts = ["PASSPORT", "Surname / Nom", TD3[0].replace("<<", "« <", 2), " " + TD3[1][:20] + " " + TD3[1][20:]]
    reading = find_mrz(texts)
    assert reading is not None and reading.format == "TD3" and reading.valid
    assert find_mrz(["往来港澳通行证", cs_line()]).format == "CS"
    assert find_mrz(["nothing", "here"]) is None
