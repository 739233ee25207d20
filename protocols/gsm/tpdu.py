"""SMS transfer protocol data units, 3GPP TS 23.040 section 9.2.2: SMS-DELIVER (9.2.2.1) and
SMS-SUBMIT (9.2.2.2).

Fields carry the spec's names (``tp_mti`` ... ``tp_ud``). Parts:

- ``Address`` (9.1.2.5): TP-OA / TP-DA with type of number, numbering plan and the value, BCD
  semi-octets (digits, ``*``, ``#``, ``a``, ``b``, ``c``) or, for type of number 5, GSM 7-bit packed
  alphanumeric text;
- ``Timestamp`` (9.2.3.11): TP-SCTS and the absolute TP-VP, semi-octets with a time zone in
  quarters of an hour. Values are passed in; nothing here reads a clock;
- ``RelativeValidity`` / ``EnhancedValidity`` / ``Timestamp`` for TP-VP (9.2.3.12); TP-VPF is
  derived from which one an SMS-SUBMIT carries;
- TP-UDL / TP-UD (9.2.3.16, 9.2.3.24) as on the wire: ``tp_ud`` is the user data octets (the user
  data header included when TP-UDHI is set) and ``tp_udl`` counts septets for uncompressed GSM
  7-bit data and octets otherwise. ``user_data(...)`` builds the three fields from text or bytes;
  ``user_data_header()`` / ``user_data_text()`` read them back by TP-DCS.

``decode(t.encode()) == t`` for every TPDU (one exception, below), and ``encode(decode(b)) == b``
for well-formed bytes.
Decoding is lenient only where the spec says to ignore something (the unused bit 4 of the
SMS-DELIVER first octet, the extension bit of the type of address, the filler semi-octet, an
alphanumeric Address-Length that is not the canonical one, a
negative zero time zone); bytes that cannot be parsed raise DecodeError, never another error.

A GSM 7-bit alphanumeric address of 8 septets whose last septet is "@" is ambiguous with the
common "Address-Length = 2 x octets" encoding of 7 characters (libosmocore ``gsm340_gen_oa``): we
read it as 7 characters.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import ClassVar, TypedDict

from protocols.errors import DecodeError, LocalProtocolError, ProtocolError
from protocols.gsm.alphabet import (
    Coding,
    decode_gsm7,
    decode_ucs2,
    encode_gsm7,
    encode_ucs2,
    fill_bits,
    header_septets,
    pack_septets,
    unpack_septets,
)
from protocols.gsm.dcs import decode_dcs
from protocols.gsm.udh import InformationElement, decode_udh, encode_udh

__all__ = [
    "TON_ALPHANUMERIC",
    "Address",
    "EnhancedValidity",
    "RelativeValidity",
    "SmsDeliver",
    "SmsSubmit",
    "Timestamp",
    "UserData",
    "Validity",
    "decode_tpdu",
    "user_data",
]

TON_ALPHANUMERIC = 5
_MAX_UD_OCTETS = 140
_DIGITS = "0123456789*#abc"
_DIGIT_VALUE = {ch: i for i, ch in enumerate(_DIGITS)}


# --- addresses (9.1.2.5) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Address:
    """TP-OA / TP-DA (TS 23.040 9.1.2.5).

    ``value`` is the Address-Value: semi-octet digits ("0"-"9", "*", "#", "a", "b", "c"), or the
    text of an alphanumeric address when ``ton`` is 5. ``ton`` (type of number, 0..7) and ``npi``
    (numbering plan identification, 0..15) make up the Type-of-Address octet.
    """

    value: str
    ton: int = 1
    npi: int = 1

    @property
    def is_alphanumeric(self) -> bool:
        return self.ton == TON_ALPHANUMERIC

    def encode(self) -> bytes:
        """Address-Length, Type-of-Address, Address-Value."""
        if not isinstance(self.ton, int) or not 0 <= self.ton <= 7:
            raise LocalProtocolError(f"type of number must be 0..7, got {self.ton!r}")
        if not isinstance(self.npi, int) or not 0 <= self.npi <= 15:
            raise LocalProtocolError(f"numbering plan must be 0..15, got {self.npi!r}")
        if not isinstance(self.value, str):
            raise LocalProtocolError(f"address value must be a str, got {self.value!r}")
        toa = 0x80 | self.ton << 4 | self.npi
        if self.is_alphanumeric:
            septets = encode_gsm7(self.value)
            length = (7 * len(septets) + 3) // 4  # useful semi-octets
            body = pack_septets(septets)
        else:
            try:
                nibbles = [_DIGIT_VALUE[ch] for ch in self.value]
            except KeyError:
                raise LocalProtocolError(
                    f"address {self.value!r}: digits are 0-9 * # a b c (use ton=5 for text)"
                ) from None
            length = len(nibbles)
            if length % 2:
                nibbles.append(0xF)
            body = bytes(nibbles[i] | nibbles[i + 1] << 4 for i in range(0, len(nibbles), 2))
        if length > 20:
            raise LocalProtocolError(f"address {self.value!r} needs {length} semi-octets, at most 20")
        return bytes((length, toa)) + body

    @classmethod
    def decode_from(cls, data: bytes, pos: int) -> tuple[Address, int]:
        """Decode the address at ``data[pos:]``; returns it and the offset after it."""
        if pos + 2 > len(data):
            raise DecodeError("TPDU ends inside an address header")
        length, toa = data[pos], data[pos + 1]
        if length > 20:
            raise DecodeError(f"Address-Length {length} exceeds 20 semi-octets")
        end = pos + 2 + (length + 1) // 2
        if end > len(data):
            raise DecodeError("TPDU ends inside an address value")
        body = data[pos + 2 : end]
        ton, npi = (toa >> 4) & 0x07, toa & 0x0F
        if ton == TON_ALPHANUMERIC:
            value = decode_gsm7(unpack_septets(body, 4 * length // 7))
            # 7 characters sent with "Address-Length = 2 x octets" leave a fill septet that reads
            # as "@": 8 septets ending in "@" are taken as that fill (see the module docstring)
            if value.endswith("@") and len(encode_gsm7(value)) == 8:
                value = value[:-1]
        else:
            nibbles: list[int] = []
            for octet in body:
                nibbles += (octet & 0x0F, octet >> 4)
            digits = nibbles[:length]
            if any(d == 0xF for d in digits):
                raise DecodeError(f"address digit 0xF (end mark) inside {length} semi-octets")
            value = "".join(_DIGITS[d] for d in digits)
        return cls(value, ton, npi), end


# --- time stamps (9.2.3.11) ----------------------------------------------------------------------


def _bcd_swapped(octet: int, what: str) -> int:
    low, high = octet & 0x0F, octet >> 4
    if low > 9 or high > 9:
        raise DecodeError(f"{what} octet {octet:#04x} is not two decimal semi-octets")
    return low * 10 + high


def _swapped_bcd(value: int) -> int:
    return (value // 10) | (value % 10) << 4


@dataclass(frozen=True, slots=True)
class Timestamp:
    """TP-SCTS / absolute TP-VP (TS 23.040 9.2.3.11): local time and its offset from UTC.

    The wire carries a two-digit year: 90..99 read as 1990..1999, 00..89 as 2000..2089.
    ``tz_quarters`` is the offset in quarters of an hour (-79..79; +3 h is 12).
    """

    year: int
    month: int
    day: int
    hour: int = 0
    minute: int = 0
    second: int = 0
    tz_quarters: int = 0

    def _problem(self) -> str | None:
        for name in ("year", "month", "day", "hour", "minute", "second", "tz_quarters"):
            if not isinstance(getattr(self, name), int):
                return f"{name} must be an int"
        if not 1990 <= self.year <= 2089:
            return f"year {self.year} is outside 1990..2089"
        if not 1 <= self.month <= 12:
            return f"month {self.month} is not 1..12"
        if not 1 <= self.day <= calendar.monthrange(self.year, self.month)[1]:
            return f"day {self.day} is not in {self.year}-{self.month:02}"
        if not (0 <= self.hour <= 23 and 0 <= self.minute <= 59 and 0 <= self.second <= 59):
            return f"time {self.hour}:{self.minute}:{self.second} is not valid"
        if not -79 <= self.tz_quarters <= 79:
            return f"time zone {self.tz_quarters} quarters is outside -79..79"
        return None

    def encode(self) -> bytes:
        problem = self._problem()
        if problem is not None:
            raise LocalProtocolError(f"time stamp: {problem}")
        tz = _swapped_bcd(abs(self.tz_quarters)) | (0x08 if self.tz_quarters < 0 else 0)
        fields = (self.year % 100, self.month, self.day, self.hour, self.minute, self.second)
        return bytes(_swapped_bcd(v) for v in fields) + bytes((tz,))

    @classmethod
    def decode(cls, data: bytes) -> Timestamp:
        """Decode exactly 7 octets."""
        if len(data) != 7:
            raise DecodeError(f"a time stamp is 7 octets, got {len(data)}")
        yy, month, day, hour, minute, second = (_bcd_swapped(o, "time stamp") for o in data[:6])
        tz_octet = data[6]
        quarters = _bcd_swapped(tz_octet & 0xF7, "time zone")
        stamp = cls(
            1900 + yy if yy >= 90 else 2000 + yy,
            month,
            day,
            hour,
            minute,
            second,
            -quarters if tz_octet & 0x08 else quarters,
        )
        problem = stamp._problem()
        if problem is not None:
            raise DecodeError(f"time stamp: {problem}")
        return stamp

    def to_datetime(self) -> datetime:
        """An aware datetime with the time stamp's UTC offset."""
        problem = self._problem()
        if problem is not None:
            raise LocalProtocolError(f"time stamp: {problem}")
        tz = timezone(timedelta(minutes=15 * self.tz_quarters))
        return datetime(self.year, self.month, self.day, self.hour, self.minute, self.second, tzinfo=tz)

    @classmethod
    def from_datetime(cls, moment: datetime) -> Timestamp:
        """From an aware datetime whose offset is whole quarters of an hour (microseconds drop)."""
        offset = moment.utcoffset()
        if offset is None:
            raise LocalProtocolError("the datetime must be timezone-aware")
        quarters, rest = divmod(int(offset.total_seconds()), 900)
        if rest:
            raise LocalProtocolError(f"UTC offset {offset} is not whole quarters of an hour")
        return cls(moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second, quarters)


