"""Hypothesis round trips of protocols.ussd.codec, for every profile variant:
message -> submit_sm / deliver_sm -> bytes -> decode -> the same message; its_session_info pack /
unpack; service codes parse / format; screen text encode / decode.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from ussd_helpers import PROFILE, TEXT, as_sent, fits, mo_messages, mt_messages

from protocols.smpp import DeliverSm, SubmitSm, decode_pdu, encode_pdu
from protocols.ussd import (
    ItsSessionInfo,
    ServiceCode,
    UssdProfile,
    decode_text,
    encode_text,
    from_pdu,
    parse_service_code,
    to_deliver,
    to_submit,
)

SETTINGS = settings(max_examples=300, deadline=None)


@SETTINGS
@given(st.data(), PROFILE)
def test_mt_message_round_trip(data: st.DataObject, profile: UssdProfile) -> None:
    message = data.draw(mt_messages(profile))
    pdu = to_submit(message, profile, sequence_number=data.draw(st.integers(0, 0x7FFFFFFF)))
    decoded = decode_pdu(encode_pdu(pdu))
    assert isinstance(decoded, SubmitSm)
    assert decoded == pdu
    assert from_pdu(decoded, profile) == as_sent(message, profile)


@SETTINGS
@given(st.data(), PROFILE)
def test_mo_message_round_trip(data: st.DataObject, profile: UssdProfile) -> None:
    message = data.draw(mo_messages(profile))
    pdu = to_deliver(message, profile)
    decoded = decode_pdu(encode_pdu(pdu))
    assert isinstance(decoded, DeliverSm)
    assert from_pdu(decoded, profile) == as_sent(message, profile)


@SETTINGS
@given(st.integers(0, 255), st.integers(0, 127), st.booleans())
def test_its_session_info_round_trip(number: int, sequence: int, end: bool) -> None:
    info = ItsSessionInfo(number, sequence, end)
    packed = info.pack()
    assert len(packed) == 2 and packed[0] == number and packed[1] == sequence << 1 | end
    assert ItsSessionInfo.unpack(packed) == info


@SETTINGS
@given(st.binary(min_size=2, max_size=2))
def test_its_session_info_unpack_pack(raw: bytes) -> None:
    assert ItsSessionInfo.unpack(raw).pack() == raw


DIGITS = st.text(st.sampled_from("0123456789"), min_size=1, max_size=6)
PARAM = st.text(st.sampled_from("0123456789+"), max_size=8)


@SETTINGS
@given(st.sampled_from(["*", "#", "**", "*#", "##"]), DIGITS, st.lists(PARAM, max_size=4))
def test_service_code_round_trip(prefix: str, code: str, params: list[str]) -> None:
    service_code = ServiceCode(prefix, code, tuple(params))
    dialled = str(service_code)
    assert parse_service_code(dialled) == service_code
    assert str(parse_service_code(dialled)) == dialled
    assert parse_service_code(service_code.base) == ServiceCode(prefix, code)


@SETTINGS
@given(st.text(max_size=30))
def test_service_code_parse_is_total(text: str) -> None:
    try:
        code = parse_service_code(text)
    except Exception as exc:  # the point: only DecodeError may come out
        assert type(exc).__name__ == "DecodeError"
    else:
        assert str(code) == text


@SETTINGS
@given(TEXT, PROFILE)
def test_text_round_trip(text: str, profile: UssdProfile) -> None:
    if not fits(text, profile):
        return
    data_coding, data = encode_text(text, profile)
    assert decode_text(data, data_coding, profile) == text
