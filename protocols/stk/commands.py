"""Proactive UICC commands (ETSI TS 102 223 section 6.6; 3GPP TS 31.111 sections 6.6.9 and 6.6.11).

A proactive command is the BER-TLV 'D0' (TS 101 220 table 7.17) around COMPREHENSION-TLVs: command
details (8.6), device identities (8.7), then the objects of the command. The commands of the offer
dialog are typed here:

======================  ======  ==================  =========================================
command                 type    section             objects after the device identities
======================  ======  ==================  =========================================
DISPLAY TEXT            '21'    102 223 6.6.1       text string, icon id, immediate response, duration
GET INKEY               '22'    102 223 6.6.2       text string, icon id, duration
GET INPUT               '23'    102 223 6.6.3       text string, response length, default text, icon id
SET UP MENU             '25'    102 223 6.6.7       alpha id, items, next action, icon id, item icons
SELECT ITEM             '24'    102 223 6.6.8       alpha id, items, next action, default item, icon id, item icons
SEND SHORT MESSAGE      '13'    31.111 6.6.9        alpha id, address, SMS TPDU, icon id
SEND USSD               '12'    31.111 6.6.11       alpha id, USSD string, icon id
======================  ======  ==================  =========================================

``decode_proactive`` returns the typed command, or ``UnknownCommand`` (all TLVs kept) for other
types. Objects a typed command does not model (text attribute, frame identifier, proprietary ones)
stay in ``extra_tlvs``; they come last in every command structure above, so a command in the spec's
order re-encodes byte for byte. Known objects are written in the spec's order with the
comprehension-required flag set, as in the vectors of PROTOCOLS.md section 1.6.

A ``DecodeError`` carries in ``status`` the general result the terminal answers with (TS 102 223
section 8.12): '32' command data not understood, '36' error, required values missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import Any, ClassVar, Self, TypeAlias

from protocols.errors import DecodeError, LocalProtocolError
from protocols.stk.tlv import (
    COMMAND_DATA_NOT_UNDERSTOOD,
    REQUIRED_VALUES_MISSING,
    Address,
    AlphaIdentifier,
    BerTag,
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
    TypeOfCommand,
    UssdString,
    _optional_tlv,
    _Picker,
    decode_ber_tlv,
    encode_ber_tlv,
    find_tlv,
)

__all__ = [
    "DisplayText",
    "DisplayTextQualifier",
    "GetInkey",
    "GetInkeyQualifier",
    "GetInput",
    "GetInputQualifier",
    "ProactiveCommand",
    "SelectItem",
    "SelectItemQualifier",
    "SendShortMessage",
    "SendShortMessageQualifier",
    "SendUssd",
    "SetUpMenu",
    "SetUpMenuQualifier",
    "UnknownCommand",
    "decode_proactive",
]


class DisplayTextQualifier(IntFlag):
    """Command qualifier of DISPLAY TEXT (TS 102 223 section 8.6)."""

    NONE = 0
    HIGH_PRIORITY = 0x01  # b1: 0 normal priority, 1 high priority
    WAIT_FOR_USER = 0x80  # b8: 0 clear message after a delay, 1 wait for the user to clear it


class GetInkeyQualifier(IntFlag):
    """Command qualifier of GET INKEY (TS 102 223 section 8.6)."""

    NONE = 0
    ALPHABET = 0x01  # b1: 0 digits (0-9, *, #, +) only, 1 alphabet set
    UCS2 = 0x02  # b2: 0 SMS default alphabet, 1 UCS2
    YES_NO = 0x04  # b3: 1 the answer is Yes or No; b1 and b2 are then ignored
    IMMEDIATE_DIGIT_RESPONSE = 0x08  # b4
    HELP_AVAILABLE = 0x80  # b8


class GetInputQualifier(IntFlag):
    """Command qualifier of GET INPUT (TS 102 223 section 8.6)."""

    NONE = 0
    ALPHABET = 0x01  # b1: 0 digits only, 1 alphabet set
    UCS2 = 0x02  # b2: 0 SMS default alphabet, 1 UCS2
    HIDDEN = 0x04  # b3: 0 echo the input, 1 the input is not revealed
    PACKED = 0x08  # b4: 0 unpacked, 1 SMS packed format
    HELP_AVAILABLE = 0x80  # b8


class SelectItemQualifier(IntFlag):
    """Command qualifier of SELECT ITEM (TS 102 223 section 8.6)."""

    NONE = 0
    PRESENTATION_SPECIFIED = 0x01  # b1: presentation type given in b2
    NAVIGATION_OPTIONS = 0x02  # b2: 0 choice of data values, 1 choice of navigation options
    SOFT_KEY_PREFERRED = 0x04  # b3
    HELP_AVAILABLE = 0x80  # b8


class SetUpMenuQualifier(IntFlag):
    """Command qualifier of SET UP MENU (TS 102 223 section 8.6)."""

    NONE = 0
    SOFT_KEY_PREFERRED = 0x01  # b1
    HELP_AVAILABLE = 0x80  # b8


class SendShortMessageQualifier(IntFlag):
    """Command qualifier of SEND SHORT MESSAGE (TS 102 223 section 8.6)."""

    NONE = 0
    PACKING_REQUIRED = 0x01  # b1: 1 the terminal packs the SMS text


_UICC_TO_DISPLAY = DeviceIdentities(DeviceIdentity.UICC, DeviceIdentity.DISPLAY)
_UICC_TO_TERMINAL = DeviceIdentities(DeviceIdentity.UICC, DeviceIdentity.TERMINAL)
_UICC_TO_NETWORK = DeviceIdentities(DeviceIdentity.UICC, DeviceIdentity.NETWORK)


def _icon_tlv(icon: IconIdentifier | None) -> list[ComprehensionTlv]:
    return [] if icon is None else [icon.to_tlv()]


def _take_icon(objects: _Picker) -> IconIdentifier | None:
    value = objects.take_value(ComprehensionTag.ICON_IDENTIFIER)
    return None if value is None else IconIdentifier.decode_value(value)


def _take_alpha(objects: _Picker) -> AlphaIdentifier | None:
    value = objects.take_value(ComprehensionTag.ALPHA_IDENTIFIER)
    return None if value is None else AlphaIdentifier.decode_value(value)


def _take_items(objects: _Picker, what: str) -> tuple[Item, ...]:
    items = tuple(Item.decode_value(value) for value in objects.take_all(ComprehensionTag.ITEM))
    if not items:
        raise DecodeError(f"{what} without items", REQUIRED_VALUES_MISSING)
    return items


class _Command:
    """What every typed proactive command has: command details, device identities, ``encode``."""

    __slots__ = ()
    type_of_command: ClassVar[TypeOfCommand]
    command_number: int
    command_qualifier: int
    device_identities: DeviceIdentities
    extra_tlvs: tuple[ComprehensionTlv, ...]

    @property
    def command_details(self) -> CommandDetails:
        return CommandDetails(self.command_number, self.type_of_command, int(self.command_qualifier))

    def _body_tlvs(self) -> list[ComprehensionTlv]:
        raise NotImplementedError

    @classmethod
    def _from_objects(cls, details: CommandDetails, devices: DeviceIdentities, objects: _Picker) -> Any:
        raise NotImplementedError

    def encode(self) -> bytes:
        """The 'D0' BER-TLV a FETCH returns."""
        tlvs = [
            self.command_details.to_tlv(),
            self.device_identities.to_tlv(),
            *self._body_tlvs(),
            *self.extra_tlvs,
        ]
        return encode_ber_tlv(BerTag.PROACTIVE_COMMAND, tlvs)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode a 'D0' BER-TLV that must hold this command type."""
        command = decode_proactive(data)
        if not isinstance(command, cls):
            raise DecodeError(
                f"expected {cls.type_of_command.name}, got type 0x{command.command_details.type_of_command:02X}",
                COMMAND_DATA_NOT_UNDERSTOOD,
            )
        return command


