"""Diameter message vectors (tests/vectors/diameter/messages.json), cross-checked with tshark."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from protocols.diameter.codec import decode, encode
from protocols.diameter.dictionary import find, value_of

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent.parent / "vectors" / "diameter" / "messages.json").read_text("utf-8")
)["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_round_trip(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["hex"])
    message = decode(wire)
    assert encode(message) == wire
    assert message.command_code == int(vector["tshark"]["diameter.cmd.code"])


def test_gx_usage_report_values() -> None:
    (vector,) = [v for v in VECTORS if v["name"] == "ccr_gx_usage"]
    message = decode(bytes.fromhex(vector["hex"]))
    assert message.is_request and message.is_proxiable and message.application_id == 16777238
    trigger = find(message, "Event-Trigger")
    assert trigger is not None and value_of(trigger) == 33
    umi = find(message, "Usage-Monitoring-Information")
    assert umi is not None
    members = value_of(umi)
    assert isinstance(members, tuple)
    key = find(members, "Monitoring-Key")
    usu = find(members, "Used-Service-Unit")
    assert key is not None and value_of(key) == b"pkg-5GB"
    assert usu is not None
    used = value_of(usu)
    assert isinstance(used, tuple)
    total = find(used, "CC-Total-Octets")
    assert total is not None and value_of(total) == 4831838208


def _hexdump(data: bytes) -> str:
    return "".join(
        f"{offset:06x} " + " ".join(f"{b:02x}" for b in data[offset : offset + 16]) + "\n"
        for offset in range(0, len(data), 16)
    )


def _tshark(args: list[str], pcap: Path) -> str:
    result = subprocess.run(
        ["tshark", "-r", str(pcap), *args], capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout


@pytest.mark.interop
@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_dissected_by_tshark(vector: dict[str, Any], tmp_path: Path) -> None:
    # not a skip: .ci/run installs tshark, and a missing validator must fail the suite
    assert shutil.which("tshark") and shutil.which("text2pcap"), (
        "tshark/text2pcap missing: .ci/run installs them"
    )
    dump = tmp_path / "msg.hexdump"
    pcap = tmp_path / "msg.pcap"
    dump.write_text(_hexdump(bytes.fromhex(vector["hex"])))
    subprocess.run(["text2pcap", "-q", "-T", "40000,3868", str(dump), str(pcap)], check=True, timeout=60)
    assert _tshark(["-Y", "_ws.malformed"], pcap).strip() == ""
    query = [
        "-Y",
        "_ws.expert.severity >= 6291456",
        "-T",
        "fields",
        "-E",
        "aggregator=|",
        "-e",
        "_ws.expert.message",
    ]
    warnings = _tshark([*query], pcap)
    if "tshark_expert" in vector:  # unknown AVPs on purpose: only "Unknown ..." warnings allowed
        assert all(w.startswith("Unknown ") for w in warnings.strip().split("|"))
    else:
        assert warnings.strip() == ""
    fields: dict[str, str] = vector["tshark"]
    args = ["-T", "fields", "-E", "separator=|"]
    for name in fields:
        args += ["-e", name]
    assert _tshark(args, pcap).strip().split("|") == list(fields.values())
