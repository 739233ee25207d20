"""SMPP 3.4 delivery receipts: Appendix B text, the receipt TLVs, and message id matching (sans-I/O).

An SMSC reports the fate of a message submitted with ``registered_delivery`` in a deliver_sm (or
data_sm) whose esm_class message type (section 5.2.12, bits 5-2) is 0x04 "SMSC delivery receipt" or
0x20 "intermediate delivery notification". What it knows goes in two places:

- the text of Appendix B in ``short_message`` (or ``message_payload`` when that is empty)::

      id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E Text: ...

  Appendix B calls the format vendor specific, so :func:`parse_receipt_text` is tolerant: keys in any
  order and any case, "submitdate" without the space, missing optional fields, seconds in the dates;
- the optional parameters receipted_message_id (section 5.3.2.12), message_state (5.3.2.35) and
  network_error_code (5.3.2.31), which :func:`receipt_from_pdu` prefers when present.

SMSCs often write a message id in hex in submit_sm_resp and in decimal in the receipt (or the other
way round, or with leading zeros): :func:`message_id_keys` and :func:`message_ids_equal` match them.

Nothing here reads a clock: dates stay the raw digits, and the ``*_datetime`` helpers only parse them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo

from protocols.errors import DecodeError, LocalProtocolError
from protocols.smpp.constants import DataCoding, EsmClass, MessageState
from protocols.smpp.pdu import DataSm, DeliverSm
from protocols.smpp.tlv import Tag, Tlv, find_tlv

__all__ = [
    "DeliveryReceipt",
    "build_receipt_pdu",
    "build_receipt_text",
    "message_id_keys",
    "message_ids_equal",
    "normalize_message_id",
    "parse_receipt_text",
    "receipt_from_pdu",
    "stat_word",
]

# esm_class message types that carry a receipt (section 5.2.12); 0x08/0x10 are SME acknowledgements,
# whose short_message is user data, not Appendix B text
_RECEIPT_TYPES = (int(EsmClass.SMSC_DELIVERY_RECEIPT), int(EsmClass.INTERMEDIATE_NOTIFICATION))
_TEXT_LIMIT = 20  # Appendix B: "the first 20 characters of the short message"
_GSM_NETWORK = 3  # network_error_code network type, section 5.3.2.31
_MAX_MESSAGE_ID = 64  # message_id is a C-Octet String of at most 65 octets, NUL included

# Appendix B stat words, plus the spelled-out names some SMSCs send instead
_STATE_BY_WORD: dict[str, MessageState] = {
    "ENROUTE": MessageState.ENROUTE,
    "DELIVRD": MessageState.DELIVERED,
    "DELIVERED": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED,
    "DELETED": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "UNDELIVERABLE": MessageState.UNDELIVERABLE,
    "ACCEPTD": MessageState.ACCEPTED,
    "ACCEPTED": MessageState.ACCEPTED,
    "UNKNOWN": MessageState.UNKNOWN,
    "REJECTD": MessageState.REJECTED,
    "REJECTED": MessageState.REJECTED,
}
_WORD_BY_STATE: dict[int, str] = {
    MessageState.ENROUTE: "ENROUTE",
    MessageState.DELIVERED: "DELIVRD",
    MessageState.EXPIRED: "EXPIRED",
    MessageState.DELETED: "DELETED",
    MessageState.UNDELIVERABLE: "UNDELIV",
    MessageState.ACCEPTED: "ACCEPTD",
    MessageState.UNKNOWN: "UNKNOWN",
    MessageState.REJECTED: "REJECTD",
}

# A key starts the text or follows whitespace, so "id:" inside a value such as "xid:1" is no key.
# ASCII mode: keys, their case and the spaces around them are ASCII in every receipt seen
_KEY = re.compile(
    r"(?<!\S)(id|sub|dlvrd|submit(?:\s*|_)date|done(?:\s*|_)date|stat|err|text)\s*:", re.ASCII | re.IGNORECASE
)
_HEX_DIGITS = frozenset("0123456789abcdef")
_ID_STRIP = "\x00 \t\r\n\f\v"


def stat_word(state: int) -> str:
    """The Appendix B stat word of a message_state (``DELIVERED`` -> ``"DELIVRD"``); else "UNKNOWN"."""
    return _WORD_BY_STATE.get(state, "UNKNOWN")


def _small_int(value: str, max_digits: int) -> int | None:
    # ASCII digits only: str.isdigit() alone admits "²" and other digits int() would choke on
    if 0 < len(value) <= max_digits and value.isascii() and value.isdigit():
        return int(value)
    return None


def _state_of_stat(stat: str) -> MessageState:
    word = stat.strip().upper()
    state = _STATE_BY_WORD.get(word)
    if state is not None:
        return state
    number = _small_int(word, 3)  # a few SMSCs write the message_state number instead of the word
    if number is not None:
        return MessageState(number)
    return MessageState.UNKNOWN


def _parse_date(raw: str, tz: tzinfo) -> datetime | None:
    if len(raw) not in (10, 12) or _small_int(raw, 12) is None:
        return None
    yy, mo, dd, hh, mi = (int(raw[i : i + 2]) for i in range(0, 10, 2))
    ss = int(raw[10:12]) if len(raw) == 12 else 0
    try:
        # two-digit years: every receipt postdates SMPP 3.4 (1999), so YY means 20YY
        return datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=tz)
    except ValueError:  # month 13, "000000000000" and the like
        return None


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """One SMSC delivery receipt, SMPP 3.4 Appendix B, with the fields as the text names them.

    ``sub`` and ``dlvrd`` are None when the SMSC left them out (or wrote no number). The dates are
    the raw ``YYMMDDhhmm`` or ``YYMMDDhhmmss`` digits, "" when absent. ``stat`` is the word as sent
    (``DELIVRD``, ``UNDELIV``...); :attr:`message_state` maps it. ``err`` is the raw error code.
    """

    id: str
    sub: int | None = None
    dlvrd: int | None = None
    submit_date: str = ""
    done_date: str = ""
    stat: str = "UNKNOWN"
    err: str = "000"
    text: str = ""

    @property
    def message_state(self) -> MessageState:
        """The stat word as a message_state (section 5.2.28); an unrecognised word is UNKNOWN."""
        return _state_of_stat(self.stat)

    def submit_datetime(self, tz: tzinfo = UTC) -> datetime | None:
        """``submit_date`` as a datetime in ``tz``, or None if it is absent or not a date.

        Appendix B dates carry no zone: they are the SMSC's clock, so pass the SMSC's zone if it is
        not UTC.
        """
        return _parse_date(self.submit_date, tz)

    def done_datetime(self, tz: tzinfo = UTC) -> datetime | None:
        """``done_date`` as a datetime in ``tz``, or None if it is absent or not a date."""
        return _parse_date(self.done_date, tz)


def _scan(text: str) -> dict[str, str]:
    """The Appendix B fields found in ``text``, keyed "id", "sub", ..., "submitdate", "text"."""
    fields: dict[str, str] = {}
    matches = list(_KEY.finditer(text))
    for i, match in enumerate(matches):
        key = "".join(match.group(1).lower().split()).replace("_", "")
        if key == "text":
            # text is last and holds the user's words, which may look like keys: it takes the rest.
            # One space after "text:" is a separator (Appendix B lays it out as "Text: ...").
            value = text[match.end() :]
            fields.setdefault("text", value.removeprefix(" "))
            break
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        # every other value is one token; anything after it (a vendor's extra "key:value") is dropped
        tokens = text[match.end() : end].split(None, 1)
        fields.setdefault(key, tokens[0] if tokens else "")
    return fields


def _preview(text: str) -> str:
    return repr(text[:60]) + ("..." if len(text) > 60 else "")


def parse_receipt_text(text: str | bytes) -> DeliveryReceipt:
    """Parse the Appendix B text of a delivery receipt; bytes are read as latin-1 (lossless).

    Raises DecodeError when the text has no ``id:`` or no ``stat:`` value; any other field may be
    missing. Trailing NULs (some SMSCs terminate short_message) are ignored.
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("latin-1")
    text = text.rstrip("\x00")
    fields = _scan(text)
    if not fields.get("id"):
        raise DecodeError(f"delivery receipt has no id: {_preview(text)}")
    if not fields.get("stat"):
        raise DecodeError(f"delivery receipt has no stat: {_preview(text)}")
    return _receipt_from_fields(fields, fields["id"], fields["stat"], fields.get("err", ""))


