"""Tests of the Diameter peer engine (RFC 6733 section 5, RFC 3539 watchdog), two peers in memory."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.diameter.codec import Avp, CommandFlag, Message, ResultCode, decode, encode
from protocols.diameter.dictionary import avp, find, value_of
from protocols.diameter.peer import (
    RELAY_APPLICATION_ID,
    AnswerReceived,
    CapabilitiesExchanged,
    CapabilitiesExchangeFailed,
    ConnectionLost,
    DiameterPeer,
    Event,
    PeerDisconnected,
    PeerState,
    RequestReceived,
    UnexpectedAnswer,
    WatchdogExpired,
)
from protocols.errors import LocalProtocolError, RemoteProtocolError

GY = 4
CCR = 272


def make(role: str, apps: tuple[int, ...] = (GY,), **kwargs: object) -> DiameterPeer:
    return DiameterPeer(
        role,
        f"{role}.example.org",
        "example.org",
        host_ip_addresses=[IPv4Address("127.0.0.1")],
        vendor_id=0,
        product_name="test",
        origin_state_id=7,
        auth_application_ids=apps,
        supported_vendor_ids=[10415],
        supported_commands={(GY, CCR)},
        watchdog_interval=30.0,
        **kwargs,  # type: ignore[arg-type]
    )


def events(peer: DiameterPeer) -> list[Event]:
    out: list[Event] = []
    while (event := peer.next_event()) is not None:
        out.append(event)
    return out


def pump(a: DiameterPeer, b: DiameterPeer, now: float = 0.0) -> None:
    while True:
        ab, ba = a.data_to_send(), b.data_to_send()
        if not ab and not ba:
            return
        if ab:
            b.receive_data(ab, now)
        if ba:
            a.receive_data(ba, now)


def opened(
    server_apps: tuple[int, ...] = (GY,), client_apps: tuple[int, ...] = (GY,)
) -> tuple[DiameterPeer, DiameterPeer]:
    server, client = make("responder", server_apps), make("initiator", client_apps)
    client.start(0.0)
    pump(client, server)
    return server, client


def ccr() -> Message:
    return Message(
        command_flags=int(CommandFlag.REQUEST | CommandFlag.PROXIABLE),
        command_code=CCR,
        application_id=GY,
        hop_by_hop=0,
        end_to_end=0,
        avps=(avp("Session-Id", "s;1"), avp("CC-Request-Number", 0)),
    )


def result_of(message: Message) -> object:
    found = find(message, "Result-Code")
    assert found is not None
    return value_of(found)


def exchange(peer: DiameterPeer, message: Message) -> Message:
    peer.receive_data(encode(message), 1.0)
    return decode(peer.data_to_send())


def test_cer_cea_opens_both() -> None:
    server, client = opened()
    assert server.state is client.state is PeerState.OPEN
    assert events(server) == [CapabilitiesExchanged("initiator.example.org", "example.org", (GY,))]
    assert events(client) == [CapabilitiesExchanged("responder.example.org", "example.org", (GY,))]
    assert server.peer_host == "initiator.example.org"
    assert client.common_application_ids == {GY}


def test_relay_application_is_common() -> None:
    server, client = opened(server_apps=(GY,), client_apps=(RELAY_APPLICATION_ID,))
    assert server.state is PeerState.OPEN
    assert server.common_application_ids == {GY, RELAY_APPLICATION_ID}
    assert client.common_application_ids == {GY, RELAY_APPLICATION_ID}


def test_no_common_application_5010_and_closed() -> None:
    server, client = opened(server_apps=(GY,), client_apps=(16777238,))
    assert server.state is client.state is PeerState.CLOSED
    assert events(server) == [CapabilitiesExchangeFailed(5010)]
    assert events(client) == [CapabilitiesExchangeFailed(5010)]
    server.receive_data(b"\x01", 1.0)  # ignored once closed
    assert events(server) == []


def test_vendor_specific_application_and_missing_origin() -> None:
    server = make("responder")
    cer = Message(
        command_flags=0x80,
        command_code=257,
        application_id=0,
        hop_by_hop=1,
        end_to_end=2,
        avps=(
            avp("Origin-Host", "h"),
            avp("Origin-Realm", "r"),
            avp("Vendor-Specific-Application-Id", [avp("Vendor-Id", 10415), avp("Acct-Application-Id", GY)]),
        ),
    )
    answer = exchange(server, cer)
    assert result_of(answer) == 2001
    assert events(server) == [CapabilitiesExchanged("h", "r", (GY,))]
    other = make("responder")
    bad = exchange(
        other, Message(command_flags=0x80, command_code=257, application_id=0, hop_by_hop=1, end_to_end=2)
    )
    assert result_of(bad) == ResultCode.DIAMETER_MISSING_AVP
    assert bad.is_error


def test_watchdog_answered_without_events() -> None:
    server, client = opened()
    events(server), events(client)
    assert client.get_timer() == 30.0
    client.handle_timer(10.0)  # not yet
    assert client.data_to_send() == b""
    client.handle_timer(30.0)
    assert client.get_timer() == 60.0
    pump(client, server, 30.0)
    assert events(server) == events(client) == []
    assert client.get_timer() == 60.0  # answer arrived at 30 -> next idle deadline


def test_lost_dwa_watchdog_expired() -> None:
    _server, client = opened()
    events(client)
    client.handle_timer(30.0)
    client.data_to_send()  # DWR lost
    client.handle_timer(60.0)
    assert events(client) == [WatchdogExpired()]
    assert client.state is PeerState.CLOSED and client.get_timer() is None
    client.handle_timer(90.0)


def test_dpr_dpa() -> None:
    server, client = opened()
    events(server), events(client)
    client.disconnect(1.0, cause=2)
    assert client.state.name == "CLOSING"
    pump(client, server)
    assert events(server) == [PeerDisconnected(2)]
    assert events(client) == [PeerDisconnected(2)]
    assert server.state is client.state is PeerState.CLOSED
    with pytest.raises(LocalProtocolError):
        client.disconnect(2.0)


def test_ccr_cca_ids() -> None:
    server, client = opened()
    events(server), events(client)
    hop = client.send(ccr(), 1.0)
    pump(client, server)
    [received] = events(server)
    assert isinstance(received, RequestReceived)
    request = received.message
    assert request.hop_by_hop == hop
    assert request.end_to_end >> 20 == 7
    answer = Message(
        command_flags=0,
        command_code=CCR,
        application_id=GY,
        hop_by_hop=request.hop_by_hop,
        end_to_end=request.end_to_end,
        avps=(avp("Session-Id", "s;1"), avp("Result-Code", 2001)),
    )
    assert server.send(answer, 1.0) == hop
    pump(client, server)
    [got] = events(client)
    assert isinstance(got, AnswerReceived)
    assert got.request == request and got.answer == answer
    server.send(answer, 2.0)  # a second answer: nobody asked
    pump(client, server)
    assert events(client) == [UnexpectedAnswer(answer)]


def test_send_misuse() -> None:
    client = make("initiator")
    with pytest.raises(LocalProtocolError):
        client.send(ccr(), 0.0)
    with pytest.raises(LocalProtocolError):
        make("responder").start(0.0)
    with pytest.raises(LocalProtocolError):
        make("server")
    _server, client = opened()
    dwr = Message(command_flags=0x80, command_code=280, application_id=0, hop_by_hop=0, end_to_end=0)
    with pytest.raises(LocalProtocolError):
        client.send(dwr, 0.0)


def test_unsupported_command_and_application() -> None:
    server, _ = opened()
    events(server)
    rar = Message(command_flags=0xC0, command_code=258, application_id=GY, hop_by_hop=5, end_to_end=6)
    answer = exchange(server, rar)
    assert answer.is_error and result_of(answer) == 3001
    assert (answer.hop_by_hop, answer.end_to_end) == (5, 6)
    other = Message(command_flags=0x80, command_code=CCR, application_id=16777238, hop_by_hop=7, end_to_end=8)
    answer = exchange(server, other)
    assert answer.is_error and result_of(answer) == 3007
    cer_again = Message(command_flags=0x80, command_code=257, application_id=0, hop_by_hop=9, end_to_end=9)
    assert result_of(exchange(server, cer_again)) == 5012
    assert events(server) == []


def test_malformed_avp_answered_5014() -> None:
    server, _ = opened()
    events(server)
    wire = bytearray(encode(ccr()))
    wire[20 + 5 : 20 + 8] = (0xFFFF).to_bytes(3, "big")  # first AVP length overruns
    server.receive_data(bytes(wire), 1.0)
    answer = decode(server.data_to_send())
    # a permanent failure (5xxx) is not a protocol error: no E bit (RFC 6733 7.1.5, 7.2)
    assert not answer.is_error and result_of(answer) == 5014
    assert find(answer, "Session-Id") is None
    assert server.state is PeerState.OPEN


def failed_avp(answer: Message) -> Avp:
    found = find(answer, "Failed-AVP")
    assert found is not None
    members = value_of(found)
    assert isinstance(members, tuple)
    (inner,) = members
    return inner


def test_5014_names_the_offending_avp_and_keeps_the_session_id() -> None:
    """RFC 6733 7.1.5: the AVP at fault goes back in a Failed-AVP, its payload zero-filled to its
    type's minimum size (an Unsigned32 here); the Session-Id before it leads the answer (8.8)."""
    server, _ = opened()
    events(server)
    wire = bytearray(encode(ccr()))
    number_at = 20 + 12  # after the 9-octet Session-Id AVP and its padding
    wire[number_at + 5 : number_at + 8] = (0x40).to_bytes(3, "big")
    server.receive_data(bytes(wire), 1.0)
    answer = decode(server.data_to_send())
    assert result_of(answer) == 5014 and not answer.is_error
    assert answer.avps[0] == avp("Session-Id", "s;1")
    assert failed_avp(answer) == Avp(415, 0x40, None, bytes(4))
    assert value_of(find(answer, "Origin-Host")) == "responder.example.org"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (b"\x00\x00\x01", Avp(256, 0, None, b"")),  # a header cut short is padded with zeros
        (b"\x00\x00\x01\x09\x00\x00\x00\x05", Avp(265, 0, None, bytes(4))),  # shorter than its header
        (b"\x00\x00\x01\x07\x40\x00\x00\x09abcd\x00\x01\x00\x00", Avp(263, 0x40, None, b"")),  # padding
    ],
)
def test_5014_for_every_kind_of_broken_avp(tail: bytes, expected: Avp) -> None:
    server, _ = opened()
    events(server)
    good = encode(ccr())
    body = good[20:] + tail + b"\x00" * (-len(tail) % 4)
    wire = bytearray(good[:20] + body)
    wire[1:4] = len(wire).to_bytes(3, "big")
    server.receive_data(bytes(wire), 1.0)
    answer = decode(server.data_to_send())
    assert result_of(answer) == 5014
    assert failed_avp(answer) == expected
    assert server.state is PeerState.OPEN


