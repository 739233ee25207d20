"""The SMPP 3.4 session engine (protocols/smpp/session.py) driven in memory, both roles.

An ESME session and an SMSC session are paired and bytes are pumped between them; where the peer
engine would refuse to send something (a request outside its state, a malformed PDU) the test writes
the bytes itself. Covered: bind flows (section 4.1), the state table of section 2.3, sequence numbers
(3.2), the window and per-request response timers, enquire_link (4.11), unbind (4.2), generic_nack
(4.3), the error statuses of 5.1.3 for malformed and invalid requests, outbind (4.1.7),
alert_notification (4.12) and the remaining operations (4.5, 4.7-4.10).
"""

from __future__ import annotations

import struct

import pytest

from protocols.errors import LocalProtocolError, RemoteProtocolError
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
    HEADER_LENGTH,
    AlertNotification,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    BindTransmitterResp,
    CancelSm,
    CancelSmResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    DestAddress,
    DistributionList,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    ReplaceSmResp,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    UnsuccessSme,
    decode_pdu,
    encode_pdu,
    pdu_class,
)
from protocols.smpp.session import REQUESTS_ALLOWED, Role, SessionState, SmppSession

C = CommandId
S = CommandStatus
St = SessionState
BINDS: dict[int, type[Pdu]] = {
    C.BIND_TRANSMITTER: BindTransmitter,
    C.BIND_RECEIVER: BindReceiver,
    C.BIND_TRANSCEIVER: BindTransceiver,
}
BOUND_AS = {C.BIND_TRANSMITTER: St.BOUND_TX, C.BIND_RECEIVER: St.BOUND_RX, C.BIND_TRANSCEIVER: St.BOUND_TRX}

# One valid request of every kind SMPP 3.4 defines, keyed by command_id.
SAMPLE_REQUESTS: dict[int, Pdu] = {
    C.BIND_TRANSMITTER: BindTransmitter(system_id="esme1", password="pw"),
    C.BIND_RECEIVER: BindReceiver(system_id="esme1", password="pw"),
    C.BIND_TRANSCEIVER: BindTransceiver(system_id="esme1", password="pw"),
    C.OUTBIND: Outbind(system_id="smsc", password="pw"),
    C.UNBIND: Unbind(),
    C.ENQUIRE_LINK: EnquireLink(),
    C.SUBMIT_SM: SubmitSm(source_addr="100", destination_addr="4912345", short_message=b"hi"),
    C.DELIVER_SM: DeliverSm(source_addr="4912345", destination_addr="100", short_message=b"yes"),
    C.SUBMIT_MULTI: SubmitMulti(
        source_addr="100",
        dest_addresses=(DestAddress(1, 1, "4911"), DistributionList("staff")),
        short_message=b"all",
    ),
    C.DATA_SM: DataSm(source_addr="100", destination_addr="4912345"),
    C.QUERY_SM: QuerySm(message_id="m1", source_addr="100"),
    C.CANCEL_SM: CancelSm(message_id="m1", source_addr="100", destination_addr="4912345"),
    C.REPLACE_SM: ReplaceSm(message_id="m1", source_addr="100", short_message=b"new"),
    C.ALERT_NOTIFICATION: AlertNotification(source_addr="4912345", esme_addr="100"),
}
NO_RESPONSE = {C.OUTBIND, C.ALERT_NOTIFICATION}


# --- helpers ----------------------------------------------------------------------------------------


def drain(session: SmppSession) -> list[Event]:
    out: list[Event] = []
    while (event := session.next_event()) is not None:
        out.append(event)
    return out


def pdus(data: bytes) -> list[Pdu]:
    """Split ``data`` into PDUs by command_length and decode each (it must be well-formed)."""
    out: list[Pdu] = []
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        assert length >= HEADER_LENGTH
        out.append(decode_pdu(data[pos : pos + length]))
        pos += length
    assert pos == len(data)
    return out


def wire(pdu: Pdu, seq: int) -> bytes:
    return encode_pdu(pdu, seq)


def frame(command_id: int, body: bytes, seq: int = 7, status: int = 0) -> bytes:
    return struct.pack(">IIII", HEADER_LENGTH + len(body), command_id, status, seq) + body


def pump(a: SmppSession, b: SmppSession, now: float = 0.0) -> None:
    """Move bytes both ways until neither side has anything to send."""
    for _ in range(100):
        da, db = a.data_to_send(), b.data_to_send()
        if not da and not db:
            return
        if da:
            b.receive_data(da, now)
        if db:
            a.receive_data(db, now)
    raise AssertionError("the sessions keep talking")


def new_pair(**kw: float | int | None) -> tuple[SmppSession, SmppSession]:
    esme = SmppSession(Role.ESME, **kw)  # type: ignore[arg-type]
    smsc = SmppSession(Role.SMSC, **kw)  # type: ignore[arg-type]
    esme.connection_made(0.0)
    smsc.connection_made(0.0)
    return esme, smsc


def bound_pair(bind: int = C.BIND_TRANSCEIVER, **kw: float | int | None) -> tuple[SmppSession, SmppSession]:
    esme, smsc = new_pair(**kw)
    esme.send(SAMPLE_REQUESTS[bind], 0.0)
    pump(esme, smsc)
    (req,) = drain(smsc)
    assert isinstance(req, RequestReceived)
    smsc.answer(req.pdu, system_id="SMSC")
    pump(esme, smsc)
    assert drain(esme) == [BindCompleted(bind, "SMSC")]
    assert drain(smsc) == [BindCompleted(bind, "esme1")]
    return esme, smsc


def session_in(role: Role, state: SessionState, **kw: float | int | None) -> SmppSession:
    """A session of ``role`` brought to ``state`` by real traffic with a peer."""
    if state in (St.BOUND_TX, St.BOUND_RX, St.BOUND_TRX, St.UNBINDING):
        bind = {St.BOUND_TX: C.BIND_TRANSMITTER, St.BOUND_RX: C.BIND_RECEIVER}.get(state, C.BIND_TRANSCEIVER)
        esme, smsc = bound_pair(bind, **kw)
        session = esme if role is Role.ESME else smsc
        if state is St.UNBINDING:
            session.send(Unbind(), 0.0)
            session.data_to_send()
    else:
        esme, smsc = new_pair(**kw)
        session = esme if role is Role.ESME else smsc
        if state is St.BINDING:
            esme.send(SAMPLE_REQUESTS[C.BIND_TRANSMITTER], 0.0)
            pump(esme, smsc)
            drain(smsc)
        elif state is St.CLOSED:
            session.receive_data(b"", 0.0)
            drain(session)
    assert session.state is state
    assert session.data_to_send() == b""
    return session


def request(session: SmppSession, pdu: Pdu, now: float = 0.0) -> int:
    """Send ``pdu`` and take it off the wire (as if the peer had read it)."""
    seq = session.send(pdu, now)
    assert pdus(session.data_to_send())[-1].sequence_number == seq
    return seq


def receive(session: SmppSession, data: bytes, now: float = 0.0) -> tuple[list[Event], list[Pdu]]:
    session.receive_data(data, now)
    return drain(session), pdus(session.data_to_send())


# --- construction and properties ------------------------------------------------------------------


def test_new_session_is_open_and_idle() -> None:
    s = SmppSession(Role.ESME)
    assert s.state is St.OPEN
    assert s.is_open and not s.is_bound
    assert s.outstanding == 0 and s.window_available == 100
    assert s.unanswered_requests() == []
    assert s.get_timer() is None
    assert s.next_event() is None and not s.has_events
    assert s.data_to_send() == b""


