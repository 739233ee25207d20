"""Campaign recovery benchmark: how long ``CampaignRunner.recover`` takes for a population with open
offers, replaying the whole event log versus restoring the latest engine snapshot; and what the snapshot
costs to take, to write and to keep, and what the hourly ``ContactPolicy.prune`` costs.

The store is filled as the runner fills it (``Engine.handle``, ``next_deadline`` after each event,
``SqliteCampaignStore.append`` with the commands done by their results), with the shipped campaign
directory (``configs/campaigns``) without its experiment (so that everyone gets the reference journey,
``upsell_new``; ``--experiment`` keeps it: then the control arm gets no offer, the "old" arm none on
exhaustion, and the delayed arm waits 48 h), for ``--subscribers`` subscribers (100,000 by default),
each: billing's profile, the exhaustion trigger, the credit score and the DSTK dialog's delivery
receipt. Every subscriber then has an open offer waiting for an answer to the dialog, its 10-minute
timer running; nothing is pending in the outbox, so recovery is the engine's rebuild alone. The file is filled
with ``PRAGMA synchronous=OFF`` (the runner's FULL would fsync every one of the events); recovery reads
it as the gateway does. The garbage collector runs with the gateway's settings (``settle_heap``).

Recovery is timed on two copies of the file: one without a snapshot (the whole log replays, the outputs
decoded and compared as ``recover`` does) and one with the snapshot written after the last event (no
event to replay). Tests never time anything; this script is the only place it is measured.

    .venv/bin/python bench/campaign_recovery.py                      # 100k subscribers (a few minutes)
    .venv/bin/python bench/campaign_recovery.py --subscribers 10000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from campaign_core.config import CampaignSet  # noqa: E402
from campaign_core.engine import Engine  # noqa: E402
from campaign_core.model import (  # noqa: E402
    ActivePackage,
    CreditScored,
    DeliveryReported,
    Event,
    Profile,
    ProfileUpdated,
    PushStk,
    QueryCredit,
    SendSms,
    TriggerKind,
    TriggerRaised,
)
from gateway.campaigns.loader import load_campaign_dir  # noqa: E402
from gateway.campaigns.runner import CampaignRunner, result_of  # noqa: E402
from gateway.campaigns.store import OutboxCommand, SqliteCampaignStore  # noqa: E402
from gateway.runtime import settle_heap  # noqa: E402

START = 1_780_304_400.0  # 2026-06-01 12:00 in Nairobi: outside the shipped quiet hours


def msisdn_of(index: int) -> str:
    return f"2547{index:08d}"


class NoExecutor:
    async def execute(self, command: OutboxCommand) -> None:
        return None


def fill(path: Path, campaigns: CampaignSet, count: int) -> tuple[Engine, int, float]:
    """The store at ``path`` as the runner leaves it after ``count`` reference journeys up to the
    delivered dialog; the engine, the events stored and the ``now`` of the last."""
    engine = Engine(campaigns)
    store = SqliteCampaignStore(path)
    store._db.execute("PRAGMA synchronous=OFF")  # filling only; see the module docstring
    events = 0
    now = START

    def submit(event: Event, at: float) -> list[Any]:
        nonlocal events
        outputs = engine.handle(event, at)
        engine.next_deadline()
        done = result_of(event)
        store.append(event, at, outputs, done=() if done is None else (done,))
        events += 1
        return outputs

    package = (ActivePackage("data_1000mb", "2026-05-15", "2026-06-14"),)
    for i in range(count):
        submit(
            ProfileUpdated(Profile(msisdn_of(i), segment="prepaid", tenure_days=400, packages=package)), now
        )
    queries: list[QueryCredit] = []
    for i in range(count):
        trigger = TriggerRaised(
            f"{msisdn_of(i)}/data_1000mb/2026-05/100", TriggerKind.EXHAUSTED, msisdn_of(i), now - 2.0,
            "data_1000mb", 100,
        )  # fmt: skip
        queries += [c for c in submit(trigger, now + 1) if isinstance(c, QueryCredit)]
    pushes: list[PushStk | SendSms] = []
    for query in queries:
        scored = CreditScored(query.request_id, query.msisdn, Decimal(0), Decimal(120))
        pushes += [c for c in submit(scored, now + 2) if isinstance(c, PushStk | SendSms)]
    for push in pushes:
        submit(DeliveryReported(push.command_id, True), now + 5)
    store.close()
    return engine, events, now + 5


def recover(path: Path, campaigns: CampaignSet, now: float) -> tuple[float, Any, Engine]:
    engine = Engine(campaigns)
    store = SqliteCampaignStore(path)
    runner = CampaignRunner(engine, store, NoExecutor(), clock=lambda: now)

    async def run() -> Any:
        report = await runner.recover(now)
        await runner.close(snapshot=False)
        return report

    gc.collect()
    started = time.perf_counter()
    report = asyncio.run(run())
    seconds = time.perf_counter() - started
    store.close()
    return seconds, report, engine


def file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    settle_heap()  # the collector's settings of a running gateway (gateway.runtime)
    campaigns = load_campaign_dir(ROOT / "configs" / "campaigns", ussd_menus=None)
    if not args.experiment:
        campaigns = dataclasses.replace(campaigns, experiments=())
    work = Path(tempfile.mkdtemp(prefix="campaign-recovery-"))
    try:
        full = work / "full.db"
        started = time.perf_counter()
        engine, events, last = fill(full, campaigns, args.subscribers)
        fill_seconds = time.perf_counter() - started
        offers = sum(1 for i in range(args.subscribers) if engine.open_offers(msisdn_of(i)))
        now = last + 1.0  # nothing falls due: recovery is the rebuild

        # the snapshot: taken, encoded, written (as the runner's close() does)
        gc.collect()
        started = time.perf_counter()
        snapshot = engine.snapshot()
        take_seconds = time.perf_counter() - started
        started = time.perf_counter()
        text = json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        encode_seconds = time.perf_counter() - started
        snapshotted = work / "snapshot.db"
        shutil.copyfile(full, snapshotted)
        store = SqliteCampaignStore(snapshotted)
        started = time.perf_counter()
        store.save_snapshot(events, snapshot, now)
        save_seconds = time.perf_counter() - started
        store.close()
        del snapshot

        # the hourly prune on this population: nothing to drop yet, then everything
        policy_rows = len(engine.policy)
        started = time.perf_counter()
        engine.policy.prune(now)
        prune_keep_seconds = time.perf_counter() - started
        started = time.perf_counter()
        dropped = engine.policy.prune(now + 3 * 86400)
        prune_drop_seconds = time.perf_counter() - started
        del engine
        gc.collect()

        replay_seconds, replay_report, replayed = recover(full, campaigns, now)
        snapshot_seconds, snapshot_report, restored = recover(snapshotted, campaigns, now)
        same_state = replayed.snapshot() == restored.snapshot()  # both ways rebuild the same engine
        del replayed, restored

        # the parts of a recovery from the snapshot
        store = SqliteCampaignStore(snapshotted)
        started = time.perf_counter()
        latest = store.latest_snapshot()
        read_seconds = time.perf_counter() - started
        assert latest is not None
        fresh = Engine(campaigns)
        gc.collect()
        started = time.perf_counter()
        fresh.restore(latest.data)
        restore_seconds = time.perf_counter() - started
        store.close()
        del fresh, latest

        # pruning the log up to the snapshot: what stays of the file
        pruned = work / "pruned.db"
        shutil.copyfile(snapshotted, pruned)
        store = SqliteCampaignStore(pruned, keep_events=False)
        restored_again = Engine(campaigns)
        restored_again.restore(json.loads(text))
        started = time.perf_counter()
        store.save_snapshot(events, restored_again.snapshot(), now)
        prune_log_seconds = time.perf_counter() - started
        store.close()
        with sqlite3.connect(pruned) as db:
            page_size = db.execute("PRAGMA page_size").fetchone()[0]
            free_pages = db.execute("PRAGMA freelist_count").fetchone()[0]
        db.close()
        return {
            "python": platform.python_version(),
            "machine": platform.processor() or platform.machine(),
            "subscribers": args.subscribers,
            "open_offers": offers,
            "events": events,
            "fill_seconds": fill_seconds,
            "recover_full_replay_seconds": replay_seconds,
            "recover_full_replay_events": replay_report.events,
            "recover_from_snapshot_seconds": snapshot_seconds,
            "recover_from_snapshot_events": snapshot_report.events,
            "same_state": same_state,
            "snapshot_read_seconds": read_seconds,
            "snapshot_restore_seconds": restore_seconds,
            "snapshot_take_seconds": take_seconds,
            "snapshot_encode_seconds": encode_seconds,
            "snapshot_save_seconds": save_seconds,
            "snapshot_bytes": len(text.encode()),
            "file_bytes_log": file_size(full),
            "file_bytes_log_and_snapshot": file_size(snapshotted),
            "file_bytes_pruned": file_size(pruned),
            "file_bytes_pruned_free": free_pages * page_size,
            "prune_log_seconds": prune_log_seconds,
            "policy_rows": policy_rows,
            "policy_prune_keep_seconds": prune_keep_seconds,
            "policy_prune_drop_seconds": prune_drop_seconds,
            "policy_pruned": dropped,
        }
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"files kept in {work}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument(
        "--keep", action="store_true", help="keep the SQLite files (their directory is printed)"
    )
    parser.add_argument("--experiment", action="store_true", help="keep the shipped A/B experiment")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    r = run(args)
    if args.json:
        print(json.dumps(r))
        return 0
    mb = 1e6
    print(
        f"campaign recovery, {r['subscribers']:,} subscribers, {r['open_offers']:,} open offers, "
        f"{r['events']:,} events (Python {r['python']}; filled in {r['fill_seconds']:.0f} s)"
    )
    print(
        f"  recover, whole log:     {r['recover_full_replay_seconds']:8.2f} s "
        f"({r['recover_full_replay_events']:,} events replayed)"
    )
    print(
        f"  recover, from snapshot: {r['recover_from_snapshot_seconds']:8.2f} s "
        f"(read + parse {r['snapshot_read_seconds']:.2f} s, Engine.restore {r['snapshot_restore_seconds']:.2f} s, "
        f"{r['recover_from_snapshot_events']} events replayed); the same engine both ways: {r['same_state']}"
    )
    print(
        f"  snapshot: Engine.snapshot {r['snapshot_take_seconds']:.2f} s, json.dumps "
        f"{r['snapshot_encode_seconds']:.2f} s, save_snapshot (json.dumps and the write) "
        f"{r['snapshot_save_seconds']:.2f} s; {r['snapshot_bytes'] / mb:.1f} MB"
    )
    print(
        f"  file: log {r['file_bytes_log'] / mb:.1f} MB, with the snapshot "
        f"{r['file_bytes_log_and_snapshot'] / mb:.1f} MB; events pruned up to it "
        f"({r['prune_log_seconds']:.2f} s): the file stays {r['file_bytes_pruned'] / mb:.1f} MB, "
        f"{r['file_bytes_pruned_free'] / mb:.1f} MB of it free pages for what comes next"
    )
    print(
        f"  ContactPolicy.prune over {r['policy_rows']:,} subscribers: {r['policy_prune_keep_seconds'] * 1e3:.1f} ms "
        f"dropping none, {r['policy_prune_drop_seconds'] * 1e3:.1f} ms dropping {r['policy_pruned']:,}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
