"""``ocr-service``: the command line.

``scan`` reads photos (arguments or a JSONL manifest) and prints one JSON object per image,
in input order. Models load once for the whole run; a bad file yields an ``error`` object
for that image and the run goes on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import structlog
import typer

from ocr_service.config import get_settings
from ocr_service.logs import configure_logging, mask_id_number

app = typer.Typer(help="ID-document OCR verification service.", no_args_is_help=True, add_completion=False)
log = structlog.get_logger("ocr_service.cli")


@app.callback()
def _main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


def _scan_items(images: list[Path], manifest: Path | None, name: str | None, id_number: str | None):
    for image in images:
        yield str(image), image, name, id_number
    if manifest is not None:
        base = manifest.resolve().parent
        for lineno, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                path = Path(entry["image"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                yield f"{manifest}:{lineno}", None, None, f"bad manifest line: {exc}"
                continue
            yield (
                entry["image"],
                (path if path.is_absolute() else base / path),
                entry.get("name"),
                entry.get("id_number"),
            )


@app.command()
def scan(
    images: Annotated[list[Path] | None, typer.Argument(help="Photos to scan.")] = None,
    name: Annotated[str | None, typer.Option(help="Claimed name (applies to IMAGE arguments).")] = None,
    id_number: Annotated[str | None, typer.Option(help="Claimed ID number (applies to IMAGE arguments).")] = None,
    manifest: Annotated[
        Path | None, typer.Option(help='JSONL: {"image": ..., "name": ..., "id_number": ...} per line.')
    ] = None,
    expect: Annotated[str, typer.Option(help="Side the applicant was asked for: front or back.")] = "front",
    pretty: Annotated[bool, typer.Option(help="Indent the JSON output.")] = False,
) -> None:
    """Scan ID-card photos and print one JSON decision per image."""
    from ocr_service.report import scan_result_json
    from pipelines.card import CardSide
    from pipelines.decode import ImageDecodeError, decode_file
    from pipelines.ocr import get_engine
    from pipelines.scan import Claim
    from pipelines.scan import scan as run_scan

    if not images and manifest is None:
        raise typer.BadParameter("give at least one IMAGE or --manifest")
    settings = get_settings()
    scan_settings = settings.scan_settings()
    if expect == "back":
        from dataclasses import replace

        scan_settings = replace(scan_settings, expected_side=CardSide.BACK)
    engine = get_engine(settings.ocr_engine, settings.ocr_threads)
    limits = settings.decode_limits()
    failures = 0
    for label, path, claim_name, claim_number in _scan_items(images or [], manifest, name, id_number):
        if path is None:  # a manifest line that did not parse
            out = {"image": label, "error": {"code": "bad_manifest_line", "message": claim_number}}
        else:
            try:
                decoded = decode_file(path, limits)
            except ImageDecodeError as exc:
                failures += 1
                log.warning("image_rejected", image=label, code=str(exc.code), detail=exc.detail)
                out = {
                    "image": label,
                    "error": {"code": str(exc.code), "message": exc.message_en, "message_zh": exc.message_zh},
                }
            else:
                result = run_scan(decoded.image, engine, Claim(claim_name, claim_number), scan_settings)
                out = {"image": label, **scan_result_json(result, full_id_number=True)}
                log.info(
                    "scanned",
                    image=label,
                    decision=str(result.decision),
                    id_number=mask_id_number(result.fields.value("id_number") if result.fields else ""),
                    total_ms=result.timings_ms.get("total"),
                )
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2 if pretty else None) + "\n")
        sys.stdout.flush()
    raise typer.Exit(0)


@app.command()
def config() -> None:
    """Print the effective settings (secrets hidden)."""
    sys.stdout.write(json.dumps(get_settings().public_dump(), ensure_ascii=False, indent=2) + "\n")


@app.command()
def models() -> None:
    """Verify the OCR model files against models/manifest.json and print them."""
    from pipelines.ocr import load_manifest, manifest_digest

    files = load_manifest()
    for m in files:
        sys.stdout.write(f"{m.role:4} {m.file:40} {m.package}=={m.package_version} sha256:{m.sha256[:16]}… ok\n")
    sys.stdout.write(f"manifest digest {manifest_digest(files)}\n")
