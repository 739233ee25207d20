"""Diameter message and AVP codec (RFC 6733 section 3, 4.1, 4.2, 4.3, 4.4; Result-Codes of 7.1).

Sans-I/O: bytes in, frozen dataclasses out, and back. ``Avp`` keeps its raw ``data`` and ``flags``
(reserved bits included), and AVPs nobody here knows are kept, so ``encode(decode(b)) == b`` for
every ``b`` that decodes. Padding to 4 octets follows each AVP and is not counted in its AVP Length
(4.1); padding must be zero, otherwise re-encoding could not be byte-identical, so non-zero
padding is rejected with 5014 DIAMETER_INVALID_AVP_LENGTH.

Decoding raises ``DecodeError`` whose ``status`` is the Result-Code to answer with:
5011 (version), 5015 (message length), 3008 (E bit on a request), 5014 (AVP length, overrun,
padding, wrong size of a fixed-size type), 5004 (a value that cannot be what its type says).

The typed value functions cover every base data format of 4.2 and 4.3: OctetString, Integer32,
Integer64, Unsigned32, Unsigned64, Float32, Float64, Grouped (4.4), Address, Time, UTF8String,
DiameterIdentity, DiameterURI and Enumerated.

The AVP scan of ``decode`` / ``decode_avps`` / ``scan_avps``, the AVP encoding of ``encode_avp`` /
``encode_avps`` / ``encode``, and the making of decoded Messages (and the grammar checks of
``credit_control``) run in C when the optional extension ``protocols.diameter._speedups`` is built
(``pip install`` builds it where a C compiler is present). It only handles well-formed runs and plain
AVPs and hands everything else to the Python code here, which stays the reference and the one that
raises. ``record_maker`` gives the C path's maker of a frozen dataclass (or the class itself).
``TGW_PURE_PYTHON=1`` (any value but empty or ``0``) in the environment when this module is first
imported forces the pure-Python code.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntFlag
from typing import TYPE_CHECKING, Any, NamedTuple, ParamSpec, TypeVar

from protocols._fast import pure_python_asked
from protocols.errors import DecodeError, LocalProtocolError
from protocols.registry import WideKeepUnknownIntEnum

if TYPE_CHECKING:
    from protocols.diameter._speedups import Found, Maker, Reader

__all__ = [
    "HEADER_LENGTH",
    "Avp",
    "AvpFlag",
    "CommandFlag",
    "Message",
    "OtherAddress",
    "RawAvp",
    "ResultCode",
    "decode",
    "decode_address",
    "decode_avps",
    "decode_diameter_identity",
    "decode_diameter_uri",
    "decode_enumerated",
    "decode_float32",
    "decode_float64",
    "decode_grouped",
    "decode_integer32",
    "decode_integer64",
    "decode_octet_string",
    "decode_time",
    "decode_unsigned32",
    "decode_unsigned64",
    "decode_utf8_string",
    "encode",
    "encode_address",
    "encode_avp",
    "encode_avps",
    "encode_diameter_identity",
    "encode_diameter_uri",
    "encode_enumerated",
    "encode_float32",
    "encode_float64",
    "encode_grouped",
    "encode_header",
    "encode_integer32",
    "encode_integer64",
    "encode_octet_string",
    "encode_time",
    "encode_unsigned32",
    "encode_unsigned64",
    "encode_utf8_string",
    "message_length",
    "record_maker",
    "scan_avps",
]

HEADER_LENGTH = 20
"""Octets of the Diameter header (RFC 6733 section 3)."""

_MAX_24 = 0xFFFFFF
_HEADER = struct.Struct(">IIIII")
_AVP_HEADER = struct.Struct(">II")
_AVP_VENDOR_HEADER = struct.Struct(">III")
_PADDING = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")


class CommandFlag(IntFlag):
    """Command Flags of the header (RFC 6733 section 3); the low four bits are reserved."""

    REQUEST = 0x80
    PROXIABLE = 0x40
    ERROR = 0x20
    RETRANSMITTED = 0x10


class AvpFlag(IntFlag):
    """AVP Flags (RFC 6733 section 4.1); the low five bits are reserved."""

    VENDOR = 0x80
    MANDATORY = 0x40
    PROTECTED = 0x20


# Plain ints for the per-AVP paths: each operation on an IntFlag builds a new enum value (slow).
_VENDOR_BIT = int(AvpFlag.VENDOR)
_MANDATORY_BIT = int(AvpFlag.MANDATORY)
_REQUEST_BIT = int(CommandFlag.REQUEST)
_PROXIABLE_BIT = int(CommandFlag.PROXIABLE)
_ERROR_BIT = int(CommandFlag.ERROR)
_RETRANSMITTED_BIT = int(CommandFlag.RETRANSMITTED)


class ResultCode(WideKeepUnknownIntEnum):
    """Result-Code AVP values (RFC 6733 section 7.1; 4xxx/5xxx of RFC 4006 section 9 too)."""

    DIAMETER_MULTI_ROUND_AUTH = 1001
    DIAMETER_SUCCESS = 2001
    DIAMETER_LIMITED_SUCCESS = 2002
    DIAMETER_COMMAND_UNSUPPORTED = 3001
    DIAMETER_UNABLE_TO_DELIVER = 3002
    DIAMETER_REALM_NOT_SERVED = 3003
    DIAMETER_TOO_BUSY = 3004
    DIAMETER_LOOP_DETECTED = 3005
    DIAMETER_REDIRECT_INDICATION = 3006
    DIAMETER_APPLICATION_UNSUPPORTED = 3007
    DIAMETER_INVALID_HDR_BITS = 3008
    DIAMETER_INVALID_AVP_BITS = 3009
    DIAMETER_UNKNOWN_PEER = 3010
    DIAMETER_AUTHENTICATION_REJECTED = 4001
    DIAMETER_OUT_OF_SPACE = 4002
    ELECTION_LOST = 4003
    DIAMETER_END_USER_SERVICE_DENIED = 4010
    DIAMETER_CREDIT_CONTROL_NOT_APPLICABLE = 4011
    DIAMETER_CREDIT_LIMIT_REACHED = 4012
    DIAMETER_AVP_UNSUPPORTED = 5001
    DIAMETER_UNKNOWN_SESSION_ID = 5002
    DIAMETER_AUTHORIZATION_REJECTED = 5003
    DIAMETER_INVALID_AVP_VALUE = 5004
    DIAMETER_MISSING_AVP = 5005
    DIAMETER_RESOURCES_EXCEEDED = 5006
    DIAMETER_CONTRADICTING_AVPS = 5007
    DIAMETER_AVP_NOT_ALLOWED = 5008
    DIAMETER_AVP_OCCURS_TOO_MANY_TIMES = 5009
    DIAMETER_NO_COMMON_APPLICATION = 5010
    DIAMETER_UNSUPPORTED_VERSION = 5011
    DIAMETER_UNABLE_TO_COMPLY = 5012
    DIAMETER_INVALID_BIT_IN_HEADER = 5013
    DIAMETER_INVALID_AVP_LENGTH = 5014
    DIAMETER_INVALID_MESSAGE_LENGTH = 5015
    DIAMETER_INVALID_AVP_BIT_COMBO = 5016
    DIAMETER_NO_COMMON_SECURITY = 5017
    DIAMETER_USER_UNKNOWN = 5030
    DIAMETER_RATING_FAILED = 5031


_AVP_LENGTH = ResultCode.DIAMETER_INVALID_AVP_LENGTH
_AVP_VALUE = ResultCode.DIAMETER_INVALID_AVP_VALUE


@dataclass(frozen=True, slots=True)
class Avp:
    """One AVP (RFC 6733 section 4.1): ``data`` is the raw value, without header or padding.

    ``vendor_id`` is present exactly when the V bit is set in ``flags``.
    """

    code: int
    flags: int
    vendor_id: int | None
    data: bytes

    def __post_init__(self) -> None:
        if (self.vendor_id is None) == bool(self.flags & _VENDOR_BIT):
            raise LocalProtocolError("AVP vendor_id must be given exactly when the V flag is set")

    @property
    def is_mandatory(self) -> bool:
        return bool(self.flags & _MANDATORY_BIT)

    @property
    def is_vendor_specific(self) -> bool:
        return bool(self.flags & _VENDOR_BIT)


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One Diameter message (RFC 6733 section 3), header fields by their spec names."""

    version: int = 1
    command_flags: int
    command_code: int
    application_id: int
    hop_by_hop: int
    end_to_end: int
    avps: tuple[Avp, ...] = ()

    @property
    def is_request(self) -> bool:
        return bool(self.command_flags & _REQUEST_BIT)

    @property
    def is_proxiable(self) -> bool:
        return bool(self.command_flags & _PROXIABLE_BIT)

    @property
    def is_error(self) -> bool:
        return bool(self.command_flags & _ERROR_BIT)

    @property
    def is_retransmitted(self) -> bool:
        return bool(self.command_flags & _RETRANSMITTED_BIT)


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    setter: Callable[[Any, Any], None] = vars(cls)[name].__set__
    return setter


