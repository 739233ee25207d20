"""The campaign runner over a real SQLite file (gateway.campaigns.runner): store first, then act; a crash
at each step of the reference journey (issue #7) and a restart from the same file lose nothing and do
nothing twice; the timers resume.

``World`` stands for billing (credit scoring, activation keyed by offer id, idempotent), the SMSC (it
accepts each submit, delivers each command id once: the SMSC adapter recognises a re-executed command
by its id) and the handset. It records every command it was asked to carry out and queues the answers
they would give; the test hands those answers to the runner at the moments of the script, so a crash
can fall between any two of them. A crash is ``Crash`` (a BaseException, so nothing on the way
catches it) raised by the executor, or simply dropping the runner and engine between two steps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from campaign.engine_fixtures import MSISDN, NEW_UPSELL, OLD_UPSELL, T0, campaign_set, exhausted

from campaign_core.engine import Engine
from campaign_core.model import (
    Activate,
    Activated,
    CreditScored,
    DeliveryReported,
    Event,
    Payment,
    PushStk,
    QueryCredit,
    Record,
    RecordKind,
    Reply,
    Responded,
    ResponseChannel,
    SendSms,
    Tick,
    TriggerKind,
    TriggerRaised,
    offer_id,
)
from gateway.campaigns.runner import CampaignRunner, RecoveryReport, result_of
from gateway.campaigns.store import OutboxCommand, SqliteCampaignStore, StoreError
from protocols.errors import LocalProtocolError

OFFER = offer_id("upsell-exhaustion", f"{MSISDN}/data-1gb/p1/100")
THRESHOLD = TriggerRaised(f"{MSISDN}/data-1gb/p1/90", TriggerKind.THRESHOLD, MSISDN, T0, "data-1gb", 90)
OLD_OFFER = offer_id("upsell-threshold-old", THRESHOLD.trigger_id)
WAIT = 5.0  # real seconds a test waits for a timer at most


class Crash(BaseException):
    """The process dies here."""


@dataclass
class World:
    """Billing, SMSC and handset doubles (see the module docstring)."""

    executed: list[OutboxCommand] = field(default_factory=list)
    answers: list[Event | str] = field(default_factory=list)  # a str: the SMSC accepted that command id
    activations: dict[str, Activate] = field(default_factory=dict)  # billing's ledger, by offer id
    delivered: dict[str, OutboxCommand] = field(default_factory=dict)  # what reached the handset
    crash_on: type[Any] | None = None
    fail_on: type[Any] | None = None

    async def execute(self, command: OutboxCommand) -> None:
        if self.crash_on is not None and isinstance(command, self.crash_on):
            self.crash_on = None
            raise Crash
        if self.fail_on is not None and isinstance(command, self.fail_on):
            self.fail_on = None
            raise ConnectionError("billing unreachable")
        self.executed.append(command)
        if isinstance(command, QueryCredit):
            self.answers.append(CreditScored(command.request_id, command.msisdn, Decimal(0), Decimal(100)))
        elif isinstance(command, PushStk | SendSms):
            self.answers.append(command.command_id)
            if command.command_id not in self.delivered:
                self.delivered[command.command_id] = command
                self.answers.append(DeliveryReported(command.command_id, True))
        elif isinstance(command, Activate):
            first = self.activations.setdefault(command.offer_id, command)  # the idempotency key
            self.answers.append(Activated(first.offer_id, first.package_id, first.payment, first.price))


class Node:
    """One gateway process: a store on the file, an engine, a runner, reading the harness's clock."""

    def __init__(
        self,
        path: Path,
        world: World,
        clock: Callable[[], float],
        campaigns: Any = None,
        *,
        snapshot_every: int = 100_000,
        keep_events: bool = True,
    ) -> None:
        self.store = SqliteCampaignStore(path, keep_events=keep_events)
        self.runner = CampaignRunner(
            Engine(campaigns or campaign_set()), self.store, world, clock=clock, snapshot_every=snapshot_every
        )


