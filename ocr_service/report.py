"""Turning a ``ScanResult`` into the JSON shape the CLI and the API print."""

from __future__ import annotations

from dataclasses import asdict

from ocr_service.masking import mask_document_number
from pipelines.reasons import message_zh
from pipelines.scan import ScanResult


def scan_result_json(result: ScanResult, full_id_number: bool = False) -> dict:
    fields: dict[str, str] = {}
    confidence: dict[str, float] = {}
    if result.fields is not None:
        for name, read in result.fields.fields.items():
            value = read.value
            if name == "id_number" and not full_id_number:
                value = mask_document_number(value)
            fields[name] = value
            confidence[name] = round(read.confidence, 4)
        if result.fields.birth_date:
            fields["birth_date"] = result.fields.birth_date.isoformat()
        if result.fields.side == "back":
            fields["valid_from"] = result.fields.valid_from.isoformat() if result.fields.valid_from else ""
            fields["valid_until"] = (
                "长期"
                if result.fields.long_term
                else (result.fields.valid_until.isoformat() if result.fields.valid_until else "")
            )
    match = None
    if result.match is not None:
        match = {
            "name": str(result.match.name),
            "id_number": str(result.match.number),
            "name_distance": result.match.name_distance,
        }
    id_check = None
    if result.id_check is not None:
        id_check = {
            "valid": result.id_check.valid,
            "problems": [str(p) for p in result.id_check.problems],
            "warnings": [str(w) for w in result.id_check.warnings],
            "place": result.id_check.place,
        }
    return {
        "decision": str(result.decision),
        "reasons": [str(r) for r in result.reasons],
        "messages": [message_zh(r) for r in result.reasons],
        "side": str(result.side),
        "fields": fields,
        "confidence": confidence,
        "id_check": id_check,
        "quality": asdict(result.quality.scores) if result.quality.scores else None,
        "quality_reasons": [str(r) for r in result.quality.reasons],
        "card": {
            "corners": result.corners,
            "method": result.detection.method,
            "likeness": result.detection.card_likeness,
        },
        "match": match,
        "timings_ms": result.timings_ms,
        "pipeline_version": result.pipeline_version,
        "models_digest": result.models_digest,
    }
