"""Prometheus label bounds (gateway/metrics.py) against a broken SMSC: a real gateway bound over loopback
to an SMSC that sends command ids and command_status values SMPP 3.4 (sections 5.1.2.1, 5.1.3) does
not define, and delivery receipts no one can read. The series of ``tgw_smpp_pdus_total`` stay the
registered names plus ``other``; the unreadable receipts have their own ``tgw_smpp_deliver_sm_total``
type.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

import pytest
from gateway_bed import DIAMETER, MENUS, Network, _keys, until
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from campaign_core.model import Profile
from gateway.app import Gateway, GatewaySettings
from gateway.ingest.config import IngestConfig
from gateway.metrics import GatewayMetrics
from gateway.smpp.client import ClientConfig
from protocols.diameter.credit_control import CREDIT_CONTROL
from protocols.smpp.constants import CommandId, CommandStatus
from protocols.smpp.pdu import BindTransceiverResp, DeliverSm, encode_pdu

UNKNOWN_COMMANDS = 200  # requests with command ids no SMPP version defines, each with its own status
ODD_STATUSES = 50  # enquire_link requests with a command_status outside Table 5-2
BAD_RECEIPTS = 3  # deliver_sm receipts (esm_class 0x04) whose text names no id and no state


class BrokenSmsc:
    """Binds anyone, then sends the junk above; answers our requests with status 0."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length, command_id, _, seq = struct.unpack(">IIII", await reader.readexactly(16))
                await reader.readexactly(length - 16)
                if command_id & 0x80000000:
                    continue  # our junk's answers
                if command_id == CommandId.BIND_TRANSCEIVER:
                    writer.write(encode_pdu(BindTransceiverResp(seq, 0, system_id="broken"), seq))
                    writer.write(self._junk())
                elif command_id == CommandId.UNBIND:
                    writer.write(struct.pack(">IIII", 16, CommandId.UNBIND_RESP, 0, seq))
                    await writer.drain()
                    break
                else:  # enquire_link (no body in its response)
                    writer.write(struct.pack(">IIII", 16, command_id | 0x80000000, 0, seq))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @staticmethod
    def _junk() -> bytes:
        out = bytearray()
        seq = 1000
        for i in range(UNKNOWN_COMMANDS):
            seq += 1
            out += struct.pack(">IIII", 16, 0x00000200 + i, 0x00000400 + i, seq)
        for i in range(ODD_STATUSES):
            seq += 1
            out += struct.pack(">IIII", 16, CommandId.ENQUIRE_LINK, 0x00010000 + i, seq)
        for _ in range(BAD_RECEIPTS):
            seq += 1
            receipt = DeliverSm(
                source_addr="254700000201",
                destination_addr="12345",
                esm_class=0x04,
                short_message=b"this is no receipt",
            )
            out += encode_pdu(receipt, seq)
        return bytes(out)


@pytest.fixture
async def broken_gateway(network: Network) -> AsyncIterator[Gateway]:
    smsc = BrokenSmsc()
    port = await smsc.start()

    async def profile(msisdn: str) -> Profile | None:
        return await network.client.profile(msisdn)

    settings = GatewaySettings(
        smpp=ClientConfig("127.0.0.1", port, "gw", "secret", window=50, reconnect_initial=0.1),
        short_code="12345",
        campaigns_dir=network.campaigns,
        ussd_menus=MENUS,
        state_dir=network.state,
        ingest=IngestConfig.model_validate({"http": {"host": "127.0.0.1", "port": 0}}),
        sim_keys=_keys(network.handsets),
        currency="KES",
        durable=False,
    )
    gateway = Gateway(settings, network.client, profile, clock=network.clock)
    await gateway.start()
    yield gateway
    await gateway.stop()
    await smsc.stop()


def _samples(text: str, name: str) -> list[Sample]:
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


