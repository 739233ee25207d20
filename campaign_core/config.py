"""Campaign configuration: the schema of the files in ``configs/campaigns/`` (pydantic v2 models).

A campaign directory holds YAML files, each with one top-level ``kind``:

``catalogue``
    The packages on sale: id, volume, price (exact decimal, in ``currency``), the USSD code that buys
    it, validity. Offers are built from it.
``policy``
    The contact policy, one versioned object: caps per channel and purpose per period, quiet hours in
    the subscriber's time zone (defer or drop), the do-not-disturb list, the separate budget of contacts
    the subscriber started. Exactly one per directory.
``campaign``
    A trigger (``TriggerKind`` with its parameters), eligibility rules, credit scoring, the offer (which
    packages, how paid, when it expires) and the journey (channel steps with waits).
``experiment``
    Arms with traffic shares assigned by a hash of MSISDN + salt, each naming the campaign it runs (or
    ``control: true``), optionally delayed; the control arm is recorded at trigger time and contacted never.

Durations are written ``90s``, ``15m``, ``24h``, ``2d`` (or plain seconds) and held as seconds; they
are finite and at most ``MAX_DURATION`` (ten years: an offer, a cooldown or a wait longer than that is a
typo, and an endless one would never expire).
Loading (YAML with line numbers, ``tgw validate``) lives in ``gateway.campaigns``; this module only
says what a valid configuration is, including the rules across files (``CampaignSet.check``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time as time_of_day
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.functional_validators import BeforeValidator

from campaign_core.model import Channel, TriggerKind
from campaign_core.texts import OPTION_FIELDS, TEXT_FIELDS, check_template

__all__ = [
    "MAX_DURATION",
    "CampaignConfig",
    "CampaignSet",
    "CapRule",
    "CatalogueConfig",
    "CrossFileError",
    "Duration",
    "EligibilityConfig",
    "ExperimentArm",
    "ExperimentConfig",
    "JourneyStep",
    "OfferConfig",
    "OfferTexts",
    "PackageConfig",
    "PolicyConfig",
    "QuietHours",
    "ScoringConfig",
    "ScoringFallback",
    "TriggerConfig",
    "parse_duration",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
MAX_DURATION = 3650 * 86400.0
"""Ten years, in seconds: the longest duration a configuration may give."""


def parse_duration(value: object) -> float:
    """``"15m"`` -> 900.0; numbers are seconds. ValueError says what is accepted."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or e.g. 90s, 15m, 24h, 2d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration (a number of seconds or e.g. 90s, 15m, 24h, 2d)")
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite duration (e.g. 90s, 15m, 24h, 2d)")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION:
        raise ValueError(f"{value!r} is too long: a duration is at most 3650d (ten years)")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- catalogue -----------------------------------------------------------------------------------


class PackageConfig(_Strict):
    id: Id
    name: str = ""
    volume_mb: Annotated[int, Field(gt=0)]
    price: Annotated[Decimal, Field(ge=0, decimal_places=4)]
    ussd_code: Annotated[str, Field(pattern=r"^\*[0-9*]+#$")]
    validity_days: Annotated[int, Field(gt=0)] = 30
    recurring: bool = False

    @field_validator("price", mode="before")
    @classmethod
    def _price_text(cls, value: object) -> object:
        if isinstance(value, float):  # 0.1 in YAML is a binary float: ask for the exact text
            raise ValueError('write prices as strings (e.g. "4.50") so they stay exact')
        return value


class CatalogueConfig(_Strict):
    kind: Literal["catalogue"]
    version: int = 1
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    packages: Annotated[tuple[PackageConfig, ...], Field(min_length=1)]

    @field_validator("packages")
    @classmethod
    def _unique(cls, packages: tuple[PackageConfig, ...]) -> tuple[PackageConfig, ...]:
        _no_repeats("package id", [p.id for p in packages])
        _no_repeats("USSD code", [p.ussd_code for p in packages])
        return packages


# --- policy --------------------------------------------------------------------------------------


class CapRule(_Strict):
    """At most ``max`` contacts on ``channel`` (any channel when None) of ``purpose`` per ``per``."""

    channel: Channel | None = None
    purpose: Literal["promotional", "subscriber_initiated", "transactional"] = "promotional"
    max: Annotated[int, Field(ge=0)]
    per: Literal["hour", "day", "week"]


