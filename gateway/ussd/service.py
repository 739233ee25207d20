"""The USSD service: USSD dialogues over SMPP on the ESME, routed by service code to the menu engine,
one-shot handlers and HTTP apps; network-initiated menus and notifications for campaigns.

Transport: USSD travels in deliver_sm / submit_sm carrying the SMPP 3.4 optional parameters
``ussd_service_op`` (section 5.3.2.44: PSSR indication, USSR request / confirm, PSSR response, USSN
request / confirm, the vendor release) and ``its_session_info`` (section 5.3.2.43: session number,
sequence, end-of-session bit), read and written per SMSC profile by ``protocols.ussd`` (PROTOCOLS.md
1.1). The dialogue semantics are those of MAP USSD (3GPP TS 22.090, TS 24.090): the handset opens a
dialogue by dialling a code (PSSR indication), we answer with screens that continue it (USSR request)
and end it with a final screen (PSSR response); the network may open one itself with a menu (USSR
request) or a notification (USSN request). The sans-I/O engine ``protocols.ussd.UssdDialogues``
keeps the state, the per-reply and session timeouts; this module is its asyncio adapter: it feeds
the engine the USSD MO of the ESME, arms one event-loop timer at ``engine.get_timer()`` (as
``gateway.smpp.connection`` does for the SMPP session) and sends what the engine says to send.

Routing (``gateway.ussd.menus``): an exact code (``*123#``) to a menu or handler, a code with
parameters (``*123*500#``) to the route whose pattern matches (``*123*{mb}#``, a one-shot purchase
answering with a final screen), else the parameters walk the menu on the base code as shortcuts,
else a final "unknown service" screen.

Failures never hang a subscriber: a handler or provider that raises, answers something unusable or
does not answer within ``handler_timeout`` (an HTTP app: within its own timeout) ends the dialogue
with the clear failure screen of the menu settings, and is logged; the per-reply and session
timeouts release the dialogue on the network (the engine's release message). The MO handler never
waits for the application: it feeds the engine and returns, so the ESME answers the deliver_sm at
once; each step of a dialogue runs in its own task.

A journey log per dialogue (screens shown, inputs, outcome) is kept in memory, bounded
(``journeys``), for the campaign core; listeners get each journey when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from gateway.smpp.client import SmppClient
from gateway.timers import EngineTimer
from gateway.ussd.http_adapter import HttpUssdApp
from gateway.ussd.menus import MenuConfig, fits, truncate
from gateway.ussd.navigator import CallFailed, Handler, MenuSession, Provider, Screen, UssdContext
from protocols.errors import DecodeError, GatewayError, LocalProtocolError
from protocols.smpp.pdu import DataSm, DeliverSm
from protocols.ussd import (
    DialogueAborted,
    DialogueEnded,
    DialogueKey,
    DialogueRefused,
    DialogueStarted,
    DialogueTimedOut,
    NotificationConfirmed,
    ReplyReceived,
    UssdDialogues,
    UssdMessage,
    UssdProfile,
    UssdServiceOp,
    from_pdu,
    is_ussd,
    parse_service_code,
    to_submit,
)

__all__ = ["Journey", "JourneyStep", "UssdPushError", "UssdService", "UssdStats"]

log = logging.getLogger(__name__)

StepKind = Literal["screen", "final", "input", "notify"]


@dataclass(frozen=True, slots=True)
class JourneyStep:
    """One thing that happened in a dialogue: a screen we showed (``screen`` / ``final`` /
    ``notify``) or an input of the user; ``at`` is event-loop time."""

    at: float
    kind: StepKind
    text: str
    screen: str | None = None


@dataclass(frozen=True, slots=True)
class Journey:
    """A finished dialogue. ``outcome``: completed, failed (the failure screen), too_many_attempts,
    unknown_service, timeout (no reply in time), session_timeout, aborted (released by the network or
    the user), ended_by_network, notified, confirmed (a USSN the handset confirmed), closed (the
    service shut down)."""

    msisdn: str
    session_id: int | None
    service_code: str
    started_at: float
    ended_at: float
    outcome: str
    steps: tuple[JourneyStep, ...]
    network_initiated: bool = False
    steps_dropped: int = 0


@dataclass(slots=True)
class UssdStats:
    dialogues: int = 0  # opened by handsets
    pushes: int = 0  # menus we opened
    notifications: int = 0
    failures: int = 0  # dialogues ended with the failure screen
    timeouts: int = 0
    refused: int = 0
    invalid: int = 0  # USSD PDUs that could not be decoded
    sent: int = 0
    send_failures: int = 0


class UssdPushError(GatewayError):
    """A network-initiated menu could not be started (its provider failed, or the SMSC refused it)."""


class _Dialogue:
    __slots__ = (
        "dropped",
        "key",
        "menu",
        "msisdn",
        "network_initiated",
        "outcome",
        "phase1",
        "ref",
        "service_code",
        "started_at",
        "steps",
        "task",
    )

    def __init__(
        self, key: DialogueKey, msisdn: str, service_code: str, now: float, *, network_initiated: bool
    ) -> None:
        self.key = key
        self.msisdn = msisdn
        self.service_code = service_code
        self.started_at = now
        self.network_initiated = network_initiated
        self.ref = secrets.token_hex(8)  # the sessionId an HTTP app sees
        self.menu: MenuSession | None = None
        self.task: asyncio.Task[None] | None = None
        self.steps: list[JourneyStep] = []
        self.dropped = 0
        self.outcome: str | None = None
        self.phase1 = False  # opened by a PSSD indication (MAP phase 1): only a final answer fits


JourneyListener = Callable[[Journey], None]


class UssdService:
    """USSD dialogues on one SMSC connection. ``await start()`` to listen, ``await close()`` to stop.

    ``handlers`` and ``providers`` are the async callables the menus name (checked against them here:
    an unknown name is a ConfigError with the file and line); ``handler_timeout`` bounds each call.
    ``service_addr`` is our short code, the source address of network-initiated USSD (the handset's
    answers come back to it); by default the digits of the first service code (``*123#`` -> ``123``).
    """

    def __init__(
        self,
        client: SmppClient,
        profile: UssdProfile,
        menus: MenuConfig,
        handlers: Mapping[str, Handler] | None = None,
        providers: Mapping[str, Provider] | None = None,
        *,
        handler_timeout: float = 5.0,
        per_reply_timeout: float = 30.0,
        session_timeout: float = 180.0,
        service_addr: str = "",
        max_dialogues: int = 100_000,
        journey_limit: int = 10_000,
        max_journey_steps: int = 100,
        http_session: aiohttp.ClientSession | None = None,
    ) -> None:
        if handler_timeout <= 0:
            raise LocalProtocolError("handler_timeout must be positive")
        self.client = client
        self.profile = profile
        self.menus = menus
        self.handler_timeout = handler_timeout
        self._handlers: dict[str, Handler] = dict(handlers or {})
        self._providers: dict[str, Provider] = dict(providers or {})
        menus.validate(profile, handlers=self._handlers, providers=self._providers)
        self._timeouts: dict[str, float] = {}
        for route in menus.http_routes:
            assert route.http is not None and route.handler_name is not None
            self._handlers[route.handler_name] = HttpUssdApp(route.http, self._http)
            self._timeouts[route.handler_name] = route.http.timeout + 1.0  # the app's own timeout fires first
        if not service_addr and menus.routes:
            service_addr = menus.routes[0].digits  # *123# -> 123
        self.service_addr = service_addr
        self._engine = UssdDialogues(
            profile,
            per_reply_timeout=per_reply_timeout,
            session_timeout=session_timeout,
            max_dialogues=max_dialogues,
            service_addr=service_addr,
        )
        self._dialogues: dict[DialogueKey, _Dialogue] = {}
        self._notify_waiters: dict[DialogueKey, asyncio.Future[bool]] = {}
        self.journeys: deque[Journey] = deque(maxlen=journey_limit)
        self.max_journey_steps = max_journey_steps
        self._listeners: list[JourneyListener] = []
        self.stats = UssdStats()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timer: EngineTimer | None = None  # made on the running loop (start or first use)
        self._http_session = http_session
        self._own_http = http_session is None
        self._started = False
        self._closed = False

    # --- lifecycle ---

    async def start(self) -> None:
        """Listen to USSD MO on the ESME."""
        if self._started:
            return
        self._started = True
        self.client.add_mo_handler(self._on_mo)

    async def close(self, release_timeout: float = 2.0) -> None:
        """Stop: release the live dialogues on the network, cancel what runs, close the HTTP session."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for d in self._dialogues.values():
            if d.task is not None:
                d.task.cancel()
        now = self._now()
        releases: list[UssdMessage] = []
        for key, dialogue in list(self._dialogues.items()):
            if key in self._engine:
                dialogue.outcome = "closed"
                releases.append(self._engine.release(key, now))
        self._drain()
        if releases:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(self._send(m) for m in releases)), release_timeout)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._own_http and self._http_session is not None:
            await self._http_session.close()
            self._http_session = None

    async def __aenter__(self) -> UssdService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def add_journey_listener(self, listener: JourneyListener) -> None:
        """``listener(journey)`` when each dialogue ends (it must not block)."""
        self._listeners.append(listener)

    @property
    def live_dialogues(self) -> int:
        return len(self._dialogues)

    # --- network-initiated ---

    async def notify(self, msisdn: str, text: str, *, wait_confirm: bool = False) -> bool:
        """Send a USSN (unstructured SS notify) to ``msisdn``. Without ``wait_confirm`` it carries the
        end-of-session bit and True means the SMSC took it; with it, True means the handset confirmed
        (the dialogue is then released), False that it did not within the per-reply timeout. A text
        over the screen limit raises LocalProtocolError."""
        now = self._now()
        message = self._engine.notify(msisdn, text, now, final=not wait_confirm)
        key = message.key
        d = _Dialogue(key, msisdn, "", now, network_initiated=True)
        d.outcome = "notified"
        self.stats.notifications += 1
        self._record(d, "notify", text)
        if not wait_confirm:
            self._drain()
            sent = await self._send(message)
            d.outcome = "notified" if sent else "failed"
            self._log(d)
            return sent
        self._dialogues[key] = d
        waiter: asyncio.Future[bool] = self._running_loop().create_future()
        self._notify_waiters[key] = waiter
        self._drain()
        if not await self._send(message):
            self._abandon(d)
            return False
        return await waiter

    async def push_menu(
        self, msisdn: str, screen_id: str, *, variables: Mapping[str, object] | None = None
    ) -> DialogueKey:
        """Open a menu on ``msisdn``'s handset (a network-initiated USSR request) at ``screen_id``;
        the user's replies then walk the menus as in a dialled dialogue. ``variables`` fill the
        placeholders. Returns the dialogue key; raises UssdPushError when the first screen cannot be
        built or the SMSC does not take it."""
        if screen_id not in self.menus.screens:
            raise LocalProtocolError(f"no USSD screen {screen_id!r}")
        ref = secrets.token_hex(8)
        menu = MenuSession(
            self.menus,
            self.profile,
            self._call,
            msisdn=msisdn,
            session_id=ref,
            variables=variables,
            network_initiated=True,
        )
        try:
            screen = await menu.start_menu(screen_id)
        except CallFailed as exc:
            raise UssdPushError(f"cannot open menu {screen_id!r} for {msisdn}: {exc}") from exc
        text = self._fit(screen.text)
        now = self._now()
        if screen.final:  # nothing to ask: a notification
            message = self._engine.notify(msisdn, text, now, final=True)
        else:
            message = self._engine.start_network_menu(msisdn, text, now)
        d = _Dialogue(message.key, msisdn, "", now, network_initiated=True)
        d.ref = ref
        d.menu = menu
        self.stats.pushes += 1
        self._record(d, "final" if screen.final else "screen", text, menu.screen_id)
        if not screen.final:
            self._dialogues[message.key] = d
        self._drain()
        sent = await self._send(message)
        if screen.final:
            d.outcome = "completed" if sent else "failed"
            self._log(d)
        elif not sent:
            self._abandon(d)
        if not sent:
            raise UssdPushError(f"the SMSC did not take the menu for {msisdn}")
        return message.key

    # --- the ESME side ---

    def _on_mo(self, pdu: DeliverSm | DataSm) -> None:
        """MO handler of the ESME (shared with other services): USSD only, never waits."""
        if self._closed or not is_ussd(pdu):
            return
        try:
            message = from_pdu(pdu, self.profile, mobile_originated=True)
        except DecodeError as exc:
            self.stats.invalid += 1
            log.warning("USSD deliver_sm from %s cannot be decoded: %s", pdu.source_addr, exc)
            raise  # the ESME answers it with the error's status: re-delivering it cannot help
        self._engine.receive(message, self._now())
        self._drain()

    async def _send(self, message: UssdMessage) -> bool:
        try:
            await self.client.submit(to_submit(message, self.profile))
        except GatewayError as exc:
            self.stats.send_failures += 1
            log.warning("USSD %s to %s not sent: %s", message.op.name, message.msisdn, exc)
            return False
        self.stats.sent += 1
        return True

    # --- engine events ---

    def _drain(self) -> None:
        engine = self._engine
        while (event := engine.next_event()) is not None:
            if isinstance(event, DialogueStarted):
                d = self._open(
                    event.key, event.msisdn, event.service_code, self._now(), network_initiated=False
                )
                d.phase1 = event.message.op is UssdServiceOp.PSSD_IND
                self.stats.dialogues += 1
                d.task = self._spawn(self._step(d, self._begin(d)))
            elif isinstance(event, ReplyReceived):
                self._on_reply(event)
            elif isinstance(event, NotificationConfirmed):
                self._on_confirmed(event.key)
            elif isinstance(event, DialogueTimedOut):
                self.stats.timeouts += 1
                outcome = "timeout" if event.which == "reply" else "session_timeout"
                log.info("USSD dialogue %s timed out (%s): releasing it", event.key, event.which)
                self._finish(event.key, outcome, cancel=True)
                self._spawn(self._send(event.release))
            elif isinstance(event, DialogueAborted):
                log.info("USSD dialogue %s aborted: %s", event.key, event.reason)
                self._finish(event.key, "aborted", cancel=True)
            elif isinstance(event, DialogueEnded):
                if event.by == "network":
                    self._finish(event.key, "ended_by_network", cancel=True)
                else:
                    self._finish(event.key, None, cancel=False)
            elif isinstance(event, DialogueRefused):
                self.stats.refused += 1
                log.warning("USSD dialogue from %s refused: %s", event.message.msisdn, event.reason)
                busy = self._fit(self.menus.settings.texts.busy)
                self._spawn(self._send(event.message.reply(busy, final=True)))
            else:
                log.debug("USSD message ignored: %s (%s)", event.reason, event.key)
        self._arm()

    def _on_reply(self, event: ReplyReceived) -> None:
        # only a menu or handler dialogue sends USSR requests, so only they get replies
        d = self._dialogues[event.key]
        assert d.menu is not None
        self._record(d, "input", event.text)
        d.task = self._spawn(self._step(d, d.menu.reply(event.text)))

    def _on_confirmed(self, key: DialogueKey) -> None:
        # only notify(wait_confirm=True) opens a dialogue that awaits a USSN confirm
        self._dialogues[key].outcome = "confirmed"
        waiter = self._notify_waiters.pop(key)
        if not waiter.done():  # the caller may have given up waiting
            waiter.set_result(True)
        self._spawn(self._send(self._engine.release(key, self._now())))

    def _open(
        self, key: DialogueKey, msisdn: str, service_code: str, now: float, *, network_initiated: bool
    ) -> _Dialogue:
        d = _Dialogue(key, msisdn, service_code, now, network_initiated=network_initiated)
        self._dialogues[key] = d
        return d

    def _finish(self, key: DialogueKey, outcome: str | None, *, cancel: bool) -> None:
        """The dialogue under ``key`` is over: stop its work and log its journey."""
        waiter = self._notify_waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(False)
        d = self._dialogues.pop(key, None)
        if d is None:
            return
        if outcome is not None:
            d.outcome = outcome
        task = d.task
        if cancel and task is not None and task is not asyncio.current_task():
            task.cancel()
        self._log(d)

    def _log(self, d: _Dialogue) -> None:
        """Add the journey of the finished dialogue ``d`` to the log and tell the listeners."""
        if d.outcome == "failed":
            self.stats.failures += 1
        journey = Journey(
            msisdn=d.msisdn,
            session_id=d.key.session_id,
            service_code=d.service_code,
            started_at=d.started_at,
            ended_at=self._now(),
            outcome=d.outcome or "completed",
            steps=tuple(d.steps),
            network_initiated=d.network_initiated,
            steps_dropped=d.dropped,
        )
        self.journeys.append(journey)
        for listener in self._listeners:
            try:
                listener(journey)
            except Exception:
                log.exception("USSD journey listener failed")

    def _abandon(self, d: _Dialogue) -> None:
        """Our first message of a network-initiated dialogue was not sent: forget the dialogue."""
        if d.key in self._engine and self._dialogues.get(d.key) is d:
            d.outcome = "failed"
            self._engine.release(d.key, self._now())  # nothing to tell the network: it never saw it
        self._drain()

    # --- dialogue steps ---

    async def _begin(self, d: _Dialogue) -> Screen:
        texts = self.menus.settings.texts
        try:
            code = parse_service_code(d.service_code)
        except DecodeError:
            code = None
        match = None if code is None else self.menus.route_for(code)
        if code is None or match is None:
            log.info("USSD code %r from %s has no service", d.service_code, d.msisdn)
            d.outcome = "unknown_service"
            return Screen(texts.unknown_service, final=True)
        route = match.route
        menu = d.menu = MenuSession(
            self.menus,
            self.profile,
            self._call,
            msisdn=d.msisdn,
            session_id=d.ref,
            service_code=d.service_code,
            base_code=code.base,
            params=code.params,
            named=match.named,
        )
        if route.menu is not None:
            return await menu.start_menu(route.menu, match.shortcut_inputs)
        assert route.handler_name is not None
        return await menu.start_handler(route.handler_name, route.args)

    async def _step(self, d: _Dialogue, work: Awaitable[Screen]) -> None:
        """Run one step of the dialogue and send its screen; a failure sends the failure screen."""
        try:
            screen = await work
        except CallFailed as exc:
            log.warning("USSD dialogue of %s (%s): %s", d.msisdn, d.service_code or "pushed", exc)
            d.outcome = "failed"
            screen = Screen(self.menus.settings.texts.failure, final=True)
        except Exception:
            log.exception("USSD dialogue of %s (%s) failed", d.msisdn, d.service_code or "pushed")
            d.outcome = "failed"
            screen = Screen(self.menus.settings.texts.failure, final=True)
        await self._respond(d, screen)

    async def _respond(self, d: _Dialogue, screen: Screen) -> None:
        if self._dialogues.get(d.key) is not d:
            return  # timed out or aborted while we worked
        if d.phase1 and not screen.final:
            screen = Screen(screen.text, final=True)  # a phase 1 handset cannot answer: show and end
        text = self._fit(screen.text)
        if screen.final and d.outcome is None:
            d.outcome = (d.menu.end_reason if d.menu is not None else None) or "completed"
        now = self._now()
        try:
            message = self._engine.send_screen(d.key, text, now, final=screen.final)
        except LocalProtocolError as exc:
            if d.key not in self._engine:
                self._drain()  # it timed out at this very moment
                return
            log.error("USSD screen for %s cannot be sent (%s): releasing the dialogue", d.msisdn, exc)
            d.outcome = "failed"
            message = self._engine.release(d.key, now)
        else:
            screen_id = d.menu.screen_id if d.menu is not None else None
            self._record(d, "final" if screen.final else "screen", text, screen_id)
        self._drain()
        await asyncio.shield(self._send(message))

    async def _call(self, kind: Literal["handler", "provider"], name: str, context: UssdContext) -> object:
        """Call a handler or provider with the timeout; every failure becomes CallFailed."""
        function: Callable[[UssdContext], Awaitable[object]] | None
        if kind == "handler":
            function = self._handlers.get(name)
            timeout = self._timeouts.get(name, self.handler_timeout)
        else:
            function = self._providers.get(name)
            timeout = self.handler_timeout
        if function is None:
            raise CallFailed(kind, name, "not registered")
        try:
            return await asyncio.wait_for(function(context), timeout)
        except TimeoutError:
            raise CallFailed(kind, name, f"no answer within {timeout} s") from None
        except Exception as exc:
            raise CallFailed(kind, name, f"{type(exc).__name__}: {exc}") from exc

    # --- helpers ---

    def _fit(self, text: str) -> str:
        if fits(text, self.profile):
            return text
        log.warning("USSD screen over the limit of profile %r: cut to fit", self.profile.name)
        return truncate(text, self.profile)

    def _record(self, d: _Dialogue, kind: StepKind, text: str, screen: str | None = None) -> None:
        if len(d.steps) >= self.max_journey_steps:
            d.dropped += 1
            return
        d.steps.append(JourneyStep(self._now(), kind, text, screen))

    def _http(self) -> aiohttp.ClientSession:
        if self._http_session is None:
            self._http_session = aiohttp.ClientSession()
        return self._http_session

    @staticmethod
    def _running_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def _now(self) -> float:
        return self._running_loop().time()

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = self._running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("USSD task failed", exc_info=task.exception())

    def _arm(self) -> None:
        if self._closed:
            return
        if self._timer is None:
            self._timer = EngineTimer(self._running_loop(), self._engine.get_timer, self._on_timer)
        self._timer.arm()

    def _on_timer(self, now: float) -> None:
        self._engine.handle_timer(now)
        self._drain()
