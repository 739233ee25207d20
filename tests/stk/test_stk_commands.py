"""Proactive commands (TS 102 223 section 6.6, TS 31.111 6.6.9 / 6.6.11): vectors, round trips, errors.

Vectors of kind "proactive" come from tests/vectors/stk/cat.json; their expected fields were written
from the inputs that built them. The SMS-SUBMIT inside SEND SHORT MESSAGE is cross-checked with
pycrate. The tshark section (PROTOCOLS.md sections 4.2 and 4.3) dissects what we encode with
Wireshark's ``etsi_cat`` (DLT_USER via text2pcap) and ``gsm_sim`` (GSMTAP-SIM over UDP) and checks
the command types and fields it prints, and that nothing is malformed.
"""

from __future__ import annotations

import contextlib
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from test_stk_tlv import (
    addresses,
    alpha_identifiers,
    device_identities,
    durations,
    extra_tlvs,
    hexbytes,
    icons,
    items,
    octets,
    text_strings,
    ussd_strings,
    vectors_of,
)

from protocols.errors import DecodeError, LocalProtocolError
from protocols.stk import commands
from protocols.stk.commands import (
    DisplayText,
    DisplayTextQualifier,
    GetInkey,
    GetInkeyQualifier,
    GetInput,
    GetInputQualifier,
    ProactiveCommand,
    SelectItem,
    SelectItemQualifier,
    SendShortMessage,
    SendShortMessageQualifier,
    SendUssd,
    SetUpMenu,
    SetUpMenuQualifier,
    UnknownCommand,
    decode_proactive,
)
from protocols.stk.envelope import MenuSelection, SmsPpDownload
from protocols.stk.terminal import GeneralResult, TerminalProfile, TerminalProfileFeature, TerminalResponse
from protocols.stk.tlv import (
    Address,
    AlphaIdentifier,
    CommandDetails,
    ComprehensionTag,
    ComprehensionTlv,
    DeviceIdentities,
    DeviceIdentity,
    Duration,
    IconIdentifier,
    Item,
    ResponseLength,
    TextString,
    TimeUnit,
    TypeOfCommand,
    UssdString,
    decode_ber_tlv,
)

# --- vectors ------------------------------------------------------------------------------------------


def _check_fields(command: ProactiveCommand, expected: dict[str, Any]) -> None:
    assert type(command).__name__ == expected["command"]
    details = command.command_details
    assert (details.command_number, details.type_of_command, details.command_qualifier) == (
        expected["command_number"],
        expected["type_of_command"],
        expected["command_qualifier"],
    )
    devices = command.device_identities
    assert devices is not None
    assert [devices.source_device_identity, devices.destination_device_identity] == expected[
        "device_identities"
    ]
    if "text_string" in expected:
        text = command.text_string  # type: ignore[union-attr]
        assert (text.dcs, text.text) == (expected["text_string"]["dcs"], expected["text_string"]["text"])
    if "response_length" in expected:
        length = command.response_length  # type: ignore[union-attr]
        assert [length.minimum_length, length.maximum_length] == expected["response_length"]
    if "alpha_identifier" in expected:
        assert command.alpha_identifier.text == expected["alpha_identifier"]  # type: ignore[union-attr]
    if "items" in expected:
        assert [[i.identifier, i.text] for i in command.items] == expected["items"]  # type: ignore[union-attr]
    if "ussd_string" in expected:
        ussd = command.ussd_string  # type: ignore[union-attr]
        assert (ussd.dcs, ussd.text) == (expected["ussd_string"]["dcs"], expected["ussd_string"]["text"])
    if "address" in expected:
        address = command.address  # type: ignore[union-attr]
        assert address is not None
        assert [address.ton_npi, address.dialling_number] == expected["address"]
    if "sms_tpdu" in expected:
        assert command.sms_tpdu == hexbytes(expected["sms_tpdu"])  # type: ignore[union-attr]


