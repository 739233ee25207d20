"""The durable intake journal (gateway.ingest.journal) on a real SQLite file: one row per batch,
group commit, what survives a crash, checkpoints and pruning, failures."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_core.usage import UsageEvent, UsageKind
from gateway.ingest.journal import (
    FORMAT_DPI_JSON_LINES,
    FORMAT_EVENTS,
    SCHEMA_VERSION,
    IngestJournal,
    JournalBatch,
    decode_batch,
    decode_events,
    encode_batch,
    encode_events,
)
from gateway.ingest.schema import JsonLinesEvents, parse_json_lines
from protocols.errors import LocalProtocolError, TransportError

MakeUsage = Callable[..., UsageEvent]


def batch_of(make_usage: MakeUsage, prefix: str, count: int = 3) -> list[UsageEvent]:
    return [
        make_usage(f"{prefix}-{i}", msisdn=f"4670000{i:04d}", event_time=1.7e9 + i / 3) for i in range(count)
    ]


async def opened(path: Path, **kwargs: object) -> IngestJournal:
    journal = IngestJournal(path, clock=lambda: 1234.5, **kwargs)  # type: ignore[arg-type]
    await journal.open()
    return journal


def test_events_round_trip_bit_identical_through_the_compact_json(make_usage: MakeUsage) -> None:
    events = [
        make_usage(
            "a", event_time=1717243200.1 + 1e-7, percent=89.99999999999999, used_bytes=2**62, sequence=0
        ),
        make_usage("b", kind=UsageKind.RENEWED, period="2024-06", source="other:source"),
        make_usage("ü-∆", msisdn="123456", package_id="paket ü", quota_bytes=0),
    ]
    text = encode_events(events, "test")
    assert decode_events(text, "test") == tuple(events)
    assert '"other:source"' in text and text.count('"test"') == 0  # the batch source is not repeated
    with pytest.raises(TransportError, match="corrupt"):
        decode_events('[["only", "three", "fields"]]', "test")


async def test_append_is_one_row_per_batch_and_reads_back(tmp_path: Path, make_usage: MakeUsage) -> None:
    journal = await opened(tmp_path / "j.sqlite")
    first = await journal.append(batch_of(make_usage, "x", 3), "dpi:http")
    second = await journal.append(batch_of(make_usage, "y", 2), "dpi:mqtt")
    assert second > first
    pending = await journal.pending()
    assert pending == [
        JournalBatch(first, "dpi:http", 1234.5, tuple(batch_of(make_usage, "x", 3))),
        JournalBatch(second, "dpi:mqtt", 1234.5, tuple(batch_of(make_usage, "y", 2))),
    ]
    await journal.close()
    with sqlite3.connect(tmp_path / "j.sqlite") as conn:
        assert conn.execute("SELECT count(*), sum(event_count) FROM batches").fetchone() == (2, 5)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_concurrent_appends_share_one_commit(tmp_path: Path, make_usage: MakeUsage) -> None:
    journal = await opened(tmp_path / "j.sqlite")
    ids = await asyncio.gather(*(journal.append(batch_of(make_usage, f"b{i}", 1), "s") for i in range(50)))
    assert journal.stats.commits == 1
    assert journal.stats.batches == 50
    assert ids == sorted(ids) and len(set(ids)) == 50
    # appends made while a transaction runs wait for it and then share the next one
    first = journal.append(batch_of(make_usage, "c0", 1), "s")
    await asyncio.sleep(0)  # the flush of `first` is now running in the worker thread
    rest = [journal.append(batch_of(make_usage, f"c{i}", 1), "s") for i in range(1, 30)]
    await asyncio.gather(first, *rest)
    assert journal.stats.commits <= 3
    await journal.close()


async def test_group_window_gathers_appends_made_a_little_apart(
    tmp_path: Path, make_usage: MakeUsage
) -> None:
    journal = await opened(tmp_path / "j.sqlite", group_window=0.2)
    futures = []
    for i in range(5):
        futures.append(journal.append(batch_of(make_usage, f"w{i}", 1), "s"))
        await asyncio.sleep(0.001)
    await asyncio.gather(*futures)
    assert journal.stats.commits == 1
    await journal.close()


async def test_unprocessed_batches_survive_a_crash_and_replay(tmp_path: Path, make_usage: MakeUsage) -> None:
    path = tmp_path / "j.sqlite"
    journal = await opened(path)
    done = await journal.append(batch_of(make_usage, "done"), "s")
    lost = await journal.append(batch_of(make_usage, "lost"), "s")
    await journal.mark_processed([done])
    await journal.close()  # the process dies before the detector saw `lost`

    journal = await opened(path)
    assert [batch.batch_id for batch in await journal.pending()] == [lost]
    assert [(b.batch_id, b.processed) for b in await journal.batches_after(0)] == [
        (done, True),
        (lost, False),
    ]
    await journal.mark_processed([lost])
    assert await journal.pending() == []
    later = await journal.append(batch_of(make_usage, "later"), "s")
    assert later > lost
    await journal.close()


async def test_checkpoint_prunes_processed_batches_and_bounds_replay(
    tmp_path: Path, make_usage: MakeUsage
) -> None:
    path = tmp_path / "j.sqlite"
    journal = await opened(path)
    ids = [await journal.append(batch_of(make_usage, f"b{i}"), "s") for i in range(4)]
    assert await journal.load_checkpoint() is None
    await journal.mark_processed(ids[:3])
    await journal.save_checkpoint('{"version": 1, "packages": []}', ids[2])
    assert journal.stats.pruned_batches == 3
    assert await journal.batch_count() == 1
    await journal.close()

    journal = await opened(path)
    checkpoint = await journal.load_checkpoint()
    assert checkpoint is not None
    assert (checkpoint.snapshot_json, checkpoint.up_to_batch_id, checkpoint.saved_at) == (
        '{"version": 1, "packages": []}',
        ids[2],
        1234.5,
    )
    assert [batch.batch_id for batch in await journal.batches_after(checkpoint.up_to_batch_id)] == [ids[3]]
    # a mapping is dumped in the worker thread; the newer checkpoint replaces the older
    await journal.mark_processed([ids[3]])
    await journal.save_checkpoint({"version": 1, "packages": [["x"]]}, ids[3])
    checkpoint = await journal.load_checkpoint()
    assert checkpoint is not None and checkpoint.snapshot_json == '{"version":1,"packages":[["x"]]}'
    assert await journal.batch_count() == 0
    # ids never go back, even with every row pruned (AUTOINCREMENT): replay after a checkpoint stays right
    assert await journal.append(batch_of(make_usage, "next"), "s") > ids[3]
    await journal.close()


async def test_an_unprocessed_batch_is_never_pruned(tmp_path: Path, make_usage: MakeUsage) -> None:
    journal = await opened(tmp_path / "j.sqlite")
    first = await journal.append(batch_of(make_usage, "a"), "s")
    second = await journal.append(batch_of(make_usage, "b"), "s")
    await journal.mark_processed([second])
    await journal.save_checkpoint("{}", second)
    assert [batch.batch_id for batch in await journal.pending()] == [first]
    await journal.close()


async def test_the_listener_sees_each_commit_in_order_even_when_the_appender_is_cancelled(
    tmp_path: Path, make_usage: MakeUsage
) -> None:
    journal = await opened(tmp_path / "j.sqlite")
    seen: list[list[int]] = []
    journal.set_commit_listener(lambda batches: seen.append([batch.batch_id for batch in batches]))

    async def append(prefix: str) -> int:
        return await journal.append(batch_of(make_usage, prefix, 1), "s")

    tasks = [asyncio.create_task(append(f"t{i}")) for i in range(6)]
    await asyncio.sleep(0)  # every task queued its batch
    tasks[2].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[2], asyncio.CancelledError)
    told = [batch_id for batch in seen for batch_id in batch]
    stored = [batch.batch_id for batch in await journal.batches_after(0)]
    assert told == stored == sorted(stored)
    assert len(told) == 6  # the cancelled task's batch is journaled and told too
    with pytest.raises(LocalProtocolError, match="one pipeline per journal"):
        journal.set_commit_listener(lambda batches: None)
    await journal.close()


async def test_a_failed_transaction_fails_every_request_of_it(
    tmp_path: Path, make_usage: MakeUsage, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = await opened(tmp_path / "j.sqlite")
    committed = await journal.append(batch_of(make_usage, "ok"), "s")

    def broken(requests: object) -> list[int]:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(journal, "_write", broken)
    futures = [journal.append(batch_of(make_usage, "no"), "s"), journal.mark_processed([committed])]
    for future in futures:
        with pytest.raises(TransportError, match="disk is full"):
            await future
    assert journal.stats.failed_commits == 1
    monkeypatch.undo()
    assert [batch.batch_id for batch in await journal.pending()] == [committed]  # nothing half-written
    await journal.close()


async def test_a_real_sqlite_failure_is_a_transport_error(tmp_path: Path, make_usage: MakeUsage) -> None:
    journal = await opened(tmp_path / "j.sqlite")
    with sqlite3.connect(tmp_path / "j.sqlite") as other:
        other.execute("DROP TABLE batches")  # the file is broken under the running journal
    with pytest.raises(TransportError, match="no such table: batches"):
        await journal.append(batch_of(make_usage, "x"), "s")
    await journal.close()


async def test_closed_or_unopenable_journals_refuse(tmp_path: Path, make_usage: MakeUsage) -> None:
    journal = IngestJournal(tmp_path / "j.sqlite")
    with pytest.raises(TransportError, match="not open"):
        journal.append(batch_of(make_usage, "x"), "s")
    await journal.open()
    pending = journal.append(batch_of(make_usage, "x"), "s")
    await journal.close()  # writes what was queued first
    assert pending.done() and pending.result() == 1
    with pytest.raises(TransportError, match="not open"):
        journal.append(batch_of(make_usage, "y"), "s")
    with pytest.raises(TransportError, match="cannot open"):
        await IngestJournal(tmp_path / "missing-dir" / "j.sqlite").open()
    with pytest.raises(LocalProtocolError):
        IngestJournal(tmp_path / "j.sqlite", synchronous="SOMETIMES")  # type: ignore[arg-type]


async def test_synchronous_is_applied(tmp_path: Path, make_usage: MakeUsage) -> None:
    journal = await opened(tmp_path / "j.sqlite", synchronous="FULL")

    def synchronous() -> int:  # a per-connection setting: read it on the journal's own connection
        assert journal._conn is not None
        level: int = journal._conn.execute("PRAGMA synchronous").fetchone()[0]
        return level

    assert await journal._read(synchronous) == 2  # FULL
    await journal.close()


# --- JSON-lines batches: stored as they came, replayed through the schema -------------------------


def exactly(events: Sequence[UsageEvent]) -> list[str]:
    """Each event's values with their types, floats to the bit (repr tells -0.0 from 0.0)."""
    return [repr([(type(v), v) for v in dataclasses.astuple(event)]) for event in events]


