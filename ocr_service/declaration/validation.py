"""The rules a declaration's form must satisfy, as lists of field errors (never exceptions).

Two levels: ``*_form_errors`` checks what is malformed whatever the stage (an invalid ID number,
a region that is not a current Hubei county, an attachment id that is not this declaration's)
and runs on every save; ``*_completeness_errors`` checks what a submission needs (teacher counts,
distinct teachers, region equality, required uploads, the current institution's name) and runs
on confirm and submit. Every error carries the machine-readable path (``teachers[1].id_number``),
a stable code and a Chinese message from ``MESSAGES_ZH`` that names the field by its label and
the teacher or institution by name (``推荐医师 张三：身份证号码不正确，请核对``), never by index.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ocr_service.declaration.requirements import (
    PROBATION_CONDITIONAL_FIELDS,
    PROBATION_CONDITIONAL_UPLOADS,
    PROBATION_FIELD_LABELS_ZH,
    TCM_CANDIDATES,
    TCM_FIELD_LABELS_ZH,
    TCM_REGION_PROVINCE,
    TEACHER_DOCUMENTS,
    TEACHER_ROLE_LABELS_ZH,
    TeacherRole,
)
from ocr_service.declaration.schemas import ProbationForm, TcmForm
from ocr_service.verification.models import DocumentType
from pipelines import divisions
from pipelines.idnumber import normalize_id_number, validate_id_number

FormT = TypeVar("FormT", bound=BaseModel)

# code -> Chinese message ({label} is the field's Chinese name when there is one)
MESSAGES_ZH: dict[str, str] = {
    "required": "{label}为必填项",
    "invalid_value": "{label}格式不正确",
    "unknown_field": "{label}不是可填写的项目",
    "invalid_id_number": "身份证号码不正确，请核对",
    "unknown_region_code": "{label}不是有效的行政区划代码",
    "region_not_hubei_county": "申报地区须为湖北省内现行的区县（县级行政区划），请重新选择",
    "instructing_teacher_count": "以师承方式学习中医须填报一名指导老师",
    "no_instructing_teacher_allowed": "经多年中医医术实践无需填报指导老师",
    "recommending_physician_count": "须填报至少两名推荐医师",
    "duplicate_teacher": "与{other}身份证号码相同，同一人只能填报一次",
    "teacher_is_applicant": "不能填报考生本人（身份证号码与考生相同）",
    "region_mismatch": "执业地点（{practice}）须与申报地区（{region}）一致",
    "missing_upload": "请上传{label}",
    "unknown_attachment": "{label}的附件不存在，请重新上传",
    "unknown_upload_slot": "{label}不是可上传的材料项目",
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


def field_error(
    field: str, code: str, label: str | None = None, subject: str | None = None, **params: str
) -> FieldError:
    """One error; ``subject`` (a teacher or institution, by name) prefixes the message."""
    message = MESSAGES_ZH[code].format(label=label or "该项", **params)
    return FieldError(field, code, f"{subject}：{message}" if subject else message)


def _field_path(loc: Iterable[Any]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _label(labels: Mapping[str, str], keys: list[str]) -> str | None:
    """The label of the field, or of its nearest labelled parent."""
    for end in range(len(keys), 0, -1):
        label = labels.get(".".join(keys[:end]))
        if label is not None:
            return label
    return None


def _ordinal_subject(kind: str, position: int, unit: str) -> str:
    return f"{kind}（第{position}{unit}）"


def _teacher_subject(role: object, name: object, position: int) -> str:
    """``推荐医师 张三``, or ``推荐医师（第2位）`` when the name is not there to use."""
    try:
        kind = TEACHER_ROLE_LABELS_ZH[TeacherRole(role)]
    except ValueError:
        kind = "老师"
    if isinstance(name, str) and name.strip():
        return f"{kind} {name.strip()}"
    return _ordinal_subject(kind, position, "位")


def _institution_subject(name: object, position: int) -> str:
    if isinstance(name, str) and name.strip():
        return f"试用/工作机构 {name.strip()}"
    return _ordinal_subject("试用/工作机构", position, "个")


def _raw_subject(raw: Mapping[str, Any], loc: tuple[Any, ...]) -> str | None:
    """Who a parse error is about, read from the raw form (it did not parse)."""
    if len(loc) < 2 or loc[0] not in ("teachers", "institutions") or not isinstance(loc[1], int):
        return None
    items = raw.get(loc[0])
    if not isinstance(items, list) or not 0 <= loc[1] < len(items):
        return None
    item = items[loc[1]] if isinstance(items[loc[1]], Mapping) else {}
    if loc[0] == "institutions":
        return _institution_subject(item.get("name"), loc[1] + 1)
    role = item.get("role")
    same_role = [t for t in items[: loc[1]] if isinstance(t, Mapping) and t.get("role") == role]
    return _teacher_subject(role, item.get("name"), len(same_role) + 1)


_FIELD_LABELS: Mapping[type[BaseModel], Mapping[str, str]] = {
    TcmForm: TCM_FIELD_LABELS_ZH,
    ProbationForm: PROBATION_FIELD_LABELS_ZH,
}


def parse_form(model: type[FormT], raw: Mapping[str, Any]) -> tuple[FormT | None, list[FieldError]]:
    """Parse the form; pydantic's complaints become field errors (no input echoed back)."""
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        labels = _FIELD_LABELS.get(model, {})
        errors = []
        for problem in exc.errors():
            kind = problem.get("type", "")
            loc = tuple(problem.get("loc", ()))
            keys = [str(part) for part in loc if not isinstance(part, int)]
            code = {"missing": "required", "extra_forbidden": "unknown_field"}.get(kind, "invalid_value")
            # an unknown key has no label: quote the key itself (it is the applicant's own input's name)
            label = f"“{keys[-1]}”" if code == "unknown_field" and keys else _label(labels, keys)
            errors.append(field_error(_field_path(loc), code, label, _raw_subject(raw, loc)))
        return None, errors


