"""The printed notice (ocr_service.declaration.notice) and its public check page (issue 12, item 7).

The notice must prove something: who issued it for which project, the declaration's state (a
receipt while submitted, the registration success notice only once approved), a QR code with the
absolute address of a check page anyone can open without a key, and a layout where nothing hides
anything else -- checked on the PDF rendered to an image (poppler's ``pdftoppm``) against the
boxes the layout declares.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
from pypdf import PdfReader
from pypdf.generic import ContentStream
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from ocr_service.auth import create_api_key
from ocr_service.declaration import notice
from ocr_service.declaration.models import Declaration, DeclarationKind, DeclarationStatus, WorkUnit
from ocr_service.masking import mask_document_number
from tests.ocr_service.api_harness import CLEAN, LABELS, harness, harness_callback_url  # noqa: F401
from tests.ocr_service.declaration_fixtures import PDF_BYTES, UNIT_NAME, acknowledge_instructions, practice_form

CLEAN_NAME = LABELS[CLEAN]["claim"]["name"]
CLEAN_NUMBER = LABELS[CLEAN]["claim"]["id_number"]
BASE_URL = "https://rc.example.gov.cn/hr"
CHECK_LIMIT = 6


@pytest.fixture
def harness_settings() -> dict:
    return {"public_base_url": BASE_URL, "public_check_per_minute": CHECK_LIMIT}


# --- helpers -------------------------------------------------------------------------------------


def submitted_tcm(harness) -> dict:  # noqa: F811
    created = harness.create("user-1")
    answer = harness.upload(created["id"], CLEAN)
    assert answer.status_code == 200 and answer.json()["status"] == "verified", answer.text
    tcm = harness.request("POST", "/v1/declarations", json={"subject_id": "user-1", "kind": "tcm_expertise"}).json()
    acknowledge_instructions(harness, tcm)
    doc = harness.request(
        "POST", f"/v1/declarations/{tcm['id']}/attachments", files={"file": ("a.pdf", PDF_BYTES, "application/pdf")}
    ).json()["id"]
    assert harness.request("PUT", f"/v1/declarations/{tcm['id']}/form", json=practice_form(doc)).status_code == 200
    submitted = harness.request("POST", f"/v1/declarations/{tcm['id']}/submit")
    assert submitted.status_code == 200, submitted.text
    return submitted.json()


def approve(harness, declaration_id: str) -> None:  # noqa: F811
    with harness.database.session_scope() as session:
        _key, secret = create_api_key(session, "exam office", ["admin"])
    approved = harness.request(
        "POST",
        f"/v1/declarations/review/{declaration_id}/approve",
        key=None,
        json={},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text


def notice_pdf(harness, declaration_id: str) -> bytes:  # noqa: F811
    response = harness.request("GET", f"/v1/declarations/{declaration_id}/notice.pdf")
    assert response.status_code == 200, response.text
    return response.content


def pdf_text(pdf: bytes) -> str:
    return PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


def render_png(pdf: bytes, tmp_path: Path, dpi: int = 100) -> np.ndarray:
    """Page 1 as a greyscale image, by poppler (scripts/test.sh installs poppler-utils)."""
    assert shutil.which("pdftoppm"), "pdftoppm missing: apt-get install poppler-utils (scripts/test.sh does)"
    source = tmp_path / "notice.pdf"
    source.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-gray", "-png", "-singlefile", str(source), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    image = cv2.imread(str(tmp_path / "page.png"), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    return image


def qr_payload(pdf: bytes, tmp_path: Path) -> str:
    image = render_png(pdf, tmp_path, dpi=150)
    payload, _points, _ = cv2.QRCodeDetector().detectAndDecode(image)
    assert payload, "no readable QR code on the page"
    return payload


def _multiply(a: list[float], b: list[float]) -> list[float]:
    return [
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4],
        a[4] * b[1] + a[5] * b[3] + b[5],
    ]


def image_rects(reader: PdfReader) -> list[tuple[float, float, float, float]]:
    """Where the page paints its images (x0, y0, x1, y1 in points), from the content stream itself."""
    page = reader.pages[0]
    xobjects = page["/Resources"].get("/XObject", {})
    ctm, stack, rects = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0], [], []
    for operands, operator in ContentStream(page.get_contents(), reader).operations:
        if operator == b"q":
            stack.append(ctm)
        elif operator == b"Q":
            ctm = stack.pop()
        elif operator == b"cm":
            ctm = _multiply([float(v) for v in operands], ctm)
        elif operator == b"Do" and xobjects[operands[0]].get_object().get("/Subtype") == "/Image":
            rects.append((ctm[4], ctm[5], ctm[4] + ctm[0], ctm[5] + ctm[3]))
    return rects


def text_rects(reader: PdfReader) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Each drawn string with its box (x0, y0, x1, y1 in points), measured with the embedded font's metrics."""
    font = "NoticeTestCJK"  # the notice's font, registered here so the measure does not depend on notice.py
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(font, str(notice.CJK_FONT_PATH), subfontIndex=0))
    found: list[tuple[str, tuple[float, float, float, float]]] = []

    def visit(text, cm, tm, _font_dict, font_size):
        if not text.strip():
            return
        matrix = _multiply(tm, cm)
        size = font_size * matrix[0]
        x, y = matrix[4], matrix[5]
        width = pdfmetrics.stringWidth(text, font, size)
        found.append((text, (x, y - 0.2 * size, x + width, y + 0.9 * size)))

    reader.pages[0].extract_text(visitor_text=visit)
    return found