# The decoder builds its Avps and Messages through the slots. Its values are consistent by
# construction (vendor_id exactly when the V bit is set), and a frozen dataclass's __init__ assigns
# each field through object.__setattr__ (plus Avp's __post_init__ check): the slots are 3-4x
# cheaper, and a message has tens of AVPs. Everything else goes through Avp(...) and is checked.
_new_object = object.__new__
_set_code = _slot_setter(Avp, "code")
_set_flags = _slot_setter(Avp, "flags")
_set_vendor_id = _slot_setter(Avp, "vendor_id")
_set_data = _slot_setter(Avp, "data")
_set_version = _slot_setter(Message, "version")
_set_command_flags = _slot_setter(Message, "command_flags")
_set_command_code = _slot_setter(Message, "command_code")
_set_application_id = _slot_setter(Message, "application_id")
_set_hop_by_hop = _slot_setter(Message, "hop_by_hop")
_set_end_to_end = _slot_setter(Message, "end_to_end")
_set_avps = _slot_setter(Message, "avps")


# --- the optional C accelerator -------------------------------------------------------------------

RawAvp = tuple[int, int, int | None, bytes]
"""An AVP as (code, flags, vendor_id, data): what ``scan_avps`` gives, ``Avp(*raw)`` makes the Avp."""

