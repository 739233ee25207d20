"""Field checks a receiver applies before accepting a message, with the status SMPP 3.4 answers them
with (section 5.1.3 command_status, field ranges of sections 5.2.5-5.2.19, time format of 7.1.1).

``check_message(pdu)`` returns ``(command_status, reason)`` for the first invalid field, or None.
"""

from __future__ import annotations

from protocols.smpp.constants import CommandStatus as S
from protocols.smpp.pdu import DataSm, DeliverSm, Pdu, SubmitMulti, SubmitSm

__all__ = ["check_message", "check_time"]

_TONS = frozenset(range(7))  # 5.2.5
_NPIS = frozenset((0, 1, 3, 4, 6, 8, 9, 10, 14, 18))  # 5.2.6
# esm_class message-type bits (5.2.12) a sender may use on each operation
_SUBMIT_TYPES = frozenset((0x00, 0x08, 0x10))
_DELIVER_TYPES = frozenset((0x00, 0x04, 0x08, 0x10, 0x18, 0x20))


def check_time(value: str) -> bool:
    """SMPP time format, section 7.1.1: empty, or ``YYMMDDhhmmsstnnp`` with p one of + - R."""
    if not value:
        return True
    digits = value[:15]
    if len(value) != 16 or not (digits.isascii() and digits.isdigit()):  # latin-1 '\xb2' isdigit()
        return False
    p = value[15]
    if p == "R":
        return True
    if p not in "+-":
        return False
    # absolute time: month 01-12, day 01-31, hour < 24, minute and second < 60, tenths, quarter hours <= 48
    month, day = int(value[2:4]), int(value[4:6])
    hour, minute, second = int(value[6:8]), int(value[8:10]), int(value[10:12])
    return (
        1 <= month <= 12
        and 1 <= day <= 31
        and hour < 24
        and minute < 60
        and second < 60
        and int(value[13:15]) <= 48
    )


def _check_addr(ton: int, npi: int, src: bool) -> tuple[int, str] | None:
    if ton not in _TONS:
        return (
            S.ESME_RINVSRCTON if src else S.ESME_RINVDSTTON
        ), f"{'source' if src else 'dest'}_addr_ton {ton}"
    if npi not in _NPIS:
        return (
            S.ESME_RINVSRCNPI if src else S.ESME_RINVDSTNPI
        ), f"{'source' if src else 'dest'}_addr_npi {npi}"
    return None


def _check_registered_delivery(value: int) -> tuple[int, str] | None:
    # bits 7-5 are reserved, and SMSC receipt value 3 is reserved (5.2.17)
    if value & 0xE0 or value & 0x03 == 0x03:
        return S.ESME_RINVREGDLVFLG, f"registered_delivery {value:#04x} uses reserved bits"
    return None


def check_message(pdu: Pdu) -> tuple[int, str] | None:
    """The first invalid field of a submit_sm, deliver_sm, data_sm or submit_multi, or None."""
    if (
        type(pdu) is SubmitSm
        and pdu.source_addr_ton in _TONS
        and pdu.dest_addr_ton in _TONS
        and pdu.source_addr_npi in _NPIS
        and pdu.dest_addr_npi in _NPIS
        and pdu.destination_addr
        and not pdu.esm_class & 0x3C
        and not pdu.schedule_delivery_time
        and not pdu.validity_period
        and pdu.priority_flag <= 3
        and pdu.replace_if_present_flag <= 1
        and not pdu.registered_delivery & 0xE0
        and pdu.registered_delivery & 0x03 != 0x03
    ):
        return None  # the common case, checked in one expression
    if isinstance(pdu, SubmitSm | DeliverSm):
        bad = _check_addr(pdu.source_addr_ton, pdu.source_addr_npi, True) or _check_addr(
            pdu.dest_addr_ton, pdu.dest_addr_npi, False
        )
        if bad:
            return bad
        if not pdu.destination_addr:
            return S.ESME_RINVDSTADR, "destination_addr is empty"
        types = _SUBMIT_TYPES if isinstance(pdu, SubmitSm) else _DELIVER_TYPES
        if pdu.esm_class & 0x3C not in types:
            return S.ESME_RINVESMCLASS, f"esm_class {pdu.esm_class:#04x} has a message type not allowed here"
        if pdu.priority_flag > 3:
            return S.ESME_RINVPRTFLG, f"priority_flag {pdu.priority_flag}"
        if pdu.replace_if_present_flag > 1:
            return S.ESME_RINVREPFLAG, f"replace_if_present_flag {pdu.replace_if_present_flag}"
        if not check_time(pdu.schedule_delivery_time):
            return S.ESME_RINVSCHED, f"schedule_delivery_time {pdu.schedule_delivery_time!r}"
        if not check_time(pdu.validity_period):
            return S.ESME_RINVEXPIRY, f"validity_period {pdu.validity_period!r}"
        return _check_registered_delivery(pdu.registered_delivery)
    if isinstance(pdu, DataSm):
        bad = _check_addr(pdu.source_addr_ton, pdu.source_addr_npi, True) or _check_addr(
            pdu.dest_addr_ton, pdu.dest_addr_npi, False
        )
        if bad:
            return bad
        if not pdu.destination_addr:
            return S.ESME_RINVDSTADR, "destination_addr is empty"
        return _check_registered_delivery(pdu.registered_delivery)
    if isinstance(pdu, SubmitMulti):
        bad = _check_addr(pdu.source_addr_ton, pdu.source_addr_npi, True)
        if bad:
            return bad
        if pdu.esm_class & 0x3C not in _SUBMIT_TYPES:
            return S.ESME_RINVESMCLASS, f"esm_class {pdu.esm_class:#04x} has a message type not allowed here"
        if pdu.priority_flag > 3:
            return S.ESME_RINVPRTFLG, f"priority_flag {pdu.priority_flag}"
        if pdu.replace_if_present_flag > 1:
            return S.ESME_RINVREPFLAG, f"replace_if_present_flag {pdu.replace_if_present_flag}"
        if not check_time(pdu.schedule_delivery_time):
            return S.ESME_RINVSCHED, f"schedule_delivery_time {pdu.schedule_delivery_time!r}"
        if not check_time(pdu.validity_period):
            return S.ESME_RINVEXPIRY, f"validity_period {pdu.validity_period!r}"
        return _check_registered_delivery(pdu.registered_delivery)
    return None