# --- validity period (9.2.3.12) ------------------------------------------------------------------


def _relative_seconds(value: int) -> int:
    if value <= 143:
        return (value + 1) * 300
    if value <= 167:
        return 43200 + (value - 143) * 1800
    if value <= 196:
        return (value - 166) * 86400
    return (value - 192) * 604800


@dataclass(frozen=True, slots=True)
class RelativeValidity:
    """TP-VP relative format (9.2.3.12.1): one octet, 5 minutes up to 63 weeks."""

    value: int

    @property
    def seconds(self) -> int:
        return _relative_seconds(self.value)

    @classmethod
    def from_seconds(cls, seconds: int) -> RelativeValidity:
        """The shortest relative validity period of at least ``seconds``."""
        if seconds < 0:
            raise LocalProtocolError(f"validity period {seconds} s is negative")
        for value in range(256):
            if _relative_seconds(value) >= seconds:
                return cls(value)
        raise LocalProtocolError(f"validity period {seconds} s is longer than 63 weeks")


@dataclass(frozen=True, slots=True)
class EnhancedValidity:
    """TP-VP enhanced format (9.2.3.12.3): 7 octets, the first the functionality indicator
    (bit 7 extension, bit 6 single-shot SM, bits 2..0 the validity period format)."""

    octets: bytes

    @property
    def single_shot(self) -> bool:
        return bool(self.octets[0] & 0x40)

    @property
    def validity_format(self) -> int:
        """0 none, 1 relative (as 9.2.3.12.1), 2 relative in seconds, 3 relative HH:MM:SS."""
        return self.octets[0] & 0x07

    @property
    def seconds(self) -> int | None:
        """The validity period, or None when there is none, the format is reserved or the
        functionality indicator is extended (not understood here)."""
        indicator = self.octets[0]
        fmt = indicator & 0x07
        if indicator & 0x80 or fmt == 0 or fmt > 3:
            return None
        if fmt == 1:
            return _relative_seconds(self.octets[1])
        if fmt == 2:
            return self.octets[1]
        try:
            hours, minutes, secs = (_bcd_swapped(o, "enhanced validity") for o in self.octets[1:4])
        except DecodeError:
            return None
        return hours * 3600 + minutes * 60 + secs

    @classmethod
    def from_seconds(cls, seconds: int, *, single_shot: bool = False) -> EnhancedValidity:
        """Relative in seconds (format 2) up to 255 s, else relative HH:MM:SS (format 3)."""
        flag = 0x40 if single_shot else 0
        if 1 <= seconds <= 255:
            return cls(bytes((flag | 0x02, seconds, 0, 0, 0, 0, 0)))
        hours, rest = divmod(seconds, 3600)
        if seconds < 0 or hours > 99:
            raise LocalProtocolError(f"enhanced validity period {seconds} s is not 0..99:59:59")
        minutes, secs = divmod(rest, 60)
        hms = bytes(_swapped_bcd(v) for v in (hours, minutes, secs))
        return cls(bytes((flag | 0x03,)) + hms + bytes(3))


