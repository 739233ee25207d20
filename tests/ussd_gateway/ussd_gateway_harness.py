"""Helpers for the USSD service tests (import as ``from ussd_gateway_harness import ...``).

Everything is real: the SMSC simulator listens on loopback and relays USSD between handsets and the
bound ESME (``SmscSimulator.dial`` / ``UssdSession``), the ESME binds over TCP, and the USSD service
runs on it. A ``Phone`` plays one handset through the simulator's relay; ``Handsets`` also keeps
every USSD submit_sm the simulator took (its ``on_submit`` hook), decoded with
``protocols.ussd.from_pdu``, so a test can check the exact operation, end bit and sequence on the
wire. Raw deliver_sm (``SmscSimulator.deliver``) are used only for what a real USSD gateway never
sends (broken PDUs, retransmissions).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.smpp.client import ClientConfig, SmppClient
from gateway.ussd import Item, Screen, UssdContext, UssdService
from protocols.smpp.pdu import SubmitSm
from protocols.ussd import UssdMessage, UssdProfile, UssdServiceOp, from_pdu, is_ussd
from simulators.smsc import MtMessage, SmscSimulator, UssdScreen, UssdSession

SYSTEM_ID = "ussd-esme"
PASSWORD = "secret"
WAIT = 5.0  # seconds any single await may take before the test calls it a hang
ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MENUS = ROOT / "configs" / "ussd" / "menus.yaml"
FAILURE = "Sorry, the service is unavailable. Please try again later."

Op = UssdServiceOp


def client_config(port: int, **overrides: Any) -> ClientConfig:
    settings: dict[str, Any] = {
        "window": 50,
        "response_timeout": 5.0,
        "enquire_link_interval": 30.0,
        "connect_timeout": 5.0,
        "reconnect_initial": 0.05,
        "reconnect_max": 0.5,
    }
    settings.update(overrides)
    return ClientConfig("127.0.0.1", port, SYSTEM_ID, PASSWORD, **settings)


class Handsets:
    """The handsets of a test, and every USSD submit_sm the simulator took, by MSISDN."""

    def __init__(self, smsc: SmscSimulator, profile: UssdProfile) -> None:
        self.smsc = smsc
        self.profile = profile
        self.sent: defaultdict[str, list[UssdMessage]] = defaultdict(list)
        smsc.on_submit = self._on_submit

    def _on_submit(self, mt: MtMessage) -> None:
        pdu = SubmitSm(
            source_addr=mt.source_addr,
            destination_addr=mt.destination_addr,
            esm_class=mt.esm_class,
            protocol_id=mt.protocol_id,
            data_coding=mt.data_coding,
            short_message=mt.short_message,
            optional_parameters=mt.optional_parameters,
        )
        if is_ussd(pdu):
            self.sent[mt.destination_addr].append(from_pdu(pdu, self.profile))

    def phone(self, msisdn: str) -> Phone:
        return Phone(self, msisdn)


class Phone:
    """One handset: dials codes, reads screens, answers them; takes network-initiated sessions."""

    def __init__(self, handsets: Handsets, msisdn: str) -> None:
        self.handsets = handsets
        self.smsc = handsets.smsc
        self.msisdn = msisdn
        self._session: UssdSession | None = None
        self.pushed: asyncio.Queue[UssdSession] = asyncio.Queue()

    @property
    def session(self) -> UssdSession:
        assert self._session is not None, "no session: dial first"
        return self._session

    @property
    def wire(self) -> list[UssdMessage]:
        """The USSD messages the service sent this handset, as decoded from the submit_sm."""
        return self.handsets.sent[self.msisdn]

    async def dial(self, code: str) -> UssdScreen:
        self._session = await self.smsc.dial(self.msisdn, code, timeout=WAIT)
        return await self.screen()

    async def screen(self, timeout: float = WAIT) -> UssdScreen:
        return await self.session.next_screen(timeout)

    async def reply(self, text: str) -> UssdScreen:
        await self.session.reply(text, timeout=WAIT)
        return await self.screen()

    async def walk(self, code: str, *inputs: str) -> UssdScreen:
        screen = await self.dial(code)
        for value in inputs:
            assert not screen.final, f"the dialogue ended before {value!r}: {screen.text!r}"
            screen = await self.reply(value)
        return screen

    async def nothing(self, within: float = 0.2) -> None:
        """Assert that the service sends this handset nothing more ``within`` seconds."""
        before = len(self.wire)
        await asyncio.sleep(within)
        assert len(self.wire) == before, f"unexpected USSD message: {self.wire[before:]}"

    def accept_pushes(self, *, abandon: bool = False) -> None:
        """Take the sessions the network opens on this handset (into ``pushed``); with ``abandon`` the
        user ignores them (so a notification is never confirmed)."""

        def take(session: UssdSession) -> None:
            if abandon:
                session.abandon()
            self.pushed.put_nowait(session)

        self.smsc.register_ussd_handset(self.msisdn, take)

    async def pushed_session(self) -> UssdSession:
        self._session = await asyncio.wait_for(self.pushed.get(), WAIT)
        return self._session


@dataclass
class Billing:
    """The application behind the shipped menus' handlers: records purchases, knows the offers."""

    purchases: list[dict[str, Any]] = field(default_factory=list)
    gifts: list[dict[str, Any]] = field(default_factory=list)
    offers: list[Item] = field(
        default_factory=lambda: [
            {"id": "o-1", "name": "Night", "mb": 500, "price": 30},
            {"id": "o-2", "name": "Weekend", "mb": 2000, "price": 99},
        ]
    )
    contexts: list[UssdContext] = field(default_factory=list)

    async def buy_package(self, context: UssdContext) -> str | Screen:
        self.contexts.append(context)
        self.purchases.append({"msisdn": context.msisdn, **context.args})
        return f"Thank you. {context.args['mb']}MB added to {context.msisdn}."

    async def gift_data(self, context: UssdContext) -> str | Screen:
        self.gifts.append(dict(context.args))
        return f"{context.args['mb']}MB sent to {context.args['to']}."

    async def balance(self, context: UssdContext) -> str | Screen:
        return "Your balance: 120 KES, 350MB."

    async def my_offers(self, context: UssdContext) -> Sequence[Item]:
        self.contexts.append(context)
        return self.offers

    def handlers(self) -> dict[str, Callable[[UssdContext], Awaitable[str | Screen]]]:
        return {"buy_package": self.buy_package, "gift_data": self.gift_data, "balance": self.balance}

    def providers(self) -> dict[str, Callable[[UssdContext], Awaitable[Sequence[Item]]]]:
        return {"my_offers": self.my_offers}


@dataclass
class Rig:
    smsc: SmscSimulator
    client: SmppClient
    handsets: Handsets
    service: UssdService
    billing: Billing


MakeRig = Callable[..., Awaitable[Rig]]
