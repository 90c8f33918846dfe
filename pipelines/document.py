"""Tell a document that is not a mainland resident ID card by what is printed on it.

Runs only when the scan found no readable resident ID card: the applicant then needs to hear
"this is not a resident ID card" (and the manual route), not "the photo is blurry". A
passport carries a machine-readable zone (``P<CHN...<<``) and the word PASSPORT / 护照; HK,
Macau and Taiwan cards and permits name themselves. One text-detection pass over a small
copy of the frame and a recognition of its longest lines, about 0.2 s on one core.
"""

from __future__ import annotations

import re
import unicodedata

import cv2
import numpy as np

from pipelines.locate import DETECT_LONG_SIDE, line_axes, line_crop
from pipelines.ocr import OcrEngine

# Words that only other documents print (traditional and simplified forms, English).
_OTHER_DOCUMENT_WORDS = (
    "PASSPORT",
    "PASSEPORT",
    "护照",
    "護照",
    "HONGKONG",
    "香港",
    "MACAU",
    "MACAO",
    "澳門",
    "澳门",
    "TAIWAN",
    "臺灣",
    "台湾",
    "通行证",
    "通行證",
    "居住证",
    "居住證",
    "IDENTITYCARD",
    "身份證",
    "永久居留",
    "PERMANENTRESIDENT",
    "REPUBLICOFCHINA",
    "TRAVELDOCUMENT",
)
# A machine-readable zone line: capitals, digits and runs of filler '<'.
_MRZ = re.compile(r"[A-Z0-9<]{20,}<<")
_LINES_READ = 10


def other_document_evidence(image: np.ndarray, engine: OcrEngine) -> str | None:
    """The printed word (or 'MRZ') that shows this is another document, or None."""
    if not hasattr(engine, "detect_lines"):
        return None
    h, w = image.shape[:2]
    scale = min(1.0, DETECT_LONG_SIDE / max(h, w))
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    lines = [line_axes(np.asarray(box) / scale) for box in engine.detect_lines(small)]
    lines.sort(key=lambda line: line[2], reverse=True)
    crops = []
    for centre, along, length, height in lines[:_LINES_READ]:
        crops.append(line_crop(image, centre, along, length, height))
        crops.append(line_crop(image, centre, -along, length, height))
    for read in engine.recognize(crops):
        text = unicodedata.normalize("NFKC", read.text).upper().replace(" ", "")
        if _MRZ.search(text):
            return "MRZ"
        for word in _OTHER_DOCUMENT_WORDS:
            if word in text:
                return word
    return None
