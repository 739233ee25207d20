"""RFC 6733 codec: round trips (hypothesis), malformed input and its Result-Codes, the fuzz rule."""

from __future__ import annotations

import ipaddress
import struct
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.diameter import codec
from protocols.diameter.codec import Avp, Message, OtherAddress, ResultCode, decode, encode
from protocols.errors import DecodeError, LocalProtocolError

U32 = st.integers(0, 2**32 - 1)


def avps(depth: int = 2) -> st.SearchStrategy[Avp]:
    def build(code: int, flags: int, vendor: int, data: bytes) -> Avp:
        vendor_id = vendor if flags & 0x80 else None
        return Avp(code, flags, vendor_id, data)

    leaf = st.builds(build, U32, st.integers(0, 255), U32, st.binary(max_size=40))
    if depth == 0:
        return leaf
    grouped = st.builds(
        lambda code, flags, vendor, members: build(code, flags, vendor, codec.encode_grouped(members)),
        U32,
        st.integers(0, 255),
        st.sampled_from([10415, 5535, 99999]),
        st.lists(avps(depth - 1), max_size=4),
    )
    return st.one_of(leaf, grouped)


messages = st.builds(
    lambda flags, code, app, hbh, e2e, items: Message(
        command_flags=flags,
        command_code=code,
        application_id=app,
        hop_by_hop=hbh,
        end_to_end=e2e,
        avps=tuple(items),
    ),
    st.integers(0, 255).filter(lambda f: not (f & 0x80 and f & 0x20)),
    st.integers(0, 2**24 - 1),
    U32,
    U32,
    U32,
    st.lists(avps(), max_size=6),
)


@given(messages)
def test_message_round_trip(message: Message) -> None:
    wire = encode(message)
    assert len(wire) % 4 == 0
    assert codec.message_length(wire) == len(wire)
    decoded = decode(wire)
    assert decoded == message
    assert encode(decoded) == wire


@given(st.binary(max_size=200))
def test_fuzz_decode_yields_message_or_decode_error(data: bytes) -> None:
    try:
        message = decode(data)
    except DecodeError as exc:
        assert exc.status in {5011, 5015, 3008, 5014}
    else:
        assert encode(message) == data


@given(messages, st.integers(0, 400), st.integers(0, 255))
def test_fuzz_mutated_messages(message: Message, position: int, byte: int) -> None:
    wire = bytearray(encode(message))
    wire[position % len(wire)] = byte
    try:
        decoded = decode(bytes(wire))
    except DecodeError:
        return
    assert encode(decoded) == bytes(wire)


def _header(length: int, flags: int = 0x80, version: int = 1) -> bytes:
    return struct.pack(">IIIII", version << 24 | length, flags << 24 | 257, 0, 1, 2)


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        (b"\x01\x00\x00", 5015),
        (_header(20, version=2), 5011),
        (_header(24), 5015),
        (_header(20) + b"\x00" * 4, 5015),
        (_header(22)[:20] + b"\x00\x00", 5015),
        (_header(20, flags=0xA0), 3008),
        (_header(24) + b"\x00\x00\x01\x07", 5014),
        (_header(28) + struct.pack(">II", 263, 0x40 << 24 | 7), 5014),
        (_header(32) + struct.pack(">II", 263, 0x80 << 24 | 8) + b"\x00" * 4, 5014),
        (_header(28) + struct.pack(">II", 263, 0x40 << 24 | 12), 5014),
        (_header(32) + struct.pack(">II", 263, 0x40 << 24 | 9) + b"a\x00\x01\x00", 5014),
    ],
)
def test_malformed_result_codes(wire: bytes, status: int) -> None:
    with pytest.raises(DecodeError) as info:
        decode(wire)
    assert info.value.status == status


def test_message_length_framing() -> None:
    assert codec.message_length(b"\x01\x00") is None
    assert codec.message_length(_header(20)) == 20
    with pytest.raises(DecodeError) as info:
        codec.message_length(b"\x01\x00\x00\x13")
    assert info.value.status == ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH
    with pytest.raises(DecodeError) as info:
        codec.message_length(b"\x02\x00\x00\x14")
    assert info.value.status == ResultCode.DIAMETER_UNSUPPORTED_VERSION


def test_padding_excluded_from_avp_length() -> None:
    wire = codec.encode_avp(Avp(263, 0x40, None, b"abcde"))
    assert wire == b"\x00\x00\x01\x07\x40\x00\x00\x0dabcde\x00\x00\x00"
    vendor = codec.encode_avp(Avp(872, 0xC0, 10415, b"\x00\x00\x00\x03"))
    assert vendor == bytes.fromhex("00000368c0000010000028af00000003")


def test_flags_and_properties() -> None:
    item = Avp(1, 0xC0, 10415, b"")
    assert item.is_mandatory and item.is_vendor_specific
    message = Message(command_flags=0xF0, command_code=257, application_id=0, hop_by_hop=1, end_to_end=2)
    assert message.version == 1
    assert message.is_request and message.is_proxiable and message.is_error and message.is_retransmitted
    assert ResultCode(2001) is ResultCode.DIAMETER_SUCCESS
    assert ResultCode(4242).name == "UNKNOWN_0x00001092"