@pytest.mark.parametrize("window", [0, -1])
def test_window_below_one_is_refused(window: int) -> None:
    with pytest.raises(LocalProtocolError):
        SmppSession(Role.ESME, window=window)


def test_has_events_reports_queued_events() -> None:
    s = SmppSession(Role.SMSC)
    s.receive_data(b"", 0.0)
    assert s.has_events
    assert s.next_event() == ConnectionClosed()
    assert not s.has_events


# --- bind (section 4.1) ------------------------------------------------------------------------------


@pytest.mark.parametrize("bind", list(BINDS))
def test_bind_accepted(bind: int) -> None:
    esme, smsc = new_pair()
    request = SAMPLE_REQUESTS[bind]
    assert esme.send(request, 0.0) == 1
    assert esme.state is St.BINDING and esme.outstanding == 1
    assert not esme.can_send(C.SUBMIT_SM) and not esme.can_send(bind)
    pump(esme, smsc)
    (event,) = drain(smsc)
    assert event == RequestReceived(type(request)(sequence_number=1, system_id="esme1", password="pw"))
    assert smsc.state is St.BINDING
    assert smsc.answer(event.pdu, system_id="SMSC") == 1
    assert smsc.state is BOUND_AS[bind] and smsc.is_bound
    assert smsc.bound_system_id == "esme1"
    assert drain(smsc) == [BindCompleted(bind, "esme1")]
    pump(esme, smsc)
    assert drain(esme) == [BindCompleted(bind, "SMSC")]
    assert esme.state is BOUND_AS[bind] and esme.is_bound
    assert esme.bound_system_id == "SMSC"
    assert esme.outstanding == 0
    assert esme.get_timer() == 30.0  # only the enquire_link probe is pending


@pytest.mark.parametrize("bind", list(BINDS))
def test_bind_refused_returns_to_open(bind: int) -> None:
    esme, smsc = new_pair()
    esme.send(SAMPLE_REQUESTS[bind], 0.0)
    pump(esme, smsc)
    (event,) = drain(smsc)
    assert isinstance(event, RequestReceived)
    smsc.answer(event.pdu, S.ESME_RBINDFAIL, system_id=None)
    assert smsc.state is St.OPEN and drain(smsc) == []
    data = smsc.data_to_send()
    assert len(data) == HEADER_LENGTH  # an error bind_resp may leave out its body
    esme.receive_data(data, 0.0)
    assert drain(esme) == [BindFailed(S.ESME_RBINDFAIL)]
    assert esme.state is St.OPEN and esme.outstanding == 0
    assert esme.bound_system_id == ""
    # a new bind may be tried
    assert esme.send(SAMPLE_REQUESTS[bind], 1.0) == 2


def test_bind_answered_with_generic_nack_fails() -> None:
    esme, smsc = new_pair()
    esme.send(SAMPLE_REQUESTS[C.BIND_TRANSMITTER], 0.0)
    pump(esme, smsc)
    (event,) = drain(smsc)
    smsc.send(GenericNack(event.pdu.sequence_number, S.ESME_RSYSERR), 0.0)
    assert smsc.state is St.OPEN and drain(smsc) == []
    pump(esme, smsc)
    assert drain(esme) == [BindFailed(S.ESME_RSYSERR)]
    assert esme.state is St.OPEN


def test_generic_nack_with_status_zero_still_fails_a_bind() -> None:
    esme = SmppSession(Role.ESME)
    seq = request(esme, SAMPLE_REQUESTS[C.BIND_RECEIVER])
    events, _ = receive(esme, wire(GenericNack(), seq))
    assert events == [BindFailed(0)]
    assert esme.state is St.OPEN


def test_bind_resp_without_body_binds_with_empty_system_id() -> None:
    esme = SmppSession(Role.ESME)
    seq = request(esme, SAMPLE_REQUESTS[C.BIND_TRANSCEIVER])
    events, _ = receive(esme, frame(C.BIND_TRANSCEIVER_RESP, b"", seq))
    assert events == [BindCompleted(C.BIND_TRANSCEIVER, "")]
    assert esme.state is St.BOUND_TRX and esme.bound_system_id == ""


def test_bind_timeout_returns_to_open() -> None:
    esme = SmppSession(Role.ESME, response_timeout=5.0)
    esme.connection_made(0.0)
    bind = SAMPLE_REQUESTS[C.BIND_TRANSMITTER]
    seq = esme.send(bind, 1.0)
    assert pdus(esme.data_to_send()) == [BindTransmitter(seq, 0, "esme1", "pw")]
    assert esme.get_timer() == 6.0
    esme.handle_timer(5.9)
    assert drain(esme) == [] and esme.state is St.BINDING
    esme.handle_timer(6.0)
    assert drain(esme) == [ResponseTimedOut(bind, seq)]
    assert esme.state is St.OPEN and esme.outstanding == 0
    assert esme.get_timer() is None
    # a late bind_resp answers nothing
    events, out = receive(esme, wire(BindTransmitterResp(system_id="late"), seq))
    assert out == []
    assert len(events) == 1 and isinstance(events[0], InvalidPduReceived)
    assert events[0].answered_with is None and events[0].sequence_number == seq
    assert esme.state is St.OPEN


def test_smsc_answering_bind_with_error_status_stays_open_and_binds_later() -> None:
    esme, smsc = new_pair()
    esme.send(SAMPLE_REQUESTS[C.BIND_TRANSCEIVER], 0.0)
    pump(esme, smsc)
    (event,) = drain(smsc)
    smsc.answer(event.pdu, S.ESME_RINVPASWD)
    pump(esme, smsc)
    assert drain(esme) == [BindFailed(S.ESME_RINVPASWD)]
    esme.send(SAMPLE_REQUESTS[C.BIND_TRANSCEIVER], 0.0)
    pump(esme, smsc)
    (event,) = drain(smsc)
    smsc.answer(event.pdu, system_id="S")
    pump(esme, smsc)
    assert drain(esme) == [BindCompleted(C.BIND_TRANSCEIVER, "S")]
    assert esme.is_bound and smsc.is_bound


# --- the state table (section 2.3) ----------------------------------------------------------------

_ESME_TX = {
    C.SUBMIT_SM,
    C.SUBMIT_MULTI,
    C.DATA_SM,
    C.QUERY_SM,
    C.CANCEL_SM,
    C.REPLACE_SM,
    C.ENQUIRE_LINK,
    C.UNBIND,
}
_KEEPALIVE = {C.ENQUIRE_LINK, C.UNBIND}
_SMSC_RX = {C.DELIVER_SM, C.DATA_SM, C.ALERT_NOTIFICATION, C.ENQUIRE_LINK, C.UNBIND}
# written from SMPP 3.4 sections 2.3 and 4 ("bound state" of each operation), not read from the code
EXPECTED_TABLE: dict[Role, dict[SessionState, set[int]]] = {
    Role.ESME: {
        St.OPEN: set(BINDS),
        St.BINDING: set(),
        St.BOUND_TX: _ESME_TX,
        St.BOUND_RX: _KEEPALIVE,
        St.BOUND_TRX: _ESME_TX,
        St.UNBINDING: set(),
        St.CLOSED: set(),
    },
    Role.SMSC: {
        St.OPEN: {C.OUTBIND},
        St.BINDING: set(),
        St.BOUND_TX: _KEEPALIVE,
        St.BOUND_RX: _SMSC_RX,
        St.BOUND_TRX: _SMSC_RX,
        St.UNBINDING: set(),
        St.CLOSED: set(),
    },
}
ROLE_STATES = [(role, state) for role in Role for state in St]


