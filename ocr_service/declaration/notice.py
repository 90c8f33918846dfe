"""The printable registration success notice (报名成功通知单) as a PDF.

Chinese text needs a CJK font embedded in the PDF: WenQuanYi Zen Hei (``CJK_FONT_PATH``, a TTC
collection, so the first face is chosen with ``subfontIndex=0``). The QR code carries the
verification path a clerk opens (``GET /v1/declarations/verify/{code}``); the code is printed
as text too, for typing it in.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import qrcode
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

CJK_FONT_NAME = "WenQuanYiZenHei"
CJK_FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
# notices show Beijing time: that is what the applicant and the clerk read
_BEIJING = timezone(timedelta(hours=8))
_font_lock = threading.Lock()


@dataclass(frozen=True)
class NoticeContent:
    applicant_name: str
    id_number_masked: str
    declaration_number: str
    region_name: str
    type_label: str
    verify_code: str
    verify_path: str
    submitted_at: datetime | None


def _register_font() -> str:
    with _font_lock:
        if CJK_FONT_NAME not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(CJK_FONT_NAME, str(CJK_FONT_PATH), subfontIndex=0))
    return CJK_FONT_NAME


def _qr_image(payload: str) -> ImageReader:
    image = qrcode.make(payload, border=2).get_image()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return ImageReader(buffer)


def render_notice(content: NoticeContent) -> bytes:
    font = _register_font()
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"报名成功通知单 {content.declaration_number}")
    width, height = A4
    pdf.setFont(font, 20)
    pdf.drawCentredString(width / 2, height - 30 * mm, "报名成功通知单")
    submitted = content.submitted_at.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M") if content.submitted_at else "—"
    rows = (
        ("申报编号", content.declaration_number),
        ("姓名", content.applicant_name),
        ("证件号码", content.id_number_masked),
        ("申报类型", content.type_label),
        ("申报地区", content.region_name),
        ("提交时间", submitted),
        ("验证码", content.verify_code),
    )
    y = height - 50 * mm
    for label, value in rows:
        pdf.setFont(font, 12)
        pdf.drawString(25 * mm, y, f"{label}：")
        pdf.drawString(55 * mm, y, value)
        y -= 10 * mm
    qr_size = 40 * mm
    pdf.drawImage(
        _qr_image(content.verify_path), width - 25 * mm - qr_size, height - 50 * mm - qr_size, qr_size, qr_size
    )
    pdf.setFont(font, 10)
    pdf.drawString(25 * mm, y - 5 * mm, f"现场审核人员可扫描二维码或通过 {content.verify_path} 核验本通知单。")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
