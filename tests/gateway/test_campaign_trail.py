"""What the decision trail and the channels make of the cases exploratory testing found unclear
(gateway/campaigns/channels.py, gateway/campaigns/cli.py, through the real store): an activation whose
outcome is unknown is told by ``ActivationFailed.outcome_known``, not by the words of its reason;
``tgw explain`` shows times as UTC, a paused campaign's trigger and an offer a reload dropped."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

from campaign.engine_fixtures import MSISDN, NEW_UPSELL, OLD_UPSELL, T0, campaign_set, exhausted
from gateway_bed import MSISDNS, Network, kinds, until
from gateway_bed import exhausted as usage_exhausted

from campaign_core.engine import Engine
from campaign_core.model import (
    Activate,
    Activated,
    ActivationFailed,
    CreditFailed,
    CreditScored,
    Event,
    Profile,
    ProfileUpdated,
    Purchased,
    QueryCredit,
    RecordKind,
    TriggerKind,
    TriggerRaised,
    offer_id,
)
from gateway.billing.client import BillingClient
from gateway.campaigns.cli import explain
from gateway.campaigns.store import SqliteCampaignStore
from simulators.handset import ReactionDelay, UserAction, UserPolicy

OFFER = offer_id("upsell-exhaustion", f"{MSISDN}/data-1gb/p1/100")
OLD_OFFER = offer_id("upsell-threshold-old", f"{MSISDN}/data-1gb/p1/90")


class AnswerLostOnce:
    """Billing over a connection that loses the answer to the first activation after billing applied
    it. The reason says nothing of the outcome in words the channels could match: only
    ``outcome_known`` tells them."""

    def __init__(self, billing: BillingClient) -> None:
        self.billing = billing
        self.activations = 0

    async def score(self, command: QueryCredit) -> CreditScored | CreditFailed:
        return await self.billing.score(command)

    async def activate(self, command: Activate) -> Activated | ActivationFailed:
        self.activations += 1
        result = await self.billing.activate(command)
        if self.activations == 1:
            return ActivationFailed(command.offer_id, "connection reset by peer", outcome_known=False)
        return result


async def test_an_activation_without_an_answer_is_retried_not_failed(network: Network) -> None:
    """Before: the channels matched "outcome unknown" in the reason; an unknown outcome reported in
    other words closed the offer "failed" and told the subscriber they were not charged, while billing
    had charged them."""
    msisdn = MSISDNS[0]
    phone = network.handsets[msisdn]
    phone.user = UserPolicy(UserAction.ACCEPT, delay=ReactionDelay.fixed(0.1))
    gateway = await network.gateway()
    billing = AnswerLostOnce(network.client)
    gateway.executor.billing = billing
    gateway.executor.activation_retry_initial = 0.1
    try:
        await gateway.on_trigger(usage_exhausted(msisdn, network.clock))
        await until(
            lambda: (
                RecordKind.FULFILLED in kinds(gateway, msisdn) or RecordKind.FAILED in kinds(gateway, msisdn)
            ),
            timeout=20.0,
            describe=lambda: kinds(gateway, msisdn),
        )
        await until(lambda: len(phone.inbox) >= 1, timeout=10.0)
        trail = kinds(gateway, msisdn)
    finally:
        await gateway.stop()
    assert billing.activations == 2  # the same offer id once more: billing answered with the stored one
    assert RecordKind.FAILED not in trail and trail[-2:] == [RecordKind.FULFILLED, RecordKind.CLOSED]
    assert len(network.billing.activations()) == 1
    assert not any("not been charged" in text for text in phone.inbox), phone.inbox


# --- tgw explain ------------------------------------------------------------------------------------


def stored(path: Path, events: list[tuple[float, Event]], engine: Engine) -> None:
    """Handle each event and store it with its records, as the runner does."""
    with SqliteCampaignStore(path) as store:
        for now, event in events:
            store.append(event, now, engine.handle(event, now))


def explained(path: Path, msisdn: str = MSISDN, *, as_json: bool = False) -> str:
    out = io.StringIO()
    with SqliteCampaignStore(path) as store:
        explain(store, msisdn, out, as_json=as_json)
    return out.getvalue()


def test_explain_shows_the_times_in_a_record_detail_as_utc(tmp_path: Path) -> None:
    """Before: ``until=1780380000.0``, ``event_time=1780304398.0``, ``at=...`` as epoch floats next to
    the records' own ISO times. The JSON lines keep the numbers."""
    late = T0 + 10 * 3600  # 22:00 in Nairobi: quiet hours until 08:00 local (05:00 UTC)
    path = tmp_path / "campaigns.db"
    stored(
        path,
        [
            (late - 10, ProfileUpdated(Profile(MSISDN, segment="prepaid"))),
            (late, exhausted(at=late - 2.0)),
            (late + 1, CreditScored(f"{OFFER}:score", MSISDN, Decimal(0), Decimal(100))),
            (late + 2, Purchased("p1", MSISDN, "data-100mb", Decimal(50), late + 1.5)),
        ],
        Engine(campaign_set()),
    )
    text = explained(path)
    assert "event_time=2026-06-01T18:59:58.000Z" in text
    assert "until=2026-06-02T05:00:00.000Z" in text
    assert "at=2026-06-01T19:00:01.500Z" in text
    assert "event_time=17" not in text and "until=17" not in text and "at=17" not in text
    lines = [json.loads(line) for line in explained(path, as_json=True).splitlines()]
    details = [line["detail"] for line in lines if line["type"] == "Record"]
    assert any(detail.get("until") == 1780376400.0 for detail in details)


def test_explain_shows_a_paused_trigger_and_a_dropped_offer(tmp_path: Path) -> None:
    """Before: nothing at all for a trigger while the campaign was paused, and a trail that stopped at
    the offer a reload dropped. Both come from the engine's records, stored as every record is."""
    path = tmp_path / "campaigns.db"
    running = Engine(campaign_set(campaigns=[NEW_UPSELL, OLD_UPSELL]), paused={"upsell-exhaustion"})
    threshold = TriggerRaised(f"{MSISDN}/data-1gb/p1/90", TriggerKind.THRESHOLD, MSISDN, T0, "data-1gb", 90)
    stored(path, [(T0, exhausted()), (T0 + 5, threshold)], running)
    reloaded = Engine(campaign_set(campaigns=[NEW_UPSELL]), paused={"upsell-exhaustion"})
    assert reloaded.restore(json.loads(json.dumps(running.snapshot()))) == [OLD_OFFER]
    stored(path, [(T0 + 60, event) for event in reloaded.dropped], reloaded)
    lines = [line for line in explained(path).splitlines() if line.startswith("20")]  # the records
    paused = next(line for line in lines if "suppressed" in line)
    assert "upsell-exhaustion" in paused and "reason=paused" in paused and "stage=trigger" in paused
    assert "closed" in lines[-1] and f"offer={OLD_OFFER}" in lines[-1]
    assert "outcome=dropped" in lines[-1]
    assert 'reason="campaign upsell-threshold-old is no longer in the campaign directory"' in lines[-1]
