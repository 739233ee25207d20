"""The gateway's Diameter peer: a server (and a client) that takes Gy, Gx and Sy usage reports.

Base protocol: RFC 6733 section 5 (capabilities exchange, DPR/DPA) through the sans-I/O
``protocols.diameter.peer.DiameterPeer``, with the RFC 3539 section 3.4 watchdog kept on an
``EngineTimer``; TLS (RFC 6733 section 13) when ``DiameterSettings.tls`` is set. CEA advertises
Auth-Application-Id 4 (Gy), Vendor-Specific-Application-Id {10415, 16777238} (Gx) and
{10415, 16777302} (Sy), with a constant Origin-State-Id (PEERS.md 3.1).

Who may talk: a CER whose Origin-Host / Origin-Realm match no ``allowed_peers`` pair of fnmatch
patterns is answered CEA 3010 DIAMETER_UNKNOWN_PEER (E bit) and the connection is closed (RFC 6733
section 5.3); an empty allow-list admits nobody, ``(("*", "*"),)`` everybody.

Each request is parsed by ``protocols.diameter.credit_control.parse_request``; a refused request is
answered with its Result-Code (+ Failed-AVP) and the connection stays. An accepted one becomes
``UsageEvent``s, handed to ``await sink.take(events)``, and only THEN answered 2001: the answer
tells the network the notification is durably ours. If ``take`` raises, the answer is 3004
DIAMETER_TOO_BUSY so that the peer (or DRA) retries elsewhere. Requests are handled concurrently
(answers go out in any order; Diameter matches them by Hop-by-Hop id), at most ``max_in_flight``
per connection: beyond that reading pauses (backpressure). A broken byte stream (bad Message
Length, version) is answered when the header can be read and the connection closed (RFC 6733
section 3: the stream cannot be framed any further); a watchdog expiry closes the connection
(failover is the peer's move).

Mapping to ``UsageEvent`` (``usage_events``):

- MSISDN: Subscription-Id END_USER_E164 (for Sy an extension Subscription-Id, see
  ``SpendingStatusNotificationRequest``), held to the DPI JSON schema's rule: 5 to 15 digits
  (ITU-T E.164 section 6), a leading ``+`` stripped. A report without one, or with one that is no
  such number, yields no event (it is still answered 2001: the report is ours, it names nobody).
- Gy CCR, one event per MSCC that has a Used-Service-Unit or a Reporting-Reason:
  package_id ``rg:<Rating-Group>`` (else ``si:<Service-Identifier>``); used_bytes the USUs' octets;
  Reporting-Reason (TS 32.299 7.2.175, MSCC or USU level) QUOTA_EXHAUSTED -> EXHAUSTED; FINAL ->
  EXHAUSTED in a CCR-U/CCR-E (the final units were used up) but USAGE in a CCR-T (FINAL is also
  what every session end reports, and a detach is no exhaustion); THRESHOLD -> THRESHOLD with
  percent used/quota*100 when ``gy_quota_bytes`` knows the rating group's quota and USU octets are
  there, else ``gy_threshold_percent``; anything else USAGE. A CCR-I is not special. Gy names no
  package period and has no message for a renewal (a session starts afresh at every attach), so a new
  period of ``rg:<Rating-Group>`` must come from another source: a ``renewed`` event naming that
  package id by the JSON intake (billing's notification feed), else the trigger detector keeps the
  first period and triggers each level once.
- Gx CCR, one event per Usage-Monitoring-Information with a Used-Service-Unit (TS 29.212 4.5.17:
  sent with Event-Trigger USAGE_REPORT): USAGE, package_id ``mk:<Monitoring-Key>`` (UTF-8 when
  printable, else hex), used_bytes, and percent = used/granted*100 when the UMI also carries the
  Granted-Service-Unit (the armed threshold).
- Sy SNR, one event per Policy-Counter-Status-Report whose status ``sy_status_map`` knows
  (package_id ``pc:<Policy-Counter-Identifier>``); unknown statuses produce nothing (still 2001).
- event_time: Event-Timestamp, else the receive time. sequence: CC-Request-Number.
  event_id: ``<Session-Id>;<CC-Request-Number>;<index>`` for CCRs and
  ``<Session-Id>;e2e=<End-to-End>;<index>`` for SNRs (a retransmission keeps the End-to-End
  Identifier, RFC 6733 section 3 and 5.5.4, so a re-delivery has the same id).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import ssl
import string
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from types import MappingProxyType
from typing import cast

from campaign_core.usage import UsageEvent, UsageKind
from gateway.ingest import EventSink
from gateway.timers import EngineTimer
from protocols.diameter import codec
from protocols.diameter.codec import HEADER_LENGTH, CommandFlag, Message, ResultCode, record_maker
from protocols.diameter.credit_control import (
    CREDIT_CONTROL,
    GX_APPLICATION_ID,
    GY_APPLICATION_ID,
    SPENDING_STATUS_NOTIFICATION,
    SY_APPLICATION_ID,
    CcRequestType,
    CreditControlRequest,
    GrantedServiceUnit,
    MultipleServicesCreditControl,
    ReportingReason,
    Request,
    ServiceUnit,
    SpendingStatusNotificationRequest,
    UsageMonitoringInformation,
    answer,
    answer_services,
    encode_answer,
    error_answer,
    parse_request,
)
from protocols.diameter.dictionary import VENDOR_3GPP, find, lookup_command, value_of
from protocols.diameter.peer import (
    AnswerReceived,
    CapabilitiesExchanged,
    CapabilitiesExchangeFailed,
    DiameterPeer,
    Event,
    PeerDisconnected,
    PeerState,
    RequestReceived,
    UnexpectedAnswer,
    WatchdogExpired,
)
from protocols.errors import DecodeError, LocalProtocolError, RemoteProtocolError, TransportError

__all__ = [
    "DEFAULT_SY_STATUS_MAP",
    "DiameterClient",
    "DiameterServer",
    "DiameterSettings",
    "usage_events",
]

log = logging.getLogger(__name__)

CER = 257
DISCONNECT_REBOOTING = 0
_U32 = 0xFFFFFFFF

DEFAULT_SY_STATUS_MAP: Mapping[str, tuple[UsageKind, float | None]] = MappingProxyType(
    {
        "threshold-90": (UsageKind.THRESHOLD, 90.0),
        "exhausted": (UsageKind.EXHAUSTED, None),
        "payg": (UsageKind.PAYG_STARTED, None),
        "valid": (UsageKind.RENEWED, None),
    }
)


def _boot_state_id() -> int:
    return int(time.time()) & _U32


@dataclass(frozen=True, slots=True, kw_only=True)
class DiameterSettings:
    """Our identity, who may connect, timers, and how reports map to ``UsageEvent``."""

    origin_host: str
    origin_realm: str
    host: str = "127.0.0.1"
    port: int = 3868
    allowed_peers: tuple[tuple[str, str], ...] = ()
    """(Origin-Host pattern, Origin-Realm pattern) pairs, fnmatch syntax; empty admits nobody."""
    tls: ssl.SSLContext | None = None
    watchdog_interval: float = 30.0
    """Tw of RFC 3539 section 3.4.1."""
    product_name: str = "telecom-campaign-gateway"
    vendor_id: int = 0
    origin_state_id: int = field(default_factory=_boot_state_id)
    """Constant for the life of the process (PEERS.md 3.1: a changing one resets freeDiameter)."""
    host_ip_addresses: tuple[IPv4Address | IPv6Address, ...] = ()
    """Host-IP-Address of CER/CEA; empty: the connection's local address."""
    cer_timeout: float = 10.0
    """A connection that has not completed the capabilities exchange by then is closed."""
    max_in_flight: int = 256
    """Requests per connection handled at once; beyond that reading pauses."""
    max_message_length: int = 65536
    disconnect_timeout: float = 2.0
    """How long ``stop`` waits for DPAs (and in-flight answers)."""
    request_timeout: float = 10.0
    """``DiameterClient.request`` gives up after this long without an answer."""
    reconnect_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    reject_unknown_mandatory: bool = True
    """False accepts unknown M-bit AVPs (a DRA copy stream; PROTOCOLS.md 1.4)."""
    gy_threshold_percent: float = 90.0
    gy_quota_bytes: Mapping[int, int] = field(default_factory=dict)
    """Package quota per Rating-Group, to turn a THRESHOLD report's USU into a percentage."""
    gy_grant_octets: int | None = None
    """When set, an MSCC with a Requested-Service-Unit is answered with this Granted-Service-Unit."""
    sy_status_map: Mapping[str, tuple[UsageKind, float | None]] = field(
        default_factory=lambda: DEFAULT_SY_STATUS_MAP
    )

    def admits(self, origin_host: str, origin_realm: str) -> bool:
        # DiameterIdentity is an FQDN: compared without regard to case (RFC 4343)
        host_name, realm_name = origin_host.lower(), origin_realm.lower()
        return any(
            fnmatch.fnmatchcase(host_name, host.lower()) and fnmatch.fnmatchcase(realm_name, realm.lower())
            for host, realm in self.allowed_peers
        )


