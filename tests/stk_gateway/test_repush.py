"""A push that never reached the SMSC is pushed again; one the SMSC accepted never is (defect w2 #1).

A push cancelled before the SMSC answered (the executor shut down, the bind never came) or killed
mid-submit is left without a message id. The next attempt (the runner's outbox after a restart)
must send it, or the journey waits for its hard_cap before falling back to SMS. It goes out with the
counter the first attempt used, so a card that did get the first copy refuses the second (TS 102 225
section 5.1.1 replay check): the subscriber never sees one offer twice. A push the SMSC refused never
went out: it is sent again with a fresh counter, which a card that another push reached since accepts.
"""

from __future__ import annotations

import asyncio

import pytest
from stk_harness import (
    AES_ICCID,
    AES_KIC,
    AES_KID,
    AES_MSISDN,
    REPLY_TO,
    WAIT,
    Connect,
    StartSmsc,
    SubmitTap,
    wait_until,
)
from test_stk_service import TestCard, offer

from gateway.smpp.client import SmppClient, SubmitError
from gateway.stk import StkPushService
from gateway.stk.keystore import KeyStore
from gateway.storage import DuplicateRecord, SqliteStore
from protocols.errors import TransportError
from simulators.smsc import SmscSimulator


def new_card() -> TestCard:
    return TestCard(AES_MSISDN, bytes.fromhex(AES_KIC), bytes.fromhex(AES_KID))


@pytest.fixture
def aes_card(smsc: SmscSimulator) -> TestCard:
    card = new_card()
    smsc.register_handset(AES_MSISDN, card.on_sms)
    return card


@pytest.fixture
def service(client: SmppClient, keystore: KeyStore, store: SqliteStore) -> StkPushService:
    return StkPushService(client, keystore, store, reply_to=REPLY_TO)


async def test_push_cancelled_before_the_bind_is_pushed_on_the_next_attempt(
    start_smsc: StartSmsc, connect: Connect, keystore: KeyStore, store: SqliteStore
) -> None:
    smsc = await start_smsc()
    card = new_card()
    smsc.register_handset(AES_MSISDN, card.on_sms)
    client: SmppClient = await connect(smsc.address[1])
    service = StkPushService(client, keystore, store, reply_to=REPLY_TO)
    # the link is down: the submit waits for the next bind, and the push is cancelled meanwhile
    await smsc.stop()
    await wait_until(lambda: not client.is_bound, what="the link to drop")
    task = asyncio.create_task(service.push(offer(), 1.0))
    await wait_until(lambda: store.push_by_offer("offer-1") is not None, what="the push recorded")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    push = store.push_by_offer("offer-1")
    assert push is not None and push.message_id is None and push.state == "submit_failed"
    assert push.detail is not None and "cancelled" in push.detail
    # the SMSC is back; the outbox tries the push again: it goes out, with the same counter
    again = await start_smsc()
    again.register_handset(AES_MSISDN, card.on_sms)
    other = StkPushService(await connect(again.address[1]), keystore, store, reply_to=REPLY_TO)
    result = await other.push(offer(), 2.0)
    assert result.cntr == push.cntr == 1
    assert [packet.cntr for packet, _ in card.received] == [1] and not card.errors
    stored = store.push_by_offer("offer-1")
    assert stored is not None and stored.message_id == result.message_id and stored.state == "sent"
    # accepted now: never again
    with pytest.raises(DuplicateRecord):
        await other.push(offer(), 3.0)
    assert len(again.messages) == 1


async def test_push_killed_mid_submit_is_pushed_after_the_restart(
    *,
    service: StkPushService,
    aes_card: TestCard,
    smsc: SmscSimulator,
    store: SqliteStore,
    keystore: KeyStore,
) -> None:
    # what a process killed between recording the push and the SMSC's answer leaves behind
    cntr = store.next_ota_counter(AES_ICCID)
    store.record_push(
        "offer-1", AES_MSISDN, AES_ICCID, bytes.fromhex("BFFF01"), cntr, None, "submitting", 1.0
    )
    result = await service.push(offer(), 2.0)
    assert result.cntr == cntr
    assert [packet.cntr for packet, _ in aes_card.received] == [cntr] and not aes_card.errors
    assert store.ota_counter(AES_ICCID) == cntr  # no counter spent on the retry


async def test_push_the_smsc_took_before_the_crash_is_not_shown_twice(
    *,
    service: StkPushService,
    aes_card: TestCard,
    smsc: SmscSimulator,
    store: SqliteStore,
) -> None:
    # the SMSC took the first copy and the card showed it; the process died before it stored the id
    first = await service.push(offer(), 1.0)
    store.update_push("offer-1", state="submitting", now=1.5)
    with store._transaction() as db:  # the message id was never written
        db.execute("UPDATE stk_pushes SET message_id = NULL WHERE offer_id = 'offer-1'")
    await service.push(offer(), 2.0)
    # the second copy carries the same counter: the card's replay check refuses it
    assert [packet.cntr for packet, _ in aes_card.received] == [first.cntr]
    assert len(aes_card.errors) == 1 and "CNTR 1 refused" in str(aes_card.errors[0])


