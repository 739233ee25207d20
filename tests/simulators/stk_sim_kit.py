"""Builders shared by the SIM card and handset tests (import as ``from stk_sim_kit import ...``).

Everything is built with ``protocols`` as the gateway would: an offer dialog (a proactive command in a
``DstkOffer``), secured into a TS 102 225 command packet after UDH ``02 70 00``, in an SMS-DELIVER with
PID 0x7F / DCS 0xF6, in an ENVELOPE (SMS-PP DOWNLOAD). Keys are pySim's test keys (PROTOCOLS.md 1.5.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from protocols.gsm.tpdu import Address, SmsDeliver, SmsSubmit, Timestamp
from protocols.stk.commands import (
    DisplayText,
    GetInkey,
    GetInkeyQualifier,
    ProactiveCommand,
    SelectItem,
    SendShortMessage,
    decode_proactive,
)
from protocols.stk.dstk import DSTK_TAR, DstkAnswer, DstkOffer
from protocols.stk.envelope import SmsPpDownload
from protocols.stk.ota import (
    COMMAND_UDH,
    CcAlgorithm,
    CipherAlgorithm,
    CounterMode,
    Integrity,
    KeySet,
    Kic,
    Kid,
    PorMode,
    ResponsePacket,
    Spi,
    build_command_packet,
    parse_response_packet,
)
from protocols.stk.terminal import TerminalProfile, TerminalProfileFeature
from protocols.stk.tlv import AlphaIdentifier, Duration, Item, TextString, TimeUnit
from simulators.sim_applet import Event, SimCard

T = TypeVar("T")

GATEWAY = "12345"  # the gateway's short code: TP-OA of the push, reply_to of the offer
OFFER_ID = "off-1"

AES_KEYS = KeySet(
    bytes.fromhex("200102030405060708090a0b0c0d0e0f"),
    bytes.fromhex("201102030405060708090a0b0c0d0e0f"),
    kvn=2,
    minimum_security=0x16,  # counter higher + ciphering + CC
)
TDES_KEYS = KeySet(
    bytes.fromhex("300102030405060708090a0b0c0d0e0f"),
    bytes.fromhex("301102030405060708090a0b0c0d0e0f"),
    kvn=3,
    minimum_security=0x16,
)
AES_KIC = Kic(CipherAlgorithm.AES_CBC, 2)
AES_KID = Kid(CcAlgorithm.AES_CMAC, 2)
TDES_KIC = Kic(CipherAlgorithm.TDES_2KEY, 3)
TDES_KID = Kid(CcAlgorithm.TDES_2KEY, 3)

# counter higher + ciphered + CC; PoR always, CC + ciphered, in the RP-ACK
SPI_POR_REPORT = Spi(Integrity.CC, True, CounterMode.HIGHER, PorMode.ALWAYS, Integrity.CC, True, False)
# the same with the PoR as an MO SMS-SUBMIT (SPI 16 39)
SPI_POR_SUBMIT = Spi(Integrity.CC, True, CounterMode.HIGHER, PorMode.ALWAYS, Integrity.CC, True, True)
SPI_POR_ON_ERROR = Spi(Integrity.CC, True, CounterMode.HIGHER, PorMode.ON_ERROR, Integrity.CC, True, False)
SPI_NO_POR = Spi(Integrity.CC, True, CounterMode.HIGHER, PorMode.NONE, Integrity.CC, True, False)

YES_NO = GetInkey(TextString.of("Buy 1GB for 5.00?"), GetInkeyQualifier.YES_NO)
DISPLAY = DisplayText(TextString.of("Buy 1GB for 5.00? Press OK"))
SELECT = SelectItem(
    (Item.of(1, "100MB 1.00"), Item.of(2, "200MB 1.80"), Item.of(3, "500MB 4.00"), Item.of(4, "1000MB 7.00")),
    AlphaIdentifier.of("Data bundles"),
)
YES_NO_30S = GetInkey(
    TextString.of("Buy 1GB?"), GetInkeyQualifier.YES_NO, duration=Duration(TimeUnit.SECONDS, 30)
)

FULL_PROFILE = TerminalProfile.from_features(
    [
        TerminalProfileFeature.SMS_PP_DATA_DOWNLOAD,
        TerminalProfileFeature.SIM_DATA_DOWNLOAD_ERROR_9EXX,
        TerminalProfileFeature.DISPLAY_TEXT,
        TerminalProfileFeature.GET_INKEY,
        TerminalProfileFeature.GET_INPUT,
        TerminalProfileFeature.SELECT_ITEM,
        TerminalProfileFeature.SEND_SHORT_MESSAGE,
        TerminalProfileFeature.GET_INKEY_BINARY_CHOICE,
    ]
)
NO_YES_NO_PROFILE = FULL_PROFILE.without_features(TerminalProfileFeature.GET_INKEY_BINARY_CHOICE)


@dataclass(frozen=True)
class Security:
    """The keys and identifiers both ends share for one TAR."""

    keys: KeySet = AES_KEYS
    kic: Kic = AES_KIC
    kid: Kid = AES_KID


AES = Security()
TDES = Security(TDES_KEYS, TDES_KIC, TDES_KID)


def make_card(
    profile: TerminalProfile | None = FULL_PROFILE,
    security: Security = AES,
    *,
    tar: bytes = DSTK_TAR,
    **kwargs: float,
) -> SimCard:
    return SimCard("8944000000000000001", {tar: security.keys}, terminal_profile=profile, **kwargs)  # type: ignore[arg-type]


def offer_message(
    command: ProactiveCommand | bytes = YES_NO, offer_id: str = OFFER_ID, reply_to: str = GATEWAY
) -> bytes:
    raw = command if isinstance(command, bytes) else command.encode()
    return DstkOffer(offer_id, reply_to, raw).encode()


def command_packet(
    message: bytes,
    cntr: int,
    spi: Spi = SPI_POR_REPORT,
    security: Security = AES,
    *,
    tar: bytes = DSTK_TAR,
    single_sms: bool = True,
) -> bytes:
    return build_command_packet(
        message, spi, security.kic, security.kid, tar, cntr, security.keys, single_sms=single_sms
    )


def deliver_tpdu(
    user_data: bytes,
    *,
    pid: int = 0x7F,
    dcs: int = 0xF6,
    oa: str = GATEWAY,
    udhi: bool = True,
    udl: int | None = None,
) -> bytes:
    return SmsDeliver(
        tp_udhi=udhi,
        tp_oa=Address(oa, ton=0, npi=1),
        tp_pid=pid,
        tp_dcs=dcs,
        tp_scts=Timestamp(2025, 1, 9, 3),
        tp_udl=len(user_data) if udl is None else udl,
        tp_ud=user_data,
    ).encode()


def envelope(user_data: bytes, **tpdu: object) -> bytes:
    return SmsPpDownload(deliver_tpdu(user_data, **tpdu)).encode()  # type: ignore[arg-type]


def push_envelope(packet: bytes, **tpdu: object) -> bytes:
    """The ENVELOPE for a command packet in one SMS."""
    return envelope(COMMAND_UDH + packet, **tpdu)


def drain(card: SimCard) -> list[Event]:
    events: list[Event] = []
    while (event := card.next_event()) is not None:
        events.append(event)
    return events


def of_type(events: list[Event], kind: type[T]) -> list[T]:
    return [event for event in events if isinstance(event, kind)]


def fetch_submit(card: SimCard) -> tuple[SendShortMessage, SmsSubmit]:
    command = decode_proactive(card.fetch())
    assert isinstance(command, SendShortMessage)
    return command, SmsSubmit.decode(command.sms_tpdu)


def parse_answer(
    user_data: bytes, spi: Spi = SPI_POR_REPORT, security: Security = AES
) -> tuple[ResponsePacket, DstkAnswer]:
    packet = parse_response_packet(user_data, spi=spi, kic=security.kic, kid=security.kid, keys=security.keys)
    return packet, DstkAnswer.decode(packet.additional_response_data)


def parse_por(user_data: bytes, spi: Spi = SPI_POR_REPORT, security: Security = AES) -> ResponsePacket:
    return parse_response_packet(user_data, spi=spi, kic=security.kic, kid=security.kid, keys=security.keys)