Validity = RelativeValidity | EnhancedValidity | Timestamp


def _encode_validity(vp: Validity | None) -> tuple[int, bytes]:
    """(TP-VPF, TP-VP octets)."""
    if vp is None:
        return 0, b""
    if isinstance(vp, RelativeValidity):
        if not isinstance(vp.value, int) or not 0 <= vp.value <= 255:
            raise LocalProtocolError(f"relative validity must be 0..255, got {vp.value!r}")
        return 2, bytes((vp.value,))
    if isinstance(vp, EnhancedValidity):
        if not isinstance(vp.octets, bytes) or len(vp.octets) != 7:
            raise LocalProtocolError("enhanced validity is exactly 7 octets")
        return 1, vp.octets
    if isinstance(vp, Timestamp):
        return 3, vp.encode()
    raise LocalProtocolError(f"tp_vp must be a validity period or None, got {vp!r}")


# --- user data (9.2.3.16, 9.2.3.24) --------------------------------------------------------------


class UserData(TypedDict):
    """The three user data fields of a TPDU, ready to splat into its constructor."""

    tp_udhi: bool
    tp_udl: int
    tp_ud: bytes


def _counts_septets(dcs: int) -> bool:
    """TP-UDL counts septets for uncompressed GSM 7-bit data, octets otherwise (9.2.3.16)."""
    scheme = decode_dcs(dcs)
    return scheme.alphabet is Coding.GSM7 and not scheme.compressed


