"""``tgw simulate``: the whole operator network around the gateway, on a simulated clock (issue #8).

One process, one event loop on virtual time (``simulators.clock``), every exchange over real loopback
sockets with the real protocols:

- the gateway (``gateway.app.Gateway``): ingest (DPI JSON over HTTP and Diameter Gy), the campaign
  runner on its SQLite store, the channels (SMPP 3.4 to the SMSC: STK push in SMS-PP, SMS with
  receipts, USSD over ``ussd_service_op``) and the billing client (HTTP with idempotency keys);
- the SMSC simulator with one handset per subscriber (a SIM applet with its own OTA keys for the
  subscribers whose handsets show SIM toolkit dialogs);
- the billing / OCS simulator (``simulators.billing``) with credit scoring and the ledger, over HTTP;
- the network (this module's ``NetworkModel``): meters each subscriber's data use hour by hour of
  their day (``Behaviour.usage_hours``) against billing's packages and reports the crossings (90 %,
  exhausted) the way a PCEF / DPI does, after a reporting delay: half the subscribers by DPI JSON over
  HTTP, half by Diameter Gy CCR-U (RFC 4006 / TS 32.299). At each day's start it settles the day
  before (as of the last instant of that day, so its use counts against that day's packages), then has
  billing renew the recurring packages due (``Billing.renew_due``): a renewal is reported as a
  ``renewed`` notification naming the new period and metered from zero, so the gateway can trigger
  90 % and exhaustion again. Gy has no message for a renewal (``DiameterEmitter``), so the Diameter
  half's renewals come from billing's notification feed (JSON over HTTP, naming the package by its
  Rating-Group as the Gy reports do). Use on pay-as-you-go is still given to billing
  (which charges ``payg_price_per_mb``) at each settlement, but not metered against a quota. Billing
  has the network settle a subscriber's use before an activation, a purchase or a top-up
  (``Billing.set_meter``), so the pay-as-you-go use up to a new package is charged as such and does
  not come out of the package;
- the subscribers (``SubscriberModel``): the scenario's behaviour answers each DSTK dialog on the
  handset, dials the USSD code of an SMS offer after a delay, rations data after a warning, buys in the
  data shop on their own once out of data, and tops up on their habit.

The network does not step through every hour of every subscriber: for each subscriber it walks the
day's hourly use to the next crossing of billing's quota and sets one timer there (or at the day's
end), so a month of a population costs a few timers per subscriber and day.

What the report shows is computed afterwards from the gateway's campaign store (the decision trail:
``campaign_core.kpis``) and checked against billing's ledger (``consistency_checks``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pydantic

from campaign_core.kpis import KpiRow, compute_kpis
from campaign_core.model import (
    Activate,
    Activated,
    ActivationFailed,
    CreditFailed,
    CreditScored,
    Profile,
    Purchased,
    QueryCredit,
    Record,
    RecordKind,
)
from gateway.app import Gateway, GatewaySettings
from gateway.billing.client import BillingClient, BillingClientStats
from gateway.campaigns.cli import attribution_windows
from gateway.campaigns.loader import load_campaign_dir
from gateway.campaigns.store import SqliteCampaignStore
from gateway.ingest.config import IngestConfig
from gateway.ingest.diameter import DiameterClient, DiameterSettings
from gateway.smpp.client import ClientConfig
from gateway.stk import KeyStore, SecretKey
from gateway.trace import PcapWriter, TrafficTap
from protocols.errors import ConfigError, LocalProtocolError
from protocols.stk.commands import ProactiveCommand, SelectItem
from simulators.billing import (
    Billing,
    BillingConfig,
    BillingNotice,
    BillingServer,
    LedgerKind,
    PackageAdded,
    PackageHolding,
    RenewalTerms,
    ServerStats,
    Subscriber,
    UsageCrossing,
    UsageKind,
    catalogue_from_config,
    load_billing_config,
)
from simulators.billing import TopUp as BillingTopUp
from simulators.clock import SimClock, run_simulated
from simulators.handset import DEFAULT_PROFILE, Handset, ReactionDelay, UserAction, UserPolicy
from simulators.network import DiameterDialect, DiameterEmitter, HttpEmitter, Notification, NotificationKind
from simulators.report import Check, ReportData, ReportFiles, write_report
from simulators.scenario import (
    Action,
    Behaviour,
    Scenario,
    SimSubscriber,
    assumptions,
    build_population,
    load_scenario,
)
from simulators.sim_applet import SimCard
from simulators.smsc import SmscSimulator

__all__ = ["SimulationResult", "consistency_checks", "handset_address", "run_simulation", "simulate_command"]

log = logging.getLogger(__name__)

DAY = 86_400.0
HOUR = 3_600.0
SHORT_CODE = "12345"
GATEWAY_IP = "10.0.0.1"  # the addresses the capture shows (the SMSC is .2, billing .3, the PCEF .4)
PCEF_IP = "10.0.0.4"
REPORT_DELAY = 30.0  # the network reports a crossing within this many seconds (a DPI export interval)
_DAY_END = 0.001  # the day before's last use is metered this long before midnight, on that day's date
_OFFER_CODE = re.compile(r"\*\d+\*(\d+)#")
_ANY_CODE = re.compile(r"\*\d+(?:\*\d+)*#")
_MB = re.compile(r"(\d+)\s*MB")

Progress = Callable[[float, str], None]
"""``progress(fraction done, one-line status)``."""


@dataclass(slots=True)
class Counters:
    notifications: int = 0
    notifications_http: int = 0
    notifications_diameter: int = 0
    dialogs_shown: int = 0
    dialogs_answered: int = 0
    sms_received: int = 0
    codes_dialled: int = 0
    warnings_heeded: int = 0
    shop_purchases: int = 0
    top_ups: int = 0
    renewals: int = 0
    ussd_screens: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """What a run produced: the KPI rows, the records they came from, billing's state, counters,
    ``checks`` (name -> (passed, detail)) and the time it took (``wall_seconds``: not in the report)."""

    scenario: Scenario
    rows: list[KpiRow]
    records: list[Record]
    billing: Billing
    counters: Counters
    contacts_per_day: dict[str, list[int]]
    checks: dict[str, tuple[bool, str]]
    wall_seconds: float
    simulated_days: int
    subscribers: int
    loop_jumps: int
    billing_server: ServerStats
    billing_client: BillingClientStats
    pcap_packets: int = 0
    pcap_truncated: bool = False


def handset_address(msisdn: str) -> str:
    """The address a capture shows a handset's SIM trace from: 10.8.x.y by its number."""
    number = int(msisdn) if msisdn.isdigit() else sum(msisdn.encode())
    return f"10.8.{number // 250 % 250}.{number % 250 + 1}"