def test_requests_allowed_matches_the_spec() -> None:
    assert {
        role: {state: set(ids) for state, ids in row.items()} for role, row in REQUESTS_ALLOWED.items()
    } == (EXPECTED_TABLE)


@pytest.mark.parametrize(("role", "state"), ROLE_STATES, ids=lambda v: getattr(v, "value", v))
def test_send_obeys_the_state_table(role: Role, state: SessionState) -> None:
    allowed = REQUESTS_ALLOWED[role][state]
    for cid, request in SAMPLE_REQUESTS.items():
        session = session_in(role, state)
        assert session.can_send(cid) == (cid in allowed)
        if cid in allowed:
            seq = session.send(request, 0.0)
            (sent,) = pdus(session.data_to_send())
            assert sent.command_id == cid and sent.sequence_number == seq
        else:
            with pytest.raises(LocalProtocolError) as info:
                session.send(request, 0.0)
            assert info.value.status == S.ESME_RINVBNDSTS
            assert session.data_to_send() == b""
            assert session.state is state


RECEIVING_STATES = [(role, state) for role, state in ROLE_STATES if state is not St.CLOSED]


@pytest.mark.parametrize(("role", "state"), RECEIVING_STATES, ids=lambda v: getattr(v, "value", v))
def test_peer_requests_outside_the_table_are_answered_with_a_status(role: Role, state: SessionState) -> None:
    peer = Role.SMSC if role is Role.ESME else Role.ESME
    peer_allowed = REQUESTS_ALLOWED[peer][state]
    bound = state in (St.BOUND_TX, St.BOUND_RX, St.BOUND_TRX)
    for cid, request in SAMPLE_REQUESTS.items():
        session = session_in(role, state)
        events, out = receive(session, wire(request, 4242))
        if cid in peer_allowed:
            assert not any(isinstance(e, InvalidPduReceived) for e in events), (cid, events)
            continue
        code = S.ESME_RALYBND if cid in BINDS and bound else S.ESME_RINVBNDSTS
        assert len(events) == 1 and isinstance(events[0], InvalidPduReceived), (cid, events)
        assert events[0].command_id == cid
        assert events[0].sequence_number == 4242
        assert events[0].answered_with == code
        (answer,) = out
        expected_cls = GenericNack if cid in NO_RESPONSE else pdu_class(cid | 0x80000000)
        assert type(answer) is expected_cls
        assert answer.sequence_number == 4242 and answer.command_status == code
        assert len(encode_pdu(answer)) == HEADER_LENGTH  # error responses carry no body
        assert session.state is state


def test_second_bind_is_answered_already_bound() -> None:
    _esme, smsc = bound_pair(C.BIND_TRANSMITTER)
    events, out = receive(smsc, wire(SAMPLE_REQUESTS[C.BIND_RECEIVER], 9))
    assert [type(e) for e in events] == [InvalidPduReceived]
    assert out[0].command_id == C.BIND_RECEIVER_RESP
    assert out[0].command_status == S.ESME_RALYBND
    assert smsc.state is St.BOUND_TX


def test_bind_while_binding_is_invalid_bind_status() -> None:
    smsc = session_in(Role.SMSC, St.BINDING)
    events, out = receive(smsc, wire(SAMPLE_REQUESTS[C.BIND_TRANSCEIVER], 9))
    assert isinstance(events[0], InvalidPduReceived)
    assert out[0].command_status == S.ESME_RINVBNDSTS
    assert smsc.state is St.BINDING


def test_closed_session_ignores_data() -> None:
    for role in Role:
        session = session_in(role, St.CLOSED)
        session.receive_data(wire(EnquireLink(), 1), 0.0)
        session.receive_data(b"", 0.0)
        assert drain(session) == []
        assert session.data_to_send() == b""


# --- sequence numbers (section 3.2) -------------------------------------------------------------


def test_sequence_numbers_start_at_one_and_increase() -> None:
    esme, smsc = bound_pair()
    assert [esme.send(SAMPLE_REQUESTS[C.SUBMIT_SM], 0.0) for _ in range(3)] == [2, 3, 4]
    assert [p.sequence_number for p in pdus(esme.data_to_send())] == [2, 3, 4]
    # the SMSC's own numbering is independent and starts at 1; no-response requests use it too
    assert smsc.send(SAMPLE_REQUESTS[C.DELIVER_SM], 0.0) == 1
    assert smsc.send(SAMPLE_REQUESTS[C.ALERT_NOTIFICATION], 0.0) == 2
    assert smsc.send(EnquireLink(), 0.0) == 3
    assert [p.sequence_number for p in pdus(smsc.data_to_send())] == [1, 2, 3]


def test_outbind_takes_sequence_number_one() -> None:
    smsc = SmppSession(Role.SMSC)
    assert smsc.send(SAMPLE_REQUESTS[C.OUTBIND], 0.0) == 1
    assert smsc.send(SAMPLE_REQUESTS[C.OUTBIND], 0.0) == 2


def test_sequence_number_wraps_to_one() -> None:
    esme, _ = bound_pair()
    esme._next_seq = 0x7FFFFFFE
    seqs = [esme.send(SAMPLE_REQUESTS[C.SUBMIT_SM], 0.0) for _ in range(3)]
    assert seqs == [0x7FFFFFFE, 0x7FFFFFFF, 1]
    assert [p.sequence_number for p in pdus(esme.data_to_send())] == seqs


def test_sequence_number_wraps_on_requests_without_response() -> None:
    _, smsc = bound_pair()
    smsc._next_seq = 0x7FFFFFFF
    assert smsc.send(SAMPLE_REQUESTS[C.ALERT_NOTIFICATION], 0.0) == 0x7FFFFFFF
    assert smsc.send(SAMPLE_REQUESTS[C.ALERT_NOTIFICATION], 0.0) == 1


# --- window -----------------------------------------------------------------------------------------


def test_window_limits_outstanding_requests() -> None:
    esme, smsc = bound_pair(window=2)
    submit = SAMPLE_REQUESTS[C.SUBMIT_SM]
    assert esme.window_available == 2
    first = esme.send(submit, 0.0)
    esme.send(submit, 0.0)
    assert esme.outstanding == 2 and esme.window_available == 0
    with pytest.raises(LocalProtocolError, match="window"):
        esme.send(submit, 0.0)
    with pytest.raises(LocalProtocolError):
        esme.send(SAMPLE_REQUESTS[C.QUERY_SM], 0.0)
    # enquire_link is exempt so a full window can still be probed
    esme.send(EnquireLink(), 0.0)
    assert esme.outstanding == 3 and esme.window_available <= 0
    pump(esme, smsc)
    requests = drain(smsc)
    assert [type(e) for e in requests] == [RequestReceived, RequestReceived]
    smsc.answer(requests[0].pdu, message_id="A")  # type: ignore[union-attr]
    pump(esme, smsc)
    assert drain(esme) == [ResponseReceived(submit, SubmitSmResp(first, 0, "A"))]
    assert esme.outstanding == 1 and esme.window_available == 1
    assert esme.unanswered_requests() == [(first + 1, submit)]
    esme.send(submit, 0.0)
    assert esme.window_available == 0


