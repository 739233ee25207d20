"""The Diameter peer engine, sans-I/O (RFC 6733 section 5: 5.3 CER/CEA, 5.4 DPR/DPA, 5.5 DWR/DWA,
5.6 the peer state machine; RFC 3539 section 3.4 the watchdog; RFC 6733 section 3 the ids).

The states of RFC 6733 5.6 are collapsed to CLOSED, WAIT_CONN_ACK, WAIT_I_CEA, OPEN and CLOSING
(R_OPEN and I_OPEN become one OPEN; the election states are not needed for one connection).
The engine shape is the house one (DESIGN.md): ``receive_data(data, now)`` then ``next_event()``;
``send(message, now) -> hop_by_hop``; ``data_to_send()``; ``get_timer()`` / ``handle_timer(now)``.
It never reads a clock. CER, DWR and DPR from the peer are answered automatically.

Interop (PEERS.md 3.1): Origin-State-Id is constant per boot (given to the constructor), and the
Relay application 0xffffffff counts as common in the capabilities exchange.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv6Address

from protocols.diameter.codec import (
    HEADER_LENGTH,
    Avp,
    AvpFlag,
    CommandFlag,
    Message,
    ResultCode,
    decode,
    encode,
    message_length,
    record_maker,
)
from protocols.diameter.dictionary import AvpType, avp, find, find_all, lookup_code, value_of
from protocols.errors import DecodeError, LocalProtocolError, RemoteProtocolError

__all__ = [
    "RELAY_APPLICATION_ID",
    "AnswerReceived",
    "CapabilitiesExchangeFailed",
    "CapabilitiesExchanged",
    "ConnectionLost",
    "DiameterPeer",
    "Event",
    "PeerDisconnected",
    "PeerState",
    "RequestReceived",
    "UnexpectedAnswer",
    "WatchdogExpired",
]

RELAY_APPLICATION_ID = 0xFFFFFFFF
CER = 257
DWR = 280
DPR = 282
_BASE_COMMANDS = frozenset((CER, DWR, DPR))
_SESSION_ID_CODE = 263
_U32 = 0xFFFFFFFF


class PeerState(Enum):
    """RFC 6733 section 5.6, with R_OPEN and I_OPEN as one OPEN."""

    CLOSED = "closed"
    WAIT_CONN_ACK = "wait_conn_ack"
    WAIT_I_CEA = "wait_i_cea"
    OPEN = "open"
    CLOSING = "closing"


@dataclass(frozen=True, slots=True)
class CapabilitiesExchanged:
    peer_host: str
    peer_realm: str
    application_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CapabilitiesExchangeFailed:
    result_code: int


@dataclass(frozen=True, slots=True)
class RequestReceived:
    message: Message


@dataclass(frozen=True, slots=True)
class AnswerReceived:
    request: Message
    answer: Message


@dataclass(frozen=True, slots=True)
class UnexpectedAnswer:
    answer: Message


@dataclass(frozen=True, slots=True)
class WatchdogExpired:
    pass


@dataclass(frozen=True, slots=True)
class PeerDisconnected:
    cause: int


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    pass


Event = (
    CapabilitiesExchanged
    | CapabilitiesExchangeFailed
    | RequestReceived
    | AnswerReceived
    | UnexpectedAnswer
    | WatchdogExpired
    | PeerDisconnected
    | ConnectionLost
)

_REQUEST = int(CommandFlag.REQUEST)
_ERROR = int(CommandFlag.ERROR)
_PROXIABLE = int(CommandFlag.PROXIABLE)

_OPEN = PeerState.OPEN  # read once for the per-request check: an enum class's attribute costs 0.1 us

# one per request: RequestReceived itself, or the C accelerator's Maker of it (codec.record_maker)
_new_request_received = record_maker(RequestReceived)


class DiameterPeer:
    """One Diameter connection, as ``responder`` (waits for CER) or ``initiator`` (``start``)."""

    def __init__(
        self,
        role: str,
        origin_host: str,
        origin_realm: str,
        *,
        host_ip_addresses: Sequence[IPv4Address | IPv6Address],
        vendor_id: int,
        product_name: str,
        origin_state_id: int,
        auth_application_ids: Sequence[int] = (),
        vendor_specific_applications: Sequence[tuple[int, int]] = (),
        supported_vendor_ids: Sequence[int] = (),
        supported_commands: Collection[tuple[int, int]] = (),
        watchdog_interval: float = 30.0,
        max_message_length: int = 65536,
        id_seed: int | None = None,
    ) -> None:
        if role not in ("responder", "initiator"):
            raise LocalProtocolError(f"role {role!r} is neither responder nor initiator")
        self.role = role
        self.origin_host = origin_host
        self.origin_realm = origin_realm
        self.origin_state_id = origin_state_id
        self.watchdog_interval = watchdog_interval
        self.max_message_length = max_message_length
        self.supported_commands = frozenset(supported_commands)
        self.application_ids = frozenset(auth_application_ids) | {a for _, a in vendor_specific_applications}
        self.common_application_ids: frozenset[int] = frozenset()
        self.peer_host: str | None = None
        self.peer_realm: str | None = None
        self.state = PeerState.CLOSED if role == "responder" else PeerState.WAIT_CONN_ACK
        self._terminated = False
        self._capabilities: tuple[Avp, ...] = (
            avp("Origin-Host", origin_host),
            avp("Origin-Realm", origin_realm),
            *(avp("Host-IP-Address", address) for address in host_ip_addresses),
            avp("Vendor-Id", vendor_id),
            avp("Product-Name", product_name),
            avp("Origin-State-Id", origin_state_id),
            *(avp("Supported-Vendor-Id", v) for v in supported_vendor_ids),
            *(avp("Auth-Application-Id", a) for a in auth_application_ids),
            *(
                avp("Vendor-Specific-Application-Id", [avp("Vendor-Id", v), avp("Auth-Application-Id", a)])
                for v, a in vendor_specific_applications
            ),
        )
        seed = origin_state_id if id_seed is None else id_seed
        self._end_to_end_high = (seed & 0xFFF) << 20
        self._end_to_end = 0
        self._hop_by_hop = (seed * 0x9E3779B1) & _U32
        self._pending: dict[int, Message] = {}
        self._buffer = bytearray()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._last_received = 0.0
        self._watchdog_hop: int | None = None
        self._watchdog_sent = 0.0

    # --- the engine face ------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Initiator: the connection is up, send the CER (RFC 6733 5.6 I-Rcv-Conn-Ack)."""
        if self.role != "initiator" or self.state is not PeerState.WAIT_CONN_ACK:
            raise LocalProtocolError("start() is for an initiator that has not started")
        self.state = PeerState.WAIT_I_CEA
        self._queue_request(CER, 0, self._capabilities, now)

    def disconnect(self, now: float, cause: int = 0) -> int:
        """Send a DPR (RFC 6733 5.4); the DPA closes the peer."""
        if self.state is not PeerState.OPEN:
            raise LocalProtocolError(f"cannot disconnect in state {self.state.name}")
        self.state = PeerState.CLOSING
        avps = (self._capabilities[0], self._capabilities[1], avp("Disconnect-Cause", cause))
        return self._queue_request(DPR, 0, avps, now)

    def send(self, message: Message, now: float) -> int:
        """Queue an application message; returns its hop-by-hop id (assigned for requests)."""
        if self.state is not PeerState.OPEN:
            raise LocalProtocolError(f"cannot send in state {self.state.name}")
        if not message.is_request:
            self._out += encode(message)
            return message.hop_by_hop
        if message.command_code in _BASE_COMMANDS:
            raise LocalProtocolError("CER, DWR and DPR are sent by the engine")
        return self._queue_request(
            message.command_code, message.application_id, message.avps, now, message.command_flags
        )

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        if self.state is not PeerState.OPEN:
            return None
        if self._watchdog_hop is not None:
            return self._watchdog_sent + self.watchdog_interval
        return self._last_received + self.watchdog_interval

    def handle_timer(self, now: float) -> None:
        deadline = self.get_timer()
        if deadline is None or now < deadline:
            return
        if self._watchdog_hop is not None:
            self._close()
            self._events.append(WatchdogExpired())
            return
        avps = (self._capabilities[0], self._capabilities[1], avp("Origin-State-Id", self.origin_state_id))
        self._watchdog_hop = self._queue_request(DWR, 0, avps, now)
        self._watchdog_sent = now

    def receive_data(self, data: bytes, now: float) -> None:
        if self._terminated:
            return
        if not data:
            self._close()
            self._events.append(ConnectionLost())
            return
        self._last_received = now
        if self._buffer:
            self._buffer += data
            data = bytes(self._buffer)
            self._buffer.clear()
        elif type(data) is not bytes:
            data = bytes(data)
        # frames are cut from ``data`` by offset: one copy each, and the rest is kept only once
        offset = 0
        end = len(data)
        try:
            while not self._terminated:
                length = message_length(data, offset)
                if length is not None and length > self.max_message_length:
                    raise RemoteProtocolError(
                        f"message of {length} octets over the limit",
                        ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH,
                    )
                if length is None or end - offset < length:
                    break
                frame = data[offset : offset + length]
                offset += length
                self._handle_frame(frame, now)
        except RemoteProtocolError:
            self._close()
            raise
        if offset < end and not self._terminated:
            self._buffer += memoryview(data)[offset:]

    # --- internals ------------------------------------------------------------------------

    def _close(self) -> None:
        self.state = PeerState.CLOSED
        self._terminated = True
        self._buffer.clear()

    def _queue_request(
        self, code: int, application_id: int, avps: Sequence[Avp], now: float, flags: int = _REQUEST
    ) -> int:
        self._hop_by_hop = (self._hop_by_hop + 1) & _U32
        self._end_to_end = (self._end_to_end + 1) & 0xFFFFF
        request = Message(
            command_flags=flags | _REQUEST,
            command_code=code,
            application_id=application_id,
            hop_by_hop=self._hop_by_hop,
            end_to_end=self._end_to_end_high | self._end_to_end,
            avps=tuple(avps),
        )
        self._out += encode(request)
        self._pending[request.hop_by_hop] = request
        return request.hop_by_hop

    def _answer(self, request: Message, result_code: int, *, error: bool, extra: Sequence[Avp] = ()) -> None:
        avps: list[Avp] = [a for a in request.avps[:1] if a.code == _SESSION_ID_CODE and a.vendor_id is None]
        avps += [avp("Result-Code", result_code), *extra]
        if not extra:
            avps += [self._capabilities[0], self._capabilities[1]]
        answer = Message(
            command_flags=(request.command_flags & _PROXIABLE) | (_ERROR if error else 0),
            command_code=request.command_code,
            application_id=request.application_id,
            hop_by_hop=request.hop_by_hop,
            end_to_end=request.end_to_end,
            avps=tuple(avps),
        )
        self._out += encode(answer)

    def _handle_frame(self, frame: bytes, now: float) -> None:
        try:
            message = decode(frame)
        except DecodeError as exc:
            flags_code = int.from_bytes(frame[4:8], "big")
            if not flags_code >> 24 & _REQUEST:
                raise
            session, failed = _salvage(frame)
            header = Message(
                command_flags=flags_code >> 24 & ~_ERROR,
                command_code=flags_code & 0xFFFFFF,
                application_id=int.from_bytes(frame[8:12], "big"),
                hop_by_hop=int.from_bytes(frame[12:16], "big"),
                end_to_end=int.from_bytes(frame[16:HEADER_LENGTH], "big"),
                avps=() if session is None else (session,),
            )
            extra: tuple[Avp, ...] = ()
            if failed is not None:
                extra = (*self._capabilities[:2], avp("Failed-AVP", [failed]))
            # RFC 6733 7.1.3/7.2: the E bit marks protocol errors (3xxx) only; 5xxx are answered plainly
            self._answer(header, exc.status, error=3000 <= exc.status < 4000, extra=extra)
            return
        if message.command_flags & _REQUEST:
            self._handle_request(message)
        else:
            self._handle_answer(message)

    def _handle_request(self, request: Message) -> None:
        code = request.command_code
        if self.state is _OPEN and code not in _BASE_COMMANDS:
            # the usual request: an application's, on an open connection, that we take (anything
            # else goes the long way below, which answers it)
            application_id = request.application_id
            if (application_id, code) in self.supported_commands and self._application_common(application_id):
                self._events.append(_new_request_received(request))
                return
        if self.state is PeerState.CLOSED and code == CER:
            self._handle_cer(request)
        elif self.state not in (PeerState.OPEN, PeerState.CLOSING):
            if self.state is PeerState.WAIT_CONN_ACK:
                raise RemoteProtocolError("data before the connection was started")
            self._answer(request, ResultCode.DIAMETER_UNKNOWN_PEER, error=True)
        elif code == DWR:
            extra = (*self._capabilities[:2], avp("Origin-State-Id", self.origin_state_id))
            self._answer(request, ResultCode.DIAMETER_SUCCESS, error=False, extra=extra)
        elif code == DPR:
            cause = find(request, "Disconnect-Cause")
            self._answer(request, ResultCode.DIAMETER_SUCCESS, error=False)
            self._close()
            self._events.append(PeerDisconnected(_int_value(cause)))
        elif code == CER:
            self._answer(request, ResultCode.DIAMETER_UNABLE_TO_COMPLY, error=False)
        elif not self._application_common(request.application_id) or not self._handles(
            request.application_id
        ):
            # RFC 6733 7.1.3: 3007 for an application this node does not support, even from a relay
            # peer (a DRA advertises Relay, which makes every application "common" with it)
            self._answer(request, ResultCode.DIAMETER_APPLICATION_UNSUPPORTED, error=True)
        elif (request.application_id, code) not in self.supported_commands:
            self._answer(request, ResultCode.DIAMETER_COMMAND_UNSUPPORTED, error=True)
        else:
            self._events.append(_new_request_received(request))

    def _handle_answer(self, answer: Message) -> None:
        request = self._pending.pop(answer.hop_by_hop, None)
        if request is None:
            if self.state is not PeerState.OPEN:
                raise RemoteProtocolError("answer to no request before the peer is open")
            self._events.append(UnexpectedAnswer(answer))
            return
        code = request.command_code
        if code == CER:
            self._handle_cea(answer)
        elif code == DWR:
            self._watchdog_hop = None
        elif code == DPR:
            self._close()
            self._events.append(PeerDisconnected(_int_value(find(request, "Disconnect-Cause"))))
        else:
            self._events.append(AnswerReceived(request, answer))

    def _application_common(self, application_id: int) -> bool:
        return (
            application_id in self.common_application_ids
            or RELAY_APPLICATION_ID in self.common_application_ids
        )

    def _handles(self, application_id: int) -> bool:
        """Whether this node itself supports the application (a relay node supports them all)."""
        return application_id in self.application_ids or RELAY_APPLICATION_ID in self.application_ids

    def _peer_capabilities(self, message: Message) -> tuple[str, str, tuple[int, ...]]:
        host = find(message, "Origin-Host")
        realm = find(message, "Origin-Realm")
        if host is None or realm is None:
            raise DecodeError("Origin-Host or Origin-Realm missing", ResultCode.DIAMETER_MISSING_AVP)
        applications = [
            *find_all(message, "Auth-Application-Id"),
            *find_all(message, "Acct-Application-Id"),
        ]
        for group in find_all(message, "Vendor-Specific-Application-Id"):
            members = value_of(group)
            if isinstance(members, tuple):
                applications += find_all(members, "Auth-Application-Id")
                applications += find_all(members, "Acct-Application-Id")
        ids = tuple(dict.fromkeys(_int_value(a) for a in applications))
        return str(value_of(host)), str(value_of(realm)), ids

    def _set_common(self, peer_ids: tuple[int, ...]) -> None:
        if RELAY_APPLICATION_ID in peer_ids:
            self.common_application_ids = self.application_ids | {RELAY_APPLICATION_ID}
        elif RELAY_APPLICATION_ID in self.application_ids:
            self.common_application_ids = frozenset(peer_ids) | {RELAY_APPLICATION_ID}
        else:
            self.common_application_ids = self.application_ids & frozenset(peer_ids)

    def _handle_cer(self, request: Message) -> None:
        try:
            host, realm, ids = self._peer_capabilities(request)
        except DecodeError as exc:
            self._answer(request, exc.status, error=True)
            return
        self._set_common(ids)
        if not self.common_application_ids:
            self._answer(
                request, ResultCode.DIAMETER_NO_COMMON_APPLICATION, error=False, extra=self._capabilities
            )
            self._close()
            self._events.append(CapabilitiesExchangeFailed(ResultCode.DIAMETER_NO_COMMON_APPLICATION))
            return
        self._answer(request, ResultCode.DIAMETER_SUCCESS, error=False, extra=self._capabilities)
        self._opened(host, realm, ids)

    def _handle_cea(self, answer: Message) -> None:
        result = _int_value(find(answer, "Result-Code"))
        if result != ResultCode.DIAMETER_SUCCESS:
            self._close()
            self._events.append(CapabilitiesExchangeFailed(result))
            return
        host, realm, ids = self._peer_capabilities(answer)
        self._set_common(ids)
        self._opened(host, realm, ids)

    def _opened(self, host: str, realm: str, ids: tuple[int, ...]) -> None:
        self.state = PeerState.OPEN
        self.peer_host = host
        self.peer_realm = realm
        self._events.append(CapabilitiesExchanged(host, realm, ids))


