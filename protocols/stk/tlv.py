"""CAT TLV framing and the simple data objects of the toolkit.

Framing (ETSI TS 101 220 section 7.1, ETSI TS 102 223 annex C):

- COMPREHENSION-TLV (TS 101 220 section 7.1.1): the tag is one byte (bit 8 = comprehension required
  (CR), bits 7-1 = tag value '01'..'7E') or three bytes ('7F', then CR in bit 16 and a 15-bit tag
  value). The single-byte values '00', '80' and 'FF' are not used. The length is one byte
  ('00'..'7F') or '81' followed by one byte ('80'..'FF'); a CAT message never exceeds 255 octets, so
  the longer forms are rejected, as are non-minimal lengths.
- BER-TLV (TS 101 220 section 7.2, tags in table 7.17): the one-byte tags that wrap a proactive
  command ('D0') or an ENVELOPE ('D1' SMS-PP download, 'D3' menu selection, 'D6' event download, ...)
  around a list of COMPREHENSION-TLVs, with the same length coding.

Simple data objects (TS 102 223 section 8, TS 31.111 section 8): command details (8.6), device
identities (8.7), duration (8.8), alpha identifier (8.2), address (8.1), text string (8.15), item
(8.9), response length (8.11), USSD string (TS 31.111 8.17), icon identifier (8.31). Objects whose
payload is text keep the coded octets, so every object re-encodes byte for byte; ``text`` decodes
them and ``of(...)`` builds them from a ``str``. The GSM 7-bit default alphabet, its packing and UCS2
(TS 23.038 section 6) come from ``protocols.gsm.alphabet``; the SMS data coding scheme of a text
string is read with ``protocols.gsm.dcs`` (TS 23.038 section 4), the CBS one of a USSD string here
(section 5). Packed 7-bit text carries no septet count, so it follows the <CR> rule of 6.1.2.3.1.

A ``DecodeError`` raised here carries in ``status`` the general result (TS 102 223 section 8.12) a
terminal answers such bytes with: '32' command data not understood, '36' required values missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from protocols.errors import DecodeError, LocalProtocolError
from protocols.gsm.alphabet import (
    Coding,
    decode_gsm7,
    decode_ucs2,
    encode_gsm7,
    encode_ucs2,
    is_gsm7,
    pack_septets,
    unpack_septets,
)
from protocols.gsm.dcs import decode_dcs
from protocols.registry import KeepUnknownIntEnum

__all__ = [
    "MAX_LENGTH",
    "Address",
    "AlphaIdentifier",
    "BerTag",
    "BerTlv",
    "CommandDetails",
    "ComprehensionTag",
    "ComprehensionTlv",
    "DataCodingScheme",
    "DeviceIdentities",
    "DeviceIdentity",
    "Duration",
    "IconIdentifier",
    "Item",
    "ResponseLength",
    "TextString",
    "TimeUnit",
    "TypeOfCommand",
    "UssdString",
    "decode_ber_tlv",
    "decode_comprehension_tlvs",
    "encode_ber_tlv",
    "encode_comprehension_tlvs",
    "find_tlv",
]

MAX_LENGTH = 255
"""The longest value a CAT length field may announce ('81 FF')."""

# general results (TS 102 223 section 8.12) carried as DecodeError.status
COMMAND_DATA_NOT_UNDERSTOOD = 0x32
REQUIRED_VALUES_MISSING = 0x36


_KeepUnknown = KeepUnknownIntEnum


class ComprehensionTag(_KeepUnknown):
    """COMPREHENSION-TLV tag values without the CR bit (TS 101 220 table 7.23; 3GPP ones from TS 31.111)."""

    COMMAND_DETAILS = 0x01
    DEVICE_IDENTITIES = 0x02
    RESULT = 0x03
    DURATION = 0x04
    ALPHA_IDENTIFIER = 0x05
    ADDRESS = 0x06
    CAPABILITY_CONFIGURATION_PARAMETERS = 0x07
    SUBADDRESS = 0x08
    SS_STRING = 0x09
    USSD_STRING = 0x0A
    SMS_TPDU = 0x0B
    CELL_BROADCAST_PAGE = 0x0C
    TEXT_STRING = 0x0D
    TONE = 0x0E
    ITEM = 0x0F
    ITEM_IDENTIFIER = 0x10
    RESPONSE_LENGTH = 0x11
    FILE_LIST = 0x12
    LOCATION_INFORMATION = 0x13
    IMEI = 0x14
    HELP_REQUEST = 0x15
    NETWORK_MEASUREMENT_RESULTS = 0x16
    DEFAULT_TEXT = 0x17
    ITEMS_NEXT_ACTION_INDICATOR = 0x18
    EVENT_LIST = 0x19
    CAUSE = 0x1A
    LOCATION_STATUS = 0x1B
    TRANSACTION_IDENTIFIER = 0x1C
    BCCH_CHANNEL_LIST = 0x1D
    ICON_IDENTIFIER = 0x1E
    ITEM_ICON_IDENTIFIER_LIST = 0x1F
    CARD_READER_STATUS = 0x20
    CARD_ATR = 0x21
    C_APDU = 0x22
    R_APDU = 0x23
    TIMER_IDENTIFIER = 0x24
    TIMER_VALUE = 0x25
    DATE_TIME_AND_TIME_ZONE = 0x26
    CALL_CONTROL_REQUESTED_ACTION = 0x27
    AT_COMMAND = 0x28
    AT_RESPONSE = 0x29
    BC_REPEAT_INDICATOR = 0x2A
    IMMEDIATE_RESPONSE = 0x2B
    DTMF_STRING = 0x2C
    LANGUAGE = 0x2D
    TIMING_ADVANCE = 0x2E
    AID = 0x2F
    BROWSER_IDENTITY = 0x30
    URL = 0x31
    BEARER = 0x32
    PROVISIONING_REFERENCE_FILE = 0x33
    BROWSER_TERMINATION_CAUSE = 0x34
    BEARER_DESCRIPTION = 0x35
    CHANNEL_DATA = 0x36
    CHANNEL_DATA_LENGTH = 0x37
    CHANNEL_STATUS = 0x38
    BUFFER_SIZE = 0x39
    CARD_READER_IDENTIFIER = 0x3A
    FILE_UPDATE_INFORMATION = 0x3B
    UICC_TERMINAL_INTERFACE_TRANSPORT_LEVEL = 0x3C
    OTHER_ADDRESS = 0x3E
    ACCESS_TECHNOLOGY = 0x3F
    DISPLAY_PARAMETERS = 0x40
    SERVICE_RECORD = 0x41
    DEVICE_FILTER = 0x42
    SERVICE_SEARCH = 0x43
    ATTRIBUTE_INFORMATION = 0x44
    SERVICE_AVAILABILITY = 0x45
    NETWORK_ACCESS_NAME = 0x47
    REMOTE_ENTITY_ADDRESS = 0x49
    TEXT_ATTRIBUTE = 0x50
    ITEM_TEXT_ATTRIBUTE_LIST = 0x51
    PDP_CONTEXT_ACTIVATION_PARAMETER = 0x52
    IMEISV = 0x62
    BATTERY_STATE = 0x63
    BROWSING_STATUS = 0x64
    NETWORK_SEARCH_MODE = 0x65
    FRAME_LAYOUT = 0x66
    FRAMES_INFORMATION = 0x67
    FRAME_IDENTIFIER = 0x68
    MULTIMEDIA_MESSAGE_REFERENCE = 0x6A
    MULTIMEDIA_MESSAGE_IDENTIFIER = 0x6B
    MULTIMEDIA_MESSAGE_TRANSFER_STATUS = 0x6C
    MULTIMEDIA_MESSAGE_CONTENT_IDENTIFIER = 0x6E
    MULTIMEDIA_MESSAGE_NOTIFICATION = 0x6F
    LAST_ENVELOPE = 0x70
    REGISTRY_APPLICATION_DATA = 0x71
    BROADCAST_NETWORK_INFORMATION = 0x7A
    ACTIVATE_DESCRIPTOR = 0x7B


class BerTag(_KeepUnknown):
    """BER-TLV tags of the toolkit (TS 101 220 table 7.17; 3GPP ones from TS 31.111)."""

    PROACTIVE_COMMAND = 0xD0
    SMS_PP_DOWNLOAD = 0xD1
    CELL_BROADCAST_DOWNLOAD = 0xD2
    MENU_SELECTION = 0xD3
    CALL_CONTROL = 0xD4
    MO_SHORT_MESSAGE_CONTROL = 0xD5
    EVENT_DOWNLOAD = 0xD6
    TIMER_EXPIRATION = 0xD7
    USSD_DOWNLOAD = 0xD9
    MMS_TRANSFER_STATUS = 0xDA
    MMS_NOTIFICATION_DOWNLOAD = 0xDB
    TERMINAL_APPLICATION = 0xDC
    GEOGRAPHICAL_LOCATION_REPORTING = 0xDD
    ENVELOPE_CONTAINER = 0xDE
    PROSE_REPORT = 0xDF


class TypeOfCommand(_KeepUnknown):
    """Type of command in the command details (TS 102 223 section 9.4; TS 31.111 section 9.4)."""

    REFRESH = 0x01
    MORE_TIME = 0x02
    POLL_INTERVAL = 0x03
    POLLING_OFF = 0x04
    SET_UP_EVENT_LIST = 0x05
    SET_UP_CALL = 0x10
    SEND_SS = 0x11
    SEND_USSD = 0x12
    SEND_SHORT_MESSAGE = 0x13
    SEND_DTMF = 0x14
    LAUNCH_BROWSER = 0x15
    GEOGRAPHICAL_LOCATION_REQUEST = 0x16
    PLAY_TONE = 0x20
    DISPLAY_TEXT = 0x21
    GET_INKEY = 0x22
    GET_INPUT = 0x23
    SELECT_ITEM = 0x24
    SET_UP_MENU = 0x25
    PROVIDE_LOCAL_INFORMATION = 0x26
    TIMER_MANAGEMENT = 0x27
    SET_UP_IDLE_MODE_TEXT = 0x28
    PERFORM_CARD_APDU = 0x30
    POWER_ON_CARD = 0x31
    POWER_OFF_CARD = 0x32
    GET_READER_STATUS = 0x33
    RUN_AT_COMMAND = 0x34
    LANGUAGE_NOTIFICATION = 0x35
    OPEN_CHANNEL = 0x40
    CLOSE_CHANNEL = 0x41
    RECEIVE_DATA = 0x42
    SEND_DATA = 0x43
    GET_CHANNEL_STATUS = 0x44
    SERVICE_SEARCH = 0x45
    GET_SERVICE_INFORMATION = 0x46
    DECLARE_SERVICE = 0x47
    SET_FRAMES = 0x50
    GET_FRAMES_STATUS = 0x51
    RETRIEVE_MULTIMEDIA_MESSAGE = 0x60
    SUBMIT_MULTIMEDIA_MESSAGE = 0x61
    DISPLAY_MULTIMEDIA_MESSAGE = 0x62
    ACTIVATE = 0x70
    CONTACTLESS_STATE_CHANGED = 0x71
    COMMAND_CONTAINER = 0x72
    ENCAPSULATED_SESSION_CONTROL = 0x73
    END_OF_THE_PROACTIVE_UICC_SESSION = 0x81


class DeviceIdentity(_KeepUnknown):
    """Device identities (TS 102 223 section 8.7)."""

    KEYPAD = 0x01
    DISPLAY = 0x02
    EARPIECE = 0x03
    UICC = 0x81
    TERMINAL = 0x82
    NETWORK = 0x83


class TimeUnit(_KeepUnknown):
    """Time unit of a duration (TS 102 223 section 8.8)."""

    MINUTES = 0x00
    SECONDS = 0x01
    TENTHS_OF_SECONDS = 0x02


class DataCodingScheme(_KeepUnknown):
    """The text string codings CAT uses (TS 102 223 section 8.15, coded as the SMS DCS of TS 23.038 section 4)."""

    GSM_7BIT_PACKED = 0x00
    GSM_8BIT = 0x04
    UCS2 = 0x08


# ---------------------------------------------------------------------------------------------------
# COMPREHENSION-TLV and BER-TLV framing


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise LocalProtocolError(f"{name} must fit in one octet, got {value}")


def _encode_length(length: int) -> bytes:
    """One octet below 0x80, else '81' and one octet; the TLV constructors keep lengths within 255."""
    return bytes((length,)) if length < 0x80 else bytes((0x81, length))


def _decode_length(data: bytes, offset: int) -> tuple[int, int]:
    """Return (length, offset of the value) for the length field at ``offset``."""
    if offset >= len(data):
        raise DecodeError("length field missing", COMMAND_DATA_NOT_UNDERSTOOD)
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    if first != 0x81:
        raise DecodeError(f"length form 0x{first:02X} not used by CAT", COMMAND_DATA_NOT_UNDERSTOOD)
    if offset + 1 >= len(data):
        raise DecodeError("two-byte length truncated", COMMAND_DATA_NOT_UNDERSTOOD)
    length = data[offset + 1]
    if length < 0x80:
        raise DecodeError(f"non-minimal length 81 {length:02X}", COMMAND_DATA_NOT_UNDERSTOOD)
    return length, offset + 2


@dataclass(frozen=True, slots=True)
class ComprehensionTlv:
    """One COMPREHENSION-TLV (TS 101 220 section 7.1.1).

    ``tag`` is the tag value without the CR bit (a ``ComprehensionTag`` or any value up to 0x7FFF).
    ``three_byte_format`` records that the tag was coded as '7F' + two bytes; values that cannot be
    coded in one byte ('00', '7F' and above 0x7E) always use that format.
    """

    tag: int
    value: bytes = b""
    comprehension_required: bool = True
    three_byte_format: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.tag <= 0x7FFF:
            raise LocalProtocolError(f"COMPREHENSION-TLV tag value must be 0..0x7FFF, got {self.tag}")
        if len(self.value) > MAX_LENGTH:
            raise LocalProtocolError(f"a CAT value cannot exceed {MAX_LENGTH} octets, got {len(self.value)}")
        if not self.three_byte_format and (self.tag == 0 or self.tag >= 0x7F):
            object.__setattr__(self, "three_byte_format", True)

    def encode(self) -> bytes:
        if self.three_byte_format:
            tag = bytes((0x7F, (0x80 if self.comprehension_required else 0) | self.tag >> 8, self.tag & 0xFF))
        else:
            tag = bytes(((0x80 if self.comprehension_required else 0) | self.tag,))
        return tag + _encode_length(len(self.value)) + self.value


def _decode_one_comprehension_tlv(data: bytes, offset: int) -> tuple[ComprehensionTlv, int]:
    first = data[offset]
    if first in (0x00, 0x80, 0xFF):
        raise DecodeError(f"0x{first:02X} is not a COMPREHENSION-TLV tag", COMMAND_DATA_NOT_UNDERSTOOD)
    if first == 0x7F:
        if offset + 3 > len(data):
            raise DecodeError("three-byte tag truncated", COMMAND_DATA_NOT_UNDERSTOOD)
        cr = bool(data[offset + 1] & 0x80)
        tag = (data[offset + 1] & 0x7F) << 8 | data[offset + 2]
        three_byte, offset = True, offset + 3
    else:
        cr, tag, three_byte, offset = bool(first & 0x80), first & 0x7F, False, offset + 1
    length, offset = _decode_length(data, offset)
    end = offset + length
    if end > len(data):
        raise DecodeError(
            f"COMPREHENSION-TLV 0x{tag:02X} announces {length} octets, {len(data) - offset} left",
            COMMAND_DATA_NOT_UNDERSTOOD,
        )
    return ComprehensionTlv(tag, data[offset:end], cr, three_byte), end


def decode_comprehension_tlvs(data: bytes) -> tuple[ComprehensionTlv, ...]:
    """Split ``data`` into COMPREHENSION-TLVs; every octet must belong to one."""
    tlvs: list[ComprehensionTlv] = []
    offset = 0
    while offset < len(data):
        tlv, offset = _decode_one_comprehension_tlv(data, offset)
        tlvs.append(tlv)
    return tuple(tlvs)


def encode_comprehension_tlvs(tlvs: Iterable[ComprehensionTlv]) -> bytes:
    return b"".join(tlv.encode() for tlv in tlvs)


def find_tlv(tlvs: Iterable[ComprehensionTlv], tag: int) -> ComprehensionTlv | None:
    """The first TLV with tag value ``tag``, or None."""
    for tlv in tlvs:
        if tlv.tag == tag:
            return tlv
    return None


@dataclass(frozen=True, slots=True)
class BerTlv:
    """A one-byte-tag BER-TLV of the toolkit (TS 101 220 section 7.2): ``tag`` ('D0', 'D1', ...) and ``value``."""

    tag: int
    value: bytes = b""

    def __post_init__(self) -> None:
        _check_byte("BER-TLV tag", self.tag)
        if self.tag in (0x00, 0xFF) or self.tag & 0x1F == 0x1F:
            raise LocalProtocolError(f"0x{self.tag:02X} is not a one-byte BER-TLV tag")
        if len(self.value) > MAX_LENGTH:
            raise LocalProtocolError(f"a CAT value cannot exceed {MAX_LENGTH} octets, got {len(self.value)}")

    def encode(self) -> bytes:
        return bytes((self.tag,)) + _encode_length(len(self.value)) + self.value

    def comprehension_tlvs(self) -> tuple[ComprehensionTlv, ...]:
        """The COMPREHENSION-TLVs the value holds (DecodeError if it does not split into them)."""
        return decode_comprehension_tlvs(self.value)


def decode_ber_tlv(data: bytes) -> BerTlv:
    """Decode exactly one BER-TLV that spans all of ``data``."""
    if not data:
        raise DecodeError("empty BER-TLV", COMMAND_DATA_NOT_UNDERSTOOD)
    tag = data[0]
    if tag in (0x00, 0xFF) or tag & 0x1F == 0x1F:
        raise DecodeError(f"0x{tag:02X} is not a one-byte BER-TLV tag", COMMAND_DATA_NOT_UNDERSTOOD)
    length, offset = _decode_length(data, 1)
    if offset + length != len(data):
        raise DecodeError(
            f"BER-TLV 0x{tag:02X} announces {length} octets, {len(data) - offset} follow",
            COMMAND_DATA_NOT_UNDERSTOOD,
        )
    return BerTlv(tag, data[offset:])


def encode_ber_tlv(tag: int, tlvs: Iterable[ComprehensionTlv]) -> bytes:
    """Wrap COMPREHENSION-TLVs in the BER-TLV ``tag``."""
    return BerTlv(tag, encode_comprehension_tlvs(tlvs)).encode()


# ---------------------------------------------------------------------------------------------------
# text codings: the GSM 7-bit default alphabet, its packing and UCS2 come from protocols.gsm.alphabet
# (TS 23.038 sections 6.2.1, 6.1.2 and 6.2.3); errors are re-raised with the general result '32'.

_GSM7, _EIGHT_BIT, _UCS2 = Coding.GSM7, Coding.EIGHT_BIT, Coding.UCS2


def _gsm_encode(text: str) -> bytes:
    """``text`` as GSM default alphabet codes, one per octet (bit 8 = 0); extension characters take two."""
    return bytes(encode_gsm7(text))


def _gsm_decode(codes: bytes) -> str:
    try:
        return decode_gsm7(codes)
    except DecodeError as exc:
        raise DecodeError(str(exc), COMMAND_DATA_NOT_UNDERSTOOD) from None


def _ucs2_decode(data: bytes) -> str:
    try:
        return decode_ucs2(data)
    except DecodeError as exc:
        raise DecodeError(str(exc), COMMAND_DATA_NOT_UNDERSTOOD) from None


def _sms_alphabet(dcs: int) -> Coding | None:
    """Character set of an SMS data coding scheme (TS 23.038 section 4); None for compressed text."""
    scheme = decode_dcs(dcs)
    return None if scheme.compressed else scheme.alphabet


def _decode_by_alphabet(alphabet: Coding | None, data: bytes, what: str, dcs: int) -> str:
    if alphabet == _GSM7:
        return _gsm_decode(bytes(unpack_septets(data)))
    if alphabet == _EIGHT_BIT:
        return _gsm_decode(data)
    if alphabet == _UCS2:
        return _ucs2_decode(data)
    raise DecodeError(
        f"{what} data coding scheme 0x{dcs:02X} is not a text coding", COMMAND_DATA_NOT_UNDERSTOOD
    )


def _encode_by_alphabet(alphabet: Coding | None, text: str, what: str, dcs: int) -> bytes:
    """Packed 7-bit with the <CR> rule of TS 23.038 6.1.2.3.1 (no septet count travels), 8-bit, or UCS2."""
    if alphabet == _GSM7:
        return pack_septets(encode_gsm7(text), cr_pad=True)
    if alphabet == _EIGHT_BIT:
        return _gsm_encode(text)
    if alphabet == _UCS2:
        return encode_ucs2(text)
    raise LocalProtocolError(f"{what} data coding scheme 0x{dcs:02X} is not a text coding")


# alpha identifiers and item texts: coded as the EF-ADN alpha identifier (TS 102 221 annex A)


def _alpha_decode(data: bytes) -> str:
    if not data:
        return ""
    scheme = data[0]
    if scheme == 0x80:
        body = data[1:]
        if len(body) % 2 and body[-1] == 0xFF:
            body = body[:-1]
        text = _ucs2_decode(body)
        return text.rstrip("\uffff")
    if scheme in (0x81, 0x82):
        header = 3 if scheme == 0x81 else 4
        if len(data) < header:
            raise DecodeError(
                f"alpha identifier scheme 0x{scheme:02X} truncated", COMMAND_DATA_NOT_UNDERSTOOD
            )
        count = data[1]
        base = data[2] << 7 if scheme == 0x81 else data[2] << 8 | data[3]
        codes = data[header : header + count]
        if len(codes) < count:
            raise DecodeError(
                "alpha identifier has fewer characters than announced", COMMAND_DATA_NOT_UNDERSTOOD
            )
        chars: list[str] = []
        gsm_run = bytearray()  # GSM codes in a row, decoded together so that ESC + code stays one char
        for code in codes:
            if code & 0x80:
                point = base + (code & 0x7F)
                if 0xD800 <= point <= 0xDFFF or point > 0xFFFF:
                    raise DecodeError("alpha identifier points outside UCS2", COMMAND_DATA_NOT_UNDERSTOOD)
                chars.extend((_gsm_decode(bytes(gsm_run)), chr(point)))
                gsm_run.clear()
            else:
                gsm_run.append(code)
        chars.append(_gsm_decode(bytes(gsm_run)))
        return "".join(chars)
    return _gsm_decode(data.rstrip(b"\xff"))


def _alpha_encode(text: str) -> bytes:
    if is_gsm7(text):
        return _gsm_encode(text)
    return b"\x80" + encode_ucs2(text)


# ---------------------------------------------------------------------------------------------------
# simple data objects (TS 102 223 section 8)


def _exact(value: bytes, size: int, what: str) -> None:
    if len(value) != size:
        raise DecodeError(f"{what} must be {size} octets, got {len(value)}", COMMAND_DATA_NOT_UNDERSTOOD)


class _DataObject:
    """Mixin: ``to_tlv`` for data objects that define ``TAG`` and ``encode_value``."""

    __slots__ = ()
    TAG: ClassVar[ComprehensionTag]

    def encode_value(self) -> bytes:
        raise NotImplementedError

    def to_tlv(self, comprehension_required: bool = True) -> ComprehensionTlv:
        return ComprehensionTlv(self.TAG, self.encode_value(), comprehension_required)


@dataclass(frozen=True, slots=True)
class CommandDetails(_DataObject):
    """Command details (TS 102 223 section 8.6)."""

    TAG: ClassVar[ComprehensionTag] = ComprehensionTag.COMMAND_DETAILS

    command_number: int
    type_of_command: int
    command_qualifier: int = 0

    def __post_init__(self) -> None:
        _check_byte("command number", self.command_number)
        _check_byte("type of command", self.type_of_command)
        _check_byte("command qualifier", self.command_qualifier)

    def encode_value(self) -> bytes:
        return bytes((self.command_number, self.type_of_command, self.command_qualifier))

    @classmethod
    def decode_value(cls, value: bytes) -> CommandDetails:
        _exact(value, 3, "command details")
        return cls(value[0], TypeOfCommand(value[1]), value[2])


@dataclass(frozen=True, slots=True)
class DeviceIdentities(_DataObject):
    """Device identities (TS 102 223 section 8.7): who sends the object and who it is for."""

    TAG: ClassVar[ComprehensionTag] = ComprehensionTag.DEVICE_IDENTITIES

    source_device_identity: int
    destination_device_identity: int

    def __post_init__(self) -> None:
        _check_byte("source device identity", self.source_device_identity)
        _check_byte("destination device identity", self.destination_device_identity)

    def encode_value(self) -> bytes:
        return bytes((self.source_device_identity, self.destination_device_identity))

    @classmethod
    def decode_value(cls, value: bytes) -> DeviceIdentities:
        _exact(value, 2, "device identities")
        return cls(DeviceIdentity(value[0]), DeviceIdentity(value[1]))


@dataclass(frozen=True, slots=True)
class Duration(_DataObject):
    """Duration (TS 102 223 section 8.8): ``Duration(TimeUnit.SECONDS, 60)`` is '84 02 01 3C'."""

    TAG: ClassVar[ComprehensionTag] = ComprehensionTag.DURATION

    time_unit: int
    time_interval: int

    def __post_init__(self) -> None:
        _check_byte("time unit", self.time_unit)
        _check_byte("time interval", self.time_interval)

    @property
    def seconds(self) -> float | None:
        """The duration in seconds, None for an unknown time unit."""
        scale = {TimeUnit.MINUTES: 60.0, TimeUnit.SECONDS: 1.0, TimeUnit.TENTHS_OF_SECONDS: 0.1}.get(
            TimeUnit(self.time_unit)
        )
        return None if scale is None else scale * self.time_interval

    def encode_value(self) -> bytes:
        return bytes((self.time_unit, self.time_interval))

    @classmethod
    def decode_value(cls, value: bytes) -> Duration:
        _exact(value, 2, "duration")
        return cls(TimeUnit(value[0]), value[1])


@dataclass(frozen=True, slots=True)
class TextString(_DataObject):
    """Text string (TS 102 223 section 8.15): a data coding scheme and the coded text.

    ``dcs`` None is the null text string (length 0). ``TextString.of("Buy 1GB?")`` picks the 8-bit
    GSM default alphabet (DCS '04') when it can and UCS2 ('08') otherwise.
    """

    TAG: ClassVar[ComprehensionTag] = ComprehensionTag.TEXT_STRING

    dcs: int | None
    data: bytes = b""

    def __post_init__(self) -> None:
        if self.dcs is None:
            if self.data:
                raise LocalProtocolError("a null text string has no data")
        else:
            _check_byte("data coding scheme", self.dcs)

    @classmethod
    def of(cls, text: str, dcs: int | None = None) -> TextString:
        """Code ``text`` with ``dcs`` (by default '04' if the GSM alphabet holds it, else '08')."""
        if dcs is None:
            dcs = DataCodingScheme.GSM_8BIT if is_gsm7(text) else DataCodingScheme.UCS2
        _check_byte("data coding scheme", dcs)
        return cls(DataCodingScheme(dcs), _encode_by_alphabet(_sms_alphabet(dcs), text, "text string", dcs))

    @classmethod
    def yes_no(cls, yes: bool) -> TextString:
        """The answer to a yes/no GET INKEY (TS 102 223 section 6.8): '04 01' yes, '04 00' no."""
        return cls(DataCodingScheme.GSM_8BIT, b"\x01" if yes else b"\x00")

    @property
    def text(self) -> str:
        """The decoded text ('' for the null text string); DecodeError if the coding is not text."""
        if self.dcs is None:
            return ""
        return _decode_by_alphabet(_sms_alphabet(self.dcs), self.data, "text string", self.dcs)

    def encode_value(self) -> bytes:
        return b"" if self.dcs is None else bytes((self.dcs,)) + self.data

    @classmethod
    def decode_value(cls, value: bytes) -> TextString:
        if not value:
            return cls(None)
        return cls(DataCodingScheme(value[0]), value[1:])


@dataclass(frozen=True, slots=True)
class AlphaIdentifier(_DataObject):
    """Alpha identifier (TS 102 223 section 8.2), coded like the EF-ADN alpha identifier.

    ``data`` holds the coded octets: GSM default alphabet with bit 8 = 0, or one of the UCS2 schemes
    '80', '81', '82' (TS 102 221 annex A). Empty ``data`` is the null alpha identifier.
    """

    TAG: ClassVar[ComprehensionTag] = ComprehensionTag.ALPHA_IDENTIFIER

    data: bytes = b""

    @classmethod
    def of(cls, text: str) -> AlphaIdentifier:
        return cls(_alpha_encode(text))

    @property
    def text(self) -> str:
        return _alpha_decode(self.data)

    def encode_value(self) -> bytes:
        return self.data

    @classmethod
    def decode_value(cls, value: bytes) -> AlphaIdentifier:
        return cls(value)


@dataclass(frozen=True, slots=True)
class Item(_DataObject):
    """Item (TS 102 223 section 8.9): an identifier and its text, coded like an alpha identifier.

    ``identifier`` None is the null item (length 0), which removes the menu in SET UP MENU.
    """

    TAG: ClassVar[ComprehensionTag] = ComprehensionTag.ITEM

    identifier: int | None
    data: bytes = b""

    def __post_init__(self) -> None:
        if self.identifier is None:
            if self.data:
                raise LocalProtocolError("the null item has no text")
        else:
            _check_byte("item identifier", self.identifier)

    @classmethod
    def of(cls, identifier: int, text: str) -> Item:
        return cls(identifier, _alpha_encode(text))

    @property
    def text(self) -> str:
        return _alpha_decode(self.data)

    def encode_value(self) -> bytes:
        return b"" if self.identifier is None else bytes((self.identifier,)) + self.data

    @classmethod
    def decode_value(cls, value: bytes) -> Item:
        if not value:
            return cls(None)
        return cls(value[0], value[1:])


@dataclass(frozen=True, slots=True)
class ResponseLength(_DataObject):
    """Response length (TS 102 223 section 8.11): the bounds of a GET INPUT answer."""

    TAG: ClassVar[ComprehensionTag] = ComprehensionTag.RESPONSE_LENGTH

    minimum_length: int
    maximum_length: int

    def __post_init__(self) -> None:
        _check_byte("minimum length", self.minimum_length)
        _check_byte("maximum length", self.maximum_length)

    def encode_value(self) -> bytes:
        return bytes((self.minimum_length, self.maximum_length))

    @classmethod
    def decode_value(cls, value: bytes) -> ResponseLength:
        _exact(value, 2, "response length")
        return cls(value[0], value[1])


@dataclass(frozen=True, slots=True)
class IconIdentifier(_DataObject):
    """Icon identifier (TS 102 223 section 8.31): qualifier (b1 = 1 not self-explanatory) and EF-IMG record."""

    TAG: ClassVar[ComprehensionTag] = ComprehensionTag.ICON_IDENTIFIER

    icon_qualifier: int
    icon_identifier: int

    def __post_init__(self) -> None:
        _check_byte("icon qualifier", self.icon_qualifier)
        _check_byte("icon identifier", self.icon_identifier)

    def encode_value(self) -> bytes:
        return bytes((self.icon_qualifier, self.icon_identifier))

    @classmethod
    def decode_value(cls, value: bytes) -> IconIdentifier:
        _exact(value, 2, "icon identifier")
        return cls(value[0], value[1])


_BCD_DIGITS = "0123456789*#abc"


@dataclass(frozen=True, slots=True)
class Address(_DataObject):
    """Address (TS 102 223 section 8.1): TON/NPI octet and the BCD dialling number.

    ``dialling_number`` holds the digits, with '*', '#', 'a', 'b', 'c' for the BCD values A-E (TS
    24.008 table 10.5.118); an odd count is padded with the 'F' end mark.
    """

    TAG: ClassVar[ComprehensionTag] = ComprehensionTag.ADDRESS

    ton_npi: int
    dialling_number: str = ""

    def __post_init__(self) -> None:
        _check_byte("TON/NPI", self.ton_npi)
        bad = [char for char in self.dialling_number if char not in _BCD_DIGITS]
        if bad:
            raise LocalProtocolError(f"{bad[0]!r} cannot be coded in BCD")

    @property
    def type_of_number(self) -> int:
        return (self.ton_npi >> 4) & 0x07

    @property
    def numbering_plan_identification(self) -> int:
        return self.ton_npi & 0x0F

    def encode_value(self) -> bytes:
        nibbles = [_BCD_DIGITS.index(char) for char in self.dialling_number]
        if len(nibbles) % 2:
            nibbles.append(0x0F)
        return bytes((self.ton_npi,)) + bytes(
            lo | hi << 4 for lo, hi in zip(nibbles[::2], nibbles[1::2], strict=True)
        )

    @classmethod
    def decode_value(cls, value: bytes) -> Address:
        if not value:
            raise DecodeError("address without TON/NPI", COMMAND_DATA_NOT_UNDERSTOOD)
        nibbles = [nibble for octet in value[1:] for nibble in (octet & 0x0F, octet >> 4)]
        if nibbles and nibbles[-1] == 0x0F:
            nibbles.pop()
        if 0x0F in nibbles:
            raise DecodeError("BCD end mark inside the dialling number", COMMAND_DATA_NOT_UNDERSTOOD)
        return cls(value[0], "".join(_BCD_DIGITS[nibble] for nibble in nibbles))


_GENERAL_ALPHABETS = (_GSM7, _EIGHT_BIT, _UCS2, _GSM7)  # '11' is reserved: read as GSM 7-bit


def _cbs_alphabet(dcs: int) -> tuple[Coding | None, int]:
    """(character set, octets of language prefix) of a CBS data coding scheme (TS 23.038 section 5).

    None for compressed text, text behind a user data header (group 9) and WAP (group E); reserved
    codings count as the GSM 7-bit default alphabet, as section 5 tells a receiving entity to assume.
    """
    group = dcs >> 4
    if dcs == 0x11:  # UCS2 preceded by a language coded in two GSM 7-bit packed octets
        return _UCS2, 2
    if 0x4 <= group <= 0x7:  # general data coding; bit 6 = compressed
        return (None if dcs & 0x20 else _GENERAL_ALPHABETS[(dcs >> 2) & 0x03]), 0
    if group in (0x9, 0xE):
        return None, 0
    if group == 0xF:
        return (_EIGHT_BIT if dcs & 0x04 else _GSM7), 0
    return _GSM7, 0  # languages in GSM 7-bit (groups 0-3, incl. '10' with the language in the text), reserved


@dataclass(frozen=True, slots=True)
class UssdString(_DataObject):
    """USSD string (TS 31.111 section 8.17): the CBS data coding scheme (TS 23.038 section 5) and the string.

    ``UssdString.of("*123*500#")`` packs the GSM 7-bit default alphabet with DCS '0F'.
    """

    TAG: ClassVar[ComprehensionTag] = ComprehensionTag.USSD_STRING

    dcs: int
    data: bytes = b""

    def __post_init__(self) -> None:
        _check_byte("data coding scheme", self.dcs)

    @classmethod
    def of(cls, text: str, dcs: int = 0x0F) -> UssdString:
        _check_byte("data coding scheme", dcs)
        alphabet, prefix = _cbs_alphabet(dcs)
        if prefix:
            raise LocalProtocolError(f"USSD data coding scheme 0x{dcs:02X} needs a language prefix")
        return cls(dcs, _encode_by_alphabet(alphabet, text, "USSD", dcs))

    @property
    def text(self) -> str:
        alphabet, prefix = _cbs_alphabet(self.dcs)
        if len(self.data) < prefix:
            raise DecodeError("USSD string shorter than its language prefix", COMMAND_DATA_NOT_UNDERSTOOD)
        return _decode_by_alphabet(alphabet, self.data[prefix:], "USSD", self.dcs)

    def encode_value(self) -> bytes:
        return bytes((self.dcs,)) + self.data

    @classmethod
    def decode_value(cls, value: bytes) -> UssdString:
        if not value:
            raise DecodeError("USSD string without data coding scheme", COMMAND_DATA_NOT_UNDERSTOOD)
        return cls(value[0], value[1:])


class _Picker:
    """Takes the known objects out of a decoded TLV list; what is left over stays in order for ``extra_tlvs``.

    The first object with a tag is the one taken; a repeated single object is left over like an
    unknown one, so nothing is lost.
    """

    __slots__ = ("_taken", "_tlvs")

    def __init__(self, tlvs: tuple[ComprehensionTlv, ...]) -> None:
        self._tlvs = tlvs
        self._taken = [False] * len(tlvs)

    def take(self, tag: int) -> ComprehensionTlv | None:
        for index, tlv in enumerate(self._tlvs):
            if tlv.tag == tag and not self._taken[index]:
                self._taken[index] = True
                return tlv
        return None

    def take_value(self, tag: int) -> bytes | None:
        tlv = self.take(tag)
        return None if tlv is None else tlv.value

    def require(self, tag: int, what: str) -> bytes:
        value = self.take_value(tag)
        if value is None:
            raise DecodeError(f"{what} missing", REQUIRED_VALUES_MISSING)
        return value

    def take_all(self, tag: int) -> list[bytes]:
        values: list[bytes] = []
        for index, tlv in enumerate(self._tlvs):
            if tlv.tag == tag and not self._taken[index]:
                self._taken[index] = True
                values.append(tlv.value)
        return values

    def rest(self) -> tuple[ComprehensionTlv, ...]:
        return tuple(tlv for tlv, taken in zip(self._tlvs, self._taken, strict=True) if not taken)


def _optional_tlv(tag: int, value: bytes | None) -> list[ComprehensionTlv]:
    return [] if value is None else [ComprehensionTlv(tag, value)]
