"""The MQTT subscriber (gateway.ingest.mqtt) against a real Mosquitto broker, with events published
by a separate aiomqtt client: triggers come out, bad messages go to the dead-letter topic without
stopping the stream, a message is not acknowledged before it is durably taken (the broker re-sends
it to the restarted subscriber), offline messages are kept, and the subscriber reconnects."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiomqtt
import pytest
from mosquitto import Mosquitto

from campaign_core.usage import TriggerKind, UsageEvent
from gateway.ingest.mqtt import MqttIngest

MakeDpi = Callable[..., dict[str, Any]]
DEAD = "usage/dead-letter"


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
    assert predicate(), what


def payload(event: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


@pytest.fixture
async def publisher(mosquitto: Mosquitto) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="test-publisher") as client:
        yield client


async def started(
    sink: Any, broker: Mosquitto, client_id: str = "tgw-ingest-test", **kwargs: Any
) -> MqttIngest:
    ingest = MqttIngest(sink, "127.0.0.1", broker.port, client_id=client_id, **kwargs)
    await ingest.start()
    await asyncio.wait_for(ingest.connected.wait(), 10)
    return ingest


class RecordingSink:
    """Records each take; while ``gate`` is clear, takes wait (the journal is stuck)."""

    def __init__(self, *, blocked: bool = False) -> None:
        self.batches: list[list[UsageEvent]] = []
        self.gate = asyncio.Event()
        if not blocked:
            self.gate.set()

    @property
    def event_ids(self) -> list[str]:
        return [event.event_id for batch in self.batches for event in batch]

    async def take(self, events: Sequence[UsageEvent]) -> None:
        self.batches.append(list(events))
        await self.gate.wait()


async def test_published_events_become_triggers(
    mosquitto: Mosquitto, publisher: aiomqtt.Client, rig: Any, make_dpi: MakeDpi
) -> None:
    ingest = await started(rig.pipeline, mosquitto)
    try:
        await publisher.publish("usage/46701234567", payload(make_dpi("t-90", percent=91.5)), qos=1)
        await publisher.publish("usage/46701234567", payload(make_dpi("t-ex", kind="exhausted")), qos=1)
        array = [make_dpi(f"a{i}", msisdn=f"4670999000{i}", kind="payg_started") for i in range(3)]
        await publisher.publish("usage/batch", payload(array), qos=1)
        await eventually(lambda: len(rig.triggers) == 5, "five triggers")
    finally:
        await ingest.stop()
    assert [(t.kind, t.level, t.event_id, t.source) for t in rig.triggers[:2]] == [
        (TriggerKind.THRESHOLD, 90, "t-90", "dpi:mqtt"),
        (TriggerKind.EXHAUSTED, 100, "t-ex", "dpi:mqtt"),
    ]
    assert {t.event_id for t in rig.triggers[2:]} == {"a0", "a1", "a2"}
    assert ingest.counters.acked == ingest.counters.messages == 3
    assert rig.pipeline.counters.events_taken == 5


async def test_bad_messages_go_to_the_dead_letter_topic_and_the_stream_goes_on(
    mosquitto: Mosquitto, publisher: aiomqtt.Client, rig: Any, make_dpi: MakeDpi
) -> None:
    await publisher.subscribe(DEAD, qos=1)
    ingest = await started(rig.pipeline, mosquitto)
    sent = [
        ("usage/1", b"{not json"),
        ("usage/2", payload(make_dpi("bad-kind", kind="bonus"))),
        ("usage/3", b"\xff\xfe\x00binary"),
        ("usage/4", payload([make_dpi("in-array-good", percent=93.0), make_dpi("in-array-bad", msisdn="x")])),
        ("usage/5", payload(make_dpi("after-the-bad-ones", kind="exhausted"))),
    ]
    letters: list[dict[str, Any]] = []
    try:
        for topic, body in sent:
            await publisher.publish(topic, body, qos=1)
        async with asyncio.timeout(10):
            async for message in publisher.messages:
                assert isinstance(message.payload, bytes)
                letters.append(json.loads(message.payload))
                if len(letters) == 4:
                    break
        await eventually(lambda: len(rig.triggers) == 2, "the good events' triggers")
        # 5 sent + our own 4 letters (``usage/#`` matches the dead-letter topic: skipped, acked)
        await eventually(lambda: ingest.counters.acked == 9, "every message acknowledged")
    finally:
        await ingest.stop()
    assert [letter["topic"] for letter in letters] == ["usage/1", "usage/2", "usage/3", "usage/4"]
    assert letters[0]["payload"] == "{not json"
    assert letters[0]["errors"][0]["error"].startswith("invalid JSON")
    assert letters[1]["errors"] == [
        {"line": 1, "event_id": "bad-kind", "error": letters[1]["errors"][0]["error"]}
    ]
    assert letters[1]["errors"][0]["error"].startswith("kind: must be one of")
    assert json.loads(letters[1]["payload"])["event_id"] == "bad-kind"
    assert base64.b64decode(letters[2]["payload_base64"]) == b"\xff\xfe\x00binary"
    assert "payload" not in letters[2]
    assert [(e["line"], e["event_id"]) for e in letters[3]["errors"]] == [(2, "in-array-bad")]
    assert [t.event_id for t in rig.triggers] == ["in-array-good", "after-the-bad-ones"]
    assert ingest.counters.dead_lettered == 4
    assert ingest.counters.events_rejected == rig.pipeline.counters.bad_events == 4


async def test_no_puback_before_the_event_is_durably_taken(
    mosquitto: Mosquitto, publisher: aiomqtt.Client, rig: Any, make_dpi: MakeDpi
) -> None:
    # 1. the journal is stuck: the event reaches take() but take() never returns
    stuck = RecordingSink(blocked=True)
    first = await started(stuck, mosquitto, client_id="ingest-a", batch_window=0)
    await publisher.publish("usage/x", payload(make_dpi("held", percent=97.0)), qos=1)
    await eventually(lambda: stuck.event_ids == ["held"], "the event in take()")
    assert first.counters.acked == 0
    await first.stop()  # the gateway dies with the take pending

    # 2. restarted with the same client id: the broker re-sends the unacknowledged message
    second = await started(rig.pipeline, mosquitto, client_id="ingest-a", batch_window=0)
    await eventually(lambda: [t.event_id for t in rig.triggers] == ["held"], "the re-sent event's trigger")
    await eventually(lambda: second.counters.acked == 1, "the PUBACK after the commit")
    await second.stop()

    # 3. that one WAS acknowledged: the next incarnation gets only what is new
    third_sink = RecordingSink()
    third = await started(third_sink, mosquitto, client_id="ingest-a", batch_window=0)
    await publisher.publish("usage/x", payload(make_dpi("marker")), qos=1)
    await eventually(lambda: "marker" in third_sink.event_ids, "the marker")
    await third.stop()
    assert third_sink.event_ids == ["marker"]


async def test_messages_published_while_down_are_delivered_on_return(
    mosquitto: Mosquitto, publisher: aiomqtt.Client, make_dpi: MakeDpi
) -> None:
    sink = RecordingSink()
    ingest = await started(sink, mosquitto, client_id="ingest-offline")
    await ingest.stop()  # the persistent session stays with the broker
    for i in range(20):
        await publisher.publish(f"usage/{i}", payload(make_dpi(f"offline-{i}")), qos=1)
    ingest = await started(sink, mosquitto, client_id="ingest-offline")
    await eventually(lambda: len(sink.event_ids) == 20, "all offline messages")
    await ingest.stop()
    assert sink.event_ids == [f"offline-{i}" for i in range(20)]  # in order


async def test_messages_are_taken_in_batches(
    mosquitto: Mosquitto, publisher: aiomqtt.Client, make_dpi: MakeDpi
) -> None:
    sink = RecordingSink(blocked=True)
    ingest = await started(sink, mosquitto, batch_max=30, batch_window=0)
    await publisher.publish("usage/first", payload(make_dpi("first")), qos=1)
    await eventually(lambda: len(sink.batches) == 1, "the first take")
    await asyncio.gather(
        *(publisher.publish(f"usage/{i}", payload(make_dpi(f"m{i}")), qos=1) for i in range(60))
    )
    await asyncio.sleep(0.3)  # they reach the subscriber while its first take waits
    sink.gate.set()
    await eventually(lambda: len(sink.event_ids) == 61, "every message")
    await ingest.stop()
    sizes = [len(batch) for batch in sink.batches]
    assert max(sizes) == 30  # batch_max
    assert len(sizes) < 61
    assert ingest.counters.batches == len(sizes)


async def test_the_subscriber_reconnects_when_the_broker_comes_back(
    mosquitto: Mosquitto, make_dpi: MakeDpi
) -> None:
    sink = RecordingSink()
    ingest = await started(sink, mosquitto, reconnect_min=0.05, reconnect_max=0.2)
    mosquitto.kill()
    await eventually(lambda: not ingest.connected.is_set(), "the loss noticed")
    await asyncio.sleep(0.3)  # a few failed attempts with back-off
    mosquitto.start()  # an empty broker (no persistence): the subscriber subscribes again
    await asyncio.wait_for(ingest.connected.wait(), 10)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as publisher:
        await publisher.publish("usage/again", payload(make_dpi("after-restart")), qos=1)
        await eventually(lambda: sink.event_ids == ["after-restart"], "the event after the restart")
    await ingest.stop()
    assert ingest.counters.connects >= 2
    assert ingest.counters.connection_losses >= 1
