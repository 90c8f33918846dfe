"""ocr_service.auth: keys are issued once, stored hashed, revocable, and scopes are enforced on routes."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from typer.testing import CliRunner

from ocr_service.auth import (
    AdminKey,
    ApiKey,
    ClientKey,
    KeyState,
    Scope,
    authenticate,
    create_api_key,
    lookup_key,
    require_any_scope,
    require_scope,
    revoke_api_key,
    rotate_api_key,
)
from ocr_service.db import Database, alembic_config, session_scope
from ocr_service.errors import install_error_handlers


def test_a_created_key_authenticates_and_carries_its_scopes(database: Database):
    with session_scope(database) as session:
        key, secret = create_api_key(session, "mini-program", [Scope.CLIENT, "identity:full"], "https://cb.example/")
    with database.session() as session:
        found = authenticate(session, secret)
        assert found is not None and found.id == key.id
        assert found.scope_set == {"client", "identity:full"}
        assert found.has_scope(Scope.IDENTITY_FULL) and not found.has_scope(Scope.ADMIN)
        assert found.callback_url == "https://cb.example/"


def test_the_secret_is_a_prefixed_random_token_shown_only_by_its_first_characters(database: Database):
    with session_scope(database) as session:
        key, secret = create_api_key(session, "k", ["client"])
        _, other_secret = create_api_key(session, "k2", ["client"])
    assert secret.startswith("ocr_") and len(secret) == 4 + 43
    assert secret != other_secret
    assert key.key_prefix == secret[:8]


def test_only_the_hash_of_the_secret_is_stored(database: Database):
    with session_scope(database) as session:
        key, secret = create_api_key(session, "k", ["client"])
    with database.engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": key.id}).mappings().one()
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in str(value) for value in row.values())


def test_a_revoked_key_no_longer_authenticates(database: Database):
    with session_scope(database) as session:
        key, secret = create_api_key(session, "k", ["client"])
    with session_scope(database) as session:
        revoked = revoke_api_key(session, key.id)
        first_revocation = revoked.revoked_at
    with session_scope(database) as session:
        assert authenticate(session, secret) is None
        assert revoke_api_key(session, key.id).revoked_at == first_revocation
        assert revoke_api_key(session, "no-such-key") is None


@pytest.mark.parametrize("secret", ["", None, "ocr_wrong", "x" * 10_000])
def test_unknown_or_malformed_secrets_do_not_authenticate(database: Database, secret):
    with session_scope(database) as session:
        create_api_key(session, "k", ["client"])
        assert authenticate(session, secret) is None


def test_a_work_unit_key_gets_the_unit_reviewer_scope_and_not_the_identity_review_one(database: Database):
    from ocr_service.declaration.service import register_work_unit

    with session_scope(database) as session:
        unit, secret = register_work_unit(session, "江岸区人民医院", "K7M2P9QX")
        key = authenticate(session, secret)
        assert key.id == unit.reviewer_key_id
        assert key.scope_set == {Scope.UNIT_REVIEWER}


def test_the_migration_narrows_existing_work_unit_keys_and_leaves_other_reviewer_keys(database_url: str):
    from alembic import command

    database = Database(database_url)
    unit_key_id, tool_key_id = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
    try:
        with database.engine.connect() as connection:
            command.upgrade(alembic_config(connection), "0007_review_assignment")
            # rows in the 0007 schema (the models describe the head schema, so plain SQL here)
            insert_key = text(
                "INSERT INTO api_keys (id, name, key_prefix, key_hash, scopes, created_at)"
                " VALUES (:id, :name, 'ocr_xxxx', :hash, :scopes, CURRENT_TIMESTAMP)"
            )
            connection.execute(
                insert_key,
                {"id": unit_key_id, "name": "work unit: 江岸区人民医院", "hash": "a" * 64, "scopes": "reviewer"},
            )
            connection.execute(
                insert_key,
                {"id": tool_key_id, "name": "review tool", "hash": "b" * 64, "scopes": "reviewer,identity:full"},
            )
            connection.execute(
                text(
                    "INSERT INTO work_units (id, name, confirmation_code_hash, reviewer_key_id, created_at)"
                    " VALUES ('00000000-0000-4000-8000-000000000003', '江岸区人民医院', 'x', :key, CURRENT_TIMESTAMP)"
                ),
                {"key": unit_key_id},
            )
            connection.commit()
        database.upgrade()
        with session_scope(database) as session:
            assert session.get(ApiKey, unit_key_id).scope_set == {"unit_reviewer"}
            assert session.get(ApiKey, tool_key_id).scope_set == {"reviewer", "identity:full"}
    finally:
        database.dispose()


def test_unknown_scopes_and_empty_names_are_refused(database: Database):
    with session_scope(database) as session:
        with pytest.raises(ValueError, match="unknown scope"):
            create_api_key(session, "k", ["superuser"])
        with pytest.raises(ValueError, match="at least one scope"):
            create_api_key(session, "k", [])
        with pytest.raises(ValueError, match="name"):
            create_api_key(session, "  ", ["client"])


# --- the FastAPI dependencies --------------------------------------------------------------------

# several scopes: the key must hold all of them
FullIdentityKey = Annotated[ApiKey, Depends(require_scope(Scope.CLIENT, Scope.IDENTITY_FULL))]


@pytest.fixture
def api(database: Database):
    """A tiny app with the service's error handlers and one route per scope rule, plus its keys."""
    app = FastAPI()
    install_error_handlers(app)
    app.state.db = database

    @app.get("/client")
    def client_route(key: ClientKey) -> dict:
        return {"key_id": key.id}

    @app.get("/admin")
    def admin_route(key: AdminKey) -> dict:
        return {"key_id": key.id}

    @app.get("/full-identity")
    def full_identity_route(key: FullIdentityKey) -> dict:
        return {"key_id": key.id}

    with session_scope(database) as session:
        secrets = {
            "client": create_api_key(session, "client", ["client"])[1],
            "full": create_api_key(session, "full", ["client", "identity:full"])[1],
            "admin": create_api_key(session, "admin", ["admin"])[1],
            "revoked": create_api_key(session, "revoked", ["client", "admin"])[1],
        }
        revoke_api_key(session, authenticate(session, secrets["revoked"]).id)
    return TestClient(app), secrets


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def test_a_request_without_a_key_gets_401_in_the_service_error_shape(api):
    client, _ = api
    response = client.get("/client")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.json()["error"]["message_zh"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_valid_key_is_accepted_as_bearer_token_or_x_api_key_header(api):
    client, secrets = api
    assert client.get("/client", headers=bearer(secrets["client"])).status_code == 200
    assert client.get("/client", headers={"X-API-Key": secrets["client"]}).status_code == 200


def test_a_wrong_or_revoked_key_gets_401(api):
    client, secrets = api
    assert client.get("/client", headers=bearer("ocr_" + "A" * 43)).status_code == 401
    assert client.get("/client", headers=bearer(secrets["revoked"])).status_code == 401
    assert client.get("/admin", headers={"X-API-Key": secrets["revoked"]}).status_code == 401


def test_a_key_without_the_route_scope_gets_403_naming_the_missing_scope(api):
    client, secrets = api
    response = client.get("/admin", headers=bearer(secrets["client"]))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert response.json()["error"]["details"] == {"missing_scopes": ["admin"]}
    # admin is not a superset of client
    assert client.get("/client", headers=bearer(secrets["admin"])).status_code == 403


def test_a_route_needing_several_scopes_wants_all_of_them(api):
    client, secrets = api
    assert client.get("/full-identity", headers=bearer(secrets["client"])).status_code == 403
    response = client.get("/full-identity", headers=bearer(secrets["full"]))
    assert response.status_code == 200


def test_the_openapi_document_declares_both_ways_to_send_a_key(api):
    client, _ = api
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schemes)


