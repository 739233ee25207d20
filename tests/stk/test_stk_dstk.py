"""DSTK application messages (protocols/stk/dstk.py): round trips, layout, and the fuzz rule."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, LocalProtocolError
from protocols.stk.dstk import DSTK_TAR, DstkAnswer, DstkOffer, StkOutcome

ASCII_ID = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20)
COMMAND = st.binary(max_size=80).map(lambda b: b"\xd0" + b)


def test_offer_layout_is_version_fields_then_command() -> None:
    offer = DstkOffer("off-1", "12345", bytes.fromhex("d00b8103012180820281028d00"))
    raw = offer.encode()
    assert raw == b"\x01\x05off-1\x0512345" + bytes.fromhex("d00b8103012180820281028d00")
    assert DstkOffer.decode(raw) == offer
    assert DSTK_TAR == b"\xbf\xff\x01"


def test_answer_layout() -> None:
    answer = DstkAnswer("off-1", StkOutcome.ITEM_CHOSEN, item_id=3, general_result=0)
    raw = answer.encode()
    assert raw == b"\x01\x05off-1\x02\x03\x00"
    assert DstkAnswer.decode(raw) == answer


@given(ASCII_ID, st.text(alphabet="0123456789", min_size=1, max_size=20), COMMAND)
def test_offer_round_trip(offer_id: str, reply_to: str, command: bytes) -> None:
    offer = DstkOffer(offer_id, reply_to, command)
    assert DstkOffer.decode(offer.encode()) == offer


@given(ASCII_ID, st.sampled_from(list(StkOutcome)), st.integers(0, 255), st.integers(0, 255))
def test_answer_round_trip(offer_id: str, outcome: StkOutcome, item: int, result: int) -> None:
    answer = DstkAnswer(offer_id, outcome, item, result)
    assert DstkAnswer.decode(answer.encode()) == answer


@pytest.mark.parametrize(
    ("offer_id", "reply_to", "command"),
    [
        ("", "1", b"\xd0\x00"),
        ("x" * 21, "1", b"\xd0\x00"),
        ("ünïcode", "1", b"\xd0\x00"),
        ("ok", "", b"\xd0\x00"),
        ("ok", "1", b""),
        ("ok", "1", b"\x81\x03"),
    ],
)
def test_offer_encoding_refuses_bad_fields(offer_id: str, reply_to: str, command: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        DstkOffer(offer_id, reply_to, command).encode()


def test_answer_encoding_refuses_bad_octets() -> None:
    with pytest.raises(LocalProtocolError):
        DstkAnswer("a", StkOutcome.ACCEPTED, item_id=256).encode()
    with pytest.raises(LocalProtocolError):
        DstkAnswer("a", StkOutcome.ACCEPTED, general_result=-1).encode()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x02\x01a\x011\xd0",  # wrong version
        b"\x01",  # ends before offer_id
        b"\x01\x00",  # empty offer_id
        b"\x01\x05ab",  # offer_id runs past the end
        b"\x01\x02\xff\xfe\x011\xd0",  # offer_id not ASCII
        b"\x01\x01a",  # ends before reply_to
        b"\x01\x01a\x011",  # no command
        b"\x01\x01a\x011\x81",  # not a proactive command
    ],
)
def test_bad_offers_raise_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        DstkOffer.decode(raw)


@pytest.mark.parametrize(
    "raw", [b"", b"\x02\x01a\x00\x00\x00", b"\x01\x01a\x00\x00", b"\x01\x01a\x09\x00\x00"]
)
def test_bad_answers_raise_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        DstkAnswer.decode(raw)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_decode_error(raw: bytes) -> None:
    for cls in (DstkOffer, DstkAnswer):
        try:
            value = cls.decode(raw)
        except DecodeError:
            continue
        # whatever decodes re-encodes to the same bytes
        assert value.encode() == raw
