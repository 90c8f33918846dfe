"""Status changes of a verification, announced to whoever subscribed.

``verification.service`` announces every status change from inside the transaction that makes
it; the review queue (opens and closes cases) and webhooks (queue a signed callback for after
the commit) subscribe. The announcing side imports none of its listeners: each listener
subscribes when its module is imported, and ``ocr_service.subscribers.connect()`` imports them
all in every process that moves verifications (app, worker, CLI). Announcing with nobody
subscribed is an error, not a silent no-op: a verification in review with no case would wait
forever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ocr_service.config import Settings
    from ocr_service.verification.models import Verification, VerificationStatus


@dataclass(frozen=True)
class StatusChange:
    session: Session  # the transaction that moves the verification: listeners write in it
    verification: Verification
    before: VerificationStatus | None
    after: VerificationStatus
    settings: Settings


StatusHook = Callable[[StatusChange], None]
_hooks: list[StatusHook] = []


def subscribe(hook: StatusHook) -> StatusHook:
    """Call ``hook`` on every status change (once, however often it subscribes)."""
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


def unsubscribe(hook: StatusHook) -> None:
    if hook in _hooks:
        _hooks.remove(hook)


def announce(change: StatusChange) -> None:
    if not _hooks:
        raise RuntimeError("no listener of verification status changes: call ocr_service.subscribers.connect()")
    for hook in list(_hooks):
        hook(change)
