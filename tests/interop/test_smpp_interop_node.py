"""node `smpp` (npm, farhadi; an implementation nobody here wrote) against our SMPP code.

(a) node as the SMSC (tests/interop/node/smsc.js) for our ESME, ``gateway.smpp.client.SmppClient``;
(b) node as an ESME (tests/interop/node/esme.js) against our SMSC simulator. See PEERS.md 2.1.

node writes message ids in hex and sends receipts with both the Appendix B text and the
receipted_message_id / message_state TLVs; node's gsmCoder and smpplib's encoder agree on GSM 03.38.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from peers import ESME_BIND_REFUSED, ESME_OK, arun_node_esme, start_node_smsc

from gateway.smpp.client import BindError, ClientConfig, SmppClient
from protocols.smpp.constants import CommandStatus, MessageState
from protocols.smpp.pdu import DataSm, DeliverSm, SubmitSm

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("require_node")]

HOST = "127.0.0.1"
HANDSET = "31600000001"
SHORT_CODE = "12345"
NODE_TIMEOUT = 60  # seconds esme.js may run; generous, the machine is shared with other suites


def node_smsc(**kwargs: Any) -> Any:
    """start_node_smsc on a port node picks itself (no race), off the event loop."""
    return asyncio.to_thread(start_node_smsc, 0, **kwargs)


def client_for(port: int, password: str = "secret1", **kwargs: Any) -> SmppClient:
    config = ClientConfig(HOST, port, "esme1", password, window=100, response_timeout=30.0, **kwargs)
    return SmppClient(config)


# --- (a) node as the SMSC, our ESME as the client --------------------------------------------------------


async def test_our_esme_submits_2000_and_correlates_every_node_receipt() -> None:
    smsc = await node_smsc(dlr=True)
    try:
        client = client_for(smsc.port)
        await asyncio.wait_for(client.start(), 15)
        try:
            submits = [
                client.submit(
                    SubmitSm(
                        source_addr=SHORT_CODE,
                        dest_addr_ton=1,
                        dest_addr_npi=1,
                        destination_addr=HANDSET,
                        registered_delivery=1,
                        short_message=f"campaign offer {i}".encode("ascii"),
                    )
                )
                for i in range(2000)
            ]
            results = await asyncio.wait_for(asyncio.gather(*submits), 60)
            ids = [r.message_id for r in results]
            assert all(r.response.command_status == 0 for r in results)
            assert len(set(ids)) == 2000
            # node numbers its messages 1, 2, ... and writes them in hex
            assert {int(i, 16) for i in ids} == set(range(1, 2001))
            assert any(any(c in "abcdef" for c in i) for i in ids)

            receipts = await asyncio.wait_for(
                asyncio.gather(*(client.wait_receipt(i, timeout=60) for i in ids)), 90
            )
            assert [r.id for r in receipts] == ids
            assert all(r.stat == "DELIVRD" for r in receipts)
            assert all(r.message_state is MessageState.DELIVERED for r in receipts)
            assert receipts[0].text == "campaign offer 0"
            assert client.stats.submitted == 2000
            assert client.stats.receipts == 2000
            assert client.stats.by_status == {0: 2000}
        finally:
            await client.close()
    finally:
        stats = await asyncio.to_thread(smsc.stop)
    assert stats["binds"] == 1
    assert stats["submits"] == 2000
    assert stats["receipts_sent"] == 2000
    assert stats["receipt_resps"] == 2000  # every receipt was answered with a deliver_sm_resp
    assert stats["unbinds"] == 1


async def test_mo_from_node_reaches_our_mo_handler() -> None:
    smsc = await node_smsc(mo=3)
    try:
        client = client_for(smsc.port)
        got: list[DeliverSm | DataSm] = []
        three = asyncio.Event()

        def on_mo(pdu: DeliverSm | DataSm) -> None:
            got.append(pdu)
            if len(got) == 3:
                three.set()

        client.add_mo_handler(on_mo)
        await asyncio.wait_for(client.start(), 15)
        try:
            await asyncio.wait_for(three.wait(), 15)
        finally:
            await client.close()
    finally:
        stats = await asyncio.to_thread(smsc.stop)
    assert all(isinstance(p, DeliverSm) for p in got)
    assert [p.short_message for p in got if isinstance(p, DeliverSm)] == [b"MO 1", b"MO 2", b"MO 3"]
    assert all((p.source_addr, p.destination_addr) == (HANDSET, SHORT_CODE) for p in got)
    assert all(p.esm_class == 0 and p.data_coding == 0 for p in got)
    assert client.stats.mo == 3
    assert stats["mo_sent"] == 3
    assert stats["mo_resps"] == 3  # answered, after the handler took each message
    assert stats["unbinds"] == 1


async def test_node_smsc_refusing_our_bind_raises_bind_error() -> None:
    smsc = await node_smsc()
    try:
        client = client_for(smsc.port, password="wrong")
        with pytest.raises(BindError) as info:
            await asyncio.wait_for(client.start(), 15)
        assert info.value.status == CommandStatus.ESME_RINVPASWD
    finally:
        stats = await asyncio.to_thread(smsc.stop)
    assert stats["bind_rejects"] == 1
    assert stats["binds"] == 0


# --- (b) node as the ESME, our SMSC simulator as the server ----------------------------------------------


async def test_node_esme_submits_5000_with_window_100(smsc_factory: Any) -> None:
    sim, port = await smsc_factory()
    result = await arun_node_esme(port, "esme1", "secret1", 5000, 100, timeout=NODE_TIMEOUT)
    assert result["exit_code"] == ESME_OK, result
    assert result["bind_status"] == 0
    assert (result["submitted"], result["ok"], result["errors"]) == (5000, 5000, {})
    assert sim.stats.binds == 1
    assert sim.stats.submits == 5000
    assert sim.stats.invalid == 0


async def test_node_esme_gets_every_receipt(smsc_factory: Any) -> None:
    sim, port = await smsc_factory()
    result = await arun_node_esme(port, "esme1", "secret1", 1000, 100, dlr=True, timeout=NODE_TIMEOUT)
    assert result["exit_code"] == ESME_OK, result
    assert (result["ok"], result["errors"]) == (1000, {})
    assert result["receipts"] == 1000
    assert result["receipts_matched"] == 1000  # receipted_message_id equals a submit_sm_resp message_id
    assert result["receipt_sample"].startswith("id:")
    assert "stat:DELIVRD" in result["receipt_sample"]
    assert sim.stats.receipts_sent == 1000
    assert sim.stats.invalid == 0


async def test_node_esme_wrong_password_is_refused(smsc_factory: Any) -> None:
    sim, port = await smsc_factory()
    result = await arun_node_esme(port, "esme1", "wrong", 10, 1, timeout=NODE_TIMEOUT)
    assert result["exit_code"] == ESME_BIND_REFUSED, result
    assert result["bind_status"] == int(CommandStatus.ESME_RINVPASWD) == 0x0E
    assert result["submitted"] == 0
    assert sim.stats.bind_failures == 1
    assert sim.stats.binds == 0


async def test_node_esme_ucs2_arrives_intact(smsc_factory: Any) -> None:
    sim, port = await smsc_factory()
    sim.register_handset(HANDSET, lambda mt: None)
    text = "Пакет 500 МБ за 3 € \U0001f44d"
    result = await arun_node_esme(
        port, "esme1", "secret1", 3, 1, timeout=NODE_TIMEOUT, extra=("--ucs2", "--text", text)
    )
    assert result["exit_code"] == ESME_OK, result
    assert len(sim.messages) == 3
    for m in sim.messages:
        assert (m.data_coding, m.esm_class) == (8, 0)
        assert (m.source_addr, m.destination_addr, m.system_id) == (SHORT_CODE, HANDSET, "esme1")
        assert m.short_message == text.encode("utf-16-be")


def expected_long(text: str, per_part: int) -> str:
    """The text esme.js --long sends: ``text`` repeated past two parts, cut at 2.5 parts."""
    out = text
    while len(out) < per_part * 2 + 10:
        out += " " + text
    return out[: per_part * 2 + per_part // 2]


@pytest.mark.parametrize(("ucs2", "per_part"), [(False, 153), (True, 67)], ids=["gsm", "ucs2"])
async def test_node_esme_long_messages_arrive_as_udh_segments(
    smsc_factory: Any, ucs2: bool, per_part: int
) -> None:
    sim, port = await smsc_factory()
    sim.register_handset(HANDSET, lambda mt: None)
    text = "Data 1000MB for 5 days, dial *100*7#" if not ucs2 else "Данные 1000 МБ, набери *100*7#"
    flags = ("--long", "--text", text, *(("--ucs2",) if ucs2 else ()))
    result = await arun_node_esme(port, "esme1", "secret1", 2, 1, timeout=NODE_TIMEOUT, extra=flags)
    assert result["exit_code"] == ESME_OK, result
    assert result["submitted"] == 6 and result["ok"] == 6

    messages = list(sim.messages)
    assert len(messages) == 6
    expected = expected_long(text, per_part)
    for n in range(2):
        segments = messages[3 * n : 3 * n + 3]
        assert all(s.esm_class == 0x40 for s in segments)
        assert all(s.data_coding == (8 if ucs2 else 0) for s in segments)
        udh = [s.short_message[:6] for s in segments]
        assert udh == [bytes((0x05, 0x00, 0x03, n, 3, i)) for i in (1, 2, 3)]
        body = b"".join(s.short_message[6:] for s in segments)
        # the text is GSM basic-alphabet only, where GSM 03.38 and ASCII agree
        assert body == (expected.encode("utf-16-be") if ucs2 else expected.encode("ascii"))
        # each segment fits one SMS: 140 octets of UCS-2, or 160 septets of GSM (the UDH takes 7)
        assert all(len(s.short_message) - 6 <= per_part * (2 if ucs2 else 1) for s in segments)
