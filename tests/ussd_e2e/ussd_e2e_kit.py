"""The test bed of the USSD end-to-end tests (import as ``from ussd_e2e_kit import ...``; the name is
unique in ``tests/`` because pytest's prepend import mode puts every test directory on ``sys.path``).

Nothing is stubbed: the SMSC simulator listens on a loopback port and relays USSD (SMPP 3.4
``ussd_service_op`` / ``its_session_info``) between simulated handsets (``simulators.handset.Handset``,
``dial`` -> ``UssdDialog``) and the gateway, which is ``gateway.smpp.client.SmppClient`` bound over
TCP with ``gateway.ussd.UssdService`` on it, serving the shipped ``configs/ussd/menus.yaml``. The
handlers and the provider those menus name are the async functions of ``Shop``, the application a
deployment would plug in (a billing that records purchases, offers per subscriber).

``Wire`` keeps what crossed the SMPP link, per subscriber, decoded with ``protocols.ussd.from_pdu``: the
USSD submit_sm the SMSC took from the gateway (its ``on_submit`` hook) and the USSD deliver_sm the
gateway's ESME received (an extra MO handler), so a test checks ops, session ids, sequence numbers
and end bits as they travelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.smpp.client import ClientConfig, SmppClient
from gateway.ussd import Item, Screen, UssdContext, UssdService, load_menus
from protocols.smpp.pdu import DataSm, DeliverSm, SubmitSm
from protocols.ussd import UssdMessage, UssdProfile, UssdServiceOp, from_pdu, get_profile, is_ussd
from simulators.handset import DEFAULT_PROFILE, Handset, UserPolicy, UssdDialog
from simulators.smsc import MtMessage, SmscSimulator, UssdScreen

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MENUS = ROOT / "configs" / "ussd" / "menus.yaml"
SYSTEM_ID = "ussd-e2e"
PASSWORD = "e2e-pw"
WAIT = 10.0  # what any single await may take before the test calls it a hang

Op = UssdServiceOp

# the texts of configs/ussd/menus.yaml (settings.texts)
FAILURE = "Sorry, the service is unavailable. Please try again later."
INVALID = "Invalid choice, please try again."
UNKNOWN_SERVICE = "Unknown service code. Dial *123# for the data shop."
MAIN = "Data shop\n1. Buy data bundle\n2. My offers\n3. Send data to a friend\n4. Check balance\n5. Help"
BUY_DATA = "Choose a bundle type\n1. Daily bundles\n2. Weekly bundles\n3. Monthly bundles\n0. Back"
# the bundles of the daily (1) and weekly (2) menus: (mb, price, validity)
BUNDLES: dict[str, list[tuple[str, str, str]]] = {
    "1": [("50", "10", "1 day"), ("100", "20", "1 day"), ("250", "45", "1 day")],
    "2": [("200", "50", "7 days"), ("500", "100", "7 days"), ("1000", "180", "7 days")],
}


def bundle_menu(kind: str) -> str:
    header = {"1": "Daily bundles (valid 24 hours)", "2": "Weekly bundles (valid 7 days)"}[kind]
    lines = [f"{n}. {_mb_label(mb)} for {price} KES" for n, (mb, price, _) in enumerate(BUNDLES[kind], 1)]
    return "\n".join([header, *lines, "0. Back"])


def _mb_label(mb: str) -> str:
    return "1GB" if mb == "1000" else f"{mb}MB"


def confirm_screen(mb: str, price: str, validity: str) -> str:
    return f"Buy {mb}MB valid {validity} for {price} KES?\n1. Yes, buy\n2. No\n0. Back"


def thank_you(msisdn: str, mb: str, price: str) -> str:
    return f"Thank you. {mb}MB for {price} KES added to {msisdn}."


# --- the application behind the menus ---------------------------------------------------------------


def offers_of(msisdn: str) -> list[dict[str, object]]:
    """The offers the campaign core has for ``msisdn``: different for every subscriber."""
    tail = int(msisdn[-3:])
    return [
        {"id": f"o-{msisdn}", "name": f"Promo{msisdn[-4:]}", "mb": 100 + tail, "price": 5 + tail % 90},
        {"id": "o-weekend", "name": "Weekend", "mb": 2000, "price": 99},
    ]


def offers_screen(msisdn: str) -> str:
    items = [f"{n}. {o['name']} {o['mb']}MB {o['price']} KES" for n, o in enumerate(offers_of(msisdn), 1)]
    return "\n".join(["Your offers", *items, "0. Back"])


@dataclass
class Shop:
    """The handlers (buy_package, gift_data, balance) and the provider (my_offers) of the shipped
    menus. ``down``: billing is unreachable and buy_package raises; ``stalled``: buy_package never
    answers (the service's handler_timeout must end the dialogue)."""

    purchases: list[dict[str, str]] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)  # UssdContext.session_id of each purchase
    gifts: list[dict[str, str]] = field(default_factory=list)
    down: bool = False
    stalled: bool = False

    async def buy_package(self, context: UssdContext) -> str:
        await asyncio.sleep(0)  # a real call yields to the loop
        if self.down:
            raise ConnectionError("billing unreachable")
        if self.stalled:
            await asyncio.Event().wait()  # never set
        self.purchases.append({"msisdn": context.msisdn, **context.args})
        self.sessions.append(context.session_id)
        return thank_you(context.msisdn, context.args["mb"], context.args.get("price", "0"))

    async def gift_data(self, context: UssdContext) -> str:
        await asyncio.sleep(0)
        self.gifts.append({"from": context.msisdn, **context.args})
        return f"{context.args['mb']}MB sent to {context.args['to']}."

    async def balance(self, context: UssdContext) -> str:
        await asyncio.sleep(0)
        return f"Balance of {context.msisdn}: 120 KES, 350MB."

    async def my_offers(self, context: UssdContext) -> Sequence[Item]:
        await asyncio.sleep(0)
        return offers_of(context.msisdn)

    def handlers(self) -> dict[str, Callable[[UssdContext], Awaitable[str | Screen]]]:
        return {"buy_package": self.buy_package, "gift_data": self.gift_data, "balance": self.balance}

    def providers(self) -> dict[str, Callable[[UssdContext], Awaitable[Sequence[Item]]]]:
        return {"my_offers": self.my_offers}


