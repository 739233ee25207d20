"""Long messages over SMPP 3.4: splitting a text into submit_sm fields and reassembling the parts.

Three ways to send a text longer than one short message:

- ``split_udh``: each part carries a concatenation UDH (TS 23.040 9.2.3.24.1 IEI 0x00, 8-bit
  reference, or 9.2.3.24.8 IEI 0x08, 16-bit) and esm_class UDHI (SMPP 3.4 5.2.12);
- ``split_sar``: each part carries the sar_msg_ref_num / sar_total_segments / sar_segment_seqnum
  TLVs (SMPP 3.4 5.3.2.22-24) and the SMSC builds the UDH; the parts are sized for it;
- ``as_message_payload``: one submit_sm with the whole text in message_payload (5.3.2.32).

GSM 7-bit text travels as data_coding 0 with unpacked septets, one per octet (the SMSC packs
them; tshark's ``smpp.gsm7_unpacked`` default); UCS-2 as data_coding 8, UTF-16BE; bytes as
data_coding 4. Nothing here picks a reference number or reads a clock: both are passed in.

``Reassembler`` is the receiving side: it collects parts from SubmitSm / DeliverSm in any order,
ignores duplicates, and returns the text when the last part arrives; ``expire(now)`` drops
messages that stayed incomplete longer than the timeout. A copy of a part that comes within the timeout
after its message completed (an SMSC re-sending a part whose response it lost) is recognised by its bytes
and dropped; a different part under the same key is a new message (senders reuse 8-bit references).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from protocols.errors import DecodeError, LocalProtocolError
from protocols.gsm.alphabet import Coding, ConcatScheme, decode_gsm7, decode_ucs2, encode_parts
from protocols.gsm.dcs import decode_dcs
from protocols.gsm.udh import Concat8, Concat16, concat_ie, decode_udh, encode_udh
from protocols.smpp.pdu import DeliverSm, SubmitSm
from protocols.smpp.tlv import Tag, Tlv, find_tlv, tlvs

__all__ = [
    "UDHI",
    "PartKey",
    "Reassembler",
    "Segment",
    "TlvSegment",
    "as_message_payload",
    "build_submits",
    "decode_short_message",
    "split_sar",
    "split_udh",
]

UDHI = 0x40
"""esm_class bit 6, "UDH indicator" (SMPP 3.4 5.2.12)."""
_MAX_PARTS = 255
_MAX_PAYLOAD = 0xFFFF


class Segment(NamedTuple):
    """One submit_sm's worth of a UDH-concatenated message."""

    esm_class: int
    data_coding: int
    short_message: bytes


class TlvSegment(NamedTuple):
    """One submit_sm's worth of a SAR or message_payload submission."""

    esm_class: int
    data_coding: int
    short_message: bytes
    optional_parameters: tuple[Tlv, ...]


def _reference(reference: int | None, bits: int) -> int:
    if reference is None:
        raise LocalProtocolError("a multipart message needs a reference number")
    if not isinstance(reference, int) or not 0 <= reference < 1 << bits:
        raise LocalProtocolError(f"reference must be 0..{(1 << bits) - 1}, got {reference!r}")
    return reference


def _parts(content: str | bytes, coding: Coding | None, concat: ConcatScheme) -> tuple[Coding, list[bytes]]:
    chosen, parts = encode_parts(content, coding, concat)
    if len(parts) > _MAX_PARTS:
        raise LocalProtocolError(f"message needs {len(parts)} parts, at most {_MAX_PARTS}")
    return chosen, parts


