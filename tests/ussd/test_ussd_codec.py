"""protocols.ussd.codec against tests/vectors/ussd/ussd.json (PROTOCOLS.md section 2, jasmin#842, the
DTAP strings of PROTOCOLS.md 1.3, hand-assembled vendor PDUs after vumi's 6D / Mica processors) and
unit tests of every rule: op registry, its_session_info, profiles, data coding, screen limits,
service codes, from_pdu / to_submit / to_deliver.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from ussd_helpers import load_vectors

from protocols.errors import ConfigError, DecodeError, LocalProtocolError, RemoteProtocolError
from protocols.gsm import Coding
from protocols.smpp import (
    CommandStatus,
    DataSm,
    DeliverSm,
    SubmitSm,
    SubmitSmResp,
    Tag,
    Tlv,
    decode_pdu,
    encode_pdu,
)
from protocols.ussd import (
    PROFILES,
    STANDARD_OP_CODES,
    DialogueKey,
    ItsSessionInfo,
    ServiceCode,
    ServiceCodeField,
    SessionIdLocation,
    UssdMessage,
    UssdProfile,
    UssdServiceOp,
    check_screen,
    dcs_alphabet,
    decode_text,
    encode_text,
    from_pdu,
    get_profile,
    is_ussd,
    make_profile,
    parse_service_code,
    session_id_limit,
    to_deliver,
    to_submit,
)

Op = UssdServiceOp
STANDARD = get_profile("standard")
VECTORS = load_vectors()


def vector_profile(vector: dict[str, Any]) -> UssdProfile:
    return make_profile(vector["profile"], **vector.get("profile_overrides", {}))


# --- vectors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["smpp_pdus"], ids=[v["name"] for v in VECTORS["smpp_pdus"]])
def test_smpp_vectors_decode_and_reencode(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["hex"])
    pdu = decode_pdu(raw)
    assert type(pdu).__name__ == vector["pdu"]
    assert isinstance(pdu, DeliverSm | SubmitSm)
    assert encode_pdu(pdu) == raw
    profile = vector_profile(vector)
    message = from_pdu(pdu, profile)
    expect = vector["expect"]
    assert message.op == expect["op"]
    for name in (
        "msisdn",
        "text",
        "service_addr",
        "session_id",
        "sequence",
        "end",
        "service_code",
        "data_coding",
    ):
        assert getattr(message, name) == expect[name], name
    assert message.pdu is pdu
    assert message.key == DialogueKey(expect["msisdn"], expect["session_id"])
    assert is_ussd(pdu)
    if vector["reencode"]:
        build = to_deliver if isinstance(pdu, DeliverSm) else to_submit
        again = build(message, profile, sequence_number=pdu.sequence_number)
        assert encode_pdu(again) == raw


def test_the_three_protocols_md_examples_tell_op_session_seq_end() -> None:
    """PROTOCOLS.md 1.1: 'session 42, seq 0 / seq 1 / seq 2 with END bit'."""
    by_name = {v["name"]: v for v in VECTORS["smpp_pdus"]}
    got = [
        from_pdu(decode_pdu(bytes.fromhex(by_name[n]["hex"])), STANDARD)  # type: ignore[arg-type]
        for n in ("deliver_sm_pssr_ind", "submit_sm_ussr_req", "submit_sm_pssr_resp_end")
    ]
    assert [(m.op, m.session_id, m.sequence, m.end) for m in got] == [
        (Op.PSSR_IND, 42, 0, False),
        (Op.USSR_REQ, 42, 1, False),
        (Op.PSSR_RESP, 42, 2, True),
    ]


def test_jasmin_842_pdu() -> None:
    """The Thai deliver_sm Jasmin refused (ESME_ROPTPARNOTALLWD): ours decodes it."""
    by_name = {v["name"]: v for v in VECTORS["smpp_pdus"]}
    pdu = decode_pdu(bytes.fromhex(by_name["jasmin_842_thai_pssr_ind"]["hex"]))
    assert isinstance(pdu, DeliverSm)
    assert (pdu.service_type, pdu.data_coding) == ("P2", 0x0F)
    message = from_pdu(pdu, STANDARD)
    assert (message.op, message.service_code, message.text) == (Op.PSSR_IND, "*4006#", "*4006#")
    assert parse_service_code(message.service_code or "") == ServiceCode("*", "4006")


@pytest.mark.parametrize("vector", VECTORS["ussd_strings"], ids=[v["name"] for v in VECTORS["ussd_strings"]])
def test_ussd_string_vectors(vector: dict[str, Any]) -> None:
    profile = make_profile("standard", gsm7_packed=vector["packed"])
    data = bytes.fromhex(vector["hex"])
    assert decode_text(data, vector["data_coding"], profile) == vector["text"]
    if vector.get("reencode", True):
        assert encode_text(vector["text"], profile, vector["data_coding"]) == (vector["data_coding"], data)


@pytest.mark.parametrize(
    "vector", VECTORS["service_codes"], ids=[v["dialled"] for v in VECTORS["service_codes"]]
)
def test_service_code_vectors(vector: dict[str, Any]) -> None:
    code = parse_service_code(vector["dialled"])
    assert code == ServiceCode(vector["prefix"], vector["code"], tuple(vector["params"]))
    assert code.base == vector["base"]
    assert str(code) == vector["dialled"]


@pytest.mark.parametrize("garbage", VECTORS["invalid_service_codes"])
def test_service_code_garbage(garbage: str) -> None:
    with pytest.raises(DecodeError):
        parse_service_code(garbage)


def test_service_code_too_long_or_not_a_str() -> None:
    with pytest.raises(DecodeError):
        parse_service_code("*1" + "*1" * 100 + "#")
    with pytest.raises(DecodeError):
        parse_service_code(123)  # type: ignore[arg-type]


# --- op registry and its_session_info -----------------------------------------------------------


def test_service_op_values_and_unknown_values() -> None:
    assert (Op.PSSR_IND, Op.USSR_REQ, Op.PSSR_RESP, Op.USSR_CONF) == (0x01, 0x02, 0x11, 0x12)
    assert (int(Op.PSSR_RESP), int(Op.USSR_CONF)) == (17, 18)  # the hex/decimal trap of vumi PR #882
    assert Op.__members__["USER_ABORT"] is Op.__members__["RELEASE"] and int(Op.RELEASE) == 0x81
    vendor = Op(0x99)
    assert vendor == 0x99 and vendor.name == "UNKNOWN_0x99"
    with pytest.raises(ValueError):
        Op("x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "info"),
    [
        ("2A00", ItsSessionInfo(42, 0, False)),
        ("2A02", ItsSessionInfo(42, 1, False)),
        ("2A05", ItsSessionInfo(42, 2, True)),
        ("FFFF", ItsSessionInfo(255, 127, True)),
        ("0000", ItsSessionInfo(0, 0, False)),
    ],
)
def test_its_session_info(raw: str, info: ItsSessionInfo) -> None:
    assert ItsSessionInfo.unpack(bytes.fromhex(raw)) == info
    assert info.pack() == bytes.fromhex(raw)


@pytest.mark.parametrize(
    "bad", [ItsSessionInfo(256), ItsSessionInfo(-1), ItsSessionInfo(1, 128), ItsSessionInfo(1, -1)]
)
def test_its_session_info_out_of_range(bad: ItsSessionInfo) -> None:
    with pytest.raises(LocalProtocolError):
        bad.pack()


@pytest.mark.parametrize("raw", [b"", b"\x01", b"\x01\x02\x03"])
def test_its_session_info_wrong_size(raw: bytes) -> None:
    with pytest.raises(DecodeError) as err:
        ItsSessionInfo.unpack(raw)
    assert err.value.status == CommandStatus.ESME_RINVPARLEN


# --- profiles ---------------------------------------------------------------------------------------


def test_builtin_profiles() -> None:
    assert set(PROFILES) == {"standard", "6d", "mica"}
    std, six, mica = get_profile("standard"), get_profile("6d"), get_profile("mica")
    assert std.session_id_location is SessionIdLocation.ITS_SESSION_INFO and std.has_sequence
    assert six.session_id_location is SessionIdLocation.ITS_SESSION_INFO_DIALOG_ID and not six.has_sequence
    assert mica.session_id_location is SessionIdLocation.USER_MESSAGE_REFERENCE
    for p in (std, six, mica):
        assert p.service_code_field is ServiceCodeField.SHORT_MESSAGE
        assert p.service_type == "USSD"
        assert (p.gsm7_data_coding, p.ucs2_data_coding, p.max_gsm7_chars, p.max_ucs2_chars) == (0, 8, 182, 80)
    assert not std.has_release and six.has_release and mica.has_release
    assert six.wire_op(Op.RELEASE) == 0x81 and mica.canonical_op(0x81) is Op.RELEASE
    assert [session_id_limit(p.session_id_location) for p in (std, six, mica)] == [0xFF, 0x7FFF, 0xFFFF]


def test_profiles_compare_and_hash() -> None:
    assert make_profile("6d") == get_profile("6d") and hash(make_profile("6d")) == hash(get_profile("6d"))
    assert len({*PROFILES.values(), make_profile("mica")}) == 3
    assert make_profile("6d", max_ucs2_chars=70) != get_profile("6d")


def test_get_profile_unknown() -> None:
    with pytest.raises(ConfigError, match="unknown USSD profile 'nokia'"):
        get_profile("nokia")


def test_make_profile_overrides_and_merges_op_codes() -> None:
    p = make_profile("6d", "my-smsc", service_code_field="destination_addr", op_codes={"RELEASE": 0x90})
    assert p.name == "my-smsc" and p.service_code_field is ServiceCodeField.DESTINATION_ADDR
    assert p.wire_op(Op.RELEASE) == 0x90 and p.canonical_op(0x90) is Op.RELEASE
    assert p.wire_op(Op.PSSR_RESP) == 0x11
    assert p.canonical_op(0x81) is Op.RELEASE  # an unmapped raw value keeps its canonical meaning
    assert make_profile().name == "standard"
    alias = make_profile("mica", op_codes={"user_abort": 0x90})
    assert alias.op_codes["release"] == 0x90 and "user_abort" not in alias.op_codes
    # a vendor that swaps values: the table translates both ways
    swapped = make_profile("standard", op_codes={"pssr_resp": 0x17, "ussn_conf": 0x11})
    assert swapped.wire_op(Op.PSSR_RESP) == 0x17 and swapped.canonical_op(0x11) is Op.USSN_CONF


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"colour": "red"}, "unknown USSD profile setting"),
        ({"session_id_location": "imsi"}, "imsi"),
        ({"service_code_field": "udh"}, "udh"),
        ({"op_codes": {"hello": 1}}, "unknown USSD operation 'hello'"),
        ({"op_codes": {"release": 0x100}}, "must be 0..255"),
        ({"op_codes": {"release": True}}, "must be 0..255"),
        ({"op_codes": {"release": 0x11}}, "given to both"),
        ({"op_codes": [1, 2]}, "mapping"),
        ({"service_type": "TOOLONG"}, "service_type"),
        ({"service_type": 5}, "service_type"),
        ({"gsm7_data_coding": 0x08}, "not a plain GSM"),
        ({"gsm7_data_coding": 0x10}, "not a plain GSM"),
        ({"gsm7_data_coding": 300}, "0..255"),
        ({"ucs2_data_coding": 0x0F}, "not a plain UCS-2"),
        ({"ucs2_data_coding": 0x11}, "not a plain UCS-2"),
        ({"service_npi": -1}, "service_npi"),
        ({"subscriber_ton": "1"}, "subscriber_ton"),
        ({"charset": "utf8"}, "charset"),
        ({"gsm7_packed": "yes"}, "gsm7_packed"),
        ({"max_gsm7_chars": 183}, "max_gsm7_chars"),
        ({"max_gsm7_chars": 0}, "max_gsm7_chars"),
        ({"max_ucs2_chars": 81}, "max_ucs2_chars"),
        ({"max_ucs2_chars": 1.5}, "max_ucs2_chars"),
    ],
)
def test_make_profile_rejects(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_profile("standard", **overrides)


def test_profile_needs_every_standard_op() -> None:
    partial = {k: v for k, v in STANDARD_OP_CODES.items() if k != "ussn_conf"}
    with pytest.raises(ConfigError, match="lack ussn_conf"):
        UssdProfile(name="partial", op_codes=partial)
    with pytest.raises(ConfigError, match="op_codes must be a mapping"):
        UssdProfile(name="x", op_codes=[("pssr_ind", 1)])  # type: ignore[arg-type]


def test_wire_op_of_an_op_the_profile_lacks() -> None:
    with pytest.raises(LocalProtocolError, match="no op code for RELEASE"):
        STANDARD.wire_op(Op.RELEASE)
    assert STANDARD.wire_op(Op(0x99)) == 0x99  # a raw vendor value passes through
    remapped = make_profile("6d", op_codes={"release": 0x99})
    with pytest.raises(LocalProtocolError):
        remapped.wire_op(Op(0x99))  # would read back as RELEASE


# --- data coding --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dcs", "alphabet"),
    [
        (0x00, Coding.GSM7),
        (0x01, Coding.GSM7),
        (0x03, Coding.GSM7),
        (0x0F, Coding.GSM7),
        (0x10, Coding.GSM7),
        (0x2F, Coding.GSM7),
        (0x08, Coding.UCS2),
        (0x11, Coding.UCS2),
        (0x48, Coding.UCS2),
        (0x4C, Coding.GSM7),  # 01xx with the reserved alphabet 11
        (0x98, Coding.UCS2),
        (0x02, Coding.EIGHT_BIT),
        (0x04, Coding.EIGHT_BIT),
        (0x44, Coding.EIGHT_BIT),
        (0x40, Coding.GSM7),
        (0xF0, Coding.GSM7),
        (0xF4, Coding.EIGHT_BIT),
        (0x80, Coding.GSM7),  # reserved group
        (0xE0, Coding.GSM7),
    ],
)
def test_dcs_alphabet(dcs: int, alphabet: Coding) -> None:
    assert dcs_alphabet(dcs) is alphabet


def test_decode_text_normalises() -> None:
    latin = make_profile("standard", charset="latin1")
    assert decode_text(b"*123#", 0x00, STANDARD) == "*123#"
    assert decode_text(b"\x00\x02", 0x00, STANDARD) == "@$"  # GSM table
    assert decode_text(b"\x00\x02", 0x00, latin) == "\x00\x02"
    assert decode_text("Ja är".encode("latin-1"), 0x03, STANDARD) == "Ja är"  # octet > 0x7F: latin-1
    assert decode_text(b"\xe9t\xe9", 0x44, STANDARD) == "été"
    assert decode_text(b"1234567\r", 0x0F, STANDARD) == "1234567"  # CR pad of 8 septets
    assert decode_text(b"123456\r", 0x0F, STANDARD) == "123456\r"  # a real CR stays
    assert decode_text(b"", 0x00, STANDARD) == ""
    assert decode_text(b"", 0x48, STANDARD) == ""


def test_decode_text_broken_ucs2() -> None:
    with pytest.raises(DecodeError) as err:
        decode_text(b"\x04", 0x08, STANDARD)
    assert err.value.status == CommandStatus.ESME_RINVOPTPARAMVAL
    with pytest.raises(DecodeError):
        decode_text(b"\xd8\x00", 0x48, STANDARD)  # lone surrogate
    with pytest.raises(DecodeError, match="shorter than the prefix"):
        decode_text(b"\x65", 0x11, STANDARD)


def test_check_screen_chooses_the_coding() -> None:
    assert check_screen("Hello {world}", STANDARD) == 0x00
    assert check_screen("Привет", STANDARD) == 0x08
    assert check_screen("Привет", make_profile("standard", ucs2_data_coding=0x48)) == 0x48
    assert check_screen("Hello", make_profile("standard", gsm7_data_coding=0x0F)) == 0x0F
    latin = make_profile("standard", charset="latin1")
    assert check_screen("price 5€", latin) == 0x08  # € is GSM 7-bit but not latin-1
    assert check_screen("price 5€", make_profile("standard", charset="latin1", gsm7_packed=True)) == 0x00
    assert check_screen("x", STANDARD, 0x44) == 0x44


def test_screen_limits_name_the_length() -> None:
    assert check_screen("a" * 182, STANDARD) == 0
    assert check_screen("ж" * 80, STANDARD) == 8
    with pytest.raises(LocalProtocolError, match="183 GSM 7-bit characters, the limit is 182") as err:
        check_screen("a" * 183, STANDARD)
    assert err.value.status == CommandStatus.ESME_RINVMSGLEN
    assert check_screen("€" * 91, STANDARD) == 0
    with pytest.raises(LocalProtocolError, match="184 GSM 7-bit characters"):
        check_screen("€" * 92, STANDARD)  # extension characters count 2
    with pytest.raises(LocalProtocolError, match="81 UCS-2 characters, the limit is 80"):
        check_screen("ж" * 81, STANDARD)
    with pytest.raises(LocalProtocolError, match="41 GSM 7-bit characters, the limit is 40"):
        check_screen("a" * 41, make_profile("standard", max_gsm7_chars=40))
    with pytest.raises(LocalProtocolError, match="161 octets, the limit is 160"):
        check_screen("a" * 161, STANDARD, 0x04)


def test_check_screen_rejects() -> None:
    with pytest.raises(LocalProtocolError, match="is a str"):
        check_screen(b"bytes", STANDARD)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match=r"0\.\.255"):
        check_screen("x", STANDARD, 256)
    for dcs in (0x10, 0x11):
        with pytest.raises(LocalProtocolError, match="language prefix"):
            check_screen("x", STANDARD, dcs)
    with pytest.raises(LocalProtocolError, match="GSM 7-bit"):
        check_screen("Привет", STANDARD, 0x00)
    with pytest.raises(LocalProtocolError, match="latin-1"):
        check_screen("€", make_profile("standard", charset="latin1"), 0x00)


def test_encode_text() -> None:
    assert encode_text("@$", STANDARD) == (0x00, b"\x00\x02")
    assert encode_text("@$", make_profile("standard", charset="latin1")) == (0x00, b"@$")
    assert encode_text("*100#", make_profile("standard", gsm7_packed=True, gsm7_data_coding=0x0F)) == (
        0x0F,
        bytes.fromhex("AA180C3602"),
    )
    assert encode_text("Да", STANDARD) == (0x08, "Да".encode("utf-16-be"))
    assert encode_text("été", STANDARD, 0x04) == (0x04, b"\xe9t\xe9")
    with pytest.raises(LocalProtocolError, match="8-bit"):
        encode_text("Да", STANDARD, 0x04)


# --- messages -----------------------------------------------------------------------------------------


def test_message_normalises_op_and_end() -> None:
    m = UssdMessage(0x11, "1")  # type: ignore[arg-type]
    assert m.op is Op.PSSR_RESP and m.end
    assert UssdMessage(Op.RELEASE, "1").end
    assert UssdMessage(Op.PSSD_RESP, "1").end
    assert not UssdMessage(Op.USSR_REQ, "1").end
    assert UssdMessage(0x99, "1").op.name == "UNKNOWN_0x99"  # type: ignore[arg-type]
    for bad in (256, -1, "x", None, True):
        with pytest.raises(LocalProtocolError):
            UssdMessage(bad, "1")  # type: ignore[arg-type]


def test_reply() -> None:
    begin = UssdMessage(Op.PSSR_IND, "2547", "*123#", "123", 42, 0, service_code="*123#")
    screen = begin.reply("1. Buy", final=False)
    assert screen == UssdMessage(Op.USSR_REQ, "2547", "1. Buy", "123", 42, 1, False)
    answer = UssdMessage(Op.USSR_CONF, "2547", "1", "123", 42, 127)
    assert answer.reply("Done", final=True, data_coding=0x0F) == UssdMessage(
        Op.PSSR_RESP, "2547", "Done", "123", 42, 0, True, None, 0x0F
    )
    assert UssdMessage(Op.USSN_CONF, "2547", session_id=3).reply("x", final=False).sequence is None
    phase1 = UssdMessage(Op.PSSD_IND, "2547", "*100#")
    assert phase1.reply("Balance 5", final=True).op is Op.PSSD_RESP
    with pytest.raises(LocalProtocolError, match="phase 1"):
        phase1.reply("x", final=False)
    with pytest.raises(LocalProtocolError, match="nothing to reply to"):
        screen.reply("x", final=True)


def test_from_pdu_rejects() -> None:
    with pytest.raises(LocalProtocolError, match="does not carry USSD"):
        from_pdu(SubmitSmResp(), STANDARD)  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="no ussd_service_op") as err:
        from_pdu(DeliverSm(short_message=b"hi"), STANDARD)
    assert err.value.status == CommandStatus.ESME_RMISSINGOPTPARAM
    assert isinstance(err.value, RemoteProtocolError)
    bad_op = DeliverSm(optional_parameters=(Tlv(Tag.USSD_SERVICE_OP, b"\x01\x02"),))
    with pytest.raises(DecodeError, match="ussd_service_op is 2 octets"):
        from_pdu(bad_op, STANDARD)
    op = Tlv(Tag.USSD_SERVICE_OP, b"\x01")
    for profile, tag in ((STANDARD, Tag.ITS_SESSION_INFO), (get_profile("6d"), Tag.ITS_SESSION_INFO)):
        with pytest.raises(DecodeError, match="its_session_info is 3 octets"):
            from_pdu(DeliverSm(optional_parameters=(op, Tlv(tag, b"\x01\x02\x03"))), profile)
    with pytest.raises(DecodeError, match="user_message_reference is 1 octets"):
        from_pdu(
            DeliverSm(optional_parameters=(op, Tlv(Tag.USER_MESSAGE_REFERENCE, b"\x01"))), get_profile("mica")
        )


def test_from_pdu_message_payload_and_data_sm() -> None:
    op = Tlv(Tag.USSD_SERVICE_OP, b"\x12")
    payload = Tlv(Tag.MESSAGE_PAYLOAD, b"2")
    session = Tlv(Tag.ITS_SESSION_INFO, b"\x07\x04")
    deliver = DeliverSm(
        source_addr="2547", destination_addr="123", optional_parameters=(op, payload, session)
    )
    m = from_pdu(deliver, STANDARD)
    assert (m.text, m.msisdn, m.service_addr, m.session_id, m.sequence) == ("2", "2547", "123", 7, 2)
    data_mo = DataSm(source_addr="2547", destination_addr="123", optional_parameters=(op, payload))
    assert from_pdu(data_mo, STANDARD).msisdn == "2547"
    data_mt = DataSm(
        source_addr="123",
        destination_addr="2547",
        optional_parameters=(Tlv(Tag.USSD_SERVICE_OP, b"\x02"), payload),
    )
    assert from_pdu(data_mt, STANDARD).msisdn == "2547"
    assert from_pdu(data_mt, STANDARD, mobile_originated=True).msisdn == "123"
    assert from_pdu(DataSm(optional_parameters=(op,)), STANDARD).text == ""


def test_from_pdu_session_absent_or_ignored() -> None:
    op = Tlv(Tag.USSD_SERVICE_OP, b"\x12")
    umr = Tlv(Tag.USER_MESSAGE_REFERENCE, b"\x00\x09")
    its = Tlv(Tag.ITS_SESSION_INFO, b"\x00\x0b")
    assert from_pdu(DeliverSm(optional_parameters=(op, umr)), STANDARD).session_id is None
    assert from_pdu(DeliverSm(optional_parameters=(op, its)), get_profile("mica")).session_id is None
    assert from_pdu(DeliverSm(optional_parameters=(op,)), get_profile("6d")).session_id is None
    six = from_pdu(DeliverSm(optional_parameters=(op, its)), get_profile("6d"))
    assert (six.session_id, six.sequence, six.end) == (5, None, True)


def test_is_ussd() -> None:
    assert not is_ussd(DeliverSm(short_message=b"plain SMS"))
    assert not is_ussd(SubmitSmResp())
    assert is_ussd(DataSm(optional_parameters=(Tlv(Tag.USSD_SERVICE_OP, b"\x02"),)))


def test_to_submit_and_to_deliver_check_direction() -> None:
    for op in (Op.PSSR_IND, Op.USSR_CONF, Op.USSN_CONF, Op.PSSD_IND):
        with pytest.raises(LocalProtocolError, match="travels from the handset"):
            to_submit(UssdMessage(op, "1"), STANDARD)
    for op in (Op.USSR_REQ, Op.USSN_REQ, Op.PSSR_RESP, Op.PSSD_RESP):
        with pytest.raises(LocalProtocolError, match="travels to the handset"):
            to_deliver(UssdMessage(op, "1"), STANDARD)
    six = get_profile("6d")
    assert to_submit(UssdMessage(Op.RELEASE, "1"), six).optional_parameters == (
        Tlv(Tag.USSD_SERVICE_OP, b"\x81"),
    )
    assert to_deliver(UssdMessage(Op.RELEASE, "1"), six).optional_parameters[0].value == b"\x81"


def test_to_submit_fields() -> None:
    message = UssdMessage(Op.USSR_REQ, "254700000000", "Menu", "123", 9, 3)
    extra = Tlv(0x1400, b"vendor")
    pdu = to_submit(message, STANDARD, "555", sequence_number=77, registered_delivery=1, extra_tlvs=(extra,))
    assert (pdu.sequence_number, pdu.source_addr, pdu.registered_delivery) == (77, "555", 1)
    assert (pdu.dest_addr_ton, pdu.dest_addr_npi, pdu.source_addr_ton, pdu.source_addr_npi) == (1, 1, 0, 0)
    assert pdu.optional_parameters == (
        Tlv(Tag.USSD_SERVICE_OP, b"\x02"),
        Tlv(Tag.ITS_SESSION_INFO, b"\x09\x06"),
        extra,
    )
    assert to_submit(replace(message, session_id=None), STANDARD).optional_parameters == (
        Tlv(Tag.USSD_SERVICE_OP, b"\x02"),
    )
    # 6D: the reply echoes the dialog id, OR-ed with 1 to close (vumi sixdee.py)
    end = UssdMessage(Op.PSSR_RESP, "2547", "Bye", "123", 0x1234)
    assert to_submit(end, get_profile("6d")).optional_parameters[1] == Tlv(Tag.ITS_SESSION_INFO, b"\x24\x69")
    assert to_submit(end, get_profile("mica")).optional_parameters[1] == Tlv(
        Tag.USER_MESSAGE_REFERENCE, b"\x12\x34"
    )


@pytest.mark.parametrize(
    ("profile", "session_id"), [("standard", 256), ("6d", 0x8000), ("mica", 0x10000), ("mica", -1)]
)
def test_session_id_out_of_range(profile: str, session_id: int) -> None:
    with pytest.raises(LocalProtocolError, match="session id must be"):
        to_submit(UssdMessage(Op.USSR_REQ, "1", "x", session_id=session_id), get_profile(profile))


def test_to_submit_screen_over_the_limit() -> None:
    with pytest.raises(LocalProtocolError, match="183 GSM 7-bit characters"):
        to_submit(UssdMessage(Op.USSR_REQ, "1", "a" * 183), STANDARD)


def test_to_deliver_service_code_placement() -> None:
    begin = UssdMessage(Op.PSSR_IND, "2547", "", "123", 1, 0, service_code="*123*500#")
    assert to_deliver(begin, STANDARD).short_message == b"*123*500#"
    dest = make_profile("6d", service_code_field="destination_addr")
    pdu = to_deliver(begin, dest)
    assert (pdu.destination_addr, pdu.short_message) == ("*123*500#", b"")
    assert to_deliver(begin, dest, "999").destination_addr == "999"
    assert to_deliver(replace(begin, service_code=None), dest).destination_addr == "123"
