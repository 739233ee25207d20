"""TERMINAL RESPONSE and TERMINAL PROFILE (ETSI TS 102 223 sections 6.8, 8.12 and 5.2; TS 31.111).

TERMINAL RESPONSE (section 6.8) is a bare list of COMPREHENSION-TLVs (no BER-TLV wrapper): the
command details echoed from the proactive command, device identities terminal ('82') -> UICC
('81'), the result (8.12: general result and additional information), then what the command asks
for: a duration (8.8), a text string (8.15, the GET INKEY / GET INPUT answer or the network's answer
to SEND USSD), an item identifier (8.10, the SELECT ITEM choice). For a yes/no GET INKEY the text
string is '04 01' for Yes and '04 00' for No. Other objects are kept in ``extra_tlvs``.

TERMINAL PROFILE (section 5.2) is a bit map of what the terminal supports. ``TerminalProfile``
keeps the octets as sent and answers ``supports(TerminalProfileFeature.X)``; handset models build
theirs with ``TerminalProfile.from_features`` and leave out what an old phone lacks (for example
``GET_INKEY_BINARY_CHOICE``, eighth byte b4, which a yes/no GET INKEY needs).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from protocols.errors import DecodeError, LocalProtocolError
from protocols.stk.commands import GetInkey, GetInkeyQualifier, ProactiveCommand, UnknownCommand
from protocols.stk.tlv import (
    COMMAND_DATA_NOT_UNDERSTOOD,
    CommandDetails,
    ComprehensionTag,
    ComprehensionTlv,
    DataCodingScheme,
    DeviceIdentities,
    DeviceIdentity,
    Duration,
    TextString,
    TypeOfCommand,
    _DataObject,
    _KeepUnknown,
    _optional_tlv,
    _Picker,
    decode_comprehension_tlvs,
    encode_comprehension_tlvs,
)

__all__ = [
    "GeneralResult",
    "Result",
    "TerminalProblem",
    "TerminalProfile",
    "TerminalProfileFeature",
    "TerminalResponse",
]


class GeneralResult(_KeepUnknown):
    """General result (TS 102 223 section 8.12; the 3GPP values '14', '34', '35', '37', '39' from TS 31.111).

    '0X' and '1X': the command was performed. '2X': a temporary problem, worth retrying later.
    '3X': a permanent problem, not worth retrying the same command.
    """

    PERFORMED_SUCCESSFULLY = 0x00
    PERFORMED_WITH_PARTIAL_COMPREHENSION = 0x01
    PERFORMED_WITH_MISSING_INFORMATION = 0x02
    REFRESH_PERFORMED_WITH_ADDITIONAL_EFS_READ = 0x03
    PERFORMED_SUCCESSFULLY_BUT_REQUESTED_ICON_NOT_DISPLAYED = 0x04
    PERFORMED_BUT_MODIFIED_BY_CALL_CONTROL = 0x05
    PERFORMED_SUCCESSFULLY_LIMITED_SERVICE = 0x06
    PERFORMED_WITH_MODIFICATION = 0x07
    REFRESH_PERFORMED_BUT_INDICATED_NAA_NOT_ACTIVE = 0x08
    PERFORMED_SUCCESSFULLY_TONE_NOT_PLAYED = 0x09
    PROACTIVE_SESSION_TERMINATED_BY_USER = 0x10
    BACKWARD_MOVE_REQUESTED_BY_USER = 0x11
    NO_RESPONSE_FROM_USER = 0x12
    HELP_INFORMATION_REQUIRED_BY_USER = 0x13
    USSD_OR_SS_TRANSACTION_TERMINATED_BY_USER = 0x14
    TERMINAL_CURRENTLY_UNABLE_TO_PROCESS_COMMAND = 0x20
    NETWORK_CURRENTLY_UNABLE_TO_PROCESS_COMMAND = 0x21
    USER_DID_NOT_ACCEPT_PROACTIVE_COMMAND = 0x22
    USER_CLEARED_DOWN_CALL_BEFORE_CONNECTION_OR_RELEASE = 0x23
    ACTION_IN_CONTRADICTION_WITH_CURRENT_TIMER_STATE = 0x24
    INTERACTION_WITH_CALL_CONTROL_TEMPORARY_PROBLEM = 0x25
    LAUNCH_BROWSER_GENERIC_ERROR = 0x26
    MMS_TEMPORARY_PROBLEM = 0x27
    COMMAND_BEYOND_TERMINAL_CAPABILITIES = 0x30
    COMMAND_TYPE_NOT_UNDERSTOOD = 0x31
    COMMAND_DATA_NOT_UNDERSTOOD = 0x32
    COMMAND_NUMBER_NOT_KNOWN = 0x33
    SS_RETURN_ERROR = 0x34
    SMS_RP_ERROR = 0x35
    ERROR_REQUIRED_VALUES_MISSING = 0x36
    USSD_RETURN_ERROR = 0x37
    MULTIPLE_CARD_COMMANDS_ERROR = 0x38
    INTERACTION_WITH_CALL_CONTROL_OR_MO_SM_CONTROL_PERMANENT_PROBLEM = 0x39
    BEARER_INDEPENDENT_PROTOCOL_ERROR = 0x3A
    ACCESS_TECHNOLOGY_UNABLE_TO_PROCESS_COMMAND = 0x3B
    FRAMES_ERROR = 0x3C
    MMS_ERROR = 0x3D


class TerminalProblem(_KeepUnknown):
    """Additional information for general result '20' (TS 102 223 section 8.12.2; '03', '08' from TS 31.111)."""

    NO_SPECIFIC_CAUSE = 0x00
    SCREEN_IS_BUSY = 0x01
    TERMINAL_CURRENTLY_BUSY_ON_CALL = 0x02
    ME_CURRENTLY_BUSY_ON_SS_TRANSACTION = 0x03
    NO_SERVICE = 0x04
    ACCESS_CONTROL_CLASS_BAR = 0x05
    RADIO_RESOURCE_NOT_GRANTED = 0x06
    NOT_IN_SPEECH_CALL = 0x07
    ME_CURRENTLY_BUSY_ON_USSD_TRANSACTION = 0x08
    TERMINAL_CURRENTLY_BUSY_ON_SEND_DTMF = 0x09
    NO_NAA_ACTIVE = 0x10


@dataclass(frozen=True, slots=True)
class Result(_DataObject):
    """Result (TS 102 223 section 8.12): general result and additional information.

    ``Result(GeneralResult.TERMINAL_CURRENTLY_UNABLE_TO_PROCESS_COMMAND, bytes([TerminalProblem.SCREEN_IS_BUSY]))``
    is '83 02 20 01'.
    """

    TAG: ClassVar[ComprehensionTag] = ComprehensionTag.RESULT

    general_result: int
    additional_information: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.general_result <= 0xFF:
            raise LocalProtocolError(f"general result must fit in one octet, got {self.general_result}")

    @property
    def performed(self) -> bool:
        """'0X' and '1X': the command was performed (possibly with a user action such as '12' no response)."""
        return self.general_result < 0x20

    @property
    def temporary_problem(self) -> bool:
        """'2X': the terminal or network could not do it now; the UICC may retry later."""
        return 0x20 <= self.general_result < 0x30

    @property
    def permanent_problem(self) -> bool:
        """'3X': retrying the identical command is pointless."""
        return 0x30 <= self.general_result < 0x40

    def encode_value(self) -> bytes:
        return bytes((self.general_result,)) + self.additional_information

    @classmethod
    def decode_value(cls, value: bytes) -> Result:
        if not value:
            raise DecodeError("result without general result", COMMAND_DATA_NOT_UNDERSTOOD)
        return cls(GeneralResult(value[0]), value[1:])


_TERMINAL_TO_UICC = DeviceIdentities(DeviceIdentity.TERMINAL, DeviceIdentity.UICC)


@dataclass(frozen=True, slots=True)
class TerminalResponse:
    """TERMINAL RESPONSE (TS 102 223 section 6.8; TS 31.111 section 6.8 for SEND USSD / SEND SHORT MESSAGE)."""

    command_details: CommandDetails
    result: Result
    device_identities: DeviceIdentities = _TERMINAL_TO_UICC
    duration: Duration | None = None
    text_string: TextString | None = None
    item_identifier: int | None = None
    extra_tlvs: tuple[ComprehensionTlv, ...] = ()

    def __post_init__(self) -> None:
        if self.item_identifier is not None and not 0 <= self.item_identifier <= 0xFF:
            raise LocalProtocolError(f"item identifier must fit in one octet, got {self.item_identifier}")

    @classmethod
    def for_command(
        cls,
        command: ProactiveCommand,
        result: Result | int = GeneralResult.PERFORMED_SUCCESSFULLY,
        *,
        text_string: TextString | None = None,
        item_identifier: int | None = None,
        duration: Duration | None = None,
    ) -> TerminalResponse:
        """The response to ``command``: its command details echoed, ``result`` (a Result or a general result)."""
        if not isinstance(result, Result):
            result = Result(GeneralResult(result))
        return cls(command.command_details, result, _TERMINAL_TO_UICC, duration, text_string, item_identifier)

    @property
    def general_result(self) -> int:
        return self.result.general_result

    @property
    def yes_no(self) -> bool | None:
        """The answer to a yes/no GET INKEY ('04 01' Yes, '04 00' No), None if the text string is not one."""
        text = self.text_string
        if text is None or text.dcs != DataCodingScheme.GSM_8BIT or text.data not in (b"\x00", b"\x01"):
            return None
        return text.data == b"\x01"

    def encode(self) -> bytes:
        """The data of the TERMINAL RESPONSE APDU (COMPREHENSION-TLVs, no BER-TLV wrapper)."""
        item = None if self.item_identifier is None else bytes((self.item_identifier,))
        tlvs = [
            self.command_details.to_tlv(),
            self.device_identities.to_tlv(),
            self.result.to_tlv(),
            *([] if self.duration is None else [self.duration.to_tlv()]),
            *([] if self.text_string is None else [self.text_string.to_tlv()]),
            *_optional_tlv(ComprehensionTag.ITEM_IDENTIFIER, item),
            *self.extra_tlvs,
        ]
        return encode_comprehension_tlvs(tlvs)

    @classmethod
    def decode(cls, data: bytes) -> TerminalResponse:
        objects = _Picker(decode_comprehension_tlvs(data))
        details = CommandDetails.decode_value(
            objects.require(ComprehensionTag.COMMAND_DETAILS, "command details")
        )
        devices = DeviceIdentities.decode_value(
            objects.require(ComprehensionTag.DEVICE_IDENTITIES, "device identities")
        )
        result = Result.decode_value(objects.require(ComprehensionTag.RESULT, "result"))
        duration = objects.take_value(ComprehensionTag.DURATION)
        text = objects.take_value(ComprehensionTag.TEXT_STRING)
        item = objects.take_value(ComprehensionTag.ITEM_IDENTIFIER)
        if item is not None and len(item) != 1:
            raise DecodeError("item identifier must be 1 octet", COMMAND_DATA_NOT_UNDERSTOOD)
        return cls(
            details,
            result,
            devices,
            None if duration is None else Duration.decode_value(duration),
            None if text is None else TextString.decode_value(text),
            None if item is None else item[0],
            objects.rest(),
        )


class TerminalProfileFeature(Enum):
    """Bits of the TERMINAL PROFILE (TS 102 223 section 5.2): value = (byte number from 1, bit mask)."""

    # first byte (download)
    PROFILE_DOWNLOAD = (1, 0x01)
    SMS_PP_DATA_DOWNLOAD = (1, 0x02)
    CELL_BROADCAST_DATA_DOWNLOAD = (1, 0x04)
    MENU_SELECTION = (1, 0x08)
    SIM_DATA_DOWNLOAD_ERROR_9EXX = (1, 0x10)  # TS 31.111: '9EXX' response code for (U)SIM data download error
    TIMER_EXPIRATION = (1, 0x20)
    # second byte (other)
    COMMAND_RESULT = (2, 0x01)
    CALL_CONTROL = (2, 0x02)
    MO_SHORT_MESSAGE_CONTROL = (2, 0x08)
    UCS2_ENTRY = (2, 0x20)
    UCS2_DISPLAY = (2, 0x40)
    DISPLAY_OF_EXTENSION_TEXT = (2, 0x80)
    # third byte (proactive UICC)
    DISPLAY_TEXT = (3, 0x01)
    GET_INKEY = (3, 0x02)
    GET_INPUT = (3, 0x04)
    MORE_TIME = (3, 0x08)
    PLAY_TONE = (3, 0x10)
    POLL_INTERVAL = (3, 0x20)
    POLLING_OFF = (3, 0x40)
    REFRESH = (3, 0x80)
    # fourth byte (proactive UICC)
    SELECT_ITEM = (4, 0x01)
    SEND_SHORT_MESSAGE = (4, 0x02)
    SEND_SS = (4, 0x04)
    SEND_USSD = (4, 0x08)
    SET_UP_CALL = (4, 0x10)
    SET_UP_MENU = (4, 0x20)
    PROVIDE_LOCAL_INFORMATION = (4, 0x40)
    PROVIDE_LOCAL_INFORMATION_NMR = (4, 0x80)
    # fifth byte (event driven information)
    SET_UP_EVENT_LIST = (5, 0x01)
    EVENT_USER_ACTIVITY = (5, 0x20)
    EVENT_IDLE_SCREEN_AVAILABLE = (5, 0x40)
    # eighth byte (proactive UICC)
    TIMER_MANAGEMENT = (8, 0x01)
    GET_INKEY_BINARY_CHOICE = (8, 0x08)  # "Binary choice in GET INKEY": the yes/no qualifier
    SET_UP_IDLE_MODE_TEXT = (8, 0x10)
    # ninth byte
    SUSTAINED_DISPLAY_TEXT = (9, 0x01)
    # tenth byte (soft keys)
    SOFT_KEYS_SELECT_ITEM = (10, 0x01)
    SOFT_KEYS_SET_UP_MENU = (10, 0x02)

    @property
    def byte_number(self) -> int:
        number: int = self.value[0]
        return number

    @property
    def mask(self) -> int:
        mask: int = self.value[1]
        return mask


_COMMAND_FEATURES: dict[int, TerminalProfileFeature] = {
    TypeOfCommand.DISPLAY_TEXT: TerminalProfileFeature.DISPLAY_TEXT,
    TypeOfCommand.GET_INKEY: TerminalProfileFeature.GET_INKEY,
    TypeOfCommand.GET_INPUT: TerminalProfileFeature.GET_INPUT,
    TypeOfCommand.SELECT_ITEM: TerminalProfileFeature.SELECT_ITEM,
    TypeOfCommand.SET_UP_MENU: TerminalProfileFeature.SET_UP_MENU,
    TypeOfCommand.SEND_SHORT_MESSAGE: TerminalProfileFeature.SEND_SHORT_MESSAGE,
    TypeOfCommand.SEND_USSD: TerminalProfileFeature.SEND_USSD,
    TypeOfCommand.SEND_SS: TerminalProfileFeature.SEND_SS,
    TypeOfCommand.SET_UP_CALL: TerminalProfileFeature.SET_UP_CALL,
    TypeOfCommand.PLAY_TONE: TerminalProfileFeature.PLAY_TONE,
    TypeOfCommand.MORE_TIME: TerminalProfileFeature.MORE_TIME,
    TypeOfCommand.REFRESH: TerminalProfileFeature.REFRESH,
    TypeOfCommand.SET_UP_EVENT_LIST: TerminalProfileFeature.SET_UP_EVENT_LIST,
    TypeOfCommand.SET_UP_IDLE_MODE_TEXT: TerminalProfileFeature.SET_UP_IDLE_MODE_TEXT,
}


@dataclass(frozen=True, slots=True)
class TerminalProfile:
    """TERMINAL PROFILE (TS 102 223 section 5.2): ``profile`` is the bit map as sent, any length."""

    profile: bytes = b""

    @classmethod
    def from_features(cls, features: Iterable[TerminalProfileFeature], length: int = 0) -> TerminalProfile:
        """A profile with exactly ``features`` set, at least ``length`` octets long."""
        features = list(features)
        size = max([length, *(feature.byte_number for feature in features)])
        profile = bytearray(size)
        for feature in features:
            profile[feature.byte_number - 1] |= feature.mask
        return cls(bytes(profile))

    def supports(self, feature: TerminalProfileFeature) -> bool:
        index = feature.byte_number - 1
        return index < len(self.profile) and bool(self.profile[index] & feature.mask)

    @property
    def features(self) -> frozenset[TerminalProfileFeature]:
        """The named features this profile sets."""
        return frozenset(feature for feature in TerminalProfileFeature if self.supports(feature))

    def with_features(self, *features: TerminalProfileFeature) -> TerminalProfile:
        profile = bytearray(self.profile)
        for feature in features:
            if len(profile) < feature.byte_number:
                profile.extend(bytes(feature.byte_number - len(profile)))
            profile[feature.byte_number - 1] |= feature.mask
        return TerminalProfile(bytes(profile))

    def without_features(self, *features: TerminalProfileFeature) -> TerminalProfile:
        profile = bytearray(self.profile)
        for feature in features:
            if feature.byte_number <= len(profile):
                profile[feature.byte_number - 1] &= ~feature.mask & 0xFF
        return TerminalProfile(bytes(profile))

    def supports_command(self, command: ProactiveCommand) -> bool:
        """Whether a terminal with this profile can run ``command``.

        The command type must be supported; a yes/no GET INKEY also needs ``GET_INKEY_BINARY_CHOICE``
        and a UCS2 text string needs ``UCS2_DISPLAY``. Types without a profile bit count as supported.
        """
        if isinstance(command, UnknownCommand):
            feature = _COMMAND_FEATURES.get(command.command_details.type_of_command)
            return feature is None or self.supports(feature)
        if not self.supports(_COMMAND_FEATURES[command.type_of_command]):
            return False
        yes_no = isinstance(command, GetInkey) and bool(command.command_qualifier & GetInkeyQualifier.YES_NO)
        if yes_no and not self.supports(TerminalProfileFeature.GET_INKEY_BINARY_CHOICE):
            return False
        text = getattr(command, "text_string", None)
        if isinstance(text, TextString) and text.dcs == DataCodingScheme.UCS2:
            return self.supports(TerminalProfileFeature.UCS2_DISPLAY)
        return True

    def encode(self) -> bytes:
        return self.profile

    @classmethod
    def decode(cls, data: bytes) -> TerminalProfile:
        return cls(bytes(data))