def split_udh(
    content: str | bytes,
    *,
    reference: int | None = None,
    concat: ConcatScheme = "8bit",
    coding: Coding | None = None,
    esm_class: int = 0,
) -> list[Segment]:
    """Split into parts with a concatenation UDH (IEI 0x00 for ``concat="8bit"``, 0x08 for
    "16bit"), numbered from 1. A message that fits one part is returned without a UDH.

    ``reference`` (0..255 or 0..65535) must be given for a multipart message; ``esm_class`` is
    OR-ed with UDHI. The coding is chosen by ``choose_coding`` unless given.
    """
    chosen, parts = _parts(content, coding, concat)
    if len(parts) == 1:
        return [Segment(esm_class, chosen.value, parts[0])]
    total = len(parts)
    out: list[Segment] = []
    for seq, body in enumerate(parts, start=1):
        ie = (
            Concat8(_reference(reference, 8), total, seq)
            if concat == "8bit"
            else Concat16(_reference(reference, 16), total, seq)
        )
        out.append(Segment(esm_class | UDHI, chosen.value, encode_udh((ie,)) + body))
    return out


def split_sar(
    content: str | bytes,
    *,
    reference: int | None = None,
    concat: ConcatScheme = "8bit",
    coding: Coding | None = None,
    esm_class: int = 0,
) -> list[TlvSegment]:
    """Split into parts carrying the SAR TLVs (sar_msg_ref_num 0..65535, sar_total_segments,
    sar_segment_seqnum). Each part is sized to fit one short message next to the UDH the SMSC
    will add (``concat``: the 6-octet 8-bit-reference header or the 7-octet 16-bit one). A
    message that fits one part gets no TLVs."""
    chosen, parts = _parts(content, coding, concat)
    if len(parts) == 1:
        return [TlvSegment(esm_class, chosen.value, parts[0], ())]
    ref = _reference(reference, 16)
    total = len(parts)
    return [
        TlvSegment(
            esm_class,
            chosen.value,
            body,
            tlvs(sar_msg_ref_num=ref, sar_total_segments=total, sar_segment_seqnum=seq),
        )
        for seq, body in enumerate(parts, start=1)
    ]


def as_message_payload(
    content: str | bytes, *, coding: Coding | None = None, esm_class: int = 0
) -> TlvSegment:
    """The whole message in one message_payload TLV (short_message empty); the SMSC splits it."""
    chosen, parts = encode_parts(content, coding, "8bit")
    payload = b"".join(parts)
    if len(payload) > _MAX_PAYLOAD:
        raise LocalProtocolError(f"message_payload of {len(payload)} octets exceeds 65535")
    return TlvSegment(esm_class, chosen.value, b"", tlvs(message_payload=payload))


Method = Literal["udh", "sar", "payload"]


def build_submits(
    content: str | bytes,
    source_addr: str,
    destination_addr: str,
    *,
    method: Method = "udh",
    reference: int | None = None,
    concat: ConcatScheme = "8bit",
    coding: Coding | None = None,
    **submit_fields: Any,
) -> list[SubmitSm]:
    """The submit_sm PDUs that carry ``content`` from ``source_addr`` to ``destination_addr``.

    ``method`` picks ``split_udh``, ``split_sar`` or ``as_message_payload``. Other SubmitSm
    fields pass through ``submit_fields``: ``esm_class`` is OR-ed with what the method needs,
    ``optional_parameters`` come before the SAR / message_payload TLVs, and ``data_coding``
    replaces the value the coding implies (e.g. 0xF6 for SIM data download). sequence_number is
    left to the session.
    """
    if "short_message" in submit_fields:
        raise LocalProtocolError("build_submits makes short_message itself")
    base_esm = submit_fields.pop("esm_class", 0)
    extra: tuple[Tlv, ...] = tuple(submit_fields.pop("optional_parameters", ()))
    data_coding = submit_fields.pop("data_coding", None)
    segments: Sequence[Segment | TlvSegment]
    if method == "udh":
        segments = split_udh(content, reference=reference, concat=concat, coding=coding, esm_class=base_esm)
    elif method == "sar":
        segments = split_sar(content, reference=reference, concat=concat, coding=coding, esm_class=base_esm)
    elif method == "payload":
        segments = [as_message_payload(content, coding=coding, esm_class=base_esm)]
    else:
        raise LocalProtocolError(f"method must be 'udh', 'sar' or 'payload', got {method!r}")
    out: list[SubmitSm] = []
    for seg in segments:
        params = extra + seg.optional_parameters if isinstance(seg, TlvSegment) else extra
        try:
            out.append(
                SubmitSm(
                    source_addr=source_addr,
                    destination_addr=destination_addr,
                    esm_class=seg.esm_class,
                    data_coding=seg.data_coding if data_coding is None else data_coding,
                    short_message=seg.short_message,
                    optional_parameters=params,
                    **submit_fields,
                )
            )
        except TypeError as exc:  # a field SubmitSm does not have
            raise LocalProtocolError(f"build_submits: {exc}") from None
    return out


