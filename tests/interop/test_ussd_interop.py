"""USSD over SMPP 3.4 (``ussd_service_op`` 5.3.2.44, ``its_session_info`` 5.3.2.43; PROTOCOLS.md 1.1)
against implementations nobody here wrote (PEERS.md 2.1, 2.2, 2.5):

- smpplib 2.2.4 as the USSD application behind our SMSC simulator: it parses the PSSR indication our
  simulator sends and answers with submit_sm carrying the USSD TLVs; our handsets see its screens;
- node `smpp` 0.5.1 as the USSD centre in front of our gateway (``node/ussd_smsc.js``): it opens a
  dialogue with a PSSR indication, answers each USSR request with a USSR confirm, and prints every
  submit_sm of our gateway; the whole dialogue is checked from its output;
- node `smpp` as the USSD application behind our SMSC simulator (``node/ussd_esme.js``);
- tshark's SMPP dissector on a live loopback capture of a dialogue between our gateway and our SMSC
  simulator: the ops, session numbers, sequence numbers and end bits as sent, nothing malformed.

A missing peer fails these tests (the interop conftest's fixtures, an import error for smpplib): CI
installs them, and a skipped interop test proves nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ussd_peers import (
    SmpplibUssdApp,
    field_int,
    smpplib_reads_ussd_deliver_sm,
    start_dumpcap,
    start_ussd_esme,
    start_ussd_smsc,
    stop_dumpcap,
    tshark,
    ussd_gateway,
)

from protocols.ussd import UssdServiceOp
from simulators.handset import DEFAULT_PROFILE, Handset, UserPolicy, UssdDialog
from simulators.smsc import ScreenKind, SmscSimulator, UssdScreen

pytestmark = pytest.mark.interop

Op = UssdServiceOp
WAIT = 15.0
SYSTEM_ID, PASSWORD = "esme1", "secret1"  # an account of the interop conftest's smsc_factory
MSISDN, OTHER = "254700000042", "254700000043"
SmscFactory = Callable[..., Any]

# the shipped menus (configs/ussd/menus.yaml)
MAIN = "Data shop\n1. Buy data bundle\n2. My offers\n3. Send data to a friend\n4. Check balance\n5. Help"
BUY_DATA = "Choose a bundle type\n1. Daily bundles\n2. Weekly bundles\n3. Monthly bundles\n0. Back"
DAILY = (
    "Daily bundles (valid 24 hours)\n1. 50MB for 10 KES\n2. 100MB for 20 KES\n3. 250MB for 45 KES\n0. Back"
)
CONFIRM = "Buy 100MB valid 1 day for 20 KES?\n1. Yes, buy\n2. No\n0. Back"


def handset(smsc: SmscSimulator, msisdn: str) -> Handset:
    return Handset(msisdn, None, DEFAULT_PROFILE, UserPolicy(), smsc, seed=1)


async def walk(dialog: UssdDialog, *inputs: str) -> list[UssdScreen]:
    """The first screen, then the screen after each input."""
    screens = [await dialog.next_screen(WAIT)]
    for value in inputs:
        await dialog.answer(value)
        screens.append(await dialog.next_screen(WAIT))
    return screens


# --- smpplib as the USSD application ------------------------------------------------------------------


async def test_smpplib_answers_our_handsets_through_our_smsc(smsc_factory: SmscFactory) -> None:
    smsc, port = await smsc_factory()
    app = SmpplibUssdApp(port, SYSTEM_ID, PASSWORD, depth=3)
    with smpplib_reads_ussd_deliver_sm():
        running = asyncio.create_task(asyncio.to_thread(app.run, 2, WAIT))
        try:
            assert await asyncio.to_thread(app.bound.wait, WAIT), "smpplib did not bind"
            dialogs = [await handset(smsc, MSISDN).dial("*123#"), await handset(smsc, OTHER).dial("*150*7#")]
            mine, others = await asyncio.gather(walk(dialogs[0], "1", "2"), walk(dialogs[1], "2", "1"))
        finally:
            await asyncio.wait_for(running, WAIT)  # smpplib unbinds after two final screens
    session = dialogs[0].session.session_id
    assert session is not None  # the standard profile numbers every session
    assert [(s.kind, s.op, s.sequence, s.text) for s in mine] == [
        (ScreenKind.CONTINUE, Op.USSR_REQ, 1, "smpplib menu 1"),
        (ScreenKind.CONTINUE, Op.USSR_REQ, 3, "smpplib menu 2"),
        (ScreenKind.FINAL, Op.PSSR_RESP, 5, "smpplib: you chose 1>2"),
    ]
    assert [s.text for s in others] == ["smpplib menu 1", "smpplib menu 2", "smpplib: you chose 2>1"]
    # what smpplib parsed from our simulator's deliver_sm: the PSSR indication, then the USSR confirms
    pssr, confirm1, confirm2 = (r for r in app.received if r["source_addr"] == MSISDN)
    assert pssr == {
        "service_type": "USSD",
        "source_addr": MSISDN,
        "destination_addr": "123",
        "data_coding": 0,
        "short_message": b"*123#",
        "ussd_service_op": 0x01,
        "its_session_info": session << 8 | 0,  # sequence 0, no end bit
    }
    assert [(c["ussd_service_op"], c["short_message"]) for c in (confirm1, confirm2)] == [
        (0x12, b"1"),
        (0x12, b"2"),
    ]
    assert [c["its_session_info"] for c in (confirm1, confirm2)] == [
        session << 8 | 2 << 1,
        session << 8 | 4 << 1,
    ]
    other_pssr = next(r for r in app.received if r["source_addr"] == OTHER)
    assert (other_pssr["short_message"], other_pssr["destination_addr"]) == (b"*150*7#", "150")
    assert other_pssr["its_session_info"] >> 8 == dialogs[1].session.session_id
    # smpplib's six submit_sm were all taken and relayed
    assert len(app.sent) == 6 and app.statuses == [0] * 6 and app.completed == 2
    assert smsc.stats.ussd_refused == 0 and smsc.stats.ussd_screens == 6


# --- node `smpp` as the USSD centre in front of our gateway ---------------------------------------------


@pytest.mark.usefixtures("require_node")
async def test_node_ussd_centre_runs_a_dialogue_with_our_gateway() -> None:
    replies = ["1", "1", "2", "1"]  # buy data -> daily -> 100MB -> yes
    node = await start_ussd_smsc(
        "--msisdn", MSISDN, "--session", "42", "--code", "*123#", "--replies", ",".join(replies)
    )
    try:
        async with ussd_gateway(node.port, "gw-node", "pw") as gateway:
            await node.wait_for(lambda: bool(node.events("done")), "our final screen")
            journeys = list(gateway.service.journeys)
        assert await node.finish() == 0, node.raw  # node exits once it answered our unbind
    finally:
        await node.stop()

    assert node.events("error") == []
    assert node.events("bind") == [{"event": "bind", "command": "bind_transceiver", "system_id": "gw-node"}]
    # node's PSSR indication and USSR confirms, each taken by our gateway
    delivered = node.events("deliver_sm")
    assert [(d["ussd_service_op"], d["sequence"], d["text"]) for d in delivered] == [
        (0x01, 0, "*123#"),
        *((0x12, 2 * n, reply) for n, reply in enumerate(replies, 1)),
    ]
    assert [r["command_status"] for r in node.events("deliver_sm_resp")] == [0] * 5
    # our gateway's submit_sm as node parsed them: USSR requests, then the PSSR response with the end
    # bit, session 42 echoed, the sequence one past node's
    submits = node.events("submit_sm")
    assert [s["text"] for s in submits] == [
        MAIN,
        BUY_DATA,
        DAILY,
        CONFIRM,
        f"Thank you. 100MB added to {MSISDN}.",
    ]
    assert [(s["ussd_service_op"], s["session"], s["sequence"], s["end"]) for s in submits] == [
        (0x02, 42, 1, False),
        (0x02, 42, 3, False),
        (0x02, 42, 5, False),
        (0x02, 42, 7, False),
        (0x11, 42, 9, True),
    ]
    assert [s["its_session_info"] for s in submits] == [[42, 2], [42, 6], [42, 10], [42, 14], [42, 19]]
    for s in submits:
        assert (s["service_type"], s["source_addr"], s["destination_addr"]) == ("USSD", "123", MSISDN)
        assert (s["dest_addr_ton"], s["dest_addr_npi"], s["data_coding"], s["esm_class"]) == (1, 1, 0, 0)
        assert s["registered_delivery"] == 0  # a USSD screen asks for no delivery receipt
    assert node.events("done") == [{"event": "done", "replies_left": 0}]
    assert node.events("unbind") == [{"event": "unbind"}]
    # the purchase, once, and the journey on our side
    assert gateway.purchases.made == [{"msisdn": MSISDN, "mb": "100", "price": "20", "channel": "ussd_menu"}]
    assert [(j.msisdn, j.session_id, j.outcome) for j in journeys] == [(MSISDN, 42, "completed")]


# --- node `smpp` as the USSD application behind our SMSC ----------------------------------------------------


@pytest.mark.usefixtures("require_node")
async def test_node_ussd_application_answers_our_handsets(smsc_factory: SmscFactory) -> None:
    smsc, port = await smsc_factory()
    node = await start_ussd_esme(port, SYSTEM_ID, PASSWORD, "--depth", "3", "--dialogues", "2")
    try:
        menu_dialog = await handset(smsc, MSISDN).dial("*123#")
        screens = await walk(menu_dialog, "1", "2")
        one_shot = await handset(smsc, OTHER).dial("*123*500#")
        final = await one_shot.next_screen(WAIT)
        assert await node.finish() == 0, node.raw
    finally:
        await node.stop()

    session = menu_dialog.session.session_id
    assert [(s.kind, s.op, s.sequence, s.text) for s in screens] == [
        (ScreenKind.CONTINUE, Op.USSR_REQ, 1, "Node menu 1/3\n1. Yes\n2. No"),
        (ScreenKind.CONTINUE, Op.USSR_REQ, 3, "Node menu 2/3\n1. Yes\n2. No"),
        (ScreenKind.FINAL, Op.PSSR_RESP, 5, "Node: you chose 1>2"),
    ]
    # a UCS-2 final screen (data_coding 8) straight after the dial
    assert (final.kind, final.op, final.sequence, final.text) == (
        ScreenKind.FINAL,
        Op.PSSR_RESP,
        1,
        "Спасибо! 500MB",
    )
    # what node parsed from our simulator's deliver_sm
    delivered = node.events("deliver_sm")
    assert [
        (d["source_addr"], d["ussd_service_op"], d["session"], d["sequence"], d["end"], d["text"])
        for d in delivered
    ] == [
        (MSISDN, 0x01, session, 0, False, "*123#"),
        (MSISDN, 0x12, session, 2, False, "1"),
        (MSISDN, 0x12, session, 4, False, "2"),
        (OTHER, 0x01, one_shot.session.session_id, 0, False, "*123*500#"),
    ]
    assert all(
        (d["service_type"], d["destination_addr"], d["data_coding"]) == ("USSD", "123", 0) for d in delivered
    )
    (summary,) = [line for line in node.lines if "completed" in line]
    assert summary["completed"] == 2 and summary["screens"] == 4 and summary["errors"] == []
    assert smsc.stats.ussd_screens == 4 and smsc.stats.ussd_refused == 0


# --- tshark on our own traffic ---------------------------------------------------------------------------------


async def test_tshark_dissects_a_ussd_dialogue_between_our_gateway_and_smsc(
    smsc_factory: SmscFactory, tshark_tools: tuple[str, str], tmp_path: Path
) -> None:
    dumpcap, tshark_bin = tshark_tools
    smsc, port = await smsc_factory()
    pcap = tmp_path / "ussd.pcapng"
    capture = await start_dumpcap(dumpcap, port, pcap)
    try:
        async with ussd_gateway(port, SYSTEM_ID, PASSWORD) as gateway:
            # five one-shot purchases first, so that the dialogue below runs on session number 5
            for n in range(5):
                quick = await handset(smsc, f"25470000010{n}").dial("*123*100#")
                assert (await quick.next_screen(WAIT)).final
            dialog = await handset(smsc, MSISDN).dial("*123*2#")  # my offers, by shortcut
            screens = await walk(dialog, "1", "1")  # the offer, yes: three screens
    finally:
        await stop_dumpcap(capture)
    assert [s.kind for s in screens] == [ScreenKind.CONTINUE, ScreenKind.CONTINUE, ScreenKind.FINAL]
    assert screens[-1].text == f"Thank you. 500MB added to {MSISDN}." and len(gateway.purchases.made) == 6
    session = dialog.session.session_id
    assert session == 5

    fields = tshark(
        tshark_bin, pcap, port, "-Y", "smpp", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
        "-e", "smpp.command_id", "-e", "smpp.ussd_service_op", "-e", "smpp.its_session.number",
        "-e", "smpp.its_session.sequence", "-e", "smpp.its_session.ind", "-e", "smpp.command_status",
        "-e", "smpp.message",
    )  # fmt: skip
    ussd: list[tuple[int, ...]] = []
    messages: list[bytes] = []
    commands: list[int] = []
    statuses: list[int] = []
    for line in fields.splitlines():
        cids, ops, numbers, sequences, ends, status, texts = (
            column.split(",") if column else [] for column in line.split("\t")
        )
        commands += map(field_int, cids)
        statuses += map(field_int, status)
        # every submit_sm / deliver_sm of this link is USSD; tshark lists their fields in PDU order
        requests = [field_int(c) for c in cids if field_int(c) in (0x04, 0x05)]
        assert len(requests) == len(ops) == len(numbers) == len(sequences) == len(ends) == len(texts), line
        columns = zip(ops, numbers, sequences, ends, strict=True)
        ussd += [(cid, *map(field_int, values)) for cid, values in zip(requests, columns, strict=True)]
        messages += (bytes.fromhex(t) for t in texts)
    deliver, submit = 0x05, 0x04
    warm_up = [row for n in range(5) for row in ((deliver, 0x01, n, 0, 0), (submit, 0x11, n, 1, 1))]
    assert ussd == [
        *warm_up,
        (deliver, 0x01, session, 0, 0),  # PSSR indication: *123*2#
        (submit, 0x02, session, 1, 0),  # USSR request: the offers
        (deliver, 0x12, session, 2, 0),  # USSR confirm: 1
        (submit, 0x02, session, 3, 0),  # USSR request: confirm the offer
        (deliver, 0x12, session, 4, 0),  # USSR confirm: 1
        (submit, 0x11, session, 5, 1),  # PSSR response, end of session
    ]
    # the texts, as GSM 7-bit unpacked octets (data_coding 0, which tshark 4.0 shows as bytes)
    assert messages[len(warm_up) :] == [
        b"*123*2#",
        screens[0].text.encode(),
        b"1",
        screens[1].text.encode(),
        b"1",
        screens[2].text.encode(),
    ]
    assert commands.count(0x80000004) == commands.count(0x80000005) == 8  # every request answered
    assert statuses and set(statuses) == {0}
    # the dissector names the operations and the end-of-session indicator
    detail = tshark(tshark_bin, pcap, port, "-Y", f"smpp.its_session.number == {session}", "-O", "smpp")
    for shown in (
        "USSD service operation: PSSR indication (1)",
        "USSD service operation: USSR request (2)",
        "USSD service operation: USSR confirm (18)",
        "USSD service operation: PSSR response (17)",
        "Session indicator: End of session indicator active (0x1)",
        f"Session number: {session}",
    ):
        assert shown in detail, f"{shown!r} not in tshark's decoding"
    # no malformed frame, no expert info of severity warning or worse
    assert tshark(tshark_bin, pcap, port, "-Y", "_ws.malformed || _ws.expert.severity >= 6291456") == ""
