"""The campaign engine's vocabulary: the events it is fed and the commands it answers with.

DESIGN.md, "One engine shape": ``Engine.handle(event, now) -> list[Command]`` and ``next_deadline()``.
Events are past-tense facts (a trigger was raised, credit was scored, a receipt came, the subscriber
answered, billing activated); commands are verbs (query credit, push a SIM toolkit dialog, send an SMS,
activate) plus ``Record``, one line of the decision trail that ``tgw explain`` prints and the KPIs are
counted from. The gateway writes the records and the commands to the store before it carries the
commands out (the transactional outbox of ``campaign_core.engine``), executes them, and feeds back what
happened as events.

Every id is deterministic: an offer id is derived from the campaign and the trigger
(``offer_id(...)``), a command id from its offer and step, so a replay of the same events gives the
same ids and a re-executed command is recognised by billing (idempotency key) and by the SMSC adapter.

Money is ``Decimal`` (exact prices, ledger sums); times are epoch seconds (floats) passed in, never read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "Activate",
    "Activated",
    "ActivationFailed",
    "ActivePackage",
    "Channel",
    "Command",
    "CreditFailed",
    "CreditScored",
    "DeliveryReported",
    "Event",
    "OfferDropped",
    "OfferOption",
    "Payment",
    "Profile",
    "ProfileUpdated",
    "Purchased",
    "PushStk",
    "QueryCredit",
    "Record",
    "RecordKind",
    "Reply",
    "Responded",
    "ResponseChannel",
    "SendSms",
    "SubmitFailed",
    "Tick",
    "TriggerKind",
    "TriggerRaised",
    "offer_id",
]


class TriggerKind(StrEnum):
    """What can start a campaign for a subscriber (the ``trigger.kind`` of a campaign file)."""

    THRESHOLD = "threshold"  # a usage threshold (``level`` %, e.g. 90) of a data package
    EXHAUSTED = "exhausted"  # the package is used up / the subscriber switched to pay-as-you-go
    PACKAGE_ENDING = "package_ending"  # a package's end date is near (billing's daily scan)
    TRIAL_ENDING = "trial_ending"  # a free trial ends soon
    RECURRING_CANCELLED = "recurring_cancelled"  # the subscriber cancelled a recurring payment
    ROAMING_REGISTERED = "roaming_registered"  # the subscriber registered in a visited network


class Channel(StrEnum):
    STK = "stk"  # a DSTK dialog pushed to the SIM (TS 102 223 in TS 102 225 in SMS-PP)
    SMS = "sms"  # a text message


class ResponseChannel(StrEnum):
    """How a subscriber answered an offer."""

    STK_OK = "stk_ok"  # one press of OK on the confirm dialog: the offered (largest) option
    STK_ITEM = "stk_item"  # an item chosen on a menu dialog
    STK_DECLINED = "stk_declined"  # Back / Cancel / No on the dialog
    USSD = "ussd"  # a USSD code dialled (the SMS lists one per option)
    SMS_REPLY = "sms_reply"  # a keyword or option number sent back by SMS


class Payment(StrEnum):
    BALANCE = "balance"  # paid from the airtime balance
    CREDIT = "credit"  # "buy now, pay later": lent by billing, repaid at the next top-up


_NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})


def _no_attributes() -> Mapping[str, str]:
    """One shared read-only empty mapping: a fresh dict per profile and trigger is 64 bytes each, kept
    by the engine for every subscriber and open offer."""
    return _NO_ATTRIBUTES


# --- the subscriber as billing knows them ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActivePackage:
    """A package the subscriber holds (billing's view): dates are ISO ``YYYY-MM-DD`` in the subscriber's zone."""

    package_id: str
    start_date: str
    end_date: str
    recurring: bool = False
    trial: bool = False


@dataclass(frozen=True, slots=True)
class Profile:
    """What eligibility rules look at. ``timezone`` is an IANA zone name (quiet hours are local);
    None means the policy's default zone."""

    msisdn: str
    segment: str = ""
    tenure_days: int = 0
    timezone: str | None = None
    stk_capable: bool = True
    packages: tuple[ActivePackage, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=_no_attributes)


# --- events (into Engine.handle) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TriggerRaised:
    """Something that may start a campaign. ``event_time`` is when the network/billing saw it (the
    trigger-to-send latency is measured from it); ``trigger_id`` is unique per trigger at its source
    (the usage trigger's subscriber/package/period/level) so a re-delivered trigger changes nothing."""

    trigger_id: str
    kind: TriggerKind
    msisdn: str
    event_time: float
    package_id: str | None = None
    level: int | None = None
    attributes: Mapping[str, str] = field(default_factory=_no_attributes)


@dataclass(frozen=True, slots=True)
class ProfileUpdated:
    """Billing's current view of a subscriber (sent with a trigger, refreshed when it changes)."""

    profile: Profile


@dataclass(frozen=True, slots=True)
class CreditScored:
    """Billing's answer to ``QueryCredit``: the airtime balance and how much it would lend."""

    request_id: str
    msisdn: str
    balance: Decimal
    credit_limit: Decimal


@dataclass(frozen=True, slots=True)
class CreditFailed:
    """``QueryCredit`` failed (billing error or unreachable after the gateway's retries)."""

    request_id: str
    msisdn: str
    reason: str


@dataclass(frozen=True, slots=True)
class SubmitFailed:
    """A ``PushStk`` or ``SendSms`` was refused by the SMSC (or could not be sent at all)."""

    command_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeliveryReported:
    """A delivery receipt for a ``PushStk`` / ``SendSms`` (SMPP 3.4 appendix B final states)."""

    command_id: str
    delivered: bool
    state: str = "DELIVRD"


@dataclass(frozen=True, slots=True)
class Responded:
    """The subscriber answered. ``offer_id`` when the channel carries it (the DSTK dialog does);
    for a USSD code or an SMS reply it is None and the engine finds the subscriber's open offer.
    ``option_id`` names the package chosen (None for STK_OK: the option the dialog offered)."""

    response_id: str
    msisdn: str
    channel: ResponseChannel
    offer_id: str | None = None
    option_id: str | None = None


@dataclass(frozen=True, slots=True)
class Activated:
    """Billing activated the package of an offer (``Activate`` succeeded; idempotent per offer)."""

    offer_id: str
    package_id: str
    payment: Payment
    price: Decimal


@dataclass(frozen=True, slots=True)
class ActivationFailed:
    """``Activate`` did not succeed. ``outcome_known`` False: no answer came (billing's answer was lost
    with its connection, or billing was unavailable for longer than the client's retries), so billing
    may have applied it; the gateway then tries the same offer id again rather than telling the
    subscriber it failed (``gateway.campaigns.channels``). Logs written before the field read as True."""

    offer_id: str
    reason: str
    outcome_known: bool = True


@dataclass(frozen=True, slots=True)
class Purchased:
    """Billing reports a purchase made outside our offers (the data shop, a top-up bundle): what the
    control arm's conversions and the uplift are measured with."""

    purchase_id: str
    msisdn: str
    package_id: str
    price: Decimal
    at: float


@dataclass(frozen=True, slots=True)
class OfferDropped:
    """An open offer was left out when the engine's state went over to a changed campaign directory
    (a reload: ``Engine.restore`` drops an offer whose campaign is gone or no longer fits it). It
    carries what the trail needs, so the engine records the offer's end ("dropped", with ``reason``)
    whether or not it still has the offer (``Engine.dropped`` makes these events)."""

    offer_id: str
    msisdn: str
    campaign_id: str
    variant: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: handle the deadlines that are due (the gateway sends it at ``next_deadline()``)."""


Event = (
    TriggerRaised
    | ProfileUpdated
    | CreditScored
    | CreditFailed
    | SubmitFailed
    | DeliveryReported
    | Responded
    | Activated
    | ActivationFailed
    | Purchased
    | OfferDropped
    | Tick
)


# --- commands (out of Engine.handle) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferOption:
    """One package an offer proposes, with how it would be paid and the USSD code that buys it."""

    package_id: str
    volume_mb: int
    price: Decimal
    payment: Payment
    ussd_code: str


@dataclass(frozen=True, slots=True)
class QueryCredit:
    request_id: str
    msisdn: str
    timeout: float


@dataclass(frozen=True, slots=True)
class PushStk:
    """Push a DSTK offer dialog (gateway.stk: ``confirm`` = the first option with one key, ``menu``)."""

    command_id: str
    offer_id: str
    msisdn: str
    campaign_id: str
    style: str
    options: tuple[OfferOption, ...]
    text: str


@dataclass(frozen=True, slots=True)
class SendSms:
    command_id: str
    msisdn: str
    campaign_id: str
    text: str
    offer_id: str | None = None
    promotional: bool = True


@dataclass(frozen=True, slots=True)
class Activate:
    """Activate ``package_id`` in billing; ``offer_id`` is the idempotency key (never twice)."""

    offer_id: str
    msisdn: str
    package_id: str
    payment: Payment
    price: Decimal


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to a ``Responded``: the USSD session's final screen, or an SMS for the other channels."""

    response_id: str
    msisdn: str
    channel: ResponseChannel
    accepted: bool
    text: str


class RecordKind(StrEnum):
    """The decision trail (``tgw explain``) and what the KPIs count."""

    TRIGGER = "trigger"
    ASSIGNED = "assigned"  # experiment variant (the control arm too)
    ELIGIBLE = "eligible"
    SUPPRESSED = "suppressed"  # with its reason
    SCORED = "scored"
    OFFERED = "offered"
    CONTACT = "contact"
    DEFERRED = "deferred"  # quiet hours, with the time it waits for
    DELIVERED = "delivered"
    RESPONSE = "response"
    REJECTED_RESPONSE = "rejected_response"  # expired offer, unknown option, nothing open
    ACTIVATION = "activation"
    FULFILLED = "fulfilled"
    FAILED = "failed"
    PURCHASE = "purchase"  # bought outside our offers (control-arm conversions)
    CLOSED = "closed"  # the offer ended: activated, declined, expired, failed, dropped (a reload)


@dataclass(frozen=True, slots=True)
class Record:
    """One line of the decision trail; ``detail`` is plain JSON-able data."""

    kind: RecordKind
    at: float
    msisdn: str
    campaign_id: str | None = None
    variant: str | None = None
    offer_id: str | None = None
    detail: Mapping[str, object] = field(default_factory=dict)


Command = QueryCredit | PushStk | SendSms | Activate | Reply | Record


def offer_id(campaign_id: str, trigger_id: str) -> str:
    """A short deterministic offer id (20 characters: the DSTK offer id field), the same on replay."""
    digest = hashlib.blake2b(f"{campaign_id}\x00{trigger_id}".encode(), digest_size=10).hexdigest()
    return digest
