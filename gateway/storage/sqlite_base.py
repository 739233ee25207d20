"""What every SQLite store of the gateway shares: opening a file in WAL mode with ``synchronous=FULL``
and foreign keys on, and one explicit ``BEGIN IMMEDIATE .. COMMIT`` transaction at a time.

``synchronous=FULL`` syncs the WAL at every commit, so whatever a commit made durable (a counter handed
out, a decision about to be acted on) survives a power loss. Every ``sqlite3.Error`` becomes a
``StoreError`` naming the store (``what``, e.g. "campaign store") and its file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from protocols.errors import GatewayError

__all__ = ["StoreError", "Synchronous", "open_wal", "transaction"]

Synchronous = Literal["FULL", "NORMAL"]


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
