"""Network simulator (PCEF / OCS / DPI side): meters data use and reports it the way a network does.

``UsageMeter`` keeps each subscriber's data package (quota, use, period) and turns use into the
notifications a real network sends: a threshold report when use crosses a configured share of the
quota (90 %), an exhaustion report (and the switch to pay-as-you-go) when the quota is used up, and a
renewal when a new period starts. It is deterministic and reads no clock: ``now`` is passed in.

Each ``Notification`` can be rendered in every dialect the gateway ingests:

- Diameter Gy/Ro (RFC 4006, 3GPP TS 32.299): a CCR-U whose Multiple-Services-Credit-Control reports
  the Used-Service-Unit with Reporting-Reason THRESHOLD (0) or QUOTA_EXHAUSTED (3);
- Diameter Gx (3GPP TS 29.212 section 4.5.17): a CCR-U with Event-Trigger USAGE_REPORT and a
  Usage-Monitoring-Information per Monitoring-Key;
- Diameter Sy (3GPP TS 29.219 section 4.5.3): an SNR whose Policy-Counter-Status-Report carries the
  counter's new status ("threshold-90", "exhausted", "valid");
- DPI JSON (the gateway's ``POST /v1/events`` and MQTT schema): one object per notification.

The emitters that put them on the wire (``HttpEmitter``, ``MqttEmitter``, ``DiameterEmitter``) live
here too, so load tests, the demo and the benchmarks drive the gateway exactly as a network would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import aiohttp
import aiomqtt

from gateway.ingest.diameter import DiameterClient
from protocols.diameter.codec import Message, ResultCode
from protocols.diameter.credit_control import (
    CcRequestType,
    GrantedServiceUnit,
    MultipleServicesCreditControl,
    PolicyCounterStatusReport,
    ReportingReason,
    RequestedServiceUnit,
    UsageMonitoringInformation,
    UsageMonitoringLevel,
    UsedServiceUnit,
    build_gx_ccr_update,
    build_gy_ccr,
    build_sy_snr,
    result_code,
)
from protocols.errors import TransportError

__all__ = [
    "DiameterDialect",
    "DiameterEmitter",
    "HttpEmitter",
    "MqttEmitter",
    "Notification",
    "NotificationKind",
    "Package",
    "UsageMeter",
    "Workload",
    "population",
    "run_workload",
]


class NotificationKind(StrEnum):
    """What the network reports (the DPI JSON ``kind`` values)."""

    USAGE = "usage"
    THRESHOLD = "threshold"
    EXHAUSTED = "exhausted"
    RENEWED = "renewed"


@dataclass(slots=True)
class Package:
    """One subscriber's data package as the PCEF/OCS meters it."""

    msisdn: str
    package_id: str
    quota_bytes: int
    used_bytes: int = 0
    period: int = 1
    sequence: int = 0
    thresholds_reported: set[int] = field(default_factory=set)
    exhausted: bool = False


@dataclass(frozen=True, slots=True)
class Notification:
    """One usage notification, before it is put in a dialect."""

    kind: NotificationKind
    msisdn: str
    package_id: str
    period: int
    sequence: int
    used_bytes: int
    quota_bytes: int
    percent: float
    time: float
    threshold: int | None = None
    """For THRESHOLD: the highest configured threshold this crossing reached (90)."""

    @property
    def event_id(self) -> str:
        return f"{self.msisdn}:{self.package_id}:{self.period}:{self.sequence}"

    def to_json(self) -> dict[str, object]:
        """The DPI JSON event (the schema of ``gateway.ingest.schema``)."""
        return {
            "event_id": self.event_id,
            "msisdn": self.msisdn,
            "kind": self.kind.value,
            "package_id": self.package_id,
            "timestamp": datetime.fromtimestamp(self.time, UTC).isoformat(),
            "sequence": self.sequence,
            "used_bytes": self.used_bytes,
            "quota_bytes": self.quota_bytes,
            "percent": round(self.percent, 3),
            "period": str(self.period),
        }

    def to_json_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()