def _check_user_data(dcs: int, udhi: bool, udl: int, ud: bytes, error: type[ProtocolError]) -> None:
    """The consistency rules of TP-UDL, TP-UD and the user data header, raising ``error``."""
    if not isinstance(udl, int) or not 0 <= udl <= 0xFF:
        raise error(f"TP-UDL must be an int 0..255, got {udl!r}")
    if not isinstance(ud, bytes):
        raise error(f"TP-UD must be bytes, got {type(ud).__name__}")
    septets = _counts_septets(dcs)
    octets = (7 * udl + 7) // 8 if septets else udl
    if octets > _MAX_UD_OCTETS:
        unit = "septets" if septets else "octets"
        raise error(f"TP-UDL {udl} {unit} is more than {_MAX_UD_OCTETS} octets of user data")
    if len(ud) != octets:
        raise error(f"TP-UDL {udl} needs {octets} octets of TP-UD, {len(ud)} given")
    if udhi:
        try:
            _, header_length = decode_udh(ud)
        except DecodeError as exc:
            raise error(f"user data header: {exc}") from None
        used = header_septets(header_length) if septets else header_length
        if used > udl:
            raise error(f"user data header of {header_length} octets is longer than TP-UDL {udl}")


def user_data(content: str | bytes, tp_dcs: int = 0, header: Sequence[InformationElement] = ()) -> UserData:
    """TP-UDHI, TP-UDL and TP-UD for ``content`` coded as ``tp_dcs`` says, after ``header``.

    Text for a GSM 7-bit DCS is packed after the header with the fill bits that align it to a
    septet boundary; text for UCS-2 is UTF-16BE; 8-bit data must be bytes. Raises
    LocalProtocolError when it does not fit one short message (140 octets).
    """
    scheme = decode_dcs(tp_dcs)
    if scheme.compressed:
        raise LocalProtocolError("compressed user data (TS 23.042) is not supported")
    udh = encode_udh(header) if header else b""
    if scheme.alphabet is Coding.EIGHT_BIT:
        if not isinstance(content, bytes | bytearray):
            raise LocalProtocolError(f"TP-DCS {tp_dcs:#04x} is 8-bit data: give bytes")
        ud = udh + bytes(content)
        udl = len(ud)
    elif not isinstance(content, str):
        raise LocalProtocolError(f"TP-DCS {tp_dcs:#04x} is text: give a str")
    elif scheme.alphabet is Coding.UCS2:
        ud = udh + encode_ucs2(content)
        udl = len(ud)
    else:
        septets = encode_gsm7(content)
        ud = udh + pack_septets(septets, fill_bits(len(udh)))
        udl = header_septets(len(udh)) + len(septets)
    _check_user_data(tp_dcs, bool(header), udl, ud, LocalProtocolError)
    return UserData(tp_udhi=bool(header), tp_udl=udl, tp_ud=ud)


