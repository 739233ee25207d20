"""The campaign engine: events in, commands out, pure and deterministic (DESIGN.md, "One engine shape").

``Engine.handle(event, now) -> list[Command]`` and ``Engine.next_deadline()``; the gateway sends ``Tick()``
at the deadline. No clock, no I/O: ``now`` is passed in, so a recorded event log replays to the very same
commands (``tgw replay``). The commands include ``Record``\\ s, the decision trail; the gateway writes the
records and commands to its store before it carries the commands out (a transactional outbox) and feeds
back what happened (``CreditScored``, ``DeliveryReported``, ``Responded``, ``Activated``, ...).

The journey of one offer (issue #7, "The reference journey")::

    TriggerRaised ─ match campaigns (trigger kind, level, days before) ─ experiment arm (control: recorded,
    never contacted) ─ eligibility ─ cooldown / open offer ─ arbitration (priority, value) ─▶ offer
      [arm delay] ─▶ QueryCredit ─▶ CreditScored | CreditFailed | timeout (fallback or no offer)
      ─▶ affordable options (balance first, then credit) ─▶ step 1 … step n:
          [after] ─ eligibility again ─ policy (DND, quiet hours: defer/drop, caps) ─▶ PushStk / SendSms
          ─ wait ``wait`` after the delivery receipt (``hard_cap`` after submission without one) ─▶ next step
      ─▶ after the last step the offer stays open until it expires (``expires_after`` from the first contact)
    Responded (DSTK OK / item, USSD code, SMS reply) on an open offer ─▶ Activate (offer id = idempotency key)
      ─▶ Activated ─▶ confirmation SMS, closed "activated" | ActivationFailed ─▶ closed "failed"

Exactly once: the first acceptable response moves the offer to ACTIVATING; a second one (a late DSTK OK
after the SMS, a double dial) is answered "already taken" and activates nothing; a response to an offer
that expired is answered "expired", one to an offer whose activation failed with the failure text. Every
offer ends: activated, declined, expired, suppressed, failed or dropped by a reload (a ``CLOSED`` record
says which). A trigger of a paused campaign (``Engine(..., paused=...)``) is recorded as suppressed. Ids
are deterministic (``model.offer_id``; commands ``<offer>:<step>``, ``<offer>:score``,
``<offer>:confirm``), so a replay after a crash gives the same ids and billing's idempotency key stops a
second activation.

Snapshot (``snapshot`` / ``restore``, JSON-able, version ``SNAPSHOT_VERSION``), so that a restart need
not replay the whole event log: per subscriber a row ``[msisdn, profile, trigger ids, response ids, open
offer ids, closed offers, last starts]`` (a closed offer ``[offer id, outcome, names, campaign id,
variant]``, then the failed option's row when its activation failed; the profile a row ``[segment,
tenure_days, timezone, stk_capable, [[package_id, start_date, end_date, recurring, trial], ...],
attributes]``, or null), per
open offer a row ``[offer id, campaign id, variant, trigger, state, step, step ready, options, chosen,
pushed, deadline, queued, expires at, delivered]`` (the trigger as ``campaign_core.codec`` JSON, the
campaign by id, the options as ``[package id, volume MB, price, payment, USSD code]``, chosen and pushed
as indexes into them), the contact policy's own snapshot and the time of the last prune. The deadline
heap is rebuilt from the offers' ``queued`` times (not their deadlines: the order in which one Tick
handles several due offers follows the queued entries, and it must stay the same). A restored engine
gives the same outputs for the same later events as the engine the snapshot was taken of. ``restore``
leaves out the offers whose campaign the engine's ``CampaignSet`` no longer has, or whose campaign
changed so that the offer no longer fits it (its step past the journey, options from a campaign that now
offers nothing); it cannot record their end (it has no ``now``), so it returns their ids for the caller
to log and keeps an ``OfferDropped`` event for each (``dropped``) for the caller to hand to ``handle``.
Each is remembered with the subscriber's closed offers (outcome "dropped"), so a USSD code from its SMS
is answered as for an expired offer, not as if there had been none.

The contact policy forgets the subscribers whose every cap period is over (``ContactPolicy.prune``) on
a ``Tick`` once per simulated hour (``_PRUNE_EVERY``), which changes no decision.

Speed (bench/campaign_engine.py): what depends only on the configuration is decided when the engine is
built (``_Campaign``: trigger parameters, eligibility rules compiled to one function, the experiment's
``Assigner``, the arbitration rank, the offer's packages in listing order, each step's policy plan);
``handle`` dispatches on the event's type; records and commands are built through twin classes; offers
with the same options share one ``_OptionSet`` (the tuple and what is derived from it: the largest, the
names a response may use, texts); the deadline heap holds distinct times only (``_Deadlines``). Each of
these gives what the plain code gives: tests/campaign/test_engine_fast_paths.py.

The C accelerator (``campaign_core/_journey.c``, optional like the codecs' ones): when it is built and
``Engine(..., accelerated=True)`` (the default; ``TGW_PURE_PYTHON=1`` ignores it), ``handle`` and the
handlers of triggers, ticks, credit scores, delivery receipts, responses, activations and profiles
are C callables that do what these methods do on the same objects, reading and writing their slots.
What they do not do themselves (eligibility rules, policy refusals, refused responses, the failure
events, any object of another class) they hand to the Python methods, before changing anything. They
also untrack from the cyclic collector what the engine keeps and can never be on a cycle: profiles and
the triggers its offers keep when their fields are atomic and their attributes the shared empty ones,
id and count tuples, and an offer while its trigger and its subscriber's profile are such (a profile
with attributes of its own, set later, tracks the subscriber's open offers again). Subscribers stay
tracked (a profile's attributes may refer to anything). The commands a Tick hands out past its 64th
are untracked too when their fields hold no object: a Tick that ends 300k waits holds them through
several young collections. tests/campaign/test_engine_accelerated*.py run both engines on the same
events and compare every command, the state and the snapshots.
"""

from __future__ import annotations

import copy
import dataclasses
import heapq
import math
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import IntEnum
from functools import lru_cache
from hashlib import blake2b
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from campaign_core.codec import event_from_json, event_to_json
from campaign_core.config import (
    CampaignConfig,
    CampaignSet,
    EligibilityConfig,
    ExperimentConfig,
    JourneyStep,
    OfferTexts,
)
from campaign_core.experiments import Assigner, offer_value
from campaign_core.model import (
    Activate,
    Activated,
    ActivationFailed,
    ActivePackage,
    Channel,
    Command,
    CreditFailed,
    CreditScored,
    DeliveryReported,
    Event,
    OfferDropped,
    OfferOption,
    Payment,
    Profile,
    ProfileUpdated,
    Purchased,
    PushStk,
    QueryCredit,
    Record,
    RecordKind,
    Reply,
    Responded,
    ResponseChannel,
    SendSms,
    SubmitFailed,
    Tick,
    TriggerKind,
    TriggerRaised,
)
from campaign_core.policy import ALLOWED, ContactPlan, ContactPolicy, Deferred, Suppressed, Verdict
from campaign_core.texts import option_fields, render_step_text
from protocols._fast import fast_constructor, pure_python_asked
from protocols.errors import ConfigError, DecodeError

__all__ = ["SNAPSHOT_VERSION", "Engine", "OfferState", "OfferView", "eligibility_failure"]

_RECENT_TRIGGERS = 8  # trigger ids remembered per subscriber to drop re-deliveries
_RECENT_CLOSED = 4  # closed offers remembered per subscriber to answer late responses
_RECENT_RESPONSES = 4  # response ids remembered per subscriber
_ARBITRATION_REASON = "arbitration: %s goes first"  # a candidate another campaign won over (% the winner)
TRANSACTIONAL = "transactional"
_DEFAULT_TEXTS = OfferTexts()
_UNKNOWN_PROFILE = Profile("")
# distinct (step, options, days left) texts kept; options come from a small catalogue
_TEXT_CACHE_LIMIT = 4096
_OPTION_SETS_LIMIT = 4096  # distinct option tuples shared (they come from the catalogue: a handful)
_SIZED_LIMIT = 1024  # per campaign: the option sets of distinct affordability patterns
SNAPSHOT_VERSION = 1  # of Engine.snapshot()
_PRUNE_EVERY = 3600.0  # simulated seconds between two ContactPolicy.prune calls (on a Tick)

# Records and commands are frozen slotted dataclasses, whose __init__ sets each field through
# object.__setattr__ (1.2-1.4 us for Record or PushStk). The engine makes several an event, so it builds
# them as protocols._fast does for PDUs (0.15 us with its C builder, 0.7 us with its twin class): every
# field, positionally, in the dataclass's order. The result is an ordinary Record
# (tests/campaign/test_engine_fast_paths.py compares them).
if tuple(Record.__slots__) != ("kind", "at", "msisdn", "campaign_id", "variant", "offer_id", "detail"):
    raise ImportError("campaign_core.engine: Record's fields changed; update the _record calls")
_record = fast_constructor(Record)
# the commands, built the same way: every field, positionally, in the dataclass's order
_query_credit = fast_constructor(QueryCredit)
_push_stk = fast_constructor(PushStk)
_send_sms = fast_constructor(SendSms)
_activate = fast_constructor(Activate)
_reply = fast_constructor(Reply)


# the record kinds as globals: the hot paths load them without an attribute lookup on the enum class
_TRIGGER = RecordKind.TRIGGER
_ASSIGNED = RecordKind.ASSIGNED
_ELIGIBLE = RecordKind.ELIGIBLE
_SUPPRESSED = RecordKind.SUPPRESSED
_SCORED = RecordKind.SCORED
_CONTACT = RecordKind.CONTACT
_DEFERRED = RecordKind.DEFERRED
_DELIVERED = RecordKind.DELIVERED
_RESPONSE = RecordKind.RESPONSE
_REJECTED_RESPONSE = RecordKind.REJECTED_RESPONSE
_ACTIVATION = RecordKind.ACTIVATION
_FULFILLED = RecordKind.FULFILLED
_FAILED = RecordKind.FAILED
_CLOSED = RecordKind.CLOSED
_STK_OK = ResponseChannel.STK_OK
_STK_DECLINED = ResponseChannel.STK_DECLINED
_CHANNEL_SMS = Channel.SMS


