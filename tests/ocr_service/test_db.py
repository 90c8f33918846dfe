"""ocr_service.db and the migrations: the schema Alembic builds is the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from typer.testing import CliRunner

import ocr_service.capture.models
import ocr_service.declaration.models  # noqa: F401 (its tables are part of the compared metadata)
from ocr_service.db import Base, Database, make_engine, schema_revisions, session_scope, upgrade
from ocr_service.verification.models import (
    ApiKey,
    Attempt,
    AttemptStatus,
    IdempotencyRecord,
    ImageSide,
    StatusEvent,
    Verification,
    VerificationStatus,
    VerifiedIdentity,
)
from pipelines.reasons import Decision
from tests.ocr_service.conftest import add_api_key, add_stored_image, add_verification

ALL_TABLES = {
    "api_keys",
    "verifications",
    "attempts",
    "stored_images",
    "verified_identities",
    "status_events",
    "idempotency_records",
}


def schema_differences(database: Database) -> list:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


# --- migrations --------------------------------------------------------------------------------


def test_upgrade_creates_every_table_and_records_the_head_revision(database_url: str):
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) >= ALL_TABLES
        current, heads = schema_revisions(engine)
        assert current == heads and heads
    finally:
        engine.dispose()


def test_the_migrated_schema_has_no_differences_from_the_models(database: Database):
    assert schema_differences(database) == []


def test_the_schema_comparison_would_notice_a_migration_that_forgot_something(database: Database):
    # guards the test above: compare_metadata really looks at indexes and columns here
    with database.engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_attempts_status"))
    differences = schema_differences(database)
    assert any(diff[0] == "add_index" and diff[1].name == "ix_attempts_status" for diff in differences)


def test_upgrading_an_up_to_date_database_again_changes_nothing(database: Database):
    database.upgrade()
    upgrade(database.url)
    assert database.schema_is_current()
    assert schema_differences(database) == []


def test_a_fresh_database_is_not_current_until_upgraded(database_url: str):
    database = Database(database_url)
    try:
        assert not database.schema_is_current()
        database.upgrade()
        assert database.schema_is_current()
    finally:
        database.dispose()


def test_the_db_upgrade_command_migrates_the_configured_database(cli_settings):
    from ocr_service.cli import app

    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["backend"] == "sqlite" and out["revision"]
    assert Database.from_settings(cli_settings).schema_is_current()


# --- engines and sessions ----------------------------------------------------------------------


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'ocr.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert (tmp_path / "nested" / "dir" / "ocr.db").is_file()
    finally:
        engine.dispose()


def test_a_postgresql_url_without_a_driver_uses_psycopg_3():
    engine = make_engine("postgresql://nobody@127.0.0.1:1/none")
    assert engine.dialect.name == "postgresql"
    assert engine.dialect.driver == "psycopg"


def test_session_scope_commits_on_success_and_rolls_back_on_an_exception(database: Database):
    with session_scope(database) as session:
        add_api_key(session, name="kept")
    with pytest.raises(RuntimeError), session_scope(database) as session:
        add_api_key(session, name="rolled back")
        raise RuntimeError("boom")
    with database.session() as session:
        names = session.scalars(select(ApiKey.name)).all()
    assert names == ["kept"]


def test_datetimes_come_back_timezone_aware_in_utc(database: Database):
    beijing = timezone(timedelta(hours=8))
    decided = datetime(2026, 3, 1, 18, 30, tzinfo=beijing)
    with session_scope(database) as session:
        key, _ = add_api_key(session)
        verification_id = add_verification(session, key, decided_at=decided).id
    with database.session() as session:
        stored = session.get(Verification, verification_id)
        assert stored.decided_at == decided
        assert stored.decided_at.utcoffset() == timedelta(0)
        assert stored.decided_at.hour == 10
        assert stored.created_at.tzinfo is not None
        assert abs(datetime.now(UTC) - stored.created_at) < timedelta(minutes=1)


def test_a_naive_datetime_is_refused(database: Database):
    with pytest.raises(StatementError, match="naive datetime"), session_scope(database) as session:
        key, _ = add_api_key(session)
        add_verification(session, key, decided_at=datetime(2026, 3, 1, 18, 30))


def test_enums_are_stored_as_their_values_and_json_round_trips(database: Database):
    with session_scope(database) as session:
        key, _ = add_api_key(session)
        verification = add_verification(session, key, decision_reasons=["glare", "blurry"])
        image = add_stored_image(session, verification, blob_id="a" * 32)
        attempt = Attempt(
            verification_id=verification.id,
            image_id=image.id,
            side=ImageSide.FRONT,
            status=AttemptStatus.DONE,
            decision=Decision.RETAKE,
            reasons=["glare"],
            result={"fields": {"name": "张三", "id_number": "4****************4"}, "corners": [[1, 2], [3, 4]]},
        )
        session.add(attempt)
        ids = (verification.id, attempt.id)
    with database.engine.connect() as connection:
        row = connection.execute(
            text("SELECT status, document_type, method FROM verifications WHERE id = :id"), {"id": ids[0]}
        ).one()
        assert tuple(row) == ("awaiting_images", "resident_id", "auto")
        raw = connection.execute(text("SELECT decision, side FROM attempts WHERE id = :id"), {"id": ids[1]}).one()
        assert tuple(raw) == ("retake", "front")
    with database.session() as session:
        stored = session.get(Attempt, ids[1])
        assert stored.decision is Decision.RETAKE
        assert stored.result["fields"]["name"] == "张三"
        assert stored.result["corners"] == [[1, 2], [3, 4]]
        assert session.get(Verification, ids[0]).decision_reasons == ["glare", "blurry"]
        assert session.get(Verification, ids[0]).status is VerificationStatus.AWAITING_IMAGES


def test_a_subject_has_at_most_one_verified_identity_per_client(database: Database):
    def identity(key_id: str, verification_id: str) -> VerifiedIdentity:
        return VerifiedIdentity(
            client_key_id=key_id,
            subject_id="subject-1",
            verification_id=verification_id,
            name="张三",
            document_type="resident_id",
            number_enc=b"x",
            number_index="1" * 64,
            method="auto",
        )

    with session_scope(database) as session:
        key, _ = add_api_key(session)
        other_key, _ = add_api_key(session, name="other client")
        verification = add_verification(session, key)
        other = add_verification(session, other_key)
        session.add_all([identity(key.id, verification.id), identity(other_key.id, other.id)])
    with pytest.raises(IntegrityError), session_scope(database) as session:
        session.add(identity(key.id, verification.id))


def test_an_idempotency_key_is_unique_per_client(database: Database):
    with session_scope(database) as session:
        key, _ = add_api_key(session)
        verification = add_verification(session, key)
        session.add(
            IdempotencyRecord(client_key_id=key.id, key="k1", request_hash="a" * 64, verification_id=verification.id)
        )
    with pytest.raises(IntegrityError), session_scope(database) as session:
        session.add(
            IdempotencyRecord(client_key_id=key.id, key="k1", request_hash="b" * 64, verification_id=verification.id)
        )


def test_foreign_keys_are_enforced(database: Database):
    with pytest.raises(IntegrityError), session_scope(database) as session:
        session.add(StatusEvent(verification_id="no-such-verification", to_status="processing", actor="system"))


def test_status_events_keep_their_order_on_the_verification(database: Database):
    with session_scope(database) as session:
        key, _ = add_api_key(session)
        verification = add_verification(session, key)
        for to_status in ("processing", "retake", "processing"):
            session.add(StatusEvent(verification_id=verification.id, to_status=to_status, actor="worker"))
        verification_id = verification.id
    with database.session() as session:
        events = session.get(Verification, verification_id).events
        assert [event.to_status for event in events] == ["processing", "retake", "processing"]


def test_concurrent_writers_on_sqlite_wait_for_each_other_instead_of_failing(tmp_path: Path):
    database = Database(f"sqlite:///{tmp_path / 'ocr.db'}")
    database.upgrade()
    errors: list[BaseException] = []

    def write_keys(worker: int) -> None:
        try:
            for n in range(15):
                with session_scope(database) as session:
                    add_api_key(session, name=f"w{worker}-{n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write_keys, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with database.session() as session:
            assert len(session.scalars(select(ApiKey.id)).all()) == 90
    finally:
        database.dispose()


def test_uuid_ids_exist_as_soon_as_an_object_is_built():
    first, second = Verification(subject_id="s"), Verification(subject_id="s")
    assert len(first.id) == 36 and first.id != second.id
    assert Attempt(id="given").id == "given"
