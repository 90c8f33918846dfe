"""pipelines.divisions: which codes are current county-level divisions (data from python-stdnum)."""

from __future__ import annotations

import pytest

from pipelines import divisions


def test_hubei_has_the_103_county_level_divisions_of_the_official_list():
    hubei = [code for code in divisions.county_codes() if divisions.is_current_county(code, "42")]
    assert len(hubei) == 103
    assert {"420102", "420607", "422801", "429004", "429021"} <= set(hubei)


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("420000", "a province"),
        ("420100", "a prefecture"),
        ("420101", "the 市辖区 aggregate"),
        ("429000", "the 省直辖县级行政单位 group"),
        ("420121", "汉阳县, abolished in 1992"),
        ("420120", "[-1983]市区"),
        ("429001", "随州市, a prefecture since 2000 though the table has no end year"),
        ("42010", "too short"),
    ],
)
def test_aggregates_and_abolished_codes_are_not_current_counties(code, why):
    assert not divisions.is_current_county(code), why


def test_a_renamed_code_is_current_and_the_province_filter_applies():
    assert divisions.is_current_county("420203")  # 石灰窑区 -> 西塞山区 (2001)
    assert divisions.is_current_county("110101") and not divisions.is_current_county("110101", "42")
