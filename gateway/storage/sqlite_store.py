"""The gateway's durable store on the standard library's SQLite (DESIGN.md, "Durability").

Every decision goes through the store before it is acted on, so that a crash or restart loses
nothing. What lives here so far is what the SIM toolkit push needs:

- the OTA replay counter of each card (ETSI TS 102 225 section 5.1.1, CNTR: five octets, "process
  only if higher" or "exactly one higher"): :meth:`SqliteStore.next_ota_counter` commits the new
  value before it returns it, so no value is ever handed out twice, not even across a crash;
- the pushes (one per offer id): the card, TAR and counter of the command packet (TS 31.115
  section 4.2), the SMSC message id (SMPP 3.4 section 4.4.2, looked up by
  :func:`protocols.smpp.receipt.message_id_keys` so a receipt in either base finds it) and the state;
- the answers, each recorded exactly once however often the SMSC re-delivers the MO;
- the answers that failed verification, kept as evidence and never acted on.

The database runs in WAL mode with ``synchronous=FULL``: a commit is on disk when it returns.
The schema is created on open; ``schema_version`` records its version. Methods are synchronous
(one local file, milliseconds) and take ``now`` (epoch seconds) from the caller: nothing here
reads a clock. One store object belongs to one thread (the event loop's).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.storage.sqlite_base import SqliteFile, StoreError, Synchronous
from protocols.smpp.receipt import message_id_keys
from protocols.stk.ota import MAX_CNTR

__all__ = [
    "SCHEMA_VERSION",
    "AnswerRecord",
    "DuplicateRecord",
    "InvalidAnswerRecord",
    "PushRecord",
    "SqliteStore",
    "StoreError",
]

SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "CREATE TABLE ota_counters (iccid TEXT PRIMARY KEY, counter INTEGER NOT NULL)",
    """CREATE TABLE stk_pushes (
        offer_id TEXT PRIMARY KEY,
        msisdn TEXT NOT NULL,
        iccid TEXT NOT NULL,
        tar TEXT NOT NULL,
        cntr INTEGER NOT NULL,
        message_id TEXT,
        state TEXT NOT NULL,
        detail TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    "CREATE INDEX stk_pushes_by_counter ON stk_pushes (iccid, cntr)",
    "CREATE TABLE stk_push_message_ids (key TEXT PRIMARY KEY, offer_id TEXT NOT NULL)",
    """CREATE TABLE stk_answers (
        offer_id TEXT PRIMARY KEY,
        outcome INTEGER NOT NULL,
        item_id INTEGER NOT NULL,
        general_result INTEGER NOT NULL,
        received_at REAL NOT NULL
    )""",
    """CREATE TABLE stk_invalid_answers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        msisdn TEXT NOT NULL,
        reason TEXT NOT NULL,
        received_at REAL NOT NULL
    )""",
)

_PUSH_COLUMNS = "offer_id, msisdn, iccid, tar, cntr, message_id, state, detail, created_at, updated_at"


class DuplicateRecord(StoreError):
    """A record with this key exists already (e.g. an offer id pushed twice)."""


@dataclass(frozen=True, slots=True)
class PushRecord:
    """One SIM toolkit push: which card, which command packet (TAR, CNTR), which SMSC message."""

    offer_id: str
    msisdn: str
    iccid: str
    tar: bytes
    cntr: int
    message_id: str | None
    state: str
    detail: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """The subscriber's answer to a pushed offer, as first received."""

    offer_id: str
    outcome: int
    item_id: int
    general_result: int
    received_at: float


@dataclass(frozen=True, slots=True)
class InvalidAnswerRecord:
    """An MO that claimed to be an answer and failed verification."""

    msisdn: str
    reason: str
    received_at: float


def _message_keys(message_id: str) -> list[str]:
    """The lookup keys of a message id as text: "s:<normalized id>", "n:<number>" per numeric reading."""
    return [f"s:{key}" if isinstance(key, str) else f"n:{key}" for key in message_id_keys(message_id)]