def test_unbind_is_exempt_from_a_full_window() -> None:
    esme, _ = bound_pair(window=1)
    esme.send(SAMPLE_REQUESTS[C.SUBMIT_SM], 0.0)
    assert esme.window_available == 0
    seq = esme.send(Unbind(), 0.0)
    assert esme.state is St.UNBINDING and esme.outstanding == 2
    assert pdus(esme.data_to_send())[-1] == Unbind(seq)


def test_no_response_requests_do_not_use_the_window() -> None:
    _, smsc = bound_pair(window=1)
    smsc.send(SAMPLE_REQUESTS[C.DELIVER_SM], 0.0)
    smsc.send(SAMPLE_REQUESTS[C.ALERT_NOTIFICATION], 0.0)
    assert smsc.outstanding == 1 and smsc.window_available == 0


# --- response timeouts ------------------------------------------------------------------------------


def test_response_timeouts_fire_in_order_at_the_head_deadline() -> None:
    esme, smsc = bound_pair(response_timeout=10.0, enquire_link_interval=None)
    submit, query = SAMPLE_REQUESTS[C.SUBMIT_SM], SAMPLE_REQUESTS[C.QUERY_SM]
    assert esme.get_timer() is None
    s1 = esme.send(submit, 0.0)
    s2 = esme.send(query, 1.0)
    s3 = esme.send(submit, 2.0)
    assert esme.get_timer() == 10.0
    esme.handle_timer(9.99)
    assert drain(esme) == [] and esme.outstanding == 3
    esme.handle_timer(10.5)
    assert drain(esme) == [ResponseTimedOut(submit, s1)]
    assert esme.get_timer() == 11.0
    # answering the head moves the deadline to the next request
    pump(esme, smsc, now=10.6)
    requests = drain(smsc)
    smsc.answer(requests[1].pdu)  # type: ignore[union-attr]
    pump(esme, smsc, now=10.7)
    assert [type(e) for e in drain(esme)] == [ResponseReceived]
    assert esme.get_timer() == 12.0
    esme.handle_timer(100.0)
    assert drain(esme) == [ResponseTimedOut(submit, s3)]
    assert esme.get_timer() is None and esme.outstanding == 0
    # the timed-out request's late answer is not matched to anything
    smsc.answer(requests[0].pdu, message_id="late")  # type: ignore[union-attr]
    pump(esme, smsc)
    (late,) = drain(esme)
    assert isinstance(late, InvalidPduReceived) and late.sequence_number == s1
    assert s2 == s1 + 1


def test_handle_timer_with_nothing_pending_does_nothing() -> None:
    esme = SmppSession(Role.ESME)
    esme.handle_timer(1e9)
    assert drain(esme) == [] and esme.data_to_send() == b""


def test_unbind_timeout_is_reported() -> None:
    esme, _ = bound_pair(response_timeout=5.0, enquire_link_interval=None)
    seq = esme.send(Unbind(), 0.0)
    esme.handle_timer(5.0)
    assert drain(esme) == [ResponseTimedOut(Unbind(), seq)]
    assert not esme.is_bound
    # an unconfirmed unbind still ends the session: nothing may be sent and it reports closed
    assert esme.state is SessionState.CLOSED and not esme.is_open


# --- enquire_link (section 4.11) -------------------------------------------------------------------


def test_enquire_link_sent_after_idle_interval_and_answered_silently() -> None:
    esme, smsc = bound_pair(response_timeout=10.0, enquire_link_interval=30.0)
    assert esme.get_timer() == 30.0
    esme.handle_timer(29.9)
    assert esme.data_to_send() == b""
    esme.handle_timer(30.0)
    (probe,) = pdus(esme.data_to_send())
    assert isinstance(probe, EnquireLink)
    assert drain(esme) == [] and esme.outstanding == 1
    assert esme.get_timer() == 40.0  # the probe's response deadline; no second probe meanwhile
    smsc.receive_data(encode_pdu(probe), 31.0)
    assert drain(smsc) == []
    (answer,) = pdus(smsc.data_to_send())
    assert answer == EnquireLinkResp(probe.sequence_number)
    esme.receive_data(encode_pdu(answer), 32.0)
    assert drain(esme) == [] and esme.outstanding == 0
    assert esme.get_timer() == 62.0  # idle interval counted from the last data received


def test_unanswered_enquire_link_times_out() -> None:
    esme, _ = bound_pair(response_timeout=10.0, enquire_link_interval=30.0)
    esme.handle_timer(30.0)
    (probe,) = pdus(esme.data_to_send())
    esme.handle_timer(40.0)
    assert drain(esme) == [ResponseTimedOut(EnquireLink(), probe.sequence_number)]
    assert esme.data_to_send() == b""  # the next probe is one interval after the last one
    assert esme.get_timer() == 60.0
    esme.handle_timer(60.0)
    assert [type(p) for p in pdus(esme.data_to_send())] == [EnquireLink]


def test_enquire_link_timer_and_request_deadline_take_the_earlier() -> None:
    esme, _ = bound_pair(response_timeout=10.0, enquire_link_interval=30.0)
    esme.send(SAMPLE_REQUESTS[C.SUBMIT_SM], 5.0)
    assert esme.get_timer() == 15.0
    esme2, _ = bound_pair(response_timeout=60.0, enquire_link_interval=30.0)
    esme2.send(SAMPLE_REQUESTS[C.SUBMIT_SM], 5.0)
    assert esme2.get_timer() == 30.0


def test_no_enquire_link_when_disabled_or_not_bound() -> None:
    esme, _ = bound_pair(enquire_link_interval=None)
    esme.handle_timer(1000.0)
    assert esme.data_to_send() == b"" and esme.get_timer() is None
    fresh = SmppSession(Role.ESME, enquire_link_interval=1.0)
    fresh.handle_timer(1000.0)
    assert fresh.data_to_send() == b"" and fresh.get_timer() is None


def test_smsc_probes_a_receiver_too() -> None:
    esme, smsc = bound_pair(C.BIND_RECEIVER, enquire_link_interval=5.0)
    smsc.handle_timer(5.0)
    pump(esme, smsc, now=5.0)
    assert drain(esme) == [] and drain(smsc) == []
    assert smsc.outstanding == 0


def test_explicit_enquire_link_gets_no_event() -> None:
    esme, smsc = bound_pair()
    esme.send(EnquireLink(), 0.0)
    pump(esme, smsc)
    assert drain(esme) == [] and drain(smsc) == []
    assert esme.outstanding == 0


# --- unbind (section 4.2) ---------------------------------------------------------------------------


@pytest.mark.parametrize("initiator", list(Role))
def test_unbind_is_answered_automatically(initiator: Role) -> None:
    esme, smsc = bound_pair()
    us, peer = (esme, smsc) if initiator is Role.ESME else (smsc, esme)
    seq = us.send(Unbind(), 0.0)
    assert us.state is St.UNBINDING
    assert not us.can_send(C.SUBMIT_SM) and not us.can_send(C.DELIVER_SM)
    peer.receive_data(us.data_to_send(), 0.0)
    assert drain(peer) == [Unbound(by_peer=True)]
    assert peer.state is St.CLOSED and not peer.is_open
    answer = peer.data_to_send()
    assert pdus(answer) == [UnbindResp(seq)]
    us.receive_data(answer, 0.0)
    assert drain(us) == [Unbound(by_peer=False)]
    assert us.state is St.CLOSED and not us.is_open
    assert us.outstanding == 0