class QuietHours(_Strict):
    """Local time window (subscriber's zone) with no pushes; ``start`` > ``end`` spans midnight."""

    start: time_of_day
    end: time_of_day
    action: Literal["defer", "drop"] = "defer"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted(cls, value: object) -> object:
        # unquoted 21:00 is YAML 1.1's base-60 integer 1260, which pydantic would read as 00:21
        if not isinstance(value, str | time_of_day):
            raise ValueError('write times as quoted strings, e.g. "21:00"')
        return value

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: time_of_day) -> time_of_day:
        # the policy reads quiet hours in each subscriber's own zone and would drop an offset silently
        if value.tzinfo is not None:
            raise ValueError(
                'quiet hours are local times in the subscriber\'s zone: leave out the offset, e.g. "21:00"'
            )
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours start and end at the same time")
        return self


class PolicyConfig(_Strict):
    kind: Literal["policy"]
    version: Annotated[int, Field(ge=1)]
    default_timezone: str = "UTC"
    caps: tuple[CapRule, ...] = ()
    quiet_hours: QuietHours | None = None
    do_not_disturb: tuple[Annotated[str, Field(pattern=r"^[0-9]{5,15}$")], ...] = ()

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Africa/Nairobi)") from None
    return value


# --- campaigns -----------------------------------------------------------------------------------


class TriggerConfig(_Strict):
    kind: TriggerKind
    level: Annotated[int, Field(ge=1, le=99)] | None = None
    """THRESHOLD only: the usage percentage (e.g. 90)."""
    days_before: tuple[Annotated[int, Field(ge=0)], ...] = ()
    """PACKAGE_ENDING / TRIAL_ENDING: the reminders' distances to the end date, in days."""

    @model_validator(mode="after")
    def _parameters(self) -> TriggerConfig:
        if (self.kind is TriggerKind.THRESHOLD) != (self.level is not None):
            raise ValueError("level is required for a threshold trigger and only for it")
        if self.days_before and self.kind not in (TriggerKind.PACKAGE_ENDING, TriggerKind.TRIAL_ENDING):
            raise ValueError("days_before applies to package_ending and trial_ending triggers")
        return self


class EligibilityConfig(_Strict):
    """Rules on the profile and the package; every one given must hold (re-checked at send time).

    ``ends_in_days: N`` follows the source's definition: the package "ends in N days" when its end date
    is at least today + N + 1 (the source writes "ends in 7 days" as ``end_date >= today + 8``).
    """

    segments: tuple[str, ...] = ()
    exclude_segments: tuple[str, ...] = ()
    min_tenure_days: Annotated[int, Field(ge=0)] = 0
    packages: tuple[str, ...] = ()
    """The trigger's package (or one the subscriber holds, for triggers without one) must be one of these."""
    package_duration_days: Annotated[int, Field(gt=0)] | None = None
    ends_in_days: Annotated[int, Field(ge=0)] | None = None
    recurring: bool | None = None
    trial: bool | None = None
    stk_capable: bool | None = None
    attributes: Mapping[str, str] = Field(default_factory=dict)


class ScoringFallback(_Strict):
    balance: Annotated[Decimal, Field(ge=0)] = Decimal(0)
    credit_limit: Annotated[Decimal, Field(ge=0)] = Decimal(0)


class ScoringConfig(_Strict):
    """Ask billing what the subscriber may borrow before offering (``enabled: false`` skips it and
    offers on ``fallback``). When scoring fails or times out, ``fallback`` is used: a balance and a
    credit limit to size the offer with; without one, no offer is made (recorded as suppressed)."""

    enabled: bool = True
    timeout: Annotated[Duration, Field(gt=0)] = 5.0
    fallback: ScoringFallback | None = None