DPI_LINES = b"\n".join(
    [
        b'{"event_id":"a","msisdn":"+46701234567","kind":"usage","package_id":"p","timestamp":1717243200.1000001,'
        b'"used_bytes":1,"quota_bytes":3}',
        b"",
        b'{"event_id":"b","msisdn":"46701234568","kind":"threshold","package_id":"p \\u00fc","timestamp":'
        b'"2024-06-01T14:00:00.123456789+02:00","percent":-0.0,"sequence":18446744073709551616,"period":"2024-06"}',
        b'{"event_id":"bad","msisdn":"12","kind":"usage","package_id":"p","timestamp":1}',
        b'{"event_id":"c","msisdn":"46701234569","kind":"exhausted","package_id":"p","timestamp":0,'
        b'"percent":89.99999999999999,"used_bytes":null,"vendor":{"x":[1,2]}}\r',
        b"   ",
        b'{"event_id":"d","msisdn":"46701234569","kind":"renewed","package_id":"p","timestamp":99999999999.99998}',
    ]
)


async def test_json_lines_batches_are_stored_as_they_came_and_replay_bit_identical(tmp_path: Path) -> None:
    parsed = parse_json_lines(DPI_LINES, "dpi:http")
    assert [e.event_id for e in parsed.events] == ["a", "b", "c", "d"] and len(parsed.errors) == 1
    taken = parsed.to_take()
    assert isinstance(taken, JsonLinesEvents)
    journal = await opened(tmp_path / "j.sqlite")
    batch_id = await journal.append(taken, "dpi:http")
    plain = await journal.append(list(parsed.events), "dpi:http")  # not JsonLinesEvents: encoded
    await journal.close()
    with sqlite3.connect(tmp_path / "j.sqlite") as conn:
        rows = conn.execute("SELECT format, events, event_count FROM batches ORDER BY batch_id").fetchall()
    assert rows[0] == (FORMAT_DPI_JSON_LINES, taken.lines, 4)
    assert b'"bad"' not in rows[0][1]  # only the lines that gave the events
    assert rows[1][0] == FORMAT_EVENTS and isinstance(rows[1][1], str)

    journal = await opened(tmp_path / "j.sqlite")  # the gateway restarted: replay
    replayed = await journal.pending()
    await journal.close()
    assert [batch.batch_id for batch in replayed] == [batch_id, plain]
    for batch in replayed:
        assert exactly(batch.events) == exactly(parsed.events)
        assert all(type(event.kind) is UsageKind for event in batch.events)
    assert replayed[0].events[1].percent == 0.0 and math.copysign(1, replayed[0].events[1].percent) == -1


