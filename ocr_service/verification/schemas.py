"""What the verification API accepts and answers: the pydantic models OpenAPI documents.

Response models never carry a full document number unless the route was told the client
key may see one (``identity:full``); the masking happens in the service before a schema is
built, so a schema can never leak what it was not given.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, computed_field

from ocr_service.status_labels import ATTEMPT_DECISION, ATTEMPT_STATUS, VERIFICATION_STATUS, label
from ocr_service.verification.models import (
    AttemptStatus,
    DocumentType,
    ImageSide,
    Method,
    VerificationStatus,
)
from pipelines.reasons import MESSAGES, Decision


class NextAction(StrEnum):
    """What the client app should do next, so it need not re-derive the state machine."""

    UPLOAD_FRONT = "upload_front"
    UPLOAD_BACK = "upload_back"
    WAIT_FOR_SCAN = "wait_for_scan"
    WAIT_FOR_REVIEW = "wait_for_review"
    # the card was read clearly and contradicts what was typed: PUT .../claim (claim_fields names
    # what differs); the stored photo is scanned again, no new photo is needed
    CORRECT_CLAIM = "correct_claim"
    NONE = "none"  # final: verified, rejected or withdrawn


class ReasonOut(BaseModel):
    """A reason code with the Chinese text the applicant sees."""

    code: str = Field(examples=["blurry"])
    message: str = Field(examples=["画面模糊，请保持稳定"])

    @classmethod
    def of(cls, code: str) -> ReasonOut:
        zh = MESSAGES.get(code, (code, code))[0]
        return cls(code=code, message=zh)


def reasons_out(codes: list[str] | tuple[str, ...] | None) -> list[ReasonOut]:
    return [ReasonOut.of(str(code)) for code in codes or ()]


# --- quality ---------------------------------------------------------------------------------


class QualityScoresOut(BaseModel):
    sharpness: float
    glare_on_card: float
    glare_on_field: float
    glare_field: str | None
    brightness: float
    clipped: float
    coverage: float
    side_ratio: float
    corner_skew_deg: float
    tilt_deg: float
    moire: float
    colour_spread: float = Field(description="chroma beyond the card's tint; near 0 for a greyscale copy")
    in_screen_frame: bool = Field(description="the card is shown inside a device's dark bezel (recapture)")


class QualityOut(BaseModel):
    """The live framing check for one camera frame. Nothing is stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ok": False,
                    "reasons": [{"code": "blurry", "message": "画面模糊，请保持稳定"}],
                    "corners": [[80.0, 54.0], [1156.0, 61.0], [1162.0, 738.0], [75.0, 743.0]],
                    "frame_size": [1280, 960],
                    "scores": None,
                    "elapsed_ms": 11.2,
                }
            ]
        }
    )

    ok: bool = Field(description="True when the frame is good enough to take the photo.")
    reasons: list[ReasonOut]
    corners: list[list[float]] | None = Field(
        description="The card's corners in frame pixels, clockwise from the card's top-left; null when no card."
    )
    frame_size: tuple[int, int] = Field(description="(width, height) of the decoded frame.")
    scores: QualityScoresOut | None
    elapsed_ms: float


# --- verifications ---------------------------------------------------------------------------

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
DocumentNumber = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
SubjectId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")
]


class ClaimIn(BaseModel):
    """What the applicant typed.

    Checked on entry (422 naming the format otherwise): a resident ID number (GB 11643, check
    character), a 港澳台居民居住证 number (810000/820000/830000 …) and a 外国人永久居留身份证 number
    (9 …, or the 2004 card's three letters and 12 digits).
    """

    name: Name = Field(examples=["陶超淼"])
    document_number: DocumentNumber = Field(examples=["142536197609041151"])


class ClaimCorrection(ClaimIn):
    """The claim typed again after a scan asked for it (next_action correct_claim); checked like on creation."""


class VerificationCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "subject_id": "user-8841",
                    "document_type": "resident_id",
                    "method": "auto",
                    "claim": {"name": "陶超淼", "document_number": "142536197609041151"},
                }
            ]
        }
    )

    subject_id: SubjectId = Field(description="The client application's own id for the applicant.")
    document_type: DocumentType = Field(
        DocumentType.RESIDENT_ID,
        description="resident_id 居民身份证 (the only automatic one); hmt_residence_permit 港澳台居民居住证; "
        "foreign_permanent_residence 外国人永久居留身份证; hk_macau_permit 港澳居民来往内地通行证; "
        "taiwan_permit 台湾居民来往大陆通行证; foreign_passport 护照; military 军官证/士兵证. "
        "A resident_id whose number starts with 81/82/83 or 9 is re-typed as the permit it is and reviewed manually "
        "(reason residence_permit_number / foreign_permanent_residence_number).",
    )
    method: Method = Field(
        Method.AUTO, description="auto: scan a resident ID card; manual: a reviewer decides. Other documents: manual."
    )
    claim: ClaimIn


class ClaimOut(BaseModel):
    name: str
    document_number: str = Field(
        description="Masked: the first and the last character of 10 or more, else none.",
        examples=["1****************1"],
    )


class AttemptOut(BaseModel):
    """One uploaded photo. Automatic scans carry a decision; manual uploads do not."""

    id: str
    side: ImageSide
    status: AttemptStatus
    decision: Decision | None = Field(description="accept | retake | review | reject; null for a manual upload.")
    reasons: list[ReasonOut]
    counts_as_failure: bool = Field(
        description="A retake or reject of an automatic scan: counts towards the limit"
        " (a verification's first claim mismatch does not: it asks for the claim)."
    )
    created_at: datetime
    finished_at: datetime | None

    @computed_field(description="The attempt's status in Chinese.")
    @property
    def status_label(self) -> str:
        return label(ATTEMPT_STATUS, self.status)

    @computed_field(description="The scan's decision in Chinese; null with the decision.")
    @property
    def decision_label(self) -> str | None:
        return label(ATTEMPT_DECISION, self.decision)


class StatusEventOut(BaseModel):
    from_status: VerificationStatus | None
    to_status: VerificationStatus
    reason: str | None
    at: datetime

    @computed_field
    @property
    def from_status_label(self) -> str | None:
        return label(VERIFICATION_STATUS, self.from_status)

    @computed_field
    @property
    def to_status_label(self) -> str:
        return label(VERIFICATION_STATUS, self.to_status)


class VerificationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "6f1c6f0e-4a55-4c7e-9f5e-0b8a3f2d8a11",
                    "subject_id": "user-8841",
                    "document_type": "resident_id",
                    "method": "auto",
                    "status": "retake",
                    "status_label": "待认证（请重新拍摄）",
                    "claim": {"name": "陶超淼", "document_number": "1****************1"},
                    "reasons": [{"code": "blurry", "message": "画面模糊，请保持稳定"}],
                    "review_reason": None,
                    "attempts_left": 4,
                    "failed_attempts": 1,
                    "max_failed_attempts": 5,
                    "next_action": "upload_front",
                    "attempts": [],
                    "history": [],
                    "created_at": "2026-01-01T08:00:00Z",
                    "updated_at": "2026-01-01T08:00:05Z",
                    "decided_at": None,
                }
            ]
        }
    )

    id: str
    subject_id: str
    document_type: DocumentType
    method: Method
    status: VerificationStatus
    claim: ClaimOut
    reasons: list[ReasonOut] = Field(description="Why the case is in its status (the latest decision).")
    review_reason: str | None = Field(
        description="Why the case is (or, re-typed on creation, will be) in manual review, e.g. too_many_attempts, "
        "daily_attempts_exhausted, residence_permit_number."
    )
    attempts_left: int = Field(
        description="Automatic attempts the subject has left before manual review: failures left in this episode, "
        "or scans left in the last 24 hours (OCR_MAX_DAILY_ATTEMPTS) when fewer."
    )
    failed_attempts: int = Field(
        description="Failed automatic attempts of this subject in its current episode (over all its verifications "
        "since its latest withdrawal: withdrawing a manual request starts a new episode)."
    )
    max_failed_attempts: int
    next_action: NextAction
    claim_fields: list[str] = Field(
        default_factory=list,
        description="With next_action correct_claim: the claim fields (name, document_number) that differ from "
        "the card read.",
    )
    attempts: list[AttemptOut]
    history: list[StatusEventOut]
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None

    @computed_field(description="The status in Chinese, as the platform words it (待认证, 认证成功, ...).")
    @property
    def status_label(self) -> str:
        return label(VERIFICATION_STATUS, self.status)


