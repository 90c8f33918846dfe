"""Machine-readable zones of passports and permits: find MRZ lines in OCR text, parse them, check the digits.

Read once per uploaded photo, in the background like a scan (``verification.service``), and
stored with the attempt (``reading_json``); the case page shows what was stored.

ICAO 9303 TD1 (3x30), TD2 (2x36) and TD3 (2x44, passports) go to the ``mrz`` package. The
mainland residents' permit to Hong Kong and Macau (往来港澳通行证, card type since 2014) prints
one 30-character line starting ``CS`` that no library parses; :func:`parse_cs_line` does, with
the layout we read from specimens::

    CS  C12345678  9  <  YYMMDD  9  <  YYMMDD  9  <  9
    ^^  number(9)  cd    expiry  cd    birth   cd    composite cd (over number..birth cd)

Check digits are ICAO's: values 0-9, A-Z = 10-35, ``<`` = 0, weights 7-3-1 repeating, mod 10.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_WEIGHTS = (7, 3, 1)
_MRZ_CHARS = re.compile(r"^[A-Z0-9<]+$")


def check_digit(text: str) -> str:
    """The ICAO 9303 check digit of ``text`` (digits, A-Z, ``<``)."""
    total = 0
    for i, char in enumerate(text):
        if char.isdigit():
            value = int(char)
        elif "A" <= char <= "Z":
            value = ord(char) - ord("A") + 10
        elif char == "<":
            value = 0
        else:
            raise ValueError(f"not an MRZ character: {char!r}")
        total += value * _WEIGHTS[i % 3]
    return str(total % 10)


@dataclass(frozen=True)
class CheckDigit:
    field: str
    expected: str  # computed from the data
    printed: str

    @property
    def ok(self) -> bool:
        return self.expected == self.printed


@dataclass(frozen=True)
class MrzReading:
    """What the zone says and whether its check digits hold."""

    format: str  # TD1 | TD2 | TD3 | CS
    lines: tuple[str, ...]
    fields: dict[str, str]
    checks: tuple[CheckDigit, ...] = field(default_factory=tuple)

    @property
    def valid(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)


def parse_cs_line(line: str) -> MrzReading:
    """Parse the single ``CS`` line of a mainland residents' HK/Macau permit (ValueError if malformed)."""
    line = normalize_line(line)
    if len(line) != 30 or not line.startswith("CS"):
        raise ValueError("a CS line has 30 characters and starts with CS")
    number, number_cd = line[2:11], line[11]
    expiry, expiry_cd = line[13:19], line[19]
    birth, birth_cd = line[21:27], line[27]
    composite_cd = line[29]
    if line[12] != "<" or line[20] != "<" or line[28] != "<":
        raise ValueError("filler characters missing from the CS line")
    if not (expiry.isdigit() and birth.isdigit()):
        raise ValueError("dates in the CS line must be digits")
    checks = (
        CheckDigit("document_number", check_digit(number), number_cd),
        CheckDigit("expiry_date", check_digit(expiry), expiry_cd),
        CheckDigit("birth_date", check_digit(birth), birth_cd),
        CheckDigit("composite", check_digit(line[2:12] + line[13:20] + line[21:28]), composite_cd),
    )
    fields = {
        "document_type": "CS",
        "document_number": number.replace("<", ""),
        "expiry_date": expiry,
        "birth_date": birth,
    }
    return MrzReading("CS", (line,), fields, checks)


