"""The campaign store on SQLite (gateway.campaigns.store): an event, its records and its outbox commands
in one transaction; results marking commands done; the log read back in order for recovery; the trail
of one MSISDN; the file's settings (WAL, synchronous=FULL, schema version)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from campaign.engine_fixtures import MSISDN, T0, engine, exhausted

from campaign_core.model import (
    Activate,
    CreditScored,
    DeliveryReported,
    Payment,
    Profile,
    ProfileUpdated,
    PushStk,
    QueryCredit,
    Record,
    RecordKind,
    Reply,
    ResponseChannel,
    Tick,
    TriggerKind,
    TriggerRaised,
    offer_id,
)
from gateway.campaigns.store import (
    SCHEMA_VERSION,
    CampaignStore,
    SqliteCampaignStore,
    StoreError,
    command_key,
)

OFFER = offer_id("upsell-exhaustion", f"{MSISDN}/data-1gb/p1/100")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteCampaignStore]:
    with SqliteCampaignStore(tmp_path / "campaigns.db") as opened:
        yield opened


def test_file_settings(tmp_path: Path) -> None:
    path = tmp_path / "campaigns.db"
    with SqliteCampaignStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        db = store._db
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 99")
    db.close()
    with pytest.raises(StoreError, match="schema version 99"):
        SqliteCampaignStore(path)


def test_the_sqlite_store_is_a_campaign_store(store: SqliteCampaignStore) -> None:
    typed: CampaignStore = store  # mypy checks the Protocol; this checks the methods exist
    for name in ("append", "mark_done", "events", "pending", "records_of", "records", "close"):
        assert callable(getattr(typed, name))


def test_event_records_and_outbox_in_one_append(store: SqliteCampaignStore) -> None:
    e = engine()
    trigger = exhausted()
    out = e.handle(trigger, T0)
    seq = store.append(trigger, T0, out)
    assert seq == 1
    (logged,) = store.events(outputs=True)
    assert (logged.seq, logged.now, logged.event) == (1, T0, trigger)
    assert logged.outputs == tuple(out)  # records and commands, in the engine's order
    (plain,) = store.events()
    assert plain.outputs is None
    (pending,) = store.pending()
    assert pending.command == QueryCredit(f"{OFFER}:score", MSISDN, 5.0)
    assert (pending.command_id, pending.event_seq, pending.created_at) == (f"{OFFER}:score", 1, T0)
    assert [r.kind for r in store.records_of(MSISDN)] == [RecordKind.TRIGGER, RecordKind.ELIGIBLE]
    assert store.records_of("254799999999") == []

    # the result of the QueryCredit marks it done in the same transaction as it is logged
    scored = CreditScored(f"{OFFER}:score", MSISDN, Decimal(0), Decimal(100))
    out2 = e.handle(scored, T0 + 1)
    assert store.append(scored, T0 + 1, out2, done=[f"{OFFER}:score"]) == 2
    (push,) = store.pending()
    assert isinstance(push.command, PushStk) and push.command_id == f"{OFFER}:0"
    assert [s.seq for s in store.events(after=1)] == [2]
    assert [r.kind for r in store.records()] == [
        RecordKind.TRIGGER,
        RecordKind.ELIGIBLE,
        RecordKind.SCORED,
        RecordKind.CONTACT,
    ]
    assert store.counts() == {"events": 2, "records": 4, "outbox": 2, "pending": 1}
    (row,) = store._db.execute(
        "SELECT done_by, done_note FROM outbox WHERE command_id = ?", (f"{OFFER}:score",)
    )
    assert row == (2, "result CreditScored")

    # a receipt of the push marks it done; an unrelated id marks nothing
    receipt = DeliveryReported(f"{OFFER}:0", True)
    store.append(receipt, T0 + 60, e.handle(receipt, T0 + 60), done=[f"{OFFER}:0"])
    assert store.pending() == []
    assert store.mark_done(["nothing"], T0 + 61) == 0


def test_a_refused_write_leaves_nothing(store: SqliteCampaignStore) -> None:
    # an output that is not JSON: refused before the transaction
    bad = Record(RecordKind.CONTACT, T0, MSISDN, detail={"latency": float("inf")})
    with pytest.raises(StoreError, match="cannot encode"):
        store.append(Tick(), T0, [bad])
    # a failure in the middle of the transaction (after the event and a record were inserted)
    store._db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON outbox WHEN NEW.command_id = 'boom' "
        "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
    )
    record = Record(RecordKind.TRIGGER, T0, MSISDN)
    reply = Reply("boom", MSISDN, ResponseChannel.USSD, False, "x")
    with pytest.raises(StoreError, match="disk on fire"):
        store.append(Tick(), T0, [record, reply])
    assert store.counts() == {"events": 0, "records": 0, "outbox": 0, "pending": 0}
    assert store.append(Tick(), T0, [record]) == 1  # the rolled-back event took no seq


def test_repeated_ids_and_marking_one_entry(store: SqliteCampaignStore) -> None:
    reply = Reply("r1", MSISDN, ResponseChannel.USSD, False, "This offer was already taken.")
    store.append(Tick(), T0, [reply])
    store.append(Tick(), T0 + 1, [reply])  # the same response delivered twice: two replies
    first, second = store.pending()
    assert first.command_id == second.command_id == "r1"
    assert store.mark_done(["r1"], T0 + 2, note="executed", entry_id=second.entry_id) == 1
    assert [p.entry_id for p in store.pending()] == [first.entry_id]
    assert store.mark_done(["r1"], T0 + 3) == 1
    assert store.pending() == []


def test_command_keys() -> None:
    assert command_key(QueryCredit("o:score", MSISDN, 5.0)) == "o:score"
    assert command_key(Activate("o", MSISDN, "p", Payment.CREDIT, Decimal(1))) == "o"
    assert command_key(Reply("r", MSISDN, ResponseChannel.USSD, True, "ok")) == "r"


def test_the_log_survives_reopening_and_is_read_while_written(tmp_path: Path) -> None:
    path = tmp_path / "campaigns.db"
    profile = ProfileUpdated(Profile(MSISDN, segment="prepaid"))
    with SqliteCampaignStore(path) as writer:
        writer.append(profile, T0 - 10, [])
        with SqliteCampaignStore(path) as reader:  # tgw explain while the gateway runs
            writer.append(Tick(), T0, [Record(RecordKind.TRIGGER, T0, MSISDN)])
            assert len(reader.records_of(MSISDN)) == 1
    with SqliteCampaignStore(path) as again:
        assert [(s.seq, s.event) for s in again.events()] == [(1, profile), (2, Tick())]


def test_a_corrupt_row_is_a_store_error(store: SqliteCampaignStore) -> None:
    store.append(Tick(), T0, [Record(RecordKind.TRIGGER, T0, MSISDN)])
    store._db.execute('UPDATE events SET body = \'{"type": "Tock"}\'')
    store._db.execute("UPDATE records SET body = 'not json'")
    with pytest.raises(StoreError, match="event 1 is corrupt"):
        list(store.events())
    with pytest.raises(StoreError, match="record 1 is corrupt"):
        store.records_of(MSISDN)


# --- snapshots and pruning ------------------------------------------------------------------------------


def _journey(store: SqliteCampaignStore) -> None:
    """Three events of the reference journey, a snapshot with the second."""
    e = engine()
    trigger = exhausted()
    store.append(trigger, T0, e.handle(trigger, T0))
    score = CreditScored(f"{OFFER}:score", MSISDN, Decimal(0), Decimal(400))
    store.append(score, T0 + 1, e.handle(score, T0 + 1), done=[f"{OFFER}:score"], snapshot=e.snapshot())
    receipt = DeliveryReported(f"{OFFER}:0", True)
    store.append(receipt, T0 + 60, e.handle(receipt, T0 + 60), done=[f"{OFFER}:0"])


def test_a_snapshot_is_written_with_its_event(store: SqliteCampaignStore) -> None:
    assert store.latest_snapshot() is None
    _journey(store)
    snapshot = store.latest_snapshot()
    assert snapshot is not None and (snapshot.seq, snapshot.at) == (2, T0 + 1)
    fresh = engine()
    fresh.restore(snapshot.data)
    assert fresh.offer(OFFER) is not None
    assert [s.seq for s in store.events(after=snapshot.seq)] == [3]
    assert len(list(store.events())) == 3  # keep_events: the whole log stays


def test_only_the_latest_snapshot_is_kept(store: SqliteCampaignStore) -> None:
    _journey(store)
    store.save_snapshot(3, {"version": 1, "marker": True}, T0 + 70)
    latest = store.latest_snapshot()
    assert latest is not None and latest.seq == 3 and latest.data["marker"] is True
    assert store._db.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 1
    with pytest.raises(StoreError, match="the latest is 3"):
        store.save_snapshot(2, {"version": 1}, T0 + 71)  # a snapshot follows the latest event


def test_a_refused_append_writes_no_snapshot(store: SqliteCampaignStore) -> None:
    with pytest.raises(StoreError, match="cannot encode"):
        store.append(Tick(), T0, [], snapshot={"at": float("nan")})
    store._db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON snapshots BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    with pytest.raises(StoreError, match="disk full"):
        store.append(Tick(), T0, [Record(RecordKind.TRIGGER, T0, MSISDN)], snapshot={"version": 1})
    # the event, its record and the snapshot: all or nothing
    assert store.counts() == {"events": 0, "records": 0, "outbox": 0, "pending": 0}
    assert store.latest_snapshot() is None


def test_pruning_keeps_the_records_and_the_outbox(tmp_path: Path) -> None:
    with SqliteCampaignStore(tmp_path / "campaigns.db", keep_events=False) as store:
        _journey(store)
        counts = store.counts()
        assert counts["events"] == 3  # the pruned events keep their row: the records refer to them
        rows = store._db.execute("SELECT seq, type, body = '' FROM events ORDER BY seq").fetchall()
        assert rows == [(1, "TriggerRaised", 1), (2, "CreditScored", 1), (3, "DeliveryReported", 0)]
        assert [s.seq for s in store.events(after=2, outputs=True)] == [3]
        with pytest.raises(StoreError, match="event 1 was pruned"):
            list(store.events())
        assert [r.kind for r in store.records_of(MSISDN)][:2] == [RecordKind.TRIGGER, RecordKind.ELIGIBLE]
        assert len(store.outbox_of(MSISDN)) == 2  # the QueryCredit and the DSTK push
        store.save_snapshot(3, {"version": 1}, T0 + 70)
        assert store._db.execute("SELECT count(*) FROM events WHERE body != ''").fetchone()[0] == 0
    with SqliteCampaignStore(tmp_path / "campaigns.db", keep_events=False) as again:
        again.append(Tick(), T0 + 80, [])
        again.save_snapshot(4, {"version": 1}, T0 + 81)  # a new store object finds where to go on
        assert again._db.execute("SELECT count(*) FROM events WHERE body != ''").fetchone()[0] == 0


def test_a_version_1_file_gets_the_snapshots_table(tmp_path: Path) -> None:
    path = tmp_path / "campaigns.db"
    with SqliteCampaignStore(path) as store:
        store.append(Tick(), T0, [Record(RecordKind.TRIGGER, T0, MSISDN)])
        store._db.execute("DROP TABLE snapshots")
        store._db.execute("UPDATE schema_version SET version = 1")
    with SqliteCampaignStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 2
        assert store.latest_snapshot() is None
        assert len(list(store.events())) == 1
        store.save_snapshot(1, {"version": 1}, T0)


def test_a_corrupt_snapshot_is_a_store_error(store: SqliteCampaignStore) -> None:
    _journey(store)
    store._db.execute("UPDATE snapshots SET body = '{not json'")
    with pytest.raises(StoreError, match="snapshot after event 2 is corrupt"):
        store.latest_snapshot()


def test_pruned_pages_are_reused(tmp_path: Path) -> None:
    def fill(store: SqliteCampaignStore, first: int) -> int:
        seq = 0
        for index in range(first, first + 400):
            trigger = TriggerRaised(
                f"t{index}", TriggerKind.EXHAUSTED, MSISDN, T0, attributes={"pad": "x" * 400}
            )
            seq = store.append(trigger, T0, [])
        return seq

    sizes = {}
    for keep in (True, False):
        with SqliteCampaignStore(tmp_path / f"keep-{keep}.db", keep_events=keep) as store:
            store.save_snapshot(fill(store, 0), {"version": 1}, T0)
            if not keep:
                assert store._db.execute("PRAGMA freelist_count").fetchone()[0] > 0
            fill(store, 400)
            sizes[keep] = store._db.execute("PRAGMA page_count").fetchone()[0]
            assert store._db.execute("PRAGMA foreign_key_check").fetchall() == []
            assert store._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert sizes[False] < 0.7 * sizes[True]  # the second 400 events went into the first 400's pages


def test_a_failed_prune_is_logged_and_the_next_snapshot_prunes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with SqliteCampaignStore(tmp_path / "campaigns.db", keep_events=False) as store:
        store._db.execute(
            "CREATE TRIGGER refuse BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'busy'); END"
        )
        store.append(Tick(), T0, [])
        with caplog.at_level(logging.WARNING, "gateway.campaigns.store"):
            assert store.append(Tick(), T0 + 1, [], snapshot={"version": 1}) == 2
        assert "pruning the event log up to event 2 failed" in caplog.text
        latest = store.latest_snapshot()
        assert latest is not None and latest.seq == 2  # the snapshot is committed all the same
        assert store._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        store._db.execute("DROP TRIGGER refuse")
        store.append(Tick(), T0 + 2, [], snapshot={"version": 1})
        assert store._db.execute("SELECT count(*) FROM events WHERE body != ''").fetchone()[0] == 0