class Harness:
    """The world, the file and the wall clock outlive the gateway processes (``Node``) on them.

    The clock stands still unless ``set_time`` moves it (``running``: it runs with the loop clock from
    there), so a Tick from the runner's timer comes at exactly the time the script says."""

    def __init__(
        self, path: Path, *, running: bool = False, snapshot_every: int = 100_000, keep_events: bool = True
    ) -> None:
        self.path = path
        self.world = World()
        self.running = running
        self.snapshot_every = snapshot_every  # the runner's setting
        self.keep_events = keep_events  # the store's
        self.now = 0.0
        self.set_at = 0.0  # loop time of the last set_time
        self.node: Node | None = None
        self.reports: list[RecoveryReport] = []

    def clock(self) -> float:
        if self.running:
            return self.now + asyncio.get_running_loop().time() - self.set_at
        return self.now

    @property
    def runner(self) -> CampaignRunner:
        assert self.node is not None
        return self.node.runner

    def set_time(self, now: float) -> None:
        self.now = now
        self.set_at = asyncio.get_running_loop().time()
        if self.node is not None:
            self.node.runner.clock_changed()

    async def start(self, campaigns: Any = None) -> RecoveryReport:
        self.node = Node(
            self.path,
            self.world,
            self.clock,
            campaigns,
            snapshot_every=self.snapshot_every,
            keep_events=self.keep_events,
        )
        report = await self.node.runner.recover(self.clock())
        self.reports.append(report)
        return report

    async def crash(self) -> None:
        """Drop the runner and the engine; only what the file holds survives (no snapshot at close)."""
        assert self.node is not None
        await self.node.runner.close(snapshot=False)
        self.node.store.close()
        self.node = None

    async def stop(self) -> None:
        """Stop the gateway as it is meant to stop: the runner writes a snapshot when it closes."""
        assert self.node is not None
        await self.node.runner.close()
        self.node.store.close()
        self.node = None

    async def restart(self) -> RecoveryReport:
        await self.crash()
        return await self.start()

    async def submit(self, event: Event, now: float) -> None:
        self.set_time(now)
        await self.runner.submit(event, now)

    async def deliver(self, now: float, match: Callable[[Event | str], bool]) -> int:
        """Hand every queued answer ``match`` accepts to the runner (duplicates of re-executions too)."""
        self.set_time(now)
        chosen = [answer for answer in self.world.answers if match(answer)]
        self.world.answers = [answer for answer in self.world.answers if not match(answer)]
        for answer in chosen:
            if isinstance(answer, str):
                self.runner.command_done(answer, now)
            else:
                await self.runner.submit(answer, now)
        return len(chosen)

    def records(self) -> list[Record]:
        assert self.node is not None
        return list(self.node.store.records())


async def until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def is_(kind: type[Any], **attrs: object) -> Callable[[Event | str], bool]:
    return lambda a: isinstance(a, kind) and all(getattr(a, k) == v for k, v in attrs.items())


def accepted(command_id: str) -> Callable[[Event | str], bool]:
    return lambda a: a == command_id


# --- the reference journey, step by step ---------------------------------------------------------------


async def trigger(h: Harness) -> None:
    await h.submit(exhausted(at=T0 - 2.0), T0)


async def scoring(h: Harness) -> None:
    assert await h.deliver(T0 + 1, is_(CreditScored)) >= 1


async def push(h: Harness) -> None:
    assert await h.deliver(T0 + 1.5, accepted(f"{OFFER}:0")) >= 1  # submit_sm_resp


async def receipt(h: Harness) -> None:
    assert await h.deliver(T0 + 60, is_(DeliveryReported, command_id=f"{OFFER}:0")) == 1


