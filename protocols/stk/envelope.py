"""ENVELOPE commands to the UICC and the SMS-PP download outcome (TS 31.111 section 7.1; TS 102 223 section 7).

- SMS-PP DOWNLOAD (TS 31.111 section 7.1.1.2, BER tag 'D1'): device identities network ('83') ->
  UICC ('81'), the service centre address (8.1, optional) and the SMS TPDU (8.13) holding the
  SMS-DELIVER whose PID is '7F' and DCS class 2 (TS 23.040). The TPDU travels as octets here;
  ``protocols.gsm`` decodes it.
- MENU SELECTION (TS 102 223 section 7.2, 'D3'): keypad ('01') -> UICC, item identifier, optional
  help request.
- EVENT DOWNLOAD (TS 102 223 section 7.5, 'D6'): event list and device identities; the objects of
  each event are kept in ``extra_tlvs``.
- Any other envelope decodes to ``UnknownEnvelope`` with its TLVs kept.

``SmsPpDownloadResponse`` maps the UICC's status words for an SMS-PP download onto what the
terminal tells the network (TS 31.111 section 7.1.1.1, PROTOCOLS.md section 1.5.7): RP-ACK, with
the response data (a proof of receipt) in its TP-User-Data when there is some, or RP-ERROR with the
TP-Failure-Cause of TS 23.040 section 9.2.3.22 ('D4' toolkit busy, 'D5' (U)SIM data download error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias, TypeVar

from protocols.errors import DecodeError, LocalProtocolError
from protocols.stk.tlv import (
    COMMAND_DATA_NOT_UNDERSTOOD,
    Address,
    BerTag,
    ComprehensionTag,
    ComprehensionTlv,
    DeviceIdentities,
    DeviceIdentity,
    _KeepUnknown,
    _Picker,
    decode_ber_tlv,
    encode_ber_tlv,
)

__all__ = [
    "Envelope",
    "EventDownload",
    "MenuSelection",
    "SmsPpDownload",
    "SmsPpDownloadResponse",
    "TpFailureCause",
    "UnknownEnvelope",
    "decode_envelope",
]

_NETWORK_TO_UICC = DeviceIdentities(DeviceIdentity.NETWORK, DeviceIdentity.UICC)
_KEYPAD_TO_UICC = DeviceIdentities(DeviceIdentity.KEYPAD, DeviceIdentity.UICC)
_TERMINAL_TO_UICC = DeviceIdentities(DeviceIdentity.TERMINAL, DeviceIdentity.UICC)


def _devices(objects: _Picker) -> DeviceIdentities:
    return DeviceIdentities.decode_value(
        objects.require(ComprehensionTag.DEVICE_IDENTITIES, "device identities")
    )


@dataclass(frozen=True, slots=True)
class SmsPpDownload:
    """ENVELOPE (SMS-PP DOWNLOAD), TS 31.111 section 7.1.1.2: ``sms_tpdu`` is the SMS-DELIVER TPDU."""

    BER_TAG: ClassVar[BerTag] = BerTag.SMS_PP_DOWNLOAD

    sms_tpdu: bytes
    address: Address | None = None
    device_identities: DeviceIdentities = _NETWORK_TO_UICC
    extra_tlvs: tuple[ComprehensionTlv, ...] = ()

    def encode(self) -> bytes:
        tlvs = [
            self.device_identities.to_tlv(),
            *([] if self.address is None else [self.address.to_tlv()]),
            ComprehensionTlv(ComprehensionTag.SMS_TPDU, self.sms_tpdu),
            *self.extra_tlvs,
        ]
        return encode_ber_tlv(self.BER_TAG, tlvs)

    @classmethod
    def _from_objects(cls, objects: _Picker) -> SmsPpDownload:
        devices = _devices(objects)
        address = objects.take_value(ComprehensionTag.ADDRESS)
        tpdu = objects.require(ComprehensionTag.SMS_TPDU, "SMS TPDU")
        return cls(tpdu, None if address is None else Address.decode_value(address), devices, objects.rest())

    @classmethod
    def decode(cls, data: bytes) -> SmsPpDownload:
        return _decode_as(cls, data)


@dataclass(frozen=True, slots=True)
class MenuSelection:
    """ENVELOPE (MENU SELECTION), TS 102 223 section 7.2: the SET UP MENU item the user chose."""

    BER_TAG: ClassVar[BerTag] = BerTag.MENU_SELECTION

    item_identifier: int
    help_request: bool = False
    device_identities: DeviceIdentities = _KEYPAD_TO_UICC
    extra_tlvs: tuple[ComprehensionTlv, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.item_identifier <= 0xFF:
            raise LocalProtocolError(f"item identifier must fit in one octet, got {self.item_identifier}")

    def encode(self) -> bytes:
        tlvs = [
            self.device_identities.to_tlv(),
            ComprehensionTlv(ComprehensionTag.ITEM_IDENTIFIER, bytes((self.item_identifier,))),
            *([ComprehensionTlv(ComprehensionTag.HELP_REQUEST)] if self.help_request else []),
            *self.extra_tlvs,
        ]
        return encode_ber_tlv(self.BER_TAG, tlvs)

    @classmethod
    def _from_objects(cls, objects: _Picker) -> MenuSelection:
        devices = _devices(objects)
        item = objects.require(ComprehensionTag.ITEM_IDENTIFIER, "item identifier")
        if len(item) != 1:
            raise DecodeError("item identifier must be 1 octet", COMMAND_DATA_NOT_UNDERSTOOD)
        help_request = objects.take(ComprehensionTag.HELP_REQUEST) is not None
        return cls(item[0], help_request, devices, objects.rest())

    @classmethod
    def decode(cls, data: bytes) -> MenuSelection:
        return _decode_as(cls, data)


@dataclass(frozen=True, slots=True)
class EventDownload:
    """ENVELOPE (EVENT DOWNLOAD), TS 102 223 section 7.5: ``event_list`` (8.25) holds the event codes."""

    BER_TAG: ClassVar[BerTag] = BerTag.EVENT_DOWNLOAD

    event_list: bytes
    device_identities: DeviceIdentities = _TERMINAL_TO_UICC
    extra_tlvs: tuple[ComprehensionTlv, ...] = ()

    def encode(self) -> bytes:
        tlvs = [
            ComprehensionTlv(ComprehensionTag.EVENT_LIST, self.event_list),
            self.device_identities.to_tlv(),
            *self.extra_tlvs,
        ]
        return encode_ber_tlv(self.BER_TAG, tlvs)

    @classmethod
    def _from_objects(cls, objects: _Picker) -> EventDownload:
        events = objects.require(ComprehensionTag.EVENT_LIST, "event list")
        return cls(events, _devices(objects), objects.rest())

    @classmethod
    def decode(cls, data: bytes) -> EventDownload:
        return _decode_as(cls, data)


@dataclass(frozen=True, slots=True)
class UnknownEnvelope:
    """An ENVELOPE of a kind not modelled here: its BER tag and every COMPREHENSION-TLV in order."""

    tag: int
    tlvs: tuple[ComprehensionTlv, ...] = ()

    def encode(self) -> bytes:
        return encode_ber_tlv(self.tag, self.tlvs)


_T = TypeVar("_T", SmsPpDownload, MenuSelection, EventDownload)

Envelope: TypeAlias = SmsPpDownload | MenuSelection | EventDownload | UnknownEnvelope

_ENVELOPES: dict[int, type[SmsPpDownload] | type[MenuSelection] | type[EventDownload]] = {
    cls.BER_TAG: cls for cls in (SmsPpDownload, MenuSelection, EventDownload)
}


def decode_envelope(data: bytes) -> Envelope:
    """Decode the BER-TLV of an ENVELOPE APDU's data."""
    ber = decode_ber_tlv(data)
    if ber.tag == BerTag.PROACTIVE_COMMAND:
        raise DecodeError("'D0' is a proactive command, not an envelope", COMMAND_DATA_NOT_UNDERSTOOD)
    tlvs = ber.comprehension_tlvs()
    cls = _ENVELOPES.get(ber.tag)
    if cls is None:
        return UnknownEnvelope(BerTag(ber.tag), tlvs)
    return cls._from_objects(_Picker(tlvs))


