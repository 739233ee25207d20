"""Prometheus metrics of a running gateway (issue #9, "Prometheus /metrics via prometheus-client").

``GatewayMetrics(gateway)`` keeps its metrics in a ``CollectorRegistry`` of its own (never the
process-wide default one, so two gateways, or two tests, never share a counter); ``render()`` gives
the text exposition format that ``GET /metrics`` of the admin API serves (``CONTENT_TYPE``).

Two sources:

- The campaign decisions are counted as they happen: the metrics object is an observer of the campaign
  runner (``CampaignRunner.add_observer``), called after each event and its records are stored.
- Everything else is read at scrape time from the counters the parts already keep (a custom collector:
  nothing is added to their hot paths): the SMPP client's ``stats``, window and bind; the channel
  executor's ``counters``; the ingest pipeline's ``counters`` and the Diameter endpoints' ``answers``;
  the USSD service's ``stats``; the campaign directory's state.

Every name starts with ``tgw_``. Counters are exposed with the ``_total`` suffix.

SMPP (``gateway.smpp.client.SmppClient``)
    ``tgw_smpp_pdus_total{direction, command, status}``: every PDU sent (``out``) or received (``in``)
    on the bind, across reconnects, by command and the command_status of its header (submit_sm_resp
    by status, ESME_RTHROTTLED included; enquire_link, generic_nack, our deliver_sm_resp...). The
    labels are the SMPP 3.4 names (``submit_sm_resp``, ``ESME_ROK``); a command_id or command_status
    the registries do not name is ``other``: the peer picks those numbers, and a broken SMSC must not
    make a series for each one.
    ``tgw_smpp_deliver_sm_total{type}``: ``receipt``, ``mo``, or ``bad_receipt``: a delivery receipt
    whose message id or state could not be read, answered ESME_RX_P_APPN so the SMSC does not deliver
    it again (it correlates to no message; a rising count means the SMSC's receipt format is not
    understood).
    ``tgw_smpp_submit_sm_total``: submit_sm the SMSC answered, whatever the status: each one counted
    against the licence (``rate(tgw_smpp_submit_sm_total[1m])`` against ``tgw_smpp_licence_tps``).
    ``tgw_smpp_licence_tps``: the configured TPS limit (``smsc.tps``; +Inf when unlimited).
    ``tgw_smpp_window_occupancy`` / ``tgw_smpp_window_size``: requests on the wire awaiting their
    response / the configured window. ``tgw_smpp_bound``: 1 while bound.
    ``tgw_smpp_resent_total``, ``tgw_smpp_throttled_total``, ``tgw_smpp_reconnects_total``.
Channels (``gateway.campaigns.channels.ChannelCounters``)
    ``tgw_channel_stk_pushes_total``, ``tgw_channel_sms_sent_total``, ``tgw_channel_sms_parts_total``,
    ``tgw_channel_replies_total``, ``tgw_channel_submit_failures_total``,
    ``tgw_channel_answers_total{channel}`` (DSTK, USSD code, SMS reply).
    ``tgw_delivery_receipts_total{state}``: the delivery receipts of campaign messages by final state
    (SMPP 3.4 appendix B: DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD; anything else
    is ``other``), one per message (the last part of a long SMS decides).
Ingest (``gateway.ingest``)
    ``tgw_ingest_events_total``, ``tgw_ingest_bad_events_total``, ``tgw_ingest_duplicates_total``,
    ``tgw_ingest_triggers_total{kind}`` (what trigger detection raised), ``tgw_ingest_trigger_errors_total``.
    ``tgw_diameter_answers_total{command_code, result_code}``: answers the gateway's Diameter peer sent
    (server and outgoing connections). A command code the dictionary (``protocols.diameter``) does not
    know is ``other``: the requester picks it, even before any CER when its header cannot be framed
    (answered 5015, RFC 6733 section 7.1.5). ``tgw_diameter_open_peers``: connections past the CER/CEA.
    ``tgw_gateway_triggers_total``: triggers handed to the campaigns (``Gateway.on_trigger``).
Campaigns (runner observer)
    ``tgw_campaign_decisions_total{campaign, kind}``: decision-trail records by ``RecordKind``; those
    that name no campaign (the trigger itself, a purchase outside our offers) have ``campaign=""``.
    ``tgw_campaign_suppressions_total{campaign, stage, reason}``: ``SUPPRESSED`` records. The reason is
    the class of the record's ``detail["reason"]``: the text before its first ``:`` and before the first
    word that is not a plain name (so ``"cap: 2 promotional sms per day"`` is ``cap``, ``"tenure 20 days
    < 90"`` is ``tenure``, ``"quiet hours"`` stays whole): the values in the texts would make a label
    without bound. Past ``MAX_REASONS`` classes, new ones count as ``other``.
    ``tgw_campaign_activations_total{campaign}``: ``FULFILLED`` records (billing activated the package).
    ``tgw_campaign_trigger_to_send_seconds{campaign}``: histogram of the ``latency`` of the first
    ``CONTACT`` of each offer (network event time to submission; the KPI of ``campaign_core.kpis``).
    An offer whose first contact was made before this process started counts at its next contact.
    ``tgw_campaigns{state}``: campaigns of the directory ``running``, ``paused`` or ``disabled``.
USSD (``gateway.ussd.UssdService.stats``)
    ``tgw_ussd_dialogues_total``, ``tgw_ussd_timeouts_total``, ``tgw_ussd_failures_total``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from campaign_core.model import Command, DeliveryReported, Event, Record, RecordKind
from protocols.diameter.dictionary import lookup_command
from protocols.smpp.constants import CommandId, CommandStatus

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "MAX_REASONS", "GatewayMetrics", "reason_class"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
"""The Content-Type of ``render()``'s output."""