# --- mapping ---------------------------------------------------------------------------------------

_PRINTABLE = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")


def _monitoring_key(key: bytes | None) -> str:
    if key is None:
        return "mk:"
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return f"mk:{key.hex()}"
    return f"mk:{text}" if text and all(c in _PRINTABLE for c in text) else f"mk:{key.hex()}"


# Enum members read once: an attribute of an enum class costs some 0.1 us (Python 3.11: EnumType's
# __getattr__ takes every class attribute lookup off the fast path), and the mapping runs per report.
_TERMINATION = CcRequestType.TERMINATION_REQUEST
_QUOTA_EXHAUSTED = ReportingReason.QUOTA_EXHAUSTED
_FINAL = ReportingReason.FINAL
_THRESHOLD = ReportingReason.THRESHOLD
_EXHAUSTED_KIND = UsageKind.EXHAUSTED
_THRESHOLD_KIND = UsageKind.THRESHOLD
_USAGE_KIND = UsageKind.USAGE
_SUCCESS = ResultCode.DIAMETER_SUCCESS

# every event is made through this: UsageEvent itself, or with the Diameter C accelerator a Maker that
# sets its slots in C (codec.record_maker; the frozen dataclass's __init__ costs some 2 us per event)
_new_event = record_maker(UsageEvent)


