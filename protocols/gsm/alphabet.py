"""GSM text codings, 3GPP TS 23.038: the 7-bit default alphabet (section 6.2.1) with its extension
table (6.2.1.1), 7-bit packing (6.1.2.1, and the USSD <CR> padding rule of 6.1.2.3.1), UCS-2
(section 6.2.3) and the per-part capacities of concatenated short messages (TS 23.040 9.2.3.24.1).

Septets are ints 0..127; an extension character is two septets, ESC (0x1B) and its code, and is
never split across message parts. ``pack_septets`` / ``unpack_septets`` handle the bit layout
(LSB first, optional leading fill bits after a user data header).

The <CR> rule (TS 23.038 6.1.2.3.1) applies where no length field says how many septets there
are (USSD, cell broadcast): ``pack_septets(..., cr_pad=True)`` fills 7 spare bits at the end with
<CR> instead of zeros (which would read as "@"), and adds a second <CR> when the text itself ends
with <CR> on an octet boundary; ``unpack_septets(data)`` without a count strips one <CR> that
exactly fills the last octet. SMS user data carries its septet count in TP-UDL, so it is packed
with zero padding (as libosmocore does) and unpacked by count.

UCS-2 and characters outside the BMP: we encode them as UTF-16 surrogate pairs (what handsets
display in practice) instead of refusing them. A pair counts as two UCS-2 characters in every
length calculation, and the splitter never separates the two halves. Decoding rejects a lone
surrogate with ``DecodeError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import Literal

from protocols.errors import DecodeError, LocalProtocolError

__all__ = [
    "CR",
    "ESC",
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "Coding",
    "ConcatScheme",
    "choose_coding",
    "decode_gsm7",
    "decode_ucs2",
    "encode_gsm7",
    "encode_parts",
    "encode_ucs2",
    "fill_bits",
    "gsm7_length",
    "header_septets",
    "is_gsm7",
    "pack_septets",
    "pack_ussd",
    "part_capacity",
    "parts_needed",
    "ucs2_length",
    "unpack_septets",
    "unpack_ussd",
]

ESC = 0x1B
CR = 0x0D

# TS 23.038 section 6.2.1, code 0x00..0x7F. 0x1B is the escape to the extension table (not a
# character of its own; the placeholder here is never matched when encoding).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# TS 23.038 section 6.2.1.1: the characters reached with ESC + code.
GSM7_EXTENSION: dict[int, str] = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_BASIC_CODE: dict[str, int] = {ch: code for code, ch in enumerate(GSM7_BASIC) if code != ESC}
_EXTENSION_CODE: dict[str, int] = {ch: code for code, ch in GSM7_EXTENSION.items()}
# septets of every encodable character, basic or extension
_SEPTETS: dict[str, tuple[int, ...]] = {ch: (code,) for ch, code in _BASIC_CODE.items()}
_SEPTETS.update({ch: (ESC, code) for ch, code in _EXTENSION_CODE.items()})


class Coding(IntEnum):
    """How a text travels. The values are the TS 23.038 general-group DCS (and SMPP data_coding)
    values: 0x00 GSM 7-bit default alphabet, 0x04 8-bit data, 0x08 UCS-2."""

    GSM7 = 0x00
    EIGHT_BIT = 0x04
    UCS2 = 0x08


ConcatScheme = Literal["8bit", "16bit"]
"""Concatenation UDH: IEI 0x00 (8-bit reference, 6-octet UDH) or IEI 0x08 (16-bit, 7 octets)."""

_UDH_LENGTH: dict[str, int] = {"8bit": 6, "16bit": 7}
_USER_DATA_OCTETS = 140  # TS 23.040 9.2.3.24: at most 140 octets of TP-UD


# --- 7-bit default alphabet ----------------------------------------------------------------------


_GSM7_CHARS = frozenset(_SEPTETS)
_DELETE_EXTENSION = {ord(ch): None for ch, septets in _SEPTETS.items() if len(septets) == 2}


def encode_gsm7(text: str) -> list[int]:
    """The septets of ``text`` (extension characters become ESC + code).

    Raises LocalProtocolError naming the first character the alphabet does not have.
    """
    out: list[int] = []
    table = _SEPTETS
    for pos, ch in enumerate(text):
        septets = table.get(ch)
        if septets is None:
            raise LocalProtocolError(
                f"character {ch!r} (U+{ord(ch):04X}) at position {pos} is not in the GSM 7-bit "
                "default alphabet or its extension table"
            )
        out.extend(septets)
    return out


def decode_gsm7(septets: Iterable[int]) -> str:
    """The text of a septet sequence (TS 23.038 6.2.1 and 6.2.1.1).

    ESC followed by a code the extension table lacks reads as the basic character of that code
    (6.2.1.1); ESC ESC and a dangling ESC at the end read as a space. A value above 127 raises
    DecodeError.
    """
    values = list(septets)
    out: list[str] = []
    basic = GSM7_BASIC
    i = 0
    n = len(values)
    while i < n:
        code = values[i]
        if not 0 <= code <= 0x7F:
            raise DecodeError(f"septet value {code:#x} at position {i} is not 7-bit")
        if code != ESC:
            out.append(basic[code])
            i += 1
            continue
        if i + 1 >= n:
            out.append(" ")
            break
        nxt = values[i + 1]
        if not 0 <= nxt <= 0x7F:
            raise DecodeError(f"septet value {nxt:#x} at position {i + 1} is not 7-bit")
        if nxt == ESC:
            out.append(" ")  # reserved escape to a further table: display a space
        else:
            out.append(GSM7_EXTENSION.get(nxt, basic[nxt]))
        i += 2
    return "".join(out)


def is_gsm7(text: str) -> bool:
    """True when every character is in the default alphabet or its extension table."""
    return _GSM7_CHARS.issuperset(text)  # one C-level pass: USSD checks every screen this way


def gsm7_length(text: str) -> int:
    """Number of septets ``text`` needs (extension characters count 2).

    Raises LocalProtocolError, as encode_gsm7 does, for a character the alphabet does not have.
    """
    if not _GSM7_CHARS.issuperset(text):
        return len(encode_gsm7(text))  # raises, naming the character
    # each extension character adds its ESC: count them by deleting them (C speed, no list)
    return 2 * len(text) - len(text.translate(_DELETE_EXTENSION))


# --- 7-bit packing -------------------------------------------------------------------------------


def _check_fill_bits(fill_bits: int) -> None:
    if not 0 <= fill_bits <= 6:
        raise LocalProtocolError(f"fill_bits must be 0..6, got {fill_bits}")


def pack_septets(septets: Sequence[int], fill_bits: int = 0, *, cr_pad: bool = False) -> bytes:
    """Pack septets LSB first (TS 23.038 6.1.2.1), after ``fill_bits`` zero bits.

    With ``cr_pad`` the <CR> rule of 6.1.2.3.1 applies: 7 spare bits at the end hold <CR>, and a
    text ending with <CR> exactly on an octet boundary gets a second <CR>.
    """
    _check_fill_bits(fill_bits)
    values = list(septets)
    if cr_pad:
        total = fill_bits + 7 * len(values)
        if total % 8 == 1 or (total % 8 == 0 and values and values[-1] == CR):
            values.append(CR)
    out = bytearray()
    acc = 0
    bits = fill_bits
    for value in values:
        if not 0 <= value <= 0x7F:
            raise LocalProtocolError(f"septet value {value!r} is not 0..127")
        acc |= value << bits
        bits += 7
        if bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc)
    return bytes(out)


def unpack_septets(data: bytes, count: int | None = None, fill_bits: int = 0) -> list[int]:
    """Unpack ``count`` septets from ``data``, skipping ``fill_bits`` leading bits.

    Without a count, every whole septet is read and the <CR> rule of TS 23.038 6.1.2.3.1 applies:
    a final <CR> that exactly fills the last octet is padding and is dropped. A count that needs
    more bits than ``data`` holds raises DecodeError.
    """
    _check_fill_bits(fill_bits)
    available = 8 * len(data) - fill_bits
    strip_cr = False
    if count is None:
        count = max(available, 0) // 7
        strip_cr = available > 0 and available % 7 == 0
    elif count < 0:
        raise LocalProtocolError(f"septet count must not be negative, got {count}")
    elif 7 * count > available:
        raise DecodeError(f"{count} septets need {7 * count + fill_bits} bits, only {8 * len(data)} given")
    out: list[int] = []
    acc = 0
    bits = 0
    pos = 0
    if fill_bits and count:
        acc = data[0] >> fill_bits
        bits = 8 - fill_bits
        pos = 1
    for _ in range(count):
        while bits < 7:
            acc |= data[pos] << bits
            pos += 1
            bits += 8
        out.append(acc & 0x7F)
        acc >>= 7
        bits -= 7
    if strip_cr and out and out[-1] == CR:
        out.pop()
    return out


def pack_ussd(text: str) -> bytes:
    """A USSD string in the packed 7-bit default alphabet with the <CR> rule (TS 23.038 6.1.2.3.1)."""
    return pack_septets(encode_gsm7(text), cr_pad=True)


def unpack_ussd(data: bytes) -> str:
    """Text of a packed 7-bit USSD string; a <CR> that only pads the last octet is dropped.

    A text that really ends with <CR> on an octet boundary was sent as <CR><CR> (6.1.2.3.1) and
    comes back with both: the spec defines <CR><CR> to display like <CR>.
    """
    return decode_gsm7(unpack_septets(data))


# --- UCS-2 ---------------------------------------------------------------------------------------


def encode_ucs2(text: str) -> bytes:
    """UCS-2, big endian (TS 23.038 6.2.3); characters beyond the BMP as UTF-16 surrogate pairs."""
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError as exc:  # a lone surrogate inside the str
        raise LocalProtocolError(f"text holds an unpaired surrogate at position {exc.start}") from None


def decode_ucs2(data: bytes) -> str:
    """Text of UCS-2 (UTF-16BE) octets; an odd length or an unpaired surrogate raises DecodeError."""
    if len(data) % 2:
        raise DecodeError(f"UCS-2 data has an odd number of octets ({len(data)})")
    try:
        return data.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"UCS-2 data holds an unpaired surrogate at octet {exc.start}") from None


def ucs2_length(text: str) -> int:
    """Number of UCS-2 characters (16-bit code units) ``text`` needs; non-BMP characters count 2."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


