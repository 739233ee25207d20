"""Wireshark (tshark 4.0, code nobody here wrote) judges one SIM toolkit push + accept end to end
(issue 4, "Tests"; PROTOCOLS.md sections 4.1 and 4.3).

1. SMPP on the wire: dumpcap captures loopback while the real chain of ``stk_e2e_kit`` runs one push
   and one accept. tshark must find the submit_sm of the push with UDHI, PID 0x7F, DCS 0xF6 and UDH
   IEI 0x70 (command packet), the MO deliver_sm of the answer with UDHI, PID 0x7F, DCS 0xF6 and IEI
   0x71 (response packet), the delivery receipt, and no malformed frame or expert warning.
2. The card's side: every APDU the handset exchanged with the ``SimCard`` in that run (TERMINAL
   PROFILE, ENVELOPE (SMS-PP download), FETCH of the dialog, its TERMINAL RESPONSE, FETCH of SEND SHORT
   MESSAGE, its TERMINAL RESPONSE) is written as GSMTAP-SIM in UDP to port 4729 and dissected by
   ``gsm_sim`` / ``etsi_cat`` / ``gsm_sms``: the command types, the results, the status words and
   the SMS-PP headers must be what the card did, and nothing malformed.

tshark and dumpcap come from the system (``.ci/run`` installs them): missing, the tests fail, never skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import struct
import subprocess
from pathlib import Path

import pytest
from stk_e2e_kit import (
    SHORT_CODE,
    WAIT,
    Subscriber,
    Testbed,
    make_sim_card,
    of_type,
    offer,
    quiet,
    wait_for_events,
    write_key_file,
)

from gateway.stk import StkAnswerReceived, StkDelivered, StkEvent
from protocols.stk.dstk import StkOutcome
from protocols.stk.terminal import TerminalProfile
from simulators.handset import ReactionDelay, UserAction, UserPolicy
from simulators.sim_applet import EnvelopeProcessed, Event, SimCard

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

TSHARK_TIMEOUT = 60
ALICE = Subscriber.numbered(1)
SUBMIT_SM, DELIVER_SM = "0x00000004", "0x00000005"
MALFORMED_OR_WARNING = "_ws.malformed || _ws.expert.severity >= 6291456"  # severity warning = 0x00600000


@pytest.fixture
def tools() -> tuple[str, str]:
    """dumpcap and tshark; failing (not skipping) when they are missing."""
    found = [shutil.which(name) for name in ("dumpcap", "tshark")]
    if None in found:
        pytest.fail("dumpcap/tshark missing: `apt-get install tshark` (.ci/run does it)")
    dumpcap, tshark = found
    assert dumpcap is not None and tshark is not None
    return dumpcap, tshark


def tshark(tshark_bin: str, pcap: Path, *args: str) -> str:
    proc = subprocess.run(
        [tshark_bin, "-n", "-r", str(pcap), *args],
        capture_output=True,
        text=True,
        timeout=TSHARK_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def field_rows(tshark_bin: str, pcap: Path, fields: list[str], *args: str) -> list[list[str]]:
    """One row per frame, one column per field (several occurrences joined by ",")."""
    options = [*args, "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"]
    for name in fields:
        options += ["-e", name]
    return [line.split("|") for line in tshark(tshark_bin, pcap, *options).splitlines()]


# --- the card's APDUs ----------------------------------------------------------------------------------


class RecordingSimCard(SimCard):
    """The real card, with each APDU of the terminal-card interface written down as it happens
    (C-APDU header + data + status word, as a SIMtrace tap would see it). Behaviour is untouched."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.apdus: list[bytes] = []
        self._envelope_at: int | None = None
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def set_terminal_profile(self, profile: TerminalProfile | bytes) -> None:
        super().set_terminal_profile(profile)
        data = profile if isinstance(profile, bytes) else profile.encode()
        self.apdus.append(bytes((0x80, 0x10, 0, 0, len(data))) + data + b"\x90\x00")

    def receive_data(self, data: bytes, now: float) -> None:
        # the status word is known once the card emits EnvelopeProcessed (see next_event)
        self._envelope_at = len(self.apdus)
        self.apdus.append(bytes((0x80, 0xC2, 0, 0, len(data))) + data)
        super().receive_data(data, now)

    def next_event(self) -> Event | None:
        event = super().next_event()
        if isinstance(event, EnvelopeProcessed) and self._envelope_at is not None:
            self.apdus[self._envelope_at] += event.status_word.to_bytes(2, "big")
            self._envelope_at = None
        return event

    def fetch(self) -> bytes:
        command = super().fetch()
        self.apdus.append(bytes((0x80, 0x12, 0, 0, len(command))) + command + b"\x90\x00")
        return command

    def terminal_response(self, data: bytes, now: float) -> int:
        status_word = super().terminal_response(data, now)
        self.apdus.append(bytes((0x80, 0x14, 0, 0, len(data))) + data + status_word.to_bytes(2, "big"))
        return status_word