def _octets(units: Iterable[ServiceUnit]) -> int | None:
    total: int | None = None
    for unit in units:
        octets = unit.octets
        if octets is not None:
            total = (total or 0) + octets
    return total


def _gy_events(
    request: CreditControlRequest, msisdn: str, event_time: float, settings: DiameterSettings
) -> list[UsageEvent]:
    events: list[UsageEvent] = []
    final_exhausts = request.cc_request_type is not _TERMINATION
    for index, service in enumerate(request.multiple_services_credit_control):
        reasons = service.reporting_reasons
        if not service.used_service_unit and not reasons:
            continue
        package = _gy_package(service)
        if package is None:
            continue
        used = _octets(service.used_service_unit)
        quota = (
            settings.gy_quota_bytes.get(service.rating_group) if service.rating_group is not None else None
        )
        percent: float | None = None
        if _QUOTA_EXHAUSTED in reasons or (_FINAL in reasons and final_exhausts):
            kind = _EXHAUSTED_KIND
        elif _THRESHOLD in reasons:
            kind = _THRESHOLD_KIND
            if quota and used is not None:
                percent = min(100.0, used * 100.0 / quota)
            else:
                percent = settings.gy_threshold_percent
        else:
            kind = _USAGE_KIND
        events.append(
            _new_event(
                event_id=f"{request.session_id};{request.cc_request_number};{index}",
                msisdn=msisdn,
                kind=kind,
                package_id=package,
                event_time=event_time,
                source="diameter:gy",
                sequence=request.cc_request_number,
                used_bytes=used,
                quota_bytes=quota,
                percent=percent,
            )
        )
    return events


def _gy_package(service: MultipleServicesCreditControl) -> str | None:
    if service.rating_group is not None:
        return f"rg:{service.rating_group}"
    if service.service_identifier:
        return f"si:{service.service_identifier[0]}"
    return None


def _gx_events(request: CreditControlRequest, msisdn: str, event_time: float) -> list[UsageEvent]:
    events: list[UsageEvent] = []
    for index, info in enumerate(request.usage_monitoring_information):
        if not info.used_service_unit:
            continue
        used = _octets(info.used_service_unit)
        events.append(
            _new_event(
                event_id=f"{request.session_id};{request.cc_request_number};{index}",
                msisdn=msisdn,
                kind=_USAGE_KIND,
                package_id=_monitoring_key(info.monitoring_key),
                event_time=event_time,
                source="diameter:gx",
                sequence=request.cc_request_number,
                used_bytes=used,
                percent=_gx_percent(info, used),
            )
        )
    return events


def _gx_percent(info: UsageMonitoringInformation, used: int | None) -> float | None:
    granted = _octets(info.granted_service_unit)
    if used is None or not granted:
        return None
    return used * 100.0 / granted


