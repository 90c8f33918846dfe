"""Alembic environment: the service's metadata, and a connection from ``db.upgrade()`` or the settings."""

from __future__ import annotations

from alembic import context

import ocr_service.capture.models  # registers the capture-link tables
import ocr_service.declaration.models  # registers the declaration tables
import ocr_service.jobs.reverify_models
import ocr_service.verification.models  # noqa: F401 (registers every table on Base.metadata)
from ocr_service.db import Base, make_engine

target_metadata = Base.metadata
config = context.config


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things in place; batch mode recreates the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # ocr_service.db.upgrade(): the caller owns the connection
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from ocr_service.config import get_settings

        url = get_settings().effective_database_url
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
run_migrations_online()