class UsageMeter:
    """Meters data use per subscriber package and yields the notifications a network sends.

    ``thresholds`` are the shares of the quota (in percent) that are reported once per period;
    ``report_usage`` adds a plain USAGE notification for every metering step that crosses nothing
    (an interim report), which is how a DPI feed looks under load.
    """

    def __init__(self, thresholds: Sequence[int] = (90,), *, report_usage: bool = False) -> None:
        if any(not 0 < t < 100 for t in thresholds):
            raise ValueError("thresholds must be between 0 and 100 (exclusive)")
        self.thresholds = tuple(sorted(set(thresholds)))
        self.report_usage = report_usage
        self.packages: dict[str, Package] = {}

    def subscribe(self, msisdn: str, package_id: str, quota_bytes: int) -> Package:
        if quota_bytes <= 0:
            raise ValueError("quota_bytes must be positive")
        package = Package(msisdn, package_id, quota_bytes)
        self.packages[msisdn] = package
        return package

    def use(self, msisdn: str, octets: int, now: float) -> list[Notification]:
        """``msisdn`` used ``octets`` more; returns the notifications this crosses (maybe none)."""
        package = self.packages[msisdn]
        if package.exhausted:
            return []  # on pay-as-you-go: the package's quota is no longer metered
        before = package.used_bytes
        package.used_bytes = min(package.quota_bytes, before + octets)
        out: list[Notification] = []
        if package.used_bytes >= package.quota_bytes:
            package.exhausted = True
            package.thresholds_reported.update(self.thresholds)
            out.append(self._notify(package, NotificationKind.EXHAUSTED, now))
            return out
        percent = 100.0 * package.used_bytes / package.quota_bytes
        crossed = [t for t in self.thresholds if t <= percent and t not in package.thresholds_reported]
        if crossed:
            package.thresholds_reported.update(crossed)
            out.append(self._notify(package, NotificationKind.THRESHOLD, now, max(crossed)))
        elif self.report_usage and package.used_bytes != before:
            out.append(self._notify(package, NotificationKind.USAGE, now))
        return out

    def renew(self, msisdn: str, now: float, quota_bytes: int | None = None) -> Notification:
        """A new package period (renewal or a new purchase): use starts from zero."""
        package = self.packages[msisdn]
        package.period += 1
        package.used_bytes = 0
        package.exhausted = False
        package.thresholds_reported.clear()
        if quota_bytes is not None:
            package.quota_bytes = quota_bytes
        return self._notify(package, NotificationKind.RENEWED, now)

    def _notify(
        self, package: Package, kind: NotificationKind, now: float, threshold: int | None = None
    ) -> Notification:
        package.sequence += 1
        return Notification(
            kind=kind,
            msisdn=package.msisdn,
            package_id=package.package_id,
            period=package.period,
            sequence=package.sequence,
            used_bytes=package.used_bytes,
            quota_bytes=package.quota_bytes,
            percent=100.0 * package.used_bytes / package.quota_bytes,
            time=now,
            threshold=threshold,
        )


def population(
    count: int, *, first_msisdn: int = 254_700_000_000, quota_bytes: int = 1 << 30
) -> Iterator[tuple[str, str, int]]:
    """``count`` subscribers (msisdn, package id, quota): consecutive E.164 numbers, one package each."""
    for index in range(count):
        yield str(first_msisdn + index), "data-1gb", quota_bytes


class HttpEmitter:
    """Posts notifications to the gateway's ``POST /v1/events`` as JSON lines, in batches."""

    def __init__(
        self, url: str, *, token: str | None = None, batch_size: int = 1000, keepalive_timeout: float = 15.0
    ) -> None:
        self.url = url
        self.token = token
        self.batch_size = batch_size
        self.keepalive_timeout = keepalive_timeout
        self.accepted = 0
        self.rejected = 0
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpEmitter:
        headers = {"Content-Type": "application/x-ndjson"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        connector = aiohttp.TCPConnector(keepalive_timeout=self.keepalive_timeout)
        self._session = aiohttp.ClientSession(headers=headers, connector=connector)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post_body(self, body: bytes) -> dict[str, object]:
        """One batch, already JSON lines; returns the gateway's answer (accepted, rejected, errors)."""
        if self._session is None:
            raise TransportError("HttpEmitter used outside `async with`")
        try:
            async with self._session.post(self.url, data=body) as response:
                answer: dict[str, object] = await response.json(content_type=None)
                if response.status not in (200, 202, 400):
                    raise TransportError(f"POST {self.url}: HTTP {response.status} {answer}")
        except aiohttp.ClientError as exc:
            raise TransportError(f"POST {self.url}: {exc}") from exc
        self.accepted += int(str(answer.get("accepted", 0)))
        self.rejected += int(str(answer.get("rejected", 0)))
        return answer

    async def emit(self, notifications: Sequence[Notification]) -> None:
        for start in range(0, len(notifications), self.batch_size):
            batch = notifications[start : start + self.batch_size]
            await self.post_body(b"\n".join(n.to_json_bytes() for n in batch) + b"\n")


# aiomqtt warns about every publish past 10 in flight; keeping a window full is the point here
_MQTT_LOG = logging.getLogger(__name__ + ".mqtt")
_MQTT_LOG.setLevel(logging.ERROR)


class MqttEmitter:
    """Publishes notifications to an MQTT broker at QoS 1, one JSON object per message.

    The topic is ``{prefix}/{msisdn}`` so a broker that shares subscriptions by topic keeps one
    subscriber's events together. ``window`` publishes are in flight at once (each waits for its
    PUBACK).
    """

    def __init__(
        self, host: str, port: int, *, prefix: str = "usage", qos: int = 1, window: int = 100
    ) -> None:
        self.host = host
        self.port = port
        self.prefix = prefix
        self.qos = qos
        self.window = window
        self.published = 0
        self._client: aiomqtt.Client | None = None

    async def __aenter__(self) -> MqttEmitter:
        self._client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=f"tgw-network-sim-{id(self):x}",
            max_inflight_messages=self.window,
        )
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None

    async def publish_raw(self, topic: str, payload: bytes) -> None:
        if self._client is None:
            raise TransportError("MqttEmitter used outside `async with`")
        await self._client.publish(topic, payload, qos=self.qos)
        self.published += 1

    async def emit(self, notifications: Sequence[Notification]) -> None:
        semaphore = asyncio.Semaphore(self.window)

        async def one(notification: Notification) -> None:
            async with semaphore:
                await self.publish_raw(f"{self.prefix}/{notification.msisdn}", notification.to_json_bytes())

        await asyncio.gather(*(one(n) for n in notifications))


