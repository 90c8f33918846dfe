"""Shared fixtures: one OCR engine per test session (models load once, as in production)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SET = ROOT / "samples" / "set"
EXTERNAL_EVAL = ROOT.parent / "shared" / "external-eval"
DEV_PHOTOS = ROOT.parent / "shared" / "dev-photos"


@pytest.fixture(scope="session")
def engine():
    from pipelines.ocr import get_engine

    return get_engine("rapidocr", threads=1)