def write_pcap(path: Path, frames: list[bytes], linktype: int) -> None:
    """A classic libpcap file (PROTOCOLS.md section 4.5)."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for n, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1_700_000_000 + n, 0, len(frame), len(frame)) + frame)


def gsmtap_sim(apdu: bytes) -> bytes:
    """GSMTAP v2 (16-octet header, type 0x04 SIM) in UDP to port 4729 in IPv4 (LINKTYPE_IPV4 = 228)."""
    gsmtap = struct.pack(">BBBBHbbIBBBB", 2, 4, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0) + apdu
    udp = struct.pack(">HHHH", 40000, 4729, 8 + len(gsmtap), 0) + gsmtap
    loopback = bytes((127, 0, 0, 1))
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, loopback, loopback) + udp


# --- live capture -----------------------------------------------------------------------------------------


async def start_dumpcap(dumpcap: str, port: int, path: Path) -> asyncio.subprocess.Process:
    """dumpcap on lo for ``tcp port {port}``; returns once it is capturing."""
    proc = await asyncio.create_subprocess_exec(
        dumpcap, "-i", "lo", "-f", f"tcp port {port}", "-w", str(path), "-q",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while loop.time() < deadline:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.05)
        if proc.returncode is not None:
            assert proc.stderr is not None
            err = (await proc.stderr.read()).decode(errors="replace").strip()
            pytest.fail(f"dumpcap exited {proc.returncode}: {err}")
        # the pcapng section header and interface description are written once the device is open
        if path.exists() and path.stat().st_size >= 48:
            await asyncio.sleep(0.3)  # let the filter settle before the first SYN
            return proc
    proc.kill()
    await proc.wait()
    pytest.fail(f"dumpcap did not start capturing within {WAIT} s")


async def stop_dumpcap(proc: asyncio.subprocess.Process) -> None:
    await asyncio.sleep(0.3)  # the last segments reach the capture buffer
    proc.send_signal(signal.SIGINT)  # SIGINT makes dumpcap flush and close the file
    _, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 0, err.decode(errors="replace")


async def push_and_accept(testbed: Testbed, tmp_path: Path) -> tuple[RecordingSimCard, list[StkEvent]]:
    card = make_sim_card(ALICE, card_class=RecordingSimCard)
    assert isinstance(card, RecordingSimCard)
    testbed.add_handset(ALICE, UserPolicy(UserAction.ACCEPT, delay=ReactionDelay.fixed(0.3)), card=card)
    gateway = await testbed.start_gateway(write_key_file(tmp_path / "sim_keys.yaml", [ALICE]))
    await gateway.push(offer("off-pcap", ALICE))

    def done(events: list[StkEvent]) -> bool:
        return bool(of_type(events, StkAnswerReceived))

    events = await wait_for_events(gateway.events, done, "the answer")
    events += await quiet(gateway.events, testbed.handsets)
    await gateway.stop()  # unbind: the capture ends with a clean close
    return card, events


# --- the tests ---------------------------------------------------------------------------------------------


async def test_tshark_sees_the_push_and_the_answer_on_the_wire(
    testbed: Testbed, tmp_path: Path, tools: tuple[str, str]
) -> None:
    dumpcap, tshark_bin = tools
    pcap = tmp_path / "stk_live.pcapng"
    proc = await start_dumpcap(dumpcap, testbed.port, pcap)
    try:
        _, events = await push_and_accept(testbed, tmp_path)
    finally:
        await stop_dumpcap(proc)
    assert [type(e) for e in events] == [StkDelivered, StkAnswerReceived]

    decode_as = ["-d", f"tcp.port=={testbed.port},smpp"]
    rows = field_rows(
        tshark_bin,
        pcap,
        [
            "smpp.command_id",
            "smpp.source_addr",
            "smpp.destination_addr",
            "smpp.esm.submit.features",
            "smpp.protocol_id",
            "smpp.data_coding",
            "gsm_sms.ie_identifier",
        ],
        *decode_as,
        "-Y",
        f"smpp.command_id == {SUBMIT_SM} || smpp.command_id == {DELIVER_SM}",
    )
    gw, sub = SHORT_CODE, ALICE.msisdn
    assert rows == [
        # the push: UDHI, SIM data download, class 2 8-bit, command packet identifier
        [SUBMIT_SM, gw, sub, "0x01", "0x7f", "0xf6", "0x70"],
        # the delivery receipt (the card took it)
        [DELIVER_SM, sub, gw, "0x00", "0x00", "0x00", ""],
        # the card's answer as MO: UDHI, PID 7F, DCS F6, response packet identifier
        [DELIVER_SM, sub, gw, "0x01", "0x7f", "0xf6", "0x71"],
    ]
    assert tshark(tshark_bin, pcap, *decode_as, "-Y", MALFORMED_OR_WARNING) == ""
    detail = tshark(tshark_bin, pcap, *decode_as, "-Y", f"smpp.command_id == {SUBMIT_SM}", "-V")
    for shown in (
        "Class 2 - (U)SIM specific",
        "(U)SIM Toolkit Security Headers",
        "Delivery receipt requested",
    ):
        assert shown in detail, f"{shown!r} not in tshark's decoding of the push:\n{detail}"


async def test_tshark_gsm_sim_dissects_the_cards_apdu_flow(
    testbed: Testbed, tmp_path: Path, tools: tuple[str, str]
) -> None:
    _, tshark_bin = tools
    card, events = await push_and_accept(testbed, tmp_path)
    (answer,) = of_type(events, StkAnswerReceived)
    assert (answer.offer_id, answer.outcome) == ("off-pcap", StkOutcome.ACCEPTED)

    pcap = tmp_path / "gsmtap_sim.pcap"
    write_pcap(pcap, [gsmtap_sim(apdu) for apdu in card.apdus], 228)
    rows = field_rows(
        tshark_bin,
        pcap,
        [
            "_ws.col.Info",
            "gsm_sim.apdu.ins",
            "gsm_sim.tp.sms_data_dld",
            "gsm_sim.tp.pa.get_inkey_bin",
            "etsi_cat.comp_tlv.cmd_type",
            "etsi_cat.comp_tlv.cmd_qual",
            "etsi_cat.comp_tlv.text",
            "etsi_cat.comp_tlv.result",
            "gsm_sms.tp-oa",
            "gsm_sms.tp-da",
            "gsm_sms.tp-pid",
            "gsm_sms.tp-dcs",
            "gsm_sms.ie_identifier",
            "gsm_sim.apdu.sw",
            "_ws.malformed",
        ],
    )
    # '91 XX' announces a proactive command of XX octets: the length of the FETCH that follows
    inkey_length, send_sms_length = card.apdus[2][4], card.apdus[4][4]
    prompt = "Buy 500 MB now, pay later? 4.00 USD"
    assert [row[0].strip() for row in rows] == [
        "ETSI TS 102.221 TERMINAL PROFILE",
        "ETSI TS 102.221 ENVELOPE GSM/3GPP/3GPP2 - SMS-PP Download",
        "ETSI TS 102.221 FETCH Proactive Command GET INKEY",
        "ETSI TS 102.221 TERMINAL RESPONSE GET INKEY",
        "ETSI TS 102.221 FETCH Proactive Command SEND SHORT MESSAGE",
        "ETSI TS 102.221 TERMINAL RESPONSE SEND SHORT MESSAGE",
    ]
    # fmt: off
    assert [row[1:] for row in rows] == [
        # TERMINAL PROFILE: SMS-PP data download and yes/no GET INKEY supported
        ["0x10", "1", "1", "", "", "", "", "", "", "", "", "", "0x9000", ""],
        # ENVELOPE (SMS-PP download): SMS-DELIVER from the short code, PID 7F, DCS F6, UDH 70
        ["0xc2", "", "", "", "", "", "", "12345", "", "127", "246", "0x70", f"0x91{inkey_length:02x}", ""],
        # FETCH: the offer, GET INKEY yes/no (qualifier 04)
        ["0x12", "", "", "0x22", "0x04", prompt, "", "", "", "", "", "", "0x9000", ""],
        # TERMINAL RESPONSE: performed, text 01 = Yes (TS 102 223 6.8.5); SEND SHORT MESSAGE is next
        ["0x14", "", "", "0x22", "0x04", "\x01", "0x00", "", "", "", "", "", f"0x91{send_sms_length:02x}", ""],
        # FETCH: SEND SHORT MESSAGE with the SMS-SUBMIT of the answer to the short code, UDH 71
        ["0x12", "", "", "0x13", "", "", "", "", "12345", "127", "246", "0x71", "0x9000", ""],
        # TERMINAL RESPONSE: the MO went out
        ["0x14", "", "", "0x13", "", "", "0x00", "", "", "", "", "", "0x9000", ""],
    ]
    # fmt: on
    assert tshark(tshark_bin, pcap, "-Y", MALFORMED_OR_WARNING) == ""