_ScanAvps = Callable[[bytes, int, int], list[RawAvp] | None]
_DecodeAvps = Callable[[bytes, int, int, type[Avp]], tuple[Avp, ...] | None]
_EncodeAvps = Callable[[tuple[Avp, ...] | list[Avp], type[Avp]], bytes | None]
_EncodeParts = Callable[[list[Avp | bytes], type[Avp]], bytes | None]
_Select = Callable[[tuple[Avp, ...] | list[Avp], type[Avp], tuple[int, ...]], list[Avp] | None]
_GrammarKey = int | tuple[int, int]
_ByKey = Mapping[_GrammarKey, tuple[str, int | None, int | None]]
_MRules = Mapping[_GrammarKey, int | None]
_Members = Callable[[bytes, _ByKey, _MRules, bool, tuple[str, ...]], dict[str, list[RawAvp]] | None]
_Collect = Callable[
    [tuple[Avp, ...], type[Avp], _ByKey, _MRules, bool, tuple[str, ...]], dict[str, list[RawAvp]] | None
]


class _Speedups(NamedTuple):
    """What the C accelerator offers; ``members``, ``collect``, ``Found`` and ``Reader`` serve
    credit_control's grammar checks and typed readers, ``Maker`` ``record_maker`` (one loader, one
    switch)."""

    scan_avps: _ScanAvps
    decode_avps: _DecodeAvps
    encode_avps: _EncodeAvps
    encode_parts: _EncodeParts
    select: _Select
    members: _Members
    collect: _Collect
    Found: type[Found]
    Reader: type[Reader[Any]]
    Maker: type[Maker[Any]]


