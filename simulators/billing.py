"""Billing / OCS simulator: subscribers, data packages, credit scoring and "buy now, pay later" (issue #8).

``Billing`` is the pure state (no asyncio, no clock: ``now``, epoch seconds, is passed to every call
that depends on time). ``BillingServer`` serves it over HTTP/1.1 with JSON bodies (RFC 9110, RFC 8259)
on loopback, with fault injection, for the gateway's billing client (``gateway.billing``).

Subscribers
    msisdn, airtime balance and outstanding credit (``Decimal``), tenure (it grows with ``now``), top-up
    history ``(at, amount)``, IANA zone (package dates are local ``YYYY-MM-DD``) and the data packages
    held (quota, use, start/end date, recurring, trial). A package bought at ``now`` starts on the local
    date of ``now`` and ends ``validity_days - 1`` days later (inclusive: a daily package ends the day
    it starts).

Credit scoring (``ScoringRules``, evaluated by ``Billing.credit_score`` at ``now``)
    1. tenure below ``min_tenure_days``: no credit;
    2. fewer than ``min_topups`` top-ups in the last ``window_days``: no credit;
    3. otherwise ``base + per_topup * count + topup_share * sum`` over the top-ups in the window,
       capped at ``cap``;
    4. minus the outstanding debt (credit activations and their fees not yet repaid), not below 0;
    5. rounded down to a multiple of ``step``.

Ledger (``LedgerEntry``: at, msisdn, kind, amount > 0, reference)
    ``activation`` (an offer's package, paid from the balance or on credit; reference = the offer id),
    ``credit_fee`` (``credit_fee_percent`` of the price, rounded half-up to cents, added to the debt),
    ``purchase`` (bought outside offers, from the balance), ``topup`` (money in) and ``repayment`` (the
    part of a top-up that repaid debt: a top-up repays the outstanding credit first, the rest goes to
    the balance), ``renewal`` (a recurring package's new period, from the balance; reference =
    ``<package id>:<first day>..<last day>``) and ``payg`` (pay-as-you-go overage, from the balance).
    Revenue is the sum of ``activation``, ``credit_fee``, ``purchase``, ``renewal`` and ``payg``;
    ``reconcile`` recomputes every balance and debt from the opening values and the ledger.

Renewals (lazy and exact)
    A recurring package is renewed at the end of its validity: at local midnight after its
    ``end_date``, in the subscriber's zone (its *boundary*), on the holding's own ``terms`` when it has
    them (a base package a scenario gave its own price and period; its volume is the holding's quota)
    and else on the catalogue's. The price is charged from the airtime balance and the package starts a
    new period in place: the volume with nothing used, ``start_date`` = the boundary's day,
    ``end_date`` ``validity_days - 1`` days later, ``recurring`` kept, ``trial`` off (a trial that
    renews is paid for from then on), ``reference`` = the ledger reference, the same ``terms``. When
    the balance is short (or a package on the catalogue's terms is no longer in it) it lapses: not
    renewed, ``recurring`` off, no debt. Billing applies due renewals whenever it looks at the account
    (``record_usage``, ``subscriber``, ``profile``, ``credit_score``, ``activate``, ``purchase``,
    ``top_up``) and ``renew_due(now)`` looks at every account. Nothing else touches an
    account between a boundary and that first look, so the outcome is the one of a renewal exactly at
    the boundary whenever the look happens: the ledger entry and the notice carry the boundary's time,
    and several missed periods renew one after the other, oldest boundary first.

Activations (``Billing.activate``)
    Keyed by the idempotency key (the offer id). ``BALANCE`` debits the balance (402 when short);
    ``CREDIT`` needs ``price + fee <= credit limit`` (402 otherwise) and records the debt and the fee.
    The price must be the catalogue's (422 otherwise). A decided outcome (activated, or refused with 402)
    is stored under its key: the same key with the same request gives the same stored outcome again (no
    second ledger entry, no second package); the same key with another request is a conflict (409).
    Requests refused before a decision (404, 422) are not stored.

Usage metering (``record_usage``) consumes the active packages earliest end date first and reports the
crossings a network would notify: the ``threshold_percent`` level (90 %) and exhaustion (a jump past
both is one exhaustion); what no package covers is pay-as-you-go overage, charged at
``payg_price_per_mb`` (rounded half-up to cents per call) from the balance, never below 0: what the
balance cannot pay is not charged (a prepaid OCS cuts the data off, it lends nothing). Listeners
(``add_listener``) hear of every package added (activation, purchase, renewal) and every top-up, so the
network simulator can refill its meters; renewal notices are delivered once the renewals of that look
are all applied, so a listener may call billing again. A real OCS rates use as it happens; the network
simulator meters it in batches, so billing calls its ``meter`` (``set_meter``) with the msisdn and
``now`` before it changes what pays for use (an activation, a purchase, a top-up): the use up to then is
recorded against the packages and balance it was made on, and pay-as-you-go use before a new package is
charged as such instead of coming out of the new package.

HTTP API (``BillingServer``; money is always a decimal string; errors are ``{"error": "<one line>"}``):

===========================================  ==========================================================
``GET  /v1/subscribers/{msisdn}/credit``      ``{"msisdn", "balance", "credit_limit", "debt", "reason"}``
``POST /v1/activations``                      header ``Idempotency-Key`` (the offer id); body ``{msisdn,
                                              package_id, payment, price}`` -> 201 the activation, 200
                                              the same on replay; 402 / 404 / 409 / 422; 400 not JSON
``POST /v1/topups``                           ``{msisdn, amount, reference?}`` -> 201 ``{..., repaid}``
``POST /v1/purchases``                        ``{msisdn, package_id, purchase_id?}`` -> 201 / 402 / 404
``GET  /v1/subscribers/{msisdn}``             the subscriber, top-ups and packages (``active`` on the
                                              subscriber's ``local_date``)
``GET  /v1/ledger?msisdn=``                   ``{"entries": [...], "totals": {kind: amount}, "revenue"}``
===========================================  ==========================================================

Fault injection (``FaultConfig``, a seeded ``random.Random``: the same seed and the same request order
give the same faults): a share of requests answered 503 (with ``Retry-After`` when configured), a share
applied and then dropped (the connection is aborted before the answer, so the client must retry and
gets the stored outcome), added latency; ``script`` faults come first, in order. Only the routes named
in ``routes`` are subject to faults (the gateway's two by default).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from campaign_core.config import CatalogueConfig
from campaign_core.model import ActivePackage, Payment, Profile, Purchased
from gateway.configfile import load_yaml_model, yaml_line
from gateway.http_site import serve
from protocols.errors import ConfigError, GatewayError, LocalProtocolError

__all__ = [
    "REVENUE_KINDS",
    "ActivationRecord",
    "Billing",
    "BillingConfig",
    "BillingError",
    "BillingNotice",
    "BillingServer",
    "CataloguePackage",
    "CreditScore",
    "Fault",
    "FaultConfig",
    "FaultInjector",
    "FaultPlan",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidRequest",
    "LedgerEntry",
    "LedgerKind",
    "PackageAdded",
    "PackageHolding",
    "PurchaseRecord",
    "RenewalTerms",
    "Route",
    "ScoringRules",
    "ServerStats",
    "Subscriber",
    "TopUp",
    "TopUpRecord",
    "ToppedUp",
    "UnknownPackage",
    "UnknownSubscriber",
    "UsageChange",
    "UsageCrossing",
    "UsageKind",
    "catalogue_from_config",
    "load_billing_config",
]

log = logging.getLogger(__name__)

DAY = 86_400.0
CENT = Decimal("0.01")
_ZERO = Decimal(0)
_UTC = ZoneInfo("UTC")
_MAX_KEY = 255  # the longest idempotency key accepted


# --- configuration ---------------------------------------------------------------------------------


def _exact(value: object) -> object:
    if isinstance(value, float):  # 0.1 in YAML is a binary float: ask for the exact text
        raise ValueError('write money as a string (e.g. "4.50") so it stays exact')
    return value


Money = Annotated[Decimal, BeforeValidator(_exact), Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoringRules(_Strict):
    """How much billing lends a subscriber (the module docstring gives the formula)."""

    min_tenure_days: Annotated[int, Field(ge=0)] = 90
    window_days: Annotated[int, Field(gt=0)] = 90
    min_topups: Annotated[int, Field(ge=0)] = 1
    base: Money = Decimal(20)
    per_topup: Money = Decimal(0)
    topup_share: Money = Decimal("0.5")
    cap: Money = Decimal(500)
    step: Annotated[Decimal, BeforeValidator(_exact), Field(gt=0, allow_inf_nan=False)] = Decimal(10)


class Fault(StrEnum):
    NONE = "none"
    UNAVAILABLE = "unavailable"  # answered 503 (nothing applied)
    DROP = "drop"  # applied, then the connection is aborted before the answer


class Route(StrEnum):
    """The request classes fault injection can target."""

    CREDIT = "credit"
    ACTIVATION = "activation"
    TOPUP = "topup"
    PURCHASE = "purchase"
    READ = "read"  # GET subscriber, GET ledger


_Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
_Latency = Annotated[float, Field(ge=0, le=600, allow_inf_nan=False)]
"""Seconds added to a request: finite (``.inf`` would hold it for ever) and at most ten minutes, past
every client's timeout (a longer one is a unit typo: ms written as s)."""