async def sms(h: Harness) -> None:
    """No answer within 10 minutes of the receipt: the runner's own timer sends the SMS."""
    h.set_time(T0 + 660)
    await until(lambda: any(c.command_id == f"{OFFER}:1" for c in h.world.executed if isinstance(c, SendSms)))
    await asyncio.sleep(0)  # the Tick's task finishes
    await h.deliver(T0 + 661, accepted(f"{OFFER}:1"))
    await h.deliver(T0 + 665, is_(DeliveryReported, command_id=f"{OFFER}:1"))


async def response(h: Harness) -> None:
    await h.submit(Responded("r1", MSISDN, ResponseChannel.USSD, option_id="*123*100#"), T0 + 700)


async def activation(h: Harness) -> None:
    assert await h.deliver(T0 + 703, is_(Activated)) >= 1


async def confirmation(h: Harness) -> None:
    await h.deliver(T0 + 704, accepted(f"{OFFER}:confirm"))
    await h.deliver(T0 + 710, is_(DeliveryReported, command_id=f"{OFFER}:confirm"))


STEPS: list[Callable[[Harness], Awaitable[None]]] = [
    trigger,
    scoring,
    push,
    receipt,
    sms,
    response,
    activation,
    confirmation,
]
CRASH_POINTS = ["trigger", "scoring", "push", "receipt", "sms", "response", "activate-stored", "activation"]


async def journey(h: Harness, crashes: set[str]) -> None:
    h.set_time(T0 - 10)
    await h.start()
    for step in STEPS:
        if step is response and "activate-stored" in crashes:
            h.world.crash_on = Activate  # the response, the Activate and the Reply are committed...
            with pytest.raises(Crash):
                await step(h)  # ...and the process dies before billing is called
            assert not any(isinstance(c, Activate) for c in h.world.executed)
            await h.restart()
        else:
            await step(h)
        if step.__name__ in crashes:
            await h.restart()


async def uninterrupted(tmp_path: Path) -> list[Record]:
    h = Harness(tmp_path / "uninterrupted.db")
    await journey(h, set())
    assert h.reports == [RecoveryReport(0, 0, 0, 0)]
    records = h.records()
    await h.crash()
    return records


def check_end_state(h: Harness, expected: list[Record]) -> None:
    assert h.records() == expected
    world = h.world
    activates = [c for c in world.executed if isinstance(c, Activate)]
    assert activates and {a.offer_id for a in activates} == {OFFER}  # re-executions carry the same key
    assert list(world.activations) == [OFFER]  # billing activated once
    assert sorted(world.delivered) == sorted([f"{OFFER}:0", f"{OFFER}:1", f"{OFFER}:confirm"])
    assert h.node is not None and h.node.store.pending() == []
    assert all(report.diverged == 0 for report in h.reports)
    kinds = [r.kind for r in expected]
    assert kinds.count(RecordKind.CONTACT) == 2 and kinds.count(RecordKind.FULFILLED) == 1


@pytest.mark.parametrize("crash_point", CRASH_POINTS)
async def test_reference_journey_survives_a_crash_at_each_step(tmp_path: Path, crash_point: str) -> None:
    expected = await uninterrupted(tmp_path)
    h = Harness(tmp_path / "campaigns.db")
    await journey(h, {crash_point})
    assert len(h.reports) == 2
    check_end_state(h, expected)
    if crash_point in ("response", "activate-stored"):
        # the Activate was pending at the restart and carried out again with the same idempotency key
        assert h.reports[1].re_executed >= 1
    await h.crash()


async def test_reference_journey_survives_a_crash_after_every_step(tmp_path: Path) -> None:
    expected = await uninterrupted(tmp_path)
    h = Harness(tmp_path / "campaigns.db")
    await journey(h, set(CRASH_POINTS))
    assert len(h.reports) == 1 + len(CRASH_POINTS)
    check_end_state(h, expected)
    activates = [c for c in h.world.executed if isinstance(c, Activate)]
    assert len(activates) == 2  # after the crash before billing was called, and again after "response"
    await h.crash()


