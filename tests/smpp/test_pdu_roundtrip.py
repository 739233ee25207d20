"""Hypothesis round trips of every SMPP 3.4 PDU (protocols/smpp/pdu.py, tlv.py).

The field limits below are written from the SMPP 3.4 spec (sections 4.1-4.12 and the TLV table of
5.3.2), not read from the codec, so a codec limit that disagrees with the spec shows up here.

Properties: ``decode(encode(x)) == x`` and ``encode(decode(encode(x))) == encode(x)`` for every PDU
within the limits, and ``encode(decode(b)) == b`` for any byte string ``b`` that decodes at all.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError
from protocols.smpp import pdu as p
from protocols.smpp.pdu import HEADER_LENGTH, Pdu, decode_pdu, encode_pdu
from protocols.smpp.tlv import Tag, Tlv, decode_tlvs, encode_tlvs, find_tlv, tlvs

# --- field strategies -----------------------------------------------------------------------------

U8 = st.integers(0, 0xFF)
U32 = st.integers(0, 0xFFFF_FFFF)
LATIN1_NO_NUL = st.characters(min_codepoint=1, max_codepoint=0xFF)


def cstr(size: int) -> st.SearchStrategy[str]:
    """A C-Octet string of a field whose spec size is ``size`` octets including the NUL."""
    return st.text(LATIN1_NO_NUL, max_size=size - 1)


SHORT_MESSAGE = st.binary(max_size=254)

# SMPP 3.4 section 5.3.2 (Table 5-18): name -> (kind, min, max) of the value octets
STANDARD_TLVS: dict[str, tuple[str, int, int]] = {
    "dest_addr_subunit": ("int", 1, 1),
    "dest_network_type": ("int", 1, 1),
    "dest_bearer_type": ("int", 1, 1),
    "dest_telematics_id": ("int", 2, 2),
    "source_addr_subunit": ("int", 1, 1),
    "source_network_type": ("int", 1, 1),
    "source_bearer_type": ("int", 1, 1),
    "source_telematics_id": ("int", 1, 1),
    "qos_time_to_live": ("int", 4, 4),
    "payload_type": ("int", 1, 1),
    "additional_status_info_text": ("cstr", 1, 256),
    "receipted_message_id": ("cstr", 1, 65),
    "ms_msg_wait_facilities": ("int", 1, 1),
    "privacy_indicator": ("int", 1, 1),
    "source_subaddress": ("octets", 2, 23),
    "dest_subaddress": ("octets", 2, 23),
    "user_message_reference": ("int", 2, 2),
    "user_response_code": ("int", 1, 1),
    "source_port": ("int", 2, 2),
    "destination_port": ("int", 2, 2),
    "sar_msg_ref_num": ("int", 2, 2),
    "language_indicator": ("int", 1, 1),
    "sar_total_segments": ("int", 1, 1),
    "sar_segment_seqnum": ("int", 1, 1),
    "sc_interface_version": ("int", 1, 1),
    "callback_num_pres_ind": ("int", 1, 1),
    "callback_num_atag": ("octets", 0, 65),
    "number_of_messages": ("int", 1, 1),
    "callback_num": ("octets", 4, 19),
    "dpf_result": ("int", 1, 1),
    "set_dpf": ("int", 1, 1),
    "ms_availability_status": ("int", 1, 1),
    "network_error_code": ("octets", 3, 3),
    "message_payload": ("octets", 0, 65535),
    "delivery_failure_reason": ("int", 1, 1),
    "more_messages_to_send": ("int", 1, 1),
    "message_state": ("int", 1, 1),
    "ussd_service_op": ("int", 1, 1),
    "display_time": ("int", 1, 1),
    "sms_signal": ("int", 2, 2),
    "ms_validity": ("int", 1, 1),
    "alert_on_message_delivery": ("empty", 0, 0),
    "its_reply_type": ("int", 1, 1),
    "its_session_info": ("octets", 2, 2),
}


def tlv_value(name: str) -> st.SearchStrategy[Any]:
    kind, lo, hi = STANDARD_TLVS[name]
    if kind == "int":
        return st.integers(0, (1 << (8 * lo)) - 1)
    if kind == "cstr":
        return st.text(LATIN1_NO_NUL, min_size=lo - 1, max_size=hi - 1)
    if kind == "octets":
        return st.binary(min_size=lo, max_size=min(hi, 600))  # message_payload: keep examples small
    return st.none()


STANDARD_TLV = st.sampled_from(sorted(STANDARD_TLVS)).flatmap(
    lambda name: tlv_value(name).map(lambda value: Tlv.make(name, value))
)
VENDOR_TLV = st.builds(Tlv, st.integers(0x1400, 0x3FFF), st.binary(max_size=300))
TLVS = st.lists(st.one_of(STANDARD_TLV, VENDOR_TLV), max_size=5).map(tuple)

DEST_ADDRESS = st.one_of(
    st.builds(p.DestAddress, U8, U8, cstr(21)),
    st.builds(p.DistributionList, cstr(21)),
)
UNSUCCESS_SME = st.builds(p.UnsuccessSme, U8, U8, cstr(21), U32)

_SM_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "service_type": cstr(6),
    "source_addr_ton": U8,
    "source_addr_npi": U8,
    "source_addr": cstr(21),
    "dest_addr_ton": U8,
    "dest_addr_npi": U8,
    "destination_addr": cstr(21),
    "esm_class": U8,
    "protocol_id": U8,
    "priority_flag": U8,
    "schedule_delivery_time": cstr(17),
    "validity_period": cstr(17),
    "registered_delivery": U8,
    "replace_if_present_flag": U8,
    "data_coding": U8,
    "sm_default_msg_id": U8,
    "short_message": SHORT_MESSAGE,
    "optional_parameters": TLVS,
}
_BIND_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "system_id": cstr(16),
    "password": cstr(9),
    "system_type": cstr(13),
    "interface_version": U8,
    "addr_ton": U8,
    "addr_npi": U8,
    "address_range": cstr(41),
}
_BIND_RESP_FIELDS = {"system_id": cstr(16), "optional_parameters": TLVS}
_MESSAGE_ID_RESP_FIELDS = {"message_id": cstr(65), "optional_parameters": TLVS}

# every PDU class of SMPP 3.4 with its body fields (sections 4.1-4.12)
BODY_FIELDS: dict[type[Pdu], dict[str, st.SearchStrategy[Any]]] = {
    p.BindTransmitter: _BIND_FIELDS,
    p.BindReceiver: _BIND_FIELDS,
    p.BindTransceiver: _BIND_FIELDS,
    p.BindTransmitterResp: _BIND_RESP_FIELDS,
    p.BindReceiverResp: _BIND_RESP_FIELDS,
    p.BindTransceiverResp: _BIND_RESP_FIELDS,
    p.Outbind: {"system_id": cstr(16), "password": cstr(9)},
    p.Unbind: {},
    p.UnbindResp: {},
    p.GenericNack: {},
    p.EnquireLink: {},
    p.EnquireLinkResp: {},
    p.SubmitSm: _SM_FIELDS,
    p.SubmitSmResp: _MESSAGE_ID_RESP_FIELDS,
    p.DeliverSm: _SM_FIELDS,
    p.DeliverSmResp: _MESSAGE_ID_RESP_FIELDS,
    p.SubmitMulti: {
        "service_type": cstr(6),
        "source_addr_ton": U8,
        "source_addr_npi": U8,
        "source_addr": cstr(21),
        "dest_addresses": st.lists(DEST_ADDRESS, min_size=1, max_size=12).map(tuple),
        "esm_class": U8,
        "protocol_id": U8,
        "priority_flag": U8,
        "schedule_delivery_time": cstr(17),
        "validity_period": cstr(17),
        "registered_delivery": U8,
        "replace_if_present_flag": U8,
        "data_coding": U8,
        "sm_default_msg_id": U8,
        "short_message": SHORT_MESSAGE,
        "optional_parameters": TLVS,
    },
    p.SubmitMultiResp: {
        "message_id": cstr(65),
        "unsuccess_smes": st.lists(UNSUCCESS_SME, max_size=8).map(tuple),
        "optional_parameters": TLVS,
    },
    p.DataSm: {
        "service_type": cstr(6),
        "source_addr_ton": U8,
        "source_addr_npi": U8,
        "source_addr": cstr(65),
        "dest_addr_ton": U8,
        "dest_addr_npi": U8,
        "destination_addr": cstr(65),
        "esm_class": U8,
        "registered_delivery": U8,
        "data_coding": U8,
        "optional_parameters": TLVS,
    },
    p.DataSmResp: _MESSAGE_ID_RESP_FIELDS,
    p.QuerySm: {
        "message_id": cstr(65),
        "source_addr_ton": U8,
        "source_addr_npi": U8,
        "source_addr": cstr(21),
    },
    p.QuerySmResp: {
        "message_id": cstr(65),
        "final_date": cstr(17),
        "message_state": U8,
        "error_code": U8,
        "optional_parameters": TLVS,
    },
    p.CancelSm: {
        "service_type": cstr(6),
        "message_id": cstr(65),
        "source_addr_ton": U8,
        "source_addr_npi": U8,
        "source_addr": cstr(21),
        "dest_addr_ton": U8,
        "dest_addr_npi": U8,
        "destination_addr": cstr(21),
    },
    p.CancelSmResp: {},
    p.ReplaceSm: {
        "message_id": cstr(65),
        "source_addr_ton": U8,
        "source_addr_npi": U8,
        "source_addr": cstr(21),
        "schedule_delivery_time": cstr(17),
        "validity_period": cstr(17),
        "registered_delivery": U8,
        "sm_default_msg_id": U8,
        "short_message": SHORT_MESSAGE,
    },
    p.ReplaceSmResp: {},
    p.AlertNotification: {
        "source_addr_ton": U8,
        "source_addr_npi": U8,
        "source_addr": cstr(65),
        "esme_addr_ton": U8,
        "esme_addr_npi": U8,
        "esme_addr": cstr(65),
        "optional_parameters": TLVS,
    },
}

# responses whose body may be absent when command_status != 0 (section 4.4.2): first field None
ABSENT_BODY_FIELD: dict[type[Pdu], str] = {
    p.BindTransmitterResp: "system_id",
    p.BindReceiverResp: "system_id",
    p.BindTransceiverResp: "system_id",
    p.SubmitSmResp: "message_id",
    p.DeliverSmResp: "message_id",
    p.SubmitMultiResp: "message_id",
    p.DataSmResp: "message_id",
    p.QuerySmResp: "message_id",
}


def pdu_of(cls: type[Pdu]) -> st.SearchStrategy[Pdu]:
    full = st.builds(cls, sequence_number=U32, command_status=U32, **BODY_FIELDS[cls])
    if cls not in ABSENT_BODY_FIELD:
        return full
    absent = st.builds(
        cls,
        sequence_number=U32,
        command_status=st.integers(1, 0xFFFF_FFFF),
        **{ABSENT_BODY_FIELD[cls]: st.none()},
    )
    return st.one_of(full, absent)


ALL_CLASSES = list(BODY_FIELDS)
ANY_PDU: st.SearchStrategy[Pdu] = st.one_of([pdu_of(cls) for cls in ALL_CLASSES])


def test_strategies_cover_every_pdu_class_and_field() -> None:
    assert set(ALL_CLASSES) == set(p._ALL)
    for cls, body in BODY_FIELDS.items():
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        assert names[:2] == ["sequence_number", "command_status"]
        assert set(body) == set(names[2:]), cls.__name__


def test_standard_tlv_table_covers_every_tag() -> None:
    assert set(STANDARD_TLVS) == {t.name.lower() for t in Tag}


# --- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
@given(data=st.data())
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_roundtrip_every_class(cls: type[Pdu], data: st.DataObject) -> None:
    pdu = data.draw(pdu_of(cls))
    wire = encode_pdu(pdu)
    assert int.from_bytes(wire[:4], "big") == len(wire)
    assert int.from_bytes(wire[4:8], "big") == cls.command_id
    assert int.from_bytes(wire[8:12], "big") == pdu.command_status
    assert int.from_bytes(wire[12:16], "big") == pdu.sequence_number
    decoded = decode_pdu(wire)
    assert type(decoded) is cls
    assert decoded == pdu
    assert encode_pdu(decoded) == wire


@given(ANY_PDU, U32)
@settings(deadline=None)
def test_sequence_number_override_only_changes_the_header(pdu: Pdu, seq: int) -> None:
    wire = encode_pdu(pdu, sequence_number=seq)
    assert wire[HEADER_LENGTH:] == encode_pdu(pdu)[HEADER_LENGTH:]
    assert decode_pdu(wire).sequence_number == seq


@given(st.sampled_from(sorted(STANDARD_TLVS)).flatmap(lambda n: st.tuples(st.just(n), tlv_value(n))))
def test_standard_tlv_make_and_decoded(named: tuple[str, Any]) -> None:
    name, value = named
    tlv = Tlv.make(name, value)
    assert tlv.name == name
    assert Tlv.make(Tag[name.upper()], value) == tlv  # by tag number too
    assert tlv.decoded == value
    kind, lo, hi = STANDARD_TLVS[name]
    assert lo <= len(tlv.value) <= hi
    if kind == "cstr":
        assert tlv.value.endswith(b"\x00")
    assert decode_tlvs(encode_tlvs((tlv,)), 0) == (tlv,)


@given(TLVS, st.binary(max_size=8))
def test_tlv_stream_roundtrip(params: tuple[Tlv, ...], prefix: bytes) -> None:
    wire = prefix + encode_tlvs(params)
    assert decode_tlvs(wire, len(prefix)) == params
    for t in params:
        assert find_tlv(params, t.tag) is next(x for x in params if x.tag == t.tag)
    assert find_tlv(params, 0xFFFF) is None or any(t.tag == 0xFFFF for t in params)


def test_tlvs_helper_keeps_argument_order() -> None:
    got = tlvs(sar_msg_ref_num=7, message_payload=b"abc", ussd_service_op=0x11)
    assert [t.tag for t in got] == [0x020C, 0x0424, 0x0501]
    assert [t.value for t in got] == [b"\x00\x07", b"abc", b"\x11"]


def test_vendor_tlv_keeps_raw_bytes() -> None:
    t = Tlv.make(0x1402, bytearray(b"\x00\xff"))
    assert t == Tlv(0x1402, b"\x00\xff")
    assert t.decoded == b"\x00\xff"
    assert t.name == "unknown_0x00001402"


def test_cstring_tlv_without_terminator_is_tolerated() -> None:
    # some SMSCs omit the NUL of receipted_message_id; the raw value still re-encodes as received
    t = decode_tlvs(bytes.fromhex("001E0003616263"), 0)[0]
    assert t.decoded == "abc"
    assert encode_tlvs((t,)) == bytes.fromhex("001E0003616263")


def test_submit_multi_with_254_destinations() -> None:
    dests = tuple(p.DestAddress(1, 1, f"2547{i:08d}") for i in range(254))
    pdu = p.SubmitMulti(sequence_number=1, dest_addresses=dests, short_message=b"x")
    assert decode_pdu(encode_pdu(pdu)) == pdu


def test_submit_multi_resp_with_254_unsuccessful() -> None:
    items = tuple(p.UnsuccessSme(1, 1, f"{i}", i) for i in range(254))
    pdu = p.SubmitMultiResp(sequence_number=1, message_id="m", unsuccess_smes=items)
    assert decode_pdu(encode_pdu(pdu)) == pdu


def test_message_payload_at_its_maximum() -> None:
    pdu = p.DataSm(optional_parameters=tlvs(message_payload=b"\xaa" * 65535))
    wire = encode_pdu(pdu)
    assert len(wire) == HEADER_LENGTH + 10 + 4 + 65535
    assert decode_pdu(wire) == pdu


# --- re-encoding a decoded PDU is byte-identical, for any bytes that decode ----------------------

COMMAND_IDS = st.sampled_from(sorted(cls.command_id for cls in ALL_CLASSES))
# bodies made of C-string-like pieces, so that many of them actually decode
PIECE = st.one_of(
    st.binary(max_size=6),
    st.just(b"\x00"),
    st.text(LATIN1_NO_NUL, max_size=22).map(lambda s: s.encode("latin-1") + b"\x00"),
    st.builds(
        lambda tag, v: tag.to_bytes(2, "big") + len(v).to_bytes(2, "big") + v,
        st.integers(0, 0xFFFF),
        st.binary(max_size=4),
    ),
)
BODY = st.lists(PIECE, max_size=24).map(b"".join)


def _frame(command_id: int, status: int, seq: int, body: bytes) -> bytes:
    return (
        (HEADER_LENGTH + len(body)).to_bytes(4, "big")
        + command_id.to_bytes(4, "big")
        + status.to_bytes(4, "big")
        + seq.to_bytes(4, "big")
        + body
    )


def _reencodes_identically(data: bytes) -> bool:
    try:
        decoded = decode_pdu(data)
    except DecodeError:
        return False
    assert encode_pdu(decoded) == data
    assert decode_pdu(encode_pdu(decoded)) == decoded
    return True


@given(COMMAND_IDS, U32, U32, BODY)
@settings(max_examples=500, deadline=None)
def test_any_decodable_bytes_reencode_identically(
    command_id: int, status: int, seq: int, body: bytes
) -> None:
    _reencodes_identically(_frame(command_id, status, seq, body))


@given(ANY_PDU, st.data())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_valid_pdus_reencode_identically(pdu: Pdu, data: st.DataObject) -> None:
    wire = bytearray(encode_pdu(pdu))
    if len(wire) > HEADER_LENGTH:
        i = data.draw(st.integers(HEADER_LENGTH, len(wire) - 1))
        wire[i] = data.draw(U8)
    _reencodes_identically(bytes(wire))


def test_the_reencode_property_is_exercised() -> None:
    # a bank of hand-picked bodies that decode: the property above must not be vacuous
    samples = [
        _frame(0x80000004, 0, 1, b"\xff\xfe\x00"),
        _frame(0x80000004, 8, 1, b""),
        _frame(0x00000004, 0, 1, b"\x00" * 16 + b"\x05hello" + bytes.fromhex("14000000")),
        _frame(0x00000021, 0, 1, b"\x00\x00\x00\x00\x01\x02\x00" + b"\x00" * 10),
        _frame(0x80000021, 0, 1, b"m\x00\x01\x01\x01\x00\xff\xff\xff\xff"),
        _frame(0x00000015, 0, 1, b""),
    ]
    assert all(_reencodes_identically(s) for s in samples)