# --- SIM keys for the population -----------------------------------------------------------------------


def _key(msisdn: str, purpose: int) -> str:
    """A per-card AES-128 key (test keys: derived from the MSISDN, never used outside the simulation)."""
    digits = f"{int(msisdn):015d}"[-15:]
    return f"{purpose:02x}{digits}{'0' * 15}"[:32]


def sim_keys(subscribers: Sequence[SimSubscriber]) -> KeyStore:
    """The SIM keys of the STK-capable subscribers: one card parsed from a key file (so it is checked
    like any other), then one copy per subscriber with its own ICCID and keys."""
    template = next(iter(KeyStore.from_yaml(_TEMPLATE_CARD, file="<simulated SIM keys>")))
    cards = [
        replace(
            template,
            msisdn=sub.msisdn,
            iccid=f"8925{int(sub.msisdn) % 10**15:015d}",
            kic_key=SecretKey(bytes.fromhex(_key(sub.msisdn, 1))),
            kid_key=SecretKey(bytes.fromhex(_key(sub.msisdn, 2))),
        )
        for sub in subscribers
        if sub.stk_capable
    ]
    return KeyStore(cards, file="<simulated SIM keys>")


_TEMPLATE_CARD = """version: 1
minimum_security: {integrity: cc, ciphering: true, counter: higher}
defaults:
  tar: BFFF01
subscribers:
  - msisdn: "254700000000"
    iccid: "8925000000000000000"
    kic: {algorithm: aes, key: "01000000000000000000000000000000", kvn: 1}
    kid: {algorithm: aes, key: "02000000000000000000000000000000", kvn: 1}
"""


# --- the network: metering and reporting ---------------------------------------------------------------


@dataclass(slots=True)
class _Meter:
    """One subscriber's metering state: use is applied to billing up to ``applied_until``."""

    sub: SimSubscriber
    day: int = -1
    hours: tuple[tuple[float, float], ...] = ()  # (hour start, MB in it) of ``day``
    day_mb: float = 0.0  # the MB of all of ``hours``
    factor: float = 1.0
    applied_until: float = 0.0
    payg: bool = False  # every package used up: use is pay-as-you-go, not metered against a quota
    timer: asyncio.TimerHandle | None = None
    sequence: int = 0
    periods: dict[str, int] = field(default_factory=dict)  # package reference -> period number
    exhausted_at: float | None = None