class OfferState(IntEnum):
    DELAYED = 1  # an experiment arm's delay before anything happens
    SCORING = 2  # QueryCredit sent
    STEP_PENDING = 3  # waiting for a step's ``after`` or the end of quiet hours
    AWAITING = 4  # a step was sent; waiting for an answer
    OPEN = 5  # every step done; the offer stands until it expires
    ACTIVATING = 6  # Activate sent


_DELAYED = OfferState.DELAYED
_SCORING = OfferState.SCORING
_STEP_PENDING = OfferState.STEP_PENDING
_AWAITING = OfferState.AWAITING
_OPEN = OfferState.OPEN
_ACTIVATING = OfferState.ACTIVATING


@dataclass(frozen=True, slots=True)
class OfferView:
    """An open offer as tests and ``tgw explain`` see it."""

    offer_id: str
    msisdn: str
    campaign_id: str
    variant: str | None
    state: OfferState
    step: int
    options: tuple[OfferOption, ...]
    deadline: float | None
    expires_at: float | None


# --- what the engine decides once per campaign ------------------------------------------------------

_Eligibility = Callable[[Profile, TriggerRaised, float, str], "str | None"]


def _names_of(options: tuple[OfferOption, ...]) -> tuple[str, ...]:
    """Package ids and USSD codes, in order: what a closed offer remembers to answer a late response."""
    return tuple(name for o in options for name in (o.package_id, o.ussd_code))


class _OptionSet:
    """Options as offers hold them: one tuple object per distinct set of options, shared by every offer
    that has it (``Engine._option_set``), with what the engine derives from them computed once."""

    __slots__ = ("by_name", "largest", "names", "options", "package_ids")

    def __init__(self, options: tuple[OfferOption, ...]) -> None:
        self.options = options
        self.names = _names_of(options)
        by_name: dict[str, OfferOption] = {}
        for option in options:  # a response names the first option with that package id or code
            by_name.setdefault(option.package_id, option)
            by_name.setdefault(option.ussd_code, option)
        self.by_name = by_name
        self.package_ids = tuple(o.package_id for o in options)
        self.largest: _OptionSet | None = None  # the set of the largest option alone (Engine._largest)


_NO_OPTIONS = _OptionSet(())


class _Step:
    """A journey step with what the engine needs of it decided once."""

    __slots__ = (
        "after",
        "channel",
        "channel_value",
        "config",
        "hard_cap",
        "index",
        "mode",
        "plan",
        "promotional",
        "purpose",
        "stk",
        "style",
        "suffix",
        "wait",
    )

    def __init__(self, step: JourneyStep, index: int, policy: ContactPolicy) -> None:
        self.config = step
        self.index = index
        self.channel = step.channel
        self.channel_value = step.channel.value
        self.purpose = step.purpose
        self.promotional = step.purpose == "promotional"
        self.stk = step.channel is Channel.STK
        self.mode = step.options
        self.style = step.style
        self.after = step.after
        self.wait = step.wait
        self.hard_cap = step.hard_cap
        self.suffix = f":{index}"  # of the command id, ``<offer>:<step>``
        plan: ContactPlan | None
        try:
            plan = policy.contact_plan(step.channel, step.purpose)
        except ValueError:
            plan = None  # ContactPolicy.check says what is wrong when the step is sent
        self.plan = plan


class _Campaign:
    """A campaign with what the engine decides once, when it is loaded: its trigger parameters, the
    compiled eligibility rules, its experiment's assignment, its arbitration rank, the packages of its
    offer in the order options are listed, the journey's steps, and the option sets it sized."""

    __slots__ = (
        "assign",
        "config",
        "cooldown",
        "days_before",
        "eligible",
        "expires_after",
        "id",
        "journey",
        "level",
        "offer",
        "offer_hash",
        "offer_salt",
        "packages",
        "payment",
        "prices",
        "rank",
        "score_timeout",
        "scoring",
        "sized",
        "steps",
        "texts",
    )

    def __init__(
        self,
        config: CampaignConfig,
        packages: Mapping[str, Any],
        value: int,
        assign: Assigner | None,
        policy: ContactPolicy,
    ) -> None:
        self.config = config
        self.id = config.id
        self.journey = config.journey
        self.offer = config.offer
        self.scoring = config.scoring
        self.cooldown = config.cooldown
        self.level = config.trigger.level
        self.days_before = config.trigger.days_before
        self.eligible = _compile_eligibility(config.eligibility)
        self.assign = assign
        self.rank = (-config.priority, -value, config.id)  # experiments.arbitrate's order
        # model.offer_id's hash input before the trigger id, and the hash state after it: a copy updated
        # with the trigger id gives the offer id
        self.offer_salt = f"{config.id}\x00".encode()
        self.offer_hash = blake2b(self.offer_salt, digest_size=10)
        # the timeout of the QueryCredit that starts the offer; None: no offer, or scoring disabled
        self.expires_after = config.offer.expires_after if config.offer is not None else None
        self.score_timeout = (
            config.scoring.timeout if config.offer is not None and config.scoring.enabled else None
        )
        offered = config.offer.packages if config.offer is not None else ()
        # options are listed smallest first (volume, then price); a stable sort keeps the file's order
        # of equal ones, so filtering this order gives what sorting the affordable ones gives
        self.packages = tuple(sorted((packages[p] for p in offered), key=lambda p: (p.volume_mb, p.price)))
        self.prices = tuple(package.price for package in self.packages)  # read by campaign_core._journey
        self.payment = config.offer.payment if config.offer is not None else ""
        self.sized: dict[int, _OptionSet] = {}  # affordability pattern -> options
        self.steps = tuple(_Step(step, index, policy) for index, step in enumerate(config.journey))
        self.texts = config.offer.texts if config.offer is not None else None  # what an answer is told

    def matches(self, trigger: TriggerRaised) -> bool:
        level = self.level
        if level is not None and (trigger.level is None or trigger.level < level):
            return False
        if self.days_before:
            days = trigger.attributes.get("days_left")
            if days is None or not days.isdigit() or int(days) not in self.days_before:
                return False
        return True


class _Offer:
    __slots__ = (
        "campaign",
        "chosen",
        "deadline",
        "delivered",
        "expires_at",
        "msisdn",
        "offer_id",
        "offered",
        "pushed",
        "queued",
        "state",
        "step",
        "step_ready",
        "subscriber",
        "trigger",
        "variant",
    )

    def __init__(
        self,
        offer_id: str,
        campaign: _Campaign,
        variant: str | None,
        trigger: TriggerRaised,
        subscriber: _Subscriber,
    ) -> None:
        self.offer_id = offer_id
        self.campaign = campaign
        self.variant = variant
        self.trigger = trigger
        self.msisdn = trigger.msisdn
        self.subscriber = subscriber  # Engine._subscribers[msisdn], which is never replaced while it is open
        self.state = _SCORING
        self.step = 0
        self.step_ready = False  # the current step's ``after`` has elapsed (or was zero)
        self.offered = _NO_OPTIONS  # the affordable options
        self.chosen: OfferOption | None = None  # the option being activated
        self.pushed = _NO_OPTIONS  # what the last STK dialog offered (STK OK buys its first)
        self.deadline: float | None = None
        self.queued: float | None = None  # the time of this offer's live entry in the deadline heap
        self.expires_at: float | None = None
        self.delivered = False


