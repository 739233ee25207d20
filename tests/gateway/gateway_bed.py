"""A whole gateway on loopback for tests: the SMSC simulator with handsets and SIM cards, the billing
simulator over HTTP, and ``Gateway`` instances (with admin servers) made through ``Network``, stopped
at the end. Shared by test_campaign_channels.py, test_admin_api.py and test_metrics.py.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import aiohttp

from campaign_core.model import Profile, RecordKind
from campaign_core.usage import Trigger
from campaign_core.usage import TriggerKind as UsageTriggerKind
from gateway.admin import AdminServer
from gateway.app import Gateway, GatewaySettings
from gateway.billing.client import BillingClient
from gateway.campaigns.loader import load_campaign_dir
from gateway.ingest.config import IngestConfig
from gateway.smpp.client import ClientConfig
from gateway.stk import KeyStore
from simulators.billing import (
    Billing,
    BillingConfig,
    BillingServer,
    PackageHolding,
    Subscriber,
    TopUp,
    catalogue_from_config,
)
from simulators.handset import DEFAULT_PROFILE, Handset, UserAction, UserPolicy
from simulators.scenario import SimSubscriber
from simulators.sim_applet import SimCard
from simulators.simulate import sim_keys
from simulators.smsc import SmscSimulator

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGNS = ROOT / "configs" / "campaigns"
MENUS = ROOT / "configs" / "ussd" / "menus.yaml"
START = 1_780_322_400.0  # 2026-06-01 17:00 in Nairobi: outside the quiet hours
TOKEN = "admin-token-0123456789abcdef"
MSISDNS = ("254700000201", "254700000202", "254700000203")
# a Diameter listener on a free port that takes any peer (the tests' ingest section)
DIAMETER: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 0,
    "origin_host": "gw.localdomain",
    "origin_realm": "localdomain",
    "allowed_peers": [{"origin_host": "*"}],
}


@dataclass
class _Sub:
    msisdn: str
    segment: str = "prepaid"
    stk_capable: bool = True


def _keys(msisdns: Iterable[str]) -> KeyStore:
    """SIM keys for these numbers (``sim_keys`` reads only the MSISDN and STK capability)."""
    return sim_keys(cast("list[SimSubscriber]", [_Sub(m) for m in msisdns]))


class Clock:
    """Epoch seconds that follow the loop clock from START (the gateway's ``clock``)."""

    def __init__(self) -> None:
        self.origin = asyncio.get_running_loop().time()

    def __call__(self) -> float:
        return START + asyncio.get_running_loop().time() - self.origin


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Network:
    smsc: SmscSimulator
    billing: Billing
    server: BillingServer
    client: BillingClient
    clock: Clock
    state: Path
    handsets: dict[str, Handset]
    campaigns: Path
    http: aiohttp.ClientSession
    gateways: list[Gateway] = field(default_factory=list)
    admins: list[AdminServer] = field(default_factory=list)

    async def gateway(self, *, tps: float | None = None, ingest: Mapping[str, Any] | None = None) -> Gateway:
        async def profile(msisdn: str) -> Profile | None:
            return await self.client.profile(msisdn)

        host, port = self.smsc.address
        settings = GatewaySettings(
            smpp=ClientConfig(host, port, "gw", "secret", window=50, tps=tps, reconnect_initial=0.1),
            short_code="12345",
            campaigns_dir=self.campaigns,
            ussd_menus=MENUS,
            state_dir=self.state,
            ingest=IngestConfig.model_validate(ingest or {"http": {"host": "127.0.0.1", "port": 0}}),
            sim_keys=_keys(self.handsets),
            currency="KES",
            durable=False,
        )
        gateway = Gateway(settings, self.client, profile, clock=self.clock)
        await gateway.start()
        self.gateways.append(gateway)
        return gateway

    async def admin(
        self, gateway: Gateway, reload: Callable[[], Any] | None = None, **kwargs: Any
    ) -> AdminServer:
        server = AdminServer(gateway, host="127.0.0.1", port=0, token=TOKEN, reload=reload, **kwargs)
        await server.start()
        self.admins.append(server)
        return server

    async def call(
        self,
        server: AdminServer,
        method: str,
        path: str,
        *,
        token: str | None = TOKEN,
        body: object = None,
        raw: bytes | None = None,
        authorization: str | None = None,
    ) -> Answer:
        headers = {}
        if authorization is not None:
            headers["Authorization"] = authorization
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"headers": headers}
        if raw is not None:
            kwargs["data"] = raw
            headers["Content-Type"] = "application/json"
        elif body is not None:
            kwargs["json"] = body
        async with self.http.request(method, server.url + path, **kwargs) as response:
            return Answer(response.status, dict(response.headers), await response.read())