class OfferTexts(_Strict):
    """What the subscriber is told when they answer (templates with the option's fields, see texts)."""

    accepted: str = "Thank you. {volume_mb} MB is being activated."
    confirmation: str = "You now have {volume_mb} MB extra data, {price} {currency} ({payment})."
    failed: str = "Sorry, we could not activate {volume_mb} MB. You have not been charged."
    expired: str = "Sorry, this offer has expired."
    duplicate: str = "This offer was already taken."
    not_offered: str = "Sorry, this package is not part of your offer."
    no_offer: str = "You have no open offer. Dial *123# for the data shop."
    declined: str = "OK, no package was activated."

    @model_validator(mode="after")
    def _templates(self) -> OfferTexts:
        for name in type(self).model_fields:
            check_template(getattr(self, name), OPTION_FIELDS)
        return self


class OfferConfig(_Strict):
    """Which packages may be offered and how they are paid: ``balance_then_credit`` pays from the
    balance when it covers the price and on credit ("buy now, pay later", up to the scored limit)
    otherwise; ``expires_after`` runs from the first contact."""

    packages: Annotated[tuple[str, ...], Field(min_length=1)]
    payment: Literal["balance_then_credit", "balance", "credit"] = "balance_then_credit"
    expires_after: Duration = 86400.0
    texts: OfferTexts = Field(default_factory=OfferTexts)


class JourneyStep(_Strict):
    """One contact. ``after``: delay after the previous step ended (the trigger for the first);
    ``wait``: how long an answer is awaited after the delivery receipt, ``hard_cap`` after the
    submission when no receipt comes; ``options``: which affordable packages it names.

    ``text`` is a template (``campaign_core.texts``): ``{options}`` (one ``option_format`` line per
    option, joined by ``option_separator``), and the largest option's ``{volume_mb}``, ``{price}``,
    ``{currency}``, ``{ussd_code}``, ``{payment}``. An stk step's text replaces the dialog's prompt."""

    channel: Channel
    purpose: Literal["promotional", "transactional"] = "promotional"
    """``transactional`` (a service message such as a roaming welcome) is outside the promotional caps,
    quiet hours and do-not-disturb list; only a step that offers nothing can be."""
    options: Literal["largest", "all", "none"] = "all"
    style: Literal["confirm", "menu"] = "confirm"
    text: Annotated[str, Field(min_length=1)]
    after: Duration = 0.0
    wait: Duration = 600.0
    hard_cap: Duration = 1800.0
    max_parts: Annotated[int, Field(ge=1, le=10)] = 1
    option_format: str = "{volume_mb} MB {price} {currency}: dial {ussd_code}"
    option_separator: str = "\n"

    @model_validator(mode="after")
    def _fits(self) -> JourneyStep:
        if self.hard_cap < self.wait:
            raise ValueError("hard_cap must be at least wait")
        if self.channel is Channel.STK and self.options == "none":
            raise ValueError("an stk step offers something: options largest or all")
        if self.purpose == "transactional" and self.options != "none":
            raise ValueError("a step that offers packages is promotional")
        return self

    @field_validator("text")
    @classmethod
    def _text_fields(cls, text: str) -> str:
        check_template(text, TEXT_FIELDS)
        return text

    @field_validator("option_format")
    @classmethod
    def _option_fields(cls, text: str) -> str:
        check_template(text, OPTION_FIELDS)
        return text