def _load_speedups(environ: Mapping[str, str]) -> _Speedups | None:
    """The C accelerator, or None if it is not built or ``TGW_PURE_PYTHON`` is set to anything but
    "" or "0"."""
    if pure_python_asked(environ):
        return None
    try:
        from protocols.diameter import _speedups as c  # noqa: PLC0415 (here, so that tests can replay the choice)
    except ImportError:  # not built (no C compiler at install time): the pure-Python code below
        return None
    return _Speedups(
        c.scan_avps,
        c.decode_avps,
        c.encode_avps,
        c.encode_parts,
        c.select,
        c.members,
        c.collect,
        c.Found,
        c.Reader,
        c.Maker,
    )


# read once, at import; module globals read at call time, so tests can switch them off in-process
_SPEEDUPS = _load_speedups(os.environ)
_c_scan_avps: _ScanAvps | None = None if _SPEEDUPS is None else _SPEEDUPS.scan_avps
_c_decode_avps: _DecodeAvps | None = None if _SPEEDUPS is None else _SPEEDUPS.decode_avps
_c_encode_avps: _EncodeAvps | None = None if _SPEEDUPS is None else _SPEEDUPS.encode_avps
_c_encode_parts: _EncodeParts | None = None if _SPEEDUPS is None else _SPEEDUPS.encode_parts

_P = ParamSpec("_P")
_R = TypeVar("_R")


def record_maker(cls: Callable[_P, _R]) -> Callable[_P, _R]:
    """``cls`` itself, or with the C accelerator a ``Maker``: a callable that takes what ``cls``
    takes and makes the same instance, allocated as ``object.__new__`` does with each field stored in
    its slot, in C (the way ``decode`` builds Avps; a frozen dataclass's ``__init__`` goes through
    ``object.__setattr__`` per field, 0.2 us each). For frozen slotted dataclasses whose ``__init__``
    does nothing else: no ``__post_init__``, no ``default_factory``, no ``init=False`` (anything else
    raises TypeError here, at import). The class stays the reference: the makers are checked against
    it (tests/diameter/test_speedups_makers.py)."""
    return _record_maker(cls, None if _SPEEDUPS is None else _SPEEDUPS.Maker)


def _record_maker(cls: Callable[_P, _R], maker_type: type[Maker[Any]] | None) -> Callable[_P, _R]:
    """``record_maker`` with the Maker type given (None: the class itself)."""
    klass: Any = cls  # inspected below (the narrowing of isinstance would lose the signature)
    if not isinstance(klass, type) or not dataclasses.is_dataclass(klass):
        raise TypeError(f"{klass!r} is not a dataclass")
    fields = dataclasses.fields(klass)
    params = klass.__dataclass_params__  # type: ignore[attr-defined]  # set by @dataclass
    if (
        not params.init
        or not params.frozen
        or hasattr(klass, "__post_init__")
        or "__slots__" not in vars(klass)
        or klass.__new__ is not object.__new__
        or any(not f.init or f.default_factory is not dataclasses.MISSING for f in fields)
    ):
        raise TypeError(f"{klass.__name__}'s __init__ does more than set its slots")
    if maker_type is None:
        return cls
    # __init__'s parameters: the positional-or-keyword fields, then the keyword-only ones
    ordered = [f for f in fields if not f.kw_only] + [f for f in fields if f.kw_only]
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    positional = sum(1 for f in fields if not f.kw_only)
    maker: Callable[_P, _R] = maker_type(klass, tuple(f.name for f in ordered), positional, defaults)
    return maker


# decode's Messages: a Maker with the C accelerator, else (None) the slot setters above, which cost
# less than Message's __init__ (a module global read at call time: tests switch it off)
_c_new_message: Callable[..., Message] | None = None if _SPEEDUPS is None else record_maker(Message)


# --- messages and AVPs ----------------------------------------------------------------------


def encode_avp(avp: Avp) -> bytes:
    """One AVP with its header and zero padding to a multiple of 4 octets."""
    if _c_encode_avps is not None:
        octets = _c_encode_avps((avp,), Avp)  # the plain case in C; anything else below
        if octets is not None:
            return octets
    data = avp.data
    vendor_id = avp.vendor_id
    flags = avp.flags
    length = len(data) + (8 if vendor_id is None else 12)
    if length <= _MAX_24 and 0 <= flags <= 0xFF:
        try:
            if vendor_id is None:
                head = _AVP_HEADER.pack(avp.code, flags << 24 | length)
            else:
                head = _AVP_VENDOR_HEADER.pack(avp.code, flags << 24 | length, vendor_id)
        except (struct.error, OverflowError):
            pass  # a code or Vendor-Id out of range: _avp_error says which
        else:
            return head + data + _PADDING[-length % 4]
    raise _avp_error(avp)


