"""KPIs from the decision trail (campaign_core.kpis): the reference journey through the engine, then each
column on hand-written records, the control arm's attribution rule and uplift, percentiles, the table."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_fixtures import MSISDN, T0, engine, exhausted, records

from campaign_core.kpis import KpiRow, compute_kpis, percentile, render_kpi_table
from campaign_core.model import (
    Activated,
    CreditScored,
    DeliveryReported,
    Payment,
    Purchased,
    Record,
    RecordKind,
    Responded,
    ResponseChannel,
    Tick,
    offer_id,
)

OFFER = offer_id("upsell-exhaustion", f"{MSISDN}/data-1gb/p1/100")


def test_reference_journey_counts() -> None:
    e = engine()
    trail = []
    trail += e.handle(exhausted(at=T0 - 2.0), T0)
    trail += e.handle(CreditScored(f"{OFFER}:score", MSISDN, Decimal(0), Decimal(100)), T0 + 1)
    trail += e.handle(DeliveryReported(f"{OFFER}:0", True), T0 + 60)
    trail += e.handle(Tick(), T0 + 660)
    trail += e.handle(Responded("r1", MSISDN, ResponseChannel.USSD, option_id="*123*100#"), T0 + 700)
    trail += e.handle(Activated(OFFER, "data-100mb", Payment.CREDIT, Decimal(50)), T0 + 703)
    (row,) = compute_kpis(records(trail))
    assert row == KpiRow(
        campaign_id="upsell-exhaustion",
        variant=None,
        triggers=1,
        offers=1,
        contacts={"sms": 1, "stk": 1},
        responses=1,
        activations=1,
        revenue=Decimal(50),
        credit_volume=Decimal(50),
        conversion=1.0,
        latency_p50=3.0,  # the first contact, 3 s after the network saw the exhaustion
        latency_p90=3.0,
        latency_p99=3.0,
    )


def rec(kind: RecordKind, msisdn: str = "1", campaign: str | None = "camp", *, variant: str | None = "new",
        offer: str | None = None, at: float = 0.0, **detail: object) -> Record:  # fmt: skip
    return Record(kind, at, msisdn, campaign, variant, offer, detail)


def test_each_column() -> None:
    trail = [
        rec(RecordKind.ASSIGNED, experiment="ab", control=False),
        rec(RecordKind.ELIGIBLE, offer="o1"),
        rec(RecordKind.CONTACT, offer="o1", channel="sms", options=[], latency=1.0),  # informational
        rec(RecordKind.CONTACT, offer="o1", channel="sms", options=["p"], latency=9.0),
        rec(RecordKind.RESPONSE, offer="o1", declined=True),
        rec(RecordKind.ELIGIBLE, offer="o2"),
        rec(RecordKind.CONTACT, offer="o2", channel="stk", options=["p"], latency=5.0),
        rec(RecordKind.RESPONSE, offer="o2", package_id="p"),
        rec(RecordKind.FULFILLED, offer="o2", package_id="p", payment="credit", price="90.50"),
        rec(RecordKind.ELIGIBLE, offer="o3"),
        rec(RecordKind.CONTACT, offer="o3", channel="stk", options=["p"], latency=2.0),
        rec(RecordKind.FULFILLED, offer="o3", package_id="p", payment="balance", price="10"),
        rec(RecordKind.ELIGIBLE, offer="o4"),  # suppressed later: nothing affordable
        rec(RecordKind.SUPPRESSED, offer="o4", reason="nothing affordable", stage="offer"),
        rec(RecordKind.REJECTED_RESPONSE, variant=None, offer="o3", reason="duplicate"),  # no row of its own
        rec(RecordKind.TRIGGER, campaign=None, variant=None),
    ]
    (row,) = compute_kpis(trail)
    assert (row.campaign_id, row.variant, row.experiment, row.control) == ("camp", "new", "ab", False)
    assert row.triggers == 4
    assert row.offers == 3  # o1 counts by its second contact
    assert row.contacts == {"sms": 2, "stk": 2}
    assert (row.responses, row.declined) == (2, 1)
    assert row.activations == 2
    assert row.revenue == Decimal("100.50") and row.credit_volume == Decimal("90.50")
    assert row.conversion == 0.5
    assert row.uplift is None  # no control arm in these records
    # first contacts: o1 1.0, o2 5.0, o3 2.0
    assert (row.latency_p50, row.latency_p90, row.latency_p99) == (2.0, 5.0, 5.0)


def test_control_arm_attribution_and_uplift() -> None:
    def assigned(msisdn: str, at: float) -> Record:
        return rec(RecordKind.ASSIGNED, msisdn, None, variant="control", at=at, experiment="ab", control=True)

    def purchase(msisdn: str, at: float, price: str, recorded: float | None = None) -> Record:
        """A PURCHASE record: ``at`` is billing's time, ``recorded`` when the gateway heard of it."""
        detail = {"package_id": "p", "price": price, "at": at}
        return Record(RecordKind.PURCHASE, at if recorded is None else recorded, msisdn, detail=detail)

    trail = [
        *(rec(RecordKind.ELIGIBLE, f"t{i}", offer=f"o{i}") for i in range(4)),
        rec(RecordKind.ASSIGNED, "t0", experiment="ab", control=False),
        rec(RecordKind.FULFILLED, "t0", offer="o0", payment="credit", price="50"),
        rec(RecordKind.FULFILLED, "t1", offer="o1", payment="credit", price="50"),
        assigned("c1", 1000.0),
        purchase("c1", 1500.0, "90"),  # within the window: converts
        purchase("c1", 1600.0, "200"),  # a second purchase: the assignment converts once
        assigned("c2", 1000.0),
        purchase("c2", 999.0, "90"),  # before the assignment: not attributed
        assigned("c3", 1000.0),
        purchase("c3", 1000.0 + 3601, "90", recorded=1001.0),  # billing's time is after the window
        assigned("c4", 1000.0),
        purchase("c5", 1500.0, "90"),  # never assigned
    ]
    rows = compute_kpis(trail, windows={"ab": 3600.0})
    control, treated = rows
    assert (control.campaign_id, control.variant, control.control) == ("ab", "control", True)
    assert control.triggers == 4 and control.activations == 1
    assert control.revenue == Decimal(90) and control.conversion == 0.25
    assert control.uplift is None
    assert (treated.campaign_id, treated.variant, treated.experiment) == ("camp", "new", "ab")
    assert treated.conversion == 0.5
    assert treated.uplift == pytest.approx(0.25)
    # with the default 24 h window c3's purchase is attributed too
    control_default = compute_kpis(trail)[0]
    assert control_default.activations == 2 and control_default.conversion == 0.5


