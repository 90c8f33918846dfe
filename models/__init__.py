"""Data the pipelines run on: the OCR model manifest and the card layout templates.

Kept as a package so that ``pip install .`` (and the Docker image) carries the data files.
"""

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
LAYOUTS_DIR = MODELS_DIR / "layouts"
MANIFEST_PATH = MODELS_DIR / "manifest.json"