def _build(expected: dict[str, Any]) -> ProactiveCommand:
    """The command built from the vector's inputs with our constructors (no decoding involved)."""
    common = {
        "command_number": expected["command_number"],
        "device_identities": DeviceIdentities(*expected["device_identities"]),
    }
    text = expected.get("text_string")
    text_string = None if text is None else TextString.of(text["text"], text["dcs"])
    alpha = None if "alpha_identifier" not in expected else AlphaIdentifier.of(expected["alpha_identifier"])
    menu = tuple(Item.of(i, t) for i, t in expected.get("items", ()))
    qualifier = expected["command_qualifier"]
    kind = expected["command"]
    if kind == "DisplayText":
        assert text_string is not None
        return DisplayText(text_string, DisplayTextQualifier(qualifier), **common)
    if kind == "GetInkey":
        assert text_string is not None
        return GetInkey(text_string, GetInkeyQualifier(qualifier), **common)
    if kind == "GetInput":
        assert text_string is not None
        length = ResponseLength(*expected["response_length"])
        return GetInput(text_string, length, GetInputQualifier(qualifier), **common)
    if kind == "SelectItem":
        return SelectItem(menu, alpha, SelectItemQualifier(qualifier), **common)
    if kind == "SetUpMenu":
        assert alpha is not None
        return SetUpMenu(alpha, menu, SetUpMenuQualifier(qualifier), **common)
    if kind == "SendUssd":
        ussd = UssdString.of(expected["ussd_string"]["text"], expected["ussd_string"]["dcs"])
        return SendUssd(ussd, alpha, qualifier, **common)
    assert kind == "SendShortMessage"
    return SendShortMessage(
        hexbytes(expected["sms_tpdu"]),
        alpha,
        Address(*expected["address"]),
        SendShortMessageQualifier(qualifier),
        **common,
    )


PROACTIVE = vectors_of("proactive")


def test_every_command_vector_of_the_shared_catalogue_is_here() -> None:
    names = {v["name"] for v in PROACTIVE}
    assert names == {
        "DISPLAY_TEXT",
        "DISPLAY_TEXT_7bit",
        "DISPLAY_TEXT_ucs2",
        "GET_INKEY_yesno",
        "GET_INPUT_digits",
        "SELECT_ITEM",
        "SET_UP_MENU",
        "SEND_USSD",
        "SEND_SHORT_MESSAGE",
    }
    assert all(v["source"] for v in PROACTIVE)


@pytest.mark.parametrize("vector", PROACTIVE, ids=lambda v: v["name"])
def test_decode_vector(vector: dict[str, Any]) -> None:
    data = hexbytes(vector["hex"])
    command = decode_proactive(data)
    _check_fields(command, vector["expected"])
    assert command.encode() == data
    assert type(command).decode(data) == command  # type: ignore[union-attr]


@pytest.mark.parametrize("vector", PROACTIVE, ids=lambda v: v["name"])
def test_encode_vector_from_its_inputs(vector: dict[str, Any]) -> None:
    command = _build(vector["expected"])
    assert command.encode() == hexbytes(vector["hex"])
    assert decode_proactive(command.encode()) == command


def test_send_short_message_tpdu_is_the_sms_submit_pycrate_reads() -> None:
    from pycrate_mobile.TS23040_SMS import SMS_SUBMIT

    (vector,) = [v for v in PROACTIVE if v["name"] == "SEND_SHORT_MESSAGE"]
    command = SendShortMessage.decode(hexbytes(vector["hex"]))
    submit = SMS_SUBMIT()
    submit.from_bytes(command.sms_tpdu)
    assert submit["TP_MTI"].get_val() == 1
    assert submit["TP_DA"]["Num"].decode() == "1234"
    assert submit["TP_UD"]["UD"].get_val() == b"BUY 1000"


# --- typed API ----------------------------------------------------------------------------------------


def test_display_text_defaults_wait_for_the_user() -> None:
    command = DisplayText(TextString.of("Buy 1GB for 5.00? Press OK"))
    assert command.command_qualifier == DisplayTextQualifier.WAIT_FOR_USER
    assert command.device_identities == DeviceIdentities(DeviceIdentity.UICC, DeviceIdentity.DISPLAY)
    assert command.command_details == CommandDetails(1, TypeOfCommand.DISPLAY_TEXT, 0x80)
    assert command.encode() == hexbytes(PROACTIVE[0]["hex"])


