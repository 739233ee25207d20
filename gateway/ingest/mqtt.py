"""DPI events over MQTT 3.1.1 (OASIS MQTT Version 3.1.1): a QoS 1 subscriber that acknowledges late.

The subscriber connects with CleanSession = 0 (section 3.1.2.4) under a fixed client identifier, so
the broker keeps the session while we are away: QoS 1 messages published meanwhile are queued, and
messages we received but did not acknowledge are sent again on reconnect (section 4.4). It
subscribes at QoS 1 and sends each PUBACK (section 3.4) only once the event is durably taken
(``await sink.take``): a crash before that leaves the message with the broker, which delivers it
again. PUBACKs go out in the order the PUBLISH packets arrived (section 4.6).

Payload: one JSON event (``gateway.ingest.schema``) per message, or a JSON array of events. A bad
message (not JSON, schema errors, an empty array, even one the parser itself fails on) or the bad
items of an array go to ``dead_letter_topic`` as a JSON
object ``{"topic", "errors": [{"line", "event_id"?, "error"}], "payload"}`` (``payload`` the original
as text when it is UTF-8, else ``payload_base64``), published at QoS 1 and then the original is
acknowledged: a bad message never stops the stream. Messages on the dead-letter topic itself (which
``usage/#`` also matches) are acknowledged and skipped.

Messages are taken in batches: whatever arrived, up to ``batch_max``, waiting at most
``batch_window`` seconds for more after the first one, in ONE ``take`` (one journal commit).

When the broker goes away, or ``take`` fails (the journal), the connection is dropped without
acknowledging and made again after a back-off doubling from ``reconnect_min`` to ``reconnect_max``
seconds (with jitter); the broker then re-sends what was not acknowledged. Duplicates that this
produces are harmless: the trigger detector raises each trigger once.

The broker must let enough messages be in flight to fill a batch (Mosquitto's
``max_inflight_messages``, default 20; 0 = no limit), or batches stay at that size.

aiomqtt 2.5 has no manual acknowledgement; the paho-mqtt 2.x client it wraps has (``manual_ack_set``,
``ack``): ``_manual_ack`` is the one place that reaches into aiomqtt for it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

import aiomqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from campaign_core.usage import UsageEvent
from gateway.ingest import EventSink
from gateway.ingest.config import topic_name_problem
from gateway.ingest.pipeline import BadEventCounter
from gateway.ingest.schema import NO_EVENTS, EventError, ParsedBatch, parse_json
from protocols.errors import LocalProtocolError, TransportError

__all__ = ["SOURCE", "MqttIngest", "MqttIngestCounters"]

log = logging.getLogger(__name__)

SOURCE = "dpi:mqtt"


class MqttIngestCounters:
    """What the subscriber did since it was made."""

    __slots__ = (
        "acked",
        "batches",
        "connection_losses",
        "connects",
        "dead_lettered",
        "events_accepted",
        "events_rejected",
        "messages",
        "take_failures",
    )

    def __init__(self) -> None:
        self.messages = 0
        self.events_accepted = 0
        self.events_rejected = 0
        self.dead_lettered = 0
        self.acked = 0
        self.batches = 0
        self.connects = 0
        self.connection_losses = 0
        self.take_failures = 0


def _manual_ack(client: aiomqtt.Client) -> Callable[[aiomqtt.Message], bool]:
    """Turn off paho's automatic PUBACK on ``client`` (before it connects) and return the function
    that acknowledges one message, False when the connection it came on is gone (the broker re-sends
    it then, and acknowledging its packet id on another connection would ack another message).

    The private ``_client`` is aiomqtt's paho ``Client``; paho 2.x ``manual_ack_set(True)`` stops the
    PUBACK paho sends after ``on_message`` returns, ``ack(mid, qos)`` sends it (PUBCOMP for QoS 2)."""
    paho = client._client
    paho.manual_ack_set(True)

    def ack(message: aiomqtt.Message) -> bool:
        if message.qos == 0:
            return True
        if not paho.is_connected():
            return False
        return paho.ack(message.mid, message.qos) == MQTTErrorCode.MQTT_ERR_SUCCESS

    return ack


def _inbox_class(holder: list[asyncio.Queue[aiomqtt.Message]]) -> type[asyncio.Queue[aiomqtt.Message]]:
    """A queue class for aiomqtt's public ``queue_type`` that hands us the instance, so a batch can be
    drained with ``get_nowait`` instead of one task switch per message."""

    class _Inbox(asyncio.Queue[aiomqtt.Message]):
        def __init__(self, maxsize: int = 0) -> None:
            super().__init__(maxsize)
            holder.append(self)

    return _Inbox


class MqttIngest:
    """The MQTT subscriber feeding ``sink`` (see the module docstring); ``start()`` / ``stop()``."""

    def __init__(
        self,
        sink: EventSink,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        topics: Sequence[str] = ("usage/#",),
        qos: int = 1,
        dead_letter_topic: str = "usage/dead-letter",
        client_id: str = "tgw-ingest",
        username: str | None = None,
        password: str | None = None,
        batch_max: int = 500,
        batch_window: float = 0.005,
        reconnect_min: float = 0.1,
        reconnect_max: float = 10.0,
        keepalive: int = 30,
        source: str = SOURCE,
    ) -> None:
        if qos not in (0, 1, 2):
            raise LocalProtocolError(f"mqtt ingest: qos must be 0, 1 or 2, not {qos}")
        if batch_max < 1 or batch_window < 0 or not 0 < reconnect_min <= reconnect_max:
            raise LocalProtocolError(
                "mqtt ingest: batch_max >= 1, batch_window >= 0, 0 < reconnect_min <= max"
            )
        if not topics:
            raise LocalProtocolError("mqtt ingest: no topic to subscribe to")
        if (problem := topic_name_problem(dead_letter_topic)) is not None:
            raise LocalProtocolError(f"mqtt ingest: dead_letter_topic: {problem}")
        self.sink = sink
        self.host = host
        self.port = port
        self.topics = tuple(topics)
        self.qos = qos
        self.dead_letter_topic = dead_letter_topic
        self.client_id = client_id
        self.username = username
        self.password = password
        self.batch_max = batch_max
        self.batch_window = batch_window
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.keepalive = keepalive
        self.source = source
        self.counters = MqttIngestCounters()
        self.connected = asyncio.Event()
        """Set while subscribed; cleared when the connection is lost."""
        self._note_bad = sink.note_bad if isinstance(sink, BadEventCounter) else None
        self._task: asyncio.Task[None] | None = None
        self._delay = reconnect_min
        self._stopping = False
        self.stop_timeout = 2.0
        """How long ``stop`` lets the client disconnect gracefully before cutting it off."""

    async def start(self) -> None:
        """Run the subscriber in a task (it connects, and reconnects, by itself)."""
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name=f"mqtt-ingest-{self.client_id}"
            )

    async def stop(self) -> None:
        """Stop; messages taken but not yet acknowledged are re-sent by the broker next time."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # aiomqtt's __aexit__ waits without a timeout for the broker to see our DISCONNECT; if
            # that never completes, a second cancel ends the wait (nothing is lost: unacknowledged
            # messages stay with the broker)
            for _ in range(2):
                done, _pending = await asyncio.wait({task}, timeout=self.stop_timeout)
                if done:
                    break
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected.clear()

    async def __aenter__(self) -> MqttIngest:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def run(self) -> None:
        """Connect, consume, and reconnect with back-off, until cancelled."""
        while not self._stopping:
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                log.warning(
                    "mqtt ingest %s:%d: %s; reconnecting in %.2f s", self.host, self.port, exc, self._delay
                )
            except TransportError as exc:
                log.error("mqtt ingest: %s; reconnecting in %.2f s so the broker re-sends", exc, self._delay)
            except Exception:  # a bug must not end the intake for good: log it loudly and reconnect
                log.exception("mqtt ingest: unexpected failure; reconnecting in %.2f s", self._delay)
            if self.connected.is_set():
                self.counters.connection_losses += 1
            self.connected.clear()
            await asyncio.sleep(self._delay * random.uniform(0.5, 1.0))
            self._delay = min(self._delay * 2, self.reconnect_max)

    # --- one connection --------------------------------------------------------------------------

    async def _session(self) -> None:
        inbox: list[asyncio.Queue[aiomqtt.Message]] = []
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.client_id,
            username=self.username,
            password=self.password,
            protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=False,  # the broker keeps our subscription and unacknowledged messages
            keepalive=self.keepalive,
            queue_type=_inbox_class(inbox),
        )
        ack = _manual_ack(client)
        async with client:
            self.counters.connects += 1
            granted = await client.subscribe([(topic, self.qos) for topic in self.topics])
            refused = [topic for topic, code in zip(self.topics, granted, strict=False) if _is_failure(code)]
            if refused:
                log.error("mqtt ingest: the broker refused the subscription to %s", ", ".join(refused))
            self._delay = self.reconnect_min
            self.connected.set()
            queue = inbox[0]
            messages = client.messages
            while True:
                batch = [await anext(messages)]
                self._drain(queue, batch)
                if len(batch) < self.batch_max and self.batch_window:
                    await asyncio.sleep(self.batch_window)
                    self._drain(queue, batch)
                await self._process(client, batch, ack)

    def _drain(self, queue: asyncio.Queue[aiomqtt.Message], batch: list[aiomqtt.Message]) -> None:
        while len(batch) < self.batch_max and not queue.empty():
            batch.append(queue.get_nowait())

    async def _process(
        self, client: aiomqtt.Client, batch: list[aiomqtt.Message], ack: Callable[[aiomqtt.Message], bool]
    ) -> None:
        counters = self.counters
        counters.messages += len(batch)
        counters.batches += 1
        events: list[UsageEvent] = []
        dead: list[tuple[aiomqtt.Message, list[EventError]]] = []
        for message in batch:
            if message.topic.value == self.dead_letter_topic:
                continue  # our own dead letters, when the subscription matches their topic
            parsed = self._parse(message)
            events.extend(parsed.events)
            if parsed.errors:
                dead.append((message, parsed.errors))
        if events:
            try:
                await self.sink.take(events)
            except Exception as exc:
                counters.take_failures += 1
                raise TransportError(f"sink refused {len(events)} events: {exc}") from exc
            counters.events_accepted += len(events)
        if dead:
            rejected = sum(len(errors) for _, errors in dead)
            counters.events_rejected += rejected
            if self._note_bad is not None:
                self._note_bad(rejected)
            await asyncio.gather(
                *(
                    client.publish(self.dead_letter_topic, _dead_letter(message, errors), qos=1)
                    for message, errors in dead
                )
            )
            counters.dead_lettered += len(dead)
        for message in batch:
            if not ack(message):
                raise aiomqtt.MqttError("connection lost before the PUBACKs; the broker re-sends")
            counters.acked += 1

    def _parse(self, message: aiomqtt.Message) -> ParsedBatch:
        """The payload's events and errors. Should the parser itself fail, the message is a dead
        letter with that reason: raising would drop the connection unacknowledged, the broker would
        deliver the same message again, and nothing behind it would ever be taken (a poison message)."""
        try:
            parsed = parse_json(_payload_bytes(message.payload), self.source)
        except Exception as exc:
            log.exception("mqtt ingest: the parser failed on a message on %s", message.topic.value)
            return ParsedBatch([], [EventError(0, f"cannot be parsed: {type(exc).__name__}: {exc}")])
        if not parsed.events and not parsed.errors:  # "[]": a dead letter that says why
            return ParsedBatch([], [NO_EVENTS])
        return parsed


def _is_failure(code: object) -> bool:
    """A SUBACK return code 0x80 (MQTT 3.1.1 section 3.9.3), as paho's ReasonCode or a plain int."""
    if isinstance(code, ReasonCode):
        return code.is_failure
    return isinstance(code, int) and code >= 0x80


def _payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


def _dead_letter(message: aiomqtt.Message, errors: list[EventError]) -> bytes:
    payload = _payload_bytes(message.payload)
    letter: dict[str, Any] = {"topic": message.topic.value, "errors": [error.to_json() for error in errors]}
    try:
        letter["payload"] = payload.decode("utf-8")
    except UnicodeDecodeError:
        letter["payload_base64"] = base64.b64encode(payload).decode("ascii")
    return json.dumps(letter, separators=(",", ":"), ensure_ascii=False).encode()