# --- the keys commands ---------------------------------------------------------------------------


def test_keys_create_prints_the_secret_once_and_keys_list_never_shows_it(cli_settings):
    from ocr_service.cli import app

    runner = CliRunner()
    created = runner.invoke(
        app, ["keys", "create", "--name", "mini-program", "--scope", "client", "--scope", "identity:full"]
    )
    assert created.exit_code == 0, created.output
    out = json.loads(created.stdout)
    assert out["secret"].startswith("ocr_") and out["key_prefix"] == out["secret"][:8]
    assert out["scopes"] == ["client", "identity:full"]

    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    assert "mini-program" in listed.stdout and out["id"] in listed.stdout
    assert out["secret"] not in listed.stdout
    assert hashlib.sha256(out["secret"].encode()).hexdigest() not in listed.stdout

    database = Database.from_settings(cli_settings)
    try:
        with database.session() as session:
            assert authenticate(session, out["secret"]).name == "mini-program"
    finally:
        database.dispose()


def test_keys_revoke_stops_the_key_and_an_unknown_id_is_an_error(cli_settings):
    from ocr_service.cli import app

    runner = CliRunner()
    out = json.loads(runner.invoke(app, ["keys", "create", "--name", "k", "--scope", "client"]).stdout)
    revoked = runner.invoke(app, ["keys", "revoke", out["id"]])
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.stdout)["revoked_at"]
    listed = [json.loads(line) for line in runner.invoke(app, ["keys", "list", "--json"]).stdout.splitlines()]
    assert listed[0]["revoked_at"] == json.loads(revoked.stdout)["revoked_at"]
    assert runner.invoke(app, ["keys", "revoke", "no-such-id"]).exit_code == 1

    database = Database.from_settings(cli_settings)
    try:
        with database.session() as session:
            assert authenticate(session, out["secret"]) is None
            assert session.scalars(select(ApiKey.revoked_at)).one() is not None
    finally:
        database.dispose()


