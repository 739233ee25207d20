"""The durable intake journal: usage events are on disk before any adapter acknowledges them.

DESIGN.md "Durability" and the ``EventSink`` contract of ``gateway.ingest``: an adapter answers its
wire (Diameter 2001, MQTT PUBACK, HTTP 202) only once ``take`` returned, and ``take`` returns once the
journal committed the batch. One SQLite file (stdlib ``sqlite3``) in WAL mode; ``synchronous``
NORMAL by default, which in WAL mode makes a commit survive a crash of this process (the WAL is
written before COMMIT returns) but not necessarily a power loss (the fsync happens at WAL
checkpoints); FULL adds an fsync per commit for that.

Layout
    ``batches``: one row per batch, not per event: ``batch_id`` (AUTOINCREMENT, so ids only grow, even
    after pruning), ``source``, ``received_at``, ``event_count``, ``events``, ``processed`` and
    ``format``, which says what ``events`` holds (no pickle either way):

    * ``events`` (``FORMAT_EVENTS``): compact JSON text, an array of arrays: ``[event_id, msisdn, kind,
      package_id, event_time, sequence, used_bytes, quota_bytes, percent, period]``, plus the event's
      ``source`` as an 11th item when it differs from the batch's. Floats go through ``repr`` and
      come back bit-identical.
    * ``dpi-jsonl`` (``FORMAT_DPI_JSON_LINES``): the DPI JSON lines the events were validated from
      (``gateway.ingest.schema.JsonLinesEvents``), as they came (a BLOB), decoded on replay by
      ``schema.parse_json_lines`` with the batch's source: the same validation of the same bytes,
      so the very same events. This costs no encoding at all on the way in (the JSON of the events
      cost 21k instructions per event, more than validating them); the rows are about twice as
      large. Replay after an upgrade runs the new code on these rows: a change of the DPI schema
      (or of pydantic's validation) must keep decoding them as before, or migrate them.

    Either way a replay feeds the detector the very same values (``tests/ingest/test_journal.py``
    compares the floats bit for bit). Schema version 1 (before ``format``) is migrated on open.

    ``checkpoint``: at most one row, the trigger detector's snapshot (JSON) and the last batch it
    reflects; saving it prunes the processed batches up to that one.

Group commit
    ``append``, ``mark_processed`` and ``save_checkpoint`` queue a request and return a future. The
    queue is written by ONE worker thread (a dedicated single-thread executor that owns the
    connection), one transaction per flush: every request queued in the same event-loop iteration,
    or while the previous transaction was running, shares that transaction and its commit. So under
    load a commit covers many batches, and at rest a lone batch is committed at once
    (``group_window`` can add a short wait to gather more). The loop never waits on SQLite.
    Cancelling the wait for a future does not cancel the write.

After each commit, in the loop thread, the commit listener (the ingest pipeline) is called with the
batches of that commit in ``batch_id`` order, before their ``append`` futures resolve: detection
follows the journal order whatever happens to the tasks that appended.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from campaign_core.usage import UsageEvent, UsageKind
from gateway.ingest.schema import JsonLinesEvents, parse_json_lines
from protocols.errors import LocalProtocolError, TransportError

__all__ = [
    "FORMAT_DPI_JSON_LINES",
    "FORMAT_EVENTS",
    "SCHEMA_VERSION",
    "Checkpoint",
    "CommitListener",
    "IngestJournal",
    "JournalBatch",
    "decode_batch",
    "decode_events",
    "encode_batch",
    "encode_events",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

SCHEMA_VERSION = 2

CACHE_KIB = 16 * 1024
"""SQLite's page cache (its default is 2 MiB): a transaction larger than the cache spills pages to the WAL
before its commit, which cost a third more CPU per event with 10k-event JSON-lines batches (2.5 MB)."""

PAGE_SIZE = 65536
"""The largest SQLite page, for a new journal file (see ``_connect``)."""

FORMAT_EVENTS = "events"
FORMAT_DPI_JSON_LINES = "dpi-jsonl"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS batches (
        batch_id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        received_at REAL NOT NULL,
        event_count INTEGER NOT NULL,
        events TEXT NOT NULL,
        processed INTEGER NOT NULL DEFAULT 0,
        format TEXT NOT NULL DEFAULT 'events'
    )""",
    """CREATE TABLE IF NOT EXISTS checkpoint (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        snapshot TEXT NOT NULL,
        up_to_batch_id INTEGER NOT NULL,
        saved_at REAL NOT NULL
    )""",
)

