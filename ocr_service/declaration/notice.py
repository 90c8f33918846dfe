"""The printed notice of a declaration (PDF): 申报回执 once submitted, 报名成功通知单 once approved.

What the paper proves: who issued it (the platform and the exam project), which declaration it is,
its state when printed, and a QR code with the absolute address of the public check page
(``{OCR_PUBLIC_BASE_URL}/check/{code}``) where anyone holding the paper sees the declaration's
current state, the masked ID number and the times -- no API key needed. The code is printed as text
too, for typing it in.

The page is laid out first as a list of boxes (``layout_notice``), then drawn box by box
(``render_notice``), so a test can render the PDF to an image and check that every mark falls
inside its box and no two boxes overlap (a long candidate type wraps inside its row instead of
running under the QR code). No applicant photo: the service keeps no portrait fit for printing,
and the clerk compares the ID card itself; the layout has no photo slot rather than an empty one.

Chinese text needs a CJK font embedded in the PDF: WenQuanYi Zen Hei (``CJK_FONT_PATH``, a TTC
collection, so the first face is chosen with ``subfontIndex=0``).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import qrcode
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from ocr_service.declaration.models import Declaration, DeclarationKind, DeclarationStatus
from ocr_service.declaration.requirements import TCM_CANDIDATES, CandidateType
from ocr_service.status_labels import DECLARATION_STATUS

CJK_FONT_NAME = "WenQuanYiZenHei"
CJK_FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
# notices and the check page show Beijing time: that is what the applicant and the clerk read
BEIJING = ZoneInfo("Asia/Shanghai")
_font_lock = threading.Lock()

# --- the words on the paper (one table) ----------------------------------------------------------

# The platform both manuals in the seeds send applicants to (湖北卫生人才综合服务平台).
ISSUER = "湖北省卫生人才综合服务平台"
PROJECTS: Mapping[DeclarationKind, str] = {
    DeclarationKind.TCM_EXPERTISE: "{year}年湖北省中医医术确有专长人员医师资格考核",
    DeclarationKind.PHYSICIAN_PROBATION: "{year}年湖北考区医师资格考试试用期考核",
}
KIND_LABELS: Mapping[DeclarationKind, str] = {
    DeclarationKind.TCM_EXPERTISE: "中医医术确有专长人员医师资格考核",
    DeclarationKind.PHYSICIAN_PROBATION: "医师资格考试试用期申报",
}
# the declaration states in Chinese: the one table the API's status_label uses too
STATUS_LABELS: Mapping[DeclarationStatus, str] = {
    status: DECLARATION_STATUS[status.value] for status in DeclarationStatus
}
TITLE_APPROVED = "报名成功通知单"
TITLE_RECEIPT = "申报回执"
NOTES_APPROVED = (
    "本通知单证明上述申报已审核通过、报名成功。",
    "参加考核（考试）时请携带本通知单及本人有效身份证件原件。",
    "现场审核人员可扫描二维码或访问核验地址输入验证码，核对申报当前状态。",
)
NOTES_RECEIPT = (
    "本回执仅证明上述申报已提交，不代表审核通过，不能作为报名成功的凭证。",
    "审核通过后请重新打印报名成功通知单。",
    "扫描二维码或访问核验地址可查看申报当前状态。",
)


def check_url(public_base_url: str, code: str) -> str:
    """The absolute address of the public check page for one verification code."""
    return f"{public_base_url.rstrip('/')}/check/{code}"


def beijing_time(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).strftime("%Y年%m月%d日 %H:%M（北京时间）")


# --- what is printed -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeContent:
    title: str
    issuer: str
    project: str
    status_label: str
    declaration_number: str
    applicant_name: str
    id_number_masked: str
    kind_label: str
    candidate_type: str | None  # TCM only
    place_label: str  # 申报地区 (TCM) or 工作单位 (probation): never the one under the other's name
    place: str
    submitted_at: datetime | None
    approved_at: datetime | None
    verify_code: str
    check_url: str
    notes: tuple[str, ...]
    printed_at: datetime | None = None


def notice_content(
    declaration: Declaration,
    form: Mapping[str, Any],
    id_number_masked: str,
    region_name: str | None,
    public_base_url: str,
    approved_at: datetime | None = None,
    printed_at: datetime | None = None,
) -> NoticeContent:
    """The notice of a submitted, in-review or approved declaration (``verify_code`` set)."""
    assert declaration.verify_code is not None
    approved = declaration.status is DeclarationStatus.APPROVED
    year_of = declaration.submitted_at or printed_at or datetime.now(BEIJING)
    if year_of.tzinfo is None:
        year_of = year_of.replace(tzinfo=UTC)
    candidate = None
    if declaration.kind is DeclarationKind.TCM_EXPERTISE:
        code = form.get("candidate_type")
        if code in {c.value for c in CandidateType}:
            candidate = TCM_CANDIDATES[CandidateType(code)].label_zh
        place_label, place = "申报地区", region_name or "—"
    else:
        unit = declaration.work_unit
        place_label, place = "工作单位", unit.name if unit is not None else "—"
    return NoticeContent(
        title=TITLE_APPROVED if approved else TITLE_RECEIPT,
        issuer=ISSUER,
        # the exam project the declaration belongs to; declarations made before projects existed
        # (issue 12) print the kind's name for the year they were submitted in
        project=declaration.project.title
        if declaration.project is not None
        else PROJECTS[declaration.kind].format(year=year_of.astimezone(BEIJING).year),
        status_label=STATUS_LABELS[declaration.status],
        declaration_number=declaration.number,
        applicant_name=declaration.applicant_name,
        id_number_masked=id_number_masked,
        kind_label=KIND_LABELS[declaration.kind],
        candidate_type=candidate,
        place_label=place_label,
        place=place,
        submitted_at=declaration.submitted_at,
        approved_at=approved_at if approved else None,
        verify_code=declaration.verify_code,
        check_url=check_url(public_base_url, declaration.verify_code),
        notes=NOTES_APPROVED if approved else NOTES_RECEIPT,
        printed_at=printed_at,
    )


# --- the layout ----------------------------------------------------------------------------------

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 20 * mm
LABEL_WIDTH = 32 * mm
CELL_PAD = 2.5 * mm
QR_SIZE = 42 * mm
BODY_SIZE = 11.0
LINE_GAP = 1.45  # line height as a multiple of the font size


@dataclass(frozen=True)
class TextLine:
    text: str
    x: float  # left edge, or the centre when ``centred``
    baseline: float
    size: float
    centred: bool = False


@dataclass(frozen=True)
class LayoutBox:
    """One rectangle of the page (PDF points, origin bottom-left) and what is drawn inside it."""

    name: str
    x: float
    y: float
    width: float
    height: float
    lines: tuple[TextLine, ...] = ()
    framed: bool = False  # a table cell: its border is drawn on the box's edges
    qr_payload: str | None = None

    @property
    def top(self) -> float:
        return self.y + self.height

    def overlaps(self, other: LayoutBox) -> bool:
        return (
            min(self.x + self.width, other.x + other.width) - max(self.x, other.x) > 0.01
            and min(self.top, other.top) - max(self.y, other.y) > 0.01
        )


@dataclass(frozen=True)
class NoticeLayout:
    boxes: tuple[LayoutBox, ...] = field(default_factory=tuple)

    def box(self, name: str) -> LayoutBox:
        return next(b for b in self.boxes if b.name == name)


def register_font() -> str:
    with _font_lock:
        if CJK_FONT_NAME not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(CJK_FONT_NAME, str(CJK_FONT_PATH), subfontIndex=0))
    return CJK_FONT_NAME


def wrap(text: str, width: float, size: float, font: str) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` (by character: Chinese has no spaces)."""
    lines: list[str] = []
    current = ""
    for char in text:
        if current and pdfmetrics.stringWidth(current + char, font, size) > width:
            lines.append(current)
            current = ""
        current += char
    lines.append(current)
    return lines


