"""The campaign engine's durable store: event log, decision trail and outbox (DESIGN.md, "Durability").

Issue #7: "Every decision, contact, timer and fulfilment is written to the store before it is acted on."
The campaign engine (``campaign_core.engine``) is pure and deterministic, so what has to be durable is
the input: each event with the ``now`` it was handled at. The engine's answer to it, the ``Record``\\ s
(the decision trail) and the commands to carry out (the outbox), is written IN THE SAME TRANSACTION, so
after a crash the store holds either an event and everything it caused or neither. The timers need no
table of their own: replaying the log rebuilds the engine, deadlines included
(``gateway.campaigns.runner``). So that a restart need not replay the whole log, the runner writes a
snapshot of the engine (``Engine.snapshot``) every so many events, in the transaction of the event it
follows; recovery restores the latest one and replays only the events after it.

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
    ``done_at`` / ``done_by`` / ``done_note`` once done; pending rows are indexed, and every row by
    MSISDN (``outbox_of``).
    ``snapshots``: the engine's state after the event ``event_seq`` (JSON ``body``), taken at ``at``.
    Only the latest is kept: writing one deletes the older ones.

Pruning (``keep_events=False``): each snapshot written also prunes the event log up to it, in a
transaction of its own right after the snapshot's. The records and the outbox stay (they are the audit
trail, and they refer to their events), so a pruned event keeps a row, ``seq``, ``at`` and ``type``, and
loses its ``body``; ``events()`` refuses to read one (only the events after the latest snapshot are
needed to recover). The pages the bodies took are reused by what is written next (the file does not
shrink without a ``VACUUM``). The default keeps every event, for ``tgw replay`` and for a recovery that
cannot use the snapshot (``Engine.restore`` refused it).

Command ids (``command_key``): ``QueryCredit.request_id`` (``<offer>:score``), ``PushStk`` /
``SendSms.command_id`` (``<offer>:<step>``, ``<offer>:confirm``), ``Activate.offer_id`` (billing's
idempotency key) and ``Reply.response_id``. Ids may repeat (a second ``Reply`` to a re-delivered
response): ``mark_done`` marks every pending row with the id.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from campaign_core.codec import command_from_json, command_to_json, event_from_json, event_to_json
from campaign_core.model import Activate, Command, Event, PushStk, QueryCredit, Record, Reply, SendSms
from gateway.storage.sqlite_base import SqliteFile, Synchronous
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
    "StoredSnapshot",
    "command_key",
]

SCHEMA_VERSION = 2

log = logging.getLogger(__name__)

OutboxCommand = QueryCredit | PushStk | SendSms | Activate | Reply
"""The commands the gateway carries out (every ``Command`` but ``Record``)."""

_SNAPSHOTS = (
    """CREATE TABLE snapshots (
        event_seq INTEGER PRIMARY KEY REFERENCES events (seq),
        at REAL NOT NULL,
        body TEXT NOT NULL
    )""",
)
_MIGRATIONS = {1: _SNAPSHOTS}  # from version n to n + 1
_PRUNED = ""  # the body of a pruned event

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
    *_SNAPSHOTS,
)
# ``outbox_of`` (``tgw explain``, the admin API's explain, on the event loop) reads one subscriber's
# commands: without it that read scans the whole outbox (150 ms a call at a million rows). An index
# changes no data, so a file of this schema version gets it when opened, older gateways keep reading
# the file, and no version is spent on it.
_OUTBOX_BY_MSISDN = "CREATE INDEX IF NOT EXISTS outbox_by_msisdn ON outbox (msisdn, entry_id)"


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
class StoredSnapshot:
    """The engine's state (``Engine.snapshot()``, parsed JSON) after the event ``seq``, taken at ``at``."""

    seq: int
    at: float
    data: dict[str, Any]


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
        self,
        event: Event,
        now: float,
        outputs: Sequence[Command],
        *,
        done: Collection[str] = (),
        snapshot: Mapping[str, Any] | None = None,
    ) -> int:
        """Write ``event`` (handled at ``now``), its ``outputs`` (records to the trail, the other
        commands to the outbox), mark the pending commands ``done`` (ids whose result ``event``
        reports) and write ``snapshot`` (the engine's state after ``event``) when given, in one
        transaction; the event's ``seq``."""
        ...

    def save_snapshot(self, seq: int, snapshot: Mapping[str, Any], now: float) -> None:
        """Write ``snapshot``, the engine's state after the event ``seq`` (the latest), in a
        transaction of its own (when the runner stops)."""
        ...

    def latest_snapshot(self) -> StoredSnapshot | None:
        """The latest snapshot, or None."""
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