# --- what crossed the link --------------------------------------------------------------------------


class Wire:
    """USSD messages per subscriber: ``submits`` (gateway -> SMSC) and ``delivers`` (SMSC -> gateway)."""

    def __init__(self, profile: UssdProfile) -> None:
        self.profile = profile
        self.submits: defaultdict[str, list[UssdMessage]] = defaultdict(list)
        self.delivers: defaultdict[str, list[UssdMessage]] = defaultdict(list)

    def on_submit(self, mt: MtMessage) -> None:
        pdu = SubmitSm(
            source_addr=mt.source_addr,
            destination_addr=mt.destination_addr,
            data_coding=mt.data_coding,
            short_message=mt.short_message,
            optional_parameters=mt.optional_parameters,
        )
        if is_ussd(pdu):
            self.submits[mt.destination_addr].append(from_pdu(pdu, self.profile))

    def on_deliver(self, pdu: DeliverSm | DataSm) -> None:
        if is_ussd(pdu):
            self.delivers[pdu.source_addr].append(from_pdu(pdu, self.profile, mobile_originated=True))


# --- the test bed -------------------------------------------------------------------------------------


class UssdBed:
    """SMSC simulator + gateway (ESME + USSD service with the shipped menus and ``shop``) + handsets."""

    def __init__(
        self, *, profile: str = "standard", ussd_timeout: float = 180.0, **service_kwargs: Any
    ) -> None:
        self.profile = get_profile(profile)
        self.ussd_timeout = ussd_timeout
        self.service_kwargs = service_kwargs
        self.shop = Shop()
        self.wire = Wire(self.profile)
        self.handsets: list[Handset] = []
        self._smsc: SmscSimulator | None = None
        self._client: SmppClient | None = None
        self._service: UssdService | None = None

    @property
    def smsc(self) -> SmscSimulator:
        assert self._smsc is not None, "start() first"
        return self._smsc

    @property
    def client(self) -> SmppClient:
        assert self._client is not None, "start() first"
        return self._client

    @property
    def service(self) -> UssdService:
        assert self._service is not None, "start() first"
        return self._service

    async def start(self) -> UssdBed:
        smsc = self._smsc = SmscSimulator(
            {SYSTEM_ID: PASSWORD},
            seed=5,
            ussd_profile=self.profile,
            ussd_timeout=self.ussd_timeout,
            record_messages=False,
        )
        _, port = await smsc.start("127.0.0.1", 0)
        smsc.on_submit = self.wire.on_submit
        config = ClientConfig(
            "127.0.0.1",
            port,
            SYSTEM_ID,
            PASSWORD,
            window=200,
            response_timeout=10.0,
            connect_timeout=5.0,
            reconnect_initial=0.05,
            reconnect_max=0.5,
        )
        client = self._client = SmppClient(config)
        menus = load_menus(SHIPPED_MENUS, profile=self.profile)
        service = self._service = UssdService(
            client, self.profile, menus, self.shop.handlers(), self.shop.providers(), **self.service_kwargs
        )
        await service.start()  # listen before binding, as a composition root must
        client.add_mo_handler(self.wire.on_deliver)  # after the service's: it only looks
        await asyncio.wait_for(client.start(), WAIT)
        return self

    async def close(self) -> None:
        for handset in self.handsets:
            await handset.close()
        if self._service is not None:
            await asyncio.wait_for(self._service.close(), WAIT)
        if self._client is not None:
            await asyncio.wait_for(self._client.close(drain_timeout=1.0), WAIT)
        if self._smsc is not None:
            await self._smsc.stop()

    def handset(self, msisdn: str) -> Handset:
        phone = Handset(msisdn, None, DEFAULT_PROFILE, UserPolicy(), self.smsc, seed=len(self.handsets))
        self.handsets.append(phone)
        return phone

    async def journeys(self, count: int) -> list[str]:
        """The outcomes of the gateway's journeys once ``count`` dialogues have ended."""
        async with asyncio.timeout(WAIT):
            while len(self.service.journeys) < count:
                await asyncio.sleep(0.01)
        return [journey.outcome for journey in self.service.journeys]


async def walk(dialog: UssdDialog, *inputs: str) -> list[UssdScreen]:
    """Read the first screen, then answer each screen with the next input: every screen, in order."""
    screens = [await dialog.next_screen(WAIT)]
    for value in inputs:
        assert not screens[-1].final, f"the dialogue ended before {value!r}: {screens[-1].text!r}"
        await dialog.answer(value, timeout=WAIT)
        screens.append(await dialog.next_screen(WAIT))
    return screens


async def silence(check: Callable[[], object], within: float = 0.2) -> None:
    """Assert that ``check()`` gives the same value after ``within`` seconds (nothing more happened)."""
    before = check()
    await asyncio.sleep(within)
    assert check() == before, f"something changed: {before!r} -> {check()!r}"


@contextlib.asynccontextmanager
async def open_bed(**kwargs: Any) -> AsyncIterator[UssdBed]:
    """``async with open_bed(profile=..., ussd_timeout=..., **service_kwargs) as bed``."""
    bed = UssdBed(**kwargs)
    try:
        yield await bed.start()
    finally:
        await bed.close()
