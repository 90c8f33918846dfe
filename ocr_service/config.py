"""The one settings object: every knob comes from an ``OCR_``-prefixed environment variable.

Nested thresholds use ``__``: ``OCR_QUALITY__MIN_SHARPNESS=10``. ``ocr-service config`` prints
the effective values with secrets hidden.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.decode import DecodeLimits
from pipelines.quality import QualityThresholds
from pipelines.scan import ScanSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OCR_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Path("./data")
    ocr_engine: Literal["rapidocr", "paddle"] = "rapidocr"
    # One ONNX Runtime thread per worker process gives the best throughput on small CPUs
    # (benchmarks/scan_speed.py); raise it only for a single-worker, latency-bound setup.
    ocr_threads: int = Field(1, ge=1, le=64)
    max_upload_bytes: int = 20 * 1024 * 1024
    # Decompression-bomb guard: a 40 MP photo is already larger than any phone camera's.
    max_pixels: int = 40_000_000
    quality: QualityThresholds = QualityThresholds()
    min_readable_confidence: float = ScanSettings.min_readable_confidence
    min_field_confidence: float = ScanSettings.min_field_confidence
    reject_confidence: float = ScanSettings.reject_confidence
    confident_char_threshold: float = ScanSettings.confident_char_threshold
    log_level: str = "INFO"
    log_json: bool = True

    def scan_settings(self) -> ScanSettings:
        return ScanSettings(
            quality=self.quality,
            min_readable_confidence=self.min_readable_confidence,
            min_field_confidence=self.min_field_confidence,
            reject_confidence=self.reject_confidence,
            confident_char_threshold=self.confident_char_threshold,
        )

    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(max_bytes=self.max_upload_bytes, max_pixels=self.max_pixels)

    def public_dump(self) -> dict:
        """Effective settings for display; anything secret-looking is hidden."""
        data = self.model_dump(mode="json")
        return {
            k: ("***" if any(w in k for w in ("key", "secret", "password", "token")) else v) for k, v in data.items()
        }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