class NetworkModel:
    """Meters use against billing and reports crossings to the gateway (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        behaviour: Behaviour,
        billing: Billing,
        clock: SimClock,
        *,
        http: HttpEmitter,
        diameter: DiameterEmitter,
        counters: Counters,
    ) -> None:
        self.scenario = scenario
        self.behaviour = behaviour
        self.billing = billing
        self.clock = clock
        self.http = http
        self.diameter = diameter
        self.counters = counters
        self.on_exhausted: Callable[[SimSubscriber, float], None] = lambda sub, now: None
        self.meters: dict[str, _Meter] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()
        self._index: dict[str, int] = {}

    def add(self, sub: SimSubscriber, index: int) -> None:
        self.meters[sub.msisdn] = _Meter(sub, applied_until=self.scenario.start_time)
        self._index[sub.msisdn] = index

    # --- use ---

    def _use_between(self, meter: _Meter, start: float, end: float) -> float:
        """MB used in [start, end) by the day's hourly plan."""
        hours = meter.hours
        if hours and start <= hours[0][0] and end >= hours[-1][0] + HOUR:
            return meter.day_mb * meter.factor  # the whole day: each day's settling at midnight
        total = 0.0
        for hour_start, mb in hours:
            lo, hi = max(start, hour_start), min(end, hour_start + HOUR)
            if hi > lo:
                total += mb * (hi - lo) / HOUR
        return total * meter.factor

    def start_day(self, day: int) -> None:
        now = self.clock()
        for meter in self.meters.values():
            # the day before ends now: its last use is metered on its own date, before any renewal
            self._settle(meter, at=now - _DAY_END)
        self.billing.renew_due(now)  # its notices come back through package_renewed
        for meter in self.meters.values():
            meter.day = day
            meter.hours = self.behaviour.usage_hours(meter.sub, day)
            meter.day_mb = sum(mb for _, mb in meter.hours)
            self._plan(meter)

    def settle(self, msisdn: str, now: float) -> None:
        """Give billing the use up to now, recorded as of billing's ``now`` (billing's meter,
        ``Billing.set_meter``: called before a change that billing would meter the use against); a
        subscriber the network does not serve has none."""
        meter = self.meters.get(msisdn)
        if meter is not None:
            self._settle(meter, at=now)

    def _settle(self, meter: _Meter, at: float | None = None) -> None:
        """Apply the use up to now to billing (and report what it crosses), as of ``at`` (default
        now). On pay-as-you-go the use still goes to billing, which charges it."""
        now = self.clock()
        mb = self._use_between(meter, meter.applied_until, now)
        meter.applied_until = now
        if mb > 0:
            self._apply(meter, mb, now if at is None else at)

    def _apply(self, meter: _Meter, mb: float, now: float) -> None:
        change = self.billing.record_usage(meter.sub.msisdn, mb, now)
        for crossing in change.crossings:
            self._report(meter, crossing, now)
        if change.overage_mb > 0 or (not meter.payg and not self._remaining(meter, now)):
            meter.payg = True

    def _remaining(self, meter: _Meter, now: float) -> list[PackageHolding]:
        state = self.billing.subscriber(meter.sub.msisdn, now)
        today = self.billing.local_date(meter.sub.msisdn, now)
        return sorted(
            (p for p in state.packages if p.active_on(today) and p.used_mb < p.quota_mb),
            key=lambda p: p.end_date,
        )

    def _plan(self, meter: _Meter) -> None:
        """One timer at the next crossing of today's use, if today reaches one."""
        if meter.timer is not None:
            meter.timer.cancel()
            meter.timer = None
        if meter.payg:
            return
        now = self.clock()
        packages = self._remaining(meter, now)
        if not packages:
            meter.payg = True
            return
        first = packages[0]
        mark = first.quota_mb * self.billing.config.threshold_percent / 100
        target = (mark - first.used_mb) if first.used_mb < mark else (first.quota_mb - first.used_mb)
        cumulative = 0.0
        for hour_start, mb in meter.hours:
            lo = max(now, hour_start)
            hi = hour_start + HOUR
            if hi <= lo or mb <= 0:
                continue
            rate = mb * meter.factor / HOUR  # MB per second in this hour
            if rate <= 0:
                continue
            portion = rate * (hi - lo)
            if cumulative + portion >= target:
                at = lo + (target - cumulative) / rate + 1.0  # a second past the mark: it is crossed
                meter.timer = self._loop.call_at(self.clock.loop_time(at), self._on_crossing, meter)
                return
            cumulative += portion

    def _on_crossing(self, meter: _Meter) -> None:
        meter.timer = None
        self._settle(meter)
        self._plan(meter)

    def package_added(self, msisdn: str, now: float, factor: float | None) -> None:
        """Billing added a package: use is metered against it from now on."""
        meter = self.meters.get(msisdn)
        if meter is None:
            return
        if meter.payg:
            meter.payg = False
            meter.applied_until = now
        else:
            self._settle(meter)
        if factor is not None:
            meter.factor = factor
        meter.exhausted_at = None
        self._plan(meter)

    def package_renewed(self, msisdn: str, holding: PackageHolding, at: float) -> None:
        """Billing renewed a recurring package: report the new period and meter from it.

        Deferred to the loop's next turn: billing may renew while the network is inside one of its
        own calls to billing (a renewal is applied at billing's first look past the boundary)."""
        if msisdn in self.meters:
            self._loop.call_soon(self._renewed, self.meters[msisdn], holding, at)

    def _renewed(self, meter: _Meter, holding: PackageHolding, at: float) -> None:
        self.counters.renewals += 1
        now = self.clock()
        if meter.payg:
            meter.payg = False
            meter.applied_until = now  # billing metered nothing since the renewal: start afresh
        else:
            self._settle(meter)
        # a rationing subscriber saves "until the package renews" (the scenario's warning)
        meter.factor = 1.0
        meter.exhausted_at = None
        self._report_renewal(meter, holding, at)
        self._plan(meter)

    def set_factor(self, msisdn: str, factor: float) -> None:
        meter = self.meters[msisdn]
        self._settle(meter)
        meter.factor = factor
        self._plan(meter)

    # --- reporting ---

    def _report_renewal(self, meter: _Meter, holding: PackageHolding, at: float) -> None:
        # the renewal's reference is new, so the new period gets the next number: the gateway's
        # trigger detector starts a period on it and its 90 % / exhaustion can trigger again
        self._emit(
            meter,
            self._notification(
                meter, NotificationKind.RENEWED, holding.package_id, holding.reference,
                holding.used_mb, holding.quota_mb, at,
            ),
        )  # fmt: skip

    def _report(self, meter: _Meter, crossing: UsageCrossing, now: float) -> None:
        exhausted = crossing.kind is UsageKind.EXHAUSTED
        notification = self._notification(
            meter,
            NotificationKind.EXHAUSTED if exhausted else NotificationKind.THRESHOLD,
            crossing.package_id,
            crossing.reference,
            crossing.used_mb,
            crossing.quota_mb,
            now,
            threshold=None if exhausted else crossing.level,
        )
        if exhausted:
            meter.exhausted_at = now
            self.on_exhausted(meter.sub, now)
        self._emit(meter, notification)

    @staticmethod
    def _notification(  # noqa: PLR0917 - the notification's fields, in order
        meter: _Meter,
        kind: NotificationKind,
        package_id: str,
        reference: str,
        used_mb: float,
        quota_mb: int,
        at: float,
        threshold: int | None = None,
    ) -> Notification:
        """The next notification of ``meter``: the package period ``reference`` is numbered at its first
        notification, and the sequence counts every notification of the subscriber."""
        period = meter.periods.setdefault(reference, len(meter.periods) + 1)
        meter.sequence += 1
        quota = quota_mb * 1_000_000
        return Notification(
            kind=kind,
            msisdn=meter.sub.msisdn,
            package_id=package_id,
            period=period,
            sequence=meter.sequence,
            used_bytes=min(quota, int(used_mb * 1_000_000)),
            quota_bytes=quota,
            percent=100.0 * used_mb / quota_mb,
            time=at,
            threshold=threshold,
        )

    def _emit(self, meter: _Meter, notification: Notification) -> None:
        """Send ``notification`` after the reporting delay, by the subscriber's half of the network."""
        delay = (
            REPORT_DELAY * ((meter.sequence * 7919 + self._index[meter.sub.msisdn] * 104729) % 1000) / 1000
        )
        task = self._loop.create_task(self._send(notification, delay, self._index[meter.sub.msisdn] % 2 == 0))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, notification: Notification, delay: float, by_http: bool) -> None:
        await asyncio.sleep(delay)
        try:
            if by_http:
                await self.http.emit([notification])
                self.counters.notifications_http += 1
            else:
                # built at send time, like DiameterEmitter.emit, so a Gy session reports in order
                messages = self.diameter.messages(notification)
                if messages:
                    for message in messages:
                        await self.diameter.send(message)
                    self.counters.notifications_diameter += 1
                elif notification.kind is NotificationKind.RENEWED:
                    await self.http.emit([self._fed_renewal(notification)])
                    self.counters.notifications_http += 1
                else:
                    return
            self.counters.notifications += 1
        except Exception:
            log.exception("the network could not report %s", notification.event_id)

    def _fed_renewal(self, notification: Notification) -> Notification:
        """A renewal of a subscriber reported over Gy or Gx, which have no message for it (the next
        session simply starts afresh): billing's own notification feed reports it as JSON over HTTP,
        naming the package as the gateway knows it from those reports (``gateway.ingest.diameter``:
        ``rg:<Rating-Group>`` for Gy, ``mk:<Monitoring-Key>`` for Gx), so that the gateway's trigger
        detector starts the new period and can trigger 90 % and exhaustion again."""
        if self.diameter.dialect is DiameterDialect.GX:
            return replace(notification, package_id=f"mk:{notification.package_id}")
        return replace(notification, package_id=f"rg:{self.diameter.rating_group}")

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def stop(self) -> None:
        for meter in self.meters.values():
            if meter.timer is not None:
                meter.timer.cancel()
                meter.timer = None