def _text_box(name: str, text: str, x: float, top: float, width: float, size: float, font: str, **kw) -> LayoutBox:
    centred = kw.pop("centred", False)
    pad = kw.pop("pad", 0.0)
    step = size * LINE_GAP
    wrapped = wrap(text, width - 2 * pad, size, font)
    height = len(wrapped) * step + 2 * pad
    lines = tuple(
        TextLine(
            line,
            x + width / 2 if centred else x + pad,
            top - pad - (i + 1) * step + (step - size) / 2 + size * 0.12,
            size,
            centred,
        )
        for i, line in enumerate(wrapped)
    )
    return LayoutBox(name, x, top - height, width, height, lines, **kw)


def _rows(content: NoticeContent) -> list[tuple[str, str]]:
    rows = [
        ("申报编号", content.declaration_number),
        ("姓名", content.applicant_name),
        ("证件号码", content.id_number_masked),
        ("申报类别", content.kind_label),
    ]
    if content.candidate_type:
        rows.append(("考生类别", content.candidate_type))
    rows += [
        (content.place_label, content.place),
        ("申报状态", content.status_label),
        ("提交时间", beijing_time(content.submitted_at)),
    ]
    if content.approved_at is not None:
        rows.append(("审核通过时间", beijing_time(content.approved_at)))
    rows.append(("验证码", content.verify_code))
    return rows