async def test_a_pending_wait_fires_after_a_restart(tmp_path: Path) -> None:
    h = Harness(tmp_path / "campaigns.db", running=True)
    h.set_time(T0 - 10)
    await h.start()
    for step in (trigger, scoring, push, receipt):
        await step(h)
    await h.crash()
    h.set_time(T0 + 660 - 0.1)  # the gateway comes back 0.1 s before the 10-minute wait ends
    report = await h.start()
    assert report.events == 3 and report.re_executed == 0  # trigger, score, receipt
    assert h.runner.next_deadline() == T0 + 660
    assert not any(isinstance(c, SendSms) for c in h.world.executed)
    await until(lambda: any(isinstance(c, SendSms) for c in h.world.executed))
    (contact,) = [r for r in h.records() if r.kind is RecordKind.CONTACT and r.detail["step"] == 1]
    assert T0 + 660 <= contact.at < T0 + 660 + WAIT
    await h.crash()


async def test_deadlines_that_passed_while_down_are_handled_at_recovery(tmp_path: Path) -> None:
    h = Harness(tmp_path / "campaigns.db")
    h.set_time(T0 - 10)
    await h.start()
    for step in (trigger, scoring, push, receipt):
        await step(h)
    await h.crash()
    h.set_time(T0 + 3600)  # down for the best part of an hour
    await h.start()
    (sms_sent,) = [c for c in h.world.executed if isinstance(c, SendSms)]
    assert sms_sent.command_id == f"{OFFER}:1"
    (contact,) = [r for r in h.records() if r.kind is RecordKind.CONTACT and r.detail["step"] == 1]
    assert contact.at == T0 + 3600  # the engine decides at the time the Tick really comes
    await h.crash()


async def test_a_push_whose_step_passed_while_down_is_not_sent_late(tmp_path: Path) -> None:
    h = Harness(tmp_path / "campaigns.db")
    h.set_time(T0 - 10)
    await h.start()
    h.world.crash_on = PushStk
    await trigger(h)
    with pytest.raises(Crash):
        await scoring(h)  # the push is committed, the process dies before the SMSC has it
    await h.crash()
    h.set_time(T0 + 1 + 1800 + 5)  # back after the push's hard cap: the journey goes on to the SMS
    report = await h.start()
    assert report.skipped == 1 and report.re_executed == 0
    assert [type(c) for c in h.world.executed] == [QueryCredit, SendSms]
    assert h.node is not None
    notes = h.node.store._db.execute(
        "SELECT command_id, done_note FROM outbox WHERE type = 'PushStk'"
    ).fetchall()
    assert notes == [(f"{OFFER}:0", "skipped: the journey moved on to step 1")]
    await h.crash()


class Spy:
    """An executor that looks into the store when it is asked to act."""

    def __init__(self, store: SqliteCampaignStore) -> None:
        self.store = store
        self.seen: list[tuple[str, int, int]] = []

    async def execute(self, command: OutboxCommand) -> None:
        counts = self.store.counts()
        self.seen.append((type(command).__name__, counts["events"], counts["pending"]))


async def test_store_first_then_act(tmp_path: Path) -> None:
    h = Harness(tmp_path / "campaigns.db")
    h.set_time(T0 - 10)
    await h.start()
    assert h.node is not None
    spy = Spy(h.node.store)
    h.runner.executor = spy
    await h.submit(exhausted(), T0)
    assert spy.seen == [("QueryCredit", 1, 1)]  # the trigger and its command were committed first
    with pytest.raises(LocalProtocolError):
        await h.runner.recover(T0)  # once only
    await h.crash()


async def test_submit_before_recover_is_refused_and_an_idle_tick_is_not_stored(tmp_path: Path) -> None:
    h = Harness(tmp_path / "campaigns.db")
    h.set_time(T0)
    h.node = Node(h.path, h.world, h.clock)
    with pytest.raises(LocalProtocolError, match="recover"):
        await h.runner.submit(Tick(), T0)
    await h.runner.recover(T0)
    assert await h.runner.submit(Tick(), T0 + 1) == []
    assert h.node.store.counts()["events"] == 0
    await h.crash()


