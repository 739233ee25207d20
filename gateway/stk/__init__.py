"""SIM toolkit (DSTK) push over SMS-PP: key store, offer dialogs, the push service and its events.

ETSI TS 102 223 (the proactive commands of the dialog), TS 102 225 / 3GPP TS 31.115 (the secured
packets), 3GPP TS 23.040 / SMPP 3.4 (the SMS-PP carrying them); PROTOCOLS.md sections 1.5 to 1.7.
"""

from gateway.stk.events import (
    StkAnswerInvalid,
    StkAnswerReceived,
    StkDelivered,
    StkDeliveryFailed,
    StkEvent,
    StkProofOfReceipt,
    StkPushFailed,
    StkRejectedBySim,
)
from gateway.stk.keystore import KeyStore, SecretKey, SimCard
from gateway.stk.offer import DialogStyle, PackageOption, StkOffer, build_offer_command
from gateway.stk.service import (
    OfferTooLarge,
    PushResult,
    StkEventStream,
    StkPushError,
    StkPushService,
    UnknownSubscriber,
)

__all__ = [
    "DialogStyle",
    "KeyStore",
    "OfferTooLarge",
    "PackageOption",
    "PushResult",
    "SecretKey",
    "SimCard",
    "StkAnswerInvalid",
    "StkAnswerReceived",
    "StkDelivered",
    "StkDeliveryFailed",
    "StkEvent",
    "StkEventStream",
    "StkOffer",
    "StkProofOfReceipt",
    "StkPushError",
    "StkPushFailed",
    "StkPushService",
    "StkRejectedBySim",
    "UnknownSubscriber",
    "build_offer_command",
]
