"""The ESME: an asyncio SMPP 3.4 client over the sans-I/O session engine.

What a production ESME needs and this one does: bind_transceiver (or tx / rx) with the credentials
from config; an awaitable ``submit()`` that returns the message id; a window of outstanding
requests; enquire_link keepalive; reconnect with exponential back-off and jitter, rebinding and
re-sending what was in flight and not answered; a TPS limit sized to the SMSC licence (each
submit_sm counts, so each part of a long message counts); ESME_RTHROTTLED and ESME_RMSGQFUL
answered with back-off and retry, never by dropping; delivery receipts correlated to the submitted
message whether the SMSC writes ids hex or decimal; MO deliver_sm dispatched to registered
handlers (answered only after the handler took the message); graceful shutdown (stop taking work,
drain the window, unbind).

Delivery semantics: a submit whose connection broke before its response arrived is sent again on
the next connection, so the SMSC may see it twice (at-least-once; SMPP 3.4 has no idempotency key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.smpp.connection import SessionProtocol
from protocols.errors import (
    DecodeError,
    GatewayError,
    LocalProtocolError,
    RemoteProtocolError,
    TransportError,
)
from protocols.gsm.alphabet import ConcatScheme, parts_needed
from protocols.gsm.split import Method, build_submits
from protocols.smpp.constants import CommandId, CommandStatus
from protocols.smpp.events import (
    BindCompleted,
    BindFailed,
    ConnectionClosed,
    Event,
    InvalidPduReceived,
    OutbindReceived,
    RequestReceived,
    ResponseReceived,
    ResponseTimedOut,
    Unbound,
)
from protocols.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DataSm,
    DeliverSm,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Unbind,
)
from protocols.smpp.receipt import DeliveryReceipt, message_id_keys, receipt_from_pdu
from protocols.smpp.session import Role, SmppSession

__all__ = [
    "BindError",
    "ClientConfig",
    "SmppClient",
    "SubmitError",
    "SubmitResult",
    "TokenBucket",
]

log = logging.getLogger(__name__)

_RETRY_LATER = frozenset((CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL))
_AUTH_FAILURES = frozenset((CommandStatus.ESME_RINVPASWD, CommandStatus.ESME_RINVSYSID))
_BINDS = frozenset((CommandId.BIND_TRANSMITTER, CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER))
_MAX_CONCAT_DESTINATIONS = 100_000  # reference counters kept; the least recently used is forgotten


class BindError(TransportError):
    """The SMSC refused the bind (``status`` is its command_status)."""

    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(reason or f"bind refused: {_status_name(status)} ({status:#010x})")
        self.status = status


class SubmitError(GatewayError):
    """The SMSC rejected a submit with a status that retrying will not fix."""

    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(reason or f"submit rejected: {_status_name(status)} ({status:#010x})")
        self.status = status


def _status_name(status: int) -> str:
    return CommandStatus(status).name


@dataclass(frozen=True, slots=True)
class ClientConfig:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    bind_type: Literal["transceiver", "transmitter", "receiver"] = "transceiver"
    address_range: str = ""
    window: int = 100
    response_timeout: float = 30.0
    enquire_link_interval: float = 30.0
    connect_timeout: float = 10.0
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    stable_bind: float = 60.0  # a bind that held this long starts the reconnect back-off afresh
    tps: float | None = None  # the SMSC licence, in submit_sm per second; None: unlimited
    throttle_initial: float = 0.2  # first pause after ESME_RTHROTTLED / ESME_RMSGQFUL
    throttle_max: float = 10.0
    submit_attempts: int = 3  # response timeouts tolerated before a submit fails
    early_receipts: int = 10_000  # receipts kept while their submit_sm_resp is still on its way


@dataclass(frozen=True, slots=True)
class SubmitResult:
    message_id: str
    response: SubmitSmResp


class TokenBucket:
    """TPS limiter: ``rate`` tokens per second, bursts up to ``burst``. Time comes from the loop."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        # a burst of one tenth of a second keeps the per-second rate honest at the SMSC
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._tokens = self.burst
        self._stamp: float | None = None

    async def acquire(self, tokens: float = 1.0) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if self._stamp is None:
                self._stamp = now
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= tokens:
                self._tokens -= tokens
                return
            await asyncio.sleep((tokens - self._tokens) / self.rate)