def _push(row: tuple[Any, ...]) -> PushRecord:
    offer_id, msisdn, iccid, tar, cntr, message_id, state, detail, created_at, updated_at = row
    return PushRecord(
        offer_id, msisdn, iccid, bytes.fromhex(tar), cntr, message_id, state, detail, created_at, updated_at
    )


class SqliteStore(SqliteFile):
    """The store in one SQLite file (``":memory:"`` for a throw-away one). Close it, or use ``with``.

    ``busy_timeout`` is how long a write waits for another process holding the file's write lock.
    """

    WHAT = "store"
    SCHEMA = _SCHEMA
    SCHEMA_VERSION = SCHEMA_VERSION

    def __init__(
        self, path: str | Path, *, busy_timeout: float = 5.0, synchronous: Synchronous = "FULL"
    ) -> None:
        super().__init__(path, busy_timeout=busy_timeout, synchronous=synchronous)

    # --- OTA counters (TS 102 225 5.1.1) -----------------------------------------------------------

    def next_ota_counter(self, iccid: str, *, at_least: int = 1) -> int:
        """The next CNTR for the card ``iccid``: one more than the last, and at least ``at_least``.

        The new value is committed (and synced) before it is returned, so it is never handed out
        again, even if the process dies right after. Raises StoreError when the five-octet counter
        would pass 2^40 - 1 (the card would block, TS 102 225 5.1.1 status '04').
        """
        if not 0 <= at_least <= MAX_CNTR:
            raise StoreError(f"at_least {at_least} is not a five-octet counter value")
        with self._transaction() as db:
            row = db.execute("SELECT counter FROM ota_counters WHERE iccid = ?", (iccid,)).fetchone()
            value = at_least if row is None else max(row[0] + 1, at_least)
            if value > MAX_CNTR:
                raise StoreError(f"OTA counter of ICCID {iccid} is exhausted (2^40 - 1)")
            db.execute(
                "INSERT INTO ota_counters (iccid, counter) VALUES (?, ?) "
                "ON CONFLICT (iccid) DO UPDATE SET counter = excluded.counter",
                (iccid, value),
            )
        return value

    def ota_counter(self, iccid: str) -> int | None:
        """The last counter handed out for ``iccid``, None if none was."""
        row = self._db.execute("SELECT counter FROM ota_counters WHERE iccid = ?", (iccid,)).fetchone()
        return None if row is None else int(row[0])

    # --- pushes ------------------------------------------------------------------------------------

    def record_push(  # noqa: PLR0917 - the columns of a push, in order
        self,
        offer_id: str,
        msisdn: str,
        iccid: str,
        tar: bytes,
        cntr: int,
        message_id: str | None,
        state: str,
        now: float,
    ) -> PushRecord:
        """Record a push of ``offer_id``; DuplicateRecord if that offer was pushed already."""
        with self._transaction() as db:
            try:
                db.execute(
                    f"INSERT INTO stk_pushes ({_PUSH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",  # noqa: S608 - column list is a constant
                    (offer_id, msisdn, iccid, tar.hex().upper(), cntr, message_id, state, now, now),
                )
            except sqlite3.IntegrityError:
                raise DuplicateRecord(f"offer {offer_id!r} was pushed already") from None
            if message_id is not None:
                self._index_message_id(db, offer_id, message_id)
        return PushRecord(offer_id, msisdn, iccid, bytes(tar), cntr, message_id, state, None, now, now)

    def update_push(
        self,
        offer_id: str,
        *,
        message_id: str | None = None,
        state: str | None = None,
        detail: str | None = None,
        cntr: int | None = None,
        now: float,
    ) -> PushRecord:
        """Set the message id, state, detail and/or counter (a new attempt's, when the SMSC refused the
        last: ``StkPushService._record_attempt``) of a recorded push; StoreError if there is none."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE stk_pushes SET message_id = coalesce(?, message_id), state = coalesce(?, state), "
                "detail = coalesce(?, detail), cntr = coalesce(?, cntr), updated_at = ? WHERE offer_id = ?",
                (message_id, state, detail, cntr, now, offer_id),
            )
            if cursor.rowcount != 1:
                raise StoreError(f"no push of offer {offer_id!r} to update")
            if message_id is not None:
                self._index_message_id(db, offer_id, message_id)
            row = db.execute(
                f"SELECT {_PUSH_COLUMNS} FROM stk_pushes WHERE offer_id = ?",  # noqa: S608 - constant
                (offer_id,),
            ).fetchone()
        return _push(row)

    @staticmethod
    def _index_message_id(db: sqlite3.Connection, offer_id: str, message_id: str) -> None:
        # a key the SMSC re-uses later points at the newest push
        db.executemany(
            "INSERT OR REPLACE INTO stk_push_message_ids (key, offer_id) VALUES (?, ?)",
            [(key, offer_id) for key in _message_keys(message_id)],
        )

    def push_by_offer(self, offer_id: str) -> PushRecord | None:
        row = self._db.execute(
            f"SELECT {_PUSH_COLUMNS} FROM stk_pushes WHERE offer_id = ?",  # noqa: S608 - constant
            (offer_id,),
        ).fetchone()
        return None if row is None else _push(row)

    def push_by_message_id(self, message_id: str) -> PushRecord | None:
        """The push whose SMSC message id is ``message_id``, written in either base (as receipts are)."""
        for key in _message_keys(message_id):
            row = self._db.execute(
                "SELECT offer_id FROM stk_push_message_ids WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                return self.push_by_offer(row[0])
        return None

    def push_by_counter(self, iccid: str, cntr: int) -> PushRecord | None:
        """The push sent to card ``iccid`` with counter ``cntr`` (a response packet echoes both)."""
        row = self._db.execute(
            f"SELECT {_PUSH_COLUMNS} FROM stk_pushes WHERE iccid = ? AND cntr = ? "  # noqa: S608 - constant
            "ORDER BY created_at DESC LIMIT 1",
            (iccid, cntr),
        ).fetchone()
        return None if row is None else _push(row)

    # --- answers -----------------------------------------------------------------------------------

    def record_answer(
        self, offer_id: str, outcome: int, item_id: int, now: float, *, general_result: int = 0
    ) -> bool:
        """Record the answer to ``offer_id``; True the first time, False for any later copy.

        In the same transaction the push of ``offer_id`` (if recorded) moves to state "answered".
        """
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO stk_answers (offer_id, outcome, item_id, general_result, received_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (offer_id) DO NOTHING",
                (offer_id, int(outcome), item_id, general_result, now),
            )
            if cursor.rowcount != 1:
                return False
            db.execute(
                "UPDATE stk_pushes SET state = 'answered', updated_at = ? WHERE offer_id = ?", (now, offer_id)
            )
            return True

    def answer_by_offer(self, offer_id: str) -> AnswerRecord | None:
        row = self._db.execute(
            "SELECT offer_id, outcome, item_id, general_result, received_at FROM stk_answers "
            "WHERE offer_id = ?",
            (offer_id,),
        ).fetchone()
        return None if row is None else AnswerRecord(*row)

    def record_invalid_answer(self, msisdn: str, reason: str, now: float) -> None:
        """Keep an answer that failed verification (evidence for the operator; never acted on)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO stk_invalid_answers (msisdn, reason, received_at) VALUES (?, ?, ?)",
                (msisdn, reason, now),
            )

    def invalid_answers(self, msisdn: str | None = None) -> list[InvalidAnswerRecord]:
        """The recorded invalid answers, oldest first (of ``msisdn`` only, if given)."""
        query = "SELECT msisdn, reason, received_at FROM stk_invalid_answers"
        params: tuple[str, ...] = ()
        if msisdn is not None:
            query += " WHERE msisdn = ?"
            params = (msisdn,)
        return [InvalidAnswerRecord(*row) for row in self._db.execute(query + " ORDER BY id", params)]
