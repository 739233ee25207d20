"""Exploratory robustness of the SIM toolkit push (ETSI TS 102 225 section 5.2 PoR, TS 102 223 answers).

Real parts throughout: the SMSC simulator on loopback, the ESME over TCP, the SQLite store, and where
a card is needed the simulated handset with its SIM card and our DSTK applet (``simulators.handset``,
``simulators.sim_applet``). Response packets the card would send at odd moments are built here with
``protocols.stk.ota.build_response_packet`` and the card's keys from the key store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from stk_harness import (
    AES_ICCID,
    AES_MSISDN,
    REPLY_TO,
    TDES_MSISDN,
    WAIT,
    Connect,
    StartSmsc,
    wait_until,
)

from gateway.smpp.client import SmppClient
from gateway.stk import (
    DialogStyle,
    OfferTooLarge,
    PackageOption,
    StkAnswerReceived,
    StkDelivered,
    StkEventStream,
    StkOffer,
    StkProofOfReceipt,
    StkPushService,
    StkRejectedBySim,
)
from gateway.stk.keystore import KeyStore
from gateway.storage import SqliteStore
from gateway.storage.sqlite_base import StoreError
from protocols.errors import ConfigError
from protocols.smpp.receipt import DeliveryReceipt, build_receipt_pdu
from protocols.stk.dstk import DstkAnswer, StkOutcome
from protocols.stk.ota import MAX_CNTR, ResponseStatus, build_response_packet
from protocols.stk.terminal import GeneralResult
from simulators.handset import Handset, UserAction, UserPolicy
from simulators.handset_hub import terminal_profile_for
from simulators.sim_applet import SimCard as CardModel
from simulators.smsc import SmscSimulator

OPTIONS = (
    PackageOption("D100", 100, Decimal("1.00"), "USD"),
    PackageOption("D500", 500, Decimal("4.00"), "USD"),
)


def por(keystore: KeyStore, msisdn: str, cntr: int, status: ResponseStatus, data: bytes = b"") -> bytes:
    """The user data (UDH 02 71 00 + response packet) the card of ``msisdn`` sends, secured as SPI2 says."""
    card = keystore.by_msisdn(msisdn)
    assert card is not None
    return build_response_packet(
        card.tar, cntr, status, data, spi=card.spi, kic=card.kic, kid=card.kid, keys=card.key_set()
    )


async def send_mo(smsc: SmscSimulator, msisdn: str, user_data: bytes) -> int:
    return await smsc.inject_mo(
        msisdn, REPLY_TO, user_data, data_coding=0xF6, esm_class=0x40, protocol_id=0x7F
    )


async def start_slow_service(
    start_smsc: StartSmsc, connect: Connect, keystore: KeyStore, store: SqliteStore
) -> tuple[SmscSimulator, StkPushService, StkEventStream]:
    # submit_sm_resp 0.5 s late; the simulator's own receipt long after the test is over
    smsc = await start_smsc("slow:0.5", receipt_delay=60.0)
    service = StkPushService(await connect(smsc.address[1]), keystore, store, reply_to=REPLY_TO)
    return smsc, service, service.events()


# --- a card's answer that overtakes the SMSC's submit_sm_resp ------------------------------------------


async def test_rejection_that_overtakes_the_submit_response_is_kept(
    start_smsc: StartSmsc, connect: Connect, keystore: KeyStore, store: SqliteStore
) -> None:
    smsc, service, events = await start_slow_service(start_smsc, connect, keystore, store)
    pushing = asyncio.create_task(service.push(StkOffer("offer-1", AES_MSISDN, OPTIONS), 1.0))
    await wait_until(lambda: store.push_by_offer("offer-1") is not None, what="the push recorded")
    push = store.push_by_offer("offer-1")
    assert push is not None and push.state == "submitting"
    # the SMSC delivered at once and answers the ESME late; the card's error PoR is here first
    rejection = por(keystore, AES_MSISDN, push.cntr, ResponseStatus.CNTR_LOW)
    assert await send_mo(smsc, AES_MSISDN, rejection) == 0
    rejected = await events.get(WAIT)
    assert isinstance(rejected, StkRejectedBySim) and rejected.offer_id == "offer-1"
    result = await asyncio.wait_for(pushing, WAIT)
    stored = store.push_by_offer("offer-1")
    assert stored is not None and stored.message_id == result.message_id
    assert (stored.state, stored.detail) == ("rejected_by_sim", "PoR status CNTR_LOW")
    # the delivery receipt and a re-delivered copy of the PoR change nothing and report nothing
    receipt = build_receipt_pdu(
        DeliveryReceipt(id=result.message_id, stat="DELIVRD"),
        source_addr=AES_MSISDN,
        destination_addr=REPLY_TO,
    )
    assert await smsc.deliver(receipt) == 0
    assert await send_mo(smsc, AES_MSISDN, rejection) == 0
    assert events.pending() == 0
    stored = store.push_by_offer("offer-1")
    assert stored is not None and stored.state == "rejected_by_sim"


async def test_answer_that_overtakes_the_submit_response_is_kept(
    start_smsc: StartSmsc, connect: Connect, keystore: KeyStore, store: SqliteStore
) -> None:
    smsc, service, events = await start_slow_service(start_smsc, connect, keystore, store)
    pushing = asyncio.create_task(service.push(StkOffer("offer-1", AES_MSISDN, OPTIONS), 1.0))
    await wait_until(lambda: store.push_by_offer("offer-1") is not None, what="the push recorded")
    push = store.push_by_offer("offer-1")
    assert push is not None
    answer = DstkAnswer("offer-1", StkOutcome.ACCEPTED).encode()
    assert (
        await send_mo(smsc, AES_MSISDN, por(keystore, AES_MSISDN, push.cntr, ResponseStatus.POR_OK, answer))
        == 0
    )
    received = await events.get(WAIT)
    assert isinstance(received, StkAnswerReceived) and received.outcome is StkOutcome.ACCEPTED
    result = await asyncio.wait_for(pushing, WAIT)
    stored = store.push_by_offer("offer-1")
    assert stored is not None and (stored.state, stored.message_id) == ("answered", result.message_id)


# --- PoR statuses that are no rejection ------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        ResponseStatus.MORE_TIME,
        ResponseStatus.RESPONSE_DATA_VIA_SMS_SUBMIT,
        ResponseStatus.RESPONSE_DATA_VIA_USSD,
    ],
)
async def test_informative_por_status_is_no_rejection(
    status: ResponseStatus,
    start_smsc: StartSmsc,
    connect: Connect,
    keystore: KeyStore,
    store: SqliteStore,
) -> None:
    # TS 102 225 5.2 / TS 31.115 4.4: '08' more time, '0B' / '0C' the response data follows by SMS-SUBMIT
    # or USSD: the card took the command packet; the answer is still to come
    smsc = await start_smsc(receipt_delay=60.0)
    service = StkPushService(await connect(smsc.address[1]), keystore, store, reply_to=REPLY_TO)
    events = service.events()
    result = await service.push(StkOffer("offer-1", AES_MSISDN, OPTIONS), 1.0)
    assert await send_mo(smsc, AES_MSISDN, por(keystore, AES_MSISDN, result.cntr, status)) == 0
    event = await events.get(WAIT)
    assert isinstance(event, StkProofOfReceipt) and (event.offer_id, event.cntr) == ("offer-1", result.cntr)
    stored = store.push_by_offer("offer-1")
    assert stored is not None and stored.state == "sent"
    answer = DstkAnswer("offer-1", StkOutcome.ACCEPTED).encode()
    assert (
        await send_mo(smsc, AES_MSISDN, por(keystore, AES_MSISDN, result.cntr, ResponseStatus.POR_OK, answer))
        == 0
    )
    received = await events.get(WAIT)
    assert isinstance(received, StkAnswerReceived) and received.offer_id == "offer-1"


# --- the address the applet answers to ---------------------------------------------------------------------


@pytest.mark.parametrize("reply_to", ["+12345", "TGW", "12-345", "1" * 21, ""])
async def test_reply_to_the_card_cannot_answer_to_is_refused_at_start(
    reply_to: str, start_smsc: StartSmsc, connect: Connect, keystore: KeyStore, store: SqliteStore
) -> None:
    # the applet sends its answer in an SMS-SUBMIT to reply_to (TP-DA: semi-octet digits 0-9 * # a b c);
    # with any other address every offer is shown nowhere and answered never
    smsc = await start_smsc()
    client: SmppClient = await connect(smsc.address[1])
    with pytest.raises(ConfigError, match="reply_to") as caught:
        StkPushService(client, keystore, store, reply_to=reply_to)
    assert repr(reply_to) in str(caught.value)


# --- the real handset and SIM applet: terminal response errors, 3DES and AES --------------------------------


@pytest.fixture
async def handsets(smsc: SmscSimulator, keystore: KeyStore) -> AsyncIterator[dict[str, Handset]]:
    phones: dict[str, Handset] = {}
    for entry in keystore:
        card = CardModel(entry.iccid, {entry.tar: entry.key_set()}, dialog_timeout=5.0)
        profile = terminal_profile_for(entry.supports_yes_no, entry.terminal_profile)
        phones[entry.msisdn] = Handset(
            entry.msisdn, card, profile, UserPolicy(), smsc, seed=1, dialog_timeout=0.5
        )
    yield phones
    for phone in phones.values():
        await phone.close()


@pytest.mark.parametrize(
    ("action", "outcome", "general_result"),
    [
        (UserAction.DECLINE, StkOutcome.DECLINED, None),  # No / Back ('11' or a No)
        (UserAction.IGNORE, StkOutcome.NO_RESPONSE, GeneralResult.NO_RESPONSE_FROM_USER),  # '12'
        (UserAction.BUSY, StkOutcome.UNABLE, GeneralResult.TERMINAL_CURRENTLY_UNABLE_TO_PROCESS_COMMAND),
    ],
)
@pytest.mark.parametrize("msisdn", [AES_MSISDN, TDES_MSISDN])
@pytest.mark.parametrize("style", [DialogStyle.CONFIRM, DialogStyle.MENU])
async def test_terminal_response_errors_come_back_as_answers(
    *,
    action: UserAction,
    outcome: StkOutcome,
    general_result: int | None,
    msisdn: str,
    style: DialogStyle,
    handsets: dict[str, Handset],
    client: SmppClient,
    keystore: KeyStore,
    store: SqliteStore,
) -> None:
    handsets[msisdn].user = UserPolicy(action)
    service = StkPushService(client, keystore, store, reply_to=REPLY_TO)
    events = service.events()
    # a UCS-2 text, so that the card and the handset decode that too
    await service.push(StkOffer("offer-1", msisdn, OPTIONS, style, "Купить 500 МБ?"), 1.0)
    answers: list[StkAnswerReceived] = []
    while not answers:
        event = await events.get(WAIT)
        if isinstance(event, StkAnswerReceived):
            answers.append(event)
        else:
            assert isinstance(event, StkDelivered), event
    (answer,) = answers
    assert (answer.offer_id, answer.msisdn, answer.outcome) == ("offer-1", msisdn, outcome)
    if general_result is not None:
        assert answer.general_result == general_result
    assert not store.invalid_answers()
    recorded = store.answer_by_offer("offer-1")
    assert recorded is not None and recorded.outcome == outcome


# --- limits: one SMS, the five-octet counter -----------------------------------------------------------------


async def test_ucs2_offer_that_needs_concatenation_is_refused_before_sending(
    smsc: SmscSimulator, client: SmppClient, keystore: KeyStore, store: SqliteStore
) -> None:
    service = StkPushService(client, keystore, store, reply_to=REPLY_TO)
    text = "Данные закончились. Купить 500 МБ за 4.00 USD сейчас?"  # 53 UCS-2 characters, 106 octets
    with pytest.raises(
        OfferTooLarge, match=r"does not fit one SMS: payload is \d+ bytes over the 98-byte"
    ) as caught:
        await service.push(StkOffer("big-1", AES_MSISDN, OPTIONS, DialogStyle.CONFIRM, text), 1.0)
    assert caught.value.budget == 98 and caught.value.over_by > 0
    assert not smsc.messages and store.ota_counter(AES_ICCID) is None


async def test_exhausted_counter_refuses_the_push_and_sends_nothing(
    smsc: SmscSimulator, client: SmppClient, store: SqliteStore
) -> None:
    keys = KeyStore.from_yaml(
        f"""\
subscribers:
  - msisdn: "{AES_MSISDN}"
    iccid: "{AES_ICCID}"
    min_counter: {MAX_CNTR}
    kic: {{algorithm: aes, key: "200102030405060708090a0b0c0d0e0f"}}
    kid: {{algorithm: aes, key: "201102030405060708090a0b0c0d0e0f"}}
"""
    )
    service = StkPushService(client, keys, store, reply_to=REPLY_TO)
    last = await service.push(StkOffer("offer-1", AES_MSISDN, OPTIONS), 1.0)
    assert last.cntr == MAX_CNTR
    with pytest.raises(StoreError, match=rf"OTA counter of ICCID {AES_ICCID} is exhausted"):
        await service.push(StkOffer("offer-2", AES_MSISDN, OPTIONS), 2.0)
    assert len(smsc.messages) == 1 and store.push_by_offer("offer-2") is None