_FIXED_SIZES = {
    AvpType.INTEGER32: 4,
    AvpType.UNSIGNED32: 4,
    AvpType.ENUMERATED: 4,
    AvpType.TIME: 4,
    AvpType.FLOAT32: 4,
    AvpType.INTEGER64: 8,
    AvpType.UNSIGNED64: 8,
    AvpType.FLOAT64: 8,
}


def _salvage(frame: bytes) -> tuple[Avp | None, Avp | None]:
    """What a request that does not decode still tells: its Session-Id when that comes before the
    fault (RFC 6733 8.8), and the offending AVP for Failed-AVP (7.1.5: for a length that overruns the
    message or undercuts the header, the AVP header with a zero-filled payload of the minimum size of
    its type, an empty one for Grouped and strings; an incomplete header padded with zeros)."""
    session: Avp | None = None
    offset = HEADER_LENGTH
    end = len(frame)
    while offset < end:
        head = frame[offset : offset + 12].ljust(12, b"\x00")
        code = int.from_bytes(head[:4], "big")
        flags = head[4]
        length = int.from_bytes(head[5:8], "big")
        vendor = int.from_bytes(head[8:12], "big") if flags & AvpFlag.VENDOR else None
        header_length = 8 if vendor is None else 12
        padded = (length + 3) & ~3
        if length < header_length or offset + padded > end or any(frame[offset + length : offset + padded]):
            definition = lookup_code(code, vendor or 0)
            size = 0 if definition is None else _FIXED_SIZES.get(definition.type, 0)
            return session, Avp(code, flags, vendor, bytes(size))
        if code == _SESSION_ID_CODE and vendor is None and session is None:
            session = Avp(code, flags, None, frame[offset + 8 : offset + length])
        offset += padded
    return session, None


def _int_value(item: Avp | None) -> int:
    """An Unsigned32 / Enumerated AVP's value; 0 when absent (DecodeError when malformed)."""
    if item is None:
        return 0
    value = value_of(item)
    if not isinstance(value, int):
        raise DecodeError(f"AVP {item.code} is not an integer", ResultCode.DIAMETER_INVALID_AVP_VALUE)
    return value