_MIGRATIONS = {1: ("ALTER TABLE batches ADD COLUMN format TEXT NOT NULL DEFAULT 'events'",)}
"""The statements that take a journal from one schema version to the next."""

_COLUMNS = "SELECT batch_id, source, received_at, event_count, format, events, processed FROM batches"
_SELECT_PENDING = _COLUMNS + " WHERE processed = 0 ORDER BY batch_id"
_SELECT_AFTER = _COLUMNS + " WHERE batch_id > ? ORDER BY batch_id"

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


@dataclass(frozen=True, slots=True)
class JournalBatch:
    """One journaled batch as read back (or as just committed)."""

    batch_id: int
    source: str
    received_at: float
    events: tuple[UsageEvent, ...]
    processed: bool = False


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The trigger detector's state after every batch up to ``up_to_batch_id`` (inclusive)."""

    snapshot_json: str
    up_to_batch_id: int
    saved_at: float


CommitListener = Callable[[Sequence[JournalBatch]], None]
"""Called in the loop thread with the batches of each commit, in ``batch_id`` order."""


def encode_events(events: Sequence[UsageEvent], source: str) -> str:
    """The compact JSON of a batch's events (see the module docstring)."""
    return json.dumps(
        [
            [
                e.event_id,
                e.msisdn,
                e.kind,  # a StrEnum: encoded as its value
                e.package_id,
                e.event_time,
                e.sequence,
                e.used_bytes,
                e.quota_bytes,
                e.percent,
                e.period,
            ]
            if e.source == source
            else [
                e.event_id,
                e.msisdn,
                e.kind,
                e.package_id,
                e.event_time,
                e.sequence,
                e.used_bytes,
                e.quota_bytes,
                e.percent,
                e.period,
                e.source,
            ]
            for e in events
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def encode_batch(events: Sequence[UsageEvent], source: str) -> tuple[str, str | bytes]:
    """The ``(format, events)`` columns of a batch: its JSON lines as they came when it has them."""
    if isinstance(events, JsonLinesEvents) and events.source == source:
        return FORMAT_DPI_JSON_LINES, events.lines
    return FORMAT_EVENTS, encode_events(events, source)


def decode_batch(row_format: str, data: str | bytes, source: str, event_count: int) -> tuple[UsageEvent, ...]:
    """The events of a row ``encode_batch`` wrote; ``TransportError`` if the row is corrupt."""
    if row_format == FORMAT_EVENTS and isinstance(data, str):
        events = decode_events(data, source)
    elif row_format == FORMAT_DPI_JSON_LINES and isinstance(data, bytes):
        parsed = parse_json_lines(data, source)
        if parsed.errors:
            raise TransportError(f"journal: a batch row is corrupt: {parsed.errors[0].error}")
        events = tuple(parsed.events)
    else:
        raise TransportError(
            f"journal: a batch row is corrupt: format {row_format!r} of {type(data).__name__}"
        )
    if len(events) != event_count:
        raise TransportError(f"journal: a batch row is corrupt: {len(events)} events, not {event_count}")
    return events


def decode_events(text: str, source: str) -> tuple[UsageEvent, ...]:
    """The events ``encode_events`` wrote; ``TransportError`` if the row is not such JSON."""
    try:
        rows = json.loads(text)
        return tuple(
            UsageEvent(
                event_id=row[0],
                msisdn=row[1],
                kind=UsageKind(row[2]),
                package_id=row[3],
                event_time=row[4],
                source=row[10] if len(row) > 10 else source,
                sequence=row[5],
                used_bytes=row[6],
                quota_bytes=row[7],
                percent=row[8],
                period=row[9],
            )
            for row in rows
        )
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise TransportError(f"journal: a batch row is corrupt: {exc!r}") from None


@dataclass(slots=True)
class _Append:
    events: Sequence[UsageEvent]
    source: str
    received_at: float
    future: asyncio.Future[int]


@dataclass(slots=True)
class _Mark:
    batch_ids: tuple[int, ...]
    future: asyncio.Future[None]


@dataclass(slots=True)
class _SaveCheckpoint:
    snapshot: str | Mapping[str, Any]
    up_to_batch_id: int
    saved_at: float
    future: asyncio.Future[None]


_Request = _Append | _Mark | _SaveCheckpoint


@dataclass(slots=True)
class _Stats:
    commits: int = 0
    batches: int = 0
    events: int = 0
    failed_commits: int = 0
    pruned_batches: int = 0
    last_commit_size: int = 0


class IngestJournal:
    """The intake journal over one SQLite file; ``await open()`` (or ``async with``) before use."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "NORMAL",
        group_window: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise LocalProtocolError(
                f"journal: synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}"
            )
        if group_window < 0:
            raise LocalProtocolError("journal: group_window must not be negative")
        self.path = Path(path)
        self.synchronous = synchronous
        self.group_window = group_window
        self.stats = _Stats()
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # touched only in the executor's thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: list[_Request] = []
        self._busy = False
        self._flush_scheduled = False
        self._closing = False
        self._idle: asyncio.Event | None = None
        self._listener: CommitListener | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        """Open (creating it if need be) the database; its schema is created on first use."""
        if self._executor is not None:
            raise LocalProtocolError("journal: already open")
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-journal")
        try:
            await self._loop.run_in_executor(self._executor, self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        """Write what is queued, then close the database. Appends after this raise ``TransportError``."""
        if self._executor is None or self._closing:
            return
        self._closing = True
        assert self._idle is not None and self._loop is not None
        while self._queue or self._busy:
            self._idle.clear()
            if not self._busy:
                self._flush()
            await self._idle.wait()
        executor = self._executor
        await self._loop.run_in_executor(executor, self._disconnect)
        executor.shutdown(wait=True)
        self._executor = None

    async def __aenter__(self) -> IngestJournal:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def set_commit_listener(self, listener: CommitListener | None) -> None:
        """The one listener told about each commit's batches (the ingest pipeline's detection)."""
        if listener is not None and self._listener is not None and listener != self._listener:
            raise LocalProtocolError("journal: a commit listener is set already (one pipeline per journal)")
        self._listener = listener

    # --- writes (group-committed) ----------------------------------------------------------------

    def append(self, events: Sequence[UsageEvent], source: str) -> asyncio.Future[int]:
        """Queue one batch; the future gives its ``batch_id`` once the transaction committed."""
        future: asyncio.Future[int] = self._new_future()
        self._enqueue(_Append(events, source, self._clock(), future))
        return future

    def mark_processed(self, batch_ids: Iterable[int]) -> asyncio.Future[None]:
        """Queue marking batches as seen by the detector (their triggers were handed over)."""
        future: asyncio.Future[None] = self._new_future()
        self._enqueue(_Mark(tuple(batch_ids), future))
        return future

    def save_checkpoint(self, snapshot: str | Mapping[str, Any], up_to_batch_id: int) -> asyncio.Future[None]:
        """Queue storing the detector's snapshot (JSON text, or a mapping dumped in the worker thread)
        as the state after every batch up to ``up_to_batch_id``, then pruning the processed batches up
        to it. The caller guarantees those batches were all processed (marked earlier or in the same
        flush): replay starts after ``up_to_batch_id``."""
        future: asyncio.Future[None] = self._new_future()
        self._enqueue(_SaveCheckpoint(snapshot, up_to_batch_id, self._clock(), future))
        return future

    # --- reads -----------------------------------------------------------------------------------

    async def pending(self) -> list[JournalBatch]:
        """The committed batches not marked processed, oldest first."""
        return await self._read(self._select_batches, _SELECT_PENDING, ())

    async def batches_after(self, batch_id: int) -> list[JournalBatch]:
        """Every committed batch after ``batch_id`` (processed or not), oldest first: what a detector
        restored from a checkpoint up to ``batch_id`` must see again to reach the present state."""
        return await self._read(self._select_batches, _SELECT_AFTER, (batch_id,))

    async def load_checkpoint(self) -> Checkpoint | None:
        """The last saved checkpoint, if any."""
        return await self._read(self._select_checkpoint)

    async def batch_count(self) -> int:
        """Batches still stored (processed or not): what pruning keeps bounded."""
        return await self._read(self._count_batches)

    # --- loop side of the worker -----------------------------------------------------------------

    def _new_future(self) -> asyncio.Future[Any]:
        if self._loop is None or self._executor is None or self._closing:
            raise TransportError(f"journal {self.path}: not open")
        return self._loop.create_future()

    def _enqueue(self, request: _Request) -> None:
        self._queue.append(request)
        if self._busy or self._flush_scheduled:
            return  # written by the flush after the running transaction: that is the group commit
        assert self._loop is not None and self._idle is not None
        self._flush_scheduled = True
        self._idle.clear()
        if self.group_window:
            self._loop.call_later(self.group_window, self._flush)
        else:
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._busy or self._executor is None:
            return
        assert self._loop is not None and self._idle is not None
        if not self._queue:
            self._idle.set()
            return
        requests, self._queue = self._queue, []
        self._busy = True
        done = self._loop.run_in_executor(self._executor, self._write, requests)
        done.add_done_callback(lambda finished: self._written(requests, finished))

    def _written(self, requests: list[_Request], finished: asyncio.Future[list[int]]) -> None:
        self._busy = False
        error = finished.exception()
        if error is not None:
            self.stats.failed_commits += 1
            log.error("journal %s: transaction of %d requests failed: %r", self.path, len(requests), error)
            failure = error if isinstance(error, TransportError) else TransportError(f"journal: {error!r}")
            for request in requests:
                if not request.future.done():
                    request.future.set_exception(failure)
                    # nobody may be waiting any more (cancelled): do not warn "never retrieved"
                    request.future.exception()
        else:
            self._committed(requests, finished.result())
        if self._queue:
            self._flush()
        else:
            assert self._idle is not None
            self._idle.set()

    def _committed(self, requests: list[_Request], batch_ids: list[int]) -> None:
        self.stats.commits += 1
        self.stats.last_commit_size = len(requests)
        appended = [request for request in requests if isinstance(request, _Append)]
        batches = [
            JournalBatch(batch_id, request.source, request.received_at, tuple(request.events))
            for batch_id, request in zip(batch_ids, appended, strict=True)
        ]
        self.stats.batches += len(batches)
        self.stats.events += sum(len(batch.events) for batch in batches)
        if batches and self._listener is not None:
            try:
                self._listener(batches)
            except Exception:  # the batches are durable anyway: replay at the next start sees them
                log.exception("journal %s: commit listener failed", self.path)
        ids = iter(batch_ids)
        for request in requests:
            if request.future.done():
                if isinstance(request, _Append):
                    next(ids)
                continue
            if isinstance(request, _Append):
                request.future.set_result(next(ids))
            else:
                request.future.set_result(None)

    async def _read(self, function: Callable[..., _T], *args: Any) -> _T:
        if self._loop is None or self._executor is None or self._closing:
            raise TransportError(f"journal {self.path}: not open")
        try:
            return await self._loop.run_in_executor(self._executor, function, *args)
        except sqlite3.Error as exc:
            raise TransportError(f"journal {self.path}: {exc}") from exc

    # --- the worker thread -----------------------------------------------------------------------

    def _connect(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)  # explicit BEGIN / COMMIT
            # Rows are whole batches (a 10k-event body is 2 MB): 64 KiB pages store such a blob in a
            # sixteenth of the overflow pages, 1.2 -> 0.3 us of journal CPU per event (bench/ingest.py).
            # It only takes effect on a new file; an existing journal keeps its page size.
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")  # validated in __init__
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            for statement in _SCHEMA:
                conn.execute(statement)
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] in _MIGRATIONS:
                self._migrate(conn, row[0])
            elif row[0] != SCHEMA_VERSION:
                conn.close()
                raise TransportError(
                    f"journal {self.path}: schema version {row[0]}, this gateway reads {SCHEMA_VERSION}"
                )
        except sqlite3.Error as exc:
            raise TransportError(f"journal {self.path}: cannot open: {exc}") from exc
        self._conn = conn

    def _migrate(self, conn: sqlite3.Connection, version: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            while version != SCHEMA_VERSION:
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
            conn.execute("UPDATE schema_version SET version = ?", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("journal %s: migrated to schema version %d", self.path, version)

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write(self, requests: list[_Request]) -> list[int]:
        conn = self._conn
        if conn is None:
            raise TransportError(f"journal {self.path}: closed")
        batch_ids: list[int] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for request in requests:
                    if isinstance(request, _Append):
                        cursor = conn.execute(
                            "INSERT INTO batches (source, received_at, event_count, format, events)"
                            " VALUES (?, ?, ?, ?, ?)",
                            (
                                request.source,
                                request.received_at,
                                len(request.events),
                                *encode_batch(request.events, request.source),
                            ),
                        )
                        assert cursor.lastrowid is not None
                        batch_ids.append(cursor.lastrowid)
                    elif isinstance(request, _Mark):
                        conn.executemany(
                            "UPDATE batches SET processed = 1 WHERE batch_id = ?",
                            [(batch_id,) for batch_id in request.batch_ids],
                        )
                    else:
                        self._write_checkpoint(conn, request)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise TransportError(f"journal {self.path}: {exc}") from exc
        return batch_ids

    def _write_checkpoint(self, conn: sqlite3.Connection, request: _SaveCheckpoint) -> None:
        snapshot = request.snapshot
        text = snapshot if isinstance(snapshot, str) else json.dumps(snapshot, separators=(",", ":"))
        conn.execute(
            "INSERT OR REPLACE INTO checkpoint (id, snapshot, up_to_batch_id, saved_at) VALUES (1, ?, ?, ?)",
            (text, request.up_to_batch_id, request.saved_at),
        )
        cursor = conn.execute(
            "DELETE FROM batches WHERE batch_id <= ? AND processed = 1", (request.up_to_batch_id,)
        )
        self.stats.pruned_batches += max(cursor.rowcount, 0)

    def _select_batches(self, query: str, parameters: tuple[Any, ...]) -> list[JournalBatch]:
        assert self._conn is not None
        rows = self._conn.execute(query, parameters).fetchall()
        return [
            JournalBatch(
                batch_id,
                source,
                received_at,
                decode_batch(row_format, events, source, count),
                bool(processed),
            )
            for batch_id, source, received_at, count, row_format, events, processed in rows
        ]

    def _select_checkpoint(self) -> Checkpoint | None:
        assert self._conn is not None
        row = self._conn.execute(
            "SELECT snapshot, up_to_batch_id, saved_at FROM checkpoint WHERE id = 1"
        ).fetchone()
        return None if row is None else Checkpoint(row[0], row[1], row[2])

    def _count_batches(self) -> int:
        assert self._conn is not None
        count: int = self._conn.execute("SELECT count(*) FROM batches").fetchone()[0]
        return count