def layout_notice(content: NoticeContent) -> NoticeLayout:
    font = register_font()
    left, width = MARGIN, PAGE_WIDTH - 2 * MARGIN
    boxes: list[LayoutBox] = []
    top = PAGE_HEIGHT - MARGIN

    def add(box: LayoutBox, gap: float = 0.0) -> None:
        nonlocal top
        boxes.append(box)
        top = box.y - gap

    add(_text_box("issuer", content.issuer, left, top, width, 12, font, centred=True), 1 * mm)
    add(_text_box("title", content.title, left, top, width, 22, font, centred=True), 1 * mm)
    add(_text_box("project", content.project, left, top, width, 12, font, centred=True), 6 * mm)
    value_width = width - LABEL_WIDTH
    for label, value in _rows(content):
        value_box = _text_box(
            f"value:{label}", value, left + LABEL_WIDTH, top, value_width, BODY_SIZE, font, pad=CELL_PAD, framed=True
        )
        label_box = _text_box(f"label:{label}", label, left, top, LABEL_WIDTH, BODY_SIZE, font, pad=CELL_PAD)
        height = max(value_box.height, label_box.height)
        for box in (label_box, value_box):  # both cells of a row as tall as the taller one
            boxes.append(replace(box, y=top - height, height=height, framed=True))
        top -= height
    top -= 8 * mm
    qr_box = LayoutBox("qr", left + width - QR_SIZE, top - QR_SIZE, QR_SIZE, QR_SIZE, qr_payload=content.check_url)
    boxes.append(qr_box)
    check_text = f"核验地址：{content.check_url}"
    check_box = _text_box("check", check_text, left, top, width - QR_SIZE - 6 * mm, 10, font, pad=0)
    code_box = _text_box(
        "check_code", f"验证码：{content.verify_code}", left, check_box.y - 2 * mm, check_box.width, 10, font
    )
    boxes += [check_box, code_box]
    top = min(qr_box.y, code_box.y) - 8 * mm
    add(_text_box("notes_heading", "注意事项", left, top, width, 11, font), 1 * mm)
    for i, note in enumerate(content.notes, 1):
        add(_text_box(f"note:{i}", f"{i}. {note}", left, top, width, 10, font), 0.5 * mm)
    footer = f"{content.issuer}　打印时间：{beijing_time(content.printed_at)}"
    boxes.append(_text_box("footer", footer, left, MARGIN + 6 * mm, width, 9, font, centred=True))
    return NoticeLayout(tuple(boxes))


# --- drawing -------------------------------------------------------------------------------------


def _qr_image(payload: str) -> ImageReader:
    image = qrcode.make(payload, border=0).get_image()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return ImageReader(buffer)


def draw_layout(pdf: canvas.Canvas, layout: NoticeLayout, font: str) -> None:
    pdf.setLineWidth(0.6)
    for box in layout.boxes:
        if box.framed:
            pdf.rect(box.x, box.y, box.width, box.height, stroke=1, fill=0)
        if box.qr_payload is not None:
            pdf.drawImage(_qr_image(box.qr_payload), box.x, box.y, box.width, box.height)
        for line in box.lines:
            pdf.setFont(font, line.size)
            if line.centred:
                pdf.drawCentredString(line.x, line.baseline, line.text)
            else:
                pdf.drawString(line.x, line.baseline, line.text)


def render_notice(content: NoticeContent) -> bytes:
    font = register_font()
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"{content.title} {content.declaration_number}")
    pdf.setAuthor(content.issuer)
    draw_layout(pdf, layout_notice(content), font)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