# --- the subscribers -----------------------------------------------------------------------------------


class SubscriberModel:
    """What each subscriber does on their handset, by the scenario's behaviour."""

    def __init__(
        self,
        behaviour: Behaviour,
        billing: Billing,
        network: NetworkModel,
        clock: SimClock,
        *,
        counters: Counters,
        volumes: Sequence[tuple[str, int]],
        on_purchase: Callable[[Purchased], None],
    ) -> None:
        self.behaviour = behaviour
        self.billing = billing
        self.network = network
        self.clock = clock
        self.counters = counters
        self.volumes = list(volumes)  # (package id, MB) of the catalogue, the data shop's choice
        self.on_purchase = on_purchase
        self.handsets: dict[str, Handset] = {}
        self._subs: dict[str, SimSubscriber] = {}
        self._dialogs: dict[str, int] = {}
        self._texts: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()

    def attach(self, sub: SimSubscriber, handset: Handset) -> None:
        self.handsets[sub.msisdn] = handset
        self._subs[sub.msisdn] = sub
        handset.choose_policy = lambda command: self._dialog(sub, command)
        handset.on_text = lambda text: self._text(sub, text)

    def _age(self, sub: SimSubscriber) -> float:
        meter = self.network.meters[sub.msisdn]
        return 0.0 if meter.exhausted_at is None else max(0.0, self.clock() - meter.exhausted_at)

    def _dialog(self, sub: SimSubscriber, command: ProactiveCommand) -> UserPolicy:
        self.counters.dialogs_shown += 1
        n = self._dialogs[sub.msisdn] = self._dialogs.get(sub.msisdn, 0) + 1
        if isinstance(command, SelectItem):
            volumes = [int(m.group(1)) if (m := _MB.search(item.text)) else 0 for item in command.items]
        else:
            volumes = [1]
        reaction = self.behaviour.stk_reaction(sub, f"dialog-{n}", volumes, self._age(sub))
        if reaction.action is Action.OK:
            self.counters.dialogs_answered += 1
            return UserPolicy(
                UserAction.ACCEPT, item=reaction.option or 0, delay=ReactionDelay.fixed(reaction.delay_s)
            )
        if reaction.action is Action.DECLINE:
            self.counters.dialogs_answered += 1
            return UserPolicy(UserAction.DECLINE, delay=ReactionDelay.fixed(reaction.delay_s))
        return UserPolicy(UserAction.IGNORE)

    def _text(self, sub: SimSubscriber, text: str) -> None:
        self.counters.sms_received += 1
        n = self._texts[sub.msisdn] = self._texts.get(sub.msisdn, 0) + 1
        offers = [(int(m.group(1)), m.group(0)) for m in _OFFER_CODE.finditer(text)]
        if offers:
            reaction = self.behaviour.sms_reaction(sub, f"sms-{n}", [mb for mb, _ in offers], self._age(sub))
            if reaction.action is Action.OK and reaction.option is not None:
                code = offers[reaction.option][1]
                self._spawn(self._dial_later(sub, code, reaction.delay_s))
        elif (  # a usage warning: some ration their data
            _ANY_CODE.search(text) and "%" in text and self.behaviour.saves_after_warning(sub, f"warning-{n}")
        ):
            self.counters.warnings_heeded += 1
            self.network.set_factor(sub.msisdn, self.behaviour.saving_factor)

    async def _dial_later(self, sub: SimSubscriber, code: str, delay: float) -> None:
        await asyncio.sleep(delay)
        handset = self.handsets[sub.msisdn]
        self.counters.codes_dialled += 1
        try:
            dialog = await handset.dial(code, timeout=60)
            screen = await dialog.next_screen(60)
        except Exception as exc:  # a USSD failure is part of what the report shows
            log.info("USSD %s from %s failed: %s", code, sub.msisdn, exc)
            return
        if len(self.counters.ussd_screens) < 5:
            self.counters.ussd_screens.append(f"{sub.msisdn} dialled {code}: {screen.text}")

    def exhausted(self, sub: SimSubscriber, now: float) -> None:
        """Out of data: some buy in the data shop on their own, later (when no offer got them first)."""
        key = f"shop-{now:.0f}"
        purchase = self.behaviour.self_purchase(sub, key, [mb for _, mb in self.volumes])
        if purchase is not None:
            self._spawn(self._shop_later(sub, purchase.option, purchase.delay_s, key))

    async def _shop_later(self, sub: SimSubscriber, option: int, delay: float, key: str) -> None:
        await asyncio.sleep(delay)
        meter = self.network.meters[sub.msisdn]
        if not meter.payg:
            return  # an offer (or a renewal) gave them data meanwhile
        package_id = self.volumes[option][0]
        now = self.clock()
        try:  # billing has the network settle the use so far first (Billing.set_meter)
            record = self.billing.purchase(
                sub.msisdn, package_id, now, purchase_id=f"shop-{sub.msisdn}-{key}"
            )
        except Exception as exc:  # short of balance: they stay on pay-as-you-go
            log.debug("shop purchase by %s refused: %s", sub.msisdn, exc)
            return
        self.counters.shop_purchases += 1
        self.on_purchase(record.event())

    def top_up_all(self, start: float, end: float) -> None:
        for sub in self._subs.values():
            for top_up in self.behaviour.top_ups(sub, end):
                if top_up.at >= start:
                    self._loop.call_at(self.clock.loop_time(top_up.at), self._top_up, sub, top_up.amount)

    def _top_up(self, sub: SimSubscriber, amount: Decimal) -> None:
        self.billing.top_up(sub.msisdn, amount, self.clock(), reference="topup")
        self.counters.top_ups += 1

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for handset in self.handsets.values():
            await handset.close()


