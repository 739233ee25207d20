"""SMPP 3.4 PDUs (section 4) and their codec (header 3.2, field types 3.1, optional parameters 3.2.1.6).

Every PDU of SMPP 3.4 is a frozen, slotted dataclass with the spec's field names. C-Octet strings are
``str`` (latin-1, so any byte survives), integers are ``int``, ``short_message`` is ``bytes`` and its
``sm_length`` is derived. Optional parameters are kept in wire order in ``optional_parameters``.

``decode_pdu(encode_pdu(p)) == p`` for every PDU and ``encode_pdu(decode_pdu(b)) == b`` for valid
bytes. A response whose body the peer left out (allowed when command_status is not 0, section 4.4.2)
decodes with its first field ``None`` and re-encodes without a body.

Decoding errors raise ``DecodeError`` carrying the command_status to answer with; encoding a PDU that
breaks a field limit raises ``LocalProtocolError``.

The submit_sm / deliver_sm body codec, the hot path, runs in C when the optional extension
``protocols.smpp._speedups`` is built (``pip install`` builds it where a C compiler is present). It only
handles the plain valid case and hands everything else to the Python code here, which stays the
reference and the one that raises. ``TGW_PURE_PYTHON=1`` (any value but empty or ``0``) in the
environment when this module is first imported forces the pure-Python codec.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from struct import Struct
from struct import error as struct_error
from typing import Any, ClassVar

from protocols._fast import fast_constructor, pure_python_asked
from protocols.errors import DecodeError, LocalProtocolError
from protocols.smpp.constants import CommandId, CommandStatus
from protocols.smpp.tlv import _KINDS as _TLV_KINDS
from protocols.smpp.tlv import Tlv, _make_tlv, decode_tlvs, encode_tlvs

__all__ = [
    "HEADER_LENGTH",
    "AlertNotification",
    "BindReceiver",
    "BindReceiverResp",
    "BindTransceiver",
    "BindTransceiverResp",
    "BindTransmitter",
    "BindTransmitterResp",
    "CancelSm",
    "CancelSmResp",
    "DataSm",
    "DataSmResp",
    "DeliverSm",
    "DeliverSmResp",
    "DestAddress",
    "DistributionList",
    "EnquireLink",
    "EnquireLinkResp",
    "GenericNack",
    "Outbind",
    "Pdu",
    "QuerySm",
    "QuerySmResp",
    "ReplaceSm",
    "ReplaceSmResp",
    "SubmitMulti",
    "SubmitMultiResp",
    "SubmitSm",
    "SubmitSmResp",
    "Unbind",
    "UnbindResp",
    "UnsuccessSme",
    "body_decoder",
    "decode_pdu",
    "encode_pdu",
    "pdu_class",
]

HEADER = Struct(">IIII")
_unpack_header = HEADER.unpack_from
HEADER_LENGTH = 16
_S = CommandStatus

# field kinds of the generic layouts
_C = "c"  # C-Octet string: (name, "c", max octets including the NUL, status on overflow)
_B = "B"  # 1-octet integer
_SM = "sm"  # sm_length + short_message
_DESTS = "dests"  # submit_multi: number_of_dests + dest_address list
_UNSUCC = "unsucc"  # submit_multi_resp: no_unsuccess + unsuccess_sme list

_Layout = tuple[tuple[str, str, int, int], ...]

# --- optional C codec of the submit_sm / deliver_sm body (_speedups.c) -----------------------------

_EncodeSm = Callable[..., bytes | None]
_DecodeSm = Callable[
    [bytes, Mapping[int, tuple[object, int, int]], Callable[[int, bytes], Tlv]], tuple[Any, ...] | None
]


def _load_speedups(environ: Mapping[str, str]) -> tuple[_EncodeSm | None, _DecodeSm | None]:
    """The C codec's ``(encode_sm, decode_sm)``, or ``(None, None)`` if it is not built or
    ``TGW_PURE_PYTHON`` is set to anything but "" or "0"."""
    if pure_python_asked(environ):
        return None, None
    try:
        from protocols.smpp import _speedups  # noqa: PLC0415 (here, so that tests can replay the choice)
    except ImportError:  # not built (no C compiler at install time): the pure-Python codec below
        return None, None
    return _speedups.encode_sm, _speedups.decode_sm


# read once, at import; module globals read at call time, so tests can switch them off in-process
_encode_sm, _decode_sm = _load_speedups(os.environ)


class Pdu:
    """Base of every SMPP PDU. It declares no fields (each PDU class lists its own, header first)."""

    __slots__ = ()
    command_id: ClassVar[int]
    _LAYOUT: ClassVar[_Layout] = ()
    _HAS_TLVS: ClassVar[bool] = False
    _OPTIONAL_BODY: ClassVar[bool] = False  # response body may be absent when command_status != 0

    sequence_number: int
    command_status: int

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & 0x80000000)

    def encode_body(self) -> bytes:
        return _encode_layout(self)


def _cstr(value: str, name: str, limit: int, status: int) -> bytes:
    try:
        raw = value.encode("latin-1")
    except (UnicodeEncodeError, AttributeError):
        raise LocalProtocolError(f"{name} must be a latin-1 str, got {value!r}", status) from None
    if len(raw) >= limit or 0 in raw:
        raise LocalProtocolError(f"{name} is longer than {limit - 1} octets or holds NUL", status)
    return raw


def _encode_layout(pdu: Pdu) -> bytes:
    out: list[bytes] = []
    layout = pdu._LAYOUT
    if layout and pdu._OPTIONAL_BODY and getattr(pdu, layout[0][0]) is None:
        # an absent body (section 4.4.2): anything else set would be lost on the wire
        if [getattr(pdu, f.name) for f in fields(pdu)][3:] != _DEFAULTS[type(pdu)][1:]:  # type: ignore[arg-type]
            raise LocalProtocolError(f"{layout[0][0]} is None (no body) but other body fields are set")
        return b""
    for name, kind, limit, status in layout:
        value = getattr(pdu, name)
        if kind is _C:
            out.append(_cstr(value, name, limit, status) + b"\x00")
        elif kind is _B:
            if not isinstance(value, int) or not 0 <= value <= 255:
                raise LocalProtocolError(f"{name} must be an int 0..255, got {value!r}")
            out.append(bytes((value,)))
        elif kind is _SM:
            if not isinstance(value, bytes | bytearray):
                raise LocalProtocolError(f"short_message must be bytes, got {type(value).__name__}")
            if len(value) > limit:
                raise LocalProtocolError(
                    f"short_message is {len(value)} octets, at most {limit}: use message_payload",
                    _S.ESME_RINVMSGLEN,
                )
            out.append(bytes((len(value),)) + value)
        elif kind is _DESTS:
            out.append(_encode_dests(value))
        else:  # _UNSUCC
            out.append(_encode_unsuccess(value))
    if pdu._HAS_TLVS:
        out.append(encode_tlvs(pdu.optional_parameters))  # type: ignore[attr-defined]
    return b"".join(out)


def _decode_cstr(body: bytes, pos: int, name: str, limit: int, status: int) -> tuple[str, int]:
    end = body.find(0, pos, pos + limit)
    if end < 0:
        if len(body) - pos < limit:
            raise DecodeError(f"{name} is not NUL-terminated before the end of the PDU", _S.ESME_RINVCMDLEN)
        raise DecodeError(f"{name} is longer than {limit - 1} octets", status)
    return body[pos:end].decode("latin-1"), end + 1


def _decode_layout(cls: type[Pdu], make: Callable[..., Pdu], seq: int, status: int, body: bytes) -> Pdu:
    layout = cls._LAYOUT
    values: list[Any] = [seq, status]
    if cls._OPTIONAL_BODY and not body:
        values.extend(_DEFAULTS[cls])
        values[2] = None
        return make(*values)
    pos = 0
    n = len(body)
    for name, kind, limit, fstatus in layout:
        if kind is _C:
            value, pos = _decode_cstr(body, pos, name, limit, fstatus)
            values.append(value)
        elif kind is _B:
            if pos >= n:
                raise DecodeError(f"PDU ends before {name}", _S.ESME_RINVCMDLEN)
            values.append(body[pos])
            pos += 1
        elif kind is _SM:
            if pos >= n:
                raise DecodeError("PDU ends before sm_length", _S.ESME_RINVCMDLEN)
            length = body[pos]
            if pos + 1 + length > n:
                raise DecodeError(f"sm_length {length} runs past the PDU", _S.ESME_RINVMSGLEN)
            values.append(body[pos + 1 : pos + 1 + length])
            pos += 1 + length
        elif kind is _DESTS:
            dests, pos = _decode_dests(body, pos)
            values.append(dests)
        else:
            unsucc, pos = _decode_unsuccess(body, pos)
            values.append(unsucc)
    if cls._HAS_TLVS:
        values.append(decode_tlvs(body, pos))
    elif pos != n:
        raise DecodeError(f"{n - pos} unexpected octet(s) after the body", _S.ESME_RINVCMDLEN)
    return make(*values)


# --- submit_multi lists (section 4.5.1, 4.5.2) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class DestAddress:
    """An SME address in submit_multi (dest_flag 1)."""

    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


@dataclass(frozen=True, slots=True)
class DistributionList:
    """A distribution list name in submit_multi (dest_flag 2)."""

    dl_name: str = ""


@dataclass(frozen=True, slots=True)
class UnsuccessSme:
    """One failed destination in submit_multi_resp."""

    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    error_status_code: int = 0


_U32 = Struct(">I")


def _u8(value: Any, name: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= 255:
        raise LocalProtocolError(f"{name} must be an int 0..255, got {value!r}")
    return value


def _encode_dests(dests: tuple[DestAddress | DistributionList, ...]) -> bytes:
    if not 1 <= len(dests) <= 254:
        raise LocalProtocolError("submit_multi takes 1..254 destinations", _S.ESME_RINVNUMDESTS)
    out = [bytes((len(dests),))]
    for d in dests:
        if isinstance(d, DestAddress):
            addr = _cstr(d.destination_addr, "destination_addr", 21, _S.ESME_RINVDSTADR)
            ton, npi = _u8(d.dest_addr_ton, "dest_addr_ton"), _u8(d.dest_addr_npi, "dest_addr_npi")
            out.append(bytes((1, ton, npi)) + addr + b"\x00")
        elif isinstance(d, DistributionList):
            out.append(b"\x02" + _cstr(d.dl_name, "dl_name", 21, _S.ESME_RINVDLNAME) + b"\x00")
        else:
            raise LocalProtocolError(f"dest_addresses holds a {type(d).__name__}", _S.ESME_RINVDESTFLAG)
    return b"".join(out)


def _decode_dests(body: bytes, pos: int) -> tuple[tuple[DestAddress | DistributionList, ...], int]:
    if pos >= len(body):
        raise DecodeError("PDU ends before number_of_dests", _S.ESME_RINVCMDLEN)
    count = body[pos]
    pos += 1
    if count == 0 or count > 254:
        raise DecodeError(f"number_of_dests {count} is not 1..254", _S.ESME_RINVNUMDESTS)
    out: list[DestAddress | DistributionList] = []
    for _ in range(count):
        if pos >= len(body):
            raise DecodeError("PDU ends inside the destination list", _S.ESME_RINVCMDLEN)
        flag = body[pos]
        if flag == 1:
            if pos + 3 > len(body):
                raise DecodeError("PDU ends inside a destination address", _S.ESME_RINVCMDLEN)
            ton, npi = body[pos + 1], body[pos + 2]
            addr, pos = _decode_cstr(body, pos + 3, "destination_addr", 21, _S.ESME_RINVDSTADR)
            out.append(DestAddress(ton, npi, addr))
        elif flag == 2:
            name, pos = _decode_cstr(body, pos + 1, "dl_name", 21, _S.ESME_RINVDLNAME)
            out.append(DistributionList(name))
        else:
            raise DecodeError(f"dest_flag {flag} is neither 1 nor 2", _S.ESME_RINVDESTFLAG)
    return tuple(out), pos


def _encode_unsuccess(items: tuple[UnsuccessSme, ...]) -> bytes:
    if len(items) > 254:
        raise LocalProtocolError("at most 254 unsuccess_sme entries")
    out = [bytes((len(items),))]
    for u in items:
        addr = _cstr(u.destination_addr, "destination_addr", 21, _S.ESME_RINVDSTADR)
        ton, npi = _u8(u.dest_addr_ton, "dest_addr_ton"), _u8(u.dest_addr_npi, "dest_addr_npi")
        code = u.error_status_code
        if not isinstance(code, int) or not 0 <= code <= 0xFFFFFFFF:
            raise LocalProtocolError(f"error_status_code must be an int 0..0xFFFFFFFF, got {code!r}")
        out.append(bytes((ton, npi)) + addr + b"\x00" + _U32.pack(code))
    return b"".join(out)


def _decode_unsuccess(body: bytes, pos: int) -> tuple[tuple[UnsuccessSme, ...], int]:
    if pos >= len(body):
        raise DecodeError("PDU ends before no_unsuccess", _S.ESME_RINVCMDLEN)
    count = body[pos]
    pos += 1
    if count > 254:  # the encoder's limit too: bounded by number_of_dests (section 4.5.1)
        raise DecodeError(f"no_unsuccess {count} is more than 254", _S.ESME_RINVNUMDESTS)
    out: list[UnsuccessSme] = []
    for _ in range(count):
        if pos + 2 > len(body):
            raise DecodeError("PDU ends inside unsuccess_sme", _S.ESME_RINVCMDLEN)
        ton, npi = body[pos], body[pos + 1]
        addr, pos = _decode_cstr(body, pos + 2, "destination_addr", 21, _S.ESME_RINVDSTADR)
        if pos + 4 > len(body):
            raise DecodeError("PDU ends inside unsuccess_sme", _S.ESME_RINVCMDLEN)
        (code,) = _U32.unpack_from(body, pos)
        pos += 4
        out.append(UnsuccessSme(ton, npi, addr, code))
    return tuple(out), pos


# --- layouts shared by several PDUs -------------------------------------------------------------

_BIND_LAYOUT: _Layout = (
    ("system_id", _C, 16, _S.ESME_RINVSYSID),
    ("password", _C, 9, _S.ESME_RINVPASWD),
    ("system_type", _C, 13, _S.ESME_RINVSYSTYP),
    ("interface_version", _B, 0, 0),
    ("addr_ton", _B, 0, 0),
    ("addr_npi", _B, 0, 0),
    ("address_range", _C, 41, _S.ESME_RINVPARLEN),
)
_BIND_RESP_LAYOUT: _Layout = (("system_id", _C, 16, _S.ESME_RINVSYSID),)
_MESSAGE_ID_LAYOUT: _Layout = (("message_id", _C, 65, _S.ESME_RINVMSGID),)
_SM_LAYOUT: _Layout = (
    ("service_type", _C, 6, _S.ESME_RINVSERTYP),
    ("source_addr_ton", _B, 0, 0),
    ("source_addr_npi", _B, 0, 0),
    ("source_addr", _C, 21, _S.ESME_RINVSRCADR),
    ("dest_addr_ton", _B, 0, 0),
    ("dest_addr_npi", _B, 0, 0),
    ("destination_addr", _C, 21, _S.ESME_RINVDSTADR),
    ("esm_class", _B, 0, 0),
    ("protocol_id", _B, 0, 0),
    ("priority_flag", _B, 0, 0),
    ("schedule_delivery_time", _C, 17, _S.ESME_RINVSCHED),
    ("validity_period", _C, 17, _S.ESME_RINVEXPIRY),
    ("registered_delivery", _B, 0, 0),
    ("replace_if_present_flag", _B, 0, 0),
    ("data_coding", _B, 0, 0),
    ("sm_default_msg_id", _B, 0, 0),
    ("short_message", _SM, 254, 0),
)


# --- bind (section 4.1) ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BindTransmitter(Pdu):
    """bind_transmitter, section 4.1.1."""

    command_id: ClassVar[int] = CommandId.BIND_TRANSMITTER
    _LAYOUT: ClassVar[_Layout] = _BIND_LAYOUT
    sequence_number: int = 0
    command_status: int = 0
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(frozen=True, slots=True)
class BindReceiver(Pdu):
    """bind_receiver, section 4.1.3."""

    command_id: ClassVar[int] = CommandId.BIND_RECEIVER
    _LAYOUT: ClassVar[_Layout] = _BIND_LAYOUT
    sequence_number: int = 0
    command_status: int = 0
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(frozen=True, slots=True)
class BindTransceiver(Pdu):
    """bind_transceiver, section 4.1.5."""

    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER
    _LAYOUT: ClassVar[_Layout] = _BIND_LAYOUT
    sequence_number: int = 0
    command_status: int = 0
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(frozen=True, slots=True)
class BindTransmitterResp(Pdu):
    """bind_transmitter_resp, section 4.1.2."""

    command_id: ClassVar[int] = CommandId.BIND_TRANSMITTER_RESP
    _LAYOUT: ClassVar[_Layout] = _BIND_RESP_LAYOUT
    _HAS_TLVS: ClassVar[bool] = True
    _OPTIONAL_BODY: ClassVar[bool] = True
    sequence_number: int = 0
    command_status: int = 0
    system_id: str | None = ""
    optional_parameters: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class BindReceiverResp(Pdu):
    """bind_receiver_resp, section 4.1.4."""

    command_id: ClassVar[int] = CommandId.BIND_RECEIVER_RESP
    _LAYOUT: ClassVar[_Layout] = _BIND_RESP_LAYOUT
    _HAS_TLVS: ClassVar[bool] = True
    _OPTIONAL_BODY: ClassVar[bool] = True
    sequence_number: int = 0
    command_status: int = 0
    system_id: str | None = ""
    optional_parameters: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class BindTransceiverResp(Pdu):
    """bind_transceiver_resp, section 4.1.6."""

    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER_RESP
    _LAYOUT: ClassVar[_Layout] = _BIND_RESP_LAYOUT
    _HAS_TLVS: ClassVar[bool] = True
    _OPTIONAL_BODY: ClassVar[bool] = True
    sequence_number: int = 0
    command_status: int = 0
    system_id: str | None = ""
    optional_parameters: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class Outbind(Pdu):
    """outbind, section 4.1.7."""

    command_id: ClassVar[int] = CommandId.OUTBIND
    _LAYOUT: ClassVar[_Layout] = (
        ("system_id", _C, 16, _S.ESME_RINVSYSID),
        ("password", _C, 9, _S.ESME_RINVPASWD),
    )
    sequence_number: int = 0
    command_status: int = 0
    system_id: str = ""
    password: str = ""


# --- header-only PDUs (sections 4.2, 4.3, 4.11) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unbind(Pdu):
    """unbind, section 4.2.1."""

    command_id: ClassVar[int] = CommandId.UNBIND
    sequence_number: int = 0
    command_status: int = 0


@dataclass(frozen=True, slots=True)
class UnbindResp(Pdu):
    """unbind_resp, section 4.2.2."""

    command_id: ClassVar[int] = CommandId.UNBIND_RESP
    sequence_number: int = 0
    command_status: int = 0


@dataclass(frozen=True, slots=True)
class GenericNack(Pdu):
    """generic_nack, section 4.3.1."""

    command_id: ClassVar[int] = CommandId.GENERIC_NACK
    sequence_number: int = 0
    command_status: int = 0


@dataclass(frozen=True, slots=True)
class EnquireLink(Pdu):
    """enquire_link, section 4.11.1."""

    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK
    sequence_number: int = 0
    command_status: int = 0


@dataclass(frozen=True, slots=True)
class EnquireLinkResp(Pdu):
    """enquire_link_resp, section 4.11.2."""

    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK_RESP
    sequence_number: int = 0
    command_status: int = 0


# --- submit_sm / deliver_sm (sections 4.4, 4.6) ---------------------------------------------------


class _ShortMessagePdu(Pdu):
    """Shared hot-path codec of submit_sm and deliver_sm (identical bodies, sections 4.4.1 / 4.6.1)."""

    __slots__ = ()
    service_type: str
    source_addr_ton: int
    source_addr_npi: int
    source_addr: str
    dest_addr_ton: int
    dest_addr_npi: int
    destination_addr: str
    esm_class: int
    protocol_id: int
    priority_flag: int
    schedule_delivery_time: str
    validity_period: str
    registered_delivery: int
    replace_if_present_flag: int
    data_coding: int
    sm_default_msg_id: int
    short_message: bytes
    optional_parameters: tuple[Tlv, ...]

    def encode_body(self) -> bytes:
        if _encode_sm is not None:
            body = _encode_sm(
                self.service_type,
                self.source_addr_ton,
                self.source_addr_npi,
                self.source_addr,
                self.dest_addr_ton,
                self.dest_addr_npi,
                self.destination_addr,
                self.esm_class,
                self.protocol_id,
                self.priority_flag,
                self.schedule_delivery_time,
                self.validity_period,
                self.registered_delivery,
                self.replace_if_present_flag,
                self.data_coding,
                self.sm_default_msg_id,
                self.short_message,
                self.optional_parameters,
            )
            if body is not None:
                return body
        # not plainly valid, or no C: the reference codec below
        # one bytes-format call does the fixed part: far cheaper than a generic field loop
        sm = self.short_message
        try:
            st = self.service_type.encode("latin-1")
            src = self.source_addr.encode("latin-1")
            dst = self.destination_addr.encode("latin-1")
            sched = self.schedule_delivery_time.encode("latin-1")
            val = self.validity_period.encode("latin-1")
            if (
                len(st) > 5
                or len(src) > 20
                or len(dst) > 20
                or len(sched) > 16
                or len(val) > 16
                or len(sm) > 254
            ):
                raise ValueError("field too long")
            if b"\x00" in st + src + dst + sched + val:
                raise ValueError("NUL inside a C-Octet string")
            body = b"%b\x00%c%c%b\x00%c%c%b\x00%c%c%c%b\x00%b\x00%c%c%c%c%c%b" % (
                st,
                self.source_addr_ton,
                self.source_addr_npi,
                src,
                self.dest_addr_ton,
                self.dest_addr_npi,
                dst,
                self.esm_class,
                self.protocol_id,
                self.priority_flag,
                sched,
                val,
                self.registered_delivery,
                self.replace_if_present_flag,
                self.data_coding,
                self.sm_default_msg_id,
                len(sm),
                sm,
            )
        except (ValueError, TypeError, OverflowError, AttributeError):
            return _encode_layout(self)  # slow path: finds the field at fault and says which
        if self.optional_parameters:
            return body + encode_tlvs(self.optional_parameters)
        return body


def _decode_short_message_pdu(
    cls: type[Pdu], make: Callable[..., Pdu], seq: int, status: int, b: bytes
) -> Pdu:
    """Decode the body of submit_sm / deliver_sm from ``b``, a whole PDU (body at offset 16)."""
    if _decode_sm is not None:
        values = _decode_sm(b, _TLV_KINDS, _make_tlv)
        if values is not None:
            return make(seq, status, *values)
    # not plainly valid, or no C: the reference codec below names the fault
    # The five C-strings are found on a latin-1 view of the PDU (slicing a str needs no decode);
    # the integers between them sit at fixed offsets from the terminators.
    s = b.decode("latin-1")
    find = s.find
    n = len(b)
    e0 = find("\0", 16, 22)
    e1 = find("\0", e0 + 3, e0 + 24) if e0 >= 0 else -1
    e2 = find("\0", e1 + 3, e1 + 24) if e1 >= 0 else -1
    e3 = find("\0", e2 + 4, e2 + 21) if e2 >= 0 else -1
    e4 = find("\0", e3 + 1, e3 + 18) if e3 >= 0 else -1
    if e4 < 0 or e4 + 6 > n or e1 + 3 > n or e2 + 4 > n:
        return _decode_layout(cls, make, seq, status, b[HEADER_LENGTH:])  # slow path names the fault
    sm_end = e4 + 6 + b[e4 + 5]
    if sm_end > n:
        raise DecodeError(f"sm_length {b[e4 + 5]} runs past the PDU", _S.ESME_RINVMSGLEN)
    return make(
        seq,
        status,
        s[16:e0],
        b[e0 + 1],
        b[e0 + 2],
        s[e0 + 3 : e1],
        b[e1 + 1],
        b[e1 + 2],
        s[e1 + 3 : e2],
        b[e2 + 1],
        b[e2 + 2],
        b[e2 + 3],
        s[e2 + 4 : e3],
        s[e3 + 1 : e4],
        b[e4 + 1],
        b[e4 + 2],
        b[e4 + 3],
        b[e4 + 4],
        b[e4 + 6 : sm_end],
        decode_tlvs(b, sm_end) if sm_end < n else (),
    )


@dataclass(frozen=True, slots=True)
class SubmitSm(_ShortMessagePdu):
    """submit_sm, section 4.4.1."""

    command_id: ClassVar[int] = CommandId.SUBMIT_SM
    _LAYOUT: ClassVar[_Layout] = _SM_LAYOUT
    _HAS_TLVS: ClassVar[bool] = True
    sequence_number: int = 0
    command_status: int = 0
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    optional_parameters: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class SubmitSmResp(Pdu):
    """submit_sm_resp, section 4.4.2."""

    command_id: ClassVar[int] = CommandId.SUBMIT_SM_RESP
    _LAYOUT: ClassVar[_Layout] = _MESSAGE_ID_LAYOUT
    _HAS_TLVS: ClassVar[bool] = True
    _OPTIONAL_BODY: ClassVar[bool] = True
    sequence_number: int = 0
    command_status: int = 0
    message_id: str | None = ""
    optional_parameters: tuple[Tlv, ...] = ()

    def encode_body(self) -> bytes:
        mid = self.message_id
        if (
            type(mid) is str
            and not self.optional_parameters
            and len(mid) < 65
            and mid.isascii()
            and "\0" not in mid
        ):
            return mid.encode("ascii") + b"\x00"
        return _encode_layout(self)


def _decode_submit_sm_resp(cls: type[Pdu], make: Callable[..., Pdu], seq: int, status: int, b: bytes) -> Pdu:
    """submit_sm_resp, the PDU an ESME reads most: a message_id and, rarely, TLVs."""
    end = b.find(0, HEADER_LENGTH, HEADER_LENGTH + 65)
    if end == len(b) - 1:
        return make(seq, status, b[HEADER_LENGTH:end].decode("latin-1"), ())
    return _decode_layout(cls, make, seq, status, b[HEADER_LENGTH:])


@dataclass(frozen=True, slots=True)
class DeliverSm(_ShortMessagePdu):
    """deliver_sm, section 4.6.1 (MO messages and delivery receipts)."""

    command_id: ClassVar[int] = CommandId.DELIVER_SM
    _LAYOUT: ClassVar[_Layout] = _SM_LAYOUT
    _HAS_TLVS: ClassVar[bool] = True
    sequence_number: int = 0
    command_status: int = 0
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    optional_parameters: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class DeliverSmResp(Pdu):
    """deliver_sm_resp, section 4.6.2 (message_id unused, a single NUL)."""

    command_id: ClassVar[int] = CommandId.DELIVER_SM_RESP
    _LAYOUT: ClassVar[_Layout] = _MESSAGE_ID_LAYOUT
    _HAS_TLVS: ClassVar[bool] = True
    _OPTIONAL_BODY: ClassVar[bool] = True
    sequence_number: int = 0
    command_status: int = 0
    message_id: str | None = ""
    optional_parameters: tuple[Tlv, ...] = ()


# --- submit_multi (section 4.5) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubmitMulti(Pdu):
    """submit_multi, section 4.5.1."""

    command_id: ClassVar[int] = CommandId.SUBMIT_MULTI
    _LAYOUT: ClassVar[_Layout] = (
        ("service_type", _C, 6, _S.ESME_RINVSERTYP),
        ("source_addr_ton", _B, 0, 0),
        ("source_addr_npi", _B, 0, 0),
        ("source_addr", _C, 21, _S.ESME_RINVSRCADR),
        ("dest_addresses", _DESTS, 0, 0),
        *_SM_LAYOUT[7:],
    )
    _HAS_TLVS: ClassVar[bool] = True
    sequence_number: int = 0
    command_status: int = 0
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addresses: tuple[DestAddress | DistributionList, ...] = (DestAddress(),)
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    optional_parameters: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class SubmitMultiResp(Pdu):
    """submit_multi_resp, section 4.5.2."""

    command_id: ClassVar[int] = CommandId.SUBMIT_MULTI_RESP
    _LAYOUT: ClassVar[_Layout] = (
        ("message_id", _C, 65, _S.ESME_RINVMSGID),
        ("unsuccess_smes", _UNSUCC, 0, 0),
    )
    _HAS_TLVS: ClassVar[bool] = True
    _OPTIONAL_BODY: ClassVar[bool] = True
    sequence_number: int = 0
    command_status: int = 0
    message_id: str | None = ""
    unsuccess_smes: tuple[UnsuccessSme, ...] = ()
    optional_parameters: tuple[Tlv, ...] = ()


# --- data_sm (section 4.7) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataSm(Pdu):
    """data_sm, section 4.7.1."""

    command_id: ClassVar[int] = CommandId.DATA_SM
    _LAYOUT: ClassVar[_Layout] = (
        ("service_type", _C, 6, _S.ESME_RINVSERTYP),
        ("source_addr_ton", _B, 0, 0),
        ("source_addr_npi", _B, 0, 0),
        ("source_addr", _C, 65, _S.ESME_RINVSRCADR),
        ("dest_addr_ton", _B, 0, 0),
        ("dest_addr_npi", _B, 0, 0),
        ("destination_addr", _C, 65, _S.ESME_RINVDSTADR),
        ("esm_class", _B, 0, 0),
        ("registered_delivery", _B, 0, 0),
        ("data_coding", _B, 0, 0),
    )
    _HAS_TLVS: ClassVar[bool] = True
    sequence_number: int = 0
    command_status: int = 0
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0
    optional_parameters: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class DataSmResp(Pdu):
    """data_sm_resp, section 4.7.2."""

    command_id: ClassVar[int] = CommandId.DATA_SM_RESP
    _LAYOUT: ClassVar[_Layout] = _MESSAGE_ID_LAYOUT
    _HAS_TLVS: ClassVar[bool] = True
    _OPTIONAL_BODY: ClassVar[bool] = True
    sequence_number: int = 0
    command_status: int = 0
    message_id: str | None = ""
    optional_parameters: tuple[Tlv, ...] = ()


# --- query_sm, cancel_sm, replace_sm (sections 4.8, 4.9, 4.10) ----------------------------------


@dataclass(frozen=True, slots=True)
class QuerySm(Pdu):
    """query_sm, section 4.8.1."""

    command_id: ClassVar[int] = CommandId.QUERY_SM
    _LAYOUT: ClassVar[_Layout] = (
        ("message_id", _C, 65, _S.ESME_RINVMSGID),
        ("source_addr_ton", _B, 0, 0),
        ("source_addr_npi", _B, 0, 0),
        ("source_addr", _C, 21, _S.ESME_RINVSRCADR),
    )
    sequence_number: int = 0
    command_status: int = 0
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


@dataclass(frozen=True, slots=True)
class QuerySmResp(Pdu):
    """query_sm_resp, section 4.8.2."""

    command_id: ClassVar[int] = CommandId.QUERY_SM_RESP
    _LAYOUT: ClassVar[_Layout] = (
        ("message_id", _C, 65, _S.ESME_RINVMSGID),
        ("final_date", _C, 17, _S.ESME_RINVPARLEN),
        ("message_state", _B, 0, 0),
        ("error_code", _B, 0, 0),
    )
    _HAS_TLVS: ClassVar[bool] = True
    _OPTIONAL_BODY: ClassVar[bool] = True
    sequence_number: int = 0
    command_status: int = 0
    message_id: str | None = ""
    final_date: str = ""
    message_state: int = 0
    error_code: int = 0
    optional_parameters: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class CancelSm(Pdu):
    """cancel_sm, section 4.9.1."""

    command_id: ClassVar[int] = CommandId.CANCEL_SM
    _LAYOUT: ClassVar[_Layout] = (
        ("service_type", _C, 6, _S.ESME_RINVSERTYP),
        ("message_id", _C, 65, _S.ESME_RINVMSGID),
        ("source_addr_ton", _B, 0, 0),
        ("source_addr_npi", _B, 0, 0),
        ("source_addr", _C, 21, _S.ESME_RINVSRCADR),
        ("dest_addr_ton", _B, 0, 0),
        ("dest_addr_npi", _B, 0, 0),
        ("destination_addr", _C, 21, _S.ESME_RINVDSTADR),
    )
    sequence_number: int = 0
    command_status: int = 0
    service_type: str = ""
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


@dataclass(frozen=True, slots=True)
class CancelSmResp(Pdu):
    """cancel_sm_resp, section 4.9.2."""

    command_id: ClassVar[int] = CommandId.CANCEL_SM_RESP
    sequence_number: int = 0
    command_status: int = 0


@dataclass(frozen=True, slots=True)
class ReplaceSm(Pdu):
    """replace_sm, section 4.10.1."""

    command_id: ClassVar[int] = CommandId.REPLACE_SM
    _LAYOUT: ClassVar[_Layout] = (
        ("message_id", _C, 65, _S.ESME_RINVMSGID),
        ("source_addr_ton", _B, 0, 0),
        ("source_addr_npi", _B, 0, 0),
        ("source_addr", _C, 21, _S.ESME_RINVSRCADR),
        ("schedule_delivery_time", _C, 17, _S.ESME_RINVSCHED),
        ("validity_period", _C, 17, _S.ESME_RINVEXPIRY),
        ("registered_delivery", _B, 0, 0),
        ("sm_default_msg_id", _B, 0, 0),
        ("short_message", _SM, 254, 0),
    )
    sequence_number: int = 0
    command_status: int = 0
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


@dataclass(frozen=True, slots=True)
class ReplaceSmResp(Pdu):
    """replace_sm_resp, section 4.10.2."""

    command_id: ClassVar[int] = CommandId.REPLACE_SM_RESP
    sequence_number: int = 0
    command_status: int = 0


# --- alert_notification (section 4.12) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertNotification(Pdu):
    """alert_notification, section 4.12.1 (no response)."""

    command_id: ClassVar[int] = CommandId.ALERT_NOTIFICATION
    _LAYOUT: ClassVar[_Layout] = (
        ("source_addr_ton", _B, 0, 0),
        ("source_addr_npi", _B, 0, 0),
        ("source_addr", _C, 65, _S.ESME_RINVSRCADR),
        ("esme_addr_ton", _B, 0, 0),
        ("esme_addr_npi", _B, 0, 0),
        ("esme_addr", _C, 65, _S.ESME_RINVDSTADR),
    )
    _HAS_TLVS: ClassVar[bool] = True
    sequence_number: int = 0
    command_status: int = 0
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    esme_addr_ton: int = 0
    esme_addr_npi: int = 0
    esme_addr: str = ""
    optional_parameters: tuple[Tlv, ...] = ()


# --- registry and entry points ---------------------------------------------------------------------

_ALL: tuple[type[Pdu], ...] = (
    BindTransmitter,
    BindReceiver,
    BindTransceiver,
    BindTransmitterResp,
    BindReceiverResp,
    BindTransceiverResp,
    Outbind,
    Unbind,
    UnbindResp,
    GenericNack,
    EnquireLink,
    EnquireLinkResp,
    SubmitSm,
    SubmitSmResp,
    DeliverSm,
    DeliverSmResp,
    SubmitMulti,
    SubmitMultiResp,
    DataSm,
    DataSmResp,
    QuerySm,
    QuerySmResp,
    CancelSm,
    CancelSmResp,
    ReplaceSm,
    ReplaceSmResp,
    AlertNotification,
)
_CLASSES: dict[int, type[Pdu]] = {c.command_id: c for c in _ALL}
_DEFAULTS: dict[type[Pdu], list[Any]] = {
    c: [f.default for f in fields(c)][2:]  # type: ignore[arg-type]
    for c in _ALL
}
_MAKERS: dict[int, Callable[..., Pdu]] = {c.command_id: fast_constructor(c) for c in _ALL}


def _make_decoder(cls: type[Pdu]) -> Callable[[int, int, bytes], Pdu]:
    make = _MAKERS[cls.command_id]
    if issubclass(cls, _ShortMessagePdu):

        def decode_sm(seq: int, status: int, data: bytes) -> Pdu:
            return _decode_short_message_pdu(cls, make, seq, status, data)

        return decode_sm
    if cls is SubmitSmResp:

        def decode_resp(seq: int, status: int, data: bytes) -> Pdu:
            return _decode_submit_sm_resp(cls, make, seq, status, data)

        return decode_resp
    if not cls._LAYOUT:

        def decode_empty(seq: int, status: int, data: bytes) -> Pdu:
            if len(data) > HEADER_LENGTH:
                extra = len(data) - HEADER_LENGTH
                raise DecodeError(f"{extra} unexpected octet(s) after the header", _S.ESME_RINVCMDLEN)
            return make(seq, status)

        return decode_empty

    def decode_generic(seq: int, status: int, data: bytes) -> Pdu:
        return _decode_layout(cls, make, seq, status, data[HEADER_LENGTH:])

    return decode_generic


_DECODERS: dict[int, Callable[[int, int, bytes], Pdu]] = {c.command_id: _make_decoder(c) for c in _ALL}


def body_decoder(command_id: int) -> Callable[[int, int, bytes], Pdu] | None:
    """The decoder ``(sequence_number, command_status, whole_pdu) -> Pdu`` of a command_id whose
    header was already read and checked (the engine's fast path), or None for an unknown id."""
    return _DECODERS.get(command_id)


def pdu_class(command_id: int) -> type[Pdu] | None:
    """The PDU class of a command_id, or None for an id SMPP 3.4 does not define."""
    return _CLASSES.get(command_id)


def decode_pdu(data: bytes) -> Pdu:
    """Decode exactly one PDU, header included.

    Raises DecodeError carrying the command_status to answer with and, when the header could be
    read, the command_id and sequence_number of the offending PDU.
    """
    if len(data) < HEADER_LENGTH:
        raise DecodeError(f"PDU of {len(data)} octets is shorter than the header", _S.ESME_RINVCMDLEN)
    length, command_id, status, seq = _unpack_header(data)
    if length != len(data):
        raise DecodeError(
            f"command_length {length} but {len(data)} octets given",
            _S.ESME_RINVCMDLEN,
            command_id=command_id,
            sequence_number=seq,
        )
    decoder = _DECODERS.get(command_id)
    if decoder is None:
        raise DecodeError(
            f"unknown command_id {command_id:#010x}",
            _S.ESME_RINVCMDID,
            command_id=command_id,
            sequence_number=seq,
        )
    try:
        return decoder(seq, status, data)
    except DecodeError as exc:
        exc.command_id = command_id
        exc.sequence_number = seq
        raise


_pack_header = HEADER.pack


def encode_pdu(pdu: Pdu, sequence_number: int | None = None) -> bytes:
    """Encode a PDU, header included; ``sequence_number`` overrides the PDU's own."""
    body = pdu.encode_body()
    seq = pdu.sequence_number if sequence_number is None else sequence_number
    try:
        return _pack_header(HEADER_LENGTH + len(body), pdu.command_id, pdu.command_status, seq) + body
    except struct_error as exc:  # header values out of range
        raise LocalProtocolError(f"cannot encode header of {type(pdu).__name__}: {exc}") from None
