"""Events of the SMPP session engine: past-tense facts the adapter reads with ``next_event()``."""

from __future__ import annotations

from dataclasses import dataclass

from protocols.smpp.pdu import AlertNotification, Outbind, Pdu

__all__ = [
    "AlertNotificationReceived",
    "BindCompleted",
    "BindFailed",
    "ConnectionClosed",
    "Event",
    "InvalidPduReceived",
    "OutbindReceived",
    "RequestReceived",
    "ResponseReceived",
    "ResponseTimedOut",
    "Unbound",
]


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """The peer sent a request the application must answer (``SmppSession.send`` a response with the
    same sequence_number, or use ``SmppSession.answer``)."""

    pdu: Pdu


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The peer answered one of our requests (``response`` may be a generic_nack)."""

    request: Pdu
    response: Pdu


@dataclass(frozen=True, slots=True)
class ResponseTimedOut:
    """No response to ``request`` arrived within the response timeout."""

    request: Pdu
    sequence_number: int


@dataclass(frozen=True, slots=True)
class BindCompleted:
    """The session is bound; ``bind_command_id`` says as what."""

    bind_command_id: int
    system_id: str


@dataclass(frozen=True, slots=True)
class BindFailed:
    """The SMSC refused our bind with ``command_status``."""

    command_status: int


@dataclass(frozen=True, slots=True)
class Unbound:
    """The session was unbound, by the peer's unbind (already answered) or by ours being answered."""

    by_peer: bool


@dataclass(frozen=True, slots=True)
class OutbindReceived:
    """The SMSC asks the ESME to bind as a receiver (section 2.2.1)."""

    pdu: Outbind


@dataclass(frozen=True, slots=True)
class AlertNotificationReceived:
    """A subscriber became available (section 4.12); it has no response."""

    pdu: AlertNotification


@dataclass(frozen=True, slots=True)
class InvalidPduReceived:
    """The peer sent a PDU we could not accept. ``answered_with`` is the command_status we answered
    it with (None when the spec gives no answer, e.g. a response to nothing we sent)."""

    command_id: int
    sequence_number: int
    answered_with: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection (``receive_data(b"")``)."""


Event = (
    RequestReceived
    | ResponseReceived
    | ResponseTimedOut
    | BindCompleted
    | BindFailed
    | Unbound
    | OutbindReceived
    | AlertNotificationReceived
    | InvalidPduReceived
    | ConnectionClosed
)
