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
that expired is answered "expired". Every offer ends: activated, declined, expired, suppressed or failed
(a ``CLOSED`` record says which). Ids are deterministic (``model.offer_id``; commands ``<offer>:<step>``,
``<offer>:score``, ``<offer>:confirm``), so a replay after a crash gives the same ids and billing's
idempotency key stops a second activation.

Snapshot (``snapshot`` / ``restore``, JSON-able, version ``SNAPSHOT_VERSION``), so that a restart need
not replay the whole event log: per subscriber a row ``[msisdn, profile, trigger ids, response ids, open
offer ids, closed offers, last starts]`` (the profile a row ``[segment, tenure_days, timezone,
stk_capable, [[package_id, start_date, end_date, recurring, trial], ...], attributes]``, or null), per
open offer a row ``[offer id, campaign id, variant, trigger, state, step, step ready, options, chosen,
pushed, deadline, queued, expires at, delivered]`` (the trigger as ``campaign_core.codec`` JSON, the
campaign by id, the options as ``[package id, volume MB, price, payment, USSD code]``, chosen and pushed
as indexes into them), the contact policy's own snapshot and the time of the last prune. The deadline
heap is rebuilt from the offers' ``queued`` times (not their deadlines: the order in which one Tick
handles several due offers follows the queued entries, and it must stay the same). A restored engine
gives the same outputs for the same later events as the engine the snapshot was taken of. ``restore``
leaves out the offers whose campaign the engine's ``CampaignSet`` no longer has, or whose campaign
changed so that the offer no longer fits it (its step past the journey, options from a campaign that now
offers nothing); it cannot record their end, so it returns their ids for the caller to log.

The contact policy forgets the subscribers whose every cap period is over (``ContactPolicy.prune``) on
a ``Tick`` once per simulated hour (``_PRUNE_EVERY``), which changes no decision.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import IntEnum
from typing import Any
from zoneinfo import ZoneInfo

from campaign_core.codec import event_from_json, event_to_json
from campaign_core.config import (
    CampaignConfig,
    CampaignSet,
    EligibilityConfig,
    ExperimentConfig,
    JourneyStep,
    OfferTexts,
)
from campaign_core.experiments import Candidate, arbitrate, assign, offer_value
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
    offer_id,
)
from campaign_core.policy import ContactPolicy, Deferred, Suppressed
from campaign_core.texts import option_fields, render_step_text
from protocols.errors import ConfigError, DecodeError

__all__ = ["SNAPSHOT_VERSION", "Engine", "OfferState", "OfferView", "eligibility_failure"]

_RECENT_TRIGGERS = 8  # trigger ids remembered per subscriber to drop re-deliveries
_RECENT_CLOSED = 4
_RECENT_RESPONSES = 4  # response ids remembered per subscriber  # closed offers remembered per subscriber to answer late responses
TRANSACTIONAL = "transactional"
_DEFAULT_TEXTS = OfferTexts()
_UNKNOWN_PROFILE = Profile("")
_TEXT_CACHE_LIMIT = 4096
SNAPSHOT_VERSION = 1  # of Engine.snapshot()
_PRUNE_EVERY = 3600.0  # simulated seconds between two ContactPolicy.prune calls (on a Tick)

# Record is a frozen slots dataclass whose __init__ goes through object.__setattr__ per field (about
# 1.5 us); the engine makes two or three a event, so it fills the slots through their own setters
# (about 0.7 us). tests/campaign/test_engine.py compares the result with Record(...).
_new = object.__new__
(
    _set_kind,
    _set_at,
    _set_msisdn,
    _set_campaign_id,
    _set_variant,
    _set_offer_id,
    _set_detail,
) = (
    getattr(Record, name).__set__
    for name in ("kind", "at", "msisdn", "campaign_id", "variant", "offer_id", "detail")
)
if {f.name for f in dataclasses.fields(Record)} != {
    "kind", "at", "msisdn", "campaign_id", "variant", "offer_id", "detail"
}:  # fmt: skip
    raise ImportError("campaign_core.engine: Record's fields changed; update _record")


def _record(  # noqa: PLR0917 - the positional order of Record(...), which it stands for
    kind: RecordKind,
    at: float,
    msisdn: str,
    campaign_id: str | None = None,
    variant: str | None = None,
    offer_id: str | None = None,
    detail: Mapping[str, object] | None = None,
) -> Record:
    """``Record(...)``, faster (see above)."""
    record: Record = _new(Record)
    _set_kind(record, kind)
    _set_at(record, at)
    _set_msisdn(record, msisdn)
    _set_campaign_id(record, campaign_id)
    _set_variant(record, variant)
    _set_offer_id(record, offer_id)
    _set_detail(record, {} if detail is None else detail)
    return record  # distinct (step, options) texts kept; options come from a small catalogue


