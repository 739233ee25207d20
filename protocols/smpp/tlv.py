"""SMPP 3.4 optional parameters (TLVs), section 3.2.1.6 and the tag table of section 5.3.2.

A ``Tlv`` keeps the raw tag and value so unknown and vendor TLVs (0x1400-0x3FFF) survive a round trip
byte for byte. Standard TLVs are known by name (``Tag.RECEIPTED_MESSAGE_ID``,
``tlvs(receipted_message_id="0a1b")``) and decode to Python values with ``Tlv.decoded``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from struct import Struct
from struct import error as struct_error
from typing import Any

from protocols._fast import fast_constructor
from protocols.errors import DecodeError, LocalProtocolError
from protocols.smpp.constants import CommandStatus, _KeepUnknown

__all__ = ["Tag", "Tlv", "TlvKind", "decode_tlvs", "encode_tlvs", "find_tlv", "tlvs"]


class Tag(_KeepUnknown):
    """Optional parameter tags, SMPP 3.4 section 5.3.2 (Table 5-18)."""

    DEST_ADDR_SUBUNIT = 0x0005
    DEST_NETWORK_TYPE = 0x0006
    DEST_BEARER_TYPE = 0x0007
    DEST_TELEMATICS_ID = 0x0008
    SOURCE_ADDR_SUBUNIT = 0x000D
    SOURCE_NETWORK_TYPE = 0x000E
    SOURCE_BEARER_TYPE = 0x000F
    SOURCE_TELEMATICS_ID = 0x0010
    QOS_TIME_TO_LIVE = 0x0017
    PAYLOAD_TYPE = 0x0019
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D
    RECEIPTED_MESSAGE_ID = 0x001E
    MS_MSG_WAIT_FACILITIES = 0x0030
    PRIVACY_INDICATOR = 0x0201
    SOURCE_SUBADDRESS = 0x0202
    DEST_SUBADDRESS = 0x0203
    USER_MESSAGE_REFERENCE = 0x0204
    USER_RESPONSE_CODE = 0x0205
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C
    LANGUAGE_INDICATOR = 0x020D
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    CALLBACK_NUM_PRES_IND = 0x0302
    CALLBACK_NUM_ATAG = 0x0303
    NUMBER_OF_MESSAGES = 0x0304
    CALLBACK_NUM = 0x0381
    DPF_RESULT = 0x0420
    SET_DPF = 0x0421
    MS_AVAILABILITY_STATUS = 0x0422
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    DELIVERY_FAILURE_REASON = 0x0425
    MORE_MESSAGES_TO_SEND = 0x0426
    MESSAGE_STATE = 0x0427
    USSD_SERVICE_OP = 0x0501
    DISPLAY_TIME = 0x1201
    SMS_SIGNAL = 0x1203
    MS_VALIDITY = 0x1204
    ALERT_ON_MESSAGE_DELIVERY = 0x130C
    ITS_REPLY_TYPE = 0x1380
    ITS_SESSION_INFO = 0x1383


class TlvKind(Enum):
    """How a TLV value is typed (SMPP 3.4 section 5.3.2)."""

    INT1 = 1
    INT2 = 2
    INT4 = 4
    CSTRING = "cstring"  # NUL-terminated; decoded to str (latin-1, lossless)
    OCTETS = "octets"  # raw bytes
    EMPTY = "empty"  # no value; presence is the information


_KINDS: dict[int, tuple[TlvKind, int, int]] = {
    # tag: (kind, min length, max length) of the value part
    Tag.DEST_ADDR_SUBUNIT: (TlvKind.INT1, 1, 1),
    Tag.DEST_NETWORK_TYPE: (TlvKind.INT1, 1, 1),
    Tag.DEST_BEARER_TYPE: (TlvKind.INT1, 1, 1),
    Tag.DEST_TELEMATICS_ID: (TlvKind.INT2, 2, 2),
    Tag.SOURCE_ADDR_SUBUNIT: (TlvKind.INT1, 1, 1),
    Tag.SOURCE_NETWORK_TYPE: (TlvKind.INT1, 1, 1),
    Tag.SOURCE_BEARER_TYPE: (TlvKind.INT1, 1, 1),
    Tag.SOURCE_TELEMATICS_ID: (TlvKind.INT1, 1, 1),
    Tag.QOS_TIME_TO_LIVE: (TlvKind.INT4, 4, 4),
    Tag.PAYLOAD_TYPE: (TlvKind.INT1, 1, 1),
    Tag.ADDITIONAL_STATUS_INFO_TEXT: (TlvKind.CSTRING, 1, 256),
    Tag.RECEIPTED_MESSAGE_ID: (TlvKind.CSTRING, 1, 65),
    Tag.MS_MSG_WAIT_FACILITIES: (TlvKind.INT1, 1, 1),
    Tag.PRIVACY_INDICATOR: (TlvKind.INT1, 1, 1),
    Tag.SOURCE_SUBADDRESS: (TlvKind.OCTETS, 2, 23),
    Tag.DEST_SUBADDRESS: (TlvKind.OCTETS, 2, 23),
    Tag.USER_MESSAGE_REFERENCE: (TlvKind.INT2, 2, 2),
    Tag.USER_RESPONSE_CODE: (TlvKind.INT1, 1, 1),
    Tag.SOURCE_PORT: (TlvKind.INT2, 2, 2),
    Tag.DESTINATION_PORT: (TlvKind.INT2, 2, 2),
    Tag.SAR_MSG_REF_NUM: (TlvKind.INT2, 2, 2),
    Tag.LANGUAGE_INDICATOR: (TlvKind.INT1, 1, 1),
    Tag.SAR_TOTAL_SEGMENTS: (TlvKind.INT1, 1, 1),
    Tag.SAR_SEGMENT_SEQNUM: (TlvKind.INT1, 1, 1),
    Tag.SC_INTERFACE_VERSION: (TlvKind.INT1, 1, 1),
    Tag.CALLBACK_NUM_PRES_IND: (TlvKind.INT1, 1, 1),
    Tag.CALLBACK_NUM_ATAG: (TlvKind.OCTETS, 0, 65),
    Tag.NUMBER_OF_MESSAGES: (TlvKind.INT1, 1, 1),
    Tag.CALLBACK_NUM: (TlvKind.OCTETS, 4, 19),
    Tag.DPF_RESULT: (TlvKind.INT1, 1, 1),
    Tag.SET_DPF: (TlvKind.INT1, 1, 1),
    Tag.MS_AVAILABILITY_STATUS: (TlvKind.INT1, 1, 1),
    Tag.NETWORK_ERROR_CODE: (TlvKind.OCTETS, 3, 3),
    Tag.MESSAGE_PAYLOAD: (TlvKind.OCTETS, 0, 65535),
    Tag.DELIVERY_FAILURE_REASON: (TlvKind.INT1, 1, 1),
    Tag.MORE_MESSAGES_TO_SEND: (TlvKind.INT1, 1, 1),
    Tag.MESSAGE_STATE: (TlvKind.INT1, 1, 1),
    Tag.USSD_SERVICE_OP: (TlvKind.INT1, 1, 1),
    Tag.DISPLAY_TIME: (TlvKind.INT1, 1, 1),
    Tag.SMS_SIGNAL: (TlvKind.INT2, 2, 2),
    Tag.MS_VALIDITY: (TlvKind.INT1, 1, 1),
    Tag.ALERT_ON_MESSAGE_DELIVERY: (TlvKind.EMPTY, 0, 0),
    Tag.ITS_REPLY_TYPE: (TlvKind.INT1, 1, 1),
    Tag.ITS_SESSION_INFO: (TlvKind.OCTETS, 2, 2),
}

_TAG_BY_NAME: dict[str, int] = {t.name.lower(): int(t) for t in Tag}
_TL = Struct(">HH")


@dataclass(frozen=True, slots=True)
class Tlv:
    """One optional parameter: ``tag`` and its raw ``value`` octets."""

    tag: int
    value: bytes = b""

    @classmethod
    def make(cls, tag: int | str, value: Any = None) -> Tlv:
        """Build a TLV from a Python value typed per the tag table (int, str, bytes or None)."""
        if isinstance(tag, str):
            try:
                tag = _TAG_BY_NAME[tag.lower()]
            except KeyError:
                raise LocalProtocolError(f"unknown TLV name {tag!r}") from None
        if not 0 <= tag <= 0xFFFF:
            raise LocalProtocolError(f"TLV tag {tag:#x} out of range")
        spec = _KINDS.get(tag)
        if spec is None:
            if not isinstance(value, bytes | bytearray):
                raise LocalProtocolError(f"TLV {tag:#06x} is not standard: give its value as bytes")
            return cls(tag, bytes(value))
        kind, lo, hi = spec
        raw: bytes
        if kind is TlvKind.EMPTY:
            raw = b""
        elif kind is TlvKind.CSTRING:
            if not isinstance(value, str):
                raise LocalProtocolError(f"TLV {Tag(tag).name} takes a str")
            try:
                raw = value.encode("latin-1") + b"\x00"
            except UnicodeEncodeError:
                raise LocalProtocolError(f"TLV {Tag(tag).name} takes a latin-1 str, got {value!r}") from None
            if 0 in raw[:-1]:
                raise LocalProtocolError(f"TLV {Tag(tag).name} is a C-Octet string: no NUL inside")
        elif kind is TlvKind.OCTETS:
            if not isinstance(value, bytes | bytearray):
                raise LocalProtocolError(f"TLV {Tag(tag).name} takes bytes")
            raw = bytes(value)
        else:
            if not isinstance(value, int) or isinstance(value, bool):
                raise LocalProtocolError(f"TLV {Tag(tag).name} takes an int")
            size = kind.value
            assert isinstance(size, int)
            if not 0 <= value < 1 << (8 * size):
                raise LocalProtocolError(f"TLV {Tag(tag).name} value {value} does not fit {size} octet(s)")
            raw = value.to_bytes(size, "big")
        if not lo <= len(raw) <= hi:
            raise LocalProtocolError(f"TLV {Tag(tag).name} value is {len(raw)} octets, allowed {lo}..{hi}")
        return cls(tag, raw)

    @property
    def name(self) -> str:
        return Tag(self.tag).name.lower()

    @property
    def decoded(self) -> Any:
        """The value as Python: int, str (C-string), bytes, or None for an empty TLV."""
        spec = _KINDS.get(self.tag)
        if spec is None:
            return self.value
        kind = spec[0]
        if kind is TlvKind.OCTETS:
            return self.value
        if kind is TlvKind.EMPTY:
            return None
        if kind is TlvKind.CSTRING:
            # a missing terminator is tolerated on read: some SMSCs omit it
            return self.value.rstrip(b"\x00").decode("latin-1")
        return int.from_bytes(self.value, "big")


_make_tlv = fast_constructor(Tlv)


def tlvs(**named: Any) -> tuple[Tlv, ...]:
    """``tlvs(sar_msg_ref_num=7, message_payload=b"...")`` -> a tuple of TLVs in argument order."""
    return tuple(Tlv.make(name, value) for name, value in named.items())


def find_tlv(params: tuple[Tlv, ...], tag: int) -> Tlv | None:
    for t in params:
        if t.tag == tag:
            return t
    return None


def encode_tlvs(params: tuple[Tlv, ...]) -> bytes:
    pack = _TL.pack
    try:
        if len(params) == 1:  # the usual case; skips the generator
            t = params[0]
            return pack(t.tag, len(t.value)) + t.value
        return b"".join(pack(t.tag, len(t.value)) + t.value for t in params)
    except (struct_error, TypeError, AttributeError) as exc:  # a Tlv built by hand, not by Tlv.make
        raise LocalProtocolError(f"cannot encode optional parameters: {exc}") from None


def decode_tlvs(body: bytes, pos: int) -> tuple[Tlv, ...]:
    """Decode the TLVs from ``body[pos:]`` to the end (SMPP 3.4 section 3.2.1.6).

    A TLV that runs past the PDU is ESME_RINVOPTPARSTREAM; a standard TLV of the wrong length is
    ESME_RINVPARLEN. Unknown tags are kept as they are.
    """
    end = len(body)
    unpack = _TL.unpack_from
    kinds = _KINDS
    if end - pos >= 4:
        # one TLV filling the rest of the PDU is the usual case: no list, no loop
        tag, length = unpack(body, pos)
        if pos + 4 + length == end:
            spec = kinds.get(tag)
            if spec is None or spec[1] <= length <= spec[2]:
                return (_make_tlv(tag, body[pos + 4 : end]),)
    out: list[Tlv] = []
    while pos < end:
        if end - pos < 4:
            raise DecodeError("truncated TLV header", CommandStatus.ESME_RINVOPTPARSTREAM)
        tag, length = unpack(body, pos)
        pos += 4
        if pos + length > end:
            raise DecodeError(
                f"TLV {tag:#06x} length {length} runs past the PDU", CommandStatus.ESME_RINVOPTPARSTREAM
            )
        spec = kinds.get(tag)
        if spec is not None and not spec[1] <= length <= spec[2]:
            raise DecodeError(
                f"TLV {Tag(tag).name.lower()} has length {length}, allowed {spec[1]}..{spec[2]}",
                CommandStatus.ESME_RINVPARLEN,
            )
        out.append(_make_tlv(tag, body[pos : pos + length]))
        pos += length
    return tuple(out)
