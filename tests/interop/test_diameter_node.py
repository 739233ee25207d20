"""node `diameter` 0.7.0 (node-diameter, PEERS.md 3.2) as a client of our Diameter server.

diameter_client.js sends, strictly one after the other, a CER, a Gy CCR-I / CCR-U / CCR-T (RFC 4006
section 3.1 with the Reporting-Reason of 3GPP TS 32.299 section 7.2.175), a Gx CCR-U with
Event-Trigger USAGE_REPORT and Usage-Monitoring-Information (3GPP TS 29.212 sections 5.3.7,
5.3.60), an Sy SNR (3GPP TS 29.219 section 5.6.4) and a DPR (RFC 6733 section 5.4). Every answer
must be 2001 and echo its request (RFC 6733 section 6.2; RFC 4006 section 3.2), every report must
reach the sink as the expected ``UsageEvent``, and node's decoder, which throws on any AVP or
enumerated value its dictionary lacks, must accept everything we send (a control test shows that it
does throw, so the check can fail).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from diameter_peers import (
    GW_HOST,
    GX_MONITORING_KEY,
    GX_SESSION,
    GX_USED,
    GY_EXHAUSTED_OCTETS,
    GY_FINAL_OCTETS,
    GY_GRANT,
    GY_QUOTA,
    GY_SESSION,
    GY_THRESHOLD_OCTETS,
    HOST,
    MSISDN,
    NODE_MISSING,
    NODE_SERVER_SETTINGS,
    REALM,
    SY_COUNTER,
    SY_SESSION,
    eventually,
    find_node,
    node_usage_scenario,
    run_node_diameter,
    start_server,
)
from scapy.contrib.diameter import AVP, DiamAns

from campaign_core.usage import UsageEvent, UsageKind

pytestmark = pytest.mark.interop

STEPS = ["cer", "gy-ccr-i", "gy-ccr-u", "gy-ccr-t", "gx-ccr-u", "sy-snr", "dpr"]


@pytest.fixture
def node() -> str:
    found = find_node()
    if found is None:
        pytest.fail(NODE_MISSING)
    return found


def _avp(avps: list[Any], name: str) -> Any:
    """The value of the first AVP ``name`` in node's array form ([[name, value], ...])."""
    values = [value for key, value in avps if key == name]
    assert values, f"{name} not in {avps}"
    return values[0]


def _expected_events(sy_end_to_end: int) -> list[UsageEvent]:
    def event(**fields: Any) -> UsageEvent:
        return UsageEvent(msisdn=MSISDN, event_time=0.0, **fields)

    return [
        event(
            event_id=f"{GY_SESSION};1;0", kind=UsageKind.THRESHOLD, package_id="rg:100", source="diameter:gy",
            sequence=1, used_bytes=GY_THRESHOLD_OCTETS, quota_bytes=GY_QUOTA, percent=90.0,
        ),
        event(
            event_id=f"{GY_SESSION};1;1", kind=UsageKind.EXHAUSTED, package_id="rg:200", source="diameter:gy",
            sequence=1, used_bytes=GY_EXHAUSTED_OCTETS,
        ),
        # FINAL in a CCR-T is the end of the session, not an exhaustion
        event(
            event_id=f"{GY_SESSION};2;0", kind=UsageKind.USAGE, package_id="rg:100", source="diameter:gy",
            sequence=2, used_bytes=GY_FINAL_OCTETS, quota_bytes=GY_QUOTA,
        ),
        event(
            event_id=f"{GX_SESSION};1;0", kind=UsageKind.USAGE, package_id=f"mk:{GX_MONITORING_KEY}",
            source="diameter:gx", sequence=1, used_bytes=GX_USED, percent=90.0,
        ),
        event(
            event_id=f"{SY_SESSION};e2e={sy_end_to_end:08x};0", kind=UsageKind.EXHAUSTED,
            package_id=f"pc:{SY_COUNTER}", source="diameter:sy",
        ),
    ]  # fmt: skip


