"""The one way to reach the database: engines, sessions, the declarative ``Base`` and migrations.

A process has one :class:`Database` built from the settings (``get_database()``; the app puts
the same object on ``app.state.db``). Requests get sessions through ``SessionDep``; code off
the request path uses ``with session_scope() as session:``.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy timeout, so the
web threads and the in-process workers can write without "database is locked". PostgreSQL goes
through psycopg 3. The schema is owned by Alembic (``ocr_service/migrations``);
:func:`upgrade` brings a database to head and is what ``ocr-service db upgrade`` and
``serve`` run.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import structlog
from fastapi import Depends, Request
from sqlalchemy import DateTime, Engine, Enum, MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from ocr_service.config import Settings

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# SQLite waits this long for another writer before failing; one scan's write takes milliseconds,
# so 15 s only runs out when something holds a transaction open far too long.
SQLITE_BUSY_TIMEOUT_MS = 15_000

# Constraint names are part of the schema: without a convention PostgreSQL and SQLite name
# them differently and later migrations cannot drop them portably.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, timezone-aware in UTC: the only kind of datetime the models accept."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are converted to UTC
    before they are written and marked UTC when read. Naive datetimes are refused: their zone
    is a guess, and a guessed zone in an audit trail is worse than an error.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError("naive datetime given to a UTCDateTime column; use ocr_service.db.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def str_enum(enum_class: type[StrEnum], length: int = 32) -> Enum:
    """A StrEnum stored as its *value* in a plain VARCHAR.

    No native PostgreSQL enum and no CHECK constraint: adding a member (a new document type, a
    new status) is then a code change, not a migration. Python still validates on write.
    """
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=length,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    """The one declarative base: every table of the service hangs off ``Base.metadata``."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)


# --- engines and sessions ------------------------------------------------------------------


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``: SQLite tuned for concurrent local use, or PostgreSQL via psycopg 3.

    ``postgresql://`` and ``postgres://`` are taken to mean psycopg 3 (the driver we ship).
    """
    parsed = make_url(url)
    # SQL error texts would otherwise carry bound parameters (ciphertexts, subject ids) into
    # logs and Celery retry messages.
    kwargs.setdefault("hide_parameters", True)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable in WAL mode except for the last transactions on power loss
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: a service function may commit and still return the rows it wrote
    # to the route that serialises them.
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


class Database:
    """Engine + session factory, built once per process (app, worker, CLI command)."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = session_factory(self.engine)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.effective_database_url)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def session(self) -> Session:
        """A new session; the caller closes it (prefer :meth:`session_scope`)."""
        return self.sessionmaker()

    def session_scope(self) -> contextlib.AbstractContextManager[Session]:
        """A session that commits when the block ends normally and rolls back on an exception."""
        return session_scope(self)

    def ping(self) -> None:
        """Raise when the database cannot answer a trivial query (for ``/readyz``)."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def upgrade(self) -> None:
        """Apply the Alembic migrations up to head."""
        _upgrade_engine(self.engine)

    def schema_is_current(self) -> bool:
        """True when the database is at the newest migration this code ships."""
        current, heads = schema_revisions(self.engine)
        return current == heads

    def dispose(self) -> None:
        self.engine.dispose()


def get_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: a session from ``request.app.state.db`` for the length of the request.

    It does not commit: service functions commit what they write (so a response never claims a
    write that has not happened). Anything left uncommitted is rolled back when the request ends.
    """
    database: Database = request.app.state.db
    session = database.sessionmaker()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


# --- the process-wide database -----------------------------------------------------------------

_process_database: Database | None = None
_process_database_lock = threading.Lock()


def get_database(settings: Settings | None = None) -> Database:
    """This process's :class:`Database`, built on first use from ``settings`` (or ``get_settings()``).

    Code that runs outside a request (``service.process_attempt`` on a worker, the CLI) reaches
    the database through this; the app stores the same object on ``app.state.db``.
    """
    global _process_database
    with _process_database_lock:
        if _process_database is None:
            if settings is None:
                from ocr_service.config import get_settings

                settings = get_settings()
            _process_database = Database.from_settings(settings)
        return _process_database


def set_database(database: Database | None) -> None:
    """Install (or, with None, forget) the process-wide database: app start-up and tests."""
    global _process_database
    with _process_database_lock:
        _process_database = database


@contextlib.contextmanager
def session_scope(database: Database | None = None) -> Iterator[Session]:
    """``with session_scope() as session:`` -- commit at the end, roll back on an exception.

    Uses the process-wide database unless one is given. For work outside a request: workers,
    start-up recovery, the CLI.
    """
    session = (database or get_database()).sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_after_fork() -> None:
    """In a forked child (Celery prefork): drop pooled connections inherited from the parent.

    ``close=False`` leaves the parent's sockets alone; the child opens its own on first use.
    """
    if _process_database is not None:
        _process_database.engine.dispose(close=False)


# --- migrations ------------------------------------------------------------------------------

# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises concurrent upgrades
# (serve and worker starting together).
_MIGRATION_LOCK_ID = 0x4F43525F4D494752  # "OCR_MIGR"


def alembic_config(connection: Connection | None = None) -> Any:
    """An Alembic ``Config`` pointing at the packaged migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def schema_revisions(engine: Engine) -> tuple[set[str], set[str]]:
    """(the revisions the database is at, the head revisions of the packaged migrations)."""
    with _quiet_alembic():
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    return current, heads


@contextlib.contextmanager
def _quiet_alembic() -> Iterator[None]:
    # Alembic narrates every step at INFO through the root logger; one line of our own is enough.
    alembic_logger = logging.getLogger("alembic")
    level = alembic_logger.level
    alembic_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        alembic_logger.setLevel(level)


def upgrade(database_url: str) -> None:
    """Bring the database at ``database_url`` to the newest migration (idempotent)."""
    engine = make_engine(database_url)
    try:
        _upgrade_engine(engine)
    finally:
        engine.dispose()


def _upgrade_engine(engine: Engine) -> None:
    with contextlib.ExitStack() as stack:
        stack.enter_context(_quiet_alembic())
        from alembic import command

        if engine.dialect.name == "sqlite":
            stack.enter_context(_sqlite_migration_lock(engine))
        connection = stack.enter_context(engine.connect())
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            connection.commit()
        try:
            from alembic.runtime.migration import MigrationContext

            before = MigrationContext.configure(connection).get_current_heads()
            command.upgrade(alembic_config(connection), "heads")  # feature branches may add parallel heads
            connection.commit()
            after = MigrationContext.configure(connection).get_current_heads()
            if before != after:
                log.info("database_upgraded", backend=engine.dialect.name, before=list(before), after=list(after))
        finally:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID})
                connection.commit()


@contextlib.contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """An exclusive file lock beside the SQLite file while migrations run."""
    database = engine.url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    lock_path = Path(database).expanduser().with_name(Path(database).name + ".migrate.lock")
    with open(lock_path, "a+b") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