class SqliteCampaignStore(SqliteFile):
    """``CampaignStore`` in one SQLite file (``":memory:"`` for a throw-away one). Close it, or use ``with``.

    ``busy_timeout`` is how long a write waits for another process holding the file's write lock (e.g.
    ``tgw explain`` reading while the gateway runs needs no lock: WAL readers never block).
    ``keep_events=False`` prunes the event log up to each snapshot written (module docstring).
    """

    WHAT = "campaign store"
    SCHEMA = _SCHEMA
    SCHEMA_VERSION = SCHEMA_VERSION
    MIGRATIONS = _MIGRATIONS

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 5.0,
        keep_events: bool = True,
        synchronous: Synchronous = "FULL",
    ) -> None:
        super().__init__(path, busy_timeout=busy_timeout, synchronous=synchronous)
        self.keep_events = keep_events
        self._unpruned: int | None = None  # the first event that may still have its body (when pruning)

    def _migrate(self) -> None:
        super()._migrate()
        with self._transaction() as db:
            db.execute(_OUTBOX_BY_MSISDN)

    # --- writes ------------------------------------------------------------------------------------

    def append(
        self,
        event: Event,
        now: float,
        outputs: Sequence[Command],
        *,
        done: Collection[str] = (),
        snapshot: Mapping[str, Any] | None = None,
    ) -> int:
        try:  # encode before the transaction: a value that is not JSON changes nothing
            body = _dumps(event_to_json(event))
            rows = [
                (position, command, _dumps(command_to_json(command)))
                for position, command in enumerate(outputs)
            ]
            state = None if snapshot is None else _dumps(snapshot)
        except (ValueError, TypeError) as exc:
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
            if state is not None:
                self._write_snapshot(db, seq, now, state)
        if state is not None and not self.keep_events:
            self._prune_or_warn(seq)
        return seq

    def save_snapshot(self, seq: int, snapshot: Mapping[str, Any], now: float) -> None:
        try:
            state = _dumps(snapshot)
        except (ValueError, TypeError) as exc:
            raise StoreError(f"campaign store {self.path}: cannot encode the snapshot: {exc}") from None
        with self._transaction() as db:
            last = db.execute("SELECT max(seq) FROM events").fetchone()[0]
            if last != seq:
                raise StoreError(
                    f"campaign store {self.path}: a snapshot after event {seq}, but the latest is {last}"
                )
            self._write_snapshot(db, seq, now, state)
        if not self.keep_events:
            self._prune_or_warn(seq)

    def _write_snapshot(self, db: sqlite3.Connection, seq: int, now: float, state: str) -> None:
        db.execute(
            "INSERT OR REPLACE INTO snapshots (event_seq, at, body) VALUES (?, ?, ?)", (seq, now, state)
        )
        db.execute("DELETE FROM snapshots WHERE event_seq < ?", (seq,))

    def _prune_or_warn(self, seq: int) -> None:
        """``_prune``; a failure is logged, not raised: the event and the snapshot are committed, and
        the next snapshot prunes what this one could not."""
        try:
            self._prune(seq)
        except StoreError as exc:
            log.warning("pruning the event log up to event %d failed; the next snapshot will: %s", seq, exc)

    def _prune(self, seq: int) -> None:
        """Drop the bodies of the events up to ``seq`` (``keep_events=False``), in a transaction of its
        own after the snapshot's: a crash in between leaves them for the next snapshot to prune.

        Each event is deleted and its row written again without the body: deleting is what lets SQLite
        merge the emptied pages and reuse them (a shorter body written in place would leave them as
        full as before). The records and the outbox refer to the events, so the foreign keys are off
        for this one transaction (``PRAGMA foreign_keys`` cannot change inside one): the rows are back,
        same ``seq``, when it commits, and checking every reference of every deleted row (the outbox's
        ``done_by`` has no index) would scan the outbox once per event.
        """
        db = self._db
        try:
            start = self._unpruned
            if start is None:  # once per store object: where the bodies begin (pruned rows are small)
                row = db.execute(
                    "SELECT seq FROM events WHERE body != ? ORDER BY seq LIMIT 1", (_PRUNED,)
                ).fetchone()
                start = seq + 1 if row is None else row[0]
            if start > seq:
                return
            db.execute("PRAGMA foreign_keys=OFF")
            try:
                with self._transaction():
                    rows = db.execute(
                        "SELECT seq, at, type FROM events WHERE seq >= ? AND seq <= ?", (start, seq)
                    ).fetchall()
                    db.execute("DELETE FROM events WHERE seq >= ? AND seq <= ?", (start, seq))
                    db.executemany(
                        "INSERT INTO events (seq, at, type, body) VALUES (?, ?, ?, ?)",
                        [(*row, _PRUNED) for row in rows],
                    )
            finally:
                db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StoreError(f"campaign store {self.path}: {exc}") from None
        self._unpruned = seq + 1

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

    def latest_snapshot(self) -> StoredSnapshot | None:
        row = self._db.execute(
            "SELECT event_seq, at, body FROM snapshots ORDER BY event_seq DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        seq, at, body = row
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise StoreError(
                f"campaign store {self.path}: the snapshot after event {seq} is corrupt: {exc}"
            ) from None
        if not isinstance(data, dict):
            raise StoreError(f"campaign store {self.path}: the snapshot after event {seq} is not an object")
        return StoredSnapshot(seq, at, data)

    def events(self, *, after: int = 0, outputs: bool = False) -> Iterator[StoredEvent]:
        """The log in order (see ``CampaignStore``). Read it to the end before writing: the cursors
        stay open while it is iterated. A pruned event raises ``StoreError``."""
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
        if body == _PRUNED:
            raise StoreError(
                f"campaign store {self.path}: event {seq} was pruned (keep_events=False): "
                "only the events after the latest snapshot can be read"
            )
        try:
            return event_from_json(json.loads(body))
        except (ValueError, DecodeError) as exc:
            raise StoreError(f"campaign store {self.path}: event {seq} is corrupt: {exc}") from None

    def _command(self, where: str, body: str) -> Command:
        try:
            return command_from_json(json.loads(body))
        except (ValueError, DecodeError) as exc:
            raise StoreError(f"campaign store {self.path}: {where} is corrupt: {exc}") from None