def _avp_error(avp: Avp) -> LocalProtocolError:
    """Why ``avp`` cannot be encoded (the checks in the order the fields are written)."""
    try:
        if avp.vendor_id is not None:
            _pack(_U32, avp.vendor_id, "Vendor-Id")
        length = (8 if avp.vendor_id is None else 12) + len(avp.data)
        if length > _MAX_24:
            return LocalProtocolError(f"AVP {avp.code} is too long ({length} octets)")
        if not 0 <= avp.flags <= 0xFF:
            return LocalProtocolError(f"AVP flags {avp.flags} out of range")
        _pack(_U32, avp.code, "AVP Code")
    except LocalProtocolError as exc:
        return exc
    return LocalProtocolError(f"AVP {avp.code} cannot be encoded")  # pragma: no cover - defensive


def encode_avps(avps: Iterable[Avp]) -> bytes:
    """AVPs one after the other, each padded (the body of a message or of a Grouped AVP)."""
    items = avps if type(avps) is tuple or type(avps) is list else tuple(avps)
    if _c_encode_avps is not None:
        octets = _c_encode_avps(items, Avp)  # all of them in C when each is the plain case
        if octets is not None:
            return octets
    return b"".join([encode_avp(avp) for avp in items])


def _encode_parts(parts: list[Avp | bytes]) -> bytes:
    """``encode_avps`` where a part may also be octets encoded already (AVPs that answers share),
    copied as they are: the body of credit_control.encode_answer."""
    if _c_encode_parts is not None:
        octets = _c_encode_parts(parts, Avp)
        if octets is not None:
            return octets
    return b"".join([part if isinstance(part, bytes) else encode_avp(part) for part in parts])


def decode_avps(data: bytes) -> tuple[Avp, ...]:
    """Parse a run of padded AVPs filling ``data`` exactly."""
    if type(data) is not bytes:
        data = bytes(data)  # slices of it become the AVPs' data: they must be bytes
    return _decode_avps(data, 0, len(data))


def scan_avps(data: bytes) -> list[RawAvp]:
    """``decode_avps`` without building ``Avp`` objects, same checks and errors: for parsers that read
    the values themselves (a Grouped AVP's members) and build an ``Avp`` only to name one in an error."""
    if type(data) is not bytes:
        data = bytes(data)
    return _scan_avps(data, 0, len(data))


def _scan_avps(data: bytes, offset: int, end: int) -> list[RawAvp]:
    """The AVPs of ``data[offset:end]`` (no copy of the run itself), checked per RFC 6733 4.1."""
    if _c_scan_avps is not None:
        scanned = _c_scan_avps(data, offset, end)
        if scanned is not None:
            return scanned
    avps: list[RawAvp] = []
    append = avps.append
    unpack_from = _AVP_HEADER.unpack_from
    start = offset
    while offset < end:
        if end - offset < 8:
            raise DecodeError(f"truncated AVP header at offset {offset - start}", _AVP_LENGTH)
        code, flags_length = unpack_from(data, offset)
        flags = flags_length >> 24
        length = flags_length & _MAX_24
        header_length = 12 if flags & _VENDOR_BIT else 8
        if length < header_length:
            raise DecodeError(f"AVP {code}: AVP Length {length} shorter than its header", _AVP_LENGTH)
        padded = (length + 3) & ~3
        if offset + padded > end:
            raise DecodeError(f"AVP {code}: AVP Length {length} overruns the data", _AVP_LENGTH)
        if padded != length and any(data[offset + length : offset + padded]):
            raise DecodeError(f"AVP {code}: non-zero padding", _AVP_LENGTH)
        vendor_id = _U32.unpack_from(data, offset + 8)[0] if header_length == 12 else None
        append((code, flags, vendor_id, data[offset + header_length : offset + length]))
        offset += padded
    return avps