# --- coding choice and capacities ----------------------------------------------------------------


def choose_coding(content: str | bytes) -> Coding:
    """GSM7 when every character is in the default alphabet or its extension, else UCS2;
    bytes are 8-bit data."""
    if isinstance(content, bytes | bytearray):
        return Coding.EIGHT_BIT
    return Coding.GSM7 if is_gsm7(content) else Coding.UCS2


def header_septets(header_length: int) -> int:
    """Septets a user data header of ``header_length`` octets (UDHL included) occupies in 7-bit
    user data, fill bits included (TS 23.040 9.2.3.24): 6 octets -> 7, 7 octets -> 8."""
    return (8 * header_length + 6) // 7


def fill_bits(header_length: int) -> int:
    """Fill bits between a user data header of ``header_length`` octets and 7-bit text so that
    the text starts on a septet boundary (TS 23.040 9.2.3.24): 6 octets -> 1, 7 octets -> 0."""
    return 7 * header_septets(header_length) - 8 * header_length


def part_capacity(coding: Coding, header_length: int = 0) -> int:
    """Characters (septets / UCS-2 code units / octets) that fit one short message next to a
    user data header of ``header_length`` octets (0: no header).

    GSM7 160 / 153 / 152, UCS2 70 / 67 / 66, 8-bit 140 / 134 / 133 for no header, the 6-octet
    8-bit-reference concatenation header and the 7-octet 16-bit one.
    """
    if not 0 <= header_length <= _USER_DATA_OCTETS:
        raise LocalProtocolError(f"a user data header of {header_length} octets does not fit")
    coding = Coding(coding)
    if coding is Coding.GSM7:
        return 160 - header_septets(header_length)
    if coding is Coding.UCS2:
        return (_USER_DATA_OCTETS - header_length) // 2
    return _USER_DATA_OCTETS - header_length