class _Deadlines:
    """The offers' deadlines: entries ``(when, offer id)`` taken smallest first (the time, then the id),
    an entry pushed twice taken twice, as from a heap of those tuples. Kept as a heap of the distinct
    times (``times``, float comparisons only) and the ids due at each: one id alone, or a list that is
    sorted (descending, taken from the end) when it is next taken from, so that the many offers that
    share a time cost one sort rather than a tuple comparison per level of the heap each."""

    __slots__ = ("_ids", "_unsorted", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self._ids: dict[float, str | list[str]] = {}
        self._unsorted: set[float] = set()  # the times whose list of ids has ids appended since a sort

    def push(self, when: float, key: str) -> None:
        ids = self._ids
        found = ids.get(when)
        if found is None:
            ids[when] = key
            heapq.heappush(self.times, when)
            return
        if isinstance(found, str):
            ids[when] = [found, key]
        else:
            found.append(key)
        self._unsorted.add(when)

    def _due(self, when: float) -> list[str]:
        found = self._ids[when]
        assert isinstance(found, list)
        if when in self._unsorted:
            found.sort(reverse=True)
            self._unsorted.discard(when)
        return found

    def first(self) -> tuple[float, str]:
        """The smallest entry (``times`` is not empty)."""
        when = self.times[0]
        found = self._ids[when]
        return when, found if isinstance(found, str) else self._due(when)[-1]

    def pop(self) -> tuple[float, str]:
        """Take the smallest entry (``times`` is not empty)."""
        when = self.times[0]
        found = self._ids[when]
        if isinstance(found, str):
            key = found
        else:
            due = self._due(when)
            key = due.pop()
            if due:
                return when, key
        heapq.heappop(self.times)
        del self._ids[when]
        return when, key


_Closed = (
    tuple[str, str, tuple[str, ...], str, str | None]
    | tuple[str, str, tuple[str, ...], str, str | None, OfferOption]
)


class _Subscriber:
    __slots__ = ("closed", "last_start", "offers", "profile", "responses", "triggers")

    def __init__(self) -> None:
        self.profile: Profile | None = None
        self.triggers: tuple[str, ...] = ()
        self.responses: tuple[str, ...] = ()  # the latest response ids, to drop a re-delivered one
        self.offers: tuple[str, ...] = ()  # open offer ids, oldest first
        # (offer id, outcome, the offered package ids and USSD codes, campaign id, variant[, the option
        # whose activation failed]) of the latest closed offers, to answer a late response clearly
        self.closed: tuple[_Closed, ...] = ()
        # campaign id -> when its last offer started; experiment id -> the last control assignment
        self.last_start: tuple[tuple[str, float], ...] = ()  # a tuple of pairs: a third of a dict's size

    def remember_closed(self, entry: _Closed) -> None:
        """Keep ``entry`` as the latest closed offer (the oldest beyond ``_RECENT_CLOSED`` goes)."""
        closed = self.closed
        self.closed = (*closed[-(_RECENT_CLOSED - 1) :], entry) if closed else (entry,)


_NO_SUBSCRIBER = _Subscriber()  # the owner of an offer being restored, until restore() knows it


def _response_detail(event: Responded) -> dict[str, object]:
    return {"response_id": event.response_id, "channel": event.channel._value_, "option": event.option_id}


def _last_start(subscriber: _Subscriber, key: str) -> float | None:
    for name, when in subscriber.last_start:
        if name == key:
            return when
    return None


def _remember_start(subscriber: _Subscriber, key: str, when: float) -> None:
    starts = subscriber.last_start
    if starts:
        subscriber.last_start = (*(pair for pair in starts if pair[0] != key), (key, when))
    else:
        subscriber.last_start = ((key, when),)


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _local_date(now: float, zone: str) -> date:
    return datetime.fromtimestamp(now, ZoneInfo(zone)).date()


def _held(profile: Profile, package_id: str | None) -> ActivePackage | None:
    if package_id is None:
        return None
    return next((p for p in profile.packages if p.package_id == package_id), None)


def eligibility_failure(
    campaign: CampaignConfig, profile: Profile, trigger: TriggerRaised, now: float, zone: str
) -> str | None:
    """Why the subscriber is not eligible for ``campaign`` now, or None when every rule holds."""
    rules = campaign.eligibility
    if not rules.model_fields_set:
        return None  # no rule written in the file: everyone is eligible
    if rules.segments and profile.segment not in rules.segments:
        return f"segment {profile.segment!r} not in {list(rules.segments)}"
    if profile.segment in rules.exclude_segments:
        return f"segment {profile.segment!r} excluded"
    if profile.tenure_days < rules.min_tenure_days:
        return f"tenure {profile.tenure_days} days < {rules.min_tenure_days}"
    if rules.stk_capable is not None and profile.stk_capable != rules.stk_capable:
        return f"stk_capable is {profile.stk_capable}"
    for name, wanted in rules.attributes.items() if rules.attributes else ():
        if profile.attributes.get(name) != wanted:
            return f"attribute {name} is {profile.attributes.get(name)!r}, not {wanted!r}"
    needs_package = (
        rules.packages
        or rules.package_duration_days is not None
        or rules.ends_in_days is not None
        or rules.recurring is not None
        or rules.trial is not None
    )
    if not needs_package:
        return None
    return _package_rules_failure(rules, profile, trigger, now, zone)


def _package_rules_failure(
    rules: EligibilityConfig, profile: Profile, trigger: TriggerRaised, now: float, zone: str
) -> str | None:
    """The package rules of ``eligibility_failure`` (some package rule is written)."""
    if trigger.package_id is not None:
        if rules.packages and trigger.package_id not in rules.packages:
            return f"package {trigger.package_id!r} not in {list(rules.packages)}"
        held = _held(profile, trigger.package_id)
        candidates: tuple[ActivePackage, ...] = (held,) if held is not None else ()
        if not candidates and not (
            rules.package_duration_days is not None
            or rules.ends_in_days is not None
            or rules.recurring is not None
            or rules.trial is not None
        ):
            return None  # only the package id was asked for, and the trigger names it
    else:
        candidates = tuple(
            p for p in profile.packages if not rules.packages or p.package_id in rules.packages
        )
    today = _local_date(now, zone)
    for package in candidates:
        reason = _package_failure(rules, package, today)
        if reason is None:
            return None
    return "no package meets the package rules" if candidates else "no matching package held"


def _paused_rule(_profile: Profile, _trigger: TriggerRaised, _now: float, _zone: str) -> str:
    """The eligibility rule of a paused campaign's twin (``Engine(..., paused=...)``)."""
    return "paused"


def _compile_eligibility(rules: EligibilityConfig) -> _Eligibility | None:
    """``eligibility_failure`` for one campaign's rules with what depends on the rules alone decided
    once: None when the file writes no rule (everyone is eligible), else a function of (profile,
    trigger, now, zone) giving the same answer (tests/campaign/test_engine_fast_paths.py)."""
    if not rules.model_fields_set:
        return None
    segments = rules.segments
    segments_text = str(list(segments))
    excluded = rules.exclude_segments
    min_tenure = rules.min_tenure_days
    stk_capable = rules.stk_capable
    attributes = tuple(rules.attributes.items()) if rules.attributes else ()
    needs_package = bool(
        rules.packages
        or rules.package_duration_days is not None
        or rules.ends_in_days is not None
        or rules.recurring is not None
        or rules.trial is not None
    )

    def failure(profile: Profile, trigger: TriggerRaised, now: float, zone: str) -> str | None:
        segment = profile.segment
        if segments and segment not in segments:
            return f"segment {segment!r} not in {segments_text}"
        if segment in excluded:
            return f"segment {segment!r} excluded"
        if profile.tenure_days < min_tenure:
            return f"tenure {profile.tenure_days} days < {min_tenure}"
        if stk_capable is not None and profile.stk_capable != stk_capable:
            return f"stk_capable is {profile.stk_capable}"
        for name, wanted in attributes:
            if profile.attributes.get(name) != wanted:
                return f"attribute {name} is {profile.attributes.get(name)!r}, not {wanted!r}"
        if not needs_package:
            return None
        return _package_rules_failure(rules, profile, trigger, now, zone)

    return failure


def _package_failure(rules: EligibilityConfig, package: ActivePackage, today: date) -> str | None:
    try:
        start = date.fromisoformat(package.start_date)
        end = date.fromisoformat(package.end_date)
    except ValueError:
        return f"package {package.package_id}: bad dates"
    duration = rules.package_duration_days
    if duration is not None and (end - start).days != duration:
        return f"package {package.package_id} lasts {(end - start).days} days, not {duration}"
    # the source's "ends in N days" is end_date >= today + N + 1 (EligibilityConfig)
    ends_in = rules.ends_in_days
    if ends_in is not None and end < today + timedelta(days=ends_in + 1):
        return f"package {package.package_id} ends {end}, before {today + timedelta(days=ends_in + 1)}"
    if rules.recurring is not None and package.recurring != rules.recurring:
        return f"package {package.package_id} recurring is {package.recurring}"
    if rules.trial is not None and package.trial != rules.trial:
        return f"package {package.package_id} trial is {package.trial}"
    return None


_Handler = Callable[[Any, float, list[Command]], None]


class Engine:
    """One campaign directory's engine (see the module docstring)."""

    def __init__(
        self, campaigns: CampaignSet, *, paused: Collection[str] = (), accelerated: bool = True
    ) -> None:
        """``paused``: ids of campaigns an operator paused (``Gateway.pause``): they start no journey,
        whatever their ``enabled``, and a trigger that would have started one is recorded as
        suppressed ("paused"); their offers in progress run to their end. ``accelerated``: take the
        trigger path of the C accelerator ``campaign_core._journey`` when it is built (and
        ``TGW_PURE_PYTHON`` is not set); False keeps the Python one (tests compare the two)."""
        errors = campaigns.check()
        if errors:
            first = errors[0]
            raise ConfigError(f"{'.'.join(map(str, first.path))}: {first.reason}", first.source)
        self.campaigns = campaigns
        self.policy = ContactPolicy(campaigns.policy)
        self._zone = campaigns.policy.default_timezone
        self._currency = campaigns.catalogue.currency
        self._packages = {package.id: package for package in campaigns.catalogue.packages}
        experiment_of: dict[str, ExperimentConfig] = {}
        for experiment in campaigns.experiments:
            for arm in experiment.arms:
                if arm.campaign is not None:
                    experiment_of[arm.campaign] = experiment
        assigners = {experiment.id: Assigner(experiment) for experiment in campaigns.experiments}
        # by id (unique: CampaignSet.check), the first one as CampaignSet.campaign() finds it
        self._compiled: dict[str, _Campaign] = {}
        for campaign in campaigns.campaigns:
            if campaign.id not in self._compiled:
                joined = experiment_of.get(campaign.id)
                self._compiled[campaign.id] = _Campaign(
                    campaign,
                    self._packages,
                    offer_value(campaign, campaigns.catalogue),
                    None if joined is None else assigners[joined.id],
                    self.policy,
                )
        # trigger kind -> the enabled campaigns it starts, in file order, and whether any of them looks
        # at the trigger's level or days left. A paused campaign is among them as a twin whose eligibility
        # rule always answers "paused": its trigger is recorded as suppressed by the very path of any
        # other reason, so the trigger's hot path has nothing to check for pausing.
        held = frozenset(paused)
        by_trigger: dict[TriggerKind, list[_Campaign]] = {}
        for campaign in campaigns.campaigns:
            if campaign.id in held:
                twin = copy.copy(self._compiled[campaign.id])
                twin.eligible = _paused_rule
                by_trigger.setdefault(campaign.trigger.kind, []).append(twin)
            elif campaign.enabled:
                by_trigger.setdefault(campaign.trigger.kind, []).append(self._compiled[campaign.id])
        self._by_trigger: dict[TriggerKind, tuple[tuple[_Campaign, ...], bool]] = {
            kind: (tuple(found), any(c.level is not None or c.days_before for c in found))
            for kind, found in by_trigger.items()
        }
        self._control_windows: dict[str, float] = {}
        for experiment in campaigns.experiments:
            window = 0.0
            for arm in experiment.arms:
                target = campaigns.campaign(arm.campaign) if arm.campaign is not None else None
                if target is not None:
                    journey = sum(step.after + step.hard_cap for step in target.journey)
                    expiry = target.offer.expires_after if target.offer is not None else 0.0
                    window = max(window, target.cooldown, arm.delay + journey + expiry)
            self._control_windows[experiment.id] = window
        self._subscribers: dict[str, _Subscriber] = {}
        self._offers: dict[str, _Offer] = {}
        self._deadlines = _Deadlines()  # (when, offer id); stale entries skipped
        self._options: dict[tuple[str, Payment], OfferOption] = {}  # one object per package and payment
        # option objects (by identity: equal prices may be written differently) -> their shared set
        self._option_sets: dict[tuple[int, ...], _OptionSet] = {(): _NO_OPTIONS}
        self._texts: dict[tuple[_Step, _OptionSet, str], str] = {}
        self._option_fields: dict[int, tuple[OfferOption, Mapping[str, str]]] = {}  # id -> its fields
        self._pruned_at: float | None = None  # the now of the last ContactPolicy.prune
        self.dropped: tuple[OfferDropped, ...] = ()  # the offers the last restore() left out
        self._handlers: dict[type, _Handler] = {
            Tick: self._on_tick,
            TriggerRaised: self._trigger,
            ProfileUpdated: self._on_profile,
            CreditScored: self._credit_scored,
            CreditFailed: self._credit_failed,
            DeliveryReported: self._delivered,
            SubmitFailed: self._submit_failed,
            Responded: self._response,
            Activated: self._activation,
            ActivationFailed: self._activation,
            Purchased: self._purchased,
            OfferDropped: self._offer_dropped,
        }
        # whether the C accelerator's paths run (bench/campaign_engine.py prints it)
        self.accelerated = accelerated and _journey is not None
        if self.accelerated:
            self._handlers[TriggerRaised] = _journey.TriggerPath(self)
            self._handlers[Tick] = _journey.TickPath(self)
            self._handlers[CreditScored] = _journey.CreditPath(self)
            self._handlers[DeliveryReported] = _journey.DeliveryPath(self)
            self._handlers[Responded] = _journey.ResponsePath(self)
            self._handlers[Activated] = _journey.ActivationPath(self)
            self._handlers[ProfileUpdated] = _journey.ProfilePath(self)
            # handle() itself: the dispatch on the event's class, without a Python frame per event
            self.handle = _journey.Dispatch(self)  # type: ignore[method-assign]

    # --- the engine face ------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Command]:
        out: list[Command] = []
        handler = self._handlers.get(event.__class__)
        if handler is None:
            handler = self._handler_of(event)
            if handler is None:
                return out
        handler(event, now, out)
        return out

    def _handler_of(self, event: Event) -> _Handler | None:
        """The handler of an instance of a subclass of an event type (``handle`` looks the exact type
        up), in the order of the event types."""
        for kind, handler in self._handlers.items():
            if isinstance(event, kind):
                return handler
        return None

    def next_deadline(self) -> float | None:
        deadlines = self._deadlines
        times = deadlines.times
        while times:
            when, key = deadlines.first()
            offer = self._offers.get(key)
            if offer is None or offer.queued != when:
                deadlines.pop()  # stale: the offer closed, or an earlier entry of it is queued
                continue
            deadline = offer.deadline
            if deadline is None:
                deadlines.pop()  # nothing to wait for any more (activating)
                offer.queued = None
                continue
            if deadline == when:
                return when
            deadlines.pop()  # the deadline moved later: queue it there (_arm)
            deadlines.push(deadline, key)
            offer.queued = deadline
        return None

    def offer(self, key: str) -> OfferView | None:
        offer = self._offers.get(key)
        if offer is None:
            return None
        return OfferView(
            offer.offer_id,
            offer.msisdn,
            offer.campaign.id,
            offer.variant,
            offer.state,
            offer.step,
            offer.offered.options,
            offer.deadline,
            offer.expires_at,
        )

    def open_offers(self, msisdn: str) -> list[OfferView]:
        subscriber = self._subscribers.get(msisdn)
        if subscriber is None:
            return []
        return [view for key in subscriber.offers if (view := self.offer(key)) is not None]

    def __len__(self) -> int:
        """Tracked subscribers."""
        return len(self._subscribers)

    # --- events other than the journey's ---------------------------------------------------------

    def _on_tick(self, _event: Tick, now: float, out: list[Command]) -> None:
        self._tick(now, out)
        self._maybe_prune(now)

    def _maybe_prune(self, now: float) -> None:
        if self._pruned_at is None or now - self._pruned_at >= _PRUNE_EVERY:
            self._prune(now)

    def _on_profile(self, event: ProfileUpdated, _now: float, _out: list[Command]) -> None:
        profile = event.profile
        subscriber = self._subscribers.get(profile.msisdn)
        if subscriber is None:
            subscriber = self._subscribers[profile.msisdn] = _Subscriber()
        subscriber.profile = profile
        if self.accelerated:  # its C paths untrack open offers while the profile cannot lead back to them
            _journey.track_open_offers(self, subscriber)

    @staticmethod
    def _purchased(event: Purchased, now: float, out: list[Command]) -> None:
        out.append(
            _record(
                RecordKind.PURCHASE,
                now,
                event.msisdn,
                None,
                None,
                None,
                {"package_id": event.package_id, "price": str(event.price), "at": event.at},
            )
        )

    def _offer_dropped(self, event: OfferDropped, now: float, out: list[Command]) -> None:
        """The trail's end of an offer a reload left out (``restore`` has forgotten it already). Should
        this engine still have it open (a replay under a directory that keeps the campaign), it is
        closed as it was when the event was stored."""
        offer = self._offers.get(event.offer_id)
        if offer is not None:
            self._close(offer, "dropped", now, out, reason=event.reason)
            return
        out.append(
            _record(
                _CLOSED,
                now,
                event.msisdn,
                event.campaign_id,
                event.variant,
                event.offer_id,
                {"outcome": "dropped", "reason": event.reason},
            )
        )

    # --- triggers -------------------------------------------------------------------------------

    def _subscriber(self, msisdn: str) -> _Subscriber:
        subscriber = self._subscribers.get(msisdn)
        if subscriber is None:
            subscriber = self._subscribers[msisdn] = _Subscriber()
        return subscriber

    def _zone_of(self, subscriber: _Subscriber) -> str:
        profile = subscriber.profile
        return self._zone if profile is None else self._profile_zone(profile)

    def _profile_zone(self, profile: Profile) -> str:
        """The profile's zone, or the policy's default when it names none or one this system does not
        know (as the contact policy does): a bad zone from billing must not stop the subscriber's events."""
        zone = profile.timezone
        return zone if zone and _known_zone(zone) else self._zone

    def _trigger(self, trigger: TriggerRaised, now: float, out: list[Command]) -> None:
        found = self._by_trigger.get(trigger.kind)
        if found is None:
            return  # no campaign starts on this trigger: nothing to decide, nothing to record
        campaigns, selective = found
        if selective:
            campaigns = tuple(c for c in campaigns if c.matches(trigger))
            if not campaigns:
                return
        msisdn = trigger.msisdn
        subscriber = self._subscribers.get(msisdn)
        if subscriber is None:
            subscriber = self._subscribers[msisdn] = _Subscriber()
        trigger_id = trigger.trigger_id
        seen = subscriber.triggers
        if trigger_id in seen:
            return  # a re-delivery: already decided
        subscriber.triggers = (*seen[-(_RECENT_TRIGGERS - 1) :], trigger_id) if seen else (trigger_id,)
        event_time = trigger.event_time
        out.append(
            _record(
                _TRIGGER,
                now,
                msisdn,
                None,
                None,
                None,
                {
                    "trigger_id": trigger_id,
                    "kind": trigger.kind._value_,  # .value, without the enum property's call
                    "package_id": trigger.package_id,
                    "level": trigger.level,
                    "event_time": event_time,
                },
            )
        )
        profile = subscriber.profile
        if profile is None:
            profile = _UNKNOWN_PROFILE  # billing never described this subscriber: rules see the defaults
            zone = self._zone
        else:
            zone = self._profile_zone(profile)
        candidates: list[tuple[_Campaign, str | None, float]] = []
        controls: set[str] | None = None
        for campaign in campaigns:
            assign = campaign.assign
            variant: str | None = None
            delay = 0.0
            if assign is not None:
                arm = assign(msisdn)
                if arm.campaign != campaign.id:
                    experiment = assign.experiment
                    if arm.control and (controls is None or experiment.id not in controls):
                        eligible = campaign.eligible
                        reason = None if eligible is None else eligible(profile, trigger, now, zone)
                        if reason is None and self._control_due(subscriber, experiment, now):
                            if controls is None:
                                controls = set()
                            controls.add(experiment.id)
                            out.append(
                                _record(
                                    _ASSIGNED,
                                    now,
                                    msisdn,
                                    None,
                                    arm.name,
                                    None,
                                    {
                                        "experiment": experiment.id,
                                        "control": True,
                                        "trigger_id": trigger_id,
                                        "event_time": event_time,
                                    },
                                )
                            )
                    continue
                variant, delay = arm.name, arm.delay
                out.append(
                    _record(
                        _ASSIGNED,
                        now,
                        msisdn,
                        campaign.id,
                        variant,
                        None,
                        {"experiment": assign.experiment.id, "control": False, "trigger_id": trigger_id},
                    )
                )
            eligible = campaign.eligible
            reason = None if eligible is None else eligible(profile, trigger, now, zone)
            if reason is None and (subscriber.offers or campaign.cooldown):
                reason = self._busy(subscriber, campaign, now)
            if reason is not None:
                out.append(
                    _record(
                        _SUPPRESSED,
                        now,
                        msisdn,
                        campaign.id,
                        variant,
                        None,
                        {"reason": reason, "stage": "trigger"},
                    )
                )
                continue
            candidates.append((campaign, variant, delay))
        if not candidates:
            return
        if len(candidates) == 1:
            winner = candidates[0]
        else:  # arbitration (experiments.arbitrate): priority, then value, then campaign id
            winner = min(candidates, key=lambda candidate: candidate[0].rank)
            for candidate in candidates:
                if candidate is not winner:
                    out.append(
                        _record(
                            _SUPPRESSED,
                            now,
                            msisdn,
                            candidate[0].id,
                            candidate[1],
                            None,
                            {"reason": _ARBITRATION_REASON % winner[0].id, "stage": "trigger"},
                        )
                    )
        campaign, variant, delay = winner
        hashed = campaign.offer_hash.copy()  # model.offer_id(campaign.id, trigger_id)
        hashed.update(trigger_id.encode())
        key = hashed.hexdigest()
        if key in self._offers:
            return  # the same trigger once more under another id (cannot happen with recent ids; defensive)
        offer = _Offer(key, campaign, variant, trigger, subscriber)
        self._offers[key] = offer
        subscriber.offers = (*subscriber.offers, key)
        _remember_start(subscriber, campaign.id, now)
        out.append(
            _record(
                _ELIGIBLE,
                now,
                msisdn,
                campaign.id,
                variant,
                key,
                {"trigger_id": trigger_id, "event_time": event_time, "delay": delay},
            )
        )
        if delay > 0:
            offer.state = _DELAYED
            self._arm(offer, now + delay)
            out.append(
                _record(
                    _DEFERRED,
                    now,
                    msisdn,
                    campaign.id,
                    variant,
                    key,
                    {"until": now + delay, "reason": "experiment delay"},
                )
            )
            return
        self._score(offer, now, out)

    def _control_due(self, subscriber: _Subscriber, experiment: ExperimentConfig, now: float) -> bool:
        """Whether a control subscriber counts as a new trial: not within the window of the last one (the
        longest time a treated subscriber's offer could be open or cooling down), as a treated subscriber
        would be held back by the open offer or the cooldown; then remember this one."""
        last = _last_start(subscriber, experiment.id)
        if last is not None and now - last < self._control_windows[experiment.id]:
            return False
        _remember_start(subscriber, experiment.id, now)
        return True

    def _busy(self, subscriber: _Subscriber, campaign: _Campaign, now: float) -> str | None:
        offers = self._offers
        campaign_id = campaign.id
        for key in subscriber.offers:
            offer = offers.get(key)
            if offer is not None and offer.campaign.id == campaign_id:
                return f"offer {key} of this campaign is still open"
        if campaign.cooldown:
            last = _last_start(subscriber, campaign_id)
            if last is not None and now - last < campaign.cooldown:
                return f"cooldown: last offer {now - last:.0f} s ago"
        return None

    # --- scoring and options --------------------------------------------------------------------

    def _score(self, offer: _Offer, now: float, out: list[Command]) -> None:
        campaign = offer.campaign
        if campaign.offer is None:
            self._start_step(offer, 0, now, out)
            return
        scoring = campaign.scoring
        if not scoring.enabled:
            fallback = scoring.fallback
            if fallback is None:
                self._size(offer, None, None, now, out)
            else:
                self._size(offer, fallback.balance, fallback.credit_limit, now, out)
            return
        offer.state = _SCORING
        timeout = scoring.timeout
        self._arm(offer, now + timeout)
        out.append(_query_credit(offer.offer_id + ":score", offer.msisdn, timeout))

    def _scoring(self, request_id: str) -> _Offer | None:
        """The offer waiting for the credit score ``request_id`` answers (None: late or unknown)."""
        key, _, tag = request_id.rpartition(":")
        offer = self._offers.get(key)
        if offer is None or tag != "score" or offer.state is not _SCORING:
            return None  # late (after the timeout) or unknown: the offer went on without it
        return offer

    def _credit_scored(self, event: CreditScored, now: float, out: list[Command]) -> None:
        offer = self._scoring(event.request_id)
        if offer is None:
            return
        out.append(
            _record(
                _SCORED,
                now,
                offer.msisdn,
                offer.campaign.id,
                offer.variant,
                offer.offer_id,
                {"balance": str(event.balance), "credit_limit": str(event.credit_limit)},
            )
        )
        self._size(offer, event.balance, event.credit_limit, now, out)

    def _credit_failed(self, event: CreditFailed, now: float, out: list[Command]) -> None:
        offer = self._scoring(event.request_id)
        if offer is not None:
            self._scoring_failed(offer, event.reason, now, out)

    def _scoring_failed(self, offer: _Offer, reason: str, now: float, out: list[Command]) -> None:
        fallback = offer.campaign.scoring.fallback
        out.append(
            _record(
                _SCORED,
                now,
                offer.msisdn,
                offer.campaign.id,
                offer.variant,
                offer.offer_id,
                {"failed": reason, "fallback": fallback is not None},
            )
        )
        if fallback is None:
            self._close(offer, "suppressed", now, out, reason=f"credit scoring failed: {reason}")
            return
        self._size(offer, fallback.balance, fallback.credit_limit, now, out)

    def _size(
        self, offer: _Offer, balance: Decimal | None, credit: Decimal | None, now: float, out: list[Command]
    ) -> None:
        """The affordable options, smallest first: balance first, then credit, per the offer's payment."""
        campaign = offer.campaign
        assert campaign.offer is not None
        payment = campaign.payment
        # the payment of each package (0 none, 1 balance, 2 credit) as the digits of one number: the
        # campaign's option sets are kept by it
        pattern = 0
        for package in campaign.packages:
            price = package.price
            pattern *= 3
            if balance is None:  # no scoring at all: billing decides at activation
                pattern += 2 if payment == "credit" else 1
            elif payment != "credit" and price <= balance:
                pattern += 1
            elif payment != "balance" and credit is not None and price <= credit:
                pattern += 2
        offered = campaign.sized.get(pattern)
        if offered is None:
            offered = self._sized(campaign, pattern)
        offer.offered = offered
        if not offered.options:
            self._close(offer, "suppressed", now, out, reason="nothing affordable")
            return
        self._start_step(offer, 0, now, out)

    def _sized(self, campaign: _Campaign, pattern: int) -> _OptionSet:
        """The options of an affordability pattern (``_size``), kept by the campaign."""
        digits: list[int] = []
        rest = pattern
        for _ in campaign.packages:
            rest, digit = divmod(rest, 3)
            digits.append(digit)
        digits.reverse()  # the first package is the most significant digit
        options: list[OfferOption] = []
        for package, digit in zip(campaign.packages, digits, strict=True):
            if digit:
                payment = Payment.BALANCE if digit == 1 else Payment.CREDIT
                option = self._options.get((package.id, payment))
                if option is None:
                    option = OfferOption(
                        package.id, package.volume_mb, package.price, payment, package.ussd_code
                    )
                    self._options[package.id, payment] = option
                options.append(option)
        offered = self._option_set(tuple(options))
        if len(campaign.sized) < _SIZED_LIMIT:
            campaign.sized[pattern] = offered
        return offered

    def _option_set(self, options: tuple[OfferOption, ...]) -> _OptionSet:
        """The shared ``_OptionSet`` of these very option objects (the engine makes one object per
        package and payment, ``restore`` one per distinct row), or a new one when too many are kept."""
        key = tuple(map(id, options))  # the set holds the options, so no other object takes their ids
        offered = self._option_sets.get(key)
        if offered is None:
            offered = _OptionSet(options)
            if len(self._option_sets) < _OPTION_SETS_LIMIT:
                self._option_sets[key] = offered
        return offered

    def _largest(self, offered: _OptionSet) -> _OptionSet:
        """The set of the largest option alone (volume, then price; the first of equal ones)."""
        largest = offered.largest
        if largest is None:
            best = max(offered.options, key=lambda o: (o.volume_mb, o.price))
            largest = offered.largest = self._option_set((best,))
        return largest

    def _fields(self, option: OfferOption) -> Mapping[str, str]:
        """``texts.option_fields`` of an option (read only), kept per option object: offers share them."""
        kept = self._option_fields.get(id(option))
        if kept is not None:
            return kept[1]  # the entry holds the option, so no other object has its id
        fields = option_fields(option, self._currency)
        if len(self._option_fields) < _OPTION_SETS_LIMIT:
            self._option_fields[id(option)] = (option, fields)
        return fields

    # --- the journey ----------------------------------------------------------------------------

    def _start_step(self, offer: _Offer, index: int, now: float, out: list[Command]) -> None:
        steps = offer.campaign.steps
        if index >= len(steps):
            expires_at = offer.expires_at
            if offer.offered.options and expires_at is not None and expires_at > now:
                offer.state = _OPEN
                offer.step = index
                self._arm(offer, expires_at)
            else:
                self._close(offer, "expired" if expires_at is not None else "completed", now, out)
            return
        step = steps[index]
        offer.step = index
        if step.after > 0 and not offer.step_ready:
            offer.state = _STEP_PENDING
            offer.step_ready = True
            self._arm(offer, now + step.after)
            return
        offer.step_ready = False
        self._send_step(offer, step, now, out)

    def _send_step(self, offer: _Offer, step: _Step, now: float, out: list[Command]) -> None:
        msisdn = offer.msisdn
        profile = offer.subscriber.profile
        if profile is None:
            profile = _UNKNOWN_PROFILE
            zone = self._zone
        else:
            zone = self._profile_zone(profile)
        campaign = offer.campaign
        key = offer.offer_id
        eligible = campaign.eligible
        if eligible is not None:
            reason = eligible(profile, offer.trigger, now, zone)
            if reason is not None:  # re-checked at send time
                self._close(offer, "suppressed", now, out, reason=f"no longer eligible: {reason}")
                return
        index = step.index
        if step.stk and not profile.stk_capable:
            out.append(
                _record(
                    _SUPPRESSED,
                    now,
                    msisdn,
                    campaign.id,
                    offer.variant,
                    key,
                    {"reason": "handset has no SIM toolkit", "step": index},
                )
            )
            self._start_step(offer, index + 1, now, out)
            return
        policy = self.policy
        plan = step.plan
        if plan is None:
            verdict = policy.check(msisdn, step.channel, step.purpose, now, zone)  # raises: unknown purpose
        else:  # counted at once when allowed: nothing below can fail before the command goes out
            verdict = policy.contact_planned(plan, msisdn, now, zone)
        if verdict is not ALLOWED and self._not_allowed(offer, step, verdict, now, out):
            return
        offered = offer.offered
        mode = step.mode
        if mode == "none" or not offered.options:
            shown = _NO_OPTIONS
        elif mode == "largest":
            shown = offered.largest or self._largest(offered)
        else:
            shown = offered
        options = shown.options
        trigger = offer.trigger
        text = self._text(step, shown, trigger.attributes.get("days_left", ""))
        command_id = key + step.suffix
        if plan is None:
            policy.record(msisdn, step.channel, step.purpose, now, zone)
        if step.stk:
            offer.pushed = shown
            out.append(_push_stk(command_id, key, msisdn, campaign.id, step.style, options, text))
        else:
            offered_id = key if options else None
            out.append(_send_sms(command_id, msisdn, campaign.id, text, offered_id, step.promotional))
        out.append(
            _record(
                _CONTACT,
                now,
                msisdn,
                campaign.id,
                offer.variant,
                key,
                {
                    "channel": step.channel_value,
                    "step": index,
                    "command_id": command_id,
                    "options": list(shown.package_ids),
                    "latency": now - trigger.event_time,
                    "policy_version": policy.version,
                },
            )
        )
        if options:
            expires_at = offer.expires_at
            if expires_at is None:
                assert campaign.offer is not None
                expires_at = offer.expires_at = now + campaign.offer.expires_after
            offer.state = _AWAITING
            offer.delivered = False
            deadline = now + step.hard_cap
            self._arm(offer, expires_at if expires_at < deadline else deadline)  # min(), the first of equals
        else:
            self._start_step(offer, index + 1, now, out)  # informational: no answer to wait for

    def _not_allowed(
        self, offer: _Offer, step: _Step, verdict: Verdict, now: float, out: list[Command]
    ) -> bool:
        """A step the contact policy held back: deferred (the offer waits for the time it names) or
        suppressed (the journey goes on with the next step). True when handled."""
        campaign_id = offer.campaign.id
        index = step.index
        if isinstance(verdict, Deferred):
            offer.state = _STEP_PENDING
            offer.step_ready = True
            self._arm(offer, verdict.until)
            out.append(
                _record(
                    _DEFERRED,
                    now,
                    offer.msisdn,
                    campaign_id,
                    offer.variant,
                    offer.offer_id,
                    {"until": verdict.until, "reason": verdict.reason, "step": index},
                )
            )
            return True
        if isinstance(verdict, Suppressed):
            out.append(
                _record(
                    _SUPPRESSED,
                    now,
                    offer.msisdn,
                    campaign_id,
                    offer.variant,
                    offer.offer_id,
                    {
                        "reason": verdict.reason,
                        "rule": verdict.rule,
                        "policy_version": self.policy.version,
                        "step": index,
                    },
                )
            )
            self._start_step(offer, index + 1, now, out)
            return True
        return False

    def _text(self, step: _Step, shown: _OptionSet, days_left: str) -> str:
        """The step's text for these options; cached, since offers repeat the same few option sets."""
        key = (step, shown, days_left)
        text = self._texts.get(key)
        if text is None:
            config = step.config
            text = render_step_text(
                config.text,
                shown.options,
                self._currency,
                config.option_format,
                config.option_separator,
                days_left=days_left,
            )
            if len(self._texts) >= _TEXT_CACHE_LIMIT:
                self._texts.clear()
            self._texts[key] = text
        return text

    def _awaited(self, command_id: str) -> tuple[_Offer, _Step] | None:
        """The offer and step a receipt or a submit failure is for, when that step is still awaited."""
        key, _, tag = command_id.rpartition(":")
        offer = self._offers.get(key)
        if offer is None or offer.state is not _AWAITING or tag != str(offer.step):
            return None  # a receipt for an earlier step, a confirmation, or a closed offer
        return offer, offer.campaign.steps[offer.step]

    def _delivered(self, event: DeliveryReported, now: float, out: list[Command]) -> None:
        awaited = self._awaited(event.command_id)
        if awaited is None:
            return
        offer, step = awaited
        expires_at = offer.expires_at
        assert expires_at is not None
        delivered = bool(event.delivered)
        out.append(
            _record(
                _DELIVERED,
                now,
                offer.msisdn,
                offer.campaign.id,
                offer.variant,
                offer.offer_id,
                {"step": offer.step, "delivered": delivered, "state": event.state},
            )
        )
        if delivered:
            offer.delivered = True
            deadline = now + step.wait
            self._arm(offer, expires_at if expires_at < deadline else deadline)
            return
        self._start_step(offer, offer.step + 1, now, out)

    def _submit_failed(self, event: SubmitFailed, now: float, out: list[Command]) -> None:
        awaited = self._awaited(event.command_id)
        if awaited is None:
            return
        offer = awaited[0]
        assert offer.expires_at is not None
        out.append(
            _record(
                _FAILED,
                now,
                offer.msisdn,
                offer.campaign.id,
                offer.variant,
                offer.offer_id,
                {"step": offer.step, "delivered": False, "state": event.reason},
            )
        )
        self._start_step(offer, offer.step + 1, now, out)

    # --- responses and fulfilment ---------------------------------------------------------------

    def _response(self, event: Responded, now: float, out: list[Command]) -> None:
        msisdn = event.msisdn
        subscriber = self._subscribers.get(msisdn)
        if subscriber is None:
            subscriber = self._subscribers[msisdn] = _Subscriber()
        response_id = event.response_id
        seen = subscriber.responses
        if response_id in seen:
            return  # the same answer delivered again (an SMSC re-delivery): already handled
        subscriber.responses = (*seen[-(_RECENT_RESPONSES - 1) :], response_id)
        key = event.offer_id
        offer = self._offer_with(subscriber, event.option_id) if key is None else self._offers.get(key)
        if offer is None or offer.msisdn != msisdn:
            self._reject_response(event, subscriber, now, out)
            return
        campaign = offer.campaign
        if campaign.offer is None:  # an informational journey offers nothing to take
            self._reject_response(event, subscriber, now, out)
            return
        texts = campaign.offer.texts
        state = offer.state
        if state is _ACTIVATING:
            self._answer(offer, event, now, out, refused="duplicate", text=texts.duplicate)
            return
        expires_at = offer.expires_at
        if (state is not _AWAITING and state is not _OPEN) or expires_at is None:
            self._answer(offer, event, now, out, refused="not offered yet", text=texts.not_offered)
            return
        if now >= expires_at:
            self._close(offer, "expired", now, out)
            self._answer(offer, event, now, out, refused="expired", text=texts.expired)
            return
        channel = event.channel
        if channel is _STK_DECLINED:
            self._answer(offer, event, now, out, refused=None, text=texts.declined)
            self._close(offer, "declined", now, out)
            return
        option_id = event.option_id
        if channel is _STK_OK and option_id is None:
            pushed = offer.pushed.options
            option = pushed[0] if len(pushed) == 1 else None
        else:
            option = offer.offered.by_name.get(option_id) if option_id is not None else None
        if option is None:
            self._answer(offer, event, now, out, refused="not offered", text=texts.not_offered)
            return
        fields = self._fields(option)
        offer.state = _ACTIVATING
        offer.deadline = None
        offer.chosen = option
        key = offer.offer_id
        package_id = option.package_id
        out.append(
            _record(
                _RESPONSE,
                now,
                msisdn,
                campaign.id,
                offer.variant,
                key,
                {
                    "response_id": response_id,
                    "channel": channel._value_,
                    "option": option_id,
                    "package_id": package_id,
                    "latency": now - offer.trigger.event_time,
                },
            )
        )
        out.append(
            _record(
                _ACTIVATION,
                now,
                msisdn,
                campaign.id,
                offer.variant,
                key,
                {"package_id": package_id, "payment": option.payment._value_, "price": str(option.price)},
            )
        )
        out.append(_activate(key, msisdn, package_id, option.payment, option.price))
        out.append(_reply(response_id, msisdn, channel, True, texts.accepted.format_map(fields)))

    @staticmethod
    def _answer(
        offer: _Offer, event: Responded, now: float, out: list[Command], *, refused: str | None, text: str
    ) -> None:
        """Record the answer and reply: ``refused`` says why it activates nothing (None: a decline)."""
        if refused is None:
            kind, detail, accepted = _RESPONSE, {**_response_detail(event), "declined": True}, True
        else:
            kind, detail, accepted = (
                _REJECTED_RESPONSE,
                {**_response_detail(event), "reason": refused},
                False,
            )
        out.append(_record(kind, now, offer.msisdn, offer.campaign.id, offer.variant, offer.offer_id, detail))
        out.append(_reply(event.response_id, offer.msisdn, event.channel, accepted, text))

    def _offer_with(self, subscriber: _Subscriber, option_id: str | None) -> _Offer | None:
        """The newest open offer naming ``option_id`` (a package id or its USSD code)."""
        if option_id is None:
            return None  # names no option
        offers = self._offers
        for key in reversed(subscriber.offers):
            offer = offers.get(key)
            if offer is not None and offer.expires_at is not None and option_id in offer.offered.by_name:
                return offer
        return None

    def _reject_response(
        self, event: Responded, subscriber: _Subscriber, now: float, out: list[Command]
    ) -> None:
        """A response to no open offer: a closed one (expired, taken, declined) or none at all."""
        closed = next(
            (
                entry
                for entry in reversed(subscriber.closed)
                if entry[0] == event.offer_id or (event.offer_id is None and event.option_id in entry[2])
            ),
            None,
        )
        texts = _DEFAULT_TEXTS
        variant: str | None = None
        if closed is None:
            reason, text, key, campaign_id = "no open offer", texts.no_offer, event.offer_id, None
        else:
            key, outcome, _packages, campaign_id, variant = closed[:5]
            campaign = self._compiled.get(campaign_id)
            if campaign is not None and campaign.offer is not None:
                texts = campaign.offer.texts
            if outcome == "activated":
                reason, text = "duplicate", texts.duplicate
            elif outcome == "failed" and len(closed) > 5:
                # the activation failed: saying "expired" would hide it (and that nothing was charged)
                failed = closed[5]
                reason, text = outcome, texts.failed.format_map(self._fields(failed))
            else:
                reason, text = outcome, texts.expired
        detail = _response_detail(event)
        out.append(
            _record(
                _REJECTED_RESPONSE,
                now,
                event.msisdn,
                campaign_id,
                variant,
                key,
                {**detail, "reason": reason},
            )
        )
        out.append(_reply(event.response_id, event.msisdn, event.channel, False, text))

    def _activation(self, event: Activated | ActivationFailed, now: float, out: list[Command]) -> None:
        offer = self._offers.get(event.offer_id)
        if offer is None or offer.state is not _ACTIVATING:
            return  # billing repeated itself (idempotent): already recorded
        config = offer.campaign.offer
        assert config is not None
        option = offer.chosen
        assert option is not None  # set with the ACTIVATING state
        fields = self._fields(option)
        zone = self._zone_of(offer.subscriber)
        if isinstance(event, Activated):
            out.append(
                _record(
                    _FULFILLED,
                    now,
                    offer.msisdn,
                    offer.campaign.id,
                    offer.variant,
                    offer.offer_id,
                    {
                        "package_id": event.package_id,
                        "payment": event.payment.value,
                        "price": str(event.price),
                    },
                )
            )
            text = config.texts.confirmation.format_map(
                {**fields, "payment": event.payment.value, "price": f"{event.price:.2f}"}
            )
        else:
            out.append(
                _record(
                    _FAILED,
                    now,
                    offer.msisdn,
                    offer.campaign.id,
                    offer.variant,
                    offer.offer_id,
                    {"reason": event.reason, "stage": "activation"},
                )
            )
            text = config.texts.failed.format_map(fields)
        self.policy.record(offer.msisdn, Channel.SMS, TRANSACTIONAL, now, zone)
        out.append(
            _send_sms(
                f"{offer.offer_id}:confirm", offer.msisdn, offer.campaign.id, text, offer.offer_id, False
            )
        )
        if isinstance(event, Activated):
            self._close(offer, "activated", now, out)
            return
        self._close(offer, "failed", now, out)
        # its closed entry (the latest) keeps the option that failed: a late response is told that
        # (_reject_response). Here rather than in _close, which every journey's end goes through.
        subscriber = offer.subscriber
        *kept, entry = subscriber.closed
        subscriber.closed = (*kept, (*entry[:5], option))

    # --- time -----------------------------------------------------------------------------------

    def _arm(self, offer: _Offer, when: float) -> None:
        """Set the offer's deadline. The heap keeps at most one live entry per offer (``queued``): a
        later deadline leaves the earlier entry in place, which requeues itself when it comes up, so an
        offer moving through its steps costs a push per step only when its deadline comes sooner."""
        offer.deadline = when
        queued = offer.queued
        if queued is None or when < queued:
            offer.queued = when
            self._deadlines.push(when, offer.offer_id)

    def _tick(self, now: float, out: list[Command]) -> None:
        deadlines = self._deadlines
        times = deadlines.times
        offers = self._offers
        while times and times[0] <= now:
            when, key = deadlines.pop()
            offer = offers.get(key)
            if offer is None or offer.queued != when:
                continue  # closed, or superseded by an earlier entry
            offer.queued = None
            deadline = offer.deadline
            if deadline is None:
                continue
            if deadline != when:
                # its deadline moved later: requeue it there, so that offers due in the same Tick are
                # handled in deadline order whether or not next_deadline() looked at the heap first
                offer.queued = deadline
                deadlines.push(deadline, key)
                continue
            offer.deadline = None
            self._due(offer, now, out)

    def _due(self, offer: _Offer, now: float, out: list[Command]) -> None:
        # ``now``, not the deadline: a Tick that comes late (after a restart) acts at the real time, so
        # quiet hours and caps hold; the Tick and its ``now`` are in the event log, so a replay agrees
        state = offer.state
        if state is _AWAITING:
            if offer.expires_at is not None and now >= offer.expires_at:
                self._close(offer, "expired", now, out)
            else:
                self._start_step(offer, offer.step + 1, now, out)
        elif state is _STEP_PENDING:
            self._start_step(offer, offer.step, now, out)
        elif state is _DELAYED:
            self._score(offer, now, out)
        elif state is _SCORING:
            self._scoring_failed(offer, "timed out", now, out)
        elif state is _OPEN:
            self._close(offer, "expired", now, out)

    def _close(
        self, offer: _Offer, outcome: str, now: float, out: list[Command], *, reason: str | None = None
    ) -> None:
        key = offer.offer_id
        del self._offers[key]
        offer.deadline = None
        subscriber = offer.subscriber
        open_offers = subscriber.offers
        subscriber.offers = () if open_offers == (key,) else tuple(k for k in open_offers if k != key)
        campaign_id = offer.campaign.id
        variant = offer.variant
        subscriber.remember_closed((key, outcome, offer.offered.names, campaign_id, variant))
        detail: dict[str, object] = {"outcome": outcome}
        if reason is not None:
            detail["reason"] = reason
            out.append(
                _record(
                    _SUPPRESSED,
                    now,
                    offer.msisdn,
                    campaign_id,
                    variant,
                    key,
                    {"reason": reason, "stage": "offer"},
                )
            )
        out.append(_record(_CLOSED, now, offer.msisdn, campaign_id, variant, key, detail))

    # --- checkpoint -----------------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        """Let the contact policy forget the periods that are over (no later decision changes)."""
        self._pruned_at = now
        self.policy.prune(now)

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain JSON-able data (module docstring, "Snapshot")."""
        subscribers = [
            [
                msisdn,
                None if subscriber.profile is None else _profile_to_row(subscriber.profile),
                list(subscriber.triggers),
                list(subscriber.responses),
                list(subscriber.offers),
                [_closed_to_row(entry) for entry in subscriber.closed],
                [[key, when] for key, when in subscriber.last_start],
            ]
            for msisdn, subscriber in self._subscribers.items()
        ]
        return {
            "version": SNAPSHOT_VERSION,
            "pruned_at": self._pruned_at,
            "policy": self.policy.snapshot(),
            "subscribers": subscribers,
            "offers": [_offer_to_row(offer) for offer in self._offers.values()],
        }

    def restore(self, snapshot: Mapping[str, Any]) -> list[str]:
        """Replace the state with one ``snapshot()`` returned (possibly through JSON, possibly under a
        changed campaign directory); the ids of the offers left out because their campaign is gone or no
        longer fits them (module docstring). ``dropped`` then holds an ``OfferDropped`` event for each,
        with the reason: handed to ``handle`` (stored through the runner like any event) they record
        each offer's end in the trail. ``ConfigError`` says what is wrong with a bad snapshot, and then
        the state is unchanged."""
        if not isinstance(snapshot, Mapping) or snapshot.get("version") != SNAPSHOT_VERSION:
            raise ConfigError(f"engine snapshot: not a version {SNAPSHOT_VERSION} snapshot")
        pruned_at = snapshot.get("pruned_at")
        if not _is_time(pruned_at):
            raise ConfigError("engine snapshot: pruned_at is not a number or null")
        policy = snapshot.get("policy")
        if not isinstance(policy, Mapping):
            raise ConfigError("engine snapshot: policy is not an object")
        rows = snapshot.get("subscribers")
        if not isinstance(rows, list):
            raise ConfigError("engine snapshot: subscribers is not a list")
        subscribers: dict[str, _Subscriber] = {}
        options: dict[tuple[object, ...], OfferOption] = {}  # one object per distinct option

        def option_of(where: str, row: object) -> OfferOption:
            return self._option_from_row(where, row, options)

        for index, row in enumerate(rows):
            msisdn, subscriber = _subscriber_from_row(index, row, option_of)
            if msisdn in subscribers:
                raise ConfigError(f"engine snapshot: subscriber {index} repeats {msisdn}")
            subscribers[msisdn] = subscriber
        rows = snapshot.get("offers")
        if not isinstance(rows, list):
            raise ConfigError("engine snapshot: offers is not a list")
        campaigns: dict[str, _Campaign | None] = {}
        offers: dict[str, _Offer] = {}
        owners: dict[str, str] = {}  # offer id -> msisdn, dropped offers included
        dropped: list[OfferDropped] = []
        for index, row in enumerate(rows):
            if not (isinstance(row, list) and len(row) == _OFFER_FIELDS and isinstance(row[1], str)):
                raise ConfigError(f"engine snapshot: offer {index} is not a list of {_OFFER_FIELDS} fields")
            campaign_id = row[1]
            if campaign_id not in campaigns:
                campaigns[campaign_id] = self._compiled.get(campaign_id)
            key, msisdn, offer, names = self._offer_from_row(index, row, campaigns[campaign_id], options)
            if key in owners:
                raise ConfigError(f"engine snapshot: offer {index} repeats {key}")
            owner = subscribers.get(msisdn)
            if owner is None or key not in owner.offers:
                raise ConfigError(f"engine snapshot: offer {index} ({key}) is not open for {msisdn}")
            owners[key] = msisdn
            misfit = (
                f"campaign {campaign_id} is no longer in the campaign directory"
                if offer is None
                else _misfit(offer)
            )
            if misfit is not None:
                dropped.append(OfferDropped(key, msisdn, campaign_id, row[2], misfit))
                # remembered as closed: its USSD codes, dialled from the SMS it sent, are then told the
                # offer ended (as an expired one is), not that there is no offer at all
                owner.remember_closed((key, "dropped", names, campaign_id, row[2]))
            elif offer is not None:
                offer.subscriber = owner
                offers[key] = offer
        for msisdn, subscriber in subscribers.items():
            for key in subscriber.offers:
                if owners.get(key) != msisdn:
                    raise ConfigError(f"engine snapshot: subscriber {msisdn} lists {key}, not an open offer")
            if dropped:
                subscriber.offers = tuple(key for key in subscriber.offers if key in offers)
        self.policy.restore(policy)  # the last check: it raises before changing anything
        self._subscribers = subscribers
        self._offers = offers
        deadlines = _Deadlines()
        for key, offer in offers.items():
            if offer.queued is not None:
                deadlines.push(offer.queued, key)
        self._deadlines = deadlines
        self._pruned_at = None if pruned_at is None else float(pruned_at)
        self.dropped = tuple(dropped)
        return [event.offer_id for event in dropped]

    def _offer_from_row(
        self,
        index: int,
        row: list[Any],
        campaign: _Campaign | None,
        shared: dict[tuple[object, ...], OfferOption],
    ) -> tuple[str, str, _Offer | None, tuple[str, ...]]:
        """The id, msisdn and offer of one snapshot row (no offer when ``campaign`` is gone), and the
        names of its options (``_OptionSet.names``: what a closed offer remembers)."""
        where = f"engine snapshot: offer {index}"
        key, _campaign_id, variant, trigger_json, state_name, step, step_ready, option_rows = row[:8]
        chosen, pushed, deadline, queued, expires_at, delivered = row[8:]
        if not isinstance(key, str) or not (variant is None or isinstance(variant, str)):
            raise ConfigError(f"{where}: the offer id must be a string, the variant a string or null")
        try:
            trigger = event_from_json(trigger_json)
        except DecodeError as exc:
            raise ConfigError(f"{where}: trigger: {exc}") from None
        if not isinstance(trigger, TriggerRaised):
            raise ConfigError(f"{where}: trigger is a {type(trigger).__name__}, not a TriggerRaised")
        state = _STATES.get(state_name) if isinstance(state_name, str) else None
        if state is None:
            raise ConfigError(f"{where}: state {state_name!r} is not one of {list(_STATES)}")
        if not (_is_count(step) and isinstance(step_ready, bool) and isinstance(delivered, bool)):
            raise ConfigError(f"{where}: step must be a whole number >= 0, step_ready and delivered booleans")
        if not isinstance(option_rows, list):
            raise ConfigError(f"{where}: options is not a list")
        options = tuple(self._option_from_row(where, row, shared) for row in option_rows)
        if not (chosen is None or (_is_count(chosen) and chosen < len(options))):
            raise ConfigError(f"{where}: chosen is not null or the index of an option")
        if not (isinstance(pushed, list) and all(_is_count(i) and i < len(options) for i in pushed)):
            raise ConfigError(f"{where}: pushed is not a list of option indexes")
        if not (_is_time(deadline) and _is_time(queued) and _is_time(expires_at)):
            raise ConfigError(f"{where}: deadline, queued and expires_at must be numbers or null")
        if deadline is not None and (queued is None or queued > deadline):
            raise ConfigError(f"{where}: a deadline needs its queued time, at or before it")
        if state is OfferState.ACTIVATING and chosen is None:
            raise ConfigError(f"{where}: an activating offer names the chosen option")
        if state in (OfferState.AWAITING, OfferState.OPEN) and (expires_at is None or not options):
            raise ConfigError(f"{where}: an offer {state.name} has options and an expiry")
        if campaign is None:
            return key, trigger.msisdn, None, _names_of(options)
        offer = _Offer(key, campaign, variant, trigger, _NO_SUBSCRIBER)  # restore() sets its owner
        offer.state = state
        offer.step = step
        offer.step_ready = step_ready
        offer.offered = self._option_set(options)
        offer.chosen = None if chosen is None else options[chosen]
        offer.pushed = self._option_set(tuple(options[i] for i in pushed))
        offer.deadline = None if deadline is None else float(deadline)
        offer.queued = None if queued is None else float(queued)
        offer.expires_at = None if expires_at is None else float(expires_at)
        offer.delivered = delivered
        return key, trigger.msisdn, offer, offer.offered.names

    def _option_from_row(
        self, where: str, row: object, shared: dict[tuple[object, ...], OfferOption]
    ) -> OfferOption:
        if not (isinstance(row, list) and len(row) == 5):
            raise ConfigError(f"{where}: an option is not [package_id, volume_mb, price, payment, ussd_code]")
        package_id, volume_mb, price, payment, ussd_code = row
        if not (
            isinstance(package_id, str)
            and isinstance(ussd_code, str)
            and _is_count(volume_mb)
            and isinstance(price, str)
            and isinstance(payment, str)
        ):
            raise ConfigError(
                f"{where}: option {row!r}: bad package_id, volume_mb, price, payment or ussd_code"
            )
        key = (package_id, volume_mb, price, payment, ussd_code)
        option = shared.get(key)
        if option is not None:
            return option
        try:
            option = OfferOption(package_id, volume_mb, _decimal(price), Payment(payment), ussd_code)
        except (TypeError, ValueError, ArithmeticError):
            raise ConfigError(f"{where}: option {row!r}: bad price or payment") from None
        # the engine's own object when the catalogue still says the same (sizing makes one per package)
        current = self._options.get((package_id, option.payment))
        option = current if current == option else option
        shared[key] = option
        return option


_OFFER_FIELDS = 14
_STATES = {state.name: state for state in OfferState}


def _offer_to_row(offer: _Offer) -> list[Any]:
    options = offer.offered.options
    return [
        offer.offer_id,
        offer.campaign.id,
        offer.variant,
        _trigger_to_json(offer.trigger),
        offer.state.name,
        offer.step,
        offer.step_ready,
        [_option_to_row(option) for option in options],
        None if offer.chosen is None else options.index(offer.chosen),
        [options.index(option) for option in offer.pushed.options],
        offer.deadline,
        offer.queued,
        offer.expires_at,
        offer.delivered,
    ]


_NEEDS_OFFER = frozenset({OfferState.SCORING, OfferState.AWAITING, OfferState.OPEN, OfferState.ACTIVATING})


def _misfit(offer: _Offer) -> str | None:
    """Why a restored offer cannot go on under its campaign as the engine has it now, or None: an offer
    that was sized (or is being scored) needs the campaign's ``offer``, an awaited step must exist."""
    campaign = offer.campaign
    if offer.state is OfferState.AWAITING and offer.step >= len(campaign.journey):
        return f"campaign {campaign.id} no longer has journey step {offer.step + 1}"
    if campaign.offer is None and (offer.offered.options or offer.state in _NEEDS_OFFER):
        return f"campaign {campaign.id} no longer makes an offer"
    return None


# A profile is a row of its own rather than campaign_core.codec's object: a third of the time both ways
# (the codec reads type hints per field), and the restored profiles share the empty attributes mapping.
_PROFILE_FIELDS = ("msisdn", "segment", "tenure_days", "timezone", "stk_capable", "packages", "attributes")
_PACKAGE_FIELDS = ("package_id", "start_date", "end_date", "recurring", "trial")
if (
    tuple(f.name for f in dataclasses.fields(Profile)) != _PROFILE_FIELDS
    or tuple(f.name for f in dataclasses.fields(ActivePackage)) != _PACKAGE_FIELDS
):
    raise ImportError("campaign_core.engine: Profile's fields changed; update _profile_to_row")


def _profile_to_row(profile: Profile) -> list[Any]:
    return [
        profile.segment,
        profile.tenure_days,
        profile.timezone,
        profile.stk_capable,
        [[p.package_id, p.start_date, p.end_date, p.recurring, p.trial] for p in profile.packages],
        dict(profile.attributes),
    ]


def _profile_from_row(msisdn: str, row: object, where: str) -> Profile:
    if not (isinstance(row, list) and len(row) == 6):
        raise ConfigError(
            f"{where}: the profile is not [segment, tenure_days, timezone, stk_capable, packages, attributes]"
        )
    segment, tenure_days, timezone, stk_capable, packages, attributes = row
    if not (
        isinstance(segment, str)
        and _is_count(tenure_days)
        and (timezone is None or isinstance(timezone, str))
        and isinstance(stk_capable, bool)
    ):
        raise ConfigError(f"{where}: bad profile segment, tenure_days, timezone or stk_capable")
    if not (
        isinstance(packages, list)
        and all(
            isinstance(p, list)
            and len(p) == 5
            and all(isinstance(text, str) for text in p[:3])
            and all(isinstance(flag, bool) for flag in p[3:])
            for p in packages
        )
    ):
        raise ConfigError(
            f"{where}: the profile's packages are not [[package_id, start, end, recurring, trial]]"
        )
    if not (isinstance(attributes, dict) and all(isinstance(v, str) for v in attributes.values())):
        raise ConfigError(f"{where}: the profile's attributes are not an object of strings")
    held = tuple(ActivePackage(*p) for p in packages)
    if attributes:
        return Profile(msisdn, segment, tenure_days, timezone, stk_capable, held, attributes)
    return Profile(msisdn, segment, tenure_days, timezone, stk_capable, held)  # the shared empty mapping


def _trigger_to_json(trigger: TriggerRaised) -> dict[str, Any]:
    data = event_to_json(trigger)
    if not data["attributes"]:
        del data["attributes"]  # the codec's default: restored triggers share the empty mapping
    return data


def _closed_to_row(entry: _Closed) -> list[Any]:
    row: list[Any] = [entry[0], entry[1], list(entry[2]), entry[3], entry[4]]
    if len(entry) > 5:  # the option whose activation failed
        row.append(_option_to_row(entry[5]))
    return row


def _option_to_row(option: OfferOption) -> list[Any]:
    """``[package id, volume MB, price, payment, USSD code]``, as ``Engine._option_from_row`` reads it."""
    return [option.package_id, option.volume_mb, str(option.price), option.payment.value, option.ussd_code]


def _subscriber_from_row(
    index: int, row: object, option_of: Callable[[str, object], OfferOption]
) -> tuple[str, _Subscriber]:
    where = f"engine snapshot: subscriber {index}"
    if not (isinstance(row, list) and len(row) == 7 and isinstance(row[0], str)):
        raise ConfigError(f"{where} is not [msisdn, profile, triggers, responses, offers, closed, starts]")
    msisdn, profile, triggers, responses, offers, closed, starts = row
    subscriber = _Subscriber()
    if profile is not None:
        subscriber.profile = _profile_from_row(msisdn, profile, where)
    subscriber.triggers = _strings(triggers, where, "triggers")
    subscriber.responses = _strings(responses, where, "responses")
    subscriber.offers = _strings(offers, where, "offers")
    if len(set(subscriber.offers)) != len(subscriber.offers):
        raise ConfigError(f"{where}: offers repeats an offer id")
    if not isinstance(closed, list):
        raise ConfigError(f"{where}: closed is not a list")
    entries: list[_Closed] = []
    for entry in closed:
        if not (
            isinstance(entry, list)
            and len(entry) in (5, 6)
            and isinstance(entry[0], str)
            and isinstance(entry[1], str)
            and isinstance(entry[3], str)
            and (entry[4] is None or isinstance(entry[4], str))
        ):
            raise ConfigError(
                f"{where}: a closed offer is not [offer_id, outcome, names, campaign, variant(, failed option)]"
            )
        found: _Closed = (entry[0], entry[1], _strings(entry[2], where, "closed names"), entry[3], entry[4])
        if len(entry) == 6:
            found = (*found, option_of(f"{where}: closed offer {entry[0]}", entry[5]))
        entries.append(found)
    subscriber.closed = tuple(entries)
    if not (
        isinstance(starts, list)
        and all(
            isinstance(s, list)
            and len(s) == 2
            and isinstance(s[0], str)
            and _is_time(s[1])
            and s[1] is not None
            for s in starts
        )
    ):
        raise ConfigError(f"{where}: starts is not a list of [campaign or experiment id, time]")
    subscriber.last_start = tuple((name, float(when)) for name, when in starts)
    return msisdn, subscriber


def _strings(value: object, where: str, what: str) -> tuple[str, ...]:
    if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        raise ConfigError(f"{where}: {what} is not a list of strings")
    return tuple(value)


def _decimal(value: object) -> Decimal:
    if not isinstance(value, str):
        raise TypeError(value)
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(value)
    return number


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_time(value: object) -> bool:
    """None or a finite number (JSON has no infinities)."""
    if value is None:
        return True
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _load_journey(environ: Mapping[str, str]) -> Any:
    """``campaign_core._journey`` (``_journey.c``: Engine._trigger in C) configured with this module's
    record kinds, offer states, builders and classes, or None when it is not built or
    ``TGW_PURE_PYTHON`` is set. Loaded last: it takes the module's names when it is configured."""
    if pure_python_asked(environ):
        return None
    try:
        from campaign_core import _journey as journey  # noqa: PLC0415 (here, so that tests can replay the choice)
    except ImportError:
        return None
    from campaign_core.model import _NO_ATTRIBUTES  # noqa: PLC0415 (the shared empty attributes)
    from campaign_core.policy import _Calendar  # noqa: PLC0415 (its slots are read there)

    journey.configure({**globals(), "_NO_ATTRIBUTES": _NO_ATTRIBUTES, "_Calendar": _Calendar})
    return journey


_journey = _load_journey(os.environ)