def _decode_avps(data: bytes, offset: int, end: int) -> tuple[Avp, ...]:
    if _c_decode_avps is not None:
        decoded = _c_decode_avps(data, offset, end, Avp)  # built the same way, through the slots
        if decoded is not None:
            return decoded
    avps: list[Avp] = []
    append = avps.append
    for code, flags, vendor_id, value in _scan_avps(data, offset, end):
        item = _new_object(Avp)
        _set_code(item, code)
        _set_flags(item, flags)
        _set_vendor_id(item, vendor_id)
        _set_data(item, value)
        append(item)
    return tuple(avps)


def encode(message: Message) -> bytes:
    """The message on the wire: header (Message Length computed) and padded AVPs."""
    body = encode_avps(message.avps)
    return (
        _header(
            message.version,
            message.command_flags,
            message.command_code,
            message.application_id,
            message.hop_by_hop,
            message.end_to_end,
            len(body),
        )
        + body
    )


def encode_header(
    *,
    version: int = 1,
    command_flags: int,
    command_code: int,
    application_id: int,
    hop_by_hop: int,
    end_to_end: int,
    body_length: int,
) -> bytes:
    """The 20-octet header of a message whose encoded AVPs take ``body_length`` octets (section 3)."""
    return _header(version, command_flags, command_code, application_id, hop_by_hop, end_to_end, body_length)


def _header(  # noqa: PLR0917 - encode_header's fields, in order: private, per message
    version: int,
    command_flags: int,
    command_code: int,
    application_id: int,
    hop_by_hop: int,
    end_to_end: int,
    body_length: int,
) -> bytes:
    """``encode_header`` with positional arguments (it runs for every message)."""
    length = HEADER_LENGTH + body_length
    if (
        length <= _MAX_24
        and 0 <= version <= 0xFF
        and 0 <= command_flags <= 0xFF
        and 0 <= command_code <= _MAX_24
    ):
        try:
            return _HEADER.pack(
                version << 24 | length,
                command_flags << 24 | command_code,
                application_id,
                hop_by_hop,
                end_to_end,
            )
        except (struct.error, OverflowError):
            pass  # an identifier out of range: the checks below say which
    if length > _MAX_24:
        raise LocalProtocolError(f"message too long ({length} octets)")
    for name, value, limit in (
        ("version", version, 0xFF),
        ("command_flags", command_flags, 0xFF),
        ("command_code", command_code, _MAX_24),
    ):
        if not 0 <= value <= limit:
            raise LocalProtocolError(f"{name} {value} out of range")
    _pack(_U32, application_id, "Application-Id")
    _pack(_U32, hop_by_hop, "Hop-by-Hop Identifier")
    _pack(_U32, end_to_end, "End-to-End Identifier")
    raise LocalProtocolError("message header cannot be encoded")  # pragma: no cover - defensive


def message_length(buffer: bytes | bytearray | memoryview, offset: int = 0) -> int | None:
    """Message Length from the first 4 octets of a stream (framing), None if fewer are buffered;
    ``offset`` (not negative) is where the stream starts in ``buffer``, so that framers need no slice.

    Raises ``DecodeError`` (5011, 5015) when the stream cannot be framed any further.
    """
    if len(buffer) - offset < 4:
        return None
    version_length = _U32.unpack_from(buffer, offset)[0]
    if version_length >> 24 != 1:
        raise _version_error(version_length >> 24)
    length: int = version_length & _MAX_24
    if length < HEADER_LENGTH or length % 4:
        raise DecodeError(f"Message Length {length} invalid", ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH)
    return length


