"""Request and response bodies of the declaration API, and the two forms the applicant fills in.

The forms are parsed in the service (not by FastAPI) so that a malformed field is reported like
every other rule: ``{"field", "code", "message_zh"}`` in ``details.errors`` of the one error shape.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from ocr_service.declaration.models import (
    ApplicantCategory,
    DeclarationKind,
    DeclarationStatus,
    IdentityReview,
    UnitRequestStatus,
)
from ocr_service.declaration.requirements import CandidateType, PhysicianCategory, PhysicianLevel, TeacherRole
from ocr_service.status_labels import DECLARATION_STATUS, UNIT_REQUEST_STATUS, label
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


class UnverifiedApplicantIn(BaseModel):
    """What a military or HK/Macau/Taiwan applicant without a verified identity types in (the unit checks it)."""

    name: str = Field(min_length=1, max_length=50)
    document_type: DocumentType
    document_number: str = Field(min_length=4, max_length=32)
    sex: str | None = Field(None, max_length=8)
    ethnicity: str | None = Field(None, max_length=32)


class DeclarationCreate(BaseModel):
    subject_id: str = Field(min_length=1, max_length=128)
    kind: DeclarationKind
    project_code: str | None = Field(
        None,
        max_length=64,
        description="The exam project (GET /v1/declarations/projects); omitted: the project of this kind open now.",
    )
    applicant_category: ApplicantCategory | None = Field(
        None,
        description="部队考生 or 港澳台考生: may declare (probation only) without a verified identity, "
        "giving `applicant`; the unit then checks the identity.",
    )
    applicant: UnverifiedApplicantIn | None = None


class ProjectCreate(BaseModel):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: DeclarationKind
    year: int = Field(ge=2000, le=2100)
    title: str = Field(min_length=1, max_length=200, description="Printed on the notice, e.g. 2026年湖北考区…")
    opens_at: datetime = Field(description="With a time zone; shown to applicants in Beijing time.")
    closes_at: datetime = Field(description="Exclusive; after opens_at.")


class ProjectUpdate(BaseModel):
    title: str | None = Field(None, min_length=1, max_length=200)
    opens_at: datetime | None = None
    closes_at: datetime | None = None


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


class InstructionsAck(BaseModel):
    # the version GET /v1/declarations/instructions answered with: what the applicant was shown
    version: str = Field(min_length=1, max_length=64)


class WorkUnitRequestCreate(BaseModel):
    """A unit not yet registered asks to be (003: 如果单位暂不存在，请联系单位负责人进行机构注册)."""

    subject_id: str = Field(
        min_length=1, max_length=128, description="Who asked (the applicant or the unit's contact)."
    )
    name: str = Field(min_length=2, max_length=200, description="The unit's full registered name.")
    contact_name: str = Field(min_length=1, max_length=50)
    contact_phone: str = Field(min_length=5, max_length=32)
    note: str | None = Field(None, max_length=500)


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
    verification_id: str | None  # None: declared without a verified identity (see identity_review)


class EventOut(BaseModel):
    from_status: DeclarationStatus | None
    to_status: DeclarationStatus
    action: str
    reason: str | None
    actor: str
    at: datetime

    @computed_field
    @property
    def from_status_label(self) -> str | None:
        return label(DECLARATION_STATUS, self.from_status)

    @computed_field
    @property
    def to_status_label(self) -> str:
        return label(DECLARATION_STATUS, self.to_status)


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


class ProjectOut(BaseModel):
    code: str
    kind: DeclarationKind
    year: int
    title: str
    opens_at: datetime
    closes_at: datetime
    window_zh: str  # the window in Beijing time, as applicants read it
    open_now: bool


class WorkUnitSearchOut(BaseModel):
    units: list[WorkUnitOut]
    # only when nothing matched: where an unregistered unit goes next
    hint_zh: str | None = Field(
        None, examples=["未找到该单位。如单位尚未注册，请单位负责人提交申请单位注册，管理员审核通过后即可绑定"]
    )
    register_request_path: str | None = Field(None, examples=["/v1/declarations/work-unit-requests"])


class InstructionsOut(BaseModel):
    """申报须知: what the applicant reads and acknowledges before confirming or submitting."""

    kind: DeclarationKind
    title: str
    version: str = Field(description="Send it back to acknowledge-instructions; it changes with the text.")
    items: list[str]


class WorkUnitRequestOut(BaseModel):
    id: str
    name: str
    status: UnitRequestStatus
    subject_id: str
    created_at: datetime
    reviewed_at: datetime | None
    review_reason: str | None
    work_unit_id: str | None

    @computed_field(description="The request's status in Chinese.")
    @property
    def status_label(self) -> str:
        return label(UNIT_REQUEST_STATUS, self.status)


class AdminWorkUnitRequestOut(WorkUnitRequestOut):
    """The administrator also sees whom to call."""

    contact_name: str
    contact_phone: str
    note: str | None


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
    project: ProjectOut | None
    applicant: ApplicantOut
    applicant_category: ApplicantCategory | None
    # pending: declared without a verified identity, the unit (or an admin) must check the documents
    identity_review: IdentityReview | None
    # the saved form; teachers' ID numbers masked
    form: dict
    work_unit: WorkUnitOut | None
    editable: bool
    confirmed_at: datetime | None
    submitted_at: datetime | None
    verify_code: str | None
    # 申报须知: when the applicant acknowledged it, and which text (none yet: confirm/submit answer 409)
    instructions_acknowledged_at: datetime | None = None
    instructions_version: str | None = None
    events: list[EventOut]
    attachments: list[AttachmentOut]
    required_uploads: list[RequiredUploadOut]

    @computed_field(description="The status in Chinese (草稿, 已提交，待审核, 审核通过, ...).")
    @property
    def status_label(self) -> str:
        return label(DECLARATION_STATUS, self.status)


class ReviewDeclarationOut(DeclarationOut):
    """What the unit reviewer sees: the applicant's view plus why the identity was flagged."""

    flagged: bool
    flag_reason: str | None


class WorkUnitRequestApproved(BaseModel):
    request: AdminWorkUnitRequestOut
    # shown once: the new unit's reviewer key and confirmation code, to hand to the unit's contact
    work_unit: WorkUnitCreated


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