def test_a_json_lines_batch_of_another_source_is_encoded_event_by_event() -> None:
    events = parse_json_lines(DPI_LINES, "dpi:mqtt").to_take()
    assert encode_batch(events, "dpi:mqtt")[0] == FORMAT_DPI_JSON_LINES
    row_format, data = encode_batch(events, "dpi:http")  # the lines would replay with the wrong source
    assert row_format == FORMAT_EVENTS
    assert decode_batch(row_format, data, "dpi:http", 4) == tuple(events)


lines_of_events = st.lists(
    st.fixed_dictionaries(
        {
            "event_id": st.text(min_size=1, max_size=12),
            "msisdn": st.from_regex(r"\A\+?[0-9]{5,15}\Z"),
            "kind": st.sampled_from([kind.value for kind in UsageKind]),
            "package_id": st.text(min_size=1, max_size=12),
            "timestamp": st.floats(min_value=0, max_value=1e11, exclude_max=True)
            | st.integers(min_value=0, max_value=10**11 - 1)
            | st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
        },
        optional={
            "sequence": st.none() | st.integers(min_value=0, max_value=2**70),
            "used_bytes": st.none() | st.integers(min_value=0, max_value=2**70),
            "quota_bytes": st.none() | st.integers(min_value=0, max_value=2**70),
            "percent": st.none() | st.floats(min_value=0, max_value=100),
            "period": st.none() | st.text(min_size=1, max_size=12),
        },
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=80, deadline=None)
@given(lines_of_events, st.sampled_from([b"\n", b"\r\n"]))
def test_generated_json_lines_rows_decode_to_the_very_same_events(
    items: list[dict[str, object]], newline: bytes
) -> None:
    body = newline.join(json.dumps(item, ensure_ascii=False).encode() for item in items)
    events = parse_json_lines(body, "dpi:http").to_take()
    assert len(events) == len(items)
    for batch in (events, list(events)):  # as the lines, and encoded event by event
        row_format, data = encode_batch(batch, "dpi:http")
        assert exactly(decode_batch(row_format, data, "dpi:http", len(items))) == exactly(events)


def test_corrupt_rows_are_transport_errors() -> None:
    lines = parse_json_lines(DPI_LINES, "s").to_take()
    row_format, data = encode_batch(lines, "s")
    with pytest.raises(TransportError, match="4 events, not 5"):
        decode_batch(row_format, data, "s", 5)
    with pytest.raises(TransportError, match="corrupt: msisdn: required field is missing"):
        decode_batch(FORMAT_DPI_JSON_LINES, b'{"event_id": "x"}', "s", 1)
    with pytest.raises(TransportError, match="format 'dpi-jsonl' of str"):
        decode_batch(FORMAT_DPI_JSON_LINES, "text", "s", 1)
    with pytest.raises(TransportError, match="format 'protobuf'"):
        decode_batch("protobuf", b"", "s", 0)


async def test_a_version_1_journal_is_migrated_and_its_rows_still_replay(
    tmp_path: Path, make_usage: MakeUsage
) -> None:
    path = tmp_path / "j.sqlite"
    events = batch_of(make_usage, "old", 2)
    with sqlite3.connect(path) as conn:  # the layout schema version 1 wrote
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        conn.execute(
            "CREATE TABLE batches (batch_id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL,"
            " received_at REAL NOT NULL, event_count INTEGER NOT NULL, events TEXT NOT NULL,"
            " processed INTEGER NOT NULL DEFAULT 0)"
        )
        conn.execute(
            "INSERT INTO batches (source, received_at, event_count, events) VALUES (?, ?, ?, ?)",
            ("test", 1.0, 2, encode_events(events, "test")),
        )
    conn.close()
    journal = await opened(path)
    assert [batch.events for batch in await journal.pending()] == [tuple(events)]
    lines = parse_json_lines(DPI_LINES, "dpi:http").to_take()
    await journal.append(lines, "dpi:http")
    assert [len(batch.events) for batch in await journal.pending()] == [2, 4]
    await journal.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert [row[0] for row in conn.execute("SELECT format FROM batches ORDER BY batch_id")] == [
            FORMAT_EVENTS,
            FORMAT_DPI_JSON_LINES,
        ]
    conn.close()


async def test_a_journal_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    await (await opened(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    conn.close()
    with pytest.raises(TransportError, match="schema version 99"):
        await opened(path)


async def test_a_new_journal_uses_64_kib_pages(tmp_path: Path) -> None:
    from gateway.ingest.journal import PAGE_SIZE

    path = tmp_path / "pages.sqlite"
    journal = IngestJournal(path)
    await journal.open()
    await journal.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 65536
