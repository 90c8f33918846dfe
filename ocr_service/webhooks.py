"""Signed status-change callbacks to the client application.

When a verification changes status and the client key that created it has a
``callback_url``, the client gets::

    POST <callback_url>
    X-OCR-Timestamp: 1767225600
    X-OCR-Signature: sha256=<hex HMAC-SHA256 of the raw body with the webhook secret>
    {"id": "...", "type": "verification.status_changed", "verification_id": "...",
     "subject_id": "...", "status": "verified", "reasons": [], "at": "2026-01-01T00:00:00+00:00"}

The receiver verifies the signature over the exact bytes it received (see ``verify_signature``)
and uses ``id`` to drop duplicates: delivery is at-least-once.

Why events are queued on the session and sent after commit: a callback must never announce
a status that a rolled-back transaction did not store, and sending must never hold a
database transaction or an HTTP request open. The service appends events to
``session.info`` while it writes; a SQLAlchemy ``after_commit`` listener hands them to a
process-wide sender thread pool, ``after_rollback`` drops them. Retries back off
exponentially (``webhook_backoff_seconds * 2**n``) on connection errors, 408, 429 and 5xx;
other 4xx answers are the receiver refusing the event and are not retried.

Every delivery is signed: without a webhook secret it is refused and logged, never sent
unsigned. The destination is checked again at delivery, after DNS resolution, and the request
goes to the checked address (``webhook_targets``); a refused destination is not retried.
Events carry ids and status codes only, never names or numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import structlog
from sqlalchemy import event
from sqlalchemy.orm import Session

from ocr_service.verification import events
from ocr_service.verification.events import StatusChange
from ocr_service.webhook_targets import CallbackPolicy, CallbackUrlError, resolve_callback_target

log = structlog.get_logger(__name__)

EVENT_TYPE = "verification.status_changed"
SIGNATURE_HEADER = "X-OCR-Signature"
TIMESTAMP_HEADER = "X-OCR-Timestamp"
_PENDING = "ocr_pending_webhooks"


@dataclass(frozen=True)
class WebhookDelivery:
    url: str
    secret: str
    body: bytes  # serialised once, so the signature covers exactly what is sent
    event_id: str


def status_changed_event(
    verification_id: str, subject_id: str, status: str, reasons: list[str], at: datetime | None = None
) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": EVENT_TYPE,
        "verification_id": verification_id,
        "subject_id": subject_id,
        "status": status,
        "reasons": list(reasons),
        "at": (at or datetime.now(UTC)).isoformat(),
    }


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, secret: str, header: str) -> bool:
    """What a receiver does: constant-time comparison over the raw received bytes."""
    return hmac.compare_digest(sign(body, secret), header)


def queue_event(session: Session, url: str | None, secret: str, payload: dict) -> None:
    """Send ``payload`` to ``url`` once ``session`` commits (nothing when there is no URL)."""
    if not url:
        return
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    # the event belongs to a transaction: begin one if the session has none yet, so that a
    # rollback (which is a no-op without one) still drops it
    session.connection()
    session.info.setdefault(_PENDING, []).append(WebhookDelivery(url, secret, body, payload["id"]))


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    deliveries = session.info.pop(_PENDING, None)
    if deliveries:
        sender = get_sender()
        for delivery in deliveries:
            sender.submit(delivery)


@event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


class WebhookSender:
    """A small thread pool that delivers callbacks with retries, off every request path."""

    def __init__(
        self,
        max_retries: int = 5,
        backoff_seconds: float = 1.0,
        timeout: float = 5.0,
        policy: CallbackPolicy | None = None,
    ) -> None:
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.timeout = timeout
        self.policy = policy or CallbackPolicy()  # the strict default: https to public addresses only
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook")

    def submit(self, delivery: WebhookDelivery) -> None:
        self._pool.submit(self.deliver, delivery)

    def deliver(self, delivery: WebhookDelivery) -> bool:
        """POST with retries; True once the receiver answered 2xx, False when refused or given up."""
        if not delivery.secret:
            log.error(
                "webhook_refused",
                event_id=delivery.event_id,
                reason="no webhook secret is configured (OCR_WEBHOOK_SECRET); callbacks are never sent unsigned",
            )
            return False
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            for attempt in range(self.max_retries + 1):
                retry = True
                try:
                    # resolved and checked on every attempt: the name may be re-pointed between tries
                    target = resolve_callback_target(delivery.url, self.policy)
                except CallbackUrlError as exc:
                    log.error("webhook_refused", event_id=delivery.event_id, reason=str(exc))
                    return False
                except OSError as exc:
                    target = None
                    outcome = f"dns_error: {type(exc).__name__}"
                if target is not None:
                    timestamp = str(int(time.time()))
                    headers = {
                        "Content-Type": "application/json",
                        "Host": target.host_header,
                        TIMESTAMP_HEADER: timestamp,
                        SIGNATURE_HEADER: sign(delivery.body, delivery.secret),
                    }
                    try:
                        response = client.post(
                            target.url,
                            content=delivery.body,
                            headers=headers,
                            extensions={"sni_hostname": target.sni_hostname},
                        )
                        if response.is_success:
                            log.info("webhook_delivered", event_id=delivery.event_id, attempt=attempt + 1)
                            return True
                        retry = response.status_code in (408, 429) or response.status_code >= 500
                        outcome = f"http_{response.status_code}"
                    except httpx.HTTPError as exc:
                        outcome = type(exc).__name__
                log.warning("webhook_failed", event_id=delivery.event_id, attempt=attempt + 1, outcome=outcome)
                if not retry or attempt == self.max_retries:
                    break
                time.sleep(self.backoff_seconds * 2**attempt)
        log.error("webhook_gave_up", event_id=delivery.event_id)
        return False

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


_sender: WebhookSender | None = None
_sender_lock = threading.Lock()


def get_sender() -> WebhookSender:
    """The process-wide sender, configured from the settings on first use."""
    global _sender
    with _sender_lock:
        if _sender is None:
            from ocr_service.config import get_settings

            settings = get_settings()
            _sender = WebhookSender(
                settings.webhook_max_retries,
                settings.webhook_backoff_seconds,
                policy=CallbackPolicy.from_settings(settings),
            )
        return _sender


def configure_sender(max_retries: int, backoff_seconds: float, policy: CallbackPolicy | None = None) -> WebhookSender:
    """Replace the process-wide sender (app start-up; tests use a short backoff and a local receiver)."""
    global _sender
    with _sender_lock:
        _sender = WebhookSender(max_retries, backoff_seconds, policy=policy)
        return _sender


def queue_status_webhook(change: StatusChange) -> None:
    """Subscribed to ``verification.events``: the client's callback for every status change."""
    from ocr_service.verification.models import ApiKey

    verification = change.verification
    client = change.session.get(ApiKey, verification.client_key_id)
    if client is None or not client.callback_url:
        return
    event = status_changed_event(
        verification.id, verification.subject_id, change.after.value, list(verification.decision_reasons or [])
    )
    queue_event(change.session, client.callback_url, change.settings.webhook_secret, event)


events.subscribe(queue_status_webhook)
