"""Hypothesis stateful test of the campaign engine: random interleavings of triggers, billing answers,
receipts, responses, profile changes and time, holding the invariants of issue #7:

- at most one activation per offer;
- caps never exceeded (promotional contacts per subscriber, channel and local day);
- nothing promotional sent in quiet hours (21:00-08:00 in the subscriber's zone);
- every offer ends (activated, declined, expired, suppressed or failed) once billing has answered and
  time has run past every deadline.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from engine_fixtures import NEW_UPSELL, OLD_UPSELL, T0, campaign_set
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from campaign_core.engine import Engine
from campaign_core.model import (
    Activate,
    Activated,
    ActivationFailed,
    Command,
    CreditFailed,
    CreditScored,
    DeliveryReported,
    Event,
    Profile,
    ProfileUpdated,
    PushStk,
    QueryCredit,
    Record,
    RecordKind,
    Responded,
    ResponseChannel,
    SendSms,
    SubmitFailed,
    Tick,
    TriggerKind,
    TriggerRaised,
)

SUBSCRIBERS = ("254700000001", "254700000002", "254700000003", "254700000999")  # the last is on DND
ZONE = ZoneInfo("Africa/Nairobi")
CAPS = {"sms": 2, "stk": 1}
CODES = ("*123*100#", "*123*200#", "*123*500#", "*123*1000#", "*123*7#")


class EngineMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.engine = Engine(campaign_set(campaigns=[NEW_UPSELL, OLD_UPSELL]))
        self.now = T0
        self.commands: list[tuple[float, Command]] = []
        self.pending_credit: list[QueryCredit] = []
        self.sent: list[PushStk | SendSms] = []
        self.pending_activation: list[Activate] = []
        self.serial = 0

    def feed(self, event: Event) -> None:
        out = self.engine.handle(event, self.now)
        for command in out:
            self.commands.append((self.now, command))
            if isinstance(command, QueryCredit):
                self.pending_credit.append(command)
            elif isinstance(command, PushStk | SendSms):
                self.sent.append(command)
            elif isinstance(command, Activate):
                self.pending_activation.append(command)

    def next_id(self) -> str:
        self.serial += 1
        return f"id{self.serial}"

    @rule(seconds=st.one_of(st.integers(1, 900), st.integers(1, 8 * 3600)))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds
        self.feed(Tick())

    @rule(
        who=st.sampled_from(SUBSCRIBERS),
        kind=st.sampled_from(["exhausted", "threshold"]),
        period=st.integers(0, 3),
        scored_at_once=st.sampled_from([None, ("0", "100"), ("100", "400"), ("400", "0")]),
    )
    def trigger(self, who: str, kind: str, period: int, scored_at_once: tuple[str, str] | None) -> None:
        level = 100 if kind == "exhausted" else 90
        self.feed(
            TriggerRaised(
                f"{who}/data-1gb/p{period}/{level}", TriggerKind(kind), who, self.now - 1, "data-1gb", level
            )
        )
        if scored_at_once is not None and self.pending_credit:  # billing answers before the timeout
            query = self.pending_credit.pop()
            balance, credit = scored_at_once
            self.feed(CreditScored(query.request_id, query.msisdn, Decimal(balance), Decimal(credit)))

    @precondition(lambda self: bool(self.pending_credit))
    @rule(
        index=st.integers(0, 10),
        balance=st.sampled_from(["0", "60", "100", "400"]),
        credit=st.sampled_from(["0", "50", "100", "250", "400"]),
        fail=st.sampled_from([False, False, False, True]),
    )
    def credit_answer(self, index: int, balance: str, credit: str, fail: bool) -> None:
        query = self.pending_credit.pop(index % len(self.pending_credit))
        if fail:
            self.feed(CreditFailed(query.request_id, query.msisdn, "HTTP 503"))
        else:
            self.feed(CreditScored(query.request_id, query.msisdn, Decimal(balance), Decimal(credit)))

    @precondition(lambda self: bool(self.sent))
    @rule(index=st.integers(0, 20), outcome=st.sampled_from(["delivered", "undeliverable", "refused"]))
    def receipt(self, index: int, outcome: str) -> None:
        command = self.sent[index % len(self.sent)]
        if outcome == "refused":
            self.feed(SubmitFailed(command.command_id, "ESME_RSYSERR"))
        else:
            self.feed(DeliveryReported(command.command_id, outcome == "delivered"))

    @precondition(lambda self: bool(self.sent))
    @rule(index=st.integers(0, 20), answer=st.sampled_from(["ok", "declined", "item"]))
    def stk_answer(self, index: int, answer: str) -> None:
        command = self.sent[index % len(self.sent)]
        if not isinstance(command, PushStk):
            return
        if answer == "ok":
            self.feed(
                Responded(self.next_id(), command.msisdn, ResponseChannel.STK_OK, offer_id=command.offer_id)
            )
        elif answer == "declined":
            self.feed(
                Responded(
                    self.next_id(), command.msisdn, ResponseChannel.STK_DECLINED, offer_id=command.offer_id
                )
            )
        else:
            self.feed(
                Responded(
                    self.next_id(),
                    command.msisdn,
                    ResponseChannel.STK_ITEM,
                    offer_id=command.offer_id,
                    option_id=command.options[-1].package_id,
                )
            )

    @rule(who=st.sampled_from(SUBSCRIBERS), code=st.sampled_from(CODES))
    def ussd_dial(self, who: str, code: str) -> None:
        self.feed(Responded(self.next_id(), who, ResponseChannel.USSD, option_id=code))

    @precondition(lambda self: bool(self.pending_activation))
    @rule(index=st.integers(0, 10), ok=st.booleans(), repeat=st.booleans())
    def billing_answer(self, index: int, ok: bool, repeat: bool) -> None:
        command = self.pending_activation.pop(index % len(self.pending_activation))
        event: Event = (
            Activated(command.offer_id, command.package_id, command.payment, command.price)
            if ok
            else ActivationFailed(command.offer_id, "refused")
        )
        self.feed(event)
        if repeat:
            self.feed(event)  # billing's retry answered twice

    @rule(
        who=st.sampled_from(SUBSCRIBERS), stk=st.booleans(), segment=st.sampled_from(["prepaid", "postpaid"])
    )
    def profile_changes(self, who: str, stk: bool, segment: str) -> None:
        self.feed(ProfileUpdated(Profile(who, segment=segment, stk_capable=stk)))

    # --- invariants ---

    @invariant()
    def at_most_one_activation_per_offer(self) -> None:
        counts = Counter(c.offer_id for _, c in self.commands if isinstance(c, Activate))
        assert all(n == 1 for n in counts.values()), counts

    @invariant()
    def caps_and_quiet_hours_hold(self) -> None:
        per_day: Counter[tuple[str, str, object]] = Counter()
        for at, command in self.commands:
            if isinstance(command, SendSms) and not command.promotional:
                continue
            if not isinstance(command, PushStk | SendSms):
                continue
            local = datetime.fromtimestamp(at, ZONE)
            assert 8 <= local.hour < 21, f"{command} sent at {local}"
            assert command.msisdn != SUBSCRIBERS[-1], "a push to a do-not-disturb subscriber"
            channel = "stk" if isinstance(command, PushStk) else "sms"
            per_day[(command.msisdn, channel, local.date())] += 1
        for (_, channel, _), count in per_day.items():
            assert count <= CAPS[channel]

    def teardown(self) -> None:
        if not hasattr(self, "engine"):
            return
        # billing answers everything outstanding, then time runs past every deadline
        for _ in range(50):
            while self.pending_credit:
                query = self.pending_credit.pop()
                self.feed(CreditFailed(query.request_id, query.msisdn, "end"))
            while self.pending_activation:
                command = self.pending_activation.pop()
                self.feed(Activated(command.offer_id, command.package_id, command.payment, command.price))
            deadline = self.engine.next_deadline()
            if deadline is None:
                break
            self.now = max(self.now, deadline)
            self.feed(Tick())
        assert self.engine.next_deadline() is None
        records = [c for _, c in self.commands if isinstance(c, Record)]
        started = {r.offer_id for r in records if r.kind is RecordKind.ELIGIBLE}
        closed = Counter(r.offer_id for r in records if r.kind is RecordKind.CLOSED)
        assert started == set(closed), started ^ set(closed)
        assert all(n == 1 for n in closed.values())
        for offer in started:
            assert offer is not None and self.engine.offer(offer) is None


EngineMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestEngineMachine = EngineMachine.TestCase