@dataclass(slots=True)
class _InFlight:
    pdu: Pdu
    future: asyncio.Future[Pdu]
    attempts: int = 0
    # the submitter gave up while the request was on the wire (or queued to go out again): the window
    # slot is the request's now, freed when it leaves the wire, not when the submitter left
    holds_slot: bool = False


# An MO handler: what it raises decides the deliver_sm_resp. Nothing: ESME_ROK; a RemoteProtocolError
# (the PDU itself is wrong): its status, else ESME_RX_P_APPN (no retry); anything else: ESME_RX_T_APPN
# (the SMSC retries later).
MoHandler = Callable[[DeliverSm | DataSm], Awaitable[None] | None]
ReceiptHandler = Callable[[DeliveryReceipt, DeliverSm | DataSm], Awaitable[None] | None]


@dataclass(slots=True)
class _Stats:
    submitted: int = 0
    resent: int = 0
    throttled: int = 0
    receipts: int = 0
    bad_receipts: int = 0  # receipts whose id or state could not be read (answered ESME_RX_P_APPN)
    mo: int = 0
    reconnects: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


class SmppClient:
    """An ESME bound to one SMSC. ``await start()`` connects and binds (raising ``BindError`` when
    the very first bind is refused); afterwards the connection is kept up in the background.
    ``start(retry_connect=True)`` does not fail when the SMSC cannot be reached: it returns unbound
    and keeps connecting with back-off (requests wait for the bind)."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.stats = _Stats()
        self.pdu_counts: dict[tuple[str, int, int], int] = {}  # (in|out, command_id, status) -> PDUs
        self._protocol: SessionProtocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bound = asyncio.Event()
        self._closing = False
        self._stopped = asyncio.Event()  # close() finished: nothing will bind again
        self._runner: asyncio.Task[None] | None = None
        self._slots = config.window
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._tps = TokenBucket(config.tps) if config.tps else None
        self._inflight: dict[int, _InFlight] = {}  # seq on the current connection -> request
        self._resend: list[_InFlight] = []  # waiting for the next bind
        self._throttle_until = 0.0
        self._throttle_delay = config.throttle_initial
        self._mo_handlers: list[MoHandler] = []
        self._receipt_handlers: list[ReceiptHandler] = []
        self._receipt_waiters: dict[int | str, asyncio.Future[DeliveryReceipt]] = {}
        # receipts nobody waits for yet, oldest first, by normalized id; the index finds them by any key
        self._early_receipts: OrderedDict[str, DeliveryReceipt] = OrderedDict()
        self._early_index: dict[int | str, str] = {}
        self._first_bind: asyncio.Future[None] | None = None
        self._retry_connect = False
        self._bind_status: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # concatenation reference counters by destination (least recently used first), for send_text
        self._concat_refs: OrderedDict[str, int] = OrderedDict()

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, *, retry_connect: bool = False) -> None:
        """Connect and bind. A refused bind raises ``BindError`` (retrying cannot fix credentials);
        an SMSC that cannot be reached raises ``TransportError``, or with ``retry_connect`` returns
        after that first attempt, unbound, while the client keeps trying with back-off
        (``is_bound`` / ``wait_bound`` tell when it is bound)."""
        loop = self._loop = asyncio.get_running_loop()
        self._retry_connect = retry_connect
        self._first_bind = loop.create_future()
        self._runner = asyncio.create_task(self._run(), name="smpp-client")
        try:
            await self._first_bind
        except BaseException:
            await self._stop_runner()
            raise

    @property
    def is_bound(self) -> bool:
        return self._bound.is_set()

    @property
    def window_occupancy(self) -> int:
        return len(self._inflight)

    async def wait_bound(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._bound.wait(), timeout)

    async def close(self, drain_timeout: float = 10.0) -> None:
        """Stop taking work, let the window drain, unbind, close."""
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_timeout
        # the window holds every request not yet answered: on the wire, waiting to be re-sent, or
        # backing off after ESME_RTHROTTLED
        while self._slots < self.config.window and loop.time() < deadline and self._protocol is not None:
            await asyncio.sleep(0.01)
        proto = self._protocol
        if proto is not None and proto.session.is_bound:
            self._bound.clear()  # nothing new goes out after the unbind
            with contextlib.suppress(LocalProtocolError):
                proto.session.send(Unbind(), loop.time())
                proto.flush()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proto.closed.wait(), min(5.0, self.config.response_timeout))
        await self._stop_runner()
        self._stopped.set()  # requests still waiting for a bind give up
        for item in [*self._inflight.values(), *self._resend]:
            if not item.future.done():
                item.future.set_exception(TransportError("client closed before the SMSC answered"))
        self._inflight.clear()
        self._resend.clear()
        for task in list(self._tasks):
            task.cancel()

    async def _stop_runner(self) -> None:
        self._closing = True
        if self._protocol is not None:
            self._protocol.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None

    async def __aenter__(self) -> SmppClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- connection management --------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.config.reconnect_initial
        loop = asyncio.get_running_loop()
        while not self._closing:
            started = loop.time()
            try:
                await self._connect_once(loop)
                held = loop.time() - started
                if held >= self.config.stable_bind:
                    delay = self.config.reconnect_initial  # the bind held: start back-off afresh
                else:
                    # an SMSC that binds and drops at once (overloaded, a flapping link) is redialled
                    # with growing pauses, not hammered at reconnect_initial for ever
                    log.warning(
                        "SMPP bind to %s:%s dropped after %.1f s; reconnecting with back-off",
                        self.config.host,
                        self.config.port,
                        held,
                    )
            except BindError as exc:
                if self._first_bind is not None and not self._first_bind.done():
                    self._first_bind.set_exception(exc)
                    return
                log.error("SMPP bind to %s:%s refused: %s", self.config.host, self.config.port, exc)
            except (OSError, TimeoutError, TransportError) as exc:
                first = self._first_bind
                if first is not None and not first.done():
                    if not self._retry_connect:
                        first.set_exception(
                            TransportError(f"cannot connect to {self.config.host}:{self.config.port}: {exc}")
                        )
                        return
                    first.set_result(None)  # start() returns unbound; this loop keeps trying
                log.warning(
                    "SMPP connection to %s:%s failed: %s; trying again with back-off",
                    self.config.host,
                    self.config.port,
                    exc or type(exc).__name__,
                )
            if self._closing:
                return
            self.stats.reconnects += 1
            # full jitter keeps a fleet of gateways from reconnecting in lock step
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(self.config.reconnect_max, delay * 2)

    async def _connect_once(self, loop: asyncio.AbstractEventLoop) -> None:
        cfg = self.config
        session = SmppSession(
            Role.ESME,
            window=cfg.window + 1,  # +1: the bind itself; the semaphore enforces the configured window
            response_timeout=cfg.response_timeout,
            enquire_link_interval=cfg.enquire_link_interval,
            pdu_counts=self.pdu_counts,  # one tally across reconnects
        )
        _, proto = await asyncio.wait_for(
            loop.create_connection(lambda: SessionProtocol(session, self._on_event), cfg.host, cfg.port),
            cfg.connect_timeout,
        )
        self._protocol = proto
        bind_cls = {"transceiver": BindTransceiver, "transmitter": BindTransmitter, "receiver": BindReceiver}
        self._bind_status = None
        session.send(
            bind_cls[cfg.bind_type](
                system_id=cfg.system_id,
                password=cfg.password,
                system_type=cfg.system_type,
                address_range=cfg.address_range,
            ),
            loop.time(),
        )
        proto.flush()
        try:
            await proto.closed.wait()
        finally:
            self._bound.clear()
            self._protocol = None
            # whatever was on the wire and unanswered goes out again after the next bind
            pending = sorted(self._inflight.items())
            self._inflight.clear()
            self._resend = [item for _, item in pending if self._still_wanted(item)] + self._resend
            proto.close()
        if self._bind_status is None:
            raise TransportError("connection closed before the SMSC answered the bind")
        if self._bind_status != 0:
            raise BindError(self._bind_status)

    def _on_event(self, proto: SessionProtocol, event: Event) -> None:
        if isinstance(event, ResponseReceived):
            self._on_response(event)
        elif isinstance(event, RequestReceived):
            self._on_request(proto, event.pdu)
        elif isinstance(event, BindCompleted):
            self._bind_status = 0
            log.info("SMPP bound to %s as %s", proto.peer, CommandId(event.bind_command_id).name.lower())
            self._bound.set()
            if self._first_bind is not None and not self._first_bind.done():
                self._first_bind.set_result(None)
            self._resend_pending(proto)
        elif isinstance(event, BindFailed):
            # a generic_nack answers no bind even with status 0 (section 4.3): 0 here would read as
            # success, so the refusal keeps a status that says what happened
            self._bind_status = event.command_status or CommandStatus.ESME_RBINDFAIL
            proto.close()
        elif isinstance(event, ResponseTimedOut):
            self._on_timeout(proto, event)
        elif isinstance(event, Unbound | ConnectionClosed):
            self._bound.clear()
            proto.close()
        elif isinstance(event, InvalidPduReceived):
            # a deliver_sm that crosses our unbind is a race, not a broken peer: it is answered
            # ESME_RINVBNDSTS and the SMSC delivers it again on the next bind
            level = logging.WARNING if proto.session.is_bound else logging.INFO
            log.log(level, "SMPP peer %s sent an invalid PDU: %s", proto.peer, event.reason)
        elif isinstance(event, OutbindReceived):
            log.info("SMPP outbind from %s ignored: this ESME binds by itself", proto.peer)

    def _resend_pending(self, proto: SessionProtocol) -> None:
        pending, self._resend = self._resend, []
        now = proto.loop.time()
        for item in pending:
            if not self._still_wanted(item):
                continue
            seq = proto.session.send(item.pdu, now)
            self._inflight[seq] = item
            self.stats.resent += 1
        proto.flush()

    # --- submitting ------------------------------------------------------------------------------------

    async def submit(self, pdu: SubmitSm) -> SubmitResult:
        """Submit one submit_sm and return the SMSC's message id.

        Waits for the bind, the TPS budget and a window slot. Throttling answers are retried after
        a back-off; a response timeout is retried up to ``submit_attempts`` times; other errors raise
        ``SubmitError``."""
        if self._closing:
            raise TransportError("client is closing")
        response = await self.request(pdu)
        if not isinstance(response, SubmitSmResp):
            # a generic_nack with status 0 answers nothing: the SMSC did not take the message
            raise SubmitError(
                CommandStatus.ESME_RUNKNOWNERR, f"SMSC answered {type(response).__name__} with status 0"
            )
        return SubmitResult(response.message_id or "", response)

    async def send_text(
        self,
        source_addr: str,
        destination_addr: str,
        text: str,
        *,
        method: Method = "udh",
        registered_delivery: int = 0,
        **submit_fields: Any,
    ) -> list[SubmitResult]:
        """Send ``text``, choosing its coding and splitting it (TS 23.038, TS 23.040 9.2.3.24.1/.8).

        ``method`` is how a long text travels (``protocols.gsm.split``): "udh" (concatenation UDH,
        ``concat="8bit"`` IEI 0x00 or "16bit" IEI 0x08), "sar" (SMPP 3.4 5.3.2.22-24 TLVs) or
        "payload" (one message_payload). The concatenation reference comes from a counter kept per
        destination, so consecutive long texts to one handset never share one. Each part is one
        ``submit()``, in order, and so counts against the TPS licence and the window. Other
        ``submit_fields`` (``coding``, ``concat``, ``esm_class``, ``validity_period``, ...) pass to
        ``build_submits``. Returns one result per part; a rejected part raises ``SubmitError`` and
        the parts after it are not sent.
        """
        concat: ConcatScheme = submit_fields.get("concat", "8bit")
        reference: int | None = None
        if method != "payload" and parts_needed(text, submit_fields.get("coding"), concat) > 1:
            reference = self._next_concat_reference(
                destination_addr, 256 if method == "udh" and concat == "8bit" else 65536
            )
        submits = build_submits(
            text,
            source_addr,
            destination_addr,
            method=method,
            reference=reference,
            registered_delivery=registered_delivery,
            **submit_fields,
        )
        return [await self.submit(pdu) for pdu in submits]

    def _next_concat_reference(self, destination_addr: str, modulus: int) -> int:
        """The next concatenation reference for ``destination_addr``: 1, 2, ... wrapping to 0 at ``modulus``."""
        refs = self._concat_refs
        value = refs.pop(destination_addr, 0) + 1
        refs[destination_addr] = value  # re-inserted last: the dict stays in order of use
        if len(refs) > _MAX_CONCAT_DESTINATIONS:
            del refs[next(iter(refs))]
        return value % modulus

    async def request(self, pdu: Pdu) -> Pdu:
        """Send any request PDU with the submit semantics (window, TPS, throttling retry)."""
        # the loop cached at start(): get_running_loop() costs a getpid() system call each time
        loop = self._loop or asyncio.get_running_loop()
        # the window: a counter and a queue of waiters is cheaper per message than a Semaphore
        if self._slots > 0 and not self._slot_waiters:
            self._slots -= 1
        else:
            await self._wait_for_slot(loop)
        slot_handed_over = False
        try:
            while True:
                if self._tps is not None:
                    await self._tps.acquire()
                proto = self._protocol
                if proto is None or not proto.session.is_bound:
                    await self._wait_bound()
                    continue
                if self._throttle_until > loop.time():
                    await asyncio.sleep(self._throttle_until - loop.time())
                    continue
                future: asyncio.Future[Pdu] = loop.create_future()
                seq = proto.session.send(pdu, loop.time())
                item = _InFlight(pdu, future)
                self._inflight[seq] = item
                proto.schedule_flush()
                try:
                    if proto.writing_paused:
                        await proto.drain()
                    response = await future
                except asyncio.CancelledError:
                    future.cancel()  # nobody reads the answer now
                    if self._is_pending(item):
                        # the SMSC still counts it against the window until it answers
                        item.holds_slot = True
                        slot_handed_over = True
                    raise
                status = response.command_status
                by_status = self.stats.by_status
                by_status[status] = by_status.get(status, 0) + 1
                if status == 0:
                    self._throttle_delay = self.config.throttle_initial
                    self.stats.submitted += 1
                    return response
                if status in _RETRY_LATER:
                    self.stats.throttled += 1
                    # one back-off for the whole bind: the SMSC is telling all of us to slow down. The
                    # answers to a burst sent before the pause began are one episode, not one each: only a
                    # throttle after the pause has ended starts a new, longer one
                    now = loop.time()
                    if now >= self._throttle_until:
                        self._throttle_until = now + self._throttle_delay
                        self._throttle_delay = min(self.config.throttle_max, self._throttle_delay * 2)
                    continue
                raise SubmitError(status)
        finally:
            if not slot_handed_over:
                self._release_slot()

    def _is_pending(self, item: _InFlight) -> bool:
        """Whether ``item`` is on the wire or waiting to be sent again (identity, not equality)."""
        return any(x is item for x in self._inflight.values()) or any(x is item for x in self._resend)

    def _still_wanted(self, item: _InFlight) -> bool:
        """Whether a request leaving the wire unanswered must go out again; if its submitter gave
        up, it does not, and the window slot it held is free again."""
        if not item.future.done():
            return True
        if item.holds_slot:
            item.holds_slot = False
            self._release_slot()
        return False

    async def _wait_bound(self) -> None:
        """Wait for the (re)bind; raise TransportError if the client is closed first."""
        if not self._stopped.is_set():
            bound = asyncio.ensure_future(self._bound.wait())
            stopped = asyncio.ensure_future(self._stopped.wait())
            try:
                await asyncio.wait((bound, stopped), return_when=asyncio.FIRST_COMPLETED)
            finally:
                bound.cancel()
                stopped.cancel()
        if not self._bound.is_set():
            raise TransportError("client closed before the request could be sent")

    async def _wait_for_slot(self, loop: asyncio.AbstractEventLoop) -> None:
        waiter: asyncio.Future[None] = loop.create_future()
        self._slot_waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release_slot()  # the slot was handed to us just as we were cancelled
            raise

    def _release_slot(self) -> None:
        waiters = self._slot_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes straight to the next waiter
                return
        self._slots += 1

    def _on_response(self, event: ResponseReceived) -> None:
        item = self._inflight.pop(event.response.sequence_number, None)
        if item is not None and self._still_wanted(item):
            item.future.set_result(event.response)

    def _on_timeout(self, proto: SessionProtocol, event: ResponseTimedOut) -> None:
        command_id = event.request.command_id
        if command_id == CommandId.ENQUIRE_LINK or command_id in _BINDS:
            log.warning(
                "SMPP link to %s does not answer %s; reconnecting",
                proto.peer,
                CommandId(command_id).name.lower(),
            )
            proto.close()
            return
        item = self._inflight.pop(event.sequence_number, None)
        if item is None or not self._still_wanted(item):
            return
        item.attempts += 1
        if item.attempts >= self.config.submit_attempts:
            item.future.set_exception(
                SubmitError(
                    0, f"no response after {item.attempts} attempt(s) of {self.config.response_timeout}s"
                )
            )
            return
        if proto.session.is_bound:
            seq = proto.session.send(item.pdu, proto.loop.time())
            self._inflight[seq] = item
            self.stats.resent += 1
            proto.schedule_flush()
        else:
            self._resend.append(item)

    # --- MO and receipts ---------------------------------------------------------------------------------

    def add_mo_handler(self, handler: MoHandler) -> None:
        """``handler(pdu)`` for every mobile-originated deliver_sm / data_sm (not receipts)."""
        self._mo_handlers.append(handler)

    def add_receipt_handler(self, handler: ReceiptHandler) -> None:
        self._receipt_handlers.append(handler)

    async def wait_receipt(self, message_id: str, timeout: float | None = None) -> DeliveryReceipt:
        """The delivery receipt of ``message_id`` (hex or decimal, as the SMSC wrote either)."""
        keys = message_id_keys(message_id)
        for key in keys:
            early_id = self._early_index.get(key)
            if early_id is not None:
                return self._forget_early(early_id)
        future: asyncio.Future[DeliveryReceipt] = asyncio.get_running_loop().create_future()
        for key in keys:
            self._receipt_waiters[key] = future
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            for key in keys:
                if self._receipt_waiters.get(key) is future:
                    del self._receipt_waiters[key]

    def _on_request(self, proto: SessionProtocol, pdu: Pdu) -> None:
        if not isinstance(pdu, DeliverSm | DataSm):
            # query/cancel/replace are ESME->SMSC operations; an SMSC sending them is confused
            proto.session.answer(pdu, CommandStatus.ESME_RINVCMDID)
            proto.schedule_flush()
            return
        try:
            receipt = receipt_from_pdu(pdu)
        except DecodeError as exc:
            # a receipt (esm_class 0x04 / 0x20) naming no message or no state: delivering it again
            # cannot make it readable, so the SMSC is told not to retry (permanent application
            # error, section 5.1.3) and the link, which is fine, stays up
            self.stats.bad_receipts += 1
            log.warning("SMPP peer %s sent an unreadable delivery receipt: %s", proto.peer, exc)
            self._answer(proto, pdu, CommandStatus.ESME_RX_P_APPN)
            return
        calls: list[tuple[Callable[..., Awaitable[None] | None], tuple[object, ...]]]
        if receipt is not None:
            self.stats.receipts += 1
            self._deliver_receipt(receipt)
            calls = [(h, (receipt, pdu)) for h in self._receipt_handlers]
        else:
            self.stats.mo += 1
            calls = [(h, (pdu,)) for h in self._mo_handlers]
        if not calls:
            if receipt is not None:
                self._answer(proto, pdu, 0)  # a receipt is taken by its correlation alone
                return
            # nobody took this MO (no handler registered yet): a temporary application error makes
            # the SMSC deliver it again later instead of the message being lost
            log.warning(
                "MO from %s arrived with no MO handler registered; the SMSC will retry", pdu.source_addr
            )
            self._answer(proto, pdu, CommandStatus.ESME_RX_T_APPN)
            return
        task = asyncio.create_task(self._run_handlers(proto, pdu, calls))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_handlers(
        self,
        proto: SessionProtocol,
        pdu: DeliverSm | DataSm,
        calls: list[tuple[Callable[..., Awaitable[None] | None], tuple[object, ...]]],
    ) -> None:
        status = 0
        try:
            for handler, args in calls:
                result = handler(*args)
                if result is not None:
                    await result
        except RemoteProtocolError as exc:
            # a handler found the PDU itself wrong (a USSD text that cannot be decoded): delivering it
            # again cannot help, so it is refused with the handler's status, else as a permanent
            # application error (section 5.1.3), and the SMSC does not retry it
            status = exc.status or CommandStatus.ESME_RX_P_APPN
            log.warning("deliver_sm from %s refused (%#x): %s", pdu.source_addr, status, exc)
        except Exception:
            # a temporary application error makes the SMSC retry later: the message is not lost
            log.exception("MO handler failed; answering ESME_RX_T_APPN so the SMSC retries")
            status = CommandStatus.ESME_RX_T_APPN
        self._answer(proto, pdu, status)

    def _answer(self, proto: SessionProtocol, pdu: DeliverSm | DataSm, status: int) -> None:
        if proto.transport is None or proto.transport.is_closing():
            return  # the SMSC will re-deliver on the next bind
        fields: dict[str, str | None] = {} if isinstance(pdu, DeliverSm) else {"message_id": ""}
        if status:
            fields = {"message_id": None}
        proto.session.answer(pdu, status, **fields)
        proto.schedule_flush()

    def _deliver_receipt(self, receipt: DeliveryReceipt) -> None:
        for key in message_id_keys(receipt.id):
            future = self._receipt_waiters.get(key)
            if future is not None and not future.done():
                future.set_result(receipt)
                return
        keys = message_id_keys(receipt.id)
        if not keys:
            return
        early = self._early_receipts
        early[str(keys[0])] = receipt  # the first key is the normalized id string
        for key in keys:
            self._early_index[key] = str(keys[0])
        # the limit counts receipts, not the two or three keys each is indexed by
        while len(early) > self.config.early_receipts:
            self._forget_early(next(iter(early)))

    def _forget_early(self, early_id: str) -> DeliveryReceipt:
        receipt = self._early_receipts.pop(early_id)
        for key in message_id_keys(receipt.id):
            if self._early_index.get(key) == early_id:
                del self._early_index[key]
        return receipt