# --- billing as the gateway sees it --------------------------------------------------------------------


class SimBilling:
    """The gateway's billing port over HTTP (``BillingClient``), plus billing's profile of a subscriber
    with what the simulation knows of their handset (billing keeps no handset capabilities)."""

    def __init__(self, client: BillingClient, subscribers: dict[str, SimSubscriber]) -> None:
        self.client = client
        self.subscribers = subscribers

    async def score(self, command: QueryCredit) -> CreditScored | CreditFailed:
        return await self.client.score(command)

    async def activate(self, command: Activate) -> Activated | ActivationFailed:
        return await self.client.activate(command)

    async def profile(self, msisdn: str) -> Profile | None:
        profile = await self.client.profile(msisdn)
        sub = self.subscribers.get(msisdn)
        if profile is None or sub is None:
            return profile
        return replace(profile, segment=sub.segment, stk_capable=sub.stk_capable)


# --- the run -------------------------------------------------------------------------------------------


def _opening(sub: SimSubscriber, behaviour: Behaviour, start: float) -> Subscriber:
    zone = ZoneInfo(sub.zone)
    package = sub.package
    first = datetime.fromtimestamp(package.period_start, UTC).astimezone(zone).date()
    last = first + timedelta(days=package.validity_days - 1)
    holding = PackageHolding(
        package_id=package.package_id,
        quota_mb=package.quota_mb,
        used_mb=package.used_mb_at_start,
        start_date=first.isoformat(),
        end_date=last.isoformat(),
        recurring=package.recurring,
        reference=f"base-{sub.msisdn}",
        # the scenario's terms (the catalogue's unless it gave its own): the package renews on them
        terms=RenewalTerms(package.price, package.validity_days) if package.recurring else None,
    )
    history = tuple(
        BillingTopUp(start - (k + 1) * sub.top_up.interval_days * DAY, sub.top_up.amount) for k in range(3)
    )
    return Subscriber(
        msisdn=sub.msisdn,
        balance=sub.balance,
        tenure_days=sub.tenure_days,
        zone=sub.zone,
        topups=history,
        packages=(holding,),
    )


