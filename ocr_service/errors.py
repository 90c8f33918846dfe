"""The one error-response shape and the exception handlers that produce it.

Every error the service answers with, whatever raised it, looks like::

    {"error": {"code": "file_too_large", "message": "the file exceeds the size limit",
               "message_zh": "文件过大，请上传20MB以内的照片", "details": {}}}

``code`` is a stable string clients branch on; ``message`` is English for operators;
``message_zh`` is what the mini-program may show the applicant (``null`` when there is
nothing useful to tell them). Unexpected exceptions are logged by type and request id
only: their text may carry personal data (an SQL parameter, an OCR read).

An outage of something the service depends on (the database unreachable or locked, the broker
or the rate limiter's Redis down) is not the service's bug and not the client's: it answers
``503 service_unavailable`` with ``Retry-After`` on every route, never 500, so a client retries.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from pipelines.reasons import MESSAGES, ImageErrorCode

log = structlog.get_logger(__name__)


class ApiError(Exception):
    """An error the API answers with on purpose: a stable code, an HTTP status, messages."""

    def __init__(
        self,
        code: str,
        status: int,
        message: str,
        message_zh: str | None = None,
        details: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.message_zh = message_zh
        self.details = details or {}
        # extra response headers (Retry-After for 429); not part of the constructor contract
        self.headers: dict[str, str] = {}

    def to_body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.message_zh, self.details)


def error_body(code: str, message: str, message_zh: str | None = None, details: dict | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "message_zh": message_zh, "details": details or {}}}


# Image errors via HTTP. The pipeline's decoder says *what* is wrong; the status says *whose*
# move it is. 413/415 have exact HTTP meanings. The rest are well-formed multipart requests
# whose file content cannot be used, which is 422 (unprocessable content) rather than 400
# (malformed request): the client sent what it meant to, the photo is the problem.
IMAGE_ERROR_STATUS: dict[ImageErrorCode, int] = {
    ImageErrorCode.EMPTY_FILE: 422,
    ImageErrorCode.FILE_TOO_LARGE: 413,
    ImageErrorCode.NOT_AN_IMAGE: 422,
    ImageErrorCode.UNSUPPORTED_FORMAT: 415,
    ImageErrorCode.TRUNCATED_IMAGE: 422,
    ImageErrorCode.TOO_MANY_PIXELS: 422,
    ImageErrorCode.FRAME_TOO_LARGE: 422,
    ImageErrorCode.IMAGE_TOO_SMALL: 422,
    ImageErrorCode.UNREADABLE_FILE: 422,
}


def image_error(code: ImageErrorCode | str, details: dict | None = None) -> ApiError:
    """An ApiError for an image the decoder (or the size limit) refused."""
    code = ImageErrorCode(code)
    zh, en = MESSAGES[code]
    return ApiError(code.value, IMAGE_ERROR_STATUS[code], en, zh, details)


# Codes for plain HTTPExceptions (raised by FastAPI/Starlette themselves: 404 route, 405).
_HTTP_CODES: dict[int, tuple[str, str | None]] = {
    400: ("bad_request", "请求格式错误"),
    401: ("unauthorized", "未授权，请提供有效的API密钥"),
    403: ("forbidden", "无权访问"),
    404: ("not_found", "资源不存在"),
    405: ("method_not_allowed", "不支持该请求方法"),
    409: ("conflict", None),
    413: (ImageErrorCode.FILE_TOO_LARGE.value, MESSAGES[ImageErrorCode.FILE_TOO_LARGE][0]),
    429: ("rate_limited", "请求过于频繁，请稍后再试"),
}


async def _api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.to_body(), status_code=exc.status, headers=exc.headers or None)


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only locations and messages: pydantic's "input" would echo what was sent (a claim number).
    problems = []
    message_zh = "请求参数有误"
    for error in exc.errors():
        problem: dict[str, Any] = {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        if error.get("type") == "enum":
            # The allowed values come from the enum, not from the caller, so they are safe to echo.
            allowed = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
            problem["allowed"] = allowed
            if message_zh == "请求参数有误":
                field = problem["loc"][-1] if problem["loc"] else ""
                message_zh = f"参数 {field} 的取值无效，可选值：{'、'.join(allowed)}"
        problems.append(problem)
    body = error_body("validation_error", "the request is invalid", message_zh, {"errors": problems})
    return JSONResponse(body, status_code=422)


async def _http_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, zh = _HTTP_CODES.get(exc.status_code, (_phrase_code(exc.status_code), None))
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return JSONResponse(error_body(code, message, zh), status_code=exc.status_code, headers=headers or None)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette's own ``Allow`` names only the first
    route whose path matched, and a path shared by two routers (GET in one, POST in another) then
    looks like it serves one method."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        route_methods = getattr(route, "methods", None)
        if route_methods and compile_path(route.path)[0].fullmatch(request.url.path):
            methods |= set(route_methods)
    return sorted(methods)


# Seconds a client is told to wait after a 503 for an outage: the database or broker retries of
# the workers back off over about this long per step (issue 13), so sooner is wasted traffic.
OUTAGE_RETRY_AFTER_SECONDS = 5


def is_outage(exc: BaseException) -> bool:
    """True for an exception that means a dependency is down, not that the request or code is wrong.

    SQLAlchemy's ``OperationalError`` (connection refused or lost, server shutting down, SQLite
    unable to open or locked), ``InterfaceError`` and a pool timeout; any DBAPI error that
    invalidated its connection; the broker's and Redis's connection errors.
    """
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if type(exc.orig).__module__ == "sqlite3":
            # sqlite3 files a missing table under OperationalError too: only these are the file's state
            return isinstance(exc, sa_exc.OperationalError) and any(
                word in str(exc.orig).lower() for word in _SQLITE_OUTAGE_WORDS
            )
        return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__}
    return bool(names & _OUTAGE_EXCEPTIONS) or any(cls.__name__ == "BrokerUnavailable" for cls in type(exc).__mro__)


# sqlite3's own messages (no SQL, no parameters): locked past the busy timeout, unopenable, I/O, full.
_SQLITE_OUTAGE_WORDS = ("locked", "busy", "unable to open", "disk i/o", "database or disk is full", "readonly")

# By name, so this module imports neither redis nor kombu nor the dispatcher (whose
# ``BrokerUnavailable`` is matched by class name wherever the queue plumbing lives).
_OUTAGE_EXCEPTIONS = frozenset(
    {"redis.exceptions.ConnectionError", "redis.exceptions.TimeoutError", "kombu.exceptions.OperationalError"}
)


def service_unavailable(details: dict | None = None) -> ApiError:
    error = ApiError(
        "service_unavailable",
        503,
        "a service the request needs (database or queue) is unavailable; retry later",
        "系统繁忙，请稍后重试",
        details,
    )
    error.headers["Retry-After"] = str(OUTAGE_RETRY_AFTER_SECONDS)
    return error


def internal_error(exc: BaseException, route: str | None, request_id: str | None) -> JSONResponse:
    """The answer to an exception nothing handled, and the one log line about it: 503 for an
    outage (``is_outage``), else 500.

    Only the exception's type: its message or a traceback's locals may hold an ID number (an
    SQL parameter, an OCR read). The type, the route and the request id are enough to find it.
    """
    if is_outage(exc):
        log.warning("dependency_unavailable", error_type=type(exc).__name__, route=route, request_id=request_id)
        error = service_unavailable()
        return JSONResponse(error.to_body(), status_code=error.status, headers=error.headers)
    log.error("unhandled_error", error_type=type(exc).__name__, route=route, request_id=request_id)
    body = error_body("internal_error", "internal server error", "服务器内部错误，请稍后再试")
    return JSONResponse(body, status_code=500)


async def _unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    route = getattr(request.scope.get("route"), "path", None)
    return internal_error(exc, route, getattr(request.state, "request_id", None))


def _phrase_code(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(Exception, _unexpected_error_handler)


# Shared constructors for the non-image errors in the design's table.
def not_found(what: str = "resource") -> ApiError:
    return ApiError("not_found", 404, f"{what} not found", "资源不存在")


def illegal_transition(current: str, action: str) -> ApiError:
    return ApiError(
        "illegal_transition",
        409,
        f"cannot {action} while the verification is {current}",
        "当前状态不允许此操作",
        {"current_status": current, "action": action},
    )
