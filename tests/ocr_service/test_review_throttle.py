"""Console sign-in throttling (issue 11, finding 5): per account and per address, back-off, lockout, audit."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from ocr_service.review.models import AuditEntry
from ocr_service.review.throttle import SignInThrottle
from tests.ocr_service import test_review_console
from tests.ocr_service.test_review_console import PASSWORD, Console

console = test_review_console.console  # the same app, accounts and keys as the console tests


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _sign_in(client: TestClient, username: str, password: str):
    page = client.get("/review/signin")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/review/signin", data={"username": username, "password": password, "csrf": token}, follow_redirects=False
    )


def _clocked(console: Console) -> FakeClock:
    clock = FakeClock()
    console.app.state.signin_throttle = SignInThrottle(console.app.state.settings, clock=clock)
    return clock


def test_forty_wrong_passwords_lock_the_account_so_the_right_one_is_refused_with_a_429_page(console):
    _clocked(console)
    answers = [console.sign_in(password=f"wrong password {i}").status_code for i in range(40)]
    assert answers[:4] == [303] * 4  # the first failures go back to the form, the fifth locks
    assert set(answers[4:]) == {429}
    locked = console.sign_in()
    assert locked.status_code == 429
    assert "登录尝试过多" in locked.text and "后再试" in locked.text
    assert int(locked.headers["Retry-After"]) > 0
    assert "review_session" not in locked.cookies


def test_an_unknown_account_is_locked_the_same_way_so_the_answer_does_not_reveal_it_exists(console):
    _clocked(console)
    for i in range(5):
        console.sign_in(username="nobody", password=f"wrong password {i}")
    known = [console.sign_in(password=f"x{i}") for i in range(5)]
    unknown = console.sign_in(username="nobody", password="wrong again")
    assert known[-1].status_code == unknown.status_code == 429
    flash = re.compile(r'<div class="flash"[^>]*>(.*?)</div>', re.S)
    assert flash.search(known[-1].text).group(1) == flash.search(unknown.text).group(1)


def test_another_account_from_another_address_is_not_locked(console):
    _clocked(console)
    for i in range(40):
        console.sign_in(password=f"wrong password {i}")
    with TestClient(console.app, client=("198.51.100.7", 40000)) as other:
        response = _sign_in(other, "root", PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/review/queue"


def test_an_address_trying_many_accounts_is_locked_across_accounts(console):
    settings = console.app.state.settings
    _clocked(console)
    per_address = settings.review_signin_max_failures_per_address
    for i in range(per_address):
        console.sign_in(username=f"guess{i}", password="wrong password")
    assert console.sign_in(username="root").status_code == 429  # the right password, from that address
    with TestClient(console.app, client=("198.51.100.8", 40000)) as other:
        assert _sign_in(other, "root", PASSWORD).status_code == 303


def test_the_lock_expires_and_grows_after_each_lockout(console):
    clock = _clocked(console)
    first = console.app.state.settings.review_signin_lockout_seconds
    for i in range(5):
        console.sign_in(password=f"wrong password {i}")
    assert console.sign_in().status_code == 429
    clock.now += first + 1
    for i in range(4):  # the lock ended; five more failures lock it again, for twice as long
        assert console.sign_in(password=f"wrong again {i}").status_code == 303
    assert console.sign_in(password="wrong again 4").status_code == 429
    clock.now += first + 1
    assert console.sign_in().status_code == 429
    clock.now += first
    response = console.sign_in()
    assert response.status_code == 303 and response.headers["location"] == "/review/queue"


def test_each_failure_and_each_lockout_is_audited_without_the_password(console):
    _clocked(console)
    for i in range(6):
        console.sign_in(password=f"secret guess {i}")
    with console.app.state.db.session_scope() as session:
        entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        actions = [entry.action for entry in entries]
        dumped = repr([(entry.actor, entry.details) for entry in entries])
    assert actions.count("signin_failed") == 5
    assert actions.count("signin_locked") == 1
    assert "secret guess" not in dumped
    assert "alice" in dumped and "testclient" in dumped
