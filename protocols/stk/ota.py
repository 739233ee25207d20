"""OTA secured packets for SMS-PP: ETSI TS 102 225 sections 5.1 / 5.2 and 3GPP TS 31.115 sections 4.2 / 4.4.

A SIM toolkit push travels as the command packet of TS 31.115 section 4.2 after the UDH ``02 70 00``
(IEI 0x70, Command Packet Identifier) of an SMS-DELIVER with TP-PID 0x7F and TP-DCS 0xF6::

    CPL(2) | CHL(1) | SPI(2) | KIc(1) | KID(1) | TAR(3) | CNTR(5) | PCNTR(1) | RC/CC/DS | secured data

- CPL counts the octets from CHL to the end, padding included; CHL = 13 + len(RC/CC/DS).
- The SPI (section 5.1.1) says which security applies: integrity (none, redundancy check,
  cryptographic checksum, digital signature), ciphering, the counter mode, and in its second octet
  what the Proof of Receipt must look like (TS 31.115 adds b6: PoR via SMS-SUBMIT).
- KIc (5.1.2) and KID (5.1.3) name the algorithm in b4..b1 and the key version in b8..b5.
- The RC/CC/DS covers ``CPL .. PCNTR | secured data | padding``; the UDH is **not** covered for a
  command. DES/3DES checksums are the last block of a CBC encryption with a zero IV over the input
  zero-padded to 8 octets; AES uses CMAC (NIST SP 800-38B) truncated to 8 (or 4) octets; the RC is a
  CRC16 or CRC32 of ISO/IEC 13239, sent most significant octet first.
- Ciphering (CBC with a zero IV, or DES-ECB) covers ``CNTR | PCNTR | RC/CC/DS | data | padding``; the
  data is padded with zero octets to the block size (8 for DES, 16 for AES) and PCNTR counts them.

The Proof of Receipt (TS 102 225 section 5.2, TS 31.115 section 4.4) comes back after the UDH
``02 71 00`` (IEI 0x71, Response Packet Identifier)::

    RPL(2) | RHL(1) | TAR(3) | CNTR(5) | PCNTR(1) | status(1) | RC/CC/DS | additional response data

secured as the command's second SPI octet says, with the command's keys. Unlike the command, its
RC/CC/DS **does** cover the UDH. These coverage rules are those of pySim ``pySim/ota.py``, asterix
``SecurePacket.py`` and jtendo/ucp_gateway, and this module reproduces the published vectors of
pySim and opentelecoms gsm0348 byte for byte (tests/vectors/stk/ota.json).

Crypto is pycryptodomex. Its DES3 refuses keys whose parts repeat (K1 == K2, or K2 == K3 for three
keys), as such keys degenerate to single DES; this module then runs the single DES they are equal
to, as a card does.

Pure and sans-I/O: the replay counter store and the minimum security level of each TAR belong to
the caller, which hands them in through :class:`KeySet` from its ``keys_lookup``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from Cryptodome.Cipher import AES, DES, DES3
from Cryptodome.Hash import CMAC

from protocols.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from protocols.registry import KeepUnknownIntEnum

__all__ = [
    "COMMAND_UDH",
    "MAX_CNTR",
    "RESPONSE_UDH",
    "SMS_USER_DATA_OCTETS",
    "CcAlgorithm",
    "CipherAlgorithm",
    "CommandHeader",
    "CommandPacket",
    "CounterMode",
    "Integrity",
    "KeyLookup",
    "KeySet",
    "Kic",
    "Kid",
    "OtaSecurityError",
    "PorMode",
    "RcAlgorithm",
    "ResponsePacket",
    "ResponseStatus",
    "Spi",
    "build_command_packet",
    "build_response_packet",
    "check_counter",
    "crc16",
    "crc32",
    "max_payload",
    "parse_command_header",
    "parse_command_packet",
    "parse_response_packet",
]

SMS_USER_DATA_OCTETS = 140  # TS 23.040 9.2.3.24: TP-UD of one 8-bit SMS, UDH included
COMMAND_UDH = b"\x02\x70\x00"  # UDHL 2, IEI 0x70 Command Packet Identifier, length 0 (TS 31.115 4.2)
RESPONSE_UDH = b"\x02\x71\x00"  # UDHL 2, IEI 0x71 Response Packet Identifier, length 0 (TS 31.115 4.4)
MAX_CNTR = (1 << 40) - 1  # CNTR is 5 octets

_IEI_COMMAND_PACKET = 0x70
_IEI_RESPONSE_PACKET = 0x71
_CLEAR_HEADER = 10  # CPL(2) CHL(1) SPI(2) KIc(1) KID(1) TAR(3): never ciphered
_CHL_BASE = 13  # SPI(2) KIc(1) KID(1) TAR(3) CNTR(5) PCNTR(1)
_RHL_BASE = 10  # TAR(3) CNTR(5) PCNTR(1) status(1)
_RESPONSE_CLEAR = 6  # RPL(2) RHL(1) TAR(3)
_COUNTERS = 6  # CNTR(5) PCNTR(1): first in the ciphered part of a command
_RESPONSE_COUNTERS = 7  # CNTR(5) PCNTR(1) status(1): first in the ciphered part of a PoR
_MAX_LENGTH_FIELD = 0xFFFF  # CPL and RPL are 2 octets


_KeepUnknown = KeepUnknownIntEnum


class ResponseStatus(_KeepUnknown):
    """Response Status Codes of the PoR, TS 102 225 section 5.2; 0x0B and 0x0C are defined by TS 31.115."""

    POR_OK = 0x00
    RC_CC_DS_FAILED = 0x01
    CNTR_LOW = 0x02
    CNTR_HIGH = 0x03
    CNTR_BLOCKED = 0x04
    CIPHERING_ERROR = 0x05
    UNIDENTIFIED_SECURITY_ERROR = 0x06  # header not understood: the PoR goes unciphered, no RC/CC/DS
    INSUFFICIENT_MEMORY = 0x07
    MORE_TIME = 0x08
    TAR_UNKNOWN = 0x09
    INSUFFICIENT_SECURITY_LEVEL = 0x0A
    RESPONSE_DATA_VIA_SMS_SUBMIT = 0x0B  # TS 31.115: actual response data sent using SMS-SUBMIT
    RESPONSE_DATA_VIA_USSD = 0x0C  # TS 31.115: actual response data sent using USSD


class Integrity(IntEnum):
    """SPI1 b2b1 (command) and SPI2 b4b3 (PoR), TS 102 225 5.1.1. Ordered weakest first."""

    NONE = 0
    RC = 1  # redundancy check
    CC = 2  # cryptographic checksum
    DS = 3  # digital signature


class CounterMode(IntEnum):
    """SPI1 b5b4, TS 102 225 5.1.1. Ordered weakest first."""

    NO_COUNTER = 0
    AVAILABLE_NO_CHECK = 1  # counter available, no replay or sequence checking
    HIGHER = 2  # process only if the counter is higher than the receiver's value
    EXACTLY_ONE_HIGHER = 3  # process only if the counter is exactly one higher


class PorMode(IntEnum):
    """SPI2 b2b1, TS 102 225 5.1.1."""

    NONE = 0
    ALWAYS = 1
    ON_ERROR = 2
    RESERVED = 3


class CipherAlgorithm(_KeepUnknown):
    """KIc b4..b1 (mode in b4b3, algorithm in b2b1), TS 102 225 5.1.2."""

    IMPLICIT = 0x0  # known implicitly by both entities: not usable here
    DES_CBC = 0x1
    TDES_2KEY = 0x5  # triple DES in outer-CBC mode, 2 keys
    TDES_3KEY = 0x9  # triple DES in outer-CBC mode, 3 keys
    DES_ECB = 0xD
    AES_CBC = 0x2


class CcAlgorithm(_KeepUnknown):
    """KID b4..b1 when the SPI asks for a cryptographic checksum, TS 102 225 5.1.3.1."""

    IMPLICIT = 0x0
    DES_CBC = 0x1  # DES CBC-MAC
    TDES_2KEY = 0x5  # triple DES outer-CBC MAC, 2 keys
    TDES_3KEY = 0x9  # triple DES outer-CBC MAC, 3 keys
    AES_CMAC = 0x2


class RcAlgorithm(_KeepUnknown):
    """KID b4..b1 when the SPI asks for a redundancy check, TS 102 225 5.1.3.2."""

    IMPLICIT = 0x0
    CRC16 = 0x1
    CRC32 = 0x5


@dataclass(frozen=True, slots=True)
class Spi:
    """The two SPI octets, TS 102 225 5.1.1 (and TS 31.115 4.2 for SPI2 b6)."""

    integrity: Integrity = Integrity.NONE  # SPI1 b2b1
    ciphering: bool = False  # SPI1 b3
    counter: CounterMode = CounterMode.NO_COUNTER  # SPI1 b5b4
    por: PorMode = PorMode.NONE  # SPI2 b2b1
    por_integrity: Integrity = Integrity.NONE  # SPI2 b4b3
    por_ciphering: bool = False  # SPI2 b5
    por_via_sms_submit: bool = False  # SPI2 b6 (TS 31.115): 0 = SMS-DELIVER-REPORT, 1 = SMS-SUBMIT
    reserved1: int = 0  # SPI1 b8..b6, kept for a byte-exact round trip
    reserved2: int = 0  # SPI2 b8b7

    def __post_init__(self) -> None:
        if not 0 <= self.reserved1 <= 0x07 or not 0 <= self.reserved2 <= 0x03:
            raise LocalProtocolError("SPI reserved bits out of range (SPI1 b8..b6: 0..7, SPI2 b8b7: 0..3)")

    def encode(self) -> bytes:
        first = int(self.integrity) | self.ciphering << 2 | int(self.counter) << 3 | self.reserved1 << 5
        second = (
            int(self.por)
            | int(self.por_integrity) << 2
            | self.por_ciphering << 4
            | self.por_via_sms_submit << 5
            | self.reserved2 << 6
        )
        return bytes((first, second))

    @classmethod
    def decode(cls, data: bytes) -> Spi:
        if len(data) != 2:
            raise DecodeError(f"SPI is 2 octets, got {len(data)}")
        first, second = data
        return cls(
            integrity=Integrity(first & 0x03),
            ciphering=bool(first & 0x04),
            counter=CounterMode(first >> 3 & 0x03),
            por=PorMode(second & 0x03),
            por_integrity=Integrity(second >> 2 & 0x03),
            por_ciphering=bool(second & 0x10),
            por_via_sms_submit=bool(second & 0x20),
            reserved1=first >> 5,
            reserved2=second >> 6,
        )

    def meets(self, minimum_security: int) -> bool:
        """Whether SPI1 is at least the Minimum Security Level ``minimum_security``.

        The MSL is one octet coded like SPI1 (TS 102 226, MSL of a toolkit application; section not
        confirmed here). The comparison is field by field: integrity none < RC < CC < DS, ciphering
        if the MSL asks for it, counter mode none < available < higher < exactly one higher.
        """
        need = Spi.decode(bytes((minimum_security & 0xFF, 0)))
        return (
            self.integrity >= need.integrity
            and (self.ciphering or not need.ciphering)
            and self.counter >= need.counter
        )


def _check_nibble(name: str, value: int) -> None:
    if not 0 <= value <= 0x0F:
        raise LocalProtocolError(f"{name} is a 4-bit field (0..15), got {value}")


@dataclass(frozen=True, slots=True)
class Kic:
    """Key and algorithm identifier for ciphering, TS 102 225 5.1.2: b8..b5 key version, b4..b1 algorithm."""

    algorithm: CipherAlgorithm = CipherAlgorithm.IMPLICIT
    kvn: int = 0

    def __post_init__(self) -> None:
        _check_nibble("KIc algorithm", self.algorithm)
        _check_nibble("KIc key version", self.kvn)

    def encode(self) -> int:
        return self.kvn << 4 | int(self.algorithm)

    @classmethod
    def decode(cls, octet: int) -> Kic:
        return cls(CipherAlgorithm(octet & 0x0F), octet >> 4 & 0x0F)


@dataclass(frozen=True, slots=True)
class Kid:
    """Key and algorithm identifier for RC/CC/DS, TS 102 225 5.1.3: b8..b5 key version, b4..b1 algorithm.

    The algorithm nibble means a CRC when the SPI asks for a redundancy check (:class:`RcAlgorithm`)
    and a MAC otherwise (:class:`CcAlgorithm`, which also holds the raw nibble for none and DS).
    """

    algorithm: CcAlgorithm | RcAlgorithm = CcAlgorithm.IMPLICIT
    kvn: int = 0

    def __post_init__(self) -> None:
        _check_nibble("KID algorithm", self.algorithm)
        _check_nibble("KID key version", self.kvn)

    def encode(self) -> int:
        return self.kvn << 4 | int(self.algorithm)

    @classmethod
    def decode(cls, octet: int, integrity: Integrity) -> Kid:
        nibble = octet & 0x0F
        algorithm = RcAlgorithm(nibble) if integrity is Integrity.RC else CcAlgorithm(nibble)
        return cls(algorithm, octet >> 4 & 0x0F)


@dataclass(frozen=True, slots=True)
class KeySet:
    """What a receiver (or sender) knows about one TAR and key set.

    ``kic_key`` / ``kid_key`` are the raw keys (8 octets DES, 16 two-key 3DES, 24 three-key 3DES,
    16/24/32 AES). When ``kvn`` is set, a received packet must name that key version in KIc (if
    ciphered) and KID (if it carries a CC). ``minimum_security`` is the MSL (an SPI1 octet) and
    ``counter`` the last counter value accepted with these keys: the caller's store owns both.
    """

    kic_key: bytes = b""
    kid_key: bytes = b""
    kvn: int | None = None
    minimum_security: int = 0
    counter: int = 0


KeyLookup = Callable[[bytes, Kic, Kid], KeySet | None]
"""``keys_lookup(tar, kic, kid)``: the key set for a TAR, or None when the TAR is unknown (status 0x09)."""


@dataclass(frozen=True, slots=True)
class CommandHeader:
    """The part of a command packet that is never ciphered: CPL, CHL, SPI, KIc, KID, TAR."""

    cpl: int
    chl: int
    spi: Spi
    kic: Kic
    kid: Kid
    tar: bytes


@dataclass(frozen=True, slots=True)
class CommandPacket:
    """A command packet, deciphered and verified (TS 102 225 5.1).

    ``secured_data`` is the secured data as sent: the application message followed by ``pcntr``
    padding octets.
    """

    spi: Spi
    kic: Kic
    kid: Kid
    tar: bytes
    cntr: int
    pcntr: int
    rc_cc_ds: bytes
    secured_data: bytes

    @property
    def application_message(self) -> bytes:
        return self.secured_data[: len(self.secured_data) - self.pcntr]


@dataclass(frozen=True, slots=True)
class ResponsePacket:
    """A response packet (PoR), TS 102 225 5.2, deciphered and verified.

    ``secured`` is False for an error PoR that came without the security SPI2 asks for: a card sends
    status 0x06 (and some cards other errors) unciphered and without RC/CC/DS. Such a PoR is not
    authenticated; a PoR OK is never accepted that way.
    """

    tar: bytes
    cntr: int
    pcntr: int
    status: ResponseStatus
    rc_cc_ds: bytes
    additional_response_data: bytes
    secured: bool = True


class OtaSecurityError(RemoteProtocolError):
    """A secured packet failed a security check; ``status`` is the PoR status to answer with.

    ``header`` is the clear command header and ``cntr`` the counter when they could be read, so that a
    receiver can address its PoR (TS 102 225 5.2).
    """

    status: ResponseStatus

    def __init__(
        self,
        message: str,
        status: ResponseStatus,
        *,
        header: CommandHeader | None = None,
        cntr: int | None = None,
    ) -> None:
        super().__init__(message, int(status))
        self.status = status
        self.header = header
        self.cntr = cntr


# --- CRC (TS 102 225 5.1.3.2: ISO/IEC 13239) --------------------------------------------------------
#
# CRC16: generator X^16 + X^12 + X^5 + 1 (0x1021), CRC32: the ISO/IEC 13239 (= ITU-T V.42, Ethernet)
# polynomial 0x04C11DB7. The least significant bit of each octet is the highest term (reflected),
# the register starts at all ones and the result is XORed with all ones: CRC-16/X-25 (check value
# 0x906E for "123456789") and CRC-32/ISO-HDLC (check 0xCBF43926). Sent most significant octet first.


def _reflected_table(polynomial: int, width: int) -> tuple[int, ...]:
    reflected = int(format(polynomial, f"0{width}b")[::-1], 2)
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = value >> 1 ^ reflected if value & 1 else value >> 1
        table.append(value)
    return tuple(table)


_CRC16_TABLE = _reflected_table(0x1021, 16)
_CRC32_TABLE = _reflected_table(0x04C11DB7, 32)


def crc16(data: bytes) -> int:
    """CRC16 of TS 102 225 5.1.3.2 (ISO/IEC 13239, X^16 + X^12 + X^5 + 1; CRC-16/X-25)."""
    value = 0xFFFF
    for octet in data:
        value = value >> 8 ^ _CRC16_TABLE[(value ^ octet) & 0xFF]
    return value ^ 0xFFFF


def crc32(data: bytes) -> int:
    """CRC32 of TS 102 225 5.1.3.2 (ISO/IEC 13239 polynomial 0x04C11DB7; CRC-32/ISO-HDLC)."""
    value = 0xFFFFFFFF
    for octet in data:
        value = value >> 8 ^ _CRC32_TABLE[(value ^ octet) & 0xFF]
    return value ^ 0xFFFFFFFF


# --- ciphers and checksums -------------------------------------------------------------------------

_CIPHER_NAMES = {
    CipherAlgorithm.DES_CBC: "DES-CBC",
    CipherAlgorithm.TDES_2KEY: "3DES-2key-CBC",
    CipherAlgorithm.TDES_3KEY: "3DES-3key-CBC",
    CipherAlgorithm.DES_ECB: "DES-ECB",
    CipherAlgorithm.AES_CBC: "AES-CBC",
}
# key length by algorithm nibble, the same for KIc and KID: DES (CBC 0x1, ECB 0xD), 3DES 2 / 3 keys
_DES_KEY_LENGTHS = {0x1: 8, 0xD: 8, 0x5: 16, 0x9: 24}
_AES_KEY_LENGTHS = (16, 24, 32)


def _effective_des_key(key: bytes) -> bytes:
    """The key DES3 really runs: a triple-DES key whose parts repeat is single DES with the other part.

    E(K3, D(K2, E(K1, x))) is E(K3, x) when K1 == K2 and E(K1, x) when K2 == K3 (parity bits aside,
    as pycryptodomex compares them).
    """
    parts = [bytes(b & 0xFE for b in key[i : i + 8]) for i in range(0, len(key), 8)]
    if len(parts) >= 2 and parts[0] == parts[1]:
        return key[-8:]
    if len(parts) == 3 and parts[1] == parts[2]:
        return key[:8]
    return key


def _des_cipher(key: bytes, ecb: bool = False) -> Any:
    effective = _effective_des_key(key)
    # DES and 3DES are what TS 102 225 5.1.2 / 5.1.3 specify and what deployed cards run
    if len(effective) == 8:
        if ecb:
            return DES.new(effective, DES.MODE_ECB)  # noqa: S304
        return DES.new(effective, DES.MODE_CBC, iv=bytes(8))  # noqa: S304
    return DES3.new(effective, DES3.MODE_CBC, iv=bytes(8))


def _check_key(what: str, algorithm: int, key: bytes, lengths: tuple[int, ...]) -> None:
    if len(key) not in lengths:
        expected = " or ".join(str(n) for n in lengths)
        raise LocalProtocolError(f"{what} {algorithm:#x} needs a {expected}-octet key, got {len(key)} octets")


def _block_size(algorithm: CipherAlgorithm) -> int:
    if algorithm is CipherAlgorithm.AES_CBC:
        return 16
    if algorithm in _DES_KEY_LENGTHS:
        return 8
    raise LocalProtocolError(f"KIc algorithm {algorithm.name} is not supported (TS 102 225 5.1.2)")


def _cipher(algorithm: CipherAlgorithm, key: bytes) -> Any:
    """A fresh pycryptodomex cipher object for ``algorithm`` (zero IV); checks the key length."""
    _block_size(algorithm)
    if algorithm is CipherAlgorithm.AES_CBC:
        _check_key("KIc algorithm", algorithm, key, _AES_KEY_LENGTHS)
        return AES.new(key, AES.MODE_CBC, iv=bytes(16))
    _check_key("KIc algorithm", algorithm, key, (_DES_KEY_LENGTHS[int(algorithm)],))
    return _des_cipher(key, ecb=algorithm is CipherAlgorithm.DES_ECB)


def _signature_lengths(integrity: Integrity, kid: Kid) -> tuple[int, ...]:
    """The RC/CC/DS lengths ``integrity`` with ``kid`` allows, preferred first."""
    if integrity is Integrity.NONE:
        return (0,)
    algorithm = int(kid.algorithm)
    if integrity is Integrity.RC:
        if algorithm == RcAlgorithm.CRC16:
            return (2,)
        if algorithm == RcAlgorithm.CRC32:
            return (4,)
        raise LocalProtocolError(f"KID {algorithm:#x} names no supported RC (CRC16 0x1, CRC32 0x5)")
    if integrity is Integrity.CC:
        if algorithm == CcAlgorithm.AES_CMAC:
            return (8, 4)
        if algorithm in (CcAlgorithm.DES_CBC, CcAlgorithm.TDES_2KEY, CcAlgorithm.TDES_3KEY):
            return (8,)
        raise LocalProtocolError(f"KID {algorithm:#x} names no supported CC (DES 0x1, 3DES 0x5/0x9, AES 0x2)")
    raise LocalProtocolError("digital signatures (SPI RC/CC/DS = 11) are not supported")


def _check_kid_key(integrity: Integrity, kid: Kid, key: bytes) -> None:
    if integrity is not Integrity.CC:
        return
    if kid.algorithm == CcAlgorithm.AES_CMAC:
        _check_key("KID algorithm", kid.algorithm, key, _AES_KEY_LENGTHS)
    else:
        _check_key("KID algorithm", kid.algorithm, key, (_DES_KEY_LENGTHS[int(kid.algorithm)],))


def _signature(integrity: Integrity, kid: Kid, key: bytes, covered: bytes, length: int) -> bytes:
    """RC/CC over ``covered`` (lengths and keys already checked)."""
    if integrity is Integrity.NONE:
        return b""
    if integrity is Integrity.RC:
        if length == 2:
            return crc16(covered).to_bytes(2, "big")
        return crc32(covered).to_bytes(4, "big")
    if kid.algorithm == CcAlgorithm.AES_CMAC:
        mac = CMAC.new(key, ciphermod=AES)
        mac.update(covered)
        return bytes(mac.digest()[:length])
    padded = covered + bytes(-len(covered) % 8)
    return bytes(_des_cipher(key).encrypt(padded)[-8:])


def _describe(spi: Spi, kic: Kic) -> str:
    parts = []
    if spi.ciphering:
        parts.append(_CIPHER_NAMES.get(kic.algorithm, f"KIc {int(kic.algorithm):#x}"))
    if spi.integrity is not Integrity.NONE:
        parts.append(spi.integrity.name)
    return " + ".join(parts) or "no security"


# --- counter ---------------------------------------------------------------------------------------


def check_counter(
    mode: CounterMode, received: int, last: int, *, max_step: int | None = None
) -> ResponseStatus:
    """Replay check of TS 102 225 5.1.1 for a command with counter ``received``.

    ``last`` is the receiver's counter for the key set. Without a counter, or with "counter
    available, no replay checking", any value passes. "Higher" needs ``received > last`` (and, if the
    receiver sets ``max_step``, at most that far ahead: CNTR high otherwise); "exactly one higher"
    needs ``received == last + 1``. A receiver whose counter reached 2^40 - 1 is blocked (0x04).
    """
    for name, value in (("received", received), ("last", last)):
        if not 0 <= value <= MAX_CNTR:
            raise LocalProtocolError(f"{name} counter {value} is not a 5-octet value")
    if mode in (CounterMode.NO_COUNTER, CounterMode.AVAILABLE_NO_CHECK):
        return ResponseStatus.POR_OK
    if last == MAX_CNTR:
        return ResponseStatus.CNTR_BLOCKED
    if received <= last:
        return ResponseStatus.CNTR_LOW
    step = 1 if mode is CounterMode.EXACTLY_ONE_HIGHER else max_step
    if step is not None and received - last > step:
        return ResponseStatus.CNTR_HIGH
    return ResponseStatus.POR_OK


# --- command packet --------------------------------------------------------------------------------


def max_payload(spi: Spi, kic: Kic, kid: Kid, udh_length: int = 3, *, cc_length: int = 8) -> int:
    """Octets of application message that fit one SMS-PP with this security (TS 31.115 4.2).

    140 octets of user data, minus the UDH, CPL, CHL and the 13 header octets, minus the RC/CC/DS;
    when ciphered, the ciphered part (CNTR .. padding) is rounded down to the cipher block size.
    """
    lengths = _signature_lengths(spi.integrity, kid)
    signature = cc_length if spi.integrity is Integrity.CC else lengths[0]
    room = SMS_USER_DATA_OCTETS - udh_length - _CLEAR_HEADER  # for CNTR .. padding
    if spi.ciphering:
        block = _block_size(kic.algorithm)
        room -= room % block
    return max(0, room - _COUNTERS - signature)


def build_command_packet(  # noqa: PLR0917 - the field order of the packet, as callers expect
    payload: bytes,
    spi: Spi,
    kic: Kic,
    kid: Kid,
    tar: bytes,
    cntr: int,
    keys: KeySet,
    *,
    udh_length: int = 3,
    cc_length: int = 8,
    single_sms: bool = True,
) -> bytes:
    """The secured command packet for ``payload``, CPL first (TS 31.115 4.2), without the UDH.

    Put it after :data:`COMMAND_UDH` in the TP-UD. ``cc_length`` is 8, or 4 with AES CMAC. With
    ``single_sms`` (the default) a packet that does not fit one SMS with a ``udh_length``-octet UDH
    raises :class:`LocalProtocolError` naming how far over the budget it is.
    """
    if len(tar) != 3:
        raise LocalProtocolError(f"TAR is 3 octets, got {len(tar)}")
    if not 0 <= cntr <= MAX_CNTR:
        raise LocalProtocolError(f"CNTR {cntr} is not a 5-octet value")
    lengths = _signature_lengths(spi.integrity, kid)
    signature_length = cc_length if spi.integrity is Integrity.CC else lengths[0]
    if signature_length not in lengths:
        raise LocalProtocolError(
            f"a {kid.algorithm.name} CC is {' or '.join(map(str, lengths))} octets, not {cc_length}"
        )
    _check_kid_key(spi.integrity, kid, keys.kid_key)
    cipher = _cipher(kic.algorithm, keys.kic_key) if spi.ciphering else None
    if single_sms:
        budget = max_payload(spi, kic, kid, udh_length, cc_length=signature_length)
        if len(payload) > budget:
            raise LocalProtocolError(
                f"payload is {len(payload) - budget} bytes over the {budget}-byte budget for "
                f"{_describe(spi, kic)} (one SMS: {SMS_USER_DATA_OCTETS} octets of user data, "
                f"{udh_length} of them UDH)"
            )
    padding = b""
    if cipher is not None:
        padding = bytes(-(_COUNTERS + signature_length + len(payload)) % cipher.block_size)
    chl = _CHL_BASE + signature_length
    cpl = 1 + chl + len(payload) + len(padding)
    if cpl > _MAX_LENGTH_FIELD:
        raise LocalProtocolError(f"command packet of {cpl} octets does not fit the 2-octet CPL")
    header = cpl.to_bytes(2, "big") + bytes((chl,)) + spi.encode() + bytes((kic.encode(), kid.encode())) + tar
    counters = cntr.to_bytes(5, "big") + bytes((len(padding),))
    secured = payload + padding
    signature = _signature(spi.integrity, kid, keys.kid_key, header + counters + secured, signature_length)
    body = counters + signature + secured
    if cipher is not None:
        body = cipher.encrypt(body)
    return header + body


def parse_command_header(data: bytes) -> CommandHeader:
    """The clear header of a command packet (CPL .. TAR); checks CPL and CHL against the length.

    Raises :class:`DecodeError` with status 0x06 (unidentified security error) when it cannot.
    """
    status = int(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR)
    if len(data) < 3 + _CHL_BASE:
        raise DecodeError(f"command packet of {len(data)} octets is shorter than its 16-octet header", status)
    cpl = int.from_bytes(data[:2], "big")
    if cpl != len(data) - 2:
        raise DecodeError(f"CPL says {cpl} octets follow it, {len(data) - 2} do", status)
    chl = data[2]
    if chl < _CHL_BASE or 1 + chl > cpl:
        raise DecodeError(f"CHL {chl} does not fit (13 .. {cpl - 1} for CPL {cpl})", status)
    spi = Spi.decode(data[3:5])
    return CommandHeader(
        cpl, chl, spi, Kic.decode(data[5]), Kid.decode(data[6], spi.integrity), bytes(data[7:10])
    )


def parse_command_packet(data: bytes, keys_lookup: KeyLookup) -> tuple[CommandPacket, bytes]:
    """Verify and decipher a command packet (CPL first, no UDH) as a receiving entity does.

    Returns the packet and its application message. The checks, in order: header (DecodeError,
    0x06); TAR known to ``keys_lookup`` (0x09); SPI1 meets the key set's MSL (0x0A); key versions and
    RC/CC/DS length (0x06); deciphering (0x05); RC/CC (0x01); padding (0x05); counter (0x02 .. 0x04).
    Each failure raises :class:`OtaSecurityError` carrying the status for the PoR.
    """
    header = parse_command_header(data)
    spi, kic, kid = header.spi, header.kic, header.kid
    keys = keys_lookup(header.tar, kic, kid)
    if keys is None:
        raise OtaSecurityError(
            f"TAR {header.tar.hex().upper()} unknown", ResponseStatus.TAR_UNKNOWN, header=header
        )
    if not spi.meets(keys.minimum_security):
        raise OtaSecurityError(
            f"SPI {spi.encode().hex().upper()} is below the minimum security level {keys.minimum_security:02X}",
            ResponseStatus.INSUFFICIENT_SECURITY_LEVEL,
            header=header,
        )
    signature_length = header.chl - _CHL_BASE
    try:
        if keys.kvn is not None and (
            (spi.ciphering and kic.kvn != keys.kvn) or (spi.integrity is Integrity.CC and kid.kvn != keys.kvn)
        ):
            raise LocalProtocolError(f"no keys with version {kic.kvn}/{kid.kvn} (have {keys.kvn})")
        if signature_length not in _signature_lengths(spi.integrity, kid):
            raise LocalProtocolError(f"{signature_length}-octet RC/CC/DS does not match SPI and KID")
        _check_kid_key(spi.integrity, kid, keys.kid_key)
    except LocalProtocolError as exc:
        raise OtaSecurityError(str(exc), ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, header=header) from None
    body = data[_CLEAR_HEADER:]
    block = 1
    if spi.ciphering:
        try:
            cipher = _cipher(kic.algorithm, keys.kic_key)
        except LocalProtocolError as exc:
            raise OtaSecurityError(str(exc), ResponseStatus.CIPHERING_ERROR, header=header) from None
        block = cipher.block_size
        if len(body) % block:
            raise OtaSecurityError(
                f"{len(body)} ciphered octets are not a multiple of the {block}-octet block",
                ResponseStatus.CIPHERING_ERROR,
                header=header,
            )
        body = cipher.decrypt(body)
    cntr = int.from_bytes(body[:5], "big")
    pcntr = body[5]
    received = bytes(body[_COUNTERS : _COUNTERS + signature_length])
    secured = bytes(body[_COUNTERS + signature_length :])
    expected = _signature(
        spi.integrity, kid, keys.kid_key, data[:_CLEAR_HEADER] + body[:_COUNTERS] + secured, signature_length
    )
    if not hmac.compare_digest(received, expected):
        raise OtaSecurityError(
            f"{spi.integrity.name} check failed", ResponseStatus.RC_CC_DS_FAILED, header=header, cntr=cntr
        )
    if pcntr > len(secured) or (spi.ciphering and pcntr >= block):
        raise OtaSecurityError(
            f"PCNTR {pcntr} does not fit {len(secured)} octets of secured data",
            ResponseStatus.CIPHERING_ERROR if spi.ciphering else ResponseStatus.UNIDENTIFIED_SECURITY_ERROR,
            header=header,
            cntr=cntr,
        )
    status = check_counter(spi.counter, cntr, keys.counter)
    if status is not ResponseStatus.POR_OK:
        raise OtaSecurityError(
            f"CNTR {cntr} refused ({spi.counter.name}, last {keys.counter})", status, header=header, cntr=cntr
        )
    packet = CommandPacket(spi, kic, kid, header.tar, cntr, pcntr, received, secured)
    return packet, packet.application_message


# --- response packet (PoR) -------------------------------------------------------------------------


def _udh_length(user_data: bytes, iei: int) -> int:
    """Length of the UDH at the start of ``user_data`` (UDHL included); it must hold IE ``iei``."""
    if not user_data:
        raise DecodeError("no user data header")
    end = 1 + user_data[0]
    if end > len(user_data):
        raise DecodeError(f"UDHL {user_data[0]} runs past the {len(user_data)}-octet user data")
    found = False
    at = 1
    while at < end:
        if at + 2 > end or at + 2 + user_data[at + 1] > end:
            raise DecodeError("information element runs past the UDH")
        found = found or user_data[at] == iei
        at += 2 + user_data[at + 1]
    if not found:
        raise DecodeError(f"UDH holds no IEI {iei:#04x}")
    return end


def build_response_packet(
    tar: bytes,
    cntr: int,
    status: ResponseStatus,
    additional_response_data: bytes = b"",
    *,
    spi: Spi,
    kic: Kic,
    kid: Kid,
    keys: KeySet,
    udh: bytes = RESPONSE_UDH,
    cc_length: int = 8,
) -> bytes:
    """The PoR user data ``udh | RPL .. data`` (TS 31.115 4.4) for a command with SPI ``spi``.

    SPI2 of ``spi`` chooses the security, with the command's KIc/KID and keys; the RC/CC covers the
    UDH. For status 0x06 TS 102 225 5.2 wants no security: pass ``Spi()``.
    """
    if len(tar) != 3:
        raise LocalProtocolError(f"TAR is 3 octets, got {len(tar)}")
    if not 0 <= cntr <= MAX_CNTR:
        raise LocalProtocolError(f"CNTR {cntr} is not a 5-octet value")
    if not 0 <= status <= 0xFF:
        raise LocalProtocolError(f"status {status} is not one octet")
    try:
        _udh_length(udh, _IEI_RESPONSE_PACKET)
    except DecodeError as exc:
        raise LocalProtocolError(f"bad PoR UDH: {exc}") from None
    lengths = _signature_lengths(spi.por_integrity, kid)
    signature_length = cc_length if spi.por_integrity is Integrity.CC else lengths[0]
    if signature_length not in lengths:
        raise LocalProtocolError(
            f"a {kid.algorithm.name} CC is {' or '.join(map(str, lengths))} octets, not {cc_length}"
        )
    _check_kid_key(spi.por_integrity, kid, keys.kid_key)
    cipher = _cipher(kic.algorithm, keys.kic_key) if spi.por_ciphering else None
    padding = b""
    if cipher is not None:
        padding = bytes(
            -(_RESPONSE_COUNTERS + signature_length + len(additional_response_data)) % cipher.block_size
        )
    rhl = _RHL_BASE + signature_length
    rpl = 1 + rhl + len(additional_response_data) + len(padding)
    if rpl > _MAX_LENGTH_FIELD:
        raise LocalProtocolError(f"response packet of {rpl} octets does not fit the 2-octet RPL")
    header = rpl.to_bytes(2, "big") + bytes((rhl,)) + tar
    counters = cntr.to_bytes(5, "big") + bytes((len(padding), int(status)))
    secured = additional_response_data + padding
    signature = _signature(
        spi.por_integrity, kid, keys.kid_key, udh + header + counters + secured, signature_length
    )
    body = counters + signature + secured
    if cipher is not None:
        body = cipher.encrypt(body)
    return udh + header + body


def parse_response_packet(user_data: bytes, *, spi: Spi, kic: Kic, kid: Kid, keys: KeySet) -> ResponsePacket:
    """Decipher and verify a PoR (its whole TP-UD, UDH first) answering a command sent with ``spi``.

    An RC/CC failure raises :class:`OtaSecurityError` (0x01), bad ciphering (0x05); broken structure
    raises :class:`DecodeError`. A PoR without RC/CC/DS where SPI2 asks for one is returned with
    ``secured=False`` when it reports an error, and refused (0x01) when it claims PoR OK.
    """
    start = _udh_length(user_data, _IEI_RESPONSE_PACKET)
    udh, rest = user_data[:start], user_data[start:]
    if len(rest) < 3 + _RHL_BASE:
        raise DecodeError(f"response packet of {len(rest)} octets is shorter than its 13-octet header")
    rpl = int.from_bytes(rest[:2], "big")
    if rpl != len(rest) - 2:
        raise DecodeError(f"RPL says {rpl} octets follow it, {len(rest) - 2} do")
    rhl = rest[2]
    if rhl < _RHL_BASE or 1 + rhl > rpl:
        raise DecodeError(f"RHL {rhl} does not fit (10 .. {rpl - 1} for RPL {rpl})")
    tar = bytes(rest[3:6])
    signature_length = rhl - _RHL_BASE
    lengths = _signature_lengths(spi.por_integrity, kid)
    ciphering = spi.por_ciphering
    secured_as_asked = True
    if signature_length not in lengths:
        if signature_length:
            raise DecodeError(
                f"RHL {rhl} gives a {signature_length}-octet RC/CC/DS, SPI2 asks for {lengths[0]}"
            )
        if rest[12] == ResponseStatus.POR_OK:
            raise OtaSecurityError(
                "PoR OK without the RC/CC/DS SPI2 asks for", ResponseStatus.RC_CC_DS_FAILED
            )
        secured_as_asked = ciphering = False
    body = rest[_RESPONSE_CLEAR:]
    block = 1
    if ciphering:
        cipher = _cipher(kic.algorithm, keys.kic_key)
        block = cipher.block_size
        if len(body) % block:
            raise OtaSecurityError(
                f"{len(body)} ciphered octets are not a multiple of the {block}-octet block",
                ResponseStatus.CIPHERING_ERROR,
            )
        body = cipher.decrypt(body)
    cntr = int.from_bytes(body[:5], "big")
    pcntr = body[5]
    received = bytes(body[_RESPONSE_COUNTERS : _RESPONSE_COUNTERS + signature_length])
    secured = bytes(body[_RESPONSE_COUNTERS + signature_length :])
    if secured_as_asked:
        _check_kid_key(spi.por_integrity, kid, keys.kid_key)
        covered = udh + rest[:_RESPONSE_CLEAR] + body[:_RESPONSE_COUNTERS] + secured
        expected = _signature(spi.por_integrity, kid, keys.kid_key, covered, signature_length)
        if not hmac.compare_digest(received, expected):
            raise OtaSecurityError(
                f"PoR {spi.por_integrity.name} check failed", ResponseStatus.RC_CC_DS_FAILED, cntr=cntr
            )
    if pcntr > len(secured) or (ciphering and pcntr >= block):
        raise OtaSecurityError(
            f"PCNTR {pcntr} does not fit {len(secured)} octets of response data",
            ResponseStatus.CIPHERING_ERROR,
            cntr=cntr,
        )
    return ResponsePacket(
        tar=tar,
        cntr=cntr,
        pcntr=pcntr,
        status=ResponseStatus(body[6]),
        rc_cc_ds=received,
        additional_response_data=secured[: len(secured) - pcntr],
        secured=secured_as_asked,
    )