class UploadOut(BaseModel):
    """The answer to an upload: the scan's decision when it finished in time, else where to look."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "verification_id": "6f1c6f0e-4a55-4c7e-9f5e-0b8a3f2d8a11",
                    "attempt_id": "0b5f1c9e-2f7e-4a3c-8d55-91e3c6a7b402",
                    "status": "verified",
                    "status_label": "认证成功",
                    "attempt_status": "done",
                    "attempt_status_label": "已完成",
                    "decision": "accept",
                    "decision_label": "通过",
                    "reasons": [],
                    "review_reason": None,
                    "attempts_left": 5,
                    "next_action": "none",
                    "status_url": "/v1/verifications/6f1c6f0e-4a55-4c7e-9f5e-0b8a3f2d8a11",
                    "replayed": False,
                }
            ]
        }
    )

    verification_id: str
    attempt_id: str
    status: VerificationStatus = Field(description="The verification's status after this upload.")
    attempt_status: AttemptStatus = Field(description="done, or queued/running when answered with 202.")
    decision: Decision | None = Field(description="The scan's decision; null for manual uploads or while pending.")
    reasons: list[ReasonOut] = Field(description="The scan's reasons, or why the case went to manual review.")
    review_reason: str | None
    attempts_left: int
    next_action: NextAction
    claim_fields: list[str] = Field(
        default_factory=list,
        description="With next_action correct_claim: the claim fields (name, document_number) that differ from "
        "the card read.",
    )
    status_url: str = Field(description="GET this for the verification's current state.")
    replayed: bool = Field(description="True when this answers a repeated Idempotency-Key.")

    @computed_field(description="The verification's status in Chinese (待认证, 认证成功, ...).")
    @property
    def status_label(self) -> str:
        return label(VERIFICATION_STATUS, self.status)

    @computed_field
    @property
    def attempt_status_label(self) -> str:
        return label(ATTEMPT_STATUS, self.attempt_status)

    @computed_field
    @property
    def decision_label(self) -> str | None:
        return label(ATTEMPT_DECISION, self.decision)


class IdentityOut(BaseModel):
    """The identity a subject proved.

    Without the identity:full scope ``document_number`` is masked and ``birth_date`` is left out.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "subject_id": "user-8841",
                    "name": "陶超淼",
                    "sex": "男",
                    "ethnicity": "汉",
                    "document_type": "resident_id",
                    "document_number": "1****************1",
                    "document_number_masked": True,
                    "verified_at": "2026-01-01T08:00:05Z",
                    "method": "auto",
                    "verification_id": "6f1c6f0e-4a55-4c7e-9f5e-0b8a3f2d8a11",
                }
            ]
        }
    )

    subject_id: str
    name: str
    sex: str | None
    ethnicity: str | None
    birth_date: date | None = Field(
        None, description="Only for a key with identity:full (with a masked number it would give the number back)."
    )
    document_type: DocumentType
    document_number: str
    document_number_masked: bool
    verified_at: datetime
    method: Method
    verification_id: str


class HealthOut(BaseModel):
    status: str = Field(examples=["ok"])
    checks: dict[str, str] = Field(default_factory=dict, examples=[{"database": "ok", "models": "ok"}])


class ErrorDetail(BaseModel):
    code: str = Field(examples=["illegal_transition"])
    message: str = Field(examples=["cannot upload while the verification is in_review"])
    message_zh: str | None = Field(examples=["当前状态不允许此操作"])
    details: dict = Field(default_factory=dict, examples=[{"current_status": "in_review"}])


class ErrorOut(BaseModel):
    """The one error shape of every endpoint."""

    error: ErrorDetail
