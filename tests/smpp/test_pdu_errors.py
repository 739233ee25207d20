"""Malformed SMPP 3.4 input and misuse of the encoder (protocols/smpp/pdu.py, tlv.py).

Decoding: every fault maps to the command_status the spec answers it with (SMPP 3.4 section 5.1.3),
and ``DecodeError`` carries the command_id and sequence_number once the header could be read.
Encoding: a field outside its limit raises ``LocalProtocolError`` naming the field.
Fuzzing: for any bytes, ``decode_pdu`` returns a Pdu or raises ``DecodeError`` and nothing else
(DESIGN.md, "Errors").
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pdu_roundtrip import ANY_PDU

from protocols._fast import fast_constructor
from protocols.errors import (
    ConfigError,
    DecodeError,
    GatewayError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    TransportError,
)
from protocols.smpp import pdu as p
from protocols.smpp.constants import CommandId, CommandStatus, MessageState
from protocols.smpp.pdu import HEADER_LENGTH, Pdu, body_decoder, decode_pdu, encode_pdu
from protocols.smpp.tlv import Tag, Tlv, decode_tlvs, encode_tlvs, tlvs

S = CommandStatus


def frame(command_id: int, body: bytes, seq: int = 77, status: int = 0) -> bytes:
    return struct.pack(">IIII", HEADER_LENGTH + len(body), command_id, status, seq) + body


def refit(wire: bytes | bytearray) -> bytes:
    """Fix command_length after the body was edited."""
    out = bytearray(wire)
    out[0:4] = len(out).to_bytes(4, "big")
    return bytes(out)


def decode_error(data: bytes, status: int) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_pdu(data)
    assert info.value.status == status, str(info.value)
    return info.value


# --- header -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4, 15])
def test_shorter_than_header(size: int) -> None:
    exc = decode_error(bytes(size), S.ESME_RINVCMDLEN)
    assert exc.command_id is None
    assert exc.sequence_number is None


@pytest.mark.parametrize("declared", [0, 15, 17, 100, 0xFFFFFFFF])
def test_command_length_mismatch(declared: int) -> None:
    data = struct.pack(">IIII", declared, CommandId.ENQUIRE_LINK, 0, 9)
    exc = decode_error(data, S.ESME_RINVCMDLEN)
    assert exc.command_id == CommandId.ENQUIRE_LINK
    assert exc.sequence_number == 9


def test_command_length_shorter_than_data() -> None:
    wire = encode_pdu(p.SubmitSmResp(sequence_number=3, message_id="abc"))
    decode_error(wire + b"\x00", S.ESME_RINVCMDLEN)
    decode_error(wire[:-1], S.ESME_RINVCMDLEN)


@pytest.mark.parametrize(
    "command_id", [0x0000000A, 0x00000016, 0x80000102, 0x8000000B, 0x12345678, 0xFFFFFFFF]
)
def test_unknown_command_id(command_id: int) -> None:
    exc = decode_error(frame(command_id, b"", seq=0x01020304), S.ESME_RINVCMDID)
    assert exc.command_id == command_id
    assert exc.sequence_number == 0x01020304
    assert p.pdu_class(command_id) is None
    assert body_decoder(command_id) is None


def test_body_decoder_decodes_a_checked_pdu() -> None:
    wire = encode_pdu(p.SubmitSmResp(sequence_number=5, message_id="x"))
    decoder = body_decoder(CommandId.SUBMIT_SM_RESP)
    assert decoder is not None
    assert decoder(5, 0, wire) == p.SubmitSmResp(sequence_number=5, message_id="x")


HEADER_ONLY = [
    p.Unbind,
    p.UnbindResp,
    p.GenericNack,
    p.EnquireLink,
    p.EnquireLinkResp,
    p.CancelSmResp,
    p.ReplaceSmResp,
]


@pytest.mark.parametrize("cls", HEADER_ONLY, ids=lambda c: c.__name__)
@pytest.mark.parametrize("extra", [b"\x00", b"\x00\x00\x00\x00\x00", b"junk"])
def test_trailing_bytes_on_header_only_pdus(cls: type[Pdu], extra: bytes) -> None:
    exc = decode_error(frame(cls.command_id, extra, seq=12), S.ESME_RINVCMDLEN)
    assert exc.command_id == cls.command_id
    assert exc.sequence_number == 12


@pytest.mark.parametrize(
    "pdu",
    [
        p.BindTransmitter(system_id="a"),
        p.Outbind(system_id="a", password="b"),
        p.QuerySm(message_id="1", source_addr="2"),
        p.CancelSm(message_id="1"),
        p.ReplaceSm(message_id="1", short_message=b"x"),
    ],
    ids=lambda x: type(x).__name__,
)
def test_trailing_bytes_on_pdus_without_tlvs(pdu: Pdu) -> None:
    # SMPP 3.4 allows no optional parameters on these: anything after the body is a length error
    decode_error(refit(encode_pdu(pdu) + b"\x14\x00\x00\x00"), S.ESME_RINVCMDLEN)


# --- C-Octet strings --------------------------------------------------------------------------------

# (class, field, size including the NUL, status): SMPP 3.4 sections 4.1-4.12 and 5.1.3
CSTRING_FIELDS: list[tuple[type[Pdu], str, int, int]] = [
    *[
        (cls, field, size, status)
        for cls in (p.BindTransmitter, p.BindReceiver, p.BindTransceiver)
        for field, size, status in (
            ("system_id", 16, S.ESME_RINVSYSID),
            ("password", 9, S.ESME_RINVPASWD),
            ("system_type", 13, S.ESME_RINVSYSTYP),
            ("address_range", 41, S.ESME_RINVPARLEN),
        )
    ],
    *[
        (cls, "system_id", 16, S.ESME_RINVSYSID)
        for cls in (p.BindTransmitterResp, p.BindReceiverResp, p.BindTransceiverResp)
    ],
    (p.Outbind, "system_id", 16, S.ESME_RINVSYSID),
    (p.Outbind, "password", 9, S.ESME_RINVPASWD),
    *[
        (cls, field, size, status)
        for cls in (p.SubmitSm, p.DeliverSm)
        for field, size, status in (
            ("service_type", 6, S.ESME_RINVSERTYP),
            ("source_addr", 21, S.ESME_RINVSRCADR),
            ("destination_addr", 21, S.ESME_RINVDSTADR),
            ("schedule_delivery_time", 17, S.ESME_RINVSCHED),
            ("validity_period", 17, S.ESME_RINVEXPIRY),
        )
    ],
    *[
        (cls, "message_id", 65, S.ESME_RINVMSGID)
        for cls in (p.SubmitSmResp, p.DeliverSmResp, p.DataSmResp, p.SubmitMultiResp, p.QuerySmResp)
    ],
    (p.SubmitMulti, "service_type", 6, S.ESME_RINVSERTYP),
    (p.SubmitMulti, "source_addr", 21, S.ESME_RINVSRCADR),
    (p.SubmitMulti, "schedule_delivery_time", 17, S.ESME_RINVSCHED),
    (p.SubmitMulti, "validity_period", 17, S.ESME_RINVEXPIRY),
    (p.DataSm, "service_type", 6, S.ESME_RINVSERTYP),
    (p.DataSm, "source_addr", 65, S.ESME_RINVSRCADR),
    (p.DataSm, "destination_addr", 65, S.ESME_RINVDSTADR),
    (p.QuerySm, "message_id", 65, S.ESME_RINVMSGID),
    (p.QuerySm, "source_addr", 21, S.ESME_RINVSRCADR),
    (p.QuerySmResp, "final_date", 17, S.ESME_RINVPARLEN),
    (p.CancelSm, "service_type", 6, S.ESME_RINVSERTYP),
    (p.CancelSm, "message_id", 65, S.ESME_RINVMSGID),
    (p.CancelSm, "source_addr", 21, S.ESME_RINVSRCADR),
    (p.CancelSm, "destination_addr", 21, S.ESME_RINVDSTADR),
    (p.ReplaceSm, "message_id", 65, S.ESME_RINVMSGID),
    (p.ReplaceSm, "source_addr", 21, S.ESME_RINVSRCADR),
    (p.ReplaceSm, "schedule_delivery_time", 17, S.ESME_RINVSCHED),
    (p.ReplaceSm, "validity_period", 17, S.ESME_RINVEXPIRY),
    (p.AlertNotification, "source_addr", 65, S.ESME_RINVSRCADR),
    (p.AlertNotification, "esme_addr", 65, S.ESME_RINVDSTADR),
]
CSTRING_IDS = [f"{c.__name__}.{f}" for c, f, _, _ in CSTRING_FIELDS]
MARK = "Q"
ABSENT_BODY = {
    p.BindTransmitterResp,
    p.BindReceiverResp,
    p.BindTransceiverResp,
    p.SubmitSmResp,
    p.DeliverSmResp,
    p.SubmitMultiResp,
    p.DataSmResp,
    p.QuerySmResp,
}


def _with_field(cls: type[Pdu], field: str, value: Any) -> Pdu:
    pdu: Pdu = cls(sequence_number=0x0A0B0C0D, **{field: value})
    return pdu


@pytest.mark.parametrize(("cls", "field", "size", "status"), CSTRING_FIELDS, ids=CSTRING_IDS)
def test_field_at_its_maximum_decodes(cls: type[Pdu], field: str, size: int, status: int) -> None:
    pdu = _with_field(cls, field, MARK * (size - 1))
    assert decode_pdu(encode_pdu(pdu)) == pdu


@pytest.mark.parametrize(("cls", "field", "size", "status"), CSTRING_FIELDS, ids=CSTRING_IDS)
def test_over_long_field_on_the_wire(cls: type[Pdu], field: str, size: int, status: int) -> None:
    wire = encode_pdu(_with_field(cls, field, MARK * (size - 1)))
    marker = MARK.encode() * (size - 1) + b"\x00"
    assert wire.count(marker) == 1
    longer = refit(wire.replace(marker, MARK.encode() + marker))
    exc = decode_error(longer, status)
    assert field in str(exc)
    assert exc.command_id == cls.command_id
    assert exc.sequence_number == 0x0A0B0C0D


@pytest.mark.parametrize(("cls", "field", "size", "status"), CSTRING_FIELDS, ids=CSTRING_IDS)
def test_truncated_cstring_without_nul(cls: type[Pdu], field: str, size: int, status: int) -> None:
    wire = encode_pdu(_with_field(cls, field, MARK * 3))
    end = wire.index(MARK.encode() * 3 + b"\x00") + 3  # cut the PDU just before the field's NUL
    exc = decode_error(refit(wire[:end]), S.ESME_RINVCMDLEN)
    assert field in str(exc)
    assert "NUL" in str(exc)


@pytest.mark.parametrize(("cls", "field", "size", "status"), CSTRING_FIELDS, ids=CSTRING_IDS)
def test_encoding_over_long_field(cls: type[Pdu], field: str, size: int, status: int) -> None:
    with pytest.raises(LocalProtocolError, match=field) as info:
        encode_pdu(_with_field(cls, field, MARK * size))
    assert info.value.status == status


BAD_CSTRINGS = [
    pytest.param(cls, field, status, bad, id=f"{cls.__name__}.{field}-{bad!r}")
    for cls, field, _, status in CSTRING_FIELDS
    for bad in ("a\x00b", "\u20ac", "\U0001f600", b"bytes", 5, None)
    if not (bad is None and field in ("system_id", "message_id") and cls in ABSENT_BODY)  # None: no body
]


@pytest.mark.parametrize(("cls", "field", "status", "bad"), BAD_CSTRINGS)
def test_encoding_bad_cstring_value(cls: type[Pdu], field: str, status: int, bad: Any) -> None:
    with pytest.raises(LocalProtocolError, match=field) as info:
        encode_pdu(_with_field(cls, field, bad))
    assert info.value.status == status


def test_every_pdu_truncation_is_rejected_or_drops_whole_tlvs() -> None:
    """Cut a fully populated PDU of each class at every octet: the result is a DecodeError with a
    length status, or (only at a TLV boundary) the same PDU without the trailing TLVs."""
    params = tlvs(user_message_reference=7, receipted_message_id="abc")
    samples: list[Pdu] = [
        p.BindTransceiver(system_id="sys", password="pw", system_type="t", address_range="^1"),
        p.BindTransceiverResp(system_id="smsc", optional_parameters=tlvs(sc_interface_version=0x34)),
        p.Outbind(system_id="a", password="b"),
        p.SubmitSm(
            service_type="s",
            source_addr="1",
            destination_addr="2",
            validity_period="v",
            schedule_delivery_time="t",
            short_message=b"hey",
            optional_parameters=params,
        ),
        p.DeliverSm(source_addr="1", destination_addr="2", short_message=b"hi", optional_parameters=params),
        p.SubmitSmResp(message_id="m1", optional_parameters=params),
        p.SubmitMulti(
            source_addr="1",
            dest_addresses=(p.DestAddress(1, 1, "22"), p.DistributionList("dl")),
            short_message=b"m",
            optional_parameters=params,
        ),
        p.SubmitMultiResp(
            message_id="m", unsuccess_smes=(p.UnsuccessSme(1, 1, "9", 0x45),), optional_parameters=params
        ),
        p.DataSm(source_addr="1", destination_addr="2", optional_parameters=params),
        p.QuerySm(message_id="m", source_addr="1"),
        p.QuerySmResp(message_id="m", final_date="d", message_state=2, optional_parameters=params),
        p.CancelSm(service_type="s", message_id="m", source_addr="1", destination_addr="2"),
        p.ReplaceSm(message_id="m", source_addr="1", short_message=b"new"),
        p.AlertNotification(
            source_addr="1", esme_addr="2", optional_parameters=tlvs(ms_availability_status=1)
        ),
    ]
    for pdu in samples:
        wire = encode_pdu(pdu)
        kept = getattr(pdu, "optional_parameters", ())
        bare = dataclasses.replace(pdu, optional_parameters=()) if kept else pdu  # type: ignore[type-var]
        boundaries = {len(encode_pdu(bare))}
        for i in range(1, len(kept) + 1):
            boundaries.add(len(encode_pdu(dataclasses.replace(pdu, optional_parameters=kept[:i]))))  # type: ignore[type-var]
        for cut in range(HEADER_LENGTH, len(wire)):
            data = refit(wire[:cut])
            if cut == HEADER_LENGTH and type(pdu) in ABSENT_BODY:
                assert getattr(decode_pdu(data), dataclasses.fields(pdu)[2].name) is None  # type: ignore[arg-type]
            elif cut in boundaries:
                got = decode_pdu(data)
                assert got == dataclasses.replace(pdu, optional_parameters=got.optional_parameters)  # type: ignore[type-var, attr-defined]
                assert got.optional_parameters == kept[: len(got.optional_parameters)]  # type: ignore[attr-defined]
            else:
                with pytest.raises(DecodeError) as info:
                    decode_pdu(data)
                assert info.value.status in (S.ESME_RINVCMDLEN, S.ESME_RINVMSGLEN, S.ESME_RINVOPTPARSTREAM), (
                    type(pdu).__name__,
                    cut,
                )
                assert info.value.command_id == pdu.command_id


# --- short_message ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls", [p.SubmitSm, p.DeliverSm, p.ReplaceSm, p.SubmitMulti], ids=lambda c: c.__name__
)
@pytest.mark.parametrize("extra", [1, 200])
def test_sm_length_runs_past_the_pdu(cls: type[Pdu], extra: int) -> None:
    wire = bytearray(encode_pdu(cls(sequence_number=4, short_message=b"abc")))
    i = wire.index(b"\x03abc")
    wire[i] = 3 + extra
    exc = decode_error(bytes(wire), S.ESME_RINVMSGLEN)
    assert exc.command_id == cls.command_id
    assert exc.sequence_number == 4


def test_sm_length_into_tlvs_is_a_tlv_fault_not_a_crash() -> None:
    # a too-small sm_length makes the rest of the message parse as TLVs
    wire = bytearray(encode_pdu(p.SubmitSm(short_message=b"abcdef")))
    wire[wire.index(b"\x06abcdef")] = 1
    decode_error(bytes(wire), S.ESME_RINVOPTPARSTREAM)


@pytest.mark.parametrize(
    "cls", [p.SubmitSm, p.DeliverSm, p.ReplaceSm, p.SubmitMulti], ids=lambda c: c.__name__
)
def test_pdu_ends_before_sm_length(cls: type[Pdu]) -> None:
    wire = encode_pdu(cls(short_message=b""))
    exc = decode_error(refit(wire[:-1]), S.ESME_RINVCMDLEN)
    assert "sm_length" in str(exc)


@pytest.mark.parametrize(
    "cls", [p.SubmitSm, p.DeliverSm, p.ReplaceSm, p.SubmitMulti], ids=lambda c: c.__name__
)
def test_encoding_short_message_over_254(cls: type[Pdu]) -> None:
    assert decode_pdu(encode_pdu(cls(short_message=b"x" * 254))).short_message == b"x" * 254  # type: ignore[attr-defined]
    with pytest.raises(LocalProtocolError, match="short_message") as info:
        encode_pdu(cls(short_message=b"x" * 255))
    assert info.value.status == S.ESME_RINVMSGLEN


@pytest.mark.parametrize("cls", [p.SubmitSm, p.DeliverSm, p.ReplaceSm], ids=lambda c: c.__name__)
@pytest.mark.parametrize("bad", ["text", None, [1, 2], 5])
def test_encoding_short_message_not_bytes(cls: type[Pdu], bad: Any) -> None:
    with pytest.raises(LocalProtocolError, match="short_message"):
        encode_pdu(cls(short_message=bad))


def test_short_message_bytearray_is_accepted() -> None:
    wire = encode_pdu(p.ReplaceSm(short_message=bytearray(b"ab")))
    assert decode_pdu(wire) == p.ReplaceSm(short_message=b"ab")
    assert encode_pdu(p.SubmitSm(short_message=bytearray(b"ab"))) == encode_pdu(
        p.SubmitSm(short_message=b"ab")
    )


# --- integers -----------------------------------------------------------------------------------------

INT_FIELDS = [
    (p.BindTransmitter, "interface_version"),
    (p.BindReceiver, "addr_ton"),
    (p.SubmitSm, "source_addr_ton"),
    (p.SubmitSm, "esm_class"),
    (p.SubmitSm, "sm_default_msg_id"),
    (p.DeliverSm, "data_coding"),
    (p.DeliverSm, "priority_flag"),
    (p.SubmitMulti, "registered_delivery"),
    (p.DataSm, "data_coding"),
    (p.QuerySmResp, "message_state"),
    (p.ReplaceSm, "sm_default_msg_id"),
    (p.AlertNotification, "esme_addr_npi"),
]


@pytest.mark.parametrize(("cls", "field"), INT_FIELDS, ids=[f"{c.__name__}.{f}" for c, f in INT_FIELDS])
@pytest.mark.parametrize("bad", [-1, 256, 1 << 40, "1", 1.0, None])
def test_encoding_int_out_of_range(cls: type[Pdu], field: str, bad: Any) -> None:
    with pytest.raises(LocalProtocolError, match=field):
        encode_pdu(cls(**{field: bad}))


@pytest.mark.parametrize(
    "header", [{"sequence_number": 1 << 32}, {"sequence_number": -1}, {"command_status": 1 << 32}]
)
def test_encoding_header_out_of_range(header: dict[str, int]) -> None:
    with pytest.raises(LocalProtocolError, match="header"):
        encode_pdu(p.EnquireLink(**header))
    with pytest.raises(LocalProtocolError, match="header"):
        encode_pdu(p.SubmitSm(**header))


def test_encoding_sequence_override_out_of_range() -> None:
    with pytest.raises(LocalProtocolError):
        encode_pdu(p.EnquireLink(), sequence_number=1 << 32)


# --- absent response bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pdu",
    [
        p.SubmitSmResp(command_status=0x45, message_id=None, optional_parameters=tlvs(dpf_result=1)),
        p.DataSmResp(command_status=0x45, message_id=None, optional_parameters=(Tlv(0x1400, b""),)),
        p.QuerySmResp(command_status=0x67, message_id=None, final_date="x"),
        p.QuerySmResp(command_status=0x67, message_id=None, message_state=2),
        p.SubmitMultiResp(command_status=8, message_id=None, unsuccess_smes=(p.UnsuccessSme(),)),
        p.BindTransmitterResp(
            command_status=0x0D, system_id=None, optional_parameters=tlvs(sc_interface_version=0x34)
        ),
    ],
    ids=lambda x: type(x).__name__,
)
def test_encoding_absent_body_with_other_fields_set(pdu: Pdu) -> None:
    # the fields would silently vanish: the decoder could never give them back
    with pytest.raises(LocalProtocolError, match="None"):
        encode_pdu(pdu)


def test_absent_body_encodes_header_only() -> None:
    wire = encode_pdu(p.SubmitMultiResp(sequence_number=2, command_status=8, message_id=None))
    assert wire == frame(CommandId.SUBMIT_MULTI_RESP, b"", seq=2, status=8)


@pytest.mark.parametrize(
    "cls", [p.Outbind, p.QuerySm, p.CancelSm, p.ReplaceSm, p.SubmitSm], ids=lambda c: c.__name__
)
def test_empty_body_of_a_request_is_a_length_error(cls: type[Pdu]) -> None:
    # only responses may leave their body out
    exc = decode_error(frame(cls.command_id, b"", seq=3), S.ESME_RINVCMDLEN)
    assert exc.command_id == cls.command_id


def test_submit_sm_resp_message_id_with_nul_is_refused() -> None:
    for bad in ("a\x00b", "\x00"):
        with pytest.raises(LocalProtocolError, match="message_id"):
            encode_pdu(p.SubmitSmResp(message_id=bad))


# --- submit_multi lists (section 4.5) ----------------------------------------------------------------


def _multi(*dests: p.DestAddress | p.DistributionList) -> bytearray:
    return bytearray(encode_pdu(p.SubmitMulti(sequence_number=6, source_addr="SRC", dest_addresses=dests)))


@pytest.mark.parametrize("flag", [0, 3, 0x80, 0xFF])
def test_bad_dest_flag(flag: int) -> None:
    wire = _multi(p.DestAddress(1, 1, "QQQ"))
    i = wire.index(b"\x01\x01\x01QQQ\x00")
    wire[i] = flag
    exc = decode_error(bytes(wire), S.ESME_RINVDESTFLAG)
    assert exc.command_id == CommandId.SUBMIT_MULTI
    assert exc.sequence_number == 6


@pytest.mark.parametrize("count", [0, 255])
def test_bad_number_of_dests(count: int) -> None:
    wire = _multi(p.DistributionList("QQQ"))
    i = wire.index(b"\x02QQQ\x00") - 1
    assert wire[i] == 1
    wire[i] = count
    decode_error(bytes(wire), S.ESME_RINVNUMDESTS)


def test_pdu_ends_before_number_of_dests() -> None:
    wire = _multi(p.DistributionList("QQQ"))
    cut = wire.index(b"SRC\x00") + 4
    exc = decode_error(refit(wire[:cut]), S.ESME_RINVCMDLEN)
    assert "number_of_dests" in str(exc)


def test_pdu_ends_inside_the_destination_list() -> None:
    wire = _multi(p.DistributionList("QQQ"))
    i = wire.index(b"\x02QQQ\x00")
    wire[i - 1] = 2  # announce two destinations, give one
    exc = decode_error(refit(wire[: i + 5]), S.ESME_RINVCMDLEN)
    assert "destination list" in str(exc)


@pytest.mark.parametrize("keep", [1, 2])
def test_pdu_ends_inside_a_destination_address(keep: int) -> None:
    wire = _multi(p.DestAddress(1, 1, "QQQ"))
    i = wire.index(b"\x01\x01\x01QQQ\x00")
    exc = decode_error(refit(wire[: i + keep]), S.ESME_RINVCMDLEN)
    assert "destination address" in str(exc)


def test_over_long_dest_address_and_dl_name_on_the_wire() -> None:
    for dest, marker, status in (
        (p.DestAddress(1, 1, MARK * 20), b"Q" * 20 + b"\x00", S.ESME_RINVDSTADR),
        (p.DistributionList(MARK * 20), b"Q" * 20 + b"\x00", S.ESME_RINVDLNAME),
    ):
        wire = bytes(_multi(dest))
        assert decode_pdu(wire).dest_addresses == (dest,)  # type: ignore[attr-defined]
        decode_error(refit(wire.replace(marker, b"Q" + marker)), status)


@pytest.mark.parametrize("count", [0, 255])
def test_encoding_number_of_dests_out_of_range(count: int) -> None:
    with pytest.raises(LocalProtocolError) as info:
        encode_pdu(p.SubmitMulti(dest_addresses=(p.DestAddress(),) * count))
    assert info.value.status == S.ESME_RINVNUMDESTS


@pytest.mark.parametrize(
    ("dest", "match", "status"),
    [
        (p.DestAddress(1, 1, "Q" * 21), "destination_addr", S.ESME_RINVDSTADR),
        (p.DestAddress(1, 1, "\u20ac"), "destination_addr", S.ESME_RINVDSTADR),
        (p.DistributionList("Q" * 21), "dl_name", S.ESME_RINVDLNAME),
        (p.DistributionList(None), "dl_name", S.ESME_RINVDLNAME),  # type: ignore[arg-type]
        (p.DestAddress(256, 1, "1"), "dest_addr_ton", 0),
        (p.DestAddress(1, -1, "1"), "dest_addr_npi", 0),
        (p.DestAddress("1", 1, "1"), "dest_addr_ton", 0),  # type: ignore[arg-type]
        ("254700000000", "dest_addresses", S.ESME_RINVDESTFLAG),
        (p.UnsuccessSme(), "dest_addresses", S.ESME_RINVDESTFLAG),
    ],
)
def test_encoding_bad_destination(dest: Any, match: str, status: int) -> None:
    with pytest.raises(LocalProtocolError, match=match) as info:
        encode_pdu(p.SubmitMulti(dest_addresses=(p.DestAddress(), dest)))
    assert info.value.status == status


# --- submit_multi_resp unsuccess list ------------------------------------------------------------------


def _multi_resp(*items: p.UnsuccessSme) -> bytearray:
    return bytearray(encode_pdu(p.SubmitMultiResp(sequence_number=8, message_id="MID", unsuccess_smes=items)))


def test_pdu_ends_before_no_unsuccess() -> None:
    wire = _multi_resp()
    exc = decode_error(refit(wire[:-1]), S.ESME_RINVCMDLEN)
    assert "no_unsuccess" in str(exc)


@pytest.mark.parametrize("keep", [0, 1, 2, 3, 5, 6, 8])
def test_pdu_ends_inside_unsuccess_sme(keep: int) -> None:
    # layout of one entry: ton, npi, "QQ\0", 4-octet error_status_code (9 octets)
    wire = _multi_resp(p.UnsuccessSme(1, 1, "QQ", 0x45))
    start = wire.index(b"MID\x00") + 5
    exc = decode_error(refit(wire[: start + keep]), S.ESME_RINVCMDLEN)
    assert exc.command_id == CommandId.SUBMIT_MULTI_RESP


def test_no_unsuccess_255_is_refused() -> None:
    # 254 is the most the encoder writes (number_of_dests is at most 254), so 255 cannot re-encode
    item = b"\x01\x01\x00\x00\x00\x00\x45"
    decode_error(frame(CommandId.SUBMIT_MULTI_RESP, b"M\x00\xff" + item * 255), S.ESME_RINVNUMDESTS)
    ok = decode_pdu(frame(CommandId.SUBMIT_MULTI_RESP, b"M\x00\xfe" + item * 254))
    assert len(ok.unsuccess_smes) == 254  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("item", "match"),
    [
        (p.UnsuccessSme(1, 1, "1", 1 << 32), "error_status_code"),
        (p.UnsuccessSme(1, 1, "1", -1), "error_status_code"),
        (p.UnsuccessSme(1, 1, "1", "x"), "error_status_code"),  # type: ignore[arg-type]
        (p.UnsuccessSme(300, 1, "1", 0), "dest_addr_ton"),
        (p.UnsuccessSme(1, 300, "1", 0), "dest_addr_npi"),
        (p.UnsuccessSme(1, 1, "Q" * 21, 0), "destination_addr"),
    ],
)
def test_encoding_bad_unsuccess_sme(item: p.UnsuccessSme, match: str) -> None:
    with pytest.raises(LocalProtocolError, match=match):
        encode_pdu(p.SubmitMultiResp(message_id="m", unsuccess_smes=(item,)))


def test_encoding_too_many_unsuccess_smes() -> None:
    with pytest.raises(LocalProtocolError, match="254"):
        encode_pdu(p.SubmitMultiResp(message_id="m", unsuccess_smes=(p.UnsuccessSme(),) * 255))


# --- optional parameters (section 3.2.1.6, 5.3.2) ---------------------------------------------------


@pytest.mark.parametrize(
    "cls", [p.SubmitSm, p.DeliverSm, p.DataSm, p.SubmitSmResp, p.AlertNotification], ids=lambda c: c.__name__
)
@pytest.mark.parametrize(
    "tail",
    [
        b"\x14",
        b"\x14\x00",
        b"\x14\x00\x00",
        b"\x14\x00\x00\x01",
        b"\x14\x00\x00\x05abcd",
        b"\x04\x24\xff\xff" + b"x" * 100,
        b"\x02\x04\x00\x02\x00\x01" + b"\x05\x01\x00\x01",
    ],
)
def test_tlv_runs_past_the_pdu(cls: type[Pdu], tail: bytes) -> None:
    wire = encode_pdu(cls(sequence_number=21))
    exc = decode_error(refit(wire + tail), S.ESME_RINVOPTPARSTREAM)
    assert exc.command_id == cls.command_id
    assert exc.sequence_number == 21


# a standard tag with a length outside its range in the SMPP 3.4 table: ESME_RINVPARLEN
BAD_LENGTHS = [
    (Tag.USSD_SERVICE_OP, 0),
    (Tag.USSD_SERVICE_OP, 2),
    (Tag.ITS_SESSION_INFO, 1),
    (Tag.ITS_SESSION_INFO, 3),
    (Tag.USER_MESSAGE_REFERENCE, 1),
    (Tag.QOS_TIME_TO_LIVE, 2),
    (Tag.NETWORK_ERROR_CODE, 2),
    (Tag.ALERT_ON_MESSAGE_DELIVERY, 1),
    (Tag.RECEIPTED_MESSAGE_ID, 0),
    (Tag.RECEIPTED_MESSAGE_ID, 66),
    (Tag.ADDITIONAL_STATUS_INFO_TEXT, 257),
    (Tag.SOURCE_SUBADDRESS, 1),
    (Tag.DEST_SUBADDRESS, 24),
    (Tag.CALLBACK_NUM, 3),
    (Tag.CALLBACK_NUM, 20),
    (Tag.CALLBACK_NUM_ATAG, 66),
    (Tag.SC_INTERFACE_VERSION, 0),
]


@pytest.mark.parametrize(("tag", "length"), BAD_LENGTHS, ids=[f"{t.name}-{n}" for t, n in BAD_LENGTHS])
def test_standard_tlv_with_wrong_length(tag: Tag, length: int) -> None:
    wire = encode_pdu(p.DeliverSm(sequence_number=31, optional_parameters=(Tlv(0x1400, b"ok"),)))
    bad = refit(wire + struct.pack(">HH", tag, length) + b"\x31" * length)
    exc = decode_error(bad, S.ESME_RINVPARLEN)
    assert tag.name.lower() in str(exc)
    assert exc.command_id == CommandId.DELIVER_SM
    with pytest.raises(DecodeError) as info:
        decode_tlvs(struct.pack(">HH", tag, length) + b"\x31" * length, 0)
    assert info.value.status == S.ESME_RINVPARLEN


@pytest.mark.parametrize("length", [0, 1, 255, 1000])
def test_unknown_tlv_of_any_length_is_kept(length: int) -> None:
    t = Tlv(0x3FFF, b"\x5a" * length)
    wire = encode_pdu(p.DataSm(optional_parameters=(t,)))
    assert decode_pdu(wire).optional_parameters == (t,)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("no_such_tlv", 1, "unknown TLV name"),
        (0x10000, b"", "out of range"),
        (-1, b"", "out of range"),
        (0x1400, "text", "not standard"),
        (0x1400, None, "not standard"),
        ("receipted_message_id", b"abc", "str"),
        ("receipted_message_id", "\u20ac", "latin-1"),
        ("receipted_message_id", "a\x00b", "NUL"),
        ("receipted_message_id", "x" * 65, "allowed 1..65"),
        ("additional_status_info_text", "x" * 256, "allowed 1..256"),
        ("message_payload", "text", "bytes"),
        ("message_payload", b"x" * 65536, "allowed 0..65535"),
        ("network_error_code", b"\x00\x01", "allowed 3..3"),
        ("source_subaddress", b"\xa0", "allowed 2..23"),
        ("ussd_service_op", 256, "does not fit"),
        ("ussd_service_op", -1, "does not fit"),
        ("user_message_reference", 1 << 16, "does not fit"),
        ("qos_time_to_live", 1 << 32, "does not fit"),
        ("ussd_service_op", True, "int"),
        ("ussd_service_op", "2", "int"),
        ("ussd_service_op", b"\x02", "int"),
    ],
)
def test_tlv_make_refuses(name: Any, value: Any, match: str) -> None:
    with pytest.raises(LocalProtocolError, match=match):
        Tlv.make(name, value)


def test_tlv_make_by_name_is_case_insensitive_and_empty_ignores_value() -> None:
    assert Tlv.make("USSD_Service_Op", 2) == Tlv(0x0501, b"\x02")
    assert Tlv.make("alert_on_message_delivery", "ignored") == Tlv(0x130C, b"")
    assert Tlv(0x130C).decoded is None


@pytest.mark.parametrize(
    "bad",
    [
        Tlv(0x1400, b"x" * 65536),
        Tlv(0x10000, b""),
        Tlv(-1, b""),
        Tlv(0x1400, "text"),  # type: ignore[arg-type]
        "not a tlv",
        None,
    ],
)
def test_encoding_hand_built_bad_tlv(bad: Any) -> None:
    with pytest.raises(LocalProtocolError, match="optional parameters"):
        encode_tlvs((bad,))
    for pdu in (p.SubmitSm(optional_parameters=(bad,)), p.DataSm(optional_parameters=(bad,))):
        with pytest.raises(LocalProtocolError):
            encode_pdu(pdu)


# --- registries, error hierarchy, fast constructor -------------------------------------------------


def test_registries_keep_unknown_values() -> None:
    vendor = CommandStatus(0x400)
    assert vendor == 0x400
    assert vendor.name == "UNKNOWN_0x00000400"
    assert CommandStatus(0x0A) is S.ESME_RINVSRCADR
    assert Tag(0x1400).name == "UNKNOWN_0x00001400"
    assert CommandId(0x80000000) is CommandId.GENERIC_NACK
    with pytest.raises(ValueError, match="not a valid"):
        CommandStatus("ESME_ROK")


def test_message_state_is_final() -> None:
    assert not MessageState.ENROUTE.is_final
    assert not MessageState.UNKNOWN.is_final
    assert all(s.is_final for s in MessageState if s not in (MessageState.ENROUTE, MessageState.UNKNOWN))


def test_error_hierarchy_and_attributes() -> None:
    exc = DecodeError("bad", S.ESME_RINVCMDLEN, command_id=4, sequence_number=9)
    assert isinstance(exc, RemoteProtocolError)
    assert isinstance(exc, ProtocolError)
    assert isinstance(exc, GatewayError)
    assert not isinstance(exc, LocalProtocolError)
    assert (exc.status, exc.command_id, exc.sequence_number, str(exc)) == (2, 4, 9, "bad")
    bare = DecodeError("x")
    assert (bare.status, bare.command_id, bare.sequence_number) == (0, None, None)
    assert LocalProtocolError("y").status == 0
    assert issubclass(TransportError, GatewayError)
    assert not issubclass(TransportError, ProtocolError)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("bad port",), "<config>: bad port"),
        (("bad port", "gw.yaml"), "gw.yaml: bad port"),
        (("bad port", "gw.yaml", 12), "gw.yaml:12: bad port"),
        (("bad port", None, 3), "<config>:3: bad port"),
    ],
)
def test_config_error_names_file_and_line(args: tuple[Any, ...], text: str) -> None:
    exc = ConfigError(*args)
    assert str(exc) == text
    assert exc.reason == "bad port"
    assert isinstance(exc, GatewayError)


def test_fast_constructor_builds_frozen_instances_and_fills_placeholders() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Thing:
        required: int
        listed: tuple[int, ...] = dataclasses.field(default_factory=tuple)
        named: str = "n"

    make = fast_constructor(Thing)
    thing = make(1, (2,), "x")
    assert type(thing) is Thing
    assert thing == Thing(1, (2,), "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        thing.required = 3  # type: ignore[misc]


def test_fast_constructor_refuses_a_class_with_extra_slots() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, weakref_slot=True)
    class Weak:
        value: int = 0

    with pytest.raises(TypeError, match="slotted"):
        fast_constructor(Weak)


# --- fuzz: any bytes give a Pdu or a DecodeError, never anything else ------------------------------

COMMAND_IDS = [cls.command_id for cls in p._ALL]


def _decode_or_decode_error(data: bytes) -> Pdu | None:
    try:
        pdu = decode_pdu(data)
    except DecodeError as exc:
        assert isinstance(exc.status, int)
        assert exc.status != 0
        if len(data) >= HEADER_LENGTH:
            assert exc.command_id == int.from_bytes(data[4:8], "big")
            assert exc.sequence_number == int.from_bytes(data[12:16], "big")
        return None
    assert isinstance(pdu, Pdu)
    assert encode_pdu(pdu) == data
    return pdu


@given(st.binary(max_size=400))
@settings(max_examples=300)
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    _decode_or_decode_error(data)


@given(
    st.one_of(st.sampled_from(COMMAND_IDS), st.integers(0, 0xFFFFFFFF)),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=400),
)
@settings(max_examples=500)
def test_fuzz_framed_bodies(command_id: int, status: int, body: bytes) -> None:
    _decode_or_decode_error(frame(command_id, body, status=status))


MUTATION = st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete"]), st.integers(0, 10_000), st.integers(0, 255)
)


@given(ANY_PDU, st.lists(MUTATION, min_size=1, max_size=4), st.booleans())
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_mutated_valid_pdus(pdu: Pdu, mutations: list[tuple[str, int, int]], keep_length: bool) -> None:
    wire = bytearray(encode_pdu(pdu))
    for op, where, byte in mutations:
        i = HEADER_LENGTH + where % max(1, len(wire) - HEADER_LENGTH + 1)
        if op == "insert":
            wire.insert(i, byte)
        elif i >= len(wire):
            continue
        elif op == "flip":
            wire[i] ^= 1 << (byte % 8)
        elif op == "set":
            wire[i] = byte
        else:
            del wire[i]
    data = bytes(wire) if keep_length else refit(wire)
    _decode_or_decode_error(data)
