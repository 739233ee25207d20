"""The C trigger path (``campaign_core._journey.TriggerPath``) against ``Engine._trigger`` (differential).

``Engine(..., accelerated=True)`` hands ``TriggerRaised`` to the C accelerator when it is built; the
engine with ``accelerated=False`` keeps the Python method. The two must be indistinguishable: records
are the decision trail (the gateway stores them, ``tgw replay`` and ``tgw explain`` read them back),
snapshots are restored on another node, and a replay must give the very same commands whichever path
ran. So, for the same ``CampaignSet`` and the same events, this module compares

- every command list ``handle`` returns: equal (``==``), the same ``repr`` (which shows the order of
  each record's ``detail`` keys and an int from a float) and the same types all the way down;
- the state afterwards: ``snapshot()`` (equal, and equal as JSON text), ``next_deadline()``, and the
  engine's internals (subscribers, offers, the deadline queue) with the types of their values;
- the exceptions an event with fields of the wrong types raises, what was appended to ``out`` before
  it, and the state it leaves;

over hand-written campaign sets that take every branch of ``Engine._trigger``, the shipped directory
``configs/campaigns``, and random event streams (hypothesis). The C path also must not leak: the
reference counts of what it handles come back, and 20 000 triggers leave no memory behind.

The module is skipped only when the accelerator is not there (not built, or ``TGW_PURE_PYTHON`` set):
in CI it is built, and ``test_the_accelerated_path_is_installed`` makes sure the comparison is not
Python against Python.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import sys
import tracemalloc
import weakref
from collections.abc import Callable, Sequence
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from engine_fixtures import NEW_UPSELL, OLD_UPSELL, T0, campaign_set
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_core import engine as engine_module
from campaign_core.config import CampaignSet
from campaign_core.engine import Engine, OfferState
from campaign_core.experiments import Assigner, assign
from campaign_core.model import (
    Activate,
    Activated,
    ActivePackage,
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
    Tick,
    TriggerKind,
    TriggerRaised,
    offer_id,
)
from gateway.campaigns.loader import load_campaign_dir

if engine_module._journey is None:
    pytest.skip(
        "campaign_core._journey is not built (pip install -e .) or TGW_PURE_PYTHON is set: "
        "there is no C trigger path to compare",
        allow_module_level=True,
    )

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "campaigns"
NOW = int(T0)  # 2026-06-01 12:00 in Nairobi; an int, fed as int or float
assert NOW == T0

# --- comparing ----------------------------------------------------------------------------------


def _shape(value: object) -> object:
    """``value`` with the type of every part spelled out (dict keys in order, int vs float vs bool)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple(_shape(getattr(value, f.name)) for f in dataclasses.fields(value)),
        )
    if isinstance(value, dict):
        return ("dict", tuple((_shape(k), _shape(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(_shape(item) for item in value))
    if isinstance(value, Enum):
        return (type(value).__name__, value.name)
    return (type(value).__name__, repr(value))


def assert_same_commands(fast: Sequence[Command], plain: Sequence[Command], where: object = "") -> None:
    assert list(fast) == list(plain), where
    assert repr(list(fast)) == repr(list(plain)), where
    assert _shape(list(fast)) == _shape(list(plain)), where


def _internals(engine: Engine) -> object:
    """What the engine holds, with types: subscribers in order, offers in order, the deadline queue."""
    subscribers = engine._subscribers
    return _shape(
        (
            [
                (
                    msisdn,
                    s.profile,
                    s.triggers,
                    s.responses,
                    s.offers,
                    s.closed,
                    s.last_start,
                )
                for msisdn, s in subscribers.items()
            ],
            [
                (
                    key,
                    o.offer_id,
                    o.campaign.id,
                    o.variant,
                    o.trigger,
                    o.msisdn,
                    o.subscriber is subscribers.get(o.msisdn),
                    o.state,
                    o.step,
                    o.step_ready,
                    o.offered.options,
                    o.chosen,
                    o.pushed.options,
                    o.deadline,
                    o.queued,
                    o.expires_at,
                    o.delivered,
                )
                for key, o in engine._offers.items()
            ],
            sorted(engine._deadlines.times),
            sorted(engine._deadlines._ids.items(), key=lambda item: item[0]),
            engine._pruned_at,
        )
    )


def assert_same_state(fast: Engine, plain: Engine) -> None:
    assert fast.next_deadline() == plain.next_deadline()
    assert repr(fast.next_deadline()) == repr(plain.next_deadline())
    snap_fast, snap_plain = fast.snapshot(), plain.snapshot()
    assert snap_fast == snap_plain
    assert json.dumps(snap_fast) == json.dumps(snap_plain)
    assert _internals(fast) == _internals(plain)
    assert len(fast) == len(plain)


class Pair:
    """An accelerated engine and a plain one of the same campaign set, fed the same events."""

    def __init__(self, campaigns: CampaignSet, paused: Sequence[str] = ()) -> None:
        self.fast = Engine(campaigns, paused=paused)
        self.plain = Engine(campaigns, paused=paused, accelerated=False)
        assert type(self.fast._handlers[TriggerRaised]).__name__ == "TriggerPath"
        assert self.plain._handlers[TriggerRaised] == self.plain._trigger

    def feed(self, event: Event, now: float) -> list[Command]:
        fast = self.fast.handle(event, now)
        plain = self.plain.handle(event, now)
        assert_same_commands(fast, plain, (event, now))
        return fast

    def check(self) -> None:
        assert_same_state(self.fast, self.plain)


def trail(out: Sequence[Command]) -> list[tuple[str, ...]]:
    """The records' kinds, campaigns and variants, and the commands' types (for branch assertions)."""
    return [
        (c.kind.name, str(c.campaign_id), str(c.variant)) if isinstance(c, Record) else (type(c).__name__,)
        for c in out
    ]


def kinds(out: Sequence[Command]) -> list[str]:
    return [c.kind.name if isinstance(c, Record) else type(c).__name__ for c in out]


def suppressed(out: Sequence[Command]) -> dict[str, object]:
    return {
        str(c.campaign_id): c.detail["reason"]
        for c in out
        if isinstance(c, Record) and c.kind is RecordKind.SUPPRESSED
    }


def trigger(
    trigger_id: str,
    kind: TriggerKind = TriggerKind.EXHAUSTED,
    msisdn: str = "254700000001",
    *,
    level: int | None = 100,
    package_id: str | None = "data-1gb",
    days_left: str | None = None,
    event_time: float = T0 - 1,
) -> TriggerRaised:
    attributes = {} if days_left is None else {"days_left": days_left}
    return TriggerRaised(trigger_id, kind, msisdn, event_time, package_id, level, attributes)


# --- campaign sets ------------------------------------------------------------------------------


def _campaign(campaign_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    """An informational one-step SMS campaign unless ``fields`` say otherwise."""
    base: dict[str, Any] = {
        "kind": "campaign",
        "id": campaign_id,
        "trigger": {"kind": kind},
        "journey": [{"channel": "sms", "options": "none", "text": f"{campaign_id}: hello"}],
    }
    return {**base, **fields}


def _offering(campaign_id: str, kind: str, packages: Sequence[str], **fields: Any) -> dict[str, Any]:
    return _campaign(
        campaign_id,
        kind,
        offer={"packages": list(packages), "expires_after": "2h"},
        journey=[
            {
                "channel": "sms",
                "options": "all",
                "text": "Dial:\n{options}",
                "max_parts": 3,
                "wait": "1h",
                "hard_cap": "1h",
            }
        ],
        **fields,
    )


INFO = _campaign(
    "exhausted-info", "exhausted", priority=10, cooldown="1h", eligibility={"segments": ["prepaid", ""]}
)
CHEAP = _offering(
    "exhausted-cheap",
    "exhausted",
    ["data-100mb"],
    priority=10,
    scoring={"enabled": False, "fallback": {"balance": "100"}},
)
CHEAP_B = {**CHEAP, "id": "exhausted-cheap-b"}  # ties with CHEAP on priority and value: the id decides
NO_FALLBACK = _offering(
    "cancelled-nofallback",
    "recurring_cancelled",
    ["data-200mb"],
    priority=3,
    scoring={"enabled": False},
    eligibility={"min_tenure_days": 30},
)
FALLBACK = _offering(
    "cancelled-fallback",
    "recurring_cancelled",
    ["data-200mb", "data-500mb"],
    priority=1,
    cooldown="2h",
    scoring={"enabled": False, "fallback": {"balance": "60", "credit_limit": "100"}},
    eligibility={"stk_capable": True},
)
TRIAL = _offering(
    "trial",
    "trial_ending",
    ["data-500mb"],
    trigger={"kind": "trial_ending", "days_before": [3, 1]},
    scoring={"enabled": False, "fallback": {"balance": "300"}},
)
ROAMING = _campaign("roaming", "roaming_registered", cooldown="1d")
EXPERIMENT: dict[str, Any] = {
    "kind": "experiment",
    "id": "ab",
    "salt": "ab-accel",
    "arms": [
        {"name": "new", "share": 30, "campaign": "upsell-exhaustion"},
        {"name": "late", "share": 30, "campaign": "upsell-exhaustion", "delay": "1h"},
        {"name": "info", "share": 20, "campaign": "exhausted-info"},
        {"name": "control", "share": 20, "control": True},
    ],
}
RICH = campaign_set(
    campaigns=[NEW_UPSELL, OLD_UPSELL, INFO, CHEAP, CHEAP_B, NO_FALLBACK, FALLBACK, TRIAL, ROAMING],
    experiments=[EXPERIMENT],
)
SHIPPED_SET = load_campaign_dir(SHIPPED, ussd_menus=None)


def _by_arm(experiment: dict[str, Any] | Any, count: int = 2) -> dict[str, list[str]]:
    """MSISDNs in each arm of ``experiment`` (``count`` each), found by the engine's own assignment."""
    from campaign_core.config import ExperimentConfig

    config = (
        experiment
        if isinstance(experiment, ExperimentConfig)
        else ExperimentConfig.model_validate(experiment)
    )
    assigner = Assigner(config)
    found: dict[str, list[str]] = {arm.name: [] for arm in config.arms}
    for n in range(1, 10_000):
        msisdn = f"2547{n:08d}"
        arm = assigner(msisdn).name
        if len(found[arm]) < count:
            found[arm].append(msisdn)
        if all(len(v) >= count for v in found.values()):
            return found
    raise AssertionError(f"no MSISDN in some arm: {found}")


ARMS = _by_arm(EXPERIMENT)
SHIPPED_ARMS = _by_arm(SHIPPED_SET.experiments[0])


# --- the installed path -------------------------------------------------------------------------


def test_the_accelerated_path_is_installed() -> None:
    assert type(Engine(RICH)._handlers[TriggerRaised]).__name__ == "TriggerPath"
    assert type(Engine(RICH, accelerated=True)._handlers[TriggerRaised]).__name__ == "TriggerPath"
    assert isinstance(Engine(RICH)._handlers[TriggerRaised], engine_module._journey.TriggerPath)
    plain = Engine(RICH, accelerated=False)
    assert type(plain._handlers[TriggerRaised]).__name__ == "method"
    assert plain._handlers[TriggerRaised].__func__ is Engine._trigger  # type: ignore[attr-defined]


# --- every branch of Engine._trigger --------------------------------------------------------------


@pytest.mark.parametrize("as_float", [False, True], ids=["now-int", "now-float"])
def test_no_campaign_for_the_trigger_kind(as_float: bool) -> None:
    pair = Pair(campaign_set(campaigns=[NEW_UPSELL]))
    now = float(NOW) if as_float else NOW
    assert pair.feed(trigger("r1", TriggerKind.ROAMING_REGISTERED), now) == []
    assert pair.feed(trigger("p1", TriggerKind.PACKAGE_ENDING, days_left="2"), now) == []
    assert len(pair.fast) == 0  # nothing decided, no subscriber created
    pair.check()


@pytest.mark.parametrize("as_float", [False, True], ids=["now-int", "now-float"])
def test_selective_campaigns_level_and_days_before(as_float: bool) -> None:
    # a kind whose campaigns look at the level or days left goes to the Python method whole, also when
    # one of them does not look (trial-any)
    threshold_50 = {
        **OLD_UPSELL,
        "id": "threshold-50",
        "priority": 20,
        "trigger": {"kind": "threshold", "level": 50},
    }
    trial_any = _campaign("trial-any", "trial_ending")
    pair = Pair(campaign_set(campaigns=[NEW_UPSELL, OLD_UPSELL, threshold_50, TRIAL, trial_any]))
    now = float(NOW) if as_float else NOW
    out = pair.feed(trigger("l80", TriggerKind.THRESHOLD, level=80), now)
    assert trail(out)[:2] == [("TRIGGER", "None", "None"), ("ELIGIBLE", "threshold-50", "None")]
    out = pair.feed(trigger("l95", TriggerKind.THRESHOLD, "254700000002", level=95), now)
    assert suppressed(out) == {"upsell-threshold-old": "arbitration: threshold-50 goes first"}
    for msisdn, level in [("254700000003", None), ("254700000004", 40)]:
        assert pair.feed(trigger(f"l{level}", TriggerKind.THRESHOLD, msisdn, level=level), now) == []
        assert msisdn not in pair.fast._subscribers  # no campaign matched: nothing decided
    for msisdn, days in [
        ("254700000010", "3"),
        ("254700000011", "2"),
        ("254700000012", "x"),
        ("254700000013", None),
    ]:
        out = pair.feed(trigger(f"d{days}", TriggerKind.TRIAL_ENDING, msisdn, days_left=days), now)
        winner = "trial" if days == "3" else "trial-any"
        assert ("ELIGIBLE", winner, "None") in trail(out)
        assert suppressed(out) == ({"trial-any": "arbitration: trial goes first"} if days == "3" else {})
    pair.check()
    only_trial = Pair(campaign_set(campaigns=[TRIAL]))
    assert only_trial.feed(trigger("d2", TriggerKind.TRIAL_ENDING, days_left="2"), now) == []
    assert kinds(only_trial.feed(trigger("d1", TriggerKind.TRIAL_ENDING, days_left="1"), now))[:2] == [
        "TRIGGER",
        "ELIGIBLE",
    ]
    only_trial.check()


def test_re_delivered_trigger_ids_and_the_remembered_window() -> None:
    pair = Pair(campaign_set(campaigns=[INFO]))  # informational, cooldown 1 h: no open offer stays
    msisdn = "254700000001"
    first = pair.feed(trigger("t0", msisdn=msisdn), NOW)
    assert "SendSms" in kinds(first)
    assert pair.feed(trigger("t0", msisdn=msisdn), NOW + 1) == []  # a re-delivery
    for n in range(1, 9):  # 8 more distinct triggers push t0 out of the 8 remembered
        out = pair.feed(trigger(f"t{n}", msisdn=msisdn), NOW + n)
        assert str(suppressed(out)["exhausted-info"]).startswith("cooldown")
        pair.check()
    assert pair.feed(trigger("t8", msisdn=msisdn), NOW + 10) == []
    out = pair.feed(trigger("t0", msisdn=msisdn), NOW + 4000)  # forgotten: decided again, out of cooldown
    assert kinds(out)[:2] == ["TRIGGER", "ELIGIBLE"]
    assert len(pair.fast._subscribers[msisdn].triggers) == 8
    pair.check()


def test_the_same_trigger_id_for_two_subscribers_makes_one_offer() -> None:
    # the offer id hashes campaign and trigger id only: the second subscriber's offer would collide
    pair = Pair(campaign_set(campaigns=[NEW_UPSELL]))
    first = pair.feed(trigger("shared", msisdn="254700000001"), NOW)
    assert kinds(first) == ["TRIGGER", "ELIGIBLE", "QueryCredit"]
    second = pair.feed(trigger("shared", msisdn="254700000002"), NOW + 1)
    assert kinds(second) == ["TRIGGER"]  # the defensive return
    pair.check()


@pytest.mark.parametrize("as_float", [False, True], ids=["now-int", "now-float"])
def test_profiles_and_time_zones(as_float: bool) -> None:
    # ends_in_days 0: a package ending tomorrow (local) is eligible. At 22:30 UTC it is already the next
    # day in Nairobi (UTC+3), still today in London (UTC+1 in June): the zone decides.
    rules = {"ends_in_days": 0}
    pair = Pair(campaign_set(campaigns=[_campaign("ending", "exhausted", eligibility=rules)]))
    late = NOW + 13 * 3600 + 1800  # 2026-06-01 22:30 UTC
    now = float(late) if as_float else late
    package = (ActivePackage("data-1gb", "2026-05-01", "2026-06-02"),)
    zones: dict[str, str | None] = {
        "254700000001": "Europe/London",
        "254700000002": "Mars/Base",  # unknown: the policy's default (Nairobi)
        "254700000003": "",
        "254700000004": None,
        "254700000005": "Africa/Nairobi",
        "254700000006": "not a zone/../..",
    }
    for msisdn, zone in zones.items():
        pair.feed(ProfileUpdated(Profile(msisdn, timezone=zone, packages=package)), now)
    expected_eligible = {"254700000001"}
    for msisdn in [*zones, "254700000099"]:  # and one without a profile
        out = pair.feed(trigger(f"z-{msisdn}", msisdn=msisdn), now)
        assert ("ELIGIBLE" in kinds(out)) == (msisdn in expected_eligible), (msisdn, out)
    pair.check()


def test_experiment_control_arm_recorded_once_per_window() -> None:
    pair = Pair(RICH)
    control = ARMS["control"][0]
    out = pair.feed(trigger("c1", msisdn=control), NOW)
    # two campaigns of the experiment on this kind: the control is recorded once for the trigger
    assigned = [c for c in out if isinstance(c, Record) and c.kind is RecordKind.ASSIGNED]
    assert len(assigned) == 1 and assigned[0].detail["control"] is True and assigned[0].variant == "control"
    started = {c.campaign_id for c in out if isinstance(c, Record) and c.kind is RecordKind.ELIGIBLE}
    assert started == {"exhausted-cheap"}  # not a campaign of the experiment
    out = pair.feed(trigger("c2", msisdn=control), NOW + 3600)  # within the window: not a new trial
    assert "ASSIGNED" not in kinds(out)
    window = pair.fast._control_windows["ab"]
    out = pair.feed(trigger("c3", msisdn=control), NOW + window + 1)
    assert "ASSIGNED" in kinds(out)
    pair.check()
    # a control subscriber the eligibility rules exclude is not counted
    other = ARMS["control"][1]
    info_only = campaign_set(
        campaigns=[
            {**NEW_UPSELL, "eligibility": {"segments": ["vip"]}},
            {**INFO, "eligibility": {"segments": ["vip"]}},
        ],
        experiments=[EXPERIMENT],
    )
    excluded = Pair(info_only)
    out = excluded.feed(trigger("c1", msisdn=other), NOW)
    assert kinds(out) == ["TRIGGER"]
    excluded.check()


def test_experiment_arms_delay_and_arms_of_other_campaigns() -> None:
    pair = Pair(RICH)
    late = ARMS["late"][0]
    out = pair.feed(trigger("a1", msisdn=late, level=100), float(NOW))
    assert ("ASSIGNED", "upsell-exhaustion", "late") in trail(out)
    assert ("DEFERRED", "upsell-exhaustion", "late") in trail(out)
    (view,) = pair.fast.open_offers(late)
    assert view.state is OfferState.DELAYED and view.deadline == NOW + 3600
    deferred = next(c for c in out if isinstance(c, Record) and c.kind is RecordKind.DEFERRED)
    assert deferred.detail == {"until": NOW + 3600.0, "reason": "experiment delay"}
    pair.check()
    # the "info" arm runs exhausted-info; upsell-exhaustion is another arm's campaign: skipped silently
    info = ARMS["info"][0]
    pair.feed(ProfileUpdated(Profile(info, segment="prepaid")), NOW)
    out = pair.feed(trigger("a2", msisdn=info), NOW)
    campaigns = {c.campaign_id for c in out if isinstance(c, Record) and c.campaign_id is not None}
    assert "upsell-exhaustion" not in campaigns and "exhausted-info" in campaigns
    # the "new" arm: no delay, scored at once
    new = ARMS["new"][0]
    out = pair.feed(trigger("a3", msisdn=new), NOW)
    assert ("ASSIGNED", "upsell-exhaustion", "new") in trail(out) and "QueryCredit" in kinds(out)
    eligible = next(c for c in out if isinstance(c, Record) and c.kind is RecordKind.ELIGIBLE)
    assert repr(eligible.detail["delay"]) == "0.0"
    pair.feed(Tick(), NOW + 3600)  # the delayed arm's offer is scored now
    pair.check()


def test_eligibility_rules_failing_are_suppressed_at_the_trigger_stage() -> None:
    pair = Pair(RICH)
    msisdn = ARMS["info"][0]
    pair.feed(ProfileUpdated(Profile(msisdn, segment="postpaid", tenure_days=5, stk_capable=False)), NOW)
    out = pair.feed(trigger("e1", TriggerKind.RECURRING_CANCELLED, msisdn), NOW)
    assert suppressed(out) == {
        "cancelled-nofallback": "tenure 5 days < 30",
        "cancelled-fallback": "stk_capable is False",
    }
    assert all(
        c.detail.get("stage") == "trigger"
        for c in out
        if isinstance(c, Record) and c.kind.name == "SUPPRESSED"
    )
    out = pair.feed(trigger("e2", msisdn=msisdn), NOW)
    assert suppressed(out)["exhausted-info"] == "segment 'postpaid' not in ['prepaid', '']"
    pair.check()


def test_busy_subscriber_open_offer_and_cooldown() -> None:
    pair = Pair(campaign_set(campaigns=[NEW_UPSELL, ROAMING, FALLBACK]))
    msisdn = "254700000001"
    assert "QueryCredit" in kinds(pair.feed(trigger("b1", msisdn=msisdn), NOW))
    out = pair.feed(trigger("b2", msisdn=msisdn), NOW + 10)
    assert suppressed(out) == {
        "upsell-exhaustion": f"offer {pair.fast.open_offers(msisdn)[0].offer_id} of this campaign is still open"
    }
    # an open offer of another campaign does not hold this one back
    out = pair.feed(trigger("b3", TriggerKind.ROAMING_REGISTERED, msisdn), NOW + 20)
    assert "SendSms" in kinds(out)
    out = pair.feed(trigger("b4", TriggerKind.ROAMING_REGISTERED, msisdn), NOW + 30.5)
    assert suppressed(out) == {"roaming": "cooldown: last offer 10 s ago"}
    out = pair.feed(trigger("b5", TriggerKind.RECURRING_CANCELLED, msisdn), NOW + 40)
    assert "ELIGIBLE" in kinds(out)
    out = pair.feed(trigger("b6", TriggerKind.RECURRING_CANCELLED, msisdn), NOW + 50)
    assert "still open" in str(suppressed(out)["cancelled-fallback"])
    pair.check()


def test_arbitration_priority_value_and_id_with_many_campaigns() -> None:
    dear = {**NEW_UPSELL, "id": "z-dear", "priority": 10}
    low = {**NEW_UPSELL, "id": "a-low", "priority": 1}
    others = [_offering(f"x{n}", "exhausted", ["data-100mb"], priority=10) for n in range(3)]
    # seven campaigns for one kind (more than the C path's four on the stack)
    pair = Pair(campaign_set(campaigns=[CHEAP_B, CHEAP, low, dear, *others]))
    out = pair.feed(trigger("w1"), NOW)
    (eligible,) = [c for c in out if isinstance(c, Record) and c.kind is RecordKind.ELIGIBLE]
    assert eligible.campaign_id == "z-dear"  # priority 10 and the dearest package
    assert set(suppressed(out)) == {"exhausted-cheap", "exhausted-cheap-b", "a-low", "x0", "x1", "x2"}
    assert set(suppressed(out).values()) == {"arbitration: z-dear goes first"}
    # the tie on priority and value: the id decides
    ties = Pair(campaign_set(campaigns=[CHEAP_B, CHEAP]))
    out = ties.feed(trigger("w2"), NOW)
    assert suppressed(out) == {"exhausted-cheap-b": "arbitration: exhausted-cheap goes first"}
    pair.check()
    ties.check()


def test_paused_campaigns() -> None:
    pair = Pair(campaign_set(campaigns=[NEW_UPSELL, CHEAP, INFO]), paused=["upsell-exhaustion"])
    out = pair.feed(trigger("p1"), NOW)
    assert suppressed(out)["upsell-exhaustion"] == "paused"
    assert "exhausted-cheap" not in suppressed(out)  # the arbitration runs among the others
    everything = Pair(campaign_set(campaigns=[NEW_UPSELL]), paused=["upsell-exhaustion"])
    assert kinds(everything.feed(trigger("p2"), NOW)) == ["TRIGGER", "SUPPRESSED"]
    pair.check()
    everything.check()


@pytest.mark.parametrize("as_float", [False, True], ids=["now-int", "now-float"])
def test_offers_and_scoring(as_float: bool) -> None:
    now = float(NOW) if as_float else NOW
    pair = Pair(RICH)
    # no offer (informational): the first step at once
    msisdn = "254700000001"
    pair.feed(ProfileUpdated(Profile(msisdn, segment="prepaid", tenure_days=100)), now)
    out = pair.feed(trigger("s1", TriggerKind.ROAMING_REGISTERED, msisdn), now)
    assert kinds(out)[:2] == ["TRIGGER", "ELIGIBLE"] and "SendSms" in kinds(out)
    # scoring disabled: without fallback (sized on nothing) and with one
    out = pair.feed(trigger("s2", TriggerKind.RECURRING_CANCELLED, msisdn), now)
    assert "ELIGIBLE" in kinds(out)
    pair.check()
    stk_less = "254700000002"
    pair.feed(ProfileUpdated(Profile(stk_less, tenure_days=5)), now)
    out = pair.feed(trigger("s3", TriggerKind.RECURRING_CANCELLED, stk_less), now)
    assert ("ELIGIBLE", "cancelled-fallback", "None") in trail(out)
    # scoring enabled: QueryCredit and its deadline
    new = ARMS["new"][1]
    out = pair.feed(trigger("s4", msisdn=new), now)
    (query,) = [c for c in out if isinstance(c, QueryCredit)]
    assert query.timeout == 5.0 and query.request_id.endswith(":score")
    assert pair.fast.offer(query.request_id.rsplit(":", 1)[0]).deadline == now + 5.0  # type: ignore[union-attr]
    pair.check()
    pair.feed(CreditScored(query.request_id, new, Decimal("400"), Decimal("0")), now + 1)
    pair.check()


def test_shipped_campaign_directory() -> None:
    pair = Pair(SHIPPED_SET)
    dates = {
        "winback": (ActivePackage("monthly_1gb", "2026-05-01", "2026-05-31", recurring=True),),
        "weekly": (ActivePackage("data_1000mb", "2026-05-29", "2026-06-05"),),
        "trial": (ActivePackage("monthly_1gb", "2026-05-25", "2026-06-04", trial=True),),
    }
    subscribers = [m for arm in SHIPPED_ARMS.values() for m in arm]
    seen: set[str] = set()
    for index, msisdn in enumerate(subscribers):
        packages = list(dates.values())[index % 3]
        segment = "corporate" if index % 4 == 3 else "prepaid"
        if index % 5:
            pair.feed(
                ProfileUpdated(Profile(msisdn, segment=segment, tenure_days=120, packages=packages)), NOW
            )
        for n, kind in enumerate(TriggerKind):
            for days in ("1", "2", "3"):
                level = 95 if kind is TriggerKind.THRESHOLD else None
                event = trigger(f"{msisdn}-{kind}-{days}", kind, msisdn, level=level, days_left=days)
                out = pair.feed(event, NOW + n)
                seen.update(kinds(out))
                seen.update(f"{c.kind.name}:{c.variant}" for c in out if isinstance(c, Record))
        pair.check()
    assert {
        "ASSIGNED:control",
        "ASSIGNED:new_delayed",
        "DEFERRED",
        "QueryCredit",
        "SendSms",
        "SUPPRESSED",
    } <= seen
    assert pair.fast.next_deadline() is not None
    pair.feed(Tick(), NOW + 3 * 86400)
    pair.check()


def test_offer_ids_and_arms_for_ids_of_every_length_and_script() -> None:
    """The path hashes offer ids and experiment buckets itself: ids across BLAKE2b's 128-octet blocks,
    empty, and not ASCII give model.offer_id's and experiments.assign's answers."""
    pair = Pair(campaign_set(campaigns=[NEW_UPSELL, INFO], experiments=[EXPERIMENT]))
    texts = ["", "é", "日本語", "\U0001f600", "a\x00b"] + [
        "x" * n for n in (1, 100, 107, 108, 109, 127, 128, 129, 236, 255, 256, 257, 300)
    ]
    config = pair.fast.campaigns.experiments[0]
    for n, text in enumerate(texts):
        msisdn = f"2547{n:08d}{text}"
        pair.feed(ProfileUpdated(Profile(msisdn, segment="prepaid")), NOW)
        out = pair.feed(trigger(text, msisdn=msisdn), NOW)
        arm = assign(config, msisdn)
        assigned = [c.variant for c in out if isinstance(c, Record) and c.kind is RecordKind.ASSIGNED]
        assert assigned == [arm.name], (msisdn, out)
        for record in out:
            if isinstance(record, Record) and record.kind is RecordKind.ELIGIBLE:
                assert record.offer_id == offer_id(str(record.campaign_id), text)
    pair.check()


def test_the_path_blake2b_is_hashlib_blake2b() -> None:
    own = getattr(engine_module._journey, "blake2b", None)
    if own is None:
        pytest.skip("campaign_core._journey exposes no blake2b to test directly")
    for length in [*range(0, 300), 511, 512, 513, 1000]:
        data = bytes((i * 7 + length) % 256 for i in range(length))
        for size in (8, 10, 64):
            assert own(data, size) == hashlib.blake2b(data, digest_size=size).digest(), (length, size)


class _Text(str):
    """A str subclass: it could hash or encode otherwise, so the C path hands it to the Python one."""

    __slots__ = ()


@dataclasses.dataclass(frozen=True, slots=True)
class _Trigger(TriggerRaised):
    """A subclass of the event: ``handle`` finds its handler by isinstance."""


@pytest.mark.parametrize(
    "make",
    [
        lambda n: TriggerRaised(_Text(f"s{n}"), TriggerKind.EXHAUSTED, "254700000001", T0, None, 100),
        lambda n: TriggerRaised(f"s{n}", TriggerKind.EXHAUSTED, _Text("254700000002"), T0, None, 100),
        lambda n: _Trigger(f"s{n}", TriggerKind.EXHAUSTED, "254700000003", T0, None, 100),
        lambda n: TriggerRaised(f"s{n}", TriggerKind.EXHAUSTED, ARMS["late"][0], T0, None, 100),
    ],
    ids=["trigger-id-str-subclass", "msisdn-str-subclass", "event-subclass", "plain"],
)
def test_objects_of_other_classes_give_the_same_answers(make: Callable[[int], TriggerRaised]) -> None:
    pair = Pair(RICH)
    for n in range(12):
        event = make(n)
        out = pair.feed(event, NOW + n * 1000)
        assert kinds(out)[0] == "TRIGGER"
        if type(event) is TriggerRaised:
            pair.check()
        else:  # the snapshot's codec takes the event classes themselves only
            assert pair.fast.next_deadline() == pair.plain.next_deadline()
            assert _internals(pair.fast) == _internals(pair.plain)


def test_offers_due_at_the_same_time_share_a_deadline_entry() -> None:
    pair = Pair(campaign_set(campaigns=[NEW_UPSELL]))
    for n in range(6):  # QueryCredit at now + 5 s each; the same time as int and as float
        now: float = NOW if n % 2 else float(NOW)
        out = pair.feed(trigger(f"same{n}", msisdn=f"2547999{n:05d}"), now)
        assert "ELIGIBLE" in kinds(out)
    assert isinstance(pair.fast._deadlines._ids[NOW + 5.0], list)
    pair.check()
    pair.feed(Tick(), NOW + 5)
    pair.check()


# --- random event streams -----------------------------------------------------------------------

SETS: dict[str, tuple[CampaignSet, list[str], list[str | None], list[Sequence[str]]]] = {
    "rich": (
        RICH,
        [*(m for arm in ARMS.values() for m in arm), "254700000099"],
        [None, "data-1gb", "data-100mb"],
        [(), ("upsell-exhaustion",), ("exhausted-info", "cancelled-fallback")],
    ),
    "shipped": (
        SHIPPED_SET,
        [*(m for arm in SHIPPED_ARMS.values() for m in arm), "254700000099"],
        [None, "data_1000mb", "monthly_1gb"],
        [(), ("upsell_new",), ("trial_ending", "monthly_winback", "roaming_welcome")],
    ),
}
PACKAGES = [
    (),
    (ActivePackage("monthly_1gb", "2026-05-01", "2026-05-31", recurring=True),),
    (ActivePackage("data_1000mb", "2026-05-29", "2026-06-05"),),
    (ActivePackage("monthly_1gb", "2026-05-25", "2026-06-04", trial=True),),
    (ActivePackage("data-1gb", "2026-05-01", "2026-06-02"),),
]
CODES = ["*123*100#", "*123*200#", "*123*500#", "*123*1000#", "*123*1*3*1*1#", "*9#"]

actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("profile"),
            st.integers(0, 20),
            st.sampled_from(["", "prepaid", "postpaid", "corporate"]),
            st.sampled_from([0, 40, 120]),
            st.sampled_from([None, "", "Europe/London", "Mars/Base", "Africa/Nairobi", "Asia/Tokyo"]),
            st.booleans(),
            st.integers(0, len(PACKAGES) - 1),
        ),
        st.tuples(
            st.just("trigger"),
            st.integers(0, 20),
            st.sampled_from(list(TriggerKind)),
            st.sampled_from([None, 50, 90, 95, 100]),
            st.sampled_from([None, "1", "2", "3", "x"]),
            st.integers(0, 12),  # trigger ids from a small pool: re-deliveries and ids shared across MSISDNs
            st.integers(0, 2),
        ),
        st.tuples(
            st.just("credit"),
            st.integers(0, 10),
            st.sampled_from(["ok", "ok", "fail"]),
            st.sampled_from(["0", "60", "400"]),
            st.sampled_from(["0", "100", "400"]),
        ),
        st.tuples(st.just("delivery"), st.integers(0, 20), st.booleans()),
        st.tuples(
            st.just("respond"),
            st.integers(0, 20),
            st.sampled_from(["ok", "declined", "ussd"]),
            st.integers(0, len(CODES) - 1),
        ),
        st.tuples(st.just("activated"), st.integers(0, 10)),
        st.tuples(st.just("tick"), st.sampled_from([1, 5, 60, 600, 3600, 4 * 3600, 26 * 3600])),
    ),
    min_size=5,
    max_size=60,
)


class Stream:
    """Turns drawn actions into events, given what the engines asked (QueryCredit, pushes, Activate)."""

    def __init__(self, msisdns: list[str], package_ids: list[str | None]) -> None:
        self.msisdns = msisdns
        self.package_ids = package_ids
        self.now = NOW
        self.queries: list[QueryCredit] = []
        self.sent: list[PushStk | SendSms] = []
        self.activations: list[Activate] = []
        self.serial = 0

    def event(self, action: tuple[Any, ...]) -> Event | None:
        name = action[0]
        if name == "profile":
            _, who, segment, tenure, zone, stk, packages = action
            msisdn = self.msisdns[who % len(self.msisdns)]
            return ProfileUpdated(Profile(msisdn, segment, tenure, zone, stk, PACKAGES[packages]))
        if name == "trigger":
            _, who, kind, level, days, tid, package = action
            msisdn = self.msisdns[who % len(self.msisdns)]
            event_time: float = self.now - tid if tid % 2 else float(self.now - 1)
            return trigger(
                f"t{tid}",
                kind,
                msisdn,
                level=level,
                days_left=days,
                package_id=self.package_ids[package % len(self.package_ids)],
                event_time=event_time,
            )
        if name == "credit":
            if not self.queries:
                return None
            _, index, outcome, balance, credit = action
            query = self.queries.pop(index % len(self.queries))
            if outcome == "fail":
                return CreditFailed(query.request_id, query.msisdn, "HTTP 503")
            return CreditScored(query.request_id, query.msisdn, Decimal(balance), Decimal(credit))
        if name == "delivery":
            if not self.sent:
                return None
            _, index, delivered = action
            return DeliveryReported(self.sent[index % len(self.sent)].command_id, delivered)
        if name == "respond":
            _, index, how, code = action
            self.serial += 1
            if how == "ussd" or not self.sent:
                msisdn = self.msisdns[index % len(self.msisdns)]
                return Responded(f"r{self.serial}", msisdn, ResponseChannel.USSD, option_id=CODES[code])
            command = self.sent[index % len(self.sent)]
            channel = ResponseChannel.STK_OK if how == "ok" else ResponseChannel.STK_DECLINED
            return Responded(f"r{self.serial}", command.msisdn, channel, offer_id=command.offer_id)
        if name == "activated":
            if not self.activations:
                return None
            command = self.activations.pop(action[1] % len(self.activations))
            return Activated(command.offer_id, command.package_id, command.payment, command.price)
        assert name == "tick"
        self.now += action[1]
        return Tick()

    def saw(self, out: Sequence[Command]) -> None:
        for command in out:
            if isinstance(command, QueryCredit):
                self.queries.append(command)
            elif isinstance(command, PushStk | SendSms):
                self.sent.append(command)
            elif isinstance(command, Activate):
                self.activations.append(command)


def _run(
    pairs: Sequence[tuple[Engine, Engine]],
    stream: Stream,
    drawn: Sequence[tuple[Any, ...]],
    floats: Sequence[bool],
) -> None:
    """Feed the drawn events to every (accelerated, plain) pair: the two of a pair answer exactly alike;
    different pairs (an engine and its restored copy) answer equal commands (a restored trigger's event
    time is a float, so a latency computed from it may be 1.0 where the original says 1)."""
    for step, action in enumerate(drawn):
        event = stream.event(action)
        if event is None:
            continue
        now: float = float(stream.now) if floats[step % len(floats)] else stream.now
        answers = []
        for fast, plain in pairs:
            answers.append(fast.handle(event, now))
            assert_same_commands(answers[-1], plain.handle(event, now), (step, event, now))
        assert all(answer == answers[0] for answer in answers), (step, event, now)
        stream.saw(answers[0])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.sampled_from(sorted(SETS)),
    paused_index=st.integers(0, 2),
    first=actions,
    second=actions,
    floats=st.lists(st.booleans(), min_size=1, max_size=8),
)
def test_random_event_streams_give_the_same_commands_and_state(
    which: str,
    paused_index: int,
    first: list[tuple[Any, ...]],
    second: list[tuple[Any, ...]],
    floats: list[bool],
) -> None:
    campaigns, msisdns, package_ids, pausable = SETS[which]
    paused = pausable[paused_index]
    pair = Pair(campaigns, paused)
    stream = Stream(msisdns, package_ids)
    _run([(pair.fast, pair.plain)], stream, first, floats)
    pair.check()
    # the accelerated engine's snapshot, restored into a fresh accelerated engine and a fresh plain one
    snapshot = json.loads(json.dumps(pair.fast.snapshot()))
    restored_fast = Engine(campaigns, paused=paused)
    restored_plain = Engine(campaigns, paused=paused, accelerated=False)
    assert restored_fast.restore(snapshot) == restored_plain.restore(snapshot) == []
    assert_same_state(restored_fast, restored_plain)
    _run([(restored_fast, restored_plain), (pair.fast, pair.plain)], stream, second, floats)
    assert_same_state(restored_fast, restored_plain)
    pair.check()