class FaultConfig(_Strict):
    """Injected faults; shares are probabilities per request of a targeted route."""

    seed: int = 0
    unavailable: _Share = 0.0
    dropped: _Share = 0.0
    retry_after: Annotated[float, Field(ge=0, le=86_400, allow_inf_nan=False)] | None = None
    latency: tuple[_Latency, _Latency] = (0.0, 0.0)
    routes: frozenset[Route] = frozenset({Route.CREDIT, Route.ACTIVATION})
    script: tuple[Fault, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.unavailable + self.dropped > 1:
            raise ValueError("unavailable + dropped must not exceed 1")
        if self.latency[0] > self.latency[1]:
            raise ValueError("latency is (low, high) with low <= high")
        return self


class CataloguePackage(_Strict):
    """A package billing sells."""

    id: Annotated[str, Field(min_length=1, max_length=64)]
    volume_mb: Annotated[int, Field(gt=0)]
    price: Money
    validity_days: Annotated[int, Field(gt=0)] = 30
    recurring: bool = False


class BillingConfig(_Strict):
    """The simulator's configuration (``configs/simulators/billing.yaml`` documents every field)."""

    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "KES"
    threshold_percent: Annotated[int, Field(ge=1, le=99)] = 90
    credit_fee_percent: Annotated[Decimal, BeforeValidator(_exact), Field(ge=0, le=100)] = Decimal(10)
    payg_price_per_mb: Money = Decimal(0)  # 0: pay-as-you-go use is free (the simulator charged none before)
    scoring: ScoringRules = ScoringRules()
    faults: FaultConfig = FaultConfig()
    catalogue: tuple[CataloguePackage, ...] = ()


def load_billing_config(path: str | Path) -> BillingConfig:
    """Read a billing simulator config; ``ConfigError`` names the file, the line and the reason.

    A catalogue id given twice is refused at the line of the second one (``Billing`` would refuse it
    only when built, with no file or line; the ids are what activations name)."""
    config = load_yaml_model(path, BillingConfig)
    first: dict[str, int] = {}
    for index, package in enumerate(config.catalogue):
        if package.id in first:
            seen = first[package.id]
            line = yaml_line(path, ("catalogue", seen, "id"))
            where = f"line {line}" if line is not None else f"catalogue.{seen}"
            raise ConfigError(
                f"catalogue.{index}.id: {package.id!r} is given twice (first at {where})",
                str(path),
                yaml_line(path, ("catalogue", index, "id")),
            )
        first[package.id] = index
    return config


def catalogue_from_config(config: CatalogueConfig) -> tuple[CataloguePackage, ...]:
    """Billing's catalogue from the campaigns' catalogue file (the same ids, volumes and prices)."""
    return tuple(
        CataloguePackage(
            id=p.id,
            volume_mb=p.volume_mb,
            price=p.price,
            validity_days=p.validity_days,
            recurring=p.recurring,
        )
        for p in config.packages
    )


# --- errors ----------------------------------------------------------------------------------------


class BillingError(GatewayError):
    """A request billing refuses; ``status`` is the HTTP status that answers it."""

    status = 400


class UnknownSubscriber(BillingError):
    status = 404


class UnknownPackage(BillingError):
    status = 404


class InsufficientFunds(BillingError):
    """The balance or the credit limit does not cover the price (402 Payment Required)."""

    status = 402


class IdempotencyConflict(BillingError):
    """The idempotency key was used for another request."""

    status = 409


class InvalidRequest(BillingError):
    status = 422


# --- values ----------------------------------------------------------------------------------------


class LedgerKind(StrEnum):
    ACTIVATION = "activation"
    CREDIT_FEE = "credit_fee"
    REPAYMENT = "repayment"
    TOPUP = "topup"
    PURCHASE = "purchase"
    RENEWAL = "renewal"
    PAYG = "payg"


REVENUE_KINDS = frozenset(
    {LedgerKind.ACTIVATION, LedgerKind.CREDIT_FEE, LedgerKind.PURCHASE, LedgerKind.RENEWAL, LedgerKind.PAYG}
)
# The kinds paid from the airtime balance without an activation's choice of payment.
_FROM_BALANCE = frozenset({LedgerKind.PURCHASE, LedgerKind.RENEWAL, LedgerKind.PAYG})


class UsageKind(StrEnum):
    THRESHOLD = "threshold"
    EXHAUSTED = "exhausted"


@dataclass(frozen=True, slots=True)
class TopUp:
    at: float
    amount: Decimal


@dataclass(frozen=True, slots=True)
class RenewalTerms:
    """What a recurring package renews on when not on the catalogue's terms (a base package the catalogue
    does not sell, or sells on other terms): the price of a period and its length; the volume is the
    holding's ``quota_mb``."""

    price: Decimal
    validity_days: int


@dataclass(frozen=True, slots=True)
class PackageHolding:
    """A package a subscriber holds; dates are local ``YYYY-MM-DD``, ``end_date`` inclusive.
    ``reference`` is the offer id or purchase id that bought it ("" for an opening package); ``terms``
    are its own renewal terms (None: the catalogue's)."""

    package_id: str
    quota_mb: int
    used_mb: float = 0.0
    start_date: str = "1970-01-01"
    end_date: str = "9999-12-31"
    recurring: bool = False
    trial: bool = False
    reference: str = ""
    terms: RenewalTerms | None = None

    def active_on(self, date: str) -> bool:
        return self.start_date <= date <= self.end_date

    def to_json(self) -> dict[str, object]:
        return {
            "package_id": self.package_id,
            "quota_mb": self.quota_mb,
            "used_mb": self.used_mb,
            "start_date": self.start_date,
            "end_date": self.end_date,
            "recurring": self.recurring,
            "trial": self.trial,
            "reference": self.reference,
        }


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A subscriber: what ``add_subscriber`` takes (opening state) and ``subscriber`` returns (now)."""

    msisdn: str
    balance: Decimal = _ZERO
    tenure_days: int = 0
    zone: str | None = None
    topups: tuple[TopUp, ...] = ()
    packages: tuple[PackageHolding, ...] = ()
    debt: Decimal = _ZERO


@dataclass(frozen=True, slots=True)
class CreditScore:
    """``reason`` says which rule decided the limit."""

    msisdn: str
    balance: Decimal
    credit_limit: Decimal
    debt: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    at: float
    msisdn: str
    kind: LedgerKind
    amount: Decimal
    reference: str = ""
    package_id: str | None = None
    payment: Payment | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "at": self.at,
            "msisdn": self.msisdn,
            "kind": self.kind.value,
            "amount": _money(self.amount),
            "reference": self.reference,
            "package_id": self.package_id,
            "payment": None if self.payment is None else self.payment.value,
        }


@dataclass(frozen=True, slots=True)
class ActivationRecord:
    """A stored activation; ``balance`` and ``debt`` are the subscriber's right after it."""

    activation_id: str
    offer_id: str
    msisdn: str
    package_id: str
    payment: Payment
    price: Decimal
    fee: Decimal
    at: float
    package: PackageHolding
    balance: Decimal
    debt: Decimal

    def to_json(self) -> dict[str, object]:
        return {
            "activation_id": self.activation_id,
            "offer_id": self.offer_id,
            "msisdn": self.msisdn,
            "package_id": self.package_id,
            "payment": self.payment.value,
            "price": _money(self.price),
            "fee": _money(self.fee),
            "at": self.at,
            "balance": _money(self.balance),
            "debt": _money(self.debt),
            "package": self.package.to_json(),
        }


@dataclass(frozen=True, slots=True)
class PurchaseRecord:
    """A package bought outside our offers (from the balance)."""

    purchase_id: str
    msisdn: str
    package_id: str
    price: Decimal
    at: float
    package: PackageHolding
    balance: Decimal

    def event(self) -> Purchased:
        """The campaign engine's event for it (control-arm conversions)."""
        return Purchased(self.purchase_id, self.msisdn, self.package_id, self.price, self.at)

    def to_json(self) -> dict[str, object]:
        return {
            "purchase_id": self.purchase_id,
            "msisdn": self.msisdn,
            "package_id": self.package_id,
            "price": _money(self.price),
            "at": self.at,
            "balance": _money(self.balance),
            "package": self.package.to_json(),
        }


@dataclass(frozen=True, slots=True)
class TopUpRecord:
    """A top-up: ``repaid`` of ``amount`` went to the debt, the rest to the balance."""

    msisdn: str
    amount: Decimal
    repaid: Decimal
    at: float
    balance: Decimal
    debt: Decimal
    reference: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "msisdn": self.msisdn,
            "amount": _money(self.amount),
            "repaid": _money(self.repaid),
            "at": self.at,
            "balance": _money(self.balance),
            "debt": _money(self.debt),
            "reference": self.reference,
        }