class OfferState(IntEnum):
    DELAYED = 1  # an experiment arm's delay before anything happens
    SCORING = 2  # QueryCredit sent
    STEP_PENDING = 3  # waiting for a step's ``after`` or the end of quiet hours
    AWAITING = 4  # a step was sent; waiting for an answer
    OPEN = 5  # every step done; the offer stands until it expires
    ACTIVATING = 6  # Activate sent


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


class _Offer:
    __slots__ = (
        "campaign",
        "chosen",
        "deadline",
        "delivered",
        "expires_at",
        "msisdn",
        "offer_id",
        "options",
        "pushed",
        "queued",
        "state",
        "step",
        "step_ready",
        "trigger",
        "variant",
    )

    def __init__(
        self, offer_id: str, campaign: CampaignConfig, variant: str | None, trigger: TriggerRaised
    ) -> None:
        self.offer_id = offer_id
        self.campaign = campaign
        self.variant = variant
        self.trigger = trigger
        self.msisdn = trigger.msisdn
        self.state = OfferState.SCORING
        self.step = 0
        self.step_ready = False  # the current step's ``after`` has elapsed (or was zero)
        self.options: tuple[OfferOption, ...] = ()
        self.chosen: OfferOption | None = None  # the option being activated
        self.pushed: tuple[OfferOption, ...] = ()  # what the last STK dialog offered (STK OK buys its first)
        self.deadline: float | None = None
        self.queued: float | None = None  # the time of this offer's live entry in the deadline heap
        self.expires_at: float | None = None
        self.delivered = False


class _Subscriber:
    __slots__ = ("closed", "last_start", "offers", "profile", "responses", "triggers")

    def __init__(self) -> None:
        self.profile: Profile | None = None
        self.triggers: tuple[str, ...] = ()
        self.responses: tuple[str, ...] = ()  # the latest response ids, to drop a re-delivered one
        self.offers: tuple[str, ...] = ()  # open offer ids, oldest first
        # (offer id, outcome, the offered package ids and USSD codes, campaign id, variant) of the latest
        # closed offers, to answer a late response clearly
        self.closed: tuple[tuple[str, str, tuple[str, ...], str, str | None], ...] = ()
        # campaign id -> when its last offer started; experiment id -> the last control assignment
        self.last_start: tuple[tuple[str, float], ...] = ()  # a tuple of pairs: a third of a dict's size


def _response_detail(event: Responded) -> dict[str, object]:
    return {"response_id": event.response_id, "channel": event.channel.value, "option": event.option_id}


def _last_start(subscriber: _Subscriber, key: str) -> float | None:
    return next((when for name, when in subscriber.last_start if name == key), None)


def _remember_start(subscriber: _Subscriber, key: str, when: float) -> None:
    subscriber.last_start = (*((n, w) for n, w in subscriber.last_start if n != key), (key, when))


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


