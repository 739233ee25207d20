"""SMPP 3.4 registries: command ids (section 5.1.2.1), command status codes (5.1.3), TON/NPI (5.2.5,
5.2.6), esm_class (5.2.12), registered_delivery (5.2.17), data_coding (5.2.19), message_state (5.2.28)
and the optional-parameter tags (5.3.2).

Registries are ``IntEnum``s that keep unknown raw values: ``CommandStatus(0x400)`` is a pseudo-member
named ``UNKNOWN_0x00000400`` instead of an error, so a vendor status survives a round trip.
"""

from __future__ import annotations

from enum import IntFlag

from protocols.registry import WideKeepUnknownIntEnum

__all__ = [
    "CommandId",
    "CommandStatus",
    "DataCoding",
    "EsmClass",
    "MessageState",
    "Npi",
    "RegisteredDelivery",
    "Ton",
]


# SMPP fields are up to four octets wide: unknown values print as UNKNOWN_0x00000400
_KeepUnknown = WideKeepUnknownIntEnum


class CommandId(_KeepUnknown):
    """SMPP 3.4 section 5.1.2.1. Responses have bit 31 set."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


class CommandStatus(_KeepUnknown):
    """SMPP 3.4 section 5.1.3 (Table 5-2)."""

    ESME_ROK = 0x00000000
    ESME_RINVMSGLEN = 0x00000001
    ESME_RINVCMDLEN = 0x00000002
    ESME_RINVCMDID = 0x00000003
    ESME_RINVBNDSTS = 0x00000004
    ESME_RALYBND = 0x00000005
    ESME_RINVPRTFLG = 0x00000006
    ESME_RINVREGDLVFLG = 0x00000007
    ESME_RSYSERR = 0x00000008
    ESME_RINVSRCADR = 0x0000000A
    ESME_RINVDSTADR = 0x0000000B
    ESME_RINVMSGID = 0x0000000C
    ESME_RBINDFAIL = 0x0000000D
    ESME_RINVPASWD = 0x0000000E
    ESME_RINVSYSID = 0x0000000F
    ESME_RCANCELFAIL = 0x00000011
    ESME_RREPLACEFAIL = 0x00000013
    ESME_RMSGQFUL = 0x00000014
    ESME_RINVSERTYP = 0x00000015
    ESME_RINVNUMDESTS = 0x00000033
    ESME_RINVDLNAME = 0x00000034
    ESME_RINVDESTFLAG = 0x00000040
    ESME_RINVSUBREP = 0x00000042
    ESME_RINVESMCLASS = 0x00000043
    ESME_RCNTSUBDL = 0x00000044
    ESME_RSUBMITFAIL = 0x00000045
    ESME_RINVSRCTON = 0x00000048
    ESME_RINVSRCNPI = 0x00000049
    ESME_RINVDSTTON = 0x00000050
    ESME_RINVDSTNPI = 0x00000051
    ESME_RINVSYSTYP = 0x00000053
    ESME_RINVREPFLAG = 0x00000054
    ESME_RINVNUMMSGS = 0x00000055
    ESME_RTHROTTLED = 0x00000058
    ESME_RINVSCHED = 0x00000061
    ESME_RINVEXPIRY = 0x00000062
    ESME_RINVDFTMSGID = 0x00000063
    ESME_RX_T_APPN = 0x00000064
    ESME_RX_P_APPN = 0x00000065
    ESME_RX_R_APPN = 0x00000066
    ESME_RQUERYFAIL = 0x00000067
    ESME_RINVOPTPARSTREAM = 0x000000C0
    ESME_ROPTPARNOTALLWD = 0x000000C1
    ESME_RINVPARLEN = 0x000000C2
    ESME_RMISSINGOPTPARAM = 0x000000C3
    ESME_RINVOPTPARAMVAL = 0x000000C4
    ESME_RDELIVERYFAILURE = 0x000000FE
    ESME_RUNKNOWNERR = 0x000000FF


class Ton(_KeepUnknown):
    """Type of number, SMPP 3.4 section 5.2.5."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER_NUMBER = 4
    ALPHANUMERIC = 5
    ABBREVIATED = 6


class Npi(_KeepUnknown):
    """Numbering plan indicator, SMPP 3.4 section 5.2.6."""

    UNKNOWN = 0
    ISDN = 1
    DATA = 3
    TELEX = 4
    LAND_MOBILE = 6
    NATIONAL = 8
    PRIVATE = 9
    ERMES = 10
    INTERNET = 14
    WAP_CLIENT_ID = 18


class EsmClass(IntFlag):
    """esm_class bits, SMPP 3.4 section 5.2.12."""

    DEFAULT = 0x00
    DATAGRAM_MODE = 0x01
    FORWARD_MODE = 0x02
    STORE_AND_FORWARD_MODE = 0x03
    # message type (bits 5-2); for deliver_sm 0x04 marks an SMSC delivery receipt
    SMSC_DELIVERY_RECEIPT = 0x04
    SME_DELIVERY_ACK = 0x08
    SME_MANUAL_ACK = 0x10
    CONVERSATION_ABORT = 0x18
    INTERMEDIATE_NOTIFICATION = 0x20
    # GSM network specific features (bits 7-6)
    UDHI = 0x40
    REPLY_PATH = 0x80

    MESSAGE_TYPE_MASK = 0x3C


class RegisteredDelivery(IntFlag):
    """registered_delivery bits, SMPP 3.4 section 5.2.17."""

    NONE = 0x00
    SMSC_RECEIPT_ON_FINAL = 0x01  # success or failure
    SMSC_RECEIPT_ON_FAILURE = 0x02
    SMSC_RECEIPT_MASK = 0x03
    SME_DELIVERY_ACK = 0x04
    SME_MANUAL_ACK = 0x08
    INTERMEDIATE_NOTIFICATION = 0x10


class DataCoding(_KeepUnknown):
    """data_coding, SMPP 3.4 section 5.2.19 (values not listed keep their raw value)."""

    SMSC_DEFAULT = 0x00
    IA5 = 0x01
    OCTET_UNSPECIFIED = 0x02
    LATIN_1 = 0x03
    OCTET_UNSPECIFIED_2 = 0x04
    JIS = 0x05
    CYRILLIC = 0x06
    LATIN_HEBREW = 0x07
    UCS2 = 0x08
    PICTOGRAM = 0x09
    ISO_2022_JP = 0x0A
    EXTENDED_KANJI_JIS = 0x0D
    KS_C_5601 = 0x0E


class MessageState(_KeepUnknown):
    """message_state, SMPP 3.4 section 5.2.28 (also the ``stat`` of a delivery receipt)."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8

    @property
    def is_final(self) -> bool:
        # listed explicitly so unregistered values (e.g. SMPP 5.0 SCHEDULED = 0) count as not final
        return self in _FINAL_STATES


_FINAL_STATES = frozenset(
    (
        MessageState.DELIVERED,
        MessageState.EXPIRED,
        MessageState.DELETED,
        MessageState.UNDELIVERABLE,
        MessageState.ACCEPTED,
        MessageState.REJECTED,
    )
)