# --- receiving side ------------------------------------------------------------------------------


def decode_short_message(data_coding: int, payload: bytes) -> str:
    """The text of an SMPP short_message / message_payload by data_coding (SMPP 3.4 5.2.19).

    0: GSM 7-bit septets one per octet; 1: IA5 (ASCII); 3: Latin-1; 6: ISO-8859-5; 7: ISO-8859-8;
    8: UCS-2. Values from 0x10 up are read as a GSM TP-DCS (TS 23.038 section 4). Binary data
    codings (2, 4, 8-bit DCS) and codings we do not support raise DecodeError.
    """
    if data_coding == 0:
        return decode_gsm7(payload)
    if data_coding == 8:
        return decode_ucs2(payload)
    codec = {1: "ascii", 3: "latin-1", 6: "iso8859_5", 7: "iso8859_8"}.get(data_coding)
    if codec is not None:
        try:
            return payload.decode(codec)
        except UnicodeDecodeError as exc:
            raise DecodeError(f"data_coding {data_coding}: {exc.reason} at octet {exc.start}") from None
    if not 0x10 <= data_coding <= 0xFF:
        raise DecodeError(f"data_coding {data_coding:#04x} is binary or not supported as text")
    scheme = decode_dcs(data_coding)
    if scheme.compressed or scheme.alphabet is Coding.EIGHT_BIT:
        raise DecodeError(f"data_coding {data_coding:#04x} is not uncompressed text")
    if scheme.alphabet is Coding.UCS2:
        return decode_ucs2(payload)
    return decode_gsm7(payload)


class PartKey(NamedTuple):
    """What ties the parts of one message together: the addresses, the concatenation scheme
    ("udh8", "udh16" or "sar"), its reference number and the number of parts."""

    source_addr: str
    destination_addr: str
    scheme: str
    reference: int
    total: int


@dataclass(slots=True)
class _Pending:
    parts: dict[int, tuple[int, bytes]]  # sequence -> (data_coding, payload)
    last_seen: float


@dataclass(frozen=True, slots=True)
class _Completed:
    parts: dict[int, tuple[int, bytes]]  # as _Pending.parts, all of them
    completed_at: float