class DiameterDialect(StrEnum):
    GY = "gy"
    GX = "gx"
    SY = "sy"


@dataclass(slots=True)
class _Session:
    session_id: str
    request_number: int = 0
    reported_bytes: int = 0


class DiameterEmitter:
    """Sends notifications as a PCEF / OCS would, over a ``DiameterClient`` connected to the gateway.

    - ``gy``: one Gy session per subscriber and period, opened by a CCR-I; each notification is a
      CCR-U whose MSCC (Rating-Group ``rating_group``) reports the octets used since the last
      report with Reporting-Reason THRESHOLD or QUOTA_EXHAUSTED (TS 32.299 7.2.175).
    - ``gx``: a CCR-U with Event-Trigger USAGE_REPORT and a Usage-Monitoring-Information for
      Monitoring-Key = the package id, with the octets used since the last report and the armed
      threshold as Granted-Service-Unit (TS 29.212 4.5.17).
    - ``sy``: an SNR with a Policy-Counter-Status-Report for counter = the package id, status
      ``threshold-<p>``, ``exhausted`` or ``valid`` (a renewal).

    Gy and Gx have no message for a renewal (the next session simply starts afresh), so RENEWED
    is sent only on Sy. Every answer must be 2001, else ``TransportError``.
    """

    def __init__(
        self,
        client: DiameterClient,
        dialect: DiameterDialect,
        *,
        origin_host: str,
        origin_realm: str,
        destination_realm: str,
        destination_host: str,
        rating_group: int = 10,
        window: int = 64,
    ) -> None:
        self.client = client
        self.dialect = dialect
        self.origin_host = origin_host
        self.origin_realm = origin_realm
        self.destination_realm = destination_realm
        self.destination_host = destination_host
        self.rating_group = rating_group
        self.window = window
        self.answered = 0
        self._sessions: dict[tuple[str, int], _Session] = {}

    def _session(self, notification: Notification) -> tuple[_Session, bool]:
        key = (notification.msisdn, notification.period)
        session = self._sessions.get(key)
        if session is None:
            session_id = (
                f"{self.origin_host};{self.dialect.value};{notification.msisdn};{notification.period}"
            )
            session = self._sessions[key] = _Session(session_id)
            return session, True
        return session, False

    def messages(self, notification: Notification) -> list[Message]:
        """The requests that report ``notification`` (maybe none), in the order they must go."""
        when = datetime.fromtimestamp(notification.time, UTC)
        if self.dialect is DiameterDialect.SY:
            if notification.kind is NotificationKind.THRESHOLD:
                status = f"threshold-{notification.threshold}"
            elif notification.kind is NotificationKind.EXHAUSTED:
                status = "exhausted"
            elif notification.kind is NotificationKind.RENEWED:
                status = "valid"
            else:
                return []
            session, _ = self._session(notification)
            report = PolicyCounterStatusReport(
                policy_counter_identifier=notification.package_id, policy_counter_status=status
            )
            return [
                build_sy_snr(
                    session_id=session.session_id,
                    destination_host=self.destination_host,
                    policy_counter_status_report=[report],
                    msisdn=notification.msisdn,
                    origin_host=self.origin_host,
                    origin_realm=self.origin_realm,
                    destination_realm=self.destination_realm,
                )
            ]
        if notification.kind is NotificationKind.RENEWED:
            return []
        session, new = self._session(notification)
        used = UsedServiceUnit(cc_total_octets=notification.used_bytes - session.reported_bytes)
        session.reported_bytes = notification.used_bytes
        out: list[Message] = []
        if self.dialect is DiameterDialect.GX:
            info = UsageMonitoringInformation(
                monitoring_key=notification.package_id.encode(),
                granted_service_unit=(GrantedServiceUnit(cc_total_octets=notification.quota_bytes),),
                used_service_unit=(used,),
                usage_monitoring_level=UsageMonitoringLevel.SESSION_LEVEL,
            )
            session.request_number += 1
            out.append(
                build_gx_ccr_update(
                    session_id=session.session_id,
                    cc_request_number=session.request_number,
                    msisdn=notification.msisdn,
                    usage_monitoring_information=[info],
                    event_timestamp=when,
                    destination_host=self.destination_host,
                    origin_host=self.origin_host,
                    origin_realm=self.origin_realm,
                    destination_realm=self.destination_realm,
                )
            )
            return out
        if new:
            out.append(
                build_gy_ccr(
                    session_id=session.session_id,
                    cc_request_type=CcRequestType.INITIAL_REQUEST,
                    cc_request_number=0,
                    msisdn=notification.msisdn,
                    multiple_services_credit_control=[
                        MultipleServicesCreditControl(
                            rating_group=self.rating_group, requested_service_unit=RequestedServiceUnit()
                        )
                    ],
                    event_timestamp=when,
                    destination_host=self.destination_host,
                    origin_host=self.origin_host,
                    origin_realm=self.origin_realm,
                    destination_realm=self.destination_realm,
                )
            )
        reason = (
            ReportingReason.QUOTA_EXHAUSTED
            if notification.kind is NotificationKind.EXHAUSTED
            else ReportingReason.THRESHOLD
            if notification.kind is NotificationKind.THRESHOLD
            else ReportingReason.VALIDITY_TIME
        )
        session.request_number += 1
        out.append(
            build_gy_ccr(
                session_id=session.session_id,
                cc_request_type=CcRequestType.UPDATE_REQUEST,
                cc_request_number=session.request_number,
                msisdn=notification.msisdn,
                multiple_services_credit_control=[
                    MultipleServicesCreditControl(
                        rating_group=self.rating_group, used_service_unit=(used,), reporting_reason=(reason,)
                    )
                ],
                event_timestamp=when,
                destination_host=self.destination_host,
                origin_host=self.origin_host,
                origin_realm=self.origin_realm,
                destination_realm=self.destination_realm,
            )
        )
        return out

    async def send(self, message: Message) -> None:
        answer = await self.client.request(message)
        code = result_code(answer)
        if code != ResultCode.DIAMETER_SUCCESS:
            raise TransportError(f"Diameter answer {code} to command {message.command_code}")
        self.answered += 1

    async def emit(self, notifications: Sequence[Notification]) -> None:
        """Send every notification; one subscriber's requests go in order, ``window`` at once overall."""
        semaphore = asyncio.Semaphore(self.window)
        by_subscriber: dict[str, list[Message]] = {}
        for notification in notifications:
            by_subscriber.setdefault(notification.msisdn, []).extend(self.messages(notification))

        async def one(messages: list[Message]) -> None:
            for message in messages:
                async with semaphore:
                    await self.send(message)

        await asyncio.gather(*(one(messages) for messages in by_subscriber.values()))