def test_pdus_after_peer_unbind_in_the_same_chunk_are_not_read() -> None:
    """Once an unbind closed the session nothing more is read, however the bytes were segmented."""
    esme, _smsc = bound_pair()
    tail = wire(SAMPLE_REQUESTS[C.DELIVER_SM], 8) + wire(SubmitSmResp(message_id="x"), 2)
    esme.send(SAMPLE_REQUESTS[C.SUBMIT_SM], 0.0)
    esme.data_to_send()
    events, out = receive(esme, wire(Unbind(), 7) + tail)
    assert events == [Unbound(by_peer=True)]
    assert out == [UnbindResp(7)]
    assert esme.unanswered_requests() == [(2, SAMPLE_REQUESTS[C.SUBMIT_SM])]


def test_pdus_after_our_unbind_is_answered_are_not_read() -> None:
    esme, _ = bound_pair()
    seq = esme.send(Unbind(), 0.0)
    esme.data_to_send()
    events, out = receive(esme, wire(UnbindResp(), seq) + wire(EnquireLink(), 5))
    assert events == [Unbound(by_peer=False)]
    assert out == []


# --- generic_nack and unknown command ids (section 4.3) --------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_unknown_command_id_gets_generic_nack_and_session_survives(role: Role) -> None:
    session = session_in(role, St.BOUND_TRX)
    data = frame(0x00000099, b"junk", seq=77) + wire(EnquireLink(), 78)
    events, out = receive(session, data)
    assert len(events) == 1 and isinstance(events[0], InvalidPduReceived)
    assert events[0].command_id == 0x99 and events[0].sequence_number == 77
    assert events[0].answered_with == S.ESME_RINVCMDID
    assert out == [GenericNack(77, S.ESME_RINVCMDID), EnquireLinkResp(78)]
    assert session.state is St.BOUND_TRX


def test_unknown_command_id_in_open_state_gets_generic_nack() -> None:
    smsc = SmppSession(Role.SMSC)
    events, out = receive(smsc, frame(0x12345, b"", seq=3))
    assert out == [GenericNack(3, S.ESME_RINVCMDID)]
    assert isinstance(events[0], InvalidPduReceived)


# --- responses that answer nothing, or the wrong thing --------------------------------------------


def test_response_with_unknown_sequence_number() -> None:
    esme, _ = bound_pair()
    request(esme, SAMPLE_REQUESTS[C.SUBMIT_SM])
    events, out = receive(esme, wire(SubmitSmResp(message_id="x"), 999))
    assert out == []
    (event,) = events
    assert isinstance(event, InvalidPduReceived)
    assert event == InvalidPduReceived(C.SUBMIT_SM_RESP, 999, None, event.reason)
    assert "not outstanding" in event.reason
    assert esme.outstanding == 1


def test_response_of_the_wrong_type_leaves_request_outstanding() -> None:
    esme, _ = bound_pair()
    submit = SAMPLE_REQUESTS[C.SUBMIT_SM]
    seq = request(esme, submit)
    events, out = receive(esme, wire(QuerySmResp(message_id="x"), seq))
    assert out == []
    (event,) = events
    assert isinstance(event, InvalidPduReceived)
    assert event.command_id == C.QUERY_SM_RESP and event.answered_with is None
    assert esme.outstanding == 1
    # a generic_nack is an acceptable answer to any request
    events, _ = receive(esme, wire(GenericNack(0, S.ESME_RTHROTTLED), seq))
    assert events == [ResponseReceived(submit, GenericNack(seq, S.ESME_RTHROTTLED))]
    assert esme.outstanding == 0


def test_unknown_response_command_id_is_invalid() -> None:
    esme, _ = bound_pair()
    seq = request(esme, SAMPLE_REQUESTS[C.SUBMIT_SM])
    events, out = receive(esme, frame(0x80000099, b"", seq=seq))
    assert out == [] and isinstance(events[0], InvalidPduReceived)
    assert esme.outstanding == 1


@pytest.mark.parametrize(
    ("response_id", "body"),
    [
        (C.SUBMIT_SM_RESP, b"no terminator"),
        (C.GENERIC_NACK, b"\x00"),
        (C.SUBMIT_SM_RESP, b"ok\x00\x00"),  # a TLV header cut short
    ],
)
def test_malformed_response_leaves_request_outstanding(response_id: int, body: bytes) -> None:
    esme, _ = bound_pair(response_timeout=10.0)
    submit = SAMPLE_REQUESTS[C.SUBMIT_SM]
    seq = request(esme, submit)
    events, out = receive(esme, frame(response_id, body, seq=seq))
    assert out == []
    (event,) = events
    assert isinstance(event, InvalidPduReceived) and event.answered_with is None
    assert esme.outstanding == 1 and esme.unanswered_requests() == [(seq, submit)]
    esme.handle_timer(10.0)
    assert drain(esme) == [ResponseTimedOut(submit, seq)]


def test_error_response_without_body_is_a_response() -> None:
    esme, _ = bound_pair()
    submit = SAMPLE_REQUESTS[C.SUBMIT_SM]
    seq = request(esme, submit)
    events, _ = receive(esme, frame(C.SUBMIT_SM_RESP, b"", seq=seq, status=S.ESME_RTHROTTLED))
    assert events == [ResponseReceived(submit, SubmitSmResp(seq, S.ESME_RTHROTTLED, None))]


# --- malformed and invalid requests (section 5.1.3) -------------------------------------------------


def test_truncated_submit_sm_is_answered_invalid_command_length() -> None:
    smsc = session_in(Role.SMSC, St.BOUND_TX)
    full = wire(SAMPLE_REQUESTS[C.SUBMIT_SM], 11)
    cut = full[HEADER_LENGTH : HEADER_LENGTH + 5]
    events, out = receive(smsc, frame(C.SUBMIT_SM, cut, seq=11))
    assert out == [SubmitSmResp(11, S.ESME_RINVCMDLEN, None)]
    assert len(encode_pdu(out[0])) == HEADER_LENGTH
    (event,) = events
    assert isinstance(event, InvalidPduReceived)
    assert event.command_id == C.SUBMIT_SM and event.answered_with == S.ESME_RINVCMDLEN
    assert smsc.state is St.BOUND_TX