def _sy_events(
    request: SpendingStatusNotificationRequest,
    msisdn: str,
    event_time: float,
    end_to_end: int,
    settings: DiameterSettings,
) -> list[UsageEvent]:
    events: list[UsageEvent] = []
    for index, report in enumerate(request.policy_counter_status_report):
        mapped = settings.sy_status_map.get(report.policy_counter_status)
        if mapped is None:
            log.info(
                "Sy status %r of counter %r is not mapped: no event",
                report.policy_counter_status,
                report.policy_counter_identifier,
            )
            continue
        kind, percent = mapped
        events.append(
            _new_event(
                event_id=f"{request.session_id};e2e={end_to_end:08x};{index}",
                msisdn=msisdn,
                kind=kind,
                package_id=f"pc:{report.policy_counter_identifier}",
                event_time=event_time,
                source="diameter:sy",
                percent=percent,
            )
        )
    return events


def usage_events(
    request: Request, message: Message, received_at: float, settings: DiameterSettings
) -> list[UsageEvent]:
    """The ``UsageEvent``s a parsed request reports (the mapping of the module docstring)."""
    msisdn = request.msisdn
    if msisdn is None:
        log.info("Diameter request %s names no END_USER_E164 subscriber: no event", request.session_id)
        return []
    if msisdn[:1] == "+":
        msisdn = msisdn[1:]
    # str.isdigit alone takes other scripts' digits ("²", "٣"): isascii keeps it to 0-9, both in C
    if not (5 <= len(msisdn) <= 15 and msisdn.isascii() and msisdn.isdigit()):
        log.warning(
            "Diameter request %s: END_USER_E164 %r is no E.164 number: no event", request.session_id, msisdn
        )
        return []
    if isinstance(request, SpendingStatusNotificationRequest):
        return _sy_events(request, msisdn, received_at, message.end_to_end, settings)
    stamp = request.event_timestamp
    event_time = received_at if stamp is None else stamp.timestamp()
    if request.is_gx:
        return _gx_events(request, msisdn, event_time)
    return _gy_events(request, msisdn, event_time, settings)


# --- one connection --------------------------------------------------------------------------------


class _Endpoint:
    """What the server and the client share: settings, sink, counters, request handling."""

    def __init__(self, settings: DiameterSettings, sink: EventSink | None) -> None:
        self.settings = settings
        self.sink = sink
        self.answers: Counter[tuple[int, int]] = Counter()
        self._connections: set[_Connection] = set()
        self._granted = (
            None
            if settings.gy_grant_octets is None
            else GrantedServiceUnit(cc_total_octets=settings.gy_grant_octets)
        )

    @property
    def open_peers(self) -> list[tuple[str, str]]:
        """(Origin-Host, Origin-Realm) of every connection past the capabilities exchange."""
        return [
            (c.peer.peer_host or "", c.peer.peer_realm or "")
            for c in self._connections
            if c.peer.state is PeerState.OPEN
        ]

    def _new_peer(self, role: str, local: IPv4Address | IPv6Address | None) -> DiameterPeer:
        settings = self.settings
        addresses = settings.host_ip_addresses or (
            (local,) if local is not None else (IPv4Address("127.0.0.1"),)
        )
        supported = (
            {
                (GY_APPLICATION_ID, CREDIT_CONTROL),
                (GX_APPLICATION_ID, CREDIT_CONTROL),
                (SY_APPLICATION_ID, SPENDING_STATUS_NOTIFICATION),
            }
            if self.sink is not None
            else set()
        )
        return DiameterPeer(
            role,
            settings.origin_host,
            settings.origin_realm,
            host_ip_addresses=addresses,
            vendor_id=settings.vendor_id,
            product_name=settings.product_name,
            origin_state_id=settings.origin_state_id,
            auth_application_ids=(GY_APPLICATION_ID,),
            vendor_specific_applications=((VENDOR_3GPP, GX_APPLICATION_ID), (VENDOR_3GPP, SY_APPLICATION_ID)),
            supported_vendor_ids=(VENDOR_3GPP,),
            supported_commands=supported,
            watchdog_interval=settings.watchdog_interval,
            max_message_length=settings.max_message_length,
        )

    def _opened(self, connection: _Connection) -> None:
        """Hook: a connection finished its capabilities exchange."""

    def _closed(self, connection: _Connection) -> None:
        self._connections.discard(connection)

    def _answer(self, connection: _Connection, reply: Message, status: int) -> None:
        code = reply.command_code
        # the code of an error answer is the peer's (any 24 bits, even before a CER): the tally keeps
        # the dictionary's commands and folds the rest into -1, so it cannot grow without bound
        self.answers[code if lookup_command(code) is not None else -1, int(status)] += 1
        connection.write_answer(codec.encode(reply))

    async def handle_batch(self, connection: _Connection, batch: list[tuple[Message, Request]]) -> None:
        """Take the events of ``batch`` in one ``sink.take``, then answer every request."""
        settings = self.settings
        received_at = time.time()
        events: list[UsageEvent] = []
        for message, request in batch:
            events += usage_events(request, message, received_at, settings)
        status = _SUCCESS
        if events:
            assert self.sink is not None  # no sink: the engine refuses the commands (3001)
            try:
                await self.sink.take(events)
            except Exception as exc:  # any failure to take means "not ours": the peer must retry
                log.warning(
                    "sink refused %d events from %s: %s; answering 3004", len(events), connection.name, exc
                )
                status = ResultCode.DIAMETER_TOO_BUSY
        granted = self._granted
        host, realm = settings.origin_host, settings.origin_realm
        success = status == _SUCCESS
        status_code = int(status)
        answers: list[bytes] = []
        for message, request in batch:
            services: Sequence[MultipleServicesCreditControl] = ()
            if success and isinstance(request, CreditControlRequest) and not request.is_gx:
                services = answer_services(request, status, granted)
            answers.append(
                encode_answer(
                    message,
                    status,
                    origin_host=host,
                    origin_realm=realm,
                    multiple_services_credit_control=services,
                )
            )
            self.answers[message.command_code, status_code] += 1
        connection.write_answer(b"".join(answers))  # the batch's answers in one go

    def refuse(self, connection: _Connection, message: Message, error: RemoteProtocolError) -> None:
        log.info(
            "refused request %d from %s: %s (%d)", message.command_code, connection.name, error, error.status
        )
        reply = error_answer(
            message, error, origin_host=self.settings.origin_host, origin_realm=self.settings.origin_realm
        )
        self._answer(connection, reply, error.status or ResultCode.DIAMETER_UNABLE_TO_COMPLY)


