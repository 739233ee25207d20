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

Failure personalities, by name (``throttle:50`` sets the parameter): happy, throttle (above N TPS),
blackhole (binds, then never answers), slow (answers after a delay), disconnect (drops the
connection every N PDUs), nack (generic_nack every N submits), lossy-receipts (each receipt lost
with probability p), mixed-ids (message ids hex in submit_sm_resp, decimal in receipts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from gateway.smpp.connection import SessionProtocol
from protocols._fast import fast_constructor
from protocols.errors import ConfigError, DecodeError
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

__all__ = ["MtMessage", "Personality", "SmscSimulator", "parse_personality"]

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
    invalid: int = 0
    unbinds: int = 0  # sessions the ESME ended with unbind (a clean close), not by dropping the link


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
        self._receipt_task: asyncio.Task[None] | None = None
        self._mo_waiters: dict[tuple[int, int], asyncio.Future[int]] = {}
        p = self.personality
        self._straight = not (p.blackhole or p.response_delay or p.disconnect_every)
        # recent MT traffic, for tests and testers; a load run turns it off to keep the hot path lean
        self.record_messages = record_messages
        self.messages: deque[MtMessage] = deque(maxlen=10_000)
        self.on_submit: Callable[[MtMessage], Awaitable[None] | None] | None = None

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
        if self._receipt_task is not None:
            self._receipt_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._receipt_task
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
        """Send a deliver_sm / data_sm to a bound ESME and wait for its response status."""
        client = self._receiver_for(system_id)
        if client is None:
            raise ConnectionError(f"no ESME bound as receiver{f' for {system_id}' if system_id else ''}")
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
            session.answer(
                pdu, 0, message_id=pdu.message_id, final_date="", message_state=MessageState.DELIVERED
            )
        elif isinstance(pdu, CancelSm | ReplaceSm):
            session.answer(pdu, 0)
        else:
            session.answer(
                pdu, S.ESME_RINVCMDID, **({"message_id": None} if hasattr(pdu, "short_message") else {})
            )
        proto.schedule_flush()

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
            result = self.on_submit(mt)
            if result is not None:
                task = asyncio.ensure_future(result)
                task.add_done_callback(lambda t: t.exception())
        if state is None:
            state = self._draw_outcome()
        wanted = pdu.registered_delivery & 0x03
        if wanted == 1 or (wanted == 2 and state is not MessageState.DELIVERED):
            self._queue_receipt(client, pdu, message_id, state)

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

    async def _receipt_pump(self) -> None:
        """Send due receipts in batches: one timer for all of them, not one per message."""
        loop = asyncio.get_running_loop()
        pending: deque[tuple[float, str, DeliverSm]] = deque()
        while True:
            await asyncio.sleep(0.005)
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
