"""The reference journey through ``tgw run`` as a process, with billing failing during the activation
(DESIGN.md, "Durability": a crash or restart loses nothing and never activates twice; fulfilment is
idempotent per offer).

The SMSC simulator (with the subscriber's handset and SIM card) and the billing simulator run in the
test's event loop; the gateway is a separate process started as an operator would start it, fed a DPI
event over its HTTP intake, and read through its admin API and ``tgw explain``.

Billing's answer to an activation can be lost after billing applied it (the connection drops), and
billing can be unavailable for longer than the client's retries. Either way the outcome is unknown:
the activation must be retried with the same offer id (billing's idempotency key) until billing
decides, not reported to the subscriber as failed ("you have not been charged") while billing has
charged them.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from stk_e2e_kit import Subscriber, make_sim_card, write_key_file
from tgw_kit import ROOT, TOKEN, Running, copy_configs, edit, gateway_config, tgw_run

from gateway.campaigns.loader import load_campaign_dir
from simulators.billing import (
    Billing,
    BillingConfig,
    BillingServer,
    Fault,
    FaultConfig,
    FaultInjector,
    Route,
    TopUp,
    catalogue_from_config,
)
from simulators.billing import Subscriber as BillingSubscriber
from simulators.handset import DEFAULT_PROFILE, Handset, ReactionDelay, UserAction, UserPolicy
from simulators.smsc import SmscSimulator

SUB = Subscriber.numbered(4242)
NO_KEYS = Subscriber.numbered(4343)  # billing knows them, the key file does not: no DSTK, SMS only
WAIT = 40.0  # seconds any one wait may take before the test calls it a hang (a shared 2-core box)


def _daytime_zone() -> str:
    """A fixed-offset zone where it is about noon now: the policy's quiet hours (21:00-08:00) never
    defer the test's contacts, whatever the hour the suite runs at."""
    offset = 12 - time.gmtime().tm_hour  # -11 .. 12
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-3 is UTC+3


@dataclass
class Net:
    smsc: SmscSimulator
    billing: Billing
    server: BillingServer
    phone: Handset
    config: Path


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Net]:
    configs = copy_configs(tmp_path)
    campaigns = configs / "campaigns"
    for path in campaigns.iterdir():  # the new upsell on its own: every subscriber gets it at once
        if path.name not in ("catalogue.yaml", "policy.yaml", "upsell_new.yaml"):
            path.unlink()
    loaded = load_campaign_dir(campaigns, ussd_menus=None)
    billing = Billing(BillingConfig(), catalogue_from_config(loaded.catalogue))
    now = time.time()
    for msisdn in (SUB.msisdn, NO_KEYS.msisdn):
        billing.add_subscriber(
            BillingSubscriber(
                msisdn,
                balance=Decimal(30),
                tenure_days=400,
                zone=_daytime_zone(),
                topups=(TopUp(now - 86_400 * 5, Decimal(200)),),
            ),
            now,
        )
    # only the activations fail, and only when the test says so
    server = BillingServer(billing, time.time, faults=FaultConfig(routes=frozenset({Route.ACTIVATION})))
    host, port = await server.start()
    smsc = SmscSimulator({"tgw": "secret"}, receipt_delay=0.05, enquire_link_interval=None)
    await smsc.start("127.0.0.1", 0)
    user = UserPolicy(UserAction.ACCEPT, delay=ReactionDelay.fixed(0.2))
    phone = Handset(SUB.msisdn, make_sim_card(SUB), DEFAULT_PROFILE, user, smsc, seed=1, dialog_timeout=30.0)
    keys = write_key_file(tmp_path / "keys.yaml", [SUB])
    changes = [("sim_keys: sim_keys.example.yaml", f"sim_keys: {keys}")]
    config = gateway_config(configs, smsc.address[1], f"http://{host}:{port}", changes=changes)
    yield Net(smsc, billing, server, phone, config)
    await phone.close()
    await smsc.stop()
    await server.stop()


@asynccontextmanager
async def _gateway(config: Path) -> AsyncIterator[tuple[Running, str, str]]:
    """``tgw run`` started and running, its log read in the background from then on: the process, the
    admin API's and the HTTP intake's addresses."""
    async with tgw_run(config) as running:
        intake = await running.address("HTTP intake on", WAIT)
        admin = await running.address("admin API listening on", WAIT)
        await running.until("gateway running", WAIT)
        running.drain()
        yield running, f"http://{admin}", intake


