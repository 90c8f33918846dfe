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


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume: live, batch.")] = "live,batch",
    concurrency: Annotated[
        int, typer.Option(min=1, help="Pool processes. The OCR runs one ONNX thread: scale with processes.")
    ] = 1,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "info",
    requeue_stale: Annotated[
        bool,
        typer.Option(
            "--requeue-stale",
            help="Only re-submit attempts stuck in queued/running longer than the visibility timeout, then exit.",
        ),
    ] = False,
) -> None:
    """Start a Celery worker (prefork pool) for the scan queues; needs OCR_BROKER_URL."""
    settings = get_settings()
    if not settings.broker_url:
        raise typer.BadParameter("OCR_BROKER_URL is not set; without a broker `serve` scans in-process")
    if requeue_stale:
        from ocr_service.db import session_scope
        from ocr_service.jobs.dispatch import requeue_stale as requeue

        with session_scope() as session:
            ids = requeue(session, settings.celery_visibility_timeout, settings)
        sys.stdout.write(json.dumps({"requeued": len(ids), "attempt_ids": ids}) + "\n")
        raise typer.Exit(0)

    import os

    from ocr_service.jobs.celery_app import get_celery_app

    celery = get_celery_app(settings)
    celery.worker_main(
        [
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            f"--queues={queues}",
            f"--loglevel={loglevel}",
            # unique per process, so several workers on one host do not clash
            f"--hostname=ocr-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )


# --------------------------------------------------------------------------- keys, db, purge

keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _open_database():
    """The process database with its schema at head.

    The embedded SQLite is migrated on the spot (one machine, nothing to coordinate with), so
    `keys create` works before the first `serve`. PostgreSQL is only checked: migrating a shared
    database is a deliberate `ocr-service db upgrade` (or a `serve` start).
    """
    from ocr_service.db import get_database

    database = get_database(get_settings())
    if database.backend == "sqlite":
        database.upgrade()
    elif not database.schema_is_current():
        raise _fail("the database schema is not current: run `ocr-service db upgrade` first")
    return database


def _key_json(key) -> dict:
    return {
        "id": key.id,
        "name": key.name,
        "key_prefix": key.key_prefix,
        "scopes": sorted(key.scope_set),
        "callback_url": key.callback_url,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for, e.g. 'mini-program prod'.")],
    scope: Annotated[list[str], typer.Option(help="client, reviewer, admin, identity:full (repeat for several).")],
    callback_url: Annotated[str | None, typer.Option(help="Where status-change webhooks for this key go.")] = None,
) -> None:
    """Create an API key and print it (the secret is shown this once and never stored)."""
    from ocr_service.auth import create_api_key
    from ocr_service.db import session_scope

    database = _open_database()
    try:
        with session_scope(database) as session:
            key, secret = create_api_key(session, name, scope, callback_url)
            out = {**_key_json(key), "secret": secret}
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
    typer.echo("Store the secret now: it cannot be shown again.", err=True)


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per key instead of a table.")] = False,
) -> None:
    """List API keys (name, prefix, scopes, state); secrets are never shown."""
    from rich.console import Console
    from rich.table import Table

    from ocr_service.auth import list_api_keys
    from ocr_service.db import session_scope

    with session_scope(_open_database()) as session:
        keys = [_key_json(key) for key in list_api_keys(session)]
    if as_json:
        for key in keys:
            sys.stdout.write(json.dumps(key, ensure_ascii=False) + "\n")
        return
    table = Table("id", "name", "prefix", "scopes", "callback", "created", "revoked")
    for key in keys:
        table.add_row(
            key["id"],
            key["name"],
            key["key_prefix"] + "…",
            ",".join(key["scopes"]),
            key["callback_url"] or "",
            key["created_at"][:19],
            (key["revoked_at"] or "")[:19],
        )
    Console(file=sys.stdout, width=200).print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`).")]) -> None:
    """Revoke an API key: it stops authenticating at once. Revoking twice is harmless."""
    from ocr_service.auth import revoke_api_key
    from ocr_service.db import session_scope

    with session_scope(_open_database()) as session:
        key = revoke_api_key(session, key_id)
        if key is None:
            raise _fail(f"no API key with id {key_id}")
        out = _key_json(key)
    sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations up to the newest (idempotent; `serve` does it at start too)."""
    from ocr_service.db import Database, schema_revisions

    database = Database.from_settings(get_settings())
    try:
        database.upgrade()
        current, _heads = schema_revisions(database.engine)
    finally:
        database.dispose()
    sys.stdout.write(json.dumps({"backend": database.backend, "revision": sorted(current)}) + "\n")


@app.command()
def purge(
    older_than_days: Annotated[
        int | None, typer.Option(min=0, help="Images older than this many days (default OCR_RETENTION_DAYS).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Only count what would be purged.")] = False,
) -> None:
    """Delete stored images past retention; their records stay, marked purged. Safe to repeat."""
    from datetime import timedelta

    from ocr_service.db import session_scope
    from ocr_service.purge import purge_images
    from ocr_service.storage import get_blob_store

    settings = get_settings()
    days = settings.retention_days if older_than_days is None else older_than_days
    store = get_blob_store(settings)
    with session_scope(_open_database()) as session:
        report = purge_images(session, store, timedelta(days=days), dry_run=dry_run)
    out = {
        "dry_run": report.dry_run,
        "older_than_days": days,
        "cutoff": report.cutoff.isoformat(),
        "due": report.due,
        "purged": report.purged,
    }
    sys.stdout.write(json.dumps(out) + "\n")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Web worker processes (each loads the OCR models once).")] = 1,
) -> None:
    """Run the HTTP API (uvicorn). Migrates the database first; without a broker, scans run in-process."""
    import uvicorn

    from ocr_service.db import upgrade

    settings = get_settings()
    if workers > 1 and not settings.broker_url:
        # each process would run its own scan pool and its own in-memory rate limits
        log.warning("serve_multiple_workers_without_broker", workers=workers)
    upgrade(settings.effective_database_url)  # once, before any worker starts
    uvicorn.run(
        "ocr_service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # the app writes its own access log (route templates, no path values or query strings)
        access_log=False,
        proxy_headers=True,
    )


@app.command()
def openapi() -> None:
    """Print the OpenAPI document (``ocr-service openapi > docs/openapi.json``)."""
    from ocr_service.app import openapi_schema

    sys.stdout.write(json.dumps(openapi_schema(), ensure_ascii=False, indent=2) + "\n")
