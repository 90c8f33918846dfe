"""What the console calls things: the one table of Chinese labels for codes reviewers see.

Statuses, origins, document types, sides, audit actions and reason codes are stored as stable
English codes; a reviewer reads them here in Chinese. Reasons the applicant also sees keep their
text in ``pipelines.reasons.MESSAGES``; this table holds the shorter reviewer wording where that
text speaks to the applicant ("已转人工审核，请耐心等待" says nothing to a reviewer), and
everything review-only (``multiple_identities``). Times are shown in Asia/Shanghai, actors by
reviewer or client name.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ocr_service.status_labels import REVIEW_CASE_STATUS
from pipelines.reasons import MESSAGES

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

# the same words as the API's status_label (one table: ocr_service.status_labels)
CASE_STATUS = dict(REVIEW_CASE_STATUS)
VERIFICATION_STATUS = {
    "awaiting_images": "待上传",
    "processing": "识别中",
    "verified": "已认证",
    "retake": "待重拍",
    "in_review": "人工审核中",
    "rejected": "未通过",
    "withdrawn": "已撤回",
}
ORIGIN = {
    "too_many_attempts": "自动识别多次失败",
    "scan_review": "识别结果需复核",
    "manual_method": "申请人选择人工审核",
    "non_id_document": "非身份证证件",
    "reverification_failed": "重新核验未通过",
}
DOCUMENT_TYPE = {
    "resident_id": "居民身份证",
    "hmt_residence_permit": "港澳台居民居住证",
    "foreign_permanent_residence": "外国人永久居留身份证",
    "hk_macau_permit": "港澳居民来往内地通行证",
    "taiwan_permit": "台湾居民来往大陆通行证",
    "foreign_passport": "外国护照",
    "military": "军官证/士兵证",
    "other": "其他证件",
}
METHOD = {"auto": "自动识别", "manual": "人工审核"}
SIDE = {"front": "人像面", "back": "国徽面"}
DECISION = {
    "accept": "通过",
    "retake": "需重拍",
    "review": "转人工",
    "reject": "不通过",
    "approve": "通过",
    "withdrawn": "申请人撤回",
}
FIELD = {
    "name": "姓名",
    "document_number": "证件号码",
    "id_number": "证件号码",
    "sex": "性别",
    "ethnicity": "民族",
    "birth_date": "出生日期",
    "address": "住址",
    "authority": "签发机关",
    "valid_from": "有效期起",
    "valid_until": "有效期至",
    # machine-readable zones
    "document_type": "证件类型",
    "country": "签发国",
    "surname": "姓",
    "given_names": "名",
    "nationality": "国籍",
    "expiry_date": "有效期至",
}
ACTION = {
    "claim": "领取",
    "release": "放回队列",
    "approve": "通过",
    "confirm": "复核通过",
    "refuse_confirmation": "复核退回",
    "reject": "驳回",
    "retake": "要求重新上传",
    "correction": "更正字段",
    "view_image": "查看照片",
    "assign": "指派",
    "unassign": "取消指派",
    "read_mrz": "读取机读码",
    "create_reviewer": "创建账号",
    "activate_reviewer": "启用账号",
    "deactivate_reviewer": "停用账号",
}
ROLE = {"reviewer": "审核员", "admin": "管理员"}
SORT = {"oldest": "最早优先", "newest": "最新优先", "origin": "按来源", "document_type": "按证件类型"}
# reviewer wording of reason codes (the rest fall back to the applicant text in MESSAGES)
REASON = {
    "multiple_identities": "多次上传的证件属于不同的人",
    "too_many_attempts": "自动识别失败次数达到上限",
    "manual_method": "申请人选择人工审核",
    "document_type_manual": "该证件类型需人工审核",
    "scan_needs_review": "识别结果需人工复核",
    "scan_failed": "照片无法自动识别",
    "daily_attempts_exhausted": "当日自动识别次数达到上限",
    "residence_permit_number": "填写的身份证号码为港澳台居民居住证号码",
    "foreign_permanent_residence_number": "填写的身份证号码为外国人永久居留身份证号码",
    "name_near_match": "姓名与填写相差一个不确定的字",
    "low_confidence_field": "部分字段识别置信度低",
    "id_number_mismatch": "识别的证件号码与填写不一致",
    "name_mismatch": "识别的姓名与填写不一致",
    "invalid_id_number": "证件号码校验不通过",
    "recapture_suspected": "疑似翻拍屏幕",
}


def label(table: dict[str, str], code) -> str:
    """The Chinese label of a code (an enum or its value); an unknown code is shown as it is."""
    value = getattr(code, "value", code)
    if value is None:
        return ""
    return table.get(str(value), str(value))


def reason_label(code) -> str:
    value = str(getattr(code, "value", code))
    if value in REASON:
        return REASON[value]
    return MESSAGES[value][0] if value in MESSAGES else value


def local_time(at: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time in Beijing time."""
    if at is None:
        return "-"
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(LOCAL_TZ).strftime(fmt)


def duration(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} 分钟"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} 小时 {minutes} 分" if hours < 48 else f"{hours // 24} 天 {hours % 24} 小时"


def actor_label(actor: str | None, client_names: dict[str, str] | None = None) -> str:
    """``reviewer:alice`` -> 审核员 alice; ``key:<id>`` -> the client's name; worker -> 自动识别."""
    if not actor:
        return ""
    kind, _, rest = actor.partition(":")
    if kind == "reviewer":
        return f"审核员 {rest}"
    if kind == "key":
        name = (client_names or {}).get(rest)
        return f"客户端 {name}" if name else "客户端"
    return {"worker": "自动识别", "system": "系统"}.get(actor, actor)
