"""ocr_service.declaration.validation: each rule of the two forms, one broken at a time."""

from __future__ import annotations

import pytest

from ocr_service.declaration.schemas import ProbationForm, TcmForm
from ocr_service.declaration.validation import (
    MESSAGES_ZH,
    parse_form,
    probation_completeness_errors,
    probation_form_errors,
    tcm_completeness_errors,
    tcm_form_errors,
)
from ocr_service.verification.models import DocumentType
from pipelines.idnumber import check_character
from tests.ocr_service.declaration_fixtures import (
    OTHER_REGION,
    REGION,
    TEACHER_NUMBERS,
    UNIT_NAME,
    apprenticeship_form,
    practice_form,
    probation_form,
    teacher,
)


def synthetic_number(region: str, birth: str, sequence: str) -> str:
    """A GB 11643 number with a correct check character (synthetic: test data only)."""
    first17 = region + birth + sequence
    return first17 + check_character(first17)


APPLICANT_NUMBER = synthetic_number(REGION, "19900315", "123")


def tcm_errors(raw: dict) -> set[tuple[str, str]]:
    form, errors = parse_form(TcmForm, raw)
    assert errors == []
    return {(e.field, e.code) for e in tcm_completeness_errors(form, applicant_number=APPLICANT_NUMBER)}


def probation_errors(raw: dict, document_type=DocumentType.RESIDENT_ID, unit=UNIT_NAME) -> set[tuple[str, str]]:
    form, errors = parse_form(ProbationForm, raw)
    assert errors == []
    return {(e.field, e.code) for e in probation_completeness_errors(form, document_type, unit)}


# --- TCM expertise ------------------------------------------------------------------------------


def test_complete_apprenticeship_and_practice_forms_have_no_errors():
    assert tcm_errors(apprenticeship_form()) == set()
    assert tcm_errors(practice_form()) == set()


def test_apprenticeship_needs_exactly_one_instructing_teacher():
    raw = apprenticeship_form()
    raw["teachers"] = [t for t in raw["teachers"] if t["role"] != "instructing"]
    assert ("teachers", "instructing_teacher_count") in tcm_errors(raw)
    raw = apprenticeship_form()
    raw["teachers"].append(teacher("instructing", TEACHER_NUMBERS[2]))
    assert ("teachers", "instructing_teacher_count") in tcm_errors(raw)


def test_apprenticeship_needs_at_least_two_recommending_physicians():
    raw = apprenticeship_form()
    raw["teachers"].pop()
    assert ("teachers", "recommending_physician_count") in tcm_errors(raw)


def test_practice_needs_at_least_two_recommending_physicians_and_no_instructing_teacher():
    raw = practice_form()
    raw["teachers"].pop()
    assert ("teachers", "recommending_physician_count") in tcm_errors(raw)
    raw = practice_form()
    raw["teachers"].append(teacher("instructing", TEACHER_NUMBERS[1]))
    assert ("teachers", "no_instructing_teacher_allowed") in tcm_errors(raw)


def test_the_region_must_equal_the_recommending_physicians_practice_location():
    raw = apprenticeship_form()
    raw["teachers"][2]["practice_location_code"] = OTHER_REGION
    assert ("teachers[2].practice_location_code", "region_mismatch") in tcm_errors(raw)
    # the instructing teacher may practise elsewhere (fixture: OTHER_REGION) without an error
    assert not any(field.startswith("teachers[0]") for field, _ in tcm_errors(apprenticeship_form()))


def test_each_candidate_type_requires_its_own_narratives_and_materials():
    raw = practice_form()
    del raw["narratives"]["skill_origin"]
    del raw["materials"]["patient_evidence"]
    assert {("narratives.skill_origin", "required"), ("materials.patient_evidence", "missing_upload")} <= tcm_errors(
        raw
    )
    raw = apprenticeship_form()
    raw["materials"].pop("apprenticeship_contract")
    assert ("materials.apprenticeship_contract", "missing_upload") in tcm_errors(raw)


def test_every_teacher_brings_four_documents():
    raw = practice_form()
    del raw["teachers"][1]["documents"]["professional_title"]
    assert tcm_errors(raw) == {("teachers[1].documents.professional_title", "missing_upload")}