def test_keys_create_refuses_an_unknown_scope(cli_settings):
    from ocr_service.cli import app

    result = CliRunner().invoke(app, ["keys", "create", "--name", "k", "--scope", "root"])
    assert result.exit_code != 0
    assert "unknown scope" in result.output


# --- expiry and rotation (issue 11) --------------------------------------------------------------


def test_a_new_key_expires_after_the_configured_lifetime_and_zero_days_means_never(database: Database):
    from ocr_service import config
    from ocr_service.config import Settings
    from ocr_service.db import utcnow

    with session_scope(database) as session:
        default_key, _ = create_api_key(session, "default", ["client"])
        short_key, _ = create_api_key(session, "short", ["client"], expires_in_days=30)
        forever_key, _ = create_api_key(session, "forever", ["client"], expires_in_days=0)
        assert abs(default_key.expires_at - (utcnow() + timedelta(days=365))) < timedelta(minutes=1)
        assert abs(short_key.expires_at - (utcnow() + timedelta(days=30))) < timedelta(minutes=1)
        assert forever_key.expires_at is None
    config.set_settings(Settings(api_key_days=0))
    try:
        with session_scope(database) as session:
            assert create_api_key(session, "no lifetime", ["client"])[0].expires_at is None
    finally:
        config.set_settings(None)


def test_an_expired_key_no_longer_authenticates(database: Database):
    from ocr_service.db import utcnow

    with session_scope(database) as session:
        _key, secret = create_api_key(session, "k", ["client"], expires_in_days=1)
    with session_scope(database) as session:
        assert authenticate(session, secret) is not None
        assert authenticate(session, secret, now=utcnow() + timedelta(days=2)) is None
        assert lookup_key(session, secret, now=utcnow() + timedelta(days=2)) == (None, KeyState.EXPIRED)


def test_rotation_keeps_the_key_identity_and_the_old_secret_works_only_for_the_grace_period(database: Database):
    from ocr_service.db import utcnow

    with session_scope(database) as session:
        key, old_secret = create_api_key(session, "app", ["client", "identity:full"], "https://cb.example/")
        key_id = key.id
    with session_scope(database) as session:
        rotated, new_secret = rotate_api_key(session, key_id, grace_hours=2)
        assert rotated.id == key_id and new_secret != old_secret
        assert rotated.key_prefix == new_secret[:8] and rotated.rotated_at is not None
    with session_scope(database) as session:
        for secret in (old_secret, new_secret):
            found = authenticate(session, secret)
            assert found is not None and found.id == key_id
            assert found.scope_set == {"client", "identity:full"} and found.callback_url == "https://cb.example/"
        later = utcnow() + timedelta(hours=3)
        assert lookup_key(session, old_secret, now=later) == (None, KeyState.EXPIRED)
        assert authenticate(session, new_secret, now=later).id == key_id
        # a rotation renews the lifetime
        assert rotated.expires_at > utcnow() + timedelta(days=364)


