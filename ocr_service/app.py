"""The FastAPI application factory: ``create_app(settings) -> FastAPI``.

Everything a request needs is built once here and kept on ``app.state`` (and installed as the
process-wide default, so the in-process scan pool and webhooks use the same objects): the
database (migrated on start for the embedded SQLite default), the cipher, the encrypted blob
store, the warmed OCR engine and the rate limiter. ``uvicorn --factory ocr_service.app:create_app``
builds one per worker process.

Around every request: a request id (``X-Request-ID``, echoed), one structured access-log line
(method, route template, status, duration; never query strings, bodies or path values, which
may carry personal data), Prometheus request metrics by route template, and a body-size limit
that answers 413 before reading more than ``max_upload_bytes`` plus form overhead (``file_too_large``),
or, for a JSON body, more than ``max_json_bytes`` (``json_too_large``, before anything is parsed).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocr_service import metrics, subscribers, webhooks
from ocr_service.capture.routes import router as capture_router
from ocr_service.config import Settings, get_settings, set_settings
from ocr_service.crypto import Cipher, set_cipher
from ocr_service.db import Database, set_database
from ocr_service.declaration.routes import public_router as declaration_public_router
from ocr_service.declaration.routes import router as declaration_router
from ocr_service.errors import error_body, image_error, install_error_handlers, internal_error
from ocr_service.jobs.routes import router as jobs_router
from ocr_service.logs import configure_logging
from ocr_service.page_security import page_headers
from ocr_service.ratelimit import build_rate_limiter
from ocr_service.review.console import router as review_console_router
from ocr_service.review.routes import router as review_router
from ocr_service.storage import LocalBlobStore, prepare_data_dir, set_blob_store
from ocr_service.verification.routes import router as verification_router
from ocr_service.verification.schemas import HealthOut
from ocr_service.webhook_targets import CallbackPolicy
from pipelines.reasons import ImageErrorCode

log = structlog.get_logger("ocr_service.access")

# Multipart framing and the small form fields around the photo (boundaries, headers, side).
FORM_OVERHEAD_BYTES = 64 * 1024
# Swagger UI and ReDoc, vendored (versions and licences in its README.md): /docs works offline.
DOCS_ASSETS = Path(__file__).parent / "static" / "docs"


class BodySizeLimitMiddleware:
    """413 without reading the body when Content-Length is over the limit, and as soon as a chunked
    body passes it (the handler's partial answer is replaced). JSON bodies have their own, smaller
    limit and code (``json_too_large``); everything else (multipart uploads) ``file_too_large``."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_json_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_bytes = max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        media_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        is_json = media_type == b"application/json" or media_type.endswith(b"+json")
        limit = self.max_json_bytes if is_json else self.max_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, is_json)
            return
        received = 0
        overflowed = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, overflowed
            if overflowed:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflowed = True
                    return {"type": "http.disconnect"}  # the app stops reading; we answer below
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if overflowed:
                return  # whatever the app makes of a cut-off body, the answer is 413
            response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not overflowed:
                raise
        if overflowed and not response_started:
            await self._refuse(send, is_json)

    async def _refuse(self, send: Send, is_json: bool) -> None:
        if is_json:
            body = error_body(
                "json_too_large",
                f"the JSON request body is larger than {self.max_json_bytes} bytes",
                "请求内容过大，请精简后重试",
                {"max_bytes": self.max_json_bytes},
            )
        else:
            body = image_error(
                ImageErrorCode.FILE_TOO_LARGE, {"max_bytes": self.max_bytes - FORM_OVERHEAD_BYTES}
            ).to_body()
        response = JSONResponse(body, status_code=413, headers={"Connection": "close"})
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


