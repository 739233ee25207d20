"""User data header, 3GPP TS 23.040 section 9.2.3.24 (and TS 31.115 section 4 for IEIs 0x70/0x71).

The header is UDHL (one octet: the length of what follows) and information elements, each IEI,
IEDL and IEDL octets of data. Known elements decode to frozen dataclasses named after them:

- ``Concat8`` IEI 0x00, concatenated short messages, 8-bit reference (9.2.3.24.1);
- ``Ports8`` IEI 0x04, application port addressing, 8-bit ports (9.2.3.24.3);
- ``Ports16`` IEI 0x05, application port addressing, 16-bit ports (9.2.3.24.4);
- ``Concat16`` IEI 0x08, concatenated short messages, 16-bit reference (9.2.3.24.8);
- ``SimToolkitSecurity`` IEI 0x70, "(U)SIM toolkit security headers": TS 31.115 calls it the
  Command Packet Identifier (CPI), IEDL 0, the secured command packet follows the header;
- ``SimToolkitSecurity71`` IEI 0x71, the Response Packet Identifier (RPI) of TS 31.115, IEDL 0,
  the response packet (PoR) follows the header.

Any other element, and a known IEI whose length is not the one the spec gives (the receiver
"shall ignore" it, 9.2.3.24), is kept as ``RawIe`` so a header re-encodes byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from protocols.errors import DecodeError, LocalProtocolError
from protocols.gsm.alphabet import fill_bits, header_septets  # re-exported: they size 7-bit text after a UDH

__all__ = [
    "CommandPacketIdentifier",
    "Concat8",
    "Concat16",
    "InformationElement",
    "Ports8",
    "Ports16",
    "RawIe",
    "ResponsePacketIdentifier",
    "SimToolkitSecurity",
    "SimToolkitSecurity71",
    "concat_ie",
    "decode_udh",
    "encode_udh",
    "fill_bits",
    "header_septets",
]


def _check(name: str, value: int, bits: int) -> None:
    if not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise LocalProtocolError(f"{name} must be an int 0..{(1 << bits) - 1}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Concat8:
    """IEI 0x00: concatenated short message, 8-bit reference number (9.2.3.24.1).

    ``total`` is the maximum number of short messages, ``sequence`` this one's number (from 1).
    Values are kept as received; ``is_valid`` tells whether the receiver may use them.
    """

    iei: ClassVar[int] = 0x00
    reference: int
    total: int
    sequence: int

    def __post_init__(self) -> None:
        _check("reference", self.reference, 8)
        _check("total", self.total, 8)
        _check("sequence", self.sequence, 8)

    @property
    def is_valid(self) -> bool:
        """9.2.3.24.1: a total or sequence of 0, or a sequence above the total, voids the IE."""
        return 1 <= self.sequence <= self.total

    def data(self) -> bytes:
        return bytes((self.reference, self.total, self.sequence))


@dataclass(frozen=True, slots=True)
class Concat16:
    """IEI 0x08: concatenated short message, 16-bit reference number (9.2.3.24.8)."""

    iei: ClassVar[int] = 0x08
    reference: int
    total: int
    sequence: int

    def __post_init__(self) -> None:
        _check("reference", self.reference, 16)
        _check("total", self.total, 8)
        _check("sequence", self.sequence, 8)

    @property
    def is_valid(self) -> bool:
        return 1 <= self.sequence <= self.total

    def data(self) -> bytes:
        return self.reference.to_bytes(2, "big") + bytes((self.total, self.sequence))


@dataclass(frozen=True, slots=True)
class Ports8:
    """IEI 0x04: application port addressing scheme, 8-bit address (9.2.3.24.3)."""

    iei: ClassVar[int] = 0x04
    destination_port: int
    originator_port: int

    def __post_init__(self) -> None:
        _check("destination_port", self.destination_port, 8)
        _check("originator_port", self.originator_port, 8)

    def data(self) -> bytes:
        return bytes((self.destination_port, self.originator_port))


@dataclass(frozen=True, slots=True)
class Ports16:
    """IEI 0x05: application port addressing scheme, 16-bit address (9.2.3.24.4)."""

    iei: ClassVar[int] = 0x05
    destination_port: int
    originator_port: int

    def __post_init__(self) -> None:
        _check("destination_port", self.destination_port, 16)
        _check("originator_port", self.originator_port, 16)

    def data(self) -> bytes:
        return self.destination_port.to_bytes(2, "big") + self.originator_port.to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class SimToolkitSecurity:
    """IEI 0x70: (U)SIM toolkit security header, the Command Packet Identifier of TS 31.115
    section 4.1; no data. The secured command packet follows the user data header."""

    iei: ClassVar[int] = 0x70

    def data(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class SimToolkitSecurity71:
    """IEI 0x71: the Response Packet Identifier of TS 31.115 section 4.4 (the PoR direction); no
    data. The response packet follows the user data header."""

    iei: ClassVar[int] = 0x71

    def data(self) -> bytes:
        return b""


CommandPacketIdentifier = SimToolkitSecurity
ResponsePacketIdentifier = SimToolkitSecurity71


@dataclass(frozen=True, slots=True)
class RawIe:
    """An information element kept as received: unknown IEI, or a known one of the wrong length."""

    iei: int
    value: bytes = b""

    def __post_init__(self) -> None:
        _check("iei", self.iei, 8)
        if not isinstance(self.value, bytes) or len(self.value) > 255:
            raise LocalProtocolError("RawIe value must be bytes of at most 255 octets")

    def data(self) -> bytes:
        return self.value


InformationElement = Concat8 | Concat16 | Ports8 | Ports16 | SimToolkitSecurity | SimToolkitSecurity71 | RawIe

_IE_TYPES = (Concat8, Concat16, Ports8, Ports16, SimToolkitSecurity, SimToolkitSecurity71, RawIe)

_DECODERS: dict[int, tuple[int, Callable[[bytes], InformationElement]]] = {
    0x00: (3, lambda d: Concat8(d[0], d[1], d[2])),
    0x04: (2, lambda d: Ports8(d[0], d[1])),
    0x05: (4, lambda d: Ports16(int.from_bytes(d[0:2], "big"), int.from_bytes(d[2:4], "big"))),
    0x08: (4, lambda d: Concat16(int.from_bytes(d[0:2], "big"), d[2], d[3])),
    0x70: (0, lambda d: SimToolkitSecurity()),
    0x71: (0, lambda d: SimToolkitSecurity71()),
}


def encode_udh(ies: Iterable[InformationElement]) -> bytes:
    """The user data header, UDHL first, for the elements in order."""
    body = bytearray()
    for ie in ies:
        if not isinstance(ie, _IE_TYPES):
            raise LocalProtocolError(f"not an information element: {ie!r}")
        data = ie.data()
        body += bytes((ie.iei, len(data))) + data
    if len(body) > 255:
        raise LocalProtocolError(f"user data header of {len(body)} octets exceeds UDHL 255")
    return bytes((len(body),)) + bytes(body)


def decode_udh(data: bytes) -> tuple[tuple[InformationElement, ...], int]:
    """Decode the header at the start of ``data`` (user data whose TP-UDHI is set).

    Returns the elements and the header length in octets, UDHL included: the user data proper
    starts at that offset. A header running past ``data`` raises DecodeError.
    """
    if not data:
        raise DecodeError("user data is empty, no UDHL")
    end = 1 + data[0]
    if end > len(data):
        raise DecodeError(f"UDHL {data[0]} runs past the {len(data)} octets of user data")
    ies: list[InformationElement] = []
    pos = 1
    while pos < end:
        if pos + 2 > end:
            raise DecodeError(f"information element header truncated at octet {pos}")
        iei, length = data[pos], data[pos + 1]
        start = pos + 2
        pos = start + length
        if pos > end:
            raise DecodeError(f"information element {iei:#04x} of {length} octets runs past UDHL")
        value = data[start:pos]
        known = _DECODERS.get(iei)
        if known is not None and known[0] == length:
            ies.append(known[1](value))
        else:
            ies.append(RawIe(iei, value))
    return tuple(ies), end


def concat_ie(ies: Iterable[InformationElement]) -> Concat8 | Concat16 | None:
    """The first valid concatenation element (IEI 0x00 or 0x08), or None."""
    for ie in ies:
        if isinstance(ie, Concat8 | Concat16) and ie.is_valid:
            return ie
    return None