def _receipt_from_fields(fields: dict[str, str], rid: str, stat: str, err: str) -> DeliveryReceipt:
    return DeliveryReceipt(
        id=rid,
        sub=_small_int(fields.get("sub", ""), 9),
        dlvrd=_small_int(fields.get("dlvrd", ""), 9),
        submit_date=fields.get("submitdate", ""),
        done_date=fields.get("donedate", ""),
        stat=stat,
        err=err,
        text=fields.get("text", ""),
    )


def _check_token(name: str, value: str, *, required: bool) -> None:
    if required and not value:
        raise LocalProtocolError(f"delivery receipt {name} is empty")
    if any(c.isspace() for c in value):
        raise LocalProtocolError(f"delivery receipt {name} {value!r} holds whitespace")


def build_receipt_text(receipt: DeliveryReceipt) -> str:
    """The canonical Appendix B text of ``receipt``; ``text`` is cut to its first 20 characters.

    ``sub`` and ``dlvrd`` are written as three digits, or left out when None. Raises
    LocalProtocolError when a field cannot be read back: an empty id or stat, whitespace in id,
    stat or err, a date that is neither empty nor 10 or 12 digits, sub/dlvrd outside 0..999.
    """
    _check_token("id", receipt.id, required=True)
    _check_token("stat", receipt.stat, required=True)
    _check_token("err", receipt.err, required=False)
    parts = [f"id:{receipt.id}"]
    for name, count in (("sub", receipt.sub), ("dlvrd", receipt.dlvrd)):
        if count is not None:
            if not 0 <= count <= 999:
                raise LocalProtocolError(f"delivery receipt {name} {count} is not 0..999")
            parts.append(f"{name}:{count:03d}")
    for name, date in (("submit date", receipt.submit_date), ("done date", receipt.done_date)):
        if date and (len(date) not in (10, 12) or _small_int(date, 12) is None):
            raise LocalProtocolError(f"delivery receipt {name} {date!r} is not YYMMDDhhmm[ss]")
        parts.append(f"{name}:{date}")
    parts.append(f"stat:{receipt.stat}")
    parts.append(f"err:{receipt.err}")
    text = receipt.text[:_TEXT_LIMIT]
    # the parser drops one space after "Text:", so a text that starts with a space needs one more
    parts.append(f"Text: {text}" if text.startswith(" ") else f"Text:{text}")
    return " ".join(parts)


