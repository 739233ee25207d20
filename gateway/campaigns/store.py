"""The campaign engine's durable store: event log, decision trail and outbox (DESIGN.md, "Durability").

Issue #7: "Every decision, contact, timer and fulfilment is written to the store before it is acted on."
The campaign engine (``campaign_core.engine``) is pure and deterministic, so what has to be durable is
the input: each event with the ``now`` it was handled at. The engine's answer to it, the ``Record``\\ s
(the decision trail) and the commands to carry out (the outbox), is written IN THE SAME TRANSACTION, so
after a crash the store holds either an event and everything it caused or neither. The timers need no
table of their own: replaying the log rebuilds the engine, deadlines included
(``gateway.campaigns.runner``).

``CampaignStore`` is the interface (a ``Protocol``) so that another database (PostgreSQL) can be added;
``SqliteCampaignStore`` is the embedded default: one SQLite file (stdlib ``sqlite3``) in WAL mode with
``synchronous=FULL`` (a commit is on disk, power loss included, when it returns), its schema version in
``schema_version``. Methods are synchronous (a local file, well under a millisecond per commit on an
SSD) and take ``now`` from the caller: nothing here reads a clock. One store object belongs to one
thread (the event loop's).

Tables
    ``events``: ``seq`` (the log order, AUTOINCREMENT), ``at`` (the ``now`` it was handled at), ``type``,
    ``body`` (``campaign_core.codec`` JSON).
    ``records``: one row per ``Record`` with the event that produced it (``event_seq``), its place in
    the engine's answer (``position``), the columns ``tgw explain`` and the KPIs select on, and the
    JSON ``body``; indexed by MSISDN.
    ``outbox``: one row per command to carry out (``QueryCredit``, ``PushStk``, ``SendSms``,
    ``Activate``, ``Reply``), keyed by ``entry_id``, with its ``command_id`` (``command_key``) and
    ``done_at`` / ``done_by`` / ``done_note`` once done; pending rows are indexed.

Command ids (``command_key``): ``QueryCredit.request_id`` (``<offer>:score``), ``PushStk`` /
``SendSms.command_id`` (``<offer>:<step>``, ``<offer>:confirm``), ``Activate.offer_id`` (billing's
idempotency key) and ``Reply.response_id``. Ids may repeat (a second ``Reply`` to a re-delivered
response): ``mark_done`` marks every pending row with the id.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from campaign_core.codec import command_from_json, command_to_json, event_from_json, event_to_json
from campaign_core.model import Activate, Command, Event, PushStk, QueryCredit, Record, Reply, SendSms
from gateway.storage.sqlite_store import StoreError
from protocols.errors import DecodeError

__all__ = [
    "SCHEMA_VERSION",
    "CampaignStore",
    "OutboxCommand",
    "OutboxEntry",
    "SqliteCampaignStore",
    "StoreError",
    "StoredEvent",
    "command_key",
]

SCHEMA_VERSION = 1

OutboxCommand = QueryCredit | PushStk | SendSms | Activate | Reply
"""The commands the gateway carries out (every ``Command`` but ``Record``)."""

_SCHEMA = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        type TEXT NOT NULL,
        body TEXT NOT NULL
    )""",
    """CREATE TABLE records (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_seq INTEGER NOT NULL REFERENCES events (seq),
        position INTEGER NOT NULL,
        kind TEXT NOT NULL,
        at REAL NOT NULL,
        msisdn TEXT NOT NULL,
        campaign_id TEXT,
        variant TEXT,
        offer_id TEXT,
        body TEXT NOT NULL
    )""",
    "CREATE INDEX records_by_msisdn ON records (msisdn, id)",
    "CREATE INDEX records_by_event ON records (event_seq, position)",
    """CREATE TABLE outbox (
        entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_seq INTEGER NOT NULL REFERENCES events (seq),
        position INTEGER NOT NULL,
        command_id TEXT NOT NULL,
        type TEXT NOT NULL,
        msisdn TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at REAL NOT NULL,
        done_at REAL,
        done_by INTEGER REFERENCES events (seq),
        done_note TEXT
    )""",
    "CREATE INDEX outbox_pending ON outbox (command_id) WHERE done_at IS NULL",
    "CREATE INDEX outbox_by_event ON outbox (event_seq, position)",
)


