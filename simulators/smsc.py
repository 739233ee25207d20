"""SMSC simulator: an SMPP 3.4 server on the same session engine, in the SMSC role.

It authenticates binds (wrong password: ESME_RINVPASWD, unknown system_id: ESME_RINVSYSID), assigns
message ids, delivers MT messages to registered handsets (an in-process interface later issues use
for handsets, USSD and the SIM toolkit), generates delivery receipts when registered_delivery asks
(configurable delay and outcome mix), injects MO messages from handsets as deliver_sm, and enforces
a TPS licence (ESME_RTHROTTLED above it).

Long MT messages are reassembled before a handset sees them (``protocols.gsm.split.Reassembler``: UDH
concatenation with 8- or 16-bit references, TS 23.040 9.2.3.24.1 / 9.2.3.24.8; the SAR TLVs and
message_payload of SMPP 3.4 5.3.2): each part still gets its own message id and receipt (a part the
handset keeps until the rest arrives counts as delivered, the last one gets the handset's verdict),
and the handset is called once with the whole text in ``MtMessage.text``. SIM data download
(TP-PID 0x7F, TS 31.111 7.1.1) and binary messages are handed over part by part, as they came: the SIM
reassembles concatenated SMS-PP itself.

Store and forward (``mo_validity``): an MO arriving while no ESME is bound as receiver (a DSTK
answer, an SMS reply) is kept, up to ``mo_store_limit`` messages and ``mo_validity`` seconds each,
and delivered in order on the next bind; a temporary refusal (ESME_RX_T_APPN) is tried again after
``mo_retry_interval``. Without it (the default in process) such an MO raises ConnectionError.

query_sm answers the final state of a message it routed (SMPP 3.4 4.8) and ESME_RQUERYFAIL for one it
does not know; cancel_sm / replace_sm of an unknown message are ESME_RCANCELFAIL / ESME_RREPLACEFAIL
(section 5.1.3), and ESME_RINVMSGID where a message_id is required and empty.

Failure personalities, by name (``throttle:50`` sets the parameter): happy, throttle (above N TPS),
blackhole (binds, then never answers), slow (answers after a delay), disconnect (drops the
connection every N PDUs), nack (generic_nack every N submits), lossy-receipts (each receipt lost
with probability p), mixed-ids (message ids hex in submit_sm_resp, decimal in receipts).

USSD relay (USSD over SMPP 3.4: ``ussd_service_op`` 5.3.2.44 and ``its_session_info`` 5.3.2.43, in the
vendor layout of ``ussd_profile``, ``protocols.ussd``; what the ops mean on the radio side is MAP
USSD, 3GPP TS 24.090 / TS 29.002, PROTOCOLS.md 1.1 and 1.3). The simulator plays the operator's USSD
gateway between handsets and the bound ESME:

- ``dial(msisdn, code)`` opens a ``UssdSession``: a deliver_sm PSSR indication (service_type of the
  profile, op 0x01, a new session number per dial, sequence 0) from the msisdn to the service code's
  digits (``*123*500#`` -> ``123``), with the dialled string as short_message (or, for a profile that
  reads the code from destination_addr, there);
- a submit_sm carrying ``ussd_service_op`` is not an SMS: it is answered (submit_sm_resp, never a
  delivery receipt) and its screen goes to the session of (destination_addr, session id): a USSR
  request (0x02) asks for input, a PSSR / PSSD response (0x11 / 0x10) or any end-of-session bit is
  the final screen, a USSN request (0x03) a notification the handset confirms (USSN confirm 0x13) as
  a phone's ME does once it is shown, a release (0x81 where the profile has it) ends the session. A
  USSR / USSN request for no open session is network-initiated: it opens a session on the handset
  registered with ``register_ussd_handset`` (ESME_RINVDSTADR when there is none); any other op for no
  open session is ESME_RSUBMITFAIL;
- ``session.reply(text)`` answers the last USSR request with a USSR confirm (0x12) carrying the next
  sequence; ``session.release()`` is the user pressing Cancel: the ESME gets a release at once (the
  profile's release op, else a USSR confirm with the end-of-session bit); ``session.abandon()`` is the
  user walking away: the handset shows nothing more and the ESME hears nothing, so its timeouts run;
- like a real USSD gateway the network forgets a session it hears nothing on for ``ussd_timeout``
  seconds (default 180, re-armed by every message either way): the handset sees a ``timeout`` screen
  and the ESME gets the release.

Session timers are ``loop.call_at`` handles, re-armed lazily; the only tasks are deliver_sm sends,
each bounded by its timeout, so a thousand concurrent dialogues leave nothing running behind them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Literal

from gateway.smpp.connection import SessionProtocol
from protocols._fast import fast_constructor
from protocols.errors import ConfigError, DecodeError, LocalProtocolError, TransportError
from protocols.gsm.dcs import PID_SIM_DATA_DOWNLOAD
from protocols.gsm.split import Reassembler, decode_short_message
from protocols.smpp.constants import CommandStatus, MessageState
from protocols.smpp.events import (
    BindCompleted,
    ConnectionClosed,
    Event,
    InvalidPduReceived,
    RequestReceived,
    ResponseReceived,
    Unbound,
)
from protocols.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    DataSm,
    DeliverSm,
    GenericNack,
    Pdu,
    QuerySm,
    ReplaceSm,
    SubmitMulti,
    SubmitSm,
    SubmitSmResp,
)
from protocols.smpp.receipt import DeliveryReceipt, build_receipt_pdu
from protocols.smpp.session import Role, SessionState, SmppSession
from protocols.smpp.tlv import Tlv
from protocols.ussd import (
    MT_OPS,
    DialogueKey,
    UssdMessage,
    UssdProfile,
    UssdServiceOp,
    from_pdu,
    get_profile,
    is_ussd,
    parse_service_code,
    session_id_limit,
    to_deliver,
)

__all__ = [
    "MtMessage",
    "Personality",
    "ScreenKind",
    "SmscSimulator",
    "UssdError",
    "UssdScreen",
    "UssdSession",
    "parse_personality",
]

log = logging.getLogger(__name__)
S = CommandStatus
_submit_sm_resp = fast_constructor(SubmitSmResp)


@dataclass(frozen=True, slots=True)
class Personality:
    """How the simulated SMSC misbehaves. The default is a well-behaved SMSC."""

    name: str = "happy"
    throttle_tps: float | None = None
    blackhole: bool = False
    response_delay: float = 0.0
    disconnect_every: int | None = None
    nack_every: int | None = None
    receipt_loss: float = 0.0
    receipt_ids_decimal: bool = False


def parse_personality(spec: str) -> Personality:
    """``happy``, ``throttle:100``, ``blackhole``, ``slow:0.5``, ``disconnect:1000``, ``nack:10``,
    ``lossy-receipts:0.2``, ``mixed-ids``."""
    name, _, arg = spec.partition(":")
    try:
        if name == "happy":
            return Personality()
        if name == "throttle":
            return Personality(name, throttle_tps=float(arg or 100))
        if name == "blackhole":
            return Personality(name, blackhole=True)
        if name == "slow":
            return Personality(name, response_delay=float(arg or 0.5))
        if name == "disconnect":
            return Personality(name, disconnect_every=int(arg or 1000))
        if name == "nack":
            return Personality(name, nack_every=int(arg or 10))
        if name == "lossy-receipts":
            p = float(arg or 0.2)
            if not 0 <= p <= 1:
                raise ValueError("probability must be within 0..1")
            return Personality(name, receipt_loss=p)
        if name == "mixed-ids":
            return Personality(name, receipt_ids_decimal=True)
    except ValueError as exc:
        raise ConfigError(f"personality {spec!r}: {exc}") from None
    raise ConfigError(
        f"unknown personality {name!r}: choose happy, throttle:N, blackhole, slow:S, disconnect:N, nack:N, "
        "lossy-receipts:P or mixed-ids"
    )


@dataclass(frozen=True, slots=True)
class MtMessage:
    """A mobile-terminated message as a handset receives it from the SMSC."""

    message_id: str
    source_addr: str
    destination_addr: str
    esm_class: int
    protocol_id: int
    data_coding: int
    short_message: bytes
    optional_parameters: tuple[Tlv, ...]
    system_id: str
    text: str | None = None  # for a handset: the whole text, reassembled from its parts and decoded


# A handset returns the final state of the delivery (None: delivered).
HandsetHandler = Callable[[MtMessage], MessageState | None]


# --- USSD sessions, as the handset sees them ---------------------------------------------------------

_O = UssdServiceOp


UssdFailure = Literal["unbound", "timeout", "refused", "busy", "ended"]


class UssdError(TransportError):
    """The network could not relay a USSD dial or reply, or the session is over. ``cause``: no ESME
    bound (``unbound``), no answer in time (``timeout``), the ESME refused it (``refused``; ``status`` is
    its command_status), every session number in use (``busy``), or the session is over and every
    screen was read (``ended``); ``status`` is 0 when none came."""

    def __init__(self, reason: str, status: int = 0, cause: UssdFailure = "refused") -> None:
        super().__init__(reason)
        self.status = status
        self.cause: UssdFailure = cause


class ScreenKind(Enum):
    """What a USSD screen is, from the handset's point of view."""

    CONTINUE = "continue"  # USSR request: the dialogue waits for the user's answer
    FINAL = "final"  # PSSR / PSSD response, or a USSR request with the end-of-session bit
    NOTIFICATION = "notification"  # USSN request (final when it carries the end-of-session bit)
    RELEASED = "released"  # the ESME released / aborted the session
    TIMEOUT = "timeout"  # the network heard nothing on the session for ussd_timeout seconds