def _concat_header_length(concat: str) -> int:
    try:
        return _UDH_LENGTH[concat]
    except KeyError:
        raise LocalProtocolError(f"concat must be '8bit' or '16bit', got {concat!r}") from None


def _units(content: str | bytes, coding: Coding) -> list[bytes]:
    """The indivisible units of ``content`` encoded for SMPP: a character's septets one per octet
    (GSM7), a character's UTF-16 code units (UCS2), single octets (8-bit)."""
    if coding is Coding.EIGHT_BIT:
        if not isinstance(content, bytes | bytearray):
            raise LocalProtocolError("8-bit data must be given as bytes")
        return [bytes((b,)) for b in content]
    if not isinstance(content, str):
        raise LocalProtocolError(f"{coding.name} content must be a str")
    if coding is Coding.GSM7:
        encode_gsm7(content)  # names the offending character, if any
        return [bytes(_SEPTETS[ch]) for ch in content]
    encode_ucs2(content)  # rejects unpaired surrogates
    return [ch.encode("utf-16-be") for ch in content]


def encode_parts(
    content: str | bytes, coding: Coding | None = None, concat: ConcatScheme = "8bit"
) -> tuple[Coding, list[bytes]]:
    """Encode ``content`` and cut it into the payloads of the short messages it needs.

    Returns the coding and one payload per part, as SMPP carries it: GSM7 septets one per octet,
    UCS-2 big endian, or the raw octets. One part when it fits a single message (no header
    needed); otherwise each part holds at most ``part_capacity`` characters next to the
    concatenation header of ``concat``. An extension character (ESC + code) and a surrogate pair
    are never cut.
    """
    header_length = _concat_header_length(concat)
    chosen = choose_coding(content) if coding is None else Coding(coding)
    units = _units(content, chosen)
    width = 2 if chosen is Coding.UCS2 else 1  # UCS-2 capacity counts 16-bit code units
    total = sum(len(u) for u in units) // width
    if total <= part_capacity(chosen):
        return chosen, [b"".join(units)]
    capacity = part_capacity(chosen, header_length)
    parts: list[bytes] = []
    current: list[bytes] = []
    used = 0
    for unit in units:
        size = len(unit) // width
        if used + size > capacity:
            parts.append(b"".join(current))
            current = []
            used = 0
        current.append(unit)
        used += size
    parts.append(b"".join(current))
    return chosen, parts


def parts_needed(content: str | bytes, coding: Coding | None = None, concat: ConcatScheme = "8bit") -> int:
    """How many short messages ``content`` needs (1 when it fits a single message).

    ``concat`` names the concatenation header the parts carry ("8bit": IEI 0x00, "16bit": IEI
    0x08); SAR and message_payload submissions end up as the same parts on the air.
    """
    return len(encode_parts(content, coding, concat)[1])
