"""申报须知: the text an applicant reads and acknowledges before a declaration can be confirmed or submitted.

003 (四、(三) 申报须知: 请阅读申报需求，了解填报要求和注意事项) puts this step between choosing what to
declare and filling in the form. The items restate what the two manuals ask of the applicant; the
version is a digest of the text, so an acknowledgement names exactly the words that were shown and
a changed text is acknowledged again (``acknowledge_instructions`` refuses a stale version).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from ocr_service.declaration.models import DeclarationKind

TITLE = "申报须知"

_COMMON_HEAD = (
    "申报人的姓名、性别、民族和证件号码取自实名认证信息，不能在申报中修改；如有误，请撤回实名认证后重新认证。",
)
_COMMON_TAIL = (
    "请如实填写申报信息、上传真实材料（PDF、JPG、PNG格式）；弄虚作假的，按有关规定处理。",
    "提交前请在确认页面再次核对申报信息；如需修改，请返回修改后再提交。",
)

ITEMS: Mapping[DeclarationKind, tuple[str, ...]] = {
    DeclarationKind.TCM_EXPERTISE: (
        *_COMMON_HEAD,
        "以师承方式学习中医的，须填写1名指导老师；经多年实践医术确有专长的，须填写至少2名推荐医师。"
        "指导老师、推荐医师不得为申报人本人，同一人不得重复填写。",
        "申报地区须为湖北省内的区县，并与推荐医师的执业地点一致。",
        "提交后由审核部门审核；审核开始前可以撤回修改，审核通过后不能修改。",
        *_COMMON_TAIL,
    ),
    DeclarationKind.PHYSICIAN_PROBATION: (
        *_COMMON_HEAD,
        "申报前须绑定现所在试用单位，单位确认码请咨询本单位试用期相关负责人；如单位暂不存在，请单位负责人申请单位注册。",
        "试用/工作机构可填写多个，但现所在试用单位必须与申报机构名称一致。",
        "执业助理医师报考执业医师的，须填写资格证和执业证编号。",
        "应届毕业生须上传承诺书；港澳台居民须上传《台湾、香港、澳门居民参加国家医师资格考试实习申请审核表》，"
        "外籍人员须上传《外籍人员参加中国医师资格考试实习申请审核表》。",
        "提交后由所在试用单位审核；单位审核前可以撤回修改，审核通过后不能修改，如需修改请联系试用单位管理员调整为“允许修改”。",
        *_COMMON_TAIL,
    ),
}


def version(kind: DeclarationKind) -> str:
    """A digest of the title and items: changes whenever the text does."""
    text = "\n".join((TITLE, *ITEMS[kind]))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
