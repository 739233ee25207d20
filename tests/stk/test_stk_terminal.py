"""TERMINAL RESPONSE and TERMINAL PROFILE (TS 102 223 sections 6.8, 8.12, 5.2; TS 31.111).

Vectors of kind "terminal_response" come from tests/vectors/stk/cat.json. The TERMINAL PROFILE bit
positions were checked against Wireshark's gsm_sim dissector (test_stk_commands.py, GSMTAP-SIM).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_stk_tlv import device_identities, durations, extra_tlvs, hexbytes, octets, text_strings, vectors_of

from protocols.errors import DecodeError, LocalProtocolError
from protocols.stk.commands import (
    DisplayText,
    GetInkey,
    GetInkeyQualifier,
    SelectItem,
    SendShortMessage,
    SendUssd,
    UnknownCommand,
)
from protocols.stk.terminal import (
    GeneralResult,
    Result,
    TerminalProblem,
    TerminalProfile,
    TerminalProfileFeature,
    TerminalResponse,
)
from protocols.stk.tlv import (
    CommandDetails,
    ComprehensionTlv,
    DeviceIdentities,
    DeviceIdentity,
    Duration,
    Item,
    TextString,
    TypeOfCommand,
    UssdString,
)

RESPONSES = vectors_of("terminal_response")


def test_every_terminal_response_of_the_shared_catalogue_is_here() -> None:
    names = {v["name"] for v in RESPONSES}
    assert {
        "TR_DISPLAY_TEXT_ok",
        "TR_DISPLAY_TEXT_no_response",
        "TR_DISPLAY_TEXT_user_end",
        "TR_GET_INKEY_yes",
        "TR_SELECT_ITEM_3",
    } <= names


def _expected_response(expected: dict[str, Any]) -> TerminalResponse:
    text = expected.get("text_string")
    return TerminalResponse(
        CommandDetails(*expected["command_details"]),
        Result(expected["general_result"], hexbytes(expected["additional_information"])),
        DeviceIdentities(*expected["device_identities"]),
        text_string=None if text is None else TextString(text["dcs"], hexbytes(text["data"])),
        item_identifier=expected.get("item_identifier"),
    )


@pytest.mark.parametrize("vector", RESPONSES, ids=lambda v: v["name"])
def test_terminal_response_vector(vector: dict[str, Any]) -> None:
    data = hexbytes(vector["hex"])
    expected = _expected_response(vector["expected"])
    decoded = TerminalResponse.decode(data)
    assert decoded == expected
    assert expected.encode() == data
    assert decoded.general_result == vector["expected"]["general_result"]
    assert decoded.yes_no == vector["expected"].get("yes_no")


def test_for_command_echoes_the_command_details() -> None:
    inkey = GetInkey(TextString.of("Buy 1GB for 5.00?"), GetInkeyQualifier.YES_NO)
    yes = TerminalResponse.for_command(inkey, text_string=TextString.yes_no(True))
    assert yes.encode() == hexbytes("8103012204820282818301008D020401")
    assert yes.yes_no is True
    no = TerminalResponse.for_command(inkey, Result(0), text_string=TextString.yes_no(False))
    assert no.yes_no is False
    select = SelectItem((Item.of(3, "500MB"),), command_number=5)
    chosen = TerminalResponse.for_command(select, item_identifier=3)
    assert chosen.encode() == hexbytes("810305240082028281830100900103")
    busy = TerminalResponse.for_command(
        DisplayText(TextString.of("x")),
        Result(
            GeneralResult.TERMINAL_CURRENTLY_UNABLE_TO_PROCESS_COMMAND,
            bytes((TerminalProblem.SCREEN_IS_BUSY,)),
        ),
    )
    assert busy.encode() == hexbytes("81030121808202828183022001")
    timed = TerminalResponse.for_command(inkey, duration=Duration(1, 12), text_string=TextString.of("x"))
    assert TerminalResponse.decode(timed.encode()) == timed
    unknown = TerminalResponse.for_command(UnknownCommand((CommandDetails(9, 0x20, 1).to_tlv(),)), 0x30)
    assert unknown.command_details == CommandDetails(9, TypeOfCommand.PLAY_TONE, 1)
    assert unknown.general_result == GeneralResult.COMMAND_BEYOND_TERMINAL_CAPABILITIES


def test_send_ussd_answer_travels_in_the_text_string() -> None:
    command = SendUssd(UssdString.of("*123*500#"))
    answer = TerminalResponse.for_command(command, text_string=TextString.of("Thank you. 500MB added."))
    decoded = TerminalResponse.decode(answer.encode())
    assert decoded.text_string is not None
    assert decoded.text_string.text == "Thank you. 500MB added."
    assert decoded.yes_no is None


def test_yes_no_is_only_read_from_a_one_octet_8bit_text() -> None:
    details = CommandDetails(1, 0x22, 0x04)
    for text in (TextString(0x08, b"\x00\x01"), TextString(0x04, b"\x02"), TextString(0x04, b"Y"), None):
        assert TerminalResponse(details, Result(0), text_string=text).yes_no is None


def test_result_classes() -> None:
    assert Result(GeneralResult.PERFORMED_SUCCESSFULLY).performed
    assert Result(GeneralResult.NO_RESPONSE_FROM_USER).performed
    temporary = Result(GeneralResult.TERMINAL_CURRENTLY_UNABLE_TO_PROCESS_COMMAND, b"\x01")
    assert (temporary.performed, temporary.temporary_problem, temporary.permanent_problem) == (
        False,
        True,
        False,
    )
    permanent = Result(GeneralResult.COMMAND_TYPE_NOT_UNDERSTOOD)
    assert (permanent.temporary_problem, permanent.permanent_problem) == (False, True)
    assert Result(0x40).permanent_problem is False
    assert GeneralResult(0x3F).name == "UNKNOWN_0x3F"


def test_general_result_table() -> None:
    # TS 102 223 section 8.12 and TS 31.111 section 8.12 (the values PROTOCOLS.md section 1.6 lists)
    table = {
        0x00: "PERFORMED_SUCCESSFULLY",
        0x01: "PERFORMED_WITH_PARTIAL_COMPREHENSION",
        0x02: "PERFORMED_WITH_MISSING_INFORMATION",
        0x03: "REFRESH_PERFORMED_WITH_ADDITIONAL_EFS_READ",
        0x04: "PERFORMED_SUCCESSFULLY_BUT_REQUESTED_ICON_NOT_DISPLAYED",
        0x07: "PERFORMED_WITH_MODIFICATION",
        0x10: "PROACTIVE_SESSION_TERMINATED_BY_USER",
        0x11: "BACKWARD_MOVE_REQUESTED_BY_USER",
        0x12: "NO_RESPONSE_FROM_USER",
        0x13: "HELP_INFORMATION_REQUIRED_BY_USER",
        0x14: "USSD_OR_SS_TRANSACTION_TERMINATED_BY_USER",
        0x20: "TERMINAL_CURRENTLY_UNABLE_TO_PROCESS_COMMAND",
        0x21: "NETWORK_CURRENTLY_UNABLE_TO_PROCESS_COMMAND",
        0x22: "USER_DID_NOT_ACCEPT_PROACTIVE_COMMAND",
        0x30: "COMMAND_BEYOND_TERMINAL_CAPABILITIES",
        0x31: "COMMAND_TYPE_NOT_UNDERSTOOD",
        0x32: "COMMAND_DATA_NOT_UNDERSTOOD",
        0x33: "COMMAND_NUMBER_NOT_KNOWN",
        0x35: "SMS_RP_ERROR",
        0x36: "ERROR_REQUIRED_VALUES_MISSING",
        0x37: "USSD_RETURN_ERROR",
        0x39: "INTERACTION_WITH_CALL_CONTROL_OR_MO_SM_CONTROL_PERMANENT_PROBLEM",
        0x3A: "BEARER_INDEPENDENT_PROTOCOL_ERROR",
    }
    for value, name in table.items():
        assert GeneralResult(value).name == name


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ("82028281830100", 0x36),  # no command details
        ("8103012180830100", 0x36),  # no device identities
        ("810301218082028281", 0x36),  # no result
        ("8103012180820282818300", 0x32),  # empty result
        ("8103012400820282818301009002 0301".replace(" ", ""), 0x32),  # item identifier of 2 octets
        ("81030121808202828183", 0x32),  # truncated
    ],
)
def test_malformed_terminal_responses(data: str, status: int) -> None:
    with pytest.raises(DecodeError) as info:
        TerminalResponse.decode(hexbytes(data))
    assert info.value.status == status


@pytest.mark.parametrize(
    "build",
    [
        lambda: Result(0x100),
        lambda: TerminalResponse(CommandDetails(1, 0x24), Result(0), item_identifier=256),
    ],
)
def test_misuse(build: Any) -> None:
    with pytest.raises(LocalProtocolError):
        build()


terminal_responses = st.builds(
    TerminalResponse,
    st.builds(CommandDetails, octets, octets, octets),
    st.builds(Result, st.sampled_from(list(GeneralResult)) | octets, st.binary(max_size=3)),
    device_identities,
    duration=st.none() | durations,
    text_string=st.none() | text_strings,
    item_identifier=st.none() | octets,
    extra_tlvs=extra_tlvs,
)


@given(terminal_responses)
def test_terminal_response_round_trip(response: TerminalResponse) -> None:
    data = response.encode()
    assert TerminalResponse.decode(data) == response
    assert TerminalResponse.decode(data).encode() == data


@given(st.binary(max_size=80))
def test_fuzz_terminal_response(data: bytes) -> None:
    try:
        response = TerminalResponse.decode(data)
    except DecodeError:
        return
    assert TerminalResponse.decode(response.encode()) == response


def test_extra_objects_of_a_terminal_response_are_kept() -> None:
    data = hexbytes("810301218082028281830100" + "1301AA")  # a location information it does not model
    response = TerminalResponse.decode(data)
    assert response.extra_tlvs == (ComprehensionTlv(0x13, b"\xaa", False),)
    assert response.encode() == data


# --- TERMINAL PROFILE ------------------------------------------------------------------------------------


def test_terminal_profile_bits() -> None:
    profile = TerminalProfile.from_features(
        [
            TerminalProfileFeature.PROFILE_DOWNLOAD,
            TerminalProfileFeature.SMS_PP_DATA_DOWNLOAD,
            TerminalProfileFeature.DISPLAY_TEXT,
            TerminalProfileFeature.GET_INKEY,
            TerminalProfileFeature.SELECT_ITEM,
            TerminalProfileFeature.SEND_USSD,
            TerminalProfileFeature.GET_INKEY_BINARY_CHOICE,
        ],
        length=9,
    )
    # byte 1 b1 b2, byte 3 b1 b2, byte 4 b1 b4, byte 8 b4 (TS 102 223 section 5.2)
    assert profile.encode() == hexbytes("03" + "00" + "03" + "09" + "000000" + "08" + "00")
    assert TerminalProfile.decode(profile.encode()) == profile
    assert profile.supports(TerminalProfileFeature.GET_INKEY_BINARY_CHOICE)
    assert not profile.supports(TerminalProfileFeature.GET_INPUT)
    assert not profile.supports(TerminalProfileFeature.SOFT_KEYS_SET_UP_MENU)  # beyond its length
    assert TerminalProfileFeature.SEND_USSD in profile.features
    assert (
        TerminalProfile.from_features([TerminalProfileFeature.SOFT_KEYS_SELECT_ITEM]).encode()
        == bytes(9) + b"\x01"
    )


def test_terminal_profile_edits() -> None:
    profile = TerminalProfile(b"\x01")
    grown = profile.with_features(TerminalProfileFeature.SELECT_ITEM, TerminalProfileFeature.UCS2_DISPLAY)
    assert grown.encode() == hexbytes("01400001")
    shrunk = grown.without_features(
        TerminalProfileFeature.SELECT_ITEM, TerminalProfileFeature.SUSTAINED_DISPLAY_TEXT
    )
    assert shrunk.encode() == hexbytes("01400000")
    assert TerminalProfile().features == frozenset()


def test_handsets_without_yes_no_or_ucs2() -> None:
    full = TerminalProfile.from_features(TerminalProfileFeature)
    old_phone = full.without_features(
        TerminalProfileFeature.GET_INKEY_BINARY_CHOICE, TerminalProfileFeature.UCS2_DISPLAY
    )
    yes_no = GetInkey(TextString.of("Buy?"), GetInkeyQualifier.YES_NO)
    digits = GetInkey(TextString.of("Buy?"))
    russian = DisplayText(TextString.of("Купить?"))
    latin = DisplayText(TextString.of("Buy?"))
    for command in (yes_no, digits, russian, latin):
        assert full.supports_command(command)
    assert not old_phone.supports_command(yes_no)
    assert old_phone.supports_command(digits)
    assert not old_phone.supports_command(russian)
    assert old_phone.supports_command(latin)
    no_sms = full.without_features(TerminalProfileFeature.SEND_SHORT_MESSAGE)
    assert not no_sms.supports_command(SendShortMessage(b"\x01"))
    assert no_sms.supports_command(SendUssd(UssdString.of("*1#")))
    play_tone = UnknownCommand((CommandDetails(1, TypeOfCommand.PLAY_TONE).to_tlv(),))
    assert full.supports_command(play_tone)
    assert not no_sms.without_features(TerminalProfileFeature.PLAY_TONE).supports_command(play_tone)
    launch_browser = UnknownCommand((CommandDetails(1, TypeOfCommand.LAUNCH_BROWSER).to_tlv(),))
    assert TerminalProfile().supports_command(launch_browser)  # no bit modelled: assumed supported


@given(st.binary(max_size=40))
def test_terminal_profile_takes_any_bytes(data: bytes) -> None:
    profile = TerminalProfile.decode(data)
    assert profile.encode() == data
    assert TerminalProfile.from_features(profile.features, len(data)).features == profile.features


def test_device_identity_names() -> None:
    assert DeviceIdentity(0x82) is DeviceIdentity.TERMINAL
    assert DeviceIdentity(0x21).name == "UNKNOWN_0x21"
