"""SMPP 3.4 (sans-I/O): PDU codec, optional parameters, session engine, delivery receipts."""

from protocols.smpp.constants import (
    CommandId,
    CommandStatus,
    DataCoding,
    EsmClass,
    MessageState,
    Npi,
    RegisteredDelivery,
    Ton,
)
from protocols.smpp.pdu import *  # noqa: F403
from protocols.smpp.pdu import __all__ as _pdu_all
from protocols.smpp.tlv import Tag, Tlv, TlvKind, decode_tlvs, encode_tlvs, find_tlv, tlvs

__all__ = [
    "CommandId",
    "CommandStatus",
    "DataCoding",
    "EsmClass",
    "MessageState",
    "Npi",
    "RegisteredDelivery",
    "Tag",
    "Tlv",
    "TlvKind",
    "Ton",
    "decode_tlvs",
    "encode_tlvs",
    "find_tlv",
    "tlvs",
    *_pdu_all,
]
