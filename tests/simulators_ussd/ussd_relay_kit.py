"""The test's gateway for the USSD relay tests: a real ``gateway.smpp.client.SmppClient`` bound to the
SMSC simulator that speaks USSD through ``protocols.ussd`` (no stub of our components):

- every USSD deliver_sm is decoded with ``from_pdu`` (kept in ``received`` / ``pdus``) and fed to the
  ``UssdDialogues`` engine;
- the engine's events go to ``app`` (a menu as a function: the screen to answer with, or None to stay
  silent), whose answers are built with the engine and ``to_submit`` and sent with ``submit``;
- the engine's timers run (per-reply and session timeouts send the release the engine built).

A name unique in ``tests/`` (pytest's prepend import mode).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway.smpp.client import ClientConfig, SmppClient, SubmitResult
from protocols.smpp.pdu import DataSm, DeliverSm
from protocols.ussd import (
    DialogueKey,
    DialogueStarted,
    DialogueTimedOut,
    Event,
    NotificationConfirmed,
    ReplyReceived,
    UssdDialogues,
    UssdMessage,
    UssdProfile,
    from_pdu,
    is_ussd,
    to_submit,
)

E = TypeVar("E")

SYSTEM_ID = "gateway"
PASSWORD = "secret"
SHORT_CODE = "123"
WAIT = 10.0


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    final: bool = False


App = Callable[[Event], Answer | None]


def menu_app(event: Event) -> Answer | None:
    """``*123#``: a menu; ``1`` buys 100 MB (final), anything else asks again; ``*123*N#`` buys N MB at
    once; a confirmed notification is followed by a final screen."""
    if isinstance(event, DialogueStarted):
        code = event.service_code
        if code.startswith("*123*"):
            return Answer(f"Thank you. {code[5:-1]}MB added.", final=True)
        return Answer(f"Hi {event.msisdn}\n1.100MB\n2.200MB")
    if isinstance(event, ReplyReceived):
        if event.text == "1":
            return Answer(f"Thank you {event.key.msisdn}. 100MB added.", final=True)
        return Answer(f"Invalid choice {event.text!r}\n1.100MB\n2.200MB")
    if isinstance(event, NotificationConfirmed):
        return Answer("Goodbye", final=True)
    return None


class UssdGateway:
    """See the module docstring."""

    def __init__(
        self,
        client: SmppClient,
        profile: UssdProfile,
        app: App | None = menu_app,
        *,
        per_reply_timeout: float = 30.0,
        session_timeout: float = 180.0,
    ) -> None:
        self.client = client
        self.profile = profile
        self.app = app
        self.engine = UssdDialogues(
            profile,
            per_reply_timeout=per_reply_timeout,
            session_timeout=session_timeout,
            service_addr=SHORT_CODE,
        )
        self.pdus: list[DeliverSm] = []
        self.received: list[UssdMessage] = []
        self.events: list[Event] = []
        self.errors: list[BaseException] = []
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        client.add_mo_handler(self._on_mo)
        self._ticker = asyncio.create_task(self._tick())

    async def close(self) -> None:
        self._ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._ticker

    # --- input ---

    async def _on_mo(self, pdu: DeliverSm | DataSm) -> None:
        assert isinstance(pdu, DeliverSm) and is_ussd(pdu), pdu
        message = from_pdu(pdu, self.profile)
        self.pdus.append(pdu)
        self.received.append(message)
        self.engine.receive(message, self._loop.time())
        await self._pump()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.02)
            deadline = self.engine.get_timer()
            if deadline is not None and deadline <= self._loop.time():
                self.engine.handle_timer(self._loop.time())
                await self._pump()

    async def _pump(self) -> None:
        while (event := self.engine.next_event()) is not None:
            self.events.append(event)
            self._changed.set()
            if isinstance(event, DialogueTimedOut):
                await self._send(event.release)
                continue
            if not isinstance(event, DialogueStarted | ReplyReceived | NotificationConfirmed):
                continue
            answer = self.app(event) if self.app is not None else None
            if answer is not None:
                message = self.engine.send_screen(
                    event.key, answer.text, self._loop.time(), final=answer.final
                )
                await self._send(message)

    async def _send(self, message: UssdMessage) -> SubmitResult | None:
        try:
            return await self.client.submit(to_submit(message, self.profile))
        except Exception as exc:  # recorded: a test asserts on it
            self.errors.append(exc)
            return None

    # --- commands for tests ---

    async def screen(self, key: DialogueKey, text: str, *, final: bool = False) -> SubmitResult | None:
        """Answer the dialogue under ``key`` by hand (for an app that stayed silent)."""
        return await self._send(self.engine.send_screen(key, text, self._loop.time(), final=final))

    async def notify(self, msisdn: str, text: str, *, final: bool = False) -> SubmitResult:
        message = self.engine.notify(msisdn, text, self._loop.time(), final=final)
        return await self.client.submit(to_submit(message, self.profile))

    async def menu(self, msisdn: str, text: str) -> SubmitResult:
        message = self.engine.start_network_menu(msisdn, text, self._loop.time())
        return await self.client.submit(to_submit(message, self.profile))

    async def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await self._changed.wait()
        assert predicate(), what

    def events_of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]


def client_config(port: int, **overrides: object) -> ClientConfig:
    fields: dict[str, object] = {
        "window": 100,
        "response_timeout": 5.0,
        "connect_timeout": 5.0,
        "reconnect_initial": 0.05,
        "reconnect_max": 0.5,
        **overrides,
    }
    return ClientConfig("127.0.0.1", port, SYSTEM_ID, PASSWORD, **fields)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def bound_gateway(
    port: int, profile: UssdProfile, app: App | None = menu_app, **engine: float
) -> AsyncIterator[UssdGateway]:
    client = SmppClient(client_config(port))
    await asyncio.wait_for(client.start(), WAIT)
    gateway = UssdGateway(client, profile, app, **engine)
    try:
        yield gateway
    finally:
        await gateway.close()
        await asyncio.wait_for(client.close(drain_timeout=1.0), WAIT)
