"""The SQLite store: durable OTA counters (TS 102 225 5.1.1), pushes, answers recorded exactly once.

The "crash" tests take counters in a child process that exits with ``os._exit`` (no close, no
cleanup), then reopen the same file.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.storage import SCHEMA_VERSION, DuplicateRecord, SqliteStore, StoreError
from protocols.stk.ota import MAX_CNTR

ROOT = Path(__file__).resolve().parents[2]
ICCID = "8925400000000000018"
TAR = bytes.fromhex("BFFF01")


def test_schema_created_with_version_and_wal(store: SqliteStore, store_path: Path) -> None:
    assert store.schema_version == SCHEMA_VERSION
    with sqlite3.connect(store_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert repr(store) == f"SqliteStore({str(store_path)!r})"


def test_counter_starts_at_one_and_increments(store: SqliteStore) -> None:
    assert store.ota_counter(ICCID) is None
    assert [store.next_ota_counter(ICCID) for _ in range(3)] == [1, 2, 3]
    assert store.ota_counter(ICCID) == 3
    assert store.next_ota_counter("8925400000000000026") == 1  # per card


def test_counter_at_least(store: SqliteStore) -> None:
    assert store.next_ota_counter(ICCID, at_least=1000) == 1000
    assert store.next_ota_counter(ICCID, at_least=5) == 1001  # never goes back
    assert store.next_ota_counter(ICCID, at_least=2000) == 2000


def test_counter_limits(store: SqliteStore) -> None:
    with pytest.raises(StoreError, match="five-octet"):
        store.next_ota_counter(ICCID, at_least=MAX_CNTR + 1)
    assert store.next_ota_counter(ICCID, at_least=MAX_CNTR) == MAX_CNTR
    with pytest.raises(StoreError, match="exhausted"):
        store.next_ota_counter(ICCID)
    assert store.ota_counter(ICCID) == MAX_CNTR  # the failed call changed nothing


def test_counter_monotonic_across_reopen(store_path: Path) -> None:
    seen: list[int] = []
    for _ in range(3):
        with SqliteStore(store_path) as store:
            seen += [store.next_ota_counter(ICCID) for _ in range(4)]
    assert seen == list(range(1, 13))


_CHILD = """
import os, sys
from gateway.storage import SqliteStore
store = SqliteStore(sys.argv[1])
values = [store.next_ota_counter(sys.argv[2]) for _ in range(5)]
print(" ".join(map(str, values)), flush=True)
os._exit(0)  # a crash: no close, no cleanup
"""


def test_counter_survives_a_crash(store_path: Path) -> None:
    handed_out: list[int] = []
    for _ in range(2):
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, str(store_path), ICCID],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT)},
            timeout=60,
            check=True,
        )
        handed_out += [int(value) for value in child.stdout.split()]
    with SqliteStore(store_path) as store:
        after = store.next_ota_counter(ICCID)
    assert handed_out == list(range(1, 11))
    assert after == 11


def test_push_lifecycle(store: SqliteStore) -> None:
    record = store.record_push("offer-1", "254700000001", ICCID, TAR, 7, None, "submitting", 100.0)
    assert record.message_id is None and record.state == "submitting" and record.tar == TAR
    assert store.push_by_offer("offer-1") == record
    assert store.push_by_message_id("1a2b") is None
    updated = store.update_push("offer-1", message_id="1A2B", state="sent", now=101.0)
    assert (updated.message_id, updated.state, updated.updated_at, updated.created_at) == (
        "1A2B",
        "sent",
        101.0,
        100.0,
    )
    # a receipt may write the id in another case, base or with leading zeros (SMPP 3.4 Appendix B)
    assert store.push_by_message_id("1a2b") == updated
    assert store.push_by_message_id(str(0x1A2B)) == updated
    assert store.push_by_message_id("0001A2B") == updated
    assert store.push_by_message_id("") is None
    assert store.push_by_counter(ICCID, 7) == updated
    assert store.push_by_counter(ICCID, 8) is None
    failed = store.update_push("offer-1", state="delivery_failed", detail="stat UNDELIV", now=102.0)
    assert (failed.message_id, failed.detail) == ("1A2B", "stat UNDELIV")


def test_push_recorded_with_message_id(store: SqliteStore) -> None:
    store.record_push("offer-2", "254700000001", ICCID, TAR, 1, "00ff", "sent", 1.0)
    found = store.push_by_message_id("255")
    assert found is not None and found.offer_id == "offer-2"


def test_push_duplicate_and_unknown(store: SqliteStore) -> None:
    store.record_push("offer-1", "254700000001", ICCID, TAR, 1, None, "submitting", 1.0)
    with pytest.raises(DuplicateRecord, match="offer-1"):
        store.record_push("offer-1", "254700000001", ICCID, TAR, 2, None, "submitting", 2.0)
    with pytest.raises(StoreError, match="no push"):
        store.update_push("offer-9", state="sent", now=3.0)
    assert store.push_by_offer("offer-9") is None


def test_answer_recorded_exactly_once_across_reopen(store_path: Path) -> None:
    with SqliteStore(store_path) as store:
        store.record_push("offer-1", "254700000001", ICCID, TAR, 1, "10001", "sent", 1.0)
        assert store.record_answer("offer-1", 0, 0, 5.0, general_result=0) is True
        assert store.record_answer("offer-1", 1, 0, 6.0) is False
        push = store.push_by_offer("offer-1")
        assert push is not None and push.state == "answered" and push.updated_at == 5.0
    with SqliteStore(store_path) as store:
        assert store.record_answer("offer-1", 2, 3, 7.0) is False
        answer = store.answer_by_offer("offer-1")
        assert answer is not None
        assert (answer.outcome, answer.item_id, answer.received_at) == (0, 0, 5.0)
        assert store.answer_by_offer("offer-2") is None
        # an answer for an offer with no push is still recorded once
        assert store.record_answer("offer-2", 2, 4, 8.0) is True


def test_invalid_answers(store: SqliteStore) -> None:
    store.record_invalid_answer("254700000001", "bad CC", 1.0)
    store.record_invalid_answer("254700000002", "unknown sender", 2.0)
    assert [r.reason for r in store.invalid_answers()] == ["bad CC", "unknown sender"]
    only = store.invalid_answers("254700000002")
    assert len(only) == 1 and only[0].msisdn == "254700000002" and only[0].received_at == 2.0


def test_newer_schema_refused(store_path: Path) -> None:
    SqliteStore(store_path).close()
    with sqlite3.connect(store_path) as raw:
        raw.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="schema version 99"):
        SqliteStore(store_path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not a database, just some text " * 100)
    with pytest.raises(StoreError, match="cannot open"):
        SqliteStore(path)


def test_unopenable_path(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        SqliteStore(tmp_path / "missing-dir" / "store.sqlite")


def test_locked_database_is_a_store_error(store_path: Path) -> None:
    with SqliteStore(store_path, busy_timeout=0.05) as store:
        blocker = sqlite3.connect(store_path, isolation_level=None, timeout=0)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match="locked"):
                store.next_ota_counter(ICCID)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert store.next_ota_counter(ICCID) == 1


def test_sqlite_error_inside_a_transaction_rolls_back(store: SqliteStore) -> None:
    store.record_push("offer-1", "254700000001", ICCID, TAR, 1, None, "submitting", 1.0)
    with pytest.raises(StoreError, match="store"):
        store.update_push("offer-1", state=["not", "a", "string"], now=2.0)  # type: ignore[arg-type]
    push = store.push_by_offer("offer-1")
    assert push is not None and push.state == "submitting"


def test_memory_store() -> None:
    with SqliteStore(":memory:") as store:
        assert store.next_ota_counter(ICCID) == 1
