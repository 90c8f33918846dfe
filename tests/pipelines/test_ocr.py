import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipelines.ocr import ModelFileError, get_engine, load_manifest, manifest_digest
from samples.fonts import cjk_font_file, load


def text_line(text: str, width: int = 520) -> np.ndarray:
    font = load(cjk_font_file(), 36)
    image = Image.new("RGB", (width, 52), "white")
    ImageDraw.Draw(image).text((6, 6), text, font=font, fill="black")
    return np.asarray(image)[:, :, ::-1].copy()


def test_manifest_resolves_every_model_inside_the_installed_wheel():
    models = load_manifest()
    assert {m.role for m in models} == {"det", "rec", "cls"}
    assert all(m.path.is_file() and m.package == "rapidocr" for m in models)


def test_a_model_file_with_the_wrong_hash_fails_loudly(tmp_path):
    from models import MANIFEST_PATH

    data = json.loads(MANIFEST_PATH.read_text())
    data["models"][0]["sha256"] = "0" * 64
    bad = tmp_path / "manifest.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="sha256"):
        load_manifest(bad)


def test_a_missing_model_file_fails_loudly_instead_of_downloading(tmp_path):
    from models import MANIFEST_PATH

    data = json.loads(MANIFEST_PATH.read_text())
    data["models"][1]["file"] = "PP-OCRv9_rec_missing.onnx"
    bad = tmp_path / "manifest.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="never downloaded"):
        load_manifest(bad)


def test_the_manifest_digest_changes_when_a_model_changes():
    models = load_manifest(verify=False)
    from dataclasses import replace

    changed = (replace(models[0], sha256="f" * 64), *models[1:])
    assert manifest_digest(models) != manifest_digest(changed)


def test_engine_is_built_once_per_process(engine):
    assert get_engine("rapidocr", threads=1) is engine


def test_recognize_reads_a_number_and_a_dotted_name_in_input_order(engine):
    results = engine.recognize([text_line("11010519491231002X"), text_line("买买提·艾力", 300)])
    assert [r.text for r in results] == ["11010519491231002X", "买买提·艾力"]
    assert all(r.score > 0.9 for r in results)


def test_direction_classifier_tells_an_upside_down_line(engine):
    line = text_line("湖北省武汉市武昌区中南路")
    (angle_up, _), (angle_down, _) = engine.classify_orientation([line, line[::-1, ::-1].copy()])
    assert (angle_up, angle_down) == (0, 180)


def test_unknown_engine_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown OCR engine"):
        get_engine("tesseract")
