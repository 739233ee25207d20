"""Prometheus metrics (gateway/metrics.py) of a whole gateway on loopback, scraped over the admin API.

The journey starts where it does in production: a Gy CCR-U reporting the quota exhausted reaches the
gateway's Diameter peer (from ``simulators.network.DiameterEmitter`` over a real connection), trigger
detection raises the trigger, the DSTK offer goes out over SMPP, the SIM's OK activates the package in
billing. The scrape before and after is parsed with prometheus-client's own parser.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import prometheus_client
import pytest
from gateway_bed import DIAMETER, MSISDNS, Network, exhausted, kinds, open_network, until
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from campaign_core.model import RecordKind
from gateway.ingest.diameter import DiameterClient, DiameterSettings
from gateway.metrics import CONTENT_TYPE, GatewayMetrics, reason_class
from simulators.handset import ReactionDelay, UserAction, UserPolicy
from simulators.network import DiameterDialect, DiameterEmitter, UsageMeter

FAMILIES = {
    "tgw_smpp_pdus",
    "tgw_smpp_deliver_sm",
    "tgw_smpp_submit_sm",
    "tgw_smpp_licence_tps",
    "tgw_smpp_window_occupancy",
    "tgw_smpp_window_size",
    "tgw_smpp_bound",
    "tgw_smpp_resent",
    "tgw_smpp_throttled",
    "tgw_smpp_reconnects",
    "tgw_channel_stk_pushes",
    "tgw_channel_sms_sent",
    "tgw_channel_sms_parts",
    "tgw_channel_replies",
    "tgw_channel_submit_failures",
    "tgw_channel_answers",
    "tgw_delivery_receipts",
    "tgw_ingest_events",
    "tgw_ingest_bad_events",
    "tgw_ingest_duplicates",
    "tgw_ingest_triggers",
    "tgw_ingest_trigger_errors",
    "tgw_gateway_triggers",
    "tgw_diameter_answers",
    "tgw_diameter_open_peers",
    "tgw_campaign_decisions",
    "tgw_campaign_suppressions",
    "tgw_campaign_activations",
    "tgw_campaign_trigger_to_send_seconds",
    "tgw_campaigns",
    "tgw_ussd_dialogues",
    "tgw_ussd_timeouts",
    "tgw_ussd_failures",
}


@pytest.fixture
async def network(tmp_path: Path) -> AsyncIterator[Network]:
    async for net in open_network(tmp_path):
        yield net


def _samples(text: str) -> tuple[set[str], list[Sample]]:
    families = list(text_string_to_metric_families(text))
    return {f.name for f in families}, [sample for f in families for sample in f.samples]


def _value(samples: Iterable[Sample], name: str, **labels: str) -> float:
    """The sample ``name`` with exactly these labels (0 when absent)."""
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0.0


async def test_a_journey_moves_the_metrics(network: Network) -> None:
    msisdn = MSISDNS[0]
    network.handsets[msisdn].user = UserPolicy(UserAction.ACCEPT, delay=ReactionDelay.fixed(0.1))
    gateway = await network.gateway(tps=200.0, ingest={"diameter": DIAMETER})
    admin = await network.admin(gateway)

    before = await network.call(admin, "GET", "/metrics")
    assert before.status == 200
    assert before.headers["Content-Type"] == CONTENT_TYPE
    names, samples = _samples(before.body.decode())
    assert names >= FAMILIES, FAMILIES - names
    assert _value(samples, "tgw_smpp_licence_tps") == 200.0
    assert _value(samples, "tgw_smpp_window_size") == 50
    assert _value(samples, "tgw_smpp_bound") == 1
    assert _value(samples, "tgw_campaigns", state="running") == 1
    assert _value(samples, "tgw_gateway_triggers_total") == 0

    # the PCEF/OCS side: a Gy session whose quota runs out
    address = gateway.ingest.diameter_address
    assert address is not None
    client = DiameterClient(
        DiameterSettings(origin_host="ocs.localdomain", origin_realm="localdomain"), *address
    )
    await client.start()
    try:
        await client.wait_open(5.0)
        emitter = DiameterEmitter(
            client,
            DiameterDialect.GY,
            origin_host="ocs.localdomain",
            origin_realm="localdomain",
            destination_realm="localdomain",
            destination_host="gw.localdomain",
        )
        meter = UsageMeter((90,))
        meter.subscribe(msisdn, "data_1000mb", 1_000_000)
        await emitter.emit(meter.use(msisdn, 1_000_000, network.clock() - 2))
        await until(
            lambda: RecordKind.FULFILLED in kinds(gateway, msisdn), describe=lambda: kinds(gateway, msisdn)
        )
        # the confirmation SMS's receipt is the last thing to come back
        await until(
            lambda: gateway.executor.counters.receipts >= 2, describe=lambda: gateway.executor.counters
        )
        after = await network.call(admin, "GET", "/metrics")
    finally:
        await client.stop()
    names, samples = _samples(after.body.decode())
    assert names >= FAMILIES

    # Diameter and ingest: CCR-I and CCR-U answered 2001, one exhausted trigger
    assert _value(samples, "tgw_diameter_answers_total", command_code="272", result_code="2001") == 2
    assert _value(samples, "tgw_diameter_open_peers") == 1
    assert _value(samples, "tgw_ingest_events_total") == 1
    assert _value(samples, "tgw_ingest_triggers_total", kind="exhausted") == 1
    assert _value(samples, "tgw_gateway_triggers_total") == 1
    # SMPP: the push and the confirmation went out and came back with their receipts
    pdus = "tgw_smpp_pdus_total"
    assert _value(samples, pdus, direction="out", command="bind_transceiver", status="ESME_ROK") == 1
    assert _value(samples, pdus, direction="in", command="bind_transceiver_resp", status="ESME_ROK") == 1
    assert _value(samples, pdus, direction="out", command="submit_sm", status="ESME_ROK") >= 2
    assert _value(samples, pdus, direction="in", command="submit_sm_resp", status="ESME_ROK") >= 2
    assert _value(samples, "tgw_smpp_submit_sm_total") >= 2
    assert _value(samples, "tgw_smpp_deliver_sm_total", type="receipt") >= 2
    received = _value(samples, pdus, direction="in", command="deliver_sm", status="ESME_ROK")
    assert received >= 2
    # each deliver_sm was answered
    assert _value(samples, pdus, direction="out", command="deliver_sm_resp", status="ESME_ROK") == received
    assert _value(samples, "tgw_smpp_window_occupancy") == 0
    assert _value(samples, "tgw_delivery_receipts_total", state="DELIVRD") >= 1
    assert _value(samples, "tgw_channel_stk_pushes_total") == 1
    assert _value(samples, "tgw_channel_answers_total", channel="stk_ok") == 1
    # the campaign's decisions, the activation and the trigger-to-send latency
    assert (
        _value(samples, "tgw_campaign_decisions_total", campaign="", kind="trigger") == 1
    )  # before any campaign
    for kind in ("eligible", "scored", "contact", "response", "fulfilled"):
        assert _value(samples, "tgw_campaign_decisions_total", campaign="upsell_new", kind=kind) >= 1, kind
    assert _value(samples, "tgw_campaign_activations_total", campaign="upsell_new") == 1
    latency = "tgw_campaign_trigger_to_send_seconds"
    assert _value(samples, f"{latency}_count", campaign="upsell_new") == 1
    total = _value(samples, f"{latency}_sum", campaign="upsell_new")
    assert 1.0 <= total < 30.0  # the usage event was two seconds old (whole seconds on the wire)
    assert _value(samples, f"{latency}_bucket", campaign="upsell_new", le="+Inf") == 1
    assert _value(samples, f"{latency}_bucket", campaign="upsell_new", le="0.5") == 0


async def test_suppressions_by_reason_class(network: Network) -> None:
    """A second trigger while the first offer is open is suppressed: the reason's class is the label."""
    msisdn = MSISDNS[1]
    gateway = await network.gateway()
    metrics = GatewayMetrics(gateway)  # a second one beside the admin API's: registries are separate
    await gateway.on_trigger(exhausted(msisdn, network.clock, "ev-1"))
    await until(lambda: RecordKind.CONTACT in kinds(gateway, msisdn))
    await gateway.on_trigger(exhausted(msisdn, network.clock, "ev-2", period="p2"))
    suppressed = [r for r in gateway.store.records_of(msisdn) if r.kind is RecordKind.SUPPRESSED]
    assert suppressed and "still open" in str(suppressed[0].detail["reason"])
    _, samples = _samples(metrics.render().decode())
    assert (
        _value(
            samples, "tgw_campaign_suppressions_total", campaign="upsell_new", stage="trigger", reason="offer"
        )
        == 1
    )
    assert _value(samples, "tgw_campaign_decisions_total", campaign="upsell_new", kind="suppressed") == 1
    assert _value(samples, "tgw_campaign_activations_total", campaign="upsell_new") == 0
    # nothing of ours in the process-wide registry
    assert not [m for m in prometheus_client.REGISTRY.collect() if m.name.startswith("tgw_")]