@dataclass(frozen=True, slots=True)
class DisplayText(_Command):
    """DISPLAY TEXT (TS 102 223 section 6.6.1).

    The default qualifier waits for the user to clear the text ('80'), so the terminal response tells
    whether the user pressed OK ('00'), went back ('11') or did nothing ('12'). Do not set
    ``immediate_response``: the terminal then answers at once and the OK is lost.
    """

    type_of_command: ClassVar[TypeOfCommand] = TypeOfCommand.DISPLAY_TEXT

    text_string: TextString
    command_qualifier: DisplayTextQualifier = DisplayTextQualifier.WAIT_FOR_USER
    command_number: int = 1
    device_identities: DeviceIdentities = _UICC_TO_DISPLAY
    icon_identifier: IconIdentifier | None = None
    immediate_response: bool = False
    duration: Duration | None = None
    extra_tlvs: tuple[ComprehensionTlv, ...] = ()

    def _body_tlvs(self) -> list[ComprehensionTlv]:
        return [
            self.text_string.to_tlv(),
            *_icon_tlv(self.icon_identifier),
            *_optional_tlv(ComprehensionTag.IMMEDIATE_RESPONSE, b"" if self.immediate_response else None),
            *([] if self.duration is None else [self.duration.to_tlv()]),
        ]

    @classmethod
    def _from_objects(
        cls, details: CommandDetails, devices: DeviceIdentities, objects: _Picker
    ) -> DisplayText:
        text = TextString.decode_value(
            objects.require(ComprehensionTag.TEXT_STRING, "DISPLAY TEXT text string")
        )
        icon = _take_icon(objects)
        immediate = objects.take(ComprehensionTag.IMMEDIATE_RESPONSE) is not None
        duration = objects.take_value(ComprehensionTag.DURATION)
        return cls(
            text,
            DisplayTextQualifier(details.command_qualifier),
            details.command_number,
            devices,
            icon,
            immediate,
            None if duration is None else Duration.decode_value(duration),
            objects.rest(),
        )


