"""Console sessions and the sign-in form's CSRF token (issue 11, finding 5: bound to the server)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.requests import Request

from ocr_service.config import Settings
from ocr_service.review import sessions
from ocr_service.review.service import create_reviewer
from tests.ocr_service import test_review_console
from tests.ocr_service.api_harness import make_settings, reset_process_singletons
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


# --- Secure cookies behind a trusted proxy (issue 11) ---------------------------------------------


def request_from(peer: str, scheme: str = "http", forwarded_proto: str | None = None) -> Request:
    headers = [(b"x-forwarded-proto", forwarded_proto.encode())] if forwarded_proto else []
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": scheme,
        "path": "/review/queue",
        "query_string": b"",
        "headers": headers,
        "client": (peer, 50000),
        "server": ("ocr.example", 443 if scheme == "https" else 80),
    }
    return Request(scope)


def test_cookies_are_secure_when_the_request_itself_came_over_https():
    assert sessions.cookies_secure(request_from("203.0.113.9", "https"), Settings())
    assert not sessions.cookies_secure(request_from("203.0.113.9", "http"), Settings())


def test_a_forwarded_proto_counts_only_from_a_trusted_proxy():
    trusted = Settings(trusted_proxies="10.0.0.0/8, 192.0.2.7")
    # by default no proxy is trusted: anyone can send the header
    assert not sessions.cookies_secure(request_from("10.0.0.5", forwarded_proto="https"), Settings())
    assert sessions.cookies_secure(request_from("10.0.0.5", forwarded_proto="https"), trusted)
    assert sessions.cookies_secure(request_from("192.0.2.7", forwarded_proto="HTTPS"), trusted)
    assert not sessions.cookies_secure(request_from("203.0.113.9", forwarded_proto="https"), trusted)
    assert not sessions.cookies_secure(request_from("10.0.0.5", forwarded_proto="http"), trusted)
    assert not sessions.cookies_secure(request_from("testclient", forwarded_proto="https"), trusted)


def test_cookie_secure_setting_makes_every_console_cookie_secure():
    assert sessions.cookies_secure(request_from("203.0.113.9", "http"), Settings(cookie_secure=True))


@pytest.mark.parametrize("value", ["10.0.0.0/33", "not-an-address", "10.0.0.1/8/2"])
def test_a_malformed_trusted_proxy_entry_is_refused_at_start(value):
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings(trusted_proxies=value)


@pytest.fixture
def proxied_app(tmp_path, engine) -> Iterator:
    from ocr_service.app import create_app

    reset_process_singletons()
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'data' / 'ocr.db'}", trusted_proxies="10.0.0.0/8")
    app = create_app(settings)
    with app.state.db.session_scope() as session:
        create_reviewer(session, "alice", PASSWORD, "reviewer")
    try:
        yield app
    finally:
        reset_process_singletons()


def sign_in_through(client: TestClient, headers: dict[str, str]) -> list[str]:
    """Sign in; every Set-Cookie header of the sign-in page and of the sign-in answer."""
    page = client.get("/review/signin", headers=headers)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    client.cookies.set(sessions.SIGNIN_CSRF_COOKIE, page.cookies[sessions.SIGNIN_CSRF_COOKIE], path="/review")
    answer = client.post(
        "/review/signin",
        data={"username": "alice", "password": PASSWORD, "csrf": token},
        headers=headers,
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/review/queue", answer.text
    return page.headers.get_list("set-cookie") + answer.headers.get_list("set-cookie")


def test_console_cookies_are_secure_behind_a_trusted_proxy_that_says_https(proxied_app):
    with TestClient(proxied_app, client=("10.1.2.3", 40000)) as client:
        cookies = sign_in_through(client, {"X-Forwarded-Proto": "https"})
    assert any(c.startswith(sessions.COOKIE_NAME + "=") for c in cookies)
    assert all("; Secure" in c or "; secure" in c for c in cookies), cookies


def test_console_cookies_are_not_secure_when_an_untrusted_peer_says_https(proxied_app):
    with TestClient(proxied_app, client=("203.0.113.9", 40000)) as client:
        cookies = sign_in_through(client, {"X-Forwarded-Proto": "https"})
    assert any(c.startswith(sessions.COOKIE_NAME + "=") for c in cookies)
    assert not any("secure" in c.lower() for c in cookies), cookies
