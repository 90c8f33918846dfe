"""The one table of Chinese labels for the status codes the API answers with (``status_label``).

Statuses are stored and sent as stable English codes; every response that carries one carries its
Chinese label next to it, so a client app shows the platform's wording (003: 待认证 → 认证成功)
without keeping its own table. The applicant's words for a verification follow the manual: a case
is 待认证 until it is 认证成功; the suffix in brackets says what the applicant waits for.
"""

from __future__ import annotations

from collections.abc import Mapping

VERIFICATION_STATUS: Mapping[str, str] = {
    "awaiting_images": "待认证",
    "processing": "认证中",
    "retake": "待认证（请重新拍摄）",
    "in_review": "待认证（人工审核中）",
    "verified": "认证成功",
    "rejected": "认证失败",
    "withdrawn": "已撤回",
}
ATTEMPT_STATUS: Mapping[str, str] = {
    "queued": "排队中",
    "running": "识别中",
    "done": "已完成",
    "failed": "识别失败，请重新上传",
}
# the automatic scan's decision about one photo
ATTEMPT_DECISION: Mapping[str, str] = {
    "accept": "通过",
    "retake": "需重拍",
    "review": "转人工审核",
    "reject": "不通过",
}
DECLARATION_STATUS: Mapping[str, str] = {
    "draft": "草稿",
    "submitted": "已提交，待审核",
    "under_review": "审核中",
    "approved": "审核通过",
    "returned": "已退回，待修改",
    "modification_allowed": "允许修改",
    "withdrawn": "已撤回",
}
REVIEW_CASE_STATUS: Mapping[str, str] = {
    "open": "待领取",
    "released": "已放回",
    "claimed": "审核中",
    "awaiting_confirmation": "待复核",
    "decided": "已处理",
}
# a unit's request to be registered (申请机构注册)
UNIT_REQUEST_STATUS: Mapping[str, str] = {
    "pending": "待审核",
    "approved": "已通过，单位已注册",
    "rejected": "未通过",
}


def label(table: Mapping[str, str], code: object) -> str | None:
    """The Chinese label of ``code`` (an enum member or its value); None for None, the code if unknown."""
    if code is None:
        return None
    value = str(getattr(code, "value", code))
    return table.get(value, value)
