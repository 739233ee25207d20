"""The campaign engine on the event loop: store first, then act (DESIGN.md, "Durability"; issue #7).

``CampaignRunner(engine, store, executor)`` is the thin asyncio adapter of ``campaign_core.engine``:

``await submit(event, now)``
    hands the event to the engine and writes the event, the records and the commands it produced to
    the store in ONE transaction (``CampaignStore.append``); only after that commit are the commands
    carried out, one after the other in the engine's order, by the ``Executor``. A command whose result
    the event reports is marked done in that same transaction. A ``Tick`` with nothing due is neither
    handled nor stored.
``Executor``
    ``async execute(command)`` carries out a ``QueryCredit``, ``PushStk``, ``SendSms``, ``Activate`` or
    ``Reply`` and feeds what happened back with ``runner.submit`` (``CreditScored`` / ``CreditFailed``,
    ``DeliveryReported`` / ``SubmitFailed``, ``Activated`` / ``ActivationFailed``; ``Responded`` comes
    from the channels). It may return before the result comes. An exception from ``execute`` is logged
    and leaves the command pending: it is carried out again at the next ``recover``.
Done
    A command is done when its result is submitted: ``QueryCredit`` by ``CreditScored`` /
    ``CreditFailed.request_id`` (``<offer>:score``), ``PushStk`` / ``SendSms`` by ``DeliveryReported`` /
    ``SubmitFailed.command_id`` or, once the SMSC accepted it (submit_sm_resp), by
    ``runner.command_done(command_id, now)``, ``Activate`` by ``Activated`` / ``ActivationFailed.offer_id``;
    a ``Reply`` once ``execute`` returned.
Timers
    One ``gateway.timers.EngineTimer`` is kept at ``engine.next_deadline()``; when it is due the runner
    submits ``Tick()``. The engine's times are epoch seconds (``clock``, ``time.time`` by default) and the
    loop's are monotonic, so the deadline is mapped onto the loop clock each time the timer is armed; call
    ``clock_changed()`` after the wall clock jumped.
Snapshots
    Every ``snapshot_every`` events (100,000 by default) the runner writes a snapshot of the engine
    (``Engine.snapshot``) in the transaction of the event it follows, and one more when it is closed
    (``close()``; not after a store failure, and not when nothing happened since the last one).
``await recover(now)``, once, before the first ``submit``
    rebuilds the engine: it restores the latest snapshot (``Engine.restore``; the offers it leaves out,
    their campaign gone from the configuration, are logged) and hands the engine the events stored after
    it, each with its stored ``now``, asking ``next_deadline()`` after each as the live runner does (it
    re-arms the timer after every event, and the order in which one Tick handles several due offers
    depends on those calls). Without a snapshot, or when ``Engine.restore`` refuses it (a snapshot of
    another version), the whole log is replayed, which needs the store to keep every event (the
    default). The outputs are discarded: they are stored already; when they differ, the campaign
    configuration changed since they were written, and a warning says so. Then ``Tick()`` at ``now``
    handles the deadlines that passed while the gateway was down (so an offer that expired meanwhile is
    closed, not pushed late), and the pending outbox is carried out again in order. Command ids are
    deterministic and ``Activate.offer_id`` is billing's idempotency key, so a re-executed activation
    is never a second one; an STK push is recognised by its offer id (the push service recorded it
    before submitting it, so it is not sent twice, nor again when the crash came before the SMSC took
    it); an SMS is not: one whose submit_sm reached the SMSC but whose acceptance was not stored yet
    goes out again (at least once: SMPP 3.4 has no idempotency key). Two
    kinds of pending command are not carried out again but marked done with the reason: a
    ``QueryCredit`` of an offer that is no longer waiting for its score (the answer would be ignored),
    and an offer's contact (``PushStk``, an ``SendSms`` naming an offer, but not the transactional
    confirmation) when the offer is closed or its journey has moved past that step: a push after its
    offer ended, or out of the journey's order, is what the late-offer finding of DESIGN.md warns
    against.
Failure
    When the store refuses a write the engine has already moved on without it: the runner stops
    (every later ``submit`` raises ``StoreError``) and must be rebuilt from the store with ``recover``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from campaign_core.engine import Engine, OfferState
from campaign_core.model import (
    Activated,
    ActivationFailed,
    Command,
    CreditFailed,
    CreditScored,
    DeliveryReported,
    Event,
    OfferDropped,
    PushStk,
    QueryCredit,
    Record,
    Reply,
    SendSms,
    SubmitFailed,
    Tick,
)
from gateway.campaigns.store import CampaignStore, OutboxCommand, StoreError, command_key
from gateway.logs import log_ids
from gateway.timers import EngineTimer
from protocols.errors import ConfigError, LocalProtocolError

__all__ = ["CampaignRunner", "Executor", "Observer", "RecoveryReport", "result_of"]

log = logging.getLogger(__name__)


Observer = Callable[[Event, float, list[Command]], None]
"""Told of each stored event with its ``now`` and the engine's outputs (records included)."""