@dataclass(frozen=True, slots=True)
class GetInkey(_Command):
    """GET INKEY (TS 102 223 section 6.6.2); ``GetInkeyQualifier.YES_NO`` asks for Yes or No."""

    type_of_command: ClassVar[TypeOfCommand] = TypeOfCommand.GET_INKEY

    text_string: TextString
    command_qualifier: GetInkeyQualifier = GetInkeyQualifier.NONE
    command_number: int = 1
    device_identities: DeviceIdentities = _UICC_TO_TERMINAL
    icon_identifier: IconIdentifier | None = None
    duration: Duration | None = None
    extra_tlvs: tuple[ComprehensionTlv, ...] = ()

    def _body_tlvs(self) -> list[ComprehensionTlv]:
        return [
            self.text_string.to_tlv(),
            *_icon_tlv(self.icon_identifier),
            *([] if self.duration is None else [self.duration.to_tlv()]),
        ]

    @classmethod
    def _from_objects(cls, details: CommandDetails, devices: DeviceIdentities, objects: _Picker) -> GetInkey:
        text = TextString.decode_value(objects.require(ComprehensionTag.TEXT_STRING, "GET INKEY text string"))
        icon = _take_icon(objects)
        duration = objects.take_value(ComprehensionTag.DURATION)
        return cls(
            text,
            GetInkeyQualifier(details.command_qualifier),
            details.command_number,
            devices,
            icon,
            None if duration is None else Duration.decode_value(duration),
            objects.rest(),
        )


