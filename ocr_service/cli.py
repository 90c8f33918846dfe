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
from ocr_service.logs import configure_logging
from ocr_service.masking import mask_document_number

app = typer.Typer(help="ID-document OCR verification service.", no_args_is_help=True, add_completion=False)
log = structlog.get_logger("ocr_service.cli")


@app.callback()
def _main() -> None:
    from ocr_service import subscribers
    from ocr_service.storage import prepare_data_dir, use_private_umask

    # first, before any command (serve, worker, db upgrade, keys ...) creates a file: the
    # database, its -wal/-shm, the key file and the blobs are then 0600, directories 0700
    use_private_umask()
    subscribers.connect()
    settings = get_settings()
    prepare_data_dir(settings.data_dir, create=False)  # commands that need it create it (0700)
    configure_logging(settings.log_level, settings.log_json)


def _manifest_line_problem(entry: object) -> str | None:
    """Why a parsed manifest line cannot be scanned: a claim that is a list, number or object would
    otherwise reach the matcher as something no applicant could have typed."""
    if not isinstance(entry, dict):
        return "a line must be a JSON object"
    if not isinstance(entry.get("image"), str) or not entry["image"]:
        return "'image' must be a non-empty string"
    for key in ("name", "id_number"):
        if key in entry and entry[key] is not None and not isinstance(entry[key], str):
            return f"'{key}' must be a string, not {type(entry[key]).__name__}"
    return None


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
                problem = _manifest_line_problem(entry)
            except json.JSONDecodeError as exc:
                problem = str(exc)
            if problem:
                yield f"{manifest}:{lineno}", None, None, f"bad manifest line: {problem}"
                continue
            path = Path(entry["image"])
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
    keep_going: Annotated[
        bool,
        typer.Option(
            help="Scan every input even after one could not be read (each gets an error object); "
            "--no-keep-going stops at the first. Either way the exit code is 1 if any input could not be read."
        ),
    ] = True,
) -> None:
    """Scan ID-card photos and print one JSON decision per image.

    Exit code 0 when every input was read and scanned (whatever the decisions), 1 when any could
    not be read (a missing or unreadable file, a bad manifest line), 2 for a usage error.
    """
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
            failures += 1
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
                    id_number=mask_document_number(result.fields.value("id_number") if result.fields else ""),
                    total_ms=result.timings_ms.get("total"),
                )
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2 if pretty else None) + "\n")
        sys.stdout.flush()
        if failures and not keep_going:
            break
    raise typer.Exit(1 if failures else 0)


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
    nice: Annotated[
        int,
        typer.Option(
            min=0,
            max=19,
            help="Lower this worker's CPU priority (batch workers: 10), so live scans on the same host go first.",
        ),
    ] = 0,
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
        import ocr_service.verification.service  # noqa: F401  registers the outbox (the attempts table)
        from ocr_service.db import session_scope
        from ocr_service.queue.dispatch import requeue_stale as requeue

        with session_scope() as session:
            ids = requeue(session, settings.celery_visibility_timeout, settings)
        sys.stdout.write(json.dumps({"requeued": len(ids), "attempt_ids": ids}) + "\n")
        raise typer.Exit(0)

    import os

    from ocr_service.queue.celery_app import get_celery_app

    if nice:
        os.nice(nice)  # inherited by the pool children
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

