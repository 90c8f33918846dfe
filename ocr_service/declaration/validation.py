"""The rules a declaration's form must satisfy, as lists of field errors (never exceptions).

Two levels: ``*_form_errors`` checks what is malformed whatever the stage (an invalid ID number,
an unknown division code, an attachment id that is not this declaration's) and runs on every
save; ``*_completeness_errors`` checks what a submission needs (teacher counts, region
equality, required uploads, the current institution's name) and runs on confirm and submit.
Every error names the field (``teachers[1].id_number``), a stable code and the Chinese message
from ``MESSAGES_ZH``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ocr_service.declaration.requirements import (
    PROBATION_CONDITIONAL_FIELDS,
    PROBATION_CONDITIONAL_UPLOADS,
    TCM_CANDIDATES,
    TEACHER_DOCUMENTS,
    TeacherRole,
)
from ocr_service.declaration.schemas import ProbationForm, TcmForm
from ocr_service.verification.models import DocumentType
from pipelines import divisions
from pipelines.idnumber import validate_id_number

FormT = TypeVar("FormT", bound=BaseModel)

# code -> Chinese message ({label} is the field's Chinese name when there is one)
MESSAGES_ZH: dict[str, str] = {
    "required": "{label}为必填项",
    "invalid_value": "{label}格式不正确",
    "unknown_field": "{label}不是可填写的项目",
    "invalid_id_number": "身份证号码不正确，请核对",
    "unknown_region_code": "地区代码不存在，请选择县级行政区划",
    "instructing_teacher_count": "以师承方式学习中医须填报一名指导老师",
    "no_instructing_teacher_allowed": "经多年中医医术实践无需填报指导老师",
    "recommending_physician_count": "须填报至少两名推荐医师",
    "region_mismatch": "申报地区须与推荐医师执业地点一致",
    "missing_upload": "请上传{label}",
    "unknown_attachment": "附件不存在，请重新上传",
    "unknown_upload_slot": "不是可上传的材料项目",
    "no_institution": "请至少填写一个试用机构/工作单位",
    "no_current_institution": "请标明当前试用机构",
    "multiple_current_institutions": "只能有一个当前试用机构",
    "current_institution_name_mismatch": "当前试用机构名称须与绑定的申报单位名称完全一致",
    "work_unit_not_bound": "请先绑定申报单位",
    "end_before_start": "结束日期不能早于开始日期",
}


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message_zh: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message_zh": self.message_zh}


def field_error(field: str, code: str, label: str | None = None) -> FieldError:
    return FieldError(field, code, MESSAGES_ZH[code].format(label=label or "该项"))


def _field_path(loc: Iterable[Any]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def parse_form(model: type[FormT], raw: Mapping[str, Any]) -> tuple[FormT | None, list[FieldError]]:
    """Parse the form; pydantic's complaints become field errors (no input echoed back)."""
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        errors = []
        for problem in exc.errors():
            kind = problem.get("type", "")
            code = {"missing": "required", "extra_forbidden": "unknown_field"}.get(kind, "invalid_value")
            errors.append(field_error(_field_path(problem.get("loc", ())), code))
        return None, errors


def _attachment_refs(field: str, ids: Iterable[tuple[str, str]], known: Collection[str]) -> list[FieldError]:
    return [field_error(f"{field}.{key}", "unknown_attachment") for key, value in ids if value not in known]


# --- TCM expertise ------------------------------------------------------------------------------

_TEACHER_SLOTS = {upload.slot for upload in TEACHER_DOCUMENTS}