def test_a_teachers_invalid_id_number_is_named_by_its_field_with_a_chinese_message():
    raw = practice_form()
    raw["teachers"][1]["id_number"] = TEACHER_NUMBERS[0][:-1] + "0"  # wrong check character
    form, _ = parse_form(TcmForm, raw)
    errors = tcm_form_errors(form, {"att-doc"})
    assert [(e.field, e.code) for e in errors] == [("teachers[1].id_number", "invalid_id_number")]
    assert errors[0].message_zh == f"推荐医师 {raw['teachers'][1]['name']}：" + MESSAGES_ZH["invalid_id_number"]


def test_an_unknown_region_code_and_a_foreign_attachment_id_are_refused_on_save():
    raw = practice_form()
    raw["region_code"] = "999999"
    raw["teachers"][0]["practice_location_code"] = "999999"
    form, _ = parse_form(TcmForm, raw)
    codes = {(e.field, e.code) for e in tcm_form_errors(form, set())}
    assert ("region_code", "region_not_hubei_county") in codes
    assert ("teachers[0].practice_location_code", "unknown_region_code") in codes
    assert ("materials.practice_proof", "unknown_attachment") in codes


def test_malformed_fields_become_field_errors_with_stable_codes():
    raw = practice_form()
    raw["candidate_type"] = "bribery"
    raw["teachers"][0].pop("name")
    raw["favourite_colour"] = "red"
    _, errors = parse_form(TcmForm, raw)
    assert {(e.field, e.code) for e in errors} == {
        ("candidate_type", "invalid_value"),
        ("teachers[0].name", "required"),
        ("favourite_colour", "unknown_field"),
    }
    assert all(e.message_zh for e in errors)


# --- physician probation ------------------------------------------------------------------------


def test_a_complete_probation_form_has_no_errors():
    assert probation_errors(probation_form()) == set()


def test_the_current_institution_must_carry_exactly_the_bound_units_name():
    assert ("institutions[1].name", "current_institution_name_mismatch") in probation_errors(
        probation_form(unit_name="武汉市江岸区人民医院分院")
    )


def test_exactly_one_institution_is_current_and_a_unit_must_be_bound():
    raw = probation_form()
    raw["institutions"][0]["current"] = True
    assert ("institutions", "multiple_current_institutions") in probation_errors(raw)
    raw["institutions"][0]["current"] = raw["institutions"][1]["current"] = False
    assert ("institutions", "no_current_institution") in probation_errors(raw)
    assert ("work_unit", "work_unit_not_bound") in probation_errors(probation_form(), unit=None)


def test_a_fresh_graduate_must_upload_the_commitment_letter():
    raw = probation_form()
    raw["fresh_graduate"] = True
    assert ("uploads.commitment_letter", "missing_upload") in probation_errors(raw)
    raw["uploads"]["commitment_letter"] = "att-1"
    assert probation_errors(raw) == set()


def test_an_assistant_applying_as_physician_must_give_both_certificate_numbers():
    raw = probation_form()
    raw["assistant_to_physician"] = True
    assert {("qualification_certificate_number", "required"), ("practising_certificate_number", "required")} <= (
        probation_errors(raw)
    )
    raw["qualification_certificate_number"] = "200442110420102197001011237"
    raw["practising_certificate_number"] = "110420100012345"
    assert probation_errors(raw) == set()


@pytest.mark.parametrize("document_type", ["hk_macau_permit", "taiwan_permit"])
def test_hk_macau_taiwan_applicants_upload_their_own_review_form_not_the_foreign_one(document_type):
    errors = probation_errors(probation_form(), DocumentType(document_type))
    assert ("uploads.hmt_internship_review_form", "missing_upload") in errors
    assert not any(field == "uploads.foreign_internship_review_form" for field, _ in errors)


def test_foreign_applicants_upload_the_foreign_review_form_not_the_hk_macau_taiwan_one():
    errors = probation_errors(probation_form(), DocumentType.FOREIGN_PASSPORT)
    assert ("uploads.foreign_internship_review_form", "missing_upload") in errors
    assert not any(field == "uploads.hmt_internship_review_form" for field, _ in errors)


