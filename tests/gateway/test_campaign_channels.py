"""The campaign engine's commands on the real channels (gateway/campaigns/channels.py, gateway/app.py).

The whole gateway (``gateway.app.Gateway``) runs against the SMSC simulator with handsets and SIM cards,
and the billing simulator over HTTP, on loopback. Each test feeds the engine a trigger and follows the
journey over SMPP, the SIM toolkit, USSD and billing: the paths the simulation does not take by itself
(an SMS reply, a long SMS's receipts, the "my offers" menu, a refused submit, a restart in the middle of
a push).
"""

from __future__ import annotations

import asyncio
import logging
import re
from decimal import Decimal

import pytest
from gateway_bed import MSISDNS, Network, exhausted, kinds, until

from campaign_core.model import (
    DeliveryReported,
    Profile,
    ProfileUpdated,
    RecordKind,
    ResponseChannel,
    SendSms,
    SubmitFailed,
)
from gateway.app import trigger_event
from gateway.stk.events import StkRejectedBySim
from protocols.stk.ota import ResponseStatus
from simulators.handset import LogKind, ReactionDelay, UserAction, UserPolicy


async def test_trigger_to_activation_over_dstk(network: Network, caplog: pytest.LogCaptureFixture) -> None:
    """The reference journey's first stage on the wire: billing's profile and score, the secured
    DSTK push, the SIM's OK, billing's activation and the confirmation SMS to the handset; each
    decision is one log line carrying the subscriber, campaign and offer ids."""
    caplog.set_level(logging.INFO, logger="tgw.campaign")
    msisdn = MSISDNS[0]
    phone = network.handsets[msisdn]
    phone.user = UserPolicy(UserAction.ACCEPT, delay=ReactionDelay.fixed(0.1))
    gateway = await network.gateway()
    try:
        await gateway.on_trigger(exhausted(msisdn, network.clock))
        await until(
            lambda: RecordKind.FULFILLED in kinds(gateway, msisdn),
            describe=lambda: [(r.kind.value, dict(r.detail)) for r in gateway.store.records_of(msisdn)],
        )
        await until(lambda: any("activated" in text.lower() or "MB" in text for text in phone.inbox))
        trail = kinds(gateway, msisdn)
    finally:
        await gateway.stop()
    assert trail.index(RecordKind.SCORED) < trail.index(RecordKind.CONTACT) < trail.index(RecordKind.RESPONSE)
    activation = network.billing.activations()
    assert len(activation) == 1 and activation[0].msisdn == msisdn
    assert phone.entries(LogKind.DIALOG_SHOWN)  # the dialog really reached the SIM and the screen
    assert gateway.executor.counters.stk_pushes == 1
    decisions = [r for r in caplog.records if r.name == "tgw.campaign"]
    assert [r.getMessage().split()[0] for r in decisions][:2] == ["trigger", "eligible"]
    # times in a decision's detail read as UTC, as tgw explain shows them, not as epoch seconds
    assert re.search(r" event_time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", decisions[0].getMessage())
    fulfilled = next(r for r in decisions if r.getMessage().startswith("fulfilled"))
    assert fulfilled.__dict__["msisdn"] == msisdn and fulfilled.__dict__["campaign_id"] == "upsell_new"
    assert fulfilled.__dict__["offer_id"] == activation[0].offer_id


