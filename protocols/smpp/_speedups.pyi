"""Types of the optional C accelerator ``protocols.smpp._speedups`` (source: ``_speedups.c``).

Both functions return None when their input is not the plain valid case; protocols/smpp/pdu.py then
runs its pure-Python codec, which is the reference and raises the exact error.
"""

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

_T = TypeVar("_T")

def decode_sm(
    pdu: bytes,
    tlv_kinds: Mapping[int, tuple[object, int, int]],
    make_tlv: Callable[[int, bytes], _T],
    /,
) -> tuple[Any, ...] | None:
    """The 18 body values of a whole submit_sm / deliver_sm PDU in field order (the last one the
    tuple of ``make_tlv(tag, value)``), or None."""

def encode_sm(
    service_type: object,
    source_addr_ton: object,
    source_addr_npi: object,
    source_addr: object,
    dest_addr_ton: object,
    dest_addr_npi: object,
    destination_addr: object,
    esm_class: object,
    protocol_id: object,
    priority_flag: object,
    schedule_delivery_time: object,
    validity_period: object,
    registered_delivery: object,
    replace_if_present_flag: object,
    data_coding: object,
    sm_default_msg_id: object,
    short_message: object,
    optional_parameters: object,
    /,
) -> bytes | None:
    """The body of a submit_sm / deliver_sm from its 18 field values in field order, or None."""
