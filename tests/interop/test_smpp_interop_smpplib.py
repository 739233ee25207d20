"""smpplib (PyPI, an ESME nobody here wrote) against our SMSC simulator, over loopback TCP.

smpplib is synchronous and not thread-safe, so each client lives in one worker thread at a time
(``asyncio.to_thread``) while the simulator runs on the test's event loop. What is checked is what
crossed the wire: the bytes and fields the simulator decoded from smpplib's PDUs, and the fields
smpplib decoded from ours (bind statuses, message ids, receipts, MO, enquire_link, unbind).
See PEERS.md 2.2.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm
import smpplib.smpp

from protocols.smpp.constants import CommandStatus, MessageState
from protocols.smpp.receipt import parse_receipt_text
from simulators.smsc import MtMessage, SmscSimulator

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
HANDSET = "31600000001"
SHORT_CODE = "12345"
IO_TIMEOUT = 15.0  # socket timeout inside smpplib; generous, the machine is shared with other suites


class SmpplibEsme:
    """One smpplib client plus what its handlers saw. Every method blocks: call it in a thread."""

    def __init__(self, port: int) -> None:
        self.client = smpplib.client.Client(HOST, port, timeout=IO_TIMEOUT, allow_unknown_opt_params=True)
        self.submit_resps: list[Any] = []
        self.delivered: list[Any] = []
        self.enquire_links_answered = 0
        self.deliver_status = 0  # what message_received_handler answers the SMSC with
        self.client.set_message_sent_handler(self._on_sent)
        self.client.set_message_received_handler(self._on_deliver)
        answer_enquire = self.client._enquire_link_received

        def counting(pdu: Any) -> None:
            answer_enquire(pdu)
            self.enquire_links_answered += 1

        self.client._enquire_link_received = counting

    def _on_sent(self, pdu: Any, **_: Any) -> None:
        self.submit_resps.append(pdu)  # smpplib calls its handlers with keyword arguments

    def _on_deliver(self, pdu: Any, **_: Any) -> int:
        self.delivered.append(pdu)
        return self.deliver_status

    def connect_and_bind(self, system_id: str, password: str) -> Any:
        self.client.connect()
        return self.client.bind_transceiver(system_id=system_id, password=password)

    def read_until(self, done: Callable[[], bool], limit: int = 1000) -> None:
        """Read PDUs (smpplib answers deliver_sm and enquire_link itself) until ``done()``."""
        for _ in range(limit):
            if done():
                return
            self.client.read_once(auto_send_enquire_link=False)
        raise AssertionError(f"condition not met after {limit} PDUs")

    def submit(self, **fields: Any) -> bytes:
        """submit_sm and wait for its submit_sm_resp; returns the message_id smpplib decoded."""
        pdu = self.client.send_message(source_addr=SHORT_CODE, destination_addr=HANDSET, **fields)
        resp = self._wait_resp(pdu.sequence)
        return bytes(resp.message_id)

    def _wait_resp(self, seq: int) -> Any:
        self.read_until(lambda: any(r.sequence == seq for r in self.submit_resps))
        (resp,) = [r for r in self.submit_resps if r.sequence == seq]
        assert resp.status == 0, resp.status
        return resp

    def enquire_link(self) -> Any:
        req = smpplib.smpp.make_pdu("enquire_link", client=self.client)
        self.client.send_pdu(req)
        while True:
            pdu = self.client.read_pdu()
            if pdu.command == "enquire_link":  # the SMSC probing us at the same moment
                self.client._enquire_link_received(pdu)
                continue
            assert pdu.command == "enquire_link_resp", pdu.command
            assert pdu.sequence == req.sequence
            return pdu

    def unbind(self) -> Any:
        """unbind and read until unbind_resp (answering anything the SMSC sends meanwhile), then
        check that the SMSC closes the connection."""
        req = smpplib.smpp.make_pdu("unbind", client=self.client)
        self.client.send_pdu(req)
        while True:
            pdu = self.client.read_pdu()
            if pdu.command == "enquire_link":
                self.client._enquire_link_received(pdu)
            elif pdu.command == "deliver_sm":
                self.client._message_received(pdu)
            else:
                break
        assert pdu.command == "unbind_resp", pdu.command
        assert pdu.sequence == req.sequence
        assert pdu.status == 0
        sock = self.client._socket
        assert sock is not None
        assert sock.recv(1) == b"", "the SMSC should close the connection after unbind_resp"
        return pdu

    def close(self) -> None:
        if self.client._socket is not None:
            self.client.disconnect()


async def bound_esme(port: int, system_id: str = "esme1", password: str = "secret1") -> SmpplibEsme:
    esme = SmpplibEsme(port)
    resp = await asyncio.to_thread(esme.connect_and_bind, system_id, password)
    assert resp.command == "bind_transceiver_resp"
    assert resp.status == 0
    assert resp.system_id == b"tgw-smsc"
    return esme


def by_id(sim: SmscSimulator) -> dict[str, MtMessage]:
    return {m.message_id: m for m in sim.messages}


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [
        ("esme1", "wrong", smpplib.consts.SMPP_ESME_RINVPASWD),
        ("nobody", "secret1", smpplib.consts.SMPP_ESME_RINVSYSID),
    ],
    ids=["wrong-password", "unknown-system-id"],
)
async def test_refused_bind_reaches_smpplib_as_its_status(
    smsc_factory: Any, system_id: str, password: str, status: int
) -> None:
    sim, port = await smsc_factory()
    esme = SmpplibEsme(port)
    try:
        with pytest.raises(smpplib.exceptions.PDUError) as info:
            await asyncio.to_thread(esme.connect_and_bind, system_id, password)
    finally:
        esme.close()
    assert info.value.args[1] == status
    assert status in (CommandStatus.ESME_RINVPASWD, CommandStatus.ESME_RINVSYSID)
    assert sim.stats.bind_failures == 1
    assert sim.stats.binds == 0
    assert sim.bound_system_ids == []


async def test_right_password_binds_and_unbinds_cleanly(smsc_factory: Any) -> None:
    sim, port = await smsc_factory()
    esme = await bound_esme(port)
    try:
        assert sim.stats.binds == 1
        assert sim.bound_system_ids == ["esme1"]
        resp = await asyncio.to_thread(esme.unbind)
        assert resp.status == 0
    finally:
        esme.close()
    for _ in range(200):
        if not sim.bound_system_ids:
            break
        await asyncio.sleep(0.01)
    assert sim.bound_system_ids == []
    assert sim.stats.invalid == 0


async def test_gsm_ucs2_and_concatenated_submits_arrive_intact(smsc_factory: Any) -> None:
    sim, port = await smsc_factory()
    sim.register_handset(HANDSET, lambda mt: None)
    esme = await bound_esme(port)
    try:
        # GSM 03.38 default alphabet, unpacked, as smpplib encodes it (escape 0x1b for {}).
        gsm_text = "Hi @£$ {ok}"
        (gsm,), coding, esm = smpplib.gsm.make_parts(gsm_text)
        assert (coding, esm) == (0, 0)
        assert gsm == b"Hi \x00\x01\x02 \x1b\x28ok\x1b\x29"
        gsm_id = await asyncio.to_thread(
            esme.submit,
            short_message=gsm,
            data_coding=coding,
            esm_class=esm,
            dest_addr_ton=1,
            dest_addr_npi=1,
        )

        ucs2_text = "Привет, мир \U0001f44b"
        (ucs2,), coding, esm = smpplib.gsm.make_parts(ucs2_text, smpplib.consts.SMPP_ENCODING_ISO10646)
        assert coding == 8
        ucs2_id = await asyncio.to_thread(esme.submit, short_message=ucs2, data_coding=coding, esm_class=esm)

        long_text = "".join(f"part of a long message {i:03d}. " for i in range(12))  # 372 GSM chars
        parts, coding, esm = smpplib.gsm.make_parts(long_text)
        assert esm == 0x40 and coding == 0 and len(parts) == 3
        long_ids = []
        for part in parts:
            long_ids.append(
                await asyncio.to_thread(esme.submit, short_message=part, data_coding=coding, esm_class=esm)
            )
        unbound = await asyncio.to_thread(esme.unbind)
        assert unbound.status == 0
    finally:
        esme.close()

    ids = [gsm_id, ucs2_id, *long_ids]
    assert len(set(ids)) == len(ids)
    got = by_id(sim)
    assert set(got) == {i.decode() for i in ids}

    m = got[gsm_id.decode()]
    assert (m.source_addr, m.destination_addr, m.system_id) == (SHORT_CODE, HANDSET, "esme1")
    assert (m.data_coding, m.esm_class, m.protocol_id) == (0, 0, 0)
    assert m.short_message == gsm
    assert m.optional_parameters == ()

    m = got[ucs2_id.decode()]
    assert m.data_coding == 8
    assert m.short_message == ucs2_text.encode("utf-16-be")
    assert m.short_message.decode("utf-16-be") == ucs2_text

    segments = [got[i.decode()] for i in long_ids]
    assert [s.short_message for s in segments] == parts
    assert all(s.esm_class == 0x40 and s.data_coding == 0 for s in segments)
    udh = [s.short_message[:6] for s in segments]
    ref = udh[0][3]
    assert udh == [bytes((0x05, 0x00, 0x03, ref, 3, n)) for n in (1, 2, 3)]
    body = b"".join(s.short_message[6:] for s in segments)
    assert body == long_text.encode("ascii")  # no character of this text differs between GSM and ASCII
    assert sim.stats.invalid == 0


async def test_receipt_reaches_smpplib_with_the_submit_message_id(smsc_factory: Any) -> None:
    sim, port = await smsc_factory()
    esme = await bound_esme(port)
    try:
        message_id = await asyncio.to_thread(
            esme.submit, short_message=b"receipt please", registered_delivery=1
        )
        await asyncio.to_thread(esme.read_until, lambda: len(esme.delivered) >= 1)
        await asyncio.to_thread(esme.unbind)
    finally:
        esme.close()

    (receipt,) = esme.delivered
    assert receipt.command == "deliver_sm"
    assert receipt.esm_class & 0x3C == 0x04  # SMSC delivery receipt
    assert receipt.receipted_message_id == message_id
    assert receipt.message_state == MessageState.DELIVERED
    assert receipt.source_addr == HANDSET.encode() and receipt.destination_addr == SHORT_CODE.encode()
    parsed = parse_receipt_text(bytes(receipt.short_message))
    assert parsed.id == message_id.decode()
    assert parsed.stat == "DELIVRD"
    assert parsed.text == "receipt please"
    assert sim.stats.receipts_sent == 1


async def test_mo_reaches_smpplib_and_its_status_reaches_the_simulator(smsc_factory: Any) -> None:
    sim, port = await smsc_factory()
    esme = await bound_esme(port)
    try:
        reader = asyncio.create_task(asyncio.to_thread(esme.read_until, lambda: len(esme.delivered) >= 2, 50))
        assert await sim.inject_mo(HANDSET, SHORT_CODE, b"BUY 500", timeout=IO_TIMEOUT) == 0
        ucs2 = "ДА 500".encode("utf-16-be")
        assert await sim.inject_mo(HANDSET, SHORT_CODE, ucs2, data_coding=8, timeout=IO_TIMEOUT) == 0
        await reader

        # smpplib answers with whatever its handler returns: a temporary application error here
        esme.deliver_status = CommandStatus.ESME_RX_T_APPN
        reader = asyncio.create_task(asyncio.to_thread(esme.read_until, lambda: len(esme.delivered) >= 3, 50))
        status = await sim.inject_mo(HANDSET, SHORT_CODE, b"again", timeout=IO_TIMEOUT)
        await reader
        assert status == CommandStatus.ESME_RX_T_APPN
        await asyncio.to_thread(esme.unbind)
    finally:
        esme.close()

    first, second, third = esme.delivered
    assert first.command == "deliver_sm" and first.esm_class == 0
    assert (first.source_addr, first.destination_addr) == (HANDSET.encode(), SHORT_CODE.encode())
    assert first.source_addr_ton == 1 and first.source_addr_npi == 1
    assert first.short_message == b"BUY 500" and first.data_coding == 0
    assert second.data_coding == 8 and second.short_message == ucs2
    assert third.short_message == b"again"
    assert sim.stats.mo_sent == 3
    assert sim.stats.invalid == 0


async def test_enquire_link_both_ways(smsc_factory: Any) -> None:
    sim, port = await smsc_factory(enquire_link_interval=0.2)
    esme = await bound_esme(port)
    try:
        # smpplib probes us ...
        resp = await asyncio.to_thread(esme.enquire_link)
        assert resp.status == 0
        # ... and answers our probes (the simulator sends one after 0.2 s of silence)
        await asyncio.to_thread(esme.read_until, lambda: esme.enquire_links_answered >= 2, 20)
        await asyncio.to_thread(esme.unbind)
    except TimeoutError:
        pytest.fail("smpplib waited in vain for a PDU from the simulator")
    finally:
        esme.close()
    # an enquire_link_resp our engine could not match or decode would count here
    assert sim.stats.invalid == 0
