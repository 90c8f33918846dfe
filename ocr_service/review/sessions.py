"""Console sign-in sessions: a signed cookie (HMAC-SHA256), its CSRF token and the idle timeout.

``itsdangerous`` is not a dependency, so the cookie is ``base64url(json payload) . base64url(hmac)``
signed with a key derived (HKDF) from the service's master key under its own label: the
encryption and index keys are never reused, and rotating the master key signs everyone out.
The payload holds the reviewer id, the reviewer's ``session_version`` (sign-out bumps it, so an
old cookie dies server-side too), the CSRF token of the session and the time of the last request.

Cookies are ``Secure`` when the request came over https: directly, or by the word of a proxy in
``OCR_TRUSTED_PROXIES`` (its ``X-Forwarded-Proto``), or always with ``OCR_COOKIE_SECURE=true``.

The sign-in form (no session yet) carries ``issued-at . nonce . hmac`` under a key of its own
label, in the form and in a cookie: a token the caller invents, or one older than
``review_signin_token_max_age_minutes``, is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.requests import Request

from ocr_service.config import Settings
from ocr_service.crypto import load_or_create_key

COOKIE_NAME = "review_session"
SIGNIN_CSRF_COOKIE = "review_signin_csrf"
_LABEL = b"ocr-service/v1/review-session-hmac-sha256"
_SIGNIN_LABEL = b"ocr-service/v1/review-signin-csrf-hmac-sha256"
# a sign-in token stamped this far in the future still passes (clocks of several web processes)
_CLOCK_SKEW_SECONDS = 60


def session_key(settings: Settings) -> bytes:
    master = load_or_create_key(settings)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LABEL).derive(master)


def signin_key(settings: Settings) -> bytes:
    master = load_or_create_key(settings)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SIGNIN_LABEL).derive(master)


def cookies_secure(request: Request, settings: Settings) -> bool:
    """Whether the console's cookies get the ``Secure`` flag on this request.

    ``X-Forwarded-Proto`` is anyone's to send, so it counts only when the connecting peer is a
    trusted proxy; its last value is the one that proxy set (earlier ones came from further out).
    """
    if settings.cookie_secure or request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto")
    if not forwarded or request.client is None:
        return False
    try:
        peer = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    if not any(peer in network for network in settings.trusted_proxy_networks()):
        return False
    return forwarded.split(",")[-1].strip().lower() == "https"


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


def _signin_signature(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, b"signin:" + body.encode(), hashlib.sha256).digest())


def new_signin_token(key: bytes, now: float | None = None) -> str:
    """A sign-in form's CSRF token: when it was issued, a nonce, and the server's signature of both."""
    body = f"{int(now if now is not None else time.time())}.{secrets.token_urlsafe(16)}"
    return body + "." + _signin_signature(key, body)


def signin_token_valid(key: bytes, token: str | None, max_age_seconds: float, now: float | None = None) -> bool:
    """True for a token this server signed no longer than ``max_age_seconds`` ago."""
    if not token or len(token) > 256 or token.count(".") != 2:
        return False
    body, signature = token.rsplit(".", 1)
    if not hmac.compare_digest(_signin_signature(key, body).encode(), signature.encode()):
        return False
    try:
        issued = int(body.split(".", 1)[0])
    except ValueError:
        return False
    age = (now if now is not None else time.time()) - issued
    return -_CLOCK_SKEW_SECONDS <= age <= max_age_seconds