def _attachment_refs(
    field: str,
    ids: Iterable[tuple[str, str]],
    known: Collection[str],
    labels: Mapping[str, str],
    subject: str | None = None,
) -> list[FieldError]:
    return [
        field_error(f"{field}.{key}", "unknown_attachment", labels.get(key), subject)
        for key, value in ids
        if value not in known
    ]


# --- TCM expertise ------------------------------------------------------------------------------

_TEACHER_SLOTS = {upload.slot for upload in TEACHER_DOCUMENTS}
_TEACHER_DOCUMENT_LABELS = {upload.slot: upload.label_zh for upload in TEACHER_DOCUMENTS}
_MATERIAL_LABELS = {m.slot: m.label_zh for c in TCM_CANDIDATES.values() for m in c.materials}


def teacher_subjects(form: TcmForm) -> list[str]:
    """Each teacher as the applicant knows them: role and name (``推荐医师 张三``)."""
    counts: dict[TeacherRole, int] = {}
    subjects = []
    for teacher in form.teachers:
        counts[teacher.role] = counts.get(teacher.role, 0) + 1
        subjects.append(_teacher_subject(teacher.role, teacher.name, counts[teacher.role]))
    return subjects


def tcm_form_errors(form: TcmForm, attachment_ids: Collection[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    if form.region_code and not divisions.is_current_county(form.region_code, TCM_REGION_PROVINCE):
        errors.append(field_error("region_code", "region_not_hubei_county"))
    for i, (teacher, who) in enumerate(zip(form.teachers, teacher_subjects(form), strict=True)):
        if not validate_id_number(teacher.id_number).valid:
            errors.append(field_error(f"teachers[{i}].id_number", "invalid_id_number", subject=who))
        if not divisions.is_known(teacher.practice_location_code):
            errors.append(
                field_error(
                    f"teachers[{i}].practice_location_code",
                    "unknown_region_code",
                    TCM_FIELD_LABELS_ZH["teachers.practice_location_code"],
                    who,
                )
            )
        for slot in teacher.documents:
            if slot not in _TEACHER_SLOTS:
                errors.append(field_error(f"teachers[{i}].documents.{slot}", "unknown_upload_slot", f"“{slot}”", who))
        errors += _attachment_refs(
            f"teachers[{i}].documents", teacher.documents.items(), attachment_ids, _TEACHER_DOCUMENT_LABELS, who
        )
    errors += _attachment_refs("materials", form.materials.items(), attachment_ids, _MATERIAL_LABELS)
    return errors


def _teacher_identity_errors(form: TcmForm, subjects: list[str], applicant_number: str | None) -> list[FieldError]:
    """Every teacher a different person, by normalised ID number, and none of them the applicant."""
    errors: list[FieldError] = []
    applicant = normalize_id_number(applicant_number or "")
    first_seen: dict[str, str] = {}
    for i, (teacher, who) in enumerate(zip(form.teachers, subjects, strict=True)):
        number = normalize_id_number(teacher.id_number)
        if applicant and number == applicant:
            errors.append(field_error(f"teachers[{i}].id_number", "teacher_is_applicant", subject=who))
        elif number in first_seen:
            errors.append(
                field_error(f"teachers[{i}].id_number", "duplicate_teacher", subject=who, other=first_seen[number])
            )
        else:
            first_seen[number] = who
    return errors


def tcm_completeness_errors(form: TcmForm, *, applicant_number: str | None) -> list[FieldError]:
    """What a submission needs; ``applicant_number`` is the declaring person's ID number."""
    errors: list[FieldError] = []
    if not form.region_code:
        errors.append(field_error("region_code", "required", TCM_FIELD_LABELS_ZH["region_code"]))
    if form.candidate_type is None:
        errors.append(field_error("candidate_type", "required", TCM_FIELD_LABELS_ZH["candidate_type"]))
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

    subjects = teacher_subjects(form)
    errors += _teacher_identity_errors(form, subjects, applicant_number)
    for i, (teacher, who) in enumerate(zip(form.teachers, subjects, strict=True)):
        for document in TEACHER_DOCUMENTS:
            if not teacher.documents.get(document.slot):
                errors.append(
                    field_error(f"teachers[{i}].documents.{document.slot}", "missing_upload", document.label_zh, who)
                )
        # the manual: 申报地区 ... 与推荐医师执业地点一致 (the instructing teacher may practise elsewhere)
        if (
            teacher.role is TeacherRole.RECOMMENDING
            and form.region_code
            and (teacher.practice_location_code != form.region_code)
        ):
            errors.append(
                field_error(
                    f"teachers[{i}].practice_location_code",
                    "region_mismatch",
                    subject=who,
                    practice=divisions.place_name(teacher.practice_location_code) or teacher.practice_location_code,
                    region=divisions.place_name(form.region_code) or form.region_code,
                )
            )

    for material in required.materials:
        if not form.materials.get(material.slot):
            errors.append(field_error(f"materials.{material.slot}", "missing_upload", material.label_zh))
    return errors


# --- physician probation ------------------------------------------------------------------------

_PROBATION_SLOTS = {rule.upload.slot for rule in PROBATION_CONDITIONAL_UPLOADS}
_PROBATION_UPLOAD_LABELS = {rule.upload.slot: rule.upload.label_zh for rule in PROBATION_CONDITIONAL_UPLOADS}


def probation_form_errors(form: ProbationForm, attachment_ids: Collection[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, institution in enumerate(form.institutions):
        if institution.end_date is not None and institution.end_date < institution.start_date:
            who = _institution_subject(institution.name, i + 1)
            errors.append(field_error(f"institutions[{i}].end_date", "end_before_start", subject=who))
    for slot in form.uploads:
        if slot not in _PROBATION_SLOTS:
            errors.append(field_error(f"uploads.{slot}", "unknown_upload_slot", f"“{slot}”"))
    errors += _attachment_refs("uploads", form.uploads.items(), attachment_ids, _PROBATION_UPLOAD_LABELS)
    supporting = {f"[{i}]": PROBATION_FIELD_LABELS_ZH["supporting_files"] for i in range(len(form.supporting_files))}
    errors += _attachment_refs(
        "supporting_files", ((f"[{i}]", v) for i, v in enumerate(form.supporting_files)), attachment_ids, supporting
    )
    return [
        FieldError(e.field.replace("supporting_files.[", "supporting_files["), e.code, e.message_zh) for e in errors
    ]


def probation_completeness_errors(
    form: ProbationForm, document_type: DocumentType, bound_unit_name: str | None
) -> list[FieldError]:
    errors: list[FieldError] = []
    if form.level is None:
        errors.append(field_error("level", "required", PROBATION_FIELD_LABELS_ZH["level"]))
    if form.category is None:
        errors.append(field_error("category", "required", PROBATION_FIELD_LABELS_ZH["category"]))
    if form.education is None:
        errors.append(field_error("education", "required", PROBATION_FIELD_LABELS_ZH["education"]))
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
        who = _institution_subject(form.institutions[current[0]].name, current[0] + 1)
        errors.append(field_error(f"institutions[{current[0]}].name", "current_institution_name_mismatch", subject=who))
    return errors