async def test_node_reports_are_answered_2001_and_become_usage_events(node: str, tmp_path: Path) -> None:
    async with start_server(**NODE_SERVER_SETTINGS) as (server, sink, port):
        run = await run_node_diameter(node, port, node_usage_scenario(), tmp_path)
        # the DPR closes the connection: our side forgets the peer
        await eventually(lambda: not server.open_peers, 5, "the peer to be gone after its DPR")

    # node's strict decoder accepted every answer (an unknown AVP would have been an "error" line)
    assert run.errors() == [] and run.exit_code == 0, (run.lines, run.stderr)
    assert run.lines[-1] == {"done": True, "refused": False}
    answers = run.answers()
    assert list(answers) == STEPS
    for step, line in answers.items():
        assert line["result_code"] == 2001, (step, line)
        assert line["flags"]["error"] is False and line["flags"]["request"] is False, (step, line)
        assert line["hop_by_hop_ok"] and line["end_to_end_ok"], (step, line)
        assert _avp(line["avps"], "Origin-Host") == GW_HOST
        assert _avp(line["avps"], "Origin-Realm") == REALM
    # application answers keep the request's P bit and Session-Id (RFC 6733 section 6.2)
    for step, session in (("gy-ccr-u", GY_SESSION), ("gx-ccr-u", GX_SESSION), ("sy-snr", SY_SESSION)):
        assert answers[step]["flags"]["proxiable"] is True
        assert answers[step]["session_id"] == session
        assert answers[step]["avps"][0] == ["Session-Id", session]  # first, as RFC 6733 section 8.8 asks

    cea = answers["cer"]["avps"]
    assert _avp(cea, "Auth-Application-Id") == "Diameter Credit Control"
    assert [member for key, member in cea if key == "Vendor-Specific-Application-Id"] == [
        [["Vendor-Id", 10415], ["Auth-Application-Id", "3GPP Gx"]],
        [["Vendor-Id", 10415], ["Auth-Application-Id", "3GPP Sy"]],
    ]
    assert _avp(cea, "Host-IP-Address") == HOST

    # CCAs echo CC-Request-Type / -Number (RFC 4006 section 3.2) with Auth-Application-Id
    for step, request_type, number, application in (
        ("gy-ccr-i", "INITIAL_REQUEST", 0, "Diameter Credit Control"),
        ("gy-ccr-u", "UPDATE_REQUEST", 1, "Diameter Credit Control"),
        ("gy-ccr-t", "TERMINATION_REQUEST", 2, "Diameter Credit Control"),
        ("gx-ccr-u", "UPDATE_REQUEST", 1, "3GPP Gx"),
    ):
        avps = answers[step]["avps"]
        assert _avp(avps, "CC-Request-Type") == request_type, step
        assert _avp(avps, "CC-Request-Number") == number, step
        assert _avp(avps, "Auth-Application-Id") == application, step
    # one answer MSCC per request MSCC; units granted only where they were requested (the CCR-I's RSU)
    mscc_i = [
        value for key, value in answers["gy-ccr-i"]["avps"] if key == "Multiple-Services-Credit-Control"
    ]
    assert mscc_i == [
        [
            ["Granted-Service-Unit", [["CC-Total-Octets", str(GY_GRANT)]]],
            ["Rating-Group", 100],
            ["Result-Code", "DIAMETER_SUCCESS"],
        ]
    ]
    mscc_u = [
        value for key, value in answers["gy-ccr-u"]["avps"] if key == "Multiple-Services-Credit-Control"
    ]
    assert mscc_u == [
        [["Rating-Group", 100], ["Result-Code", "DIAMETER_SUCCESS"]],
        [["Rating-Group", 200], ["Result-Code", "DIAMETER_SUCCESS"]],
    ]
    assert answers["dpr"]["command"] == "Disconnect-Peer"

    got = [dataclasses.replace(event, event_time=0.0) for event in sink.events]
    assert got == _expected_events(answers["sy-snr"]["end_to_end"])
    assert server.answers[272, 2001] == 4 and server.answers[8388636, 2001] == 1


async def test_node_answers_our_watchdog_while_idle(node: str, tmp_path: Path) -> None:
    """Our DWR (RFC 3539 section 3.4: sent when the link is idle for Tw) decodes in node and its DWA
    keeps the connection: the request after the idle spell is still answered."""
    scenario = node_usage_scenario()
    gy_update = scenario["steps"][1]
    scenario["steps"] = [{"pause_ms": 1600}, gy_update]
    async with start_server(watchdog_interval=0.5, **NODE_SERVER_SETTINGS) as (_server, sink, port):
        run = await run_node_diameter(node, port, scenario, tmp_path)
    assert run.errors() == [] and run.exit_code == 0, (run.lines, run.stderr)
    watchdogs = [line for line in run.lines if line.get("request") == "Device-Watchdog"]
    assert len(watchdogs) >= 2  # one per idle Tw, each answered (else the second would not come)
    assert run.answers()["gy-ccr-u"]["result_code"] == 2001
    assert len(sink.events) == 2


async def test_node_is_refused_by_the_allow_list(node: str, tmp_path: Path) -> None:
    """A CER from a peer outside ``allowed_peers`` gets CEA 3010 DIAMETER_UNKNOWN_PEER with the E bit
    (RFC 6733 sections 5.3 and 7.1.3), which node decodes; nothing is ingested."""
    async with start_server(allowed_peers=(("pcef.*", "*"),)) as (server, sink, port):
        run = await run_node_diameter(node, port, node_usage_scenario(), tmp_path)
        await eventually(lambda: not server.open_peers, 5, "no open peer")
    assert run.exit_code == 3, (run.lines, run.stderr)
    cea = run.answers()["cer"]
    assert cea["result_code"] == 3010 and cea["flags"]["error"] is True
    assert sink.events == []


@contextlib.asynccontextmanager
async def _fake_server_with_unknown_avp() -> AsyncIterator[int]:
    """Answers the CER with a CEA carrying AVP 99999 (M bit): what node must refuse to decode."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readexactly(20)
        request = head + await reader.readexactly(int.from_bytes(head[1:4], "big") - 20)
        cea = DiamAns(
            "Capabilities-Exchange",
            drHbHId=int.from_bytes(request[12:16], "big"),
            drEtEId=int.from_bytes(request[16:20], "big"),
            avpList=[
                AVP("Result-Code", val=2001),
                AVP("Origin-Host", val="fake.localdomain"),
                AVP("Origin-Realm", val=REALM),
                AVP(99999, avpFlags=0x40, val=b"\x00\x00\x00\x01"),
            ],
        )
        writer.write(bytes(cea))
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, HOST, 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def test_control_node_rejects_an_answer_with_an_unknown_avp(node: str, tmp_path: Path) -> None:
    """The strictness the tests above rely on is real: an unknown AVP makes node's decoder fail."""
    async with _fake_server_with_unknown_avp() as port:
        run = await run_node_diameter(node, port, node_usage_scenario(), tmp_path, timeout=20)
    assert run.exit_code == 2, (run.lines, run.stderr)
    assert any("99999" in error for error in run.errors()), run.lines
