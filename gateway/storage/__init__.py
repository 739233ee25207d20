"""Durable state of the gateway (DESIGN.md, "Durability"): an embedded SQLite store by default."""

from gateway.storage.sqlite_store import (
    SCHEMA_VERSION,
    AnswerRecord,
    DuplicateRecord,
    InvalidAnswerRecord,
    PushRecord,
    SqliteStore,
    StoreError,
)

__all__ = [
    "SCHEMA_VERSION",
    "AnswerRecord",
    "DuplicateRecord",
    "InvalidAnswerRecord",
    "PushRecord",
    "SqliteStore",
    "StoreError",
]