def command_key(command: OutboxCommand) -> str:
    """The id a command is marked done by (see the module docstring)."""
    if isinstance(command, QueryCredit):
        return command.request_id
    if isinstance(command, PushStk | SendSms):
        return command.command_id
    if isinstance(command, Activate):
        return command.offer_id
    return command.response_id


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event of the log: its place, the ``now`` it was handled at, and (when asked for) what the
    engine answered, records and commands in the engine's order."""

    seq: int
    now: float
    event: Event
    outputs: tuple[Command, ...] | None = None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A command written to the outbox and not yet done."""

    entry_id: int
    event_seq: int
    command_id: str
    command: OutboxCommand
    created_at: float


class CampaignStore(Protocol):
    """What the campaign runner needs from a database (see the module docstring)."""

    def append(
        self, event: Event, now: float, outputs: Sequence[Command], *, done: Collection[str] = ()
    ) -> int:
        """Write ``event`` (handled at ``now``), its ``outputs`` (records to the trail, the other
        commands to the outbox) and mark the pending commands ``done`` (ids whose result ``event``
        reports), in one transaction; the event's ``seq``."""
        ...

    def mark_done(
        self, command_ids: Collection[str], now: float, *, note: str = "done", entry_id: int | None = None
    ) -> int:
        """Mark the pending commands with these ids done (only ``entry_id`` when given); how many were."""
        ...

    def events(self, *, after: int = 0, outputs: bool = False) -> Iterator[StoredEvent]:
        """The log in order from ``seq`` > ``after``, with each event's outputs when ``outputs``."""
        ...

    def pending(self) -> list[OutboxEntry]:
        """The commands not yet done, in the order they were written."""
        ...

    def records_of(self, msisdn: str) -> list[Record]:
        """The decision trail of one subscriber, in order."""
        ...

    def records(self) -> Iterator[Record]:
        """Every record, in order (for the KPIs)."""
        ...

    def close(self) -> None: ...