def _decode_user_data(data: bytes, pos: int, dcs: int, udhi: bool) -> tuple[int, bytes]:
    if pos >= len(data):
        raise DecodeError("TPDU ends before TP-UDL")
    udl = data[pos]
    ud = data[pos + 1 :]
    _check_user_data(dcs, udhi, udl, ud, DecodeError)
    return udl, ud


class _UserDataMixin:
    """Readers of TP-UD by TP-DCS, shared by SMS-DELIVER and SMS-SUBMIT."""

    __slots__ = ()
    tp_udhi: bool
    tp_dcs: int
    tp_udl: int
    tp_ud: bytes

    def user_data_header(self) -> tuple[InformationElement, ...]:
        """The information elements of the user data header; () without TP-UDHI."""
        if not self.tp_udhi:
            return ()
        return decode_udh(self.tp_ud)[0]

    def user_data_payload(self) -> bytes:
        """The user data after the header: septets one per octet for GSM 7-bit data, else octets."""
        header_length = decode_udh(self.tp_ud)[1] if self.tp_udhi else 0
        if not _counts_septets(self.tp_dcs):
            return self.tp_ud[header_length:]
        count = self.tp_udl - header_septets(header_length)
        septets = unpack_septets(self.tp_ud[header_length:], count, fill_bits(header_length))
        return bytes(septets)

    def user_data_text(self) -> str:
        """The text of the user data by TP-DCS: GSM 7-bit or UCS-2. 8-bit data and compressed text
        raise DecodeError, as does UCS-2 that is not valid UTF-16."""
        scheme = decode_dcs(self.tp_dcs)
        if scheme.compressed:
            raise DecodeError(f"TP-DCS {self.tp_dcs:#04x}: compressed text is not supported")
        if scheme.alphabet is Coding.EIGHT_BIT:
            raise DecodeError(f"TP-DCS {self.tp_dcs:#04x} carries 8-bit data, not text")
        payload = self.user_data_payload()
        if scheme.alphabet is Coding.UCS2:
            return decode_ucs2(payload)
        return decode_gsm7(payload)