class CampaignConfig(_Strict):
    kind: Literal["campaign"]
    id: Id
    name: str = ""
    enabled: bool = True
    priority: int = 0
    trigger: TriggerConfig
    eligibility: EligibilityConfig = Field(default_factory=EligibilityConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    offer: OfferConfig | None = None
    journey: Annotated[tuple[JourneyStep, ...], Field(min_length=1)]
    cooldown: Duration = 0.0
    """No new journey of this campaign for a subscriber within this long of the last one's start."""

    @model_validator(mode="after")
    def _reachable(self) -> CampaignConfig:
        ends_in = self.eligibility.ends_in_days
        days = self.trigger.days_before
        if ends_in is not None and days and max(days) < ends_in + 1:
            raise ValueError(
                f"eligibility.ends_in_days {ends_in} needs at least {ends_in + 1} days left, but the trigger "
                f"fires at {max(days)} days before the end at most: never eligible"
            )
        return self

    @model_validator(mode="after")
    def _offer_needed(self) -> CampaignConfig:
        offering = any(step.options != "none" for step in self.journey)
        if offering and self.offer is None:
            raise ValueError("a journey step offers packages: the campaign needs an offer section")
        return self


class ExperimentArm(_Strict):
    name: Id
    share: Annotated[int, Field(ge=0, le=100)]
    campaign: Id | None = None
    control: bool = False
    delay: Duration = 0.0

    @model_validator(mode="after")
    def _target(self) -> ExperimentArm:
        if self.control == (self.campaign is not None):
            raise ValueError("an arm names a campaign, or is the control arm (control: true), not both")
        return self


class ExperimentConfig(_Strict):
    kind: Literal["experiment"]
    id: Id
    salt: Annotated[str, Field(min_length=1)]
    arms: Annotated[tuple[ExperimentArm, ...], Field(min_length=2)]

    @field_validator("arms")
    @classmethod
    def _shares(cls, arms: tuple[ExperimentArm, ...]) -> tuple[ExperimentArm, ...]:
        total = sum(arm.share for arm in arms)
        if total != 100:
            raise ValueError(f"arm shares add up to {total}, not 100")
        _no_repeats("arm name", [arm.name for arm in arms])
        return arms


def _no_repeats(what: str, values: Sequence[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} appears twice")
        seen.add(value)


# --- the whole directory -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrossFileError:
    """A rule across files broken: ``source`` names the file (and ``path`` the place in it)."""

    source: str
    path: tuple[str | int, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class CampaignSet:
    """Every file of a campaign directory, validated one by one; ``check`` validates across them.

    ``sources`` maps each campaign / experiment id (and "catalogue", "policy") to the file it came from.
    """

    catalogue: CatalogueConfig
    policy: PolicyConfig
    campaigns: tuple[CampaignConfig, ...]
    experiments: tuple[ExperimentConfig, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)

    def package(self, package_id: str) -> PackageConfig | None:
        return next((p for p in self.catalogue.packages if p.id == package_id), None)

    def campaign(self, campaign_id: str) -> CampaignConfig | None:
        return next((c for c in self.campaigns if c.id == campaign_id), None)

    def check(self) -> list[CrossFileError]:
        """Unknown packages, unknown campaigns in experiments, a campaign in two experiments,
        repeated ids. (Channel limits, SMS parts and DSTK size, are checked by ``gateway.campaigns``.)"""
        errors: list[CrossFileError] = []
        catalogue = {p.id for p in self.catalogue.packages}
        seen_campaigns: set[str] = set()
        for campaign in self.campaigns:
            source = self.sources.get(campaign.id, campaign.id)
            if campaign.id in seen_campaigns:
                errors.append(CrossFileError(source, ("id",), f"campaign id {campaign.id!r} is used twice"))
            seen_campaigns.add(campaign.id)
            if campaign.offer is not None:
                for index, package_id in enumerate(campaign.offer.packages):
                    if package_id not in catalogue:
                        errors.append(
                            CrossFileError(
                                source,
                                ("offer", "packages", index),
                                f"package {package_id!r} is not in the catalogue",
                            )
                        )
            for index, package_id in enumerate(campaign.eligibility.packages):
                if package_id not in catalogue:
                    errors.append(
                        CrossFileError(
                            source,
                            ("eligibility", "packages", index),
                            f"package {package_id!r} is not in the catalogue",
                        )
                    )
        in_experiment: dict[str, str] = {}
        seen_experiments: set[str] = set()
        for experiment in self.experiments:
            source = self.sources.get(experiment.id, experiment.id)
            if experiment.id in seen_experiments:
                errors.append(
                    CrossFileError(source, ("id",), f"experiment id {experiment.id!r} is used twice")
                )
            seen_experiments.add(experiment.id)
            for index, arm in enumerate(experiment.arms):
                if arm.campaign is None:
                    continue
                if arm.campaign not in seen_campaigns:
                    errors.append(
                        CrossFileError(
                            source, ("arms", index, "campaign"), f"campaign {arm.campaign!r} does not exist"
                        )
                    )
                owner = in_experiment.setdefault(arm.campaign, experiment.id)
                if owner != experiment.id:
                    errors.append(
                        CrossFileError(
                            source,
                            ("arms", index, "campaign"),
                            f"campaign {arm.campaign!r} is already in experiment {owner!r}",
                        )
                    )
        return errors