def _decode_as(cls: type[_T], data: bytes) -> _T:
    envelope = decode_envelope(data)
    if not isinstance(envelope, cls):
        raise DecodeError(f"expected BER tag 0x{cls.BER_TAG:02X}", COMMAND_DATA_NOT_UNDERSTOOD)
    return envelope


class TpFailureCause(_KeepUnknown):
    """TP-Failure-Cause values for SIM data download (TS 23.040 section 9.2.3.22)."""

    SIM_APPLICATION_TOOLKIT_BUSY = 0xD4
    SIM_DATA_DOWNLOAD_ERROR = 0xD5


@dataclass(frozen=True, slots=True)
class SmsPpDownloadResponse:
    """The UICC's answer to ENVELOPE (SMS-PP DOWNLOAD) and what it means for the network (TS 31.111 7.1.1.1).

    ======================  ===================================================================
    status words            the terminal sends
    ======================  ===================================================================
    '90 00'                 RP-ACK
    '91 XX'                 RP-ACK; a proactive command of XX octets waits for FETCH
    '61 XX' / '9F XX'       RP-ACK with the XX octets of response data (the PoR) in TP-UD
    '93 00'                 RP-ERROR, TP-FCS 'D4' SIM Application Toolkit busy
    '9E XX'                 RP-ERROR, TP-FCS 'D5', with the XX octets of response data
    '62 XX' / '63 XX'       RP-ERROR, TP-FCS 'D5', with the response data if any
    anything else ('6F XX') RP-ERROR, TP-FCS 'D5'
    ======================  ===================================================================

    ``response_data`` is what GET RESPONSE returned (empty when none was fetched).
    """

    sw1: int
    sw2: int
    response_data: bytes = b""

    def __post_init__(self) -> None:
        if not (0 <= self.sw1 <= 0xFF and 0 <= self.sw2 <= 0xFF):
            raise LocalProtocolError("status words are one octet each")

    @classmethod
    def from_status(cls, status: int, response_data: bytes = b"") -> SmsPpDownloadResponse:
        """From the 16-bit status word (``0x9000``)."""
        if not 0 <= status <= 0xFFFF:
            raise LocalProtocolError(f"status word must be 16 bits, got {status}")
        return cls(status >> 8, status & 0xFF, response_data)

    @property
    def status(self) -> int:
        return self.sw1 << 8 | self.sw2

    @property
    def rp_ack(self) -> bool:
        """True: acknowledge with RP-ACK; False: RP-ERROR with ``failure_cause``."""
        return self.sw1 in (0x90, 0x91, 0x61, 0x9F)

    @property
    def proactive_command_pending(self) -> bool:
        """'91 XX': the UICC has a proactive command of ``sw2`` octets for the terminal to FETCH."""
        return self.sw1 == 0x91

    @property
    def response_data_available(self) -> int:
        """Octets of response data the UICC announced ('61 XX', '9F XX', '9E XX'), 0 otherwise."""
        return self.sw2 if self.sw1 in (0x61, 0x9F, 0x9E) else 0

    @property
    def failure_cause(self) -> TpFailureCause | None:
        """The TP-Failure-Cause of the RP-ERROR, None for RP-ACK."""
        if self.rp_ack:
            return None
        if self.status == 0x9300:
            return TpFailureCause.SIM_APPLICATION_TOOLKIT_BUSY
        return TpFailureCause.SIM_DATA_DOWNLOAD_ERROR

    @property
    def user_data(self) -> bytes:
        """TP-User-Data for the RP-ACK / RP-ERROR report: the response data where the table allows it."""
        if self.sw1 in (0x61, 0x9F, 0x9E, 0x62, 0x63):
            return self.response_data
        return b""