def _check_octet(name: str, value: int) -> None:
    if not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise LocalProtocolError(f"{name} must be an int 0..255, got {value!r}")


# --- SMS-DELIVER (9.2.2.1) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsDeliver(_UserDataMixin):
    """SMS-DELIVER, SC to MS (TS 23.040 9.2.2.1).

    ``tp_mms`` is the bit as sent: True (1) means "no more messages are waiting in the SC".
    """

    tp_mti: ClassVar[int] = 0b00
    tp_mms: bool = True
    tp_lp: bool = False
    tp_sri: bool = False
    tp_udhi: bool = False
    tp_rp: bool = False
    tp_oa: Address
    tp_pid: int = 0
    tp_dcs: int = 0
    tp_scts: Timestamp
    tp_udl: int = 0
    tp_ud: bytes = b""

    def encode(self) -> bytes:
        _check_octet("tp_pid", self.tp_pid)
        _check_octet("tp_dcs", self.tp_dcs)
        _check_user_data(self.tp_dcs, self.tp_udhi, self.tp_udl, self.tp_ud, LocalProtocolError)
        if not isinstance(self.tp_oa, Address) or not isinstance(self.tp_scts, Timestamp):
            raise LocalProtocolError("tp_oa must be an Address and tp_scts a Timestamp")
        first = (
            self.tp_mti
            | bool(self.tp_mms) << 2
            | bool(self.tp_lp) << 3
            | bool(self.tp_sri) << 5
            | bool(self.tp_udhi) << 6
            | bool(self.tp_rp) << 7
        )
        return b"".join(
            (
                bytes((first,)),
                self.tp_oa.encode(),
                bytes((self.tp_pid, self.tp_dcs)),
                self.tp_scts.encode(),
                bytes((self.tp_udl,)),
                self.tp_ud,
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> SmsDeliver:
        if not data:
            raise DecodeError("empty TPDU")
        first = data[0]
        if first & 0x03 != cls.tp_mti:
            raise DecodeError(f"TP-MTI {first & 0x03} is not SMS-DELIVER")
        oa, pos = Address.decode_from(data, 1)
        if pos + 9 > len(data):
            raise DecodeError("SMS-DELIVER ends before TP-UDL")
        pid, dcs = data[pos], data[pos + 1]
        scts = Timestamp.decode(data[pos + 2 : pos + 9])
        udhi = bool(first & 0x40)
        udl, ud = _decode_user_data(data, pos + 9, dcs, udhi)
        return cls(
            tp_mms=bool(first & 0x04),
            tp_lp=bool(first & 0x08),
            tp_sri=bool(first & 0x20),
            tp_udhi=udhi,
            tp_rp=bool(first & 0x80),
            tp_oa=oa,
            tp_pid=pid,
            tp_dcs=dcs,
            tp_scts=scts,
            tp_udl=udl,
            tp_ud=ud,
        )


# --- SMS-SUBMIT (9.2.2.2) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsSubmit(_UserDataMixin):
    """SMS-SUBMIT, MS to SC (TS 23.040 9.2.2.2). TP-VPF follows from ``tp_vp``: None (not
    present), ``RelativeValidity``, ``EnhancedValidity`` or a ``Timestamp`` (absolute)."""

    tp_mti: ClassVar[int] = 0b01
    tp_rd: bool = False
    tp_srr: bool = False
    tp_udhi: bool = False
    tp_rp: bool = False
    tp_mr: int = 0
    tp_da: Address
    tp_pid: int = 0
    tp_dcs: int = 0
    tp_vp: Validity | None = None
    tp_udl: int = 0
    tp_ud: bytes = b""

    @property
    def tp_vpf(self) -> int:
        """TP-VPF (9.2.3.3): 0 not present, 2 relative, 1 enhanced, 3 absolute."""
        return _encode_validity(self.tp_vp)[0]

    def encode(self) -> bytes:
        _check_octet("tp_mr", self.tp_mr)
        _check_octet("tp_pid", self.tp_pid)
        _check_octet("tp_dcs", self.tp_dcs)
        vpf, vp = _encode_validity(self.tp_vp)
        _check_user_data(self.tp_dcs, self.tp_udhi, self.tp_udl, self.tp_ud, LocalProtocolError)
        if not isinstance(self.tp_da, Address):
            raise LocalProtocolError("tp_da must be an Address")
        first = (
            self.tp_mti
            | bool(self.tp_rd) << 2
            | vpf << 3
            | bool(self.tp_srr) << 5
            | bool(self.tp_udhi) << 6
            | bool(self.tp_rp) << 7
        )
        return b"".join(
            (
                bytes((first, self.tp_mr)),
                self.tp_da.encode(),
                bytes((self.tp_pid, self.tp_dcs)),
                vp,
                bytes((self.tp_udl,)),
                self.tp_ud,
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> SmsSubmit:
        if len(data) < 2:
            raise DecodeError("SMS-SUBMIT ends before TP-MR")
        first = data[0]
        if first & 0x03 != cls.tp_mti:
            raise DecodeError(f"TP-MTI {first & 0x03} is not SMS-SUBMIT")
        da, pos = Address.decode_from(data, 2)
        if pos + 2 > len(data):
            raise DecodeError("SMS-SUBMIT ends before TP-DCS")
        pid, dcs = data[pos], data[pos + 1]
        pos += 2
        vpf = (first >> 3) & 0x03
        vp: Validity | None = None
        if vpf == 2:
            if pos >= len(data):
                raise DecodeError("SMS-SUBMIT ends inside TP-VP")
            vp = RelativeValidity(data[pos])
            pos += 1
        elif vpf:
            if pos + 7 > len(data):
                raise DecodeError("SMS-SUBMIT ends inside TP-VP")
            raw = data[pos : pos + 7]
            vp = Timestamp.decode(raw) if vpf == 3 else EnhancedValidity(raw)
            pos += 7
        udhi = bool(first & 0x40)
        udl, ud = _decode_user_data(data, pos, dcs, udhi)
        return cls(
            tp_rd=bool(first & 0x04),
            tp_srr=bool(first & 0x20),
            tp_udhi=udhi,
            tp_rp=bool(first & 0x80),
            tp_mr=data[1],
            tp_da=da,
            tp_pid=pid,
            tp_dcs=dcs,
            tp_vp=vp,
            tp_udl=udl,
            tp_ud=ud,
        )


def decode_tpdu(data: bytes, *, mobile_originated: bool) -> SmsDeliver | SmsSubmit:
    """Decode an SMS-DELIVER (SC to MS) or SMS-SUBMIT (MS to SC); TP-MTI means different
    messages in the two directions (9.2.3.1), hence ``mobile_originated``. The other TPDU types
    (reports, SMS-COMMAND, SMS-STATUS-REPORT) raise DecodeError."""
    if not data:
        raise DecodeError("empty TPDU")
    mti = data[0] & 0x03
    if mobile_originated and mti == SmsSubmit.tp_mti:
        return SmsSubmit.decode(data)
    if not mobile_originated and mti == SmsDeliver.tp_mti:
        return SmsDeliver.decode(data)
    direction = "MS to SC" if mobile_originated else "SC to MS"
    raise DecodeError(f"TP-MTI {mti} ({direction}) is not SMS-DELIVER or SMS-SUBMIT")