async def test_an_executor_failure_leaves_the_command_pending_for_the_next_recovery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(tmp_path / "campaigns.db")
    h.set_time(T0 - 10)
    await h.start()
    h.world.fail_on = QueryCredit
    with caplog.at_level(logging.ERROR, "gateway.campaigns.runner"):
        await trigger(h)
    assert "stays pending" in caplog.text
    assert h.world.executed == []
    report = await h.restart()
    assert report.re_executed == 1
    assert [type(c) for c in h.world.executed] == [QueryCredit]
    await h.crash()


async def test_a_reply_is_done_once_executed(tmp_path: Path) -> None:
    h = Harness(tmp_path / "campaigns.db")
    h.set_time(T0 - 10)
    await h.start()
    await h.submit(Responded("r9", MSISDN, ResponseChannel.USSD, option_id="*123*100#"), T0)
    (reply,) = h.world.executed
    assert isinstance(reply, Reply) and not reply.accepted  # no open offer
    assert h.node is not None and h.node.store.pending() == []
    await h.crash()


async def test_a_store_failure_stops_the_runner(tmp_path: Path) -> None:
    h = Harness(tmp_path / "campaigns.db")
    h.set_time(T0 - 10)
    await h.start()
    assert h.node is not None
    h.node.store._db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    with pytest.raises(StoreError, match="disk full"):
        await trigger(h)
    assert h.world.executed == []  # nothing is acted on that is not stored
    with pytest.raises(StoreError, match="stopped"):
        await h.runner.submit(Tick(), T0 + 1)
    await h.crash()


async def test_a_changed_configuration_is_reported_at_recovery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(tmp_path / "campaigns.db")
    h.set_time(T0 - 10)
    await h.start()
    await trigger(h)
    await h.crash()
    slower = {**NEW_UPSELL, "scoring": {"timeout": "9s"}}
    with caplog.at_level(logging.WARNING, "gateway.campaigns.runner"):
        report = await h.start(campaign_set(campaigns=[slower]))
    assert report.events == 1 and report.diverged == 1
    assert "configuration changed" in caplog.text
    await h.crash()


def test_results_name_their_commands() -> None:
    assert result_of(CreditScored(f"{OFFER}:score", MSISDN, Decimal(0), Decimal(0))) == f"{OFFER}:score"
    assert result_of(DeliveryReported(f"{OFFER}:1", False)) == f"{OFFER}:1"
    assert result_of(Activated(OFFER, "p", Payment.CREDIT, Decimal(1))) == OFFER
    assert result_of(Tick()) is None


# --- snapshots ------------------------------------------------------------------------------------------


def stored_events(h: Harness) -> int:
    assert h.node is not None
    return h.node.store.counts()["events"]


@pytest.mark.parametrize("keep_events", [True, False])
@pytest.mark.parametrize("every", [1, 2, 3])
@pytest.mark.parametrize("crash_point", CRASH_POINTS)
async def test_the_journey_survives_a_crash_with_snapshots(
    tmp_path: Path, crash_point: str, every: int, keep_events: bool
) -> None:
    """Snapshots every 1, 2 or 3 events: a crash right after a snapshot, or with events after it, or
    with the log pruned up to it, gives the same decisions as a run without any crash."""
    expected = await uninterrupted(tmp_path)
    h = Harness(tmp_path / "campaigns.db", snapshot_every=every, keep_events=keep_events)
    stored: list[int] = []
    crash = h.crash

    async def counted_crash() -> None:
        stored.append(stored_events(h))
        await crash()

    h.crash = counted_crash  # type: ignore[method-assign]
    await journey(h, {crash_point})
    check_end_state(h, expected)
    (before,) = stored
    report = h.reports[1]
    # the latest snapshot follows a multiple of ``every`` events, and only the events after it replay
    assert report.snapshot % every == 0 and report.snapshot + report.events == before
    assert report.events < every and report.diverged == 0
    if before >= every:
        assert report.snapshot > 0
    assert h.node is not None
    kept = h.node.store._db.execute("SELECT count(*) FROM events WHERE body != ''").fetchone()[0]
    latest = h.node.store.latest_snapshot()
    assert latest is not None
    assert kept == (stored_events(h) if keep_events else stored_events(h) - latest.seq)
    await h.crash()