def tcm_form_errors(form: TcmForm, attachment_ids: Collection[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    if form.region_code is not None and not divisions.is_known(form.region_code):
        errors.append(field_error("region_code", "unknown_region_code"))
    for i, teacher in enumerate(form.teachers):
        if not validate_id_number(teacher.id_number).valid:
            errors.append(field_error(f"teachers[{i}].id_number", "invalid_id_number"))
        if not divisions.is_known(teacher.practice_location_code):
            errors.append(field_error(f"teachers[{i}].practice_location_code", "unknown_region_code"))
        for slot in teacher.documents:
            if slot not in _TEACHER_SLOTS:
                errors.append(field_error(f"teachers[{i}].documents.{slot}", "unknown_upload_slot"))
        errors += _attachment_refs(f"teachers[{i}].documents", teacher.documents.items(), attachment_ids)
    errors += _attachment_refs("materials", form.materials.items(), attachment_ids)
    return errors


def tcm_completeness_errors(form: TcmForm) -> list[FieldError]:
    errors: list[FieldError] = []
    if not form.region_code:
        errors.append(field_error("region_code", "required", "申报地区"))
    if form.candidate_type is None:
        errors.append(field_error("candidate_type", "required", "考生类型"))
        return errors
    required = TCM_CANDIDATES[form.candidate_type]
    for narrative in required.narratives:
        if not (form.narratives.get(narrative.slot) or "").strip():
            errors.append(field_error(f"narratives.{narrative.slot}", "required", narrative.label_zh))

    by_role = {role: [t for t in form.teachers if t.role is role] for role in TeacherRole}
    instructing = required.teachers[TeacherRole.INSTRUCTING]
    count = len(by_role[TeacherRole.INSTRUCTING])
    if count < instructing.minimum or (instructing.maximum is not None and count > instructing.maximum):
        code = "instructing_teacher_count" if instructing.maximum else "no_instructing_teacher_allowed"
        errors.append(field_error("teachers", code))
    recommending = required.teachers[TeacherRole.RECOMMENDING]
    count = len(by_role[TeacherRole.RECOMMENDING])
    if count < recommending.minimum or (recommending.maximum is not None and count > recommending.maximum):
        errors.append(field_error("teachers", "recommending_physician_count"))

    for i, teacher in enumerate(form.teachers):
        for document in TEACHER_DOCUMENTS:
            if not teacher.documents.get(document.slot):
                errors.append(
                    field_error(f"teachers[{i}].documents.{document.slot}", "missing_upload", document.label_zh)
                )
        # the declaration region is where the recommending physicians practise
        if (
            teacher.role is TeacherRole.RECOMMENDING
            and form.region_code
            and (teacher.practice_location_code != form.region_code)
        ):
            errors.append(field_error(f"teachers[{i}].practice_location_code", "region_mismatch"))

    for material in required.materials:
        if not form.materials.get(material.slot):
            errors.append(field_error(f"materials.{material.slot}", "missing_upload", material.label_zh))
    return errors


# --- physician probation ------------------------------------------------------------------------

_PROBATION_SLOTS = {rule.upload.slot for rule in PROBATION_CONDITIONAL_UPLOADS}


def probation_form_errors(form: ProbationForm, attachment_ids: Collection[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, institution in enumerate(form.institutions):
        if institution.end_date is not None and institution.end_date < institution.start_date:
            errors.append(field_error(f"institutions[{i}].end_date", "end_before_start"))
    for slot in form.uploads:
        if slot not in _PROBATION_SLOTS:
            errors.append(field_error(f"uploads.{slot}", "unknown_upload_slot"))
    errors += _attachment_refs("uploads", form.uploads.items(), attachment_ids)
    errors += _attachment_refs(
        "supporting_files", ((f"[{i}]", v) for i, v in enumerate(form.supporting_files)), attachment_ids
    )
    return [
        FieldError(e.field.replace("supporting_files.[", "supporting_files["), e.code, e.message_zh) for e in errors
    ]


def probation_completeness_errors(
    form: ProbationForm, document_type: DocumentType, bound_unit_name: str | None
) -> list[FieldError]:
    errors: list[FieldError] = []
    if form.level is None:
        errors.append(field_error("level", "required", "报考级别"))
    if form.category is None:
        errors.append(field_error("category", "required", "报考类别"))
    if form.education is None:
        errors.append(field_error("education", "required", "学历信息"))
    values = form.model_dump()
    for rule in PROBATION_CONDITIONAL_FIELDS:
        if rule.when.applies(values, document_type) and not (values.get(rule.field) or "").strip():
            errors.append(field_error(rule.field, "required", rule.label_zh))
    for rule in PROBATION_CONDITIONAL_UPLOADS:
        if rule.when.applies(values, document_type) and not form.uploads.get(rule.upload.slot):
            errors.append(field_error(f"uploads.{rule.upload.slot}", "missing_upload", rule.upload.label_zh))

    if bound_unit_name is None:
        errors.append(field_error("work_unit", "work_unit_not_bound"))
    if not form.institutions:
        errors.append(field_error("institutions", "no_institution"))
        return errors
    current = [i for i, institution in enumerate(form.institutions) if institution.current]
    if not current:
        errors.append(field_error("institutions", "no_current_institution"))
    elif len(current) > 1:
        errors.append(field_error("institutions", "multiple_current_institutions"))
    elif bound_unit_name is not None and form.institutions[current[0]].name != bound_unit_name:
        # exactly the unit's name: the unit confirms the earlier institutions under that name
        errors.append(field_error(f"institutions[{current[0]}].name", "current_institution_name_mismatch"))
    return errors