class ConsoleSecurityHeadersMiddleware:
    """CSP, no framing, no referrer and no sniffing on every console response (``/review/...``).

    The console shows full ID numbers and photos: it must not be framed (clickjacking an
    approval) or leak case URLs in a Referer. Its one script (the case page's viewer and
    keyboard shortcuts) runs by a per-response nonce, which templates read as
    ``request.state.csp_nonce``; no other script can run. Inline ``style`` attributes are
    allowed: they cannot run code.
    """

    PREFIX = "/review"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == self.PREFIX or path.startswith(self.PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        headers = page_headers(
            f"script-src 'nonce-{nonce}'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' blob: data:",
            "connect-src 'self'",
            "form-action 'self'",
        )
        extra = [(name.lower().encode(), value.encode()) for name, value in headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in extra}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = [*kept, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestContextMiddleware:
    """Request id, one access-log line and the request metrics for every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        # only a short token of safe characters is echoed back; anything else gets a fresh id
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.replace("-", "").isalnum() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_code = 500

        status_code_sent = False

        async def send_with_id(message: Message) -> None:
            nonlocal status_code, status_code_sent
            if message["type"] == "http.response.start":
                status_code = message["status"]
                status_code_sent = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                # Answered here rather than re-raised: Starlette's outer error middleware would
                # hand the exception to the server, which logs its message and traceback.
                if status_code_sent:
                    return
                response = internal_error(exc, getattr(scope.get("route"), "path", None), request_id)
                await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            metrics.REQUESTS.labels(route=template, method=method, status=str(status_code)).inc()
            metrics.REQUEST_SECONDS.labels(route=template, method=method).observe(elapsed)
            state = scope.get("state", {})
            log.info(
                "request",
                method=method,
                route=template,
                status=status_code,
                duration_ms=round(elapsed * 1000, 1),
                client_key=state.get("client_key_prefix"),
            )
            structlog.contextvars.unbind_contextvars("request_id")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app and everything it shares; install them process-wide for off-request work."""
    settings = settings or get_settings()
    set_settings(settings)
    subscribers.connect()
    # uvicorn's worker processes are fresh interpreters: the CLI's logging setup is not inherited
    configure_logging(settings.log_level, settings.log_json)
    # 0700 before the database, key file and blobs go in (the umask is set by the CLI entry point)
    prepare_data_dir(settings.data_dir)
    # the cipher first: a migration may encrypt existing rows (0009) with this app's key
    cipher = Cipher.from_settings(settings)
    set_cipher(cipher)
    database = Database.from_settings(settings)
    if database.backend == "sqlite":
        # The embedded default migrates itself; a shared PostgreSQL is migrated once by
        # `ocr-service serve` / `db upgrade`, not by whichever web worker starts first.
        database.upgrade()
    set_database(database)
    set_blob_store(LocalBlobStore.from_settings(settings, cipher))
    webhooks.configure_sender(
        settings.webhook_max_retries, settings.webhook_backoff_seconds, CallbackPolicy.from_settings(settings)
    )

    from pipelines.ocr import get_engine

    app = build_api(settings)
    app.state.db = database
    app.state.cipher = cipher
    app.state.engine = get_engine(settings.ocr_engine, settings.ocr_threads, warm=True)
    app.state.rate_limiter = build_rate_limiter(settings.broker_url)
    return app


def build_api(settings: Settings) -> FastAPI:
    """Routes, middleware and error handlers without the resources: what OpenAPI is made from."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from ocr_service.queue import dispatch

        # attempts a crashed predecessor left queued/running are submitted again, now and periodically
        sweeper = dispatch.start_requeue_sweeper(settings)
        try:
            yield
        finally:
            sweeper.stop()
            dispatch.shutdown(wait=True)

    app = FastAPI(
        title="ID-document OCR verification service",
        version="1.0.0",
        summary="Real-name verification: scan a resident ID card, or send any document to manual review.",
        lifespan=lifespan,
        docs_url=None,  # served by _add_docs_routes from the package, not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_upload_bytes + FORM_OVERHEAD_BYTES,
        max_json_bytes=settings.max_json_bytes,
    )
    app.add_middleware(ConsoleSecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware)  # added last: outermost, so it sees 413s too
    app.include_router(verification_router)
    app.include_router(review_router)
    app.include_router(review_console_router)
    app.include_router(jobs_router)
    app.include_router(declaration_router)
    app.include_router(declaration_public_router)  # /check/{code}: the notice's QR code, no key
    app.include_router(capture_router)  # capture links and the hosted capture page (/capture/{token})
    _add_operational_routes(app)
    _add_docs_routes(app)
    return app


def _add_docs_routes(app: FastAPI) -> None:
    """/docs and /redoc with every script, stylesheet and icon from ``DOCS_ASSETS`` (no CDN, no web fonts)."""
    app.mount("/static/docs", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    title = app.title
    favicon = "/static/docs/swagger-ui/favicon-32x32.png"

    # Plain routes, like FastAPI's own docs routes: no API operation, no key (the scope matrix lists API routes).
    def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title} - Swagger UI",
            swagger_js_url="/static/docs/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui/swagger-ui.css",
            swagger_favicon_url=favicon,
        )

    def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title} - ReDoc",
            redoc_js_url="/static/docs/redoc/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )

    app.add_route("/docs", swagger_ui, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)


def openapi_schema() -> dict:
    """The OpenAPI document (``ocr-service openapi``); needs no database, key or models."""
    return build_api(Settings()).openapi()


def _add_operational_routes(app: FastAPI) -> None:
    @app.get("/healthz", response_model=HealthOut, tags=["operations"], summary="The process is up")
    def healthz() -> HealthOut:
        return HealthOut(status="ok")

    @app.get(
        "/readyz",
        response_model=HealthOut,
        tags=["operations"],
        summary="Ready for traffic: database, broker (when configured), OCR models",
        responses={503: {"description": "Not ready; details.checks says what failed."}},
    )
    def readyz(request: Request) -> HealthOut | JSONResponse:
        state = request.app.state
        checks: dict[str, str] = {}
        try:
            state.db.ping()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        if state.settings.broker_url:
            checks["broker"] = "ok" if _broker_ping(state.settings.broker_url) else "error: unreachable"
        checks["models"] = "ok" if getattr(state, "engine", None) is not None else "error: not loaded"
        if all(value == "ok" for value in checks.values()):
            return HealthOut(status="ok", checks=checks)
        body = error_body("not_ready", "the service is not ready", "服务暂不可用，请稍后再试", {"checks": checks})
        return JSONResponse(body, status_code=503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _broker_ping(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False