async def test_push_refused_by_the_smsc_can_be_tried_again(
    start_smsc: StartSmsc, connect: Connect, keystore: KeyStore, store: SqliteStore
) -> None:
    smsc = await start_smsc("nack:2")  # the first submit is taken, the second refused, the third taken
    service = StkPushService(await connect(smsc.address[1]), keystore, store, reply_to=REPLY_TO)
    await service.push(offer("warm-up"), 1.0)
    with pytest.raises(Exception, match="ESME_RSYSERR"):
        await service.push(offer(), 2.0)
    assert (push := store.push_by_offer("offer-1")) is not None and push.state == "refused"
    result = await service.push(offer(), 3.0)
    # the refused copy never went out: the retry takes a fresh counter
    assert (push.cntr, result.cntr) == (2, 3)
    stored = store.push_by_offer("offer-1")
    assert stored is not None and stored.state == "sent" and stored.message_id == result.message_id
    assert stored.cntr == 3 and store.push_by_counter(stored.iccid, 3) == stored


async def test_push_the_smsc_never_answered_keeps_its_counter(
    start_smsc: StartSmsc, connect: Connect, keystore: KeyStore, store: SqliteStore
) -> None:
    """No submit_sm_resp is no answer, not a refusal: the SMSC may have taken that copy, so the next
    attempt carries the same counter (the card refuses it as a replay if the first got through)."""
    silent = await start_smsc("blackhole")
    client = await connect(silent.address[1], response_timeout=0.2, submit_attempts=1)
    service = StkPushService(client, keystore, store, reply_to=REPLY_TO)
    with pytest.raises(SubmitError, match="no response"):
        await service.push(offer(), 1.0)
    push = store.push_by_offer("offer-1")
    assert push is not None and push.state == "submit_failed" and push.message_id is None
    smsc = await start_smsc()
    card = new_card()
    smsc.register_handset(AES_MSISDN, card.on_sms)
    again = StkPushService(await connect(smsc.address[1]), keystore, store, reply_to=REPLY_TO)
    result = await again.push(offer(), 2.0)
    assert result.cntr == push.cntr and store.ota_counter(AES_ICCID) == push.cntr


async def test_push_refused_by_the_smsc_reaches_a_card_another_push_reached_since(
    start_smsc: StartSmsc, connect: Connect, keystore: KeyStore, store: SqliteStore
) -> None:
    """The card counts strictly ("higher"): a re-push with the refused attempt's counter would be
    below the counter of the push that reached it in between, and refused as a replay."""
    smsc = await start_smsc("nack:3")  # every third submit refused
    card = new_card()
    smsc.register_handset(AES_MSISDN, card.on_sms)
    service = StkPushService(await connect(smsc.address[1]), keystore, store, reply_to=REPLY_TO)
    await service.push(offer("warm-up-1"), 1.0)  # CNTR 1
    await service.push(offer("warm-up-2"), 2.0)  # CNTR 2
    with pytest.raises(Exception, match="ESME_RSYSERR"):
        await service.push(offer("offer-1"), 3.0)  # CNTR 3, refused by the SMSC
    await service.push(offer("offer-2"), 4.0)  # CNTR 4 reaches the card
    result = await service.push(offer("offer-1"), 5.0)
    assert result.cntr == 5
    await wait_until(lambda: len(card.received) == 4, what="the card to get four pushes")
    assert [packet.cntr for packet, _ in card.received] == [1, 2, 4, 5]
    assert not card.errors  # with CNTR 3 again the card would have refused it as a replay


async def test_an_offer_in_flight_is_not_pushed_twice_at_once(
    *,
    service: StkPushService,
    client: SmppClient,
    tap: tuple[SubmitTap, int],
    smsc: SmscSimulator,
    store: SqliteStore,
) -> None:
    await smsc.stop()  # the first push waits for a bind that does not come
    await wait_until(lambda: not client.is_bound, what="the link to drop")
    first = asyncio.create_task(service.push(offer(), 1.0))
    await wait_until(lambda: store.push_by_offer("offer-1") is not None, what="the push recorded")
    with pytest.raises(DuplicateRecord, match="in flight"):
        await service.push(offer(), 2.0)
    await client.close(drain_timeout=0.1)
    with pytest.raises(TransportError):
        await asyncio.wait_for(first, WAIT)