def test_the_two_review_forms_are_separate_slots_with_the_manuals_titles():
    form, _ = parse_form(ProbationForm, probation_form())
    hmt = probation_completeness_errors(form, DocumentType.TAIWAN_PERMIT, UNIT_NAME)
    foreign = probation_completeness_errors(form, DocumentType.FOREIGN_PASSPORT, UNIT_NAME)
    assert "台湾、香港、澳门居民" in next(e.message_zh for e in hmt if e.field.endswith("review_form"))
    assert "外籍人员" in next(e.message_zh for e in foreign if e.field.endswith("review_form"))
    mainland = probation_errors(probation_form())
    assert not any(field.endswith("internship_review_form") for field, _ in mainland)


def test_military_applicants_need_the_education_proof_and_the_probation_assessment_form():
    errors = probation_errors(probation_form(), DocumentType.MILITARY)
    assert {
        ("uploads.military_education_proof", "missing_upload"),
        ("uploads.military_probation_assessment", "missing_upload"),
    } <= errors
    assert not any(field.startswith("uploads.military") for field, _ in probation_errors(probation_form()))


def test_institution_dates_must_be_in_order():
    raw = probation_form()
    raw["institutions"][0]["end_date"] = "2020-01-01"
    form, _ = parse_form(ProbationForm, raw)
    assert [(e.field, e.code) for e in probation_form_errors(form, set())] == [
        ("institutions[0].end_date", "end_before_start")
    ]


# --- issue 12, item 4: teachers are distinct people, none of them the applicant ------------------


def completeness(raw: dict, applicant_number: str = APPLICANT_NUMBER) -> list:
    form, errors = parse_form(TcmForm, raw)
    assert errors == []
    return tcm_completeness_errors(form, applicant_number=applicant_number)


def test_the_same_physician_twice_is_refused_whatever_the_number_is_spelt_like():
    raw = apprenticeship_form()
    number = raw["teachers"][1]["id_number"]
    raw["teachers"][2]["id_number"] = f" {number[:6]} {number[6:14]} {number[14:].lower()}"
    errors = [e for e in completeness(raw) if e.code == "duplicate_teacher"]
    assert [e.field for e in errors] == ["teachers[2].id_number"]
    first, second = raw["teachers"][1]["name"], raw["teachers"][2]["name"]
    assert errors[0].message_zh.startswith(f"推荐医师 {second}：") and first in errors[0].message_zh


def test_the_instructing_teacher_cannot_also_be_a_recommending_physician():
    raw = apprenticeship_form()
    raw["teachers"][2]["id_number"] = raw["teachers"][0]["id_number"]
    assert ("teachers[2].id_number", "duplicate_teacher") in {(e.field, e.code) for e in completeness(raw)}


def test_the_applicant_cannot_be_their_own_teacher_or_recommender():
    raw = practice_form()
    raw["teachers"][1]["id_number"] = APPLICANT_NUMBER.lower()
    errors = [e for e in completeness(raw) if e.code == "teacher_is_applicant"]
    assert [e.field for e in errors] == ["teachers[1].id_number"]
    assert errors[0].message_zh.startswith(f"推荐医师 {raw['teachers'][1]['name']}：")
    assert completeness(practice_form()) == []


# --- issue 12, item 5: the region is a current county-level division of Hubei ------------------


@pytest.mark.parametrize(
    "code",
    [
        "420000",  # 湖北省 (province)
        "420100",  # 武汉市 (prefecture)
        "420101",  # 武汉市市辖区 (an aggregate, not a district)
        "429000",  # 省直辖县级行政单位 (an aggregate)
        "420121",  # 汉阳县, abolished 1992
        "110101",  # 北京市东城区 (outside Hubei)
    ],
)
def test_a_region_that_is_not_a_current_hubei_county_is_refused_on_save(code):
    raw = practice_form()
    raw["region_code"] = code
    form, _ = parse_form(TcmForm, raw)
    errors = [e for e in tcm_form_errors(form, {"att-doc"}) if e.field == "region_code"]
    assert [e.code for e in errors] == ["region_not_hubei_county"]
    assert "湖北省" in errors[0].message_zh and "区县" in errors[0].message_zh


@pytest.mark.parametrize("code", ["420102", "420607", "422801", "429004"])  # 江岸区 襄州区 恩施市 仙桃市
def test_current_hubei_districts_counties_and_county_level_cities_are_accepted(code):
    raw = practice_form()
    raw["region_code"] = code
    for t in raw["teachers"]:
        t["practice_location_code"] = code
    form, _ = parse_form(TcmForm, raw)
    assert tcm_form_errors(form, {"att-doc"}) == []
    assert completeness(raw) == []