def test_display_text_optional_objects_in_spec_order() -> None:
    command = DisplayText(
        TextString.of("Hi"),
        DisplayTextQualifier.HIGH_PRIORITY,
        command_number=7,
        icon_identifier=IconIdentifier(0, 1),
        immediate_response=True,
        duration=Duration(TimeUnit.SECONDS, 60),
        extra_tlvs=(ComprehensionTlv(ComprehensionTag.TEXT_ATTRIBUTE, hexbytes("00021000")),),
    )
    data = command.encode()
    assert data == hexbytes(
        "D01E" + "8103072101" + "82028102" + "8D03044869" + "9E020001" + "AB00" + "8402013C" + "D00400021000"
    )
    assert decode_proactive(data) == command


def test_get_inkey_yes_no() -> None:
    command = GetInkey(TextString.of("Buy 1GB for 5.00?"), GetInkeyQualifier.YES_NO, duration=Duration(1, 30))
    decoded = GetInkey.decode(command.encode())
    assert decoded.command_qualifier & GetInkeyQualifier.YES_NO
    assert decoded.duration == Duration(TimeUnit.SECONDS, 30)


def test_get_input_with_default_text_and_hidden_entry() -> None:
    command = GetInput(
        TextString.of("PIN?"),
        ResponseLength(4, 8),
        GetInputQualifier.HIDDEN,
        default_text=TextString.of("0000"),
        icon_identifier=IconIdentifier(1, 2),
    )
    data = command.encode()
    assert hexbytes("97050430303030") in data
    assert decode_proactive(data) == command


def test_select_item_default_item_and_lists() -> None:
    command = SelectItem(
        (Item.of(1, "100MB"), Item.of(2, "200MB")),
        AlphaIdentifier.of("Data"),
        SelectItemQualifier.HELP_AVAILABLE,
        items_next_action_indicator=bytes((0x13, 0x12)),
        item_identifier=2,
        icon_identifier=IconIdentifier(0, 3),
        item_icon_identifier_list=hexbytes("000405"),
    )
    decoded = SelectItem.decode(command.encode())
    assert decoded == command
    assert decoded.item_identifier == 2


def test_set_up_menu_removal_with_the_null_item() -> None:
    command = SetUpMenu(AlphaIdentifier(b""), (Item(None),))
    assert command.encode() == hexbytes("D00D" + "8103012500" + "82028182" + "8500" + "8F00")
    assert decode_proactive(command.encode()) == command


def test_send_ussd_and_send_short_message_defaults_go_to_the_network() -> None:
    ussd = SendUssd(UssdString.of("*123*500#"))
    sms = SendShortMessage(hexbytes("0100049121430004084255592031303030"))
    for command in (ussd, sms):
        assert command.device_identities == DeviceIdentities(DeviceIdentity.UICC, DeviceIdentity.NETWORK)
        assert decode_proactive(command.encode()) == command


@pytest.mark.parametrize(
    "build",
    [
        lambda: SelectItem(()),
        lambda: SelectItem((Item.of(1, "a"),), item_identifier=256),
        lambda: SetUpMenu(AlphaIdentifier.of("x"), ()),
        lambda: UnknownCommand(()),
        lambda: UnknownCommand((ComprehensionTlv(ComprehensionTag.COMMAND_DETAILS, b"\x01"),)),
        lambda: DisplayText(TextString.of("x" * 250)).encode(),
    ],
)
def test_misuse_raises_local_protocol_error(build: Any) -> None:
    with pytest.raises(LocalProtocolError):
        build()


def test_unknown_command_keeps_every_tlv() -> None:
    data = hexbytes(
        "D00E" + "8103012000" + "82028103" + "0E0110" + "8400"
    )  # PLAY TONE, tone 10, empty duration
    command = decode_proactive(data)
    assert isinstance(command, UnknownCommand)
    assert command.command_details == CommandDetails(1, TypeOfCommand.PLAY_TONE, 0)
    assert command.device_identities == DeviceIdentities(DeviceIdentity.UICC, DeviceIdentity.EARPIECE)
    assert [t.tag for t in command.tlvs] == [1, 2, 0x0E, 4]
    assert command.encode() == data
    assert UnknownCommand(decode_ber_tlv(data).comprehension_tlvs()[:1]).device_identities is None
    odd = UnknownCommand((ComprehensionTlv(1, b"\x01\x99\x00"), ComprehensionTlv(2, b"\x81")))
    assert odd.device_identities is None
    assert odd.command_details.type_of_command.name == "UNKNOWN_0x99"  # type: ignore[attr-defined]