async def run_simulation(
    scenario: Scenario,
    workdir: Path,
    clock: SimClock,
    *,
    campaigns_dir: Path,
    ussd_menus: Path,
    billing_config: BillingConfig | None = None,
    pcap: Path | None = None,
    pcap_max_bytes: int = 256 * 2**20,
    progress: Progress | None = None,
) -> SimulationResult:
    """Run ``scenario`` with its state in ``workdir`` (see the module docstring); ``pcap``: capture
    the traffic there (``gateway.trace``; at most ``pcap_max_bytes``)."""
    started = time.perf_counter()
    tap = None
    if pcap is not None:
        tap = TrafficTap(PcapWriter(pcap, max_bytes=pcap_max_bytes), clock)
        tap.install(asyncio.get_running_loop())
    behaviour = Behaviour.of(scenario)
    population = build_population(scenario)
    by_msisdn = {sub.msisdn: sub for sub in population}
    counters = Counters()
    start = scenario.start_time
    end = scenario.end_time

    campaigns = load_campaign_dir(campaigns_dir, ussd_menus=ussd_menus)
    config = billing_config or BillingConfig(currency=campaigns.catalogue.currency)
    billing = Billing(config, catalogue_from_config(campaigns.catalogue))
    for sub in population:
        billing.add_subscriber(_opening(sub, behaviour, start), start)
    billing_server = BillingServer(billing, clock)
    billing_host, billing_port = await billing_server.start()
    if tap is not None:  # each node its own address, each protocol its registered port
        tap.name_server(billing_port, "10.0.0.3", 8080, GATEWAY_IP)

    # keepalives at a tenth of their usual rate: each one is a jump of the simulated clock
    smsc = SmscSimulator(
        {"gateway": "secret"},
        receipt_delay=2.0,
        seed=scenario.seed,
        record_messages=False,
        enquire_link_interval=600.0,
    )
    smsc_host, smsc_port = await smsc.start("127.0.0.1", 0)
    if tap is not None:
        tap.name_server(smsc_port, "10.0.0.2", 2775, GATEWAY_IP)
    keystore = sim_keys(population)

    # idle connections are kept for an hour: the pool's cleanup timer is a clock jump every 15 s
    client = BillingClient(
        f"http://{billing_host}:{billing_port}", timeout=5.0, retries=4, keepalive_timeout=3600.0
    )
    port_billing = SimBilling(client, by_msisdn)
    ingest = IngestConfig.model_validate(
        {
            "http": {"host": "127.0.0.1", "port": 0},
            "diameter": {
                "host": "127.0.0.1",
                "port": 0,
                "origin_host": "tgw.sim.example",
                "origin_realm": "sim.example",
                "watchdog_interval": 300,
                "allowed_peers": [{"origin_host": "pcef.sim.example", "origin_realm": "sim.example"}],
            },
        }
    )
    settings = GatewaySettings(
        smpp=ClientConfig(smsc_host, smsc_port, "gateway", "secret", window=200, enquire_link_interval=300),
        short_code=SHORT_CODE,
        campaigns_dir=campaigns_dir,
        ussd_menus=ussd_menus,
        state_dir=workdir / "state",
        ingest=ingest,
        sim_keys=keystore,
        currency=campaigns.catalogue.currency,
        durable=False,
    )
    gateway = Gateway(settings, port_billing, port_billing.profile, clock=clock)
    await gateway.start()

    purchases: list[Purchased] = []

    def on_purchase(event: Purchased) -> None:
        purchases.append(event)
        task = asyncio.get_running_loop().create_task(gateway.runner.submit(event, clock()))
        feed.add(task)
        task.add_done_callback(feed.discard)

    feed: set[asyncio.Task[object]] = set()
    if gateway.ingest.http is None or gateway.ingest.diameter_address is None:
        raise LocalProtocolError("the simulated gateway needs its HTTP and Diameter intakes")
    if tap is not None:
        tap.name_server(gateway.ingest.http.port, GATEWAY_IP, 80, PCEF_IP)
        tap.name_server(gateway.ingest.diameter_address[1], GATEWAY_IP, 3868, PCEF_IP)
    http = HttpEmitter(gateway.ingest.http.url, keepalive_timeout=3600.0)
    await http.__aenter__()
    pcef = DiameterClient(
        DiameterSettings(origin_host="pcef.sim.example", origin_realm="sim.example", watchdog_interval=300),
        *gateway.ingest.diameter_address,
    )
    await pcef.start()
    await pcef.wait_open(30)
    diameter = DiameterEmitter(
        pcef,
        DiameterDialect.GY,
        origin_host="pcef.sim.example",
        origin_realm="sim.example",
        destination_realm="sim.example",
        destination_host="tgw.sim.example",
    )
    volumes = [(p.id, p.volume_mb) for p in campaigns.catalogue.packages]
    network = NetworkModel(
        scenario, behaviour, billing, clock, http=http, diameter=diameter, counters=counters
    )
    subscribers = SubscriberModel(
        behaviour, billing, network, clock, counters=counters, volumes=volumes, on_purchase=on_purchase
    )
    network.on_exhausted = subscribers.exhausted

    def on_billing(notice: BillingNotice) -> None:
        if isinstance(notice, PackageAdded) and notice.via is LedgerKind.RENEWAL:
            network.package_renewed(notice.msisdn, notice.package, notice.at)
        elif isinstance(notice, PackageAdded):
            factor = (
                behaviour.after_purchase_factor
                if notice.reference.startswith(("shop-",)) or notice.via.value == "activation"
                else None
            )
            network.package_added(notice.msisdn, notice.at, factor)

    billing.add_listener(on_billing)
    billing.set_meter(network.settle)
    for index, sub in enumerate(population):
        network.add(sub, index)
        entry = keystore.by_msisdn(sub.msisdn)
        card = (
            SimCard(entry.iccid, {entry.tar: entry.key_set()}, dialog_timeout=300.0)
            if entry is not None
            else None
        )
        handset = Handset(
            sub.msisdn,
            card,
            DEFAULT_PROFILE,
            UserPolicy(UserAction.IGNORE),
            smsc,
            seed=index,
            dialog_timeout=120.0,
        )
        subscribers.attach(sub, handset)
        if tap is not None and card is not None:
            handset.on_apdu = partial(tap.sim_apdu, handset_address(sub.msisdn))
    subscribers.top_up_all(start, end)

    loop = asyncio.get_running_loop()
    for day in range(scenario.days):
        day_start = start + day * DAY
        await asyncio.sleep(max(0.0, day_start - clock()))
        network.start_day(day)
        if progress is not None:
            progress(
                day / scenario.days,
                f"day {day + 1}/{scenario.days}: {gateway.triggers} triggers, {billing_activations(billing)} activations",
            )
    await asyncio.sleep(max(0.0, end - clock()))
    network.stop()
    await network.drain()
    await asyncio.sleep(600)  # the answers and activations in flight settle
    await subscribers.close()
    while feed:
        await asyncio.gather(*list(feed), return_exceptions=True)
    await gateway.stop()
    await http.__aexit__(None, None, None)
    await pcef.stop()
    await client.close()
    await billing_server.stop()
    await smsc.stop()
    if tap is not None:
        tap.close()
    if progress is not None:
        progress(1.0, f"done: {gateway.triggers} triggers")

    records = _records(workdir / "state" / "campaigns.sqlite")
    rows = compute_kpis(records, windows=attribution_windows(campaigns))
    return SimulationResult(
        scenario=scenario,
        rows=rows,
        records=records,
        billing=billing,
        counters=counters,
        contacts_per_day=contacts_per_day(records, start, scenario.days),
        checks=consistency_checks(records, billing, rows),
        wall_seconds=time.perf_counter() - started,
        simulated_days=scenario.days,
        subscribers=len(population),
        loop_jumps=getattr(loop, "jumps", 0),
        billing_server=billing_server.stats,
        billing_client=client.stats,
        pcap_packets=0 if tap is None else tap.writer.packets,
        pcap_truncated=tap is not None and tap.writer.truncated,
    )