def parse_icao(lines: list[str]) -> MrzReading:
    """Parse a TD1/TD2/TD3 zone with the ``mrz`` package (ValueError when it is none of them)."""
    from mrz.checker.td1 import TD1CodeChecker
    from mrz.checker.td2 import TD2CodeChecker
    from mrz.checker.td3 import TD3CodeChecker

    lines = [normalize_line(line) for line in lines]
    shapes = {(3, 30): ("TD1", TD1CodeChecker), (2, 36): ("TD2", TD2CodeChecker), (2, 44): ("TD3", TD3CodeChecker)}
    shape = (len(lines), len(lines[0]) if lines else 0)
    if shape not in shapes or any(len(line) != shape[1] for line in lines):
        raise ValueError("not a TD1 (3x30), TD2 (2x36) or TD3 (2x44) zone")
    name, checker_class = shapes[shape]
    checker = checker_class("\n".join(lines), check_expiry=False)
    f = checker.fields()
    fields = {
        "document_type": f.document_type,
        "country": f.country,
        "surname": f.surname,
        "given_names": f.name,
        "document_number": f.document_number,
        "nationality": f.nationality,
        "birth_date": f.birth_date,
        "sex": f.sex,
        "expiry_date": f.expiry_date,
    }
    number_line = lines[1] if name != "TD1" else lines[0]
    number_field = number_line[0:9] if name != "TD1" else number_line[5:14]
    birth_line = lines[1]
    birth_at = 13 if name != "TD1" else 0
    checks = [
        CheckDigit("document_number", check_digit(number_field), f.document_number_hash),
        CheckDigit("birth_date", check_digit(birth_line[birth_at : birth_at + 6]), f.birth_date_hash),
        CheckDigit("expiry_date", check_digit(birth_line[birth_at + 8 : birth_at + 14]), f.expiry_date_hash),
    ]
    checks.append(CheckDigit("composite", _icao_composite(name, lines), f.final_hash))
    return MrzReading(name, tuple(lines), fields, tuple(checks))


def _icao_composite(name: str, lines: list[str]) -> str:
    if name == "TD3":
        line = lines[1]
        return check_digit(line[0:10] + line[13:20] + line[21:43])
    if name == "TD2":
        line = lines[1]
        return check_digit(line[0:10] + line[13:20] + line[21:35])
    return check_digit(lines[0][5:30] + lines[1][0:7] + lines[1][8:15] + lines[1][18:29])


def normalize_line(text: str) -> str:
    """OCR text to MRZ characters: no spaces, upper case, the look-alikes of ``<`` made ``<``."""
    text = "".join(text.split()).upper()
    for look_alike in ("«", "‹", "〈", "＜", "く"):
        text = text.replace(look_alike, "<")
    return text


def find_mrz(texts: Iterable[str]) -> MrzReading | None:
    """The first zone found among OCR lines (top to bottom): a CS line, or a TD1/TD2/TD3 block."""
    candidates = [line for line in (normalize_line(t) for t in texts) if _MRZ_CHARS.match(line) and "<" in line]
    for line in candidates:
        if len(line) == 30 and line.startswith("CS"):
            try:
                return parse_cs_line(line)
            except ValueError:
                continue
    for size, count in ((44, 2), (36, 2), (30, 3)):
        block = [line for line in candidates if len(line) == size]
        for i in range(len(block) - count + 1):
            try:
                return parse_icao(block[i : i + count])
            except Exception:  # the mrz package raises its own errors on garbage
                continue
    return None


def read_mrz(image_bytes: bytes) -> MrzReading | None:
    """Run the OCR engine over a stored photo and parse the zone it finds (None: no zone read)."""
    from ocr_service.config import get_settings
    from pipelines.decode import decode_image
    from pipelines.ocr import get_engine

    settings = get_settings()
    decoded = decode_image(image_bytes, settings.decode_limits())
    engine = get_engine(settings.ocr_engine, settings.ocr_threads)
    page = engine.read_page(decoded.image)
    page = sorted(page, key=lambda item: min(point[1] for point in item.box))
    return find_mrz(item.text for item in page)


def reading_json(reading: MrzReading | None) -> dict | None:
    """The stored form of a reading (``attempts.result["mrz"]``); None when no zone was read."""
    if reading is None:
        return None
    return {
        "format": reading.format,
        "lines": list(reading.lines),
        "fields": dict(reading.fields),
        "valid": reading.valid,
        "checks": [
            {"field": c.field, "printed": c.printed, "expected": c.expected, "ok": c.ok} for c in reading.checks
        ],
    }