@dataclass(frozen=True, slots=True)
class GetInput(_Command):
    """GET INPUT (TS 102 223 section 6.6.3): a prompt, the allowed answer length, an optional default text."""

    type_of_command: ClassVar[TypeOfCommand] = TypeOfCommand.GET_INPUT

    text_string: TextString
    response_length: ResponseLength
    command_qualifier: GetInputQualifier = GetInputQualifier.NONE
    command_number: int = 1
    device_identities: DeviceIdentities = _UICC_TO_TERMINAL
    default_text: TextString | None = None
    icon_identifier: IconIdentifier | None = None
    extra_tlvs: tuple[ComprehensionTlv, ...] = ()

    def _body_tlvs(self) -> list[ComprehensionTlv]:
        default = None if self.default_text is None else self.default_text.encode_value()
        return [
            self.text_string.to_tlv(),
            self.response_length.to_tlv(),
            *_optional_tlv(ComprehensionTag.DEFAULT_TEXT, default),
            *_icon_tlv(self.icon_identifier),
        ]

    @classmethod
    def _from_objects(cls, details: CommandDetails, devices: DeviceIdentities, objects: _Picker) -> GetInput:
        text = TextString.decode_value(objects.require(ComprehensionTag.TEXT_STRING, "GET INPUT text string"))
        length = ResponseLength.decode_value(
            objects.require(ComprehensionTag.RESPONSE_LENGTH, "GET INPUT response length")
        )
        default = objects.take_value(ComprehensionTag.DEFAULT_TEXT)
        return cls(
            text,
            length,
            GetInputQualifier(details.command_qualifier),
            details.command_number,
            devices,
            None if default is None else TextString.decode_value(default),
            _take_icon(objects),
            objects.rest(),
        )


def _check_items(items: tuple[Item, ...], what: str) -> None:
    if not items:
        raise LocalProtocolError(f"{what} needs at least one item")


@dataclass(frozen=True, slots=True)
class SelectItem(_Command):
    """SELECT ITEM (TS 102 223 section 6.6.8): a title and a list of items; ``item_identifier`` is the default.

    ``items_next_action_indicator`` (8.24) and ``item_icon_identifier_list`` (8.32) are kept as their
    raw values.
    """

    type_of_command: ClassVar[TypeOfCommand] = TypeOfCommand.SELECT_ITEM

    items: tuple[Item, ...]
    alpha_identifier: AlphaIdentifier | None = None
    command_qualifier: SelectItemQualifier = SelectItemQualifier.NONE
    command_number: int = 1
    device_identities: DeviceIdentities = _UICC_TO_TERMINAL
    items_next_action_indicator: bytes | None = None
    item_identifier: int | None = None
    icon_identifier: IconIdentifier | None = None
    item_icon_identifier_list: bytes | None = None
    extra_tlvs: tuple[ComprehensionTlv, ...] = ()

    def __post_init__(self) -> None:
        _check_items(self.items, "SELECT ITEM")
        if self.item_identifier is not None and not 0 <= self.item_identifier <= 0xFF:
            raise LocalProtocolError(f"item identifier must fit in one octet, got {self.item_identifier}")

    def _body_tlvs(self) -> list[ComprehensionTlv]:
        default = None if self.item_identifier is None else bytes((self.item_identifier,))
        return [
            *([] if self.alpha_identifier is None else [self.alpha_identifier.to_tlv()]),
            *(item.to_tlv() for item in self.items),
            *_optional_tlv(ComprehensionTag.ITEMS_NEXT_ACTION_INDICATOR, self.items_next_action_indicator),
            *_optional_tlv(ComprehensionTag.ITEM_IDENTIFIER, default),
            *_icon_tlv(self.icon_identifier),
            *_optional_tlv(ComprehensionTag.ITEM_ICON_IDENTIFIER_LIST, self.item_icon_identifier_list),
        ]

    @classmethod
    def _from_objects(
        cls, details: CommandDetails, devices: DeviceIdentities, objects: _Picker
    ) -> SelectItem:
        alpha = _take_alpha(objects)
        items = _take_items(objects, "SELECT ITEM")
        next_action = objects.take_value(ComprehensionTag.ITEMS_NEXT_ACTION_INDICATOR)
        default = objects.take_value(ComprehensionTag.ITEM_IDENTIFIER)
        if default is not None and len(default) != 1:
            raise DecodeError("item identifier must be 1 octet", COMMAND_DATA_NOT_UNDERSTOOD)
        return cls(
            items,
            alpha,
            SelectItemQualifier(details.command_qualifier),
            details.command_number,
            devices,
            next_action,
            None if default is None else default[0],
            _take_icon(objects),
            objects.take_value(ComprehensionTag.ITEM_ICON_IDENTIFIER_LIST),
            objects.rest(),
        )