@dataclass(frozen=True, slots=True)
class UsageCrossing:
    """A package crossed a level: ``THRESHOLD`` (``level`` = the threshold %) or ``EXHAUSTED`` (100)."""

    kind: UsageKind
    package_id: str
    reference: str
    level: int
    used_mb: float
    quota_mb: int


@dataclass(frozen=True, slots=True)
class UsageChange:
    """What ``record_usage`` changed; ``overage_mb`` is use no package covered (pay-as-you-go), of which
    ``payg_charged`` was charged (less than the price when the balance ran out)."""

    msisdn: str
    at: float
    used_mb: float
    crossings: tuple[UsageCrossing, ...] = ()
    overage_mb: float = 0.0
    payg_charged: Decimal = _ZERO

    @property
    def changed(self) -> bool:
        return bool(self.crossings)


@dataclass(frozen=True, slots=True)
class PackageAdded:
    """A package was added by an activation (``via`` ACTIVATION), a purchase (``via`` PURCHASE) or a
    recurring package's renewal (``via`` RENEWAL: ``package`` is the new period, ``at`` its boundary)."""

    msisdn: str
    package: PackageHolding
    via: LedgerKind
    reference: str
    at: float


@dataclass(frozen=True, slots=True)
class ToppedUp:
    record: TopUpRecord


