"""The gateway's Diameter server and client over loopback TCP (and TLS): RFC 6733 section 5 base
protocol, the allow-list, answers only after the sink took the events, errors on the wire."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from diameter_kit import read_message, with_hop

from campaign_core.usage import UsageEvent, UsageKind
from gateway.ingest.diameter import DiameterClient, DiameterServer, DiameterSettings
from protocols.diameter.codec import Avp, CommandFlag, Message, decode, encode
from protocols.diameter.credit_control import (
    GX_APPLICATION_ID,
    GY_APPLICATION_ID,
    SY_APPLICATION_ID,
    CcRequestType,
    GrantedServiceUnit,
    MultipleServicesCreditControl,
    PolicyCounterStatusReport,
    ReportingReason,
    RequestedServiceUnit,
    UsageMonitoringInformation,
    UsedServiceUnit,
    build_gx_ccr_update,
    build_gy_ccr,
    build_sy_snr,
    result_code,
)
from protocols.diameter.dictionary import avp, find, find_all, value_of
from protocols.errors import TransportError

GW = "gw.localdomain"
REALM = "localdomain"
PCEF = "pcef.localdomain"


class RecordingSink:
    """An EventSink that records every batch; ``fail`` makes take raise, ``gate`` makes it wait."""

    def __init__(self) -> None:
        self.batches: list[list[UsageEvent]] = []
        self.fail = False
        self.gate: asyncio.Event | None = None
        self.waiting = 0

    @property
    def events(self) -> list[UsageEvent]:
        return [event for batch in self.batches for event in batch]

    async def take(self, events: Sequence[UsageEvent]) -> None:
        if self.gate is not None:
            self.waiting += 1
            await self.gate.wait()
            self.waiting -= 1
        if self.fail:
            raise TransportError("journal is full")
        self.batches.append(list(events))


def settings(**changes: object) -> DiameterSettings:
    values: dict[str, object] = {
        "origin_host": GW,
        "origin_realm": REALM,
        "port": 0,
        "allowed_peers": (("*.localdomain", REALM),),
        "origin_state_id": 1234,
        "disconnect_timeout": 1.0,
    }
    values.update(changes)
    return DiameterSettings(**values)  # type: ignore[arg-type]


def client_settings(**changes: object) -> DiameterSettings:
    return settings(origin_host=PCEF, origin_state_id=99, **changes)


@pytest.fixture
async def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def server(sink: RecordingSink) -> AsyncIterator[DiameterServer]:
    srv = DiameterServer(settings(), sink)
    await srv.start()
    yield srv
    await srv.stop()


async def connect(srv: DiameterServer, **changes: object) -> DiameterClient:
    host, port = srv_address(srv)
    client = DiameterClient(client_settings(**changes), host, port)
    await client.start()
    await client.wait_open(5)
    return client


def srv_address(srv: DiameterServer) -> tuple[str, int]:
    assert srv._server is not None
    host, port = srv._server.sockets[0].getsockname()[:2]
    return str(host), int(port)


# --- raw-socket helpers ---------------------------------------------------------------------------


def cer(origin_host: str = PCEF, realm: str = REALM, hop: int = 1) -> Message:
    return Message(
        command_flags=int(CommandFlag.REQUEST),
        command_code=257,
        application_id=0,
        hop_by_hop=hop,
        end_to_end=hop,
        avps=(
            avp("Origin-Host", origin_host),
            avp("Origin-Realm", realm),
            avp("Host-IP-Address", __import__("ipaddress").IPv4Address("127.0.0.1")),
            avp("Vendor-Id", 0),
            avp("Product-Name", "raw"),
            avp("Auth-Application-Id", 0xFFFFFFFF),
        ),
    )


def base_request(code: int, hop: int, *avps: Avp) -> Message:
    return Message(
        command_flags=int(CommandFlag.REQUEST),
        command_code=code,
        application_id=0,
        hop_by_hop=hop,
        end_to_end=hop,
        avps=(avp("Origin-Host", PCEF), avp("Origin-Realm", REALM), *avps),
    )


async def raw_open(srv: DiameterServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Message]:
    reader, writer = await asyncio.open_connection(*srv_address(srv))
    writer.write(encode(cer()))
    cea = await read_message(reader)
    return reader, writer, cea


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: Message | bytes
) -> Message:
    writer.write(message if isinstance(message, bytes) else encode(message))
    return await read_message(reader)


def gy_ccr(
    request_type: CcRequestType,
    number: int,
    *services: MultipleServicesCreditControl,
    session: str = "pcef;1",
) -> Message:
    return build_gy_ccr(
        session_id=session,
        origin_host=PCEF,
        origin_realm=REALM,
        destination_realm=REALM,
        cc_request_type=request_type,
        cc_request_number=number,
        msisdn="254700000001",
        multiple_services_credit_control=services,
        event_timestamp=datetime(2024, 5, 1, 12, tzinfo=UTC),
    )


def avp_value(message: Message, name: str) -> object:
    item = find(message, name)
    assert item is not None, name
    return value_of(item)


# --- base protocol --------------------------------------------------------------------------------


async def test_cer_cea_advertises_gy_gx_sy_and_constant_state_id(server: DiameterServer) -> None:
    reader, writer, cea = await raw_open(server)
    assert not cea.is_request and not cea.is_error
    assert avp_value(cea, "Result-Code") == 2001
    assert avp_value(cea, "Origin-Host") == GW
    assert avp_value(cea, "Origin-State-Id") == 1234
    assert [value_of(a) for a in find_all(cea, "Auth-Application-Id")] == [GY_APPLICATION_ID]
    vendor_apps = set()
    for group in find_all(cea, "Vendor-Specific-Application-Id"):
        members = value_of(group)
        assert isinstance(members, tuple)
        vendor_apps.add(
            (value_of(find(members, "Vendor-Id")), value_of(find(members, "Auth-Application-Id")))
        )  # type: ignore[arg-type]
    assert vendor_apps == {(10415, GX_APPLICATION_ID), (10415, SY_APPLICATION_ID)}
    assert server.open_peers == [(PCEF, REALM)]
    dwa = await exchange(reader, writer, base_request(280, 7, avp("Origin-State-Id", 5)))
    assert (dwa.command_code, dwa.hop_by_hop, avp_value(dwa, "Result-Code")) == (280, 7, 2001)
    assert avp_value(dwa, "Origin-State-Id") == 1234
    writer.close()


async def test_client_opens_and_server_lists_the_peer(server: DiameterServer) -> None:
    client = await connect(server)
    assert client.is_open
    assert server.open_peers == [(PCEF, REALM)]
    assert client.open_peers == [(GW, REALM)]
    await client.stop()
    for _ in range(100):
        if not server.open_peers:
            break
        await asyncio.sleep(0.01)
    assert server.open_peers == []
    assert not client.is_open


@pytest.mark.parametrize(
    ("allowed", "origin_host"),
    [((("*.localdomain", REALM),), "intruder.example.org"), ((), PCEF)],
    ids=["not-matching", "empty-allow-list-admits-nobody"],
)
async def test_allow_list_refuses_with_3010_and_closes(
    sink: RecordingSink, allowed: tuple[tuple[str, str], ...], origin_host: str
) -> None:
    srv = DiameterServer(settings(allowed_peers=allowed), sink)
    await srv.start()
    try:
        reader, writer = await asyncio.open_connection(*srv_address(srv))
        cea = await exchange(reader, writer, cer(origin_host))
        assert cea.command_code == 257 and cea.is_error
        assert avp_value(cea, "Result-Code") == 3010
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        assert srv.open_peers == []
        assert srv.answers[257, 3010] == 1
        writer.close()
    finally:
        await srv.stop()


async def test_watchdog_expiry_closes_a_silent_peer(sink: RecordingSink) -> None:
    srv = DiameterServer(settings(watchdog_interval=0.2), sink)
    await srv.start()
    try:
        reader, writer, _cea = await raw_open(srv)
        dwr = await read_message(reader)  # after Tw of silence the server probes
        assert dwr.is_request and dwr.command_code == 280
        assert avp_value(dwr, "Origin-State-Id") == 1234
        # no DWA: after another Tw the server gives up on us
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert srv.open_peers == []
        writer.close()
    finally:
        await srv.stop()


async def test_stop_sends_dpr_and_waits_for_dpa(sink: RecordingSink) -> None:
    srv = DiameterServer(settings(), sink)
    await srv.start()
    reader, writer, _cea = await raw_open(srv)
    stopping = asyncio.create_task(srv.stop())
    dpr = await read_message(reader)
    assert dpr.is_request and dpr.command_code == 282
    assert avp_value(dpr, "Disconnect-Cause") == 0  # REBOOTING
    answer = Message(
        command_flags=0,
        command_code=282,
        application_id=0,
        hop_by_hop=dpr.hop_by_hop,
        end_to_end=dpr.end_to_end,
        avps=(avp("Result-Code", 2001), avp("Origin-Host", PCEF), avp("Origin-Realm", REALM)),
    )
    writer.write(encode(answer))
    await asyncio.wait_for(stopping, 5)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_peer_dpr_is_answered_and_closes(server: DiameterServer) -> None:
    reader, writer, _cea = await raw_open(server)
    dpa = await exchange(reader, writer, base_request(282, 3, avp("Disconnect-Cause", 2)))
    assert (dpa.command_code, avp_value(dpa, "Result-Code")) == (282, 2001)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_connection_without_cer_is_closed(sink: RecordingSink) -> None:
    srv = DiameterServer(settings(cer_timeout=0.1), sink)
    await srv.start()
    try:
        reader, writer = await asyncio.open_connection(*srv_address(srv))
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await srv.stop()


# --- Gy, Gx, Sy -----------------------------------------------------------------------------------


async def test_gy_initial_update_termination(server: DiameterServer, sink: RecordingSink) -> None:
    client = await connect(server)
    try:
        rg = MultipleServicesCreditControl(
            rating_group=100, requested_service_unit=RequestedServiceUnit(cc_total_octets=0)
        )
        cca = await client.request(gy_ccr(CcRequestType.INITIAL_REQUEST, 0, rg))
        assert not cca.is_error and cca.command_code == 272 and cca.application_id == GY_APPLICATION_ID
        assert avp_value(cca, "Session-Id") == "pcef;1"
        assert result_code(cca) == 2001
        assert avp_value(cca, "Auth-Application-Id") == 4
        assert avp_value(cca, "CC-Request-Type") == 1
        assert avp_value(cca, "CC-Request-Number") == 0
        mscc = value_of(find(cca, "Multiple-Services-Credit-Control"))  # type: ignore[arg-type]
        assert isinstance(mscc, tuple)
        assert value_of(find(mscc, "Rating-Group")) == 100  # type: ignore[arg-type]
        assert value_of(find(mscc, "Result-Code")) == 2001  # type: ignore[arg-type]
        assert find(mscc, "Granted-Service-Unit") is None  # the gateway grants nothing by default
        assert sink.events == []  # a CCR-I with only a request for units reports no usage

        threshold = MultipleServicesCreditControl(
            rating_group=100,
            used_service_unit=(
                UsedServiceUnit(cc_total_octets=900_000_000, reporting_reason=ReportingReason.THRESHOLD),
            ),
        )
        exhausted = MultipleServicesCreditControl(
            rating_group=200,
            used_service_unit=(UsedServiceUnit(cc_total_octets=5),),
            reporting_reason=(ReportingReason.QUOTA_EXHAUSTED,),
        )
        cca = await client.request(gy_ccr(CcRequestType.UPDATE_REQUEST, 1, threshold, exhausted))
        assert (result_code(cca), avp_value(cca, "CC-Request-Number")) == (2001, 1)
        assert len(find_all(cca, "Multiple-Services-Credit-Control")) == 2
        final = MultipleServicesCreditControl(
            rating_group=100,
            used_service_unit=(UsedServiceUnit(cc_total_octets=7, reporting_reason=ReportingReason.FINAL),),
        )
        cca = await client.request(gy_ccr(CcRequestType.TERMINATION_REQUEST, 2, final))
        assert (result_code(cca), avp_value(cca, "CC-Request-Type")) == (2001, 3)
    finally:
        await client.stop()
    stamp = datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()
    assert [(e.event_id, e.kind, e.package_id, e.used_bytes, e.percent, e.sequence) for e in sink.events] == [
        ("pcef;1;1;0", UsageKind.THRESHOLD, "rg:100", 900_000_000, 90.0, 1),
        ("pcef;1;1;1", UsageKind.EXHAUSTED, "rg:200", 5, None, 1),
        ("pcef;1;2;0", UsageKind.USAGE, "rg:100", 7, None, 2),
    ]
    assert {(e.msisdn, e.event_time, e.source) for e in sink.events} == {
        ("254700000001", stamp, "diameter:gy")
    }
    assert server.answers[272, 2001] == 3


async def test_gy_grant_when_configured(sink: RecordingSink) -> None:
    srv = DiameterServer(settings(gy_grant_octets=1_000_000), sink)
    await srv.start()
    client = await connect(srv)
    try:
        rg = MultipleServicesCreditControl(rating_group=7, requested_service_unit=RequestedServiceUnit())
        cca = await client.request(gy_ccr(CcRequestType.INITIAL_REQUEST, 0, rg))
        mscc = value_of(find(cca, "Multiple-Services-Credit-Control"))  # type: ignore[arg-type]
        assert isinstance(mscc, tuple)
        gsu = value_of(find(mscc, "Granted-Service-Unit"))  # type: ignore[arg-type]
        assert isinstance(gsu, tuple)
        assert value_of(find(gsu, "CC-Total-Octets")) == 1_000_000  # type: ignore[arg-type]
    finally:
        await client.stop()
        await srv.stop()


async def test_gx_usage_report(server: DiameterServer, sink: RecordingSink) -> None:
    client = await connect(server)
    try:
        ccr = build_gx_ccr_update(
            session_id="pcef;gx;1",
            origin_host=PCEF,
            origin_realm=REALM,
            destination_realm=REALM,
            cc_request_number=4,
            msisdn="254700000002",
            usage_monitoring_information=[
                UsageMonitoringInformation(
                    monitoring_key=b"pkg-5GB",
                    granted_service_unit=(GrantedServiceUnit(cc_total_octets=5_000_000_000),),
                    used_service_unit=(UsedServiceUnit(cc_total_octets=4_500_000_000),),
                )
            ],
        )
        cca = await client.request(ccr)
    finally:
        await client.stop()
    assert cca.application_id == GX_APPLICATION_ID and not cca.is_error
    assert (result_code(cca), avp_value(cca, "CC-Request-Type"), avp_value(cca, "CC-Request-Number")) == (
        2001,
        2,
        4,
    )
    assert avp_value(cca, "Auth-Application-Id") == GX_APPLICATION_ID
    assert find(cca, "Multiple-Services-Credit-Control") is None
    [event] = sink.events
    assert (event.kind, event.package_id, event.used_bytes, event.percent, event.source) == (
        UsageKind.USAGE,
        "mk:pkg-5GB",
        4_500_000_000,
        90.0,
        "diameter:gx",
    )
    assert event.event_id == "pcef;gx;1;4;0" and event.msisdn == "254700000002"


async def test_sy_snr(server: DiameterServer, sink: RecordingSink) -> None:
    client = await connect(server)
    try:
        snr = build_sy_snr(
            session_id="ocs;sy;1",
            origin_host=PCEF,
            origin_realm=REALM,
            destination_realm=REALM,
            destination_host=GW,
            msisdn="254700000003",
            policy_counter_status_report=[
                PolicyCounterStatusReport(
                    policy_counter_identifier="DATA_5GB", policy_counter_status="exhausted"
                ),
                PolicyCounterStatusReport(
                    policy_counter_identifier="DATA_5GB", policy_counter_status="weird"
                ),
            ],
        )
        sna = await client.request(snr)
        unknown_only = build_sy_snr(
            session_id="ocs;sy;2",
            origin_host=PCEF,
            origin_realm=REALM,
            destination_realm=REALM,
            destination_host=GW,
            msisdn="254700000003",
            policy_counter_status_report=[
                PolicyCounterStatusReport(policy_counter_identifier="X", policy_counter_status="weird"),
            ],
        )
        sna2 = await client.request(unknown_only)
    finally:
        await client.stop()
    assert (sna.command_code, sna.application_id, result_code(sna), sna.is_error) == (
        8388636,
        SY_APPLICATION_ID,
        2001,
        False,
    )
    assert avp_value(sna, "Session-Id") == "ocs;sy;1"
    assert find(sna, "CC-Request-Type") is None
    assert result_code(sna2) == 2001
    [event] = sink.events
    assert (event.kind, event.package_id, event.msisdn, event.source) == (
        UsageKind.EXHAUSTED,
        "pc:DATA_5GB",
        "254700000003",
        "diameter:sy",
    )
    assert event.event_id.startswith("ocs;sy;1;e2e=") and event.event_id.endswith(";0")


async def test_failing_sink_answers_3004_never_2001(server: DiameterServer, sink: RecordingSink) -> None:
    sink.fail = True
    reader, writer, _cea = await raw_open(server)
    used = MultipleServicesCreditControl(
        rating_group=1, used_service_unit=(UsedServiceUnit(cc_total_octets=1),)
    )
    answer = await exchange(reader, writer, with_hop(gy_ccr(CcRequestType.UPDATE_REQUEST, 1, used), 11))
    assert answer.hop_by_hop == 11 and answer.is_error
    assert result_code(answer) == 3004
    assert server.answers[272, 2001] == 0 and server.answers[272, 3004] == 1
    # the connection stays, and once the sink recovers the retry is acknowledged
    sink.fail = False
    answer = await exchange(reader, writer, with_hop(gy_ccr(CcRequestType.UPDATE_REQUEST, 1, used), 12))
    assert result_code(answer) == 2001
    assert len(sink.events) == 1
    writer.close()


async def test_answer_only_after_take_and_backpressure(sink: RecordingSink) -> None:
    srv = DiameterServer(settings(max_in_flight=2), sink)
    await srv.start()
    sink.gate = asyncio.Event()
    try:
        reader, writer, _cea = await raw_open(srv)
        used = MultipleServicesCreditControl(
            rating_group=1, used_service_unit=(UsedServiceUnit(cc_total_octets=1),)
        )
        writer.write(
            b"".join(
                encode(with_hop(gy_ccr(CcRequestType.UPDATE_REQUEST, n, used), 100 + n)) for n in range(5)
            )
        )
        for _ in range(200):
            if sink.waiting:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert sink.waiting == 1  # one batch of at most max_in_flight requests, reading paused
        with pytest.raises(TimeoutError):
            await read_message(reader, timeout=0.1)  # nothing is answered before the sink took it
        sink.gate.set()
        hops = sorted([(await read_message(reader)).hop_by_hop for _ in range(5)])
        assert hops == [100, 101, 102, 103, 104]
        assert max(len(batch) for batch in sink.batches) <= 2
        assert len(sink.events) == 5
        writer.close()
    finally:
        await srv.stop()


# --- malformed input ------------------------------------------------------------------------------


async def test_bad_message_length_is_answered_5015_and_closed(server: DiameterServer) -> None:
    reader, writer, _cea = await raw_open(server)
    frame = bytearray(encode(with_hop(gy_ccr(CcRequestType.UPDATE_REQUEST, 1), 21)))
    frame[1:4] = (18).to_bytes(3, "big")  # shorter than a header: the stream cannot be framed
    answer = await exchange(reader, writer, bytes(frame))
    assert answer.hop_by_hop == 21 and not answer.is_error
    assert result_code(answer) == 5015
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_avp_overrun_is_answered_5014_and_connection_survives(server: DiameterServer) -> None:
    reader, writer, _cea = await raw_open(server)
    frame = bytearray(encode(with_hop(gy_ccr(CcRequestType.UPDATE_REQUEST, 1), 22)))
    frame[20 + 5 : 20 + 8] = (4000).to_bytes(3, "big")  # Session-Id's AVP Length runs past the message
    answer = await exchange(reader, writer, bytes(frame))
    assert answer.hop_by_hop == 22 and result_code(answer) == 5014
    dwa = await exchange(reader, writer, base_request(280, 23))
    assert (dwa.hop_by_hop, result_code(dwa)) == (23, 2001)
    writer.close()


async def test_unknown_mandatory_avp_5001_with_failed_avp(server: DiameterServer) -> None:
    reader, writer, _cea = await raw_open(server)
    ccr = gy_ccr(CcRequestType.UPDATE_REQUEST, 1)
    strange = Avp(99999, 0x40, None, b"\x00\x00\x00\x01")
    message = Message(
        command_flags=ccr.command_flags,
        command_code=272,
        application_id=4,
        hop_by_hop=31,
        end_to_end=31,
        avps=(*ccr.avps, strange),
    )
    answer = await exchange(reader, writer, message)
    assert (answer.hop_by_hop, result_code(answer), answer.is_error) == (31, 5001, False)
    failed = value_of(find(answer, "Failed-AVP"))  # type: ignore[arg-type]
    assert failed == (strange,)
    assert avp_value(answer, "CC-Request-Number") == 1  # a 5xxx is a CCA: CC-Request-* echoed
    assert find(answer, "Error-Message") is not None
    dwa = await exchange(reader, writer, base_request(280, 32))
    assert result_code(dwa) == 2001
    writer.close()


async def test_missing_cc_request_type_5005(server: DiameterServer) -> None:
    reader, writer, _cea = await raw_open(server)
    ccr = gy_ccr(CcRequestType.UPDATE_REQUEST, 1)
    message = Message(
        command_flags=ccr.command_flags,
        command_code=272,
        application_id=4,
        hop_by_hop=41,
        end_to_end=41,
        avps=tuple(a for a in ccr.avps if a.code != 416),
    )
    answer = await exchange(reader, writer, message)
    assert (result_code(answer), answer.is_error) == (5005, False)
    assert value_of(find(answer, "Failed-AVP")) == (Avp(416, 0x40, None, bytes(4)),)  # type: ignore[arg-type]
    writer.close()


async def test_e_bit_on_request_3008(server: DiameterServer) -> None:
    reader, writer, _cea = await raw_open(server)
    frame = bytearray(encode(with_hop(gy_ccr(CcRequestType.UPDATE_REQUEST, 1), 51)))
    frame[4] |= 0x20
    answer = await exchange(reader, writer, bytes(frame))
    assert (answer.hop_by_hop, result_code(answer), answer.is_error) == (51, 3008, True)
    dwa = await exchange(reader, writer, base_request(280, 52))
    assert result_code(dwa) == 2001
    writer.close()


async def test_client_without_sink_refuses_requests_3001(server: DiameterServer) -> None:
    client = await connect(server)
    try:
        [connection] = list(client._connections)
        # the server has no way to send us a CCR, so play the server's part on the client's engine
        connection.peer.receive_data(encode(with_hop(gy_ccr(CcRequestType.UPDATE_REQUEST, 1), 61)), 0.0)
        connection._drain_events([])
        answer = decode(connection.peer.data_to_send())
        assert (result_code(answer), answer.is_error) == (3001, True)
    finally:
        await client.stop()


async def test_request_timeout_raises_transport_error(sink: RecordingSink) -> None:
    srv = DiameterServer(settings(disconnect_timeout=0.2), sink)
    await srv.start()
    sink.gate = asyncio.Event()  # the server never answers
    client = await connect(srv)
    try:
        used = MultipleServicesCreditControl(
            rating_group=1, used_service_unit=(UsedServiceUnit(cc_total_octets=1),)
        )
        with pytest.raises(TransportError):
            await client.request(gy_ccr(CcRequestType.UPDATE_REQUEST, 1, used), timeout=0.2)
    finally:
        await client.stop()
        await srv.stop()


# --- TLS and reconnect ----------------------------------------------------------------------------


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl binary is needed to make a test certificate: apt-get install openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=gw.localdomain",
            "-addext",
            "subjectAltName=DNS:gw.localdomain,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls(tmp_path: Path, sink: RecordingSink) -> None:
    cert, key = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
    srv = DiameterServer(settings(tls=server_context), sink)
    host, port = await srv.start()
    client = DiameterClient(client_settings(tls=client_context), host, port, server_hostname="gw.localdomain")
    await client.start()
    try:
        await client.wait_open(5)
        used = MultipleServicesCreditControl(
            rating_group=3, used_service_unit=(UsedServiceUnit(cc_total_octets=9),)
        )
        cca = await client.request(gy_ccr(CcRequestType.UPDATE_REQUEST, 1, used))
        assert result_code(cca) == 2001
        [connection] = list(srv._connections)
        assert (
            connection.transport is not None and connection.transport.get_extra_info("ssl_object") is not None
        )
    finally:
        await client.stop()
        await srv.stop()
    assert [e.used_bytes for e in sink.events] == [9]


async def test_client_reconnects_after_server_restart(sink: RecordingSink) -> None:
    srv = DiameterServer(settings(), sink)
    host, port = await srv.start()
    client = DiameterClient(client_settings(reconnect_delay=0.05), host, port)
    await client.start()
    try:
        await client.wait_open(5)
        assert client.connects == 1
        await srv.stop()
        for _ in range(200):
            if not client.is_open:
                break
            await asyncio.sleep(0.01)
        assert not client.is_open
        srv = DiameterServer(settings(port=port), sink)
        await srv.start()
        await client.wait_open(10)
        assert client.connects >= 2
        used = MultipleServicesCreditControl(
            rating_group=3, used_service_unit=(UsedServiceUnit(cc_total_octets=1),)
        )
        cca = await client.request(gy_ccr(CcRequestType.UPDATE_REQUEST, 1, used))
        assert result_code(cca) == 2001
    finally:
        await client.stop()
        await srv.stop()


# --- edges of the connection ----------------------------------------------------------------------


async def test_oversized_message_is_answered_and_closed(sink: RecordingSink) -> None:
    srv = DiameterServer(settings(max_message_length=1024), sink)
    await srv.start()
    try:
        reader, writer, _cea = await raw_open(srv)
        header = bytes([1]) + (4096).to_bytes(3, "big") + bytes([0x80]) + (272).to_bytes(3, "big")
        header += (4).to_bytes(4, "big") + (71).to_bytes(4, "big") + (71).to_bytes(4, "big")
        answer = await exchange(reader, writer, header)
        assert (answer.hop_by_hop, result_code(answer)) == (71, 5015)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await srv.stop()


async def test_unframeable_answer_or_short_header_just_closes(server: DiameterServer) -> None:
    reader, writer, _cea = await raw_open(server)
    writer.write(b"\x02\x00\x00\x14")  # version 2: nothing to answer, the stream is lost
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_answer_before_cer_breaks_the_protocol(server: DiameterServer) -> None:
    reader, writer = await asyncio.open_connection(*srv_address(server))
    stray = Message(command_flags=0, command_code=280, application_id=0, hop_by_hop=1, end_to_end=1)
    writer.write(encode(stray))
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_malformed_cers_are_left_to_the_engine(server: DiameterServer) -> None:
    reader, writer = await asyncio.open_connection(*srv_address(server))
    no_origin = Message(command_flags=0x80, command_code=257, application_id=0, hop_by_hop=2, end_to_end=2)
    answer = await exchange(reader, writer, no_origin)
    assert (answer.hop_by_hop, result_code(answer)) == (2, 5005)
    broken = bytearray(encode(cer(hop=3)))
    broken[20 + 5 : 20 + 8] = (999).to_bytes(3, "big")  # first AVP overruns the message
    answer = await exchange(reader, writer, bytes(broken))
    assert (answer.hop_by_hop, result_code(answer)) == (3, 5014)
    assert server.open_peers == []
    writer.close()


async def test_unexpected_answer_is_ignored(server: DiameterServer) -> None:
    reader, writer, _cea = await raw_open(server)
    stray = Message(command_flags=0, command_code=272, application_id=4, hop_by_hop=999, end_to_end=1)
    writer.write(encode(stray))
    dwa = await exchange(reader, writer, base_request(280, 81))
    assert (dwa.hop_by_hop, result_code(dwa)) == (81, 2001)
    writer.close()


async def test_stop_with_a_pending_take_and_a_peer_ignoring_dpr(sink: RecordingSink) -> None:
    srv = DiameterServer(settings(disconnect_timeout=0.2), sink)
    await srv.start()
    sink.gate = asyncio.Event()  # the take never returns
    reader, writer, _cea = await raw_open(srv)
    used = MultipleServicesCreditControl(
        rating_group=1, used_service_unit=(UsedServiceUnit(cc_total_octets=1),)
    )
    writer.write(encode(with_hop(gy_ccr(CcRequestType.UPDATE_REQUEST, 1, used), 91)))
    for _ in range(200):
        if sink.waiting:
            break
        await asyncio.sleep(0.01)
    await asyncio.wait_for(srv.stop(), 5)  # cancels the take, DPRs, gives up on the DPA, aborts
    dpr = await read_message(reader)
    assert dpr.command_code == 282  # the CCR was never answered: its events were not taken
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert srv.answers[272, 2001] == 0 and sink.events == []
    writer.close()


def test_origin_state_id_defaults_to_a_boot_constant() -> None:
    first = DiameterSettings(origin_host=GW, origin_realm=REALM)
    assert 0 < first.origin_state_id < 2**32
    assert DiameterSettings(origin_host=GW, origin_realm=REALM).origin_state_id >= first.origin_state_id


# --- the client -----------------------------------------------------------------------------------


async def test_client_waits_for_a_server_that_is_not_there_yet(
    sink: RecordingSink, free_port: object
) -> None:
    port = free_port()  # type: ignore[operator]
    client = DiameterClient(client_settings(reconnect_delay=0.05, reconnect_max_delay=0.1), "127.0.0.1", port)
    await client.start()
    srv = DiameterServer(settings(port=port), sink)
    try:
        with pytest.raises(TransportError):
            await client.wait_open(0.2)  # connection refused, retrying with back-off
        await srv.start()
        await client.wait_open(5)
        assert client.connects == 1
    finally:
        await client.stop()
        await srv.stop()


async def play_peer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, requests: list[Message]
) -> list[Message]:
    """A minimal peer on the accepting side: answer the CER, send ``requests``, collect answers."""
    cer_message = await read_message(reader)
    cea = Message(
        command_flags=0,
        command_code=257,
        application_id=0,
        hop_by_hop=cer_message.hop_by_hop,
        end_to_end=cer_message.end_to_end,
        avps=(
            avp("Result-Code", 2001),
            avp("Origin-Host", "ocs.localdomain"),
            avp("Origin-Realm", REALM),
            avp("Auth-Application-Id", 0xFFFFFFFF),
        ),
    )
    writer.write(encode(cea) + b"".join(encode(r) for r in requests))
    return [await read_message(reader) for _ in requests]


async def test_client_with_sink_ingests_its_peers_requests(sink: RecordingSink) -> None:
    snr = with_hop(
        build_sy_snr(
            session_id="ocs;sy;9",
            origin_host="ocs.localdomain",
            origin_realm=REALM,
            destination_realm=REALM,
            destination_host=PCEF,
            msisdn="254700000009",
            policy_counter_status_report=[
                PolicyCounterStatusReport(policy_counter_identifier="P", policy_counter_status="payg")
            ],
        ),
        5,
    )
    answers: asyncio.Future[list[Message]] = asyncio.get_running_loop().create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answers.set_result(await play_peer(reader, writer, [snr]))
        await reader.read()  # until the client gives up waiting for a DPA and closes
        writer.close()

    peer_server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = peer_server.sockets[0].getsockname()[1]
    client = DiameterClient(client_settings(disconnect_timeout=0.1), "127.0.0.1", port, sink)
    await client.start()
    try:
        [sna] = await asyncio.wait_for(answers, 5)
        assert (sna.hop_by_hop, sna.command_code, result_code(sna)) == (5, 8388636, 2001)
        assert [(e.kind, e.package_id, e.msisdn) for e in sink.events] == [
            (UsageKind.PAYG_STARTED, "pc:P", "254700000009")
        ]
        assert client.open_peers == [("ocs.localdomain", REALM)]
    finally:
        await client.stop()
        peer_server.close()
        await peer_server.wait_closed()


async def test_pending_request_fails_when_the_connection_drops() -> None:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await play_peer(reader, writer, [])
        await read_message(reader)  # the CCR: drop the connection instead of answering
        writer.close()

    peer_server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = peer_server.sockets[0].getsockname()[1]
    client = DiameterClient(client_settings(reconnect_delay=5), "127.0.0.1", port)
    await client.start()
    try:
        used = MultipleServicesCreditControl(
            rating_group=1, used_service_unit=(UsedServiceUnit(cc_total_octets=1),)
        )
        with pytest.raises(TransportError, match="lost"):
            await client.request(gy_ccr(CcRequestType.UPDATE_REQUEST, 1, used), timeout=5)
    finally:
        await client.stop()
        peer_server.close()
        await peer_server.wait_closed()