@dataclass(frozen=True, slots=True)
class SetUpMenu(_Command):
    """SET UP MENU (TS 102 223 section 6.6.7): the toolkit menu; a single null item ``Item(None)`` removes it."""

    type_of_command: ClassVar[TypeOfCommand] = TypeOfCommand.SET_UP_MENU

    alpha_identifier: AlphaIdentifier
    items: tuple[Item, ...]
    command_qualifier: SetUpMenuQualifier = SetUpMenuQualifier.NONE
    command_number: int = 1
    device_identities: DeviceIdentities = _UICC_TO_TERMINAL
    items_next_action_indicator: bytes | None = None
    icon_identifier: IconIdentifier | None = None
    item_icon_identifier_list: bytes | None = None
    extra_tlvs: tuple[ComprehensionTlv, ...] = ()

    def __post_init__(self) -> None:
        _check_items(self.items, "SET UP MENU")

    def _body_tlvs(self) -> list[ComprehensionTlv]:
        return [
            self.alpha_identifier.to_tlv(),
            *(item.to_tlv() for item in self.items),
            *_optional_tlv(ComprehensionTag.ITEMS_NEXT_ACTION_INDICATOR, self.items_next_action_indicator),
            *_icon_tlv(self.icon_identifier),
            *_optional_tlv(ComprehensionTag.ITEM_ICON_IDENTIFIER_LIST, self.item_icon_identifier_list),
        ]

    @classmethod
    def _from_objects(cls, details: CommandDetails, devices: DeviceIdentities, objects: _Picker) -> SetUpMenu:
        alpha = AlphaIdentifier.decode_value(
            objects.require(ComprehensionTag.ALPHA_IDENTIFIER, "SET UP MENU alpha identifier")
        )
        items = _take_items(objects, "SET UP MENU")
        next_action = objects.take_value(ComprehensionTag.ITEMS_NEXT_ACTION_INDICATOR)
        return cls(
            alpha,
            items,
            SetUpMenuQualifier(details.command_qualifier),
            details.command_number,
            devices,
            next_action,
            _take_icon(objects),
            objects.take_value(ComprehensionTag.ITEM_ICON_IDENTIFIER_LIST),
            objects.rest(),
        )


@dataclass(frozen=True, slots=True)
class SendShortMessage(_Command):
    """SEND SHORT MESSAGE (TS 102 223 section 6.6.9, TS 31.111 section 6.6.9).

    ``sms_tpdu`` is the SMS-SUBMIT TPDU (TS 23.040) as octets; ``address`` is the service centre.
    """

    type_of_command: ClassVar[TypeOfCommand] = TypeOfCommand.SEND_SHORT_MESSAGE

    sms_tpdu: bytes
    alpha_identifier: AlphaIdentifier | None = None
    address: Address | None = None
    command_qualifier: SendShortMessageQualifier = SendShortMessageQualifier.NONE
    command_number: int = 1
    device_identities: DeviceIdentities = _UICC_TO_NETWORK
    icon_identifier: IconIdentifier | None = None
    extra_tlvs: tuple[ComprehensionTlv, ...] = ()

    def _body_tlvs(self) -> list[ComprehensionTlv]:
        return [
            *([] if self.alpha_identifier is None else [self.alpha_identifier.to_tlv()]),
            *([] if self.address is None else [self.address.to_tlv()]),
            ComprehensionTlv(ComprehensionTag.SMS_TPDU, self.sms_tpdu),
            *_icon_tlv(self.icon_identifier),
        ]

    @classmethod
    def _from_objects(
        cls, details: CommandDetails, devices: DeviceIdentities, objects: _Picker
    ) -> SendShortMessage:
        alpha = _take_alpha(objects)
        address = objects.take_value(ComprehensionTag.ADDRESS)
        tpdu = objects.require(ComprehensionTag.SMS_TPDU, "SEND SHORT MESSAGE SMS TPDU")
        return cls(
            tpdu,
            alpha,
            None if address is None else Address.decode_value(address),
            SendShortMessageQualifier(details.command_qualifier),
            details.command_number,
            devices,
            _take_icon(objects),
            objects.rest(),
        )


