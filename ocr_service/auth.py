"""API keys: issuing, checking and revoking them, and the FastAPI dependencies that enforce scopes.

A key is ``ocr_`` + 32 random bytes (URL-safe base64). The service stores only its SHA-256
and the first characters (``key_prefix``) for display; the secret is shown once, at creation.
Requests present it as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Scopes: ``client`` (the applicant-side routes), ``reviewer`` (the identity review queue), ``admin``
(key management), ``identity:full`` (see full document numbers instead of masked ones),
``unit_reviewer`` (a work unit's key: reviews the declarations naming its unit, nothing else).
A scope grants nothing beyond itself: ``admin`` does not imply ``client``.

Keys expire (``expires_at``, from ``OCR_API_KEY_DAYS``; refused with 401 ``key_expired``) and are
rotated in place: ``rotate_api_key`` gives the same row a new secret, so the key's id -- which
verifications, declarations and work units point at -- and its scopes and callback stay; the old
secret keeps working for a grace period, then gets ``key_expired`` too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import or_, select
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
    "KeyState",
    "ReviewerKey",
    "Scope",
    "authenticate",
    "create_api_key",
    "hash_secret",
    "list_api_keys",
    "lookup_key",
    "require_any_scope",
    "require_scope",
    "revoke_api_key",
    "rotate_api_key",
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


class KeyState(StrEnum):
    VALID = "valid"
    # unknown, malformed or revoked: nothing to tell the caller beyond "not a key"
    UNKNOWN = "unknown"
    # past expires_at, or a replaced secret past its grace period: the caller had a real key
    # and should be told to get a new one
    EXPIRED = "expired"


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def _lifetime_end(now: datetime, expires_in_days: int | None) -> datetime | None:
    days = get_settings().api_key_days if expires_in_days is None else expires_in_days
    if days < 0:
        raise ValueError("expires_in_days must be 0 (never) or more")
    return now + timedelta(days=days) if days else None


def create_api_key(
    session: Session,
    name: str,
    scopes: Iterable[Scope | str],
    callback_url: str | None = None,
    expires_in_days: int | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key. Returns the row and the secret, which exists nowhere else afterwards.

    ``expires_in_days``: None takes ``OCR_API_KEY_DAYS``; 0 means the key never expires.
    A callback URL must pass ``webhook_targets.check_callback_url`` (``CallbackUrlError``, a
    ``ValueError``, otherwise).

    The row is added and flushed; the caller commits.
    """
    if not name.strip():
        raise ValueError("a key needs a name")
    if callback_url:
        check_callback_url(callback_url, CallbackPolicy.from_settings(get_settings()))
    now = utcnow()
    secret = _new_secret()
    key = ApiKey(
        name=name.strip(),
        key_prefix=secret[:DISPLAY_PREFIX_CHARS],
        key_hash=hash_secret(secret),
        scopes=",".join(scope.value for scope in _parse_scopes(scopes)),
        callback_url=callback_url or None,
        created_at=now,
        expires_at=_lifetime_end(now, expires_in_days),
    )
    session.add(key)
    session.flush()
    return key, secret


def lookup_key(session: Session, secret: str | None, now: datetime | None = None) -> tuple[ApiKey | None, KeyState]:
    """The key this secret belongs to and whether it may be used now; the key only when VALID."""
    if not secret or len(secret) > _MAX_SECRET_CHARS:
        return None, KeyState.UNKNOWN
    digest = hash_secret(secret)
    # The lookup is by hash, so its timing says nothing an attacker can steer (they cannot pick
    # inputs with a chosen hash prefix); the constant-time comparison guards the final check.
    key = session.scalar(select(ApiKey).where(or_(ApiKey.key_hash == digest, ApiKey.previous_key_hash == digest)))
    if key is None or key.revoked_at is not None:
        return None, KeyState.UNKNOWN
    now = now or utcnow()
    if hmac.compare_digest(key.key_hash, digest):
        valid_until = key.expires_at
    elif key.previous_key_hash is not None and hmac.compare_digest(key.previous_key_hash, digest):
        valid_until = key.previous_valid_until
    else:
        return None, KeyState.UNKNOWN
    if valid_until is not None and now >= valid_until:
        return None, KeyState.EXPIRED
    return key, KeyState.VALID


def authenticate(session: Session, secret: str | None, now: datetime | None = None) -> ApiKey | None:
    """The live key this secret belongs to, or None (unknown, malformed, revoked or expired)."""
    return lookup_key(session, secret, now)[0]