async def test_a_push_the_card_refuses_moves_the_journey_to_its_sms_at_once(network: Network) -> None:
    """An authenticated PoR refusing the DSTK push (here: counter blocked) means the dialog was never
    shown: the step fails and the SMS goes out now, not after the step's wait. A forged (unauthenticated)
    refusal changes nothing."""
    msisdn = MSISDNS[0]
    phone = network.handsets[msisdn]  # ignores the dialog: without the refusal the SMS waits for `wait`
    gateway = await network.gateway()
    try:
        await gateway.on_trigger(exhausted(msisdn, network.clock))
        await until(lambda: gateway.executor.counters.stk_pushes == 1)
        offer_id = next(r.offer_id for r in gateway.store.records_of(msisdn) if r.kind is RecordKind.CONTACT)
        assert offer_id is not None
        stk = gateway.executor._on_stk  # what the STK push service hands the executor
        forged = StkRejectedBySim(offer_id, msisdn, ResponseStatus.CNTR_BLOCKED, False, network.clock())
        await stk(forged)
        assert not any("*123*" in text for text in phone.inbox)
        assert gateway.executor.counters.sms_sent == 0
        await stk(StkRejectedBySim(offer_id, msisdn, ResponseStatus.CNTR_BLOCKED, True, network.clock()))
        await until(lambda: any("*123*" in text for text in phone.inbox))  # the SMS with the USSD codes
        delivered = [r.detail for r in gateway.store.records_of(msisdn) if r.kind is RecordKind.DELIVERED]
    finally:
        await gateway.stop()
    assert {"step": 0, "delivered": False, "state": "SIM_CNTR_BLOCKED"} in delivered
    assert gateway.executor.counters.sms_sent == 1


async def test_an_sms_reply_answers_the_offer(network: Network) -> None:
    """A handset without the SIM toolkit gets the SMS; a text back to the short code naming a volume
    of the offer is the answer (SMS_REPLY) and activates that package."""
    msisdn = MSISDNS[1]
    gateway = await network.gateway()
    try:
        # billing says the handset cannot show dialogs: the journey skips to the SMS
        await gateway.runner.submit(
            ProfileUpdated(Profile(msisdn, segment="prepaid", tenure_days=400, stk_capable=False)),
            network.clock(),
        )
        await gateway.runner.submit(trigger_event(exhausted(msisdn, network.clock)), network.clock())
        phone = network.handsets[msisdn]
        await until(lambda: any("*123*" in text for text in phone.inbox))
        status = await network.smsc.inject_mo(msisdn, "12345", b"100 MB")  # the volume, as people write it
        assert status == 0
        await until(
            lambda: RecordKind.FULFILLED in kinds(gateway, msisdn),
            describe=lambda: [(r.kind.value, dict(r.detail)) for r in gateway.store.records_of(msisdn)],
        )
        responses = [r for r in gateway.store.records_of(msisdn) if r.kind is RecordKind.RESPONSE]
    finally:
        await gateway.stop()
    assert responses[0].detail["channel"] == ResponseChannel.SMS_REPLY.value
    assert network.billing.activations()[0].package_id == "data_100mb"
    assert gateway.executor.counters.answers == {"sms_reply": 1}


async def test_my_offers_menu_buys_the_offered_package(network: Network) -> None:
    """*123# -> My offers lists the open offer; choosing it and confirming answers the offer."""
    msisdn = MSISDNS[2]
    gateway = await network.gateway()
    try:
        await gateway.runner.submit(
            ProfileUpdated(Profile(msisdn, segment="prepaid", tenure_days=400, stk_capable=False)),
            network.clock(),
        )
        await gateway.runner.submit(trigger_event(exhausted(msisdn, network.clock)), network.clock())
        phone = network.handsets[msisdn]
        await until(lambda: any("*123*" in text for text in phone.inbox))
        dialog = await phone.dial("*123#")
        screens = [(await dialog.next_screen(10)).text]
        for answer in ("2", "1", "1"):  # My offers -> the first offer -> Yes, buy
            await dialog.answer(answer)
            screens.append((await dialog.next_screen(10)).text)
        await until(lambda: RecordKind.FULFILLED in kinds(gateway, msisdn))
    finally:
        await gateway.stop()
    assert "MB" in screens[1]  # the offers screen lists the offered packages
    assert "-day" in screens[1]  # each option named by its validity ...
    assert "100MB 100MB" not in screens[1]  # ... not by its volume once more
    assert screens[2].startswith("Buy ") and "(100MB)" in screens[2]
    assert len(network.billing.activations()) == 1