def test_objects_out_of_order_and_repeated_are_kept() -> None:
    # device identities first, an unknown object in the middle, a second text string
    data = hexbytes("D016" + "82028102" + "8103012180" + "BD0101" + "8D03044869" + "0D0304486F")
    command = decode_proactive(data)
    assert isinstance(command, DisplayText)
    assert command.text_string.text == "Hi"
    assert [t.tag for t in command.extra_tlvs] == [0x3D, 0x0D]
    assert not command.extra_tlvs[1].comprehension_required
    # canonical order on the way out, nothing lost
    assert decode_proactive(command.encode()) == command


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ("D1028100", 0x32),  # not a proactive command
        ("D00582028182" + "00", 0x32),  # malformed TLV list
        ("D00482028182", 0x36),  # no command details
        ("D0058103012180", 0x36),  # no device identities
        ("D0098103012180820281" + "02", 0x36),  # DISPLAY TEXT without text string
        ("D0098103012204820281" + "82", 0x36),  # GET INKEY without text string
        ("D00E8103012300820281828D03044869", 0x36),  # GET INPUT without response length
        ("D0098103012400820281" + "82", 0x36),  # SELECT ITEM without items
        ("D00C8103012500820281828F0101", 0x36),  # SET UP MENU without alpha identifier
        ("D00C810301250082028182850141", 0x36),  # SET UP MENU without items
        ("D0098103011300820281" + "83", 0x36),  # SEND SHORT MESSAGE without TPDU
        ("D0098103011200820281" + "83", 0x36),  # SEND USSD without USSD string
        ("D00A81020121820281028D00", 0x32),  # command details of 2 octets
        ("D0108103012400820281828F0101" + "90020102", 0x32),  # item identifier of 2 octets
        ("D00C8103012100820281028D00", 0x32),  # declared length too long
    ],
)
def test_decode_errors_carry_the_general_result(data: str, status: int) -> None:
    with pytest.raises(DecodeError) as info:
        decode_proactive(hexbytes(data))
    assert info.value.status == status


def test_typed_decode_refuses_another_command_type() -> None:
    data = DisplayText(TextString.of("x")).encode()
    with pytest.raises(DecodeError, match="GET_INKEY"):
        GetInkey.decode(data)
    unknown = UnknownCommand((CommandDetails(1, 0x20).to_tlv(),)).encode()
    with pytest.raises(DecodeError, match="DISPLAY_TEXT"):
        DisplayText.decode(unknown)


def test_module_exports() -> None:
    for name in commands.__all__:
        assert hasattr(commands, name)


# --- hypothesis round trips ---------------------------------------------------------------------------

common = {
    "command_number": octets,
    "device_identities": device_identities,
    "extra_tlvs": extra_tlvs,
}
optional_icon = st.none() | icons
optional_alpha = st.none() | alpha_identifiers
optional_bytes = st.none() | st.binary(max_size=6)
small_items = st.lists(items, min_size=1, max_size=4).map(tuple)

proactive_commands = st.one_of(
    st.builds(
        DisplayText,
        text_strings,
        st.builds(DisplayTextQualifier, octets),
        icon_identifier=optional_icon,
        immediate_response=st.booleans(),
        duration=st.none() | durations,
        **common,
    ),
    st.builds(
        GetInkey,
        text_strings,
        st.builds(GetInkeyQualifier, octets),
        icon_identifier=optional_icon,
        duration=st.none() | durations,
        **common,
    ),
    st.builds(
        GetInput,
        text_strings,
        st.builds(ResponseLength, octets, octets),
        st.builds(GetInputQualifier, octets),
        default_text=st.none() | text_strings,
        icon_identifier=optional_icon,
        **common,
    ),
    st.builds(
        SelectItem,
        small_items,
        optional_alpha,
        st.builds(SelectItemQualifier, octets),
        items_next_action_indicator=optional_bytes,
        item_identifier=st.none() | octets,
        icon_identifier=optional_icon,
        item_icon_identifier_list=optional_bytes,
        **common,
    ),
    st.builds(
        SetUpMenu,
        alpha_identifiers,
        small_items,
        st.builds(SetUpMenuQualifier, octets),
        items_next_action_indicator=optional_bytes,
        icon_identifier=optional_icon,
        item_icon_identifier_list=optional_bytes,
        **common,
    ),
    st.builds(
        SendShortMessage,
        st.binary(max_size=60),
        optional_alpha,
        st.none() | addresses,
        st.builds(SendShortMessageQualifier, octets),
        icon_identifier=optional_icon,
        **common,
    ),
    st.builds(SendUssd, ussd_strings, optional_alpha, octets, icon_identifier=optional_icon, **common),
)


