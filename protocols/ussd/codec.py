"""USSD over SMPP 3.4: the ``ussd_service_op`` and ``its_session_info`` optional parameters (SMPP 3.4
sections 5.3.2.44 and 5.3.2.43), the USSD data coding (the cell-broadcast DCS of 3GPP TS 23.038
section 5, packed with the <CR> rule of 6.1.2.3.1), the screen limit of a MAP USSD-String (160
octets: 182 GSM 7-bit or 80 UCS-2 characters, TS 29.002 / TS 23.038), USSD service codes
(``*123*500#``, TS 22.030 section 6.5) and the vendor profiles of an SMSC connection.

Vendor facts (PROTOCOLS.md 1.1 and pitfalls 2-4, from praekeltfoundation/vumi
``vumi/transports/smpp/processors/{sixdee,mica}.py`` and vumi PR #882):

- ``standard``: the session number and the sequence / end-of-session bits live in
  ``its_session_info`` (octet 1 = session number, octet 2 = sequence << 1 | end); the dialled string
  is the ``short_message`` of the PSSR indication.
- ``6d``: ``its_session_info`` is a 15-bit dialog id and an end flag in the least significant bit;
  the reply echoes the id, OR-ed with 1 to close. 0x81 is the user abort ("USSREL").
- ``mica``: the session id is ``user_message_reference``; ops 0x01 begin, 0x02 continue (MT), 0x11
  end (MT), 0x12 continue (MO), 0x81 abort.

A ``UssdMessage`` is the profile-independent view of one USSD PDU: ``op`` is the canonical
``UssdServiceOp`` (the profile's op-code table translates to and from the wire value), the session id
and sequence are read from wherever the profile keeps them, and the text is normalised on ingress
({0x00, 0x0F, 0x01, 0x03} GSM 7-bit / latin text, {0x08, 0x48, 0x11} UCS-2, a language prefix
dropped, a trailing <CR> padding stripped). ``from_pdu`` decodes deliver_sm / submit_sm / data_sm;
``to_submit`` / ``to_deliver`` build the PDUs, choosing GSM 7-bit or UCS-2 per screen.

Decoding errors raise ``DecodeError`` carrying the SMPP command_status to answer with; our own misuse
(a screen over the limit, an op in the wrong direction, a field out of range) raises
``LocalProtocolError``; a bad profile is a ``ConfigError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from protocols.errors import ConfigError, DecodeError, LocalProtocolError
from protocols.gsm.alphabet import (
    Coding,
    decode_gsm7,
    decode_ucs2,
    encode_gsm7,
    encode_ucs2,
    gsm7_length,
    is_gsm7,
    pack_ussd,
    ucs2_length,
    unpack_septets,
)
from protocols.registry import KeepUnknownIntEnum
from protocols.smpp.constants import CommandStatus
from protocols.smpp.pdu import DataSm, DeliverSm, SubmitSm
from protocols.smpp.tlv import Tag, Tlv

__all__ = [
    "BEGIN_OPS",
    "CLOSING_OPS",
    "MAX_USSD_OCTETS",
    "MO_OPS",
    "MT_OPS",
    "PROFILES",
    "STANDARD_OP_CODES",
    "DialogueKey",
    "ItsSessionInfo",
    "ServiceCode",
    "ServiceCodeField",
    "SessionIdLocation",
    "UssdMessage",
    "UssdProfile",
    "UssdServiceOp",
    "check_screen",
    "dcs_alphabet",
    "decode_text",
    "encode_text",
    "from_pdu",
    "get_profile",
    "is_ussd",
    "make_profile",
    "parse_service_code",
    "session_id_limit",
    "to_deliver",
    "to_submit",
]

_S = CommandStatus
MAX_USSD_OCTETS = 160
"""A MAP USSD-String holds at most 160 octets (TS 29.002 maxUSSD-StringLength)."""


# --- the operation registry ------------------------------------------------------------------------


class UssdServiceOp(KeepUnknownIntEnum):
    """``ussd_service_op`` values, SMPP 3.4 section 5.3.2.44, plus the de-facto vendor release.

    Unknown values are kept: ``UssdServiceOp(0x99)`` is a pseudo-member named ``UNKNOWN_0x99``.
    """

    PSSD_IND = 0x00  # MS -> app, MAP processUnstructuredSS-Data (phase 1)
    PSSR_IND = 0x01  # MS -> app, the user dialled a code: opens a dialogue
    USSR_REQ = 0x02  # app -> MS, a screen; the dialogue continues (MAP unstructuredSS-Request)
    USSN_REQ = 0x03  # app -> MS, a notification (MAP unstructuredSS-Notify)
    PSSD_RESP = 0x10  # app -> MS, answer to PSSD
    PSSR_RESP = 0x11  # app -> MS, the final screen: the dialogue ends
    USSR_CONF = 0x12  # MS -> app, the user's reply to a USSR
    USSN_CONF = 0x13  # MS -> app, the handset confirmed a USSN
    RELEASE = 0x81  # vendor "USSREL" / user abort (Mica, 6D; vumi PR #882)
    USER_ABORT = 0x81  # alias of RELEASE


_O = UssdServiceOp
BEGIN_OPS = frozenset({_O.PSSR_IND, _O.PSSD_IND})
"""Operations that open a dialogue from the handset (they carry the dialled string)."""
MO_OPS = frozenset({_O.PSSD_IND, _O.PSSR_IND, _O.USSR_CONF, _O.USSN_CONF})
"""Operations that travel from the handset to the application (deliver_sm)."""
MT_OPS = frozenset({_O.USSR_REQ, _O.USSN_REQ, _O.PSSD_RESP, _O.PSSR_RESP})
"""Operations that travel from the application to the handset (submit_sm)."""
CLOSING_OPS = frozenset({_O.PSSR_RESP, _O.PSSD_RESP, _O.RELEASE})
"""Operations that end the dialogue whatever the end-of-session bit says."""

STANDARD_OP_CODES: Mapping[str, int] = MappingProxyType(
    {
        "pssd_ind": 0x00,
        "pssr_ind": 0x01,
        "ussr_req": 0x02,
        "ussn_req": 0x03,
        "pssd_resp": 0x10,
        "pssr_resp": 0x11,
        "ussr_conf": 0x12,
        "ussn_conf": 0x13,
    }
)
"""The SMPP 3.4 op-code table (names are the lower-case ``UssdServiceOp`` names)."""
_VENDOR_OP_CODES: Mapping[str, int] = MappingProxyType({**STANDARD_OP_CODES, "release": 0x81})


# --- its_session_info ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItsSessionInfo:
    """``its_session_info`` (SMPP 3.4 section 5.3.2.43): octet 1 is the session number (0-255);
    octet 2 holds the sequence number of the dialogue unit in bits 7..1 and the end-of-session
    indicator in bit 0."""

    session_number: int
    sequence: int = 0
    end_of_session: bool = False

    def pack(self) -> bytes:
        if not isinstance(self.session_number, int) or not 0 <= self.session_number <= 0xFF:
            raise LocalProtocolError(
                f"its_session_info session number must be 0..255, got {self.session_number!r}"
            )
        if not isinstance(self.sequence, int) or not 0 <= self.sequence <= 0x7F:
            raise LocalProtocolError(f"its_session_info sequence must be 0..127, got {self.sequence!r}")
        return bytes((self.session_number, self.sequence << 1 | bool(self.end_of_session)))

    @classmethod
    def unpack(cls, data: bytes) -> ItsSessionInfo:
        if len(data) != 2:
            raise DecodeError(f"its_session_info is {len(data)} octets, must be 2", _S.ESME_RINVPARLEN)
        return cls(data[0], data[1] >> 1, bool(data[1] & 1))


# --- data coding ---------------------------------------------------------------------------------

_GENERAL_ALPHABETS = (Coding.GSM7, Coding.EIGHT_BIT, Coding.UCS2, Coding.GSM7)


def dcs_alphabet(data_coding: int) -> Coding:
    """The alphabet of a USSD ``data_coding``: the CBS DCS of TS 23.038 section 5, read the way
    SMPP gateways use it (PROTOCOLS.md 1.1, "Normalise on ingress").

    0x08 and 0x11 are UCS-2 (SMPP UCS2; CBS UCS2 with a language prefix), 0x02 and 0x04 are octets
    (SMPP "octet unspecified"); the rest of 0x00-0x3F is GSM 7-bit (CBS language groups; SMPP 0x00
    default, 0x01 IA5, 0x03 latin-1 read as text). 01xx / 1001 take the alphabet from bits 3..2
    (0x44 8-bit, 0x48 UCS-2), 1111 from bit 2; reserved codings are GSM 7-bit (section 5).
    """
    if data_coding in (0x08, 0x11):
        return Coding.UCS2
    if data_coding in (0x02, 0x04):
        return Coding.EIGHT_BIT
    if data_coding < 0x40:
        return Coding.GSM7
    group = data_coding >> 4
    if group in (0x4, 0x5, 0x6, 0x7, 0x9):
        return _GENERAL_ALPHABETS[(data_coding >> 2) & 0x03]
    if group == 0xF:
        return Coding.EIGHT_BIT if data_coding & 0x04 else Coding.GSM7
    return Coding.GSM7


# --- profiles ---------------------------------------------------------------------------------------


class SessionIdLocation(Enum):
    """Where a vendor keeps the USSD session id (PROTOCOLS.md pitfall 3)."""

    ITS_SESSION_INFO = "its_session_info"  # SMPP 3.4: session number + sequence + end bit
    ITS_SESSION_INFO_DIALOG_ID = "its_session_info_dialog_id"  # 6D: 15-bit dialog id + end bit
    USER_MESSAGE_REFERENCE = "user_message_reference"  # Mica: a 16-bit id, no end bit


class ServiceCodeField(Enum):
    """Which deliver_sm field carries the dialled string of a PSSR indication."""

    SHORT_MESSAGE = "short_message"
    DESTINATION_ADDR = "destination_addr"


def session_id_limit(location: SessionIdLocation) -> int:
    """The largest session id the location can carry."""
    if location is SessionIdLocation.ITS_SESSION_INFO:
        return 0xFF
    if location is SessionIdLocation.ITS_SESSION_INFO_DIALOG_ID:
        return 0x7FFF
    return 0xFFFF


Charset = Literal["gsm7", "latin1"]


@dataclass(frozen=True, slots=True)
class UssdProfile:
    """How one SMSC / USSD gateway speaks USSD over SMPP. Select a built-in by name
    (``get_profile("6d")``) or derive one from config (``make_profile("standard", ...)``).

    - ``session_id_location`` / ``service_code_field``: see the enums;
    - ``op_codes``: the wire value of each ``UssdServiceOp`` (lower-case names), incl. ``release``;
    - ``service_type``: the SMPP service_type of USSD PDUs;
    - ``gsm7_data_coding`` / ``ucs2_data_coding``: the data_coding of screens we send (0x00 SMSC
      default or 0x0F the raw CBS DCS; 0x08 or 0x48);
    - ``gsm7_packed``: GSM text travels packed 7-bit (with the <CR> rule) instead of one septet per
      octet;
    - ``charset``: how unpacked GSM-family octets read, the GSM 7-bit table or latin-1;
    - ``max_gsm7_chars`` / ``max_ucs2_chars``: the screen limit (many handsets truncate below the
      MAP maximum, so it is configurable);
    - ``subscriber_ton/npi`` and ``service_ton/npi``: the address types we put on PDUs we build.
    """

    name: str = "standard"
    session_id_location: SessionIdLocation = SessionIdLocation.ITS_SESSION_INFO
    service_code_field: ServiceCodeField = ServiceCodeField.SHORT_MESSAGE
    op_codes: Mapping[str, int] = field(default_factory=lambda: STANDARD_OP_CODES)
    service_type: str = "USSD"
    gsm7_data_coding: int = 0x00
    ucs2_data_coding: int = 0x08
    gsm7_packed: bool = False
    charset: Charset = "gsm7"
    max_gsm7_chars: int = 182
    max_ucs2_chars: int = 80
    subscriber_ton: int = 1
    subscriber_npi: int = 1
    service_ton: int = 0
    service_npi: int = 0
    _to_wire: Mapping[int, int] = field(init=False, repr=False, compare=False)
    _from_wire: Mapping[int, UssdServiceOp] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"USSD profile {self.name!r}"
        try:
            location = SessionIdLocation(self.session_id_location)
            code_field = ServiceCodeField(self.service_code_field)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        object.__setattr__(self, "session_id_location", location)
        object.__setattr__(self, "service_code_field", code_field)
        if not isinstance(self.op_codes, Mapping):
            raise ConfigError(f"{where}: op_codes must be a mapping of operation names to values")
        to_wire: dict[int, int] = {}
        from_wire: dict[int, UssdServiceOp] = {}
        for name, value in self.op_codes.items():
            member = UssdServiceOp.__members__.get(str(name).upper())
            if member is None:
                known = ", ".join([*sorted(STANDARD_OP_CODES), "release"])
                raise ConfigError(f"{where}: unknown USSD operation {name!r} (known: {known})")
            if not _is_octet(value):
                raise ConfigError(f"{where}: op code of {name} must be 0..255, got {value!r}")
            if value in from_wire:
                raise ConfigError(
                    f"{where}: op code {value:#04x} is given to both {from_wire[value].name} and {name}"
                )
            to_wire[member] = value
            from_wire[value] = member
        missing = [n for n in STANDARD_OP_CODES if UssdServiceOp[n.upper()] not in to_wire]
        if missing:
            raise ConfigError(f"{where}: op_codes lack {', '.join(missing)}")
        object.__setattr__(self, "op_codes", MappingProxyType(dict(self.op_codes)))
        object.__setattr__(self, "_to_wire", MappingProxyType(to_wire))
        object.__setattr__(self, "_from_wire", MappingProxyType(from_wire))
        if not isinstance(self.service_type, str) or len(self.service_type.encode("latin-1", "replace")) > 5:
            raise ConfigError(f"{where}: service_type must be a str of at most 5 characters")
        for name in (
            "gsm7_data_coding",
            "ucs2_data_coding",
            "subscriber_ton",
            "subscriber_npi",
            "service_ton",
            "service_npi",
        ):
            if not _is_octet(getattr(self, name)):
                raise ConfigError(f"{where}: {name} must be 0..255, got {getattr(self, name)!r}")
        if dcs_alphabet(self.gsm7_data_coding) is not Coding.GSM7 or self.gsm7_data_coding == 0x10:
            raise ConfigError(
                f"{where}: gsm7_data_coding {self.gsm7_data_coding:#04x} is not a plain GSM 7-bit DCS"
            )
        if dcs_alphabet(self.ucs2_data_coding) is not Coding.UCS2 or self.ucs2_data_coding == 0x11:
            raise ConfigError(
                f"{where}: ucs2_data_coding {self.ucs2_data_coding:#04x} is not a plain UCS-2 DCS"
            )
        if self.charset not in ("gsm7", "latin1"):
            raise ConfigError(f"{where}: charset must be 'gsm7' or 'latin1', got {self.charset!r}")
        if not isinstance(self.gsm7_packed, bool):
            raise ConfigError(f"{where}: gsm7_packed must be true or false")
        # the MAP string limit, and short_message's 254 octets for unpacked text
        if not _is_int(self.max_gsm7_chars) or not 1 <= self.max_gsm7_chars <= 182:
            raise ConfigError(f"{where}: max_gsm7_chars must be 1..182, got {self.max_gsm7_chars!r}")
        if not _is_int(self.max_ucs2_chars) or not 1 <= self.max_ucs2_chars <= 80:
            raise ConfigError(f"{where}: max_ucs2_chars must be 1..80, got {self.max_ucs2_chars!r}")

    def __hash__(self) -> int:
        values = [getattr(self, f.name) for f in fields(self) if f.compare]
        return hash(tuple(tuple(sorted(v.items())) if isinstance(v, Mapping) else v for v in values))

    @property
    def has_release(self) -> bool:
        """True when the op-code table has a release / abort code."""
        return UssdServiceOp.RELEASE in self._to_wire

    @property
    def has_sequence(self) -> bool:
        """True when the session parameter carries a sequence number (SMPP 3.4 its_session_info)."""
        return self.session_id_location is SessionIdLocation.ITS_SESSION_INFO

    def wire_op(self, op: UssdServiceOp) -> int:
        """The ``ussd_service_op`` value of ``op`` on this connection."""
        value = self._to_wire.get(op)
        if value is not None:
            return value
        if op.name.startswith("UNKNOWN_") and int(op) not in self._from_wire:
            return int(op)  # a raw vendor value passed through
        raise LocalProtocolError(f"USSD profile {self.name!r} has no op code for {op.name}")

    def canonical_op(self, value: int) -> UssdServiceOp:
        """The ``UssdServiceOp`` a wire value means on this connection (unknown values are kept)."""
        op = self._from_wire.get(value)
        return op if op is not None else UssdServiceOp(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_octet(value: object) -> bool:
    return _is_int(value) and 0 <= value <= 0xFF  # type: ignore[operator]


PROFILES: Mapping[str, UssdProfile] = MappingProxyType(
    {
        # SMPP 3.4 sections 5.3.2.43/44; service_type "USSD" (PROTOCOLS.md 1.1, nowsms.com)
        "standard": UssdProfile(name="standard"),
        # vumi sixdee.py: its_session_info = 15-bit dialog id + LSB end flag, reply echoes id | end;
        # 0x81 = user abort; the USSD code in short_message by default (ussd_code_pdu_field)
        "6d": UssdProfile(
            name="6d",
            session_id_location=SessionIdLocation.ITS_SESSION_INFO_DIALOG_ID,
            op_codes=_VENDOR_OP_CODES,
        ),
        # vumi mica.py and PR #882: session id in user_message_reference; 01/02/0x11/0x12/0x81
        "mica": UssdProfile(
            name="mica",
            session_id_location=SessionIdLocation.USER_MESSAGE_REFERENCE,
            op_codes=_VENDOR_OP_CODES,
        ),
    }
)
"""The built-in profiles by name."""


def get_profile(name: str) -> UssdProfile:
    """A built-in profile by name (``standard``, ``6d``, ``mica``); ConfigError for others."""
    profile = PROFILES.get(name)
    if profile is None:
        raise ConfigError(f"unknown USSD profile {name!r} (known: {', '.join(PROFILES)})")
    return profile


_PROFILE_FIELDS = frozenset(f.name for f in fields(UssdProfile) if f.init) - {"name"}


def make_profile(base: str = "standard", name: str | None = None, **overrides: Any) -> UssdProfile:
    """A profile derived from the built-in ``base`` with config overrides. ``op_codes`` entries are
    merged onto the base table; enum fields take their string values (``"destination_addr"``)."""
    profile = get_profile(base)
    unknown = sorted(set(overrides) - _PROFILE_FIELDS)
    if unknown:
        raise ConfigError(f"unknown USSD profile setting(s): {', '.join(unknown)}")
    if "op_codes" in overrides:
        given = overrides["op_codes"]
        if not isinstance(given, Mapping):
            raise ConfigError("USSD profile op_codes must be a mapping of operation names to values")
        members = UssdServiceOp.__members__
        # aliases (user_abort) land on their canonical name (release); unknown names fail in the profile
        canonical = {
            members[str(k).upper()].name.lower() if str(k).upper() in members else k: v
            for k, v in given.items()
        }
        overrides["op_codes"] = {**profile.op_codes, **canonical}
    return replace(profile, name=name or base, **overrides)


# --- text ------------------------------------------------------------------------------------------


def decode_text(data: bytes, data_coding: int, profile: UssdProfile) -> str:
    """The text of a USSD string as an SMSC delivered it, normalised.

    GSM family: packed 7-bit when the profile says so (the <CR> rule strips the padding), else one
    character per octet through the profile's charset (GSM 7-bit table; an octet above 0x7F makes the
    whole string read as latin-1); a trailing <CR> that completes a multiple of 8 septets is the
    padding of a packed string a gateway unpacked, and is dropped; DCS 0x10 drops its 3-character
    language prefix. UCS-2: DCS 0x11 drops its 2-octet packed language prefix. 8-bit: latin-1.
    """
    alphabet = dcs_alphabet(data_coding)
    if alphabet is Coding.UCS2:
        if data_coding == 0x11:
            if len(data) < 2:
                raise DecodeError("UCS-2 text with a language prefix (DCS 0x11) is shorter than the prefix")
            data = data[2:]
        try:
            return decode_ucs2(data)
        except DecodeError as exc:
            raise DecodeError(str(exc), _S.ESME_RINVOPTPARAMVAL) from None
    if alphabet is Coding.EIGHT_BIT:
        return data.decode("latin-1")
    if profile.gsm7_packed:
        text = decode_gsm7(unpack_septets(data))
    else:
        gsm = profile.charset == "gsm7" and data.isascii()
        text = decode_gsm7(data) if gsm else data.decode("latin-1")
        if text.endswith("\r") and len(data) % 8 == 0:
            text = text[:-1]
    if data_coding == 0x10:
        text = text[3:]
    return text


def _fits_gsm(text: str, profile: UssdProfile) -> bool:
    if not is_gsm7(text):
        return False
    if profile.charset == "latin1" and not profile.gsm7_packed:
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            return False
    return True


def check_screen(text: str, profile: UssdProfile, data_coding: int | None = None) -> int:
    """Validate one screen and return the data_coding it travels with: ``data_coding`` when given,
    else the profile's GSM 7-bit coding when every character has one, else its UCS-2 coding.

    A screen over the profile's limit, a text the coding cannot carry, or a language-prefixed DCS
    (0x10 / 0x11, which we never send) raises LocalProtocolError naming the length.
    """
    if not isinstance(text, str):
        raise LocalProtocolError(f"a USSD screen is a str, got {type(text).__name__}")
    if data_coding is None:
        data_coding = profile.gsm7_data_coding if _fits_gsm(text, profile) else profile.ucs2_data_coding
    elif not _is_octet(data_coding):
        raise LocalProtocolError(f"data_coding must be 0..255, got {data_coding!r}")
    if data_coding in (0x10, 0x11):
        raise LocalProtocolError(
            f"data_coding {data_coding:#04x} needs a language prefix: not supported on output"
        )
    alphabet = dcs_alphabet(data_coding)
    if alphabet is Coding.UCS2:
        length, limit, unit = ucs2_length(text), profile.max_ucs2_chars, "UCS-2 characters"
    elif alphabet is Coding.EIGHT_BIT:
        length, limit, unit = len(text), MAX_USSD_OCTETS, "octets"
    else:
        if not _fits_gsm(text, profile):
            raise LocalProtocolError(
                f"text cannot travel with data_coding {data_coding:#04x} "
                f"(not in the {'GSM 7-bit' if profile.charset == 'gsm7' else 'latin-1'} alphabet)"
            )
        length, limit, unit = gsm7_length(text), profile.max_gsm7_chars, "GSM 7-bit characters"
    if length > limit:
        raise LocalProtocolError(
            f"USSD screen is {length} {unit}, the limit is {limit} (profile {profile.name!r})",
            _S.ESME_RINVMSGLEN,
        )
    return data_coding


def encode_text(text: str, profile: UssdProfile, data_coding: int | None = None) -> tuple[int, bytes]:
    """``(data_coding, octets)`` of a screen, after ``check_screen``."""
    data_coding = check_screen(text, profile, data_coding)
    alphabet = dcs_alphabet(data_coding)
    if alphabet is Coding.UCS2:
        return data_coding, encode_ucs2(text)
    if alphabet is Coding.EIGHT_BIT:
        try:
            return data_coding, text.encode("latin-1")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"text cannot travel as 8-bit data_coding {data_coding:#04x}") from None
    if profile.gsm7_packed:
        return data_coding, pack_ussd(text)
    if profile.charset == "latin1":
        return data_coding, text.encode("latin-1")
    return data_coding, bytes(encode_gsm7(text))


# --- service codes --------------------------------------------------------------------------------

_SERVICE_CODE = re.compile(r"([*#]{1,2})([0-9]+)((?:\*[0-9+]*)*)#")


@dataclass(frozen=True, slots=True)
class ServiceCode:
    """A dialled USSD string (TS 22.030 section 6.5.2): ``prefix`` (``*``, ``#``, ``**``, ``*#``,
    ``##``), the service ``code`` digits and the ``*``-separated supplementary ``params``."""

    prefix: str
    code: str
    params: tuple[str, ...] = ()

    @property
    def base(self) -> str:
        """The code without parameters: ``*123#`` for ``*123*500#``."""
        return f"{self.prefix}{self.code}#"

    def __str__(self) -> str:
        return "".join((self.prefix, self.code, *(f"*{p}" for p in self.params), "#"))


def parse_service_code(dialled: str) -> ServiceCode:
    """``parse_service_code("*123*500#") -> ServiceCode("*", "123", ("500",))``.

    Anything that is not a prefix, digits, ``*``-separated parameters (digits and ``+``, possibly
    empty) and a closing ``#`` raises DecodeError.
    """
    if not isinstance(dialled, str) or len(dialled) > 182:
        raise DecodeError(f"not a USSD service code: {dialled!r}", _S.ESME_RINVOPTPARAMVAL)
    match = _SERVICE_CODE.fullmatch(dialled)
    if match is None:
        raise DecodeError(f"not a USSD service code: {dialled!r}", _S.ESME_RINVOPTPARAMVAL)
    prefix, code, rest = match.groups()
    return ServiceCode(prefix, code, tuple(rest.split("*")[1:]))


# --- messages -------------------------------------------------------------------------------------


class DialogueKey(NamedTuple):
    """What identifies a dialogue: the subscriber and the vendor session id (None when the SMSC
    sends none: then there is one dialogue per subscriber)."""

    msisdn: str
    session_id: int | None


UssdPdu = DeliverSm | SubmitSm | DataSm


@dataclass(frozen=True, slots=True)
class UssdMessage:
    """One USSD message, independent of the vendor profile.

    - ``op``: the canonical operation;
    - ``msisdn``: the subscriber; ``service_addr``: the other address (our short code);
    - ``text``: the USSD string, normalised (for a PSSR indication the dialled string);
    - ``service_code``: the dialled string of a PSSR / PSSD indication (from the profile's field);
    - ``session_id`` / ``sequence``: from the profile's session parameter (``sequence`` only for the
      SMPP 3.4 layout); ``end``: the end-of-session indicator, always true for a closing op;
    - ``data_coding``: as received, or as we want to send it (None: chosen per screen);
    - ``pdu``: the PDU it was decoded from (not compared).
    """

    op: UssdServiceOp
    msisdn: str
    text: str = ""
    service_addr: str = ""
    session_id: int | None = None
    sequence: int | None = None
    end: bool = False
    service_code: str | None = None
    data_coding: int | None = None
    pdu: UssdPdu | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not _is_octet(self.op):
            raise LocalProtocolError(f"a USSD op is an int 0..255, got {self.op!r}")
        op = UssdServiceOp(self.op)
        if op is not self.op:
            object.__setattr__(self, "op", op)
        if not self.end and op in CLOSING_OPS:
            object.__setattr__(self, "end", True)

    @property
    def key(self) -> DialogueKey:
        return DialogueKey(self.msisdn, self.session_id)

    def reply(self, text: str, *, final: bool, data_coding: int | None = None) -> UssdMessage:
        """The application's answer to this handset message: a USSR request (``final=False``) or the
        final PSSR / PSSD response, echoing the session with the next sequence number."""
        if self.op is _O.PSSD_IND:
            if not final:
                raise LocalProtocolError("a PSSD indication (phase 1) takes only a final PSSD response")
            op = _O.PSSD_RESP
        elif self.op in MO_OPS:
            op = _O.PSSR_RESP if final else _O.USSR_REQ
        else:
            raise LocalProtocolError(f"{self.op.name} is not a handset message: nothing to reply to")
        sequence = None if self.sequence is None else (self.sequence + 1) & 0x7F
        return UssdMessage(
            op, self.msisdn, text, self.service_addr, self.session_id, sequence, final, None, data_coding
        )


def is_ussd(pdu: object) -> bool:
    """True when ``pdu`` is a deliver_sm / submit_sm / data_sm carrying ``ussd_service_op``."""
    if not isinstance(pdu, DeliverSm | SubmitSm | DataSm):
        return False
    return any(t.tag == Tag.USSD_SERVICE_OP for t in pdu.optional_parameters)


def _tlv(params: tuple[Tlv, ...], tag: int, size: int, name: str) -> bytes | None:
    for t in params:
        if t.tag == tag:
            if len(t.value) != size:
                raise DecodeError(f"{name} is {len(t.value)} octets, must be {size}", _S.ESME_RINVPARLEN)
            return t.value
    return None


def from_pdu(pdu: UssdPdu, profile: UssdProfile, *, mobile_originated: bool | None = None) -> UssdMessage:
    """Decode a USSD deliver_sm (handset -> app), submit_sm (app -> handset) or data_sm.

    The direction of a data_sm is ``mobile_originated`` or, when None, follows from the op. Text comes
    from ``short_message`` or, when that is empty, from ``message_payload``. A PDU without
    ``ussd_service_op`` or with a session parameter of the wrong size raises DecodeError.
    """
    if not isinstance(pdu, DeliverSm | SubmitSm | DataSm):
        raise LocalProtocolError(f"{type(pdu).__name__} does not carry USSD")
    params = pdu.optional_parameters
    raw_op = _tlv(params, Tag.USSD_SERVICE_OP, 1, "ussd_service_op")
    if raw_op is None:
        raise DecodeError("not a USSD message: no ussd_service_op", _S.ESME_RMISSINGOPTPARAM)
    op = profile.canonical_op(raw_op[0])
    if isinstance(pdu, DataSm):
        data = b""
        mo = op not in MT_OPS if mobile_originated is None else mobile_originated
    else:
        data = pdu.short_message
        mo = isinstance(pdu, DeliverSm)
    if not data:
        for t in params:
            if t.tag == Tag.MESSAGE_PAYLOAD:
                data = t.value
                break
    if mo:
        msisdn, service_addr = pdu.source_addr, pdu.destination_addr
    else:
        msisdn, service_addr = pdu.destination_addr, pdu.source_addr
    session_id: int | None = None
    sequence: int | None = None
    end = False
    location = profile.session_id_location
    if location is SessionIdLocation.USER_MESSAGE_REFERENCE:
        raw = _tlv(params, Tag.USER_MESSAGE_REFERENCE, 2, "user_message_reference")
        if raw is not None:
            session_id = int.from_bytes(raw, "big")
    else:
        raw = _tlv(params, Tag.ITS_SESSION_INFO, 2, "its_session_info")
        if raw is not None:
            if location is SessionIdLocation.ITS_SESSION_INFO:
                info = ItsSessionInfo.unpack(raw)
                session_id, sequence, end = info.session_number, info.sequence, info.end_of_session
            else:
                value = int.from_bytes(raw, "big")
                session_id, end = value >> 1, bool(value & 1)
    text = decode_text(data, pdu.data_coding, profile)
    service_code: str | None = None
    if op in BEGIN_OPS:
        if profile.service_code_field is ServiceCodeField.DESTINATION_ADDR:
            service_code = service_addr
        else:
            service_code = text
    return UssdMessage(
        op, msisdn, text, service_addr, session_id, sequence, end, service_code, pdu.data_coding, pdu
    )


def _session_tlv(message: UssdMessage, profile: UssdProfile) -> Tlv | None:
    session_id = message.session_id
    if session_id is None:
        return None
    location = profile.session_id_location
    limit = session_id_limit(location)
    if not _is_int(session_id) or not 0 <= session_id <= limit:
        raise LocalProtocolError(
            f"session id must be 0..{limit} for profile {profile.name!r}, got {session_id!r}"
        )
    if location is SessionIdLocation.ITS_SESSION_INFO:
        info = ItsSessionInfo(session_id, message.sequence or 0, message.end)
        return Tlv(Tag.ITS_SESSION_INFO, info.pack())
    if location is SessionIdLocation.ITS_SESSION_INFO_DIALOG_ID:
        return Tlv(Tag.ITS_SESSION_INFO, (session_id << 1 | message.end).to_bytes(2, "big"))
    return Tlv(Tag.USER_MESSAGE_REFERENCE, session_id.to_bytes(2, "big"))


def _body(
    message: UssdMessage, profile: UssdProfile, extra_tlvs: tuple[Tlv, ...]
) -> tuple[int, bytes, tuple[Tlv, ...]]:
    text = message.text
    if (
        message.op in BEGIN_OPS
        and message.service_code is not None
        and profile.service_code_field is ServiceCodeField.SHORT_MESSAGE
    ):
        text = message.service_code
    data_coding, data = encode_text(text, profile, message.data_coding)
    params = [Tlv(Tag.USSD_SERVICE_OP, bytes((profile.wire_op(message.op),)))]
    session = _session_tlv(message, profile)
    if session is not None:
        params.append(session)
    return data_coding, data, (*params, *extra_tlvs)


def to_submit(
    message: UssdMessage,
    profile: UssdProfile,
    source_addr: str | None = None,
    *,
    sequence_number: int = 0,
    registered_delivery: int = 0,
    extra_tlvs: tuple[Tlv, ...] = (),
) -> SubmitSm:
    """The submit_sm of an application -> handset message (USSR request, PSSR / PSSD response, USSN
    request, release). ``source_addr`` defaults to ``message.service_addr``."""
    if message.op in MO_OPS:
        raise LocalProtocolError(f"{message.op.name} travels from the handset: it is not a submit_sm")
    data_coding, data, params = _body(message, profile, extra_tlvs)
    return SubmitSm(
        sequence_number=sequence_number,
        service_type=profile.service_type,
        source_addr_ton=profile.service_ton,
        source_addr_npi=profile.service_npi,
        source_addr=message.service_addr if source_addr is None else source_addr,
        dest_addr_ton=profile.subscriber_ton,
        dest_addr_npi=profile.subscriber_npi,
        destination_addr=message.msisdn,
        registered_delivery=registered_delivery,
        data_coding=data_coding,
        short_message=data,
        optional_parameters=params,
    )


def to_deliver(
    message: UssdMessage,
    profile: UssdProfile,
    destination_addr: str | None = None,
    *,
    sequence_number: int = 0,
    extra_tlvs: tuple[Tlv, ...] = (),
) -> DeliverSm:
    """The deliver_sm of a handset -> application message (PSSR / PSSD indication, USSR / USSN
    confirm, release), as an SMSC sends it. ``destination_addr`` defaults to ``message.service_addr``,
    or to the dialled string for a begin op when the profile reads the code from destination_addr."""
    if message.op in MT_OPS:
        raise LocalProtocolError(f"{message.op.name} travels to the handset: it is not a deliver_sm")
    if destination_addr is None:
        destination_addr = message.service_addr
        if (
            message.op in BEGIN_OPS
            and message.service_code is not None
            and profile.service_code_field is ServiceCodeField.DESTINATION_ADDR
        ):
            destination_addr = message.service_code
    data_coding, data, params = _body(message, profile, extra_tlvs)
    return DeliverSm(
        sequence_number=sequence_number,
        service_type=profile.service_type,
        source_addr_ton=profile.subscriber_ton,
        source_addr_npi=profile.subscriber_npi,
        source_addr=message.msisdn,
        dest_addr_ton=profile.service_ton,
        dest_addr_npi=profile.service_npi,
        destination_addr=destination_addr,
        data_coding=data_coding,
        short_message=data,
        optional_parameters=params,
    )
