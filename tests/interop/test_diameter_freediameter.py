"""freeDiameterd (Debian 1.2.1, PEERS.md 3.1) as a client peer of our Diameter server.

freeDiameterd connects (through a recording relay, so the tests see the wire) and runs the
capabilities exchange (RFC 6733 section 5.3) and the watchdog (RFC 3539 section 3.4); the
``ccr_send`` extension (tests/interop/freediameter/ccr_send.c) sends Gy CCR-U with
Multiple-Services-Credit-Control / Used-Service-Unit / Reporting-Reason (RFC 4006 section 3.1, 3GPP
TS 32.299 section 7.2.175), a Gx CCR-U with Event-Trigger USAGE_REPORT and
Usage-Monitoring-Information (3GPP TS 29.212 sections 5.3.7, 5.3.60) and an Sy SNR (3GPP TS 29.219
section 5.6.4; the extension defines the Sy dictionary entries Debian's 1.2.1 lacks), and logs each
answer's Result-Code. Disconnection both ways: freeDiameterd's DPR on SIGTERM and ours on
``stop()`` (RFC 6733 section 5.4) must each be answered.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from diameter_peers import (
    CCR,
    CER,
    CLIENT,
    DPR,
    DWR,
    FLAG_ERROR,
    GW_HOST,
    REALM,
    SERVER,
    SNR,
    Conversation,
    FreeDiameterd,
    FreeDiameterTools,
    GxReport,
    GyReport,
    RecordingRelay,
    Report,
    SyReport,
    avp_value,
    build_ccr_send,
    eventually,
    find_freediameter,
    make_tls_credentials,
    parse_frame,
    start_server,
    write_ccr_send_config,
    write_freediameter_config,
)

from campaign_core.usage import UsageEvent, UsageKind

pytestmark = pytest.mark.interop

PCEF = "pcef.localdomain"
MSISDN = "31699900001"
STATE_ID = 0x5EED
OPEN_LINE = r"'STATE_WAITCEA'\s*->\s*'STATE_OPEN'\s*'gw\.localdomain'"
NEW_STATE_ID = "new origin-state-id"  # freeDiameter's complaint before it resets a connection
RESULT_CODE, ORIGIN_HOST, ORIGIN_STATE_ID, DISCONNECT_CAUSE = 268, 264, 278, 273

REPORTS: list[Report] = [
    GyReport(f"{PCEF};gy;1", MSISDN, 1, 100, 900_000_000, 0),  # THRESHOLD at 90 % of a 1 GB package
    GyReport(f"{PCEF};gy;1", MSISDN, 2, 100, 1_000_000_000, 3),  # QUOTA_EXHAUSTED
    GyReport(f"{PCEF};gy;2", MSISDN, 7, 200, 123_456, 0),  # THRESHOLD of a package of unknown size
    GxReport(f"{PCEF};gx;1", MSISDN, 4, "pkg-5GB", 4_831_838_208),  # over 2^32
    SyReport(f"{PCEF};sy;1", MSISDN, "DATA_PKG_5GB", "exhausted"),
]
SERVER_SETTINGS: dict[str, Any] = {
    "origin_state_id": STATE_ID,
    "gy_quota_bytes": {100: 1_000_000_000},
    "gy_threshold_percent": 80.0,
}


def expected_events(sy_end_to_end: int) -> list[UsageEvent]:
    def event(**fields: Any) -> UsageEvent:
        return UsageEvent(msisdn=MSISDN, event_time=0.0, **fields)

    gy, gx = "diameter:gy", "diameter:gx"
    return [
        event(
            event_id=f"{PCEF};gy;1;1;0", kind=UsageKind.THRESHOLD, package_id="rg:100", source=gy, sequence=1,
            used_bytes=900_000_000, quota_bytes=1_000_000_000, percent=90.0,
        ),
        event(
            event_id=f"{PCEF};gy;1;2;0", kind=UsageKind.EXHAUSTED, package_id="rg:100", source=gy, sequence=2,
            used_bytes=1_000_000_000, quota_bytes=1_000_000_000,
        ),
        event(
            event_id=f"{PCEF};gy;2;7;0", kind=UsageKind.THRESHOLD, package_id="rg:200", source=gy, sequence=7,
            used_bytes=123_456, percent=80.0,
        ),
        event(
            event_id=f"{PCEF};gx;1;4;0", kind=UsageKind.USAGE, package_id="mk:pkg-5GB", source=gx, sequence=4,
            used_bytes=4_831_838_208,
        ),
        event(
            event_id=f"{PCEF};sy;1;e2e={sy_end_to_end:08x};0", kind=UsageKind.EXHAUSTED,
            package_id="pc:DATA_PKG_5GB", source="diameter:sy",
        ),
    ]  # fmt: skip


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fd_tools() -> FreeDiameterTools:
    found = find_freediameter()
    if isinstance(found, str):
        pytest.fail(found)
    return found


@pytest.fixture(scope="session")
def ccr_send(
    fd_tools: FreeDiameterTools, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The extension, built once per source version (under pytest's cache dir when it is enabled)."""
    cache = getattr(request.config, "cache", None)
    directory = cache.mkdir("ccr_send") if cache is not None else tmp_path_factory.mktemp("ccr_send")
    return build_ccr_send(fd_tools, Path(directory))


