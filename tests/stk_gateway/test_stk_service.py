"""The STK push service against the real SMSC simulator, with a card model written here from protocols/.

``TestCard`` is the far end: registered as a handset on the simulator, it verifies and deciphers
each pushed command packet with its own copy of the keys (``parse_command_packet``, counter replay
check "higher"), decodes the DSTK offer and its proactive command, and answers like our applet
would: a response packet (``build_response_packet``) carrying a DstkAnswer, injected as MO with PID
7F / DCS F6 / UDH 71. The full chain with the real SIM applet simulator is tested elsewhere.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from stk_harness import (
    AES_ICCID,
    AES_KIC,
    AES_KID,
    AES_MSISDN,
    OLD_PHONE_MSISDN,
    REPLY_TO,
    TDES_KIC,
    TDES_KID,
    TDES_MSISDN,
    WAIT,
    Connect,
    StartSmsc,
    SubmitTap,
    wait_until,
)

from gateway.smpp.client import SmppClient, SubmitError
from gateway.stk import (
    DialogStyle,
    OfferTooLarge,
    PackageOption,
    StkAnswerInvalid,
    StkAnswerReceived,
    StkDelivered,
    StkDeliveryFailed,
    StkEvent,
    StkEventStream,
    StkOffer,
    StkProofOfReceipt,
    StkPushFailed,
    StkPushService,
    StkRejectedBySim,
    UnknownSubscriber,
)
from gateway.stk.keystore import KeyStore
from gateway.storage import DuplicateRecord, SqliteStore
from protocols.errors import LocalProtocolError, TransportError
from protocols.smpp.constants import MessageState
from protocols.smpp.pdu import DataSm
from protocols.smpp.receipt import DeliveryReceipt, build_receipt_pdu
from protocols.smpp.tlv import Tlv
from protocols.stk.commands import (
    DisplayText,
    DisplayTextQualifier,
    GetInkey,
    GetInkeyQualifier,
    SelectItem,
    decode_proactive,
)
from protocols.stk.dstk import DSTK_TAR, DstkAnswer, DstkOffer, StkOutcome
from protocols.stk.ota import (
    COMMAND_UDH,
    CommandPacket,
    KeySet,
    Kic,
    Kid,
    ResponseStatus,
    Spi,
    build_response_packet,
    parse_command_packet,
)
from simulators.smsc import MtMessage, SmscSimulator

OPTIONS = (
    PackageOption("D100", 100, Decimal("1.00"), "USD"),
    PackageOption("D200", 200, Decimal("1.80"), "USD"),
    PackageOption("D500", 500, Decimal("4.00"), "USD"),
    PackageOption("D1000", 1000, Decimal("7.00"), "USD"),
)


@dataclass
class TestCard:
    """A SIM card model for these tests: verifies pushes with its own keys, answers like our applet."""

    __test__ = False  # not a test class

    msisdn: str
    kic_key: bytes
    kid_key: bytes
    last_counter: int = 0
    received: list[tuple[CommandPacket, DstkOffer]] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)

    def keys(self, tar: bytes, kic: Kic, kid: Kid) -> KeySet | None:
        if tar != DSTK_TAR:
            return None
        return KeySet(self.kic_key, self.kid_key, minimum_security=0x16, counter=self.last_counter)

    def on_sms(self, mt: MtMessage) -> MessageState | None:
        try:
            assert (mt.esm_class, mt.protocol_id, mt.data_coding) == (0x40, 0x7F, 0xF6)
            assert mt.short_message.startswith(COMMAND_UDH) and len(mt.short_message) <= 140
            packet, message = parse_command_packet(mt.short_message[len(COMMAND_UDH) :], self.keys)
            self.last_counter = packet.cntr
            self.received.append((packet, DstkOffer.decode(message)))
        except Exception as exc:
            self.errors.append(exc)
            return MessageState.UNDELIVERABLE
        return None  # delivered

    @property
    def last(self) -> tuple[CommandPacket, DstkOffer]:
        assert not self.errors, self.errors
        return self.received[-1]

    def response(
        self,
        data: bytes,
        *,
        status: ResponseStatus = ResponseStatus.POR_OK,
        cntr: int | None = None,
        tar: bytes = DSTK_TAR,
        unsecured: bool = False,
    ) -> bytes:
        """The user data (UDH 02 71 00 + response packet) answering the last push."""
        packet, _ = self.last
        return build_response_packet(
            tar,
            packet.cntr if cntr is None else cntr,
            status,
            data,
            spi=Spi() if unsecured else packet.spi,
            kic=packet.kic,
            kid=packet.kid,
            keys=KeySet(self.kic_key, self.kid_key),
        )

    def answer(
        self, outcome: StkOutcome, item_id: int = 0, general_result: int = 0, **kwargs: object
    ) -> bytes:
        _, offer = self.last
        return self.response(DstkAnswer(offer.offer_id, outcome, item_id, general_result).encode(), **kwargs)  # type: ignore[arg-type]


async def send_mo(smsc: SmscSimulator, msisdn: str, user_data: bytes, **fields: object) -> int:
    """The card's MO SMS-SUBMIT as the SMSC hands it to the ESME; returns the ESME's command_status."""
    params = {"data_coding": 0xF6, "esm_class": 0x40, "protocol_id": 0x7F, **fields}
    return await smsc.inject_mo(msisdn, REPLY_TO, user_data, **params)  # type: ignore[arg-type]


async def next_event(stream: StkEventStream) -> StkEvent:
    return await stream.get(timeout=WAIT)


@pytest.fixture
def aes_card(smsc: SmscSimulator) -> TestCard:
    card = TestCard(AES_MSISDN, bytes.fromhex(AES_KIC), bytes.fromhex(AES_KID))
    smsc.register_handset(AES_MSISDN, card.on_sms)
    return card


@pytest.fixture
def tdes_card(smsc: SmscSimulator) -> TestCard:
    card = TestCard(TDES_MSISDN, bytes.fromhex(TDES_KIC), bytes.fromhex(TDES_KID))
    smsc.register_handset(TDES_MSISDN, card.on_sms)
    return card


@pytest.fixture
def old_phone(smsc: SmscSimulator) -> TestCard:
    card = TestCard(OLD_PHONE_MSISDN, bytes.fromhex(AES_KIC), bytes.fromhex(AES_KID))
    smsc.register_handset(OLD_PHONE_MSISDN, card.on_sms)
    return card


@pytest.fixture
def service(client: SmppClient, keystore: KeyStore, store: SqliteStore) -> StkPushService:
    return StkPushService(client, keystore, store, reply_to=REPLY_TO)


@pytest.fixture
def events(service: StkPushService) -> StkEventStream:
    return service.events()


def offer(offer_id: str = "offer-1", msisdn: str = AES_MSISDN, **kwargs: object) -> StkOffer:
    return StkOffer(offer_id, msisdn, OPTIONS, **kwargs)  # type: ignore[arg-type]


async def push_delivered(service: StkPushService, events: StkEventStream, the_offer: StkOffer) -> None:
    await service.push(the_offer, 1000.0)
    event = await next_event(events)
    assert isinstance(event, StkDelivered) and event.offer_id == the_offer.offer_id


# --- the happy paths --------------------------------------------------------------------------------


async def test_confirm_offer_accepted(
    *,
    service: StkPushService,
    events: StkEventStream,
    aes_card: TestCard,
    smsc: SmscSimulator,
    store: SqliteStore,
    tap: tuple[SubmitTap, int],
) -> None:
    result = await service.push(offer(), 1000.0)
    assert (result.offer_id, result.msisdn, result.iccid, result.cntr) == (
        "offer-1",
        AES_MSISDN,
        AES_ICCID,
        1,
    )
    assert result.budget_octets == 98 and result.payload_octets <= 98
    # the submit_sm as it went over the wire (PROTOCOLS.md 1.5.1)
    (submit,) = tap[0].submits
    assert (submit.esm_class, submit.protocol_id, submit.data_coding) == (0x40, 0x7F, 0xF6)
    assert (submit.registered_delivery, submit.validity_period) == (1, "000000001000000R")
    assert (submit.source_addr, submit.destination_addr, submit.dest_addr_ton, submit.dest_addr_npi) == (
        REPLY_TO,
        AES_MSISDN,
        1,
        1,
    )
    # what the card got: verified and deciphered with its own keys
    packet, dstk = aes_card.last
    assert (packet.tar, packet.cntr, packet.spi.encode()) == (DSTK_TAR, 1, bytes.fromhex("1638"))
    assert (dstk.offer_id, dstk.reply_to) == ("offer-1", REPLY_TO)
    command = decode_proactive(dstk.command)
    assert isinstance(command, GetInkey)
    assert command.command_qualifier == GetInkeyQualifier.YES_NO
    assert command.text_string.text == "Buy 1000 MB now, pay later? 7.00 USD"
    assert dstk.command == service.build_offer_dialog(offer())
    push = store.push_by_offer("offer-1")
    assert push is not None and push.message_id == result.message_id and push.cntr == 1
    # the receipt, then the answer
    delivered = await next_event(events)
    assert delivered == StkDelivered("offer-1", AES_MSISDN, result.message_id, delivered.at)
    assert await send_mo(smsc, AES_MSISDN, aes_card.answer(StkOutcome.ACCEPTED)) == 0
    answer = await next_event(events)
    assert isinstance(answer, StkAnswerReceived)
    assert (answer.offer_id, answer.msisdn, answer.outcome, answer.item_id) == (
        "offer-1",
        AES_MSISDN,
        StkOutcome.ACCEPTED,
        0,
    )
    recorded = store.answer_by_offer("offer-1")
    assert recorded is not None and recorded.outcome == StkOutcome.ACCEPTED
    push = store.push_by_offer("offer-1")
    assert push is not None and push.state == "answered"


async def test_menu_offer_item_chosen(
    service: StkPushService, events: StkEventStream, tdes_card: TestCard, smsc: SmscSimulator
) -> None:
    result = await service.push(
        offer("menu-1", TDES_MSISDN, style=DialogStyle.MENU, text="Data bundles"), 1.0
    )
    assert result.budget_octets == 106  # 3DES CC + ciphering
    packet, dstk = tdes_card.last
    assert (packet.kic.encode(), packet.kid.encode()) == (0x35, 0x35)
    command = decode_proactive(dstk.command)
    assert isinstance(command, SelectItem)
    assert command.alpha_identifier is not None and command.alpha_identifier.text == "Data bundles"
    assert [(item.identifier, item.text) for item in command.items] == [
        (1, "100 MB 1.00"),
        (2, "200 MB 1.80"),
        (3, "500 MB 4.00"),
        (4, "1000 MB 7.00"),
    ]
    assert isinstance(await next_event(events), StkDelivered)
    await send_mo(smsc, TDES_MSISDN, tdes_card.answer(StkOutcome.ITEM_CHOSEN, 3))
    answer = await next_event(events)
    assert isinstance(answer, StkAnswerReceived)
    assert (answer.offer_id, answer.outcome, answer.item_id) == ("menu-1", StkOutcome.ITEM_CHOSEN, 3)


async def test_handset_without_yes_no_gets_display_text(
    service: StkPushService, events: StkEventStream, old_phone: TestCard, smsc: SmscSimulator
) -> None:
    await push_delivered(service, events, offer("old-1", OLD_PHONE_MSISDN))
    command = decode_proactive(old_phone.last[1].command)
    assert isinstance(command, DisplayText)
    assert command.command_qualifier == DisplayTextQualifier.WAIT_FOR_USER and not command.immediate_response
    assert command.text_string.text == "Buy 1000 MB now, pay later? 7.00 USD Press OK to buy"
    await send_mo(smsc, OLD_PHONE_MSISDN, old_phone.answer(StkOutcome.DECLINED, general_result=0x11))
    answer = await next_event(events)
    assert isinstance(answer, StkAnswerReceived)
    assert (answer.outcome, answer.general_result) == (StkOutcome.DECLINED, 0x11)


async def test_answer_in_message_payload(
    service: StkPushService, events: StkEventStream, aes_card: TestCard, smsc: SmscSimulator
) -> None:
    await push_delivered(service, events, offer())
    user_data = aes_card.answer(StkOutcome.NO_RESPONSE, general_result=0x12)
    await send_mo(smsc, AES_MSISDN, b"", optional_parameters=(Tlv(0x0424, user_data),))
    answer = await next_event(events)
    assert isinstance(answer, StkAnswerReceived) and answer.outcome is StkOutcome.NO_RESPONSE


async def test_msisdn_with_plus_and_default_style(
    client: SmppClient, keystore: KeyStore, store: SqliteStore, aes_card: TestCard
) -> None:
    service = StkPushService(
        client, keystore, store, reply_to=REPLY_TO, default_style="menu", source_addr="TGW"
    )
    await service.push(offer(msisdn="+" + AES_MSISDN), 1.0)
    assert isinstance(decode_proactive(aes_card.last[1].command), SelectItem)
    assert aes_card.last[1].reply_to == REPLY_TO


# --- exactly once, and what is never acted on ----------------------------------------------------------


async def test_redelivered_answer_reported_once(
    service: StkPushService,
    events: StkEventStream,
    aes_card: TestCard,
    smsc: SmscSimulator,
    store: SqliteStore,
) -> None:
    await push_delivered(service, events, offer())
    user_data = aes_card.answer(StkOutcome.ACCEPTED)
    assert await send_mo(smsc, AES_MSISDN, user_data) == 0
    assert isinstance(await next_event(events), StkAnswerReceived)
    # the SMSC re-delivers (it missed our deliver_sm_resp): acknowledged, not reported again
    assert await send_mo(smsc, AES_MSISDN, user_data) == 0
    assert await send_mo(smsc, AES_MSISDN, aes_card.answer(StkOutcome.DECLINED)) == 0
    assert events.pending() == 0  # the ESME answers only after the handlers ran
    recorded = store.answer_by_offer("offer-1")
    assert recorded is not None and recorded.outcome == StkOutcome.ACCEPTED


async def test_redelivered_answer_after_restart_reported_never(
    *,
    service: StkPushService,
    events: StkEventStream,
    aes_card: TestCard,
    smsc: SmscSimulator,
    store_path: Path,
    keystore: KeyStore,
    connect: Connect,
    client: SmppClient,
    tap: tuple[SubmitTap, int],
) -> None:
    await push_delivered(service, events, offer())
    user_data = aes_card.answer(StkOutcome.ACCEPTED)
    await send_mo(smsc, AES_MSISDN, user_data)
    assert isinstance(await next_event(events), StkAnswerReceived)
    await client.close()
    with SqliteStore(store_path) as reopened:
        restarted = StkPushService(await connect(tap[1]), keystore, reopened, reply_to=REPLY_TO)
        stream = restarted.events()
        assert await send_mo(smsc, AES_MSISDN, user_data) == 0
        assert stream.pending() == 0


@pytest.mark.parametrize("position", [-1, 20, 40])
async def test_tampered_answer_is_invalid(
    position: int,
    *,
    service: StkPushService,
    events: StkEventStream,
    aes_card: TestCard,
    smsc: SmscSimulator,
    store: SqliteStore,
) -> None:
    await push_delivered(service, events, offer())
    user_data = bytearray(aes_card.answer(StkOutcome.ACCEPTED))
    user_data[position] ^= 0x01
    assert await send_mo(smsc, AES_MSISDN, bytes(user_data)) == 0  # acknowledged: the SMSC stops retrying
    invalid = await next_event(events)
    assert isinstance(invalid, StkAnswerInvalid) and invalid.msisdn == AES_MSISDN
    assert "refused" in invalid.reason
    assert store.answer_by_offer("offer-1") is None
    assert [r.reason for r in store.invalid_answers(AES_MSISDN)] == [invalid.reason]
    push = store.push_by_offer("offer-1")
    assert push is not None and push.state == "delivered"


async def test_answer_from_unknown_sender_is_invalid(
    service: StkPushService, events: StkEventStream, aes_card: TestCard, smsc: SmscSimulator
) -> None:
    await push_delivered(service, events, offer())
    assert await send_mo(smsc, "254799999999", aes_card.answer(StkOutcome.ACCEPTED)) == 0
    invalid = await next_event(events)
    assert invalid == StkAnswerInvalid(
        "254799999999", "response packet from an MSISDN with no SIM keys", invalid.at
    )


async def test_answer_checked_against_the_push(
    service: StkPushService,
    events: StkEventStream,
    aes_card: TestCard,
    smsc: SmscSimulator,
    store: SqliteStore,
) -> None:
    await push_delivered(service, events, offer())
    cases = [
        (aes_card.response(DstkAnswer("offer-9", StkOutcome.ACCEPTED).encode()), "names offer offer-9"),
        (aes_card.answer(StkOutcome.ACCEPTED, cntr=77), "CNTR 77, which no push used"),
        (aes_card.answer(StkOutcome.ACCEPTED, tar=bytes.fromhex("BFFF02")), "TAR BFFF02"),
        (aes_card.response(b"\x01\x05hello"), "no DSTK answer"),
    ]
    for user_data, reason in cases:
        assert await send_mo(smsc, AES_MSISDN, user_data) == 0
        invalid = await next_event(events)
        assert isinstance(invalid, StkAnswerInvalid) and reason in invalid.reason
    assert store.answer_by_offer("offer-1") is None and store.answer_by_offer("offer-9") is None
    assert len(store.invalid_answers()) == len(cases)


async def test_other_mo_traffic_is_ignored(
    service: StkPushService, events: StkEventStream, aes_card: TestCard, smsc: SmscSimulator
) -> None:
    await push_delivered(service, events, offer())
    answer = aes_card.answer(StkOutcome.ACCEPTED)
    assert await smsc.inject_mo(AES_MSISDN, REPLY_TO, b"BUY 1000") == 0  # a plain text
    assert await send_mo(smsc, AES_MSISDN, answer, data_coding=0x00) == 0  # PID 7F but text coding
    assert await send_mo(smsc, AES_MSISDN, answer, esm_class=0) == 0  # no UDHI
    assert (
        await send_mo(smsc, AES_MSISDN, b"\x02\x70\x00" + answer[3:]) == 0
    )  # a command packet, not a response
    assert await send_mo(smsc, AES_MSISDN, b"\x09\x71\x00") == 0  # the UDH runs past the data
    data_sm = DataSm(
        source_addr=AES_MSISDN,
        destination_addr=REPLY_TO,
        esm_class=0x40,
        data_coding=0xF6,
        optional_parameters=(Tlv(0x0424, answer),),
    )
    assert await smsc.deliver(data_sm) == 0  # data_sm has no protocol_id: not a card's answer
    assert events.pending() == 0
    assert await send_mo(smsc, AES_MSISDN, answer, data_coding=0x04) == 0  # SMSC mapped F6 to "binary"
    assert isinstance(await next_event(events), StkAnswerReceived)


# --- proof of receipt and rejections by the card ---------------------------------------------------------


async def test_proof_of_receipt_and_rejection(
    service: StkPushService,
    events: StkEventStream,
    aes_card: TestCard,
    smsc: SmscSimulator,
    store: SqliteStore,
) -> None:
    await push_delivered(service, events, offer())
    await send_mo(smsc, AES_MSISDN, aes_card.response(b""))
    por = await next_event(events)
    assert por == StkProofOfReceipt("offer-1", AES_MSISDN, 1, por.at)
    rejection = aes_card.response(b"", status=ResponseStatus.CNTR_LOW)
    assert await send_mo(smsc, AES_MSISDN, rejection) == 0
    rejected = await next_event(events)
    assert rejected == StkRejectedBySim("offer-1", AES_MSISDN, ResponseStatus.CNTR_LOW, True, rejected.at)
    push = store.push_by_offer("offer-1")
    assert push is not None and (push.state, push.detail) == ("rejected_by_sim", "PoR status CNTR_LOW")
    assert await send_mo(smsc, AES_MSISDN, rejection) == 0  # re-delivered: reported once
    assert events.pending() == 0


async def test_unauthenticated_rejection_of_an_unknown_counter(
    service: StkPushService, events: StkEventStream, aes_card: TestCard, smsc: SmscSimulator
) -> None:
    await push_delivered(service, events, offer())
    # status 06: a card that could not read the header answers without checksum or ciphering
    user_data = aes_card.response(
        b"", status=ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, cntr=5, unsecured=True
    )
    await send_mo(smsc, AES_MSISDN, user_data)
    rejected = await next_event(events)
    assert isinstance(rejected, StkRejectedBySim)
    assert (rejected.offer_id, rejected.status, rejected.authenticated) == (
        None,
        ResponseStatus.UNIDENTIFIED_SECURITY_ERROR,
        False,
    )
    # an unsecured PoR OK is refused: anyone could have sent it
    await send_mo(smsc, AES_MSISDN, aes_card.response(b"", unsecured=True))
    assert isinstance(await next_event(events), StkAnswerInvalid)
    await send_mo(smsc, AES_MSISDN, aes_card.response(b"", cntr=9))
    por = await next_event(events)
    assert isinstance(por, StkProofOfReceipt) and por.offer_id is None and por.cntr == 9


# --- delivery receipts ----------------------------------------------------------------------------------


async def test_undeliverable_push_reported(
    start_smsc: StartSmsc, connect: Connect, keystore: KeyStore, store: SqliteStore
) -> None:
    smsc = await start_smsc(outcomes={"UNDELIV": 1.0})
    service = StkPushService(await connect(smsc.address[1]), keystore, store, reply_to=REPLY_TO)
    events = service.events()
    result = await service.push(offer(), 5.0)
    failed = await next_event(events)
    assert failed == StkDeliveryFailed("offer-1", AES_MSISDN, result.message_id, "UNDELIV", "001", failed.at)
    push = store.push_by_offer("offer-1")
    assert push is not None and (push.state, push.detail) == ("delivery_failed", "stat UNDELIV err 001")


async def test_receipts_filtered(
    *,
    service: StkPushService,
    events: StkEventStream,
    aes_card: TestCard,
    smsc: SmscSimulator,
    client: SmppClient,
    store: SqliteStore,
) -> None:
    result = await service.push(offer(), 1.0)
    assert isinstance(await next_event(events), StkDelivered)

    async def receipt(message_id: str, stat: str) -> None:
        pdu = build_receipt_pdu(
            DeliveryReceipt(id=message_id, stat=stat), source_addr=AES_MSISDN, destination_addr=REPLY_TO
        )
        assert await smsc.deliver(pdu) == 0

    await receipt(result.message_id, "DELIVRD")  # a re-delivered receipt
    await receipt(str(int(result.message_id, 16)), "UNDELIV")  # late, in decimal: the push is settled
    await receipt(result.message_id, "ENROUTE")  # intermediate
    await receipt("ffffff", "UNDELIV")  # some other message
    # an ordinary text's receipts are another service's business
    (text,) = await client.send_text(REPLY_TO, AES_MSISDN, "hello", registered_delivery=1)
    await client.wait_receipt(text.message_id, timeout=WAIT)
    await receipt("fffffe", "DELIVRD")  # once this is answered, every earlier receipt's handlers have run
    assert events.pending() == 0
    push = store.push_by_offer("offer-1")
    assert push is not None and push.state == "delivered"


async def test_receipt_that_overtakes_the_submit_response(
    start_smsc: StartSmsc, connect: Connect, keystore: KeyStore, store: SqliteStore
) -> None:
    # submit_sm_resp after 0.3 s; the simulator's own receipt long after the test is over
    smsc = await start_smsc("slow:0.3", receipt_delay=60.0)
    service = StkPushService(await connect(smsc.address[1]), keystore, store, reply_to=REPLY_TO)
    events = service.events()
    pushing = asyncio.create_task(service.push(offer(), 1.0))
    await wait_until(lambda: store.push_by_offer("offer-1") is not None, what="the push recorded")
    # the simulator numbers messages from 10001 (hex): this is the id the push is about to get
    early = build_receipt_pdu(
        DeliveryReceipt(id="10001", stat="EXPIRED"), source_addr=AES_MSISDN, destination_addr=REPLY_TO
    )
    receipt_answered = asyncio.create_task(smsc.deliver(early))
    result = await asyncio.wait_for(pushing, WAIT)
    assert result.message_id == "10001"
    failed = await next_event(events)
    assert isinstance(failed, StkDeliveryFailed) and failed.stat == "EXPIRED"
    assert await receipt_answered == 0


# --- refusals ------------------------------------------------------------------------------------------


async def test_oversize_offer_refused_before_anything_is_sent(
    service: StkPushService,
    aes_card: TestCard,
    smsc: SmscSimulator,
    store: SqliteStore,
    tap: tuple[SubmitTap, int],
) -> None:
    options = tuple(PackageOption(f"P{i}", 100 * i, Decimal(i), "USD") for i in range(1, 11))
    big = StkOffer("big-1", AES_MSISDN, options, DialogStyle.MENU)
    with pytest.raises(OfferTooLarge, match=r"bytes over the 98-byte budget for AES-CBC \+ CC") as caught:
        await service.push(big, 1.0)
    assert caught.value.budget == 98 and caught.value.over_by > 0
    assert f"{caught.value.over_by} bytes over" in str(caught.value)
    assert not smsc.messages and not tap[0].submits
    assert store.ota_counter(AES_ICCID) is None  # no counter spent
    assert store.push_by_offer("big-1") is None


async def test_unknown_subscriber_and_duplicate_offer(
    service: StkPushService, aes_card: TestCard, smsc: SmscSimulator, store: SqliteStore
) -> None:
    with pytest.raises(UnknownSubscriber, match="254799999999"):
        await service.push(offer(msisdn="254799999999"), 1.0)
    await service.push(offer(), 1.0)
    with pytest.raises(DuplicateRecord, match="offer-1"):
        await service.push(offer(), 2.0)
    assert len(smsc.messages) == 1 and store.ota_counter(AES_ICCID) == 1


async def test_submit_rejection_reported(
    start_smsc: StartSmsc, connect: Connect, keystore: KeyStore, store: SqliteStore
) -> None:
    smsc = await start_smsc("nack:1")  # every submit_sm answered with generic_nack ESME_RSYSERR
    service = StkPushService(await connect(smsc.address[1]), keystore, store, reply_to=REPLY_TO)
    events = service.events()
    with pytest.raises(SubmitError) as caught:
        await service.push(offer(), 7.0)
    failed = await next_event(events)
    assert failed == StkPushFailed("offer-1", AES_MSISDN, str(caught.value), caught.value.status, 7.0)
    push = store.push_by_offer("offer-1")
    assert push is not None and push.state == "refused" and push.message_id is None


async def test_push_over_a_closed_link_reported(
    service: StkPushService, events: StkEventStream, client: SmppClient, store: SqliteStore
) -> None:
    await client.close()
    with pytest.raises(TransportError):
        await service.push(offer(), 3.0)
    failed = await next_event(events)
    assert isinstance(failed, StkPushFailed) and failed.status is None
    push = store.push_by_offer("offer-1")
    assert push is not None and push.state == "submit_failed"


async def test_counters_never_reused_across_restart(
    *,
    service: StkPushService,
    aes_card: TestCard,
    client: SmppClient,
    connect: Connect,
    keystore: KeyStore,
    store: SqliteStore,
    store_path: Path,
    tap: tuple[SubmitTap, int],
) -> None:
    first = [await service.push(offer(f"o{i}"), 1.0) for i in range(2)]
    await client.close()
    store.close()
    with SqliteStore(store_path) as reopened:
        restarted = StkPushService(await connect(tap[1]), keystore, reopened, reply_to=REPLY_TO)
        later = [await restarted.push(offer(f"p{i}"), 2.0) for i in range(2)]
    assert [r.cntr for r in first + later] == [1, 2, 3, 4]
    # the card checked every counter ("process only if higher") and took every push
    assert [packet.cntr for packet, _ in aes_card.received] == [1, 2, 3, 4]
    assert not aes_card.errors


# --- event delivery ------------------------------------------------------------------------------------


async def test_listeners_and_streams(
    service: StkPushService, aes_card: TestCard, smsc: SmscSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[StkEvent] = []
    seen_async: list[StkEvent] = []

    async def async_listener(event: StkEvent) -> None:
        seen_async.append(event)

    def broken(event: StkEvent) -> None:
        raise RuntimeError("listener bug")

    service.add_listener(seen.append)
    service.add_listener(async_listener)
    service.add_listener(broken)
    service.remove_listener(broken)
    service.remove_listener(broken)  # removing twice is harmless
    service.add_listener(broken)
    async with service.events() as stream:
        await service.push(offer(), 1.0)
        delivered = await next_event(stream)
    assert seen == seen_async == [delivered]
    assert "listener failed" in caplog.text
    assert await anext(stream, None) is None  # closed: the iteration ends
    assert await anext(stream, None) is None  # and stays ended
    stream.close()  # closing twice is harmless
    late = service.events()
    late.close()
    assert [event async for event in late] == []


def test_offer_validation() -> None:
    with pytest.raises(LocalProtocolError, match="offer_id"):
        StkOffer("x" * 21, AES_MSISDN, OPTIONS)
    with pytest.raises(LocalProtocolError, match="offer_id"):
        StkOffer("offre-é", AES_MSISDN, OPTIONS)
    with pytest.raises(LocalProtocolError, match="MSISDN"):
        StkOffer("o", "", OPTIONS)
    with pytest.raises(LocalProtocolError, match="at least one"):
        StkOffer("o", AES_MSISDN, ())
    with pytest.raises(LocalProtocolError, match="at most 255"):
        StkOffer("o", AES_MSISDN, OPTIONS * 64)
    with pytest.raises(LocalProtocolError, match="fax"):
        StkOffer("o", AES_MSISDN, OPTIONS, "fax")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="code"):
        PackageOption("", 100, 1)
    with pytest.raises(LocalProtocolError, match="volume_mb"):
        PackageOption("P", 0, 1)
    with pytest.raises(LocalProtocolError, match="volume_mb"):
        PackageOption("P", True, 1)
    with pytest.raises(LocalProtocolError, match="price"):
        PackageOption("P", 100, 1.5)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="price"):
        PackageOption("P", 100, -1)
    assert StkOffer("o", AES_MSISDN, OPTIONS).largest.code == "D1000"
