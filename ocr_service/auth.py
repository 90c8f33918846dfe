"""API keys: issuing, checking and revoking them, and the FastAPI dependencies that enforce scopes.

A key is ``ocr_`` + 32 random bytes (URL-safe base64). The service stores only its SHA-256
and the first characters (``key_prefix``) for display; the secret is shown once, at creation.
Requests present it as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Scopes: ``client`` (the applicant-side routes), ``reviewer`` (the identity review queue), ``admin``
(key management), ``identity:full`` (see full document numbers instead of masked ones),
``unit_reviewer`` (a work unit's key: reviews the declarations naming its unit, nothing else).
A scope grants nothing beyond itself: ``admin`` does not imply ``client``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from ocr_service.config import get_settings
from ocr_service.db import SessionDep, utcnow
from ocr_service.errors import ApiError
from ocr_service.verification.models import ApiKey
from ocr_service.webhook_targets import CallbackPolicy, check_callback_url

__all__ = [
    "AdminKey",
    "ApiKey",
    "ClientKey",
    "ReviewerKey",
    "Scope",
    "authenticate",
    "create_api_key",
    "hash_secret",
    "list_api_keys",
    "require_scope",
    "revoke_api_key",
]

SECRET_PREFIX = "ocr_"
SECRET_BYTES = 32
# What `keys list` shows: "ocr_" and 4 characters of the random part, enough to tell keys apart.
DISPLAY_PREFIX_CHARS = 8
# Longer than any key we issue; longer input is refused before hashing.
_MAX_SECRET_CHARS = 256


class Scope(StrEnum):
    CLIENT = "client"
    REVIEWER = "reviewer"
    ADMIN = "admin"
    IDENTITY_FULL = "identity:full"
    # A work unit's key: its own unit's declarations under /v1/declarations/review, and no
    # identity review (the queue holds every client's applicants, their numbers and photos).
    UNIT_REVIEWER = "unit_reviewer"


def hash_secret(secret: str) -> str:
    """SHA-256 hex of a key.

    A fast unsalted hash is right here, unlike for passwords: the secret carries 256 random
    bits, so there is no dictionary to try and no point in slowing down a brute force that
    cannot succeed. A slow hash would only cost CPU on every request.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _parse_scopes(scopes: Iterable[Scope | str]) -> list[Scope]:
    parsed: list[Scope] = []
    for scope in scopes:
        try:
            value = Scope(scope)
        except ValueError:
            allowed = ", ".join(s.value for s in Scope)
            raise ValueError(f"unknown scope {scope!r} (allowed: {allowed})") from None
        if value not in parsed:
            parsed.append(value)
    if not parsed:
        raise ValueError("a key needs at least one scope")
    return parsed


def create_api_key(
    session: Session, name: str, scopes: Iterable[Scope | str], callback_url: str | None = None
) -> tuple[ApiKey, str]:
    """Issue a key. Returns the row and the secret, which exists nowhere else afterwards.

    A callback URL must pass ``webhook_targets.check_callback_url`` (``CallbackUrlError``, a
    ``ValueError``, otherwise).

    The row is added and flushed; the caller commits.
    """
    if not name.strip():
        raise ValueError("a key needs a name")
    if callback_url:
        check_callback_url(callback_url, CallbackPolicy.from_settings(get_settings()))
    secret = SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    key = ApiKey(
        name=name.strip(),
        key_prefix=secret[:DISPLAY_PREFIX_CHARS],
        key_hash=hash_secret(secret),
        scopes=",".join(scope.value for scope in _parse_scopes(scopes)),
        callback_url=callback_url or None,
    )
    session.add(key)
    session.flush()
    return key, secret


def authenticate(session: Session, secret: str | None) -> ApiKey | None:
    """The live key this secret belongs to, or None (unknown, malformed or revoked)."""
    if not secret or len(secret) > _MAX_SECRET_CHARS:
        return None
    digest = hash_secret(secret)
    # The lookup is by hash, so its timing says nothing an attacker can steer (they cannot pick
    # inputs with a chosen hash prefix); the constant-time comparison guards the final check.
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if key is None or not hmac.compare_digest(key.key_hash, digest) or key.revoked_at is not None:
        return None
    return key


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_api_key(session: Session, key_id: str) -> ApiKey | None:
    """Revoke a key (idempotent: an already revoked key keeps its first revocation time). None if unknown."""
    key = session.get(ApiKey, key_id)
    if key is not None and key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
    return key


# --- FastAPI dependencies ------------------------------------------------------------------------

# Declared as security schemes so /docs shows an "Authorize" button for both header styles.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer ocr_…")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: ocr_…")


def _unauthorized() -> ApiError:
    error = ApiError("unauthorized", 401, "a valid API key is required", "未授权，请提供有效的API密钥")
    error.headers = {"WWW-Authenticate": "Bearer"}
    return error


def require_scope(*scopes: Scope | str) -> Callable[..., ApiKey]:
    """A dependency returning the caller's key; the key must hold *every* listed scope.

    No scopes: any valid key. Missing or invalid key: 401 ``unauthorized``; valid key without a
    scope: 403 ``forbidden``. The key is also left on ``request.state.api_key`` (rate limits, logs).
    """
    required = frozenset(Scope(scope) for scope in scopes)

    def current_api_key(
        request: Request,
        session: SessionDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_secret: Annotated[str | None, Depends(_api_key_header)],
    ) -> ApiKey:
        secret = bearer.credentials if bearer is not None else header_secret
        key = authenticate(session, secret)
        if key is None:
            raise _unauthorized()
        missing = sorted(scope.value for scope in required if not key.has_scope(scope))
        if missing:
            raise ApiError(
                "forbidden",
                403,
                "this API key lacks a required scope",
                "无权访问",
                {"missing_scopes": missing},
            )
        request.state.api_key = key
        return key

    return current_api_key


ClientKey = Annotated[ApiKey, Depends(require_scope(Scope.CLIENT))]
ReviewerKey = Annotated[ApiKey, Depends(require_scope(Scope.REVIEWER))]
AdminKey = Annotated[ApiKey, Depends(require_scope(Scope.ADMIN))]