def _encode_or_skip(command: ProactiveCommand) -> bytes:
    try:
        return command.encode()
    except LocalProtocolError:
        assume(False)
        raise


@given(proactive_commands)
def test_command_round_trip(command: ProactiveCommand) -> None:
    data = _encode_or_skip(command)
    decoded = decode_proactive(data)
    assert decoded == command
    assert decoded.encode() == data
    assert type(command).decode(data) == command  # type: ignore[union-attr]


@given(
    st.integers(0, 0xFF).filter(lambda t: t not in (0x12, 0x13, 0x21, 0x22, 0x23, 0x24, 0x25)),
    st.lists(
        st.builds(ComprehensionTlv, st.integers(3, 0x7FFF), st.binary(max_size=10), st.booleans()), max_size=5
    ),
)
def test_unknown_command_round_trip(type_of_command: int, tlvs: list[ComprehensionTlv]) -> None:
    command = UnknownCommand((CommandDetails(1, type_of_command).to_tlv(), *tlvs))
    decoded = decode_proactive(command.encode())
    assert decoded == command
    assert decoded.encode() == command.encode()


@given(st.binary(max_size=300))
def test_fuzz_decode_proactive(data: bytes) -> None:
    try:
        command = decode_proactive(data)
    except DecodeError:
        return
    assert decode_proactive(command.encode()) == command


@given(proactive_commands, st.data())
def test_fuzz_mutated_commands(command: ProactiveCommand, data: st.DataObject) -> None:
    encoded = bytearray(_encode_or_skip(command))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] = data.draw(octets)
    with contextlib.suppress(DecodeError):
        decode_proactive(bytes(encoded))


# --- tshark cross-check (PROTOCOLS.md sections 4.2 and 4.3) ---------------------------------------------

TSHARK = shutil.which("tshark")
TEXT2PCAP = shutil.which("text2pcap")
# not a skip: .ci/run installs tshark, and a missing validator must fail the suite, not hide
needs_tshark = pytest.mark.interop
USER_DLT_ETSI_CAT = ["-o", 'uat:user_dlts:"User 0 (DLT=147)","etsi_cat","0","","0",""']


def _tshark_fields(pcap: Path, fields: list[str], *options: str) -> list[list[str]]:
    assert TSHARK is not None and TEXT2PCAP is not None, "tshark/text2pcap missing: .ci/run installs them"
    args = [TSHARK, "-r", str(pcap), *options, "-T", "fields", "-E", "separator=|", "-E", "occurrence=a"]
    for field in fields:
        args += ["-e", field]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout
    return [line.split("|") for line in out.splitlines()]


def _etsi_cat(tmp_path: Path, payloads: list[bytes], fields: list[str]) -> list[list[str]]:
    """Dissect each payload (bare COMPREHENSION-TLVs) with etsi_cat through text2pcap -l 147."""
    assert TEXT2PCAP is not None
    dump = tmp_path / "cat.txt"
    dump.write_text("\n".join("000000 " + payload.hex(" ") + "\n" for payload in payloads), encoding="ascii")
    pcap = tmp_path / "cat.pcap"
    subprocess.run([TEXT2PCAP, "-q", "-l", "147", str(dump), str(pcap)], check=True, timeout=60)
    return _tshark_fields(pcap, [*fields, "_ws.malformed", "_ws.expert.severity"], *USER_DLT_ETSI_CAT)


def _strip_ber(data: bytes) -> bytes:
    """etsi_cat wants the bare COMPREHENSION-TLV list (PROTOCOLS.md section 4.2)."""
    return decode_ber_tlv(data).value


