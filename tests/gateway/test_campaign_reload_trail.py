"""The trail of a reload and a pause through the whole gateway (gateway/app.py with the engine's
``paused`` and ``dropped``): an offer a reload drops is closed "dropped" in the store with its reason
and logged with its ids, once across a restart, and one of its USSD codes dialled after the reload is
told the offer ended; a trigger while its campaign is paused is recorded."""

from __future__ import annotations

import logging
import shutil

import pytest
from gateway_bed import CAMPAIGNS, MSISDNS, Network, exhausted, kinds, until

from campaign_core.model import RecordKind


async def test_a_reload_that_drops_an_offer_closes_it_in_the_trail(
    network: Network, caplog: pytest.LogCaptureFixture
) -> None:
    msisdn = MSISDNS[0]  # the handset ignores the dialog: the offer stays open
    gateway = await network.gateway()
    await gateway.on_trigger(exhausted(msisdn, network.clock))
    await until(lambda: RecordKind.CONTACT in kinds(gateway, msisdn))
    (view,) = gateway.engine.open_offers(msisdn)
    offer, code = view.offer_id, view.options[0].ussd_code
    (network.campaigns / "upsell_new.yaml").unlink()
    shutil.copy(CAMPAIGNS / "upsell_old.yaml", network.campaigns / "upsell_old.yaml")
    with caplog.at_level(logging.WARNING, logger="gateway.app"):
        result = gateway.reload()
    assert result.dropped_offers == (offer,)
    closed = gateway.store.records_of(msisdn)[-1]
    assert closed.kind is RecordKind.CLOSED and closed.offer_id == offer
    assert dict(closed.detail) == {
        "outcome": "dropped",
        "reason": "campaign upsell_new is no longer in the campaign directory",
    }
    logged = [r for r in caplog.records if getattr(r, "offer_id", None) == offer]
    assert logged and logged[0].__dict__["msisdn"] == msisdn and "upsell_new" in logged[0].getMessage()
    # the subscriber dials one of the dropped offer's codes: told it ended, not that there was none
    dialog = await network.handsets[msisdn].dial(code)
    screen = await dialog.next_screen(10)
    assert screen.text == "Sorry, this offer has expired."
    rejected = gateway.store.records_of(msisdn)[-1]
    assert rejected.kind is RecordKind.REJECTED_RESPONSE and rejected.offer_id == offer
    assert rejected.detail["reason"] == "dropped" and rejected.campaign_id == "upsell_new"
    await gateway.stop()
    network.gateways.remove(gateway)
    again = await network.gateway()  # the restart restores the snapshot of the reload: nothing twice
    trail = again.store.records_of(msisdn)
    assert [r.offer_id for r in trail if r.kind is RecordKind.CLOSED] == [offer]


async def test_a_restart_with_a_campaign_gone_closes_its_offers_once(network: Network) -> None:
    msisdn = MSISDNS[1]
    gateway = await network.gateway()
    await gateway.on_trigger(exhausted(msisdn, network.clock))
    await until(lambda: RecordKind.CONTACT in kinds(gateway, msisdn))
    (offer,) = [view.offer_id for view in gateway.engine.open_offers(msisdn)]
    await gateway.stop()  # writes its snapshot with the offer open
    network.gateways.remove(gateway)
    (network.campaigns / "upsell_new.yaml").unlink()
    shutil.copy(CAMPAIGNS / "upsell_old.yaml", network.campaigns / "upsell_old.yaml")
    dropped = []
    for _ in range(2):  # the second start finds the drop stored: not recorded again
        restarted = await network.gateway()
        assert restarted.recovery is not None
        dropped.append(restarted.recovery.dropped)
        closed = [r for r in restarted.store.records_of(msisdn) if r.kind is RecordKind.CLOSED]
        assert [(r.offer_id, r.detail["outcome"]) for r in closed] == [(offer, "dropped")]
        await restarted.stop()
        network.gateways.remove(restarted)
    assert dropped == [(offer,), ()]


async def test_a_trigger_while_the_campaign_is_paused_is_recorded(network: Network) -> None:
    msisdn = MSISDNS[2]
    gateway = await network.gateway()
    gateway.pause("upsell_new")
    await gateway.on_trigger(exhausted(msisdn, network.clock))
    trail = gateway.store.records_of(msisdn)
    assert [r.kind for r in trail] == [RecordKind.TRIGGER, RecordKind.SUPPRESSED]
    assert trail[1].campaign_id == "upsell_new"
    assert trail[1].detail["reason"] == "paused" and trail[1].detail["stage"] == "trigger"
    gateway.resume("upsell_new")
    await gateway.on_trigger(exhausted(msisdn, network.clock, period="p2"))
    assert RecordKind.ELIGIBLE in kinds(gateway, msisdn)
