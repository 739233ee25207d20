"""The gateway's billing client against a real billing simulator on loopback, with injected faults:
retries with back-off on 5xx / dropped connections / timeouts, never on other 4xx, one Idempotency-Key
for every retry of an activation, the *Failed events when billing stays unavailable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from campaign_core.model import (
    Activate,
    Activated,
    ActivationFailed,
    ActivePackage,
    CreditFailed,
    CreditScored,
    Payment,
    Profile,
    QueryCredit,
)
from gateway.billing import BillingClient, BillingUnavailable
from protocols.errors import ConfigError, LocalProtocolError, TransportError
from simulators.billing import (
    Billing,
    BillingConfig,
    BillingServer,
    CataloguePackage,
    Fault,
    FaultConfig,
    LedgerKind,
    Route,
    ScoringRules,
    Subscriber,
    TopUp,
)

NOW = 1_717_200_000.0
DAY = 86_400.0
D = Decimal
RICH = "254700000001"
POOR = "254700000002"  # 10 days of tenure, KES 5: neither balance nor credit

CONFIG = BillingConfig(
    scoring=ScoringRules(min_tenure_days=90, window_days=30, base=D(20), topup_share=D("0.5"), cap=D(300)),
    credit_fee_percent=D(10),
    catalogue=(
        CataloguePackage(id="data_100mb", volume_mb=100, price=D("20.00"), validity_days=1),
        CataloguePackage(id="data_1000mb", volume_mb=1000, price=D("180.00"), validity_days=7),
    ),
)

StartServer = Callable[..., Awaitable[BillingServer]]


def make_billing() -> Billing:
    billing = Billing(CONFIG)
    billing.add_subscriber(
        Subscriber(RICH, balance=D("50.00"), tenure_days=400, topups=(TopUp(NOW - DAY, D(200)),)), NOW
    )
    billing.add_subscriber(Subscriber(POOR, balance=D(5), tenure_days=10), NOW)
    return billing


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """``await start_server(**fault_config)`` -> a running billing server with those faults."""
    servers: list[BillingServer] = []

    async def start(**faults: Any) -> BillingServer:
        server = BillingServer(make_billing(), lambda: NOW, faults=FaultConfig(**faults))
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def client(server_or_url: BillingServer | str, **kwargs: Any) -> BillingClient:
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.url
    settings: dict[str, Any] = {
        "timeout": 2.0,
        "retries": 3,
        "backoff_initial": 0.01,
        "backoff_max": 0.04,
        "rng_seed": 7,
    }
    settings.update(kwargs)
    return BillingClient(url, **settings)


def activate_cmd(offer: str = "offer-1", msisdn: str = RICH, payment: Payment = Payment.CREDIT) -> Activate:
    return Activate(offer, msisdn, "data_100mb", payment, D("20.00"))


# --- scoring ---------------------------------------------------------------------------------------


async def test_score(start_server: StartServer) -> None:
    server = await start_server()
    async with client(server) as billing:
        scored = await billing.score(QueryCredit("offer-1:score", RICH, 5.0))
        assert scored == CreditScored("offer-1:score", RICH, D("50.00"), D(120))  # 20 + 0.5 * 200
        assert isinstance(scored.balance, Decimal)
        failed = await billing.score(QueryCredit("offer-2:score", "254799999999", 5.0))
    assert isinstance(failed, CreditFailed)
    assert "HTTP 404" in failed.reason and "254799999999" in failed.reason
    assert billing.stats.requests == 2 and billing.stats.retries == 0  # a 404 is not retried


async def test_503s_then_success(start_server: StartServer) -> None:
    server = await start_server(script=(Fault.UNAVAILABLE, Fault.UNAVAILABLE))
    async with client(server) as billing:
        scored = await billing.score(QueryCredit("r", RICH, 5.0))
    assert isinstance(scored, CreditScored)
    assert (billing.stats.requests, billing.stats.retries) == (3, 2)
    assert server.stats.unavailable == 2


async def test_retry_after_is_honoured(start_server: StartServer) -> None:
    server = await start_server(script=(Fault.UNAVAILABLE,), retry_after=0.3)
    loop = asyncio.get_running_loop()
    async with client(server) as billing:
        started = loop.time()
        scored = await billing.score(QueryCredit("r", RICH, 5.0))
        elapsed = loop.time() - started
    assert isinstance(scored, CreditScored)
    assert elapsed >= 0.3 and billing.stats.slept >= 0.3  # not the 5-10 ms back-off


async def test_score_keeps_to_the_command_timeout(start_server: StartServer) -> None:
    server = await start_server(latency=(3.0, 3.0))
    loop = asyncio.get_running_loop()
    async with client(server, timeout=10.0, retries=5) as billing:
        started = loop.time()
        failed = await billing.score(QueryCredit("r", RICH, 0.3))
        elapsed = loop.time() - started
    assert isinstance(failed, CreditFailed)
    assert "time budget" in failed.reason
    assert elapsed < 2.0


async def test_score_retries_exhausted(start_server: StartServer) -> None:
    server = await start_server(unavailable=1.0)
    async with client(server, retries=2) as billing:
        failed = await billing.score(QueryCredit("r", RICH, 5.0))
    assert isinstance(failed, CreditFailed)
    assert failed.reason.startswith("billing unavailable after 3 attempts: HTTP 503")
    assert server.stats.requests[Route.CREDIT] == 3
    assert billing.stats.failures == 1


async def test_nobody_listening(free_port: Callable[[], int]) -> None:
    async with client(f"http://127.0.0.1:{free_port()}", retries=1) as billing:
        failed = await billing.score(QueryCredit("r", RICH, 5.0))
    assert isinstance(failed, CreditFailed)
    assert "after 2 attempts" in failed.reason and "ClientConnectorError" in failed.reason


# --- activations -----------------------------------------------------------------------------------


async def test_activation(start_server: StartServer) -> None:
    server = await start_server()
    async with client(server) as billing:
        activated = await billing.activate(activate_cmd())
        again = await billing.activate(activate_cmd())  # the engine re-executing it after a restart
    assert activated == again == Activated("offer-1", "data_100mb", Payment.CREDIT, D("20.00"))
    assert len(server.billing.activations()) == 1
    assert server.billing.subscriber(RICH, NOW).debt == D("22.00")


async def test_applied_then_dropped_is_retried_to_the_same_result(start_server: StartServer) -> None:
    server = await start_server(script=(Fault.DROP, Fault.DROP))
    async with client(server) as billing:
        activated = await billing.activate(activate_cmd())
    assert activated == Activated("offer-1", "data_100mb", Payment.CREDIT, D("20.00"))
    assert server.stats.dropped == 2 and billing.stats.retries == 2
    assert len(server.billing.activations()) == 1
    assert [e.kind for e in server.billing.ledger()] == [LedgerKind.ACTIVATION, LedgerKind.CREDIT_FEE]
    assert server.billing.reconcile() == []


async def test_concurrent_retries_under_random_faults_activate_each_offer_once(
    start_server: StartServer,
) -> None:
    server = await start_server(seed=3, unavailable=0.25, dropped=0.25, latency=(0.0, 0.01))
    server.billing.top_up(RICH, D(1000), NOW)
    async with client(server, retries=12) as billing:
        commands = [activate_cmd(f"offer-{i % 5}", payment=Payment.BALANCE) for i in range(20)]
        results = await asyncio.gather(*(billing.activate(c) for c in commands))
    assert all(isinstance(r, Activated) for r in results)
    assert sorted(a.offer_id for a in server.billing.activations()) == [f"offer-{i}" for i in range(5)]
    assert len(server.billing.ledger(RICH)) == 1 + 5  # the top-up and five activations
    assert server.stats.dropped > 0 and server.stats.unavailable > 0
    assert server.billing.reconcile() == []


@pytest.mark.parametrize(
    ("command", "status"),
    [
        (activate_cmd(msisdn=POOR), "HTTP 402"),  # no credit for 10 days of tenure
        (activate_cmd(msisdn=POOR, payment=Payment.BALANCE), "HTTP 402"),
        (activate_cmd(msisdn="254799999999"), "HTTP 404"),
        (Activate("offer-1", RICH, "data_100mb", Payment.CREDIT, D("19.00")), "HTTP 422"),
    ],
)
async def test_4xx_is_final(start_server: StartServer, command: Activate, status: str) -> None:
    server = await start_server()
    async with client(server) as billing:
        failed = await billing.activate(command)
    assert isinstance(failed, ActivationFailed) and failed.offer_id == command.offer_id
    assert status in failed.reason
    assert server.stats.requests[Route.ACTIVATION] == 1 and billing.stats.retries == 0
    assert server.billing.activations() == ()


async def test_conflicting_reuse_of_an_offer_id(start_server: StartServer) -> None:
    server = await start_server()
    async with client(server) as billing:
        assert isinstance(await billing.activate(activate_cmd()), Activated)
        failed = await billing.activate(activate_cmd(payment=Payment.BALANCE))
    assert isinstance(failed, ActivationFailed) and "HTTP 409" in failed.reason
    assert len(server.billing.activations()) == 1


async def test_activation_retries_exhausted(start_server: StartServer) -> None:
    server = await start_server(unavailable=1.0)
    async with client(server, retries=2) as billing:
        failed = await billing.activate(activate_cmd())
    assert isinstance(failed, ActivationFailed)
    assert "after 3 attempts" in failed.reason and "outcome unknown" in failed.reason
    assert server.billing.activations() == ()


async def test_outcome_known_says_whether_billing_answered(start_server: StartServer) -> None:
    """``ActivationFailed.outcome_known`` (what the channels retry on, rather than the reason's words):
    False when no answer came, billing applied it or not (every answer dropped after billing applied
    the activation, or billing unavailable), True for billing's refusal."""
    server = await start_server(dropped=1.0)
    async with client(server, retries=1) as billing:
        lost = await billing.activate(activate_cmd())
    assert isinstance(lost, ActivationFailed) and lost.outcome_known is False
    assert len(server.billing.activations()) == 1  # applied: only the answer was lost
    server = await start_server(unavailable=1.0)
    async with client(server, retries=1) as billing:
        down = await billing.activate(activate_cmd())
    assert isinstance(down, ActivationFailed) and down.outcome_known is False
    server = await start_server()
    async with client(server) as billing:
        refused = await billing.activate(activate_cmd(msisdn=POOR))
    assert isinstance(refused, ActivationFailed) and refused.outcome_known is True
    assert "HTTP 402" in refused.reason


async def test_every_attempt_carries_the_same_key_and_body(free_port: Callable[[], int]) -> None:
    """A bare aiohttp peer that answers 500, 429 and then 201: what the client sent each time."""
    seen: list[tuple[str | None, Any]] = []
    answers = [
        web.json_response({"error": "boom"}, status=500),
        web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": "0"}),
        web.json_response({"package_id": "data_100mb", "payment": "credit", "price": "20.00"}, status=201),
    ]

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.headers.get("Idempotency-Key"), await request.json()))
        return answers[len(seen) - 1]

    app = web.Application()
    app.router.add_post("/v1/activations", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with client(f"http://127.0.0.1:{port}/") as billing:
            result = await billing.activate(activate_cmd())
    finally:
        await runner.cleanup()
    assert isinstance(result, Activated)
    body = {"msisdn": RICH, "package_id": "data_100mb", "payment": "credit", "price": "20.00"}
    assert seen == [("offer-1", body)] * 3


async def test_malformed_answers_fail_cleanly(free_port: Callable[[], int]) -> None:
    async def credit(request: web.Request) -> web.Response:
        return web.json_response({"balance": 12.5, "credit_limit": "x"})

    async def activation(request: web.Request) -> web.Response:
        return web.Response(text="ok", status=201)

    app = web.Application()
    app.router.add_get("/v1/subscribers/{msisdn}/credit", credit)
    app.router.add_post("/v1/activations", activation)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with client(f"http://127.0.0.1:{port}") as billing:
            scored = await billing.score(QueryCredit("r", RICH, 5.0))
            activated = await billing.activate(activate_cmd())
    finally:
        await runner.cleanup()
    assert isinstance(scored, CreditFailed) and "balance" in scored.reason
    assert isinstance(activated, ActivationFailed) and "not a JSON object" in activated.reason
    # a 201 means billing applied it: the outcome is unknown, not failed (the channel asks again)
    assert activated.outcome_known is False and "answered 201" in activated.reason


# --- profiles --------------------------------------------------------------------------------------


async def test_profile_has_the_packages_active_today(start_server: StartServer) -> None:
    server = await start_server()
    server.billing.activate("offer-1", RICH, "data_100mb", Payment.BALANCE, D("20.00"), NOW - DAY)
    server.billing.activate("offer-2", RICH, "data_100mb", Payment.CREDIT, D("20.00"), NOW)
    async with client(server) as billing:
        profile = await billing.profile(RICH)
        assert await billing.profile("254799999999") is None
    assert profile == Profile(
        RICH, tenure_days=400, packages=(ActivePackage("data_100mb", "2024-06-01", "2024-06-01"),)
    )


async def test_profile_when_billing_is_down_is_none(start_server: StartServer) -> None:
    server = await start_server(unavailable=1.0, routes=frozenset({Route.READ}))
    async with client(server, retries=1) as billing:
        assert await billing.profile(RICH) is None
    assert billing.stats.failures == 1 and server.stats.requests[Route.READ] == 2


# --- back-off, settings, lifecycle -----------------------------------------------------------------


async def test_back_off_is_deterministic_for_a_seed(start_server: StartServer) -> None:
    slept = []
    for _ in range(2):
        server = await start_server(unavailable=1.0)
        async with client(server, retries=4, rng_seed=11) as billing:
            await billing.score(QueryCredit("r", RICH, 5.0))
        slept.append(billing.stats.slept)
    assert slept[0] == slept[1]
    # 4 waits, each 50-100 % of min(0.04, 0.01 * 2**n): 0.01, 0.02, 0.04, 0.04
    assert 0.055 <= slept[0] <= 0.11


async def test_closed_client_and_bad_settings() -> None:
    billing = client("http://127.0.0.1:1")
    await billing.close()
    with pytest.raises(LocalProtocolError):
        await billing.score(QueryCredit("r", RICH, 1.0))
    for bad in ({"timeout": 0}, {"retries": -1}, {"backoff_initial": 1.0, "backoff_max": 0.5}):
        with pytest.raises(ConfigError):
            client("http://127.0.0.1:1", **bad)
    assert issubclass(BillingUnavailable, TransportError)