async def test_balance_screen_names_the_currency(network: Network) -> None:
    """*123# -> Check balance: billing's balance and credit limit, with the catalogue's currency."""
    msisdn = MSISDNS[1]
    gateway = await network.gateway()
    try:
        dialog = await network.handsets[msisdn].dial("*123#")
        await dialog.next_screen(10)
        await dialog.answer("4")
        screen = (await dialog.next_screen(10)).text
    finally:
        await gateway.stop()
    currency = gateway.campaigns.catalogue.currency
    assert currency and screen.startswith("Your balance is ")
    assert screen.count(f" {currency}") == 2, screen


async def test_long_sms_is_delivered_when_every_part_is(network: Network) -> None:
    msisdn = MSISDNS[0]
    gateway = await network.gateway()
    reported: list[DeliveryReported] = []
    submit = gateway.runner.submit

    async def spy(event: object, now: float) -> object:
        if isinstance(event, DeliveryReported):
            reported.append(event)
        return await submit(event, now)  # type: ignore[arg-type]

    gateway.runner.submit = spy  # type: ignore[method-assign]
    try:
        text = "A long informational text. " * 12  # three concatenated parts
        await gateway.executor.execute(
            SendSms("info-1:0", msisdn, "upsell_new", text, None, promotional=False)
        )
        await until(lambda: bool(reported))
        await asyncio.sleep(0.3)  # no second report for the other parts
    finally:
        await gateway.stop()
    assert reported == [DeliveryReported("info-1:0", True, "DELIVRD")]
    assert gateway.executor.counters.sms_parts == 3


async def test_a_refused_submit_is_reported(network: Network) -> None:
    msisdn = MSISDNS[1]
    gateway = await network.gateway()
    failures: list[SubmitFailed] = []
    submit = gateway.runner.submit

    async def spy(event: object, now: float) -> object:
        if isinstance(event, SubmitFailed):
            failures.append(event)
            return []
        return await submit(event, now)  # type: ignore[arg-type]

    gateway.runner.submit = spy  # type: ignore[method-assign]
    try:
        # no SIM keys for this number: the push cannot be built, the engine hears why
        gateway.stk.keystore._by_msisdn.pop(msisdn)  # type: ignore[union-attr]
        from campaign_core.model import OfferOption, Payment, PushStk

        option = OfferOption("data_100mb", 100, Decimal("20.00"), Payment.BALANCE, "*123*100#")
        await gateway.executor.execute(
            PushStk("off-x:0", "off-x", msisdn, "upsell_new", "confirm", (option,), "Buy?")
        )
        await until(lambda: bool(failures))
    finally:
        await gateway.stop()
    assert failures[0].command_id == "off-x:0" and "SIM keys" in failures[0].reason


async def test_restart_does_not_push_twice(network: Network) -> None:
    """The gateway stops after the push was sent but before the SMSC's answer was recorded as done:
    the restarted runner re-executes the PushStk, the STK store knows the offer, and the SIM sees one
    dialog."""
    msisdn = MSISDNS[0]
    gateway = await network.gateway()
    await gateway.on_trigger(exhausted(msisdn, network.clock))
    await until(lambda: RecordKind.CONTACT in kinds(gateway, msisdn))
    # make the outbox forget that the push was accepted, as a crash before that write would
    contact = next(r for r in gateway.store.records_of(msisdn) if r.kind is RecordKind.CONTACT)
    command_id = str(contact.detail["command_id"])
    await gateway.stop()
    import sqlite3

    db = sqlite3.connect(network.state / "campaigns.sqlite")
    with db:
        updated = db.execute(
            "UPDATE outbox SET done_at = NULL, done_by = NULL, done_note = NULL WHERE command_id = ?",
            (command_id,),
        )
    db.close()
    assert updated.rowcount == 1
    again = await network.gateway()
    try:
        assert again.recovery is not None and again.recovery.re_executed >= 1
        await asyncio.sleep(0.5)
    finally:
        await again.stop()
    assert len(network.handsets[msisdn].entries(LogKind.DIALOG_SHOWN)) == 1
    assert again.executor.counters.stk_pushes == 1  # taken as accepted, not sent again
