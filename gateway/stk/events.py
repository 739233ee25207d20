"""What the SIM toolkit push service reports (past-tense facts, DESIGN.md "One engine shape").

The path of a push and where each fact comes from:

- the SMSC's delivery receipt (SMPP 3.4 Appendix B): :class:`StkDelivered` (the card took the
  SMS-PP download; the user has not necessarily seen the dialog) or :class:`StkDeliveryFailed`;
- a response packet from the card (ETSI TS 102 225 section 5.2, TS 31.115 section 4.4) sent as MO
  SMS-SUBMIT: :class:`StkAnswerReceived` (our applet's DstkAnswer in the additional response
  data), :class:`StkProofOfReceipt` (PoR OK without data, or '08' / '0B' / '0C', which report no
  failure) or :class:`StkRejectedBySim` (an error status: bad checksum, counter, TAR, security
  level ...);
- an MO that claims to be a response packet and fails verification: :class:`StkAnswerInvalid`
  (recorded, never acted on);
- the SMSC refusing the submit_sm: :class:`StkPushFailed`.

``at`` is when the gateway learnt it (epoch seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from protocols.stk.dstk import StkOutcome
from protocols.stk.ota import ResponseStatus

__all__ = [
    "StkAnswerInvalid",
    "StkAnswerReceived",
    "StkDelivered",
    "StkDeliveryFailed",
    "StkEvent",
    "StkProofOfReceipt",
    "StkPushFailed",
    "StkRejectedBySim",
]


@dataclass(frozen=True, slots=True)
class StkDelivered:
    """The SMSC reports the push delivered (stat DELIVRD): the SIM has it."""

    offer_id: str
    msisdn: str
    message_id: str
    at: float


@dataclass(frozen=True, slots=True)
class StkDeliveryFailed:
    """The SMSC reports a failed final state: ``stat`` is UNDELIV, EXPIRED, REJECTD or DELETED."""

    offer_id: str
    msisdn: str
    message_id: str
    stat: str
    err: str
    at: float


@dataclass(frozen=True, slots=True)
class StkAnswerReceived:
    """The subscriber answered: accepted, declined, chose ``item_id`` (option index + 1), or let it time out."""

    offer_id: str
    msisdn: str
    outcome: StkOutcome
    item_id: int
    general_result: int
    at: float


@dataclass(frozen=True, slots=True)
class StkProofOfReceipt:
    """The card confirmed the command packet: PoR status OK without answer data, or a status that
    reports no failure ('08' more time, '0B' / '0C' response data follows by SMS-SUBMIT / USSD)."""

    offer_id: str | None
    msisdn: str
    cntr: int
    at: float


@dataclass(frozen=True, slots=True)
class StkRejectedBySim:
    """The card refused the command packet with ``status``.

    ``offer_id`` is None when the counter the PoR echoes matches no push. ``authenticated`` is False
    for a PoR that came without the checksum SPI2 asks for (cards send some errors so): it may be
    genuine, but nobody proved it.
    """

    offer_id: str | None
    msisdn: str
    status: ResponseStatus
    authenticated: bool
    at: float


@dataclass(frozen=True, slots=True)
class StkAnswerInvalid:
    """An MO claiming to be a card's answer failed verification (unknown sender, bad checksum ...)."""

    msisdn: str
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class StkPushFailed:
    """The SMSC refused the push (``status`` its command_status, None when the link failed)."""

    offer_id: str
    msisdn: str
    reason: str
    status: int | None
    at: float


StkEvent: TypeAlias = (
    StkDelivered
    | StkDeliveryFailed
    | StkAnswerReceived
    | StkProofOfReceipt
    | StkRejectedBySim
    | StkAnswerInvalid
    | StkPushFailed
)