@dataclass(frozen=True, slots=True)
class SendUssd(_Command):
    """SEND USSD (TS 31.111 section 6.6.11): the terminal sends ``ussd_string`` and returns the answer in the TR."""

    type_of_command: ClassVar[TypeOfCommand] = TypeOfCommand.SEND_USSD

    ussd_string: UssdString
    alpha_identifier: AlphaIdentifier | None = None
    command_qualifier: int = 0
    command_number: int = 1
    device_identities: DeviceIdentities = _UICC_TO_NETWORK
    icon_identifier: IconIdentifier | None = None
    extra_tlvs: tuple[ComprehensionTlv, ...] = ()

    def _body_tlvs(self) -> list[ComprehensionTlv]:
        return [
            *([] if self.alpha_identifier is None else [self.alpha_identifier.to_tlv()]),
            self.ussd_string.to_tlv(),
            *_icon_tlv(self.icon_identifier),
        ]

    @classmethod
    def _from_objects(cls, details: CommandDetails, devices: DeviceIdentities, objects: _Picker) -> SendUssd:
        alpha = _take_alpha(objects)
        ussd = UssdString.decode_value(objects.require(ComprehensionTag.USSD_STRING, "SEND USSD USSD string"))
        return cls(
            ussd,
            alpha,
            details.command_qualifier,
            details.command_number,
            devices,
            _take_icon(objects),
            objects.rest(),
        )


@dataclass(frozen=True, slots=True)
class UnknownCommand:
    """A proactive command of a type not modelled here: every COMPREHENSION-TLV kept in order."""

    tlvs: tuple[ComprehensionTlv, ...]

    def __post_init__(self) -> None:
        details = find_tlv(self.tlvs, ComprehensionTag.COMMAND_DETAILS)
        if details is None:
            raise LocalProtocolError("a proactive command needs command details")
        try:
            CommandDetails.decode_value(details.value)
        except DecodeError as exc:
            raise LocalProtocolError(str(exc)) from None

    @property
    def command_details(self) -> CommandDetails:
        details = find_tlv(self.tlvs, ComprehensionTag.COMMAND_DETAILS)
        assert details is not None  # checked in __post_init__
        return CommandDetails.decode_value(details.value)

    @property
    def device_identities(self) -> DeviceIdentities | None:
        """The device identities, None if absent or malformed."""
        devices = find_tlv(self.tlvs, ComprehensionTag.DEVICE_IDENTITIES)
        if devices is None or len(devices.value) != 2:
            return None
        return DeviceIdentities.decode_value(devices.value)

    def encode(self) -> bytes:
        return encode_ber_tlv(BerTag.PROACTIVE_COMMAND, self.tlvs)


ProactiveCommand: TypeAlias = (
    DisplayText | GetInkey | GetInput | SelectItem | SetUpMenu | SendShortMessage | SendUssd | UnknownCommand
)

_COMMAND_CLASSES: dict[int, type[_Command]] = {
    cls.type_of_command: cls
    for cls in (DisplayText, GetInkey, GetInput, SelectItem, SetUpMenu, SendShortMessage, SendUssd)
}


def decode_proactive(data: bytes) -> ProactiveCommand:
    """Decode the 'D0' BER-TLV of a proactive command into its typed command or ``UnknownCommand``."""
    ber = decode_ber_tlv(data)
    if ber.tag != BerTag.PROACTIVE_COMMAND:
        raise DecodeError(f"BER tag 0x{ber.tag:02X} is not a proactive command", COMMAND_DATA_NOT_UNDERSTOOD)
    tlvs = ber.comprehension_tlvs()
    objects = _Picker(tlvs)
    details = CommandDetails.decode_value(
        objects.require(ComprehensionTag.COMMAND_DETAILS, "command details")
    )
    cls = _COMMAND_CLASSES.get(details.type_of_command)
    if cls is None:
        return UnknownCommand(tlvs)
    devices = DeviceIdentities.decode_value(
        objects.require(ComprehensionTag.DEVICE_IDENTITIES, "device identities")
    )
    command: ProactiveCommand = cls._from_objects(details, devices, objects)
    return command