class _Connection(asyncio.Protocol):
    """asyncio transport <-> ``DiameterPeer``: framing, allow-list, timers, request dispatch."""

    def __init__(self, endpoint: _Endpoint, role: str) -> None:
        self.endpoint = endpoint
        self.role = role
        self.loop = asyncio.get_running_loop()
        self.peer: DiameterPeer = endpoint._new_peer(role, None)
        self.transport: asyncio.Transport | None = None
        self.name = "?"
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.opened: asyncio.Future[None] = self.loop.create_future()
        self._buffer = bytearray()
        self._out = bytearray()
        self._flush_pending = False
        self._in_flight = 0
        self._reading_paused = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: dict[int, asyncio.Future[Message]] = {}
        # a lambda, not the bound method: connection_made replaces the engine
        self._timer = EngineTimer(self.loop, lambda: self.peer.get_timer(), self._on_timer)  # noqa: PLW0108
        self._cer_timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peername = transport.get_extra_info("peername")
        self.name = f"{peername[0]}:{peername[1]}" if peername else "?"
        sockname = transport.get_extra_info("sockname")
        local = None
        if sockname:
            with contextlib.suppress(ValueError):
                local = ip_address(sockname[0])
        self.peer = self.endpoint._new_peer(self.role, local)
        self.endpoint._connections.add(self)
        self._cer_timer = self.loop.call_later(self.endpoint.settings.cer_timeout, self._cer_timed_out)
        if self.role == "initiator":
            self.peer.start(self.loop.time())
            self.flush()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._process()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.cancel()
        if self._cer_timer is not None:
            self._cer_timer.cancel()
        if self.peer.state is PeerState.OPEN:
            log.info("Diameter peer %s (%s) disconnected", self.peer.peer_host, self.name)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(TransportError(f"connection to {self.name} lost"))
        self._pending.clear()
        if not self.opened.done():
            self.opened.set_exception(TransportError(f"connection to {self.name} closed before CEA"))
            self.opened.exception()  # retrieved here: nobody may be waiting
        if not self.closed.done():
            self.closed.set_result(None)
        self.endpoint._closed(self)

    # --- input ---

    def _process(self) -> None:
        now = self.loop.time()
        buffer = self._buffer
        limit = self.endpoint.settings.max_in_flight
        batch: list[tuple[Message, Request]] = []
        offset = 0  # octets of the buffer handed to the engine so far (deleted once, at the end)
        while self.transport is not None and not self.transport.is_closing():
            # The engine takes a run of whole frames in one call, at most one frame per request that
            # may still start (a frame is at most one request), so max_in_flight holds. Until the
            # capabilities exchange it takes one frame at a time: the CER must pass the allow-list first.
            room = limit - self._in_flight - len(batch)
            admitting = self.role == "responder" and self.peer.state is PeerState.CLOSED
            if admitting:
                room = min(room, 1)
            stop, broken = self._frames(offset, room)
            if stop > offset:
                chunk = bytes(memoryview(buffer)[offset:stop])  # one copy (a slice would be two)
                offset = stop
                if admitting and not self._admit(chunk):
                    break
                try:
                    self.peer.receive_data(chunk, now)
                except RemoteProtocolError as exc:
                    log.warning("Diameter peer %s broke the protocol: %s; closing", self.name, exc)
                    self._drain_events(batch)  # the requests before the broken frame
                    self.close()
                    break
                self._drain_events(batch)
            elif broken is None:
                break
            if broken is not None:
                if self.transport is not None and not self.transport.is_closing():
                    self._broken_stream(broken, offset)
                break
        del buffer[:offset]
        if batch:
            self._in_flight += len(batch)
            task = self.loop.create_task(self._run_batch(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._pause_if_busy()
        self.flush()

    def _frames(self, offset: int, room: int) -> tuple[int, DecodeError | None]:
        """Where the run of at most ``room`` whole frames from ``offset`` ends, and why the stream
        cannot be framed there (None when it can, or when the frame there is not whole yet)."""
        buffer = self._buffer
        end = len(buffer)
        max_length = self.peer.max_message_length
        while room > 0:
            try:
                length = codec.message_length(buffer, offset)
            except DecodeError as exc:
                return offset, exc
            if length is not None and length > max_length:
                error = DecodeError(
                    f"message of {length} octets over the limit", ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH
                )
                return offset, error
            if length is None or end - offset < length:
                break
            offset += length
            room -= 1
        return offset, None

    def _pause_if_busy(self) -> None:
        busy = self._in_flight >= self.endpoint.settings.max_in_flight
        if self.transport is None or self.transport.is_closing() or busy == self._reading_paused:
            return
        self._reading_paused = busy
        if busy:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    async def _run_batch(self, batch: list[tuple[Message, Request]]) -> None:
        try:
            await self.endpoint.handle_batch(self, batch)
        finally:
            self._in_flight -= len(batch)
            if self._buffer and self._in_flight < self.endpoint.settings.max_in_flight:
                self._process()
            else:
                self._pause_if_busy()

    def _broken_stream(self, exc: DecodeError, at: int) -> None:
        """RFC 6733 section 7.1.5 (5015) / 7.1.3: answer what the header lets us answer, then close."""
        header = bytes(self._buffer[at : at + HEADER_LENGTH])
        self._buffer.clear()
        log.warning("Diameter stream from %s cannot be framed: %s (%d); closing", self.name, exc, exc.status)
        if len(header) == HEADER_LENGTH and header[4] & CommandFlag.REQUEST:
            request = Message(
                command_flags=header[4] & ~CommandFlag.ERROR,
                command_code=int.from_bytes(header[5:8], "big"),
                application_id=int.from_bytes(header[8:12], "big"),
                hop_by_hop=int.from_bytes(header[12:16], "big"),
                end_to_end=int.from_bytes(header[16:20], "big"),
            )
            self.endpoint.refuse(self, request, exc)
        self.close()

    def _admit(self, frame: bytes) -> bool:
        """Check the first CER against the allow-list; refuse with CEA 3010 (RFC 6733 section 5.3)."""
        try:
            message = codec.decode(frame)
            host_avp, realm_avp = find(message, "Origin-Host"), find(message, "Origin-Realm")
            if not message.is_request or message.command_code != CER or host_avp is None or realm_avp is None:
                return True  # the engine answers what is wrong with it
            host, realm = value_of(host_avp), value_of(realm_avp)
        except DecodeError:
            return True
        if isinstance(host, str) and isinstance(realm, str) and self.endpoint.settings.admits(host, realm):
            return True
        log.warning("CER from unknown peer %s / %s (%s): CEA 3010", host, realm, self.name)
        settings = self.endpoint.settings
        reply = answer(
            message,
            ResultCode.DIAMETER_UNKNOWN_PEER,
            origin_host=settings.origin_host,
            origin_realm=settings.origin_realm,
            origin_state_id=settings.origin_state_id,
            error_message="peer not in the allow-list",
        )
        self.endpoint._answer(self, reply, ResultCode.DIAMETER_UNKNOWN_PEER)
        self.close()
        return False

    def _drain_events(self, batch: list[tuple[Message, Request]]) -> None:
        while (event := self.peer.next_event()) is not None:
            self._on_event(event, batch)

    def _on_event(self, event: Event, batch: list[tuple[Message, Request]]) -> None:
        if isinstance(event, RequestReceived):
            message = event.message
            try:
                request = parse_request(
                    message, reject_unknown_mandatory=self.endpoint.settings.reject_unknown_mandatory
                )
            except RemoteProtocolError as exc:
                self.endpoint.refuse(self, message, exc)
                return
            batch.append((message, request))
        elif isinstance(event, AnswerReceived):
            future = self._pending.pop(event.request.hop_by_hop, None)
            if future is not None and not future.done():
                future.set_result(event.answer)
        elif isinstance(event, CapabilitiesExchanged):
            log.info(
                "Diameter peer %s / %s open on %s (apps %s)",
                event.peer_host,
                event.peer_realm,
                self.name,
                event.application_ids,
            )
            if self._cer_timer is not None:
                self._cer_timer.cancel()
            if not self.opened.done():
                self.opened.set_result(None)
            self.endpoint._opened(self)
        elif isinstance(event, CapabilitiesExchangeFailed):
            log.warning("capabilities exchange with %s failed: %d", self.name, event.result_code)
            self.close()
        elif isinstance(event, WatchdogExpired):
            log.warning(
                "Diameter peer %s (%s) silent for 2 Tw: watchdog expired, closing",
                self.peer.peer_host,
                self.name,
            )
            self.close()
        elif isinstance(event, PeerDisconnected):
            log.info(
                "Diameter peer %s (%s) disconnected (cause %d)", self.peer.peer_host, self.name, event.cause
            )
            self.close()
        elif isinstance(event, UnexpectedAnswer):
            log.info("answer %d from %s matches no request", event.answer.hop_by_hop, self.name)
        # ConnectionLost: connection_lost does the bookkeeping

    # --- output ---

    def write_answer(self, octets: bytes) -> None:
        """Queue an answer (not through the engine: answers touch no engine state, and in-flight
        answers must still go out while a DPR is pending). One write per event-loop turn."""
        self._out += octets
        self.schedule_flush()

    def schedule_flush(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_pending = False
        data = self.peer.data_to_send()
        if self._out:
            data += bytes(self._out)
            self._out.clear()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
        self._timer.arm()

    def send_request(self, message: Message) -> asyncio.Future[Message]:
        future: asyncio.Future[Message] = self.loop.create_future()
        hop_by_hop = self.peer.send(message, self.loop.time())
        self._pending[hop_by_hop] = future
        self.flush()
        return future

    def forget(self, future: asyncio.Future[Message]) -> None:
        for hop_by_hop, pending in list(self._pending.items()):
            if pending is future:
                del self._pending[hop_by_hop]

    def disconnect(self, cause: int) -> None:
        if self.peer.state is PeerState.OPEN:
            self.peer.disconnect(self.loop.time(), cause)
            self.flush()
        else:
            self.close()

    def _on_timer(self, now: float) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.peer.handle_timer(now)
        self._drain_events([])
        self.flush()

    def _cer_timed_out(self) -> None:
        if self.peer.state is not PeerState.OPEN:
            log.warning(
                "no capabilities exchange with %s within %.1f s: closing",
                self.name,
                self.endpoint.settings.cer_timeout,
            )
            self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.flush()
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def settle(self, timeout: float) -> None:
        """Wait (at most ``timeout``) for in-flight requests, then cancel what is left."""
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()


# --- server and client -----------------------------------------------------------------------------


class DiameterServer(_Endpoint):
    """Listens for Diameter peers (DRA, PCEF, OCS) and ingests their usage reports."""

    def __init__(self, settings: DiameterSettings, sink: EventSink) -> None:
        super().__init__(settings, sink)
        self._server: asyncio.Server | None = None

    async def start(self) -> tuple[str, int]:
        """Listen on ``settings.host``/``port`` (0: any free port); returns the bound address."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self, "responder"),
            self.settings.host,
            self.settings.port,
            ssl=self.settings.tls,
        )
        address = self._server.sockets[0].getsockname()
        log.info("Diameter server %s listening on %s:%d", self.settings.origin_host, address[0], address[1])
        return str(address[0]), int(address[1])

    async def stop(self, cause: int = DISCONNECT_REBOOTING) -> None:
        """Stop listening, DPR every open peer, wait briefly for DPAs and in-flight answers, close."""
        if self._server is not None:
            self._server.close()
        await _shut(list(self._connections), cause, self.settings.disconnect_timeout)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None


async def _shut(connections: list[_Connection], cause: int, timeout: float) -> None:
    for connection in connections:
        await connection.settle(timeout)
    for connection in connections:
        connection.disconnect(cause)
    if connections:
        await asyncio.wait([c.closed for c in connections], timeout=timeout)
    for connection in connections:
        if not connection.closed.done():
            connection.abort()
    if connections:
        await asyncio.wait([c.closed for c in connections], timeout=timeout)


class DiameterClient(_Endpoint):
    """Connects out to one peer (we send the CER), reconnects with back-off, sends requests.

    With a sink it ingests the peer's requests like the server does; without one (the network
    simulator sending CCRs) it refuses requests with 3001.
    """

    def __init__(
        self,
        settings: DiameterSettings,
        peer_host: str,
        peer_port: int,
        sink: EventSink | None = None,
        *,
        server_hostname: str | None = None,
    ) -> None:
        super().__init__(settings, sink)
        self.peer_host = peer_host
        self.peer_port = peer_port
        self.server_hostname = server_hostname
        self.connects = 0
        """Connections made so far (each one a CER), for observing reconnects."""
        self._connection: _Connection | None = None
        self._open = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    async def start(self) -> None:
        """Start connecting (in the background); ``wait_open`` waits for the CEA."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def wait_open(self, timeout: float | None = None) -> None:
        try:
            await asyncio.wait_for(self._open.wait(), timeout)
        except TimeoutError:
            raise TransportError(
                f"no open Diameter connection to {self.peer_host}:{self.peer_port}"
            ) from None

    async def request(self, message: Message, timeout: float | None = None) -> Message:
        """Send ``message`` (ids assigned by the engine) and return its answer; ``TransportError``
        when no connection opens or no answer comes within ``timeout`` (``request_timeout``)."""
        limit = self.settings.request_timeout if timeout is None else timeout
        deadline = asyncio.get_running_loop().time() + limit
        await self.wait_open(limit)
        connection = self._connection
        if connection is None or connection.peer.state is not PeerState.OPEN:
            raise TransportError("the Diameter connection closed")
        try:
            future = connection.send_request(message)
        except LocalProtocolError as exc:
            raise TransportError(f"cannot send: {exc}") from exc
        try:
            return await asyncio.wait_for(future, max(0.0, deadline - asyncio.get_running_loop().time()))
        except TimeoutError:
            connection.forget(future)
            raise TransportError(
                f"no answer from {self.peer_host}:{self.peer_port} within {limit} s"
            ) from None

    async def stop(self, cause: int = DISCONNECT_REBOOTING) -> None:
        """DPR the peer, wait briefly for the DPA, stop reconnecting."""
        self._stopping = True
        connections = [self._connection] if self._connection is not None else []
        await _shut(connections, cause, self.settings.disconnect_timeout)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _opened(self, connection: _Connection) -> None:
        self._open.set()

    def _closed(self, connection: _Connection) -> None:
        super()._closed(connection)
        self._open.clear()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        delay = settings.reconnect_delay
        while not self._stopping:
            try:
                _transport, connection = await loop.create_connection(
                    lambda: _Connection(self, "initiator"),
                    self.peer_host,
                    self.peer_port,
                    ssl=settings.tls,
                    server_hostname=(self.server_hostname or self.peer_host) if settings.tls else None,
                )
            except OSError as exc:
                log.info(
                    "cannot connect to %s:%d: %s; retrying in %.1f s",
                    self.peer_host,
                    self.peer_port,
                    exc,
                    delay,
                )
            else:
                self.connects += 1
                self._connection = connection
                await connection.closed
                if connection.opened.done() and not connection.opened.exception():
                    delay = settings.reconnect_delay  # it worked for a while: start the back-off again
            if self._stopping:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.reconnect_max_delay)