LATENCY_BUCKETS: Final = (
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    14400.0,
    86400.0,
    172800.0,
)
"""Trigger-to-send seconds: sub-second to the 48 h that cut an offer's revenue fifteenfold (DESIGN.md)."""

MAX_REASONS: Final = 100
_MAX_TRACKED_OFFERS = 1_000_000  # offers whose first contact was counted and that are not closed yet
_RECEIPT_STATES: Final = frozenset(
    {"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "ENROUTE"}
)
_NAME = re.compile(r"[A-Za-z_-]+\Z")


def reason_class(reason: object) -> str:
    """The bounded label of a suppression reason (see the module docstring)."""
    if not isinstance(reason, str) or not reason.strip():
        return "unspecified"
    head = reason.split(":", 1)[0]
    words: list[str] = []
    for word in head.split():
        if not _NAME.match(word):
            break
        words.append(word)
        if len(words) == 6:
            break
    return " ".join(words) or "other"


# the registries' own members only: CommandId(x) of any other x is an UNKNOWN_0x.. pseudo-member
_COMMAND_NAMES: Final = {int(member): member.name.lower() for member in CommandId}
_STATUS_NAMES: Final = {int(member): member.name for member in CommandStatus}


def _command_name(command_id: int) -> str:
    return _COMMAND_NAMES.get(command_id, "other")


def _status_name(status: int) -> str:
    return _STATUS_NAMES.get(status, "other")


def _diameter_command(code: int) -> str:
    return str(code) if lookup_command(code) is not None else "other"


class GatewayMetrics:
    """The metrics of ``gateway`` in ``registry`` (a new ``CollectorRegistry`` when None)."""

    def __init__(self, gateway: Gateway, registry: CollectorRegistry | None = None) -> None:
        self.gateway = gateway
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self._decisions = Counter(
            "tgw_campaign_decisions",
            "Decision-trail records by campaign and kind",
            ("campaign", "kind"),
            registry=reg,
        )
        self._suppressions = Counter(
            "tgw_campaign_suppressions",
            "Suppressed triggers and offers by campaign, stage and reason class",
            ("campaign", "stage", "reason"),
            registry=reg,
        )
        self._activations = Counter(
            "tgw_campaign_activations",
            "Packages activated in billing through an offer (FULFILLED records)",
            ("campaign",),
            registry=reg,
        )
        self._latency = Histogram(
            "tgw_campaign_trigger_to_send_seconds",
            "Seconds from the network's usage event to the first contact of an offer",
            ("campaign",),
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._receipts = Counter(
            "tgw_delivery_receipts",
            "Delivery receipts of campaign messages by final state",
            ("state",),
            registry=reg,
        )
        self._reasons: set[str] = set()
        self._first_contacts: dict[str, None] = {}  # offers whose first contact was observed (ordered)
        reg.register(_GatewayCollector(gateway))
        gateway.runner.add_observer(self.observe)

    def render(self) -> bytes:
        """The text exposition format of every metric (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    # --- the campaign runner's observer -----------------------------------------------------------

    def observe(self, event: Event, now: float, outputs: Sequence[Command]) -> None:
        """``CampaignRunner`` observer: count the records of one handled event."""
        if isinstance(event, DeliveryReported):
            state = event.state if event.state in _RECEIPT_STATES else "other"
            self._receipts.labels(state).inc()
        for output in outputs:
            if isinstance(output, Record):
                self._record(output)

    def _record(self, record: Record) -> None:
        kind = record.kind
        campaign = record.campaign_id or ""
        self._decisions.labels(campaign, kind.value).inc()
        if kind is RecordKind.SUPPRESSED:
            detail = record.detail
            reason = reason_class(detail.get("reason"))
            if reason not in self._reasons:
                if len(self._reasons) >= MAX_REASONS:
                    reason = "other"
                else:
                    self._reasons.add(reason)
            stage = detail.get("stage")
            self._suppressions.labels(campaign, stage if stage in {"trigger", "offer"} else "", reason).inc()
        elif kind is RecordKind.FULFILLED:
            self._activations.labels(campaign).inc()
        elif kind is RecordKind.CONTACT:
            offer = record.offer_id
            latency = record.detail.get("latency")
            if offer is None or offer in self._first_contacts:
                return
            if isinstance(latency, int | float) and not isinstance(latency, bool) and math.isfinite(latency):
                self._first_contacts[offer] = None
                if len(self._first_contacts) > _MAX_TRACKED_OFFERS:
                    del self._first_contacts[next(iter(self._first_contacts))]
                self._latency.labels(campaign).observe(max(0.0, float(latency)))
        elif kind is RecordKind.CLOSED and record.offer_id is not None:
            self._first_contacts.pop(record.offer_id, None)


class _GatewayCollector(Collector):
    """Reads the parts' own counters at scrape time (see the module docstring)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        yield from self._smpp()
        yield from self._channels()
        yield from self._ingest()
        yield from self._campaigns()
        yield from self._ussd()

    def _smpp(self) -> Iterator[Metric]:
        smpp = self.gateway.smpp
        stats = smpp.stats
        config = smpp.config
        pdus = CounterMetricFamily(
            "tgw_smpp_pdus",
            "SMPP PDUs sent to and received from the SMSC, by direction, command and command_status",
            labels=("direction", "command", "status"),
        )
        folded: dict[tuple[str, str, str], int] = {}  # the raw pairs ``other`` stands for, summed
        for (direction, command_id, status), count in smpp.pdu_counts.items():
            key = (direction, _command_name(command_id), _status_name(status))
            folded[key] = folded.get(key, 0) + count
        for labels, count in sorted(folded.items()):
            pdus.add_metric(labels, count)
        yield pdus
        deliver = CounterMetricFamily(
            "tgw_smpp_deliver_sm",
            "deliver_sm received: delivery receipts, MO messages, unreadable receipts",
            labels=("type",),
        )
        deliver.add_metric(("receipt",), stats.receipts)
        deliver.add_metric(("mo",), stats.mo)
        deliver.add_metric(("bad_receipt",), stats.bad_receipts)
        yield deliver
        yield CounterMetricFamily(
            "tgw_smpp_submit_sm",
            "submit_sm answered by the SMSC, any status (each counts against the licence)",
            value=sum(stats.by_status.values()),
        )
        yield GaugeMetricFamily(
            "tgw_smpp_licence_tps",
            "The SMSC licence: submit_sm per second allowed (+Inf: unlimited)",
            value=config.tps if config.tps else math.inf,
        )
        yield GaugeMetricFamily(
            "tgw_smpp_window_occupancy",
            "SMPP requests on the wire awaiting their response",
            value=smpp.window_occupancy,
        )
        yield GaugeMetricFamily("tgw_smpp_window_size", "The configured SMPP window", value=config.window)
        yield GaugeMetricFamily("tgw_smpp_bound", "1 while the SMPP bind is up", value=int(smpp.is_bound))
        yield CounterMetricFamily(
            "tgw_smpp_resent", "Requests sent again (reconnect or response timeout)", value=stats.resent
        )
        yield CounterMetricFamily(
            "tgw_smpp_throttled", "ESME_RTHROTTLED / ESME_RMSGQFUL answers", value=stats.throttled
        )
        yield CounterMetricFamily("tgw_smpp_reconnects", "SMPP reconnection attempts", value=stats.reconnects)

    def _channels(self) -> Iterator[Metric]:
        counters = self.gateway.executor.counters
        for name, value, doc in (
            ("stk_pushes", counters.stk_pushes, "SIM toolkit pushes the SMSC accepted"),
            ("sms_sent", counters.sms_sent, "Campaign SMS sent"),
            ("sms_parts", counters.sms_parts, "Parts (submit_sm) of the campaign SMS"),
            ("replies", counters.replies, "Replies sent to subscribers' answers"),
            (
                "submit_failures",
                counters.submit_failures,
                "Campaign messages the SMSC refused or that failed",
            ),
        ):
            yield CounterMetricFamily(f"tgw_channel_{name}", doc, value=value)
        answers = CounterMetricFamily(
            "tgw_channel_answers", "Subscribers' answers by channel", labels=("channel",)
        )
        for channel, count in sorted(counters.answers.items()):
            answers.add_metric((channel,), count)
        yield answers

    def _ingest(self) -> Iterator[Metric]:
        ingest = self.gateway.ingest
        counters = ingest.pipeline.counters
        yield CounterMetricFamily(
            "tgw_ingest_events", "Usage events taken (journaled)", value=counters.events_taken
        )
        yield CounterMetricFamily(
            "tgw_ingest_bad_events", "Usage events refused by the schema", value=counters.bad_events
        )
        yield CounterMetricFamily(
            "tgw_ingest_duplicates", "Usage events delivered again", value=counters.duplicates
        )
        triggers = CounterMetricFamily(
            "tgw_ingest_triggers", "Triggers raised by trigger detection, by kind", labels=("kind",)
        )
        for kind, count in sorted(counters.triggers.items(), key=lambda item: item[0].value):
            triggers.add_metric((kind.value,), count)
        yield triggers
        yield CounterMetricFamily(
            "tgw_ingest_trigger_errors",
            "Triggers the campaigns failed to take",
            value=counters.trigger_errors,
        )
        yield CounterMetricFamily(
            "tgw_gateway_triggers", "Triggers handed to the campaigns", value=self.gateway.triggers
        )
        answers = CounterMetricFamily(
            "tgw_diameter_answers",
            "Diameter answers sent, by command code and Result-Code",
            labels=("command_code", "result_code"),
        )
        endpoints = [*([ingest.diameter] if ingest.diameter is not None else []), *ingest.diameter_clients]
        totals: dict[tuple[str, str], int] = {}
        open_peers = 0
        for endpoint in endpoints:
            for (command, result), count in endpoint.answers.items():
                # the Result-Code is ours to choose; the command code is the requester's
                key = (_diameter_command(command), str(result))
                totals[key] = totals.get(key, 0) + count
            open_peers += len(endpoint.open_peers)
        for labels, count in sorted(totals.items()):
            answers.add_metric(labels, count)
        yield answers
        yield GaugeMetricFamily(
            "tgw_diameter_open_peers", "Diameter connections past the capabilities exchange", value=open_peers
        )

    def _campaigns(self) -> Iterator[Metric]:
        states = {"running": 0, "paused": 0, "disabled": 0}
        for status in self.gateway.campaign_status():
            state = "paused" if status.paused else "running" if status.enabled else "disabled"
            states[state] += 1
        family = GaugeMetricFamily("tgw_campaigns", "Campaigns of the directory by state", labels=("state",))
        for state, count in states.items():
            family.add_metric((state,), count)
        yield family

    def _ussd(self) -> Iterator[Metric]:
        stats = self.gateway.ussd.stats
        yield CounterMetricFamily(
            "tgw_ussd_dialogues", "USSD dialogues opened by handsets", value=stats.dialogues
        )
        yield CounterMetricFamily("tgw_ussd_timeouts", "USSD dialogues that timed out", value=stats.timeouts)
        yield CounterMetricFamily(
            "tgw_ussd_failures", "USSD dialogues ended on the failure screen", value=stats.failures
        )
