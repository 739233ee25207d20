"""The DESIGN.md fuzz rule for the SMPP session engine (protocols/smpp/session.py).

For any bytes at all, fed whole or one byte at a time, to either role in several states, the engine
yields events from ``protocols.smpp.events`` or raises ``RemoteProtocolError``; nothing else
(no IndexError, struct.error, KeyError, ValueError, UnicodeDecodeError, TypeError, AttributeError).
After ``RemoteProtocolError`` the session is CLOSED and reads nothing more. Whatever it queues for
the wire is itself a sequence of well-formed PDUs. Segmentation never changes the outcome.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pdu_roundtrip import ANY_PDU
from test_session import SAMPLE_REQUESTS, session_in

from protocols.errors import LocalProtocolError, RemoteProtocolError
from protocols.smpp.constants import CommandId
from protocols.smpp.events import Event, RequestReceived
from protocols.smpp.pdu import HEADER_LENGTH, DeliverSm, Pdu, SubmitSm, decode_pdu, encode_pdu
from protocols.smpp.session import Role, SessionState, SmppSession

St = SessionState
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# (role, state) pairs the fuzzers start from; each session is reached by real traffic
STARTS = [
    (Role.ESME, St.OPEN),
    (Role.ESME, St.BOUND_TRX),
    (Role.ESME, St.BOUND_RX),
    (Role.SMSC, St.OPEN),
    (Role.SMSC, St.BOUND_TRX),
    (Role.SMSC, St.BOUND_TX),
]
START = st.sampled_from(STARTS)
MAX_PDU = 4096


def make(start: tuple[Role, SessionState]) -> SmppSession:
    role, state = start
    session = session_in(role, state, max_pdu_length=MAX_PDU, response_timeout=10.0)
    if state is not St.OPEN:
        # give the session requests of its own outstanding so responses have something to match
        for cid in (CommandId.SUBMIT_SM, CommandId.DELIVER_SM, CommandId.QUERY_SM, CommandId.ENQUIRE_LINK):
            if session.can_send(cid):
                session.send(SAMPLE_REQUESTS[cid], 0.0)
        session.data_to_send()
    return session


def well_formed(data: bytes) -> list[Pdu]:
    out: list[Pdu] = []
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= HEADER_LENGTH, data[pos:]
        (length,) = struct.unpack_from(">I", data, pos)
        out.append(decode_pdu(data[pos : pos + length]))
        pos += length
    assert pos == len(data)
    return out


Outcome = tuple[list[Event], list[Pdu], SessionState, bool]


def feed(session: SmppSession, chunks: list[bytes]) -> Outcome:
    """Feed chunks; return events, the PDUs queued for the wire, the final state, and whether the
    stream was fatal. Any exception other than RemoteProtocolError fails the test by propagating."""
    events: list[Event] = []
    fatal = False
    for i, chunk in enumerate(chunks):
        try:
            session.receive_data(chunk, float(i))
        except RemoteProtocolError:
            fatal = True
            assert session.state is St.CLOSED and not session.is_open
        while (event := session.next_event()) is not None:
            assert isinstance(event, Event), event
            events.append(event)
        if fatal:
            out = well_formed(session.data_to_send())
            # nothing more is read, and an unclosed stream is not reported as a close
            for rest in [*chunks[i + 1 :], b"\x00" * 16, b""]:
                session.receive_data(rest, float(i))
            assert session.next_event() is None
            assert session.data_to_send() == b""
            return events, out, session.state, fatal
    return events, well_formed(session.data_to_send()), session.state, fatal


def check_segmentation_does_not_matter(start: tuple[Role, SessionState], data: bytes) -> Outcome:
    whole = feed(make(start), [data] if data else [])  # b"" would mean the peer closed
    bytewise = feed(make(start), [data[i : i + 1] for i in range(len(data))])
    assert bytewise == whole
    return whole


# --- arbitrary bytes -------------------------------------------------------------------------------


@FUZZ
@given(START, st.binary(max_size=300))
def test_arbitrary_bytes(start: tuple[Role, SessionState], data: bytes) -> None:
    check_segmentation_does_not_matter(start, data)


# --- framed PDUs with arbitrary command ids and bodies ---------------------------------------------

KNOWN_IDS = sorted(int(c) for c in CommandId)
COMMAND_ID = st.one_of(
    st.sampled_from(KNOWN_IDS),
    st.integers(0, 0x1FF),
    st.integers(0x80000000, 0x800001FF),
    st.integers(0, 0xFFFFFFFF),
)
SEQ = st.one_of(st.integers(0, 8), st.integers(0, 0xFFFFFFFF))
BODY = st.lists(
    st.one_of(
        st.binary(max_size=30),
        st.sampled_from([b"\x00", b"\x00" * 6, b"1234\x00", b"\x01\x01", b"\xff", b"\x04\x24\x00\x02ab"]),
        st.text(st.sampled_from("0123456789+-R\u00b2"), min_size=16, max_size=16).map(
            lambda t: t.encode("latin-1") + b"\x00"
        ),
    ),
    max_size=12,
).map(b"".join)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    cid, status, seq, body = draw(COMMAND_ID), draw(SEQ), draw(SEQ), draw(BODY)
    length = HEADER_LENGTH + len(body)
    if draw(st.integers(0, 20)) == 0:  # now and then a lying command_length
        length = draw(st.integers(0, 0xFFFFFFFF))
    return struct.pack(">IIII", length, cid, status, seq) + body


@FUZZ
@given(START, st.lists(frames(), max_size=8).map(b"".join))
def test_framed_garbage(start: tuple[Role, SessionState], data: bytes) -> None:
    check_segmentation_does_not_matter(start, data)


# --- valid PDUs, then corrupted ------------------------------------------------------------------------


def _flip(data: bytearray, pos: int, value: int) -> None:
    if data:
        data[pos % len(data)] ^= value or 1


def _insert(data: bytearray, pos: int, value: int) -> None:
    data.insert(pos % (len(data) + 1), value)


def _delete(data: bytearray, pos: int, value: int) -> None:
    if data:
        del data[pos % len(data) : pos % len(data) + 1 + value % 8]


def _truncate(data: bytearray, pos: int, value: int) -> None:
    del data[pos % (len(data) + 1) :]


MUTATIONS: list[Callable[[bytearray, int, int], None]] = [_flip, _insert, _delete, _truncate]
# messages whose fields sit near the validation rules (times of digits, superscripts and signs)
NEAR_TIME = st.one_of(
    st.just(""),
    st.builds(
        str.__add__,
        st.text(st.sampled_from("0123456789\u00b2\u00b9"), min_size=15, max_size=15),
        st.sampled_from("+-R?"),
    ),
)
NEAR_VALID_MESSAGE = st.builds(
    lambda cls, ton, npi, esm, prio, sched, val, reg: cls(
        source_addr_ton=ton,
        source_addr_npi=npi,
        destination_addr="1",
        esm_class=esm,
        priority_flag=prio,
        schedule_delivery_time=sched,
        validity_period=val,
        registered_delivery=reg,
    ),
    st.sampled_from([SubmitSm, DeliverSm]),
    st.integers(0, 8),
    st.integers(0, 20),
    st.sampled_from([0, 4, 8, 0x10, 0x18, 0x20, 0x3C]),
    st.integers(0, 4),
    NEAR_TIME,
    NEAR_TIME,
    st.integers(0, 0x23),
)
_PEER_PDU_KINDS: list[st.SearchStrategy[Any]] = [
    ANY_PDU,
    NEAR_VALID_MESSAGE,
    st.builds(lambda pdu, seq: (pdu, seq), st.sampled_from(list(SAMPLE_REQUESTS.values())), SEQ),
]
# one third each (st.one_of would flatten ANY_PDU's 27 branches and starve the other two)
PEER_PDU = st.integers(0, 2).flatmap(_PEER_PDU_KINDS.__getitem__)


def _encoded(item: Any) -> bytes:
    if isinstance(item, tuple):
        return encode_pdu(item[0], item[1])
    try:
        return encode_pdu(item)
    except LocalProtocolError:  # ANY_PDU may draw a field outside the encoder's limits
        return b""


@FUZZ
@given(
    START,
    st.lists(PEER_PDU, min_size=1, max_size=6),
    st.lists(st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 2000), st.integers(0, 255)), max_size=4),
)
def test_valid_pdus_with_corruption(
    start: tuple[Role, SessionState],
    items: list[Any],
    mutations: list[tuple[Callable[[bytearray, int, int], None], int, int]],
) -> None:
    data = bytearray(b"".join(_encoded(item) for item in items))
    for mutate, pos, value in mutations:
        mutate(data, pos, value)
    check_segmentation_does_not_matter(start, bytes(data))


@FUZZ
@given(START, st.lists(st.sampled_from(list(SAMPLE_REQUESTS)), max_size=10), st.data())
def test_uncorrupted_requests_are_all_handled(
    start: tuple[Role, SessionState], cids: list[int], data: st.DataObject
) -> None:
    """Valid requests never make the stream fatal, and answering every RequestReceived keeps the
    output well-formed."""
    stream = b"".join(encode_pdu(SAMPLE_REQUESTS[cid], 1000 + i) for i, cid in enumerate(cids))
    session = make(start)
    events, _out, _, fatal = feed(session, [stream])
    assert not fatal
    for event in events:
        if isinstance(event, RequestReceived):
            status = data.draw(st.sampled_from([0, 0x08, 0x45]))
            session.answer(event.pdu, status)
    answers = well_formed(session.data_to_send())
    assert sorted(p.sequence_number for p in answers) == sorted(
        e.pdu.sequence_number for e in events if isinstance(e, RequestReceived)
    )


# --- the generators reach the interesting paths --------------------------------------------------------


def test_fuzz_inputs_reach_events_and_fatal_errors() -> None:
    """A canary that the strategies above are not vacuous: one fixed stream of each kind."""
    start = (Role.SMSC, St.BOUND_TRX)
    events, out, state, fatal = check_segmentation_does_not_matter(
        start,
        encode_pdu(SAMPLE_REQUESTS[CommandId.SUBMIT_SM], 5)
        + struct.pack(">IIII", 16, 0x99, 0, 6)
        + struct.pack(">IIII", 3, 4, 0, 7),
    )
    assert fatal and state is St.CLOSED
    assert [type(e).__name__ for e in events] == ["RequestReceived", "InvalidPduReceived"]
    assert [p.command_id for p in out] == [CommandId.GENERIC_NACK, CommandId.GENERIC_NACK]