async def test_the_journey_survives_a_crash_after_every_step_with_snapshots(tmp_path: Path) -> None:
    expected = await uninterrupted(tmp_path)
    h = Harness(tmp_path / "campaigns.db", snapshot_every=2, keep_events=False)
    await journey(h, set(CRASH_POINTS))
    check_end_state(h, expected)
    assert any(report.snapshot for report in h.reports)
    await h.crash()


async def test_a_stop_writes_a_snapshot_and_the_pending_wait_fires_after_it(tmp_path: Path) -> None:
    h = Harness(tmp_path / "campaigns.db", running=True)
    h.set_time(T0 - 10)
    await h.start()
    for step in (trigger, scoring, push, receipt):
        await step(h)
    await h.stop()  # the offer waits 10 minutes for an answer to the dialog: a timer in the snapshot
    h.set_time(T0 + 660 - 0.1)
    report = await h.start()
    assert (report.snapshot, report.events, report.re_executed) == (3, 0, 0)
    assert h.runner.next_deadline() == T0 + 660
    assert not any(isinstance(c, SendSms) for c in h.world.executed)
    await until(lambda: any(isinstance(c, SendSms) for c in h.world.executed))
    (contact,) = [r for r in h.records() if r.kind is RecordKind.CONTACT and r.detail["step"] == 1]
    assert T0 + 660 <= contact.at < T0 + 660 + WAIT
    await h.crash()


async def test_deadlines_that_passed_while_down_after_a_snapshot(tmp_path: Path) -> None:
    h = Harness(tmp_path / "campaigns.db", snapshot_every=2)
    h.set_time(T0 - 10)
    await h.start()
    for step in (trigger, scoring, push, receipt):
        await step(h)
    await h.crash()
    h.set_time(T0 + 3600)
    report = await h.start()
    assert (report.snapshot, report.events) == (2, 1)  # the receipt came after the snapshot
    (sms_sent,) = [c for c in h.world.executed if isinstance(c, SendSms)]
    assert sms_sent.command_id == f"{OFFER}:1"
    (contact,) = [r for r in h.records() if r.kind is RecordKind.CONTACT and r.detail["step"] == 1]
    assert contact.at == T0 + 3600
    await h.crash()


async def test_a_stop_with_nothing_new_writes_no_snapshot(tmp_path: Path) -> None:
    h = Harness(tmp_path / "campaigns.db")
    h.set_time(T0 - 10)
    await h.start()
    await h.stop()  # nothing stored: nothing to snapshot
    h.set_time(T0)
    await h.start()
    assert h.node is not None and h.node.store.latest_snapshot() is None
    await trigger(h)
    await h.stop()
    await h.start()
    assert h.reports[-1] == RecoveryReport(0, 0, 1, 0, snapshot=1)  # the QueryCredit, pending again
    assert h.node is not None
    saved = h.node.store.latest_snapshot()
    assert saved is not None and saved.seq == 1
    await h.stop()  # nothing since the snapshot it recovered from
    await h.start()
    assert h.node is not None
    again = h.node.store.latest_snapshot()
    assert again is not None and (again.seq, again.at) == (saved.seq, saved.at)
    await h.crash()