def rotate_api_key(
    session: Session, key_id: str, grace_hours: float | None = None, expires_in_days: int | None = None
) -> tuple[ApiKey, str] | None:
    """Give a key a new secret (returned, shown once); None if the key is unknown.

    Same row, so its id, scopes, callback and everything pointing at it stay. The replaced secret
    keeps working for ``grace_hours`` (default ``OCR_API_KEY_ROTATION_GRACE_HOURS``; 0: stops at
    once), never past its own expiry; a secret replaced before that stops now (one previous
    secret at a time). The lifetime starts again (``expires_in_days`` as for ``create_api_key``).
    A revoked key is not brought back: ``ValueError``.
    """
    key = session.get(ApiKey, key_id)
    if key is None:
        return None
    if key.revoked_at is not None:
        raise ValueError("a revoked key cannot be rotated; create a new one")
    hours = get_settings().api_key_rotation_grace_hours if grace_hours is None else grace_hours
    if hours < 0:
        raise ValueError("grace_hours must be 0 or more")
    now = utcnow()
    grace_end = now + timedelta(hours=hours)
    if key.expires_at is not None:
        grace_end = min(grace_end, key.expires_at)
    secret = _new_secret()
    if hours and grace_end > now:
        key.previous_key_hash, key.previous_valid_until = key.key_hash, grace_end
    else:
        key.previous_key_hash, key.previous_valid_until = None, None
    key.key_hash = hash_secret(secret)
    key.key_prefix = secret[:DISPLAY_PREFIX_CHARS]
    key.rotated_at = now
    key.expires_at = _lifetime_end(now, expires_in_days)
    session.flush()
    return key, secret


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


def _unauthorized(state: KeyState = KeyState.UNKNOWN) -> ApiError:
    if state is KeyState.EXPIRED:
        error = ApiError(
            "key_expired", 401, "this API key has expired; ask for a new one", "API密钥已过期，请更换新的密钥"
        )
    else:
        error = ApiError("unauthorized", 401, "a valid API key is required", "未授权，请提供有效的API密钥")
    error.headers = {"WWW-Authenticate": "Bearer"}
    return error


def _forbidden(details: dict) -> ApiError:
    return ApiError("forbidden", 403, "this API key lacks a required scope", "无权访问", details)


def _key_dependency(check: Callable[[ApiKey], dict | None]) -> Callable[..., ApiKey]:
    """A dependency returning the caller's key once ``check`` (None: allowed, else 403 details) passes."""

    def current_api_key(
        request: Request,
        session: SessionDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_secret: Annotated[str | None, Depends(_api_key_header)],
    ) -> ApiKey:
        secret = bearer.credentials if bearer is not None else header_secret
        key, state = lookup_key(session, secret)
        if key is None:
            raise _unauthorized(state)
        refusal = check(key)
        if refusal is not None:
            raise _forbidden(refusal)
        request.state.api_key = key
        return key

    return current_api_key


def require_scope(*scopes: Scope | str) -> Callable[..., ApiKey]:
    """A dependency returning the caller's key; the key must hold *every* listed scope.

    No scopes: any valid key. Missing or invalid key: 401 ``unauthorized`` (an expired one:
    ``key_expired``); valid key without a scope: 403 ``forbidden``. The key is also left on
    ``request.state.api_key`` (rate limits, logs).
    """
    required = frozenset(Scope(scope) for scope in scopes)

    def check(key: ApiKey) -> dict | None:
        missing = sorted(scope.value for scope in required if not key.has_scope(scope))
        return {"missing_scopes": missing} if missing else None

    return _key_dependency(check)


def require_any_scope(*scopes: Scope | str) -> Callable[..., ApiKey]:
    """Like ``require_scope``, but one of the listed scopes is enough (403 details: ``any_of_scopes``)."""
    allowed = sorted(Scope(scope).value for scope in scopes)
    if not allowed:
        raise ValueError("require_any_scope needs at least one scope")

    def check(key: ApiKey) -> dict | None:
        return None if any(key.has_scope(scope) for scope in allowed) else {"any_of_scopes": allowed}

    return _key_dependency(check)


ClientKey = Annotated[ApiKey, Depends(require_scope(Scope.CLIENT))]
ReviewerKey = Annotated[ApiKey, Depends(require_scope(Scope.REVIEWER))]
AdminKey = Annotated[ApiKey, Depends(require_scope(Scope.ADMIN))]