def test_every_recommending_physician_must_practise_in_the_declared_region():
    raw = practice_form()
    raw["teachers"][0]["practice_location_code"] = OTHER_REGION
    errors = [e for e in completeness(raw) if e.code == "region_mismatch"]
    assert [e.field for e in errors] == ["teachers[0].practice_location_code"]
    assert errors[0].message_zh.startswith(f"推荐医师 {raw['teachers'][0]['name']}：")
    assert "申报地区" in errors[0].message_zh


# --- issue 12, item 10: errors name teachers and fields by their Chinese labels -----------------


def test_a_teachers_errors_name_the_teacher_and_keep_the_field_path():
    raw = apprenticeship_form()
    number = raw["teachers"][0]["id_number"]
    raw["teachers"][0]["id_number"] = number[:-1] + ("1" if number[-1] != "1" else "2")  # wrong check character
    del raw["teachers"][2]["documents"]["professional_title"]
    form, _ = parse_form(TcmForm, raw)
    [bad_number] = tcm_form_errors(form, {"att-doc"})
    assert bad_number.field == "teachers[0].id_number"
    assert bad_number.message_zh == f"指导老师 {raw['teachers'][0]['name']}：身份证号码不正确，请核对"
    [missing] = completeness(raw)
    assert missing.field == "teachers[2].documents.professional_title"
    assert missing.message_zh == f"推荐医师 {raw['teachers'][2]['name']}：请上传专业技术职称证书"
    assert not any("teachers[" in e.message_zh for e in [bad_number, missing])


def test_a_malformed_teacher_field_names_the_teacher_and_the_fields_label():
    raw = practice_form()
    raw["teachers"][1]["practice_location_code"] = "42"
    raw["teachers"][0].pop("name")
    _, errors = parse_form(TcmForm, raw)
    messages = {e.field: e.message_zh for e in errors}
    assert (
        messages["teachers[1].practice_location_code"] == f"推荐医师 {raw['teachers'][1]['name']}：执业地点格式不正确"
    )
    assert messages["teachers[0].name"] == "推荐医师（第1位）：姓名为必填项"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("candidate_type",), "bribery", "考生类型格式不正确"),
        (("region_code",), 420102, "申报地区格式不正确"),
    ],
)
def test_a_malformed_tcm_value_is_named_by_its_chinese_label(path, value, message):
    raw = practice_form()
    raw[path[0]] = value
    _, errors = parse_form(TcmForm, raw)
    assert [(e.field, e.message_zh) for e in errors] == [(path[0], message)]


def test_a_malformed_probation_date_is_named_by_its_chinese_label():
    raw = probation_form()
    raw["education"]["graduation_date"] = "2024-13-45"
    raw["institutions"][1]["start_date"] = "昨天"
    _, errors = parse_form(ProbationForm, raw)
    assert {(e.field, e.code, e.message_zh) for e in errors} == {
        ("education.graduation_date", "invalid_value", "毕业日期格式不正确"),
        ("institutions[1].start_date", "invalid_value", f"试用/工作机构 {UNIT_NAME}：开始日期格式不正确"),
    }


def test_an_unknown_key_is_quoted_and_no_message_falls_back_to_a_nameless_label():
    raw = practice_form()
    raw["favourite_colour"] = "red"
    raw["narratives"]["skill_origin"] = 5
    _, errors = parse_form(TcmForm, raw)
    messages = {e.field: e.message_zh for e in errors}
    assert messages["favourite_colour"] == "“favourite_colour”不是可填写的项目"
    assert messages["narratives.skill_origin"] == "医术渊源格式不正确"
    assert not any("该项" in m for m in messages.values())


@pytest.mark.parametrize(
    ("document_type", "form", "not_form"),
    [
        (DocumentType.HMT_RESIDENCE_PERMIT, "hmt_internship_review_form", "foreign_internship_review_form"),
        (DocumentType.FOREIGN_PERMANENT_RESIDENCE, "foreign_internship_review_form", "hmt_internship_review_form"),
    ],
)
def test_residence_permit_holders_are_asked_for_their_groups_review_form(document_type, form, not_form):
    errors = probation_errors(probation_form(), document_type)
    assert (f"uploads.{form}", "missing_upload") in errors
    assert not any(field == f"uploads.{not_form}" for field, _ in errors)
