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
from tests.ocr_service.declaration_fixtures import (
    OTHER_REGION,
    TEACHER_NUMBERS,
    UNIT_NAME,
    apprenticeship_form,
    practice_form,
    probation_form,
    teacher,
)


def tcm_errors(raw: dict) -> set[tuple[str, str]]:
    form, errors = parse_form(TcmForm, raw)
    assert errors == []
    return {(e.field, e.code) for e in tcm_completeness_errors(form)}


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
    assert errors[0].message_zh == MESSAGES_ZH["invalid_id_number"]


def test_an_unknown_region_code_and_a_foreign_attachment_id_are_refused_on_save():
    raw = practice_form()
    raw["region_code"] = "999999"
    form, _ = parse_form(TcmForm, raw)
    codes = {(e.field, e.code) for e in tcm_form_errors(form, set())}
    assert ("region_code", "unknown_region_code") in codes
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


@pytest.mark.parametrize("document_type", ["hk_macau_permit", "taiwan_permit", "foreign_passport"])
def test_hk_macau_taiwan_and_foreign_applicants_need_the_internship_review_form(document_type):
    assert ("uploads.internship_review_form", "missing_upload") in probation_errors(
        probation_form(), DocumentType(document_type)
    )
    assert ("uploads.internship_review_form", "missing_upload") not in probation_errors(probation_form())


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
