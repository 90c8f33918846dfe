"""Administrative division codes (GB/T 2260), read from python-stdnum's bundled table.

Only the data is borrowed; the validity rules live in ``pipelines.idnumber``.
"""

from __future__ import annotations

import importlib.resources
from functools import lru_cache

# Residence permits for Hong Kong, Macau and Taiwan residents carry these prefixes
# instead of a mainland division code.
PERMIT_PREFIXES = {"81": "香港特别行政区居民", "82": "澳门特别行政区居民", "83": "台湾地区居民"}


@lru_cache(maxsize=1)
def _county_codes() -> dict[str, tuple[str, str, str]]:
    """code -> (province, prefecture, county) for every six-digit code with a county entry."""
    # numdb has no public iterator, so read the data file stdnum itself uses.
    text = importlib.resources.files("stdnum").joinpath("cn/loc.dat").read_text(encoding="utf-8")
    table: dict[str, tuple[str, str, str]] = {}
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
    return table


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
