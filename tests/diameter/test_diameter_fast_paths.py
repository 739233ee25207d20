"""The Diameter hot paths give exactly what the reference paths give (RFC 6733 sections 3, 4.1, 7.5):
AVPs the decoder builds through their slots, the one-pass scan of a Grouped AVP's members against
its grammar, ``encode_answer`` against ``encode(answer(...))``, and a peer fed many frames at once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.diameter import codec
from protocols.diameter import credit_control as cc
from protocols.diameter.codec import Avp, Message, decode, encode, encode_avp, encode_header, scan_avps
from protocols.diameter.credit_control import (
    CcRequestType,
    FailedAvpError,
    GrantedServiceUnit,
    MultipleServicesCreditControl,
    RequestedServiceUnit,
    SubscriptionId,
    SubscriptionIdType,
    UsedServiceUnit,
    answer,
    answer_services,
    build_gy_ccr,
    encode_answer,
    error_answer,
    parse_request,
)
from protocols.diameter.dictionary import avp
from protocols.diameter.peer import DiameterPeer, Event
from protocols.errors import DecodeError, LocalProtocolError, RemoteProtocolError

# every grammar of credit_control, and AVP keys that are in it, in the dictionary, or in neither
GRAMMARS = {
    name: value for name, value in vars(cc).items() if isinstance(value, cc._Grammar) and name != "_Grammar"
}
KEYS: list[int | tuple[int, int]] = sorted(
    {key for grammar in GRAMMARS.values() for key in grammar.by_key}
    | {263, 264, 296, 55, 873, (873, 10415), 99999, (99999, 10415), (874, 10415)},
    key=str,
)


@st.composite
def members(draw: st.DrawFn, grammar: cc._Grammar | None = None) -> bytes:
    """Octets of a Grouped AVP's data: mostly members ``grammar`` names with the M bit it wants, some
    other AVPs, any flags, and now and then broken octets."""
    chosen: list[tuple[int | tuple[int, int], int]] = []
    if grammar is not None and draw(st.booleans()):  # a valid-looking set: each name once, required ones
        required = set(grammar.required)
        for key, (name, mandatory, _most) in sorted(grammar.by_key.items(), key=str):
            if name in required or draw(st.booleans()):
                chosen.append((key, mandatory or 0))
        chosen = draw(st.permutations(chosen))
    for _ in range(draw(st.integers(0, 2 if chosen else 6))):
        other: int | tuple[int, int] = draw(st.sampled_from(KEYS))
        chosen.append((other, draw(st.sampled_from([0x00, 0x40]))))
    out = b""
    for key, flags in chosen:
        code, vendor = key if isinstance(key, tuple) else (key, None)
        flags |= draw(st.sampled_from([0x00, 0x20])) | (0x80 if vendor else 0)
        out += encode_avp(Avp(code, flags, vendor, draw(st.binary(max_size=9))))
    if draw(st.integers(0, 4)) == 0:  # break it: cut, flip a byte, or add junk
        how = draw(st.sampled_from(["cut", "flip", "junk"]))
        if how == "cut" and out:
            out = out[: draw(st.integers(0, len(out) - 1))]
        elif how == "flip" and out:
            at = draw(st.integers(0, len(out) - 1))
            out = out[:at] + bytes([draw(st.integers(0, 255))]) + out[at + 1 :]
        else:
            out += draw(st.binary(min_size=1, max_size=12))
    return out


def reference(parser: cc._Parser, group: codec.RawAvp, grammar: cc._Grammar) -> dict[str, Any] | type:
    """What the long way gives: the members by name, or the error type."""
    try:
        return dict(parser.collect(scan_avps(group[3]), grammar)._avps)
    except DecodeError as exc:
        return type(exc)


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(sorted(GRAMMARS)), strict=st.booleans(), data=st.data())
def test_one_pass_members_agree_with_scan_then_collect(name: str, strict: bool, data: st.DataObject) -> None:
    grammar = GRAMMARS[name]
    parser = cc._Parser(strict)
    group = (456, 0x40, None, data.draw(members(grammar)))
    fast = parser.members(group, grammar)
    expected = reference(parser, group, grammar)
    if fast is None:  # it gives way only where the long way has something to report
        assert not isinstance(expected, dict)
    else:
        assert dict(fast._avps) == expected


def _member(key: int | tuple[int, int], flags: int, data: bytes = b"\x00\x00\x00\x01") -> bytes:
    code, vendor = key if isinstance(key, tuple) else (key, None)
    return encode_avp(Avp(code, flags | (0x80 if vendor else 0), vendor, data))


RG, RR, USU = 432, (872, 10415), 446  # Rating-Group, Reporting-Reason, Used-Service-Unit


@pytest.mark.parametrize(
    ("data", "strict", "why"),
    [
        (b"\x00\x00\x01", True, "truncated header"),
        (b"\x00\x00\x01\xb0\x40\x00\x00\x07", True, "AVP Length shorter than the header"),
        (b"\x00\x00\x03\x68\xc0\x00\x00\x0b\x00\x00\x28\xaf", True, "vendor AVP shorter than its header"),
        (b"\x00\x00\x01\xb0\x40\x00\x00\x10\x00\x00\x00\x01", True, "overrun"),
        (encode_avp(Avp(RG, 0x40, None, b"\x01"))[:-1] + b"\x01", True, "non-zero padding"),
        (_member(99999, 0x40), True, "unknown with the M bit"),
        (_member(264, 0x00), True, "known outside the grammar, M bit wrong"),
        (_member(RG, 0x00), True, "M bit clear where it must be set"),
        (_member(RG, 0x40) * 2, True, "too many"),
    ],
)
def test_one_pass_gives_way_on_anything_to_report(data: bytes, strict: bool, why: str) -> None:
    parser = cc._Parser(strict)
    group = (456, 0x40, None, data)
    assert parser.members(group, cc._MSCC) is None, why
    assert reference(parser, group, cc._MSCC) in (DecodeError, FailedAvpError), why  # the long way raises


def test_one_pass_skips_what_the_grammar_lets_by_and_gives_way_on_missing() -> None:
    lenient = cc._Parser(False)
    strict = cc._Parser(True)
    data = _member(99999, 0x40) + _member(264, 0x40, b"h") + _member((99999, 10415), 0) + _member(RG, 0x40)
    found = lenient.members((456, 0x40, None, data), cc._MSCC)
    assert found is not None and list(found._avps) == ["Rating-Group"]
    assert strict.members((456, 0x40, None, data), cc._MSCC) is None  # the unknown M-bit one
    # Subscription-Id needs both members: with one, the long way names the missing one
    only_type = (443, 0x40, None, _member(450, 0x40))
    assert strict.members(only_type, cc._SUBSCRIPTION_ID) is None
    with pytest.raises(FailedAvpError) as caught:
        strict.subscription_id(only_type)
    assert caught.value.status == 5005
    # data that is not bytes (an Avp built by hand with a bytearray) goes the long way too
    assert strict.members((456, 0x40, None, bytearray(_member(RG, 0x40))), cc._MSCC) is None  # type: ignore[arg-type]
    assert strict.rsu((437, 0x40, None, b"")) == RequestedServiceUnit()


# --- whole requests: the one pass against the long way -----------------------------------------------------


def gy_ccr(extra: tuple[Avp, ...] = ()) -> Message:
    message = build_gy_ccr(
        session_id="pgw;1;2",
        origin_host="pgw.example.org",
        origin_realm="example.org",
        destination_realm="example.net",
        cc_request_type=CcRequestType.UPDATE_REQUEST,
        cc_request_number=7,
        msisdn="31612345678",
        subscription_id=[
            SubscriptionId(subscription_id_type=SubscriptionIdType.END_USER_IMSI, subscription_id_data="001")
        ],
        multiple_services_credit_control=[
            MultipleServicesCreditControl(
                rating_group=100,
                requested_service_unit=RequestedServiceUnit(),
                used_service_unit=(UsedServiceUnit(cc_total_octets=5, reporting_reason=3),),  # type: ignore[arg-type]
            )
        ],
    )
    return dataclasses.replace(message, avps=message.avps + extra)


def outcome(parse: Callable[[], object]) -> object:
    try:
        return parse()
    except RemoteProtocolError as exc:
        return (type(exc), exc.status, str(exc), getattr(exc, "failed_avp", None))


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, 10_000), byte=st.integers(0, 255), strict=st.booleans(), data=st.data())
def test_parse_request_same_with_and_without_the_one_pass(
    position: int, byte: int, strict: bool, data: st.DataObject
) -> None:
    extra = tuple(
        Avp(456, data.draw(st.sampled_from([0x40, 0x00])), None, data.draw(members()))
        for _ in range(data.draw(st.integers(0, 2)))
    )
    wire = bytearray(encode(gy_ccr(extra)))
    if data.draw(st.booleans()):
        wire[20 + position % (len(wire) - 20)] = byte  # somewhere in the AVPs
    try:
        message = decode(bytes(wire))
    except DecodeError:
        return
    fast = outcome(lambda: parse_request(message, reject_unknown_mandatory=strict))
    original = (cc._Parser.members, cc._c_members)
    try:
        # no one pass at all: grouped calls the C accelerator's members itself when it is there
        cc._Parser.members = lambda self, group, grammar: None  # type: ignore[method-assign]
        cc._c_members = None
        slow = outcome(lambda: parse_request(message, reject_unknown_mandatory=strict))
    finally:
        cc._Parser.members, cc._c_members = original  # type: ignore[method-assign]
    assert fast == slow


# --- encode_answer is encode(answer(...)) ------------------------------------------------------------------

proxy_info = avp("Proxy-Info", [avp("Proxy-Host", "dra.example.org"), avp("Proxy-State", b"\x01")])


@settings(max_examples=200, deadline=None)
@given(result=st.sampled_from([2001, 3004, 3009, 4012, 5001, 5005, 5014]), data=st.data())
def test_encode_answer_is_encode_of_answer(result: int, data: st.DataObject) -> None:
    base = gy_ccr((proxy_info,) * data.draw(st.integers(0, 2)))
    request = parse_request(base)
    assert isinstance(request, cc.CreditControlRequest)
    drop = data.draw(st.sets(st.sampled_from([263, 415, 416])))  # Session-Id, CC-Request-Number/-Type
    short = data.draw(st.sets(st.sampled_from([415, 416])))  # malformed: not echoed
    avps = tuple(
        Avp(a.code, a.flags, a.vendor_id, a.data[:3]) if a.code in short else a
        for a in base.avps
        if a.code not in drop
    )
    message = dataclasses.replace(base, avps=avps)
    if data.draw(st.booleans()):
        message = dataclasses.replace(message, command_code=8388636, application_id=16777302)
    granted = data.draw(st.none() | st.integers(0, 2**40))
    kwargs: dict[str, Any] = {
        "origin_host": "gw.example.net",
        "origin_realm": "example.net",
        "origin_state_id": data.draw(st.none() | st.integers(0, 2**32 - 1)),
        "multiple_services_credit_control": answer_services(
            request, result, None if granted is None else GrantedServiceUnit(cc_total_octets=granted)
        ),
        "failed_avp": avp("Session-Id", "x") if data.draw(st.booleans()) else None,
        "error_message": data.draw(st.none() | st.text(max_size=20)),
    }
    assert encode_answer(message, result, **kwargs) == encode(answer(message, result, **kwargs))


def test_encode_answer_refuses_answers_and_matches_error_answer() -> None:
    message = gy_ccr()
    reply = answer(message, 2001, origin_host="gw", origin_realm="r")
    with pytest.raises(LocalProtocolError):
        encode_answer(reply, 2001, origin_host="gw", origin_realm="r")
    error = FailedAvpError("Rating-Group: M bit clear", 3009, Avp(432, 0, None, b"\x00\x00\x00\x01"))
    refused = error_answer(message, error, origin_host="gw", origin_realm="r")
    assert encode_answer(
        message,
        3009,
        origin_host="gw",
        origin_realm="r",
        failed_avp=error.failed_avp,
        error_message=str(error),
    ) == encode(refused)


def test_answer_services_share_one_value_per_rating_group() -> None:
    request = parse_request(gy_ccr())
    assert isinstance(request, cc.CreditControlRequest)
    granted = GrantedServiceUnit(cc_total_octets=10)
    first, second = answer_services(request, 2001, granted), answer_services(request, 2001, granted)
    assert first == second and first[0] is second[0]
    assert first[0] == MultipleServicesCreditControl(
        rating_group=100, result_code=2001, granted_service_unit=granted
    )


# --- the codec's own fast paths --------------------------------------------------------------------------


@settings(max_examples=300)
@given(data=st.binary(max_size=80) | members())
def test_scan_avps_is_decode_avps_without_objects(data: bytes) -> None:
    try:
        expected = [(a.code, a.flags, a.vendor_id, a.data) for a in codec.decode_avps(data)]
    except DecodeError as exc:
        with pytest.raises(DecodeError) as caught:
            scan_avps(data)
        assert (str(caught.value), caught.value.status) == (str(exc), exc.status)
        return
    assert scan_avps(data) == expected
    assert scan_avps(bytearray(data)) == expected  # type: ignore[arg-type]


def test_decoded_avps_and_messages_are_like_constructed_ones() -> None:
    message = gy_ccr()
    decoded = decode(encode(message))
    assert decoded == message and hash(decoded.avps) == hash(message.avps)
    assert repr(decoded) == repr(message)
    assert all(type(a.data) is bytes for a in decoded.avps)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.avps[0].code = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.hop_by_hop = 1  # type: ignore[misc]
    wire = encode(message)
    assert decode(bytearray(wire)) == decode(memoryview(wire)) == decoded  # type: ignore[arg-type]
    assert codec.decode_avps(memoryview(wire)[20:]) == message.avps  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "flags", "vendor", "size", "words"),
    [
        (1, 0x80, 2**32, 0, "Vendor-Id"),
        (1, 0x80, -1, 1 << 24, "Vendor-Id"),  # the Vendor-Id is checked first
        (1, 0x40, None, 1 << 24, "too long"),
        (1, 0x140, None, 0, "flags"),
        (2**32, 0x40, None, 0, "AVP Code"),
        (-1, 0x40, None, 0, "AVP Code"),
    ],
)
def test_encode_avp_errors_name_the_field(
    code: int, flags: int, vendor: int | None, size: int, words: str
) -> None:
    with pytest.raises(LocalProtocolError, match=words):
        encode_avp(Avp(code, flags, vendor, bytes(size)))


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"body_length": 1 << 24}, "too long"),
        ({"version": 256}, "version"),
        ({"command_flags": -1}, "command_flags"),
        ({"command_code": 1 << 24}, "command_code"),
        ({"application_id": 2**32}, "Application-Id"),
        ({"hop_by_hop": -1}, "Hop-by-Hop"),
        ({"end_to_end": 2**32}, "End-to-End"),
    ],
)
def test_encode_header_errors_name_the_field(fields: dict[str, int], words: str) -> None:
    values = {
        "command_flags": 0x80,
        "command_code": 272,
        "application_id": 4,
        "hop_by_hop": 1,
        "end_to_end": 2,
    }
    values["body_length"] = 0
    with pytest.raises(LocalProtocolError, match=words):
        encode_header(**{**values, **fields})
    header = {k: v for k, v in values.items() if k != "body_length"}
    assert encode_header(**values) == encode(Message(**header))  # type: ignore[arg-type]


# --- the peer engine takes runs of frames ------------------------------------------------------------------


def responder() -> DiameterPeer:
    return DiameterPeer(
        "responder",
        "gw.example.net",
        "example.net",
        host_ip_addresses=[IPv4Address("127.0.0.1")],
        vendor_id=0,
        product_name="test",
        origin_state_id=7,
        auth_application_ids=(4,),
        supported_commands={(4, 272)},
    )


def cer() -> Message:
    return Message(
        command_flags=0x80,
        command_code=257,
        application_id=0,
        hop_by_hop=1,
        end_to_end=1,
        avps=(
            avp("Origin-Host", "pgw.example.org"),
            avp("Origin-Realm", "example.org"),
            avp("Auth-Application-Id", 4),
        ),
    )


def feed(chunks: list[bytes]) -> tuple[list[Event], bytes, str | None]:
    peer = responder()
    seen: list[Event] = []
    error = None
    for chunk in chunks:
        try:
            peer.receive_data(chunk, 1.0)
        except RemoteProtocolError as exc:
            error = str(exc)
        while (event := peer.next_event()) is not None:
            seen.append(event)
    return seen, peer.data_to_send(), error


@settings(max_examples=150, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["ccr", "dwr", "dpr", "garbage", "other-app"]), max_size=8),
    cuts=st.lists(st.integers(0, 4000), max_size=6),
)
def test_runs_of_frames_cut_anywhere_give_the_same_events(kinds: list[str], cuts: list[int]) -> None:
    frames = [encode(cer())]
    for hop, kind in enumerate(kinds, start=2):
        if kind == "garbage":
            frames.append(b"\x02\x00\x00\x14" + bytes(16))  # version 2: the stream cannot be framed
            continue
        code = {"ccr": 272, "dwr": 280, "dpr": 282, "other-app": 272}[kind]
        message = (
            gy_ccr()
            if code == 272
            else Message(command_flags=0x80, command_code=code, application_id=0, hop_by_hop=0, end_to_end=0)
        )
        if kind == "other-app":
            message = dataclasses.replace(message, application_id=5)
        frames.append(encode(dataclasses.replace(message, hop_by_hop=hop, end_to_end=hop)))
    stream = b"".join(frames)
    one_by_one = feed(frames)
    at = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *at], [*at, len(stream)], strict=True) if stream[a:b]]
    assert feed([stream]) == one_by_one
    assert feed(pieces) == one_by_one


# --- the typed readers' long way, and answers to requests with repeated AVPs -----------------------------


def test_wrong_sizes_and_hand_built_data_take_the_checked_decoders() -> None:
    octets = Avp(421, 0x40, None, b"\x00\x00\x05")  # CC-Total-Octets (Unsigned64) of 3 octets
    usu = Avp(446, 0x40, None, encode_avp(octets))
    with pytest.raises(FailedAvpError) as caught:
        cc._Parser(True).usu((usu.code, usu.flags, usu.vendor_id, usu.data))
    assert caught.value.status == 5014 and caught.value.failed_avp == Avp(446, 0x40, None, encode_avp(octets))
    kind = Avp(416, 0x40, None, b"\x00\x02")  # CC-Request-Type (Enumerated) of 2 octets
    message = gy_ccr()
    with pytest.raises(FailedAvpError) as caught:
        parse_request(
            dataclasses.replace(message, avps=tuple(kind if a.code == 416 else a for a in message.avps))
        )
    assert (caught.value.status, caught.value.failed_avp) == (5014, kind)
    host = Avp(264, 0x40, None, "pgw.exämple.org".encode())  # a DiameterIdentity is ASCII
    with pytest.raises(FailedAvpError) as caught:
        parse_request(
            dataclasses.replace(message, avps=tuple(host if a.code == 264 else a for a in message.avps))
        )
    assert (caught.value.status, caught.value.failed_avp) == (5004, host)
    # an Avp built by hand may hold a bytearray: read the same as bytes
    session = Avp(263, 0x40, None, bytearray(b"pgw;1;2"))  # type: ignore[arg-type]
    by_hand = dataclasses.replace(message, avps=tuple(session if a.code == 263 else a for a in message.avps))
    assert parse_request(by_hand) == parse_request(message)


def test_answers_echo_the_first_of_repeated_avps() -> None:
    message = gy_ccr()
    repeated = dataclasses.replace(
        message,
        avps=(
            *message.avps,
            avp("Session-Id", "second"),
            avp("CC-Request-Type", 3),
            avp("CC-Request-Number", 99),
            proxy_info,
        ),
    )
    reply = answer(repeated, 5009, origin_host="gw", origin_realm="r")
    echoed = {a.code: a for a in reversed(reply.avps)}
    assert echoed[263].data == b"pgw;1;2" and echoed[416].data == (2).to_bytes(4, "big")
    assert echoed[415].data == (7).to_bytes(4, "big") and reply.avps[-1] == proxy_info
    assert encode_answer(repeated, 5009, origin_host="gw", origin_realm="r") == encode(reply)


def test_grammars_only_take_bounds_collect_handles() -> None:
    with pytest.raises(LocalProtocolError):
        cc._grammar({"Rating-Group": (2, None)})
    with pytest.raises(LocalProtocolError):
        cc._grammar({"Rating-Group": (0, 0)})


def test_peer_takes_a_bytearray() -> None:
    seen, out, error = feed([bytearray(encode(cer()))])  # type: ignore[list-item]
    assert error is None and seen and out


# --- caches and shortcuts of the per-request paths ---------------------------------------------------------


def happened(run: Callable[[], object]) -> tuple[object, ...]:
    """("returned", value) or ("raised", type, message, Result-Code)."""
    try:
        return ("returned", run())
    except Exception as exc:
        return ("raised", type(exc), str(exc), getattr(exc, "status", None))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=4, max_size=4) | st.binary(max_size=6), as_bytearray=st.booleans())
def test_time_values_are_the_codecs_and_shared(data: bytes, as_bytearray: bool) -> None:
    item = (55, 0x40, None, bytearray(data) if as_bytearray else data)
    expected = happened(lambda: cc._decode(item, codec.decode_time))  # type: ignore[arg-type]
    assert happened(lambda: cc._time(item)) == expected  # type: ignore[arg-type]
    if expected[0] == "returned" and not as_bytearray:
        assert cc._time(item) is cc._time((55, 0x40, None, bytes(data)))  # one datetime per second seen


def test_time_cache_is_bounded() -> None:
    cc._TIMES.clear()
    for second in range(cc._TIMES_KEPT * 2 + 3):
        value = cc._time((55, 0x40, None, (0x80000000 + second).to_bytes(4, "big")))
        assert value == codec.decode_time((0x80000000 + second).to_bytes(4, "big"))
        assert len(cc._TIMES) <= cc._TIMES_KEPT


@settings(max_examples=200, deadline=None)
@given(
    reasons=st.lists(st.sampled_from(list(cc.ReportingReason)), max_size=3).map(tuple),
    inner=st.lists(st.none() | st.sampled_from(list(cc.ReportingReason)), max_size=3),
)
def test_reporting_reasons_are_the_mscc_level_then_each_usus(
    reasons: tuple[cc.ReportingReason, ...], inner: list[cc.ReportingReason | None]
) -> None:
    service = MultipleServicesCreditControl(
        reporting_reason=reasons,
        used_service_unit=tuple(UsedServiceUnit(reporting_reason=r) for r in inner),
    )
    assert service.reporting_reasons == reasons + tuple(r for r in inner if r is not None)


def test_answer_parts_are_shared_by_identity_then_by_value() -> None:
    first = MultipleServicesCreditControl(rating_group=7, result_code=2001)
    equal = MultipleServicesCreditControl(rating_group=7, result_code=2001)
    part = cc._service_part(first)
    assert cc._service_part(first) is part and part[1] == encode_avp(first.to_avp())
    assert cc._service_part(equal)[1] == part[1]  # another object: found by value (lru_cache)
    cc._SERVICE_PARTS.clear()
    for rating_group in range(cc._SERVICE_PARTS_KEPT + 5):
        service = MultipleServicesCreditControl(rating_group=rating_group)
        assert cc._service_part(service)[1] == encode_avp(service.to_avp())
        assert len(cc._SERVICE_PARTS) <= cc._SERVICE_PARTS_KEPT
    # an entry holds its service: its id cannot come back for another object
    assert all(entry[0] is not None and id(entry[0]) == key for key, entry in cc._SERVICE_PARTS.items())


def test_answered_services_are_shared_by_granted_identity_then_by_value() -> None:
    request = parse_request(gy_ccr())
    assert isinstance(request, cc.CreditControlRequest)
    granted, equal = GrantedServiceUnit(cc_total_octets=10), GrantedServiceUnit(cc_total_octets=10)
    first = answer_services(request, 2001, granted)
    assert answer_services(request, 2001, equal)[0] is first[0]  # equal GSUs: one shared value
    other = answer_services(request, 2001, GrantedServiceUnit(cc_total_octets=11))
    assert other[0].granted_service_unit == GrantedServiceUnit(cc_total_octets=11)
    assert answer_services(request, 3004, granted)[0].result_code == 3004
    cc._ANSWERED.clear()
    for octets in range(cc._ANSWERED_KEPT + 5):
        gsu = GrantedServiceUnit(cc_total_octets=octets)
        assert answer_services(request, 2001, gsu)[0].granted_service_unit == gsu
        assert len(cc._ANSWERED) <= cc._ANSWERED_KEPT


@settings(max_examples=300, deadline=None)
@given(
    buffer=st.binary(max_size=12),
    offset=st.integers(0, 14),
    as_type=st.sampled_from([bytes, bytearray, memoryview]),
)
def test_message_length_at_an_offset_is_that_of_the_slice(
    buffer: bytes, offset: int, as_type: Callable[[bytes], Any]
) -> None:
    whole = as_type(b"\x01\x00\x00\x14" + buffer)
    assert happened(lambda: codec.message_length(whole, offset)) == happened(
        lambda: codec.message_length(whole[offset : offset + 4])
    )


@pytest.mark.parametrize("strict", [True, False, 1, 0, "yes", ""])
def test_any_truth_value_selects_the_parser(strict: Any) -> None:
    bad = dataclasses.replace(gy_ccr(), avps=(*gy_ccr().avps, Avp(99999, 0x40, None, b"")))  # unknown, M bit
    result = happened(lambda: parse_request(bad, reject_unknown_mandatory=strict))
    assert result == happened(lambda: parse_request(bad, reject_unknown_mandatory=bool(strict)))
    assert (result[0] == "raised") == bool(strict)


def opened(**changes: Any) -> DiameterPeer:
    engine = DiameterPeer(
        "responder",
        "gw.example.net",
        "example.net",
        host_ip_addresses=[IPv4Address("127.0.0.1")],
        vendor_id=0,
        product_name="test",
        origin_state_id=7,
        auth_application_ids=(4, 16777238),
        supported_commands={(4, 272), (16777238, 272), (4, 999)},
        **changes,
    )
    engine.receive_data(encode(cer()), 1.0)
    assert engine.next_event() is not None and engine.data_to_send()
    return engine


@pytest.mark.parametrize("state", ["open", "closing"])
@pytest.mark.parametrize(
    ("application", "command"),
    [(4, 272), (4, 999), (4, 273), (16777238, 272), (16777251, 272), (5, 272), (4, 280), (4, 282), (4, 257)],
)
def test_the_peers_shortcut_for_requests_it_takes_answers_as_the_long_way(
    state: str, application: int, command: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The peer engine's first check (an application request on an open connection that it takes)
    against the long way alone (with the shortcut's state never matching)."""
    from protocols.diameter import peer as peer_module

    request = dataclasses.replace(gy_ccr(), application_id=application, command_code=command, hop_by_hop=9)

    def run() -> tuple[list[Any], bytes, str]:
        engine = opened()
        if state == "closing":
            engine.disconnect(2.0)
            engine.data_to_send()
        engine.receive_data(encode(request), 3.0)
        events = []
        while (event := engine.next_event()) is not None:
            events.append(event)
        return events, engine.data_to_send(), engine.state.name

    fast = run()
    monkeypatch.setattr(peer_module, "_OPEN", object())
    assert run() == fast