def test_e_bit_request_3008_and_broken_answer_closes() -> None:
    server, _ = opened()
    wire = bytearray(encode(ccr()))
    wire[4] |= 0x20
    server.receive_data(bytes(wire), 1.0)
    assert result_of(decode(server.data_to_send())) == 3008
    broken = bytearray(encode(ccr()))
    broken[4] = 0
    broken[20 + 5 : 20 + 8] = (0xFFFF).to_bytes(3, "big")
    with pytest.raises(RemoteProtocolError):
        server.receive_data(bytes(broken), 1.0)
    assert server.state is PeerState.CLOSED


def test_before_open() -> None:
    server = make("responder")
    answer = exchange(server, ccr())
    assert answer.is_error and result_of(answer) == 3010
    cca = Message(command_flags=0, command_code=CCR, application_id=GY, hop_by_hop=1, end_to_end=1)
    with pytest.raises(RemoteProtocolError):
        server.receive_data(encode(cca), 0.0)
    with pytest.raises(RemoteProtocolError):
        make("initiator").receive_data(encode(ccr()), 0.0)


def test_cea_failure_and_connection_lost() -> None:
    client = make("initiator")
    client.start(0.0)
    cer = decode(client.data_to_send())
    cea = Message(
        command_flags=0,
        command_code=257,
        application_id=0,
        hop_by_hop=cer.hop_by_hop,
        end_to_end=cer.end_to_end,
        avps=(avp("Result-Code", 3010),),
    )
    client.receive_data(encode(cea), 0.0)
    assert events(client) == [CapabilitiesExchangeFailed(3010)]
    other = make("responder")
    other.receive_data(b"", 0.0)
    assert events(other) == [ConnectionLost()] and other.state is PeerState.CLOSED