BillingNotice = PackageAdded | ToppedUp
Listener = Callable[[BillingNotice], None]


def _money(value: Decimal) -> str:
    return f"{value:f}"


# --- the pure state --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Account:
    msisdn: str
    balance: Decimal
    debt: Decimal
    joined: float  # epoch seconds the tenure counts from
    zone_name: str | None
    zone: ZoneInfo
    topups: list[TopUp]
    packages: list[PackageHolding]
    opening_balance: Decimal
    opening_debt: Decimal
    entries: list[LedgerEntry] = field(default_factory=list)
    renew_at: float = math.inf  # the earliest boundary of a recurring package (inf: none)

    def tenure(self, now: float) -> int:
        return max(0, int((now - self.joined) // DAY))

    def today(self, now: float) -> str:
        return datetime.fromtimestamp(now, UTC).astimezone(self.zone).date().isoformat()


@dataclass(frozen=True, slots=True)
class _Request:
    """An activation request as compared for idempotency."""

    msisdn: str
    package_id: str
    payment: Payment
    price: Decimal


@dataclass(frozen=True, slots=True)
class _Stored:
    request: _Request
    outcome: ActivationRecord | str  # the record, or the 402 refusal's message


class Billing:
    """Billing's state and rules (see the module docstring). Not thread-safe; one event loop at most."""

    def __init__(
        self, config: BillingConfig | None = None, catalogue: Iterable[CataloguePackage] | None = None
    ) -> None:
        self.config = config or BillingConfig()
        packages = tuple(self.config.catalogue if catalogue is None else catalogue)
        self.catalogue: dict[str, CataloguePackage] = {p.id: p for p in packages}
        if len(self.catalogue) != len(packages):
            raise LocalProtocolError("the catalogue names a package twice")
        self._accounts: dict[str, _Account] = {}
        self._ledger: list[LedgerEntry] = []
        self._activations: dict[str, _Stored] = {}
        self._listeners: list[Listener] = []
        self._meter: Callable[[str, float], None] | None = None
        self._activation_count = 0
        self._purchase_count = 0

    # --- subscribers ---

    def add_subscriber(self, subscriber: Subscriber, now: float) -> None:
        """Open an account with ``subscriber``'s balance, debt, history and packages as of ``now``."""
        if subscriber.msisdn in self._accounts:
            raise LocalProtocolError(f"subscriber {subscriber.msisdn} exists already")
        if subscriber.balance < 0 or subscriber.debt < 0 or subscriber.tenure_days < 0:
            raise LocalProtocolError(f"subscriber {subscriber.msisdn}: balance, debt and tenure must be >= 0")
        try:
            zone = _UTC if subscriber.zone is None else ZoneInfo(subscriber.zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise LocalProtocolError(
                f"subscriber {subscriber.msisdn}: unknown zone {subscriber.zone!r}"
            ) from None
        self._accounts[subscriber.msisdn] = _Account(
            msisdn=subscriber.msisdn,
            balance=subscriber.balance,
            debt=subscriber.debt,
            joined=now - subscriber.tenure_days * DAY,
            zone_name=subscriber.zone,
            zone=zone,
            topups=sorted(subscriber.topups, key=lambda t: t.at),
            packages=list(subscriber.packages),
            opening_balance=subscriber.balance,
            opening_debt=subscriber.debt,
        )
        account = self._accounts[subscriber.msisdn]
        account.renew_at = _next_boundary(account)

    def __contains__(self, msisdn: object) -> bool:
        return msisdn in self._accounts

    def __len__(self) -> int:
        return len(self._accounts)

    def _account(self, msisdn: str) -> _Account:
        account = self._accounts.get(msisdn)
        if account is None:
            raise UnknownSubscriber(f"no subscriber {msisdn}")
        return account

    def _package(self, package_id: str) -> CataloguePackage:
        package = self.catalogue.get(package_id)
        if package is None:
            raise UnknownPackage(f"no package {package_id!r} in the catalogue")
        return package

    def set_meter(self, meter: Callable[[str, float], None] | None) -> None:
        """Call ``meter(msisdn, now)`` before an activation, purchase or top-up changes what pays for the
        subscriber's use, so the use up to ``now`` is recorded first (``record_usage``)."""
        self._meter = meter

    def _metered(self, msisdn: str, now: float) -> _Account:
        """The account as of ``now`` (``_current``) with the use up to ``now`` recorded."""
        if self._meter is not None:
            self._account(msisdn)  # an unknown subscriber is refused before anything is metered
            self._meter(msisdn, now)
        return self._current(msisdn, now)

    def _current(self, msisdn: str, now: float) -> _Account:
        """The account as of ``now``: its due renewals applied (listeners hear of them afterwards)."""
        account = self._account(msisdn)
        if now >= account.renew_at:
            for notice in self._renew(account, now):
                self._notify(notice)
        return account

    def subscriber(self, msisdn: str, now: float) -> Subscriber:
        account = self._current(msisdn, now)
        return Subscriber(
            msisdn=msisdn,
            balance=account.balance,
            tenure_days=account.tenure(now),
            zone=account.zone_name,
            topups=tuple(account.topups),
            packages=tuple(account.packages),
            debt=account.debt,
        )

    def local_date(self, msisdn: str, now: float) -> str:
        """``now`` as the subscriber's local date (``YYYY-MM-DD``): the day package dates compare with."""
        return self._account(msisdn).today(now)

    def profile(self, msisdn: str, now: float) -> Profile:
        """The campaign engine's view of the subscriber (packages active at ``now``)."""
        account = self._current(msisdn, now)
        today = account.today(now)
        return Profile(
            msisdn=msisdn,
            tenure_days=account.tenure(now),
            timezone=account.zone_name,
            packages=tuple(
                ActivePackage(p.package_id, p.start_date, p.end_date, p.recurring, p.trial)
                for p in account.packages
                if p.active_on(today)
            ),
        )

    # --- credit scoring ---

    def credit_score(self, msisdn: str, now: float) -> CreditScore:
        """The balance and the credit limit at ``now`` (the rules of ``ScoringRules``)."""
        account = self._current(msisdn, now)
        limit, reason = self._limit(account, now)
        return CreditScore(msisdn, account.balance, limit, account.debt, reason)

    def _limit(self, account: _Account, now: float) -> tuple[Decimal, str]:
        rules = self.config.scoring
        tenure = account.tenure(now)
        if tenure < rules.min_tenure_days:
            return _ZERO, f"tenure {tenure} d is under {rules.min_tenure_days} d"
        since = now - rules.window_days * DAY
        recent = [t.amount for t in account.topups if since <= t.at <= now]
        if len(recent) < rules.min_topups:
            return _ZERO, f"{len(recent)} top-ups in {rules.window_days} d, {rules.min_topups} needed"
        gross = rules.base + rules.per_topup * len(recent) + rules.topup_share * sum(recent, _ZERO)
        capped = min(gross, rules.cap)
        net = max(_ZERO, capped - account.debt)
        limit = (net // rules.step) * rules.step
        return limit, f"{len(recent)} top-ups in {rules.window_days} d, debt {_money(account.debt)}"

    def fee(self, price: Decimal) -> Decimal:
        """The credit fee for ``price``: ``credit_fee_percent`` %, rounded half-up to cents."""
        return (price * self.config.credit_fee_percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)

    # --- money movements ---

    def _post(self, account: _Account, entry: LedgerEntry) -> None:
        self._ledger.append(entry)
        account.entries.append(entry)

    def _holding(
        self, account: _Account, package: CataloguePackage, reference: str, now: float
    ) -> PackageHolding:
        start = datetime.fromtimestamp(now, UTC).astimezone(account.zone).date()
        end = start + timedelta(days=package.validity_days - 1)
        holding = PackageHolding(
            package_id=package.id,
            quota_mb=package.volume_mb,
            start_date=start.isoformat(),
            end_date=end.isoformat(),
            recurring=package.recurring,
            reference=reference,
        )
        account.packages.append(holding)
        if holding.recurring:
            account.renew_at = min(account.renew_at, _boundary(account, holding))
        return holding

    def activate(  # noqa: PLR0917 - the activation request's fields in order, then now
        self, offer_id: str, msisdn: str, package_id: str, payment: Payment, price: Decimal, now: float
    ) -> tuple[ActivationRecord, bool]:
        """Activate ``package_id`` for the offer ``offer_id`` (the idempotency key).

        Returns the record and whether it is a replay of a stored one. Raises ``IdempotencyConflict``
        (409), ``UnknownSubscriber`` / ``UnknownPackage`` (404), ``InvalidRequest`` (422) or
        ``InsufficientFunds`` (402; stored, so a replay raises it again)."""
        if not offer_id or len(offer_id) > _MAX_KEY:
            raise InvalidRequest(f"the idempotency key must have 1 to {_MAX_KEY} characters")
        request = _Request(msisdn, package_id, Payment(payment), price)
        stored = self._activations.get(offer_id)
        if stored is not None:
            if stored.request != request:
                raise IdempotencyConflict(f"key {offer_id} was used for another activation request")
            if isinstance(stored.outcome, str):
                raise InsufficientFunds(stored.outcome)
            return stored.outcome, True
        self._account(msisdn)
        package = self._package(package_id)
        if not price.is_finite() or price != package.price:
            raise InvalidRequest(
                f"price {price} is not the catalogue price {_money(package.price)} of {package_id}"
            )
        account = self._metered(msisdn, now)
        try:
            record = self._apply(offer_id, account, package, request.payment, now)
        except InsufficientFunds as exc:
            self._activations[offer_id] = _Stored(request, str(exc))
            raise
        self._activations[offer_id] = _Stored(request, record)
        self._notify(PackageAdded(msisdn, record.package, LedgerKind.ACTIVATION, offer_id, now))
        return record, False

    def _apply(
        self, offer_id: str, account: _Account, package: CataloguePackage, payment: Payment, now: float
    ) -> ActivationRecord:
        price = package.price
        fee = _ZERO
        if payment is Payment.BALANCE:
            if account.balance < price:
                raise InsufficientFunds(
                    f"balance {_money(account.balance)} does not cover the price {_money(price)}"
                )
            account.balance -= price
        else:
            fee = self.fee(price)
            limit, reason = self._limit(account, now)
            if price + fee > limit:
                raise InsufficientFunds(
                    f"price {_money(price)} + fee {_money(fee)} exceeds the credit limit {_money(limit)} ({reason})"
                )
            account.debt += price + fee
        self._activation_count += 1
        holding = self._holding(account, package, offer_id, now)
        msisdn = account.msisdn
        self._post(
            account, LedgerEntry(now, msisdn, LedgerKind.ACTIVATION, price, offer_id, package.id, payment)
        )
        if fee:
            self._post(
                account, LedgerEntry(now, msisdn, LedgerKind.CREDIT_FEE, fee, offer_id, package.id, payment)
            )
        return ActivationRecord(
            activation_id=f"act-{self._activation_count}",
            offer_id=offer_id,
            msisdn=msisdn,
            package_id=package.id,
            payment=payment,
            price=price,
            fee=fee,
            at=now,
            package=holding,
            balance=account.balance,
            debt=account.debt,
        )

    def purchase(
        self, msisdn: str, package_id: str, now: float, purchase_id: str | None = None
    ) -> PurchaseRecord:
        """A purchase outside our offers (the data shop), paid from the balance (402 when short)."""
        self._account(msisdn)
        package = self._package(package_id)
        account = self._metered(msisdn, now)
        if account.balance < package.price:
            raise InsufficientFunds(
                f"balance {_money(account.balance)} does not cover the price {_money(package.price)}"
            )
        self._purchase_count += 1
        reference = purchase_id or f"pur-{self._purchase_count}"
        account.balance -= package.price
        holding = self._holding(account, package, reference, now)
        self._post(
            account, LedgerEntry(now, msisdn, LedgerKind.PURCHASE, package.price, reference, package.id)
        )
        record = PurchaseRecord(reference, msisdn, package.id, package.price, now, holding, account.balance)
        self._notify(PackageAdded(msisdn, holding, LedgerKind.PURCHASE, reference, now))
        return record

    def top_up(self, msisdn: str, amount: Decimal, now: float, reference: str = "") -> TopUpRecord:
        """Add ``amount`` to the account: the outstanding credit is repaid first, the rest is balance."""
        if not amount.is_finite() or amount <= 0:
            raise InvalidRequest(f"a top-up amount must be positive, got {amount}")
        account = self._metered(msisdn, now)
        repaid = min(amount, account.debt)
        account.debt -= repaid
        account.balance += amount - repaid
        account.topups.append(TopUp(now, amount))
        self._post(account, LedgerEntry(now, msisdn, LedgerKind.TOPUP, amount, reference))
        if repaid:
            self._post(account, LedgerEntry(now, msisdn, LedgerKind.REPAYMENT, repaid, reference))
        record = TopUpRecord(msisdn, amount, repaid, now, account.balance, account.debt, reference)
        self._notify(ToppedUp(record))
        return record

    # --- usage ---

    def record_usage(self, msisdn: str, mb: float, now: float) -> UsageChange:
        """Meter ``mb`` of data against the active packages, earliest end date first."""
        if mb < 0:
            raise LocalProtocolError(f"usage must be >= 0 MB, got {mb}")
        account = self._current(msisdn, now)
        today = account.today(now)
        level = self.config.threshold_percent
        left = float(mb)
        crossings: list[UsageCrossing] = []
        order = sorted(
            (i for i, p in enumerate(account.packages) if p.active_on(today) and p.used_mb < p.quota_mb),
            key=lambda i: account.packages[i].end_date,
        )
        for index in order:
            if left <= 0:
                break
            holding = account.packages[index]
            take = min(left, holding.quota_mb - holding.used_mb)
            used = holding.used_mb + take
            if used >= holding.quota_mb - 1e-9:
                used = float(holding.quota_mb)
            left -= take
            account.packages[index] = replace(holding, used_mb=used)
            mark = holding.quota_mb * level / 100
            if used >= holding.quota_mb:
                crossings.append(
                    UsageCrossing(
                        UsageKind.EXHAUSTED,
                        holding.package_id,
                        holding.reference,
                        100,
                        used,
                        holding.quota_mb,
                    )
                )
            elif holding.used_mb < mark <= used:
                crossings.append(
                    UsageCrossing(
                        UsageKind.THRESHOLD,
                        holding.package_id,
                        holding.reference,
                        level,
                        used,
                        holding.quota_mb,
                    )
                )
        overage = max(0.0, left)
        charged = self._charge_payg(account, overage, now)
        return UsageChange(msisdn, now, float(mb), tuple(crossings), overage, charged)

    def _charge_payg(self, account: _Account, overage_mb: float, now: float) -> Decimal:
        """Charge ``overage_mb`` at ``payg_price_per_mb``, at most the balance (prepaid: no debt)."""
        price = self.config.payg_price_per_mb
        if overage_mb <= 0 or price <= 0 or account.balance <= 0:
            return _ZERO
        # Decimal(float) is the float's exact value, so the same use always costs the same cents
        due = (Decimal(overage_mb) * price).quantize(CENT, rounding=ROUND_HALF_UP)
        charged = min(due, account.balance)
        if charged <= 0:
            return _ZERO
        account.balance -= charged
        self._post(
            account, LedgerEntry(now, account.msisdn, LedgerKind.PAYG, charged, f"{overage_mb:.3f} MB")
        )
        return charged

    # --- renewals ---

    def renew_due(self, now: float) -> tuple[PackageAdded, ...]:
        """Apply every renewal due at ``now`` (every account, in the order they were opened); returns
        the renewals made, as the listeners hear of them. A second call at the same ``now`` renews
        nothing."""
        notices: list[PackageAdded] = []
        for account in self._accounts.values():
            if now >= account.renew_at:
                notices.extend(self._renew(account, now))
        for notice in notices:
            self._notify(notice)
        return tuple(notices)

    def _renew(self, account: _Account, now: float) -> list[PackageAdded]:
        """Renew (or let lapse) the recurring packages of ``account`` whose boundary is at or before
        ``now``, oldest boundary first; the caller notifies the listeners once all are applied."""
        notices: list[PackageAdded] = []
        while True:
            due = [
                (at, index)
                for index, holding in enumerate(account.packages)
                if holding.recurring and (at := _boundary(account, holding)) <= now
            ]
            if not due:
                break
            at, index = min(due)
            notice = self._renew_one(account, index, at)
            if notice is not None:
                notices.append(notice)
        account.renew_at = _next_boundary(account)
        return notices

    def _renew_one(self, account: _Account, index: int, at: float) -> PackageAdded | None:
        holding = account.packages[index]
        terms = holding.terms
        if terms is not None:  # its own terms
            price, validity_days, volume_mb = terms.price, terms.validity_days, holding.quota_mb
        else:
            package = self.catalogue.get(holding.package_id)
            if package is None:  # no longer sold: nothing to renew it as
                return self._lapse(account, index, at)
            price, validity_days, volume_mb = package.price, package.validity_days, package.volume_mb
        if account.balance < price:  # a prepaid renewal is never lent
            return self._lapse(account, index, at)
        start = date.fromisoformat(holding.end_date) + timedelta(days=1)
        end = start + timedelta(days=validity_days - 1)
        package_id = holding.package_id
        reference = f"{package_id}:{start.isoformat()}..{end.isoformat()}"
        renewed = PackageHolding(
            package_id=package_id,
            quota_mb=volume_mb,
            start_date=start.isoformat(),
            end_date=end.isoformat(),
            recurring=True,
            reference=reference,
            terms=terms,
        )
        account.packages[index] = renewed
        if price > 0:  # a free package renews without a ledger entry (entries are > 0)
            account.balance -= price
            self._post(
                account,
                LedgerEntry(
                    at, account.msisdn, LedgerKind.RENEWAL, price, reference, package_id, Payment.BALANCE
                ),
            )
        return PackageAdded(account.msisdn, renewed, LedgerKind.RENEWAL, reference, at)

    @staticmethod
    def _lapse(account: _Account, index: int, at: float) -> None:
        """The package is not renewed: it stays ended, and no longer recurring."""
        holding = account.packages[index]
        account.packages[index] = replace(holding, recurring=False)
        log.debug("%s: %s lapses at %s", account.msisdn, holding.package_id, at)

    # --- listeners ---

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every package added and top-up; returns the function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _notify(self, notice: BillingNotice) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(notice)
            except Exception:
                log.exception("billing listener %r failed on %s", listener, type(notice).__name__)

    # --- ledger and reports ---

    def ledger(self, msisdn: str | None = None) -> tuple[LedgerEntry, ...]:
        if msisdn is None:
            return tuple(self._ledger)
        account = self._accounts.get(msisdn)
        return () if account is None else tuple(account.entries)

    def ledger_totals(self) -> dict[LedgerKind, Decimal]:
        """The sum of every ledger kind (zero for kinds with no entry)."""
        totals = dict.fromkeys(LedgerKind, _ZERO)
        for entry in self._ledger:
            totals[entry.kind] += entry.amount
        return totals

    def revenue(self, msisdn: str | None = None) -> Decimal:
        """Activations, credit fees, purchases, renewals and pay-as-you-go charges (top-ups and
        repayments are money in, not revenue)."""
        return sum((e.amount for e in self.ledger(msisdn) if e.kind in REVENUE_KINDS), _ZERO)

    def activations(self) -> tuple[ActivationRecord, ...]:
        """Every activation made, in order (refused ones are not activations)."""
        done = [s.outcome for s in self._activations.values() if isinstance(s.outcome, ActivationRecord)]
        return tuple(done)

    def activation(self, offer_id: str) -> ActivationRecord | None:
        stored = self._activations.get(offer_id)
        return stored.outcome if stored is not None and isinstance(stored.outcome, ActivationRecord) else None

    def reconcile(self) -> list[str]:
        """Every discrepancy between the accounts and their ledger (empty when they agree)."""
        problems: list[str] = []
        for account in self._accounts.values():
            balance, debt = account.opening_balance, account.opening_debt
            for entry in account.entries:
                if entry.amount <= 0:
                    problems.append(f"{account.msisdn}: {entry.kind} entry of {entry.amount}")
                if entry.kind is LedgerKind.TOPUP:
                    balance += entry.amount
                elif entry.kind is LedgerKind.REPAYMENT:
                    balance -= entry.amount
                    debt -= entry.amount
                elif entry.kind in _FROM_BALANCE:
                    balance -= entry.amount
                elif entry.payment is Payment.CREDIT:
                    debt += entry.amount
                else:
                    balance -= entry.amount
            if balance != account.balance or debt != account.debt:
                problems.append(
                    f"{account.msisdn}: balance {account.balance} / debt {account.debt}, "
                    f"the ledger says {balance} / {debt}"
                )
            if account.balance < 0 or account.debt < 0:
                problems.append(f"{account.msisdn}: negative balance or debt")
        booked = [e.reference for e in self._ledger if e.kind is LedgerKind.ACTIVATION]
        if len(booked) != len(set(booked)):
            problems.append("an offer was activated twice in the ledger")
        if sorted(booked) != sorted(a.offer_id for a in self.activations()):
            problems.append("the ledger's activations differ from the stored activations")
        return problems


def _boundary(account: _Account, holding: PackageHolding) -> float:
    """Epoch seconds of local midnight after ``holding``'s last day: where its renewal is due."""
    try:
        day = date.fromisoformat(holding.end_date) + timedelta(days=1)
    except (ValueError, OverflowError):  # "9999-12-31": never ends, never renews
        return math.inf
    return datetime.combine(day, time.min, tzinfo=account.zone).timestamp()


def _next_boundary(account: _Account) -> float:
    return min((_boundary(account, p) for p in account.packages if p.recurring), default=math.inf)


# --- fault injection -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaultPlan:
    fault: Fault
    latency: float


class FaultInjector:
    """Decides each request's fault from a seeded RNG (two draws per targeted request, always)."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.config = config or FaultConfig()
        self._rng = random.Random(self.config.seed)
        self._script: deque[Fault] = deque(self.config.script)

    def script(self, *faults: Fault) -> None:
        """Queue faults for the next targeted requests (before the random ones)."""
        self._script.extend(faults)

    def draw(self, route: Route) -> FaultPlan:
        config = self.config
        if route not in config.routes:
            return FaultPlan(Fault.NONE, 0.0)
        share, spread = self._rng.random(), self._rng.random()
        if self._script:
            fault = self._script.popleft()
        elif share < config.unavailable:
            fault = Fault.UNAVAILABLE
        elif share < config.unavailable + config.dropped:
            fault = Fault.DROP
        else:
            fault = Fault.NONE
        low, high = config.latency
        return FaultPlan(fault, low + (high - low) * spread)


# --- the HTTP server -------------------------------------------------------------------------------


@dataclass(slots=True)
class ServerStats:
    """Requests per route and the faults injected."""

    requests: dict[Route, int] = field(default_factory=lambda: dict.fromkeys(Route, 0))
    unavailable: int = 0
    dropped: int = 0


class _BadBody(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _error(status: int, reason: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=headers)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _BadBody(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise _BadBody(422, "the body must be a JSON object")
    return body


def _text(body: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise _BadBody(422, f"{name!r} must be a non-empty string")
    return value


def _amount(body: Mapping[str, Any], name: str) -> Decimal:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _BadBody(422, f"{name!r} must be a decimal string (money is never a float)")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise _BadBody(422, f"{name!r} is not a decimal number: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise _BadBody(422, f"{name!r} must be a finite amount >= 0")
    return amount


class BillingServer:
    """``billing`` over HTTP on ``host``:``port`` (0: any free port; ``address`` has the bound one).

    ``clock`` gives the ``now`` of every request (the demo's simulated clock)."""

    def __init__(
        self,
        billing: Billing,
        clock: Callable[[], float],
        *,
        faults: FaultConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.billing = billing
        self.clock = clock
        self.faults = FaultInjector(faults if faults is not None else billing.config.faults)
        self.stats = ServerStats()
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._address: tuple[str, int] | None = None
        app = web.Application()
        app.add_routes(
            [
                web.get("/v1/subscribers/{msisdn}/credit", self._credit),
                web.get("/v1/subscribers/{msisdn}", self._subscriber),
                web.post("/v1/activations", self._activate),
                web.post("/v1/topups", self._top_up),
                web.post("/v1/purchases", self._purchase),
                web.get("/v1/ledger", self._ledger),
            ]
        )
        self.app = app

    async def start(self) -> tuple[str, int]:
        self._runner, self._address = await serve(
            self.app, self.host, self.port, access_log=None, handle_signals=False, shutdown_timeout=0.25
        )
        return self._address

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._address = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def address(self) -> tuple[str, int]:
        if self._address is None:
            raise LocalProtocolError("the billing server is not started")
        return self._address

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    # --- plumbing ---

    async def _serve(
        self, request: web.Request, route: Route, answer: Callable[[], Awaitable[web.Response]]
    ) -> web.Response:
        """``answer`` with the faults injected around it."""
        self.stats.requests[route] += 1
        plan = self.faults.draw(route)
        if plan.latency > 0:
            await asyncio.sleep(plan.latency)
        if plan.fault is Fault.UNAVAILABLE:
            self.stats.unavailable += 1
            retry = self.faults.config.retry_after
            headers = None if retry is None else {"Retry-After": f"{retry:g}"}
            return _error(503, "billing is unavailable (injected fault)", headers)
        try:
            response = await answer()
        except _BadBody as exc:
            response = _error(exc.status, str(exc))
        except BillingError as exc:
            response = _error(exc.status, str(exc))
        if plan.fault is Fault.DROP and request.transport is not None:
            self.stats.dropped += 1
            request.transport.abort()  # applied, never answered
        return response

    # --- routes ---

    async def _credit(self, request: web.Request) -> web.Response:
        async def answer() -> web.Response:
            score = self.billing.credit_score(request.match_info["msisdn"], self.clock())
            return web.json_response(
                {
                    "msisdn": score.msisdn,
                    "balance": _money(score.balance),
                    "credit_limit": _money(score.credit_limit),
                    "debt": _money(score.debt),
                    "reason": score.reason,
                }
            )

        return await self._serve(request, Route.CREDIT, answer)

    async def _subscriber(self, request: web.Request) -> web.Response:
        async def answer() -> web.Response:
            now = self.clock()
            msisdn = request.match_info["msisdn"]
            sub = self.billing.subscriber(msisdn, now)
            score = self.billing.credit_score(msisdn, now)
            today = self.billing.local_date(msisdn, now)
            return web.json_response(
                {
                    "msisdn": sub.msisdn,
                    "balance": _money(sub.balance),
                    "debt": _money(sub.debt),
                    "credit_limit": _money(score.credit_limit),
                    "tenure_days": sub.tenure_days,
                    "zone": sub.zone,
                    "local_date": today,
                    "packages": [{**p.to_json(), "active": p.active_on(today)} for p in sub.packages],
                    "topups": [{"at": t.at, "amount": _money(t.amount)} for t in sub.topups],
                }
            )

        return await self._serve(request, Route.READ, answer)

    async def _activate(self, request: web.Request) -> web.Response:
        async def answer() -> web.Response:
            key = request.headers.get("Idempotency-Key", "")
            if not key:
                raise _BadBody(422, "an activation needs an Idempotency-Key header (the offer id)")
            body = await _body(request)
            try:
                payment = Payment(str(body.get("payment")))
            except ValueError:
                raise _BadBody(422, f"'payment' must be one of {[p.value for p in Payment]}") from None
            record, replayed = self.billing.activate(
                key,
                _text(body, "msisdn"),
                _text(body, "package_id"),
                payment,
                _amount(body, "price"),
                self.clock(),
            )
            return web.json_response(record.to_json(), status=200 if replayed else 201)

        return await self._serve(request, Route.ACTIVATION, answer)

    async def _top_up(self, request: web.Request) -> web.Response:
        async def answer() -> web.Response:
            body = await _body(request)
            record = self.billing.top_up(
                _text(body, "msisdn"),
                _amount(body, "amount"),
                self.clock(),
                reference=_text(body, "reference", required=False),
            )
            return web.json_response(record.to_json(), status=201)

        return await self._serve(request, Route.TOPUP, answer)

    async def _purchase(self, request: web.Request) -> web.Response:
        async def answer() -> web.Response:
            body = await _body(request)
            record = self.billing.purchase(
                _text(body, "msisdn"),
                _text(body, "package_id"),
                self.clock(),
                purchase_id=_text(body, "purchase_id", required=False) or None,
            )
            return web.json_response(record.to_json(), status=201)

        return await self._serve(request, Route.PURCHASE, answer)

    async def _ledger(self, request: web.Request) -> web.Response:
        async def answer() -> web.Response:
            msisdn = request.query.get("msisdn") or None
            entries = self.billing.ledger(msisdn)
            totals = dict.fromkeys(LedgerKind, _ZERO)
            for entry in entries:
                totals[entry.kind] += entry.amount
            return web.json_response(
                {
                    "entries": [e.to_json() for e in entries],
                    "totals": {kind.value: _money(total) for kind, total in totals.items()},
                    "revenue": _money(self.billing.revenue(msisdn)),
                }
            )

        return await self._serve(request, Route.READ, answer)
