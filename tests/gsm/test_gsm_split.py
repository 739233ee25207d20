"""protocols.gsm.split: long texts as SMPP submit_sm (UDH, SAR, message_payload) and their
reassembly, against tests/vectors/gsm/split.json, smpplib's ``gsm.make_parts`` and round trips
through our SMPP codec; the Reassembler is fuzzed with arbitrary PDUs."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
from gsm_helpers import GSM7_CHARS, gsm7_text, load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smpplib import consts as smpplib_consts
from smpplib.gsm import make_parts

from protocols.errors import DecodeError, LocalProtocolError
from protocols.gsm import (
    UDHI,
    Coding,
    Concat8,
    Concat16,
    PartKey,
    Reassembler,
    Segment,
    TlvSegment,
    as_message_payload,
    build_submits,
    decode_short_message,
    decode_udh,
    encode_gsm7,
    encode_udh,
    parts_needed,
    split_sar,
    split_udh,
)
from protocols.smpp import DeliverSm, SubmitSm, Tag, Tlv, decode_pdu, encode_pdu, find_tlv, tlvs

V = load("split")


# --- vectors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", V["udh"], ids=[v["name"] for v in V["udh"]])
def test_split_udh_vectors(vector: dict[str, Any]) -> None:
    segments = split_udh(vector["text"], reference=vector["reference"], concat=vector["concat"])
    expected = [bytes.fromhex(h) for h in vector["short_messages_hex"]]
    assert [s.short_message for s in segments] == expected
    assert all(s.esm_class == UDHI and s.data_coding == 0 for s in segments)


@pytest.mark.parametrize("vector", V["smpp"], ids=[v["name"] for v in V["smpp"]])
def test_build_submits_vectors(vector: dict[str, Any]) -> None:
    content: str | bytes = (
        bytes.fromhex(vector["content_hex"]) if "content_hex" in vector else vector["prefix"] + vector["tail"]
    )
    pdus = build_submits(
        content,
        vector["source_addr"],
        vector["destination_addr"],
        method=vector["method"],
        reference=vector.get("reference"),
        concat=vector.get("concat", "8bit"),
        **vector["submit_fields"],
    )
    data = encode_pdu(pdus[vector["part"]], vector["sequence_number"])
    assert data.hex().upper() == vector["hex"].upper()


@pytest.mark.parametrize("vector", V["reassembly"], ids=[v["name"] for v in V["reassembly"]])
def test_reassembly_vectors(vector: dict[str, Any]) -> None:
    pdu = decode_pdu(bytes.fromhex(vector["hex"]))
    assert isinstance(pdu, SubmitSm)
    reassembler = Reassembler(60.0)
    assert reassembler.add(pdu, 0.0) is None
    assert len(reassembler) == 1
    assert reassembler.expire(60.0) == [PartKey(**vector["key"])]
    # the same part again, then the rest of the text in two more parts: the whole comes back
    text = vector["text"]
    key = PartKey(**vector["key"])
    assert reassembler.add(pdu, 1.0) is None
    assert reassembler.add_part(key, 3, 8, "3".encode("utf-16-be"), 2.0) is None
    assert reassembler.add_part(key, 2, 8, "2".encode("utf-16-be"), 3.0) == text + "23"


def test_split_sar_parts() -> None:
    text = "x" * 300
    segments = split_sar(text, reference=0x1234)
    assert len(segments) == 2
    for seq, seg in enumerate(segments, start=1):
        assert seg.esm_class == 0 and seg.data_coding == 0
        assert find_tlv(seg.optional_parameters, Tag.SAR_MSG_REF_NUM) == Tlv(Tag.SAR_MSG_REF_NUM, b"\x12\x34")
        assert find_tlv(seg.optional_parameters, Tag.SAR_TOTAL_SEGMENTS) == Tlv(
            Tag.SAR_TOTAL_SEGMENTS, b"\x02"
        )
        assert find_tlv(seg.optional_parameters, Tag.SAR_SEGMENT_SEQNUM) == Tlv(
            Tag.SAR_SEGMENT_SEQNUM, bytes((seq,))
        )
    assert [len(s.short_message) for s in segments] == [153, 147]
    assert [len(s.short_message) for s in split_sar(text, reference=1, concat="16bit")] == [152, 148]
    assert split_sar("short", reference=None) == [TlvSegment(0, 0, b"short", ())]


def test_as_message_payload() -> None:
    seg = as_message_payload("Привет " * 100)
    assert seg.short_message == b"" and seg.data_coding == 8
    assert seg.optional_parameters == tlvs(message_payload=("Привет " * 100).encode("utf-16-be"))
    with pytest.raises(LocalProtocolError, match="65535"):
        as_message_payload(b"\x00" * 65536)


def test_build_submits_fields() -> None:
    pdus = build_submits(
        "a" * 200,
        "DataShop",
        "254700000000",
        method="sar",
        reference=9,
        esm_class=0x03,
        registered_delivery=1,
        optional_parameters=tlvs(user_message_reference=5),
    )
    assert len(pdus) == 2
    for pdu in pdus:
        assert pdu.esm_class == 0x03 and pdu.registered_delivery == 1
        assert pdu.optional_parameters[0] == Tlv.make("user_message_reference", 5)
        assert len(pdu.optional_parameters) == 4
    payload = build_submits(b"\x01\x02", "a", "b", method="payload", data_coding=0xF6)
    assert payload[0].data_coding == 0xF6 and payload[0].short_message == b""
    single = build_submits("hi", "a", "b")
    assert single == [SubmitSm(source_addr="a", destination_addr="b", short_message=b"hi")]


def test_build_submits_errors() -> None:
    with pytest.raises(LocalProtocolError, match="short_message"):
        build_submits("x", "a", "b", short_message=b"x")
    with pytest.raises(LocalProtocolError, match="method"):
        build_submits("x", "a", "b", method="smoke")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="build_submits"):
        build_submits("x", "a", "b", no_such_field=1)
    with pytest.raises(LocalProtocolError, match="reference"):
        build_submits("x" * 200, "a", "b")
    with pytest.raises(LocalProtocolError, match="reference"):
        split_udh("x" * 200, reference=256)
    with pytest.raises(LocalProtocolError, match="reference"):
        split_udh("x" * 200, reference=0x10000, concat="16bit")
    with pytest.raises(LocalProtocolError, match="reference"):
        split_sar("x" * 200, reference=-1)
    with pytest.raises(LocalProtocolError, match="parts"):
        split_udh("x" * 153 * 256, reference=1)
    with pytest.raises(LocalProtocolError, match="GSM 7-bit"):
        split_udh("Ж", coding=Coding.GSM7)


# --- against smpplib's make_parts ----------------------------------------------------------------

# smpplib's table has "`" where the GSM alphabet has "§", and it may cut an ESC pair: basic only
SMPPLIB_GSM = "".join(ch for ch in GSM7_CHARS if ch not in "§`" and len(encode_gsm7(ch)) == 1)


@settings(max_examples=100)
@given(st.one_of(st.text(alphabet=SMPPLIB_GSM, max_size=500), st.text(alphabet="abcЖЯ€ ", max_size=300)))
def test_split_udh_matches_smpplib(text: str) -> None:
    parts, encoding, esm_class = make_parts(text)
    reference = parts[0][3] if esm_class else 0
    segments = split_udh(text, reference=reference)
    assert [s.short_message for s in segments] == parts
    assert [s.esm_class for s in segments] == [esm_class] * len(parts)
    expected_dc = 0 if encoding == smpplib_consts.SMPP_ENCODING_DEFAULT else 8
    assert {s.data_coding for s in segments} == {expected_dc}


# --- round trips through split, the SMPP codec and the Reassembler ---------------------------------

contents = st.one_of(
    gsm7_text,
    st.text(alphabet="aЖ€😀 ", max_size=300),
    st.text(max_size=200),
    st.binary(max_size=500),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    contents,
    st.tuples(
        st.sampled_from(["udh", "sar", "payload"]), st.sampled_from(["8bit", "16bit"]), st.integers(0, 255)
    ),
    st.randoms(use_true_random=False),
    st.booleans(),
)
def test_reassembly_roundtrip(
    content: str | bytes, how: tuple[Any, Any, int], rnd: Any, as_deliver: bool
) -> None:
    method, concat, reference = how
    pdus = build_submits(content, "2547", "DataShop", method=method, reference=reference, concat=concat)
    if method == "payload":
        assert len(pdus) == 1
    else:
        assert len(pdus) == parts_needed(content, concat=concat)
    wire = [decode_pdu(encode_pdu(p)) for p in pdus]  # through our SMPP codec
    if as_deliver:
        wire = [DeliverSm(**{f.name: getattr(p, f.name) for f in fields(SubmitSm)}) for p in wire]
    order = [*wire, rnd.choice(wire)]  # one duplicate
    rnd.shuffle(order)
    reassembler = Reassembler(30.0)
    results = []
    for pdu in order:
        try:
            results.append(reassembler.add(pdu, 0.0))
        except DecodeError:
            assert isinstance(content, bytes)  # 8-bit data is not text
            return
    texts = [r for r in results if r is not None]
    assert isinstance(content, str)
    assert texts == [content] or (len(pdus) == 1 and texts == [content, content])
    # a copy of a part that comes after its message completed is recognised: nothing stays pending
    assert len(reassembler) == 0


def test_parts_in_any_order_and_duplicates() -> None:
    text = "€" + "abc" * 160
    pdus = build_submits(text, "1", "2", reference=77)
    assert len(pdus) == 4
    reassembler = Reassembler(10.0)
    assert reassembler.add(pdus[3], 0.0) is None
    assert reassembler.add(pdus[3], 0.5) is None
    assert reassembler.add(pdus[0], 1.0) is None
    assert reassembler.add(pdus[2], 2.0) is None
    assert reassembler.add(pdus[2], 2.0) is None
    assert reassembler.add(pdus[1], 3.0) == text
    assert reassembler.next_deadline() is None


def test_late_copy_after_completion_is_dropped_and_a_reused_reference_is_a_new_message() -> None:
    """An SMSC that lost our response re-sends a part after the message completed: within the timeout
    the same bytes under the same key are a copy; other bytes are a new message reusing the reference."""
    reassembler = Reassembler(10.0)
    first = build_submits("a" * 200, "1", "2", reference=9)
    again = build_submits("b" * 200, "1", "2", reference=9)  # same key, other text
    assert reassembler.add(first[0], 0.0) is None
    assert reassembler.add(first[1], 1.0) == "a" * 200
    assert reassembler.add(first[0], 5.0) is None  # the late copy: nothing starts
    assert len(reassembler) == 0
    assert reassembler.add(again[1], 6.0) is None  # new bytes: the reference is in use again
    assert len(reassembler) == 1
    assert reassembler.add(again[0], 7.0) == "b" * 200
    assert reassembler.add(again[1], 16.9) is None  # the new message's copies are dropped in turn
    assert len(reassembler) == 0
    # a copy after the timeout is a new message (the reference may have wrapped around)
    assert reassembler.add(again[0], 17.0) is None
    assert len(reassembler) == 1


def test_completed_messages_kept_for_copies_are_bounded() -> None:
    reassembler = Reassembler(100.0, max_pending=2)
    messages = {ref: build_submits(str(ref) * 200, "1", "2", reference=ref) for ref in (1, 2, 3)}
    for ref, (head, tail) in messages.items():
        assert reassembler.add(head, ref) is None
        assert reassembler.add(tail, ref) == str(ref) * 200
    assert reassembler.add(messages[3][0], 10) is None  # still remembered: a copy
    assert reassembler.add(messages[2][0], 10) is None
    assert len(reassembler) == 0
    assert reassembler.add(messages[1][0], 10) is None  # the oldest was forgotten: it starts again
    assert len(reassembler) == 1


def test_concat8_and_concat16_and_sar_are_different_messages() -> None:
    reassembler = Reassembler(10.0)
    body = bytes(encode_gsm7("ab"))

    def udh_part(ie: Concat8 | Concat16) -> SubmitSm:
        return SubmitSm(
            source_addr="1", destination_addr="2", esm_class=UDHI, short_message=encode_udh([ie]) + body
        )

    sar = SubmitSm(
        source_addr="1",
        destination_addr="2",
        short_message=body,
        optional_parameters=tlvs(sar_msg_ref_num=1, sar_total_segments=2, sar_segment_seqnum=2),
    )
    assert reassembler.add(udh_part(Concat8(1, 2, 1)), 0) is None
    assert reassembler.add(udh_part(Concat16(1, 2, 2)), 0) is None
    assert reassembler.add(sar, 0) is None
    assert reassembler.add(udh_part(Concat8(1, 3, 2)), 0) is None  # other total: other message
    assert len(reassembler) == 4
    assert reassembler.add(udh_part(Concat8(1, 2, 2)), 0) == "abab"
    other = SubmitSm(
        source_addr="9",
        destination_addr="2",
        esm_class=UDHI,
        short_message=udh_part(Concat16(1, 2, 1)).short_message,
    )
    assert reassembler.add(other, 0) is None  # other source address: other message
    assert len(reassembler) == 4


def test_invalid_concatenation_is_a_single_message() -> None:
    """TS 23.040 9.2.3.24.1: a sequence of 0 or above the total voids the element."""
    reassembler = Reassembler(10.0)
    for ie in (Concat8(1, 2, 3), Concat8(1, 2, 0), Concat8(1, 0, 1)):
        pdu = SubmitSm(esm_class=UDHI, short_message=encode_udh([ie]) + b"hi")
        assert reassembler.add(pdu, 0) == "hi"
    sar_void = SubmitSm(
        short_message=b"hi",
        optional_parameters=tlvs(sar_msg_ref_num=1, sar_total_segments=2, sar_segment_seqnum=3),
    )
    assert reassembler.add(sar_void, 0) == "hi"
    sar_partial = SubmitSm(short_message=b"hi", optional_parameters=tlvs(sar_msg_ref_num=1))
    assert reassembler.add(sar_partial, 0) == "hi"
    assert reassembler.add(SubmitSm(esm_class=UDHI, short_message=b"\x00hi"), 0) == "hi"  # empty UDH
    assert len(reassembler) == 0


def test_single_part_concatenation_completes_at_once() -> None:
    pdu = SubmitSm(esm_class=UDHI, short_message=encode_udh([Concat8(5, 1, 1)]) + b"solo")
    assert Reassembler(1.0).add(pdu, 0) == "solo"


def test_expire_and_deadline() -> None:
    reassembler = Reassembler(10.0)
    pdus = build_submits("a" * 400, "1", "2", reference=1)
    others = build_submits("b" * 400, "1", "2", reference=2)
    assert reassembler.next_deadline() is None
    reassembler.add(pdus[0], 100.0)
    reassembler.add(others[0], 105.0)
    assert reassembler.next_deadline() == 110.0
    reassembler.add(pdus[1], 108.0)  # activity moves the first message's deadline
    assert reassembler.next_deadline() == 115.0
    assert reassembler.expire(114.9) == []
    assert reassembler.expire(115.0) == [PartKey("1", "2", "udh8", 2, 3)]
    assert reassembler.expire(200.0) == [PartKey("1", "2", "udh8", 1, 3)]
    assert reassembler.add(pdus[2], 201.0) is None  # its earlier parts are gone


def test_max_pending_drops_the_least_recently_active() -> None:
    reassembler = Reassembler(10.0, max_pending=2)
    firsts = {ref: build_submits("c" * 200, "1", "2", reference=ref) for ref in (1, 2, 3)}
    reassembler.add(firsts[1][0], 0)
    reassembler.add(firsts[2][0], 1)
    reassembler.add(firsts[3][0], 2)  # drops message 1
    assert len(reassembler) == 2
    assert reassembler.add(firsts[1][1], 3) is None  # message 1 starts again, drops message 2
    assert reassembler.add(firsts[3][1], 4) == "c" * 200
    assert reassembler.add(firsts[2][1], 5) is None
    with pytest.raises(LocalProtocolError):
        Reassembler(0)
    with pytest.raises(LocalProtocolError):
        Reassembler(1, max_pending=0)


def test_careless_split_is_mended() -> None:
    """A sender that cut a surrogate pair or an ESC pair between parts: the joined bytes decode."""
    reassembler = Reassembler(10.0)
    key = PartKey("1", "2", "udh8", 3, 2)
    emoji = "😀".encode("utf-16-be")
    assert reassembler.add_part(key, 1, 8, b"\x00a" + emoji[:2], 0) is None
    assert reassembler.add_part(key, 2, 8, emoji[2:], 0) == "a😀"
    key = PartKey("1", "2", "udh8", 4, 2)
    assert reassembler.add_part(key, 2, 0, b"\x65", 0) is None
    assert reassembler.add_part(key, 1, 0, b"a\x1b", 0) == "a€"
    with pytest.raises(LocalProtocolError):
        reassembler.add_part(key, 3, 0, b"", 0)


def test_mixed_codings_decode_part_by_part() -> None:
    reassembler = Reassembler(10.0)
    key = PartKey("1", "2", "sar", 3, 2)
    assert reassembler.add_part(key, 1, 8, "Ж".encode("utf-16-be"), 0) is None
    assert reassembler.add_part(key, 2, 0, b"ok", 0) == "Жok"


def test_short_message_and_payload_together_fail() -> None:
    pdu = SubmitSm(short_message=b"x", optional_parameters=tlvs(message_payload=b"y"))
    with pytest.raises(DecodeError, match="both"):
        Reassembler(1.0).add(pdu, 0)


def test_message_payload_with_udh() -> None:
    body = encode_udh([Concat8(1, 2, 2)]) + b"tail"
    pdu = SubmitSm(esm_class=UDHI, optional_parameters=tlvs(message_payload=body))
    reassembler = Reassembler(1.0)
    assert reassembler.add(pdu, 0) is None
    head = SubmitSm(esm_class=UDHI, short_message=encode_udh([Concat8(1, 2, 1)]) + b"head")
    assert reassembler.add(head, 0) == "headtail"


# --- decode_short_message ---------------------------------------------------------------------------


def test_decode_short_message() -> None:
    assert decode_short_message(0, bytes(encode_gsm7("a€@"))) == "a€@"
    assert decode_short_message(1, b"ascii") == "ascii"
    assert decode_short_message(3, "café".encode("latin-1")) == "café"
    assert decode_short_message(6, "Ж".encode("iso8859_5")) == "Ж"
    assert decode_short_message(7, "ש".encode("iso8859_8")) == "ש"
    assert decode_short_message(8, "Ж😀".encode("utf-16-be")) == "Ж😀"
    assert decode_short_message(0xF0, b"A") == "A"
    assert decode_short_message(0x18, "Ж".encode("utf-16-be")) == "Ж"
    for dc, data in (
        (4, b"\x00"),
        (2, b"\x00"),
        (0xF6, b"\x00"),
        (0x24, b"a"),
        (5, b"a"),
        (-1, b""),
        (256, b""),
    ):
        with pytest.raises(DecodeError):
            decode_short_message(dc, data)
    with pytest.raises(DecodeError):
        decode_short_message(1, b"\xff")
    with pytest.raises(DecodeError):
        decode_short_message(0, b"\x80")


# --- fuzz: arbitrary PDUs give text, None or DecodeError ---------------------------------------------

octet = st.integers(0, 255)
tlv_lists = st.lists(
    st.one_of(
        st.builds(Tlv, st.just(int(Tag.SAR_MSG_REF_NUM)), st.binary(max_size=3)),
        st.builds(Tlv, st.just(int(Tag.SAR_TOTAL_SEGMENTS)), st.binary(max_size=2)),
        st.builds(Tlv, st.just(int(Tag.SAR_SEGMENT_SEQNUM)), st.binary(max_size=2)),
        st.builds(Tlv, st.just(int(Tag.MESSAGE_PAYLOAD)), st.binary(max_size=40)),
        st.builds(Tlv, st.integers(0, 0xFFFF), st.binary(max_size=4)),
    ),
    max_size=5,
).map(tuple)
short_messages = st.one_of(
    st.binary(max_size=60),
    st.builds(
        lambda ie, tail: encode_udh([ie]) + tail,
        st.one_of(
            st.builds(Concat8, octet, st.integers(0, 3), st.integers(0, 3)),
            st.builds(Concat16, octet, st.integers(0, 3), st.integers(0, 3)),
        ),
        st.binary(max_size=20),
    ),
)
pdus = st.sampled_from([SubmitSm, DeliverSm]).flatmap(
    lambda cls: st.builds(
        cls,
        source_addr=st.sampled_from(["1", "2"]),
        destination_addr=st.just("9"),
        esm_class=st.sampled_from([0, UDHI, 0x04, 0xFF]),
        data_coding=st.sampled_from([0, 1, 2, 3, 4, 6, 7, 8, 0x10, 0x18, 0xF0, 0xF6, 0x24, 300]),
        short_message=short_messages,
        optional_parameters=tlv_lists,
    )
)


@settings(max_examples=300)
@given(st.lists(pdus, max_size=12), st.floats(0, 100))
def test_reassembler_fuzz(batch: list[SubmitSm | DeliverSm], step: float) -> None:
    reassembler = Reassembler(5.0, max_pending=3)
    now = 0.0
    for pdu in batch:
        try:
            result = reassembler.add(pdu, now)
        except DecodeError:
            continue
        assert result is None or isinstance(result, str)
        now += step
        reassembler.expire(now)
        assert len(reassembler) <= 3
        deadline = reassembler.next_deadline()
        assert deadline is None or deadline > now


@given(st.text(alphabet=GSM7_CHARS, min_size=161, max_size=700), st.integers(0, 255))
def test_udh_segments_fit_one_short_message(text: str, reference: int) -> None:
    segments = split_udh(text, reference=reference)
    for seq, seg in enumerate(segments, start=1):
        assert isinstance(seg, Segment)
        ies, header_length = decode_udh(seg.short_message)
        assert ies == (Concat8(reference, len(segments), seq),)
        assert len(seg.short_message) - header_length <= 153
