"""Request and response bodies of the declaration API, and the two forms the applicant fills in.

The forms are parsed in the service (not by FastAPI) so that a malformed field is reported like
every other rule: ``{"field", "code", "message_zh"}`` in ``details.errors`` of the one error shape.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from ocr_service.declaration.models import DeclarationKind, DeclarationStatus
from ocr_service.declaration.requirements import CandidateType, PhysicianCategory, PhysicianLevel, TeacherRole
from ocr_service.verification.models import DocumentType

# --- the forms ----------------------------------------------------------------------------------


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Teacher(_Form):
    role: TeacherRole
    name: str = Field(min_length=1, max_length=50)
    id_number: str = Field(min_length=1, max_length=32)
    practice_location_code: str = Field(min_length=6, max_length=6)
    # TEACHER_DOCUMENTS slot -> attachment id
    documents: dict[str, str] = {}


class TcmForm(_Form):
    region_code: str | None = None
    candidate_type: CandidateType | None = None
    # narrative key (requirements.TCM_CANDIDATES[...].narratives) -> text
    narratives: dict[str, str] = {}
    teachers: list[Teacher] = []
    # material slot -> attachment id
    materials: dict[str, str] = {}


class Education(_Form):
    school: str = Field(min_length=1, max_length=100)
    major: str = Field(min_length=1, max_length=100)
    education_level: str = Field(min_length=1, max_length=50)
    graduation_date: date


class Institution(_Form):
    name: str = Field(min_length=1, max_length=200)
    start_date: date
    end_date: date | None = None
    post: str = Field(min_length=1, max_length=100)
    current: bool = False


class ProbationForm(_Form):
    level: PhysicianLevel | None = None
    category: PhysicianCategory | None = None
    education: Education | None = None
    assistant_to_physician: bool = False
    qualification_certificate_number: str | None = Field(None, max_length=64)
    practising_certificate_number: str | None = Field(None, max_length=64)
    institutions: list[Institution] = []
    fresh_graduate: bool = False
    # conditional upload slot (commitment_letter, hmt_internship_review_form, ...) -> attachment id
    uploads: dict[str, str] = {}
    supporting_files: list[str] = []


# --- requests -----------------------------------------------------------------------------------


class DeclarationCreate(BaseModel):
    subject_id: str = Field(min_length=1, max_length=128)
    kind: DeclarationKind


class WorkUnitCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    # omit to have a 10-character code generated; a chosen one needs at least 8 characters of
    # 23456789ABCDEFGHJKMNPQRSTUVWXYZ (case is ignored), else 422 weak_confirmation_code
    confirmation_code: str | None = Field(
        None,
        max_length=64,
        description="At least 8 characters of 23456789ABCDEFGHJKMNPQRSTUVWXYZ (case ignored); omit to generate one.",
    )


class BindRequest(BaseModel):
    subject_id: str = Field(min_length=1, max_length=128)
    work_unit_id: str = Field(min_length=1, max_length=36)
    confirmation_code: str = Field(min_length=1, max_length=64)


class ReasonIn(BaseModel):
    reason: str | None = Field(None, max_length=2000)


class ReturnIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


# --- responses ----------------------------------------------------------------------------------


class FieldErrorOut(BaseModel):
    field: str
    code: str
    message_zh: str


class ApplicantOut(BaseModel):
    name: str
    sex: str | None
    ethnicity: str | None
    document_type: DocumentType
    id_number_masked: str
    verification_id: str


class EventOut(BaseModel):
    from_status: DeclarationStatus | None
    to_status: DeclarationStatus
    action: str
    reason: str | None
    actor: str
    at: datetime


class AttachmentOut(BaseModel):
    id: str
    content_type: str
    size_bytes: int
    filename: str
    created_at: datetime


class WorkUnitOut(BaseModel):
    id: str
    name: str


class WorkUnitCreated(WorkUnitOut):
    # shown once: the key the unit's administrator reviews with
    reviewer_key: str
    # shown once: the code (upper case) applicants bind with, generated unless one was chosen
    confirmation_code: str


class BindingOut(BaseModel):
    subject_id: str
    work_unit: WorkUnitOut
    bound_at: datetime


class RequiredUploadOut(BaseModel):
    slot: str
    label_zh: str
    provided: bool


class DeclarationOut(BaseModel):
    id: str
    number: str
    kind: DeclarationKind
    status: DeclarationStatus
    subject_id: str
    applicant: ApplicantOut
    # the saved form; teachers' ID numbers masked
    form: dict
    work_unit: WorkUnitOut | None
    editable: bool
    confirmed_at: datetime | None
    submitted_at: datetime | None
    verify_code: str | None
    events: list[EventOut]
    attachments: list[AttachmentOut]
    required_uploads: list[RequiredUploadOut]


class ReviewDeclarationOut(DeclarationOut):
    """What the unit reviewer sees: the applicant's view plus why the identity was flagged."""

    flagged: bool
    flag_reason: str | None


class NoticeCheckOut(BaseModel):
    """The answer to a clerk checking a printed notice's verification code."""

    valid: bool
    number: str
    kind: DeclarationKind
    status: DeclarationStatus
    status_label: str  # the status in Chinese, as the check page shows it
    applicant_name: str
    id_number_masked: str
    region_name: str | None
    submitted_at: datetime | None
    approved_at: datetime | None