@needs_tshark
def test_tshark_etsi_cat_dissects_our_commands(tmp_path: Path) -> None:
    display = DisplayText(TextString.of("Buy 1GB for 5.00? Press OK"))
    display_ucs2 = DisplayText(TextString.of("Купить 1ГБ?"), command_number=2)
    display_packed = DisplayText(TextString.of("Buy 1GB for 5.00? Press OK", 0x00), command_number=3)
    inkey = GetInkey(TextString.of("Buy 1GB for 5.00?"), GetInkeyQualifier.YES_NO)
    select = SelectItem(
        (
            Item.of(1, "100MB 1.00"),
            Item.of(2, "200MB 1.80"),
            Item.of(3, "500MB 4.00"),
            Item.of(4, "1000MB 7.00"),
        ),
        AlphaIdentifier.of("Data bundles"),
    )
    get_input = GetInput(TextString.of("Enter PIN"), ResponseLength(4, 4))
    menu = SetUpMenu(AlphaIdentifier.of("Data Shop"), (Item.of(1, "Buy data"), Item.of(2, "My balance")))
    ussd = SendUssd(UssdString.of("*123*500#"), AlphaIdentifier.of("Buying..."))
    rows = _etsi_cat(
        tmp_path,
        [
            _strip_ber(c.encode())
            for c in (display, display_ucs2, display_packed, inkey, select, get_input, menu, ussd)
        ],
        [
            "etsi_cat.comp_tlv.cmd_nr",
            "etsi_cat.comp_tlv.cmd_type",
            "etsi_cat.comp_tlv.cmd_qual",
            "etsi_cat.comp_tlv.src_dev",
            "etsi_cat.comp_tlv.dst_dev",
            "etsi_cat.comp_tlv.text",
            "etsi_cat.comp_tlv.item.id",
            "etsi_cat.comp_tlv.item.string",
            "etsi_cat.comp_tlv.alpha_id.string",
        ],
    )
    assert rows == [
        ["0x01", "0x21", "0x80", "0x81", "0x02", "Buy 1GB for 5.00? Press OK", "", "", "", "", ""],
        ["0x02", "0x21", "0x80", "0x81", "0x02", "Купить 1ГБ?", "", "", "", "", ""],
        ["0x03", "0x21", "0x80", "0x81", "0x02", "Buy 1GB for 5.00? Press OK", "", "", "", "", ""],
        ["0x01", "0x22", "0x04", "0x81", "0x82", "Buy 1GB for 5.00?", "", "", "", "", ""],
        [
            "0x01",
            "0x24",
            "0x00",
            "0x81",
            "0x82",
            "",
            "1,2,3,4",
            "100MB 1.00,200MB 1.80,500MB 4.00,1000MB 7.00",
            "Data bundles",
            "",
            "",
        ],
        ["0x01", "0x23", "0x00", "0x81", "0x82", "Enter PIN", "", "", "", "", ""],
        ["0x01", "0x25", "0x00", "0x81", "0x82", "", "1,2", "Buy data,My balance", "Data Shop", "", ""],
        ["0x01", "0x12", "0x00", "0x81", "0x83", "", "", "", "Buying...", "", ""],
    ]


@needs_tshark
def test_tshark_etsi_cat_dissects_our_terminal_responses(tmp_path: Path) -> None:
    display = DisplayText(TextString.of("Buy?"))
    inkey = GetInkey(TextString.of("Buy?"), GetInkeyQualifier.YES_NO)
    select = SelectItem((Item.of(3, "500MB"),))
    responses = [
        TerminalResponse.for_command(display),
        TerminalResponse.for_command(display, GeneralResult.NO_RESPONSE_FROM_USER),
        TerminalResponse.for_command(inkey, text_string=TextString.yes_no(True)),
        TerminalResponse.for_command(select, item_identifier=3),
        TerminalResponse.for_command(select, GeneralResult.BACKWARD_MOVE_REQUESTED_BY_USER),
    ]
    rows = _etsi_cat(
        tmp_path,
        [r.encode() for r in responses],
        [
            "etsi_cat.comp_tlv.cmd_type",
            "etsi_cat.comp_tlv.src_dev",
            "etsi_cat.comp_tlv.dst_dev",
            "etsi_cat.comp_tlv.result",
            "etsi_cat.comp_tlv.text_encoding",
        ],
    )
    assert rows == [
        ["0x21", "0x82", "0x81", "0x00", "", "", ""],
        ["0x21", "0x82", "0x81", "0x12", "", "", ""],
        ["0x22", "0x82", "0x81", "0x00", "0x04", "", ""],
        ["0x24", "0x82", "0x81", "0x00", "", "", ""],
        ["0x24", "0x82", "0x81", "0x11", "", "", ""],
    ]


