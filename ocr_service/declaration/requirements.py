"""What each kind of declaration requires, as data: narratives, teachers, uploads and their conditions.

The rules in ``validation.py`` read these tables; changing what an applicant must provide
(a new material, another condition) is an edit here, not in the code that checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ocr_service.verification.models import DocumentType


class CandidateType(StrEnum):
    APPRENTICESHIP = "apprenticeship"  # 以师承方式学习中医
    YEARS_OF_PRACTICE = "years_of_practice"  # 经多年中医医术实践


class TeacherRole(StrEnum):
    INSTRUCTING = "instructing"  # 指导老师
    RECOMMENDING = "recommending"  # 推荐医师


TEACHER_ROLE_LABELS_ZH: Mapping[TeacherRole, str] = {
    TeacherRole.INSTRUCTING: "指导老师",
    TeacherRole.RECOMMENDING: "推荐医师",
}

# The province whose county-level divisions a TCM declaration's region must be one of (湖北).
TCM_REGION_PROVINCE = "42"


@dataclass(frozen=True)
class Upload:
    """A file the applicant must (or may) upload: the form key that holds its attachment id."""

    slot: str
    label_zh: str


@dataclass(frozen=True)
class TeacherCount:
    minimum: int
    maximum: int | None  # None: no upper limit


@dataclass(frozen=True)
class CandidateRequirements:
    label_zh: str
    narratives: tuple[Upload, ...]  # reused for text fields: key + Chinese label
    teachers: Mapping[TeacherRole, TeacherCount]
    materials: tuple[Upload, ...]


# Every teacher brings the same four documents (the seed manual: 身份证、医师资格证、医师执业证、专业技术职称证书).
TEACHER_DOCUMENTS: tuple[Upload, ...] = (
    Upload("id_card", "身份证"),
    Upload("physician_qualification", "医师资格证书"),
    Upload("practising_certificate", "医师执业证书"),
    Upload("professional_title", "专业技术职称证书"),
)

TCM_CANDIDATES: Mapping[CandidateType, CandidateRequirements] = {
    CandidateType.APPRENTICESHIP: CandidateRequirements(
        label_zh="以师承方式学习中医",
        narratives=(
            Upload("cultural_education_history", "文化学习经历"),
            Upload("study_and_practice_history", "跟师学习医术及实践经历"),
            Upload("expertise_summary", "医术专长综述"),
        ),
        teachers={
            TeacherRole.INSTRUCTING: TeacherCount(1, 1),
            TeacherRole.RECOMMENDING: TeacherCount(2, None),
        },
        materials=(
            Upload("apprenticeship_contract", "师承关系合同（公证书）"),
            Upload("study_notes", "跟师学习笔记、临床实践记录"),
            Upload("education_certificate", "学历证明"),
        ),
    ),
    CandidateType.YEARS_OF_PRACTICE: CandidateRequirements(
        label_zh="经多年中医医术实践",
        narratives=(
            Upload("skill_origin", "医术渊源"),
            Upload("personal_study_history", "个人学习经历"),
            Upload("practice_history", "医术实践经历"),
            Upload("expertise_summary", "医术专长综述"),
        ),
        teachers={
            TeacherRole.INSTRUCTING: TeacherCount(0, 0),
            TeacherRole.RECOMMENDING: TeacherCount(2, None),
        },
        materials=(
            Upload("practice_proof", "医术实践证明材料（连续5年以上）"),
            Upload("patient_evidence", "患者推荐或疗效证明材料"),
        ),
    ),
}


# --- physician probation ----------------------------------------------------------------------


class PhysicianLevel(StrEnum):
    PHYSICIAN = "physician"  # 执业医师
    ASSISTANT_PHYSICIAN = "assistant_physician"  # 执业助理医师


class PhysicianCategory(StrEnum):
    CLINICAL = "clinical"  # 临床
    CHINESE_MEDICINE = "chinese_medicine"  # 中医
    STOMATOLOGY = "stomatology"  # 口腔
    PUBLIC_HEALTH = "public_health"  # 公共卫生


@dataclass(frozen=True)
class Condition:
    """When a conditional requirement applies: a true form flag, or one of some document types."""

    form_flag: str | None = None
    document_types: frozenset[DocumentType] = frozenset()

    def applies(self, form: Mapping[str, object], document_type: DocumentType) -> bool:
        if self.form_flag is not None:
            return bool(form.get(self.form_flag))
        return document_type in self.document_types


@dataclass(frozen=True)
class ConditionalUpload:
    upload: Upload
    when: Condition


@dataclass(frozen=True)
class ConditionalField:
    field: str
    label_zh: str
    when: Condition


# The seed manual (003) asks each group for its own form: 《台湾、香港、澳门居民参加国家医师资格考试
# 实习申请审核表》 and 《外籍人员参加中国医师资格考试实习申请审核表》.
_HK_MACAU_TAIWAN = frozenset(
    {DocumentType.HK_MACAU_PERMIT, DocumentType.TAIWAN_PERMIT, DocumentType.HMT_RESIDENCE_PERMIT}
)
_FOREIGN = frozenset({DocumentType.FOREIGN_PASSPORT, DocumentType.FOREIGN_PERMANENT_RESIDENCE})
_MILITARY = frozenset({DocumentType.MILITARY})

_ASSISTANT = Condition(form_flag="assistant_to_physician")

PROBATION_CONDITIONAL_FIELDS: tuple[ConditionalField, ...] = (
    ConditionalField("qualification_certificate_number", "医师资格证书编号", _ASSISTANT),
    ConditionalField("practising_certificate_number", "医师执业证书编号", _ASSISTANT),
)

PROBATION_CONDITIONAL_UPLOADS: tuple[ConditionalUpload, ...] = (
    ConditionalUpload(Upload("commitment_letter", "应届毕业生承诺书"), Condition(form_flag="fresh_graduate")),
    ConditionalUpload(
        Upload("hmt_internship_review_form", "台湾、香港、澳门居民参加国家医师资格考试实习申请审核表"),
        Condition(document_types=_HK_MACAU_TAIWAN),
    ),
    ConditionalUpload(
        Upload("foreign_internship_review_form", "外籍人员参加中国医师资格考试实习申请审核表"),
        Condition(document_types=_FOREIGN),
    ),
    ConditionalUpload(Upload("military_education_proof", "部队团级以上学历证明"), Condition(document_types=_MILITARY)),
    ConditionalUpload(Upload("military_probation_assessment", "试用期考核合格表"), Condition(document_types=_MILITARY)),
)

# Several files allowed, none required (工作经历证明等).
PROBATION_SUPPORTING_FILES = Upload("supporting_files", "其他证明材料")


# --- Chinese labels of the form fields ------------------------------------------------------------
# Keyed by the field's path without list indices ("teachers.id_number"); validation names a
# malformed value by these ("出生日期格式不正确"), falling back to the nearest labelled parent.

TCM_FIELD_LABELS_ZH: Mapping[str, str] = {
    "region_code": "申报地区",
    "candidate_type": "考生类型",
    "narratives": "经历描述",
    "teachers": "老师信息",
    "teachers.role": "老师类别",
    "teachers.name": "姓名",
    "teachers.id_number": "身份证号码",
    "teachers.practice_location_code": "执业地点",
    "teachers.documents": "老师材料",
    "materials": "资格材料",
    **{f"narratives.{n.slot}": n.label_zh for c in TCM_CANDIDATES.values() for n in c.narratives},
    **{f"materials.{m.slot}": m.label_zh for c in TCM_CANDIDATES.values() for m in c.materials},
    **{f"teachers.documents.{d.slot}": d.label_zh for d in TEACHER_DOCUMENTS},
}

PROBATION_FIELD_LABELS_ZH: Mapping[str, str] = {
    "level": "报考级别",
    "category": "报考类别",
    "education": "学历信息",
    "education.school": "毕业学校",
    "education.major": "所学专业",
    "education.education_level": "学历",
    "education.graduation_date": "毕业日期",
    "assistant_to_physician": "是否为执业助理医师报考执业医师",
    "qualification_certificate_number": "医师资格证书编号",
    "practising_certificate_number": "医师执业证书编号",
    "institutions": "试用/工作机构",
    "institutions.name": "机构名称",
    "institutions.start_date": "开始日期",
    "institutions.end_date": "结束日期",
    "institutions.post": "岗位",
    "institutions.current": "是否为当前试用机构",
    "fresh_graduate": "是否为应届毕业生",
    "uploads": "证明材料",
    "supporting_files": PROBATION_SUPPORTING_FILES.label_zh,
    **{f"uploads.{rule.upload.slot}": rule.upload.label_zh for rule in PROBATION_CONDITIONAL_UPLOADS},
}
