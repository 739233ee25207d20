"""Simulation scenarios (issue #8): the scenario file, the subscriber population and how people behave.

A scenario file (``configs/scenarios/*.yaml``, schema ``Scenario``, loaded by ``load_scenario`` with
``gateway.configfile.load_yaml_model`` so every mistake names file, line and reason) says

- when and how long: ``start`` (an ISO date-time with its zone offset), ``days``, the subscribers' time
  ``timezone`` and the ``seed`` every random draw derives from;
- who: ``subscribers`` consecutive MSISDNs from ``first_msisdn``, each with a base data package from the
  ``population.packages`` mix (ids of the campaign directory's catalogue, with shares), an airtime
  balance, a tenure, a top-up habit, a handset that can or cannot show SIM toolkit dialogs, and a daily
  data use spread over the day by an hourly profile;
- how they react (``behaviour``): to a DSTK dialog (OK / decline / ignore and after how long), to an SMS
  offer (dial a code or not, after how long), which option they choose, whether they save data after a
  90 % warning instead of buying, whether they buy in the data shop on their own once out of data (what
  a control arm converts with), how interest fades while an offer is late, and how much they use after
  buying.

Shares and probabilities are percentages (``62%`` or ``62``; a bare fraction such as ``0.62`` is refused
as ambiguous); distributions are mappings with a ``kind`` (``fixed``, ``uniform``, ``lognormal``,
``exponential``, ``choice``).

Determinism. Nothing here reads a clock, does I/O beyond loading the files, or touches the global
``random``. Every draw comes from a stream keyed by BLAKE2b of (seed, MSISDN, what is decided): the
population of subscriber N is the same whatever ``subscribers`` is, and a decision is the same whatever
order, or how often, it is asked for. The streams are counter-mode BLAKE2b (eight 53-bit uniforms per
block, Box-Muller normals), which is about four times faster than seeding a ``random.Random`` per
decision and independent of the Python version; ``rng`` gives a seeded ``random.Random`` for callers
that need one.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.functional_serializers import PlainSerializer
from pydantic.functional_validators import BeforeValidator

from campaign_core.config import CatalogueConfig, Duration
from campaign_core.model import ActivePackage, Profile
from gateway.campaigns.loader import load_campaign_dir
from gateway.configfile import load_yaml_model, yaml_line
from protocols.errors import ConfigError

__all__ = [
    "DEFAULT_HOURLY_PROFILE",
    "Action",
    "AfterPurchaseConfig",
    "Behaviour",
    "BehaviourConfig",
    "ChoiceConfig",
    "ChoiceDistribution",
    "DataUseConfig",
    "Distribution",
    "ExponentialDistribution",
    "FixedDistribution",
    "LogNormalDistribution",
    "PackageShare",
    "PopulationConfig",
    "Purchase",
    "Reaction",
    "Scenario",
    "SelfPurchaseConfig",
    "SimPackage",
    "SimSubscriber",
    "SmsOfferConfig",
    "StkDialogConfig",
    "TopUp",
    "TopUpConfig",
    "TopUpPlan",
    "UniformDistribution",
    "UsageParams",
    "WarningConfig",
    "assumptions",
    "build_population",
    "load_scenario",
    "profile",
    "rng",
]

DAY = 86400.0

DEFAULT_HOURLY_PROFILE: tuple[float, ...] = (
    # 00-05: night; 06-11: morning; 12-17: afternoon; 18-23: the evening peak
    1, 0.6, 0.4, 0.3, 0.3, 0.5,
    1.2, 2.2, 3.0, 3.2, 3.3, 3.6,
    4.2, 4.0, 3.7, 3.7, 4.0, 4.6,
    6.0, 7.2, 7.8, 7.2, 5.2, 2.6,
)  # fmt: skip
"""Relative data use per local hour (0-23) when a scenario gives none: low at night, an evening peak."""


# --- parameter types -----------------------------------------------------------------------------


def _parse_percent(value: object) -> float:
    """``"62%"`` or ``62`` -> 0.62; a bare fraction such as 0.62 is refused (0.62 % or 62 %?)."""
    if isinstance(value, bool):
        raise ValueError("a percentage is a number from 0 to 100, e.g. 62%")
    if isinstance(value, str):
        text = value.strip()
        if not text.endswith("%"):
            raise ValueError(f"{value!r} is not a percentage (write e.g. 62%)")
        try:
            number = float(text[:-1])
        except ValueError:
            raise ValueError(f"{value!r} is not a percentage (write e.g. 62%)") from None
    elif isinstance(value, int | float):
        number = float(value)
        if 0 < number < 1:
            raise ValueError(f"{value} is ambiguous: write {number * 100:g}% or {number:g}%")
    else:
        raise ValueError(f"{value!r} is not a percentage (write e.g. 62%)")
    if not 0 <= number <= 100 or math.isnan(number):
        raise ValueError(f"{value!r} is not between 0% and 100%")
    return number / 100


Percent = Annotated[
    float,
    BeforeValidator(_parse_percent),
    PlainSerializer(lambda fraction: f"{fraction * 100:.12g}%", return_type=str),
]
"""A share or probability, written as a percentage (``62%`` or ``62``), held as a fraction (0.62) and
dumped as the percentage again (so a dumped scenario validates back)."""

_LARGEST = 1e15
"""The largest magnitude a distribution's parameter may have: far above any balance, MB or seconds, and
low enough that a lognormal's draws (sigma up to 5) stay far from float overflow."""

