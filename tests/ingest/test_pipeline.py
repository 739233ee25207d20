"""The ingest pipeline (gateway.ingest.pipeline) over a real journal file and the real trigger
detector: durable take, detection in journal order, duplicates, counters, and what a crash at each
point gives after ``recover()``: exactly the triggers not yet handed over (at-least-once only for a
batch whose hand-over was cut short)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from campaign_core.triggers import TriggerDetector
from campaign_core.usage import Trigger, TriggerKind, UsageEvent, UsageKind
from gateway.ingest.journal import IngestJournal
from gateway.ingest.pipeline import IngestPipeline
from protocols.errors import TransportError

T0 = 1_717_243_200.0
MakeRig = Callable[..., Any]


def key(trigger: Trigger) -> tuple[object, ...]:
    """A trigger without ``detected_at`` (which is the clock at detection, replay or not)."""
    return (trigger.kind, trigger.msisdn, trigger.package_id, trigger.period, trigger.level, trigger.event_id)


def stream(subscribers: int = 6) -> list[UsageEvent]:
    """Per subscriber: 40 %, 92 % (THRESHOLD 90), the 92 % again (duplicate), EXHAUSTED, RENEWED into
    period 2, 91 % in period 2 (THRESHOLD again): interleaved over subscribers by time."""
    steps: list[tuple[str, UsageKind, float | None, str | None]] = [
        ("40", UsageKind.USAGE, 40.0, None),
        ("92", UsageKind.USAGE, 92.0, None),
        ("92", UsageKind.USAGE, 92.0, None),
        ("ex", UsageKind.EXHAUSTED, None, None),
        ("renew", UsageKind.RENEWED, None, "2"),
        ("p2-91", UsageKind.THRESHOLD, 91.0, "2"),
    ]
    events: list[UsageEvent] = []
    for step, (suffix, kind, percent, period) in enumerate(steps):
        for n in range(subscribers):
            msisdn = f"4670000{n:04d}"
            time = T0 + step * 60 + n
            events.append(
                UsageEvent(
                    f"{msisdn}-{suffix}",
                    msisdn,
                    kind,
                    "pkg",
                    time,
                    "dpi:test",
                    percent=percent,
                    period=period,
                )
            )
    return events


def batches(events: Sequence[UsageEvent], size: int = 5) -> list[list[UsageEvent]]:
    return [list(events[i : i + size]) for i in range(0, len(events), size)]


async def reference(make_rig: MakeRig, all_batches: list[list[UsageEvent]]) -> list[Trigger]:
    """The triggers of an uninterrupted run (then the journal file is removed for the real test)."""
    made = await make_rig()
    for batch in all_batches:
        await made.pipeline.take(batch)
    await made.pipeline.close()
    await made.journal.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{made.path}{suffix}").unlink(missing_ok=True)
    triggers: list[Trigger] = made.triggers
    return triggers


async def test_take_journals_then_detects_and_hands_over(
    rig: Any, make_usage: Callable[..., UsageEvent]
) -> None:
    events = [
        make_usage("a", percent=50.0),
        make_usage("b", percent=91.0, event_time=T0 + 5),
        make_usage("c", kind=UsageKind.EXHAUSTED, event_time=T0 + 9),
    ]
    rig.clock.now = T0 + 10
    await rig.pipeline.take(events)
    # when take returns: journaled (a fresh connection sees the row) and detected (sync on_trigger called)
    with sqlite3.connect(rig.path) as conn:
        assert conn.execute("SELECT event_count, source FROM batches").fetchall() == [(3, "test")]
    assert [(t.kind, t.level, t.event_id, t.detected_at) for t in rig.triggers] == [
        (TriggerKind.THRESHOLD, 90, "b", T0 + 10),
        (TriggerKind.EXHAUSTED, 100, "c", T0 + 10),
    ]
    await rig.pipeline.drain()
    assert await rig.journal.pending() == []  # marked processed
    counters = rig.pipeline.counters
    assert (counters.events_taken, counters.batches_taken, counters.duplicates) == (3, 1, 0)
    assert counters.triggers == {TriggerKind.THRESHOLD: 1, TriggerKind.EXHAUSTED: 1}
    assert counters.journal_commits >= 1
    assert list(rig.pipeline.latency_samples) == [5.0, 1.0]


async def test_duplicates_are_counted_and_never_trigger_twice(
    rig: Any, make_usage: Callable[..., UsageEvent]
) -> None:
    event = make_usage("same", percent=95.0)
    await rig.pipeline.take([event, event])
    await rig.pipeline.take([event])
    assert len(rig.triggers) == 1
    assert rig.pipeline.counters.duplicates == 2
    assert rig.pipeline.counters.events_taken == 3


async def test_concurrent_takes_detect_in_journal_order(make_rig: MakeRig) -> None:
    all_batches = batches(stream())
    expected = [key(t) for t in await reference(make_rig, all_batches)]
    made = await make_rig()
    await asyncio.gather(*(made.pipeline.take(batch) for batch in all_batches))
    assert [key(t) for t in made.triggers] == expected
    assert made.journal.stats.commits < len(all_batches)  # group commit happened
    assert len(expected) == 18  # 6 subscribers x (90 %, exhausted, 90 % in period 2)
    await made.pipeline.close()
    await made.journal.close()


async def test_a_failed_journal_means_not_taken_and_nothing_detected(
    rig: Any, make_usage: Callable[..., UsageEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(requests: object) -> list[int]:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(rig.journal, "_write", broken)
    with pytest.raises(TransportError, match="disk I/O error"):
        await rig.pipeline.take([make_usage("x", percent=99.0)])
    assert rig.triggers == []
    assert rig.pipeline.counters.events_taken == 0


async def test_bad_events_reported_by_adapters_are_counted(rig: Any) -> None:
    rig.pipeline.note_bad(3)
    rig.pipeline.note_bad(2)
    assert rig.pipeline.counters.bad_events == 5


async def test_crash_between_take_and_detection_replays_exactly_the_missing_triggers(
    make_rig: MakeRig,
) -> None:
    all_batches = batches(stream())
    expected = [key(t) for t in await reference(make_rig, all_batches)]
    first = await make_rig()
    for batch in all_batches[:4]:
        await first.pipeline.take(batch)
    await first.pipeline.close()  # from here on, commits are not detected: the crash window
    for batch in all_batches[4:]:
        await first.journal.append(batch, "dpi:test")
    await first.journal.close()
    assert 0 < len(first.triggers) < len(expected)

    second = await make_rig()
    replayed = await second.pipeline.recover()
    assert replayed == len(all_batches)  # no checkpoint yet: the whole journal
    assert [key(t) for t in first.triggers + second.triggers] == expected
    assert await second.journal.pending() == []
    await second.pipeline.close()
    await second.journal.close()

    third = await make_rig()  # a clean restart raises nothing again
    await third.pipeline.recover()
    assert third.triggers == []
    await third.pipeline.close()
    await third.journal.close()


async def test_checkpoints_bound_the_replay_and_keep_it_exact(make_rig: MakeRig) -> None:
    all_batches = batches(stream())
    expected = [key(t) for t in await reference(make_rig, all_batches)]
    first = await make_rig(checkpoint_every=7)
    for batch in all_batches[:5]:
        await first.pipeline.take(batch)
    await first.pipeline.drain()
    checkpoint = await first.journal.load_checkpoint()
    assert checkpoint is not None and first.pipeline.counters.checkpoints >= 2
    assert await first.journal.batch_count() < 5  # pruned
    await first.pipeline.close()
    for batch in all_batches[5:]:
        await first.journal.append(batch, "dpi:test")  # taken, never detected
    await first.journal.close()

    second = await make_rig(checkpoint_every=7)
    replayed = await second.pipeline.recover()
    assert replayed < len(all_batches)  # only what follows the checkpoint
    assert [key(t) for t in first.triggers + second.triggers] == expected
    # the restored detector is the one that crashed: its state equals the reference detector's
    reference_detector = TriggerDetector(thresholds=(90,))
    for event in stream():
        reference_detector.handle(event, 0.0)
    assert second.pipeline.detector.snapshot() == reference_detector.snapshot()
    await second.pipeline.close()
    await second.journal.close()


async def test_a_cut_short_hand_over_is_raised_again_and_never_checkpointed(
    tmp_path: Path, clock: Callable[[], float], make_rig: MakeRig
) -> None:
    """At-least-once: the batch whose (async) hand-over did not complete, and every batch after it,
    raise their triggers again at recovery; batches handed over before do not; no checkpoint was
    taken past the stuck batch meanwhile."""
    all_batches = batches(stream(), size=3)
    expected = [key(t) for t in await reference(make_rig, all_batches)]
    path = tmp_path / "ingest.sqlite"
    stuck = asyncio.Event()  # never set: the campaign engine hangs on one trigger, then the process dies
    invoked: list[Trigger] = []
    delivered: list[Trigger] = []

    async def consume(trigger: Trigger) -> None:
        if trigger.event_id == "46700000002-ex":
            await stuck.wait()
        delivered.append(trigger)

    def on_trigger(trigger: Trigger) -> Any:
        invoked.append(trigger)
        return consume(trigger)

    journal = IngestJournal(path, clock=clock)
    await journal.open()
    pipeline = IngestPipeline(journal, TriggerDetector((90,)), on_trigger, clock=clock, checkpoint_every=1)
    for batch in all_batches:
        await pipeline.take(batch)  # take does not wait for the hand-over: adapters ack on durability
    await asyncio.sleep(0.05)  # the hand-over runs up to the stuck trigger
    assert 0 < len(delivered) < len(invoked) == len(expected)
    await pipeline.close(timeout=0.01)  # the crash: the hand-over is cut short
    unmarked = {event.event_id for batch in await journal.pending() for event in batch.events}
    checkpoint = await journal.load_checkpoint()
    assert checkpoint is not None  # taken while nothing was stuck...
    stuck_batch = next(
        b for b in await journal.pending() if "46700000002-ex" in {e.event_id for e in b.events}
    )
    assert checkpoint.up_to_batch_id < stuck_batch.batch_id  # ...never past the stuck batch
    await journal.close()

    journal = IngestJournal(path, clock=clock)
    await journal.open()
    again: list[Trigger] = []
    pipeline = IngestPipeline(journal, TriggerDetector((90,)), again.append, clock=clock)
    await pipeline.recover()
    assert [key(t) for t in again] == [key(t) for t in invoked if t.event_id in unmarked]
    assert "46700000002-ex" in {t.event_id for t in again}
    marked_delivered = [key(t) for t in delivered if t.event_id not in unmarked]
    assert marked_delivered and not set(marked_delivered) & {key(t) for t in again}
    assert sorted(set(marked_delivered) | {key(t) for t in again}, key=expected.index) == expected
    await pipeline.close()
    await journal.close()


async def test_async_consumers_are_awaited_in_order_before_marking(
    tmp_path: Path, clock: Callable[[], float]
) -> None:
    journal = IngestJournal(tmp_path / "ingest.sqlite", clock=clock)
    await journal.open()
    order: list[str] = []

    async def consumer(trigger: Trigger) -> None:
        await asyncio.sleep(0.001 if trigger.kind is TriggerKind.THRESHOLD else 0)
        order.append(trigger.event_id)

    failures = 0

    def flaky(trigger: Trigger) -> Any:
        nonlocal failures
        if trigger.kind is TriggerKind.EXHAUSTED and failures == 0:
            failures += 1
            raise RuntimeError("consumer bug")
        return consumer(trigger)

    pipeline = IngestPipeline(journal, TriggerDetector((90,)), flaky, clock=clock)
    for batch in batches(stream(2), size=2):
        await pipeline.take(batch)
    await pipeline.drain()
    assert await journal.pending() == []  # all marked once handed over
    assert pipeline.counters.trigger_errors == 1
    assert order == [
        "46700000000-92",
        "46700000001-92",
        "46700000001-ex",  # 46700000000-ex hit the consumer bug: logged, counted, not retried
        "46700000000-p2-91",
        "46700000001-p2-91",
    ]
    await pipeline.close()
    await journal.close()


async def test_a_journal_closing_under_the_pipeline_leaves_the_batch_for_replay(
    make_rig: MakeRig, make_usage: Callable[..., UsageEvent], caplog: pytest.LogCaptureFixture
) -> None:
    first = await make_rig()
    take = asyncio.create_task(first.pipeline.take([make_usage("late", percent=99.0)]))
    await asyncio.sleep(0)  # the batch is queued
    await first.journal.close()  # commits it; marking it processed is refused now
    await take
    assert [t.event_id for t in first.triggers] == ["late"]
    assert "replay at the next start" in caplog.text
    await first.pipeline.close()

    second = await make_rig()
    assert await second.pipeline.recover() == 1
    assert [t.event_id for t in second.triggers] == ["late"]  # at-least-once: handed over again
    await second.pipeline.close()
    await second.journal.close()


async def test_the_duplicate_window_counts_re_deliveries_and_forgets_old_ids(
    make_rig: MakeRig, make_usage: Callable[..., UsageEvent]
) -> None:
    made = await make_rig(duplicate_window=4)

    def events(*numbers: int) -> list[UsageEvent]:
        return [make_usage(f"id{n}", msisdn=f"4670000{n:04d}", percent=50.0) for n in numbers]

    await made.pipeline.take(events(0, 1, 2))
    await made.pipeline.take(events(2, 3, 3))  # 2 seen before, 3 twice in the batch
    assert made.pipeline.counters.duplicates == 2
    await made.pipeline.take(events(4, 5, 6))  # the window (>= 4 distinct ids) lets 0, 1, 2 go
    await made.pipeline.take(events(0, 3))  # 0 was forgotten, 3 is still in the window
    assert made.pipeline.counters.duplicates == 3
    assert len(made.pipeline._seen_ids) <= 4 + 3  # bounded: the window and at most one batch more
    assert made.pipeline.counters.events_taken == 11
    await made.pipeline.close()
    await made.journal.close()

    unwatched = await make_rig(duplicate_window=0)  # no window: not counted at all
    await unwatched.pipeline.take(events(7, 7))
    assert unwatched.pipeline.counters.duplicates == 0
    await unwatched.pipeline.close()
    await unwatched.journal.close()


async def test_failing_on_trigger_calls_never_stop_the_others(
    tmp_path: Path, clock: Callable[[], float], caplog: pytest.LogCaptureFixture
) -> None:
    journal = IngestJournal(tmp_path / "ingest.sqlite", clock=clock)
    await journal.open()
    delivered: list[str] = []

    def on_trigger(trigger: Trigger) -> None:
        if trigger.msisdn in ("46700000000", "46700000002", "46700000005"):
            raise RuntimeError(f"consumer bug {trigger.msisdn}")
        delivered.append(trigger.msisdn)

    pipeline = IngestPipeline(journal, TriggerDetector((90,)), on_trigger, clock=clock)
    exhausted = [e for e in stream() if e.kind is UsageKind.EXHAUSTED]  # 6 triggers in one batch
    await pipeline.take(exhausted)
    assert delivered == ["46700000001", "46700000003", "46700000004"]
    counters = pipeline.counters
    assert counters.trigger_errors == 3
    assert counters.triggers == {TriggerKind.EXHAUSTED: 6}
    assert len(pipeline.latency_samples) == 6
    assert "46700000005-ex" in caplog.text and "consumer bug 46700000002" in caplog.text
    await pipeline.drain()
    assert await journal.pending() == []  # handed over (the failures are the consumer's): marked
    await pipeline.close()
    await journal.close()


async def test_latency_samples_keep_the_latest(make_rig: MakeRig) -> None:
    made = await make_rig(latency_samples=4)
    made.clock.now = T0 + 1000
    exhausted = [e for e in stream() if e.kind is UsageKind.EXHAUSTED]
    await made.pipeline.take(exhausted)
    assert list(made.pipeline.latency_samples) == [T0 + 1000 - e.event_time for e in exhausted[-4:]]
    await made.pipeline.close()
    await made.journal.close()
