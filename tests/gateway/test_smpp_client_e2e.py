"""End to end: the gateway's ESME (``gateway.smpp.client``) against the SMSC simulator over loopback.

The simulator and the client run as separate asyncio tasks on real TCP sockets on 127.0.0.1; each
failure personality of the simulator is met by the client's matching behaviour (retry, back-off,
reconnect, error). Where the simulator cannot misbehave in the way a test needs (an SMSC that never
answers a bind, one that stops answering enquire_link, one that sends a broken byte stream), a raw
TCP peer writes the SMPP octets by hand with ``struct``, independent of our codec.

SMPP 3.4 sections: 2.3 (session states), 4.1 (bind), 4.2 (unbind), 4.3 (generic_nack), 4.4
(submit_sm), 4.6 (deliver_sm), 4.11 (enquire_link), 5.1.3 (command_status), Appendix B (receipts).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from smpp_harness import WAIT, Connect, StartSmsc, WireTap, client_config, wait_until

from gateway.smpp.client import BindError, SmppClient, SubmitError, SubmitResult
from protocols.errors import TransportError
from protocols.smpp.constants import CommandId, CommandStatus, MessageState
from protocols.smpp.pdu import (
    CancelSm,
    DataSm,
    DataSmResp,
    DeliverSm,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    encode_pdu,
)
from protocols.smpp.receipt import DeliveryReceipt
from protocols.smpp.tlv import Tlv
from simulators.smsc import MtMessage, SmscSimulator

pytestmark = pytest.mark.e2e

S = CommandStatus
C = CommandId
WireTapFactory = Callable[[int], Awaitable[tuple[WireTap, int]]]


def sms(dest: str = "31600000001", text: bytes = b"hello", dlr: int = 0) -> SubmitSm:
    return SubmitSm(
        source_addr="12345",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=dest,
        registered_delivery=dlr,
        short_message=text,
    )


async def submit_all(client: SmppClient, count: int, **kwargs: object) -> list[SubmitResult]:
    tasks = [client.submit(sms(dest=f"3160000{i:04d}", **kwargs)) for i in range(count)]  # type: ignore[arg-type]
    return await asyncio.wait_for(asyncio.gather(*tasks), WAIT * 3)


# --- a hand-written SMPP peer for misbehaviour the simulator does not offer ---------------------------

_HEADER = struct.Struct(">IIII")


def raw_pdu(command_id: int, status: int, seq: int, body: bytes = b"") -> bytes:
    return _HEADER.pack(16 + len(body), command_id, status, seq) + body


async def read_raw_pdu(reader: asyncio.StreamReader) -> tuple[int, int, int, bytes]:
    header = await reader.readexactly(16)
    length, cid, status, seq = _HEADER.unpack(header)
    body = await reader.readexactly(length - 16) if length > 16 else b""
    return cid, status, seq, body


class RawSmsc:
    """A TCP server answering binds (unless ``answer_bind`` is False), submits, unbinds and
    enquire_links (unless ``answer_enquire_link`` is False) by hand. ``on_bound(connection_no,
    writer)`` may write anything after the bind. Every received (command_id, command_status) is
    recorded, with the body length of each submit_sm."""

    def __init__(
        self,
        *,
        answer_bind: bool = True,
        answer_enquire_link: bool = True,
        on_bound: Callable[[int, asyncio.StreamWriter], None] | None = None,
        stall: asyncio.Event | None = None,
        close_after_stall: bool = False,
        nack_submits: bool = False,
    ) -> None:
        self.nack_submits = nack_submits  # answer submit_sm with generic_nack status 0 (a broken SMSC)
        self.answer_bind = answer_bind
        self.answer_enquire_link = answer_enquire_link
        self.on_bound = on_bound
        self.stall = stall  # the first connection stops reading after its bind until this is set...
        self.close_after_stall = close_after_stall  # ...and then reads on, or hangs up
        self.connections = 0
        self.received: list[tuple[int, int]] = []
        self.submit_lengths: list[int] = []
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self._writers.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                cid, status, seq, body = await read_raw_pdu(reader)
                self.received.append((cid, status))
                if cid == C.BIND_TRANSCEIVER and self.answer_bind:
                    writer.write(raw_pdu(C.BIND_TRANSCEIVER_RESP, 0, seq, b"raw\x00"))
                    if self.on_bound is not None:
                        self.on_bound(number, writer)
                    if self.stall is not None and number == 1:
                        await self.stall.wait()
                        if self.close_after_stall:
                            break
                elif cid == C.SUBMIT_SM and self.nack_submits:
                    writer.write(raw_pdu(C.GENERIC_NACK, 0, seq))
                elif cid == C.SUBMIT_SM:
                    self.submit_lengths.append(len(body))
                    writer.write(raw_pdu(C.SUBMIT_SM_RESP, 0, seq, b"r%d\x00" % len(self.submit_lengths)))
                elif cid == C.ENQUIRE_LINK and self.answer_enquire_link:
                    writer.write(raw_pdu(C.ENQUIRE_LINK_RESP, 0, seq))
                elif cid == C.UNBIND:
                    writer.write(raw_pdu(C.UNBIND_RESP, 0, seq))
                    await writer.drain()
                    break
        writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()


RawSmscFactory = Callable[..., Awaitable[tuple[RawSmsc, int]]]


@pytest.fixture
async def raw_smsc() -> AsyncIterator[RawSmscFactory]:
    """``server, port = await raw_smsc(**RawSmsc_options)``."""
    servers: list[RawSmsc] = []

    async def make(**kwargs: Any) -> tuple[RawSmsc, int]:
        server = RawSmsc(**kwargs)
        servers.append(server)
        return server, await server.start()

    yield make
    for server in servers:
        await server.stop()


# --- bind --------------------------------------------------------------------------------------------


async def test_bind_ok(smsc: SmscSimulator, client: SmppClient) -> None:
    assert client.is_bound
    assert smsc.bound_system_ids == ["esme"]
    assert smsc.stats.binds == 1
    assert smsc.stats.bind_failures == 0


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [("esme", "wrong", S.ESME_RINVPASWD), ("nobody", "secret", S.ESME_RINVSYSID)],
)
async def test_bind_refused(smsc: SmscSimulator, system_id: str, password: str, status: int) -> None:
    client = SmppClient(client_config(smsc.address[1], system_id=system_id, password=password))
    with pytest.raises(BindError) as info:
        await asyncio.wait_for(client.start(), WAIT)
    assert info.value.status == status
    assert status in (0x0E, 0x0F)
    assert S(status).name in str(info.value)
    assert not client.is_bound
    assert smsc.stats.bind_failures == 1
    assert smsc.stats.binds == 0
    await asyncio.sleep(0.2)  # a refused first bind is final: the client must not keep knocking
    assert smsc.stats.bind_failures == 1
    await client.close()


@pytest.mark.parametrize("bind_type", ["transmitter", "receiver"])
async def test_bind_as_transmitter_or_receiver(smsc: SmscSimulator, connect: Connect, bind_type: str) -> None:
    client = await connect(smsc.address[1], bind_type=bind_type)
    assert client.is_bound
    assert smsc.bound_system_ids == ["esme"]
    if bind_type == "receiver":
        # the SMSC can reach a receiver with MO traffic
        client.add_mo_handler(lambda pdu: None)
        assert await smsc.inject_mo("31600000009", "12345", b"hi") == 0
    else:
        with pytest.raises(ConnectionError):
            await smsc.inject_mo("31600000009", "12345", b"hi")


async def test_async_context_managers() -> None:
    async with SmscSimulator({"esme": "secret"}) as smsc:
        async with SmppClient(client_config(smsc.address[1])) as client:
            await client.wait_bound(WAIT)
            assert (await client.submit(sms())).message_id
        assert not client.is_bound
        await wait_until(lambda: smsc.stats.unbinds == 1, what="the unbind")


async def test_refused_rebind_is_retried(start_smsc: StartSmsc, connect: Connect) -> None:
    """Once bound, a later refusal (the password changed at the SMSC) is retried with back-off,
    and the client binds again when the SMSC accepts it."""
    first = await start_smsc()
    port = first.address[1]
    client = await connect(port)
    await first.stop()
    second = await start_smsc(port=port, accounts={"esme": "rotated"})
    await wait_until(lambda: second.stats.bind_failures >= 2, what="repeated bind attempts")
    assert not client.is_bound
    second.accounts["esme"] = "secret"
    await client.wait_bound(WAIT)
    assert (await client.submit(sms())).message_id
    assert second.stats.binds == 1


async def test_start_fails_when_nothing_listens(free_port: Callable[[], int]) -> None:
    client = SmppClient(client_config(free_port()))
    with pytest.raises(TransportError, match="cannot connect"):
        await asyncio.wait_for(client.start(), WAIT)


async def test_bind_that_is_never_answered_fails_start(
    raw_smsc: RawSmscFactory,
) -> None:
    """An SMSC that accepts TCP but never answers the bind must not leave start() hanging."""
    server, port = await raw_smsc(answer_bind=False)
    client = SmppClient(client_config(port, response_timeout=0.3))
    with pytest.raises(TransportError):
        await asyncio.wait_for(client.start(), WAIT)
    assert server.received[0][0] == C.BIND_TRANSCEIVER
    await client.close()


# --- submit ------------------------------------------------------------------------------------------


async def test_submit_returns_the_smscs_message_id(smsc: SmscSimulator, client: SmppClient) -> None:
    seen: list[MtMessage] = []
    smsc.on_submit = seen.append
    result = await asyncio.wait_for(client.submit(sms(text=b"first")), WAIT)
    assert result.message_id
    assert result.response.command_status == 0
    assert result.response.message_id == result.message_id
    assert [m.message_id for m in seen] == [result.message_id]
    assert seen[0].short_message == b"first"
    assert seen[0].destination_addr == "31600000001"
    assert seen[0].system_id == "esme"
    second = await asyncio.wait_for(client.submit(sms()), WAIT)
    assert second.message_id != result.message_id
    assert client.stats.submitted == 2
    assert client.stats.by_status == {0: 2}


@pytest.mark.parametrize("window", [10, 100])
async def test_window_is_never_exceeded(smsc: SmscSimulator, connect: Connect, window: int) -> None:
    client = await connect(smsc.address[1], window=window)
    peak = 0
    samples = 0
    done = False

    async def sample() -> None:
        nonlocal peak, samples
        while not done:
            peak = max(peak, client.window_occupancy)
            samples += 1
            await asyncio.sleep(0)

    sampler = asyncio.create_task(sample())
    try:
        results = await submit_all(client, 2000)
    finally:
        done = True
        await sampler
    assert len(results) == 2000
    assert len({r.message_id for r in results}) == 2000
    assert smsc.stats.submits == 2000
    assert client.stats.submitted == 2000
    assert samples > 100
    assert peak <= window
    assert peak == window  # the window was used in full, not one request at a time
    assert client.window_occupancy == 0


async def test_other_requests_go_through_request(smsc: SmscSimulator, client: SmppClient) -> None:
    submitted = await client.submit(sms())
    query = await asyncio.wait_for(
        client.request(QuerySm(message_id=submitted.message_id, source_addr="12345")), WAIT
    )
    assert isinstance(query, QuerySmResp)
    assert query.message_id == submitted.message_id
    assert query.message_state == MessageState.DELIVERED
    data = await asyncio.wait_for(
        client.request(DataSm(source_addr="12345", destination_addr="31600000001")), WAIT
    )
    assert isinstance(data, DataSmResp)
    assert data.command_status == 0
    assert data.message_id
    multi = await asyncio.wait_for(client.request(SubmitMulti(source_addr="12345", short_message=b"x")), WAIT)
    assert isinstance(multi, SubmitMultiResp)
    assert multi.message_id
    cancel = await client.request(CancelSm(message_id=submitted.message_id, source_addr="12345"))
    replace = await client.request(
        ReplaceSm(message_id=submitted.message_id, source_addr="12345", short_message=b"y")
    )
    assert (cancel.command_id, cancel.command_status) == (C.CANCEL_SM_RESP, 0)
    assert (replace.command_id, replace.command_status) == (C.REPLACE_SM_RESP, 0)
    assert len({submitted.message_id, data.message_id, multi.message_id}) == 3


# --- receipts ----------------------------------------------------------------------------------------


async def test_receipt_is_correlated(smsc: SmscSimulator, client: SmppClient) -> None:
    results = await submit_all(client, 20, dlr=1)
    receipts = await asyncio.gather(*(client.wait_receipt(r.message_id, WAIT) for r in results))
    assert [rc.id for rc in receipts] == [r.message_id for r in results]
    assert all(rc.stat == "DELIVRD" and rc.message_state == MessageState.DELIVERED for rc in receipts)
    assert receipts[0].text == "hello"
    assert client.stats.receipts == 20
    assert client.stats.mo == 0
    assert smsc.stats.receipts_sent == 20


async def test_receipt_with_decimal_id_matches_hex_message_id(
    start_smsc: StartSmsc, connect: Connect
) -> None:
    smsc = await start_smsc("mixed-ids")
    client = await connect(smsc.address[1])
    results = await submit_all(client, 5, dlr=1)
    for result in results:
        receipt = await client.wait_receipt(result.message_id, WAIT)
        assert receipt.id == str(int(result.message_id, 16))
        assert receipt.id != result.message_id
        assert receipt.stat == "DELIVRD"


async def test_receipt_arriving_before_wait_receipt_is_kept(smsc: SmscSimulator, client: SmppClient) -> None:
    result = await client.submit(sms(dlr=1))
    await wait_until(lambda: client.stats.receipts == 1, what="the receipt to arrive")
    receipt = await asyncio.wait_for(client.wait_receipt(result.message_id), WAIT)
    assert receipt.id == result.message_id
    assert receipt.stat == "DELIVRD"


async def test_receipt_outcome_from_the_mix(start_smsc: StartSmsc, connect: Connect) -> None:
    smsc = await start_smsc(outcomes={"UNDELIV": 1})
    client = await connect(smsc.address[1])
    result = await client.submit(sms(dlr=1))
    receipt = await client.wait_receipt(result.message_id, WAIT)
    assert receipt.stat == "UNDELIV"
    assert receipt.message_state == MessageState.UNDELIVERABLE
    assert receipt.dlvrd == 0
    assert receipt.err == "001"


async def test_weighted_outcome_mix_yields_every_outcome(start_smsc: StartSmsc, connect: Connect) -> None:
    smsc = await start_smsc(outcomes={"DELIVRD": 1, "EXPIRED": 1}, seed=3)
    client = await connect(smsc.address[1])
    results = await submit_all(client, 40, dlr=1)
    stats = [(await client.wait_receipt(r.message_id, WAIT)).stat for r in results]
    assert set(stats) == {"DELIVRD", "EXPIRED"}


async def test_failure_only_receipts_and_handsets(smsc: SmscSimulator, client: SmppClient) -> None:
    """registered_delivery=2 asks for a receipt on failure only; a handset decides the outcome."""
    delivered_to: list[MtMessage] = []

    def handset(mt: MtMessage) -> MessageState | None:
        delivered_to.append(mt)
        return None  # delivered

    def broken_handset(mt: MtMessage) -> MessageState | None:
        raise RuntimeError("SIM fell out")

    smsc.register_handset("31600000001", handset)
    smsc.register_handset("31600000002", broken_handset)
    smsc.register_handset("31600000003", lambda mt: MessageState.REJECTED)
    ok = await client.submit(sms(dest="31600000001", dlr=2))
    broken = await client.submit(sms(dest="31600000002", dlr=2))
    rejected = await client.submit(sms(dest="31600000003", dlr=1))
    assert [m.message_id for m in delivered_to] == [ok.message_id]
    assert (await client.wait_receipt(broken.message_id, WAIT)).stat == "UNDELIV"
    assert (await client.wait_receipt(rejected.message_id, WAIT)).stat == "REJECTD"
    with pytest.raises(TimeoutError):  # delivered, and only failures were to be reported
        await client.wait_receipt(ok.message_id, 0.5)
    smsc.unregister_handset("31600000001")
    await client.submit(sms(dest="31600000001"))
    assert len(delivered_to) == 1


async def test_receipt_handler_and_async_on_submit(smsc: SmscSimulator, client: SmppClient) -> None:
    handled: list[tuple[DeliveryReceipt, DeliverSm | DataSm]] = []
    on_submit_seen: list[str] = []

    async def on_receipt(receipt: DeliveryReceipt, pdu: DeliverSm | DataSm) -> None:
        await asyncio.sleep(0)
        handled.append((receipt, pdu))

    async def on_submit(mt: MtMessage) -> None:
        await asyncio.sleep(0)
        on_submit_seen.append(mt.message_id)

    client.add_receipt_handler(on_receipt)
    smsc.on_submit = on_submit
    result = await client.submit(sms(dlr=1))
    await client.wait_receipt(result.message_id, WAIT)
    await wait_until(lambda: bool(handled), what="the receipt handler")
    receipt, pdu = handled[0]
    assert receipt.id == result.message_id
    assert isinstance(pdu, DeliverSm)
    assert pdu.source_addr == "31600000001"  # a receipt comes back from the handset's address
    await wait_until(lambda: bool(on_submit_seen), what="on_submit")
    assert on_submit_seen == [result.message_id]


async def test_receipts_wait_for_a_receiver(start_smsc: StartSmsc, connect: Connect) -> None:
    """Receipts for a transmitter-only ESME are held until the same system_id binds as receiver."""
    smsc = await start_smsc()
    tx = await connect(smsc.address[1], bind_type="transmitter")
    result = await tx.submit(sms(dlr=1))
    await asyncio.sleep(0.2)
    assert smsc.stats.receipts_sent == 0
    rx = await connect(smsc.address[1], bind_type="receiver")
    receipt = await rx.wait_receipt(result.message_id, WAIT)
    assert receipt.id == result.message_id
    assert tx.stats.receipts == 0
    assert smsc.stats.receipts_sent == 1


# --- MO ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_mo_reaches_the_handler(smsc: SmscSimulator, client: SmppClient, asynchronous: bool) -> None:
    got: list[DeliverSm | DataSm] = []

    def sync_handler(pdu: DeliverSm | DataSm) -> None:
        got.append(pdu)

    async def async_handler(pdu: DeliverSm | DataSm) -> None:
        await asyncio.sleep(0.01)
        got.append(pdu)

    client.add_mo_handler(async_handler if asynchronous else sync_handler)
    status = await smsc.inject_mo("31600000001", "12345", b"YES 500", system_id="esme")
    assert status == 0
    assert len(got) == 1
    assert isinstance(got[0], DeliverSm)
    assert (got[0].source_addr, got[0].destination_addr, got[0].short_message) == (
        "31600000001",
        "12345",
        b"YES 500",
    )
    assert client.stats.mo == 1
    assert client.stats.receipts == 0
    assert smsc.stats.mo_sent == 1


async def test_mo_without_handler_is_deferred_not_lost(smsc: SmscSimulator, client: SmppClient) -> None:
    """With no MO handler registered nobody took the message: ESME_RX_T_APPN, so the SMSC retries."""
    assert await smsc.inject_mo("31600000001", "12345", b"hi") == S.ESME_RX_T_APPN
    assert client.stats.mo == 1
    client.add_mo_handler(lambda pdu: None)
    assert await smsc.inject_mo("31600000001", "12345", b"hi") == 0


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_failing_mo_handler_answers_temporary_app_error(
    smsc: SmscSimulator, client: SmppClient, asynchronous: bool
) -> None:
    def sync_handler(pdu: DeliverSm | DataSm) -> None:
        raise RuntimeError("database down")

    async def async_handler(pdu: DeliverSm | DataSm) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("database down")

    client.add_mo_handler(async_handler if asynchronous else sync_handler)
    status = await smsc.inject_mo("31600000001", "12345", b"YES")
    assert status == 0x64
    assert S(status) is S.ESME_RX_T_APPN
    # the session survives the handler's failure
    assert client.is_bound
    assert (await client.submit(sms())).message_id


async def test_data_sm_mo(smsc: SmscSimulator, client: SmppClient) -> None:
    got: list[DeliverSm | DataSm] = []
    client.add_mo_handler(got.append)
    status = await smsc.deliver(DataSm(source_addr="31600000001", destination_addr="12345"))
    assert status == 0
    assert isinstance(got[0], DataSm)


async def test_deliver_to_an_unknown_system_id_is_refused(smsc: SmscSimulator, client: SmppClient) -> None:
    with pytest.raises(ConnectionError, match="nobody"):
        await smsc.inject_mo("31600000001", "12345", b"x", system_id="nobody")


# --- TPS, throttling ---------------------------------------------------------------------------------


async def test_tps_limit_spaces_submits(start_smsc: StartSmsc, connect: Connect) -> None:
    """60 submits at 50 TPS: a burst of 5 (one tenth of a second), then one every 20 ms, so at least
    55 / 50 = 1.1 s of loop time pass (lower bound, stated with slack). The SMSC's licence of 60 TPS
    is never exceeded; without the limiter the same burst would be throttled."""
    smsc = await start_smsc(tps_licence=60)
    client = await connect(smsc.address[1], tps=50, window=100)
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await submit_all(client, 60)
    elapsed = loop.time() - started
    assert len(results) == 60
    assert elapsed >= 1.0
    assert smsc.stats.throttled == 0
    assert client.stats.throttled == 0
    assert smsc.stats.submits == 60


async def test_unlimited_burst_is_throttled_by_the_licence(start_smsc: StartSmsc, connect: Connect) -> None:
    """The control for the test above: without a client TPS limit the same licence throttles."""
    smsc = await start_smsc(tps_licence=60)
    client = await connect(smsc.address[1], window=100)
    await submit_all(client, 60)
    assert smsc.stats.throttled > 0


async def test_throttling_smsc_loses_nothing(start_smsc: StartSmsc, connect: Connect) -> None:
    smsc = await start_smsc("throttle:50")
    client = await connect(smsc.address[1], window=20)
    results = await submit_all(client, 60)
    assert len({r.message_id for r in results}) == 60
    assert client.stats.throttled > 0
    assert smsc.stats.throttled > 0
    assert client.stats.by_status[S.ESME_RTHROTTLED] == client.stats.throttled
    assert smsc.stats.submits == 60  # every message accepted exactly once
    assert client.stats.submitted == 60


async def test_one_burst_of_throttles_is_one_back_off(start_smsc: StartSmsc, connect: Connect) -> None:
    """The throttled answers to one burst are one episode of back-off, not one each.

    With a ceiling of 1000 s, doubling the pause once per throttled answer would, after the ~15
    throttled answers of the first burst, park every submit for minutes (a hang, caught by the
    guard); doubling once per episode keeps the client going at the licence."""
    smsc = await start_smsc("throttle:50")
    client = await connect(smsc.address[1], window=20, throttle_initial=0.05, throttle_max=1000.0)
    results = await asyncio.wait_for(asyncio.gather(*(client.submit(sms()) for _ in range(40))), WAIT)
    assert len({r.message_id for r in results}) == 40
    assert client.stats.throttled > 0
    assert smsc.stats.submits == 40


# --- failure personalities ---------------------------------------------------------------------------


async def test_disconnecting_smsc(start_smsc: StartSmsc, connect: Connect) -> None:
    smsc = await start_smsc("disconnect:25")
    client = await connect(smsc.address[1], window=10)
    results = await submit_all(client, 200)
    assert len(results) == 200
    assert all(r.message_id for r in results)
    assert client.stats.reconnects >= 1
    assert client.stats.resent > 0
    assert smsc.stats.binds >= 2
    assert smsc.stats.submits >= 200  # at least once: a lost response means a re-send


async def test_blackhole_submit_fails_after_attempts(start_smsc: StartSmsc, connect: Connect) -> None:
    smsc = await start_smsc("blackhole")
    client = await connect(smsc.address[1], response_timeout=0.3, submit_attempts=2)
    with pytest.raises(SubmitError, match="no response after 2 attempt"):
        await asyncio.wait_for(client.submit(sms()), WAIT)
    assert client.stats.resent == 1
    assert smsc.stats.submits == 0
    assert client.is_bound  # the link itself is alive: enquire_link would still be answered


async def test_slow_smsc_still_succeeds(start_smsc: StartSmsc, connect: Connect) -> None:
    smsc = await start_smsc("slow:0.3")
    client = await connect(smsc.address[1])
    results = await submit_all(client, 10)
    assert len({r.message_id for r in results}) == 10
    assert client.stats.resent == 0


async def test_nacking_smsc(start_smsc: StartSmsc, connect: Connect) -> None:
    smsc = await start_smsc("nack:5")
    client = await connect(smsc.address[1])
    outcomes: list[str | int] = []
    for _ in range(20):
        try:
            outcomes.append((await asyncio.wait_for(client.submit(sms()), WAIT)).message_id)
        except SubmitError as exc:
            outcomes.append(exc.status)
    failed = [i + 1 for i, o in enumerate(outcomes) if isinstance(o, int)]
    assert failed == [5, 10, 15, 20]
    assert {outcomes[i - 1] for i in failed} == {S.ESME_RSYSERR}
    assert smsc.stats.nacked == 4
    assert smsc.stats.submits == 16
    assert client.stats.reconnects == 0  # the session survives a generic_nack
    assert smsc.stats.binds == 1
    assert (await client.submit(sms())).message_id


async def test_lost_receipt_times_out(start_smsc: StartSmsc, connect: Connect) -> None:
    smsc = await start_smsc("lossy-receipts:1.0")
    client = await connect(smsc.address[1])
    result = await client.submit(sms(dlr=1))
    with pytest.raises(TimeoutError):
        await client.wait_receipt(result.message_id, 0.5)
    assert smsc.stats.receipts_lost == 1
    assert smsc.stats.receipts_sent == 0


# --- lifecycle ---------------------------------------------------------------------------------------


async def test_graceful_close(start_smsc: StartSmsc) -> None:
    smsc = await start_smsc("slow:0.3")
    client = SmppClient(client_config(smsc.address[1]))
    await asyncio.wait_for(client.start(), WAIT)
    tasks = [asyncio.create_task(client.submit(sms())) for _ in range(5)]
    await wait_until(lambda: client.window_occupancy == 5, what="5 submits in flight")
    await asyncio.wait_for(client.close(), WAIT)
    results = await asyncio.wait_for(asyncio.gather(*tasks), WAIT)  # in flight at close: answered
    assert len({r.message_id for r in results}) == 5
    assert smsc.stats.unbinds == 1  # the client unbound instead of dropping the connection
    assert not client.is_bound
    await wait_until(lambda: smsc.bound_system_ids == [], what="the SMSC to drop the session")
    with pytest.raises(TransportError):
        await client.submit(sms())


async def test_close_while_disconnected_fails_queued_submits(start_smsc: StartSmsc) -> None:
    """Submits cut off by a dropped connection (waiting to be re-sent) and submits made while it
    is down both fail with TransportError when the client is closed before it comes back."""
    smsc = await start_smsc("slow:30")
    client = SmppClient(client_config(smsc.address[1]))
    await asyncio.wait_for(client.start(), WAIT)
    cut_off = [asyncio.create_task(client.submit(sms())) for _ in range(2)]
    await wait_until(lambda: client.window_occupancy == 2, what="2 submits in flight")
    await smsc.stop()
    await wait_until(lambda: not client.is_bound, what="the client to notice")
    queued = [asyncio.create_task(client.submit(sms())) for _ in range(3)]
    await asyncio.sleep(0.05)
    await asyncio.wait_for(client.close(drain_timeout=0.2), WAIT)
    results = await asyncio.wait_for(asyncio.gather(*cut_off, *queued, return_exceptions=True), WAIT)
    assert all(isinstance(r, TransportError) for r in results), results


async def test_close_never_leaves_a_submit_hanging(start_smsc: StartSmsc) -> None:
    """Closing while the SMSC throttles: each submit either got its id or a TransportError."""
    smsc = await start_smsc("throttle:5")
    client = SmppClient(client_config(smsc.address[1], throttle_initial=0.1))
    await asyncio.wait_for(client.start(), WAIT)
    tasks = [asyncio.create_task(client.submit(sms())) for _ in range(10)]
    await wait_until(lambda: client.stats.throttled > 0, what="throttling")
    await asyncio.wait_for(client.close(drain_timeout=0.3), WAIT)
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT)
    ok = [r for r in results if isinstance(r, SubmitResult)]
    failed = [r for r in results if isinstance(r, TransportError)]
    assert len(ok) + len(failed) == 10, results
    assert failed  # 10 messages at 5 TPS cannot all get through in 0.3 s
    assert len(ok) == smsc.stats.submits


async def test_cancelled_submits_do_not_leak_window_slots(start_smsc: StartSmsc, connect: Connect) -> None:
    smsc = await start_smsc("slow:0.2")
    client = await connect(smsc.address[1], window=1)
    loop = asyncio.get_running_loop()
    # a submit cancelled while it waits for the window
    holder = asyncio.create_task(client.submit(sms()))
    waiter = asyncio.create_task(client.submit(sms()))
    await wait_until(lambda: client.window_occupancy == 1, what="the window to fill")
    waiter.cancel()
    assert (await asyncio.wait_for(holder, WAIT)).message_id
    # a submit cancelled just after the window slot was handed to it
    holder = asyncio.create_task(client.submit(sms()))
    waiter = asyncio.create_task(client.submit(sms()))
    await wait_until(lambda: client.window_occupancy == 1, what="the window to fill")
    holder.cancel()  # its slot goes to ``waiter`` when it unwinds...
    loop.call_soon(waiter.cancel)  # ...and ``waiter`` is cancelled before it can run
    for task in (holder, waiter):
        with pytest.raises(asyncio.CancelledError):
            await task
    # had a slot leaked, the window of one would be gone and these would hang
    results = await asyncio.wait_for(asyncio.gather(*(client.submit(sms()) for _ in range(3))), WAIT)
    assert len(results) == 3


async def test_early_receipts_are_bounded(smsc: SmscSimulator, connect: Connect) -> None:
    """``early_receipts`` counts receipts: the oldest unclaimed ones are forgotten first."""
    client = await connect(smsc.address[1], early_receipts=2)
    results = [await client.submit(sms(dlr=1)) for _ in range(3)]
    await wait_until(lambda: client.stats.receipts == 3, what="3 receipts")
    newest = [await asyncio.wait_for(client.wait_receipt(r.message_id), WAIT) for r in results[1:]]
    assert [rc.id for rc in newest] == [r.message_id for r in results[1:]]
    with pytest.raises(TimeoutError):
        await client.wait_receipt(results[0].message_id, 0.3)


async def test_reconnect_after_smsc_restart(start_smsc: StartSmsc, connect: Connect) -> None:
    first = await start_smsc()
    port = first.address[1]
    client = await connect(port)
    assert (await client.submit(sms())).message_id
    await first.stop()
    await wait_until(lambda: not client.is_bound, what="the client to see the SMSC go")
    pending = asyncio.create_task(client.submit(sms(text=b"queued while down")))
    await asyncio.sleep(0.2)
    assert not pending.done()
    second = await start_smsc(port=port)
    result = await asyncio.wait_for(pending, WAIT)
    assert result.message_id
    assert client.is_bound
    assert client.stats.reconnects >= 1
    assert second.stats.binds == 1
    assert second.stats.submits == 1
    assert (await client.submit(sms())).message_id
    assert second.stats.submits == 2


async def test_enquire_link_keeps_idle_link_up(
    smsc: SmscSimulator, connect: Connect, wire_tap: WireTapFactory
) -> None:
    tap, port = await wire_tap(smsc.address[1])
    client = await connect(port, enquire_link_interval=0.2)
    await asyncio.sleep(1.2)  # idle: nothing but keepalives
    assert client.is_bound
    assert client.stats.reconnects == 0
    assert tap.count(tap.to_smsc, C.ENQUIRE_LINK) >= 2
    assert tap.count(tap.to_esme, C.ENQUIRE_LINK_RESP) >= 2
    assert tap.connections == 1
    assert (await client.submit(sms())).message_id


async def test_smsc_probes_idle_esme(
    start_smsc: StartSmsc, connect: Connect, wire_tap: WireTapFactory
) -> None:
    smsc = await start_smsc(enquire_link_interval=0.2)
    tap, port = await wire_tap(smsc.address[1])
    client = await connect(port)
    await asyncio.sleep(1.0)
    assert tap.count(tap.to_esme, C.ENQUIRE_LINK) >= 2
    assert tap.count(tap.to_smsc, C.ENQUIRE_LINK_RESP, status=0) >= 2
    assert client.is_bound
    assert smsc.bound_system_ids == ["esme"]


async def test_graceful_close_on_the_wire(smsc: SmscSimulator, wire_tap: WireTapFactory) -> None:
    tap, port = await wire_tap(smsc.address[1])
    client = SmppClient(client_config(port))
    await asyncio.wait_for(client.start(), WAIT)
    await client.submit(sms())
    await asyncio.wait_for(client.close(), WAIT)
    await wait_until(lambda: tap.count(tap.to_esme, C.UNBIND_RESP) == 1, what="unbind_resp")
    assert tap.to_smsc[-1] == (C.UNBIND, 0)
    assert smsc.stats.unbinds == 1


async def test_dead_link_is_reestablished(raw_smsc: RawSmscFactory) -> None:
    """An SMSC that stops answering enquire_link is given up on and dialled again."""
    server, port = await raw_smsc(answer_enquire_link=False)
    client = SmppClient(client_config(port, enquire_link_interval=0.2, response_timeout=0.3))
    await asyncio.wait_for(client.start(), WAIT)
    await wait_until(lambda: server.connections >= 2, what="a second connection")
    assert client.stats.reconnects >= 1
    assert (C.ENQUIRE_LINK, 0) in server.received
    await wait_until(lambda: client.is_bound, what="the rebind")
    await asyncio.wait_for(client.close(), WAIT)


async def test_generic_nack_with_status_zero_fails_the_submit(raw_smsc: RawSmscFactory) -> None:
    """A generic_nack answers nothing even when its status is 0: the submit fails, no message id."""
    _, port = await raw_smsc(nack_submits=True)
    client = SmppClient(client_config(port))
    await asyncio.wait_for(client.start(), WAIT)
    with pytest.raises(SubmitError) as info:
        await asyncio.wait_for(client.submit(sms()), WAIT)
    assert info.value.status == S.ESME_RUNKNOWNERR
    assert "GenericNack" in str(info.value)
    await asyncio.wait_for(client.close(), WAIT)


async def test_broken_byte_stream_from_smsc(raw_smsc: RawSmscFactory) -> None:
    """A command_length below 16 makes the framing untrustworthy: the client answers generic_nack
    ESME_RINVCMDLEN, drops the connection and binds again."""

    def on_bound(number: int, writer: asyncio.StreamWriter) -> None:
        if number == 1:
            writer.write(_HEADER.pack(5, C.DELIVER_SM, 0, 7))

    server, port = await raw_smsc(on_bound=on_bound)
    client = SmppClient(client_config(port))
    await asyncio.wait_for(client.start(), WAIT)
    await wait_until(lambda: server.connections >= 2, what="the reconnect")
    assert (C.GENERIC_NACK, S.ESME_RINVCMDLEN) in server.received
    await wait_until(lambda: client.is_bound, what="the rebind")
    assert client.stats.reconnects >= 1
    await asyncio.wait_for(client.close(), WAIT)


PAYLOAD = bytes(range(256)) * 234  # 59,904 octets, under the 65,535 a TLV can carry


def big_sms() -> SubmitSm:
    return SubmitSm(
        source_addr="12345",
        destination_addr="31600000001",
        optional_parameters=(Tlv.make("message_payload", PAYLOAD),),
    )


@pytest.mark.parametrize("peer_recovers", [True, False])
async def test_backpressure_from_a_peer_that_stops_reading(
    raw_smsc: RawSmscFactory, peer_recovers: bool
) -> None:
    """While the SMSC reads nothing, the write buffer fills and later submits wait for it to drain
    instead of piling more on; once the SMSC reads again (or the link is replaced) every submit
    arrives whole and is answered."""
    stall = asyncio.Event()
    server, port = await raw_smsc(stall=stall, close_after_stall=not peer_recovers)
    client = SmppClient(client_config(port, window=500, response_timeout=60.0))
    await asyncio.wait_for(client.start(), WAIT)
    proto = client._protocol
    assert proto is not None
    # the kernel's socket buffers take the first megabytes; keep writing until the transport's own
    # buffer passes its high-water mark
    first: list[asyncio.Task[SubmitResult]] = []
    while not proto.writing_paused:
        assert len(first) < 450, "the transport never paused"
        first += [asyncio.create_task(client.submit(big_sms())) for _ in range(10)]
        await asyncio.sleep(0.05)
    # submits made now are handed to the engine but wait for the buffer before awaiting an answer
    later = [asyncio.create_task(client.submit(big_sms())) for _ in range(50)]
    total = len(first) + len(later)
    await wait_until(lambda: client.window_occupancy == total, what="every submit in the window")
    await wait_until(lambda: len(proto._resume_waiters) == 50, what="the later submits to park")
    assert not any(task.done() for task in first + later)
    stall.set()
    results = await asyncio.wait_for(asyncio.gather(*first, *later), WAIT * 3)
    assert len(results) == total
    body = len(encode_pdu(big_sms())) - 16
    assert len(server.submit_lengths) >= total
    assert set(server.submit_lengths) == {body}  # nothing torn
    if peer_recovers:
        assert server.connections == 1
        assert len(server.submit_lengths) == total
        assert client.stats.resent == 0
    else:
        assert server.connections == 2
        assert client.stats.resent > 0
    await asyncio.wait_for(client.close(), WAIT)


async def test_smsc_answers_broken_byte_stream_and_keeps_serving(
    smsc: SmscSimulator, connect: Connect
) -> None:
    reader, writer = await asyncio.open_connection(*smsc.address)
    writer.write(_HEADER.pack(5, C.BIND_TRANSCEIVER, 0, 1))
    cid, status, _, _ = await asyncio.wait_for(read_raw_pdu(reader), WAIT)
    assert (cid, status) == (C.GENERIC_NACK, S.ESME_RINVCMDLEN)
    assert await asyncio.wait_for(reader.read(), WAIT) == b""  # and the connection is closed
    writer.close()
    client = await connect(smsc.address[1])
    assert (await client.submit(sms())).message_id


async def test_smsc_rejects_submit_before_bind(smsc: SmscSimulator) -> None:
    reader, writer = await asyncio.open_connection(*smsc.address)
    body = (
        b"\x00"
        + b"\x00\x00"
        + b"1\x00"
        + b"\x00\x00"
        + b"2\x00"
        + b"\x00" * 3
        + b"\x00\x00"
        + b"\x00" * 4
        + b"\x00"
    )
    writer.write(raw_pdu(C.SUBMIT_SM, 0, 3, body))
    cid, status, seq, _ = await asyncio.wait_for(read_raw_pdu(reader), WAIT)
    assert (cid, status, seq) == (C.SUBMIT_SM_RESP, S.ESME_RINVBNDSTS, 3)
    writer.close()
    assert smsc.stats.invalid == 1
