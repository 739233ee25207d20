"""The campaign store under ``tgw explain`` and the admin API's explain (gateway/campaigns/store.py).

The admin API reads a subscriber's trail on the gateway's event loop: ``records_of`` and ``outbox_of``
must find one subscriber's rows through an index, not scan tables that grow by several rows per contact
(a scan of a million outbox rows held the loop for 150 ms a call). Asserted on SQLite's query plan,
not on time.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from campaign_core.model import SendSms, Tick
from gateway.campaigns.store import SqliteCampaignStore


def _plans(store: SqliteCampaignStore, read: str) -> list[str]:
    """The query plan of every SELECT that ``getattr(store, read)("254700000001")`` runs."""
    queries: list[str] = []
    store._db.set_trace_callback(queries.append)
    try:
        getattr(store, read)("254700000001")
    finally:
        store._db.set_trace_callback(None)
    plans: list[str] = []
    for query in queries:
        if query.lstrip().upper().startswith("SELECT"):
            rows = store._db.execute(f"EXPLAIN QUERY PLAN {query}").fetchall()
            plans.append(" | ".join(str(row[-1]) for row in rows))
    assert plans, f"{read} ran no SELECT"
    return plans


def _fill(store: SqliteCampaignStore) -> None:
    for n in range(3):
        msisdn = f"25470000000{n}"
        store.append(Tick(), float(n), [SendSms(f"o{n}:1", msisdn, "c", "hello", f"o{n}")])


def test_explain_reads_one_subscriber_through_indexes(tmp_path: Path) -> None:
    with SqliteCampaignStore(tmp_path / "campaigns.sqlite") as store:
        _fill(store)
        for read in ("records_of", "outbox_of"):
            for plan in _plans(store, read):
                assert "USING" in plan and "INDEX" in plan, f"{read}: {plan}"


def test_a_store_written_without_the_index_gets_it_when_opened(tmp_path: Path) -> None:
    """A file an earlier gateway wrote (same schema version, no index by MSISDN on the outbox)."""
    path = tmp_path / "campaigns.sqlite"
    with SqliteCampaignStore(path) as store:
        _fill(store)
    db = sqlite3.connect(path)
    db.execute("DROP INDEX IF EXISTS outbox_by_msisdn")
    db.commit()
    db.close()
    with SqliteCampaignStore(path) as store:
        assert len(store.outbox_of("254700000001")) == 1
        for plan in _plans(store, "outbox_of"):
            assert "USING" in plan and "INDEX" in plan, plan