def intersects(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > 0.5 and min(a[3], b[3]) - max(a[1], b[1]) > 0.5


def beijing(iso: str) -> str:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y年%m月%d日 %H:%M")


# --- over HTTP: what the applicant prints and what the clerk's phone opens ----------------------


def test_a_submitted_declaration_prints_a_receipt_that_says_it_is_not_yet_approved(harness):  # noqa: F811
    tcm = submitted_tcm(harness)
    text = pdf_text(notice_pdf(harness, tcm["id"]))
    assert "申报回执" in text and "报名成功通知单" not in text.replace("重新打印报名成功通知单", "")
    assert "湖北省卫生人才综合服务平台" in text and "中医医术确有专长人员医师资格考核" in text
    assert "已提交，待审核" in text and "不代表审核通过" in text


def test_only_an_approved_declaration_prints_the_registration_success_notice(harness):  # noqa: F811
    tcm = submitted_tcm(harness)
    approve(harness, tcm["id"])
    text = pdf_text(notice_pdf(harness, tcm["id"]))
    assert "报名成功通知单" in text and "申报回执" not in text
    assert "审核通过" in text and "审核通过时间" in text
    year = beijing(tcm["submitted_at"])[:4]
    assert f"{year}年湖北省中医医术确有专长人员医师资格考核" in text
    assert "湖北省卫生人才综合服务平台" in text
    assert CLEAN_NAME in text and tcm["number"] in text and CLEAN_NUMBER not in text


def test_no_text_is_printed_under_the_qr_code(harness):  # noqa: F811
    tcm = submitted_tcm(harness)
    approve(harness, tcm["id"])
    reader = PdfReader(io.BytesIO(notice_pdf(harness, tcm["id"])))
    images = image_rects(reader)
    assert len(images) == 1
    texts = text_rects(reader)
    assert any("经多年中医医术实践" in text for text, _ in texts)  # the candidate type is printed...
    hidden = [text for text, rect in texts if intersects(rect, images[0])]
    assert hidden == []  # ...and nothing lies under the QR code


def test_the_qr_code_holds_the_absolute_address_of_the_public_check_page(harness, tmp_path):  # noqa: F811
    tcm = submitted_tcm(harness)
    pdf = notice_pdf(harness, tcm["id"])
    assert qr_payload(pdf, tmp_path) == f"{BASE_URL}/check/{tcm['verify_code']}"
    assert tcm["verify_code"] in pdf_text(pdf)


def test_the_check_page_needs_no_key_and_shows_the_masked_identity_state_and_beijing_time(harness):  # noqa: F811
    tcm = submitted_tcm(harness)
    path = f"/check/{tcm['verify_code']}"
    page = harness.request("GET", path, key=None)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert tcm["number"] in html and mask_document_number(CLEAN_NUMBER) in html
    assert CLEAN_NUMBER not in html and CLEAN_NAME not in html
    assert "已提交，待审核" in html and "尚未审核通过" in html
    assert beijing(tcm["submitted_at"]) in html and "北京时间" in html

    approve(harness, tcm["id"])
    html = harness.request("GET", path, key=None).text
    assert "审核通过" in html and "报名成功" in html and "审核通过时间" in html

    assert harness.request("POST", f"/v1/declarations/{tcm['id']}/withdraw").status_code in (200, 409)
    # the keyed JSON check stays for clerks' systems
    check = harness.request("GET", f"/v1/declarations/verify/{tcm['verify_code']}", key="client").json()
    assert check["number"] == tcm["number"] and check["status_label"]


def test_verification_codes_are_long_and_random(harness):  # noqa: F811
    tcm = submitted_tcm(harness)
    # 16 hex characters from secrets.token_hex: 64 random bits, too many to guess at a few a minute
    assert re.fullmatch(r"[0-9A-F]{16}", tcm["verify_code"])


def test_the_check_page_is_rate_limited_per_address_found_or_not(harness):  # noqa: F811
    statuses = [harness.request("GET", "/check/0123456789ABCDEF", key=None).status_code for _ in range(CHECK_LIMIT)]
    assert statuses == [404] * CHECK_LIMIT
    malformed = harness.request("GET", "/check/not-a-code", key=None)
    assert malformed.status_code == 429 and int(malformed.headers["retry-after"]) >= 1
    assert "查询过于频繁" in malformed.text


# --- the layout, without HTTP ---------------------------------------------------------------------

LONG_CANDIDATE = "经多年中医医术实践" * 8  # far wider than the value column: must wrap


def content_of(kind: DeclarationKind, status: DeclarationStatus, *, form: dict | None = None) -> notice.NoticeContent:
    submitted = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    declaration = Declaration(
        number="ZC2026000123",
        kind=kind,
        status=status,
        applicant_name="王小明",
        submitted_at=submitted,
        verify_code="0123456789ABCDEF",
        work_unit=WorkUnit(name=UNIT_NAME) if kind is DeclarationKind.PHYSICIAN_PROBATION else None,
    )
    return notice.notice_content(
        declaration,
        form or {},
        id_number_masked="4****************2",
        region_name="湖北省武汉市江岸区" if kind is DeclarationKind.TCM_EXPERTISE else None,
        public_base_url=BASE_URL,
        approved_at=datetime(2026, 3, 5, 1, 0, tzinfo=UTC),
        printed_at=datetime(2026, 3, 6, 1, 0, tzinfo=UTC),
    )


def test_the_probation_notice_prints_the_work_unit_under_its_own_label_never_under_region():
    content = content_of(DeclarationKind.PHYSICIAN_PROBATION, DeclarationStatus.APPROVED)
    text = pdf_text(notice.render_notice(content))
    assert "申报地区" not in text
    assert re.search(r"工作单位\s*" + UNIT_NAME, text)
    assert "2026年湖北考区医师资格考试试用期考核" in text


def test_a_long_candidate_type_wraps_inside_its_cell():
    content = content_of(DeclarationKind.TCM_EXPERTISE, DeclarationStatus.SUBMITTED, form={})
    content = notice.NoticeContent(**{**content.__dict__, "candidate_type": LONG_CANDIDATE})
    layout = notice.layout_notice(content)
    cell = layout.box("value:考生类别")
    assert len(cell.lines) > 1
    assert "".join(line.text for line in cell.lines) == LONG_CANDIDATE
    font = notice.register_font()
    for line in cell.lines:
        assert line.x + pdfmetrics.stringWidth(line.text, font, line.size) <= cell.x + cell.width
    assert not cell.overlaps(layout.box("qr"))


LAYOUT_CASES = {
    "tcm receipt, long candidate type": (DeclarationKind.TCM_EXPERTISE, DeclarationStatus.SUBMITTED, LONG_CANDIDATE),
    "tcm approved": (DeclarationKind.TCM_EXPERTISE, DeclarationStatus.APPROVED, None),
    "probation approved": (DeclarationKind.PHYSICIAN_PROBATION, DeclarationStatus.APPROVED, None),
}


@pytest.mark.parametrize("case", LAYOUT_CASES, ids=list(LAYOUT_CASES))
def test_the_rendered_page_marks_only_inside_its_layout_boxes_which_never_overlap(case, tmp_path):
    kind, status, candidate = LAYOUT_CASES[case]
    content = content_of(kind, status, form={"candidate_type": "years_of_practice"})
    if candidate:
        content = notice.NoticeContent(**{**content.__dict__, "candidate_type": candidate})
    layout = notice.layout_notice(content)
    boxes = layout.boxes
    for i, a in enumerate(boxes):
        assert a.x >= notice.MARGIN - 0.01 and a.x + a.width <= notice.PAGE_WIDTH - notice.MARGIN + 0.01, a.name
        assert a.y >= notice.MARGIN - 0.01 and a.top <= notice.PAGE_HEIGHT - notice.MARGIN + 0.01, a.name
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a.name, b.name)

    dpi = 100
    image = render_png(notice.render_notice(content), tmp_path, dpi)
    scale = dpi / 72
    ink = image < 160
    inside = np.zeros_like(ink)
    tolerance = 2  # pixels: a cell's border line straddles its edge
    for box in boxes:
        x0, x1 = int(box.x * scale) - tolerance, int((box.x + box.width) * scale) + tolerance + 1
        y0 = int((notice.PAGE_HEIGHT - box.top) * scale) - tolerance
        y1 = int((notice.PAGE_HEIGHT - box.y) * scale) + tolerance + 1
        inside[max(y0, 0) : y1, max(x0, 0) : x1] = True
        if box.lines or box.qr_payload:  # something is drawn in it, away from its border
            core = ink[y0 + 2 * tolerance + 1 : y1 - 2 * tolerance - 1, x0 + 2 * tolerance + 1 : x1 - 2 * tolerance - 1]
            assert core.any(), f"nothing drawn in {box.name}"
    stray = np.argwhere(ink & ~inside)
    assert len(stray) == 0, f"{len(stray)} dark pixels outside every box, first at (row, col) {stray[:3].tolist()}"
    # the QR code is readable where the layout put it
    payload, _points, _ = cv2.QRCodeDetector().detectAndDecode(render_png(notice.render_notice(content), tmp_path, 150))
    assert payload == f"{BASE_URL}/check/0123456789ABCDEF"
