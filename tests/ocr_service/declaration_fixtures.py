"""Forms and rows for the declaration tests: valid forms to break one rule at a time, identities, tiny files."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

REGION = "420102"  # 湖北省武汉市江岸区
OTHER_REGION = "420106"  # 湖北省武汉市武昌区
# valid GB 11643 numbers (check characters computed), not in the sample set
TEACHER_NUMBERS = ("420102197001011237", "420106196505052340", "420102198002023453")
UNIT_NAME = "武汉市江岸区人民医院"

PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def png_bytes(size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 180, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


def teacher(role: str, number: str, location: str = REGION, doc: str = "att-doc") -> dict[str, Any]:
    return {
        "role": role,
        "name": f"老师{number[-4:]}",
        "id_number": number,
        "practice_location_code": location,
        "documents": {
            slot: doc for slot in ("id_card", "physician_qualification", "practising_certificate", "professional_title")
        },
    }


def apprenticeship_form(doc: str = "att-doc") -> dict[str, Any]:
    return {
        "region_code": REGION,
        "candidate_type": "apprenticeship",
        "narratives": {
            "cultural_education_history": "高中毕业",
            "study_and_practice_history": "跟师十年",
            "expertise_summary": "针灸治疗颈椎病",
        },
        "teachers": [
            teacher("instructing", TEACHER_NUMBERS[1], OTHER_REGION, doc),
            teacher("recommending", TEACHER_NUMBERS[0], REGION, doc),
            teacher("recommending", TEACHER_NUMBERS[2], REGION, doc),
        ],
        "materials": {"apprenticeship_contract": doc, "study_notes": doc, "education_certificate": doc},
    }


def practice_form(doc: str = "att-doc") -> dict[str, Any]:
    return {
        "region_code": REGION,
        "candidate_type": "years_of_practice",
        "narratives": {
            "skill_origin": "家传",
            "personal_study_history": "自学",
            "practice_history": "行医二十年",
            "expertise_summary": "推拿",
        },
        "teachers": [
            teacher("recommending", TEACHER_NUMBERS[0], doc=doc),
            teacher("recommending", TEACHER_NUMBERS[2], doc=doc),
        ],
        "materials": {"practice_proof": doc, "patient_evidence": doc},
    }


def probation_form(unit_name: str = UNIT_NAME) -> dict[str, Any]:
    return {
        "level": "physician",
        "category": "clinical",
        "education": {
            "school": "武汉大学",
            "major": "临床医学",
            "education_level": "本科",
            "graduation_date": "2024-06-30",
        },
        "assistant_to_physician": False,
        "institutions": [
            {"name": "某社区卫生服务中心", "start_date": "2024-07-01", "end_date": "2025-01-31", "post": "住院医师"},
            {"name": unit_name, "start_date": "2025-02-01", "post": "住院医师", "current": True},
        ],
        "fresh_graduate": False,
        "uploads": {},
        "supporting_files": [],
    }


def acknowledge_instructions(harness, declaration: dict[str, Any]) -> None:
    """The applicant reads the 申报须知 and acknowledges it: needed before confirm and submit."""
    text = harness.request("GET", "/v1/declarations/instructions", params={"kind": declaration["kind"]}).json()
    acked = harness.request(
        "POST", f"/v1/declarations/{declaration['id']}/acknowledge-instructions", json={"version": text["version"]}
    )
    assert acked.status_code == 200, acked.text