class Engine:
    """One campaign directory's engine (see the module docstring)."""

    def __init__(self, campaigns: CampaignSet) -> None:
        errors = campaigns.check()
        if errors:
            first = errors[0]
            raise ConfigError(f"{'.'.join(map(str, first.path))}: {first.reason}", first.source)
        self.campaigns = campaigns
        self.policy = ContactPolicy(campaigns.policy)
        self._zone = campaigns.policy.default_timezone
        self._currency = campaigns.catalogue.currency
        self._packages = {package.id: package for package in campaigns.catalogue.packages}
        self._by_trigger: dict[TriggerKind, list[CampaignConfig]] = {}
        for campaign in campaigns.campaigns:
            if campaign.enabled:
                self._by_trigger.setdefault(campaign.trigger.kind, []).append(campaign)
        self._experiment_of: dict[str, ExperimentConfig] = {}
        for experiment in campaigns.experiments:
            for arm in experiment.arms:
                if arm.campaign is not None:
                    self._experiment_of[arm.campaign] = experiment
        self._values = {c.id: offer_value(c, campaigns.catalogue) for c in campaigns.campaigns}
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
        self._deadlines: list[tuple[float, str]] = []  # (when, offer id); stale entries skipped
        # keyed by id(step): the steps live as long as self.campaigns, which this engine holds
        self._options: dict[tuple[str, Payment], OfferOption] = {}  # one object per package and payment
        self._texts: dict[tuple[int, tuple[OfferOption, ...], str], str] = {}
        self._pruned_at: float | None = None  # the now of the last ContactPolicy.prune

    # --- the engine face ------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Command]:
        out: list[Command] = []
        if isinstance(event, Tick):
            self._tick(now, out)
            if self._pruned_at is None or now - self._pruned_at >= _PRUNE_EVERY:
                self._prune(now)
        elif isinstance(event, TriggerRaised):
            self._trigger(event, now, out)
        elif isinstance(event, ProfileUpdated):
            self._subscriber(event.profile.msisdn).profile = event.profile
        elif isinstance(event, CreditScored | CreditFailed):
            self._credit(event, now, out)
        elif isinstance(event, DeliveryReported | SubmitFailed):
            self._delivery(event, now, out)
        elif isinstance(event, Responded):
            self._response(event, now, out)
        elif isinstance(event, Activated | ActivationFailed):
            self._activation(event, now, out)
        elif isinstance(event, Purchased):
            out.append(
                _record(
                    RecordKind.PURCHASE,
                    now,
                    event.msisdn,
                    detail={"package_id": event.package_id, "price": str(event.price), "at": event.at},
                )
            )
        return out

    def next_deadline(self) -> float | None:
        heap = self._deadlines
        while heap:
            when, key = heap[0]
            offer = self._offers.get(key)
            if offer is None or offer.queued != when:
                heapq.heappop(heap)  # stale: the offer closed, or an earlier entry of it is queued
                continue
            deadline = offer.deadline
            if deadline is None:
                heapq.heappop(heap)  # nothing to wait for any more (activating)
                offer.queued = None
                continue
            if deadline == when:
                return when
            heapq.heapreplace(heap, (deadline, key))  # the deadline moved later: queue it there (_arm)
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
            offer.options,
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

    # --- triggers -------------------------------------------------------------------------------

    def _subscriber(self, msisdn: str) -> _Subscriber:
        subscriber = self._subscribers.get(msisdn)
        if subscriber is None:
            subscriber = self._subscribers[msisdn] = _Subscriber()
        return subscriber

    def _zone_of(self, subscriber: _Subscriber) -> str:
        profile = subscriber.profile
        return profile.timezone if profile is not None and profile.timezone else self._zone

    def _profile(self, msisdn: str, subscriber: _Subscriber) -> Profile:
        # billing never described this subscriber: every rule sees the defaults
        return subscriber.profile if subscriber.profile is not None else _UNKNOWN_PROFILE

    @staticmethod
    def _matches(campaign: CampaignConfig, trigger: TriggerRaised) -> bool:
        config = campaign.trigger
        if config.level is not None and (trigger.level is None or trigger.level < config.level):
            return False
        if config.days_before:
            days = trigger.attributes.get("days_left")
            if days is None or not days.isdigit() or int(days) not in config.days_before:
                return False
        return True

    def _trigger(self, trigger: TriggerRaised, now: float, out: list[Command]) -> None:
        campaigns = [c for c in self._by_trigger.get(trigger.kind, ()) if self._matches(c, trigger)]
        if not campaigns:
            return  # no campaign starts on this trigger: nothing to decide, nothing to record
        msisdn = trigger.msisdn
        subscriber = self._subscriber(msisdn)
        if trigger.trigger_id in subscriber.triggers:
            return  # a re-delivery: already decided
        subscriber.triggers = (*subscriber.triggers[-(_RECENT_TRIGGERS - 1) :], trigger.trigger_id)
        out.append(
            _record(
                RecordKind.TRIGGER,
                now,
                msisdn,
                detail={
                    "trigger_id": trigger.trigger_id,
                    "kind": trigger.kind.value,
                    "package_id": trigger.package_id,
                    "level": trigger.level,
                    "event_time": trigger.event_time,
                },
            )
        )
        profile = self._profile(msisdn, subscriber)
        zone = self._zone_of(subscriber)
        candidates: list[Candidate] = []
        delays: dict[str, tuple[str | None, float]] = {}
        controls: set[str] = set()
        for campaign in campaigns:
            experiment = self._experiment_of.get(campaign.id)
            variant: str | None = None
            delay = 0.0
            if experiment is not None:
                arm = assign(experiment, msisdn)
                if arm.campaign != campaign.id:
                    if arm.control and experiment.id not in controls:
                        reason = eligibility_failure(campaign, profile, trigger, now, zone)
                        if reason is None and self._control_due(subscriber, experiment, now):
                            controls.add(experiment.id)
                            out.append(
                                _record(
                                    RecordKind.ASSIGNED,
                                    now,
                                    msisdn,
                                    None,
                                    arm.name,
                                    detail={
                                        "experiment": experiment.id,
                                        "control": True,
                                        "trigger_id": trigger.trigger_id,
                                        "event_time": trigger.event_time,
                                    },
                                )
                            )
                    continue
                variant, delay = arm.name, arm.delay
                out.append(
                    _record(
                        RecordKind.ASSIGNED,
                        now,
                        msisdn,
                        campaign.id,
                        variant,
                        detail={
                            "experiment": experiment.id,
                            "control": False,
                            "trigger_id": trigger.trigger_id,
                        },
                    )
                )
            reason = eligibility_failure(campaign, profile, trigger, now, zone)
            if reason is None:
                reason = self._busy(subscriber, campaign, now)
            if reason is not None:
                out.append(
                    _record(
                        RecordKind.SUPPRESSED,
                        now,
                        msisdn,
                        campaign.id,
                        variant,
                        detail={"reason": reason, "stage": "trigger"},
                    )
                )
                continue
            candidates.append(Candidate(campaign, self._values.get(campaign.id, 0)))
            delays[campaign.id] = (variant, delay)
        winner = arbitrate(candidates)
        if winner is None:
            return
        for candidate in candidates:
            if candidate is not winner:
                variant = delays[candidate.campaign.id][0]
                out.append(
                    _record(
                        RecordKind.SUPPRESSED,
                        now,
                        msisdn,
                        candidate.campaign.id,
                        variant,
                        detail={
                            "reason": f"arbitration: {winner.campaign.id} goes first",
                            "stage": "trigger",
                        },
                    )
                )
        campaign = winner.campaign
        variant, delay = delays[campaign.id]
        offer = _Offer(offer_id(campaign.id, trigger.trigger_id), campaign, variant, trigger)
        if offer.offer_id in self._offers:
            return  # the same trigger once more under another id (cannot happen with recent ids; defensive)
        self._offers[offer.offer_id] = offer
        subscriber.offers = (*subscriber.offers, offer.offer_id)
        _remember_start(subscriber, campaign.id, now)
        out.append(
            _record(
                RecordKind.ELIGIBLE,
                now,
                msisdn,
                campaign.id,
                variant,
                offer.offer_id,
                {"trigger_id": trigger.trigger_id, "event_time": trigger.event_time, "delay": delay},
            )
        )
        if delay > 0:
            offer.state = OfferState.DELAYED
            self._arm(offer, now + delay)
            out.append(
                _record(
                    RecordKind.DEFERRED,
                    now,
                    msisdn,
                    campaign.id,
                    variant,
                    offer.offer_id,
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

    def _busy(self, subscriber: _Subscriber, campaign: CampaignConfig, now: float) -> str | None:
        for key in subscriber.offers:
            offer = self._offers.get(key)
            if offer is not None and offer.campaign.id == campaign.id:
                return f"offer {key} of this campaign is still open"
        if campaign.cooldown:
            last = _last_start(subscriber, campaign.id)
            if last is not None and now - last < campaign.cooldown:
                return f"cooldown: last offer {now - last:.0f} s ago"
        return None

    # --- scoring and options --------------------------------------------------------------------

    def _score(self, offer: _Offer, now: float, out: list[Command]) -> None:
        campaign = offer.campaign
        if campaign.offer is None:
            self._start_step(offer, 0, now, out)
            return
        if not campaign.scoring.enabled:
            fallback = campaign.scoring.fallback
            if fallback is None:
                self._size(offer, None, None, now, out)
            else:
                self._size(offer, fallback.balance, fallback.credit_limit, now, out)
            return
        offer.state = OfferState.SCORING
        self._arm(offer, now + campaign.scoring.timeout)
        out.append(QueryCredit(f"{offer.offer_id}:score", offer.msisdn, campaign.scoring.timeout))

    def _credit(self, event: CreditScored | CreditFailed, now: float, out: list[Command]) -> None:
        key, _, tag = event.request_id.rpartition(":")
        offer = self._offers.get(key)
        if offer is None or tag != "score" or offer.state is not OfferState.SCORING:
            return  # late (after the timeout) or unknown: the offer went on without it
        if isinstance(event, CreditScored):
            out.append(
                _record(
                    RecordKind.SCORED,
                    now,
                    offer.msisdn,
                    offer.campaign.id,
                    offer.variant,
                    offer.offer_id,
                    {"balance": str(event.balance), "credit_limit": str(event.credit_limit)},
                )
            )
            self._size(offer, event.balance, event.credit_limit, now, out)
        else:
            self._scoring_failed(offer, event.reason, now, out)

    def _scoring_failed(self, offer: _Offer, reason: str, now: float, out: list[Command]) -> None:
        fallback = offer.campaign.scoring.fallback
        out.append(
            _record(
                RecordKind.SCORED,
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
        config = offer.campaign.offer
        assert config is not None
        options: list[OfferOption] = []
        for package_id in config.packages:
            package = self._packages[package_id]
            price = package.price
            payment: Payment | None = None
            if balance is None:  # no scoring at all: billing decides at activation
                payment = Payment.CREDIT if config.payment == "credit" else Payment.BALANCE
            elif config.payment != "credit" and price <= balance:
                payment = Payment.BALANCE
            elif config.payment != "balance" and credit is not None and price <= credit:
                payment = Payment.CREDIT
            if payment is not None:
                option = self._options.get((package_id, payment))
                if option is None:
                    option = OfferOption(package.id, package.volume_mb, price, payment, package.ussd_code)
                    self._options[package_id, payment] = option
                options.append(option)
        options.sort(key=lambda o: (o.volume_mb, o.price))
        offer.options = tuple(options)
        if not options:
            self._close(offer, "suppressed", now, out, reason="nothing affordable")
            return
        self._start_step(offer, 0, now, out)

    # --- the journey ----------------------------------------------------------------------------

    def _start_step(self, offer: _Offer, index: int, now: float, out: list[Command]) -> None:
        journey = offer.campaign.journey
        if index >= len(journey):
            if offer.options and offer.expires_at is not None and offer.expires_at > now:
                offer.state = OfferState.OPEN
                offer.step = index
                self._arm(offer, offer.expires_at)
            else:
                self._close(offer, "expired" if offer.expires_at is not None else "completed", now, out)
            return
        step = journey[index]
        offer.step = index
        if step.after > 0 and not offer.step_ready:
            offer.state = OfferState.STEP_PENDING
            offer.step_ready = True
            self._arm(offer, now + step.after)
            return
        offer.step_ready = False
        self._send_step(offer, step, index, now, out)

    def _send_step(
        self, offer: _Offer, step: JourneyStep, index: int, now: float, out: list[Command]
    ) -> None:
        msisdn = offer.msisdn
        subscriber = self._subscriber(msisdn)
        profile = self._profile(msisdn, subscriber)
        zone = self._zone_of(subscriber)
        campaign = offer.campaign
        reason = eligibility_failure(campaign, profile, offer.trigger, now, zone)
        if reason is not None:  # re-checked at send time
            self._close(offer, "suppressed", now, out, reason=f"no longer eligible: {reason}")
            return
        if step.channel is Channel.STK and not profile.stk_capable:
            out.append(
                _record(
                    RecordKind.SUPPRESSED,
                    now,
                    msisdn,
                    campaign.id,
                    offer.variant,
                    offer.offer_id,
                    {"reason": "handset has no SIM toolkit", "step": index},
                )
            )
            self._start_step(offer, index + 1, now, out)
            return
        verdict = self.policy.check(msisdn, step.channel, step.purpose, now, zone)
        if isinstance(verdict, Deferred):
            offer.state = OfferState.STEP_PENDING
            offer.step_ready = True
            self._arm(offer, verdict.until)
            out.append(
                _record(
                    RecordKind.DEFERRED,
                    now,
                    msisdn,
                    campaign.id,
                    offer.variant,
                    offer.offer_id,
                    {"until": verdict.until, "reason": verdict.reason, "step": index},
                )
            )
            return
        if isinstance(verdict, Suppressed):
            out.append(
                _record(
                    RecordKind.SUPPRESSED,
                    now,
                    msisdn,
                    campaign.id,
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
            return
        options = self._step_options(offer, step)
        text = self._text(step, options, offer.trigger.attributes.get("days_left", ""))
        command_id = f"{offer.offer_id}:{index}"
        self.policy.record(msisdn, step.channel, step.purpose, now, zone)
        if step.channel is Channel.STK:
            offer.pushed = options
            out.append(PushStk(command_id, offer.offer_id, msisdn, campaign.id, step.style, options, text))
        else:
            offered = offer.offer_id if options else None
            promotional = step.purpose == "promotional"
            out.append(SendSms(command_id, msisdn, campaign.id, text, offered, promotional=promotional))
        out.append(
            _record(
                RecordKind.CONTACT,
                now,
                msisdn,
                campaign.id,
                offer.variant,
                offer.offer_id,
                {
                    "channel": step.channel.value,
                    "step": index,
                    "command_id": command_id,
                    "options": [o.package_id for o in options],
                    "latency": now - offer.trigger.event_time,
                    "policy_version": self.policy.version,
                },
            )
        )
        if options:
            if offer.expires_at is None:
                assert campaign.offer is not None
                offer.expires_at = now + campaign.offer.expires_after
            offer.state = OfferState.AWAITING
            offer.delivered = False
            self._arm(offer, min(now + step.hard_cap, offer.expires_at))
        else:
            self._start_step(offer, index + 1, now, out)  # informational: no answer to wait for

    def _text(self, step: JourneyStep, options: tuple[OfferOption, ...], days_left: str) -> str:
        """The step's text for these options; cached, since offers repeat the same few option sets."""
        key = (id(step), options, days_left)
        text = self._texts.get(key)
        if text is None:
            text = render_step_text(
                step.text,
                options,
                self._currency,
                step.option_format,
                step.option_separator,
                days_left=days_left,
            )
            if len(self._texts) >= _TEXT_CACHE_LIMIT:
                self._texts.clear()
            self._texts[key] = text
        return text

    @staticmethod
    def _step_options(offer: _Offer, step: JourneyStep) -> tuple[OfferOption, ...]:
        if step.options == "none" or not offer.options:
            return ()
        if step.options == "largest":
            return (max(offer.options, key=lambda o: (o.volume_mb, o.price)),)
        return offer.options

    def _delivery(self, event: DeliveryReported | SubmitFailed, now: float, out: list[Command]) -> None:
        key, _, tag = event.command_id.rpartition(":")
        offer = self._offers.get(key)
        if offer is None or offer.state is not OfferState.AWAITING or tag != str(offer.step):
            return  # a receipt for an earlier step, a confirmation, or a closed offer
        step = offer.campaign.journey[offer.step]
        assert offer.expires_at is not None
        if isinstance(event, DeliveryReported) and event.delivered:
            out.append(
                _record(
                    RecordKind.DELIVERED,
                    now,
                    offer.msisdn,
                    offer.campaign.id,
                    offer.variant,
                    offer.offer_id,
                    {"step": offer.step, "delivered": True, "state": event.state},
                )
            )
            offer.delivered = True
            self._arm(offer, min(now + step.wait, offer.expires_at))
            return
        reason = event.state if isinstance(event, DeliveryReported) else event.reason
        kind = RecordKind.DELIVERED if isinstance(event, DeliveryReported) else RecordKind.FAILED
        out.append(
            _record(
                kind,
                now,
                offer.msisdn,
                offer.campaign.id,
                offer.variant,
                offer.offer_id,
                {"step": offer.step, "delivered": False, "state": reason},
            )
        )
        self._start_step(offer, offer.step + 1, now, out)

    # --- responses and fulfilment ---------------------------------------------------------------

    def _response(self, event: Responded, now: float, out: list[Command]) -> None:
        msisdn = event.msisdn
        subscriber = self._subscriber(msisdn)
        if event.response_id in subscriber.responses:
            return  # the same answer delivered again (an SMSC re-delivery): already handled
        subscriber.responses = (*subscriber.responses[-(_RECENT_RESPONSES - 1) :], event.response_id)
        offer = self._offers.get(event.offer_id) if event.offer_id is not None else None
        if offer is None and event.offer_id is None:
            offer = self._offer_with(subscriber, event.option_id)
        if offer is None or offer.msisdn != msisdn:
            self._reject_response(event, subscriber, now, out)
            return
        if offer.campaign.offer is None:  # an informational journey offers nothing to take
            self._reject_response(event, subscriber, now, out)
            return
        texts = offer.campaign.offer.texts
        if offer.state is OfferState.ACTIVATING:
            self._answer(offer, event, now, out, refused="duplicate", text=texts.duplicate)
            return
        if offer.state not in (OfferState.AWAITING, OfferState.OPEN) or offer.expires_at is None:
            self._answer(offer, event, now, out, refused="not offered yet", text=texts.not_offered)
            return
        if now >= offer.expires_at:
            self._close(offer, "expired", now, out)
            self._answer(offer, event, now, out, refused="expired", text=texts.expired)
            return
        if event.channel is ResponseChannel.STK_DECLINED:
            self._answer(offer, event, now, out, refused=None, text=texts.declined)
            self._close(offer, "declined", now, out)
            return
        option = self._chosen(offer, event)
        if option is None:
            self._answer(offer, event, now, out, refused="not offered", text=texts.not_offered)
            return
        fields = option_fields(option, self._currency)
        offer.state = OfferState.ACTIVATING
        offer.deadline = None
        offer.chosen = option
        out.append(
            _record(
                RecordKind.RESPONSE,
                now,
                msisdn,
                offer.campaign.id,
                offer.variant,
                offer.offer_id,
                {
                    **_response_detail(event),
                    "package_id": option.package_id,
                    "latency": now - offer.trigger.event_time,
                },
            )
        )
        out.append(
            _record(
                RecordKind.ACTIVATION,
                now,
                msisdn,
                offer.campaign.id,
                offer.variant,
                offer.offer_id,
                {
                    "package_id": option.package_id,
                    "payment": option.payment.value,
                    "price": str(option.price),
                },
            )
        )
        out.append(Activate(offer.offer_id, msisdn, option.package_id, option.payment, option.price))
        out.append(Reply(event.response_id, msisdn, event.channel, True, texts.accepted.format_map(fields)))

    @staticmethod
    def _answer(
        offer: _Offer, event: Responded, now: float, out: list[Command], *, refused: str | None, text: str
    ) -> None:
        """Record the answer and reply: ``refused`` says why it activates nothing (None: a decline)."""
        if refused is None:
            kind, detail, accepted = RecordKind.RESPONSE, {**_response_detail(event), "declined": True}, True
        else:
            kind, detail, accepted = (
                RecordKind.REJECTED_RESPONSE,
                {**_response_detail(event), "reason": refused},
                False,
            )
        out.append(_record(kind, now, offer.msisdn, offer.campaign.id, offer.variant, offer.offer_id, detail))
        out.append(Reply(event.response_id, offer.msisdn, event.channel, accepted, text))

    def _offer_with(self, subscriber: _Subscriber, option_id: str | None) -> _Offer | None:
        """The newest open offer naming ``option_id`` (a package id or its USSD code)."""
        for key in reversed(subscriber.offers):
            offer = self._offers.get(key)
            if (
                offer is not None
                and offer.expires_at is not None
                and any(option_id in (o.package_id, o.ussd_code) for o in offer.options)
            ):
                return offer
        return None

    def _chosen(self, offer: _Offer, event: Responded) -> OfferOption | None:
        if event.channel is ResponseChannel.STK_OK and event.option_id is None:
            return offer.pushed[0] if len(offer.pushed) == 1 else None
        for option in offer.options:
            if event.option_id in (option.package_id, option.ussd_code):
                return option
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
            key, outcome, _packages, campaign_id, variant = closed
            campaign = self.campaigns.campaign(campaign_id)
            if campaign is not None and campaign.offer is not None:
                texts = campaign.offer.texts
            if outcome == "activated":
                reason, text = "duplicate", texts.duplicate
            else:
                reason, text = outcome, texts.expired
        detail = _response_detail(event)
        out.append(
            _record(
                RecordKind.REJECTED_RESPONSE,
                now,
                event.msisdn,
                campaign_id,
                variant,
                key,
                {**detail, "reason": reason},
            )
        )
        out.append(Reply(event.response_id, event.msisdn, event.channel, False, text))

    def _activation(self, event: Activated | ActivationFailed, now: float, out: list[Command]) -> None:
        offer = self._offers.get(event.offer_id)
        if offer is None or offer.state is not OfferState.ACTIVATING:
            return  # billing repeated itself (idempotent): already recorded
        config = offer.campaign.offer
        assert config is not None
        option = offer.chosen
        assert option is not None  # set with the ACTIVATING state
        fields = option_fields(option, self._currency)
        zone = self._zone_of(self._subscriber(offer.msisdn))
        if isinstance(event, Activated):
            out.append(
                _record(
                    RecordKind.FULFILLED,
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
            outcome = "activated"
        else:
            out.append(
                _record(
                    RecordKind.FAILED,
                    now,
                    offer.msisdn,
                    offer.campaign.id,
                    offer.variant,
                    offer.offer_id,
                    {"reason": event.reason, "stage": "activation"},
                )
            )
            text = config.texts.failed.format_map(fields)
            outcome = "failed"
        self.policy.record(offer.msisdn, Channel.SMS, TRANSACTIONAL, now, zone)
        out.append(
            SendSms(
                f"{offer.offer_id}:confirm",
                offer.msisdn,
                offer.campaign.id,
                text,
                offer.offer_id,
                promotional=False,
            )
        )
        self._close(offer, outcome, now, out)

    # --- time -----------------------------------------------------------------------------------

    def _arm(self, offer: _Offer, when: float) -> None:
        """Set the offer's deadline. The heap keeps at most one live entry per offer (``queued``): a
        later deadline leaves the earlier entry in place, which requeues itself when it comes up, so an
        offer moving through its steps costs a push per step only when its deadline comes sooner."""
        offer.deadline = when
        if offer.queued is None or when < offer.queued:
            offer.queued = when
            heapq.heappush(self._deadlines, (when, offer.offer_id))

    def _tick(self, now: float, out: list[Command]) -> None:
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            offer = self._offers.get(key)
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
                heapq.heappush(heap, (deadline, key))
                continue
            offer.deadline = None
            self._due(offer, now, out)

    def _due(self, offer: _Offer, now: float, out: list[Command]) -> None:
        # ``now``, not the deadline: a Tick that comes late (after a restart) acts at the real time, so
        # quiet hours and caps hold; the Tick and its ``now`` are in the event log, so a replay agrees
        state = offer.state
        if state is OfferState.DELAYED:
            self._score(offer, now, out)
        elif state is OfferState.SCORING:
            self._scoring_failed(offer, "timed out", now, out)
        elif state is OfferState.STEP_PENDING:
            self._start_step(offer, offer.step, now, out)
        elif state is OfferState.AWAITING:
            if offer.expires_at is not None and now >= offer.expires_at:
                self._close(offer, "expired", now, out)
            else:
                self._start_step(offer, offer.step + 1, now, out)
        elif state is OfferState.OPEN:
            self._close(offer, "expired", now, out)

    def _close(
        self, offer: _Offer, outcome: str, now: float, out: list[Command], *, reason: str | None = None
    ) -> None:
        del self._offers[offer.offer_id]
        offer.deadline = None
        subscriber = self._subscriber(offer.msisdn)
        subscriber.offers = tuple(k for k in subscriber.offers if k != offer.offer_id)
        subscriber.closed = (
            *subscriber.closed[-(_RECENT_CLOSED - 1) :],
            (
                offer.offer_id,
                outcome,
                tuple(name for o in offer.options for name in (o.package_id, o.ussd_code)),
                offer.campaign.id,
                offer.variant,
            ),
        )
        detail: dict[str, object] = {"outcome": outcome}
        if reason is not None:
            detail["reason"] = reason
            out.append(
                _record(
                    RecordKind.SUPPRESSED,
                    now,
                    offer.msisdn,
                    offer.campaign.id,
                    offer.variant,
                    offer.offer_id,
                    {"reason": reason, "stage": "offer"},
                )
            )
        out.append(
            _record(
                RecordKind.CLOSED, now, offer.msisdn, offer.campaign.id, offer.variant, offer.offer_id, detail
            )
        )

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
                [[entry[0], entry[1], list(entry[2]), entry[3], entry[4]] for entry in subscriber.closed],
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
        longer fits them (module docstring). ``ConfigError`` says what is wrong with a bad snapshot, and
        then the state is unchanged."""
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
        for index, row in enumerate(rows):
            msisdn, subscriber = _subscriber_from_row(index, row)
            if msisdn in subscribers:
                raise ConfigError(f"engine snapshot: subscriber {index} repeats {msisdn}")
            subscribers[msisdn] = subscriber
        rows = snapshot.get("offers")
        if not isinstance(rows, list):
            raise ConfigError("engine snapshot: offers is not a list")
        campaigns: dict[str, CampaignConfig | None] = {}
        options: dict[tuple[object, ...], OfferOption] = {}  # one object per distinct option
        offers: dict[str, _Offer] = {}
        owners: dict[str, str] = {}  # offer id -> msisdn, dropped offers included
        dropped: list[str] = []
        for index, row in enumerate(rows):
            if not (isinstance(row, list) and len(row) == _OFFER_FIELDS and isinstance(row[1], str)):
                raise ConfigError(f"engine snapshot: offer {index} is not a list of {_OFFER_FIELDS} fields")
            campaign_id = row[1]
            if campaign_id not in campaigns:
                campaigns[campaign_id] = self.campaigns.campaign(campaign_id)
            key, msisdn, offer = self._offer_from_row(index, row, campaigns[campaign_id], options)
            if key in owners:
                raise ConfigError(f"engine snapshot: offer {index} repeats {key}")
            owner = subscribers.get(msisdn)
            if owner is None or key not in owner.offers:
                raise ConfigError(f"engine snapshot: offer {index} ({key}) is not open for {msisdn}")
            owners[key] = msisdn
            if offer is not None and _fits(offer):
                offers[key] = offer
            else:
                dropped.append(key)
        for msisdn, subscriber in subscribers.items():
            for key in subscriber.offers:
                if owners.get(key) != msisdn:
                    raise ConfigError(f"engine snapshot: subscriber {msisdn} lists {key}, not an open offer")
            if dropped:
                subscriber.offers = tuple(key for key in subscriber.offers if key in offers)
        self.policy.restore(policy)  # the last check: it raises before changing anything
        self._subscribers = subscribers
        self._offers = offers
        deadlines = [(offer.queued, key) for key, offer in offers.items() if offer.queued is not None]
        heapq.heapify(deadlines)
        self._deadlines = deadlines
        self._pruned_at = None if pruned_at is None else float(pruned_at)
        return dropped

    def _offer_from_row(
        self,
        index: int,
        row: list[Any],
        campaign: CampaignConfig | None,
        shared: dict[tuple[object, ...], OfferOption],
    ) -> tuple[str, str, _Offer | None]:
        """The id, msisdn and offer of one snapshot row (no offer when ``campaign`` is gone)."""
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
            return key, trigger.msisdn, None
        offer = _Offer(key, campaign, variant, trigger)
        offer.state = state
        offer.step = step
        offer.step_ready = step_ready
        offer.options = options
        offer.chosen = None if chosen is None else options[chosen]
        offer.pushed = tuple(options[i] for i in pushed)
        offer.deadline = None if deadline is None else float(deadline)
        offer.queued = None if queued is None else float(queued)
        offer.expires_at = None if expires_at is None else float(expires_at)
        offer.delivered = delivered
        return key, trigger.msisdn, offer

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
    options = offer.options
    return [
        offer.offer_id,
        offer.campaign.id,
        offer.variant,
        _trigger_to_json(offer.trigger),
        offer.state.name,
        offer.step,
        offer.step_ready,
        [[o.package_id, o.volume_mb, str(o.price), o.payment.value, o.ussd_code] for o in options],
        None if offer.chosen is None else options.index(offer.chosen),
        [options.index(option) for option in offer.pushed],
        offer.deadline,
        offer.queued,
        offer.expires_at,
        offer.delivered,
    ]


_NEEDS_OFFER = frozenset({OfferState.SCORING, OfferState.AWAITING, OfferState.OPEN, OfferState.ACTIVATING})


def _fits(offer: _Offer) -> bool:
    """Whether a restored offer can go on under its campaign as the engine has it now: an offer that
    was sized (or is being scored) needs the campaign's ``offer``, an awaited step must exist."""
    campaign = offer.campaign
    if offer.state is OfferState.AWAITING and offer.step >= len(campaign.journey):
        return False
    return campaign.offer is not None or not (offer.options or offer.state in _NEEDS_OFFER)


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


def _subscriber_from_row(index: int, row: object) -> tuple[str, _Subscriber]:
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
    entries: list[tuple[str, str, tuple[str, ...], str, str | None]] = []
    for entry in closed:
        if not (
            isinstance(entry, list)
            and len(entry) == 5
            and isinstance(entry[0], str)
            and isinstance(entry[1], str)
            and isinstance(entry[3], str)
            and (entry[4] is None or isinstance(entry[4], str))
        ):
            raise ConfigError(f"{where}: a closed offer is not [offer_id, outcome, names, campaign, variant]")
        entries.append((entry[0], entry[1], _strings(entry[2], where, "closed names"), entry[3], entry[4]))
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