@pytest.fixture(scope="session")
def tls_credentials(
    fd_tools: FreeDiameterTools, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    return make_tls_credentials(fd_tools, tmp_path_factory.mktemp("fd-tls"), PCEF)


@contextlib.asynccontextmanager
async def freediameterd(
    tools: FreeDiameterTools,
    directory: Path,
    port: int,
    credentials: tuple[Path, Path],
    *,
    extension: Path | None = None,
    reports: Sequence[Report] = (),
) -> AsyncIterator[FreeDiameterd]:
    """freeDiameterd as pcef.localdomain connecting to 127.0.0.1:``port``; killed if still running."""
    extension_config = write_ccr_send_config(directory / "ccr_send.conf", reports) if extension else None
    config = write_freediameter_config(
        directory, tools, peer_port=port, cert=credentials[0], key=credentials[1], identity=PCEF,
        extension=extension, extension_config=extension_config,
    )  # fmt: skip
    daemon = FreeDiameterd(tools, config)
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.kill()


def exchanges(conversation: Conversation, code: int, requester: str) -> list[tuple[Any, Any]]:
    """(request, answer) pairs of command ``code`` requested by ``requester``, matched by Hop-by-Hop
    Identifier, as scapy packets; an unanswered request pairs with None."""
    answerer = SERVER if requester == CLIENT else CLIENT
    answers = {
        packet.drHbHId: packet
        for packet in map(parse_frame, conversation.frames(answerer))
        if not packet.drFlags & 0x80 and packet.drCode == code
    }
    return [
        (packet, answers.get(packet.drHbHId))
        for packet in map(parse_frame, conversation.frames(requester))
        if packet.drFlags & 0x80 and packet.drCode == code
    ]


def only_conversation(relay: RecordingRelay) -> Conversation:
    assert len(relay.conversations) == 1, "freeDiameterd connected more than once"
    return relay.conversations[0]


# --- tests -------------------------------------------------------------------------------------------


async def test_freediameter_reports_become_usage_events(
    fd_tools: FreeDiameterTools, ccr_send: Path, tls_credentials: tuple[Path, Path], tmp_path: Path
) -> None:
    """The CCRs and the SNR arrive as the expected events and every answer is 2001; our idle-link DWR
    is answered; on SIGTERM freeDiameterd's DPR is answered and the peer is gone."""
    async with (
        start_server(watchdog_interval=1.0, **SERVER_SETTINGS) as (server, sink, port),
        RecordingRelay("127.0.0.1", port) as relay,
        freediameterd(
            fd_tools, tmp_path, relay.port, tls_credentials, extension=ccr_send, reports=REPORTS
        ) as daemon,
    ):
        await daemon.wait_for(OPEN_LINE)
        await eventually(lambda: server.open_peers == [(PCEF, REALM)], 5, "the peer OPEN on our side")
        done = await daemon.wait_for(r"ccr_send: done sent=(\d+) answered=(\d+)")
        assert done.groups() == (str(len(REPORTS)), str(len(REPORTS))), daemon.log
        conversation = only_conversation(relay)
        # idle for Tw (1 s) after the reports: our DWR, freeDiameterd's DWA
        await eventually(
            lambda: any(answer is not None for _, answer in exchanges(conversation, DWR, SERVER)),
            5,
            "freeDiameterd to answer our DWR",
        )
        returncode = await daemon.terminate()
        await eventually(lambda: not server.open_peers, 5, "the peer to be gone after its DPR")

    # every answer freeDiameterd received, as its extension logged it
    answers = daemon.answers()
    assert sorted((a["session"], a["cmd"], a["app"], a["result"]) for a in answers) == sorted(
        (report.session_id, str(SNR if isinstance(report, SyReport) else CCR), app, "2001")
        for report, app in zip(REPORTS, ("4", "4", "4", "16777238", "16777302"), strict=True)
    ), daemon.log
    assert "error" not in "\n".join(line for line in daemon.lines if "ccr_send:" in line)

    # the events (sorted: the requests are handled concurrently)
    snr = next(parse_frame(f) for f in conversation.frames(CLIENT) if parse_frame(f).drCode == SNR)
    got = sorted((dataclasses.replace(e, event_time=0.0) for e in sink.events), key=lambda e: e.event_id)
    assert got == sorted(expected_events(snr.drEtEId), key=lambda e: e.event_id)

    # on the wire: every CCR/SNR answered once, 2001, same Hop-by-Hop and End-to-End identifiers
    for code in (CCR, SNR):
        for request, answer in exchanges(conversation, code, CLIENT):
            assert answer is not None, request.show(dump=True)
            assert answer.drEtEId == request.drEtEId and not answer.drFlags & FLAG_ERROR
            assert avp_value(answer, RESULT_CODE) == 2001
    # our DWR carried our constant Origin-State-Id; freeDiameterd answered it 2001
    (dwr, dwa), *_ = [pair for pair in exchanges(conversation, DWR, SERVER) if pair[1] is not None]
    assert avp_value(dwr, ORIGIN_STATE_ID) == STATE_ID
    assert avp_value(dwa, RESULT_CODE) == 2001
    # freeDiameterd's DPR (REBOOTING) was answered 2001 by us, and it exited cleanly
    ((dpr, dpa),) = exchanges(conversation, DPR, CLIENT)
    assert avp_value(dpr, DISCONNECT_CAUSE) == 0
    assert dpa is not None and avp_value(dpa, RESULT_CODE) == 2001
    assert avp_value(dpa, ORIGIN_HOST) == GW_HOST.encode()
    assert returncode == 0, daemon.log
    assert NEW_STATE_ID not in daemon.log.lower()


async def test_freediameter_watchdog_is_answered_and_our_dpr_too(
    fd_tools: FreeDiameterTools, tls_credentials: tuple[Path, Path], tmp_path: Path
) -> None:
    """freeDiameterd's own DWR (TwTimer = 6 s, so this test waits up to ~9 s) gets our DWA with the
    Origin-State-Id of our CEA, and the link stays up; then our stop() sends a DPR it answers."""
    async with (
        start_server(watchdog_interval=60.0, **SERVER_SETTINGS) as (server, _sink, port),
        RecordingRelay("127.0.0.1", port) as relay,
        freediameterd(fd_tools, tmp_path, relay.port, tls_credentials) as daemon,
    ):
        await daemon.wait_for(OPEN_LINE)
        conversation = only_conversation(relay)
        await eventually(
            lambda: any(answer is not None for _, answer in exchanges(conversation, DWR, CLIENT)),
            12,
            "our DWA to freeDiameterd's DWR",
        )
        assert server.open_peers == [(PCEF, REALM)]
        await server.stop()
        await daemon.wait_for(r"Peer 'gw\.localdomain' sent a DPR with cause: REBOOTING", 5)
        await eventually(lambda: conversation.closed, 5, "the connection to close after our DPR")
        log = daemon.log

    cea = parse_frame(conversation.frames(SERVER)[0])
    assert cea.drCode == CER and avp_value(cea, RESULT_CODE) == 2001
    (_dwr, dwa), *_ = [pair for pair in exchanges(conversation, DWR, CLIENT) if pair[1] is not None]
    assert avp_value(dwa, RESULT_CODE) == 2001
    # PEERS.md 3.1: a DWA with another Origin-State-Id than the CEA's makes freeDiameter reset the link
    assert avp_value(dwa, ORIGIN_STATE_ID) == avp_value(cea, ORIGIN_STATE_ID) == STATE_ID
    assert NEW_STATE_ID not in log.lower()
    ((dpr, dpa),) = exchanges(conversation, DPR, SERVER)
    assert avp_value(dpr, ORIGIN_HOST) == GW_HOST.encode()
    assert dpa is not None and avp_value(dpa, RESULT_CODE) == 2001, log


async def test_freediameter_outside_the_allow_list_is_refused(
    fd_tools: FreeDiameterTools, ccr_send: Path, tls_credentials: tuple[Path, Path], tmp_path: Path
) -> None:
    """A CER from an Origin-Host no ``allowed_peers`` pattern admits: CEA 3010 DIAMETER_UNKNOWN_PEER
    with the E bit (RFC 6733 sections 5.3, 7.1.3), the connection closed, nothing sent or ingested."""
    async with (
        start_server(allowed_peers=(("ocs.*", REALM),), **SERVER_SETTINGS) as (server, sink, port),
        RecordingRelay("127.0.0.1", port) as relay,
        freediameterd(
            fd_tools, tmp_path, relay.port, tls_credentials, extension=ccr_send, reports=REPORTS
        ) as daemon,
    ):
        await daemon.wait_for(r"Connection to 'gw\.localdomain' failed")
        conversation = relay.conversations[0]
        await eventually(lambda: conversation.closed, 5, "our side to close the refused connection")
        assert server.open_peers == []
    (cea,) = [parse_frame(frame) for frame in conversation.frames(SERVER)]
    assert cea.drCode == CER and cea.drFlags & FLAG_ERROR
    assert avp_value(cea, RESULT_CODE) == 3010
    assert [parse_frame(frame).drCode for frame in conversation.frames(CLIENT)] == [CER]
    assert sink.events == [] and daemon.answers() == []


async def test_freediameter_burst_is_answered_under_backpressure(
    fd_tools: FreeDiameterTools, ccr_send: Path, tls_credentials: tuple[Path, Path], tmp_path: Path
) -> None:
    """600 CCRs sent at once (freeDiameterd does not wait for answers) through a server that handles at
    most 8 per connection at a time: every one answered 2001 exactly once, every report ingested."""
    burst = [GyReport(f"{PCEF};burst;{n}", MSISDN, 1, 300, 1000 + n, 3 if n % 2 else 0) for n in range(600)]
    async with (
        start_server(max_in_flight=8, **SERVER_SETTINGS) as (_server, sink, port),
        RecordingRelay("127.0.0.1", port) as relay,
        freediameterd(
            fd_tools, tmp_path, relay.port, tls_credentials, extension=ccr_send, reports=burst
        ) as daemon,
    ):
        done = await daemon.wait_for(r"ccr_send: done sent=(\d+) answered=(\d+)", 30)
    assert done.groups() == ("600", "600"), daemon.log
    assert sorted(a["session"] for a in daemon.answers() if a["result"] == "2001") == sorted(
        report.session_id for report in burst
    )
    assert sorted(e.event_id for e in sink.events) == sorted(f"{r.session_id};1;0" for r in burst)
    assert sum(e.kind is UsageKind.EXHAUSTED for e in sink.events) == 300
    assert len(only_conversation(relay).frames(SERVER)) == 1 + 600  # the CEA and one answer each
