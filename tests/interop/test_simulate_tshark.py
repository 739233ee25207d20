"""The simulation's traffic capture (gateway/trace.py, issue #8) judged by Wireshark's dissectors
(tshark, code nobody here wrote): a small ``tgw simulate`` run writes ``traffic.pcap``; tshark must open
it, find no malformed frame and no bad IP or TCP checksum, and dissect SMPP (bind, submit_sm,
deliver_sm with the receipts and the SIM toolkit answers), Diameter (CER, CCR/CCA) and HTTP (DPI
events, billing) on their registered ports, with the sequence numbers that let it reassemble PDUs,
and the SIM cards' APDUs carried as GSMTAP.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from simulators.simulate import simulate_command

ROOT = Path(__file__).resolve().parents[2]


def _tshark(tshark: str, pcap: Path, *args: str) -> str:
    done = subprocess.run(
        [tshark, "-n", "-r", str(pcap), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_capture_opens_in_wireshark(
    tshark_tools: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, tshark = tshark_tools
    monkeypatch.chdir(ROOT)
    result, files = simulate_command(
        ROOT / "configs" / "scenarios" / "small.yaml", tmp_path, subscribers=80, days=3, pcap=True
    )
    pcap = tmp_path / "traffic.pcap"
    assert pcap.exists() and result.pcap_packets > 100 and not result.pcap_truncated
    assert "traffic.pcap" in files.html.read_text()  # the report names its capture
    frames = _tshark(tshark, pcap, "-T", "fields", "-e", "frame.number").split()
    assert len(frames) == result.pcap_packets
    assert _tshark(tshark, pcap, "-Y", "_ws.malformed") == ""
    checked = ("-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE")
    assert _tshark(tshark, pcap, *checked, "-Y", "tcp.checksum.status != 1 || ip.checksum.status != 1") == ""
    smpp = _tshark(tshark, pcap, "-Y", "smpp", "-T", "fields", "-e", "smpp.command_id").split()
    commands = {int(c, 16) for field in smpp for c in field.split(",")}
    # bind_transceiver(_resp), submit_sm(_resp), deliver_sm(_resp), enquire_link
    assert {0x00000009, 0x80000009, 0x00000004, 0x80000004, 0x00000005, 0x80000005} <= commands
    diameter = _tshark(tshark, pcap, "-Y", "diameter", "-T", "fields", "-e", "diameter.cmd.code").split()
    assert {"257", "272"} <= {c for field in diameter for c in field.split(",")}  # CER/CEA, CCR/CCA
    http = _tshark(tshark, pcap, "-Y", "http.request", "-T", "fields", "-e", "http.request.uri").split()
    assert "/v1/events" in http  # the DPI notifications
    assert any(uri.startswith("/v1/subscribers/") for uri in http)  # billing, from the gateway
    assert result.counters.notifications_diameter > 0 and result.counters.notifications_http > 0
    # the SIM cards' APDUs as GSMTAP: ENVELOPE (SMS-PP download), FETCH, TERMINAL RESPONSE
    ins = _tshark(tshark, pcap, "-Y", "gsm_sim", "-T", "fields", "-e", "gsm_sim.apdu.ins").split()
    assert {"0xc2", "0x12", "0x14"} <= set(ins)