def _decode_short_message(raw: bytes, data_coding: int) -> str:
    if data_coding == DataCoding.UCS2:
        try:
            return raw.decode("utf-16-be")
        except UnicodeDecodeError:  # odd length or a lone surrogate: read it as octets instead
            pass
    # the receipt alphabet (letters, digits, ':', ' ') is the same in ASCII, latin-1 and unpacked GSM 7-bit
    return raw.decode("latin-1")


def receipt_from_pdu(pdu: DeliverSm | DataSm) -> DeliveryReceipt | None:
    """The delivery receipt a deliver_sm / data_sm carries, or None if it is not a receipt.

    A receipt is esm_class message type 0x04 (SMSC delivery receipt) or 0x20 (intermediate
    notification). The TLVs are preferred: receipted_message_id gives ``id``, message_state gives
    ``stat`` and network_error_code gives ``err`` (each kept as written in the text when the text
    agrees). Dates, counts and text come from the Appendix B text in short_message, or in
    message_payload when short_message is empty. Raises DecodeError when no id or no state can be
    found in either.
    """
    if (int(pdu.esm_class) & EsmClass.MESSAGE_TYPE_MASK) not in _RECEIPT_TYPES:
        return None
    params = pdu.optional_parameters
    raw = pdu.short_message if isinstance(pdu, DeliverSm) else b""
    if not raw:
        payload = find_tlv(params, Tag.MESSAGE_PAYLOAD)
        raw = payload.value if payload is not None else b""
    text = _decode_short_message(raw, pdu.data_coding).rstrip("\x00")
    fields = _scan(text)

    id_tlv = find_tlv(params, Tag.RECEIPTED_MESSAGE_ID)
    # the C-Octet String's NUL ends the id; some SMSCs leave it out
    rid = id_tlv.value.split(b"\x00", 1)[0].decode("latin-1") if id_tlv is not None else ""
    rid = rid or fields.get("id", "")
    if not rid:
        raise DecodeError(f"delivery receipt has neither receipted_message_id nor id: {_preview(text)}")

    stat = fields.get("stat", "")
    state_tlv = find_tlv(params, Tag.MESSAGE_STATE)
    if state_tlv is not None and state_tlv.value:
        state = int.from_bytes(state_tlv.value, "big")
        if not stat or _state_of_stat(stat) != state:
            # a state without an Appendix B word keeps its number, which message_state reads back
            stat = _WORD_BY_STATE.get(state, str(state))
    if not stat:
        raise DecodeError(f"delivery receipt has neither message_state nor stat: {_preview(text)}")

    err = fields.get("err", "")
    error_tlv = find_tlv(params, Tag.NETWORK_ERROR_CODE)
    if error_tlv is not None and len(error_tlv.value) == 3:
        code = int.from_bytes(error_tlv.value[1:], "big")  # octet 0 is the network type
        if _small_int(err, 5) != code:
            err = f"{code:03d}"
    return _receipt_from_fields(fields, rid, stat, err)


