"""What every SQLite store of the gateway shares: opening a file in WAL mode with ``synchronous=FULL``
and foreign keys on, and one explicit ``BEGIN IMMEDIATE .. COMMIT`` transaction at a time.

``synchronous=FULL`` syncs the WAL at every commit, so whatever a commit made durable (a counter handed
out, a decision about to be acted on) survives a power loss. Every ``sqlite3.Error`` becomes a
``StoreError`` naming the store (``what``, e.g. "campaign store") and its file.

``SqliteFile`` is the base of the stores: the connection, ``with`` support, the transaction, and the
schema (created in a new file, brought up to date through the migrations in an older one, refused when
it is newer than the code).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Literal, Self
from urllib.request import pathname2url

from protocols.errors import GatewayError

__all__ = ["SqliteFile", "StoreError", "Synchronous", "open_wal", "sqlite_uri", "transaction"]

Synchronous = Literal["FULL", "NORMAL"]


def sqlite_uri(path: str | Path, mode: Literal["ro", "rw"]) -> str:
    """The URI that opens the SQLite file ``path`` without creating it (``mode=ro``: nor writing it),
    for ``sqlite3.connect(..., uri=True)``: readers that must not turn a wrong path into a new store."""
    return f"file:{pathname2url(str(path))}?mode={mode}"


class StoreError(GatewayError):
    """The store could not do what was asked (the database is unusable, or the request contradicts it)."""


def open_wal(
    path: str | Path,
    what: str,
    busy_timeout: float,
    setup: Callable[[sqlite3.Connection], None],
    *,
    synchronous: Synchronous = "FULL",
) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (writes go through ``transaction``), WAL, FULL sync, foreign
    keys on, then run ``setup`` (schema creation, migrations); the connection is closed if any of it fails.
    ``busy_timeout`` is how long a write waits for another process holding the file's write lock.
    ``synchronous="NORMAL"`` (for simulations and tests, never in production) skips the sync at each
    commit: a crash of the process still loses nothing, a power loss may lose the last commits."""
    try:
        db = sqlite3.connect(str(path), isolation_level=None, timeout=busy_timeout)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the {what} {path}: {exc}") from None
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
        db.execute("PRAGMA foreign_keys=ON")
        setup(db)
    except (sqlite3.Error, StoreError) as exc:
        db.close()
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"cannot open the {what} {path}: {exc}") from None
    return db


@contextmanager
def transaction(db: sqlite3.Connection, what: str, path: str) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE .. COMMIT (ROLLBACK on any error); sqlite3 errors become StoreError."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise StoreError(f"{what} {path}: {exc}") from None
    try:
        yield db
    except BaseException as exc:
        db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"{what} {path}: {exc}") from exc
        raise
    else:
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:  # pragma: no cover - disk full / I/O error at commit
            db.execute("ROLLBACK")
            raise StoreError(f"{what} {path}: commit failed: {exc}") from None


class SqliteFile:
    """One SQLite file of a store, opened by ``open_wal`` with the schema in place (class attributes:
    ``WHAT``, the store's name in errors; ``SCHEMA``, the statements of a new file at ``SCHEMA_VERSION``;
    ``MIGRATIONS``, version -> the statements that bring a file of that version to the next one)."""

    WHAT = "store"
    SCHEMA: Sequence[str] = ()
    SCHEMA_VERSION = 1
    MIGRATIONS: Mapping[int, Sequence[str]] = {}

    def __init__(self, path: str | Path, *, busy_timeout: float, synchronous: Synchronous) -> None:
        self.path = str(path)
        self._db = open_wal(self.path, self.WHAT, busy_timeout, self._adopt, synchronous=synchronous)

    def _adopt(self, db: sqlite3.Connection) -> None:
        """``open_wal``'s setup: keep the connection, then create or migrate the schema."""
        self._db = db
        self._migrate()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """BEGIN IMMEDIATE .. COMMIT (ROLLBACK on any error); sqlite3 errors become StoreError."""
        return transaction(self._db, self.WHAT, self.path)

    def _migrate(self) -> None:
        with self._transaction() as db:
            exists = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
            if exists is None:
                for statement in self.SCHEMA:
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (self.SCHEMA_VERSION,))
                return
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            version: int | None = row[0] if row else None
            while version is not None and version in self.MIGRATIONS:  # an older file: bring it up to date
                for statement in self.MIGRATIONS[version]:
                    db.execute(statement)
                version += 1
                db.execute("UPDATE schema_version SET version = ?", (version,))
            if version != self.SCHEMA_VERSION:
                raise StoreError(
                    f"{self.WHAT} {self.path} has schema version {version}; "
                    f"this gateway knows version {self.SCHEMA_VERSION}"
                )

    @property
    def schema_version(self) -> int:
        row = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
        version: int = row[0]
        return version
