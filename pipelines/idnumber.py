"""GB 11643-1999 citizen identity number: check character, division code, birth date, sex.

Also the two numbers built on the same 18-character scheme that are not a mainland resident's:
the 港澳台居民居住证 (810000/820000/830000 + birth date + sequence + check character) and the
外国人永久居留身份证 (9 + province + nationality + birth date + sequence + check character; the
2004 card: three nationality letters and 12 digits). ``number_kind`` tells them apart.

Written here instead of delegating to python-stdnum's ``cn.ric``: that validator refuses
division codes created after the holder's birth year (common on real cards) and knows
nothing of the 81/82/83 residence-permit prefixes. Its division table is still used as data
(see ``pipelines.divisions``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from pipelines import divisions
from pipelines.reasons import Reason

_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
_CHECK_CHARS = "10X98765432"
_DIGITS = frozenset("0123456789")
# Separators people and OCR put inside a number: dots and slashes, on top of every
# whitespace, dash (Unicode Pd) and invisible format character (Cf), removed by category.
_SEPARATORS = frozenset("._/·\\")
_EARLIEST_BIRTH_YEAR = 1900
_MALE, _FEMALE = "男", "女"


def check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


class IdProblem(StrEnum):
    """Something that makes the number invalid."""

    LENGTH = "length"
    FORMAT = "format"  # a non-digit among the first 17, or a last character other than 0-9/X
    CHECK_CHARACTER = "check_character"
    BIRTH_DATE_INVALID = "birth_date_invalid"
    BIRTH_DATE_FUTURE = "birth_date_future"
    BIRTH_DATE_TOO_OLD = "birth_date_too_old"  # before 1900


class IdWarning(StrEnum):
    """Worth noting, never a reason to call the number invalid."""

    # The bundled table lags behind: counties are created and renamed every year, so an
    # unknown code goes to a person instead of being rejected.
    UNKNOWN_DIVISION_CODE = "unknown_division_code"
    # 81/82/83: residence permit for Hong Kong / Macau / Taiwan residents. Valid and known,
    # but the holder is not a mainland resident, which downstream logic may care about.
    RESIDENCE_PERMIT = "residence_permit"


@dataclass(frozen=True, slots=True)
class IdNumberCheck:
    number: str  # normalised (see normalize_id_number)
    valid: bool  # no problems; warnings do not count
    problems: tuple[IdProblem, ...]
    warnings: tuple[IdWarning, ...]
    division_code: str | None  # first six characters when they are digits
    place: str | None  # place name for the division code, when known
    birth_date: date | None  # only when the eight birth digits form a real date
    sex: str | None  # '男' (odd sequence digit) or '女' (even)
    expected_check_character: str | None  # what the 18th character should be, when computable


def normalize_id_number(text: str) -> str:
    """NFKC (full-width digits become ASCII), drop whitespace and separators, 'x' -> 'X'.

    OCR confusions (O/0, I/1, B/8 …) are deliberately not repaired: a silent repair could
    turn a misread into someone else's valid number. Only the check character's letter
    case is unified, because 'x' and 'X' are the same character on the card.
    """
    if not text:
        return ""
    kept = (
        "X" if ch == "x" else ch
        for ch in unicodedata.normalize("NFKC", str(text))
        if not (ch.isspace() or ch in _SEPARATORS or unicodedata.category(ch) in ("Pd", "Cf"))
    )
    # NFKC again: dropping a character can bring a letter and a combining mark together,
    # and recomposing them keeps the function idempotent.
    return unicodedata.normalize("NFKC", "".join(kept))


def _format_ok(number: str) -> bool:
    # ASCII digits only, except that the last character may be X (whatever the length, so a
    # 17- or 19-character read is a length problem, not also a format one).
    # str.isdigit() is not enough: it accepts '²' or Arabic-Indic digits.
    return set(number[:-1]) <= _DIGITS and (number[-1:] in _DIGITS or number[-1:] in ("", "X"))


def _birth_date(digits8: str) -> date | None:
    try:
        return date(int(digits8[:4]), int(digits8[4:6]), int(digits8[6:8]))
    except ValueError:
        return None


def validate_id_number(number: str, today: date | None = None) -> IdNumberCheck:
    """Validate an 18-character number; never raises, whatever the input.

    Fields (division code, birth date, sex) are decoded whenever the first 17 characters
    are digits and the length is right, even if the check character fails, so callers can
    still compare them with the printed fields or show them to a reviewer.
    """
    today = today or date.today()
    number = normalize_id_number(number)
    problems: list[IdProblem] = []
    warnings: list[IdWarning] = []

    if len(number) != 18:
        problems.append(IdProblem.LENGTH)
    format_ok = _format_ok(number)
    if not format_ok:
        problems.append(IdProblem.FORMAT)

    first17 = number[:17]
    expected = check_character(first17) if len(first17) == 17 and set(first17) <= _DIGITS else None
    # A last character that cannot be a check character at all is only a format problem.
    if len(number) == 18 and format_ok and number[17] != expected:
        problems.append(IdProblem.CHECK_CHARACTER)

    division_code = place = birth = sex = None
    if len(number) == 18 and expected is not None:
        division_code = number[:6]
        prefix = division_code[:2]
        if prefix in divisions.PERMIT_PREFIXES:
            warnings.append(IdWarning.RESIDENCE_PERMIT)
            place = divisions.PERMIT_PREFIXES[prefix]
        elif divisions.is_known(division_code):
            place = divisions.place_name(division_code)
        else:
            warnings.append(IdWarning.UNKNOWN_DIVISION_CODE)

        birth = _birth_date(number[6:14])
        if birth is None:
            problems.append(IdProblem.BIRTH_DATE_INVALID)
        elif birth > today:
            problems.append(IdProblem.BIRTH_DATE_FUTURE)
        elif birth.year < _EARLIEST_BIRTH_YEAR:
            problems.append(IdProblem.BIRTH_DATE_TOO_OLD)

        sex = _MALE if int(number[16]) % 2 else _FEMALE

    return IdNumberCheck(
        number=number,
        valid=not problems,
        problems=tuple(problems),
        warnings=tuple(warnings),
        division_code=division_code,
        place=place,
        birth_date=birth,
        sex=sex,
        expected_check_character=expected,
    )


def cross_check(check: IdNumberCheck, printed_birth: date | None, printed_sex: str | None) -> tuple[Reason, ...]:
    """Reasons the printed birth date / sex disagree with what the number encodes.

    A side is skipped when the printed value is None (or blank) or the number does not
    encode it (e.g. an impossible birth date, which ``validate_id_number`` already reports).
    A printed sex other than 男/女 counts as inconsistent: the card only ever prints those
    two, so anything else is a misread that a person should look at.
    """
    reasons: list[Reason] = []
    if printed_birth is not None and check.birth_date is not None and printed_birth != check.birth_date:
        reasons.append(Reason.BIRTH_DATE_INCONSISTENT)
    if printed_sex is not None and check.sex is not None:
        sex = "".join(unicodedata.normalize("NFKC", printed_sex).split())
        if sex and sex != check.sex:
            reasons.append(Reason.SEX_INCONSISTENT)
    return tuple(reasons)


# Year, month and day with their 年/月 markers; the final 日 is optional because OCR often
# drops or garbles the last character of a line. Lookarounds stop '21990年…' from matching.
_PRINTED_BIRTH = re.compile(r"(?<![0-9])([0-9]{4})年([0-9]{1,2})月([0-9]{1,2})(?![0-9])")


def parse_printed_birth(text: str) -> date | None:
    """Parse the birth line as OCR reads it ('1990年1月1日', '1990 年 01 月 01 日', '出生1990年1月1日').

    Full-width digits and any whitespace are tolerated; returns None when no real date is found.
    """
    if not text:
        return None
    compact = "".join(unicodedata.normalize("NFKC", str(text)).split())
    match = _PRINTED_BIRTH.search(compact)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


# --- numbers of holders who are not mainland residents ------------------------------------------


class NumberKind(StrEnum):
    """Whose 18-character number it is, by its first characters."""

    RESIDENT = "resident"  # a mainland resident ID
    HMT_RESIDENCE_PERMIT = "hmt_residence_permit"  # 81/82/83: Hong Kong, Macau, Taiwan residents
    FOREIGN_PERMANENT_RESIDENCE = "foreign_permanent_residence"  # 9: foreign permanent residents


# the 2004 foreign permanent residence card: ISO 3166 alpha-3 nationality, then 12 digits
_LEGACY_FOREIGN_PERMANENT_RESIDENCE = re.compile(r"[A-Z]{3}[0-9]{12}")


def number_kind(number: str) -> NumberKind:
    """Which holder an 18-character number belongs to; anything else counts as a resident's."""
    number = normalize_id_number(number)
    if len(number) == 18 and number[:2] in divisions.PERMIT_PREFIXES:
        return NumberKind.HMT_RESIDENCE_PERMIT
    if len(number) == 18 and number[:1] == "9":
        return NumberKind.FOREIGN_PERMANENT_RESIDENCE
    return NumberKind.RESIDENT


def residence_permit_number_ok(number: str, today: date | None = None) -> bool:
    """A 港澳台居民居住证 number: 810000/820000/830000, a real birth date, the GB 11643 check character."""
    check = validate_id_number(number, today)
    return check.valid and check.number[:2] in divisions.PERMIT_PREFIXES and check.number[2:6] == "0000"


def foreign_permanent_residence_number_ok(number: str, today: date | None = None) -> bool:
    """A 外国人永久居留身份证 number: 9 and 17 more characters checked as GB 11643, or the 2004 format."""
    normalized = normalize_id_number(number).upper()
    if _LEGACY_FOREIGN_PERMANENT_RESIDENCE.fullmatch(normalized):
        return True
    return normalized[:1] == "9" and validate_id_number(normalized, today).valid
