"""Signed status-change callbacks: delivered to a real HTTP receiver on 127.0.0.1, retried, after commit only."""

# The fixtures come from the shared harness module: imported here, used as parameters.
# ruff: noqa: F401, F811

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ocr_service import webhook_targets, webhooks
from ocr_service.db import Database
from ocr_service.webhook_targets import CallbackPolicy
from tests.ocr_service.api_harness import BLURRED, CLEAN, harness, harness_settings

SECRET = "whsec-test-1"
# The receiver listens on 127.0.0.1 over plain http: both need the explicit allowances.
LOCAL = CallbackPolicy(allow_http_hosts=frozenset({"127.0.0.1"}), allow_private_targets=True)


@dataclass
class Receiver:
    """A local HTTP endpoint that answers with scripted statuses (then 200) and records what it got."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes, int]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} deliveries, got {len(self.received)}")

    def delivered(self) -> list[dict]:
        """The events the receiver accepted (2xx), parsed."""
        with self.lock:
            return [json.loads(body) for _headers, body, status in self.received if status < 300]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                status = state.statuses.pop(0) if state.statuses else 200
                state.received.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/ocr"
    yield state
    server.shutdown()
    server.server_close()


def assert_signed(headers: dict[str, str], body: bytes) -> None:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-ocr-signature"] == expected
    assert webhooks.verify_signature(body, SECRET, headers["x-ocr-signature"])
    assert abs(int(headers["x-ocr-timestamp"]) - time.time()) < 60
    assert headers["content-type"] == "application/json"


def test_a_delivery_is_retried_after_a_500_and_signed_over_the_exact_body(receiver):
    receiver.statuses = [500]
    event = webhooks.status_changed_event("v-1", "subject-1", "verified", [])
    body = json.dumps(event).encode()
    sender = webhooks.WebhookSender(max_retries=3, backoff_seconds=0.01, policy=LOCAL)
    delivered = sender.deliver(webhooks.WebhookDelivery(receiver.url, SECRET, body, event["id"]))
    assert delivered is True
    attempts = receiver.wait_for(2)
    assert [status for _h, _b, status in attempts] == [500, 200]
    for headers, received_body, _status in attempts:
        assert received_body == body
        assert_signed(headers, received_body)


def test_a_receiver_refusing_with_400_is_not_retried_and_a_failing_one_is_given_up(receiver):
    sender = webhooks.WebhookSender(max_retries=2, backoff_seconds=0.01, policy=LOCAL)
    receiver.statuses = [400]
    assert sender.deliver(webhooks.WebhookDelivery(receiver.url, SECRET, b"{}", "e-1")) is False
    assert len(receiver.wait_for(1)) == 1
    receiver.statuses = [503, 503, 503]
    assert sender.deliver(webhooks.WebhookDelivery(receiver.url, SECRET, b"{}", "e-2")) is False
    assert len(receiver.wait_for(4)) == 4  # 1 + 3 tries (the first and two retries)


def test_events_are_sent_after_commit_and_dropped_on_rollback(receiver, tmp_path: Path):
    database = Database(f"sqlite:///{tmp_path / 'hooks.db'}")
    sender = webhooks.configure_sender(max_retries=1, backoff_seconds=0.01, policy=LOCAL)
    try:
        with database.session() as session:
            rolled_back = webhooks.status_changed_event("v-2", "s", "retake", [])
            committed = webhooks.status_changed_event("v-3", "s", "verified", [])
            webhooks.queue_event(session, receiver.url, SECRET, rolled_back)
            session.rollback()
            webhooks.queue_event(session, receiver.url, SECRET, committed)
            time.sleep(0.1)
            assert receiver.received == []  # nothing before the commit
            session.commit()
        assert [e["verification_id"] for e in (json.loads(b) for _h, b, _s in receiver.wait_for(1))] == ["v-3"]
        time.sleep(0.1)
        assert len(receiver.received) == 1
    finally:
        sender.shutdown()
        database.dispose()


def test_nothing_is_sent_unsigned_when_no_secret_is_configured(receiver, capsys):
    sender = webhooks.WebhookSender(max_retries=2, backoff_seconds=0.01, policy=LOCAL)
    assert sender.deliver(webhooks.WebhookDelivery(receiver.url, "", b"{}", "e-unsigned")) is False
    time.sleep(0.1)
    assert receiver.received == []
    assert "no webhook secret is configured" in capsys.readouterr().err


def test_the_default_policy_refuses_the_local_receiver_at_delivery(receiver, capsys):
    sender = webhooks.WebhookSender(max_retries=2, backoff_seconds=0.01)
    assert sender.deliver(webhooks.WebhookDelivery(receiver.url, SECRET, b"{}", "e-local")) is False
    http_only = webhooks.WebhookSender(
        max_retries=2, backoff_seconds=0.01, policy=CallbackPolicy(allow_http_hosts=frozenset({"127.0.0.1"}))
    )
    assert http_only.deliver(webhooks.WebhookDelivery(receiver.url, SECRET, b"{}", "e-local-2")) is False
    time.sleep(0.1)
    assert receiver.received == []
    assert "webhook_refused" in capsys.readouterr().err


def test_a_name_rebound_to_a_private_address_after_the_check_is_refused(receiver, monkeypatch):
    port = receiver.url.split(":")[2].split("/")[0]
    url = f"http://hooks.example.com:{port}/hooks/ocr"
    policy = CallbackPolicy(allow_http_hosts=frozenset({"hooks.example.com"}))
    assert webhook_targets.check_callback_url(url, policy) == url  # fine when the key was created
    monkeypatch.setattr(webhook_targets, "_resolve", lambda host, port: ["127.0.0.1"])  # DNS now says loopback
    sender = webhooks.WebhookSender(max_retries=2, backoff_seconds=0.01, policy=policy)
    assert sender.deliver(webhooks.WebhookDelivery(url, SECRET, b"{}", "e-rebound")) is False
    time.sleep(0.1)
    assert receiver.received == []


def test_a_delivery_goes_to_the_checked_address_with_the_original_host_name(receiver, monkeypatch):
    port = receiver.url.split(":")[2].split("/")[0]
    policy = CallbackPolicy(allow_http_hosts=frozenset({"receiver.test"}), allow_private_targets=True)
    monkeypatch.setattr(webhook_targets, "_resolve", lambda host, port: ["127.0.0.1"])
    sender = webhooks.WebhookSender(max_retries=0, backoff_seconds=0.01, policy=policy)
    url = f"http://receiver.test:{port}/hooks/ocr"
    assert sender.deliver(webhooks.WebhookDelivery(url, SECRET, b"{}", "e-pinned")) is True
    ((headers, _body, _status),) = receiver.wait_for(1)
    assert headers["host"] == f"receiver.test:{port}"


# --- end to end: status changes of a real verification ------------------------------------------


@pytest.fixture
def harness_callback_url(receiver) -> str:
    receiver.statuses = [500]  # the first delivery fails: the event must be retried
    return receiver.url


@pytest.fixture
def harness_settings() -> dict:
    return {
        "webhook_secret": SECRET,
        "webhook_backoff_seconds": 0.05,
        "webhook_allow_http_hosts": "127.0.0.1",
        "webhook_allow_private_targets": True,
    }


def test_every_status_change_of_a_verification_reaches_the_client_signed(harness, receiver):
    created = harness.create("hooked-subject")
    assert harness.upload(created["id"], BLURRED).json()["status"] == "retake"
    assert harness.upload(created["id"], CLEAN).json()["status"] == "verified"
    received = receiver.wait_for(5)  # 4 changes, one of them delivered twice
    assert received[0][2] == 500
    for headers, body, _status in received:
        assert_signed(headers, body)
    events = sorted(receiver.delivered(), key=lambda e: e["at"])
    assert [e["status"] for e in events] == ["processing", "retake", "processing", "verified"]
    assert {e["type"] for e in events} == {"verification.status_changed"}
    assert {e["verification_id"] for e in events} == {created["id"]}
    assert {e["subject_id"] for e in events} == {"hooked-subject"}
    assert events[1]["reasons"] == ["blurry"]
    assert len({e["id"] for e in events}) == 4
    # another client's key has no callback: its verifications send nothing
    other = harness.create("quiet-subject", key="other")
    harness.upload(other["id"], BLURRED, key="other")
    time.sleep(0.2)
    assert len(receiver.received) == 5