def test_rows_are_sorted_and_only_for_campaign_records() -> None:
    trail = [
        rec(RecordKind.ELIGIBLE, campaign="b", variant=None),
        rec(RecordKind.SUPPRESSED, campaign="a", variant=None, reason="arbitration: b goes first"),
        rec(RecordKind.ELIGIBLE, campaign="b", variant="x"),
        rec(RecordKind.PURCHASE, campaign=None, variant=None, price="1", at=1.0),
    ]
    rows = compute_kpis(trail)
    assert [(r.campaign_id, r.variant) for r in rows] == [("a", None), ("b", None), ("b", "x")]
    assert rows[0].triggers == 0 and rows[0].conversion is None and rows[0].latency_p50 is None


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(10, 0, -1)]
    assert percentile(values, 50) == 5.0
    assert percentile(values, 90) == 9.0
    assert percentile(values, 99) == 10.0
    assert percentile(values, 0) == 1.0
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0


def test_table_renders_every_row_the_same_each_time() -> None:
    rows = [
        KpiRow("ab", "control", control=True, experiment="ab", triggers=4, activations=1,
               revenue=Decimal(90), conversion=0.25),
        KpiRow("upsell", "new", experiment="ab", triggers=2, offers=2, contacts={"stk": 2, "sms": 1},
               responses=2, declined=1, activations=1, revenue=Decimal(50), credit_volume=Decimal(50),
               conversion=0.5, uplift=0.25, latency_p50=1.5, latency_p90=2.0, latency_p99=2.0),
    ]  # fmt: skip
    table = render_kpi_table(rows)
    assert table == render_kpi_table(rows)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["campaign", "variant", "triggers"]
    assert "control (control)" in lines[1] and "25.0%" in lines[1]
    assert "sms=1 stk=2" in lines[2] and "2 (1 declined)" in lines[2]
    assert "+25.0pp" in lines[2] and "1.5/2.0/2.0" in lines[2] and "50.00" in lines[2]
    assert KpiRow("x", None).to_json()["revenue"] == "0"


def test_purchases_through_the_engine_are_recorded_for_the_control_arm() -> None:
    e = engine()
    out = e.handle(Purchased("p1", MSISDN, "data-200mb", Decimal(90), T0 + 5), T0 + 6)
    (purchase,) = records(out, RecordKind.PURCHASE)
    assert purchase.detail == {"package_id": "data-200mb", "price": "90", "at": T0 + 5}
