"""Administrative division codes (GB/T 2260), read from python-stdnum's bundled table.

Only the data is borrowed; the validity rules live in ``pipelines.idnumber``.

The table keeps abolished codes (ID cards issued under them stay valid) and marks each name with
the years it was in use (``[1983-1998]黄陂县``); a code whose latest name has no end year is
current. "County-level" is read from the code's structure: ``xx0000`` is a province, ``xxxx00``
a prefecture (or the 省直辖县级行政单位 group), ``xxxx01`` the prefecture's 市辖区 aggregate.
"""

from __future__ import annotations

import importlib.resources
from functools import lru_cache

# Residence permits for Hong Kong, Macau and Taiwan residents carry these prefixes
# instead of a mainland division code.
PERMIT_PREFIXES = {"81": "香港特别行政区居民", "82": "澳门特别行政区居民", "83": "台湾地区居民"}

# Entries the bundled table lists without an end year although the code is no longer used.
# Found by counting Hubei's current county-level divisions against the official 103.
_ABOLISHED_WITHOUT_END_YEAR = frozenset(
    {
        "429001",  # 随州市 as a directly administered city, a prefecture (421300) since 2000
        "422921",  # 神农架林区 under the former 林区 entry, 429021 today
    }
)


@lru_cache(maxsize=1)
def _county_codes() -> dict[str, tuple[str, str, str]]:
    """code -> (province, prefecture, county) for every six-digit code with a county entry."""
    return _read_table()[0]


@lru_cache(maxsize=1)
def _current_codes() -> frozenset[str]:
    """Codes whose latest name is still in use (no end year), aggregates included."""
    return _read_table()[1]


def _still_in_use(names: str) -> bool:
    # "[1983-2000]石灰窑区,[2001-]西塞山区": the last name decides; no brackets means never changed
    latest = names.split(",")[-1]
    if not latest.startswith("["):
        return True
    years = latest[1 : latest.index("]")]
    return years.endswith("-")


@lru_cache(maxsize=1)
def _read_table() -> tuple[dict[str, tuple[str, str, str]], frozenset[str]]:
    # numdb has no public iterator, so read the data file stdnum itself uses.
    text = importlib.resources.files("stdnum").joinpath("cn/loc.dat").read_text(encoding="utf-8")
    table: dict[str, tuple[str, str, str]] = {}
    current: set[str] = set()
    province = prefecture = prov_code = ""
    for raw in text.splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        key, _, rest = raw.strip().partition(" ")
        value = rest.split('"')[1] if '"' in rest else ""
        if indent == 0:
            province, prefecture = value, ""
            prov_code = key
        else:
            code = prov_code + key
            county = value.split(",")[-1]
            if "]" in county:
                county = county.split("]", 1)[1]
            if code.endswith("00"):
                prefecture = county
            table[code] = (province, prefecture, county)
            if _still_in_use(value):
                current.add(code)
    return table, frozenset(current)


def is_known(code: str) -> bool:
    return code in _county_codes()


def place_name(code: str) -> str | None:
    entry = _county_codes().get(code)
    if entry is None:
        return None
    province, prefecture, county = entry
    return "".join(dict.fromkeys(p for p in (province, prefecture, county) if p and p != "市辖区"))


def county_codes() -> list[str]:
    """Codes of real counties/districts (not the xx0000 / xxxx00 aggregates), sorted."""
    return sorted(c for c in _county_codes() if not c.endswith("00"))


def is_current_county(code: str, province: str | None = None) -> bool:
    """A county-level division in use today (区、县、县级市、林区), optionally within a province.

    ``province`` is the two-digit prefix ("42" for Hubei). Provinces (xx0000), prefectures
    (xxxx00), the 市辖区 aggregates (xxxx01) and abolished codes are not county-level divisions.
    """
    if len(code) != 6 or not code.isdigit() or (province is not None and not code.startswith(province)):
        return False
    if code.endswith("00") or (code.endswith("01") and _county_codes().get(code, ("", "", ""))[2] == "市辖区"):
        return False
    return code in _current_codes() and code not in _ABOLISHED_WITHOUT_END_YEAR