@pytest.mark.parametrize(
    ("role", "state", "command_id", "body", "answer"),
    [
        # sm_length runs past the PDU
        (
            Role.ESME,
            St.BOUND_RX,
            C.DELIVER_SM,
            b"\x00" + b"\x00\x00\x00" * 2 + b"\x00" * 9 + b"\x09ab",
            S.ESME_RINVMSGLEN,
        ),
        # service_type longer than 5 octets
        (Role.SMSC, St.BOUND_TRX, C.SUBMIT_SM, b"ABCDEFGHIJ" + b"\x00" * 40, S.ESME_RINVSERTYP),
        # header-only PDUs with a body
        (Role.SMSC, St.BOUND_TRX, C.ENQUIRE_LINK, b"x", S.ESME_RINVCMDLEN),
        (Role.SMSC, St.BOUND_TRX, C.UNBIND, b"x", S.ESME_RINVCMDLEN),
        # system_id longer than 15 octets
        (Role.SMSC, St.OPEN, C.BIND_TRANSMITTER, b"S" * 30 + b"\x00" * 10, S.ESME_RINVSYSID),
        # number_of_dests 0
        (Role.SMSC, St.BOUND_TX, C.SUBMIT_MULTI, b"\x00\x00\x00\x00\x00", S.ESME_RINVNUMDESTS),
        (Role.SMSC, St.BOUND_TX, C.QUERY_SM, b"m1", S.ESME_RINVCMDLEN),
        (Role.SMSC, St.BOUND_TX, C.CANCEL_SM, b"", S.ESME_RINVCMDLEN),
        (Role.SMSC, St.BOUND_TX, C.REPLACE_SM, b"m1\x00", S.ESME_RINVCMDLEN),
        (Role.ESME, St.BOUND_TRX, C.DATA_SM, b"\x00\x01", S.ESME_RINVCMDLEN),
    ],
)
def test_malformed_request_is_answered_with_its_status(
    role: Role, state: SessionState, command_id: int, body: bytes, answer: int
) -> None:
    session = session_in(role, state)
    events, out = receive(session, frame(command_id, body, seq=21))
    (resp,) = out
    assert type(resp) is pdu_class(command_id | 0x80000000)
    assert resp.sequence_number == 21 and resp.command_status == answer
    assert len(encode_pdu(resp)) == HEADER_LENGTH
    assert [(type(e), e.answered_with) for e in events] == [(InvalidPduReceived, answer)]  # type: ignore[union-attr]
    assert session.state is state  # a malformed bind or unbind changes nothing


@pytest.mark.parametrize(("command_id", "state"), [(C.OUTBIND, St.OPEN), (C.ALERT_NOTIFICATION, St.BOUND_RX)])
def test_malformed_request_without_response_gets_generic_nack(command_id: int, state: SessionState) -> None:
    esme = session_in(Role.ESME, state)
    events, out = receive(esme, frame(command_id, b"no nul", seq=5))
    assert out == [GenericNack(5, S.ESME_RINVCMDLEN)]
    assert [type(e) for e in events] == [InvalidPduReceived]


def test_invalid_field_values_are_answered_per_validate() -> None:
    smsc = session_in(Role.SMSC, St.BOUND_TRX)
    cases = [
        (SubmitSm(source_addr_ton=9, destination_addr="1"), S.ESME_RINVSRCTON),
        (SubmitSm(source_addr_npi=2, destination_addr="1"), S.ESME_RINVSRCNPI),
        (SubmitSm(dest_addr_ton=7, destination_addr="1"), S.ESME_RINVDSTTON),
        (SubmitSm(dest_addr_npi=5, destination_addr="1"), S.ESME_RINVDSTNPI),
        (SubmitSm(destination_addr=""), S.ESME_RINVDSTADR),
        (SubmitSm(destination_addr="1", esm_class=0x04), S.ESME_RINVESMCLASS),
        (SubmitSm(destination_addr="1", priority_flag=4), S.ESME_RINVPRTFLG),
        (SubmitSm(destination_addr="1", replace_if_present_flag=2), S.ESME_RINVREPFLAG),
        (SubmitSm(destination_addr="1", schedule_delivery_time="x"), S.ESME_RINVSCHED),
        (SubmitSm(destination_addr="1", validity_period="x"), S.ESME_RINVEXPIRY),
        (SubmitSm(destination_addr="1", registered_delivery=0x03), S.ESME_RINVREGDLVFLG),
        (DataSm(destination_addr=""), S.ESME_RINVDSTADR),
        (SubmitMulti(source_addr_ton=9), S.ESME_RINVSRCTON),
    ]
    for seq, (pdu, status) in enumerate(cases, start=100):
        events, out = receive(smsc, wire(pdu, seq))
        assert out == [pdu_class(pdu.command_id | 0x80000000)(seq, status, None)]  # type: ignore[misc, call-arg]
        (event,) = events
        assert isinstance(event, InvalidPduReceived)
        assert (event.command_id, event.sequence_number, event.answered_with) == (pdu.command_id, seq, status)
    assert smsc.state is St.BOUND_TRX


def test_invalid_deliver_sm_is_answered_by_the_esme() -> None:
    esme = session_in(Role.ESME, St.BOUND_RX)
    events, out = receive(esme, wire(DeliverSm(destination_addr="1", dest_addr_ton=99), 4))
    assert out == [DeliverSmResp(4, S.ESME_RINVDSTTON, None)]
    assert isinstance(events[0], InvalidPduReceived)


def test_validation_can_be_switched_off() -> None:
    smsc = SmppSession(Role.SMSC, validate=False)
    esme = SmppSession(Role.ESME)
    esme.send(SAMPLE_REQUESTS[C.BIND_TRANSMITTER], 0.0)
    pump(esme, smsc)
    smsc.answer(drain(smsc)[0].pdu)  # type: ignore[union-attr]
    smsc.data_to_send()
    bad = SubmitSm(source_addr_ton=9, destination_addr="")
    events, out = receive(smsc, wire(bad, 50))
    assert out == []
    assert events == [
        BindCompleted(C.BIND_TRANSMITTER, "esme1"),
        RequestReceived(SubmitSm(50, 0, source_addr_ton=9)),
    ]


def test_schedule_time_with_superscript_digits_is_rejected_not_raised() -> None:
    """Latin-1 holds digits ('\u00b2') that str.isdigit accepts and int() does not."""
    smsc = session_in(Role.SMSC, St.BOUND_TX)
    bad = SubmitSm(destination_addr="1", schedule_delivery_time="00\u00b2101000000000+")
    events, out = receive(smsc, wire(bad, 3))
    assert out == [SubmitSmResp(3, S.ESME_RINVSCHED, None)]
    assert isinstance(events[0], InvalidPduReceived)


# --- broken framing (section 3.2) -----------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 15, 1001, 0xFFFFFFFF])
@pytest.mark.parametrize("role", list(Role))
def test_bad_command_length_is_fatal(role: Role, length: int) -> None:
    session = session_in(role, St.BOUND_TRX, max_pdu_length=1000)
    good = wire(EnquireLink(), 1)
    bad = struct.pack(">IIII", length, C.SUBMIT_SM, 0, 66) + b"\x00" * 40
    with pytest.raises(RemoteProtocolError) as info:
        session.receive_data(good + bad, 0.0)
    assert info.value.status == S.ESME_RINVCMDLEN
    assert session.state is St.CLOSED and not session.is_open
    # the PDU before the broken header was still handled, then one generic_nack
    assert pdus(session.data_to_send()) == [EnquireLinkResp(1), GenericNack(66, S.ESME_RINVCMDLEN)]
    assert drain(session) == []
    session.receive_data(good, 1.0)
    session.receive_data(b"", 1.0)
    assert drain(session) == [] and session.data_to_send() == b""


def test_command_length_at_the_maximum_is_accepted() -> None:
    smsc = session_in(Role.SMSC, St.BOUND_TX, max_pdu_length=200)
    submit = SubmitSm(destination_addr="1", short_message=b"x" * 50)
    data = wire(submit, 9)
    data = wire(SubmitSm(destination_addr="1", short_message=b"x" * (50 + 200 - len(data))), 9)
    assert len(data) == 200
    events, _ = receive(smsc, data)
    assert [type(e) for e in events] == [RequestReceived]


def test_bad_length_is_detected_from_the_header_alone() -> None:
    esme = SmppSession(Role.ESME, max_pdu_length=100)
    esme.receive_data(struct.pack(">I", 5000), 0.0)
    assert esme.state is St.OPEN
    with pytest.raises(RemoteProtocolError):
        esme.receive_data(struct.pack(">III", C.GENERIC_NACK, 0, 1), 0.0)
    assert esme.state is St.CLOSED