def billing_activations(billing: Billing) -> int:
    return len(billing.activations())


def _records(path: Path) -> list[Record]:
    store = SqliteCampaignStore(path)
    try:
        return list(store.records())
    finally:
        store.close()


def contacts_per_day(records: Sequence[Record], start: float, days: int) -> dict[str, list[int]]:
    """CONTACT records per channel per simulated day."""
    out: dict[str, list[int]] = {}
    for record in records:
        if record.kind is not RecordKind.CONTACT:
            continue
        channel = str(record.detail.get("channel", "?"))
        day = int((record.at - start) // DAY)
        if 0 <= day < days:
            out.setdefault(channel, [0] * days)[day] += 1
    return out


def consistency_checks(
    records: Sequence[Record], billing: Billing, rows: Sequence[KpiRow]
) -> dict[str, tuple[bool, str]]:
    """The report's internal consistency (issue #8): every activation traces to an offer and a
    response, revenue equals the ledger, the control arm got no contact, nothing activated twice."""
    checks: dict[str, tuple[bool, str]] = {}
    offered = {r.offer_id for r in records if r.kind is RecordKind.CONTACT and r.detail.get("options")}
    responded = {r.offer_id for r in records if r.kind is RecordKind.RESPONSE}
    fulfilled = [r for r in records if r.kind is RecordKind.FULFILLED]
    untraced = [r.offer_id for r in fulfilled if r.offer_id not in offered or r.offer_id not in responded]
    checks["every activation traces to an offer and a response"] = (
        not untraced,
        f"{len(fulfilled)} activations, {len(untraced)} without an offer or a response",
    )
    ids = [r.offer_id for r in fulfilled]
    checks["no offer activated twice"] = (
        len(ids) == len(set(ids)),
        f"{len(ids)} activations, {len(set(ids))} offers",
    )
    activations = billing.activations()
    billed = {a.offer_id for a in activations if getattr(a, "activated", True)}
    checks["billing activated exactly the fulfilled offers"] = (
        billed == set(ids),
        f"billing {len(billed)}, campaign store {len(set(ids))}",
    )
    revenue = sum((row.revenue for row in rows if not row.control), Decimal(0))
    ledger = sum((e.amount for e in billing.ledger() if e.kind is LedgerKind.ACTIVATION), Decimal(0))
    checks["campaign revenue equals billing's ledger"] = (
        revenue == ledger,
        f"KPIs {revenue}, ledger activations {ledger}",
    )
    control = {r.msisdn for r in records if r.kind is RecordKind.ASSIGNED and r.detail.get("control")}
    contacted = {r.msisdn for r in records if r.kind is RecordKind.CONTACT}
    overlap = control & contacted
    checks["the control arm got no contact"] = (
        not overlap,
        f"{len(control)} control subscribers, {len(overlap)} contacted",
    )
    return checks


# --- the command ---------------------------------------------------------------------------------------


def latency_samples(records: Sequence[Record]) -> dict[tuple[str, str | None], list[float]]:
    """Trigger-to-offer seconds of each offer's first contact, per (campaign, variant)."""
    seen: set[str | None] = set()
    out: dict[tuple[str, str | None], list[float]] = {}
    for record in records:
        if record.kind is not RecordKind.CONTACT or record.offer_id in seen or record.campaign_id is None:
            continue
        latency = record.detail.get("latency")
        if isinstance(latency, int | float):
            seen.add(record.offer_id)
            out.setdefault((record.campaign_id, record.variant), []).append(float(latency))
    return out


def report_data(result: SimulationResult, currency: str, pcap: str | None = None) -> ReportData:
    checks = tuple(Check(name, passed, detail) for name, (passed, detail) in result.checks.items())
    return ReportData(
        scenario=result.scenario.name,
        seed=result.scenario.seed,
        population=result.subscribers,
        days=result.simulated_days,
        kpis=tuple(result.rows),
        latency=latency_samples(result.records),
        contacts_per_day=result.contacts_per_day,
        assumptions=tuple(
            assumptions(result.scenario, currency, payg_price_per_mb=result.billing.config.payg_price_per_mb)
        ),
        checks=checks,
        pcap=pcap,
        currency=currency,
    )


def with_overrides(scenario: Scenario, update: dict[str, int]) -> Scenario:
    """``scenario`` with the command line's ``--subscribers`` / ``--days`` (``update``, by field name).

    ``model_copy(update=...)`` validates nothing, so ``--days 0`` ran an empty simulation and
    ``--subscribers -3`` one of nobody: the values are checked against the scenario's own limits and
    rules across fields (the numbers from ``first_msisdn`` must not overflow), and a bad one is a
    ``ConfigError`` naming the option (``tgw`` exits 64). The scenario's own fields are passed as the
    validated objects they are, so only the overrides and the model's rules are checked again."""
    fields = {name: getattr(scenario, name) for name in Scenario.model_fields}
    try:
        return Scenario.model_validate({**fields, **update})
    except pydantic.ValidationError as exc:
        found: list[tuple[str, str]] = []  # (option, reason), every one, as config files report
        for error in exc.errors():
            location = tuple(error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            if location and location[0] in update:  # the option's own limit
                name = str(location[0])
                found.append((f"--{name}", f"{update[name]}: {message[:1].lower()}{message[1:]}"))
            else:  # a rule across fields: its message names the values, so the options it is about
                named = [name for name in update if name in message] or list(update)
                found.append((" and ".join(f"--{name}" for name in named), message))
        (option, reason), rest = found[0], found[1:]
        more = "".join(f"\n{other}: {other_reason}" for other, other_reason in rest)
        raise ConfigError(reason + more, option) from None


def simulate_command(
    scenario_path: Path,
    out: Path,
    *,
    real_time: bool = False,
    subscribers: int | None = None,
    days: int | None = None,
    billing: Path | None = None,
    pcap: bool = True,
    progress: Progress | None = None,
) -> tuple[SimulationResult, ReportFiles]:
    """``tgw simulate``: load the scenario (and ``billing``, the billing simulator's config: scoring
    rules, fee, injected faults), run it, write the report into ``out``."""
    root = Path.cwd()
    scenario = load_scenario(scenario_path)
    billing_config = load_billing_config(billing) if billing is not None else None
    update: dict[str, int] = {}
    if subscribers is not None:
        update["subscribers"] = subscribers
    if days is not None:
        update["days"] = days
    if update:
        scenario = with_overrides(scenario, update)
    campaigns_dir = Path(scenario.campaigns)
    if not campaigns_dir.is_absolute():
        campaigns_dir = root / campaigns_dir
    menus = campaigns_dir.parent / "ussd" / "menus.yaml"
    out.mkdir(parents=True, exist_ok=True)
    workdir = out / "run"
    if workdir.exists():
        shutil.rmtree(workdir)  # a report is of one run: the stores start empty
    workdir.mkdir()
    capture = out / "traffic.pcap" if pcap else None

    async def main(clock: SimClock) -> SimulationResult:
        return await run_simulation(
            scenario,
            workdir,
            clock,
            campaigns_dir=campaigns_dir,
            ussd_menus=menus,
            billing_config=billing_config,
            pcap=capture,
            progress=progress,
        )

    result = run_simulated(main, scenario.start_time, real_time=real_time)
    currency = load_campaign_dir(campaigns_dir, ussd_menus=None).catalogue.currency
    files = write_report(report_data(result, currency, None if capture is None else str(capture)), out)
    return result, files