async def test_an_unlimited_licence_is_infinite(network: Network) -> None:
    gateway = await network.gateway()
    _, samples = _samples(GatewayMetrics(gateway).render().decode())
    assert math.isinf(_value(samples, "tgw_smpp_licence_tps"))
    assert _value(samples, "tgw_diameter_open_peers") == 0
    assert [s for s in samples if s.name == "tgw_diameter_answers_total"] == []


def test_reason_classes_are_bounded() -> None:
    assert reason_class("cap: 2 promotional sms per day") == "cap"
    assert reason_class("tenure 20 days < 90") == "tenure"
    assert reason_class("segment 'postpaid' not in ['prepaid']") == "segment"
    assert reason_class("quiet hours") == "quiet hours"
    assert reason_class("credit scoring failed: timeout after 3.0 s") == "credit scoring failed"
    assert reason_class("offer 0f3a9c2b1d4e5f60718a of this campaign is still open") == "offer"
    assert reason_class("no longer eligible: segment 'x' excluded") == "no longer eligible"
    assert reason_class("arbitration: upsell_old goes first") == "arbitration"
    assert reason_class("no package meets the package rules") == "no package meets the package rules"
    assert reason_class("") == "unspecified"
    assert reason_class(None) == "unspecified"
    assert reason_class("42") == "other"
