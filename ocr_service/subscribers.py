"""Wires the listeners of verification status changes into this process (``verification.events``).

Importing a listener's module subscribes it. Every entry point that can move a verification
calls ``connect()``: the app factory, the Celery worker, the CLI, the test harness.
"""

from __future__ import annotations


def connect() -> None:
    """Subscribe the review queue and the webhooks (idempotent)."""
    import ocr_service.review.service
    import ocr_service.webhooks  # noqa: F401  queues the client's status callback
