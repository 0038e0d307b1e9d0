"""The database: one engine, migrated to the newest schema at start-up, with read and write transactions.

SQLite (WAL) is the embedded default; any SQLAlchemy URL works (PostgreSQL is tested). Writes on SQLite
take the write lock at BEGIN (``BEGIN IMMEDIATE``) so that two concurrent writers queue instead of
failing half-way with "database is locked".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, make_url

from lambdad.settings import DEFAULT_ACCOUNT_ID
from lambdad.store.keyring import KeyRing

_MIGRATIONS = Path(__file__).parent / "migrations"
_WRITE = "lambdad_write"
#: The execution option that carries the key ring to the queries that seal and open (``sealing.ring_of``).
KEY_RING_OPTION = "lambdad_key_ring"
_SCHEMA_LOCK = 0x6C616D62  # PostgreSQL advisory lock key held while migrating ("lamb")
# Bounds on every wait for a server database, so that an outage answers errors instead of hanging
# (``outage.py``): seconds to connect, to wait for a pooled connection, for a dead peer's TCP to give
# up, and milliseconds a statement may run (the largest write, a code chunk, takes well under it).
CONNECT_TIMEOUT = 3
POOL_TIMEOUT = 5
TCP_USER_TIMEOUT_MS = 10_000
STATEMENT_TIMEOUT_MS = 30_000


class Database:
    """An engine plus the two kinds of transaction lambdad uses.

    With a ``key_ring`` (the server always passes one) every connection carries it, so the queries that
    store secrets (a function's environment variables) seal them and open them when read; without one
    (tests of other parts) they are kept as given.
    """

    def __init__(self, url: str, key_ring: KeyRing | None = None) -> None:
        self.url = url
        self.key_ring = key_ring
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine: Engine = create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=8
            )
            _use_explicit_sqlite_transactions(self.engine)
        else:
            self.engine = create_engine(
                url, pool_size=8, pool_pre_ping=True, pool_timeout=POOL_TIMEOUT, connect_args=_bounded(url)
            )
        if key_ring is not None:
            self.engine = self.engine.execution_options(**{KEY_RING_OPTION: key_ring})
        self._writer = self.engine.execution_options(**{_WRITE: True})

    def migrate(self, default_account: str = DEFAULT_ACCOUNT_ID) -> None:
        """Bring the schema to the newest migration (idempotent). Rows stored before resources were kept
        per account go to ``default_account`` (the server's configured account)."""
        config = Config()
        config.attributes["default_account"] = default_account
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self._writer.begin() as connection:
            if not self.is_sqlite:
                # Nodes of a new cluster start together: one migrates, the others wait and find it done.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
            config.attributes["connection"] = connection
            command.upgrade(config, "heads")  # every branch: features may add migrations side by side

    def schema_status(self) -> tuple[set[str], set[str]]:
        """(revisions the database is at, the newest revisions this code knows); empty first set: a new
        database."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        script = ScriptDirectory.from_config(config)
        with self.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
        return current, set(script.get_heads())

    def unknown_revisions(self, revisions: set[str]) -> set[str]:
        """Those of ``revisions`` this code has no migration for (a newer lambdad wrote them)."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        script = ScriptDirectory.from_config(config)
        known = {revision.revision for revision in script.walk_revisions()}
        return revisions - known

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction."""
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: all of it commits, or none of it."""
        with self._writer.begin() as connection:
            yield connection

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _bounded(url: str) -> dict[str, Any]:
    """libpq's bounds for psycopg's connections (other drivers get none: they name them differently)."""
    if make_url(url).get_driver_name() not in ("psycopg", "psycopg2"):
        return {}
    return {
        "connect_timeout": CONNECT_TIMEOUT,
        "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
    }


def _use_explicit_sqlite_transactions(engine: Engine) -> None:
    # pysqlite's own transaction handling begins late and cannot BEGIN IMMEDIATE; take it over
    # (SQLAlchemy's documented recipe).
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