async def test_smpp_pdu_labels_are_bounded_and_bad_receipts_counted(broken_gateway: Gateway) -> None:
    gateway = broken_gateway
    smpp = gateway.smpp
    await until(
        lambda: (
            smpp.stats.bad_receipts >= BAD_RECEIPTS
            and sum(n for (d, _, _), n in smpp.pdu_counts.items() if d == "out")
            > UNKNOWN_COMMANDS + ODD_STATUSES
        ),
        describe=lambda: (smpp.stats, len(smpp.pdu_counts)),
    )
    # the raw tally folds what the peer made up, too: one pair for every unknown command id
    inbound = [key for key in smpp.pdu_counts if key[0] == "in"]
    assert ("in", -1, -1) in inbound and len(inbound) < 10, inbound
    text = GatewayMetrics(gateway).render().decode()
    pdus = _samples(text, "tgw_smpp_pdus_total")
    commands = {c.name.lower() for c in CommandId} | {"other"}
    statuses = {s.name for s in CommandStatus} | {"other"}
    assert {s.labels["command"] for s in pdus} <= commands, sorted({s.labels["command"] for s in pdus})
    assert {s.labels["status"] for s in pdus} <= statuses, sorted({s.labels["status"] for s in pdus})
    keys = [(s.labels["direction"], s.labels["command"], s.labels["status"]) for s in pdus]
    assert len(keys) == len(set(keys))  # raw pairs folded into one label set are one sample
    assert len(keys) < 15, keys

    def value(direction: str, command: str, status: str) -> float:
        return sum(
            s.value
            for s in pdus
            if s.labels == {"direction": direction, "command": command, "status": status}
        )

    assert value("in", "other", "other") == UNKNOWN_COMMANDS
    assert value("out", "generic_nack", "ESME_RINVCMDID") == UNKNOWN_COMMANDS
    assert value("in", "enquire_link", "other") == ODD_STATUSES
    assert value("in", "deliver_sm", "ESME_ROK") == BAD_RECEIPTS
    assert value("out", "deliver_sm_resp", "ESME_RX_P_APPN") == BAD_RECEIPTS
    deliver = {s.labels["type"]: s.value for s in _samples(text, "tgw_smpp_deliver_sm_total")}
    assert deliver == {"receipt": 0, "mo": 0, "bad_receipt": BAD_RECEIPTS}


def test_module_docstring_names_the_bad_receipts() -> None:
    import gateway.metrics

    doc = gateway.metrics.__doc__ or ""
    assert "bad_receipt" in doc
    assert "other" in doc.split("tgw_smpp_pdus_total", 1)[1].split("tgw_smpp_deliver_sm_total", 1)[0]


async def test_diameter_command_code_labels_are_bounded(network: Network) -> None:
    """Anyone who reaches the Diameter port, before any CER, can send a header that cannot be framed:
    it is answered 5015 with the request's command code (RFC 6733 section 7.1.5), which the peer picks.
    Codes the dictionary does not know count as ``other``."""
    gateway = await network.gateway(ingest={"diameter": DIAMETER})
    address = gateway.ingest.diameter_address
    assert address is not None
    codes = range(0x00A000, 0x00A000 + 30)
    for code in (*codes, CREDIT_CONTROL):
        reader, writer = await asyncio.open_connection(*address)
        # version 1, a message length of 12 (under the 20-octet header), flags R, the command code
        writer.write(bytes([1, 0, 0, 12, 0x80]) + code.to_bytes(3, "big") + bytes(12))
        await writer.drain()
        await asyncio.wait_for(reader.read(), 10.0)  # the answer, then the close
        writer.close()
    endpoint = gateway.ingest.diameter
    assert endpoint is not None
    assert sum(endpoint.answers.values()) == len(codes) + 1
    assert {code for code, _ in endpoint.answers} == {-1, CREDIT_CONTROL}  # the raw tally is folded too
    text = GatewayMetrics(gateway).render().decode()
    answers = _samples(text, "tgw_diameter_answers_total")
    labels = {s.labels["command_code"]: s.value for s in answers}
    assert labels == {"other": len(codes), str(CREDIT_CONTROL): 1}, labels