def _explain(store: Path, msisdn: str) -> str:
    """What ``tgw explain`` prints about the subscriber from the campaign store."""
    return subprocess.run(
        [sys.executable, "-m", "simulators.cli", "explain", "--store", str(store), msisdn],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=True,
    ).stdout  # fmt: skip


async def _exhausted(intake: str, msisdn: str = SUB.msisdn) -> None:
    event = {
        "event_id": f"e-{msisdn}", "msisdn": msisdn, "kind": "exhausted", "package_id": "data-1gb",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), "sequence": 1,
        "used_bytes": 1 << 30, "quota_bytes": 1 << 30, "period": "2026-12",
    }  # fmt: skip
    async with aiohttp.ClientSession() as http, http.post(intake, json=event) as response:
        assert response.status == 202, await response.text()
        assert (await response.json())["accepted"] == 1


async def _trail(admin: str, msisdn: str = SUB.msisdn) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{admin}/v1/subscribers/{msisdn}/explain", headers=headers) as response,
    ):
        if response.status == 404:
            return []
        assert response.status == 200, await response.text()
        records: list[dict[str, Any]] = (await response.json())["records"]
        return records


def _kinds(records: list[dict[str, Any]]) -> list[str]:
    return [record["kind"] for record in records]


async def _until(what: str, check: Any, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_an_activation_applied_but_unanswered_is_not_reported_failed(net: Net) -> None:
    """Billing applies the activation and the answer is lost, then billing answers 503 to every retry
    of the client: the outcome is unknown. The gateway retries the same offer id until billing answers
    with the stored activation; the subscriber gets the confirmation, never "you have not been
    charged", and billing's ledger has the activation once."""
    net.server.faults.script(Fault.DROP, Fault.UNAVAILABLE, Fault.UNAVAILABLE, Fault.UNAVAILABLE)
    async with _gateway(net.config) as (running, admin, intake):
        await _exhausted(intake)

        async def decided() -> bool:
            kinds = _kinds(await _trail(admin))
            return "fulfilled" in kinds or "failed" in kinds

        await _until("the activation to be decided", decided)
        trail = await _trail(admin)
        await _until("the SMS after the activation", lambda: _true(len(net.phone.inbox) >= 2))
        assert await running.stop(WAIT) == 0
    assert len(net.billing.activations()) == 1  # billing charged the subscriber, once
    assert "failed" not in _kinds(trail), trail
    assert _kinds(trail)[-2:] == ["fulfilled", "closed"]
    assert not any("not been charged" in text for text in net.phone.inbox), net.phone.inbox
    assert any("You now have 500 MB" in text for text in net.phone.inbox), net.phone.inbox


async def test_billing_down_across_a_restart_activates_once(net: Net, tmp_path: Path) -> None:
    """Billing answers 503 to every activation for as long as the gateway runs: the accepted offer
    stays activating (not failed), the gateway still stops at SIGTERM, the activation waits in the
    outbox, and the next start, with billing back, carries it out: one activation, confirmed."""
    net.server.faults.script(*[Fault.UNAVAILABLE] * 10_000)
    async with _gateway(net.config) as (running, admin, intake):
        await _exhausted(intake)
        # the client's own retries (4 attempts) and more: the gateway keeps trying
        await _until(
            "the gateway to retry the activation beyond the client's attempts",
            lambda: _true(net.server.stats.requests[Route.ACTIVATION] >= 6),
        )
        trail = await _trail(admin)
        assert "failed" not in _kinds(trail), trail
        assert _kinds(trail)[-1] == "activation"
        assert await running.stop(WAIT) == 0  # the retrying does not hold the graceful stop
    explain = _explain(tmp_path / "state" / "campaigns.sqlite", SUB.msisdn)
    assert "pending commands: 1" in explain and "Activate" in explain, explain
    assert net.billing.activations() == ()
    net.server.faults = FaultInjector(FaultConfig(routes=frozenset({Route.ACTIVATION})))  # billing is back
    async with _gateway(net.config) as (running, admin, intake):

        async def fulfilled() -> bool:
            return "fulfilled" in _kinds(await _trail(admin))

        await _until("the activation after the restart", fulfilled)
        await _until("the confirmation SMS", lambda: _true(any("You now have" in t for t in net.phone.inbox)))
        assert await running.stop(WAIT) == 0
    assert len(net.billing.activations()) == 1
    assert not any("not been charged" in text for text in net.phone.inbox), net.phone.inbox


async def test_a_stop_with_the_smsc_down_does_not_hang(net: Net, tmp_path: Path) -> None:
    """The SMSC goes away while the gateway runs; a journey's SMS waits for the bind. SIGTERM must
    still stop the gateway (exit 0) instead of waiting for an SMSC that does not come back; the SMS
    stays pending in the outbox, and the next start, with the SMSC back, sends it once."""
    port = net.smsc.address[1]
    async with _gateway(net.config) as (running, admin, intake):
        await net.smsc.stop()  # the SMSC is down: the gateway retries its bind, with back-off
        await _exhausted(intake, NO_KEYS.msisdn)

        async def sms_step() -> bool:
            return "contact" in _kinds(await _trail(admin, NO_KEYS.msisdn))[-1:]

        await _until("the SMS step (the DSTK step fails at once: no SIM keys)", sms_step)
        loop = asyncio.get_running_loop()
        began = loop.time()
        assert await running.stop(WAIT) == 0
        assert loop.time() - began < 30, "the graceful stop waited for the SMSC"
    explain = _explain(tmp_path / "state" / "campaigns.sqlite", NO_KEYS.msisdn)
    assert "pending commands: 1" in explain and "SendSms" in explain, explain
    smsc = SmscSimulator({"tgw": "secret"}, receipt_delay=0.05, enquire_link_interval=None)
    await smsc.start("127.0.0.1", port)
    user = UserPolicy(UserAction.IGNORE)
    phone = Handset(NO_KEYS.msisdn, make_sim_card(NO_KEYS), DEFAULT_PROFILE, user, smsc, seed=2)
    try:
        async with _gateway(net.config) as (running, admin, intake):
            await _until("the SMS after the restart", lambda: _true(bool(phone.inbox)))
            await asyncio.sleep(1.0)  # a second copy would come right after the first
            assert await running.stop(WAIT) == 0
    finally:
        await phone.close()
        await smsc.stop()
    assert len(phone.inbox) == 1 and "Dial to buy" in phone.inbox[0], phone.inbox


async def test_a_late_dstk_receipt_is_not_taken_for_the_sms(net: Net) -> None:
    """The handset is out of reach when the DSTK offer is pushed: no receipt within the step's
    hard_cap, so the SMS step goes out. The push's receipt comes later (the SMSC gave up on it:
    EXPIRED) while the SMS waits for its own. That receipt is the dialog's, an earlier step's: it must
    not count as the SMS's (which would fail the SMS step and end the journey although the SMS with
    the codes reaches the handset); the SMS's own receipt decides."""
    campaign = net.config.parent / "campaigns" / "upsell_new.yaml"
    edit(campaign, "    wait: 10m ", "    wait: 2s ")
    edit(campaign, "    hard_cap: 30m", "    hard_cap: 2s")
    await net.phone.close()  # switched off: the SMSC keeps the push until it expires
    net.smsc.outcomes = {"EXPIRED": 1.0}
    net.smsc.receipt_delay = 6.0  # the push's receipt: after the hard_cap, before the SMS's
    async with _gateway(net.config) as (running, admin, intake):
        await _exhausted(intake)
        await _until("the DSTK push", lambda: _true(any("STK push of offer" in x for x in running.lines)))
        net.smsc.receipt_delay = 10.0  # the SMS's receipt: after the push's
        net.smsc.outcomes = {"DELIVRD": 1.0}
        user = UserPolicy(UserAction.IGNORE)  # switched on again, in time for the SMS
        net.phone = Handset(SUB.msisdn, make_sim_card(SUB), DEFAULT_PROFILE, user, net.smsc, seed=3)

        async def sms_delivered() -> bool:
            records = await _trail(admin)
            return any(r["detail"].get("step") == 1 for r in records if r["kind"] in ("delivered", "failed"))

        await _until("the SMS step's receipt", sms_delivered)
        await asyncio.sleep(5.0)  # the SMS's own receipt comes 10 s after it: no second verdict on it
        trail = await _trail(admin)
        assert await running.stop(WAIT) == 0
    step1 = [
        r["detail"] for r in trail if r["kind"] in ("delivered", "failed") and r["detail"].get("step") == 1
    ]
    assert step1 == [{"step": 1, "delivered": True, "state": "DELIVRD"}], trail
    assert "closed" not in _kinds(trail), trail  # the offer is open: the codes in the SMS still work
    assert any("Dial to buy" in text for text in net.phone.inbox), net.phone.inbox


async def _true(value: bool) -> bool:
    return value