# --- connection closed ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_receive_empty_means_connection_closed(role: Role) -> None:
    session = session_in(role, St.BOUND_TRX)
    session.receive_data(b"", 5.0)
    assert drain(session) == [ConnectionClosed()]
    assert session.state is St.CLOSED
    session.receive_data(b"", 6.0)
    assert drain(session) == []


def test_unanswered_requests_after_a_broken_connection() -> None:
    esme, smsc = bound_pair()
    submit = SAMPLE_REQUESTS[C.SUBMIT_SM]
    query = SAMPLE_REQUESTS[C.QUERY_SM]
    s1 = esme.send(submit, 0.0)
    s2 = esme.send(query, 0.0)
    s3 = esme.send(submit, 0.0)
    pump(esme, smsc)
    requests = drain(smsc)
    smsc.answer(requests[1].pdu, message_id="m1")  # type: ignore[union-attr]
    pump(esme, smsc)
    assert [type(e) for e in drain(esme)] == [ResponseReceived]
    esme.receive_data(b"", 1.0)
    assert drain(esme) == [ConnectionClosed()]
    assert esme.unanswered_requests() == [(s1, submit), (s3, submit)]
    assert s2 == s1 + 1


def test_unanswered_requests_after_a_fatal_error() -> None:
    esme, _ = bound_pair()
    submit = SAMPLE_REQUESTS[C.SUBMIT_SM]
    seq = esme.send(submit, 0.0)
    with pytest.raises(RemoteProtocolError):
        esme.receive_data(b"\x00" * 16, 0.0)
    assert esme.unanswered_requests() == [(seq, submit)]


# --- answering the peer's requests ---------------------------------------------------------------


def test_answer_unknown_sequence_number_is_local_error() -> None:
    _, smsc = bound_pair()
    with pytest.raises(LocalProtocolError):
        smsc.answer(SubmitSm(sequence_number=12345))
    with pytest.raises(LocalProtocolError):
        smsc.send(SubmitSmResp(12345), 0.0)
    assert smsc.data_to_send() == b""


def test_answer_with_the_wrong_response_type_is_local_error_and_can_be_retried() -> None:
    esme, smsc = bound_pair()
    esme.send(SAMPLE_REQUESTS[C.SUBMIT_SM], 0.0)
    pump(esme, smsc)
    (event,) = drain(smsc)
    seq = event.pdu.sequence_number  # type: ignore[union-attr]
    with pytest.raises(LocalProtocolError, match="does not answer"):
        smsc.send(QuerySmResp(seq), 0.0)
    assert smsc.data_to_send() == b""
    assert smsc.send(SubmitSmResp(seq, 0, "M"), 0.0) == seq
    with pytest.raises(LocalProtocolError):  # answered already
        smsc.send(SubmitSmResp(seq, 0, "M"), 0.0)
    pump(esme, smsc)
    assert drain(esme) == [ResponseReceived(SAMPLE_REQUESTS[C.SUBMIT_SM], SubmitSmResp(seq, 0, "M"))]


def test_failed_encoding_of_an_answer_leaves_it_answerable() -> None:
    _, smsc = bound_pair()
    smsc.receive_data(wire(SAMPLE_REQUESTS[C.SUBMIT_SM], 40), 0.0)
    (event,) = drain(smsc)
    with pytest.raises(LocalProtocolError):
        smsc.answer(event.pdu, message_id="x" * 100)  # type: ignore[union-attr]
    smsc.answer(event.pdu, message_id="ok")  # type: ignore[union-attr]
    assert pdus(smsc.data_to_send()) == [SubmitSmResp(40, 0, "ok")]


def test_reused_sequence_number_gets_one_answer_per_request() -> None:
    _, smsc = bound_pair()
    events, _ = receive(smsc, wire(SAMPLE_REQUESTS[C.SUBMIT_SM], 30) * 3)
    assert [type(e) for e in events] == [RequestReceived] * 3
    first = events[0].pdu  # type: ignore[union-attr]
    for _ in range(3):
        assert smsc.answer(first, message_id="x") == 30
    with pytest.raises(LocalProtocolError):
        smsc.answer(first, message_id="x")
    assert pdus(smsc.data_to_send()) == [SubmitSmResp(30, 0, "x")] * 3


@pytest.mark.parametrize("request_id", [C.OUTBIND, C.ALERT_NOTIFICATION])
def test_answer_of_requests_without_response_is_local_error(request_id: int) -> None:
    session = SmppSession(Role.ESME)
    with pytest.raises(LocalProtocolError, match="no response"):
        session.answer(SAMPLE_REQUESTS[request_id])


def test_automatic_answers_cannot_be_answered_again() -> None:
    _, smsc = bound_pair()
    smsc.receive_data(wire(EnquireLink(), 3), 0.0)
    assert pdus(smsc.data_to_send()) == [EnquireLinkResp(3)]
    with pytest.raises(LocalProtocolError):
        smsc.send(EnquireLinkResp(3), 0.0)


def test_generic_nack_answers_any_request() -> None:
    esme, smsc = bound_pair()
    submit = SAMPLE_REQUESTS[C.SUBMIT_SM]
    seq = esme.send(submit, 0.0)
    pump(esme, smsc)
    drain(smsc)
    smsc.send(GenericNack(seq, S.ESME_RSYSERR), 0.0)
    pump(esme, smsc)
    assert drain(esme) == [ResponseReceived(submit, GenericNack(seq, S.ESME_RSYSERR))]


# --- outbind (section 4.1.7) and alert_notification (4.12) --------------------------------------


def test_outbind_then_bind_receiver() -> None:
    esme, smsc = new_pair()
    outbind = SAMPLE_REQUESTS[C.OUTBIND]
    seq = smsc.send(outbind, 0.0)
    assert smsc.state is St.OPEN and smsc.outstanding == 0
    esme.receive_data(smsc.data_to_send(), 0.0)
    assert drain(esme) == [OutbindReceived(Outbind(seq, 0, "smsc", "pw"))]
    assert esme.data_to_send() == b""  # outbind has no response
    esme.send(SAMPLE_REQUESTS[C.BIND_RECEIVER], 0.0)
    pump(esme, smsc)
    (req,) = drain(smsc)
    smsc.answer(req.pdu, system_id="smsc")  # type: ignore[union-attr]
    pump(esme, smsc)
    assert drain(esme) == [BindCompleted(C.BIND_RECEIVER, "smsc")]
    assert esme.state is smsc.state is St.BOUND_RX


def test_outbind_not_allowed_once_bound() -> None:
    _, smsc = bound_pair()
    with pytest.raises(LocalProtocolError):
        smsc.send(SAMPLE_REQUESTS[C.OUTBIND], 0.0)


@pytest.mark.parametrize("bind", [C.BIND_RECEIVER, C.BIND_TRANSCEIVER])
def test_alert_notification_to_receiver(bind: int) -> None:
    esme, smsc = bound_pair(bind)
    alert = SAMPLE_REQUESTS[C.ALERT_NOTIFICATION]
    seq = smsc.send(alert, 0.0)
    assert smsc.outstanding == 0
    esme.receive_data(smsc.data_to_send(), 0.0)
    (event,) = drain(esme)
    assert event == AlertNotificationReceived(AlertNotification(seq, 0, 0, 0, "4912345", 0, 0, "100"))
    assert esme.data_to_send() == b""
    with pytest.raises(LocalProtocolError):
        esme.answer(event.pdu)