def decode(data: bytes) -> Message:
    """Parse exactly one message; ``data`` must be exactly Message Length octets."""
    if type(data) is not bytes:
        data = bytes(data)  # slices of it become the AVPs' data: they must be bytes
    if len(data) < HEADER_LENGTH:
        raise DecodeError("shorter than a Diameter header", ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH)
    version_length, flags_code, application_id, hop_by_hop, end_to_end = _HEADER.unpack_from(data)
    version = version_length >> 24
    if version != 1:
        raise _version_error(version)
    length = version_length & _MAX_24
    if length != len(data) or length % 4:
        raise DecodeError(
            f"Message Length {length} does not match {len(data)} octets",
            ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH,
        )
    flags = flags_code >> 24
    if flags & _REQUEST_BIT and flags & _ERROR_BIT:
        raise DecodeError("E bit set on a request", ResultCode.DIAMETER_INVALID_HDR_BITS)
    avps = _decode_avps(data, HEADER_LENGTH, length)
    if _c_new_message is not None:  # the C accelerator's Maker: the same, one call
        return _c_new_message(
            version=version,
            command_flags=flags,
            command_code=flags_code & _MAX_24,
            application_id=application_id,
            hop_by_hop=hop_by_hop,
            end_to_end=end_to_end,
            avps=avps,
        )
    message = _new_object(Message)  # through the slots, as for the Avps (see _set_code)
    _set_version(message, version)
    _set_command_flags(message, flags)
    _set_command_code(message, flags_code & _MAX_24)
    _set_application_id(message, application_id)
    _set_hop_by_hop(message, hop_by_hop)
    _set_end_to_end(message, end_to_end)
    _set_avps(message, avps)
    return message


def _version_error(version: int) -> DecodeError:
    """What a version other than 1 is answered with (the callers check: this runs per message)."""
    return DecodeError(f"Diameter version {version}", ResultCode.DIAMETER_UNSUPPORTED_VERSION)


def _pack(fmt: struct.Struct, value: int | float, what: str) -> bytes:
    try:
        return fmt.pack(value)
    except (struct.error, OverflowError) as exc:
        raise LocalProtocolError(f"{what} {value!r} out of range") from exc


def _unpack(fmt: struct.Struct, data: bytes, what: str) -> int | float:
    if len(data) != fmt.size:
        raise DecodeError(f"{what} needs {fmt.size} octets, got {len(data)}", _AVP_LENGTH)
    value: int | float = fmt.unpack(data)[0]
    return value


# --- base data formats (RFC 6733 section 4.2) -----------------------------------------------


def encode_octet_string(value: bytes) -> bytes:
    return bytes(value)


def decode_octet_string(data: bytes) -> bytes:
    return bytes(data)


def encode_integer32(value: int) -> bytes:
    return _pack(_I32, value, "Integer32")


def decode_integer32(data: bytes) -> int:
    return int(_unpack(_I32, data, "Integer32"))


def encode_integer64(value: int) -> bytes:
    return _pack(_I64, value, "Integer64")


def decode_integer64(data: bytes) -> int:
    return int(_unpack(_I64, data, "Integer64"))


def encode_unsigned32(value: int) -> bytes:
    return _pack(_U32, value, "Unsigned32")


def decode_unsigned32(data: bytes) -> int:
    return int(_unpack(_U32, data, "Unsigned32"))


def encode_unsigned64(value: int) -> bytes:
    return _pack(_U64, value, "Unsigned64")


def decode_unsigned64(data: bytes) -> int:
    return int(_unpack(_U64, data, "Unsigned64"))


def encode_float32(value: float) -> bytes:
    return _pack(_F32, value, "Float32")


def decode_float32(data: bytes) -> float:
    return float(_unpack(_F32, data, "Float32"))


def encode_float64(value: float) -> bytes:
    return _pack(_F64, value, "Float64")


def decode_float64(data: bytes) -> float:
    return float(_unpack(_F64, data, "Float64"))


def encode_grouped(avps: Iterable[Avp]) -> bytes:
    """Grouped (section 4.4): the concatenated, padded AVPs."""
    return encode_avps(avps)


def decode_grouped(data: bytes) -> tuple[Avp, ...]:
    return decode_avps(data)


# --- derived data formats (RFC 6733 section 4.3) --------------------------------------------


@dataclass(frozen=True, slots=True)
class OtherAddress:
    """An Address whose family is neither IPv4 (1) nor IPv6 (2): IANA family and raw octets."""

    family: int
    address: bytes


AddressValue = ipaddress.IPv4Address | ipaddress.IPv6Address | OtherAddress

_FAMILY_IPV4 = 1
_FAMILY_IPV6 = 2