def test_dpr_with_bad_cause_closes() -> None:
    server, _ = opened()
    dpr = Message(
        command_flags=0x80,
        command_code=282,
        application_id=0,
        hop_by_hop=1,
        end_to_end=1,
        avps=(Avp(273, 0x40, None, b"\x00"),),
    )
    with pytest.raises(RemoteProtocolError):
        server.receive_data(encode(dpr), 0.0)


def test_framing_one_byte_at_a_time_and_limit() -> None:
    server, client = make("responder"), make("initiator")
    client.start(0.0)
    for byte in client.data_to_send():
        server.receive_data(bytes([byte]), 0.0)
    assert server.state is PeerState.OPEN
    small = make("responder", max_message_length=64)
    with pytest.raises(RemoteProtocolError):
        small.receive_data(b"\x01\x00\x01\x00", 0.0)
    with pytest.raises(RemoteProtocolError):
        make("responder").receive_data(b"\x02\x00\x00\x14", 0.0)


def _fuzz(role: str, chunks: list[bytes]) -> None:
    peer = make(role)
    if role == "initiator":
        peer.start(0.0)
    try:
        for chunk in chunks:
            peer.receive_data(chunk, 1.0)
            events(peer)
    except RemoteProtocolError:
        pass


@settings(max_examples=300)
@given(role=st.sampled_from(["responder", "initiator"]), data=st.binary(max_size=200))
def test_fuzz_whole_and_bytewise(role: str, data: bytes) -> None:
    _fuzz(role, [data])
    _fuzz(role, [data[i : i + 1] for i in range(len(data))])


@settings(max_examples=300)
@given(
    role=st.sampled_from(["responder", "initiator"]),
    flags=st.integers(0, 255),
    code=st.sampled_from([257, 280, 282, 272, 258, 0]),
    app=st.sampled_from([0, GY, RELAY_APPLICATION_ID, 5]),
    body=st.binary(max_size=64),
)
def test_fuzz_framed(role: str, flags: int, code: int, app: int, body: bytes) -> None:
    body = body[: len(body) // 4 * 4]
    header = (0x01000000 | (20 + len(body))).to_bytes(4, "big") + ((flags << 24) | code).to_bytes(4, "big")
    frame = header + app.to_bytes(4, "big") + (1).to_bytes(4, "big") + (1).to_bytes(4, "big") + body
    peer = make(role)
    if role == "initiator":
        peer.start(0.0)
    try:
        peer.receive_data(frame, 1.0)
        events(peer)
    except RemoteProtocolError:
        pass