def test_alert_notification_to_transmitter_is_refused() -> None:
    esme, smsc = bound_pair(C.BIND_TRANSMITTER)
    with pytest.raises(LocalProtocolError):
        smsc.send(SAMPLE_REQUESTS[C.ALERT_NOTIFICATION], 0.0)
    events, out = receive(esme, wire(SAMPLE_REQUESTS[C.ALERT_NOTIFICATION], 8))
    assert out == [GenericNack(8, S.ESME_RINVBNDSTS)]
    assert [type(e) for e in events] == [InvalidPduReceived]


# --- the other operations ----------------------------------------------------------------------------


def round_trip(
    sender: SmppSession, receiver: SmppSession, request: Pdu, **fields: object
) -> tuple[Pdu, ResponseReceived]:
    seq = sender.send(request, 0.0)
    pump(sender, receiver)
    (got,) = drain(receiver)
    assert isinstance(got, RequestReceived)
    assert got.pdu.sequence_number == seq and type(got.pdu) is type(request)
    receiver.answer(got.pdu, **fields)
    pump(sender, receiver)
    (answered,) = drain(sender)
    assert isinstance(answered, ResponseReceived)
    assert answered.request == request
    assert answered.response.sequence_number == seq
    assert sender.outstanding == 0
    return got.pdu, answered


def test_submit_sm_round_trip() -> None:
    esme, smsc = bound_pair()
    got, answered = round_trip(esme, smsc, SAMPLE_REQUESTS[C.SUBMIT_SM], message_id="abc")
    assert got.short_message == b"hi"  # type: ignore[attr-defined]
    assert answered.response == SubmitSmResp(got.sequence_number, 0, "abc")


def test_deliver_sm_round_trip() -> None:
    esme, smsc = bound_pair(C.BIND_RECEIVER)
    got, answered = round_trip(smsc, esme, SAMPLE_REQUESTS[C.DELIVER_SM])
    assert answered.response == DeliverSmResp(got.sequence_number, 0, "")


def test_query_sm_round_trip() -> None:
    esme, smsc = bound_pair(C.BIND_TRANSMITTER)
    fields = {"message_id": "m1", "final_date": "250101120000000+", "message_state": 2, "error_code": 0}
    got, answered = round_trip(esme, smsc, SAMPLE_REQUESTS[C.QUERY_SM], **fields)
    assert answered.response == QuerySmResp(got.sequence_number, 0, **fields)  # type: ignore[arg-type]


def test_cancel_sm_round_trip() -> None:
    esme, smsc = bound_pair()
    got, answered = round_trip(esme, smsc, SAMPLE_REQUESTS[C.CANCEL_SM])
    assert answered.response == CancelSmResp(got.sequence_number)
    assert got.message_id == "m1"  # type: ignore[attr-defined]


def test_replace_sm_round_trip() -> None:
    esme, smsc = bound_pair()
    got, answered = round_trip(esme, smsc, SAMPLE_REQUESTS[C.REPLACE_SM])
    assert answered.response == ReplaceSmResp(got.sequence_number)
    assert got.short_message == b"new"  # type: ignore[attr-defined]


@pytest.mark.parametrize("direction", ["esme_to_smsc", "smsc_to_esme"])
def test_data_sm_round_trip(direction: str) -> None:
    esme, smsc = bound_pair()
    sender, receiver = (esme, smsc) if direction == "esme_to_smsc" else (smsc, esme)
    got, answered = round_trip(sender, receiver, SAMPLE_REQUESTS[C.DATA_SM], message_id="d1")
    assert answered.response == DataSmResp(got.sequence_number, 0, "d1")


def test_submit_multi_round_trip() -> None:
    esme, smsc = bound_pair()
    failed = (UnsuccessSme(1, 1, "4911", S.ESME_RINVDSTADR),)
    got, answered = round_trip(
        esme, smsc, SAMPLE_REQUESTS[C.SUBMIT_MULTI], message_id="mm", unsuccess_smes=failed
    )
    assert answered.response == SubmitMultiResp(got.sequence_number, 0, "mm", failed)
    assert got.dest_addresses == SAMPLE_REQUESTS[C.SUBMIT_MULTI].dest_addresses  # type: ignore[attr-defined]


def test_request_answered_with_error_status_and_no_body() -> None:
    esme, smsc = bound_pair()
    submit = SAMPLE_REQUESTS[C.SUBMIT_SM]
    _, answered = round_trip(esme, smsc, submit, command_status=S.ESME_RMSGQFUL, message_id=None)
    assert answered.response == SubmitSmResp(answered.response.sequence_number, S.ESME_RMSGQFUL, None)


# --- segmentation ---------------------------------------------------------------------------------------


def _stream_for_smsc() -> bytes:
    requests = [SubmitSm(destination_addr=f"49{i}", short_message=bytes([i]) * i) for i in range(1, 20)] + [
        SAMPLE_REQUESTS[C.QUERY_SM],
        EnquireLink(),
        SAMPLE_REQUESTS[C.SUBMIT_MULTI],
        SAMPLE_REQUESTS[C.DATA_SM],
    ]
    return b"".join(wire(r, i) for i, r in enumerate(requests, start=2))


def _feed(chunks: list[bytes]) -> tuple[list[Event], bytes]:
    smsc = session_in(Role.SMSC, St.BOUND_TRX)
    for chunk in chunks:
        smsc.receive_data(chunk, 0.0)
    return drain(smsc), smsc.data_to_send()


def test_many_pdus_in_one_call() -> None:
    data = _stream_for_smsc()
    events, out = _feed([data])
    assert len(events) == 22 and all(isinstance(e, RequestReceived) for e in events)
    assert [e.pdu.sequence_number for e in events] == [i for i in range(2, 25) if i != 22]  # type: ignore[union-attr]
    assert pdus(out) == [EnquireLinkResp(22)]


def test_pdus_split_one_byte_at_a_time() -> None:
    data = _stream_for_smsc()
    assert _feed([data[i : i + 1] for i in range(len(data))]) == _feed([data])


@pytest.mark.parametrize("cut", [1, 4, 15, 16, 17, 30, 60])
def test_pdus_split_at_any_point(cut: int) -> None:
    data = _stream_for_smsc()
    whole = _feed([data])
    assert _feed([data[:cut], data[cut:]]) == whole
    assert _feed([data[:cut], data[cut : 2 * cut], data[2 * cut :]]) == whole


def test_partial_pdu_waits_for_the_rest() -> None:
    smsc = session_in(Role.SMSC, St.BOUND_TRX)
    data = wire(SAMPLE_REQUESTS[C.SUBMIT_SM], 5)
    smsc.receive_data(data[:-1], 0.0)
    assert drain(smsc) == [] and smsc.data_to_send() == b""
    smsc.receive_data(data[-1:] + data[:3], 0.0)
    assert len(drain(smsc)) == 1
    smsc.receive_data(data[3:], 0.0)
    assert len(drain(smsc)) == 1


def test_receiving_data_resets_the_idle_timer() -> None:
    esme, _ = bound_pair(enquire_link_interval=30.0, response_timeout=10.0)
    esme.receive_data(wire(EnquireLink(), 5), 20.0)
    assert esme.get_timer() == 50.0
    esme.handle_timer(45.0)
    assert pdus(esme.data_to_send()) == [EnquireLinkResp(5)]