keys_app = typer.Typer(help="API keys: create, list, rotate, revoke.", no_args_is_help=True)
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
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "rotated_at": key.rotated_at.isoformat() if key.rotated_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for, e.g. 'mini-program prod'.")],
    scope: Annotated[
        list[str], typer.Option(help="client, reviewer, admin, identity:full, unit_reviewer (repeat for several).")
    ],
    callback_url: Annotated[str | None, typer.Option(help="Where status-change webhooks for this key go.")] = None,
    expires_in_days: Annotated[
        int | None, typer.Option(min=0, help="Days until the key expires; 0: never. Default: OCR_API_KEY_DAYS.")
    ] = None,
) -> None:
    """Create an API key and print it (the secret is shown this once and never stored)."""
    from ocr_service.auth import create_api_key
    from ocr_service.db import session_scope

    database = _open_database()
    try:
        with session_scope(database) as session:
            key, secret = create_api_key(session, name, scope, callback_url, expires_in_days)
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
    table = Table("id", "name", "prefix", "scopes", "callback", "created", "expires", "revoked")
    for key in keys:
        table.add_row(
            key["id"],
            key["name"],
            key["key_prefix"] + "…",
            ",".join(key["scopes"]),
            key["callback_url"] or "",
            key["created_at"][:19],
            (key["expires_at"] or "never")[:19],
            (key["revoked_at"] or "")[:19],
        )
    Console(file=sys.stdout, width=200).print(table)


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`).")],
    grace_hours: Annotated[
        float | None,
        typer.Option(
            min=0, help="Hours the old secret keeps working; 0: stops now. Default: OCR_API_KEY_ROTATION_GRACE_HOURS."
        ),
    ] = None,
    expires_in_days: Annotated[
        int | None, typer.Option(min=0, help="Days until the new secret expires; 0: never. Default: OCR_API_KEY_DAYS.")
    ] = None,
) -> None:
    """Issue a new secret for a key (same id, scopes, callback); print it once. The old one stops after the grace."""
    from ocr_service.auth import rotate_api_key
    from ocr_service.db import session_scope

    try:
        with session_scope(_open_database()) as session:
            rotated = rotate_api_key(session, key_id, grace_hours, expires_in_days)
            if rotated is None:
                raise _fail(f"no API key with id {key_id}")
            key, secret = rotated
            until = key.previous_valid_until
            out = {
                **_key_json(key),
                "secret": secret,
                "previous_secret_valid_until": until.isoformat() if until else None,
            }
    except ValueError as exc:
        raise _fail(str(exc)) from None
    sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
    typer.echo("Store the new secret now: it cannot be shown again.", err=True)


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


reviewers_app = typer.Typer(help="Reviewer accounts of the review console.", no_args_is_help=True)
app.add_typer(reviewers_app, name="reviewers")


@reviewers_app.command("create")
def reviewers_create(
    username: Annotated[str, typer.Option(help="Sign-in name (letters, digits, . _ -).")],
    role: Annotated[str, typer.Option(help="reviewer or admin.")] = "reviewer",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Create a reviewer account (the password is prompted for, or read from stdin; stored argon2-hashed)."""
    from ocr_service.db import session_scope
    from ocr_service.review.service import create_reviewer

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    database = _open_database()
    try:
        with session_scope(database) as session:
            reviewer = create_reviewer(session, username, password, role)
            out = {"id": reviewer.id, "username": reviewer.username, "role": reviewer.role.value}
    except ValueError as exc:
        raise _fail(str(exc)) from None
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
        # X-Forwarded-For/-Proto only from OCR_TRUSTED_PROXIES (uvicorn's own default would trust
        # 127.0.0.1 behind the operator's back); with none set, the headers are ignored.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )


@app.command()
def openapi() -> None:
    """Print the OpenAPI document (``ocr-service openapi > docs/openapi.json``)."""
    from ocr_service.app import openapi_schema

    sys.stdout.write(json.dumps(openapi_schema(), ensure_ascii=False, indent=2) + "\n")


# --------------------------------------------------------------------------- re-verification jobs

jobs_app = typer.Typer(help="Batch jobs: list, watch, cancel, resume, report.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


def _watch_job(job_id: str) -> None:
    """A rich progress bar (done/total, rate, ETA, failures) until the job is completed or cancelled."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ocr_service.db import session_scope
    from ocr_service.errors import ApiError
    from ocr_service.jobs import reverify

    database = _open_database()

    def read() -> reverify.JobProgress:
        with session_scope(database) as session:
            try:
                return reverify.get_progress(session, job_id)
            except ApiError:
                raise _fail(f"no job with id {job_id}") from None

    def eta(seconds: float | None) -> str:
        return "?" if seconds is None else f"{int(seconds // 60)}:{int(seconds % 60):02d}"

    progress = read()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} cases/s  ETA {task.fields[eta]}  failed {task.fields[failed]}"),
        TextColumn("now failing {task.fields[now_failing]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"job {job_id[:8]}", total=progress.total or 1, rate="-", eta="?", failed=0, now_failing=0)
        while True:
            rate = progress.cases_per_second
            bar.update(
                task,
                completed=progress.finished_cases,
                rate=f"{rate:.2f}" if rate else "-",
                eta=eta(progress.eta_seconds),
                failed=progress.failed,
                now_failing=progress.now_failing,
                description=f"job {job_id[:8]} {progress.status.value}",
            )
            if progress.is_finished:
                break
            time.sleep(0.5)
            progress = read()
    sys.stdout.write(json.dumps(_job_json(progress)) + "\n")


def _job_json(progress) -> dict:
    from ocr_service.jobs.routes import job_out

    return job_out(progress).model_dump(mode="json")


@app.command()
def reverify(
    since: Annotated[str | None, typer.Option(help="First day of the original scans (YYYY-MM-DD, UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Last day of the original scans (YYYY-MM-DD), inclusive.")] = None,
    region: Annotated[str | None, typer.Option(help="Division-code prefix of the ID number, e.g. 4201.")] = None,
    status: Annotated[str | None, typer.Option(help="Only cases whose verification has this status.")] = None,
    method: Annotated[str, typer.Option(help="auto or manual.")] = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Scan and report; flag nothing.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Show a progress bar until the job finishes.")] = False,
    chunk_size: Annotated[int, typer.Option(min=1, max=500, help="Cases per batch task.")] = 25,
) -> None:
    """Re-run stored cases through today's pipeline on the batch queue (a job; see `jobs`)."""
    from datetime import date

    from ocr_service.db import session_scope
    from ocr_service.jobs import reverify as reverify_service
    from ocr_service.queue.dispatch import BrokerUnavailable
    from ocr_service.verification.models import Method, VerificationStatus

    try:
        selection = reverify_service.Selection(
            since=date.fromisoformat(since) if since else None,
            until=date.fromisoformat(until) if until else None,
            region=region,
            status=VerificationStatus(status) if status else None,
            method=Method(method),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if region is not None and not (region.isdigit() and 2 <= len(region) <= 6):
        raise typer.BadParameter("--region is 2 to 6 digits of a division code, e.g. 42 or 420106")
    settings = get_settings()
    database = _open_database()
    with session_scope(database) as session:
        job = reverify_service.create_job(
            session, selection, created_by="cli", dry_run=dry_run, chunk_size=chunk_size, settings=settings
        )
        try:
            reverify_service.start_job(session, job.id, settings)
        except BrokerUnavailable:
            raise _fail(f"the batch queue is unavailable; job {job.id} is stored: `ocr-service jobs resume`") from None
    typer.echo(f"job {job.id}: {job.total} cases in {job.chunks} chunks", err=True)
    if not settings.broker_url:
        # Without a broker the chunks run in this process: leaving now would drop them.
        wait = True
    if wait:
        _watch_job(job.id)
    else:
        with session_scope(database) as session:
            sys.stdout.write(json.dumps(_job_json(reverify_service.get_progress(session, job.id))) + "\n")


@jobs_app.command("list")
def jobs_list(limit: Annotated[int, typer.Option(min=1, help="Newest first, at most this many.")] = 20) -> None:
    """List jobs with their counters."""
    from rich.console import Console
    from rich.table import Table

    from ocr_service.db import session_scope
    from ocr_service.jobs import reverify as reverify_service

    with session_scope(_open_database()) as session:
        jobs = reverify_service.list_jobs(session, limit)
    table = Table("id", "kind", "status", "dry run", "done/total", "failed", "now failing", "changed", "created")
    for job in jobs:
        table.add_row(
            job.id,
            job.kind,
            job.status.value,
            "yes" if job.dry_run else "",
            f"{job.finished_cases}/{job.total}",
            str(job.failed),
            str(job.now_failing),
            str(job.changed_decision + job.changed_fields),
            job.created_at.isoformat()[:19],
        )
    Console(file=sys.stdout, width=200).print(table)


@jobs_app.command("watch")
def jobs_watch(job_id: Annotated[str, typer.Argument(help="The job's id.")]) -> None:
    """Attach to a job: a progress bar until it finishes."""
    _watch_job(job_id)


@jobs_app.command("cancel")
def jobs_cancel(job_id: Annotated[str, typer.Argument(help="The job's id.")]) -> None:
    """Stop a job: no new case starts; cases already done stay done."""
    from ocr_service.db import session_scope
    from ocr_service.errors import ApiError
    from ocr_service.jobs import reverify as reverify_service

    with session_scope(_open_database()) as session:
        try:
            reverify_service.cancel_job(session, job_id)
        except ApiError:
            raise _fail(f"no job with id {job_id}") from None
        sys.stdout.write(json.dumps(_job_json(reverify_service.get_progress(session, job_id))) + "\n")


@jobs_app.command("resume")
def jobs_resume(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    wait: Annotated[bool, typer.Option("--wait", help="Show a progress bar until the job finishes.")] = False,
) -> None:
    """Submit again the chunks of a job that still have pending cases (after a cancel or an outage)."""
    from ocr_service.db import session_scope
    from ocr_service.errors import ApiError
    from ocr_service.jobs import reverify as reverify_service

    with session_scope(_open_database()) as session:
        try:
            chunks = reverify_service.resume_job(session, job_id)
        except ApiError:
            raise _fail(f"no job with id {job_id}") from None
    typer.echo(f"job {job_id}: {chunks} chunks submitted", err=True)
    if wait or not get_settings().broker_url:
        _watch_job(job_id)


@jobs_app.command("report")
def jobs_report(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    out: Annotated[Path | None, typer.Option(help="Report file (default ./reverify-<id>.<format>).")] = None,
) -> None:
    """Write the job's report (ID numbers masked) and a PNG chart beside it; print a summary table."""
    from rich.console import Console
    from rich.table import Table

    from ocr_service.db import session_scope
    from ocr_service.errors import ApiError
    from ocr_service.jobs import reverify as reverify_service

    if fmt not in ("csv", "json"):
        raise typer.BadParameter("--format is csv or json")
    out = out or Path(f"reverify-{job_id}.{fmt}")
    with session_scope(_open_database()) as session:
        try:
            files = reverify_service.write_report(session, job_id, fmt, out)
        except ApiError:
            raise _fail(f"no job with id {job_id}") from None
    summary = files.summary
    console = Console(file=sys.stdout, width=200)
    outcomes = Table("outcome", "cases", title=f"job {job_id} ({summary.job.status.value})")
    for name, count in sorted(summary.outcomes.items()):
        outcomes.add_row(name, str(count))
    console.print(outcomes)
    versions = Table("stored pipeline", "stored models", "new pipeline", "new models", "outcomes")
    for change in summary.versions:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(change.outcomes.items()))
        versions.add_row(change.old_version, change.old_digest, change.new_version, change.new_digest, counts)
    console.print(versions)
    typer.echo(f"report {files.report}\nchart {files.chart}", err=True)
