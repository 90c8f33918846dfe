"""Synthetic card holders: random but self-consistent identities for the sample cards.

Owns the person printed on a synthetic resident ID card: name, sex, ethnicity, birth date,
address, the GB 11643 number (real GB/T 2260 division code, birth date, sequence parity
matching the sex, MOD 11-2 check character) and the back's issuing authority and validity.
No real person's data is involved; every value is drawn from a ``random.Random``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Literal

from pipelines.divisions import county_codes, place_name
from pipelines.fields import ETHNICITIES
from pipelines.idnumber import check_character

# Fixed instead of date.today() so a seed gives the same identities on any day.
REFERENCE_DATE = date(2026, 11, 23)
BIRTH_YEARS = (1940, 2008)

NameKind = Literal["common", "rare", "dotted", "tibetan"]

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "司徒", "皇甫", "尉迟", "慕容")
GIVEN_MALE = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林志海峰建国文博轩然晨阳家豪天宏振成东兴庆德亮"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞秀英玲婷雪慧红燕琳晶颖倩梅莉兰洁佳欣怡悦梦雨思琪萱涵妍婉月春桂凤薇彤蕾"
RARE_MALE = "喆堃淼昇犇垚燚翀赟彧暐骉鋆炘"
RARE_FEMALE = "玥珺頔祎晞珣琤璟婳媖玙"

# Uyghur / Kazakh style personal names, written with a middle dot between given and father's name.
DOTTED_GIVEN_MALE = (
    "买买提",
    "艾力",
    "艾尔肯",
    "吐尔逊",
    "阿不都",
    "努尔",
    "依明",
    "热合曼",
    "肉孜",
    "叶尔兰",
    "阿迪力",
)
DOTTED_GIVEN_FEMALE = (
    "阿依古丽",
    "古丽",
    "帕提古丽",
    "热依拉",
    "迪丽娜尔",
    "米热古丽",
    "努尔古丽",
    "再努尔",
    "阿依努尔",
)
DOTTED_FATHER = (
    "艾力",
    "吐尔逊",
    "买买提",
    "阿不都拉",
    "依明",
    "热合曼",
    "肉孜",
    "吾守尔",
    "司马义",
    "玉苏甫",
    "阿不都热合曼",
)
DOTTED_ETHNICITIES = ("维吾尔", "维吾尔", "维吾尔", "哈萨克", "柯尔克孜", "乌孜别克")
TIBETAN_PARTS_MALE = ("扎西", "次仁", "顿珠", "格桑", "旦增", "平措", "多吉", "尼玛")
TIBETAN_PARTS_FEMALE = ("卓玛", "央金", "拉姆", "德吉", "次仁", "格桑", "白玛", "曲珍")

# Larger groups are more common among the non-Han holders.
_MINORITY_WEIGHTS = {"壮": 8, "回": 6, "满": 6, "维吾尔": 5, "苗": 5, "彝": 5, "土家": 5, "藏": 4, "蒙古": 4}

_ROAD_STEMS = (
    "人民",
    "解放",
    "中山",
    "建设",
    "和平",
    "胜利",
    "文化",
    "新华",
    "友谊",
    "长江",
    "黄河",
    "东风",
    "光明",
    "幸福",
    "团结",
    "青年",
    "朝阳",
    "红旗",
    "南京",
    "北京",
    "江汉",
    "滨江",
    "学府",
    "工业",
    "迎宾",
    "花园",
)
_ROAD_SUFFIXES = ("路", "路", "街", "大道", "大街", "东路", "西路", "南路", "北路", "巷")
_PLACE_STEMS = (
    "张家",
    "李庄",
    "王集",
    "石桥",
    "杨柳",
    "高楼",
    "大王",
    "新庄",
    "后营",
    "前进",
    "黄土",
    "青山",
    "柳河",
    "双井",
)
_COMMUNITY_STEMS = ("幸福", "阳光", "锦绣", "翠苑", "金桥", "丽景", "东湖", "南苑", "天河", "福田", "碧桂")

_MUNICIPALITY_PREFIXES = ("11", "12", "31", "50")
_DIRECT_ADMIN_SEGMENTS = (
    "省直辖县级行政单位",
    "省直辖县级行政区划",
    "自治区直辖县级行政单位",
    "自治区直辖县级行政区划",
)

ADDRESS_CHARS_PER_LINE = 11  # the card wraps the address at about 11 full-width characters


@dataclass(frozen=True)
class Identity:
    name: str
    sex: Literal["男", "女"]
    ethnicity: str
    birth: date
    address: str
    id_number: str
    authority: str
    valid_from: date
    valid_until: date | None  # None: 长期 (long-term)

    @property
    def division_code(self) -> str:
        return self.id_number[:6]

    def front_fields(self) -> dict[str, str]:
        """Front values as they appear in labels (dates ISO, address joined)."""
        return {
            "name": self.name,
            "sex": self.sex,
            "ethnicity": self.ethnicity,
            "birth": self.birth.isoformat(),
            "address": self.address,
            "id_number": self.id_number,
        }

    def back_fields(self) -> dict[str, str]:
        return {
            "authority": self.authority,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else "长期",
        }


def address_lines(text: str) -> list[str]:
    """The address as the card breaks it: greedy, at 11 full-width characters per line.

    Digits and Latin letters count 3/5 of a full-width character (their width in the heiti
    value font); integer units keep the break points exact.
    """
    capacity = ADDRESS_CHARS_PER_LINE * 5
    lines: list[str] = []
    current, used = "", 0
    for ch in text:
        units = 3 if ch.isascii() else 5
        if current and used + units > capacity:
            lines.append(current)
            current, used = "", 0
        current += ch
        used += units
    if current:
        lines.append(current)
    return lines


def address_line_count(text: str) -> int:
    return len(address_lines(text))


@lru_cache(maxsize=1)
def _divisions() -> tuple[tuple[str, str, str, str], ...]:
    """(code, province, prefecture, county) for every county-level code, cleaned for printing."""
    rows = []
    for code in county_codes():
        full = place_name(code) or ""
        province = place_name(code[:2] + "0000") or ""
        prefecture_full = place_name(code[:4] + "00") or province
        prefecture = prefecture_full[len(province) :] if prefecture_full.startswith(province) else ""
        county = full[len(prefecture_full) :] if full.startswith(prefecture_full) else ""
        if prefecture in _DIRECT_ADMIN_SEGMENTS:
            prefecture = ""
        if not county or county in ("市辖区", "县") or county == prefecture:
            continue
        rows.append((code, province, prefecture, county))
    return tuple(rows)


def _pick_name(rng: random.Random, sex: str, kind: NameKind) -> str:
    if kind == "dotted":
        given = rng.choice(DOTTED_GIVEN_MALE if sex == "男" else DOTTED_GIVEN_FEMALE)
        father = rng.choice([f for f in DOTTED_FATHER if f != given])
        name = f"{given}·{father}"
        return name if len(name) <= 10 else f"{given}·{rng.choice(DOTTED_FATHER[:4])}"
    if kind == "tibetan":
        parts = TIBETAN_PARTS_MALE if sex == "男" else TIBETAN_PARTS_FEMALE
        first, second = rng.sample(parts, 2)
        return first + second
    surname = rng.choice(COMPOUND_SURNAMES) if rng.random() < 0.02 else rng.choice(SURNAMES)
    pool = GIVEN_MALE if sex == "男" else GIVEN_FEMALE
    given = [rng.choice(pool) for _ in range(1 if rng.random() < 0.3 else 2)]
    if kind == "rare":
        given[rng.randrange(len(given))] = rng.choice(RARE_MALE if sex == "男" else RARE_FEMALE)
    return surname + "".join(given)


def _pick_ethnicity(rng: random.Random, kind: NameKind) -> str:
    if kind == "dotted":
        return rng.choice(DOTTED_ETHNICITIES)
    if kind == "tibetan":
        return "藏"
    if rng.random() < 0.88:
        return "汉"
    minorities = [e for e in ETHNICITIES if e != "汉"]
    weights = [_MINORITY_WEIGHTS.get(e, 1) for e in minorities]
    return rng.choices(minorities, weights)[0]


def _random_date(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def _street_part(rng: random.Random, rural: bool) -> str:
    if rural:
        town = rng.choice(_PLACE_STEMS) + rng.choice(("镇", "乡"))
        village = rng.choice(_PLACE_STEMS) + "村"
        group = f"{rng.randint(1, 12)}组" if rng.random() < 0.5 else ""
        number = f"{rng.randint(1, 199)}号" if rng.random() < 0.8 else ""
        return town + village + group + number
    road = rng.choice(_ROAD_STEMS) + rng.choice(_ROAD_SUFFIXES)
    number = f"{rng.randint(1, 999)}号"
    roll = rng.random()
    if roll < 0.3:
        return road + number
    if roll < 0.6:
        return (
            road
            + number
            + f"{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元{rng.randint(1, 32)}{rng.randint(1, 6):02d}室"
        )
    if roll < 0.8:
        community = rng.choice(_COMMUNITY_STEMS) + rng.choice(("小区", "花园", "社区", "家园"))
        return road + number + community + f"{rng.randint(1, 40)}号楼{rng.randint(101, 2806)}室"
    return rng.choice(_ROAD_STEMS) + "街道" + road + number


def _address(rng: random.Random, division: tuple[str, str, str, str], lines: int) -> str | None:
    _code, province, prefecture, county = division
    place = province + prefecture + county
    for _ in range(12):
        if lines == 1:
            street = rng.choice(_ROAD_STEMS) + rng.choice("路街") + f"{rng.randint(1, 99)}号"
        else:
            street = _street_part(rng, rural=county.endswith(("县", "旗")) and rng.random() < 0.7)
        text = place + street
        if len(text) >= 10 and address_line_count(text) == lines:
            return text
    return None


def _authority(rng: random.Random, division: tuple[str, str, str, str]) -> str:
    _code, province, prefecture, county = division
    if county.endswith("区") or not county:
        city = prefecture or province
        return f"{city}公安局"
    return f"{county}公安局"


def _validity(rng: random.Random, birth: date) -> tuple[date, date | None]:
    """Issue date after the 16th birthday; term by age at issue (GB: 10 / 20 years / 长期)."""
    age16 = _add_years(birth, 16)
    valid_from, valid_until = age16, None
    for _ in range(8):
        earliest = max(age16, REFERENCE_DATE - timedelta(days=20 * 365))
        valid_from = _random_date(rng, earliest, REFERENCE_DATE - timedelta(days=30))
        age = valid_from.year - birth.year - ((valid_from.month, valid_from.day) < (birth.month, birth.day))
        if age >= 46:
            return valid_from, None
        years = 5 if age < 16 else 10 if age <= 25 else 20
        valid_until = _add_years(valid_from, years)
        if valid_until > REFERENCE_DATE:
            break
    return valid_from, valid_until


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _number(rng: random.Random, code: str, birth: date, sex: str, check_x: bool | None) -> str:
    parity = 1 if sex == "男" else 0
    sequences = [s for s in range(1, 1000) if s % 2 == parity]
    rng.shuffle(sequences)
    for seq in sequences:
        first17 = f"{code}{birth:%Y%m%d}{seq:03d}"
        check = check_character(first17)
        if check_x is None or (check == "X") == check_x:
            return first17 + check
    raise AssertionError("unreachable: every parity class has sequences for each check character")


def random_identity(
    rng: random.Random,
    *,
    name_kind: NameKind | None = None,
    address_lines: int | None = None,
    check_x: bool | None = None,
) -> Identity:
    """A valid identity; the keyword arguments pin features a sample set must cover."""
    sex: Literal["男", "女"] = "男" if rng.random() < 0.5 else "女"
    if name_kind is None:
        roll = rng.random()
        name_kind = "rare" if roll < 0.10 else "dotted" if roll < 0.17 else "tibetan" if roll < 0.19 else "common"
    if address_lines is None:
        address_lines = rng.choices((1, 2, 3), (0.12, 0.5, 0.38))[0]
    name = _pick_name(rng, sex, name_kind)
    ethnicity = _pick_ethnicity(rng, name_kind)
    birth = _random_date(rng, date(BIRTH_YEARS[0], 1, 1), date(BIRTH_YEARS[1], 12, 31))

    divisions = _divisions()
    if address_lines == 1:
        candidates = [d for d in divisions if d[0][:2] in _MUNICIPALITY_PREFIXES and len(d[1] + d[3]) <= 6]
    elif name_kind == "dotted" and rng.random() < 0.8:
        candidates = [d for d in divisions if d[0].startswith("65")]
    elif name_kind == "tibetan":
        candidates = [d for d in divisions if d[0].startswith("54")]
    else:
        candidates = list(divisions)
    address = None
    for _ in range(200):
        division = rng.choice(candidates)
        address = _address(rng, division, address_lines)
        if address is not None:
            break
    if address is None:
        raise RuntimeError(f"could not build a {address_lines}-line address")

    valid_from, valid_until = _validity(rng, birth)
    return Identity(
        name=name,
        sex=sex,
        ethnicity=ethnicity,
        birth=birth,
        address=address,
        id_number=_number(rng, division[0], birth, sex, check_x),
        authority=_authority(rng, division),
        valid_from=valid_from,
        valid_until=valid_until,
    )