Factor = Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)]
Number = Annotated[float, Field(ge=-_LARGEST, le=_LARGEST, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, le=_LARGEST, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Africa/Nairobi)") from None
    return value


def _seconds(value: float) -> str:
    """A duration for people: 40 s, 12 min, 6 h, 2 d."""
    if value < 60:
        return f"{value:.3g} s"
    if value < 3600:
        return f"{value / 60:.3g} min"
    if value < 2 * DAY:
        return f"{value / 3600:.3g} h"
    return f"{value / DAY:.3g} d"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.3g} %"


# --- distributions -------------------------------------------------------------------------------


_WORDS = struct.Struct(">8Q")


class _Stream:
    """Uniforms in [0, 1) from BLAKE2b in counter mode over ``key``; normals by Box-Muller."""

    __slots__ = ("_block", "_key", "_pool")

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._block = 0
        self._pool: list[float] = []

    def uniform(self) -> float:
        if not self._pool:
            digest = hashlib.blake2b(self._key + self._block.to_bytes(4, "big"), digest_size=64).digest()
            self._block += 1
            # eight 53-bit fractions, the block's first eight bytes first (pop takes from the end)
            self._pool = [(word >> 11) * 2.0**-53 for word in reversed(_WORDS.unpack(digest))]
        return self._pool.pop()

    def normal(self) -> float:
        radius = math.sqrt(-2.0 * math.log(1.0 - self.uniform()))
        return radius * math.cos(2.0 * math.pi * self.uniform())


def _key(seed: int, msisdn: str, key: str) -> bytes:
    return f"{seed}|{msisdn}|{key}".encode()


def rng(seed: int, msisdn: str, key: str) -> random.Random:
    """A ``random.Random`` for one (seed, subscriber, decision): seeded from BLAKE2b of the three, so it
    is the same whatever else was drawn before (no global random)."""
    digest = hashlib.blake2b(_key(seed, msisdn, key), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "big"))


class _Clamped(_Strict):
    min: Number | None = None
    max: Number | None = None

    @model_validator(mode="after")
    def _bounds(self) -> _Clamped:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max")
        return self

    def _clamp(self, value: float) -> float:
        if self.min is not None and value < self.min:
            return self.min
        if self.max is not None and value > self.max:
            return self.max
        return value

    def _bounds_text(self, unit: _Unit) -> str:
        parts = []
        if self.min is not None:
            parts.append(f", at least {unit(self.min)}")
        if self.max is not None:
            parts.append(f", at most {unit(self.max)}")
        return "".join(parts)


class _Unit:
    """How a distribution's values are written in the assumptions: ``seconds`` as durations, ``money``
    with two decimals, ``count`` as a number followed by ``singular`` / ``plural``."""

    def __init__(
        self, kind: Literal["seconds", "money", "count"], singular: str = "", plural: str | None = None
    ) -> None:
        self.kind = kind
        self.singular = singular
        self.plural = singular if plural is None else plural

    def __call__(self, value: float) -> str:
        if self.kind == "seconds":
            return _seconds(value)
        if self.kind == "money":
            return f"{value:.2f} {self.singular}".rstrip()
        number = f"{value:.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.3g}"
        return f"{number} {self.singular if value == 1 else self.plural}".rstrip()


class FixedDistribution(_Strict):
    """Always ``value``."""

    kind: Literal["fixed"]
    value: Number

    def sample(self, stream: _Stream) -> float:
        return self.value

    def lowest(self) -> float:
        return self.value

    def mean(self) -> float:
        return self.value

    def describe(self, unit: _Unit) -> str:
        return f"always {unit(self.value)}"


class UniformDistribution(_Strict):
    """Evenly between ``low`` and ``high``."""

    kind: Literal["uniform"]
    low: Number
    high: Number

    @model_validator(mode="after")
    def _order(self) -> UniformDistribution:
        if self.low > self.high:
            raise ValueError("low is above high")
        return self

    def sample(self, stream: _Stream) -> float:
        return self.low + (self.high - self.low) * stream.uniform()

    def lowest(self) -> float:
        return self.low

    def mean(self) -> float:
        return (self.low + self.high) / 2

    def describe(self, unit: _Unit) -> str:
        return f"evenly between {unit(self.low)} and {unit(self.high)}"


