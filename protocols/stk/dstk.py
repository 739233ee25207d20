"""The DSTK application messages exchanged between the gateway and our SIM toolkit applet.

TS 102 225 secures whatever the applet understands; the content is ours to define (PROTOCOLS.md
section 6, "DSTK payload format": an application header plus raw CAT TLVs). The applet lives at a
TAR in the proprietary toolkit range BFFF00-BFFFFF (TS 31.111 annex; we use BFFF01).

Offer push, the secured data of a command packet (gateway -> applet)::

    01            version
    LL offer_id   ASCII, 1..20 octets
    LL reply_to   the address the answer goes to (digits), 1..20 octets
    D0 ...        one proactive command (TS 102 223 BER-TLV), e.g. GET INKEY yes/no or SELECT ITEM

Answer, the additional response data of a response packet (applet -> gateway), sent as an MO
SMS-SUBMIT with PID 7F / DCS F6 and UDH IEI 71 so its checksum proves it came from the card::

    01            version
    LL offer_id
    OO            outcome (StkOutcome)
    II            item identifier chosen (00 when none)
    RR            TERMINAL RESPONSE general result (TS 102 223 section 8.12)

The response packet's TAR and counter echo the command packet's, which ties an answer to its push.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from protocols.errors import DecodeError, LocalProtocolError

__all__ = ["DSTK_TAR", "DstkAnswer", "DstkOffer", "StkOutcome"]

DSTK_TAR = bytes.fromhex("BFFF01")
_VERSION = 0x01
_MAX_FIELD = 20


class StkOutcome(IntEnum):
    """What the subscriber did with the dialog."""

    ACCEPTED = 0  # OK / Yes pressed
    DECLINED = 1  # No, Cancel or Back
    ITEM_CHOSEN = 2  # SELECT ITEM answered with an item
    NO_RESPONSE = 3  # the dialog timed out (TR result 0x12)
    UNABLE = 4  # the terminal was busy or could not show it (TR 0x20 / 0x30-0x32)


def _field(name: str, value: str) -> bytes:
    raw = value.encode("ascii", "strict") if value.isascii() else b""
    if not 1 <= len(raw) <= _MAX_FIELD or len(raw) != len(value):
        raise LocalProtocolError(f"{name} must be 1..{_MAX_FIELD} ASCII characters, got {value!r}")
    return bytes((len(raw),)) + raw


def _read_field(data: bytes, pos: int, name: str) -> tuple[str, int]:
    if pos >= len(data):
        raise DecodeError(f"DSTK message ends before {name}")
    length = data[pos]
    end = pos + 1 + length
    if not 1 <= length <= _MAX_FIELD or end > len(data):
        raise DecodeError(f"DSTK {name} has a bad length {length}")
    raw = data[pos + 1 : end]
    if not raw.isascii():
        raise DecodeError(f"DSTK {name} is not ASCII")
    return raw.decode("ascii"), end


@dataclass(frozen=True, slots=True)
class DstkOffer:
    """An offer dialog for the applet: which offer, where to answer, what to show."""

    offer_id: str
    reply_to: str
    command: bytes  # one encoded proactive command (D0 ...)

    def encode(self) -> bytes:
        if not self.command or self.command[0] != 0xD0:
            raise LocalProtocolError("the DSTK command must be one proactive command (BER tag D0)")
        return (
            bytes((_VERSION,))
            + _field("offer_id", self.offer_id)
            + _field("reply_to", self.reply_to)
            + self.command
        )

    @classmethod
    def decode(cls, data: bytes) -> DstkOffer:
        if not data or data[0] != _VERSION:
            raise DecodeError("not a DSTK offer (version 01 expected)")
        offer_id, pos = _read_field(data, 1, "offer_id")
        reply_to, pos = _read_field(data, pos, "reply_to")
        command = data[pos:]
        if not command or command[0] != 0xD0:
            raise DecodeError("DSTK offer carries no proactive command")
        return cls(offer_id, reply_to, command)


@dataclass(frozen=True, slots=True)
class DstkAnswer:
    """The applet's report of what the subscriber did."""

    offer_id: str
    outcome: StkOutcome
    item_id: int = 0
    general_result: int = 0

    def encode(self) -> bytes:
        if not 0 <= self.item_id <= 255 or not 0 <= self.general_result <= 255:
            raise LocalProtocolError("item_id and general_result are single octets")
        return (
            bytes((_VERSION,))
            + _field("offer_id", self.offer_id)
            + bytes((int(self.outcome), self.item_id, self.general_result))
        )

    @classmethod
    def decode(cls, data: bytes) -> DstkAnswer:
        if not data or data[0] != _VERSION:
            raise DecodeError("not a DSTK answer (version 01 expected)")
        offer_id, pos = _read_field(data, 1, "offer_id")
        if len(data) != pos + 3:
            raise DecodeError(
                f"DSTK answer must end with outcome, item and result: {len(data) - pos} octets left"
            )
        try:
            outcome = StkOutcome(data[pos])
        except ValueError:
            raise DecodeError(f"unknown DSTK outcome {data[pos]}") from None
        return cls(offer_id, outcome, data[pos + 1], data[pos + 2])