def build_receipt_pdu(
    receipt: DeliveryReceipt,
    *,
    source_addr: str = "",
    source_addr_ton: int = 0,
    source_addr_npi: int = 0,
    destination_addr: str = "",
    dest_addr_ton: int = 0,
    dest_addr_npi: int = 0,
    sequence_number: int = 0,
    esm_class: int = EsmClass.SMSC_DELIVERY_RECEIPT,
    with_tlvs: bool = True,
) -> DeliverSm:
    """A deliver_sm carrying ``receipt``: Appendix B text in short_message (ASCII, data_coding 0).

    The receipt goes back to the submitter: ``source_addr`` is normally the original destination
    and ``destination_addr`` the original source. With ``with_tlvs`` it also carries
    receipted_message_id, message_state and, when ``err`` is a non-zero number up to 65535,
    network_error_code (network type GSM). Non-ASCII characters of ``text`` become "?"; any other
    field that is not ASCII raises LocalProtocolError.
    """
    safe = replace(receipt, text=receipt.text[:_TEXT_LIMIT].encode("ascii", "replace").decode("ascii"))
    try:
        short_message = build_receipt_text(safe).encode("ascii")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"delivery receipt fields must be ASCII: {receipt!r}") from None
    params: tuple[Tlv, ...] = ()
    if with_tlvs:
        items = [
            Tlv.make(Tag.RECEIPTED_MESSAGE_ID, receipt.id),
            Tlv.make(Tag.MESSAGE_STATE, int(receipt.message_state)),
        ]
        code = _small_int(receipt.err, 5)
        if code and code <= 0xFFFF:
            items.append(Tlv(Tag.NETWORK_ERROR_CODE, bytes((_GSM_NETWORK,)) + code.to_bytes(2, "big")))
        params = tuple(items)
    return DeliverSm(
        sequence_number=sequence_number,
        source_addr_ton=source_addr_ton,
        source_addr_npi=source_addr_npi,
        source_addr=source_addr,
        dest_addr_ton=dest_addr_ton,
        dest_addr_npi=dest_addr_npi,
        destination_addr=destination_addr,
        esm_class=esm_class,
        data_coding=DataCoding.SMSC_DEFAULT,
        short_message=short_message,
        optional_parameters=params,
    )


# --- message ids ------------------------------------------------------------------------------------
#
# SMPP makes message_id an opaque C-Octet String, but SMSCs (and gateways configured per SMSC, see
# Kannel's msg-id-type) write the same id in hex in submit_sm_resp and in decimal in the receipt, or
# the other way round, with leading zeros, in either case. Two ids are taken to be the same message
# when their normalized strings are equal or when any reading of one (decimal, hex) equals any reading
# of the other.
#
# The ambiguity: a string of decimal digits is also valid hex, and nothing says which was meant. "10"
# may be ten or sixteen, so "16" (decimal) and "10" (hex) match. Both readings are kept because
# dropping either loses real pairs; the cost is that two outstanding ids can share a key. The keys of
# an id are therefore ordered by preference (exact string, decimal reading, hex reading): a gateway
# that indexes every key with a list of candidates and tries the receipt's keys in order finds the
# exact match first and sees a collision instead of silently picking the wrong message.
#
# Lower-casing makes "abc" equal "ABC": right for hex ids, a (rare) false match for an SMSC whose
# opaque ids are case sensitive.


def normalize_message_id(mid: str) -> str:
    """``mid`` trimmed of whitespace and NULs, lower-cased, without leading zeros ("000" -> "0")."""
    trimmed = mid.strip(_ID_STRIP).lower()
    return trimmed.lstrip("0") or trimmed[:1]


def message_id_keys(mid: str) -> tuple[int | str, ...]:
    """Every key ``mid`` may be looked up by: its normalized string, then its decimal and hex values.

    Index outstanding submits under each key of their submit_sm_resp id and look a receipt up by each
    key of its id, in order, to find it whichever base either side wrote. Two ids share a key exactly
    when :func:`message_ids_equal` holds. An empty id has no keys; an id longer than an SMPP
    message_id (64 octets) is kept only as a string.
    """
    norm = normalize_message_id(mid)
    if not norm:
        return ()
    keys: list[int | str] = [norm]
    if len(norm) <= _MAX_MESSAGE_ID:
        decimal = _small_int(norm, _MAX_MESSAGE_ID)
        if decimal is not None:
            keys.append(decimal)
        if all(c in _HEX_DIGITS for c in norm):
            hexadecimal = int(norm, 16)
            if hexadecimal != decimal:
                keys.append(hexadecimal)
    return tuple(keys)


def message_ids_equal(a: str, b: str) -> bool:
    """Whether two message ids name the same message, in whatever base and case each was written."""
    return not set(message_id_keys(a)).isdisjoint(message_id_keys(b))