class LogNormalDistribution(_Clamped):
    """``exp(N(mu, sigma))``, the usual shape of reaction times, balances and data use; give its
    ``median`` (= exp(mu)) or its ``mean`` (= exp(mu + sigma^2 / 2)), not both."""

    kind: Literal["lognormal"]
    median: Positive | None = None
    mean_value: Annotated[Positive | None, Field(alias="mean")] = None
    sigma: Annotated[float, Field(ge=0, le=5, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _one_centre(self) -> LogNormalDistribution:
        if (self.median is None) == (self.mean_value is None):
            raise ValueError("give either median or mean")
        return self

    @property
    def mu(self) -> float:
        if self.median is not None:
            return math.log(self.median)
        assert self.mean_value is not None
        return math.log(self.mean_value) - self.sigma**2 / 2

    def sample(self, stream: _Stream) -> float:
        return self._clamp(math.exp(self.mu + self.sigma * stream.normal()))

    def lowest(self) -> float:
        return 0.0 if self.min is None else self.min

    def mean(self) -> float:
        """The mean before clamping."""
        return math.exp(self.mu + self.sigma**2 / 2)

    def describe(self, unit: _Unit) -> str:
        return (
            f"lognormal with a median of {unit(math.exp(self.mu))} and a mean of {unit(self.mean())}"
            f" (sigma {self.sigma:g}{self._bounds_text(unit)})"
        )


class ExponentialDistribution(_Clamped):
    """Memoryless waits with the given ``mean``."""

    kind: Literal["exponential"]
    mean_value: Annotated[Positive, Field(alias="mean")]

    def sample(self, stream: _Stream) -> float:
        return self._clamp(-self.mean_value * math.log(1.0 - stream.uniform()))

    def lowest(self) -> float:
        return 0.0 if self.min is None else self.min

    def mean(self) -> float:
        return self.mean_value

    def describe(self, unit: _Unit) -> str:
        return (
            f"exponential with a mean of {unit(self.mean_value)} (median"
            f" {unit(self.mean_value * math.log(2))}{self._bounds_text(unit)})"
        )


class ChoiceDistribution(_Strict):
    """One of ``values``, with ``weights`` (relative; equal when left out)."""

    kind: Literal["choice"]
    values: Annotated[tuple[Number, ...], Field(min_length=1)]
    weights: tuple[Annotated[float, Field(ge=0, allow_inf_nan=False)], ...] | None = None

    @model_validator(mode="after")
    def _weights(self) -> ChoiceDistribution:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(f"{len(self.values)} values but {len(self.weights)} weights")
            if sum(self.weights) <= 0:
                raise ValueError("the weights add up to 0")
        return self

    def _cumulative(self) -> list[float]:
        weights = self.weights or (1.0,) * len(self.values)
        total = sum(weights)
        running, out = 0.0, []
        for weight in weights:
            running += weight
            out.append(running / total)
        return out

    def sample(self, stream: _Stream) -> float:
        u = stream.uniform()
        for value, edge in zip(self.values, self._cumulative(), strict=True):
            if u < edge:
                return value
        return self.values[-1]

    def lowest(self) -> float:
        return min(self.values)

    def mean(self) -> float:
        weights = self.weights or (1.0,) * len(self.values)
        return sum(v * w for v, w in zip(self.values, weights, strict=True)) / sum(weights)

    def describe(self, unit: _Unit) -> str:
        weights = self.weights or (1.0,) * len(self.values)
        total = sum(weights)
        return "one of " + ", ".join(
            f"{unit(v)} ({_percent(w / total)})" for v, w in zip(self.values, weights, strict=True)
        )


Distribution = Annotated[
    FixedDistribution
    | UniformDistribution
    | LogNormalDistribution
    | ExponentialDistribution
    | ChoiceDistribution,
    Field(discriminator="kind"),
]
"""A distribution of one number: ``{kind: lognormal, median: 40, sigma: 0.8, max: 600}`` etc."""


def _non_negative(distribution: Distribution, what: str) -> Distribution:
    if distribution.lowest() < 0:
        raise ValueError(f"{what} cannot be negative (its distribution reaches {distribution.lowest():g})")
    return distribution


def _positive(distribution: Distribution, what: str) -> Distribution:
    if distribution.lowest() <= 0:
        raise ValueError(f"{what} must be above 0 (its distribution reaches {distribution.lowest():g})")
    return distribution


# --- the scenario file ---------------------------------------------------------------------------


class PackageShare(_Strict):
    """A share of the subscribers holding ``package`` (a catalogue id) as their base data package.

    ``quota_mb`` / ``validity_days`` / ``price`` / ``recurring`` default to the catalogue's (filled in by
    ``Scenario.resolved``); give them to simulate a base package that the catalogue does not sell."""

    package: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    share: Percent
    segment: Annotated[str, Field(max_length=64)] = "prepaid"
    quota_mb: Annotated[int, Field(gt=0)] | None = None
    validity_days: Annotated[int, Field(gt=0, le=366)] | None = None
    price: Annotated[Decimal, Field(ge=0, decimal_places=4)] | None = None
    recurring: bool | None = None

    @field_validator("price", mode="before")
    @classmethod
    def _price_text(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError('write prices as strings (e.g. "250.00") so they stay exact')
        return value


class TopUpConfig(_Strict):
    """Airtime top-ups: each subscriber's usual ``interval_days`` and ``amount`` are drawn once; each gap
    then varies by up to ``jitter`` (0.3: 70 % to 130 % of the usual interval)."""

    interval_days: Distribution
    amount: Distribution
    jitter: Annotated[float, Field(ge=0, lt=1)] = 0.3

    @field_validator("interval_days")
    @classmethod
    def _interval(cls, value: Distribution) -> Distribution:
        return _positive(value, "a top-up interval")

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: Distribution) -> Distribution:
        return _non_negative(value, "a top-up amount")


class DataUseConfig(_Strict):
    """Data use: each subscriber's average ``mb_per_day`` is drawn once; each day then varies around it
    (lognormal with mean 1 and ``day_sigma``) and is spread over the local hours by ``hourly_profile``
    (24 relative weights, hour 0 first)."""

    mb_per_day: Distribution
    day_sigma: Annotated[float, Field(ge=0, le=3)] = 0.35
    hourly_profile: tuple[Annotated[float, Field(ge=0, allow_inf_nan=False)], ...] = DEFAULT_HOURLY_PROFILE

    @field_validator("mb_per_day")
    @classmethod
    def _use(cls, value: Distribution) -> Distribution:
        return _non_negative(value, "data use")

    @field_validator("hourly_profile")
    @classmethod
    def _hours(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(value) != 24:
            raise ValueError(f"the hourly profile has {len(value)} weights, not 24 (one per hour, 0-23)")
        if sum(value) <= 0:
            raise ValueError("the hourly profile's weights add up to 0")
        return value


class PopulationConfig(_Strict):
    """Who the subscribers are (see the module docstring)."""

    packages: Annotated[tuple[PackageShare, ...], Field(min_length=1)]
    balance: Distribution
    """Airtime balance at the start, in the catalogue's currency."""
    tenure_days: Distribution
    top_up: TopUpConfig
    stk_capable: Percent
    """Share of handsets (and SIMs) that show SIM toolkit dialogs; the others get only SMS."""
    data_use: DataUseConfig

    @field_validator("packages")
    @classmethod
    def _shares(cls, packages: tuple[PackageShare, ...]) -> tuple[PackageShare, ...]:
        total = sum(p.share for p in packages)
        if abs(total - 1) > 1e-9:
            raise ValueError(f"package shares add up to {total * 100:g}%, not 100%")
        seen: set[str] = set()
        for p in packages:
            if p.package in seen:
                raise ValueError(f"package {p.package!r} appears twice")
            seen.add(p.package)
        return packages

    @field_validator("balance")
    @classmethod
    def _balance(cls, value: Distribution) -> Distribution:
        return _non_negative(value, "a balance")

    @field_validator("tenure_days")
    @classmethod
    def _tenure(cls, value: Distribution) -> Distribution:
        return _non_negative(value, "a tenure")


class StkDialogConfig(_Strict):
    """A DSTK dialog on the handset: ``ok`` press OK (or pick an item), ``decline`` press No / Back, the
    rest ignore it (the terminal times out); ``delay_s``: seconds until the key press."""

    ok: Percent
    decline: Percent
    delay_s: Distribution

    @model_validator(mode="after")
    def _total(self) -> StkDialogConfig:
        if self.ok + self.decline > 1 + 1e-9:
            raise ValueError(f"ok and decline add up to {(self.ok + self.decline) * 100:g}%, over 100%")
        _non_negative(self.delay_s, "a delay")
        return self


class SmsOfferConfig(_Strict):
    """An SMS offer with USSD codes: ``dial`` the share who dial a code, ``delay_s`` after how long."""

    dial: Percent
    delay_s: Distribution

    @field_validator("delay_s")
    @classmethod
    def _delay(cls, value: Distribution) -> Distribution:
        return _non_negative(value, "a delay")


class ChoiceConfig(_Strict):
    """Which of several options a buyer picks (by volume): the ``largest``, the ``smallest`` or a
    ``middle`` one (the lower middle of an even count: 200 MB of 100/200/500/1000). Adds up to 100 %."""

    largest: Percent
    middle: Percent
    smallest: Percent

    @model_validator(mode="after")
    def _total(self) -> ChoiceConfig:
        total = self.largest + self.middle + self.smallest
        if abs(total - 1) > 1e-9:
            raise ValueError(f"largest, middle and smallest add up to {total * 100:g}%, not 100%")
        return self


class WarningConfig(_Strict):
    """After a 90 % usage warning, ``save`` the share who ration data instead of buying; they then use
    ``usage_factor`` times their usual data until the package renews."""

    save: Percent
    usage_factor: Factor = 0.5


class SelfPurchaseConfig(_Strict):
    """Out of data and not (yet) sold to: ``probability`` of buying in the data shop on one's own (the
    control arm's conversions), ``delay_s`` after running out; ``choice`` of package (default: the
    behaviour's ``choice``)."""

    probability: Percent
    delay_s: Distribution
    choice: ChoiceConfig | None = None

    @field_validator("delay_s")
    @classmethod
    def _delay(cls, value: Distribution) -> Distribution:
        return _non_negative(value, "a delay")


class AfterPurchaseConfig(_Strict):
    """After buying extra data a subscriber uses ``usage_factor`` times their usual data."""

    usage_factor: Factor = 1.0


class BehaviourConfig(_Strict):
    """How the subscribers react (see the module docstring)."""

    stk_dialog: StkDialogConfig
    sms_offer: SmsOfferConfig
    choice: ChoiceConfig
    interest_half_life: Duration | None = None
    """The chance of taking an offer halves for every this long since the need arose (the trigger);
    None: an offer is as welcome two days late as at once."""
    warning: WarningConfig
    self_purchase: SelfPurchaseConfig
    after_purchase: AfterPurchaseConfig = AfterPurchaseConfig()

    @field_validator("interest_half_life")
    @classmethod
    def _half_life(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("a half-life must be above 0 (leave it out for no fading)")
        return value


class Scenario(_Strict):
    """A scenario file: who is simulated, for how long, and how they behave."""

    name: Annotated[str, Field(max_length=100)] = ""
    """Shown in the report; ``load_scenario`` uses the file's stem when empty."""
    seed: Annotated[int, Field(ge=0, lt=2**63)]
    start: AwareDatetime
    days: Annotated[int, Field(ge=1, le=366)]
    subscribers: Annotated[int, Field(ge=1, le=10_000_000)]
    first_msisdn: Annotated[str, Field(pattern=r"^[1-9][0-9]{4,14}$")] = "254700000000"
    campaigns: str = "configs/campaigns"
    """The campaign directory (its catalogue names the packages); relative to the working directory."""
    timezone: str = "UTC"
    population: PopulationConfig
    behaviour: BehaviourConfig

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value: object) -> object:
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("start needs its zone offset, e.g. 2026-06-01T00:00:00+03:00")
        return value

    @field_validator("start")
    @classmethod
    def _start_year(cls, value: datetime) -> datetime:
        # packages begin up to a year before the start and the run ends up to a year after it; the
        # traffic capture's 32-bit timestamps end in 2106 and the calendar in 9999
        if not 2000 <= value.year <= 2099:
            raise ValueError(f"start {value.isoformat()} is out of range: a year from 2000 to 2099")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _zone(value)

    @model_validator(mode="after")
    def _numbers_fit(self) -> Scenario:
        last = int(self.first_msisdn) + self.subscribers - 1
        if len(str(last)) != len(self.first_msisdn):
            raise ValueError(f"{self.subscribers} subscribers from {self.first_msisdn} overflow the number")
        return self

    @property
    def start_time(self) -> float:
        """``start`` in POSIX seconds."""
        return self.start.timestamp()

    @property
    def end_time(self) -> float:
        return self.start_time + self.days * DAY

    def resolved(self, catalogue: CatalogueConfig) -> Scenario:
        """This scenario with every package's quota, validity, price and recurrence taken from
        ``catalogue`` where the file leaves them out; ``ValueError`` names a package it lacks."""
        by_id = {p.id: p for p in catalogue.packages}
        shares = []
        for share in self.population.packages:
            package = by_id.get(share.package)
            if package is None:
                if None in (share.quota_mb, share.validity_days, share.price, share.recurring):
                    known = ", ".join(sorted(by_id))
                    raise ValueError(f"package {share.package!r} is not in the catalogue ({known})")
                shares.append(share)
                continue
            shares.append(
                share.model_copy(
                    update={
                        "quota_mb": package.volume_mb if share.quota_mb is None else share.quota_mb,
                        "validity_days": (
                            package.validity_days if share.validity_days is None else share.validity_days
                        ),
                        "price": package.price if share.price is None else share.price,
                        "recurring": package.recurring if share.recurring is None else share.recurring,
                    }
                )
            )
        population = self.population.model_copy(update={"packages": tuple(shares)})
        return self.model_copy(update={"population": population})


def load_scenario(
    path: str | Path,
    *,
    catalogue: CatalogueConfig | None = None,
    base: str | Path | None = None,
) -> Scenario:
    """Read and validate the scenario file at ``path`` and resolve its packages against ``catalogue``
    (default: the catalogue of the scenario's ``campaigns`` directory, read relative to ``base`` or the
    working directory). ``ConfigError`` names the file, the line and the reason."""
    file = str(path)
    scenario = load_yaml_model(path, Scenario)
    if not scenario.name:
        scenario = scenario.model_copy(update={"name": Path(path).stem})
    if catalogue is None:
        directory = Path(scenario.campaigns)
        if base is not None and not directory.is_absolute():
            directory = Path(base) / directory
        if not directory.is_dir():  # reported here, at the scenario's line, not as a bare directory name
            relative = (
                "" if Path(scenario.campaigns).is_absolute() else f" (from {base or 'the working directory'})"
            )
            raise ConfigError(
                f"campaigns: {directory} is not a directory of campaign files{relative}",
                file,
                yaml_line(path, ("campaigns",)),
            )
        catalogue = load_campaign_dir(directory, ussd_menus=None).catalogue
    for index, share in enumerate(scenario.population.packages):
        if not any(p.id == share.package for p in catalogue.packages) and None in (
            share.quota_mb,
            share.validity_days,
            share.price,
            share.recurring,
        ):
            known = ", ".join(sorted(p.id for p in catalogue.packages))
            raise ConfigError(
                f"population.packages.{index}.package: {share.package!r} is not in the catalogue ({known})",
                file,
                yaml_line(path, ("population", "packages", index, "package")),
            )
    return scenario.resolved(catalogue)


# --- the population ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimPackage:
    """A subscriber's base data package at the start: its current period began at ``period_start``
    (POSIX seconds, before the scenario's start) and ``used_mb_at_start`` of it is used."""

    package_id: str
    quota_mb: int
    validity_days: int
    price: Decimal
    recurring: bool
    period_start: float
    used_mb_at_start: float

    @property
    def period_end(self) -> float:
        return self.period_start + self.validity_days * DAY


@dataclass(frozen=True, slots=True)
class TopUpPlan:
    """A subscriber's top-up habit: ``amount`` about every ``interval_days``, the first ``first_in_days``
    after the scenario's start."""

    interval_days: float
    amount: Decimal
    first_in_days: float


@dataclass(frozen=True, slots=True)
class UsageParams:
    """A subscriber's data use: ``mean_mb_per_day`` on an ordinary day, varying by ``day_sigma``."""

    mean_mb_per_day: float
    day_sigma: float


@dataclass(frozen=True, slots=True)
class SimSubscriber:
    """One simulated subscriber, as drawn by ``build_population``."""

    msisdn: str
    segment: str
    package: SimPackage
    balance: Decimal
    tenure_days: int
    top_up: TopUpPlan
    stk_capable: bool
    usage: UsageParams
    zone: str


_START_FILL_CAP = 0.8
"""A package is at most this full at the start, so every subscriber's first warning falls inside the run."""


def _money(value: float) -> Decimal:
    return Decimal(f"{max(value, 0.0):.2f}")


def _pick_package(shares: Sequence[PackageShare], u: float) -> PackageShare:
    running = 0.0
    for share in shares:
        running += share.share
        if u < running:
            return share
    return shares[-1]


def _subscriber(scenario: Scenario, index: int) -> SimSubscriber:
    msisdn = str(int(scenario.first_msisdn) + index)
    population = scenario.population
    stream = _Stream(_key(scenario.seed, msisdn, "population"))
    share = _pick_package(population.packages, stream.uniform())
    if (
        share.quota_mb is None
        or share.validity_days is None
        or share.price is None
        or share.recurring is None
    ):
        raise ConfigError(
            f"package {share.package!r} is not resolved: load the scenario with load_scenario or "
            "Scenario.resolved(catalogue)"
        )
    mean_use = population.data_use.mb_per_day.sample(stream)
    elapsed_days = stream.uniform() * share.validity_days
    package = SimPackage(
        package_id=share.package,
        quota_mb=share.quota_mb,
        validity_days=share.validity_days,
        price=share.price,
        recurring=share.recurring,
        period_start=scenario.start_time - elapsed_days * DAY,
        used_mb_at_start=min(mean_use * elapsed_days, share.quota_mb * _START_FILL_CAP),
    )
    interval = population.top_up.interval_days.sample(stream)
    return SimSubscriber(
        msisdn=msisdn,
        segment=share.segment,
        package=package,
        balance=_money(population.balance.sample(stream)),
        tenure_days=round(population.tenure_days.sample(stream)),
        top_up=TopUpPlan(
            interval_days=interval,
            amount=_money(population.top_up.amount.sample(stream)),
            first_in_days=stream.uniform() * interval,
        ),
        stk_capable=stream.uniform() < population.stk_capable,
        usage=UsageParams(mean_mb_per_day=mean_use, day_sigma=population.data_use.day_sigma),
        zone=scenario.timezone,
    )


def build_population(scenario: Scenario) -> list[SimSubscriber]:
    """The scenario's subscribers, in MSISDN order. Deterministic: subscriber N is drawn from (seed,
    its MSISDN) alone, so the same seed gives the same people and a larger population only adds some."""
    return [_subscriber(scenario, index) for index in range(scenario.subscribers)]


def profile(subscriber: SimSubscriber) -> Profile:
    """What the campaign engine's eligibility rules see of ``subscriber`` (billing's view at the start)."""
    zone = ZoneInfo(subscriber.zone)
    start = datetime.fromtimestamp(subscriber.package.period_start, zone).date()
    end = start + timedelta(days=subscriber.package.validity_days)
    return Profile(
        msisdn=subscriber.msisdn,
        segment=subscriber.segment,
        tenure_days=subscriber.tenure_days,
        timezone=subscriber.zone,
        stk_capable=subscriber.stk_capable,
        packages=(
            ActivePackage(
                package_id=subscriber.package.package_id,
                start_date=start.isoformat(),
                end_date=end.isoformat(),
                recurring=subscriber.package.recurring,
            ),
        ),
    )


# --- behaviour -----------------------------------------------------------------------------------


class Action(StrEnum):
    """What a subscriber does with an offer."""

    OK = "ok"
    """DSTK: OK pressed (or an item picked); SMS: a code dialled."""
    DECLINE = "decline"
    """DSTK only: No / Back pressed."""
    IGNORE = "ignore"
    """Nothing (the dialog times out; the SMS is left unanswered)."""


@dataclass(frozen=True, slots=True)
class Reaction:
    """A subscriber's reaction to one offer: ``action`` after ``delay_s`` seconds (0 when ignored),
    choosing ``option`` (an index into the options asked about; None unless OK)."""

    action: Action
    delay_s: float = 0.0
    option: int | None = None

    @property
    def accepted(self) -> bool:
        return self.action is Action.OK


@dataclass(frozen=True, slots=True)
class Purchase:
    """A purchase in the data shop on the subscriber's own: ``option`` (an index into the packages asked
    about) ``delay_s`` seconds after running out."""

    delay_s: float
    option: int


@dataclass(frozen=True, slots=True)
class TopUp:
    """An airtime top-up at ``at`` (POSIX seconds)."""

    at: float
    amount: Decimal


def _choose(choice: ChoiceConfig, volumes: Sequence[int], u: float) -> int:
    """The index in ``volumes`` of the option a buyer picks with the uniform ``u``."""
    order = sorted(range(len(volumes)), key=lambda i: (volumes[i], i))
    if u < choice.largest:
        return order[-1]
    if u < choice.largest + choice.middle:
        return order[(len(order) - 1) // 2]
    return order[0]


@lru_cache(maxsize=4096)
def _local_hours(zone_name: str, start: datetime, day: int) -> tuple[float, ...]:
    """POSIX seconds of the start of each local hour 0-23 of ``day`` (0: the local date of ``start``) in
    ``zone_name``; on a day with a clock change, hours that do not exist are where the zone puts them."""
    zone = ZoneInfo(zone_name)
    first: date = start.astimezone(zone).date()
    local = datetime.combine(first + timedelta(days=day), datetime.min.time())
    midnight = local.replace(tzinfo=zone).timestamp()
    following = (local + timedelta(days=1)).replace(tzinfo=zone).timestamp()
    if following - midnight == DAY:
        return tuple(midnight + 3600.0 * hour for hour in range(24))
    return tuple(local.replace(hour=hour, tzinfo=zone).timestamp() for hour in range(24))


@dataclass(frozen=True, slots=True)
class Behaviour:
    """The scenario's behaviour model as pure functions of (seed, subscriber, decision key).

    ``key`` arguments name the decision's occasion (an offer id, a trigger id, "period-3"): the same key
    gives the same answer however often and in whatever order it is asked; different keys are
    independent draws. ``age_s`` is how long ago the need arose (the trigger) when the offer is seen:
    with ``interest_half_life`` the chance of OK / dialling halves for every half-life of it."""

    seed: int
    config: BehaviourConfig
    population: PopulationConfig
    start: datetime

    @classmethod
    def of(cls, scenario: Scenario) -> Behaviour:
        return cls(scenario.seed, scenario.behaviour, scenario.population, scenario.start)

    def _stream(self, subscriber: SimSubscriber, key: str) -> _Stream:
        return _Stream(_key(self.seed, subscriber.msisdn, key))

    def interest(self, age_s: float) -> float:
        """The factor on taking an offer seen ``age_s`` seconds after the trigger (1 without fading)."""
        half_life = self.config.interest_half_life
        if half_life is None or age_s <= 0:
            return 1.0
        return float(0.5 ** (age_s / half_life))

    def stk_reaction(
        self, subscriber: SimSubscriber, offer_key: str, options: Sequence[int], age_s: float = 0.0
    ) -> Reaction:
        """The reaction to a DSTK dialog offering ``options`` (their volumes in MB, in the dialog's
        order; one for a confirm dialog)."""
        stream = self._stream(subscriber, f"stk|{offer_key}")
        dialog = self.config.stk_dialog
        u, delay, pick = stream.uniform(), dialog.delay_s.sample(stream), stream.uniform()
        ok = dialog.ok * self.interest(age_s)
        if u < ok:
            if not options:
                return Reaction(Action.IGNORE)
            return Reaction(Action.OK, delay, _choose(self.config.choice, options, pick))
        if u < ok + dialog.decline:
            return Reaction(Action.DECLINE, delay)
        return Reaction(Action.IGNORE)

    def sms_reaction(
        self, subscriber: SimSubscriber, offer_key: str, options: Sequence[int], age_s: float = 0.0
    ) -> Reaction:
        """The reaction to an SMS listing ``options`` (volumes in MB) with their USSD codes: OK (dial the
        chosen option's code after ``delay_s``) or IGNORE."""
        stream = self._stream(subscriber, f"sms|{offer_key}")
        offer = self.config.sms_offer
        u, delay, pick = stream.uniform(), offer.delay_s.sample(stream), stream.uniform()
        if u < offer.dial * self.interest(age_s) and options:
            return Reaction(Action.OK, delay, _choose(self.config.choice, options, pick))
        return Reaction(Action.IGNORE)

    def saves_after_warning(self, subscriber: SimSubscriber, key: str) -> bool:
        """Whether the subscriber rations data after the usage warning ``key`` (then uses
        ``saving_factor`` times the usual) instead of buying."""
        return self._stream(subscriber, f"save|{key}").uniform() < self.config.warning.save

    @property
    def saving_factor(self) -> float:
        return self.config.warning.usage_factor

    @property
    def after_purchase_factor(self) -> float:
        return self.config.after_purchase.usage_factor

    def self_purchase(self, subscriber: SimSubscriber, key: str, options: Sequence[int]) -> Purchase | None:
        """Whether the subscriber, out of data (occasion ``key``), buys one of ``options`` (volumes in MB)
        in the data shop on their own, and when; None: does not."""
        stream = self._stream(subscriber, f"shop|{key}")
        config = self.config.self_purchase
        u, delay, pick = stream.uniform(), config.delay_s.sample(stream), stream.uniform()
        if u >= config.probability or not options:
            return None
        return Purchase(delay, _choose(config.choice or self.config.choice, options, pick))

    def daily_usage_mb(self, subscriber: SimSubscriber, day: int) -> float:
        """MB used on ``day`` (0: the local date of the scenario's start) at the usual rate."""
        sigma = subscriber.usage.day_sigma
        z = self._stream(subscriber, f"use|{day}").normal()
        return subscriber.usage.mean_mb_per_day * math.exp(sigma * z - sigma * sigma / 2)

    def hourly_usage_mb(self, subscriber: SimSubscriber, day: int) -> tuple[float, ...]:
        """``daily_usage_mb`` spread over the 24 local hours by the hourly profile (hour 0 first)."""
        total = self.daily_usage_mb(subscriber, day)
        weights = self.population.data_use.hourly_profile
        scale = total / sum(weights)
        return tuple(weight * scale for weight in weights)

    def day_start(self, subscriber: SimSubscriber, day: int) -> float:
        """POSIX seconds of local midnight on ``day`` in the subscriber's zone."""
        return _local_hours(subscriber.zone, self.start, day)[0]

    def usage_hours(self, subscriber: SimSubscriber, day: int) -> tuple[tuple[float, float], ...]:
        """(start of the local hour in POSIX seconds, MB used in it) for each hour of ``day``."""
        return tuple(
            zip(
                _local_hours(subscriber.zone, self.start, day),
                self.hourly_usage_mb(subscriber, day),
                strict=True,
            )
        )

    def top_ups(self, subscriber: SimSubscriber, until: float) -> tuple[TopUp, ...]:
        """The subscriber's top-ups from the scenario's start up to ``until`` (POSIX seconds)."""
        plan = subscriber.top_up
        out: list[TopUp] = []
        at = self.start.timestamp() + plan.first_in_days * DAY
        jitter = self.population.top_up.jitter
        n = 0
        while at <= until:
            out.append(TopUp(at, plan.amount))
            n += 1
            u = self._stream(subscriber, f"topup|{n}").uniform()
            at += plan.interval_days * DAY * (1 - jitter + 2 * jitter * u)
        return tuple(out)


# --- the assumptions, in words -------------------------------------------------------------------


def _choice_text(choice: ChoiceConfig) -> str:
    return (
        f"{_percent(choice.largest)} choose the largest, {_percent(choice.middle)} a middle one and "
        f"{_percent(choice.smallest)} the smallest"
    )


def _busiest_hours(profile_weights: Sequence[float]) -> str:
    total = sum(profile_weights)
    best = max(range(24), key=lambda h: sum(profile_weights[(h + i) % 24] for i in range(3)))
    share = sum(profile_weights[(best + i) % 24] for i in range(3)) / total
    return f"{best:02d}:00-{(best + 3) % 24:02d}:00 local time carries {_percent(share)} of a day's use"


def assumptions(
    scenario: Scenario, currency: str = "", *, payg_price_per_mb: Decimal = Decimal(0)
) -> list[str]:
    """Every assumption of the scenario in plain words, for the report (``currency``: of the catalogue;
    ``payg_price_per_mb``: billing's pay-as-you-go price, which the billing config sets, not the scenario)."""
    population = scenario.population
    behaviour = scenario.behaviour
    money = _Unit("money", currency)
    seconds = _Unit("seconds")
    days = _Unit("count", "day", "days")
    last = int(scenario.first_msisdn) + scenario.subscribers - 1
    packages = []
    for share in population.packages:
        details = []
        if share.quota_mb is not None and share.validity_days is not None:
            details.append(f"{share.quota_mb} MB for {share.validity_days} days")
        if share.price is not None:
            details.append(f"{share.price:.2f} {currency}".rstrip())
        if share.recurring:
            details.append("recurring")
        detail = f" ({', '.join(details)})" if details else ""
        packages.append(f"{_percent(share.share)} {share.package}{detail}, segment {share.segment}")
    top_up = population.top_up
    data_use = population.data_use
    stk = behaviour.stk_dialog
    ignore = max(0.0, 1 - stk.ok - stk.decline)
    lines = [
        f"{scenario.subscribers} subscribers (MSISDNs {scenario.first_msisdn} to {last}), seed {scenario.seed},"
        f" simulated for {scenario.days} days from {scenario.start.isoformat()} in {scenario.timezone}.",
        "Base data packages: " + "; ".join(packages) + ". At the start each package is somewhere in its"
        f" period (evenly spread) and at most {_percent(_START_FILL_CAP)} used.",
        f"Airtime balance at the start: {population.balance.describe(money)}.",
        f"Tenure: {population.tenure_days.describe(days)}.",
        f"Top-ups: each subscriber's usual interval is {top_up.interval_days.describe(days)}; the amount"
        f" {top_up.amount.describe(money)}; each gap varies by up to {_percent(top_up.jitter)} either way.",
        f"{_percent(population.stk_capable)} of handsets show SIM toolkit (DSTK) dialogs; the others can"
        " only get SMS.",
        f"Data use: each subscriber's average day is {data_use.mb_per_day.describe(_Unit('count', 'MB'))};"
        f" each day varies around it (lognormal, sigma {data_use.day_sigma:g});"
        f" {_busiest_hours(data_use.hourly_profile)}.",
        f"{_percent(stk.ok)} of subscribers who see a DSTK dialog at the trigger press OK,"
        f" {_percent(stk.decline)} press"
        f" No and {_percent(ignore)} ignore it; the key press comes after a delay that is"
        f" {stk.delay_s.describe(seconds)}.",
        f"{_percent(behaviour.sms_offer.dial)} of subscribers who get an SMS offer at the trigger dial one"
        " of its codes,"
        f" after a delay that is {behaviour.sms_offer.delay_s.describe(seconds)}; the others ignore it.",
        f"Offered several packages, {_choice_text(behaviour.choice)}.",
    ]
    half_life = behaviour.interest_half_life
    if half_life is None:
        lines.append("Interest does not fade: an offer sent late is taken as often as one sent at once.")
    else:
        late = [1 / 0.5 ** (hours * 3600 / half_life) for hours in (24, 48)]
        lines.append(
            f"Interest fades: the chance of taking an offer halves for every {_seconds(half_life)} since"
            f" the trigger, so an offer sent 24 h late is taken {late[0]:.3g} times less often, and one"
            f" sent 48 h late {late[1]:.3g} times less often, than one sent at once."
        )
    warning = behaviour.warning
    shop = behaviour.self_purchase
    lines += [
        f"{_percent(warning.save)} of subscribers who get a 90 % usage warning save data instead of"
        f" buying; they then use {_percent(warning.usage_factor)} of their usual data until the package"
        " renews.",
        f"{_percent(shop.probability)} of subscribers who run out of data and take no offer buy a package"
        " in the data shop on their own (what the control arm converts with), after a delay that is"
        f" {shop.delay_s.describe(seconds)}; {_choice_text(shop.choice or behaviour.choice)}.",
        f"After buying extra data a subscriber uses {_percent(behaviour.after_purchase.usage_factor)} of"
        " their usual data.",
    ]
    price = f"{payg_price_per_mb:f} {currency}".rstrip()
    payg = (
        f"charged pay-as-you-go at {price} per MB from the airtime balance, never below 0 (what the"
        " balance cannot pay is not charged)"
        if payg_price_per_mb > 0
        else "pay-as-you-go and not charged"
    )
    lines.append(
        "Billing renews a recurring package at the end of its validity (local midnight) on its terms (a base"
        " package on those above, a bought one on the catalogue's), paid from the airtime balance, and the new period is reported to the gateway (by DPI, or, for the"
        " Diameter half, by billing's JSON feed, since Gy has no message for it); when the balance is"
        " short the package lapses (no debt). A renewal ends rationing and the extra use after a purchase."
        f" Use beyond every package is {payg}."
    )
    return lines