class Executor(Protocol):
    """Carries out the engine's commands (the SMSC, STK and billing adapters, or a test double)."""

    async def execute(self, command: OutboxCommand) -> None: ...


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What ``recover`` did: events replayed, of which ``diverged`` gave other outputs than stored,
    pending commands carried out again, and those skipped as stale; ``snapshot``, the event the
    restored snapshot follows (0: none, the whole log was replayed), and ``dropped``, the open offers
    the snapshot had that the engine's campaigns no longer fit."""

    events: int
    diverged: int
    re_executed: int
    skipped: int
    snapshot: int = 0
    dropped: tuple[str, ...] = ()


def result_of(event: Event) -> str | None:
    """The id of the command whose result ``event`` reports (``store.command_key``), or None."""
    if isinstance(event, CreditScored | CreditFailed):
        return event.request_id
    if isinstance(event, DeliveryReported | SubmitFailed):
        return event.command_id
    if isinstance(event, Activated | ActivationFailed):
        return event.offer_id
    return None


class CampaignRunner:
    """Runs ``engine`` over ``store`` with ``executor`` (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        store: CampaignStore,
        executor: Executor,
        *,
        clock: Callable[[], float] = time.time,
        snapshot_every: int = 100_000,
    ) -> None:
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every must be >= 1, not {snapshot_every}")
        self.engine = engine
        self.store = store
        self.executor = executor
        self.snapshot_every = snapshot_every
        self._since_snapshot = 0  # events stored since the latest snapshot
        self._last_seq = 0  # the latest event stored
        self._clock = clock
        self._recovered = False
        self._failed: StoreError | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: EngineTimer | None = None
        self._ticks: set[asyncio.Task[None]] = set()
        self._observers: list[Observer] = []

    def add_observer(self, observer: Observer) -> None:
        """``observer(event, now, outputs)`` after each event is stored (metrics, logs); what it raises
        is logged and does not stop the runner."""
        self._observers.append(observer)

    # --- the face ------------------------------------------------------------------------------------

    async def recover(self, now: float) -> RecoveryReport:
        """Rebuild the engine from the store, handle what fell due meanwhile, carry out the pending
        commands again (see the module docstring). Once, before the first ``submit``."""
        if self._recovered:
            raise LocalProtocolError("the campaign runner has recovered already")
        after, dropped = self._restore()
        replayed = diverged = 0
        self._last_seq = after
        recorded: set[str] = set()  # offers whose OfferDropped the log holds
        for stored in self.store.events(after=after, outputs=True):
            if isinstance(stored.event, OfferDropped):
                recorded.add(stored.event.offer_id)
            outputs = self.engine.handle(stored.event, stored.now)
            self.engine.next_deadline()  # as the live runner does after each event (module docstring)
            self._last_seq = stored.seq
            replayed += 1
            if stored.outputs is not None and tuple(outputs) != stored.outputs:
                if diverged == 0:
                    log.warning(
                        "campaign replay: event %d (%s) now gives other decisions than stored; "
                        "the campaign configuration changed since",
                        stored.seq,
                        type(stored.event).__name__,
                    )
                diverged += 1
        self._since_snapshot = replayed
        self._recovered = True
        self._start_timer()
        pending = self.store.pending()  # before the Tick: what it sends now is not sent twice
        for event in self.engine.dropped:  # the snapshot's offers left out: their end, once
            if event.offer_id in recorded:
                continue  # stored already (a reload, or an earlier recovery, before the last snapshot)
            log.warning(
                "campaign snapshot: offer %s left out: %s",
                event.offer_id,
                event.reason,
                extra=log_ids(event.msisdn, event.campaign_id, event.offer_id),
            )
            await self.submit(event, now)
        await self.submit(Tick(), now)
        re_executed = skipped = 0
        for entry in pending:
            reason = self._stale(entry.command)
            if reason is not None:
                log.info(
                    "campaign outbox: %s %s not carried out again: %s",
                    type(entry.command).__name__,
                    entry.command_id,
                    reason,
                )
                self.store.mark_done(
                    [entry.command_id], now, note=f"skipped: {reason}", entry_id=entry.entry_id
                )
                skipped += 1
                continue
            re_executed += 1
            await self._execute(entry.command, now)
        if replayed or after:
            log.info(
                "campaign runner recovered: snapshot after event %d, %d events replayed (%d diverged), "
                "%d commands re-executed, %d skipped",
                after,
                replayed,
                diverged,
                re_executed,
                skipped,
            )
        return RecoveryReport(replayed, diverged, re_executed, skipped, after, tuple(dropped))

    def _restore(self) -> tuple[int, list[str]]:
        """Restore the latest snapshot into the engine: the event it follows (0: none) and the offers
        it left out."""
        snapshot = self.store.latest_snapshot()
        if snapshot is None:
            return 0, []
        try:
            dropped = self.engine.restore(snapshot.data)
        except ConfigError as exc:
            log.warning(
                "campaign store: the snapshot after event %d cannot be restored (%s); "
                "replaying the whole log",
                snapshot.seq,
                exc,
            )
            return 0, []
        if dropped:
            log.warning(
                "campaign snapshot: %d open offers left out, their campaign is gone or changed: %s",
                len(dropped),
                ", ".join(dropped[:20]) + (" ..." if len(dropped) > 20 else ""),
            )
        return snapshot.seq, dropped

    async def submit(self, event: Event, now: float) -> list[Command]:
        """Handle ``event`` at ``now``: store it with what it produced, then carry the commands out.
        Returns the engine's output (records included); empty for a ``Tick`` with nothing due."""
        if self._failed is not None:
            raise StoreError(f"the campaign runner stopped after a store failure: {self._failed}")
        if not self._recovered:
            raise LocalProtocolError("recover() the campaign runner before submitting events")
        if isinstance(event, Tick):
            due = self.engine.next_deadline()
            if due is None or due > now:
                self._arm()
                return []
        outputs = self.engine.handle(event, now)
        done = result_of(event)
        snapshot = self.engine.snapshot() if self._since_snapshot + 1 >= self.snapshot_every else None
        self._store(event, now, outputs, () if done is None else (done,), snapshot)
        self._arm()
        for command in outputs:
            if not isinstance(command, Record):
                await self._execute(command, now)
        return outputs

    def record(self, event: Event, now: float) -> list[Record]:
        """Store ``event`` with the records the engine makes of it, at once (no await), for an event
        that makes records only: the ``OfferDropped`` of a reload (``Engine.dropped``), which
        ``Gateway.reload`` applies synchronously. Nothing is carried out (``submit`` does that)."""
        if self._failed is not None:
            raise StoreError(f"the campaign runner stopped after a store failure: {self._failed}")
        outputs = self.engine.handle(event, now)
        self._store(event, now, outputs, (), None)
        return [command for command in outputs if isinstance(command, Record)]

    def _store(
        self,
        event: Event,
        now: float,
        outputs: list[Command],
        done: tuple[str, ...],
        snapshot: dict[str, Any] | None,
    ) -> None:
        """Write ``event`` and its outputs (a failing store stops the runner), then tell the observers."""
        try:
            self._last_seq = self.store.append(event, now, outputs, done=done, snapshot=snapshot)
        except StoreError as exc:
            self._failed = exc
            self._stop_timer()
            log.error("campaign store failed; the runner stops until it is recovered: %s", exc)
            raise
        self._since_snapshot = 0 if snapshot is not None else self._since_snapshot + 1
        for observer in self._observers:
            try:
                observer(event, now, outputs)
            except Exception:
                log.exception("campaign observer failed on %s", type(event).__name__)

    def command_done(self, command_id: str, now: float) -> None:
        """The command ``command_id`` was carried out (the SMSC accepted the ``PushStk`` / ``SendSms``):
        it is not carried out again after a restart."""
        if self._failed is None:
            self.store.mark_done([command_id], now, note="accepted")

    def clock_changed(self) -> None:
        """Re-map the engine's next deadline onto the loop clock (after the wall clock jumped)."""
        if self._timer is not None:
            self._timer.cancel()
            self._arm()

    def next_deadline(self) -> float | None:
        return self.engine.next_deadline()

    async def close(self, *, snapshot: bool = True) -> None:
        """Stop the timer, wait for a ``Tick`` being handled, and write a snapshot of the engine when
        ``snapshot`` and anything was stored since the last one (not after a store failure). The store
        stays open (its owner closes it)."""
        self._closed = True
        self._stop_timer()
        ticks = list(self._ticks)
        for task in ticks:
            task.cancel()
        if ticks:
            await asyncio.gather(*ticks, return_exceptions=True)
        if snapshot and self._since_snapshot:
            try:
                self.take_snapshot(self._clock())
            except StoreError as exc:  # the next start replays more of the log; nothing is lost
                log.error("campaign snapshot at close failed: %s", exc)

    def take_snapshot(self, now: float) -> None:
        """Write a snapshot of the engine after the latest event now (``close`` does it)."""
        if self._failed is not None or not self._recovered or self._last_seq == 0:
            return
        self.store.save_snapshot(self._last_seq, self.engine.snapshot(), now)
        self._since_snapshot = 0

    # --- commands ------------------------------------------------------------------------------------

    async def _execute(self, command: OutboxCommand, now: float) -> None:
        try:
            await self.executor.execute(command)
        except Exception:
            log.exception(
                "campaign executor failed on %s %s; it stays pending until the next recovery",
                type(command).__name__,
                command_key(command),
            )
            return
        if isinstance(command, Reply) and self._failed is None:
            self.store.mark_done([command.response_id], now, note="executed")

    def _stale(self, command: OutboxCommand) -> str | None:
        """Why a pending command must not be carried out again after a restart, or None."""
        if isinstance(command, QueryCredit):
            key = command.request_id.rpartition(":")[0]
            view = self.engine.offer(key)
            if view is None or view.state is not OfferState.SCORING:
                return "the offer no longer waits for its score"
            return None
        if isinstance(command, PushStk):
            offer: str | None = command.offer_id
        elif isinstance(command, SendSms) and command.promotional:
            offer = command.offer_id
        else:
            return None
        if offer is None:
            return None  # an informational SMS: it offers nothing that could be late
        view = self.engine.offer(offer)
        if view is None:
            return "the offer is closed"
        step = command.command_id.rpartition(":")[2]
        if step != str(view.step) or view.state not in (OfferState.AWAITING, OfferState.OPEN):
            return f"the journey moved on to step {view.step}"
        return None

    # --- the timer -----------------------------------------------------------------------------------

    def _start_timer(self) -> None:
        if self._timer is None:
            self._loop = asyncio.get_running_loop()
            self._timer = EngineTimer(self._loop, self._loop_deadline, self._on_timer)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _arm(self) -> None:
        if self._timer is not None and not self._closed and self._failed is None:
            self._timer.arm()

    def _loop_deadline(self) -> float | None:
        due = self.engine.next_deadline()
        if due is None or self._loop is None:
            return None
        return self._loop.time() + (due - self._clock())

    def _on_timer(self, loop_now: float) -> None:
        if self._closed or self._loop is None:
            return
        # the timer may run a hair before the loop clock reaches it: add what the loop clock lags
        now = self._clock() + max(0.0, loop_now - self._loop.time())
        task = self._loop.create_task(self._tick(now))
        self._ticks.add(task)
        task.add_done_callback(self._ticks.discard)

    async def _tick(self, now: float) -> None:
        try:
            await self.submit(Tick(), now)
        except Exception:
            log.exception("campaign tick at %.3f failed", now)
