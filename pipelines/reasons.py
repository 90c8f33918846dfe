"""Decisions, reason codes and the one table of Chinese messages the applicant sees.

Reason codes are stable strings (they travel in API responses, labels and reports);
the Chinese text is what the mini-program shows, the English text is for logs.
"""

from __future__ import annotations

from enum import StrEnum


class Decision(StrEnum):
    ACCEPT = "accept"  # read confidently, self-consistent, matches the claim when given
    RETAKE = "retake"  # capture problem the applicant can fix
    REVIEW = "review"  # readable, but a person should look
    REJECT = "reject"  # confident read that contradicts the claim, or a confidently invalid number


class Reason(StrEnum):
    # capture problems -> retake
    NO_CARD = "no_card"
    WRONG_SIDE = "wrong_side"
    BLURRY = "blurry"
    GLARE = "glare"
    GLARE_ON_FIELD = "glare_on_field"
    TOO_DARK = "too_dark"
    OVEREXPOSED = "overexposed"
    CARD_TOO_SMALL = "card_too_small"
    CARD_PARTLY_OUTSIDE = "card_partly_outside"
    STRONG_TILT = "strong_tilt"
    FIELD_UNREADABLE = "field_unreadable"
    # a person should look -> review
    RECAPTURE_SUSPECTED = "recapture_suspected"
    PHOTOCOPY_SUSPECTED = "photocopy_suspected"  # a greyscale card: a copy, not the original
    NOT_RESIDENT_ID = "not_resident_id"  # a passport, an HK/Macau/Taiwan card, another document
    LOW_CONFIDENCE_FIELD = "low_confidence_field"
    NAME_NEAR_MATCH = "name_near_match"
    UNKNOWN_DIVISION_CODE = "unknown_division_code"
    BIRTH_DATE_INCONSISTENT = "birth_date_inconsistent"
    SEX_INCONSISTENT = "sex_inconsistent"
    UNUSUAL_FIELD_VALUE = "unusual_field_value"
    INVALID_ID_NUMBER_LOW_CONFIDENCE = "invalid_id_number_low_confidence"
    # contradictions -> reject
    ID_NUMBER_MISMATCH = "id_number_mismatch"
    NAME_MISMATCH = "name_mismatch"
    INVALID_ID_NUMBER = "invalid_id_number"


class CaseReason(StrEnum):
    """Why a verification case (not a photo) went where it went; set by the service."""

    TOO_MANY_ATTEMPTS = "too_many_attempts"  # failed automatic attempts reached the limit
    MANUAL_METHOD = "manual_method"  # the applicant chose manual review
    DOCUMENT_TYPE_MANUAL = "document_type_manual"  # only resident ID cards are read automatically
    SCAN_NEEDS_REVIEW = "scan_needs_review"  # the scan decided "review"
    SCAN_FAILED = "scan_failed"  # the stored photo could not be scanned (purged, damaged): a person looks
    # automatic scans of the subject in the last 24 hours reached OCR_MAX_DAILY_ATTEMPTS
    DAILY_ATTEMPTS_EXHAUSTED = "daily_attempts_exhausted"
    # a number typed as a resident ID that belongs to someone the automatic check cannot serve (003:
    # 港澳台及外籍人员不能自动认证): the case is re-typed and goes to a person
    RESIDENCE_PERMIT_NUMBER = "residence_permit_number"  # 81/82/83: 港澳台居民居住证
    FOREIGN_PERMANENT_RESIDENCE_NUMBER = "foreign_permanent_residence_number"  # 9: 外国人永久居留身份证


class ClaimProblem(StrEnum):
    """A typed document number that does not have its document's format (422 on creation)."""

    INVALID_RESIDENCE_PERMIT_NUMBER = "invalid_residence_permit_number"
    INVALID_FOREIGN_PERMANENT_RESIDENCE_NUMBER = "invalid_foreign_permanent_residence_number"


class ReviewReason(StrEnum):
    """Why a reviewer rejected a case or asked for new photos; the applicant sees the Chinese text."""

    # reject
    DOCUMENT_UNREADABLE = "document_unreadable"
    DOCUMENT_MISMATCH = "document_mismatch"  # the document does not match the typed identity
    SUSPECTED_FORGERY = "suspected_forgery"  # forgery or recapture (photo of a screen, a copy)
    WRONG_DOCUMENT_TYPE = "wrong_document_type"
    EXPIRED_DOCUMENT = "expired_document"
    OTHER = "other"  # with the reviewer's comment
    # request new images
    NEW_IMAGES_UNCLEAR = "new_images_unclear"
    NEW_IMAGES_SIDE_MISSING = "new_images_side_missing"
    NEW_IMAGES_CROPPED = "new_images_cropped"


REVIEW_REJECT_REASONS = (
    ReviewReason.DOCUMENT_UNREADABLE,
    ReviewReason.DOCUMENT_MISMATCH,
    ReviewReason.SUSPECTED_FORGERY,
    ReviewReason.WRONG_DOCUMENT_TYPE,
    ReviewReason.EXPIRED_DOCUMENT,
    ReviewReason.OTHER,
)
REVIEW_RETAKE_REASONS = (
    ReviewReason.NEW_IMAGES_UNCLEAR,
    ReviewReason.NEW_IMAGES_SIDE_MISSING,
    ReviewReason.NEW_IMAGES_CROPPED,
)