def encode_address(value: AddressValue) -> bytes:
    """Address: 2-octet IANA address family, then the address."""
    if isinstance(value, ipaddress.IPv4Address):
        return b"\x00\x01" + value.packed
    if isinstance(value, ipaddress.IPv6Address):
        return b"\x00\x02" + value.packed
    if not 0 <= value.family <= 0xFFFF:
        raise LocalProtocolError(f"address family {value.family} out of range")
    return value.family.to_bytes(2, "big") + value.address


def decode_address(data: bytes) -> AddressValue:
    if len(data) < 2:
        raise DecodeError("Address shorter than its family", _AVP_LENGTH)
    family = int.from_bytes(data[:2], "big")
    address = bytes(data[2:])
    if family == _FAMILY_IPV4:
        if len(address) != 4:
            raise DecodeError("IPv4 Address needs 4 octets", _AVP_LENGTH)
        return ipaddress.IPv4Address(address)
    if family == _FAMILY_IPV6:
        if len(address) != 16:
            raise DecodeError("IPv6 Address needs 16 octets", _AVP_LENGTH)
        return ipaddress.IPv6Address(address)
    return OtherAddress(family, address)


_NTP_ERA0 = datetime(1900, 1, 1, tzinfo=UTC)
_NTP_ERA1 = _NTP_ERA0 + timedelta(seconds=1 << 32)  # 2036-02-07 06:28:16 UTC
_NTP_MSB = 0x80000000


def encode_time(value: datetime) -> bytes:
    """Time: NTP seconds since 1900 (whole seconds, fractions dropped).

    Follows the RFC 6733 4.3.1 / RFC 4330 rule: seconds with the top bit clear are read as the
    era starting 2036, so the codec covers 1968-01-20 03:14:08 to 2104-02-26 09:42:23 UTC.
    """
    if value.tzinfo is None:
        raise LocalProtocolError("Time needs an aware datetime")
    seconds = int((value - _NTP_ERA0).total_seconds() // 1)
    if seconds >= 1 << 32:
        seconds -= 1 << 32
        if seconds >= _NTP_MSB:
            raise LocalProtocolError(f"Time {value} after the 2036 era's range")
    elif seconds < _NTP_MSB:
        raise LocalProtocolError(f"Time {value} before 1968-01-20")
    return _U32.pack(seconds)


def decode_time(data: bytes) -> datetime:
    seconds = int(_unpack(_U32, data, "Time"))
    era = _NTP_ERA0 if seconds & _NTP_MSB else _NTP_ERA1
    return era + timedelta(seconds=seconds)


def encode_utf8_string(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"UTF8String {value!r} not encodable") from exc


def decode_utf8_string(data: bytes) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"UTF8String is not UTF-8: {exc.reason}", _AVP_VALUE) from exc


def encode_diameter_identity(value: str) -> bytes:
    """DiameterIdentity: an FQDN (or realm), ASCII on the wire."""
    if not value.isascii():
        raise LocalProtocolError(f"DiameterIdentity {value!r} is not ASCII (use IDNA/punycode)")
    return value.encode("ascii")


def decode_diameter_identity(data: bytes) -> str:
    if not bytes(data).isascii():
        raise DecodeError("DiameterIdentity is not ASCII", _AVP_VALUE)
    return bytes(data).decode("ascii")


_URI_SCHEMES = ("aaa://", "aaas://")


def encode_diameter_uri(value: str) -> bytes:
    """DiameterURI: ``aaa://`` or ``aaas://`` FQDN [port] [;transport=] [;protocol=]."""
    if not value.lower().startswith(_URI_SCHEMES):
        raise LocalProtocolError(f"DiameterURI {value!r} must start with aaa:// or aaas://")
    return encode_diameter_identity(value)


def decode_diameter_uri(data: bytes) -> str:
    value = decode_diameter_identity(data)
    if not value.lower().startswith(_URI_SCHEMES):
        raise DecodeError("DiameterURI must start with aaa:// or aaas://", _AVP_VALUE)
    return value


def encode_enumerated(value: int) -> bytes:
    """Enumerated: an Integer32 whose values the AVP's definition names."""
    return encode_integer32(value)


def decode_enumerated(data: bytes) -> int:
    return decode_integer32(data)