def _dumps(data: object) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class SqliteCampaignStore:
    """``CampaignStore`` in one SQLite file (``":memory:"`` for a throw-away one). Close it, or use ``with``.

    ``busy_timeout`` is how long a write waits for another process holding the file's write lock (e.g.
    ``tgw explain`` reading while the gateway runs needs no lock: WAL readers never block).
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        self.path = str(path)
        try:
            # autocommit mode: every write below runs in an explicit BEGIN IMMEDIATE .. COMMIT
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=busy_timeout)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the campaign store {self.path}: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is synced at every commit, so a decision acted on survives power loss
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (sqlite3.Error, StoreError) as exc:
            self._db.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot open the campaign store {self.path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteCampaignStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteCampaignStore({self.path!r})"

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE .. COMMIT (ROLLBACK on any error); sqlite3 errors become StoreError."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"campaign store {self.path}: {exc}") from None
        try:
            yield db
        except BaseException as exc:
            db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"campaign store {self.path}: {exc}") from exc
            raise
        else:
            try:
                db.execute("COMMIT")
            except sqlite3.Error as exc:  # pragma: no cover - disk full / I/O error at commit
                db.execute("ROLLBACK")
                raise StoreError(f"campaign store {self.path}: commit failed: {exc}") from None

    def _migrate(self) -> None:
        with self._transaction() as db:
            exists = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
            if exists is None:
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                return
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            version = row[0] if row else None
            if version != SCHEMA_VERSION:
                raise StoreError(
                    f"campaign store {self.path} has schema version {version}; "
                    f"this gateway knows version {SCHEMA_VERSION}"
                )

    @property
    def schema_version(self) -> int:
        row = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
        version: int = row[0]
        return version

    # --- writes ------------------------------------------------------------------------------------

    def append(
        self, event: Event, now: float, outputs: Sequence[Command], *, done: Collection[str] = ()
    ) -> int:
        try:  # encode before the transaction: a value that is not JSON changes nothing
            body = _dumps(event_to_json(event))
            rows = [
                (position, command, _dumps(command_to_json(command)))
                for position, command in enumerate(outputs)
            ]
        except ValueError as exc:
            raise StoreError(f"campaign store {self.path}: cannot encode: {exc}") from None
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO events (at, type, body) VALUES (?, ?, ?)", (now, type(event).__name__, body)
            )
            seq = cursor.lastrowid
            assert seq is not None
            if done:
                self._mark(db, done, now, f"result {type(event).__name__}", seq, None)
            for position, command, text in rows:
                if isinstance(command, Record):
                    db.execute(
                        "INSERT INTO records (event_seq, position, kind, at, msisdn, campaign_id, variant, "
                        "offer_id, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            seq,
                            position,
                            command.kind.value,
                            command.at,
                            command.msisdn,
                            command.campaign_id,
                            command.variant,
                            command.offer_id,
                            text,
                        ),
                    )
                else:
                    db.execute(
                        "INSERT INTO outbox (event_seq, position, command_id, type, msisdn, body, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            seq,
                            position,
                            command_key(command),
                            type(command).__name__,
                            command.msisdn,
                            text,
                            now,
                        ),
                    )
        return seq

    def mark_done(
        self, command_ids: Collection[str], now: float, *, note: str = "done", entry_id: int | None = None
    ) -> int:
        if not command_ids:
            return 0
        with self._transaction() as db:
            return self._mark(db, command_ids, now, note, None, entry_id)

    @staticmethod
    def _mark(  # noqa: PLR0917 - private, called twice
        db: sqlite3.Connection,
        command_ids: Collection[str],
        now: float,
        note: str,
        done_by: int | None,
        entry_id: int | None,
    ) -> int:
        query = (
            "UPDATE outbox SET done_at = ?, done_by = ?, done_note = ? "
            "WHERE command_id = ? AND done_at IS NULL"
        )
        marked = 0
        for command_id in command_ids:
            if entry_id is None:
                cursor = db.execute(query, (now, done_by, note, command_id))
            else:
                cursor = db.execute(query + " AND entry_id = ?", (now, done_by, note, command_id, entry_id))
            marked += cursor.rowcount
        return marked

    # --- reads -------------------------------------------------------------------------------------

    def events(self, *, after: int = 0, outputs: bool = False) -> Iterator[StoredEvent]:
        """The log in order (see ``CampaignStore``). Read it to the end before writing: the cursors
        stay open while it is iterated."""
        rows = self._db.execute("SELECT seq, at, body FROM events WHERE seq > ? ORDER BY seq", (after,))
        if not outputs:
            for seq, at, body in rows:
                yield StoredEvent(seq, at, self._event(seq, body))
            return
        records = self._db.execute(
            "SELECT event_seq, position, body FROM records WHERE event_seq > ? ORDER BY event_seq, position",
            (after,),
        )
        commands = self._db.execute(
            "SELECT event_seq, position, body FROM outbox WHERE event_seq > ? ORDER BY event_seq, position",
            (after,),
        )
        next_record = records.fetchone()
        next_command = commands.fetchone()
        for seq, at, body in rows:
            produced: list[tuple[int, str]] = []
            while next_record is not None and next_record[0] == seq:
                produced.append((next_record[1], next_record[2]))
                next_record = records.fetchone()
            while next_command is not None and next_command[0] == seq:
                produced.append((next_command[1], next_command[2]))
                next_command = commands.fetchone()
            produced.sort()
            yield StoredEvent(
                seq,
                at,
                self._event(seq, body),
                tuple(
                    self._command(f"output {position} of event {seq}", text) for position, text in produced
                ),
            )

    def pending(self) -> list[OutboxEntry]:
        entries: list[OutboxEntry] = []
        for entry_id, event_seq, command_id, body, created_at in self._db.execute(
            "SELECT entry_id, event_seq, command_id, body, created_at FROM outbox "
            "WHERE done_at IS NULL ORDER BY entry_id"
        ):
            command = self._command(f"outbox entry {entry_id}", body)
            assert not isinstance(command, Record)  # only the other commands are written to the outbox
            entries.append(OutboxEntry(entry_id, event_seq, command_id, command, created_at))
        return entries

    def records_of(self, msisdn: str) -> list[Record]:
        return list(self._records("SELECT id, body FROM records WHERE msisdn = ? ORDER BY id", (msisdn,)))

    def records(self) -> Iterator[Record]:
        return self._records("SELECT id, body FROM records ORDER BY id", ())

    def outbox_of(self, msisdn: str) -> list[tuple[OutboxCommand, float | None, str | None]]:
        """Every command for one subscriber, in order, with when and how it was done (None: pending)."""
        found: list[tuple[OutboxCommand, float | None, str | None]] = []
        for entry_id, body, done_at, note in self._db.execute(
            "SELECT entry_id, body, done_at, done_note FROM outbox WHERE msisdn = ? ORDER BY entry_id",
            (msisdn,),
        ):
            command = self._command(f"outbox entry {entry_id}", body)
            assert not isinstance(command, Record)
            found.append((command, done_at, note))
        return found

    def counts(self) -> dict[str, int]:
        """Rows per table and pending commands (for logs and tests)."""
        out: dict[str, int] = {}
        for name, query in (
            ("events", "SELECT count(*) FROM events"),
            ("records", "SELECT count(*) FROM records"),
            ("outbox", "SELECT count(*) FROM outbox"),
            ("pending", "SELECT count(*) FROM outbox WHERE done_at IS NULL"),
        ):
            out[name] = int(self._db.execute(query).fetchone()[0])
        return out

    def _records(self, query: str, params: tuple[Any, ...]) -> Iterator[Record]:
        for row_id, body in self._db.execute(query, params):
            record = self._command(f"record {row_id}", body)
            assert isinstance(record, Record)
            yield record

    def _event(self, seq: int, body: str) -> Event:
        try:
            return event_from_json(json.loads(body))
        except (ValueError, DecodeError) as exc:
            raise StoreError(f"campaign store {self.path}: event {seq} is corrupt: {exc}") from None

    def _command(self, where: str, body: str) -> Command:
        try:
            return command_from_json(json.loads(body))
        except (ValueError, DecodeError) as exc:
            raise StoreError(f"campaign store {self.path}: {where} is corrupt: {exc}") from None
