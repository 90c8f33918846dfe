"""Console sessions and the sign-in form's CSRF token (issue 11, finding 5: bound to the server)."""

from __future__ import annotations

import re

from ocr_service.review import sessions
from tests.ocr_service import test_review_console
from tests.ocr_service.test_review_console import PASSWORD

console = test_review_console.console  # the same app and accounts as the console tests

KEY = b"k" * 32


def test_a_cookie_and_field_pair_the_caller_made_up_is_refused_with_a_chinese_page(console):
    console.client.cookies.set(sessions.SIGNIN_CSRF_COOKIE, "made-up-by-the-caller", path="/review")
    response = console.client.post(
        "/review/signin",
        data={"username": "alice", "password": PASSWORD, "csrf": "made-up-by-the-caller"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "页面已过期" in response.text
    assert sessions.COOKIE_NAME not in response.cookies


def test_a_fresh_token_from_the_sign_in_page_works(console):
    response = console.sign_in()
    assert response.status_code == 303 and response.headers["location"] == "/review/queue"


def test_a_token_signed_with_another_key_is_refused(console):
    forged = sessions.new_signin_token(b"x" * 32)
    console.client.cookies.set(sessions.SIGNIN_CSRF_COOKIE, forged, path="/review")
    response = console.client.post(
        "/review/signin", data={"username": "alice", "password": PASSWORD, "csrf": forged}, follow_redirects=False
    )
    assert response.status_code == 403


def test_the_refusal_page_carries_a_new_token_that_signs_in(console):
    console.client.cookies.set(sessions.SIGNIN_CSRF_COOKIE, "made-up", path="/review")
    refused = console.client.post(
        "/review/signin", data={"username": "alice", "password": PASSWORD, "csrf": "made-up"}, follow_redirects=False
    )
    token = re.search(r'name="csrf" value="([^"]+)"', refused.text).group(1)
    response = console.client.post(
        "/review/signin", data={"username": "alice", "password": PASSWORD, "csrf": token}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/review/queue"


def test_a_sign_in_token_is_valid_until_its_max_age_then_refused():
    token = sessions.new_signin_token(KEY, now=1_000_000.0)
    assert sessions.signin_token_valid(KEY, token, 3600, now=1_000_000.0 + 3599)
    assert not sessions.signin_token_valid(KEY, token, 3600, now=1_000_000.0 + 3601)
    assert not sessions.signin_token_valid(KEY, token, 3600, now=1_000_000.0 - 120)  # issued in the future


def test_a_tampered_or_malformed_sign_in_token_is_refused():
    token = sessions.new_signin_token(KEY, now=1_000_000.0)
    issued, nonce, signature = token.split(".")
    later = f"{int(issued) + 100}.{nonce}.{signature}"
    for bad in (later, "", "a.b", "x" * 2000, token + "x", None):
        assert not sessions.signin_token_valid(KEY, bad, 3600, now=1_000_000.0)