# --- references and memory ----------------------------------------------------------------------


def _fresh(text: str) -> str:
    """A str object of its own (not interned, not shared with a constant)."""
    return "".join(list(text))


def test_what_the_path_handles_is_not_kept_when_nothing_is_decided() -> None:
    """Triggers that change no state (re-delivered, busy, control in its window, not eligible, no
    campaign) leave every reference count as it was: the path drops what it made."""
    engine = Engine(
        campaign_set(campaigns=[NEW_UPSELL, INFO, NO_FALLBACK, FALLBACK], experiments=[EXPERIMENT])
    )
    busy, control, postpaid = ARMS["new"][0], ARMS["control"][0], ARMS["info"][1]
    engine.handle(
        ProfileUpdated(Profile(postpaid, segment="postpaid", tenure_days=1, stk_capable=False)), NOW
    )
    engine.handle(trigger("start", msisdn=busy), NOW)  # an open offer: later triggers are busy
    engine.handle(trigger("start", msisdn=control), NOW)  # the control recorded: the window starts
    campaign = engine._compiled["upsell-exhaustion"]
    arm_name = engine.campaigns.experiments[0].arms[0].name
    experiment_id = engine.campaigns.experiments[0].id
    now = float(NOW + 7)
    event_time = float(NOW - 3)
    events = [
        TriggerRaised(_fresh("again"), TriggerKind.EXHAUSTED, busy, event_time, _fresh("data-1gb"), 100),
        TriggerRaised(_fresh("ctl"), TriggerKind.EXHAUSTED, control, event_time, None, 100),
        TriggerRaised(_fresh("cancel"), TriggerKind.RECURRING_CANCELLED, postpaid, event_time, None, None),
        TriggerRaised(_fresh("unknown"), TriggerKind.PACKAGE_ENDING, busy, event_time, None, None),
    ]
    for event in events:  # once, so that the subscribers have these trigger ids
        engine.handle(event, now)
    watched: list[object] = [
        busy,
        control,
        postpaid,
        campaign.id,
        campaign.rank,
        campaign.eligible,
        arm_name,
        experiment_id,
        now,
        event_time,
        TriggerKind.EXHAUSTED,
        TriggerKind.EXHAUSTED.value,
        None,
        True,
        False,
        *events,
    ]
    cases = [
        (busy, TriggerKind.EXHAUSTED),
        (control, TriggerKind.EXHAUSTED),
        (postpaid, TriggerKind.RECURRING_CANCELLED),
    ]
    _undecided(
        engine, events, cases=cases, event_time=event_time, now=now, serials=range(50)
    )  # first-time work (caches) done
    gc.collect()
    before = [sys.getrefcount(o) for o in watched]
    _undecided(engine, events, cases=cases, event_time=event_time, now=now, serials=range(50, 2050))
    gc.collect()
    after = [sys.getrefcount(o) for o in watched]
    assert after == before, [
        (repr(o)[:40], b, a) for o, b, a in zip(watched, before, after, strict=True) if a != b
    ]