async def test_no_snapshot_after_a_store_failure(tmp_path: Path) -> None:
    h = Harness(tmp_path / "campaigns.db")
    h.set_time(T0 - 10)
    await h.start()
    await trigger(h)
    assert h.node is not None
    h.node.store._db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    with pytest.raises(StoreError):
        await scoring(h)
    await h.stop()  # the engine moved on without the store: its state must not be written
    h.node = Node(h.path, h.world, h.clock)
    assert h.node.store.latest_snapshot() is None
    h.node.store._db.execute("DROP TRIGGER refuse")
    report = await h.runner.recover(T0 + 2)
    assert report.events == 1 and report.snapshot == 0
    await h.crash()


async def test_a_snapshot_the_engine_refuses_means_a_full_replay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(tmp_path / "campaigns.db", snapshot_every=1)
    h.set_time(T0 - 10)
    await h.start()
    await trigger(h)
    await scoring(h)
    await h.crash()
    assert h.node is None
    with SqliteCampaignStore(h.path) as store:
        store._db.execute("UPDATE snapshots SET body = json_set(body, '$.version', 99)")
    with caplog.at_level(logging.WARNING, "gateway.campaigns.runner"):
        report = await h.start()
    assert "replaying the whole log" in caplog.text
    assert (report.snapshot, report.events, report.diverged) == (0, 2, 0)
    assert h.runner.engine.offer(OFFER) is not None
    await h.crash()


async def test_a_refused_snapshot_over_a_pruned_log_is_an_error(tmp_path: Path) -> None:
    h = Harness(tmp_path / "campaigns.db", snapshot_every=1, keep_events=False)
    h.set_time(T0 - 10)
    await h.start()
    await trigger(h)
    await h.crash()
    with SqliteCampaignStore(h.path) as store:
        store._db.execute("UPDATE snapshots SET body = json_set(body, '$.version', 99)")
    with pytest.raises(StoreError, match="event 1 was pruned"):
        await h.start()
    assert h.node is not None
    h.node.store.close()
    h.node = None


async def test_offers_of_a_removed_campaign_are_reported_at_recovery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    both = campaign_set(campaigns=[NEW_UPSELL, OLD_UPSELL])
    h = Harness(tmp_path / "campaigns.db")
    h.set_time(T0 - 10)
    await h.start(both)
    await trigger(h)
    await h.submit(THRESHOLD, T0 + 1)
    await h.stop()
    with caplog.at_level(logging.WARNING, "gateway.campaigns.runner"):
        report = await h.start(campaign_set(campaigns=[NEW_UPSELL]))
    assert report.dropped == (OLD_OFFER,) and report.snapshot == 2
    assert OLD_OFFER in caplog.text
    assert h.runner.engine.offer(OLD_OFFER) is None and h.runner.engine.offer(OFFER) is not None
    # its pending QueryCredit is not carried out again: the offer no longer waits for its score
    assert report.skipped == 1
    await h.crash()


async def test_a_full_replay_handles_due_offers_in_the_order_the_live_runner_did(tmp_path: Path) -> None:
    """Two offers of one subscriber come due at one Tick. Which goes first depends on the engine's
    deadline heap, which ``next_deadline`` (the runner asks after every event) reorders; the replay asks
    it too, so the replayed Tick decides as the live one did."""
    both = campaign_set(campaigns=[NEW_UPSELL, OLD_UPSELL])
    h = Harness(tmp_path / "campaigns.db")
    h.set_time(T0 - 10)
    await h.start(both)
    await h.submit(THRESHOLD, T0)  # the old upsell: a notice now, the offer 24 h later
    await h.deliver(T0 + 1, is_(CreditScored))
    await h.submit(exhausted(at=T0 + 3599), T0 + 3600)  # the new upsell: a dialog, then an SMS
    await h.deliver(T0 + 3601, is_(CreditScored))
    await h.submit(Tick(), T0 + 90_000)  # both SMS are due
    await h.crash()
    report = await h.start(both)
    assert report.snapshot == 0 and report.events == 5 and report.diverged == 0
    await h.crash()