class ImageErrorCode(StrEnum):
    EMPTY_FILE = "empty_file"
    FILE_TOO_LARGE = "file_too_large"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TRUNCATED_IMAGE = "truncated_image"
    TOO_MANY_PIXELS = "too_many_pixels"
    FRAME_TOO_LARGE = "frame_too_large"  # the live quality check's own, much lower, pixel cap
    IMAGE_TOO_SMALL = "image_too_small"
    UNREADABLE_FILE = "unreadable_file"


# One table: code -> (Chinese text for the applicant, English text for logs and operators).
MESSAGES: dict[str, tuple[str, str]] = {
    Reason.NO_CARD: ("未检测到身份证，请将身份证放入框内", "no ID card found in the photo"),
    Reason.WRONG_SIDE: ("请拍摄身份证人像面", "the photo shows the wrong side of the card"),
    Reason.BLURRY: ("画面模糊，请保持稳定", "the photo is blurred"),
    Reason.GLARE: ("有反光，请调整角度", "glare on the card"),
    Reason.GLARE_ON_FIELD: ("反光遮挡了证件文字，请调整角度", "glare covers a text field"),
    Reason.TOO_DARK: ("光线太暗，请到明亮处拍摄", "the photo is too dark"),
    Reason.OVEREXPOSED: ("画面过亮，请避开强光", "the photo is over-exposed"),
    Reason.CARD_TOO_SMALL: ("请靠近一些，让身份证充满框内", "the card is too small in the frame"),
    Reason.CARD_PARTLY_OUTSIDE: ("身份证未完整拍入，请将整张证件放入框内", "the card is partly outside the frame"),
    Reason.STRONG_TILT: ("请将手机与证件保持平行", "the card is strongly tilted"),
    Reason.FIELD_UNREADABLE: ("证件信息无法识别，请重新拍摄", "a required field could not be read"),
    Reason.RECAPTURE_SUSPECTED: ("请拍摄身份证原件，不要翻拍屏幕", "photo of a screen suspected (moire)"),
    Reason.PHOTOCOPY_SUSPECTED: (
        "疑似身份证复印件，已转人工审核；请使用身份证原件拍摄",
        "photocopy suspected (the card has no colour)",
    ),
    Reason.NOT_RESIDENT_ID: (
        "请上传居民身份证；港澳台居民及外籍人员请选择人工审核",
        "the document is not a mainland resident ID card",
    ),
    Reason.LOW_CONFIDENCE_FIELD: ("部分信息识别不确定，已转人工审核", "a field was read with low confidence"),
    Reason.NAME_NEAR_MATCH: (
        "姓名识别与填写略有差异，已转人工审核",
        "name differs from the claim in one uncertain character",
    ),
    Reason.UNKNOWN_DIVISION_CODE: ("证件号码地区码需人工核实", "unknown administrative division code"),
    Reason.BIRTH_DATE_INCONSISTENT: (
        "出生日期与证件号码不一致，已转人工审核",
        "printed birth date disagrees with the number",
    ),
    Reason.SEX_INCONSISTENT: ("性别与证件号码不一致，已转人工审核", "printed sex disagrees with the number"),
    Reason.UNUSUAL_FIELD_VALUE: ("证件信息异常，已转人工审核", "a printed field has an impossible value"),
    Reason.INVALID_ID_NUMBER_LOW_CONFIDENCE: (
        "证件号码识别不确定，已转人工审核",
        "number fails validation but was read with low confidence",
    ),
    Reason.ID_NUMBER_MISMATCH: ("证件号码与填写的不一致", "ID number read differs from the claim"),
    Reason.NAME_MISMATCH: ("姓名与填写的不一致", "name read differs from the claim"),
    Reason.INVALID_ID_NUMBER: ("证件号码无效", "ID number fails GB 11643 validation"),
    CaseReason.TOO_MANY_ATTEMPTS: (
        "自动识别失败次数过多，已转人工审核，请耐心等待",
        "too many failed automatic attempts; sent to manual review",
    ),
    CaseReason.MANUAL_METHOD: ("已提交人工审核，请耐心等待", "manual review chosen"),
    CaseReason.DOCUMENT_TYPE_MANUAL: ("该证件类型需人工审核，请耐心等待", "document type is reviewed manually"),
    CaseReason.SCAN_NEEDS_REVIEW: ("已转人工审核，请耐心等待", "the scan asked for a person to look"),
    CaseReason.SCAN_FAILED: ("已转人工审核，请耐心等待", "the photo could not be scanned"),
    CaseReason.DAILY_ATTEMPTS_EXHAUSTED: (
        "今日自动识别次数已达上限，已转人工审核，请耐心等待",
        "the daily cap of automatic scans is reached; sent to manual review",
    ),
    CaseReason.RESIDENCE_PERMIT_NUMBER: (
        "该号码以81、82或83开头，是港澳台居民居住证号码；港澳台居民不能进行身份证自动核验，已按港澳台居民居住证转人工审核，"
        "请上传居住证正反面照片",
        "an 81/82/83 number (HK/Macau/Taiwan residence permit) typed as a resident ID; reviewed manually",
    ),
    CaseReason.FOREIGN_PERMANENT_RESIDENCE_NUMBER: (
        "该号码以9开头，是外国人永久居留身份证号码；外籍人员不能进行身份证自动核验，已按外国人永久居留身份证转人工审核，"
        "请上传证件正反面照片",
        "a 9xx number (foreign permanent residence ID) typed as a resident ID; reviewed manually",
    ),
    ClaimProblem.INVALID_RESIDENCE_PERMIT_NUMBER: (
        "港澳台居民居住证号码格式不正确：应为18位，以810000（香港）、820000（澳门）或830000（台湾）开头，"
        "第7至14位为出生日期，末位为校验码",
        "not a residence permit number: 18 characters, 810000/820000/830000, birth date, check character",
    ),
    ClaimProblem.INVALID_FOREIGN_PERMANENT_RESIDENCE_NUMBER: (
        "外国人永久居留身份证号码格式不正确：应为以9开头的18位号码（第7至14位为出生日期，末位为校验码），"
        "或2004年版证件的3位国籍字母加12位数字",
        "not a foreign permanent residence number: 18 characters starting with 9, or 3 letters and 12 digits",
    ),
    ReviewReason.DOCUMENT_UNREADABLE: ("证件照片无法辨认，审核未通过", "the document cannot be read"),
    ReviewReason.DOCUMENT_MISMATCH: (
        "证件信息与填写的身份信息不一致，审核未通过",
        "the document does not match the typed identity",
    ),
    ReviewReason.SUSPECTED_FORGERY: (
        "证件照片疑似伪造或翻拍，审核未通过",
        "suspected forgery or recapture",
    ),
    ReviewReason.WRONG_DOCUMENT_TYPE: ("上传的证件类型与所选类型不符，审核未通过", "wrong document type"),
    ReviewReason.EXPIRED_DOCUMENT: ("证件已过有效期，审核未通过", "the document has expired"),
    ReviewReason.OTHER: ("审核未通过，请根据审核意见修改后重新提交", "rejected for another reason (see comment)"),
    ReviewReason.NEW_IMAGES_UNCLEAR: ("证件照片不清晰，请重新拍摄上传", "new photos needed: not clear enough"),
    ReviewReason.NEW_IMAGES_SIDE_MISSING: (
        "缺少证件正面或背面照片，请补充上传",
        "new photos needed: a side is missing",
    ),
    ReviewReason.NEW_IMAGES_CROPPED: (
        "证件未完整拍摄，请将证件完整拍入画面",
        "new photos needed: the document is cut off",
    ),
    ImageErrorCode.EMPTY_FILE: ("上传的文件为空", "the file is empty"),
    ImageErrorCode.FILE_TOO_LARGE: ("文件过大，请上传20MB以内的照片", "the file exceeds the size limit"),
    ImageErrorCode.NOT_AN_IMAGE: ("文件不是图片，请上传JPG或PNG照片", "the file is not an image"),
    ImageErrorCode.UNSUPPORTED_FORMAT: ("不支持的图片格式，请上传JPG或PNG照片", "unsupported image format"),
    ImageErrorCode.TRUNCATED_IMAGE: ("图片不完整，请重新上传", "the image data is truncated"),
    ImageErrorCode.TOO_MANY_PIXELS: (
        "图片尺寸过大，请上传普通照片",
        "the image has too many pixels (decompression bomb guard)",
    ),
    ImageErrorCode.FRAME_TOO_LARGE: (
        "画面尺寸过大，请使用相机预览画面检测",
        "the frame has too many pixels for the live quality check (send a camera preview frame)",
    ),
    ImageErrorCode.IMAGE_TOO_SMALL: ("图片太小，无法识别", "the image is too small to read"),
    ImageErrorCode.UNREADABLE_FILE: ("无法读取文件", "the file could not be read"),
}

RETAKE_REASONS = frozenset(
    {
        Reason.NO_CARD,
        Reason.WRONG_SIDE,
        Reason.BLURRY,
        Reason.GLARE,
        Reason.GLARE_ON_FIELD,
        Reason.TOO_DARK,
        Reason.OVEREXPOSED,
        Reason.CARD_TOO_SMALL,
        Reason.CARD_PARTLY_OUTSIDE,
        Reason.STRONG_TILT,
        Reason.FIELD_UNREADABLE,
        Reason.NOT_RESIDENT_ID,
    }
)
REJECT_REASONS = frozenset({Reason.ID_NUMBER_MISMATCH, Reason.NAME_MISMATCH, Reason.INVALID_ID_NUMBER})


def message_zh(code: str) -> str:
    return MESSAGES[code][0]


def message_en(code: str) -> str:
    return MESSAGES[code][1]
