"""SMS Data Coding Scheme, 3GPP TS 23.038 section 4 (TP-DCS), and the TP-PID / TP-DCS pair of SIM
data download (TS 23.040 9.2.3.9, TS 31.111 section 7.1.1).

Coding groups of the DCS octet (bits 7..4):

- 00xx general data coding, 01xx the same marked for automatic deletion: bit 5 compressed, bit 4
  "bits 1..0 carry a message class", bits 3..2 the alphabet (00 GSM 7-bit, 01 8-bit, 10 UCS-2,
  11 reserved);
- 1000..1011 reserved;
- 1100 / 1101 message waiting indication, discard / store, GSM 7-bit; 1110 store, UCS-2;
- 1111 data coding / message class: bit 2 the alphabet (0 GSM 7-bit, 1 8-bit), bits 1..0 the class.

"Any reserved codings shall be assumed to be the GSM 7 bit default alphabet" (section 4), so a
reserved alphabet decodes as GSM7.
"""

from __future__ import annotations

from typing import NamedTuple

from protocols.errors import LocalProtocolError
from protocols.gsm.alphabet import Coding

__all__ = [
    "DCS_SIM_DATA_DOWNLOAD",
    "PID_SIM_DATA_DOWNLOAD",
    "DataCodingScheme",
    "decode_dcs",
    "encode_dcs",
]

PID_SIM_DATA_DOWNLOAD = 0x7F
"""TP-PID "(U)SIM data download" (TS 23.040 9.2.3.9)."""
DCS_SIM_DATA_DOWNLOAD = 0xF6
"""TP-DCS coding group 1111, 8-bit data, class 2 "(U)SIM specific": with PID 0x7F the ME hands
the message to the UICC (TS 31.111 section 7.1.1)."""

_GENERAL_ALPHABETS = (Coding.GSM7, Coding.EIGHT_BIT, Coding.UCS2, Coding.GSM7)  # 11: reserved


class DataCodingScheme(NamedTuple):
    """What a TP-DCS octet says: the alphabet, the message class (0..3, None when the DCS gives
    none) and whether the text is compressed (TS 23.042)."""

    alphabet: Coding
    message_class: int | None
    compressed: bool


def decode_dcs(dcs: int) -> DataCodingScheme:
    """Interpret a TP-DCS octet (TS 23.038 section 4)."""
    if not isinstance(dcs, int) or not 0 <= dcs <= 0xFF:
        raise LocalProtocolError(f"a DCS is one octet, got {dcs!r}")
    group = dcs >> 4
    if group <= 0x7:  # general data coding (00xx) and automatic deletion (01xx)
        message_class = dcs & 0x03 if dcs & 0x10 else None
        return DataCodingScheme(_GENERAL_ALPHABETS[(dcs >> 2) & 0x03], message_class, bool(dcs & 0x20))
    if group == 0xF:
        return DataCodingScheme(Coding.EIGHT_BIT if dcs & 0x04 else Coding.GSM7, dcs & 0x03, False)
    if group == 0xE:  # message waiting indication, store message, UCS-2
        return DataCodingScheme(Coding.UCS2, None, False)
    # 1100 / 1101 message waiting (GSM 7-bit) and the reserved groups 1000..1011
    return DataCodingScheme(Coding.GSM7, None, False)


def encode_dcs(alphabet: Coding, message_class: int | None = None, *, compressed: bool = False) -> int:
    """A general-data-coding-group DCS (00xx xxxx): 0x00 GSM7, 0x04 8-bit, 0x08 UCS-2, plus
    0x10 | class when a message class is given and 0x20 when compressed.

    Note that SIM data download conventionally uses the group-1111 form 0xF6
    (``DCS_SIM_DATA_DOWNLOAD``) rather than the equivalent 0x16.
    """
    value = Coding(alphabet).value
    if message_class is not None:
        if message_class not in (0, 1, 2, 3):
            raise LocalProtocolError(f"message class must be 0..3, got {message_class!r}")
        value |= 0x10 | message_class
    if compressed:
        value |= 0x20
    return value