def test_rotation_without_grace_stops_the_old_secret_at_once_and_revoked_keys_cannot_be_rotated(
    database: Database,
):
    with session_scope(database) as session:
        key, old_secret = create_api_key(session, "app", ["client"])
        _, first_secret = rotate_api_key(session, key.id, grace_hours=0)
        assert authenticate(session, old_secret) is None
        _, second_secret = rotate_api_key(session, key.id, grace_hours=1)
        # one previous secret at a time: the one before it stops
        assert authenticate(session, first_secret) is not None
        assert authenticate(session, old_secret) is None
        revoke_api_key(session, key.id)
        assert authenticate(session, second_secret) is None and authenticate(session, first_secret) is None
        with pytest.raises(ValueError, match="revoked"):
            rotate_api_key(session, key.id)
        assert rotate_api_key(session, "no-such-key") is None


def test_an_expired_key_gets_401_key_expired_with_a_chinese_message(api, database: Database):
    client, _ = api
    with session_scope(database) as session:
        key, secret = create_api_key(session, "old", ["client"], expires_in_days=1)
        key.expires_at = key.created_at - timedelta(seconds=1)
    response = client.get("/client", headers=bearer(secret))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "key_expired"
    assert "过期" in response.json()["error"]["message_zh"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_route_open_to_any_of_several_scopes_takes_each_and_refuses_others(database: Database):
    app = FastAPI()
    install_error_handlers(app)
    app.state.db = database

    @app.get("/review")
    def review_route(key: Annotated[ApiKey, Depends(require_any_scope(Scope.UNIT_REVIEWER, Scope.ADMIN))]) -> dict:
        return {"key_id": key.id}

    with session_scope(database) as session:
        secrets = {s: create_api_key(session, s, [s])[1] for s in ("unit_reviewer", "admin", "client", "reviewer")}
    client = TestClient(app)
    assert client.get("/review", headers=bearer(secrets["unit_reviewer"])).status_code == 200
    assert client.get("/review", headers=bearer(secrets["admin"])).status_code == 200
    for kind in ("client", "reviewer"):
        response = client.get("/review", headers=bearer(secrets[kind]))
        assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
        assert response.json()["error"]["details"] == {"any_of_scopes": ["admin", "unit_reviewer"]}
    assert client.get("/review").status_code == 401


def test_keys_create_with_an_expiry_keys_list_shows_it_and_keys_rotate_prints_a_new_secret(cli_settings):
    from ocr_service.cli import app

    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--name", "k", "--scope", "client", "--expires-in-days", "30"])
    assert created.exit_code == 0, created.output
    out = json.loads(created.stdout)
    assert out["expires_at"]
    listed = runner.invoke(app, ["keys", "list"])
    assert "expires" in listed.stdout and out["expires_at"][:10] in listed.stdout
    assert json.loads(runner.invoke(app, ["keys", "list", "--json"]).stdout)["expires_at"] == out["expires_at"]

    rotated = runner.invoke(app, ["keys", "rotate", out["id"], "--grace-hours", "2"])
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.stdout)
    assert new["id"] == out["id"] and new["secret"] != out["secret"] and new["previous_secret_valid_until"]
    assert runner.invoke(app, ["keys", "rotate", "no-such-id"]).exit_code == 1

    database = Database.from_settings(cli_settings)
    try:
        with database.session() as session:
            assert authenticate(session, new["secret"]).id == out["id"]
            assert authenticate(session, out["secret"]).id == out["id"]
    finally:
        database.dispose()


def test_migration_0010_leaves_existing_keys_working_without_an_expiry(database_url: str):
    from alembic import command

    secret = "ocr_" + "k" * 43
    database = Database(database_url)
    try:
        with database.engine.connect() as connection:
            command.upgrade(alembic_config(connection), "0009_pii_at_rest")
            connection.execute(
                text(
                    "INSERT INTO api_keys (id, name, key_prefix, key_hash, scopes, created_at)"
                    " VALUES ('00000000-0000-4000-8000-00000000000a', 'old app', 'ocr_kkkk', :hash, 'client',"
                    " CURRENT_TIMESTAMP)"
                ),
                {"hash": hashlib.sha256(secret.encode()).hexdigest()},
            )
            connection.commit()
        database.upgrade()
        with session_scope(database) as session:
            key = authenticate(session, secret)
            assert key is not None and key.expires_at is None and key.previous_key_hash is None
            _rotated, new_secret = rotate_api_key(session, key.id, grace_hours=1)
        with session_scope(database) as session:
            assert authenticate(session, secret).id == authenticate(session, new_secret).id
    finally:
        database.dispose()
