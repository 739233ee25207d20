"""The SMPP 3.4 session engine, one class for both roles (ESME and SMSC), sans-I/O.

Implements the session states of SMPP 3.4 section 2.3 (open, bound_tx, bound_rx, bound_trx,
closed) as a table of which requests each side may send in each state, sequence numbers (section
3.2, 0x00000001-0x7FFFFFFF), a window of outstanding requests with per-request response timers,
the enquire_link keepalive (4.11), automatic answers to the peer's enquire_link and unbind (4.2),
generic_nack for an unknown command_id or a broken header (4.3), a maximum PDU length, and the
error statuses of section 5.1.3 for malformed or invalid requests.

The engine shape is the house one (DESIGN.md): ``receive_data(data, now)`` then ``next_event()``;
``send(pdu, now) -> sequence_number``; ``data_to_send()``; ``get_timer()`` / ``handle_timer(now)``.
It never reads a clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Any

from protocols._fast import fast_constructor
from protocols.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from protocols.smpp.constants import CommandId, CommandStatus
from protocols.smpp.events import (
    AlertNotificationReceived,
    BindCompleted,
    BindFailed,
    ConnectionClosed,
    Event,
    InvalidPduReceived,
    OutbindReceived,
    RequestReceived,
    ResponseReceived,
    ResponseTimedOut,
    Unbound,
)
from protocols.smpp.pdu import (
    HEADER,
    AlertNotification,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    Pdu,
    UnbindResp,
    body_decoder,
    encode_pdu,
    pdu_class,
)
from protocols.smpp.validate import check_message

__all__ = ["Role", "SessionState", "SmppSession"]

C = CommandId
S = CommandStatus
_RESP = 0x80000000
# an inbound header's command_id and command_status are the peer's to choose: tallies keep the
# registered ones (section 5.1.2, 5.1.3) and fold the rest into -1, so a broken peer cannot grow
# pdu_counts (and the metrics series read from it) without bound
_KNOWN_IDS = frozenset(int(command) for command in CommandId)
_KNOWN_STATUSES = frozenset(int(status) for status in CommandStatus)
_MAX_SEQUENCE = 0x7FFFFFFF


class Role(Enum):
    ESME = "esme"
    SMSC = "smsc"


class SessionState(Enum):
    """SMPP 3.4 section 2.3, plus the transient states around bind and unbind."""

    OPEN = "open"
    BINDING = "binding"  # bind sent (ESME) or received and not yet answered (SMSC)
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBINDING = "unbinding"  # our unbind is waiting for unbind_resp
    CLOSED = "closed"


St = SessionState

# command ids as plain ints: on the per-PDU path enum members cost more than the comparisons
_BOUND_BY_BIND = {
    int(C.BIND_TRANSMITTER): St.BOUND_TX,
    int(C.BIND_RECEIVER): St.BOUND_RX,
    int(C.BIND_TRANSCEIVER): St.BOUND_TRX,
}
_BINDS = frozenset(_BOUND_BY_BIND)

_ESME_TX = frozenset(
    int(c)
    for c in (
        C.SUBMIT_SM,
        C.SUBMIT_MULTI,
        C.DATA_SM,
        C.QUERY_SM,
        C.CANCEL_SM,
        C.REPLACE_SM,
        C.ENQUIRE_LINK,
        C.UNBIND,
    )
)
_KEEPALIVE = frozenset((int(C.ENQUIRE_LINK), int(C.UNBIND)))
_SMSC_RX = frozenset(
    int(c) for c in (C.DELIVER_SM, C.DATA_SM, C.ALERT_NOTIFICATION, C.ENQUIRE_LINK, C.UNBIND)
)

# Which requests each role may send in each state (SMPP 3.4 section 2.3 and the "bound state"
# columns of section 4). A request outside its row is answered with ESME_RINVBNDSTS.
REQUESTS_ALLOWED: dict[Role, dict[SessionState, frozenset[int]]] = {
    Role.ESME: {
        St.OPEN: _BINDS,
        St.BINDING: frozenset(),
        St.BOUND_TX: _ESME_TX,
        St.BOUND_RX: _KEEPALIVE,
        St.BOUND_TRX: _ESME_TX,
        St.UNBINDING: frozenset(),
        St.CLOSED: frozenset(),
    },
    Role.SMSC: {
        St.OPEN: frozenset((int(C.OUTBIND),)),
        St.BINDING: frozenset(),
        St.BOUND_TX: _KEEPALIVE,
        St.BOUND_RX: _SMSC_RX,
        St.BOUND_TRX: _SMSC_RX,
        St.UNBINDING: frozenset(),
        St.CLOSED: frozenset(),
    },
}

# requests that get no response (section 4.1.7, 4.12)
_NO_RESPONSE = frozenset((int(C.OUTBIND), int(C.ALERT_NOTIFICATION)))
_MESSAGES = frozenset((C.SUBMIT_SM, C.DELIVER_SM, C.DATA_SM, C.SUBMIT_MULTI))

_unpack_header = HEADER.unpack_from
_request_received = fast_constructor(RequestReceived)
_response_received = fast_constructor(ResponseReceived)
# plain ints for the per-PDU path: enum attribute lookups cost more than the comparisons
_ENQUIRE_LINK = int(C.ENQUIRE_LINK)
_UNBIND = int(C.UNBIND)
_GENERIC_NACK = int(C.GENERIC_NACK)
_MESSAGE_IDS = frozenset(int(c) for c in _MESSAGES)
_DECODER = {int(c): body_decoder(c) for c in C}


class SmppSession:
    """One SMPP connection, either role.

    ``window`` bounds the requests we have outstanding (enquire_link and unbind are exempt so the
    link can always be probed and closed). ``response_timeout`` applies to every request we send.
    ``enquire_link_interval`` is the idle time after which we probe the link (None: never).
    """

    def __init__(
        self,
        role: Role,
        *,
        window: int = 100,
        response_timeout: float = 30.0,
        enquire_link_interval: float | None = 30.0,
        max_pdu_length: int = 72 * 1024,
        validate: bool = True,
        pdu_counts: dict[tuple[str, int, int], int] | None = None,
    ) -> None:
        if window < 1:
            raise LocalProtocolError("window must be at least 1")
        self.role = role
        self.window = window
        self.response_timeout = response_timeout
        self.enquire_link_interval = enquire_link_interval
        self.max_pdu_length = max_pdu_length
        self.validate = validate
        self.state = SessionState.OPEN
        self.is_bound = False  # kept by _set_state: read on every submit, so not a property
        self.bound_system_id = ""
        self._our_requests = REQUESTS_ALLOWED[role]
        self._peer_requests = REQUESTS_ALLOWED[Role.SMSC if role is Role.ESME else Role.ESME]
        self._allowed_out = self._our_requests[self.state]
        self._allowed_in = self._peer_requests[self.state]
        self._buffer = bytearray()
        self._out: list[bytes] = []
        # ("in" | "out", command_id, command_status) -> PDUs; the caller may share one across sessions
        self.pdu_counts: dict[tuple[str, int, int], int] = {} if pdu_counts is None else pdu_counts
        self._events: deque[Event] = deque()
        # seq -> (request, deadline); insertion order is deadline order because every request gets
        # the same timeout and ``now`` never goes back, so the head is always the next to expire
        self._outstanding: dict[int, tuple[Pdu, float]] = {}
        self._awaiting_answer: dict[int, int] = {}  # peer's seq -> its command_id
        self._duplicates: dict[int, int] = {}  # peer reused a seq still awaiting our answer
        self._next_seq = 1
        self._last_received = 0.0
        self._bind_system_id = ""
        self._enquire_outstanding = False

    def connection_made(self, now: float) -> None:
        """The transport is up: the idle timer for enquire_link starts now."""
        self._last_received = now

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    # --- state ------------------------------------------------------------------------------------

    def _set_state(self, state: SessionState) -> None:
        self.state = state
        self.is_bound = state in (St.BOUND_TX, St.BOUND_RX, St.BOUND_TRX)
        self._allowed_out = self._our_requests[state]
        self._allowed_in = self._peer_requests[state]

    @property
    def is_open(self) -> bool:
        """The connection is usable (not closed by either side or by a fatal error)."""
        return self.state is not St.CLOSED

    @property
    def outstanding(self) -> int:
        """Requests sent and not yet answered (the window occupancy)."""
        return len(self._outstanding)

    @property
    def window_available(self) -> int:
        return self.window - len(self._outstanding)

    def unanswered_requests(self) -> list[tuple[int, Pdu]]:
        """Our requests still waiting for a response, oldest first (to re-send after a reconnect)."""
        return [(seq, pdu) for seq, (pdu, _) in self._outstanding.items()]

    def can_send(self, command_id: int) -> bool:
        return command_id in self._allowed_out

    # --- output --------------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        counts = self.pdu_counts
        for pdu in out:  # one encoded PDU each: tallied by its header (section 3.2)
            _, cid, status, _ = _unpack_header(pdu, 0)
            key = ("out", cid, status)
            counts[key] = counts.get(key, 0) + 1
        data = b"".join(out)
        out.clear()
        return data

    def next_event(self) -> Event | None:
        events = self._events
        return events.popleft() if events else None

    def send(self, pdu: Pdu, now: float) -> int:
        """Queue ``pdu``. Requests get the next sequence number (returned); responses keep the
        sequence number of the request they answer, which must be one the peer is waiting on."""
        cid = pdu.command_id
        if cid & _RESP:
            return self._send_response(pdu)
        if cid not in self._allowed_out:
            raise LocalProtocolError(
                f"{C(cid).name.lower()} may not be sent by the {self.role.value} in state {self.state.value}",
                S.ESME_RINVBNDSTS,
            )
        if cid in _NO_RESPONSE:
            seq = self._take_seq()
            self._out.append(encode_pdu(pdu, seq))
            return seq
        outstanding = self._outstanding
        if len(outstanding) >= self.window and cid not in _KEEPALIVE:
            raise LocalProtocolError(f"window of {self.window} outstanding requests is full")
        seq = self._next_seq
        self._next_seq = 1 if seq >= _MAX_SEQUENCE else seq + 1
        self._out.append(encode_pdu(pdu, seq))
        outstanding[seq] = (pdu, now + self.response_timeout)
        if cid in _BINDS:
            self._set_state(St.BINDING)
        elif cid == _UNBIND:
            self._set_state(St.UNBINDING)
        elif cid == _ENQUIRE_LINK:
            self._enquire_outstanding = True
        return seq

    def answer(self, request: Pdu, command_status: int = 0, **fields: Any) -> int:
        """Send the response matching ``request`` (same sequence_number) with ``fields``."""
        cls = pdu_class(request.command_id | _RESP)
        if cls is None or request.command_id in _NO_RESPONSE:
            raise LocalProtocolError(f"{type(request).__name__} has no response")
        make: Callable[..., Pdu] = cls
        resp = make(sequence_number=request.sequence_number, command_status=command_status, **fields)
        return self._send_response(resp)

    def _take_seq(self) -> int:
        seq = self._next_seq
        self._next_seq = 1 if seq >= _MAX_SEQUENCE else seq + 1
        return seq

    def _await_answer(self, seq: int, cid: int) -> None:
        awaiting = self._awaiting_answer
        if seq in awaiting:
            # a peer that reuses a sequence number still gets one answer per request
            self._duplicates[seq] = self._duplicates.get(seq, 0) + 1
        else:
            awaiting[seq] = cid

    def _send_response(self, pdu: Pdu) -> int:
        seq = pdu.sequence_number
        cid = pdu.command_id
        req_cid = self._awaiting_answer.get(seq)
        if req_cid is None:
            raise LocalProtocolError(f"no request with sequence_number {seq} is waiting for an answer")
        if cid != req_cid | _RESP and cid != _GENERIC_NACK:
            raise LocalProtocolError(f"{type(pdu).__name__} does not answer {C(req_cid).name.lower()}")
        self._out.append(encode_pdu(pdu))  # may raise: then the request stays answerable
        if self._duplicates and seq in self._duplicates:
            left = self._duplicates[seq] - 1
            if left:
                self._duplicates[seq] = left
            else:
                del self._duplicates[seq]
        else:
            del self._awaiting_answer[seq]
        if req_cid in _BINDS:
            if pdu.command_status == 0 and cid != C.GENERIC_NACK:
                self.bound_system_id = self._bind_system_id
                self._set_state(_BOUND_BY_BIND[req_cid])
                self._events.append(BindCompleted(req_cid, self.bound_system_id))
            else:
                self._set_state(St.OPEN)
        return seq

    # --- input ---------------------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes from the peer; ``b""`` means the peer closed the connection."""
        if not data:
            if self.state is not St.CLOSED:
                self._set_state(St.CLOSED)
                self._events.append(ConnectionClosed())
            return
        if self.state is St.CLOSED:
            return  # after a fatal error nothing more is read
        self._last_received = now
        if self._buffer:
            self._buffer += data
            data = bytes(self._buffer)
            self._buffer.clear()
        n = len(data)
        pos = 0
        max_length = self.max_pdu_length
        dispatch = self._dispatch
        try:
            while n - pos >= 16:
                length, cid, status, seq = _unpack_header(data, pos)
                if length < 16 or length > max_length:
                    self._fatal_length(length, cid, seq)
                end = pos + length
                if end > n:
                    break
                if dispatch(data[pos:end], cid, status, seq, now):
                    break  # an unbind closed the session: nothing after it is read
                pos = end
        finally:
            if pos < n and self.is_open:
                self._buffer += data[pos:]

    def _fatal_length(self, length: int, cid: int, seq: int) -> None:
        # The framing can no longer be trusted: answer once, then close (section 3.2 / 5.1.3).
        self._out.append(encode_pdu(GenericNack(seq, S.ESME_RINVCMDLEN)))
        self._set_state(St.CLOSED)
        self._buffer.clear()
        raise RemoteProtocolError(
            f"command_length {length} outside 16..{self.max_pdu_length}", S.ESME_RINVCMDLEN
        )

    def _dispatch(self, raw: bytes, cid: int, status: int, seq: int, now: float) -> bool | None:
        """Handle one PDU; True when it closed the session (an unbind or its answer)."""
        key = ("in", cid if cid in _KNOWN_IDS else -1, status if status in _KNOWN_STATUSES else -1)
        self.pdu_counts[key] = self.pdu_counts.get(key, 0) + 1
        if cid & _RESP:
            return self._on_response(raw, cid, seq)
        decoder = _DECODER.get(cid)
        if decoder is None:
            self._reject(cid, seq, S.ESME_RINVCMDID, f"unknown command_id {cid:#010x}", nack=True)
            return None
        if cid not in self._allowed_in:
            code = S.ESME_RALYBND if cid in _BINDS and self.is_bound else S.ESME_RINVBNDSTS
            reason = f"{C(cid).name.lower()} not allowed in state {self.state.value}"
            self._reject(cid, seq, code, reason, nack=cid in _NO_RESPONSE)
            return None
        try:
            pdu = decoder(seq, status, raw)
        except DecodeError as exc:
            self._reject(cid, seq, exc.status or S.ESME_RSYSERR, str(exc), nack=cid in _NO_RESPONSE)
            return None
        if cid in _MESSAGE_IDS:
            if self.validate:
                bad = check_message(pdu)
                if bad is not None:
                    self._reject(cid, seq, bad[0], bad[1], nack=False)
                    return None
            self._await_answer(seq, cid)
            self._events.append(_request_received(pdu))
        elif cid == _ENQUIRE_LINK:
            self._out.append(encode_pdu(EnquireLinkResp(seq)))
        elif cid == _UNBIND:
            self._out.append(encode_pdu(UnbindResp(seq)))
            self._set_state(St.CLOSED)
            self._events.append(Unbound(by_peer=True))
            return True
        elif cid in _BINDS:
            self._bind_system_id = pdu.system_id  # type: ignore[attr-defined]
            self._await_answer(seq, cid)
            self._set_state(St.BINDING)
            self._events.append(RequestReceived(pdu))
        elif isinstance(pdu, Outbind):
            self._events.append(OutbindReceived(pdu))
        elif isinstance(pdu, AlertNotification):
            self._events.append(AlertNotificationReceived(pdu))
        else:  # query_sm, cancel_sm, replace_sm
            self._await_answer(seq, cid)
            self._events.append(RequestReceived(pdu))
        return None

    def _reject(self, cid: int, seq: int, code: int, reason: str, *, nack: bool) -> None:
        resp_cls = None if nack else pdu_class(cid | _RESP)
        if resp_cls is None:
            # generic_nack is the answer when no specific response exists (section 4.3)
            self._out.append(encode_pdu(GenericNack(seq, code)))
        else:
            # the body of an error response is left out (section 4.4.2 and friends)
            fields = {"message_id": None} if "message_id" in resp_cls.__dataclass_fields__ else {}  # type: ignore[attr-defined]
            if "system_id" in resp_cls.__dataclass_fields__:  # type: ignore[attr-defined]
                fields = {"system_id": None}
            make: Callable[..., Pdu] = resp_cls
            self._out.append(encode_pdu(make(sequence_number=seq, command_status=code, **fields)))
        self._events.append(InvalidPduReceived(cid, seq, code, reason))

    def _on_response(self, raw: bytes, cid: int, seq: int) -> bool | None:
        entry = self._outstanding.get(seq)
        if entry is None:
            self._events.append(
                InvalidPduReceived(
                    cid, seq, None, f"response to sequence_number {seq}, which is not outstanding"
                )
            )
            return None
        request = entry[0]
        req_cid = request.command_id
        if cid != req_cid | _RESP and cid != _GENERIC_NACK:
            self._events.append(
                InvalidPduReceived(cid, seq, None, f"{cid:#010x} does not answer {C(req_cid).name.lower()}")
            )
            return None
        try:
            response = _DECODER[cid](seq, _unpack_header(raw)[2], raw)  # type: ignore[misc]
        except DecodeError as exc:
            # an unreadable response is no response: the request stays outstanding until it times out
            self._events.append(InvalidPduReceived(cid, seq, None, str(exc)))
            return None
        del self._outstanding[seq]
        if req_cid == _ENQUIRE_LINK:
            self._enquire_outstanding = False
            return None
        if req_cid in _BINDS:
            if response.command_status == 0 and cid != C.GENERIC_NACK:
                self.bound_system_id = getattr(response, "system_id", None) or ""
                self._set_state(_BOUND_BY_BIND[req_cid])
                self._events.append(BindCompleted(req_cid, self.bound_system_id))
            else:
                self._set_state(St.OPEN)
                self._events.append(BindFailed(response.command_status))
            return None
        if req_cid == _UNBIND:
            self._set_state(St.CLOSED)
            self._events.append(Unbound(by_peer=False))
            return True
        self._events.append(_response_received(request, response))
        return None

    # --- timers --------------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next run (None: nothing pending)."""
        deadline: float | None = None
        if self._outstanding:
            deadline = next(iter(self._outstanding.values()))[1]
        if self.enquire_link_interval is not None and self.is_bound and not self._enquire_outstanding:
            probe = self._last_received + self.enquire_link_interval
            if deadline is None or probe < deadline:
                deadline = probe
        return deadline

    def handle_timer(self, now: float) -> None:
        outstanding = self._outstanding
        while outstanding:
            seq, (request, deadline) = next(iter(outstanding.items()))
            if deadline > now:
                break
            del outstanding[seq]
            if request.command_id == _ENQUIRE_LINK:
                self._enquire_outstanding = False
            elif request.command_id in _BINDS:
                self._set_state(St.OPEN)
            elif request.command_id == _UNBIND:
                self._set_state(St.CLOSED)  # the peer did not confirm; the link is finished either way
            self._events.append(ResponseTimedOut(request, seq))
        if (
            self.enquire_link_interval is not None
            and self.is_bound
            and not self._enquire_outstanding
            and now >= self._last_received + self.enquire_link_interval
        ):
            self.send(EnquireLink(), now)
            self._last_received = now  # the next probe is one interval after this one