def _write_pcap(path: Path, frames: list[bytes], linktype: int) -> None:
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", i, 0, len(frame), len(frame)) + frame)


def _gsmtap_sim_frame(apdu: bytes) -> bytes:
    """GSMTAP v2 (type 0x04 SIM) in UDP to port 4729 in IPv4, for LINKTYPE_IPV4 (228)."""
    gsmtap = struct.pack(">BBBBHbbIBBBB", 2, 4, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0) + apdu
    udp = struct.pack(">HHHH", 40000, 4729, 8 + len(gsmtap), 0) + gsmtap
    loopback = bytes((127, 0, 0, 1))
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, loopback, loopback) + udp


@needs_tshark
def test_tshark_gsm_sim_dissects_the_whole_apdu_flow(tmp_path: Path) -> None:
    profile = TerminalProfile.from_features(
        [
            TerminalProfileFeature.PROFILE_DOWNLOAD,
            TerminalProfileFeature.SMS_PP_DATA_DOWNLOAD,
            TerminalProfileFeature.DISPLAY_TEXT,
            TerminalProfileFeature.GET_INKEY,
            TerminalProfileFeature.SELECT_ITEM,
            TerminalProfileFeature.SEND_SHORT_MESSAGE,
            TerminalProfileFeature.GET_INKEY_BINARY_CHOICE,
        ],
        length=9,
    ).encode()
    tpdu = hexbytes(
        "4405912143F57FF6521090300000003B02700000360D00000000BFFF01000000000000"
        "D0268103012180820281028D1B044275792031474220666F7220352E30303F205072657373204F4B"
    )
    envelope = SmsPpDownload(tpdu, Address(0x91, "254700000000")).encode()
    display = DisplayText(TextString.of("Buy 1GB for 5.00? Press OK"))
    response = TerminalResponse.for_command(display).encode()
    sms = SendShortMessage(
        hexbytes("0100049121430004084255592031303030"),
        AlphaIdentifier.of("Sending..."),
        Address(0x91, "254700000000"),
        command_number=2,
    ).encode()
    menu = MenuSelection(1).encode()
    apdus = [
        bytes((0x80, 0x10, 0, 0, len(profile))) + profile + b"\x90\x00",
        bytes((0x80, 0xC2, 0, 0, len(envelope))) + envelope + bytes((0x91, len(display.encode()))),
        bytes((0x80, 0x12, 0, 0, len(display.encode()))) + display.encode() + b"\x90\x00",
        bytes((0x80, 0x14, 0, 0, len(response))) + response + b"\x90\x00",
        bytes((0x80, 0x12, 0, 0, len(sms))) + sms + b"\x90\x00",
        bytes((0x80, 0xC2, 0, 0, len(menu))) + menu + b"\x90\x00",
    ]
    pcap = tmp_path / "gsmtap_sim.pcap"
    _write_pcap(pcap, [_gsmtap_sim_frame(apdu) for apdu in apdus], 228)
    rows = _tshark_fields(
        pcap,
        [
            "gsm_sim.apdu.ins",
            "gsm_sim.cat.ber_tlv_tag",
            "etsi_cat.comp_tlv.cmd_type",
            "gsm_sms.tp-pid",
            "gsm_sms.tp-dcs",
            "gsm_sms.ie_identifier",
            "gsm_sim.tp.sms_data_dld",
            "gsm_sim.tp.pa.display_text",
            "gsm_sim.tp.pa.get_inkey_bin",
            "gsm_sim.tp.pa.get_input",
            "gsm_sim.apdu.sw",
            "_ws.malformed",
        ],
    )
    assert rows == [
        ["0x10", "", "", "", "", "", "1", "1", "1", "0", "0x9000", ""],
        ["0xc2", "0xd1", "", "127", "246", "0x70", "", "", "", "", "0x9128", ""],
        ["0x12", "0xd0", "0x21", "", "", "", "", "", "", "", "0x9000", ""],
        ["0x14", "", "0x21", "", "", "", "", "", "", "", "0x9000", ""],
        ["0x12", "0xd0", "0x13", "0", "4", "", "", "", "", "", "0x9000", ""],
        ["0xc2", "0xd3", "", "", "", "", "", "", "", "", "0x9000", ""],
    ]
