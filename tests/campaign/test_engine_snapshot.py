"""Engine snapshots (campaign_core.engine: ``Engine.snapshot`` / ``Engine.restore``) and the hourly
policy prune.

The property: for any sequence of events, an engine restored (through JSON) from a snapshot taken at any
point gives the same outputs for the rest of the sequence as the engine it was taken of, and the same
``next_deadline``; and pruning the contact policy changes no decision. A hypothesis state machine drives
random events as tests/campaign/test_engine_stateful.py does (its rules are inherited), keeps a reference
engine that is never restored and one that never prunes, and swaps the engine under test for a restored
copy at random points.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from engine_fixtures import (
    MSISDN,
    NEW_UPSELL,
    OLD_UPSELL,
    T0,
    actions,
    campaign_set,
    engine,
    exhausted,
    records,
)
from hypothesis import HealthCheck, settings
from hypothesis.stateful import initialize, invariant, rule
from test_engine_stateful import EngineMachine

from campaign_core.config import CampaignSet
from campaign_core.engine import SNAPSHOT_VERSION, Engine, OfferState
from campaign_core.model import (
    Activate,
    Command,
    CreditScored,
    DeliveryReported,
    Event,
    Profile,
    ProfileUpdated,
    RecordKind,
    Responded,
    ResponseChannel,
    Tick,
    TriggerKind,
    TriggerRaised,
    offer_id,
)
from protocols.errors import ConfigError

OFFER = offer_id("upsell-exhaustion", f"{MSISDN}/data-1gb/p1/100")
OLD_OFFER = offer_id("upsell-threshold-old", f"{MSISDN}/data-1gb/p1/90")


def through_json(snapshot: dict[str, Any]) -> Any:
    return json.loads(json.dumps(snapshot, allow_nan=False))


def restored(of: Engine, campaigns: CampaignSet | None = None) -> Engine:
    fresh = Engine(campaigns or of.campaigns)
    assert fresh.restore(through_json(of.snapshot())) == []
    return fresh


def threshold(msisdn: str = MSISDN, at: float = T0) -> TriggerRaised:
    return TriggerRaised(f"{msisdn}/data-1gb/p1/90", TriggerKind.THRESHOLD, msisdn, at, "data-1gb", 90)


def scored(e: Engine, now: float, credit: str = "400", msisdn: str = MSISDN) -> list[Command]:
    return e.handle(CreditScored(f"{OFFER}:score", msisdn, Decimal(0), Decimal(credit)), now)


def awaiting_push(e: Engine) -> None:
    """The reference journey up to the DSTK dialog delivered: the 10-minute wait is running."""
    e.handle(
        ProfileUpdated(Profile(MSISDN, segment="prepaid", tenure_days=90, timezone="Africa/Nairobi")), T0
    )
    e.handle(exhausted(), T0)
    scored(e, T0 + 1)
    e.handle(DeliveryReported(f"{OFFER}:0", True), T0 + 5)


# --- round trip -------------------------------------------------------------------------------------


def test_a_restored_engine_carries_on_with_its_timers() -> None:
    e = engine()
    awaiting_push(e)
    snapshot = e.snapshot()
    assert snapshot["version"] == SNAPSHOT_VERSION
    copy_ = restored(e)
    assert copy_.snapshot() == through_json(snapshot)  # a restored engine snapshots identically
    assert copy_.next_deadline() == e.next_deadline() == T0 + 5 + 600
    assert copy_.offer(OFFER) == e.offer(OFFER)
    assert len(copy_) == len(e) == 1
    script: list[tuple[Event, float]] = [
        (Tick(), T0 + 605),
        (DeliveryReported(f"{OFFER}:1", True), T0 + 610),
        (Responded("r1", MSISDN, ResponseChannel.USSD, option_id="*123*200#"), T0 + 700),
    ]
    for event, now in script:
        out = e.handle(event, now)
        assert copy_.handle(event, now) == out
    assert [c.package_id for c in actions(out) if isinstance(c, Activate)] == ["data-200mb"]
    assert copy_.snapshot() == e.snapshot()


def test_a_restored_engine_answers_late_and_repeated_responses_alike() -> None:
    e = engine()
    awaiting_push(e)
    e.handle(Responded("r1", MSISDN, ResponseChannel.STK_DECLINED, offer_id=OFFER), T0 + 10)
    copy_ = restored(e)
    for event in (
        Responded("r1", MSISDN, ResponseChannel.STK_DECLINED, offer_id=OFFER),  # re-delivered: dropped
        Responded("r2", MSISDN, ResponseChannel.USSD, option_id="*123*100#"),  # to the closed offer
        exhausted(),  # the trigger again: remembered
    ):
        assert copy_.handle(event, T0 + 20) == e.handle(event, T0 + 20)


def test_the_snapshot_is_plain_json_data() -> None:
    e = engine(campaigns=[NEW_UPSELL, OLD_UPSELL])
    awaiting_push(e)
    e.handle(threshold(msisdn="254700000002"), T0 + 30)
    text = json.dumps(e.snapshot(), allow_nan=False)  # no Decimal, tuple, enum or infinity inside
    data = json.loads(text)
    assert {row[0] for row in data["subscribers"]} == {MSISDN, "254700000002"}
    (row,) = [row for row in data["offers"] if row[0] == OFFER]
    assert row[1] == "upsell-exhaustion" and row[3]["type"] == "TriggerRaised" and row[4] == "AWAITING"
    assert row[7][0] == ["data-100mb", 100, "50", "credit", "*123*100#"]  # smallest first
    (subscriber,) = [row for row in data["subscribers"] if row[0] == MSISDN]
    assert subscriber[1] == ["prepaid", 90, "Africa/Nairobi", True, [], {}]  # the profile


# --- bad snapshots ----------------------------------------------------------------------------------


def _set(path: tuple[Any, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _offer(data: dict[str, Any]) -> list[Any]:
    rows: list[list[Any]] = [row for row in data["offers"] if row[0] == OFFER]
    (row,) = rows
    return row


BAD: dict[str, Callable[[dict[str, Any]], None]] = {
    "version": _set(("version",), SNAPSHOT_VERSION + 1),
    "pruned_at": _set(("pruned_at",), "yesterday"),
    "policy missing": lambda d: d.pop("policy"),
    "policy version": _set(("policy", "policy_version"), 0),
    "subscribers": _set(("subscribers",), {}),
    "subscriber row": _set(("subscribers", 0), [MSISDN]),
    "profile": _set(("subscribers", 0, 1), {"msisdn": MSISDN}),
    "profile tenure": _set(("subscribers", 0, 1, 1), "long"),
    "profile package": _set(("subscribers", 0, 1, 4), [["data-1gb", "2026-05-01"]]),
    "profile attributes": _set(("subscribers", 0, 1, 5), {"plan": 7}),
    "trigger ids": _set(("subscribers", 0, 2), [1, 2]),
    "closed entry": _set(("subscribers", 0, 5), [["x", "expired"]]),
    "starts": _set(("subscribers", 0, 6), [["upsell-exhaustion", None]]),
    "repeated subscriber": lambda d: d["subscribers"].append(copy.deepcopy(d["subscribers"][0])),
    "offers": _set(("offers",), None),
    "offer row": lambda d: _offer(d).pop(),
    "trigger": lambda d: _offer(d)[3].update(event_time="soon"),
    "trigger type": lambda d: _offer(d).__setitem__(3, {"type": "Tick"}),
    "state": lambda d: _offer(d).__setitem__(4, "LOST"),
    "step": lambda d: _offer(d).__setitem__(5, -1),
    "option": lambda d: _offer(d)[7][0].__setitem__(2, 50),
    "payment": lambda d: _offer(d)[7][0].__setitem__(3, "barter"),
    "chosen": lambda d: _offer(d).__setitem__(8, 9),
    "pushed": lambda d: _offer(d).__setitem__(9, [9]),
    "deadline": lambda d: _offer(d).__setitem__(10, math.nan),
    "deadline without queue": lambda d: _offer(d).__setitem__(11, None),
    "awaiting without expiry": lambda d: _offer(d).__setitem__(12, None),
    "offer nobody lists": _set(("subscribers", 0, 4), []),
    "listed offer missing": lambda d: d["offers"].clear(),
    "repeated offer": lambda d: d["offers"].append(copy.deepcopy(_offer(d))),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_snapshot_raises_and_changes_nothing(name: str) -> None:
    e = engine()
    awaiting_push(e)
    good = through_json(e.snapshot())
    target = engine()
    e.handle(exhausted(msisdn="254700000002"), T0)
    target.restore(through_json(e.snapshot()))  # something to keep
    before = target.snapshot()
    bad = copy.deepcopy(good)
    BAD[name](bad)
    with pytest.raises(ConfigError, match="snapshot"):
        target.restore(bad)
    assert target.snapshot() == before
    assert target.next_deadline() == e.next_deadline()


def test_not_a_snapshot() -> None:
    with pytest.raises(ConfigError, match="not a version 1 snapshot"):
        engine().restore([])  # type: ignore[arg-type]


# --- a changed campaign directory -------------------------------------------------------------------


def test_offers_of_a_campaign_that_is_gone_are_left_out() -> None:
    e = engine(campaigns=[NEW_UPSELL, OLD_UPSELL])
    awaiting_push(e)
    assert records(e.handle(threshold(), T0 + 30), RecordKind.ELIGIBLE)
    assert {v.offer_id for v in e.open_offers(MSISDN)} == {OFFER, OLD_OFFER}
    fresh = Engine(campaign_set(campaigns=[NEW_UPSELL]))
    assert fresh.restore(through_json(e.snapshot())) == [OLD_OFFER]
    assert [v.offer_id for v in fresh.open_offers(MSISDN)] == [OFFER]
    assert fresh.offer(OLD_OFFER) is None
    # its timers went with it: the next one is the new upsell's, and every later Tick is about it alone
    assert fresh.next_deadline() == T0 + 605
    out = fresh.handle(Tick(), T0 + 2 * 86400)
    assert {r.offer_id for r in records(out, RecordKind.CLOSED)} == {OFFER}
    assert fresh.next_deadline() is None


def test_an_offer_whose_step_is_gone_is_left_out() -> None:
    e = engine()
    awaiting_push(e)
    e.handle(Tick(), T0 + 605)  # no answer to the dialog: the SMS (step 1) goes out
    assert e.offer(OFFER) is not None and e.offer(OFFER).step == 1  # type: ignore[union-attr]
    assert e.offer(OFFER).state is OfferState.AWAITING  # type: ignore[union-attr]
    shorter = {**NEW_UPSELL, "journey": NEW_UPSELL["journey"][:1]}
    fresh = Engine(campaign_set(campaigns=[shorter]))
    assert fresh.restore(through_json(e.snapshot())) == [OFFER]
    assert fresh.open_offers(MSISDN) == [] and fresh.next_deadline() is None
    # the subscriber's other state stays: the trigger is still known
    assert fresh.handle(exhausted(), T0 + 700) == []


def test_an_offer_under_a_changed_campaign_goes_on_with_it() -> None:
    e = engine()
    awaiting_push(e)
    slower = {**NEW_UPSELL, "scoring": {"timeout": "9s"}}
    fresh = Engine(campaign_set(campaigns=[slower]))
    assert fresh.restore(through_json(e.snapshot())) == []
    assert fresh.offer(OFFER) == e.offer(OFFER)


# --- the policy prune -------------------------------------------------------------------------------


def test_the_policy_is_pruned_on_a_tick_once_an_hour() -> None:
    e = engine()
    awaiting_push(e)  # one DSTK push counted on T0's day
    assert len(e.policy) == 1
    e.handle(Tick(), T0 + 10)
    assert e.snapshot()["pruned_at"] == T0 + 10 and len(e.policy) == 1  # that day is not over
    later = T0 + 3 * 86400
    e.handle(Tick(), later)
    assert e.snapshot()["pruned_at"] == later and len(e.policy) == 0
    # something stale to prune again: a push counted on T0's day (events handled with an earlier now)
    e.handle(exhausted(trigger_id="again"), T0 + 20)
    again = offer_id("upsell-exhaustion", "again")
    e.handle(CreditScored(f"{again}:score", MSISDN, Decimal(0), Decimal(400)), T0 + 21)
    assert len(e.policy) == 1
    e.handle(Tick(), later + 3599)
    assert len(e.policy) == 1  # not an hour since the last prune
    e.handle(Tick(), later + 3600)
    assert len(e.policy) == 0 and e.snapshot()["pruned_at"] == later + 3600


# --- the property, driven by hypothesis --------------------------------------------------------------


class SnapshotMachine(EngineMachine):
    """EngineMachine's rules and invariants on an engine that is snapshotted and restored at random."""

    def campaigns(self) -> CampaignSet:
        return campaign_set(campaigns=[NEW_UPSELL, OLD_UPSELL])

    @initialize()
    def start(self) -> None:
        super().start()
        self.engine = Engine(self.campaigns())
        self.reference = Engine(self.campaigns())  # never restored
        self.unpruned = Engine(self.campaigns())
        self.unpruned._pruned_at = math.inf  # never prunes its policy
        self.restores = 0
        self.tearing_down = False

    def feed(self, event: Event) -> None:
        if self.tearing_down and isinstance(event, Tick):
            # EngineMachine.teardown asked self.engine for its next deadline before this Tick: ask the
            # others too. (Which of several due offers a Tick handles first depends on those calls.)
            self.reference.next_deadline()
            self.unpruned.next_deadline()
        before = len(self.commands)
        super().feed(event)
        out = [command for _, command in self.commands[before:]]
        assert self.reference.handle(event, self.now) == out
        assert self.unpruned.handle(event, self.now) == out

    @rule()
    def restart_from_snapshot(self) -> None:
        snapshot = through_json(self.engine.snapshot())
        fresh = Engine(self.campaigns())
        assert fresh.restore(snapshot) == []
        assert fresh.snapshot() == snapshot
        self.engine = fresh
        self.restores += 1

    @rule()
    def peek_deadline(self) -> None:
        # the runner asks after every event; it moves stale heap entries, which the snapshot must keep
        due = self.engine.next_deadline()
        assert self.reference.next_deadline() == due
        assert self.unpruned.next_deadline() == due

    def teardown(self) -> None:
        self.tearing_down = True
        super().teardown()

    @invariant()
    def same_state_as_the_reference(self) -> None:
        if hasattr(self, "reference"):
            assert self.engine.snapshot() == self.reference.snapshot()


EXPERIMENT = {
    "kind": "experiment",
    "id": "upsell-ab",
    "salt": "upsell-ab-2026",
    "arms": [
        {"name": "new_2h", "share": 50, "campaign": "upsell-exhaustion", "delay": "2h"},
        {"name": "control", "share": 50, "control": True},
    ],
}


class ExperimentSnapshotMachine(SnapshotMachine):
    """The same with an experiment: delayed arms and control windows in the snapshot."""

    def campaigns(self) -> CampaignSet:
        return campaign_set(campaigns=[NEW_UPSELL, OLD_UPSELL], experiments=[EXPERIMENT])


SnapshotMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
ExperimentSnapshotMachine.TestCase.settings = settings(
    max_examples=50, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestSnapshotMachine = SnapshotMachine.TestCase
TestExperimentSnapshotMachine = ExperimentSnapshotMachine.TestCase