def test_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        Avp(1, 0x80, None, b"")
    with pytest.raises(LocalProtocolError):
        Avp(1, 0, 5, b"")
    with pytest.raises(LocalProtocolError):
        codec.encode_avp(Avp(2**32, 0, None, b""))
    with pytest.raises(LocalProtocolError):
        codec.encode_avp(Avp(1, 256, None, b""))
    with pytest.raises(LocalProtocolError):
        codec.encode_avp(Avp(1, 0, None, b"\x00" * 2**24))
    base = {"command_flags": 0, "command_code": 1, "application_id": 0, "hop_by_hop": 0, "end_to_end": 0}
    for field, value in (
        ("version", 256),
        ("command_flags", -1),
        ("command_code", 2**24),
        ("hop_by_hop", -1),
    ):
        with pytest.raises(LocalProtocolError):
            encode(Message(**{**base, field: value}))  # type: ignore[arg-type]
    big = Avp(1, 0, None, b"\x00" * (2**24 - 20))
    with pytest.raises(LocalProtocolError):
        encode(Message(**base, avps=(big,)))


# --- typed values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoder", "decoder", "strategy"),
    [
        (codec.encode_octet_string, codec.decode_octet_string, st.binary()),
        (codec.encode_integer32, codec.decode_integer32, st.integers(-(2**31), 2**31 - 1)),
        (codec.encode_integer64, codec.decode_integer64, st.integers(-(2**63), 2**63 - 1)),
        (codec.encode_unsigned32, codec.decode_unsigned32, U32),
        (codec.encode_unsigned64, codec.decode_unsigned64, st.integers(0, 2**64 - 1)),
        (codec.encode_float32, codec.decode_float32, st.floats(width=32, allow_nan=False)),
        (codec.encode_float64, codec.decode_float64, st.floats(allow_nan=False)),
        (codec.encode_enumerated, codec.decode_enumerated, st.integers(-(2**31), 2**31 - 1)),
        (codec.encode_utf8_string, codec.decode_utf8_string, st.text()),
        (
            codec.encode_diameter_identity,
            codec.decode_diameter_identity,
            st.from_regex(r"[a-z0-9.-]{0,30}", fullmatch=True),
        ),
        (
            codec.encode_diameter_uri,
            codec.decode_diameter_uri,
            st.from_regex(r"aaas?://[a-z0-9.]{1,20}(:[0-9]{1,5})?(;transport=tcp)?", fullmatch=True),
        ),
        (
            codec.encode_address,
            codec.decode_address,
            st.one_of(
                st.ip_addresses(),
                st.builds(OtherAddress, st.integers(3, 65535), st.binary(max_size=20)),
            ),
        ),
        (
            codec.encode_time,
            codec.decode_time,
            st.datetimes(
                min_value=datetime(1968, 1, 21),  # noqa: DTZ001 (hypothesis wants naive bounds)
                max_value=datetime(2104, 2, 25),  # noqa: DTZ001
                timezones=st.just(UTC),
            ).map(lambda d: d.replace(microsecond=0)),
        ),
        (codec.encode_grouped, codec.decode_grouped, st.lists(avps(1), max_size=4).map(tuple)),
    ],
)
def test_typed_round_trip(encoder: object, decoder: object, strategy: st.SearchStrategy[object]) -> None:
    @given(strategy)
    def check(value: object) -> None:
        data = encoder(value)  # type: ignore[operator]
        assert decoder(data) == value  # type: ignore[operator]

    check()


def test_typed_known_encodings() -> None:
    assert codec.encode_address(ipaddress.IPv4Address("127.0.0.1")).hex() == "00017f000001"
    assert (
        codec.encode_time(datetime(1900, 1, 1, tzinfo=UTC) + timedelta(seconds=0xC0000000)).hex()
        == "c0000000"
    )
    assert codec.decode_time(b"\x00\x00\x00\x00") == datetime(2036, 2, 7, 6, 28, 16, tzinfo=UTC)
    assert codec.encode_time(datetime(2036, 2, 7, 6, 28, 16, tzinfo=UTC)) == b"\x00\x00\x00\x00"


@pytest.mark.parametrize(
    ("decoder", "data", "status"),
    [
        (codec.decode_unsigned32, b"\x00\x01", 5014),
        (codec.decode_integer64, b"\x00" * 9, 5014),
        (codec.decode_float32, b"", 5014),
        (codec.decode_time, b"\x00" * 3, 5014),
        (codec.decode_address, b"\x00", 5014),
        (codec.decode_address, b"\x00\x01\x7f\x00\x00", 5014),
        (codec.decode_address, b"\x00\x02" + b"\x00" * 4, 5014),
        (codec.decode_utf8_string, b"\xff", 5004),
        (codec.decode_diameter_identity, "hôte".encode(), 5004),
        (codec.decode_diameter_uri, b"http://x", 5004),
        (codec.decode_grouped, b"\x00\x00\x00\x01\x00\x00\x00\x04", 5014),
    ],
)
def test_typed_decode_errors(decoder: object, data: bytes, status: int) -> None:
    with pytest.raises(DecodeError) as info:
        decoder(data)  # type: ignore[operator]
    assert info.value.status == status


@pytest.mark.parametrize(
    ("encoder", "value"),
    [
        (codec.encode_unsigned32, -1),
        (codec.encode_integer32, 2**31),
        (codec.encode_unsigned64, 2**64),
        (codec.encode_float32, 1e300),
        (codec.encode_utf8_string, "\ud800"),
        (codec.encode_diameter_identity, "hôte"),
        (codec.encode_diameter_uri, "http://x"),
        (codec.encode_address, OtherAddress(70000, b"")),
        (codec.encode_time, datetime(2024, 1, 1)),  # noqa: DTZ001 (the point: naive is refused)
        (codec.encode_time, datetime(1968, 1, 1, tzinfo=UTC)),
        (codec.encode_time, datetime(2105, 1, 1, tzinfo=UTC)),
    ],
)
def test_typed_encode_errors(encoder: object, value: object) -> None:
    with pytest.raises(LocalProtocolError):
        encoder(value)  # type: ignore[operator]
