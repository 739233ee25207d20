"""The billing / OCS simulator: credit scoring, the ledger, idempotent activations, usage, the HTTP API
and its fault injection (simulators.billing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_core.config import CatalogueConfig
from campaign_core.model import Payment, Purchased
from gateway.configfile import load_yaml_model
from protocols.errors import ConfigError, LocalProtocolError
from simulators.billing import (
    REVENUE_KINDS,
    Billing,
    BillingConfig,
    BillingServer,
    CataloguePackage,
    Fault,
    FaultConfig,
    FaultInjector,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidRequest,
    LedgerKind,
    PackageAdded,
    PackageHolding,
    RenewalTerms,
    Route,
    ScoringRules,
    Subscriber,
    ToppedUp,
    TopUp,
    UnknownPackage,
    UnknownSubscriber,
    UsageKind,
    catalogue_from_config,
    load_billing_config,
)

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400.0
NOW = 1_717_200_000.0  # 2024-06-01 00:00 UTC
D = Decimal

CATALOGUE = (
    CataloguePackage(id="data_100mb", volume_mb=100, price=D("20.00"), validity_days=1),
    CataloguePackage(id="data_500mb", volume_mb=500, price=D("100.00"), validity_days=7),
    CataloguePackage(id="data_1000mb", volume_mb=1000, price=D("180.00"), validity_days=7),
)
RULES = ScoringRules(
    min_tenure_days=90,
    window_days=30,
    min_topups=1,
    base=D(20),
    per_topup=D(5),
    topup_share=D("0.5"),
    cap=D(300),
    step=D(10),
)
CONFIG = BillingConfig(credit_fee_percent=D(10), scoring=RULES, catalogue=CATALOGUE)

RICH = "254700000001"  # long tenure, recent top-ups: may borrow
NEW = "254700000002"  # 10 days old: no credit


def make_billing(config: BillingConfig = CONFIG) -> Billing:
    billing = Billing(config)
    billing.add_subscriber(
        Subscriber(
            RICH,
            balance=D("50.00"),
            tenure_days=400,
            zone="Africa/Nairobi",
            topups=(
                TopUp(NOW - 5 * DAY, D(100)),
                TopUp(NOW - 10 * DAY, D(200)),
                TopUp(NOW - 60 * DAY, D(500)),
            ),
        ),
        NOW,
    )
    billing.add_subscriber(Subscriber(NEW, balance=D("500.00"), tenure_days=10), NOW)
    return billing


# --- credit scoring --------------------------------------------------------------------------------


def test_limit_is_base_plus_top_ups_in_the_window_rounded_down() -> None:
    billing = make_billing()
    score = billing.credit_score(RICH, NOW)
    # 20 + 5 * 2 + 0.5 * (100 + 200) = 180 (the 500 of 60 days ago is outside the 30-day window)
    assert (score.balance, score.credit_limit, score.debt) == (D("50.00"), D(180), D(0))
    billing.top_up(RICH, D(7), NOW)  # 20 + 5 * 3 + 0.5 * 307 = 188.5 -> 180 (step 10)
    assert billing.credit_score(RICH, NOW).credit_limit == D(180)
    billing.top_up(RICH, D(5), NOW)  # 20 + 20 + 156 = 196 -> 190
    assert billing.credit_score(RICH, NOW).credit_limit == D(190)


def test_no_credit_under_the_minimum_tenure_or_without_top_ups() -> None:
    billing = make_billing()
    score = billing.credit_score(NEW, NOW)
    assert score.credit_limit == 0
    assert "tenure 10 d" in score.reason
    # tenure grows with time: 80 days later the tenure rule passes, but no top-up is in the window
    later = billing.credit_score(NEW, NOW + 80 * DAY)
    assert later.credit_limit == 0
    assert "0 top-ups" in later.reason
    billing.top_up(NEW, D(40), NOW + 80 * DAY)
    assert billing.credit_score(NEW, NOW + 81 * DAY).credit_limit == D(40)  # 20 + 5 + 20 = 45 -> 40
    # the top-ups of RICH leave the window as time passes
    assert billing.credit_score(RICH, NOW + 40 * DAY).credit_limit == 0


def test_limit_is_capped_and_reduced_by_debt() -> None:
    billing = make_billing()
    for _ in range(4):
        billing.top_up(RICH, D(200), NOW)
    assert billing.credit_score(RICH, NOW).credit_limit == D(300)  # capped
    billing.activate("offer-1", RICH, "data_100mb", Payment.CREDIT, D("20.00"), NOW)
    score = billing.credit_score(RICH, NOW)
    assert score.debt == D("22.00")
    assert score.credit_limit == D(270)  # 300 - 22 = 278 -> 270


# --- ledger: balance, credit, fee, repayment -------------------------------------------------------


def test_balance_activation_debits_the_balance() -> None:
    billing = make_billing()
    record, replayed = billing.activate("offer-1", RICH, "data_100mb", Payment.BALANCE, D("20.00"), NOW)
    assert not replayed
    assert (record.balance, record.debt, record.fee, record.activation_id) == (
        D("30.00"),
        D(0),
        D(0),
        "act-1",
    )
    assert record.package == PackageHolding(
        "data_100mb", 100, 0.0, "2024-06-01", "2024-06-01", reference="offer-1"
    )  # a daily package, dated in the subscriber's zone (03:00 in Nairobi)
    (entry,) = billing.ledger(RICH)
    assert (entry.kind, entry.amount, entry.reference, entry.payment) == (
        LedgerKind.ACTIVATION,
        D("20.00"),
        "offer-1",
        Payment.BALANCE,
    )
    with pytest.raises(InsufficientFunds, match=r"balance 30\.00"):
        billing.activate("offer-2", RICH, "data_500mb", Payment.BALANCE, D("100.00"), NOW)
    assert billing.subscriber(RICH, NOW).balance == D("30.00")
    assert len(billing.ledger()) == 1


def test_credit_activation_records_debt_and_fee_and_top_up_repays_first() -> None:
    billing = make_billing()
    record, _ = billing.activate("offer-1", RICH, "data_500mb", Payment.CREDIT, D("100.00"), NOW)
    assert (record.fee, record.debt, record.balance) == (D("10.00"), D("110.00"), D("50.00"))
    kinds = [(e.kind, e.amount) for e in billing.ledger(RICH)]
    assert kinds == [(LedgerKind.ACTIVATION, D("100.00")), (LedgerKind.CREDIT_FEE, D("10.00"))]
    # 180 - 110 = 70 left: the 1000 MB package (180 + 18) no longer fits
    with pytest.raises(InsufficientFunds, match="credit limit 70"):
        billing.activate("offer-2", RICH, "data_1000mb", Payment.CREDIT, D("180.00"), NOW)
    # a top-up smaller than the debt only repays
    partial = billing.top_up(RICH, D(60), NOW + 1, reference="tp-1")
    assert (partial.repaid, partial.debt, partial.balance) == (D(60), D("50.00"), D("50.00"))
    # the next one repays the rest and the remainder reaches the balance
    rest = billing.top_up(RICH, D(80), NOW + 2, reference="tp-2")
    assert (rest.repaid, rest.debt, rest.balance) == (D("50.00"), D("0.00"), D("80.00"))
    totals = billing.ledger_totals()
    assert totals[LedgerKind.REPAYMENT] == D("110.00")
    assert totals[LedgerKind.TOPUP] == D(140)
    assert billing.revenue() == D("110.00")
    assert billing.revenue() == sum((totals[k] for k in REVENUE_KINDS), D(0))
    assert billing.reconcile() == []


def test_credit_refused_to_a_new_subscriber() -> None:
    billing = make_billing()
    with pytest.raises(InsufficientFunds, match="tenure 10 d"):
        billing.activate("offer-1", NEW, "data_100mb", Payment.CREDIT, D("20.00"), NOW)
    assert billing.ledger() == ()


def test_fee_rounds_half_up_to_cents() -> None:
    billing = Billing(BillingConfig(credit_fee_percent=D("7.5"), catalogue=CATALOGUE))
    assert billing.fee(D("20.00")) == D("1.50")
    assert billing.fee(D("0.07")) == D("0.01")  # 0.00525 -> 0.01
    assert billing.fee(D("0.06")) == D("0.00")  # 0.0045 -> 0.00


def test_unknown_subscriber_package_and_wrong_price() -> None:
    billing = make_billing()
    with pytest.raises(UnknownSubscriber):
        billing.activate("o1", "254799999999", "data_100mb", Payment.BALANCE, D(20), NOW)
    with pytest.raises(UnknownPackage):
        billing.activate("o2", RICH, "data_9mb", Payment.BALANCE, D(20), NOW)
    with pytest.raises(InvalidRequest, match="catalogue price"):
        billing.activate("o3", RICH, "data_100mb", Payment.BALANCE, D(19), NOW)
    with pytest.raises(InvalidRequest):
        billing.activate("", RICH, "data_100mb", Payment.BALANCE, D(20), NOW)
    with pytest.raises(InvalidRequest):
        billing.top_up(RICH, D(0), NOW)
    # refusals before a decision are not stored: the same key may be used once the request is right
    record, replayed = billing.activate("o3", RICH, "data_100mb", Payment.BALANCE, D(20), NOW)
    assert not replayed and record.price == D("20.00")


def test_bad_subscribers_are_refused() -> None:
    billing = make_billing()
    with pytest.raises(LocalProtocolError, match="exists"):
        billing.add_subscriber(Subscriber(RICH), NOW)
    with pytest.raises(LocalProtocolError, match="zone"):
        billing.add_subscriber(Subscriber("1", zone="Mars/Olympus"), NOW)
    with pytest.raises(LocalProtocolError, match=">= 0"):
        billing.add_subscriber(Subscriber("2", balance=D(-1)), NOW)


# --- idempotency -----------------------------------------------------------------------------------


def test_same_key_same_request_is_the_stored_result() -> None:
    billing = make_billing()
    first, replayed_first = billing.activate("offer-1", RICH, "data_100mb", Payment.CREDIT, D("20.00"), NOW)
    again, replayed = billing.activate("offer-1", RICH, "data_100mb", Payment.CREDIT, D("20"), NOW + 60)
    assert (replayed_first, replayed) == (False, True)
    assert again is first
    assert [e.kind for e in billing.ledger()] == [LedgerKind.ACTIVATION, LedgerKind.CREDIT_FEE]
    assert len(billing.subscriber(RICH, NOW).packages) == 1
    assert billing.activations() == (first,)
    assert billing.activation("offer-1") is first


def test_same_key_other_request_is_a_conflict() -> None:
    billing = make_billing()
    billing.activate("offer-1", RICH, "data_100mb", Payment.BALANCE, D("20.00"), NOW)
    for other in (
        ("offer-1", RICH, "data_500mb", Payment.BALANCE, D("100.00")),
        ("offer-1", RICH, "data_100mb", Payment.CREDIT, D("20.00")),
        ("offer-1", NEW, "data_100mb", Payment.BALANCE, D("20.00")),
    ):
        with pytest.raises(IdempotencyConflict):
            billing.activate(*other, NOW)
    assert len(billing.ledger()) == 1


def test_a_refusal_is_stored_too() -> None:
    billing = make_billing()
    with pytest.raises(InsufficientFunds):
        billing.activate("offer-1", RICH, "data_1000mb", Payment.BALANCE, D("180.00"), NOW)
    billing.top_up(RICH, D(500), NOW)
    with pytest.raises(InsufficientFunds, match=r"balance 50\.00"):  # the same outcome as the first time
        billing.activate("offer-1", RICH, "data_1000mb", Payment.BALANCE, D("180.00"), NOW)
    assert billing.activations() == ()


# --- usage, purchases, listeners -------------------------------------------------------------------


def test_usage_crossings_threshold_then_exhaustion_then_overage() -> None:
    billing = make_billing()
    billing.activate("offer-1", RICH, "data_100mb", Payment.BALANCE, D("20.00"), NOW)
    assert not billing.record_usage(RICH, 80, NOW + 10).changed
    (threshold,) = billing.record_usage(RICH, 15, NOW + 20).crossings
    assert (threshold.kind, threshold.level, threshold.used_mb, threshold.reference) == (
        UsageKind.THRESHOLD,
        90,
        95.0,
        "offer-1",
    )
    change = billing.record_usage(RICH, 10, NOW + 30)
    assert [c.kind for c in change.crossings] == [UsageKind.EXHAUSTED]
    assert change.overage_mb == pytest.approx(5.0)
    assert billing.record_usage(RICH, 10, NOW + 40).overage_mb == 10.0
    # a daily package bought today is not metered the next local day
    billing.activate("offer-2", RICH, "data_100mb", Payment.BALANCE, D("20.00"), NOW)
    assert billing.record_usage(RICH, 1, NOW + DAY).overage_mb == 1.0
    assert billing.record_usage(RICH, 1, NOW + 60).overage_mb == 0.0


def test_a_jump_past_both_levels_is_one_exhaustion_and_earliest_end_first() -> None:
    billing = make_billing()
    billing.top_up(RICH, D(200), NOW)
    billing.activate("long", RICH, "data_500mb", Payment.BALANCE, D("100.00"), NOW)
    billing.activate("short", RICH, "data_100mb", Payment.BALANCE, D("20.00"), NOW)
    change = billing.record_usage(RICH, 150, NOW + 1)
    assert [(c.kind, c.reference) for c in change.crossings] == [(UsageKind.EXHAUSTED, "short")]
    assert [p.used_mb for p in billing.subscriber(RICH, NOW).packages] == [50.0, 100.0]
    profile = billing.profile(RICH, NOW)
    assert [p.package_id for p in profile.packages] == ["data_500mb", "data_100mb"]
    assert profile.tenure_days == 400 and profile.timezone == "Africa/Nairobi"
    assert [p.package_id for p in billing.profile(RICH, NOW + 2 * DAY).packages] == ["data_500mb"]


def test_purchase_and_listeners() -> None:
    billing = make_billing()
    heard: list[object] = []
    remove = billing.add_listener(heard.append)
    billing.add_listener(lambda notice: (_ for _ in ()).throw(RuntimeError("a broken listener")))
    purchase = billing.purchase(NEW, "data_500mb", NOW)
    assert purchase.event() == Purchased("pur-1", NEW, "data_500mb", D("100.00"), NOW)
    assert purchase.balance == D("400.00")
    billing.activate("offer-1", RICH, "data_100mb", Payment.BALANCE, D("20.00"), NOW)
    billing.top_up(RICH, D(10), NOW)
    assert [type(n) for n in heard] == [PackageAdded, PackageAdded, ToppedUp]
    first = heard[0]
    assert isinstance(first, PackageAdded) and first.via is LedgerKind.PURCHASE
    remove()
    billing.top_up(RICH, D(10), NOW)
    assert len(heard) == 3
    with pytest.raises(InsufficientFunds):
        billing.purchase(RICH, "data_1000mb", NOW)
    assert billing.revenue() == D("120.00")
    assert billing.revenue(NEW) == D("100.00")
    assert billing.reconcile() == []


# --- any interleaving keeps the accounts consistent with the ledger ---------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["balance", "credit", "topup", "purchase", "replay", "usage"]),
        st.sampled_from([RICH, NEW]),
        st.sampled_from([p.id for p in CATALOGUE]),
        st.integers(1, 300),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_any_interleaving_keeps_balance_and_debt_consistent_with_the_ledger(
    ops: list[tuple[str, str, str, int]],
) -> None:
    billing = make_billing()
    prices = {p.id: p.price for p in CATALOGUE}
    revenue = D(0)
    activated: list[tuple[str, str, str, Payment]] = []
    for step, (op, msisdn, package_id, amount) in enumerate(ops):
        now = NOW + step * 60
        price = prices[package_id]
        try:
            if op in ("balance", "credit"):
                payment = Payment.BALANCE if op == "balance" else Payment.CREDIT
                record, replayed = billing.activate(f"o{step}", msisdn, package_id, payment, price, now)
                assert not replayed
                activated.append((f"o{step}", msisdn, package_id, payment))
                revenue += record.price + record.fee
            elif op == "replay" and activated:
                key, who, pkg, payment = activated[amount % len(activated)]
                _, replayed = billing.activate(key, who, pkg, payment, prices[pkg], now)
                assert replayed
            elif op == "topup":
                before = billing.subscriber(msisdn, now)
                record_t = billing.top_up(msisdn, D(amount), now)
                assert record_t.repaid == min(before.debt, D(amount))
            elif op == "purchase":
                revenue += billing.purchase(msisdn, package_id, now).price
            elif op == "usage":
                billing.record_usage(msisdn, amount, now)
        except InsufficientFunds:
            pass
        for who in (RICH, NEW):
            state = billing.subscriber(who, now)
            assert state.balance >= 0 and state.debt >= 0
    assert billing.reconcile() == []
    assert billing.revenue() == revenue
    assert len(billing.activations()) == len(activated)
    assert sorted(e.reference for e in billing.ledger() if e.kind is LedgerKind.ACTIVATION) == sorted(
        key for key, *_ in activated
    )


# --- configuration ---------------------------------------------------------------------------------


def test_the_example_config_loads_and_matches_the_campaign_catalogue() -> None:
    config = load_billing_config(ROOT / "configs/simulators/billing.yaml")
    assert config.threshold_percent == 90
    assert config.scoring.step == D(10)
    assert Route.ACTIVATION in config.faults.routes
    campaigns = load_yaml_model(ROOT / "configs/campaigns/catalogue.yaml", CatalogueConfig)
    assert config.catalogue == catalogue_from_config(campaigns)


def test_money_must_be_exact_in_config(tmp_path: Path) -> None:
    path = tmp_path / "billing.yaml"
    path.write_text("scoring:\n  base: 20.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"billing.yaml:2: .*string"):
        load_billing_config(path)
    path.write_text("faults:\n  unavailable: 0.7\n  dropped: 0.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must not exceed 1"):
        load_billing_config(path)


def test_fault_injection_is_deterministic_for_a_seed() -> None:
    config = FaultConfig(seed=42, unavailable=0.3, dropped=0.2, latency=(0.0, 0.1))
    first = FaultInjector(config).draw(Route.ACTIVATION)
    a, b = FaultInjector(config), FaultInjector(config)
    plans_a = [a.draw(Route.ACTIVATION) for _ in range(200)]
    plans_b = [b.draw(Route.ACTIVATION) for _ in range(200)]
    assert plans_a == plans_b
    assert plans_a[0] == first
    faults = [p.fault for p in plans_a]
    assert 30 < faults.count(Fault.UNAVAILABLE) < 90 and 15 < faults.count(Fault.DROP) < 70
    assert all(0 <= p.latency <= 0.1 for p in plans_a)
    assert a.draw(Route.TOPUP).fault is Fault.NONE  # not a targeted route
    scripted = FaultInjector(FaultConfig(script=(Fault.DROP, Fault.UNAVAILABLE)))
    assert [scripted.draw(Route.CREDIT).fault for _ in range(3)] == [
        Fault.DROP,
        Fault.UNAVAILABLE,
        Fault.NONE,
    ]


# --- the HTTP server -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def server() -> AsyncIterator[BillingServer]:
    async with BillingServer(make_billing(), Clock()) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    server: BillingServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = None,
) -> tuple[int, Any]:
    headers = {} if key is None else {"Idempotency-Key": key}
    async with http.request(method, server.url + path, json=body, headers=headers) as response:
        return response.status, await response.json()


def activation(msisdn: str = RICH, package_id: str = "data_100mb", payment: str = "credit") -> dict[str, str]:
    return {"msisdn": msisdn, "package_id": package_id, "payment": payment, "price": "20.00"}


async def test_credit_endpoint_answers_money_as_strings(
    server: BillingServer, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, server, "GET", f"/v1/subscribers/{RICH}/credit")
    assert status == 200
    assert (body["balance"], body["credit_limit"], body["debt"]) == ("50.00", "180", "0")
    status, body = await call(http, server, "GET", "/v1/subscribers/254799999999/credit")
    assert status == 404 and "254799999999" in body["error"]


async def test_activation_created_replayed_conflict(
    server: BillingServer, http: aiohttp.ClientSession
) -> None:
    status, created = await call(http, server, "POST", "/v1/activations", activation(), key="offer-1")
    assert status == 201
    assert (created["price"], created["fee"], created["debt"], created["payment"]) == (
        "20.00",
        "2.00",
        "22.00",
        "credit",
    )
    status, replayed = await call(http, server, "POST", "/v1/activations", activation(), key="offer-1")
    assert (status, replayed) == (200, created)
    status, body = await call(
        http, server, "POST", "/v1/activations", activation(payment="balance"), key="offer-1"
    )
    assert status == 409 and "another" in body["error"]
    assert len(server.billing.ledger()) == 2  # the activation and its fee, once


@pytest.mark.parametrize(
    ("body", "key", "status"),
    [
        (activation(msisdn=NEW), "k1", 402),  # no credit for a new subscriber
        (activation(msisdn="254799999999"), "k2", 404),
        (activation(package_id="data_9mb"), "k3", 404),
        ({**activation(), "price": "19.00"}, "k4", 422),
        ({**activation(), "price": 20.0}, "k5", 422),  # money is never a float
        ({**activation(), "price": "NaN"}, "k6", 422),
        ({**activation(), "payment": "cash"}, "k7", 422),
        ({k: v for k, v in activation().items() if k != "msisdn"}, "k8", 422),
        (["not", "an", "object"], "k9", 422),
        (activation(), None, 422),  # no Idempotency-Key
    ],
)
async def test_activation_refusals(
    server: BillingServer, http: aiohttp.ClientSession, body: Any, key: str | None, status: int
) -> None:
    answer, payload = await call(http, server, "POST", "/v1/activations", body, key=key)
    assert answer == status
    assert isinstance(payload["error"], str) and payload["error"]
    assert server.billing.ledger() == ()


async def test_not_json_is_400(server: BillingServer, http: aiohttp.ClientSession) -> None:
    headers = {"Idempotency-Key": "k", "Content-Type": "application/json"}
    async with http.post(server.url + "/v1/activations", data=b"{nope", headers=headers) as response:
        assert response.status == 400


async def test_concurrent_activations_with_one_key_activate_once(http: aiohttp.ClientSession) -> None:
    faults = FaultConfig(seed=1, latency=(0.0, 0.02))
    async with BillingServer(make_billing(), Clock(), faults=faults) as server:
        answers = await asyncio.gather(
            *(call(http, server, "POST", "/v1/activations", activation(), key="offer-9") for _ in range(12))
        )
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200] * 11 + [201]
        assert len({str(body) for _, body in answers}) == 1
        assert [e.kind for e in server.billing.ledger()] == [LedgerKind.ACTIVATION, LedgerKind.CREDIT_FEE]
        assert len(server.billing.subscriber(RICH, NOW).packages) == 1


async def test_top_up_purchase_subscriber_and_ledger(
    server: BillingServer, http: aiohttp.ClientSession
) -> None:
    await call(http, server, "POST", "/v1/activations", activation(), key="offer-1")
    status, topped = await call(
        http, server, "POST", "/v1/topups", {"msisdn": RICH, "amount": "30", "reference": "mpesa-1"}
    )
    assert status == 201
    assert (topped["repaid"], topped["debt"], topped["balance"]) == ("22.00", "0.00", "58.00")
    status, bought = await call(
        http, server, "POST", "/v1/purchases", {"msisdn": RICH, "package_id": "data_100mb"}
    )
    assert status == 201 and bought["balance"] == "38.00"
    status, _ = await call(
        http, server, "POST", "/v1/purchases", {"msisdn": RICH, "package_id": "data_1000mb"}
    )
    assert status == 402
    status, _ = await call(http, server, "POST", "/v1/topups", {"msisdn": RICH, "amount": "-5"})
    assert status == 422
    status, sub = await call(http, server, "GET", f"/v1/subscribers/{RICH}")
    assert status == 200
    assert sub["balance"] == "38.00" and sub["tenure_days"] == 400
    assert [(p["reference"], p["active"]) for p in sub["packages"]] == [("offer-1", True), ("pur-1", True)]
    assert sub["local_date"] == "2024-06-01" and sub["zone"] == "Africa/Nairobi"
    status, ledger = await call(http, server, "GET", f"/v1/ledger?msisdn={RICH}")
    assert [e["kind"] for e in ledger["entries"]] == [
        "activation",
        "credit_fee",
        "topup",
        "repayment",
        "purchase",
    ]
    assert ledger["revenue"] == "42.00"  # 20 + 2 + 20
    assert ledger["totals"]["repayment"] == "22.00"
    status, everything = await call(http, server, "GET", "/v1/ledger")
    assert len(everything["entries"]) == 5
    assert server.stats.requests[Route.TOPUP] == 2 and server.stats.requests[Route.READ] == 3


async def test_injected_503_and_dropped_connection(http: aiohttp.ClientSession) -> None:
    faults = FaultConfig(retry_after=2, script=(Fault.UNAVAILABLE, Fault.DROP))
    async with BillingServer(make_billing(), Clock(), faults=faults) as server:
        async with http.post(
            server.url + "/v1/activations", json=activation(), headers={"Idempotency-Key": "o"}
        ) as response:
            assert response.status == 503 and response.headers["Retry-After"] == "2"
        assert server.billing.ledger() == ()
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await call(http, server, "POST", "/v1/activations", activation(), key="o")
        assert len(server.billing.activations()) == 1  # applied, never answered
        status, body = await call(http, server, "POST", "/v1/activations", activation(), key="o")
        assert status == 200 and body["activation_id"] == "act-1"
        assert (server.stats.unavailable, server.stats.dropped) == (1, 1)
    with pytest.raises(LocalProtocolError):
        _ = server.address


# --- recurring renewals and pay-as-you-go ----------------------------------------------------------

MONTHLY = CataloguePackage(
    id="monthly_1gb", volume_mb=1000, price=D("250.00"), validity_days=30, recurring=True
)
RENEWING = CONFIG.model_copy(update={"catalogue": (*CATALOGUE, MONTHLY), "payg_price_per_mb": D("0.50")})
LOYAL = "254700000003"
# the opening period ends 2024-06-01 local (Nairobi, UTC+3): the renewal is due at 2024-06-02 00:00
# local, which is 2024-06-01 21:00 UTC
BOUNDARY = NOW + 21 * 3600


def renewing_billing(balance: str = "300.00", config: BillingConfig = RENEWING) -> Billing:
    billing = Billing(config)
    opening = PackageHolding(
        "monthly_1gb", 1000, 900.0, "2024-05-03", "2024-06-01", recurring=True, reference="base"
    )
    billing.add_subscriber(
        Subscriber(LOYAL, balance=D(balance), tenure_days=400, zone="Africa/Nairobi", packages=(opening,)),
        NOW,
    )
    return billing


def test_a_recurring_package_renews_at_local_midnight_for_its_price() -> None:
    billing = renewing_billing()
    heard: list[object] = []
    billing.add_listener(heard.append)
    assert billing.subscriber(LOYAL, BOUNDARY - 1).packages[0].reference == "base"  # not yet due
    assert heard == []
    state = billing.subscriber(LOYAL, BOUNDARY + 5)  # the first look past the boundary renews
    (renewed,) = state.packages
    reference = "monthly_1gb:2024-06-02..2024-07-01"
    assert renewed == PackageHolding(
        "monthly_1gb", 1000, 0.0, "2024-06-02", "2024-07-01", recurring=True, reference=reference
    )
    assert state.balance == D("50.00") and state.debt == 0
    (entry,) = billing.ledger(LOYAL)
    assert (entry.at, entry.kind, entry.amount, entry.reference, entry.package_id, entry.payment) == (
        BOUNDARY,  # stamped at the boundary, not when billing happened to look
        LedgerKind.RENEWAL,
        D("250.00"),
        reference,
        "monthly_1gb",
        Payment.BALANCE,
    )
    assert billing.revenue() == D("250.00") and LedgerKind.RENEWAL in REVENUE_KINDS
    assert heard == [PackageAdded(LOYAL, renewed, LedgerKind.RENEWAL, reference, BOUNDARY)]
    assert billing.reconcile() == []
    # the new period is metered from zero: 90 % and exhaustion cross again
    (threshold,) = billing.record_usage(LOYAL, 950, BOUNDARY + 60).crossings
    assert (threshold.kind, threshold.reference) == (UsageKind.THRESHOLD, reference)


def test_a_short_balance_lets_the_package_lapse_without_debt() -> None:
    billing = renewing_billing(balance="249.99")
    heard: list[object] = []
    billing.add_listener(heard.append)
    score = billing.credit_score(LOYAL, BOUNDARY)  # scoring looks at the account too
    assert (score.balance, score.debt) == (D("249.99"), 0)
    (lapsed,) = billing.subscriber(LOYAL, BOUNDARY).packages
    assert (lapsed.end_date, lapsed.recurring, lapsed.reference) == ("2024-06-01", False, "base")
    assert billing.ledger() == () and heard == []
    billing.top_up(LOYAL, D(100), BOUNDARY + DAY)  # a later top-up does not bring it back
    assert not billing.subscriber(LOYAL, BOUNDARY + 40 * DAY).packages[0].recurring
    assert billing.renew_due(BOUNDARY + 40 * DAY) == ()
    assert billing.reconcile() == []


def test_renewals_are_idempotent_and_the_same_by_sweep_or_by_look() -> None:
    lazy, swept = renewing_billing("600.00"), renewing_billing("600.00")
    # two missed periods and a third too expensive: renewed twice, oldest boundary first, then lapsed
    later = BOUNDARY + 65 * DAY
    lazy.top_up(LOYAL, D(10), later)  # the top-up comes after the renewals it found due
    notices = swept.renew_due(later)
    assert [n.package.start_date for n in notices] == ["2024-06-02", "2024-07-02"]
    assert [n.at for n in notices] == [BOUNDARY, BOUNDARY + 30 * DAY]
    assert swept.renew_due(later) == () and swept.renew_due(later + 1) == ()  # nothing twice
    swept.top_up(LOYAL, D(10), later)
    assert lazy.ledger() == swept.ledger()
    assert lazy.subscriber(LOYAL, later) == swept.subscriber(LOYAL, later)
    (last,) = swept.subscriber(LOYAL, later).packages
    assert (last.start_date, last.end_date, last.recurring) == ("2024-07-02", "2024-07-31", False)
    assert swept.subscriber(LOYAL, later).balance == D("110.00")
    assert swept.reconcile() == [] and lazy.reconcile() == []


def test_a_renewal_reaches_listeners_that_call_billing_back() -> None:
    billing = renewing_billing()
    seen: list[tuple[str, D]] = []

    def listener(notice: object) -> None:
        if isinstance(notice, PackageAdded) and notice.via is LedgerKind.RENEWAL:
            # the network refills its meter: billing is already in the renewed state
            state = billing.subscriber(notice.msisdn, notice.at)
            seen.append((state.packages[0].start_date, state.balance))

    billing.add_listener(listener)
    billing.record_usage(LOYAL, 10, BOUNDARY + 1)
    assert seen == [("2024-06-02", D("50.00"))]


def test_an_activated_recurring_package_renews_too() -> None:
    billing = Billing(RENEWING)
    billing.add_subscriber(Subscriber(NEW, balance=D("600.00"), tenure_days=10, zone="UTC"), NOW)
    record, _ = billing.activate("offer-m", NEW, "monthly_1gb", Payment.BALANCE, D("250.00"), NOW + 3600)
    assert (record.package.start_date, record.package.end_date) == ("2024-06-01", "2024-06-30")
    assert billing.renew_due(NOW + 29 * DAY) == ()
    (notice,) = billing.renew_due(NOW + 30 * DAY)
    assert notice.package.start_date == "2024-07-01" and notice.at == NOW + 30 * DAY
    assert billing.subscriber(NEW, NOW + 30 * DAY).balance == D("100.00")
    assert billing.revenue() == D("500.00") and billing.reconcile() == []


def test_pay_as_you_go_is_charged_and_capped_at_the_balance() -> None:
    billing = renewing_billing(balance="10.00")
    change = billing.record_usage(LOYAL, 112.5, NOW + 60)  # 100 MB of quota left, 12.5 MB over
    assert change.overage_mb == pytest.approx(12.5)
    assert change.payg_charged == D("6.25")
    assert billing.subscriber(LOYAL, NOW + 60).balance == D("3.75")
    change = billing.record_usage(LOYAL, 20, NOW + 120)  # 10.00 due, 3.75 left: 3.75 charged
    assert change.payg_charged == D("3.75")
    assert billing.subscriber(LOYAL, NOW + 120).balance == 0
    assert billing.record_usage(LOYAL, 20, NOW + 180).payg_charged == 0  # nothing left, no debt
    entries = billing.ledger(LOYAL)
    assert [(e.kind, e.amount) for e in entries] == [
        (LedgerKind.PAYG, D("6.25")),
        (LedgerKind.PAYG, D("3.75")),
    ]
    assert billing.subscriber(LOYAL, NOW + 180).debt == 0
    assert billing.revenue() == D("10.00") and billing.reconcile() == []
    # the price 0 (the default) charges nothing, as before
    free = renewing_billing(balance="10.00", config=RENEWING.model_copy(update={"payg_price_per_mb": D(0)}))
    assert free.record_usage(LOYAL, 500, NOW + 60).payg_charged == 0 and free.ledger() == ()


def test_pay_as_you_go_price_must_be_exact_in_config(tmp_path: Path) -> None:
    path = tmp_path / "billing.yaml"
    path.write_text("payg_price_per_mb: 0.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"billing.yaml:1: .*string"):
        load_billing_config(path)
    assert load_billing_config(ROOT / "configs/simulators/billing.yaml").payg_price_per_mb == D("0.50")


def test_the_meter_records_use_before_what_pays_for_it_changes() -> None:
    """Billing has the network record the use so far before an activation, a purchase or a top-up: the
    pay-as-you-go use before a new package is charged as such and does not come out of that package."""
    billing = renewing_billing(balance="100.00")
    billing.record_usage(LOYAL, 100, NOW + 60)  # the opening package is used up: pay-as-you-go
    pending = {LOYAL: 10.0}  # MB used since, not yet recorded (the network meters in batches)
    calls: list[tuple[str, float, int]] = []

    def meter(msisdn: str, now: float) -> None:
        state = billing.subscriber(msisdn, now)
        calls.append((msisdn, now, len(state.packages)))  # before the change
        billing.record_usage(msisdn, pending.pop(msisdn, 0.0), now)

    billing.set_meter(meter)
    record, replay = billing.activate("offer-1", LOYAL, "data_100mb", Payment.BALANCE, D("20.00"), NOW + 120)
    assert not replay and calls == [(LOYAL, NOW + 120, 1)]
    assert [(e.kind, e.amount) for e in billing.ledger(LOYAL)] == [
        (LedgerKind.PAYG, D("5.00")),  # 10 MB at 0.50, on the balance as it was before the package
        (LedgerKind.ACTIVATION, D("20.00")),
    ]
    assert record.package.used_mb == 0  # the new package starts untouched
    billing.activate("offer-1", LOYAL, "data_100mb", Payment.BALANCE, D("20.00"), NOW + 130)
    assert len(calls) == 1  # a replay changes nothing: nothing to meter
    with pytest.raises(UnknownSubscriber):
        billing.activate("offer-2", "254799999999", "data_100mb", Payment.BALANCE, D("10.00"), NOW)
    with pytest.raises(UnknownPackage):
        billing.activate("offer-3", LOYAL, "no_such", Payment.BALANCE, D("10.00"), NOW)
    assert len(calls) == 1  # refused before a decision: nothing metered
    billing.purchase(LOYAL, "data_100mb", NOW + 200)
    billing.top_up(LOYAL, D(5), NOW + 300)
    assert [(now, held) for _, now, held in calls[1:]] == [(NOW + 200, 2), (NOW + 300, 3)]
    billing.set_meter(None)
    billing.top_up(LOYAL, D(5), NOW + 400)
    assert len(calls) == 3 and billing.reconcile() == []


def test_a_package_on_its_own_terms_renews_on_them() -> None:
    """A base package a scenario gave its own price and period (or one the catalogue does not sell)
    renews on those terms, with its own volume; without terms an unsold package lapses."""
    billing = Billing(RENEWING)
    own = RenewalTerms(D("40.00"), 2)
    legacy = PackageHolding(
        "legacy_300mb", 300, 250.0, "2024-05-31", "2024-06-01", recurring=True, reference="a", terms=own
    )
    cheaper = PackageHolding(
        "monthly_1gb", 500, 0.0, "2024-05-31", "2024-06-01", recurring=True, reference="b", terms=own
    )
    unsold = PackageHolding("gone_1gb", 1000, 0.0, "2024-05-31", "2024-06-01", recurring=True, reference="c")
    billing.add_subscriber(
        Subscriber(
            LOYAL,
            balance=D("100.00"),
            tenure_days=400,
            zone="Africa/Nairobi",
            packages=(legacy, cheaper, unsold),
        ),
        NOW,
    )
    notices = billing.renew_due(BOUNDARY + 2 * DAY)  # two 2-day periods each: 4 x 40.00 = 160.00 > 100.00
    assert [(n.package.package_id, n.package.start_date, n.package.end_date) for n in notices] == [
        ("legacy_300mb", "2024-06-02", "2024-06-03"),
        ("monthly_1gb", "2024-06-02", "2024-06-03"),
    ]
    state = billing.subscriber(LOYAL, BOUNDARY + 2 * DAY)
    renewed_legacy, renewed_cheaper, lapsed = state.packages
    assert (renewed_legacy.quota_mb, renewed_legacy.used_mb, renewed_legacy.terms) == (300, 0.0, own)
    assert (renewed_cheaper.quota_mb, renewed_cheaper.terms) == (500, own)  # not the catalogue's 1000 MB
    assert (lapsed.recurring, lapsed.end_date) == (False, "2024-06-01")
    # the second period of each was due at the same boundary: 20.00 left, both lapse there
    assert not renewed_legacy.recurring and not renewed_cheaper.recurring
    assert [(e.kind, e.amount, e.package_id) for e in billing.ledger(LOYAL)] == [
        (LedgerKind.RENEWAL, D("40.00"), "legacy_300mb"),
        (LedgerKind.RENEWAL, D("40.00"), "monthly_1gb"),
    ]
    assert state.balance == D("20.00") and billing.reconcile() == []
