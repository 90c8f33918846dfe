"""Who may call what: every route of the app × every kind of caller, against one explicit table.

``ROUTE_ACCESS`` names, for each (method, path) of the app, who may call it. The test fails when
the app has a route the table does not list (or the table one the app no longer has), when a key
kind gets past a route it should not (or is refused by one it should pass), and when README's
scope table says something else than this one.

Statuses asserted: no key (or an expired or revoked one) → 401; a key without the route's scope
→ 403 ``forbidden``; a key with it → anything but 401/403 (404 for the made-up ids, 422 for the
missing bodies: past the gate is all that is checked). Public routes answer every caller the same
way; the console (``/review/...``, cookie sessions) and the capture page (``/capture/{token}``, the
link's token) ignore API keys entirely.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from ocr_service.auth import Scope, create_api_key, revoke_api_key
from tests.ocr_service.api_harness import make_settings, reset_process_singletons

README = Path(__file__).resolve().parents[2] / "README.md"


class Access(StrEnum):
    PUBLIC = "public"
    CONSOLE = "console session"
    ANY_KEY = "any key"
    CLIENT = "client"
    REVIEWER = "reviewer"
    ADMIN = "admin"
    UNIT_REVIEW = "unit_reviewer or admin"
    CAPTURE = "capture token"  # the capture link's token in the path is the credential; keys count for nothing


# The scopes that open each kind of key route (any one of them is enough).
OPENED_BY: dict[Access, frozenset[str] | None] = {
    Access.ANY_KEY: None,  # every valid key
    Access.CLIENT: frozenset({Scope.CLIENT}),
    Access.REVIEWER: frozenset({Scope.REVIEWER}),
    Access.ADMIN: frozenset({Scope.ADMIN}),
    Access.UNIT_REVIEW: frozenset({Scope.UNIT_REVIEWER, Scope.ADMIN}),
}

ROUTE_ACCESS: dict[tuple[str, str], Access] = {
    # the applicant side
    ("POST", "/v1/quality"): Access.CLIENT,
    ("POST", "/v1/verifications"): Access.CLIENT,
    ("GET", "/v1/verifications/{verification_id}"): Access.CLIENT,
    ("POST", "/v1/verifications/{verification_id}/images"): Access.CLIENT,
    ("POST", "/v1/verifications/{verification_id}/withdraw"): Access.CLIENT,
    ("PUT", "/v1/verifications/{verification_id}/claim"): Access.CLIENT,
    ("GET", "/v1/subjects/{subject_id}/identity"): Access.CLIENT,
    ("POST", "/v1/verifications/{verification_id}/capture-sessions"): Access.CLIENT,
    ("DELETE", "/v1/verifications/{verification_id}/capture-sessions/{capture_session_id}"): Access.CLIENT,
    # the hosted capture page a capture link opens, and the calls it makes
    ("GET", "/capture/{token}"): Access.CAPTURE,
    ("POST", "/capture/{token}/quality"): Access.CAPTURE,
    ("POST", "/capture/{token}/images"): Access.CAPTURE,
    ("GET", "/capture/{token}/status"): Access.CAPTURE,
    # identity review over JSON
    ("GET", "/v1/review/cases"): Access.REVIEWER,
    ("POST", "/v1/review/cases/claim"): Access.REVIEWER,
    ("GET", "/v1/review/cases/{case_id}"): Access.REVIEWER,
    ("GET", "/v1/review/cases/{case_id}/images/{image_id}"): Access.REVIEWER,
    ("GET", "/v1/review/cases/{case_id}/mrz"): Access.REVIEWER,
    ("POST", "/v1/review/cases/{case_id}/lease"): Access.REVIEWER,
    ("POST", "/v1/review/cases/{case_id}/release"): Access.REVIEWER,
    ("POST", "/v1/review/cases/{case_id}/approve"): Access.REVIEWER,
    ("POST", "/v1/review/cases/{case_id}/confirm"): Access.REVIEWER,
    ("POST", "/v1/review/cases/{case_id}/reject"): Access.REVIEWER,
    ("POST", "/v1/review/cases/{case_id}/retake"): Access.REVIEWER,
    ("POST", "/v1/review/cases/{case_id}/assign"): Access.ADMIN,
    ("GET", "/v1/review/stats"): Access.REVIEWER,
    ("GET", "/v1/review/audit/verify"): Access.ADMIN,
    # batch re-verification
    ("POST", "/v1/jobs/reverify"): Access.ADMIN,
    ("GET", "/v1/jobs/{job_id}"): Access.ADMIN,
    ("POST", "/v1/jobs/{job_id}/cancel"): Access.ADMIN,
    # declarations: the applicant side, units, and the units' review
    ("GET", "/v1/declarations/verify/{code}"): Access.ANY_KEY,
    ("POST", "/v1/declarations/admin/work-units"): Access.ADMIN,
    ("POST", "/v1/declarations/admin/projects"): Access.ADMIN,
    ("PATCH", "/v1/declarations/admin/projects/{code}"): Access.ADMIN,
    ("GET", "/v1/declarations/projects"): Access.ANY_KEY,
    ("GET", "/v1/declarations/work-units"): Access.CLIENT,
    # a unit not yet registered asks to be; an admin approves (the unit is created) or rejects
    ("POST", "/v1/declarations/work-unit-requests"): Access.CLIENT,
    ("GET", "/v1/declarations/work-unit-requests/{request_id}"): Access.CLIENT,
    ("GET", "/v1/declarations/admin/work-unit-requests"): Access.ADMIN,
    ("POST", "/v1/declarations/admin/work-unit-requests/{request_id}/approve"): Access.ADMIN,
    ("POST", "/v1/declarations/admin/work-unit-requests/{request_id}/reject"): Access.ADMIN,
    ("GET", "/v1/declarations/instructions"): Access.CLIENT,
    ("PUT", "/v1/declarations/work-unit-binding"): Access.CLIENT,
    ("GET", "/v1/declarations/work-unit-binding"): Access.CLIENT,
    ("DELETE", "/v1/declarations/work-unit-binding"): Access.CLIENT,
    ("GET", "/v1/declarations/review"): Access.UNIT_REVIEW,
    ("GET", "/v1/declarations/review/{declaration_id}"): Access.UNIT_REVIEW,
    ("GET", "/v1/declarations/review/{declaration_id}/attachments/{attachment_id}"): Access.UNIT_REVIEW,
    ("POST", "/v1/declarations/review/{declaration_id}/start"): Access.UNIT_REVIEW,
    ("POST", "/v1/declarations/review/{declaration_id}/approve"): Access.UNIT_REVIEW,
    ("POST", "/v1/declarations/review/{declaration_id}/return"): Access.UNIT_REVIEW,
    ("POST", "/v1/declarations/review/{declaration_id}/allow-modification"): Access.UNIT_REVIEW,
    ("POST", "/v1/declarations/review/{declaration_id}/confirm-identity"): Access.UNIT_REVIEW,
    ("POST", "/v1/declarations"): Access.CLIENT,
    ("GET", "/v1/declarations"): Access.CLIENT,
    ("GET", "/v1/declarations/{declaration_id}"): Access.CLIENT,
    ("PUT", "/v1/declarations/{declaration_id}/form"): Access.CLIENT,
    ("POST", "/v1/declarations/{declaration_id}/attachments"): Access.CLIENT,
    ("GET", "/v1/declarations/{declaration_id}/attachments/{attachment_id}"): Access.CLIENT,
    ("POST", "/v1/declarations/{declaration_id}/acknowledge-instructions"): Access.CLIENT,
    ("POST", "/v1/declarations/{declaration_id}/confirm"): Access.CLIENT,
    ("POST", "/v1/declarations/{declaration_id}/submit"): Access.CLIENT,
    ("POST", "/v1/declarations/{declaration_id}/withdraw"): Access.CLIENT,
    ("GET", "/v1/declarations/{declaration_id}/notice.pdf"): Access.CLIENT,
    # operations
    ("GET", "/healthz"): Access.PUBLIC,
    ("GET", "/readyz"): Access.PUBLIC,
    ("GET", "/metrics"): Access.PUBLIC,
    # the page a printed notice's QR code opens (masked identity and state; rate-limited per address)
    ("GET", "/check/{code}"): Access.PUBLIC,
    # the reviewers' console: a signed session cookie, never an API key
    ("GET", "/review/"): Access.CONSOLE,
    ("GET", "/review/signin"): Access.CONSOLE,
    ("POST", "/review/signin"): Access.CONSOLE,
    ("POST", "/review/signout"): Access.CONSOLE,
    ("GET", "/review/queue"): Access.CONSOLE,
    ("POST", "/review/claim"): Access.CONSOLE,
    ("GET", "/review/cases/{case_id}"): Access.CONSOLE,
    ("GET", "/review/cases/{case_id}/images/{image_id}"): Access.CONSOLE,
    ("GET", "/review/cases/{case_id}/images/{image_id}/card"): Access.CONSOLE,
    ("POST", "/review/cases/{case_id}/lease"): Access.CONSOLE,
    ("POST", "/review/cases/{case_id}/release"): Access.CONSOLE,
    ("POST", "/review/cases/{case_id}/approve"): Access.CONSOLE,
    ("POST", "/review/cases/{case_id}/confirm"): Access.CONSOLE,
    ("POST", "/review/cases/{case_id}/refuse"): Access.CONSOLE,
    ("POST", "/review/cases/{case_id}/reject"): Access.CONSOLE,
    ("POST", "/review/cases/{case_id}/retake"): Access.CONSOLE,
    ("POST", "/review/cases/{case_id}/assign"): Access.CONSOLE,
    ("GET", "/review/admin/reviewers"): Access.CONSOLE,
    ("POST", "/review/admin/reviewers"): Access.CONSOLE,
    ("POST", "/review/admin/reviewers/{reviewer_id}/active"): Access.CONSOLE,
    ("GET", "/review/admin/audit"): Access.CONSOLE,
    ("GET", "/review/admin/stats"): Access.CONSOLE,
}

# Every kind of key a deployment hands out, by its scopes.
KEY_KINDS: dict[str, tuple[str, ...]] = {
    "client": ("client",),
    "client+identity:full": ("client", "identity:full"),
    "identity:full": ("identity:full",),
    "reviewer": ("reviewer",),
    "reviewer+identity:full": ("reviewer", "identity:full"),
    "admin": ("admin",),
    "unit_reviewer": ("unit_reviewer",),
}
# Callers that hold no usable key: each must get 401 from every key route.
NO_KEY_KINDS = ("none", "expired client", "revoked admin")

SOME_ID = "00000000-0000-4000-8000-000000000000"


def app_routes(app) -> set[tuple[str, str]]:
    found = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute):
            found |= {(method, route.path) for method in route.methods}
    return found


@pytest.fixture(scope="module")
def matrix_app(tmp_path_factory, engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    from ocr_service.app import create_app

    tmp_path = tmp_path_factory.mktemp("scope-matrix")
    reset_process_singletons()
    # every route is called about ten times: no per-address limit may turn an answer into 429
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'data' / 'ocr.db'}", public_check_per_minute=10_000)
    app = create_app(settings)
    with app.state.db.session_scope() as session:
        secrets = {kind: create_api_key(session, kind, scopes)[1] for kind, scopes in KEY_KINDS.items()}
        expired, secrets["expired client"] = create_api_key(session, "expired", ["client"], expires_in_days=1)
        expired.expires_at = expired.created_at - timedelta(seconds=1)
        revoked, secrets["revoked admin"] = create_api_key(session, "revoked", ["admin"])
        revoke_api_key(session, revoked.id)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, secrets
    finally:
        reset_process_singletons()


def test_every_route_of_the_app_has_an_entry_in_the_table_and_every_entry_a_route(matrix_app):
    client, _ = matrix_app
    routes = app_routes(client.app)
    assert routes - set(ROUTE_ACCESS) == set(), "routes without an entry in ROUTE_ACCESS (and README)"
    assert set(ROUTE_ACCESS) - routes == set(), "ROUTE_ACCESS lists routes the app no longer has"


def call(client: TestClient, method: str, path: str, secret: str | None):
    url = re.sub(r"\{code\}", "ABCDEFGH", re.sub(r"\{(?!code\})[^}]+\}", SOME_ID, path))
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return client.request(method, url, headers=headers, follow_redirects=False)


@pytest.mark.parametrize(("method", "path"), sorted(ROUTE_ACCESS), ids=lambda value: value)
def test_each_key_kind_gets_the_answer_the_table_gives_it(matrix_app, method, path):
    client, secrets = matrix_app
    access = ROUTE_ACCESS[(method, path)]
    anonymous = call(client, method, path, None)
    assert anonymous.status_code < 500, anonymous.text
    results: dict[str, int] = {}
    for kind in (*KEY_KINDS, *NO_KEY_KINDS[1:]):
        response = call(client, method, path, secrets[kind])
        assert response.status_code < 500, (kind, response.text)
        results[kind] = response.status_code
        if access in (Access.PUBLIC, Access.CONSOLE, Access.CAPTURE):
            # a key changes nothing here: public for everyone, the console only by its session,
            # the capture page only by its link's token
            assert response.status_code == anonymous.status_code, (kind, response.text)
            continue
        if kind in NO_KEY_KINDS:
            assert response.status_code == 401, (kind, response.text)
            expected_code = "key_expired" if kind == "expired client" else "unauthorized"
            assert response.json()["error"]["code"] == expected_code
            continue
        opened_by = OPENED_BY[access]
        if opened_by is None or opened_by & set(KEY_KINDS[kind]):
            assert response.status_code not in (401, 403), (kind, response.text)
        else:
            assert response.status_code == 403, (kind, response.text)
            assert response.json()["error"]["code"] == "forbidden"
    if access is Access.PUBLIC:
        assert anonymous.status_code not in (401, 403)
    elif access is Access.CONSOLE:
        assert anonymous.status_code != 401
    elif access is Access.CAPTURE:
        # a made-up token opens nothing (422: a POST without its photo is refused before the token is looked at)
        assert anonymous.status_code in (404, 422), anonymous.text
    else:
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"


def readme_scope_table() -> dict[tuple[str, str], str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("<!-- scope-table:start -->", 1)[1].split("<!-- scope-table:end -->", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in {"GET", "POST", "PUT", "DELETE", "PATCH"}:
            rows[(cells[0], cells[1])] = cells[2]
    return rows


def test_the_readme_scope_table_says_what_this_table_says():
    assert readme_scope_table() == {route: access.value for route, access in ROUTE_ACCESS.items()}


def render_readme_table() -> str:
    """The README's table rows, in the table's order (print it after changing ROUTE_ACCESS)."""
    lines = ["| method | path | who may call it |", "|---|---|---|"]
    lines += [f"| {method} | `{path}` | {access.value} |" for (method, path), access in ROUTE_ACCESS.items()]
    return "\n".join(lines)