class Reassembler:
    """Reassembles concatenated messages from SMPP PDUs (pure: ``now`` is passed in).

    ``add(pdu, now)`` understands a concatenation UDH (IEI 0x00 / 0x08 with esm_class UDHI), the
    SAR TLVs and message_payload, and returns the text once every part is in (at once for a
    single message), else None. Parts may come in any order; a repeated part is ignored, also when
    it comes less than ``timeout`` seconds after its message completed (same key, sequence and
    bytes). ``expire(now)`` drops messages with no new part for ``timeout`` seconds. At most
    ``max_pending`` incomplete messages are kept, and as many completed ones for spotting late
    copies; the least recently active is dropped first.

    Bytes that cannot be decoded raise DecodeError (the incomplete message is dropped).
    """

    def __init__(self, timeout: float, *, max_pending: int = 10_000) -> None:
        if timeout <= 0 or max_pending < 1:
            raise LocalProtocolError("timeout must be positive and max_pending at least 1")
        self.timeout = timeout
        self.max_pending = max_pending
        self._pending: dict[PartKey, _Pending] = {}  # in order of last activity
        self._completed: dict[PartKey, _Completed] = {}  # in order of completion

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, pdu: SubmitSm | DeliverSm, now: float) -> str | None:
        """Feed one submit_sm / deliver_sm; the whole text when it completes a message."""
        payload_tlv = find_tlv(pdu.optional_parameters, Tag.MESSAGE_PAYLOAD)
        body = pdu.short_message
        if payload_tlv is not None:
            if body:
                raise DecodeError("short_message and message_payload are both present")
            body = payload_tlv.value
        if pdu.esm_class & UDHI:
            ies, header_length = decode_udh(body)
            body = body[header_length:]
            concat = concat_ie(ies)
            if concat is not None:
                scheme = "udh8" if isinstance(concat, Concat8) else "udh16"
                key = PartKey(pdu.source_addr, pdu.destination_addr, scheme, concat.reference, concat.total)
                return self.add_part(key, concat.sequence, pdu.data_coding, body, now)
        sar = [find_tlv(pdu.optional_parameters, tag) for tag in _SAR_TAGS]
        if None not in sar:
            ref, total, seq = (int.from_bytes(t.value, "big") for t in sar if t is not None)
            if 1 <= seq <= total <= _MAX_PARTS:
                key = PartKey(pdu.source_addr, pdu.destination_addr, "sar", ref, total)
                return self.add_part(key, seq, pdu.data_coding, body, now)
        return decode_short_message(pdu.data_coding, body)

    def add_part(
        self, key: PartKey, sequence: int, data_coding: int, payload: bytes, now: float
    ) -> str | None:
        """Feed one part of the message ``key`` (the lower layer of ``add``)."""
        if not 1 <= sequence <= key.total <= _MAX_PARTS:
            raise LocalProtocolError(f"part {sequence} of {key.total} is not a valid part number")
        part = (data_coding, payload)
        self._forget_completed(now)
        done = self._completed.get(key)
        if done is not None:
            if done.parts.get(sequence) == part:
                return None  # a late copy of a part of a message already delivered
            del self._completed[key]  # something else: the key's reference is in use again
        entry = self._pending.pop(key, None)
        if entry is None:
            entry = _Pending({}, now)
            while len(self._pending) >= self.max_pending:
                del self._pending[next(iter(self._pending))]
        entry.parts.setdefault(sequence, part)
        entry.last_seen = now
        if len(entry.parts) < key.total:
            self._pending[key] = entry  # re-inserted last: the dict stays in activity order
            return None
        while len(self._completed) >= self.max_pending:
            del self._completed[next(iter(self._completed))]
        self._completed[key] = _Completed(entry.parts, now)
        ordered = [entry.parts[i] for i in range(1, key.total + 1)]
        codings = {dc for dc, _ in ordered}
        if len(codings) == 1:
            # joined before decoding: a character cut by a careless sender is mended
            return decode_short_message(ordered[0][0], b"".join(p for _, p in ordered))
        return "".join(decode_short_message(dc, p) for dc, p in ordered)

    def expire(self, now: float) -> list[PartKey]:
        """Drop the messages whose last part came ``timeout`` seconds or more before ``now`` (and forget
        the messages completed that long ago)."""
        self._forget_completed(now)
        dropped = [key for key, entry in self._pending.items() if now - entry.last_seen >= self.timeout]
        for key in dropped:
            del self._pending[key]
        return dropped

    def _forget_completed(self, now: float) -> None:
        completed = self._completed
        while completed:
            key = next(iter(completed))
            if now - completed[key].completed_at < self.timeout:
                break  # the rest completed later
            del completed[key]

    def next_deadline(self) -> float | None:
        """When ``expire`` will next drop something, or None with nothing pending."""
        if not self._pending:
            return None
        return min(entry.last_seen for entry in self._pending.values()) + self.timeout


_SAR_TAGS = (Tag.SAR_MSG_REF_NUM, Tag.SAR_TOTAL_SEGMENTS, Tag.SAR_SEGMENT_SEQNUM)
