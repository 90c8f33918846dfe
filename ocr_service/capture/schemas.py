"""What the capture-link endpoints answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ocr_service.verification.models import VerificationStatus
from ocr_service.verification.schemas import NextAction, ReasonOut


class CaptureSessionOut(BaseModel):
    """A capture link for the applicant's phone. The token is in ``url`` and is shown only here."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "2c1f7f8e-7d7e-4b8f-9a55-3e1c6a7b4f02",
                    "verification_id": "6f1c6f0e-4a55-4c7e-9f5e-0b8a3f2d8a11",
                    "url": "https://ocr.example.cn/capture/Jm3x…",
                    "expires_at": "2026-01-01T08:30:00Z",
                }
            ]
        }
    )

    id: str = Field(description="Revoke the link with DELETE …/capture-sessions/{id}.")
    verification_id: str
    url: str = Field(description="Open this on the applicant's phone (in a WebView or the browser).")
    expires_at: datetime


class CaptureStatusOut(BaseModel):
    """The verification as the capture page shows it (no claim, no history)."""

    status: VerificationStatus
    reasons: list[ReasonOut]
    review_reason: str | None
    attempts_left: int
    next_action: NextAction