async def open_network(tmp_path: Path) -> AsyncIterator[Network]:
    """The simulators on loopback; the gateways and admin servers made through it stop at the end."""
    clock = Clock()
    # the new upsell on its own (no experiment: every subscriber gets it at once)
    directory = tmp_path / "campaigns"
    directory.mkdir()
    for name in ("catalogue.yaml", "policy.yaml", "upsell_new.yaml"):
        shutil.copy(CAMPAIGNS / name, directory / name)
    campaigns = load_campaign_dir(directory, ussd_menus=None)
    billing = Billing(BillingConfig(), catalogue_from_config(campaigns.catalogue))
    for msisdn in MSISDNS:
        billing.add_subscriber(
            Subscriber(
                msisdn,
                balance=Decimal(30),
                tenure_days=400,
                zone="Africa/Nairobi",
                topups=(TopUp(START - 86_400 * 5, Decimal(100)),),
                packages=(PackageHolding("data_1000mb", 1000, 1000.0, "2026-05-30", "2026-06-05"),),
            ),
            START,
        )
    server = BillingServer(billing, clock)
    host, port = await server.start()
    smsc = SmscSimulator({"gw": "secret"}, receipt_delay=0.05, enquire_link_interval=None)
    await smsc.start("127.0.0.1", 0)
    keys = _keys(MSISDNS)
    handsets = {}
    for index, msisdn in enumerate(MSISDNS):
        card = keys.by_msisdn(msisdn)
        assert card is not None
        sim = SimCard(card.iccid, {card.tar: card.key_set()}, dialog_timeout=30.0)
        user = UserPolicy(UserAction.IGNORE)
        handsets[msisdn] = Handset(msisdn, sim, DEFAULT_PROFILE, user, smsc, seed=index, dialog_timeout=20.0)
    client = BillingClient(f"http://{host}:{port}", timeout=5.0, retries=2)
    http = aiohttp.ClientSession()
    net = Network(smsc, billing, server, client, clock, tmp_path / "state", handsets, directory, http)
    yield net
    for admin in net.admins:
        await admin.stop()
    for gateway in net.gateways:
        await gateway.stop()
    await http.close()
    for handset in handsets.values():
        await handset.close()
    await client.close()
    await smsc.stop()
    await server.stop()


async def until(
    condition: Callable[[], bool], timeout: float = 10.0, describe: Callable[[], object] | None = None
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met in time: {describe() if describe else ''}")
        await asyncio.sleep(0.02)


def exhausted(msisdn: str, clock: Clock, event_id: str | None = None, period: str = "p1") -> Trigger:
    now = clock()
    return Trigger(
        UsageTriggerKind.EXHAUSTED,
        msisdn,
        "data_1000mb",
        period,
        100,
        event_id or f"ev-{msisdn}",
        now - 1,
        now,
        "test",
    )


def kinds(gateway: Gateway, msisdn: str) -> list[RecordKind]:
    return [record.kind for record in gateway.store.records_of(msisdn)]


# --- the document and the token ---------------------------------------------------------------------
