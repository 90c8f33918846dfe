"""Console sign-in sessions: a signed cookie (HMAC-SHA256), its CSRF token and the idle timeout.

``itsdangerous`` is not a dependency, so the cookie is ``base64url(json payload) . base64url(hmac)``
signed with a key derived (HKDF) from the service's master key under its own label: the
encryption and index keys are never reused, and rotating the master key signs everyone out.
The payload holds the reviewer id, the reviewer's ``session_version`` (sign-out bumps it, so an
old cookie dies server-side too), the CSRF token of the session and the time of the last request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ocr_service.config import Settings
from ocr_service.crypto import load_or_create_key

COOKIE_NAME = "review_session"
SIGNIN_CSRF_COOKIE = "review_signin_csrf"
_LABEL = b"ocr-service/v1/review-session-hmac-sha256"


def session_key(settings: Settings) -> bytes:
    master = load_or_create_key(settings)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LABEL).derive(master)


@dataclass(frozen=True)
class ConsoleSession:
    reviewer_id: str
    version: int
    csrf: str
    last_seen: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_session(reviewer_id: str, version: int) -> ConsoleSession:
    return ConsoleSession(reviewer_id, version, secrets.token_urlsafe(24), time.time())


def encode(key: bytes, session: ConsoleSession) -> str:
    payload = json.dumps(
        {"r": session.reviewer_id, "v": session.version, "c": session.csrf, "t": round(session.last_seen, 3)},
        separators=(",", ":"),
    ).encode()
    body = _b64(payload)
    return body + "." + _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def decode(key: bytes, value: str | None, idle_seconds: float, now: float | None = None) -> ConsoleSession | None:
    """The session in a cookie, or None: missing, forged, malformed or idle for too long."""
    if not value or "." not in value or len(value) > 1024:
        return None
    body, signature = value.rsplit(".", 1)
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        data = json.loads(_unb64(body))
        session = ConsoleSession(str(data["r"]), int(data["v"]), str(data["c"]), float(data["t"]))
    except (ValueError, KeyError, TypeError):
        return None
    if (now if now is not None else time.time()) - session.last_seen > idle_seconds:
        return None
    return session


def touched(session: ConsoleSession) -> ConsoleSession:
    """The same session, seen now (the idle timeout slides with every request)."""
    return ConsoleSession(session.reviewer_id, session.version, session.csrf, time.time())


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