def _undecided(
    engine: Engine,
    events: Sequence[TriggerRaised],
    *,
    cases: Sequence[tuple[str, TriggerKind]],
    event_time: float,
    now: float,
    serials: range,
) -> None:
    for n in serials:
        for event in events:  # handled again: a re-delivery, or busy once the id is forgotten
            out = engine.handle(event, now)
            assert not any(isinstance(c, Record) and c.kind is RecordKind.ELIGIBLE for c in out)
        for msisdn, kind in cases:  # busy, control within its window, not eligible
            event = TriggerRaised(f"n{n}", kind, msisdn, event_time, None, 100)
            out = engine.handle(event, now)
            assert out and not any(isinstance(c, Record) and c.kind is RecordKind.ELIGIBLE for c in out)
            assert engine.handle(event, now) == []  # re-delivered


@pytest.mark.parametrize(
    ("msisdn_arm", "kind", "days"),
    [
        ("new", TriggerKind.EXHAUSTED, None),  # QueryCredit
        ("late", TriggerKind.EXHAUSTED, None),  # deferred
        ("control", TriggerKind.EXHAUSTED, None),  # control recorded
        ("info", TriggerKind.EXHAUSTED, None),  # informational, arbitration
        ("new", TriggerKind.RECURRING_CANCELLED, None),  # scoring disabled
        ("new", TriggerKind.TRIAL_ENDING, "3"),  # selective: the Python method
        ("new", TriggerKind.ROAMING_REGISTERED, None),
    ],
)
def test_everything_handled_is_released_with_the_engine(
    msisdn_arm: str, kind: TriggerKind, days: str | None
) -> None:
    msisdn = _fresh(ARMS[msisdn_arm][0])
    trigger_id = _fresh(f"{kind}-release")
    now = float(NOW + 11)
    event_time = float(NOW - 5)
    attributes = {} if days is None else {"days_left": _fresh(days)}
    event = TriggerRaised(trigger_id, kind, msisdn, event_time, None, 100, attributes)
    watched: list[object] = [msisdn, trigger_id, now, event_time, event]
    gc.collect()
    before = [sys.getrefcount(o) for o in watched]
    engine = Engine(RICH)
    engine.handle(ProfileUpdated(Profile(msisdn, segment="prepaid", tenure_days=100)), now)
    out = engine.handle(event, now)
    assert any(isinstance(c, Record) and c.kind in {RecordKind.ELIGIBLE, RecordKind.ASSIGNED} for c in out)
    assert any(sys.getrefcount(o) > b for o, b in zip(watched, before, strict=True))  # held while alive
    gone = weakref.ref(engine)
    del engine, out
    gc.collect()
    assert gone() is None  # the engine <-> TriggerPath cycle is collected
    after = [sys.getrefcount(o) for o in watched]
    assert after == before