@dataclass(frozen=True, slots=True)
class UssdScreen:
    """One screen the handset shows: its ``text``, ``kind``, whether it ends the dialogue (``final``),
    the ``op`` and ``sequence`` it came with (None for a screen the network made up: a timeout)."""

    text: str
    kind: ScreenKind
    final: bool
    op: UssdServiceOp | None = None
    sequence: int | None = None

    @property
    def label(self) -> str:
        """``continue``, ``final``, ``notification``, ``notification, final``, ``released``, ``timeout``."""
        if self.kind is ScreenKind.NOTIFICATION and self.final:
            return "notification, final"
        return self.kind.value


class UssdSession:
    """One USSD session between a handset and the ESME, relayed by ``SmscSimulator``.

    ``await next_screen()`` returns the screens in the order they came; ``await reply(text)`` answers a
    ``continue`` screen; ``await release()`` cancels the session (the ESME is told); ``abandon()`` walks
    away (the ESME is not told). ``on_screen`` is called with each screen as it arrives. ``end_reason``
    says why the handset's side is over (None while it is not); ``history`` keeps every screen.
    """

    __slots__ = (
        "_awaiting_input",
        "_deadline",
        "_live",
        "_screens",
        "_sequence",
        "_smsc",
        "_timer",
        "_waiter",
        "abandoned",
        "end_reason",
        "history",
        "key",
        "msisdn",
        "network_initiated",
        "on_screen",
        "service_addr",
        "service_code",
        "session_id",
        "system_id",
    )

    def __init__(
        self,
        smsc: SmscSimulator,
        key: DialogueKey,
        service_addr: str,
        system_id: str,
        *,
        service_code: str | None = None,
        network_initiated: bool = False,
        sequence: int | None = None,
        on_screen: Callable[[UssdScreen], None] | None = None,
    ) -> None:
        self._smsc = smsc
        self.key = key
        self.msisdn = key.msisdn
        self.session_id = key.session_id
        self.service_addr = service_addr
        self.service_code = service_code
        self.system_id = system_id
        self.network_initiated = network_initiated
        self.on_screen = on_screen
        self.history: list[UssdScreen] = []
        self.end_reason: str | None = None
        self.abandoned = False
        self._sequence = sequence  # the last sequence number seen or sent; None: the layout has none
        self._screens: deque[UssdScreen] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._awaiting_input = False
        self._live = True  # the network keeps the session (False once it forgot it)
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        state = self.end_reason or ("awaiting input" if self._awaiting_input else "open")
        return f"<UssdSession {self.msisdn}/{self.session_id} {state}>"

    @property
    def ended(self) -> bool:
        """True once the handset's side is over (a final screen came, or it failed, or the user left)."""
        return self.end_reason is not None

    @property
    def awaiting_input(self) -> bool:
        """True while the last screen asks the user for an answer."""
        return self._awaiting_input and self.end_reason is None

    async def next_screen(self, timeout: float | None = None) -> UssdScreen:
        """The next screen; TimeoutError when none comes within ``timeout``; UssdError when the session
        is over and every screen was read."""
        while not self._screens:
            if self.end_reason is not None:
                raise UssdError(
                    f"USSD session {self.msisdn}/{self.session_id} is over: {self.end_reason}", cause="ended"
                )
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(waiter)
            finally:
                if self._waiter is waiter and waiter.done():
                    self._waiter = None
        return self._screens.popleft()

    async def reply(self, text: str, *, timeout: float = 10.0) -> None:
        """Answer the ``continue`` screen with ``text`` (a USSR confirm with the next sequence)."""
        await self._smsc._ussd_reply(self, text, timeout)

    async def release(self, *, timeout: float = 10.0) -> None:
        """The user presses Cancel: the session ends and the ESME gets a release at once."""
        await self._smsc._ussd_release(self, timeout)

    def abandon(self) -> None:
        """The user walks away: the handset shows nothing more and the ESME is not told, so its own
        timeouts (and, later, the network's) end the session."""
        if self.end_reason is None:
            self.abandoned = True
            self._finish("abandoned by the user")

    # --- the network's side ----------------------------------------------------------------------

    def _next_sequence(self) -> int | None:
        return None if self._sequence is None else (self._sequence + 1) & 0x7F

    def _push(self, screen: UssdScreen) -> None:
        self.history.append(screen)
        self._screens.append(screen)
        self._awaiting_input = screen.kind is ScreenKind.CONTINUE and not screen.final
        if screen.final:
            self.end_reason = f"ended by a {screen.label} screen"
        self._wake()
        if self.on_screen is not None:
            try:
                self.on_screen(screen)
            except Exception:
                log.exception("USSD session %s/%s: on_screen failed", self.msisdn, self.session_id)

    def _finish(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
        self._awaiting_input = False
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


UssdHandsetHandler = Callable[[UssdSession], None]
"""Called with a session the network opens towards a handset (a network-initiated USSR / USSN),
before its first screen is pushed (so ``on_screen`` can be set)."""


@dataclass(frozen=True, slots=True)
class _StoredMo:
    """An MO waiting for an ESME to bind: until ``expires`` (loop time), for ``system_id`` (None: any)."""

    expires: float
    system_id: str | None
    pdu: DeliverSm | DataSm


_MO_TRY_LATER = frozenset({S.ESME_RX_T_APPN, S.ESME_RMSGQFUL, S.ESME_RTHROTTLED})


@dataclass(frozen=True, slots=True)
class _StoredMessage:
    """What query_sm answers about a message this SMSC took."""

    source_addr: str
    destination_addr: str
    state: MessageState
    final_date: str


@dataclass(slots=True, eq=False)
class _Client:
    proto: SessionProtocol
    system_id: str = ""
    pdus: int = 0
    submits: int = 0


@dataclass(slots=True)
class SmscStats:
    binds: int = 0
    bind_failures: int = 0
    submits: int = 0
    throttled: int = 0
    nacked: int = 0
    receipts_sent: int = 0
    receipts_lost: int = 0
    mo_sent: int = 0
    mo_stored: int = 0  # MO taken while no ESME was bound as receiver (store and forward)
    mo_forwarded: int = 0  # stored MO an ESME took later
    mo_expired: int = 0  # stored MO dropped at the end of their validity period
    invalid: int = 0
    unbinds: int = 0  # sessions the ESME ended with unbind (a clean close), not by dropping the link
    ussd_sessions: int = 0  # opened, by a dial or by the ESME (network-initiated)
    ussd_screens: int = 0  # USSD submit_sm relayed to a session
    ussd_replies: int = 0
    ussd_releases: int = 0  # releases sent to the ESME: the user cancelled or the network timed out
    ussd_timeouts: int = 0
    ussd_refused: int = 0  # USSD submit_sm answered with an error status


class _Licence:
    """Token bucket per system_id for the TPS licence; time comes from the caller."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, rate / 10)
        self.tokens = self.burst
        self.stamp: float | None = None

    def take(self, now: float) -> bool:
        if self.stamp is None:
            self.stamp = now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


_OUTCOME_STATES = {
    "DELIVRD": MessageState.DELIVERED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "EXPIRED": MessageState.EXPIRED,
    "REJECTD": MessageState.REJECTED,
    "DELETED": MessageState.DELETED,
}


class SmscSimulator:
    """An SMPP server. ``accounts`` maps system_id to password."""

    def __init__(
        self,
        accounts: dict[str, str],
        *,
        personality: Personality | None = None,
        tps_licence: float | None = None,
        receipt_delay: float = 0.0,
        outcomes: dict[str, float] | None = None,
        seed: int | None = None,
        window: int = 1000,
        enquire_link_interval: float | None = 60.0,
        record_messages: bool = True,
        reassembly_timeout: float = 600.0,
        ussd_profile: UssdProfile | str = "standard",
        ussd_timeout: float = 180.0,
        mo_validity: float | None = None,
        mo_store_limit: int = 10_000,
        mo_retry_interval: float = 5.0,
    ) -> None:
        self.accounts = dict(accounts)
        self.personality = personality or Personality()
        self.tps_licence = tps_licence or self.personality.throttle_tps
        self.receipt_delay = receipt_delay
        self.outcomes = outcomes or {"DELIVRD": 1.0}
        for stat in self.outcomes:
            if stat not in _OUTCOME_STATES:
                raise ConfigError(
                    f"unknown receipt outcome {stat!r}: choose from {', '.join(_OUTCOME_STATES)}"
                )
        self.window = window
        self.enquire_link_interval = enquire_link_interval
        self.stats = SmscStats()
        self._random = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._clients: set[_Client] = set()
        self._by_proto: dict[int, _Client] = {}
        self._licences: dict[str, _Licence] = {}
        self._handsets: dict[str, HandsetHandler] = {}
        self._reassembler = Reassembler(reassembly_timeout)
        self._text_codings: dict[int, bool] = {}
        self._next_id = 0x10000
        self._receipts: deque[tuple[float, str, DeliverSm]] = deque()
        self._receipt_added = asyncio.Event()
        self._receipt_task: asyncio.Task[None] | None = None
        self._mo_waiters: dict[tuple[int, int], asyncio.Future[int]] = {}
        # store and forward of MO while no ESME is bound (None: refused, the handset is told at once)
        if mo_validity is not None and mo_validity <= 0:
            raise ConfigError(f"mo_validity must be positive, got {mo_validity}")
        if mo_store_limit < 1:
            raise ConfigError(f"mo_store_limit must be at least 1, got {mo_store_limit}")
        self.mo_validity = mo_validity
        self.mo_store_limit = mo_store_limit
        self.mo_retry_interval = mo_retry_interval
        self._stored_mo: deque[_StoredMo] = deque()
        self._forwarder: asyncio.Task[None] | None = None
        p = self.personality
        self._straight = not (p.blackhole or p.response_delay or p.disconnect_every)
        # recent MT traffic, for tests and testers; a load run turns it off to keep the hot path lean
        self.record_messages = record_messages
        self.messages: deque[MtMessage] = deque(maxlen=10_000)
        # final states for query_sm, by message id, oldest first (kept for every routed message: a load
        # run with no handsets, no receipts and record_messages off routes nothing and keeps none)
        self.message_states = 100_000
        self._states: dict[str, _StoredMessage] = {}
        self.on_submit: Callable[[MtMessage], Awaitable[None] | None] | None = None
        # USSD relay
        if ussd_timeout <= 0:
            raise ConfigError(f"ussd_timeout must be positive, got {ussd_timeout}")
        self.ussd_profile = get_profile(ussd_profile) if isinstance(ussd_profile, str) else ussd_profile
        self.ussd_timeout = ussd_timeout
        self._ussd_sessions: dict[DialogueKey, UssdSession] = {}
        self._ussd_handsets: dict[str, UssdHandsetHandler] = {}
        self._ussd_next_id = 0
        self._ussd_id_limit = session_id_limit(self.ussd_profile.session_id_location)
        self._ussd_tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_protocol, host, port)
        sock = self._server.sockets[0].getsockname()
        self._receipt_task = asyncio.create_task(self._receipt_pump(), name="smsc-receipts")
        log.info("SMSC simulator listening on %s:%s (%s)", sock[0], sock[1], self.personality.name)
        return sock[0], sock[1]

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        sock = self._server.sockets[0].getsockname()
        return sock[0], sock[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for client in list(self._clients):
            client.proto.close()
        for ussd in list(self._ussd_sessions.values()):
            self._ussd_forget(ussd)
            ussd._finish("the SMSC simulator stopped")
        for task in list(self._ussd_tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._receipt_task is not None:
            self._receipt_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._receipt_task
        if self._forwarder is not None:
            self._forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._forwarder
            self._forwarder = None
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def __aenter__(self) -> SmscSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _new_protocol(self) -> SessionProtocol:
        session = SmppSession(
            Role.SMSC,
            window=self.window,
            enquire_link_interval=self.enquire_link_interval,
        )
        proto = SessionProtocol(session, self._on_event, on_connection_lost=self._on_lost)
        client = _Client(proto)
        self._clients.add(client)
        self._by_proto[id(proto)] = client
        return proto

    def _on_lost(self, proto: SessionProtocol) -> None:
        client = self._by_proto.pop(id(proto), None)
        if client is not None:
            self._clients.discard(client)

    @property
    def bound_system_ids(self) -> list[str]:
        return [c.system_id for c in self._clients if c.proto.session.is_bound]

    # --- handsets ----------------------------------------------------------------------------------------

    def register_handset(self, msisdn: str, handler: HandsetHandler) -> None:
        """MT messages to ``msisdn`` are handed to ``handler``; its answer decides the receipt."""
        self._handsets[msisdn] = handler

    def unregister_handset(self, msisdn: str) -> None:
        self._handsets.pop(msisdn, None)

    async def inject_mo(
        self,
        source_addr: str,
        destination_addr: str,
        short_message: bytes = b"",
        *,
        data_coding: int = 0,
        esm_class: int = 0,
        protocol_id: int = 0,
        optional_parameters: tuple[Tlv, ...] = (),
        system_id: str | None = None,
        timeout: float = 10.0,
    ) -> int:
        """Deliver an MO message from a handset to a bound receiver/transceiver ESME (of
        ``system_id`` if given); returns the ESME's command_status."""
        pdu = DeliverSm(
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr=source_addr,
            dest_addr_ton=0,
            dest_addr_npi=1,
            destination_addr=destination_addr,
            esm_class=esm_class,
            protocol_id=protocol_id,
            data_coding=data_coding,
            short_message=short_message,
            optional_parameters=optional_parameters,
        )
        return await self.deliver(pdu, system_id=system_id, timeout=timeout)

    async def deliver(
        self, pdu: DeliverSm | DataSm, *, system_id: str | None = None, timeout: float = 10.0
    ) -> int:
        """Send a deliver_sm / data_sm to a bound ESME and wait for its response status.

        With no ESME bound as receiver (of ``system_id``, an account of this SMSC), an SMSC with
        ``mo_validity`` stores the message and returns 0 (the SMSC took it, as its RP-ACK tells the
        phone); it goes to the next ESME that binds, in the order stored, unless ``mo_validity``
        seconds pass first. A full store (``mo_store_limit``), or no store, raises ConnectionError.
        """
        client = self._receiver_for(system_id)
        if client is None:
            unknown = system_id is not None and system_id not in self.accounts
            if self.mo_validity is None or unknown:
                raise ConnectionError(f"no ESME bound as receiver{f' for {system_id}' if system_id else ''}")
            self._store_mo(pdu, system_id)
            return 0
        return await self._deliver_to(client, pdu, timeout)

    @property
    def stored_mo(self) -> int:
        """MO messages stored for an ESME that is not bound (expired ones included until dropped)."""
        return len(self._stored_mo)

    def _store_mo(self, pdu: DeliverSm | DataSm, system_id: str | None) -> None:
        assert self.mo_validity is not None
        now = asyncio.get_running_loop().time()
        self._drop_expired_mo(now)
        if len(self._stored_mo) >= self.mo_store_limit:
            raise ConnectionError(
                f"no ESME bound as receiver and the MO store is full ({self.mo_store_limit} messages)"
            )
        self._stored_mo.append(_StoredMo(now + self.mo_validity, system_id, pdu))
        self.stats.mo_stored += 1
        log.info("SMSC simulator stores an MO from %s until an ESME binds", pdu.source_addr)

    def _drop_expired_mo(self, now: float) -> None:
        kept = deque(m for m in self._stored_mo if m.expires > now)
        expired = len(self._stored_mo) - len(kept)
        if expired:
            self.stats.mo_expired += expired
            log.info("SMSC simulator drops %d stored MO past their validity period", expired)
            self._stored_mo = kept

    def _forward_stored_mo(self) -> None:
        """An ESME bound as receiver: start forwarding what was stored (one forwarder at a time)."""
        if self._stored_mo and (self._forwarder is None or self._forwarder.done()):
            self._forwarder = asyncio.create_task(self._forward_loop(), name="smsc-mo-forward")

    async def _forward_loop(self) -> None:
        """Forward the stored MO in order. A temporary refusal (ESME_RX_T_APPN, ESME_RMSGQFUL,
        ESME_RTHROTTLED) or no answer keeps a message to try again after ``mo_retry_interval``; any
        other refusal is final and drops it; no receiver bound any more ends the loop until the next
        bind."""
        loop = asyncio.get_running_loop()
        while self._stored_mo:
            self._drop_expired_mo(loop.time())
            stored = next((m for m in self._stored_mo if self._receiver_for(m.system_id) is not None), None)
            if stored is None:
                return  # nobody to take what is left: the next bind starts again
            client = self._receiver_for(stored.system_id)
            assert client is not None
            try:
                status = await self._deliver_to(client, stored.pdu, 10.0)
            except (TimeoutError, LocalProtocolError):
                status = S.ESME_RX_T_APPN  # no answer, or the session went away: try again
            if status in _MO_TRY_LATER:
                await asyncio.sleep(self.mo_retry_interval)
                continue
            with contextlib.suppress(ValueError):
                self._stored_mo.remove(stored)
            if status:
                log.info("SMSC simulator drops a stored MO the ESME refused: %s", S(status).name)
            else:
                self.stats.mo_forwarded += 1

    async def _deliver_to(self, client: _Client, pdu: DeliverSm | DataSm, timeout: float) -> int:
        loop = asyncio.get_running_loop()
        seq = client.proto.session.send(pdu, loop.time())
        future: asyncio.Future[int] = loop.create_future()
        self._mo_waiters[(id(client.proto), seq)] = future
        client.proto.schedule_flush()
        self.stats.mo_sent += 1
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._mo_waiters.pop((id(client.proto), seq), None)

    def _receiver_for(self, system_id: str | None) -> _Client | None:
        candidates = [
            c
            for c in self._clients
            if c.proto.session.state in (SessionState.BOUND_RX, SessionState.BOUND_TRX)
            and (system_id is None or c.system_id == system_id)
        ]
        return self._random.choice(candidates) if candidates else None

    # --- USSD relay ----------------------------------------------------------------------------------------

    def register_ussd_handset(self, msisdn: str, handler: UssdHandsetHandler) -> None:
        """Network-initiated USSD sessions to ``msisdn`` are handed to ``handler``."""
        self._ussd_handsets[msisdn] = handler

    def unregister_ussd_handset(self, msisdn: str) -> None:
        self._ussd_handsets.pop(msisdn, None)

    @property
    def ussd_sessions(self) -> list[UssdSession]:
        """The sessions the network keeps open (an abandoned one stays until it ends or times out)."""
        return list(self._ussd_sessions.values())

    async def dial(
        self,
        msisdn: str,
        code: str,
        *,
        system_id: str | None = None,
        timeout: float = 10.0,
        on_screen: Callable[[UssdScreen], None] | None = None,
    ) -> UssdSession:
        """The handset ``msisdn`` dials ``code`` (``*123*500#``): a PSSR indication goes to a bound
        ESME (of ``system_id`` if given) and, once the ESME took it, the open session is returned.

        ``on_screen`` sees every screen, the first included (it may arrive before the ESME answers the
        deliver_sm). A code that is no USSD string raises LocalProtocolError; no ESME bound, no answer
        within ``timeout`` or a refusal raise UssdError.
        """
        try:
            service = parse_service_code(code)
        except DecodeError as exc:
            raise LocalProtocolError(str(exc)) from None
        client = self._receiver_for(system_id)
        if client is None:
            raise UssdError(_no_gateway(system_id), cause="unbound")
        profile = self.ussd_profile
        key = DialogueKey(msisdn, self._ussd_session_id(msisdn))
        sequence = 0 if profile.has_sequence else None
        session = UssdSession(
            self,
            key,
            service.code,
            client.system_id,
            service_code=code,
            sequence=sequence,
            on_screen=on_screen,
        )
        message = UssdMessage(_O.PSSR_IND, msisdn, code, service.code, key.session_id, sequence, False, code)
        pdu = to_deliver(message, profile)
        self._ussd_open(session)
        await self._ussd_send(session, pdu, timeout, "dial")
        return session

    def _ussd_session_id(self, msisdn: str) -> int:
        """A new session number (per dial, wrapping at the profile's limit) free for ``msisdn``."""
        limit = self._ussd_id_limit
        number = self._ussd_next_id
        sessions = self._ussd_sessions
        for _ in range(limit + 1):
            if DialogueKey(msisdn, number) not in sessions:
                break
            number = number + 1 if number < limit else 0
        else:
            raise UssdError(f"every USSD session number of {msisdn} is in use", cause="busy")
        self._ussd_next_id = number + 1 if number < limit else 0
        return number

    def _ussd_open(self, session: UssdSession) -> None:
        self._ussd_sessions[session.key] = session
        self.stats.ussd_sessions += 1
        self._ussd_touch(session)

    def _ussd_touch(self, session: UssdSession) -> None:
        """Something happened on the session: the network's idle timer starts again (lazily: the
        armed handle re-arms itself when it fires early)."""
        if not session._live:
            return
        loop = asyncio.get_running_loop()
        session._deadline = loop.time() + self.ussd_timeout
        if session._timer is None:
            session._timer = loop.call_at(session._deadline, self._ussd_timer, session)

    def _ussd_timer(self, session: UssdSession) -> None:
        session._timer = None
        if not session._live:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < session._deadline:
            session._timer = loop.call_at(session._deadline, self._ussd_timer, session)
            return
        self.stats.ussd_timeouts += 1
        log.info("USSD session %s/%s timed out in the network", session.msisdn, session.session_id)
        self._ussd_forget(session)
        if session.end_reason is None:
            session._push(UssdScreen("", ScreenKind.TIMEOUT, True))
            session.end_reason = f"timed out by the network after {self.ussd_timeout:g} s of silence"
        self._ussd_spawn(self._ussd_release_to_gateway(session, 10.0))

    def _ussd_forget(self, session: UssdSession) -> None:
        """The network drops the session (its handset side may still hold unread screens)."""
        session._live = False
        if self._ussd_sessions.get(session.key) is session:
            del self._ussd_sessions[session.key]
        if session._timer is not None:
            session._timer.cancel()
            session._timer = None

    def _ussd_spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._ussd_tasks.add(task)
        task.add_done_callback(self._ussd_tasks.discard)

    async def _ussd_send(self, session: UssdSession, pdu: DeliverSm, timeout: float, what: str) -> None:
        """Deliver one handset -> ESME message of ``session``; a failure ends the session (UssdError)."""
        self._ussd_touch(session)
        cause: UssdFailure
        status = 0
        try:
            status = await self._ussd_deliver(pdu, session.system_id, timeout)
        except ConnectionError:
            reason, cause = _no_gateway(session.system_id), "unbound"
        except TimeoutError:
            reason, cause = f"the gateway did not answer the USSD {what} within {timeout:g} s", "timeout"
        else:
            if not status:
                return
            reason = f"the gateway refused the USSD {what}: {S(status).name} ({status:#010x})"
            cause = "refused"
        self._ussd_forget(session)
        session._finish(reason)
        raise UssdError(reason, status, cause)

    async def _ussd_deliver(self, pdu: DeliverSm, system_id: str, timeout: float) -> int:
        """``deliver`` that waits for room in the ESME's window instead of failing on a full one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            client = self._receiver_for(system_id)
            if client is None:
                raise ConnectionError(_no_gateway(system_id))
            if client.proto.session.window_available > 0:
                break
            if loop.time() >= deadline:
                raise TimeoutError
            await asyncio.sleep(0.005)
        return await self._deliver_to(client, pdu, max(deadline - loop.time(), 0.001))

    async def _ussd_reply(self, session: UssdSession, text: str, timeout: float) -> None:
        if session.end_reason is not None:
            raise LocalProtocolError(
                f"USSD session {session.msisdn}/{session.session_id} is over: {session.end_reason}"
            )
        if not session._awaiting_input:
            raise LocalProtocolError(
                f"USSD session {session.msisdn}/{session.session_id}: no screen asks for input"
            )
        sequence = session._next_sequence()
        message = UssdMessage(
            _O.USSR_CONF, session.msisdn, text, session.service_addr, session.session_id, sequence
        )
        pdu = to_deliver(message, self.ussd_profile)  # LocalProtocolError: a text over the limit
        session._sequence = sequence
        session._awaiting_input = False
        self.stats.ussd_replies += 1
        await self._ussd_send(session, pdu, timeout, "reply")

    async def _ussd_release(self, session: UssdSession, timeout: float) -> None:
        session._finish("released by the user")
        if not session._live:
            return
        self._ussd_forget(session)
        await self._ussd_release_to_gateway(session, timeout)

    async def _ussd_release_to_gateway(self, session: UssdSession, timeout: float) -> None:
        """Tell the ESME the network ended the session: the profile's release op, or a USSR confirm
        with the end-of-session bit where the profile has no release (SMPP 3.4 its_session_info)."""
        profile = self.ussd_profile
        op = _O.RELEASE if profile.has_release else _O.USSR_CONF
        sequence = session._next_sequence()
        session._sequence = sequence
        message = UssdMessage(
            op, session.msisdn, "", session.service_addr, session.session_id, sequence, True
        )
        self.stats.ussd_releases += 1
        try:
            status = await self._ussd_deliver(to_deliver(message, profile), session.system_id, timeout)
        except (ConnectionError, TimeoutError) as exc:
            log.info("USSD release of %s/%s not delivered: %r", session.msisdn, session.session_id, exc)
            return
        if status:
            log.info("USSD release of %s/%s answered %s", session.msisdn, session.session_id, S(status).name)

    async def _ussd_confirm_notification(self, session: UssdSession) -> None:
        sequence = session._next_sequence()
        session._sequence = sequence
        message = UssdMessage(
            _O.USSN_CONF, session.msisdn, "", session.service_addr, session.session_id, sequence
        )
        with contextlib.suppress(UssdError):
            await self._ussd_send(
                session, to_deliver(message, self.ussd_profile), 10.0, "notification confirm"
            )

    def _on_ussd_submit(self, client: _Client, pdu: SubmitSm) -> None:
        """A submit_sm with ``ussd_service_op``: relay it and answer (never a delivery receipt)."""
        status = self._relay_ussd(client, pdu)
        message_id: str | None = None
        if status:
            self.stats.ussd_refused += 1
        else:
            message_id = self._take_id()
            self.stats.submits += 1
        client.proto.session.send(SubmitSmResp(pdu.sequence_number, status, message_id), 0.0)
        if message_id is not None and (self.record_messages or self.on_submit is not None):
            mt = MtMessage(
                message_id,
                pdu.source_addr,
                pdu.destination_addr,
                pdu.esm_class,
                pdu.protocol_id,
                pdu.data_coding,
                pdu.short_message,
                pdu.optional_parameters,
                client.system_id,
            )
            self._observe(mt)

    def _relay_ussd(self, client: _Client, pdu: SubmitSm) -> int:
        """Hand the screen of a USSD submit_sm to its session; the command_status to answer."""
        try:
            message = from_pdu(pdu, self.ussd_profile)
        except DecodeError as exc:
            log.info("SMSC simulator: undecodable USSD submit_sm from %s: %s", client.system_id, exc)
            return exc.status or S.ESME_RINVOPTPARAMVAL
        op = message.op
        if op not in MT_OPS and op is not _O.RELEASE:
            log.info("SMSC simulator: USSD %s cannot travel to a handset", op.name)
            return S.ESME_RINVOPTPARAMVAL
        session = self._ussd_sessions.get(message.key)
        if session is None:
            if op is not _O.USSR_REQ and op is not _O.USSN_REQ:
                return S.ESME_RSUBMITFAIL  # nothing to answer or end: the session is over
            handler = self._ussd_handsets.get(message.msisdn)
            if handler is None:
                return S.ESME_RINVDSTADR  # no handset to open a session on
            session = UssdSession(
                self,
                message.key,
                message.service_addr,
                client.system_id,
                network_initiated=True,
                sequence=message.sequence,
            )
            self._ussd_open(session)
            try:
                handler(session)
            except Exception:
                log.exception("USSD handset %s failed on a network-initiated session", message.msisdn)
        self._ussd_screen(session, message)
        return 0

    def _ussd_screen(self, session: UssdSession, message: UssdMessage) -> None:
        op = message.op
        if message.sequence is not None and session._sequence is not None:
            session._sequence = message.sequence
        if op is _O.RELEASE:
            kind = ScreenKind.RELEASED
        elif op is _O.USSN_REQ:
            kind = ScreenKind.NOTIFICATION
        elif op is _O.USSR_REQ and not message.end:
            kind = ScreenKind.CONTINUE
        else:
            kind = ScreenKind.FINAL
        final = message.end
        self.stats.ussd_screens += 1
        if final:
            self._ussd_forget(session)
        else:
            self._ussd_touch(session)
        if session.end_reason is not None:
            return  # abandoned or cancelled: nobody looks at the screen any more
        session._push(UssdScreen(message.text, kind, final, op, message.sequence))
        if kind is ScreenKind.NOTIFICATION and not final:
            # the ME acknowledges a notification once shown (MAP unstructuredSS-Notify's result)
            self._ussd_spawn(self._ussd_confirm_notification(session))

    # --- engine events -----------------------------------------------------------------------------------

    def _on_event(self, proto: SessionProtocol, event: Event) -> None:
        client = self._by_proto.get(id(proto))
        if client is None:
            return
        if self._straight and type(event) is RequestReceived and type(event.pdu) is SubmitSm:
            # the hot path: no personality delays or drops this submit, and data_received flushes
            self._on_submit(client, event.pdu)
            return
        client.pdus += 1
        every = self.personality.disconnect_every
        if every is not None and client.pdus % every == 0:
            log.info("SMSC simulator drops %s after %d PDUs (personality)", proto.peer, client.pdus)
            proto.close()
            return
        if isinstance(event, RequestReceived):
            self._on_request(client, event.pdu)
        elif isinstance(event, ResponseReceived):
            response = event.response
            future = self._mo_waiters.get((id(proto), response.sequence_number))
            if future is not None and not future.done():
                future.set_result(response.command_status)
        elif isinstance(event, BindCompleted):
            self.stats.binds += 1
            if proto.session.state in (SessionState.BOUND_RX, SessionState.BOUND_TRX):
                self._forward_stored_mo()
        elif isinstance(event, InvalidPduReceived):
            self.stats.invalid += 1
            log.info("SMSC simulator: invalid PDU from %s: %s", proto.peer, event.reason)
        elif isinstance(event, Unbound | ConnectionClosed):
            if isinstance(event, Unbound):
                self.stats.unbinds += 1
            proto.close()

    def _on_request(self, client: _Client, pdu: Pdu) -> None:
        proto = client.proto
        session = proto.session
        if isinstance(pdu, BindTransmitter | BindReceiver | BindTransceiver):
            expected = self.accounts.get(pdu.system_id)
            status: int
            if expected is None:
                status = S.ESME_RINVSYSID
            elif expected != pdu.password:
                status = S.ESME_RINVPASWD
            else:
                status = 0
            if status:
                self.stats.bind_failures += 1
                session.answer(pdu, status, system_id=None)
            else:
                client.system_id = pdu.system_id
                session.answer(pdu, 0, system_id="tgw-smsc")
            proto.schedule_flush()
            return
        if self.personality.blackhole:
            return
        if self.personality.response_delay:
            proto.loop.call_later(self.personality.response_delay, self._answer_request, client, pdu)
            return
        self._answer_request(client, pdu)

    def _answer_request(self, client: _Client, pdu: Pdu) -> None:
        proto = client.proto
        if proto.transport is None or proto.transport.is_closing():
            return
        session = proto.session
        if isinstance(pdu, SubmitSm):
            self._on_submit(client, pdu)
        elif isinstance(pdu, SubmitMulti):
            message_id = self._take_id()
            session.answer(pdu, 0, message_id=message_id)
        elif isinstance(pdu, DataSm):
            session.answer(pdu, 0, message_id=self._take_id())
        elif isinstance(pdu, QuerySm):
            self._on_query(client, pdu)
        elif isinstance(pdu, CancelSm | ReplaceSm):
            self._on_cancel_or_replace(client, pdu)
        else:
            session.answer(
                pdu, S.ESME_RINVCMDID, **({"message_id": None} if hasattr(pdu, "short_message") else {})
            )
        proto.schedule_flush()

    def _stored(self, message_id: str, source_addr: str) -> _StoredMessage | None:
        """The message ``message_id`` (hex as assigned, or decimal as a mixed-ids receipt wrote it)
        from ``source_addr`` (any when empty: section 4.8.1 lets the ESME leave it NULL)."""
        stored = self._states.get(message_id.lower())
        if stored is None and message_id.isdigit():
            stored = self._states.get(format(int(message_id), "x"))
        if stored is None or (source_addr and source_addr != stored.source_addr):
            return None
        return stored

    def _on_query(self, client: _Client, pdu: QuerySm) -> None:
        """query_sm (section 4.8): the state of a message this SMSC took, else ESME_RQUERYFAIL."""
        session = client.proto.session
        if not pdu.message_id:
            session.answer(pdu, S.ESME_RINVMSGID, message_id=None)
            return
        stored = self._stored(pdu.message_id, pdu.source_addr)
        if stored is None:
            session.answer(pdu, S.ESME_RQUERYFAIL, message_id=None)
            return
        session.answer(
            pdu,
            0,
            message_id=pdu.message_id,
            final_date=stored.final_date,
            message_state=stored.state,
            error_code=0 if stored.state is MessageState.DELIVERED else 1,
        )

    def _on_cancel_or_replace(self, client: _Client, pdu: CancelSm | ReplaceSm) -> None:
        """cancel_sm / replace_sm (sections 4.9, 4.10) of a message this SMSC took from that originator.

        This SMSC hands each message to its handset when it takes it, so there is nothing left to
        take back or rewrite: it answers 0 for a message it knows (from that source_addr) and changes
        nothing. One it does not know is ESME_RCANCELFAIL / ESME_RREPLACEFAIL; replace_sm naming no
        message is ESME_RINVMSGID; cancel_sm naming no message names every message from source_addr
        to destination_addr (section 4.9.1), and fails when there is none."""
        session = client.proto.session
        if isinstance(pdu, ReplaceSm):
            if not pdu.message_id:
                session.answer(pdu, S.ESME_RINVMSGID)
                return
            known = self._stored(pdu.message_id, pdu.source_addr) is not None
            session.answer(pdu, 0 if known else S.ESME_RREPLACEFAIL)
            return
        if pdu.message_id:
            known = self._stored(pdu.message_id, pdu.source_addr) is not None
        else:
            known = any(
                m.source_addr == pdu.source_addr and m.destination_addr == pdu.destination_addr
                for m in self._states.values()
            )
        session.answer(pdu, 0 if known else S.ESME_RCANCELFAIL)

    def _take_id(self) -> str:
        self._next_id += 1
        return format(self._next_id, "x")

    def _on_submit(self, client: _Client, pdu: SubmitSm) -> None:
        proto = client.proto
        session = proto.session
        seq = pdu.sequence_number
        client.submits += 1
        nack = self.personality.nack_every
        if nack is not None and client.submits % nack == 0:
            self.stats.nacked += 1
            session.send(GenericNack(seq, S.ESME_RSYSERR), 0.0)
            return
        if self.tps_licence:
            licence = self._licences.get(client.system_id)
            if licence is None:
                licence = self._licences[client.system_id] = _Licence(self.tps_licence)
            if not licence.take(proto.loop.time()):
                self.stats.throttled += 1
                session.send(SubmitSmResp(seq, S.ESME_RTHROTTLED, None), 0.0)
                return
        if pdu.optional_parameters and is_ussd(pdu):
            self._on_ussd_submit(client, pdu)
            return
        self._next_id += 1
        message_id = format(self._next_id, "x")
        session.send(_submit_sm_resp(seq, 0, message_id, ()), 0.0)
        self.stats.submits += 1
        if (
            self.record_messages
            or self._handsets
            or self.on_submit is not None
            or pdu.registered_delivery & 0x03
        ):
            self._route(client, pdu, message_id)

    def _route(self, client: _Client, pdu: SubmitSm, message_id: str) -> None:
        mt = MtMessage(
            message_id,
            pdu.source_addr,
            pdu.destination_addr,
            pdu.esm_class,
            pdu.protocol_id,
            pdu.data_coding,
            pdu.short_message,
            pdu.optional_parameters,
            client.system_id,
        )
        self.messages.append(mt)
        state: MessageState | None = None
        handset = self._handsets.get(pdu.destination_addr)
        if handset is not None:
            whole = self._for_handset(mt, pdu, client.proto.loop.time())
            if whole is None:
                state = MessageState.DELIVERED  # a part the handset keeps until the others arrive
            else:
                try:
                    state = handset(whole)
                except Exception:
                    log.exception("handset %s failed on an MT message", pdu.destination_addr)
                    state = MessageState.UNDELIVERABLE
        if self.on_submit is not None:
            self._notify_submit(mt)
        if state is None:
            state = self._draw_outcome()
        self._remember(message_id, pdu.source_addr, pdu.destination_addr, state)
        wanted = pdu.registered_delivery & 0x03
        if wanted == 1 or (wanted == 2 and state is not MessageState.DELIVERED):
            self._queue_receipt(client, pdu, message_id, state)

    def _remember(
        self, message_id: str, source_addr: str, destination_addr: str, state: MessageState
    ) -> None:
        """Keep the final state of the last ``message_states`` messages for query_sm."""
        # wall-clock, as in receipts: an SMSC writes its own time (SMPP 3.4 7.1.1 absolute format)
        final_date = datetime.now(UTC).strftime("%y%m%d%H%M%S") + "000+"
        states = self._states
        states[message_id] = _StoredMessage(source_addr, destination_addr, state, final_date)
        if len(states) > self.message_states:
            del states[next(iter(states))]  # dicts keep insertion order: the oldest goes

    def _observe(self, mt: MtMessage) -> None:
        if self.record_messages:
            self.messages.append(mt)
        if self.on_submit is not None:
            self._notify_submit(mt)

    def _notify_submit(self, mt: MtMessage) -> None:
        assert self.on_submit is not None
        result = self.on_submit(mt)
        if result is not None:
            task = asyncio.ensure_future(result)
            task.add_done_callback(lambda t: t.exception())

    def _for_handset(self, mt: MtMessage, pdu: SubmitSm, now: float) -> MtMessage | None:
        """What a handset gets for this submit: the whole text once its last part is in (None before),
        or the message as it came for SIM data download and binary data."""
        if pdu.protocol_id == PID_SIM_DATA_DOWNLOAD or not self._is_text(pdu.data_coding):
            return mt
        reassembler = self._reassembler
        if len(reassembler):
            reassembler.expire(now)
        try:
            text = reassembler.add(pdu, now)
        except DecodeError as exc:
            log.info(
                "SMSC simulator: MT %s to %s is not decodable text: %s",
                mt.message_id,
                mt.destination_addr,
                exc,
            )
            return mt
        return None if text is None else replace(mt, text=text)

    def _is_text(self, data_coding: int) -> bool:
        known = self._text_codings.get(data_coding)
        if known is None:
            try:
                decode_short_message(data_coding, b"")
                known = True
            except DecodeError:
                known = False
            self._text_codings[data_coding] = known
        return known

    def _draw_outcome(self) -> MessageState:
        if len(self.outcomes) == 1:
            return _OUTCOME_STATES[next(iter(self.outcomes))]
        stats, weights = zip(*self.outcomes.items(), strict=True)
        return _OUTCOME_STATES[self._random.choices(stats, weights)[0]]

    def _queue_receipt(self, client: _Client, pdu: SubmitSm, message_id: str, state: MessageState) -> None:
        if self.personality.receipt_loss and self._random.random() < self.personality.receipt_loss:
            self.stats.receipts_lost += 1
            return
        # wall-clock stamps are what an SMSC writes into the receipt text; the engine never reads them
        stamp = datetime.now(UTC).strftime("%y%m%d%H%M")
        rid = str(int(message_id, 16)) if self.personality.receipt_ids_decimal else message_id
        stat = {v: k for k, v in _OUTCOME_STATES.items()}[state]
        receipt = DeliveryReceipt(
            id=rid,
            sub=1,
            dlvrd=1 if state is MessageState.DELIVERED else 0,
            submit_date=stamp,
            done_date=stamp,
            stat=stat,
            err="000" if state is MessageState.DELIVERED else "001",
            text=pdu.short_message[:20].decode("latin-1"),
        )
        deliver = build_receipt_pdu(
            receipt,
            source_addr=pdu.destination_addr,
            destination_addr=pdu.source_addr,
        )
        deliver = replace(
            deliver,
            source_addr_ton=pdu.dest_addr_ton,
            source_addr_npi=pdu.dest_addr_npi,
            dest_addr_ton=pdu.source_addr_ton,
            dest_addr_npi=pdu.source_addr_npi,
        )
        self._receipts.append((client.proto.loop.time() + self.receipt_delay, client.system_id, deliver))
        self._receipt_added.set()

    async def _receipt_pump(self) -> None:
        """Send due receipts in batches: one timer for all of them, not one per message. It sleeps
        until the first receipt is due (or one is queued), never polls an empty queue: on a simulated
        clock a polling timer would be a jump every few milliseconds."""
        loop = asyncio.get_running_loop()
        pending: deque[tuple[float, str, DeliverSm]] = deque()
        while True:
            if not self._receipts and not pending:
                self._receipt_added.clear()
                await self._receipt_added.wait()
            due = self._receipts[0][0] - loop.time() if self._receipts and not pending else 0.0
            await asyncio.sleep(max(0.005, due))
            now = loop.time()
            queue = self._receipts
            while queue and queue[0][0] <= now:
                pending.append(queue.popleft())
            touched: set[SessionProtocol] = set()
            retry: deque[tuple[float, str, DeliverSm]] = deque()
            while pending:
                item = pending.popleft()
                client = self._receiver_for(item[1])
                if client is None or client.proto.session.window_available <= 0:
                    retry.append(item)  # held until the ESME binds as a receiver again
                    continue
                client.proto.session.send(item[2], now)
                self.stats.receipts_sent += 1
                touched.add(client.proto)
            pending = retry
            for proto in touched:
                proto.flush()
            if pending:
                await asyncio.sleep(0.05)


def _no_gateway(system_id: str | None) -> str:
    return f"no gateway bound as receiver{f' for {system_id}' if system_id else ''} to relay USSD to"


def parse_account(spec: str) -> tuple[str, str]:
    """``SYSTEM_ID:PASSWORD`` from the command line."""
    system_id, sep, password = spec.partition(":")
    if not sep or not system_id:
        raise ConfigError(f"account {spec!r} must be SYSTEM_ID:PASSWORD")
    if len(system_id) > 15 or len(password) > 8:
        raise ConfigError(
            f"account {spec!r}: system_id is at most 15 characters and password at most 8 (SMPP 3.4)"
        )
    return system_id, password
