"""Bad and unusual input to usage ingestion, each driven through the real thing: the HTTP intake and the
MQTT subscriber (real Mosquitto) into the real pipeline and SQLite journal, the Diameter server over
loopback TCP with hand-made frames, and the ingest service's start.

- A JSON body nested deeper than the stdlib parser's recursion limit made the error path raise
  RecursionError: HTTP answered 500, and over MQTT the message was never acknowledged, so the broker
  re-sent it for ever and nothing behind it was taken (a poison message).
- An empty JSON array was refused with 400 but no reason, and over MQTT acknowledged without a word.
- A request for an application nobody here handles, from a relay peer (a DRA advertises the Relay
  application), was answered 3001 DIAMETER_COMMAND_UNSUPPORTED instead of 3007
  DIAMETER_APPLICATION_UNSUPPORTED (RFC 6733 section 7.1.3).
- An END_USER_E164 Subscription-Id-Data that is no E.164 number (letters, empty) became the msisdn of
  triggers; ``+`` numbers kept their ``+``, so one subscriber had two keys (the JSON intake strips it).
- A journal directory that cannot be created ended ``start`` in a bare FileNotFoundError, and a TLS
  file that cannot be read was reported without its name.
- A dead-letter topic with a wildcard (or empty) was accepted; the first bad message then made the
  subscriber loop for ever (its PUBLISH fails, nothing is acknowledged, the broker re-sends).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest
from diameter_kit import read_message, with_hop
from mosquitto import Mosquitto

from campaign_core.usage import UsageEvent
from gateway.ingest.config import HttpConfig, IngestConfig, JournalConfig, TlsConfig, load_ingest_config
from gateway.ingest.diameter import DiameterServer, DiameterSettings
from gateway.ingest.http import HttpIngest
from gateway.ingest.mqtt import MqttIngest
from gateway.ingest.service import IngestService, server_tls_context
from protocols.diameter.codec import Avp, Message, encode
from protocols.diameter.credit_control import (
    CcRequestType,
    MultipleServicesCreditControl,
    ReportingReason,
    UsedServiceUnit,
    build_gy_ccr,
    result_code,
)
from protocols.diameter.dictionary import avp
from protocols.errors import ConfigError, LocalProtocolError, TransportError

MakeDpi = Callable[..., dict[str, Any]]
DEAD = "usage/dead-letter"
PCEF, REALM = "pcef1.localdomain", "localdomain"
RELAY = 0xFFFFFFFF

# deeper than json.loads can recurse (about 1,000 levels by default), far deeper than pydantic's limit
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
    assert predicate(), what


# --- HTTP ------------------------------------------------------------------------------------------


@pytest.fixture
async def http(rig: Any) -> AsyncIterator[HttpIngest]:
    ingest = HttpIngest(rig.pipeline, "127.0.0.1", 0)
    await ingest.start()
    yield ingest
    await ingest.stop()


async def post(url: str, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers={"Content-Type": content_type}) as response,
    ):
        return response.status, await response.json(content_type=None)


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
async def test_deeply_nested_json_is_a_400_not_a_500(
    http: HttpIngest, rig: Any, make_dpi: MakeDpi, content_type: str
) -> None:
    status, answer = await post(http.url, DEEP_OBJECT, content_type)
    assert status == 400, answer
    assert answer["rejected"] == 1
    assert answer["errors"][0]["error"].startswith("invalid JSON")
    # and the intake goes on
    good = json.dumps(make_dpi("after-deep", kind="exhausted")).encode()
    status, answer = await post(http.url, good, content_type)
    assert (status, answer["accepted"]) == (202, 1)
    assert [t.event_id for t in rig.triggers] == ["after-deep"]


async def test_an_empty_array_says_why_it_is_refused(http: HttpIngest, rig: Any) -> None:
    status, answer = await post(http.url, b" [ ] ", "application/json")
    assert status == 400
    assert answer["rejected"] == 1
    assert answer["errors"] == [{"line": 0, "error": "an empty array: no events"}]
    assert rig.pipeline.counters.events_taken == 0


# --- MQTT ------------------------------------------------------------------------------------------


async def test_a_poison_payload_is_dead_lettered_and_the_stream_goes_on(
    mosquitto: Mosquitto, rig: Any, make_dpi: MakeDpi
) -> None:
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="explore-publisher") as publisher:
        await publisher.subscribe(DEAD, qos=1)
        ingest = MqttIngest(rig.pipeline, "127.0.0.1", mosquitto.port, client_id="explore-ingest")
        await ingest.start()
        letters: list[dict[str, Any]] = []
        try:
            await asyncio.wait_for(ingest.connected.wait(), 10)
            await publisher.publish("usage/deep", DEEP_OBJECT, qos=1)
            await publisher.publish("usage/empty", b"[]", qos=1)
            await publisher.publish("usage/good", json.dumps(make_dpi("behind", kind="exhausted")), qos=1)
            async with asyncio.timeout(10):
                async for message in publisher.messages:
                    assert isinstance(message.payload, bytes)
                    letters.append(json.loads(message.payload))
                    if len(letters) == 2:
                        break
            await eventually(lambda: len(rig.triggers) == 1, "the event behind the poison")
        finally:
            await ingest.stop()
    assert [t.event_id for t in rig.triggers] == ["behind"]
    assert [letter["topic"] for letter in letters] == ["usage/deep", "usage/empty"]
    assert letters[0]["errors"][0]["error"].startswith("invalid JSON")
    assert letters[1]["errors"] == [{"line": 0, "error": "an empty array: no events"}]
    assert ingest.counters.connection_losses == 0  # never dropped to make the broker re-send
    assert ingest.counters.connects == 1


# --- Diameter --------------------------------------------------------------------------------------


def cer(*applications: int) -> Message:
    return Message(
        command_flags=0x80,
        command_code=257,
        application_id=0,
        hop_by_hop=1,
        end_to_end=1,
        avps=(
            avp("Origin-Host", PCEF),
            avp("Origin-Realm", REALM),
            avp("Host-IP-Address", IPv4Address("127.0.0.1")),
            avp("Vendor-Id", 0),
            avp("Product-Name", "explore"),
            *(avp("Auth-Application-Id", application) for application in applications),
        ),
    )


def gy_ccr(session: str, hop: int, subscription_data: bytes) -> Message:
    """A CCR-U reporting QUOTA_EXHAUSTED whose END_USER_E164 Subscription-Id-Data is given raw."""
    message = build_gy_ccr(
        session_id=session,
        origin_host=PCEF,
        origin_realm=REALM,
        destination_realm=REALM,
        cc_request_type=CcRequestType.UPDATE_REQUEST,
        cc_request_number=1,
        msisdn="254700000001",
        multiple_services_credit_control=(
            MultipleServicesCreditControl(
                rating_group=10,
                used_service_unit=(
                    UsedServiceUnit(cc_total_octets=1000, reporting_reason=ReportingReason.QUOTA_EXHAUSTED),
                ),
            ),
        ),
        event_timestamp=datetime(2024, 5, 1, 12, tzinfo=UTC),
    )
    data = Avp(444, 0x40, None, subscription_data)
    subscription = Avp(443, 0x40, None, encode_avps(avp("Subscription-Id-Type", 0), data))
    return with_hop(message, hop, avps=tuple(subscription if a.code == 443 else a for a in message.avps))


def encode_avps(*avps: Avp) -> bytes:
    empty = Message(command_flags=0, command_code=0, application_id=0, hop_by_hop=0, end_to_end=0, avps=avps)
    return encode(empty)[20:]


@pytest.fixture
async def diameter(rig: Any) -> AsyncIterator[tuple[str, int]]:
    server = DiameterServer(
        DiameterSettings(
            origin_host="gw.localdomain",
            origin_realm=REALM,
            port=0,
            allowed_peers=(("pcef*.localdomain", REALM),),
            disconnect_timeout=1.0,
        ),
        rig.pipeline,
    )
    address = await server.start()
    yield address
    await server.stop()


async def opened(
    address: tuple[str, int], *applications: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(*address)
    writer.write(encode(cer(*applications)))
    assert result_code(await read_message(reader)) == 2001
    return reader, writer


async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: Message) -> Message:
    writer.write(encode(message))
    return await read_message(reader)


@pytest.mark.parametrize("advertised", [(RELAY,), (4,)], ids=["relay-peer", "gy-peer"])
async def test_unknown_application_is_3007_whatever_the_peer_advertised(
    diameter: tuple[str, int], advertised: tuple[int, ...]
) -> None:
    reader, writer = await opened(diameter, *advertised)
    try:
        ccr = gy_ccr("pcef;app", 10, b"254700000001")
        answer = await ask(reader, writer, with_hop(ccr, 10, application_id=99))
        assert (answer.hop_by_hop, answer.is_error, result_code(answer)) == (10, True, 3007)
        # a command we do not handle, in an application we do, is still 3001
        rar = Message(command_flags=0xC0, command_code=258, application_id=4, hop_by_hop=11, end_to_end=11)
        answer = await ask(reader, writer, rar)
        assert (answer.hop_by_hop, answer.is_error, result_code(answer)) == (11, True, 3001)
    finally:
        writer.close()


async def test_a_subscription_id_that_is_no_e164_number_triggers_nothing(
    diameter: tuple[str, int], rig: Any
) -> None:
    reader, writer = await opened(diameter, RELAY)
    sent = {
        b"hello world": "letters",
        b"": "empty",
        b"1234": "short",
        b"2547000000011234": "sixteen-digits",
        b"+254700000002": "plus",
        b"254700000003": "plain",
    }
    try:
        for hop, (data, name) in enumerate(sent.items(), start=20):
            answer = await ask(reader, writer, gy_ccr(f"pcef;{name}", hop, data))
            assert result_code(answer) == 2001, name  # still answered: the report is taken, not refused
    finally:
        writer.close()
    await rig.pipeline.drain()
    assert sorted((t.msisdn, t.event_id) for t in rig.triggers) == [
        ("254700000002", "pcef;plus;1;0"),  # the + stripped, as the JSON intake does
        ("254700000003", "pcef;plain;1;0"),
    ]


# --- service ---------------------------------------------------------------------------------------


async def test_a_journal_directory_that_cannot_be_made_is_a_transport_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = IngestConfig(
        http=HttpConfig(port=0, max_body_bytes=65536),
        journal=JournalConfig(path=blocker / "journal" / "ingest.sqlite"),
    )
    service = IngestService(config, lambda trigger: None)
    with pytest.raises(TransportError, match=r"journal .*a-file/journal/ingest\.sqlite.*directory"):
        await service.start()
    await service.stop()  # nothing was started: stop is harmless


def test_an_unreadable_tls_file_is_named_in_the_config_error(tmp_path: Path) -> None:
    missing_cert, missing_key = tmp_path / "gw.crt", tmp_path / "gw.key"
    with pytest.raises(
        ConfigError, match=rf"diameter\.tls: cannot load cert {missing_cert} with key {missing_key}"
    ):
        server_tls_context(TlsConfig(cert=missing_cert, key=missing_key))


@pytest.mark.parametrize("topic", ["usage/#", "dead/+/letters", ""])
def test_a_dead_letter_topic_nobody_can_publish_to_is_refused_at_load(tmp_path: Path, topic: str) -> None:
    # accepted before: the first bad message then failed its PUBLISH, the subscriber dropped the
    # connection unacknowledged, and the broker sent the same batch again for ever (journaled each time)
    config = tmp_path / "ingest.yaml"
    config.write_text(
        f'ingest:\n  mqtt:\n    port: 1883\n    dead_letter_topic: "{topic}"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"ingest\.yaml:4: ingest\.mqtt\.dead_letter_topic: .*MQTT 4\.7"):
        load_ingest_config(config)
    with pytest.raises(LocalProtocolError, match="dead_letter_topic"):
        MqttIngest(_NoSink(), dead_letter_topic=topic)


class _NoSink:
    async def take(self, events: Sequence[UsageEvent]) -> None:
        raise AssertionError("nothing is taken here")