def _round(events: int) -> None:
    """``events`` triggers of mixed branches through a new accelerated engine, then everything dropped."""
    engine = Engine(RICH, paused=["exhausted-cheap-b"])
    msisdns = [m for arm in ARMS.values() for m in arm]
    kinds_cycle = [
        TriggerKind.EXHAUSTED,
        TriggerKind.RECURRING_CANCELLED,
        TriggerKind.ROAMING_REGISTERED,
        TriggerKind.EXHAUSTED,
        TriggerKind.PACKAGE_ENDING,
    ]
    handled = 0
    n = 0
    while handled < events:
        msisdn = f"2547{n % 3000:08d}" if n % 3 else msisdns[n % len(msisdns)]
        if n % 500 == 0:
            engine.handle(
                ProfileUpdated(Profile(msisdn, segment="prepaid", tenure_days=100, timezone="Mars/Base")), NOW
            )
        kind = kinds_cycle[n % len(kinds_cycle)]
        event = TriggerRaised(f"t{n % 4000}", kind, msisdn, float(NOW), None, 100)
        engine.handle(event, NOW + (n // 1000) * 600.0)
        handled += 1
        n += 1
        if n % 2000 == 0:
            engine.handle(Tick(), NOW + (n // 1000) * 600.0)
    del engine
    gc.collect()


def test_twenty_thousand_triggers_leave_no_memory_behind() -> None:
    _round(2000)  # warm the caches (zones, interned names)
    tracemalloc.start()
    try:
        _round(20_000)
        first, _ = tracemalloc.get_traced_memory()
        _round(20_000)
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # one leaked reference an event keeps an event, a record or a tuple alive: 20 000 of them are MBs
    assert second - first < 256 * 1024, f"grew by {second - first} bytes over 20 000 triggers"


# --- errors -------------------------------------------------------------------------------------


def _raw(*fields: Any) -> TriggerRaised:
    """A TriggerRaised with whatever fields (the dataclass checks no type)."""
    return TriggerRaised(*fields)


def _without(field: str) -> TriggerRaised:
    """A TriggerRaised whose slot ``field`` was never set (deleted past the frozen dataclass)."""
    event = TriggerRaised("m1", TriggerKind.ROAMING_REGISTERED, "254700000001", T0)
    object.__delattr__(event, field)
    return event


R, C, E = TriggerKind.ROAMING_REGISTERED, TriggerKind.RECURRING_CANCELLED, TriggerKind.EXHAUSTED
BAD_EVENTS: dict[str, Callable[[], TriggerRaised]] = {
    "msisdn None": lambda: _raw("b1", C, None, T0, None, None),
    "msisdn None, experiment": lambda: _raw("b2", E, None, T0, None, 100),
    "msisdn int": lambda: _raw("b3", R, 254700000001, T0),
    "msisdn unhashable": lambda: _raw("b4", R, ["2547"], T0),
    "msisdn with a surrogate": lambda: _raw("b4", E, "2547\ud800", T0, None, 100),
    "trigger_id int": lambda: _raw(7, R, "254700000001", T0),
    "trigger_id None": lambda: _raw(None, C, "254700000001", T0),
    "trigger_id int, all suppressed": lambda: _raw(8, C, "254700000003", T0),
    "trigger_id unhashable": lambda: _raw(["x"], R, "254700000001", T0),
    "trigger_id with a surrogate": lambda: _raw("b\udfff", R, "254700000001", T0),
    "kind a str": lambda: _raw("b5", "exhausted", "254700000001", T0),
    "kind unknown": lambda: _raw("b6", "nothing", "254700000001", T0),
    "kind unhashable": lambda: _raw("b7", ["exhausted"], "254700000001", T0),
    "level a str": lambda: _raw("b8", TriggerKind.THRESHOLD, "254700000001", T0, None, "high"),
    "attributes None": lambda: _raw("b9", TriggerKind.TRIAL_ENDING, "254700000001", T0, None, None, None),
    "event_time None": lambda: _raw("b10", R, "254700000001", None),
    "no msisdn slot": lambda: _without("msisdn"),
    "no kind slot": lambda: _without("kind"),
    "no package_id slot": lambda: _without("package_id"),
    "no level slot": lambda: _without("level"),
}
BAD_NOW: dict[str, object] = {"now None": None, "now str": "12:00", "now Decimal": Decimal(NOW)}


def _outcome(engine: Engine, event: object, now: Any) -> tuple[object, list[Command]]:
    out: list[Command] = []
    try:
        engine._handlers[TriggerRaised](event, now, out)
    except Exception as error:
        return type(error), out
    return None, out


def _pair_with_history() -> Pair:
    pair = Pair(RICH)
    pair.feed(ProfileUpdated(Profile("254700000003", tenure_days=1, stk_capable=False)), NOW)
    pair.feed(trigger("h1", TriggerKind.EXHAUSTED, ARMS["new"][0]), NOW)
    return pair


@pytest.mark.parametrize("name", sorted(BAD_EVENTS))
def test_an_event_with_fields_of_wrong_types_fails_alike(name: str) -> None:
    pair = _pair_with_history()
    event = BAD_EVENTS[name]()
    fast_error, fast_out = _outcome(pair.fast, event, NOW)
    plain_error, plain_out = _outcome(pair.plain, event, NOW)
    assert fast_error is plain_error, (name, fast_error, plain_error)
    assert_same_commands(fast_out, plain_out, name)
    assert _internals(pair.fast) == _internals(pair.plain)
    # and the engines go on alike
    out = pair.feed(trigger("after", TriggerKind.EXHAUSTED, "254700000001"), NOW + 1)
    assert out
    assert _internals(pair.fast) == _internals(pair.plain)


@pytest.mark.parametrize("name", sorted(BAD_NOW))
@pytest.mark.parametrize(
    "kind", [TriggerKind.EXHAUSTED, TriggerKind.RECURRING_CANCELLED, TriggerKind.ROAMING_REGISTERED]
)
def test_a_bad_now_fails_alike(name: str, kind: TriggerKind) -> None:
    pair = _pair_with_history()
    event = trigger("n1", kind, ARMS["late"][0])
    fast_error, fast_out = _outcome(pair.fast, event, BAD_NOW[name])
    plain_error, plain_out = _outcome(pair.plain, event, BAD_NOW[name])
    assert fast_error is plain_error, (name, fast_error, plain_error)
    assert_same_commands(fast_out, plain_out, name)
    assert _internals(pair.fast) == _internals(pair.plain)


@pytest.mark.parametrize("field", ["msisdn", "trigger_id", "event_time", "kind", "package_id", "level"])
def test_an_event_with_an_unset_slot_leaves_the_same_state(field: str) -> None:
    pair = Pair(campaign_set(campaigns=[ROAMING]))
    bad = _without(field)
    fast_error, fast_out = _outcome(pair.fast, bad, NOW)
    plain_error, plain_out = _outcome(pair.plain, bad, NOW)
    assert fast_error is plain_error is AttributeError
    assert fast_out == plain_out == []
    same_at_once = _internals(pair.fast) == _internals(pair.plain)  # the plain one made a subscriber
    good = TriggerRaised("m1", TriggerKind.ROAMING_REGISTERED, "254700000001", T0)
    pair.feed(good, NOW + 1)  # the plain engine drops it as a re-delivery when it remembered the id
    assert same_at_once
    assert _internals(pair.fast) == _internals(pair.plain)