@dataclass(frozen=True, slots=True)
class Workload:
    """A month of data use in a few steps: every subscriber uses its package in ``steps`` random
    increments (seeded), so each crosses the threshold and then exhausts; with ``renew`` the package
    is renewed afterwards (a RENEWED notification)."""

    subscribers: int = 100
    quota_bytes: int = 1 << 30
    steps: int = 10
    renew: bool = False
    seed: int = 1
    start_time: float = 1_780_000_000.0
    step_seconds: float = 3600.0
    first_msisdn: int = 254_700_000_000
    thresholds: tuple[int, ...] = (90,)


def run_workload(workload: Workload) -> list[Notification]:
    """Every notification of ``workload``, in time order (deterministic for its seed)."""
    meter = UsageMeter(workload.thresholds)
    rng = random.Random(workload.seed)
    for msisdn, package_id, quota in population(
        workload.subscribers, first_msisdn=workload.first_msisdn, quota_bytes=workload.quota_bytes
    ):
        meter.subscribe(msisdn, package_id, quota)
    out: list[Notification] = []
    mean = workload.quota_bytes / (workload.steps + 1)
    for step in range(workload.steps + 1):
        now = workload.start_time + step * workload.step_seconds
        for msisdn in meter.packages:
            if step == workload.steps:
                if workload.renew:
                    out.append(meter.renew(msisdn, now))
                continue
            # the last step uses up whatever is left: every subscriber exhausts once
            octets = workload.quota_bytes if step == workload.steps - 1 else int(mean * rng.uniform(0.5, 1.5))
            out.extend(meter.use(msisdn, octets, now + rng.random()))
    out.sort(key=lambda n: n.time)
    return out
