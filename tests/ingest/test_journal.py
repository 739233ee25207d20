"""The durable intake journal (gateway.ingest.journal) on a real SQLite file: one row per batch,
group commit, what survives a crash, checkpoints and pruning, failures."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from campaign_core.usage import UsageEvent, UsageKind
from gateway.ingest.journal import (
    IngestJournal,
    JournalBatch,
    decode_events,
    encode_events,
)
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
